/**
 * Issue 11 item 4: the Microsoft 365 path (msal-node, undici: about 12 MB of RSS) is loaded
 * only when an oauth2 upstream needs a token. A built relay process with plain SMTP upstreams
 * starts, accepts and relays a message without ever resolving either package.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { startFakeUpstream, type FakeUpstream } from '../../helpers/fake-upstream.js';
import { BUILT_MAIN } from '../../helpers/relay-process.js';

const run = promisify(execFile);

/** Resolve hook (runs on the loader thread): prints each node_modules package the first time it is resolved. */
const HOOK = `
const seen = new Set();
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  const m = /node_modules\\/((?:@[^/]+\\/)?[^/]+)/.exec(result.url);
  if (m && !seen.has(m[1])) { seen.add(m[1]); process.stderr.write('PKG ' + m[1] + '\\n'); }
  return result;
}`;
const REGISTER = `import { register } from 'node:module'; register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(HOOK)}));`;

/** Builds and starts the relay from dist/, sends one message through it, stops it. */
const SCRIPT = `
const [distApp, distLoad, nodemailer, upstreamPort, dir] = process.argv.slice(1);
const { createApp } = await import(distApp);
const { parseConfig } = await import(distLoad);
const config = parseConfig({
  listen: { host: '127.0.0.1', port: 0, hostname: 'relay.test' },
  delivery: { spoolDir: dir + '/spool', outboxDir: dir + '/outbox', waitSeconds: 5, fsync: false },
  upstreams: [{ name: 'plain', host: '127.0.0.1', port: Number(upstreamPort), security: 'none' }],
  http: { enabled: false },
  log: { level: 'error' },
});
const app = createApp(config);
const { smtpPort } = await app.start();
const client = (await import(nodemailer)).default.createTransport({ host: '127.0.0.1', port: smtpPort, secure: false, ignoreTLS: true });
const info = await client.sendMail({ from: 'app@legacy.test', to: 'ops@dest.test', subject: 's', text: 'hello' });
client.close();
await app.stop();
process.stdout.write(info.response.slice(0, 3));
`;

let upstream: FakeUpstream | undefined;
let dir: string | undefined;
afterEach(async () => {
  await upstream?.close();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  upstream = dir = undefined;
});

describe('the Microsoft 365 path is loaded on demand', () => {
  it('a relay without an oauth2 upstream never loads @azure/msal-node or undici', async () => {
    upstream = await startFakeUpstream({ tls: 'none' });
    dir = await mkdtemp(join(tmpdir(), 'smtp-sidecar-lazy-'));
    const dist = join(BUILT_MAIN, '..');
    const { stdout, stderr } = await run(
      process.execPath,
      ['--import', `data:text/javascript,${encodeURIComponent(REGISTER)}`, '--input-type=module', '-e', SCRIPT, join(dist, 'app.js'), join(dist, 'config', 'load.js'), import.meta.resolve('nodemailer'), String(upstream.port), dir],
      { timeout: 30_000 },
    );
    expect(stdout).toBe('250');
    await upstream.waitForMessages(1);
    const packages = stderr.split('\n').filter((l) => l.startsWith('PKG ')).map((l) => l.slice(4));
    expect(packages).toContain('smtp-server'); // the hook sees what the relay loads
    expect(packages).toContain('nodemailer');
    expect(packages).not.toContain('@azure/msal-node');
    expect(packages).not.toContain('undici');
  });
});
