/**
 * Black box with a client nobody on this project wrote: swaks (Debian) → relay → fake
 * upstream. The upstream receives the message with the policy edits applied.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { startFakeUpstream } from '../../helpers/fake-upstream.js';
import { Cleanup, relayWith, upstream } from './support.js';

const SWAKS = '/usr/bin/swaks';
const hasSwaks = existsSync(SWAKS);
if (!hasSwaks) console.warn(`swaks black-box test skipped: ${SWAKS} is not installed (.ci/run installs it with apt-get install swaks)`);

const run = promisify(execFile);
const cleanup = new Cleanup();
afterEach(() => cleanup.run());

describe('swaks → relay → upstream', () => {
  it.skipIf(!hasSwaks)('delivers a swaks message upstream with the policy edits applied', async () => {
    const up = cleanup.add(await startFakeUpstream({ tls: 'none' }), (u) => u.close());
    const relay = cleanup.add(
      await relayWith([upstream('primary', up.port)], {
        message: { globalFrom: 'noreply@corp.test', confidential: { enabled: true }, alwaysBcc: ['archive@corp.test'] },
        delivery: { waitSeconds: 5 },
      }),
      (r) => r.stop(),
    );

    const { stdout } = await run(
      SWAKS,
      [
        '--server', `127.0.0.1:${relay.port}`,
        '--helo', 'legacy.test',
        '--from', 'nagios@legacy.test',
        '--to', 'ops@dest.test',
        '--header', 'Subject: disk full',
        '--header', 'From: Nagios <nagios@legacy.test>',
        '--body', 'disk /var is 99% full',
        '--timeout', '15',
      ],
      { timeout: 20_000 },
    );
    expect(stdout).toMatch(/^<-\s+250 .*delivered as .*queued as FAKE/m);
    const [received] = await up.waitForMessages(1);
    const text = received!.raw.toString('utf8');
    expect(text).toMatch(/^From: Nagios <noreply@corp\.test>\r$/m);
    expect(text).toMatch(/^Reply-To: "?Nagios"? <nagios@legacy\.test>\r$/m);
    expect(text).toMatch(/^Sensitivity: Company-Confidential\r$/m);
    expect(text).toContain('disk /var is 99% full');
    expect(text).not.toMatch(/archive@corp\.test/); // Bcc only in the envelope
    expect([...received!.envelope.rcptTo].sort()).toEqual(['archive@corp.test', 'ops@dest.test']);
  });
});
