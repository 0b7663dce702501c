/**
 * `sendmail` as cron, PHP and scripts run it: the built program, run through a symlink named
 * `sendmail` (as /usr/sbin/sendmail is installed) or as `smtp-sidecar sendmail`, submitting to a
 * real relay that delivers to a fake upstream. Exit codes are sysexits; failures print the
 * relay's answer.
 *
 * Each test has its own relay and upstream and mostly waits for a child process: the tests of a
 * describe run concurrently.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { type FakeUpstream, startFakeUpstream, startRefusingPort } from '../../helpers/fake-upstream.js';
import { BUILT_MAIN, ensureBuilt } from '../../helpers/relay-process.js';
import type { TestRelay } from '../../helpers/relay.js';
import { Cleanup, relayWith, upstream } from '../delivery-half/support.js';

const PHP = '/usr/bin/php';
const hasPhp = existsSync(PHP);
if (!hasPhp) console.warn(`PHP mail() tests skipped: ${PHP} is not installed (.ci/run installs it with apt-get install php-cli)`);


let dir: string;
/** a symlink named `sendmail` to the built bin, as the Docker image and the install create it */
let sendmailLink: string;

beforeAll(async () => {
  await ensureBuilt();
  dir = await mkdtemp(join(tmpdir(), 'smtp-sidecar-sendmail-'));
  sendmailLink = join(dir, 'sendmail');
  await symlink(BUILT_MAIN, sendmailLink);
  return () => rm(dir, { recursive: true, force: true });
});

/** PATH with this node first (the bin's `#!/usr/bin/env node` finds it), nothing else of ours. */
const childEnv = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
  PATH: `${dirname(process.execPath)}:/usr/bin:/bin`,
  LANG: 'C.UTF-8',
  ...extra,
});

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function run(file: string, args: readonly string[], input: string | Buffer, env: NodeJS.ProcessEnv = childEnv()): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => {
      if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
      reject(new Error(`${file} ${args.join(' ')} did not exit within 30 s; stderr: ${stderr}`));
    }, 30_000);
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(input);
  });
}

/** The symlinked `sendmail`, as cron and PHP exec it. */
const sendmail = (args: readonly string[], input: string | Buffer, env?: NodeJS.ProcessEnv) => run(sendmailLink, args, input, env);

/** A fake upstream and a relay in front of it, closed when the test finishes (tests run concurrently). */
async function setup(
  onTestFinished: TestContext['onTestFinished'],
  extra: Record<string, unknown> = {},
  upstreamOptions: Parameters<typeof startFakeUpstream>[0] = {},
): Promise<{ up: FakeUpstream; relay: TestRelay; config: string }> {
  const cleanup = new Cleanup();
  onTestFinished(() => cleanup.run());
  const up = cleanup.add(await startFakeUpstream({ tls: 'none', ...upstreamOptions }), (u) => u.close());
  const relay = cleanup.add(await relayWith([upstream('primary', up.port)], { delivery: { waitSeconds: 5 }, ...extra }), (r) => r.stop());
  const config = join(relay.dir, 'sendmail-config.json');
  // what sendmail reads of the relay's config: listen.host / listen.port (and delivery.waitSeconds)
  await writeFile(config, JSON.stringify({ listen: { host: '0.0.0.0', port: relay.port }, delivery: { waitSeconds: 5 } }));
  return { up, relay, config };
}

const text = (raw: Buffer) => raw.toString('utf8');
const body = (raw: Buffer) => raw.subarray(raw.indexOf('\r\n\r\n') + 4);

describe.concurrent('cron', () => {
  it("delivers with Debian cron's argv (-FCronDaemon -i -B8BITMIME -oem MAILTO) and its 8-bit UTF-8 output", async ({ onTestFinished }) => {
    const { up, config } = await setup(onTestFinished, { message: { globalFrom: 'cron@corp.test' } });
    const output = 'rsync: Größe 12 MB übertragen\n.\nlast line of output\n';
    // Debian cron's do_command.c writes these headers (From with a bare user name) and pipes the job's output
    const input = `From: root (Cron Daemon)\nTo: ops@dest.test\nSubject: Cron <root@web1> /usr/local/bin/backup\nMIME-Version: 1.0\nContent-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: 8bit\nX-Cron-Env: <SHELL=/bin/sh>\n\n${output}`;
    const result = await sendmail(['-C', config, '-FCronDaemon', '-i', '-B8BITMIME', '-oem', 'ops@dest.test'], input);
    expect(result).toMatchObject({ code: 0, stdout: '', stderr: '' });
    const [received] = await up.waitForMessages(1);
    expect(received!.envelope.rcptTo).toEqual(['ops@dest.test']);
    // the bare "root" is qualified with this host's name, then the relay's globalFrom policy applies
    expect(text(received!.raw)).toMatch(/^From: Cron Daemon <cron@corp\.test>\r$/m);
    expect(text(received!.raw)).toContain(`Reply-To: Cron Daemon <root@${hostname()}>\r\n`);
    expect(text(received!.raw)).toMatch(/^Message-ID: <.+>\r$/m);
    // -i: the lone "." line is content; the 8-bit text arrives byte for byte with CRLF line ends
    expect(body(received!.raw).equals(Buffer.from(output.replace(/\n/g, '\r\n'), 'utf8'))).toBe(true);
  });

  it("delivers with cronie's argv (-FCronDaemon -i -odi -oem -oi -t -f root): recipients from To:, sender qualified with this host's name", async ({ onTestFinished }) => {
    const { up, config } = await setup(onTestFinished);
    const input = 'To: ops@dest.test\nSubject: Cron <root@web1> run-parts /etc/cron.hourly\n\nhourly ran\n';
    const result = await sendmail(['-C', config, '-FCronDaemon', '-i', '-odi', '-oem', '-oi', '-t', '-f', 'root'], input);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    const [received] = await up.waitForMessages(1);
    expect(received!.envelope).toMatchObject({ mailFrom: `root@${hostname()}`, rcptTo: ['ops@dest.test'] });
    // no From header in the input: sendmail adds one with the -F full name
    expect(text(received!.raw)).toMatch(new RegExp(`^From: CronDaemon <root@${hostname().replace(/\./g, '\\.')}>\\r$`, 'm'));
  });

  it('refuses a bare user name (cron without MAILTO) with EX_NOUSER 67 and says to set MAILTO', async ({ onTestFinished }) => {
    const { up, relay, config } = await setup(onTestFinished);
    const result = await sendmail(['-C', config, '-FCronDaemon', '-i', '-B8BITMIME', '-oem', 'root'], 'Subject: x\n\ny\n');
    expect(result.code).toBe(67);
    expect(result.stderr).toContain('"root" is not a full address');
    expect(result.stderr).toContain('MAILTO=');
    expect(relay.logs.events('received')).toHaveLength(0);
    expect(up.messages).toHaveLength(0);
  });
});

describe.concurrent('PHP mail()', () => {
  it.skipIf(!hasPhp)('delivers through sendmail_path "sendmail -t -i": To, Cc and Bcc become recipients, Bcc is removed, -f from the 5th parameter', async ({ onTestFinished }) => {
    const { up, config } = await setup(onTestFinished);
    const script = [
      '$ok = mail("ops@dest.test", "Report für März", "line 1\\n.\\n.leading dot\\nÄÖÜ",',
      '  "From: Billing <billing@legacy.test>\\r\\nCc: cc@dest.test\\r\\nBcc: hidden@dest.test\\r\\nContent-Type: text/plain; charset=UTF-8",',
      '  "-fbounces@legacy.test");',
      'echo $ok ? "sent" : "failed";',
    ].join('\n');
    const result = await run(PHP, ['-n', '-d', `sendmail_path=${sendmailLink} -t -i -C ${config}`, '-r', script], '');
    expect(result).toMatchObject({ code: 0, stdout: 'sent', stderr: '' });
    const [received] = await up.waitForMessages(1);
    expect(received!.envelope.mailFrom).toBe('bounces@legacy.test');
    expect([...received!.envelope.rcptTo].sort()).toEqual(['cc@dest.test', 'hidden@dest.test', 'ops@dest.test']);
    const raw = text(received!.raw);
    expect(raw).not.toMatch(/^Bcc:/im);
    expect(raw).toMatch(/^Subject: Report für März\r$/m);
    expect(raw).toMatch(/^From: Billing <billing@legacy\.test>\r$/m);
    expect(body(received!.raw).toString('utf8')).toBe('line 1\r\n.\r\n.leading dot\r\nÄÖÜ\r\n');
  });

  it.skipIf(!hasPhp)('mail() returns false when the relay is down, and the reason reaches PHP\'s stderr', async () => {
    const port = await startRefusingPort();
    const result = await run(
      PHP,
      ['-n', '-d', `sendmail_path=${sendmailLink} -t -i`, '-r', 'echo mail("ops@dest.test", "s", "b") ? "sent" : "failed";'],
      '',
      childEnv({ SMTP_SIDECAR_RELAY: `127.0.0.1:${port}` }),
    );
    expect(result.stdout).toBe('failed');
    expect(result.stderr).toContain(`cannot reach the relay at 127.0.0.1:${port}`);
  });
});

describe.concurrent('standard input', () => {
  it('without -i a line with only "." ends the message; what follows is not sent', async ({ onTestFinished }) => {
    const { up, config } = await setup(onTestFinished);
    const result = await sendmail(['-C', config, 'ops@dest.test'], 'Subject: dot\n\nbefore\n.\nafter the dot\n');
    expect(result.code).toBe(0);
    const [received] = await up.waitForMessages(1);
    expect(body(received!.raw).toString()).toBe('before\r\n');
  });

  it('a last line without a newline is sent whole, ended with CRLF', async ({ onTestFinished }) => {
    const { up, config } = await setup(onTestFinished);
    expect((await sendmail(['-C', config, '-i', 'ops@dest.test'], 'Subject: eof\n\nfirst\r\nno newline at the end')).code).toBe(0);
    const [received] = await up.waitForMessages(1);
    expect(body(received!.raw).toString()).toBe('first\r\nno newline at the end\r\n');
  });

  it('8-bit text without MIME headers arrives byte for byte; a body without headers gets a blank line and a From', async ({ onTestFinished }) => {
    const { up, config } = await setup(onTestFinished);
    const latin1 = Buffer.from([0x53, 0x63, 0x68, 0xf6, 0x6e, 0x0a]); // "Schön" in ISO-8859-1, not UTF-8
    const input = Buffer.concat([Buffer.from('Grüße aus Köln\n', 'utf8'), latin1]);
    expect((await sendmail(['-C', config, '-f', 'app@legacy.test', 'ops@dest.test'], input)).code).toBe(0);
    const [received] = await up.waitForMessages(1);
    expect(text(received!.raw)).toMatch(/^From: app@legacy\.test\r$/m);
    expect(body(received!.raw).equals(Buffer.concat([Buffer.from('Grüße aus Köln\r\n', 'utf8'), latin1.subarray(0, 5), Buffer.from('\r\n')]))).toBe(true);
  });

  it('-bs: an SMTP session on stdin (a whole session written at once, LF line ends) is relayed and answered on stdout', async ({ onTestFinished }) => {
    const { up, config } = await setup(onTestFinished);
    const session = 'EHLO app.test\nMAIL FROM:<app@legacy.test>\nRCPT TO:<ops@dest.test>\nDATA\nSubject: bs\n\n..dot-stuffed\n.\nQUIT\n';
    const result = await run(process.execPath, [BUILT_MAIN, 'sendmail', '-bs', '-C', config], session);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^220 /);
    expect(result.stdout).toMatch(/^354 /m);
    expect(result.stdout).toMatch(/^250 2\.0\.0 Ok: delivered as /m);
    expect(result.stdout).toMatch(/^221 /m);
    const [received] = await up.waitForMessages(1);
    expect(body(received!.raw).toString()).toBe('.dot-stuffed\r\n');
  });
});

describe.concurrent('exit codes and the relay\'s answer', () => {
  it('EX_TEMPFAIL 75 when the relay is not reachable, naming the address and where it came from', async () => {
    const port = await startRefusingPort();
    const result = await sendmail(['--relay', `127.0.0.1:${port}`, 'ops@dest.test'], 'Subject: x\n\ny\n');
    expect(result.code).toBe(75);
    expect(result.stderr).toContain(`cannot reach the relay at 127.0.0.1:${port} (ECONNREFUSED)`);
    expect(result.stderr).toContain('NOT sent');
  });

  it('EX_NOUSER 67 with the upstream\'s 5.1.1 when the recipient is refused, and nothing is sent to the others', async ({ onTestFinished }) => {
    const { up, config } = await setup(onTestFinished, {}, { failRcpt: (a) => (a.startsWith('nobody') ? { code: 550, message: '5.1.1 nobody: user unknown' } : undefined) });
    const result = await sendmail(['-C', config, 'nobody@dest.test'], 'Subject: x\n\ny\n');
    expect(result.code).toBe(67);
    expect(result.stderr).toMatch(/refused the message: 550 5\.1\.1 .*user unknown/);
    expect(up.messages).toHaveLength(0);
  });

  it('EX_DATAERR 65 when a policy refuses the message (attachment limit), with the relay\'s 552 5.3.4', async ({ onTestFinished }) => {
    const { up, config } = await setup(onTestFinished, { limits: { maxAttachments: 0 } });
    const mime = [
      'Subject: with attachment',
      'MIME-Version: 1.0',
      'Content-Type: multipart/mixed; boundary="b"',
      '',
      '--b',
      'Content-Type: text/plain',
      '',
      'see attached',
      '--b',
      'Content-Type: application/octet-stream',
      'Content-Disposition: attachment; filename="a.bin"',
      'Content-Transfer-Encoding: base64',
      '',
      'AAEC',
      '--b--',
      '',
    ].join('\n');
    const result = await sendmail(['-C', config, 'ops@dest.test'], mime);
    expect(result.code).toBe(65);
    expect(result.stderr).toContain('552 5.3.4');
    expect(up.messages).toHaveLength(0);
  });

  it('EX_NOPERM 77 when the relay refuses this client (554 5.7.1)', async ({ onTestFinished }) => {
    const { config } = await setup(onTestFinished, { listen: { allowedClients: ['10.0.0.0/8'] } });
    const result = await sendmail(['-C', config, 'ops@dest.test'], 'Subject: x\n\ny\n');
    expect(result.code).toBe(77);
    expect(result.stderr).toContain('554 5.7.1');
  });

  it('EX_TEMPFAIL 75 with the relay\'s 451 when delivery must be final (waitSeconds -1) and the upstream defers', async ({ onTestFinished }) => {
    const { config } = await setup(onTestFinished, { delivery: { waitSeconds: -1 } }, { failData: { code: 451, message: '4.3.0 try later' } });
    const result = await sendmail(['-C', config, 'ops@dest.test'], 'Subject: x\n\ny\n');
    expect(result.code).toBe(75);
    expect(result.stderr).toMatch(/refused the message: 451 4\.4\.1/);
  });

  it('more recipients than the relay takes in one message (452 4.5.3): sent in several transactions, exit 0', async ({ onTestFinished }) => {
    const { up, config } = await setup(onTestFinished, { listen: { maxRecipients: 2 } });
    const to = ['a@dest.test', 'b@dest.test', 'c@dest.test', 'd@dest.test', 'e@dest.test'];
    expect((await sendmail(['-C', config, ...to], 'Subject: many\n\nhi\n')).code).toBe(0);
    const received = await up.waitForMessages(3);
    expect(received.flatMap((m) => m.envelope.rcptTo).sort()).toEqual(to);
  });

  it('EX_USAGE 64 for an unknown option, for no recipients, and for -bp (with the command to use instead)', async () => {
    const unknown = await sendmail(['-k', 'ops@dest.test'], '');
    expect(unknown.code).toBe(64);
    expect(unknown.stderr).toContain('unknown option -k');
    const none = await sendmail(['--relay', '127.0.0.1:1', '-t'], 'Subject: nobody\n\nx\n');
    expect(none.code).toBe(64);
    expect(none.stderr).toContain('no recipients');
    const bp = await sendmail(['-bp'], '');
    expect(bp).toMatchObject({ code: 64 });
    expect(bp.stderr).toContain('smtp-sidecar queue list');
  });

  it('-bi (newaliases) and -q (run the queue) succeed without contacting the relay', async () => {
    const port = await startRefusingPort();
    for (const args of [['-bi'], ['-I'], ['-q'], ['-q1h']]) {
      expect(await sendmail([...args, '--relay', `127.0.0.1:${port}`], '')).toMatchObject({ code: 0, stderr: '' });
    }
  });

  it('EX_CONFIG 78 when the config file named with -C is not valid', async () => {
    const bad = join(dir, 'bad.json');
    await writeFile(bad, JSON.stringify({ listen: { port: 'twenty-five' } }));
    const result = await sendmail(['-C', bad, 'ops@dest.test'], 'Subject: x\n\ny\n');
    expect(result.code).toBe(78);
    expect(result.stderr).toContain('listen.port');
  });
});
