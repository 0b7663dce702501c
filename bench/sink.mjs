/**
 * The benchmark's upstream: an smtp-server on 127.0.0.1:0 that counts and discards.
 * Runs as a child process of bench/run.mjs (IPC channel), so its CPU and memory are not
 * the relay's and direct and relayed runs hit the same sink.
 *
 * Does: accept any sender/recipient without AUTH, STARTTLS or reverse DNS; consume every
 *   DATA stream without buffering it; record the receipt time (epoch ms, fractional) of
 *   each message keyed by its envelope sender's local part (the load generator puts the
 *   message id there, so no header parsing is needed).
 * Never: keep message bytes; listen anywhere but 127.0.0.1.
 * Assumes: dist/ is built (the greeting override comes from dist/intake/smtp-listener.js);
 *   the parent sends {type:'reset'|'stats'|'stop'} messages and reads the replies.
 */
import { performance } from 'node:perf_hooks';
// smtp-server with the 220 sent at once (smtp-server itself waits 100 ms before greeting, which
// would cap the direct connection-per-message run at 10 msgs/s per session and stall the
// relay's pool at every new upstream connection; real upstreams greet in well under 1 ms)
import { PromptGreetingServer } from '../dist/intake/smtp-listener.js';

const nowMs = () => performance.timeOrigin + performance.now();

/** id → receipt time (epoch ms) */
let receipts = new Map();
let bytes = 0;
let duplicates = 0;

const server = new PromptGreetingServer({
  name: 'bench-sink',
  banner: 'bench sink',
  authOptional: true,
  disabledCommands: ['AUTH', 'STARTTLS'],
  hideSTARTTLS: true,
  disableReverseLookup: true,
  maxClients: 1000,
  size: 0,
  logger: false,
  onData(stream, session, callback) {
    let length = 0;
    stream.on('data', (chunk) => {
      length += chunk.length;
    });
    stream.on('end', () => {
      const at = nowMs();
      const from = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
      const id = from.slice(0, from.indexOf('@'));
      if (receipts.has(id)) duplicates += 1;
      else receipts.set(id, at);
      bytes += length;
      callback(null, 'OK sunk');
    });
  },
});
server.on('error', () => undefined);

server.listen(0, '127.0.0.1', () => {
  process.send?.({ type: 'ready', port: server.server.address().port });
});

process.on('message', (message) => {
  switch (message?.type) {
    case 'reset':
      receipts = new Map();
      bytes = 0;
      duplicates = 0;
      process.send?.({ type: 'reset-done' });
      break;
    case 'count':
      process.send?.({ type: 'count', count: receipts.size, bytes, duplicates });
      break;
    case 'stats':
      process.send?.({ type: 'stats', count: receipts.size, bytes, duplicates, receipts: [...receipts] });
      break;
    case 'stop':
      server.close(() => process.exit(0));
      setTimeout(() => process.exit(0), 2000).unref();
      break;
  }
});
process.on('disconnect', () => process.exit(0));
