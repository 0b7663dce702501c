/**
 * PeopleSoft SMTPNTLMEnable / SMTPNTLMDomain: NTLM authentication to an on-premises Exchange.
 * The fake server offers only AUTH NTLM and checks the negotiate message and the NTLMv2 proof
 * of the authenticate message against the password, the user and the domain it receives.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { validateCommand } from '../../../src/cli/validate.js';
import { connectCheck } from '../../../src/cli/validate-connect.js';
import { startFakeNtlmUpstream } from '../../helpers/fake-ntlm-upstream.js';
import { captureIo } from '../cli/support.js';
import { Cleanup, deliveryLines, relayWith, send, upstream } from '../delivery-half/support.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());
const PASS = 'Ps-Ntlm-Pa55word!';

describe('auth.type "ntlm" (PeopleSoft SMTPNTLMEnable, SMTPNTLMDomain)', () => {
  it('authenticates with NTLMv2 as user in the domain, delivers, and validate --connect says so', async () => {
    const exchange = cleanup.add(await startFakeNtlmUpstream({ users: { psbatch: PASS }, domain: 'CORP' }), (e) => e.close());
    const entry = upstream('exchange', exchange.port, { auth: { type: 'ntlm', user: 'psbatch', pass: PASS, domain: 'CORP' } });
    const relay = cleanup.add(await relayWith([entry], { delivery: { waitSeconds: 10 } }), (r) => r.stop());
    const reply = await send(relay.port, { to: 'hr@corp.test' });
    expect(reply.response).toMatch(/^250 2\.0\.0 Ok: delivered/);
    expect(exchange.messages.map((m) => [m.user, m.rcptTo])).toEqual([['psbatch', ['hr@corp.test']]]);
    expect(exchange.attempts).toEqual([{ user: 'psbatch', domain: 'CORP', workstation: '', accepted: true }]);
    expect(relay.logs.lines.join('\n')).not.toContain(PASS);

    const dir = await mkdtemp(join(tmpdir(), 'smtp-sidecar-ntlm-'));
    const path = join(dir, 'config.json');
    await writeFile(path, JSON.stringify({ upstreams: [entry] }));
    const io = captureIo();
    expect(await validateCommand({ config: path, connect: true }, io, connectCheck())).toBe(0);
    expect(io.out()).toMatch(/exchange\s+auth\s+ok\s+NTLM as psbatch/);
    expect(io.out()).not.toContain(PASS);
  });

  it('a wrong password is refused by the server (535) and fails over', async () => {
    const exchange = cleanup.add(await startFakeNtlmUpstream({ users: { psbatch: PASS }, domain: 'CORP' }), (e) => e.close());
    const backup = cleanup.add(await startFakeNtlmUpstream({ users: { psbatch: PASS }, domain: 'CORP' }), (e) => e.close());
    const relay = cleanup.add(
      await relayWith([
        upstream('exchange', exchange.port, { auth: { type: 'ntlm', user: 'psbatch', pass: 'not-the-password', domain: 'CORP' } }),
        upstream('backup', backup.port, { auth: { type: 'ntlm', user: 'psbatch', pass: PASS, domain: 'corp' } }),
      ]),
      (r) => r.stop(),
    );
    const { qid } = await send(relay.port, { to: 'hr@corp.test' });
    await relay.logs.waitFor('delivery', (l) => l['qid'] === qid && l['status'] === 'sent');
    expect(exchange.attempts.map((a) => a.problem)).toEqual(['the NTLMv2 proof does not match (wrong password)']);
    expect(deliveryLines(relay, qid!).map((l) => [l['relay'], l['status']])).toEqual([
      ['exchange', 'failover'],
      ['backup', 'sent'],
    ]);
    expect(backup.messages).toHaveLength(1);
  });
});
