#!/usr/bin/env node
/**
 * `npm run bench`: end-to-end benchmark of smtp-sidecar against the same load sent straight
 * to the same sink. See bench/README.md.
 *
 * Does: start the sink (bench/sink.mjs, child process), then for each scenario send the load
 *   directly to the sink and through a freshly started relay (`node dist/main.js start`,
 *   child process, spool in a temp dir), measure throughput (first send → last sink
 *   receipt), latency (sink receipt − client DATA end, and client DATA end → 250), the
 *   relay's RSS (VmRSS sampled every 50 ms, VmHWM after resetting it) and CPU time, and
 *   print a table plus the targets of issue 6; write JSON to bench/results/<timestamp>.json
 *   (and --json PATH).
 * Never: use an address other than 127.0.0.1; run a scenario longer than --timeout seconds
 *   (it is reported as incomplete); kill a process it did not spawn (by PID, also on error).
 * Assumes: dist/ is built (`npm run build`, which `npm run bench` does); Linux /proc.
 */
import { fork, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { nowMs, parseSize, runLoad } from './smtp-load.mjs';

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(BENCH_DIR, '..');
const MIB = 1024 * 1024;

const HELP = `Usage: node bench/run.mjs [options]     (npm run bench -- [options])

With no option, runs the presets: small, large, huge, burst, latency, cpm1, cpm20.
  --scenario NAME   one preset: small | large | huge | burst | latency | cpm1 | cpm20 (flags below override it)
  --size S          message size: 10k | 1m | 25m | <bytes>
  --sessions N      concurrent SMTP client sessions
  --count N         messages in total
  --per-message     a new connection for every message (connect, greeting, EHLO, ..., QUIT)
  --wait S          relay delivery.waitSeconds (default 10, the relay's default)
  --fsync on|off    relay delivery.fsync (default on)
  --log LEVEL       relay log.level (default warn)
  --max-connections N  upstream maxConnections of the relay (default 10)
  --concurrency N   relay delivery.concurrency (default 20)
  --dist DIR        relay build to run (default: dist/ of this checkout; for prototypes, a patched copy)
  --threadpool N    run the relay with UV_THREADPOOL_SIZE=N (experiment; default: unset = 4)
  --node-options S  run the relay with NODE_OPTIONS=S, e.g. "--max-semi-space-size=4" (memory tuning, see README)
  --no-direct       skip the direct-to-sink run
  --profile DIR     run the relay with --cpu-prof --cpu-prof-dir=DIR (summarise with bench/profile-summary.mjs)
  --timeout S       abort a scenario after S seconds (default 120)
  --json PATH       also write the JSON result there
`;

/** The presets the issues' targets need (issue 6; issue 11 added cpm1, cpm20, greeting and idle/peak RSS). */
const PRESETS = {
  small: { size: '10k', sessions: 20, count: 4000, what: 'throughput, 10 KiB x 20 sessions, connection reused (target: relay >= 15% of direct)' },
  large: { size: '1m', sessions: 20, count: 400, what: 'throughput, 1 MiB x 20 sessions (targets: relay >= 45% of direct, peak RSS < 150 MB)' },
  huge: { size: '25m', sessions: 1, count: 1, what: 'one 25 MiB message (target: relay peak RSS growth over idle < 64 MiB)' },
  burst: { size: '1m', sessions: 50, count: 50, what: '50 concurrent 1 MiB messages (target: relay peak RSS < 250 MiB)' },
  latency: { size: '10k', sessions: 1, count: 300, wait: 10, what: 'latency, 1 session, 10 KiB, waitSeconds 10 (target: p50 added < 5 ms)' },
  cpm1: { size: '10k', sessions: 1, count: 1000, perMessage: true, what: 'connection per message, 10 KiB x 1 session (targets: relay >= 30% of direct, greeting p50 < 1 ms)' },
  cpm20: { size: '10k', sessions: 20, count: 4000, perMessage: true, what: 'connection per message, 10 KiB x 20 sessions (target: relay >= 15% of direct)' },
};

function parseCli(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      scenario: { type: 'string' },
      size: { type: 'string' },
      sessions: { type: 'string' },
      count: { type: 'string' },
      'per-message': { type: 'boolean', default: false },
      wait: { type: 'string' },
      fsync: { type: 'string' },
      log: { type: 'string' },
      'max-connections': { type: 'string' },
      concurrency: { type: 'string' },
      'no-direct': { type: 'boolean', default: false },
      threadpool: { type: 'string' },
      'node-options': { type: 'string' },
      dist: { type: 'string' },
      profile: { type: 'string' },
      timeout: { type: 'string' },
      json: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  const int = (name, v, min = 1) => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name}: expected an integer >= ${min}, got "${v}"`);
    return n;
  };
  if (values.fsync !== undefined && !['on', 'off'].includes(values.fsync)) throw new Error('--fsync: on or off');
  if (values.scenario !== undefined && !(values.scenario in PRESETS)) throw new Error(`--scenario: one of ${Object.keys(PRESETS).join(', ')}`);
  const overrides = {
    ...(values.size !== undefined ? { size: values.size } : {}),
    ...(values.sessions !== undefined ? { sessions: int('sessions', values.sessions) } : {}),
    ...(values.count !== undefined ? { count: int('count', values.count) } : {}),
    ...(values.wait !== undefined ? { wait: Number(values.wait) } : {}),
    ...(values['per-message'] ? { perMessage: true } : {}),
  };
  if (overrides.wait !== undefined && !(overrides.wait >= -1)) throw new Error('--wait: a number >= -1');
  let names;
  if (values.scenario !== undefined) names = [values.scenario];
  else if (Object.keys(overrides).length > 0) names = ['custom'];
  else names = Object.keys(PRESETS);
  const scenarios = names.map((name) => {
    const base = PRESETS[name] ?? { ...PRESETS.small, what: 'custom load' };
    const s = { name, wait: 10, perMessage: false, ...base, ...overrides };
    return { ...s, sizeBytes: parseSize(String(s.size)) };
  });
  return {
    help: values.help,
    scenarios,
    relay: {
      fsync: (values.fsync ?? 'on') === 'on',
      logLevel: values.log ?? 'warn',
      maxConnections: int('max-connections', values['max-connections']) ?? 10,
      concurrency: int('concurrency', values.concurrency) ?? 20,
      profileDir: values.profile === undefined ? undefined : resolve(values.profile),
      threadpool: int('threadpool', values.threadpool),
      nodeOptions: values['node-options'],
      distDir: resolve(values.dist ?? join(REPO, 'dist')),
    },
    direct: !values['no-direct'],
    timeoutMs: (int('timeout', values.timeout) ?? 120) * 1000,
    jsonPath: values.json,
  };
}

// ---------- sink (child process) ----------

async function startSink() {
  const child = fork(join(BENCH_DIR, 'sink.mjs'), [], { cwd: REPO, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const pending = new Map();
  child.on('message', (m) => {
    const waiter = pending.get(m.type);
    if (waiter) {
      pending.delete(m.type);
      waiter(m);
    }
  });
  const request = (type, replyType = type) =>
    new Promise((res, rej) => {
      const timer = setTimeout(() => rej(new Error(`sink did not answer ${type}`)), 10_000);
      pending.set(replyType, (m) => (clearTimeout(timer), res(m)));
      child.send({ type });
    });
  const ready = await Promise.race([
    new Promise((res) => pending.set('ready', res)),
    new Promise((_, rej) => setTimeout(() => rej(new Error('sink did not start within 10 s')), 10_000)),
  ]);
  return {
    pid: child.pid,
    port: ready.port,
    reset: () => request('reset', 'reset-done'),
    count: () => request('count'),
    stats: () => request('stats'),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.send({ type: 'stop' });
      const exited = once(child, 'exit');
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
    },
  };
}

// ---------- relay (child process) ----------

async function freePort() {
  const server = createServer();
  await new Promise((res, rej) => server.listen(0, '127.0.0.1', res).once('error', rej));
  const { port } = server.address();
  await new Promise((res) => server.close(res));
  return port;
}

/** Reads VmRSS / VmHWM (KiB → bytes) of a process. */
async function memoryOf(pid) {
  const text = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = (key) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN) * 1024;
  return { rssBytes: kib('VmRSS'), hwmBytes: kib('VmHWM'), anonBytes: kib('RssAnon'), fileBytes: kib('RssFile') };
}

/** PSS (shared pages divided among the processes that map them) from smaps_rollup; NaN if unreadable. */
async function pssOf(pid) {
  try {
    const text = await readFile(`/proc/${pid}/smaps_rollup`, 'utf8');
    return Number(/^Pss:\s+(\d+) kB/m.exec(text)?.[1] ?? NaN) * 1024;
  } catch {
    return NaN;
  }
}

/** utime and stime of a process (all its threads) in ms (USER_HZ is 100 on Linux). */
async function cpuMsOf(pid) {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { userMs: Number(fields[11]) * 10, systemMs: Number(fields[12]) * 10 };
}

/** Resets VmHWM to the current RSS (Linux clear_refs "5"); false if not permitted. */
async function resetPeak(pid) {
  try {
    await writeFile(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

async function waitForGreeting(port, deadlineMs) {
  const { connect } = await import('node:net');
  while (nowMs() < deadlineMs) {
    const ok = await new Promise((res) => {
      const s = connect({ port, host: '127.0.0.1' });
      const done = (v) => (s.destroy(), res(v));
      s.once('data', (d) => {
        s.end('QUIT\r\n');
        done(d.toString('latin1').startsWith('220'));
      });
      s.once('error', () => done(false));
      setTimeout(() => done(false), 1000);
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('relay did not greet within the start timeout');
}

async function startRelay({ sinkPort, wait, relay, label }) {
  const dir = await mkdtemp(join(tmpdir(), 'smtp-sidecar-bench-'));
  const port = await freePort();
  const config = {
    listen: { host: '127.0.0.1', port, hostname: 'bench-relay.test', maxClients: 500, maxMessageSizeMB: 35, shutdownGraceSeconds: 5 },
    limits: { maxAttachmentsTotalMB: 100 },
    delivery: { spoolDir: join(dir, 'spool'), outboxDir: join(dir, 'outbox'), waitSeconds: wait, fsync: relay.fsync, concurrency: relay.concurrency },
    upstreams: [
      { name: 'sink', host: '127.0.0.1', port: sinkPort, hostname: 'bench-relay.test', security: 'none', auth: { type: 'none' }, maxConnections: relay.maxConnections },
    ],
    log: { level: relay.logLevel },
    http: { enabled: false },
  };
  const configPath = join(dir, 'config.json');
  await writeFile(configPath, JSON.stringify(config, null, 2));
  const nodeArgs = [];
  if (relay.profileDir !== undefined) {
    await mkdir(relay.profileDir, { recursive: true });
    nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${relay.profileDir}`, `--cpu-prof-name=relay-${label}-${Date.now()}.cpuprofile`);
  }
  const child = spawn(process.execPath, [...nodeArgs, join(relay.distDir, 'main.js'), 'start', '--config', configPath], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      ...(relay.threadpool === undefined ? {} : { UV_THREADPOOL_SIZE: String(relay.threadpool) }),
      // only the relay's: the runner and the sink keep whatever NODE_OPTIONS the bench was started with
      ...(relay.nodeOptions === undefined ? {} : { NODE_OPTIONS: relay.nodeOptions }),
    },
  });
  const output = { stdoutBytes: 0, stdoutLines: 0, tail: [], stderr: '' };
  child.stdout.on('data', (chunk) => {
    output.stdoutBytes += chunk.length;
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) output.stdoutLines += 1;
    output.tail.push(chunk.toString('utf8').slice(-2000));
    if (output.tail.length > 5) output.tail.shift();
  });
  child.stderr.on('data', (chunk) => {
    output.stderr = (output.stderr + chunk.toString('utf8')).slice(-4000);
  });
  const exited = once(child, 'exit');
  try {
    await Promise.race([
      waitForGreeting(port, nowMs() + 15_000),
      exited.then(([code]) => {
        throw new Error(`relay exited at start with code ${code}: ${output.stderr || output.tail.join('')}`);
      }),
    ]);
  } catch (err) {
    child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    pid: child.pid,
    port,
    output,
    /** SIGTERM, wait (bounded) for a clean exit; SIGKILL otherwise. */
    async stop() {
      const startedMs = nowMs();
      let exit = { code: child.exitCode, signal: child.signalCode };
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        let killTimer;
        const forced = new Promise((res) => {
          killTimer = setTimeout(() => {
            child.kill('SIGKILL');
            res('forced');
          }, 20_000);
        });
        const how = await Promise.race([exited.then(() => 'clean'), forced]);
        clearTimeout(killTimer);
        await exited;
        exit = { code: child.exitCode, signal: child.signalCode, how, stopMs: Math.round(nowMs() - startedMs) };
      }
      await rm(dir, { recursive: true, force: true });
      return exit;
    },
  };
}

// ---------- measurement ----------

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index];
}

/** Runs one load against `port`, waits until the sink has every accepted message, returns figures. */
async function measure({ sink, port, scenario, idPrefix, deadlineMs }) {
  await sink.reset();
  const load = await runLoad({ port, sessions: scenario.sessions, count: scenario.count, sizeBytes: scenario.sizeBytes, idPrefix, deadlineMs, perMessage: scenario.perMessage });
  const accepted = load.messages.filter((m) => m.ok);
  let count = 0;
  while (nowMs() < deadlineMs) {
    ({ count } = await sink.count());
    if (count >= accepted.length) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const stats = await sink.stats();
  const receipts = new Map(stats.receipts);
  const latencies = [];
  const replyLatencies = [];
  let lastReceiptMs = load.startMs;
  let bytes = 0;
  for (const m of load.messages) {
    const at = receipts.get(m.id);
    if (at !== undefined) {
      bytes += m.sizeBytes;
      lastReceiptMs = Math.max(lastReceiptMs, at);
      if (m.ok) latencies.push(at - m.dataEndMs);
    }
    if (m.ok) replyLatencies.push(m.replyMs - m.dataEndMs);
  }
  latencies.sort((a, b) => a - b);
  replyLatencies.sort((a, b) => a - b);
  const greetings = [...load.greetingMs].sort((a, b) => a - b);
  const seconds = (lastReceiptMs - load.startMs) / 1000;
  const complete = receipts.size >= scenario.count && accepted.length === scenario.count;
  return {
    complete,
    sent: load.messages.length,
    accepted: accepted.length,
    received: receipts.size,
    duplicates: stats.duplicates,
    seconds,
    msgsPerSecond: receipts.size / seconds,
    mibPerSecond: bytes / MIB / seconds,
    latencyMs: { p50: percentile(latencies, 50), p99: percentile(latencies, 99), max: latencies.at(-1) ?? NaN },
    replyLatencyMs: { p50: percentile(replyLatencies, 50), p99: percentile(replyLatencies, 99) },
    greetingMs: { count: greetings.length, p50: percentile(greetings, 50), p99: percentile(greetings, 99) },
    errors: load.errors.slice(0, 10),
    sessionsOpened: load.sessionsOpened,
  };
}

/** Warm-up: a few small messages so that JIT and upstream pool connections are in place. */
async function warmUp({ sink, port, sessions, deadlineMs }) {
  const count = Math.min(50, Math.max(10, sessions * 2));
  await measure({ sink, port, scenario: { sessions: Math.min(sessions, 20), count, sizeBytes: 10 * 1024, perMessage: false }, idPrefix: 'w', deadlineMs });
}

async function runScenario(scenario, options, sink) {
  const result = { loadAverageAtStart: loadavg()[0], scenario: scenario.name, what: scenario.what, size: scenario.size, sizeBytes: scenario.sizeBytes, sessions: scenario.sessions, count: scenario.count, perMessage: scenario.perMessage, waitSeconds: scenario.wait };
  if (options.direct) {
    const deadlineMs = nowMs() + options.timeoutMs;
    await warmUp({ sink, port: sink.port, sessions: scenario.sessions, deadlineMs });
    result.direct = await measure({ sink, port: sink.port, scenario, idPrefix: 'd', deadlineMs });
    result.direct.sinkPid = sink.pid;
  }
  const relay = await startRelay({ sinkPort: sink.port, wait: scenario.wait, relay: options.relay, label: scenario.name });
  const samples = { maxRssBytes: 0, count: 0 };
  let sampler;
  try {
    await new Promise((r) => setTimeout(r, 500));
    const idle = { ...(await memoryOf(relay.pid)), pssBytes: await pssOf(relay.pid) };
    const peakReset = await resetPeak(relay.pid);
    sampler = setInterval(() => {
      memoryOf(relay.pid).then(
        (m) => {
          samples.count += 1;
          samples.maxRssBytes = Math.max(samples.maxRssBytes, m.rssBytes);
        },
        () => undefined,
      );
    }, 50);
    const deadlineMs = nowMs() + options.timeoutMs;
    await warmUp({ sink, port: relay.port, sessions: scenario.sessions, deadlineMs });
    const cpuBefore = await cpuMsOf(relay.pid);
    const logLinesBefore = relay.output.stdoutLines;
    const figures = await measure({ sink, port: relay.port, scenario, idPrefix: 'r', deadlineMs });
    const cpuAfter = await cpuMsOf(relay.pid);
    clearInterval(sampler);
    sampler = undefined;
    const end = await memoryOf(relay.pid);
    const peakRssBytes = Math.max(peakReset ? end.hwmBytes : 0, samples.maxRssBytes);
    result.relay = {
      ...figures,
      pid: relay.pid,
      logLevel: options.relay.logLevel,
      fsync: options.relay.fsync,
      idleRssBytes: idle.rssBytes,
      // RSS = anonymous (the relay's own heap and libraries' data) + file-backed (mostly the node binary's pages, shared with every node process)
      idleRssAnonBytes: idle.anonBytes,
      idleRssFileBytes: idle.fileBytes,
      idlePssBytes: idle.pssBytes,
      peakRssBytes,
      peakRssGrowthBytes: peakRssBytes - idle.rssBytes,
      peakSource: peakReset ? 'VmHWM after clear_refs + 50 ms VmRSS samples' : '50 ms VmRSS samples only',
      rssSamples: samples.count,
      cpuUserMs: cpuAfter.userMs - cpuBefore.userMs,
      cpuSystemMs: cpuAfter.systemMs - cpuBefore.systemMs,
      cpuMsPerMessage: (cpuAfter.userMs + cpuAfter.systemMs - cpuBefore.userMs - cpuBefore.systemMs) / Math.max(1, figures.received),
      logLines: relay.output.stdoutLines - logLinesBefore,
    };
  } finally {
    if (sampler !== undefined) clearInterval(sampler);
    const exit = await relay.stop();
    if (result.relay !== undefined) result.relay.exit = exit;
    else result.relayExit = exit;
  }
  result.loadAverageAtEnd = loadavg()[0];
  if (result.direct && result.relay) result.ratio = result.relay.msgsPerSecond / result.direct.msgsPerSecond;
  result.target = targetOf(result);
  return result;
}

const MB = 1e6;

/** The targets a scenario checks (issue 11's, which replaced issue 6's ratios 0.30 / 0.60). */
function targetOf(r) {
  const relay = r.relay;
  if (relay === undefined) return [];
  const ratio = (min) => (r.ratio === undefined ? [] : [{ name: `relay/direct >= ${min.toFixed(2)}`, value: round(r.ratio, 3), met: r.ratio >= min && relay.complete }]);
  switch (r.scenario) {
    case 'small':
      return ratio(0.15);
    case 'large':
      return [...ratio(0.45), { name: 'peak RSS < 150 MB', value: `${round(relay.peakRssBytes / MB, 1)} MB`, met: relay.peakRssBytes < 150 * MB && relay.complete }];
    case 'huge':
      return [{ name: 'peak RSS growth < 64 MiB', value: `${round(relay.peakRssGrowthBytes / MIB, 1)} MiB`, met: relay.peakRssGrowthBytes < 64 * MIB && relay.complete }];
    case 'burst':
      return [{ name: 'peak RSS < 250 MiB', value: `${round(relay.peakRssBytes / MIB, 1)} MiB`, met: relay.peakRssBytes < 250 * MIB && relay.complete }];
    case 'latency': {
      if (r.direct === undefined) return [];
      const added = relay.latencyMs.p50 - r.direct.latencyMs.p50;
      const addedReply = relay.replyLatencyMs.p50 - r.direct.replyLatencyMs.p50;
      return [{
        name: 'p50 added latency (sink receipt - client DATA end) < 5 ms',
        value: `${round(added, 2)} ms (as the client sees it, DATA end -> 250: ${round(addedReply, 2)} ms)`,
        met: added < 5 && relay.complete,
      }];
    }
    case 'cpm1':
      return [
        ...ratio(0.3),
        {
          name: 'time to greeting p50 < 1 ms',
          value: `${round(relay.greetingMs.p50, 3)} ms (p99 ${round(relay.greetingMs.p99, 3)}; direct ${round(r.direct?.greetingMs.p50, 3)})`,
          met: relay.greetingMs.p50 < 1 && relay.complete,
        },
      ];
    case 'cpm20':
      return ratio(0.15);
    default:
      return [];
  }
}

function round(v, digits) {
  if (!Number.isFinite(v)) return v;
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

// ---------- output ----------

function table(results) {
  const rows = [['scenario', 'mode', 'size', 'sess', 'conn', 'msgs', 'ok', 'secs', 'msgs/s', 'MiB/s', 'p50 ms', 'p99 ms', 'reply p50', 'greet p50/p99 ms', 'idle RSS', 'peak RSS', 'RSS growth', 'CPU ms/msg', 'ratio']];
  const fmt = (v, d = 1) => (Number.isFinite(v) ? v.toFixed(d) : '-');
  for (const r of results) {
    for (const mode of ['direct', 'relay']) {
      const m = r[mode];
      if (m === undefined) continue;
      rows.push([
        r.scenario,
        mode + (m.complete ? '' : ' (INCOMPLETE)'),
        r.size,
        String(r.sessions),
        r.perMessage ? 'per msg' : 'reused',
        String(r.count),
        String(m.received),
        fmt(m.seconds, 2),
        fmt(m.msgsPerSecond, 0),
        fmt(m.mibPerSecond, 1),
        fmt(m.latencyMs.p50, 2),
        fmt(m.latencyMs.p99, 2),
        fmt(m.replyLatencyMs.p50, 2),
        `${fmt(m.greetingMs.p50, 2)}/${fmt(m.greetingMs.p99, 2)}`,
        mode === 'relay' ? `${fmt(m.idleRssBytes / MIB)} MiB` : '-',
        mode === 'relay' ? `${fmt(m.peakRssBytes / MIB)} MiB` : '-',
        mode === 'relay' ? `${fmt(m.peakRssGrowthBytes / MIB)} MiB` : '-',
        mode === 'relay' ? fmt(m.cpuMsPerMessage, 2) : '-',
        mode === 'relay' && r.ratio !== undefined ? fmt(r.ratio, 3) : '',
      ]);
    }
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  return rows.map((row) => row.map((cell, i) => cell.padEnd(widths[i])).join('  ')).join('\n');
}

function targetsText(results) {
  const lines = [];
  const line = (t, scenario) => lines.push(`  ${t.met ? 'MET    ' : 'NOT MET'}  ${scenario.padEnd(8)} ${t.name}: ${t.value}`);
  for (const r of results) for (const t of r.target) line(t, r.scenario);
  // every relay of the run is started the same way (no OAuth2 upstream): the largest idle RSS counts
  const relays = results.filter((r) => r.relay !== undefined).map((r) => r.relay);
  if (relays.length > 0) {
    const worst = relays.reduce((a, b) => (b.idleRssBytes > a.idleRssBytes ? b : a));
    const mb = (v) => `${round(v / MB, 1)} MB`;
    line(
      {
        name: 'idle RSS (0.5 s after start, no OAuth2 upstream) < 60 MB, largest of the run',
        value: `${mb(worst.idleRssBytes)} (anonymous ${mb(worst.idleRssAnonBytes)} + file-backed ${mb(worst.idleRssFileBytes)}; PSS ${mb(worst.idlePssBytes)})`,
        met: worst.idleRssBytes < 60 * MB,
      },
      'all',
    );
  }
  lines.push('  (OAuth2 token requests = one per token lifetime: proven by the test suite\'s token-cache tests, not measured here)');
  return lines.join('\n');
}

async function main() {
  let options;
  try {
    options = parseCli(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`bench: ${err.message}\n\n${HELP}`);
    return 2;
  }
  if (options.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const startedAt = new Date();
  const sink = await startSink();
  const results = [];
  try {
    for (const scenario of options.scenarios) {
      process.stderr.write(`bench: ${scenario.name}: ${scenario.what} ...\n`);
      try {
        const r = await runScenario(scenario, options, sink);
        results.push(r);
        for (const m of [r.direct, r.relay]) if (m && m.errors.length > 0) process.stderr.write(`bench:   errors: ${m.errors.slice(0, 3).join(' | ')}\n`);
      } catch (err) {
        process.stderr.write(`bench: ${scenario.name} failed: ${err.stack ?? err}\n`);
        results.push({ scenario: scenario.name, error: String(err.message ?? err) });
      }
    }
  } finally {
    await sink.stop();
  }
  const ok = results.filter((r) => r.error === undefined);
  process.stdout.write(`\nsmtp-sidecar bench, ${startedAt.toISOString()}, ${cpus().length} CPUs, node ${process.version}, relay fsync ${options.relay.fsync ? 'on' : 'off'}, log ${options.relay.logLevel}, upstream maxConnections ${options.relay.maxConnections}${options.relay.threadpool !== undefined ? `, UV_THREADPOOL_SIZE ${options.relay.threadpool}` : ''}${options.relay.nodeOptions !== undefined ? `, relay NODE_OPTIONS "${options.relay.nodeOptions}"` : ''}\n`);
  process.stdout.write(`${table(ok)}\n1-minute load average during the run: ${ok.map((r) => `${r.scenario} ${r.loadAverageAtStart.toFixed(1)}-${r.loadAverageAtEnd.toFixed(1)}`).join(', ')} (above ~1 other processes compete for the 2 cores: figures are noisy; compare ratios within one run)\n\nTargets (issues 6 and 11):\n${targetsText(ok)}\n`);
  const report = {
    startedAt: startedAt.toISOString(),
    machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, node: process.version },
    options: { relay: options.relay, direct: options.direct, timeoutMs: options.timeoutMs },
    results,
  };
  const resultsDir = join(BENCH_DIR, 'results');
  await mkdir(resultsDir, { recursive: true });
  const file = join(resultsDir, `${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
  await writeFile(file, `${JSON.stringify(report, null, 2)}\n`);
  if (options.jsonPath !== undefined) await writeFile(resolve(options.jsonPath), `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(`\nJSON: ${file}${options.jsonPath !== undefined ? ` and ${resolve(options.jsonPath)}` : ''}\n`);
  return results.some((r) => r.error !== undefined) ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`bench: ${err.stack ?? err}\n`);
    process.exitCode = 1;
  },
);
