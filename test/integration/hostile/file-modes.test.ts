/**
 * Issue 12 finding 8 (files): the outbox gets 0750/0640 like the spool even under umask 000,
 * and a config file other users can read that holds plaintext secrets gets a warning at start
 * (the real process) and from validate; a protected file, or one whose secrets are references,
 * gets none.
 */
import { chmod, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { validateCommand } from '../../../src/cli/validate.js';
import { ensureBuilt, startRelayProcess, type RelayProcess } from '../../helpers/relay-process.js';
import { startRelay, type TestRelay } from '../../helpers/relay.js';
import { captureIo } from '../cli/support.js';

let relay: TestRelay | undefined;
let child: RelayProcess | undefined;
let dir: string | undefined;
beforeAll(() => ensureBuilt());
afterEach(async () => {
  await relay?.stop();
  await child?.kill('SIGTERM').catch(() => undefined);
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  relay = undefined;
  child = undefined;
  dir = undefined;
});

describe('outbox modes', () => {
  it('the outbox directory is 0750 and its files 0640 under umask 000', async () => {
    const previous = process.umask(0o000);
    try {
      relay = await startRelay({ delivery: { waitSeconds: 5 } });
      const client = nodemailer.createTransport({ host: '127.0.0.1', port: relay.port, ignoreTLS: true });
      await client.sendMail({ from: 'app@legacy.test', to: 'x@dest.test', subject: 's', text: 'private' });
      client.close();
      const files = (await readdir(relay.outboxDir)).filter((f) => f.endsWith('.eml'));
      expect(files).toHaveLength(1);
      expect((await stat(relay.outboxDir)).mode & 0o777).toBe(0o750);
      expect((await stat(join(relay.outboxDir, files[0]!))).mode & 0o777).toBe(0o640);
      expect((await stat(relay.spoolDir)).mode & 0o777).toBe(0o750);
    } finally {
      process.umask(previous);
    }
  });
});

describe('config file readable by others', () => {
  const config = (pass: string) => ({
    listen: { host: '127.0.0.1', port: 0 },
    delivery: { spoolDir: join(dir!, 'spool'), outboxDir: join(dir!, 'outbox') },
    http: { enabled: false },
    upstreams: [{ name: 'basic', host: '127.0.0.1', port: 9, security: 'tls', auth: { type: 'login', user: 'relay', pass } }],
  });
  const PASS = 'Liter4l-Pa55';

  it('validate warns about a 0644 file with a literal password (naming the key, not the value), not about 0600 or references', async () => {
    dir = await mkdtemp(join(tmpdir(), 'config-exposure-'));
    const path = join(dir, 'config.json');
    await writeFile(path, JSON.stringify(config(PASS)));
    await chmod(path, 0o644);
    const open = captureIo();
    expect(await validateCommand({ config: path, connect: false }, open)).toBe(0);
    expect(open.out()).toContain(`warning: ${path} is readable by every user (mode 0644) and holds plaintext secrets (upstreams[0].auth.pass)`);
    expect(open.out() + open.err()).not.toContain(PASS);

    await chmod(path, 0o600);
    const closed = captureIo();
    expect(await validateCommand({ config: path, connect: false }, closed)).toBe(0);
    expect(closed.out()).not.toContain('readable by every user');

    await writeFile(join(dir, 'pass'), `${PASS}\n`);
    await writeFile(path, JSON.stringify(config(`\${file:${join(dir, 'pass')}}`)));
    await chmod(path, 0o644);
    const referenced = captureIo();
    expect(await validateCommand({ config: path, connect: false }, referenced)).toBe(0);
    expect(referenced.out()).not.toContain('readable by every user');
  });

  it('start logs the warning', async () => {
    dir = await mkdtemp(join(tmpdir(), 'config-exposure-'));
    const path = join(dir, 'config.json');
    await writeFile(path, JSON.stringify(config(PASS)));
    await chmod(path, 0o644);
    child = await startRelayProcess({ configPath: path });
    const warning = child.logs.events('config.readable-secrets').find((r) => String(r.detail).includes('readable by every user'));
    expect(warning).toMatchObject({ config: path });
    expect(child.logs.lines.join('\n')).not.toContain(PASS);
  });
});
