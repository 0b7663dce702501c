#!/usr/bin/env node
/**
 * `node bench/bodies.mjs` (after `npm run build`): peak RSS of the relay for N concurrent large
 * messages of each body kind (issue 12 finding 1: memory must not depend on the kind of body).
 *
 * Does: for each kind (text/plain, text/html, one base64 attachment), start a fresh relay
 *   (`node dist/main.js start`, child process, no upstream: messages go to the outbox; spool
 *   and outbox in a temp dir), send N messages of SIZE bytes at once over N raw sockets, sample
 *   the relay's VmRSS every 20 ms and read VmHWM (reset after warm-up), and print idle, peak
 *   and growth per kind and the ratio of each kind's peak to the attachment kind's peak.
 * Never: use an address other than 127.0.0.1; kill a process it did not spawn (by PID).
 * Assumes: Linux /proc; dist/ is built.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const MIB = 1024 * 1024;
const { values } = parseArgs({ options: { count: { type: 'string', default: '20' }, 'size-mib': { type: 'string', default: '34' }, kinds: { type: 'string', default: 'text,html,attachment' } } });
const COUNT = Number(values.count);
const SIZE = Math.floor(Number(values['size-mib']) * MIB);

function message(kind) {
  const line = `${'Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod '.slice(0, 74)}\r\n`;
  const lines = (bytes) => line.repeat(Math.floor(bytes / line.length));
  const head = 'From: app@legacy.test\r\nTo: alice@dest.test\r\nSubject: bench bodies\r\nMIME-Version: 1.0\r\n';
  if (kind === 'text') return Buffer.from(`${head}Content-Type: text/plain; charset=us-ascii\r\n\r\n${lines(SIZE)}`);
  if (kind === 'html') return Buffer.from(`${head}Content-Type: text/html; charset=us-ascii\r\n\r\n<html><body><p>\r\n${lines(SIZE)}</p></body></html>\r\n`);
  // the same message size, most of it one base64 attachment (76-character lines)
  const raw = Buffer.alloc(Math.floor(((SIZE - 4096) * 3) / 4 / 78) * 76, 0x5a).toString('base64').replace(/.{76}/g, '$&\r\n');
  return Buffer.from(
    `${head}Content-Type: multipart/mixed; boundary="b1"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nReport attached.\r\n--b1\r\nContent-Type: application/octet-stream; name=report.bin\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=report.bin\r\n\r\n${raw}\r\n--b1--\r\n`,
  );
}

async function rssKiB(pid, field) {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)[1]);
}

function smtp(port) {
  const socket = connect({ port, host: '127.0.0.1' });
  let buffer = '';
  const waiters = [];
  socket.on('data', (c) => {
    buffer += c.toString('latin1');
    let at;
    while ((at = buffer.indexOf('\r\n')) !== -1) {
      const l = buffer.slice(0, at);
      buffer = buffer.slice(at + 2);
      if (l[3] !== '-') waiters.shift()?.(l);
    }
  });
  const next = () => new Promise((r) => waiters.push(r));
  return { socket, next, cmd: (line) => (socket.write(`${line}\r\n`), next()) };
}

async function send(port, payload) {
  const c = smtp(port);
  try {
    await c.next();
    await c.cmd('EHLO bench.test');
    await c.cmd('MAIL FROM:<app@legacy.test>');
    await c.cmd('RCPT TO:<alice@dest.test>');
    await c.cmd('DATA');
    const data = Buffer.concat([payload, Buffer.from('\r\n.\r\n')]);
    const reply = c.next();
    for (let at = 0; at < data.length; at += 256 * 1024) if (!c.socket.write(data.subarray(at, at + 256 * 1024))) await once(c.socket, 'drain');
    return await reply;
  } finally {
    c.socket.destroy();
  }
}

async function runKind(kind) {
  const dir = await mkdtemp(join(tmpdir(), 'smtp-sidecar-bodies-'));
  const config = {
    listen: { host: '127.0.0.1', port: 0, hostname: 'bench.test', maxClients: COUNT + 10, maxMessageSizeMB: Math.ceil(SIZE / MIB) + 1 },
    limits: { maxAttachmentsTotalMB: 1000 },
    delivery: { spoolDir: join(dir, 'spool'), outboxDir: join(dir, 'outbox'), waitSeconds: 0, fsync: false },
    http: { enabled: false },
    log: { level: 'info' },
  };
  await writeFile(join(dir, 'config.json'), JSON.stringify(config));
  const child = spawn(process.execPath, [join(REPO, 'dist', 'main.js'), 'start', '--config', join(dir, 'config.json')], { cwd: dir, stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const port = await new Promise((res, rej) => {
      let buf = '';
      child.stdout.on('data', (c) => {
        buf += c.toString();
        const m = /"msg":"listening"[^\n]*"port":(\d+)|"port":(\d+)[^\n]*"msg":"listening"/.exec(buf);
        if (m) res(Number(m[1] ?? m[2]));
      });
      child.once('exit', (code) => rej(new Error(`relay exited ${code}`)));
    });
    child.stdout.resume();
    await send(port, Buffer.from('From: a@legacy.test\r\nSubject: warm-up\r\n\r\nhi\r\n'));
    const idle = await rssKiB(child.pid, 'VmRSS');
    await writeFile(`/proc/${child.pid}/clear_refs`, '5');
    const payload = message(kind);
    let peak = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        peak = Math.max(peak, await rssKiB(child.pid, 'VmRSS'));
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const started = performance.now();
    const replies = await Promise.all(Array.from({ length: COUNT }, () => send(port, payload)));
    const seconds = (performance.now() - started) / 1000;
    sampling = false;
    await sampler;
    peak = Math.max(peak, await rssKiB(child.pid, 'VmHWM'));
    const ok = replies.filter((r) => r.startsWith('250')).length;
    return { kind, messageMiB: payload.length / MIB, ok, seconds, idleMiB: idle / 1024, peakMiB: peak / 1024, growthMiB: (peak - idle) / 1024, replies: [...new Set(replies)].slice(0, 3) };
  } finally {
    child.kill('SIGTERM');
    await once(child, 'exit');
    await rm(dir, { recursive: true, force: true });
  }
}

const results = [];
for (const kind of values.kinds.split(',')) results.push(await runKind(kind));
const base = results.find((r) => r.kind === 'attachment');
console.log(`${COUNT} concurrent messages of ${(SIZE / MIB).toFixed(0)} MiB each, one fresh relay per kind`);
console.log('kind        msg MiB  ok   secs  idle MiB  peak MiB  growth MiB  peak / attachment peak');
for (const r of results) {
  console.log(
    `${r.kind.padEnd(10)}  ${r.messageMiB.toFixed(1).padStart(7)}  ${String(r.ok).padStart(2)}  ${r.seconds.toFixed(1).padStart(5)}  ${r.idleMiB.toFixed(1).padStart(8)}  ${r.peakMiB.toFixed(1).padStart(8)}  ${r.growthMiB.toFixed(1).padStart(10)}  ${base ? (r.peakMiB / base.peakMiB).toFixed(2) : '-'}`,
  );
  if (r.ok !== COUNT) console.log(`  replies: ${r.replies.join(' | ')}`);
}
