#!/usr/bin/env node
/**
 * Summarises a V8 .cpuprofile (from `node --cpu-prof`): self time by function (+ file:line)
 * and by package.
 *
 * Usage: node bench/profile-summary.mjs FILE.cpuprofile [--top N] [--inclusive [--filter REGEXP]]
 *
 * Does: add each sample's time delta to the node it hit (self time) and to every distinct
 *   function on its stack (inclusive time, recursion counted once); group nodes by
 *   "function url:line" and by package: node_modules/<pkg> (scoped names kept),
 *   smtp-sidecar's own dist/<folder>, node:<module> for Node internals, or V8's
 *   pseudo-nodes ((garbage collector), (program), (idle)).
 * Never: write anything; guess times (only sampled deltas are summed).
 * Assumes: the Chrome DevTools .cpuprofile shape {nodes, samples, timeDeltas, startTime, endTime}.
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';

export function packageOf(url, functionName) {
  if (!url) return functionName.startsWith('(') ? functionName : '(native/builtin)';
  const path = url.replace(/^file:\/\//, '');
  const nm = path.lastIndexOf('/node_modules/');
  if (nm !== -1) {
    const rest = path.slice(nm + '/node_modules/'.length).split('/');
    return rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1]}` : (rest[0] ?? path);
  }
  if (path.startsWith('node:')) return `node:${path.slice(5).split('/')[0]}`;
  const dist = path.lastIndexOf('/dist/');
  if (dist !== -1) {
    const parts = path.slice(dist + '/dist/'.length).split('/');
    return `smtp-sidecar/${parts.length > 1 ? parts[0] : parts[0]}`;
  }
  return path;
}

export function summarise(profile) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parentOf = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parentOf.set(c, n.id);
  const keyOf = (node) => {
    const { functionName, url, lineNumber } = node.callFrame;
    const name = functionName || '(anonymous)';
    const file = url ? `${url.replace(/^file:\/\/.*?\/node_modules\//, '').replace(/^file:\/\/.*?\/dist\//, 'dist/')}:${lineNumber + 1}` : '';
    return `${name} ${file}`.trim();
  };
  const selfUs = new Map();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  for (let i = 0; i < samples.length; i += 1) {
    // timeDeltas[i] is the time since the previous sample: it belongs to sample i-1's node
    // in Chrome's convention; with thousands of samples the difference is negligible.
    selfUs.set(samples[i], (selfUs.get(samples[i]) ?? 0) + (deltas[i] ?? 0));
  }
  const totalUs = [...selfUs.values()].reduce((a, b) => a + b, 0);
  const inclusive = new Map();
  for (const [id, us] of selfUs) {
    const seen = new Set();
    for (let at = id; at !== undefined; at = parentOf.get(at)) {
      const node = byId.get(at);
      if (node === undefined) break;
      const key = keyOf(node);
      if (seen.has(key)) continue;
      seen.add(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + us);
    }
  }
  const byFunction = new Map();
  const byPackage = new Map();
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (node === undefined) continue;
    const { functionName, url } = node.callFrame;
    const name = functionName || '(anonymous)';
    const key = keyOf(node);
    byFunction.set(key, (byFunction.get(key) ?? 0) + us);
    const pkg = packageOf(url, name);
    byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + us);
  }
  const sorted = (m) => [...m.entries()].sort((a, b) => b[1] - a[1]).map(([key, us]) => ({ key, ms: us / 1000, percent: (100 * us) / totalUs }));
  return { totalMs: totalUs / 1000, byFunction: sorted(byFunction), byPackage: sorted(byPackage), inclusive: sorted(inclusive) };
}

async function main() {
  const { values, positionals } = parseArgs({ options: { top: { type: 'string', default: '25' }, inclusive: { type: 'boolean', default: false }, filter: { type: 'string' } }, allowPositionals: true });
  if (positionals.length === 0) {
    process.stderr.write('Usage: node bench/profile-summary.mjs FILE.cpuprofile [--top N] [--inclusive [--filter REGEXP]]\n');
    return 2;
  }
  const top = Number(values.top);
  for (const file of positionals) {
    const summary = summarise(JSON.parse(await readFile(file, 'utf8')));
    const busyMs = summary.byPackage.filter((p) => p.key !== '(idle)').reduce((a, p) => a + p.ms, 0);
    process.stdout.write(`\n${file}: ${summary.totalMs.toFixed(0)} ms sampled, ${busyMs.toFixed(0)} ms not idle\n`);
    process.stdout.write('\nself time by package:\n');
    for (const p of summary.byPackage.slice(0, top)) process.stdout.write(`  ${p.percent.toFixed(1).padStart(5)}%  ${p.ms.toFixed(0).padStart(7)} ms  ${p.key}\n`);
    process.stdout.write('\nself time by function:\n');
    for (const f of summary.byFunction.slice(0, top)) process.stdout.write(`  ${f.percent.toFixed(1).padStart(5)}%  ${f.ms.toFixed(0).padStart(7)} ms  ${f.key}\n`);
    if (values.inclusive) {
      const filter = values.filter === undefined ? undefined : new RegExp(values.filter);
      process.stdout.write(`\ninclusive time by function${filter ? ` (matching ${filter})` : ''}:\n`);
      const rows = summary.inclusive.filter((f) => filter === undefined || filter.test(f.key)).slice(0, top);
      for (const f of rows) process.stdout.write(`  ${f.percent.toFixed(1).padStart(5)}%  ${f.ms.toFixed(0).padStart(7)} ms  ${f.key}\n`);
    }
  }
  return 0;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().then((code) => (process.exitCode = code));
}
