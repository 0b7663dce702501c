/**
 * The SMTP listener: the only code that knows smtp-server.
 *
 * Does: accept unauthenticated SMTP from allowed client addresses, enforce the size and
 * recipient limits with replies that carry enhanced status codes, and hand each message
 * stream to the receive conductor; answer with whatever the conductor decides. Cut off
 * sessions that hold a slot without sending mail (SessionGuard: lifetime, junk commands,
 * minimum DATA rate; slow-line-guard: slow lines), logging refusals once per interval.
 * Never: offer AUTH or STARTTLS, honour XCLIENT/XFORWARD/PROXY, do reverse DNS lookups,
 * log one line per refused connection, or let one broken socket crash the process.
 * Assumes: enhanced status codes are written into reply texts by us (smtp-server's own
 * automatic codes stay off so our texts are not double-prefixed; its built-in syntax errors,
 * such as "501 Error: Bad recipient address syntax", therefore carry none).
 * Overrides two smtp-server internals: the 100 ms greeting delay (see PromptGreetingServer) and
 * the MAIL/RCPT argument split for a quoted local part with spaces (QuotedLocalPartConnection).
 */
import type { AddressInfo, Socket } from 'node:net';
import { PassThrough, type Readable } from 'node:stream';
import { SMTPServer, type SMTPServerDataStream, type SMTPServerOptions, type SMTPServerSession } from 'smtp-server';
import { SMTPConnection, type SMTPConnectionOptions } from 'smtp-server/lib/smtp-connection.js';
import { isRelayError, RelayError, toSmtpError } from '../core/errors.js';
import type { Logger } from '../core/ports.js';
import { systemClock, type Clock } from '../core/clock.js';
import { FLOOD_LOG_INTERVAL_MS, UNREAD_REPLY_DESTROY_MS } from '../core/delays.js';
import { guardSlowLines } from './slow-line-guard.js';
import { IntervalLog } from '../core/interval-log.js';
import { SessionGuard } from './session-guard.js';
import type { Envelope } from '../core/types.js';
import type { ListenConfig } from '../config/schema.js';

export interface IntakeSession {
  readonly id: string;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly heloName: string;
  /** 'ESMTP' after EHLO, 'SMTP' after HELO (for the Received header) */
  readonly protocol?: string;
  readonly envelope: Envelope;
}

export interface IntakeHandlers {
  /** Checked at connect against the current allow-list (it can change on reload). */
  isClientAllowed(address: string): boolean;
  /** Resolves with the 250 reply text, or rejects with a RelayError whose reply is sent. */
  onMessage(stream: Readable, session: IntakeSession): Promise<string>;
}

export interface SmtpListener {
  listen(): Promise<AddressInfo>;
  /** Stops accepting; open sessions get up to listen.shutdownGraceSeconds, then 421. */
  close(): Promise<void>;
  readonly openConnections: number;
  readonly listening: boolean;
}

const SILENT_LEVELS = { trace: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined, fatal: () => undefined };

/** local@domain; the local part is a run without whitespace or quotes, or a quoted string ("john doe", RFC 5321 4.1.2) */
const ADDRESS_WITH_DOMAIN = /^(?:[^@\s"]+|"(?:[^"\\]|\\.)*")@[^@\s]+$/;
/** C0 controls (CR, LF, NUL, ...) and DEL: never part of an address we pass on (header/command injection). */
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

/** Whether an envelope address may be accepted: user@domain (a quoted local part may hold spaces), no control characters. */
export function isAcceptableEnvelopeAddress(address: string): boolean {
  return ADDRESS_WITH_DOMAIN.test(address) && !CONTROL_CHARS.test(address);
}

export function listenErrorMessage(err: NodeJS.ErrnoException, host: string, port: number): string {
  if (err.code === 'EACCES') {
    return `cannot listen on ${host}:${port}: permission denied. Ports below 1024 need privileges: run with CAP_NET_BIND_SERVICE (e.g. \`setcap cap_net_bind_service=+ep $(command -v node)\`; in Docker the image allows it via net.ipv4.ip_unprivileged_port_start=0), or choose another port with listen.port`;
  }
  if (err.code === 'EADDRINUSE') return `cannot listen on ${host}:${port}: the port is already in use by another process; stop it or choose another listen.port`;
  if (err.code === 'EADDRNOTAVAIL') return `cannot listen on ${host}:${port}: no such local address; check listen.host`;
  return `cannot listen on ${host}:${port}: ${err.message}`;
}

export function createSmtpListener(config: ListenConfig, handlers: IntakeHandlers, logger: Logger, clock: Clock = systemClock): SmtpListener {
  const maxBytes = Math.floor(config.maxMessageSizeMB * 1024 * 1024);
  let bound = false;
  // Refusals and cut-offs come in floods: one line per reason per minute, with a count.
  const refusals = new IntervalLog(logger, FLOOD_LOG_INTERVAL_MS, clock);
  const guard = new SessionGuard(
    {
      maxSessionSeconds: config.maxSessionSeconds,
      maxJunkCommands: config.maxJunkCommands,
      idleSeconds: config.socketTimeoutSeconds,
      minDataRateBytesPerSecond: config.minDataRateBytesPerSecond,
      minDataRateAfterSeconds: config.minDataRateAfterSeconds,
    },
    clock,
    (id, reason, reply) => {
      for (const connection of server.connections) {
        if (connection.id !== id) continue;
        refusals.note('intake.session-cut', { reason, client: connection.session.remoteAddress });
        connection.send(421, reply, false); // a 421 closes the connection
      }
    },
  );

  const server = new PromptGreetingServer({
    name: config.hostname,
    banner: 'smtp-sidecar ESMTP',
    authOptional: true,
    disabledCommands: ['AUTH', 'STARTTLS'],
    hideSTARTTLS: true,
    disableReverseLookup: true,
    useXClient: false,
    useXForward: false,
    useProxy: false,
    size: maxBytes,
    maxClients: config.maxClients,
    socketTimeout: config.socketTimeoutSeconds * 1000,
    closeTimeout: config.shutdownGraceSeconds * 1000,
    // smtp-server logs every command it parses at debug level ({tnx: 'command', cid, command}):
    // the one place that sees each command (never DATA lines), so the session guard counts there.
    logger: {
      debug(entry: { tnx?: unknown; cid?: unknown; command?: unknown }) {
        if (entry.tnx === 'command' && typeof entry.cid === 'string') guard.command(entry.cid, String(entry.command ?? '').toUpperCase());
      },
      ...SILENT_LEVELS,
    } as unknown as SMTPServerOptions['logger'],

    onConnect(session, callback) {
      if (handlers.isClientAllowed(session.remoteAddress)) {
        guard.opened(session.id);
        return callback();
      }
      refusals.note('refused', { client: session.remoteAddress, reason: 'client not in listen.allowedClients' });
      callback(toSmtpError(new RelayError('E_CLIENT_DENIED', { detail: `Relay access from ${session.remoteAddress} denied` })));
    },

    onMailFrom(address, _session, callback) {
      if (address.address !== '' && !isAcceptableEnvelopeAddress(address.address)) {
        return callback(toSmtpError(new RelayError('E_BAD_ADDRESS', { detail: 'Bad sender address syntax; use user@domain' })));
      }
      callback();
    },

    onRcptTo(address, session, callback) {
      if (!isAcceptableEnvelopeAddress(address.address)) {
        return callback(toSmtpError(new RelayError('E_BAD_ADDRESS', { detail: 'Bad recipient address syntax; use user@domain' })));
      }
      const already = session.envelope.rcptTo.some((r) => r.address.toLowerCase() === address.address.toLowerCase());
      if (!already && session.envelope.rcptTo.length >= config.maxRecipients) {
        return callback(
          toSmtpError(new RelayError('E_TOO_MANY_RECIPIENTS', { detail: `Too many recipients; the limit is ${config.maxRecipients}, send the rest in another message` })),
        );
      }
      callback();
    },

    onClose(session) {
      guard.closed(session.id);
    },

    onData(stream, session, callback) {
      guard.dataStarted(session.id);
      stream.on('data', () => guard.dataBytes(session.id, stream.byteLength));
      const guarded = guardSize(stream, maxBytes, { paused: () => guard.dataPaused(session.id), resumed: () => guard.dataResumed(session.id) });
      handlers.onMessage(guarded, toIntakeSession(session)).finally(() => guard.dataEnded(session.id)).then(
        (text) => callback(null, text),
        (err: unknown) => {
          // smtp-server replies only once the data stream has ended; make sure it does
          stream.resume();
          if (isRelayError(err)) return callback(toSmtpError(err));
          logger.error({ err, client: session.remoteAddress }, 'intake.error');
          callback(toSmtpError(new RelayError('E_INTERNAL')));
        },
      );
    },
  }, (socket) => refusals.note('refused', { client: socket.remoteAddress, reason: 'listen.maxClients reached', maxClients: config.maxClients }));

  // One broken socket (a TLS client on the plain port, a reset) must never crash the process.
  server.on('error', (err: Error) => logger.warn({ err: { message: err.message, code: (err as NodeJS.ErrnoException).code } }, 'intake.socket-error'));

  // A client that trickles a line byte by byte keeps the idle timer happy: cut it off when one
  // line takes longer than the idle timeout itself (its slot is freed for real clients).
  const lineLimitMs = config.socketTimeoutSeconds * 1000;
  server.server.on('connection', (socket: Socket) => {
    guardSlowLines(socket, lineLimitMs, clock, () => {
      refusals.note('intake.slow-client', { client: socket.remoteAddress, reason: 'a line took longer than listen.socketTimeoutSeconds' });
      socket.end('421 4.4.2 Line too slow; closing connection\r\n');
      setTimeout(() => socket.destroy(), UNREAD_REPLY_DESTROY_MS).unref();
    });
  });

  return {
    get openConnections() {
      return server.connections.size;
    },
    get listening() {
      return bound;
    },
    listen() {
      return new Promise<AddressInfo>((resolve, reject) => {
        const onError = (err: NodeJS.ErrnoException) => reject(new Error(listenErrorMessage(err, config.host, config.port)));
        server.server.once('error', onError);
        server.listen(config.port, config.host, () => {
          server.server.off('error', onError);
          bound = true;
          resolve(server.server.address() as AddressInfo);
        });
      });
    },
    close() {
      return new Promise<void>((resolve) => {
        if (!bound) return resolve();
        bound = false;
        server.close(() => {
          refusals.flush();
          resolve();
        });
      });
    },
  };
}

/**
 * smtp-server splits MAIL/RCPT arguments at whitespace, so a quoted local part with a space
 * (`"john doe"@example.com`, valid by RFC 5321 4.1.2) got `501 Bad address syntax`. Spaces
 * inside the quotes are swapped for a placeholder before smtp-server parses the command and
 * swapped back in the address it returns; everything else (control characters, CR/LF, the
 * domain) is still checked by smtp-server and by isAcceptableEnvelopeAddress.
 */
const SPACE_PLACEHOLDER = '\ue000';
const QUOTED_LOCAL_PART = /<"(?:[^"\\\r\n]|\\[^\r\n])*"@/;

class QuotedLocalPartConnection extends SMTPConnection {
  override _parseAddressCommand(rawName: string, rawCommand: Buffer | string): ReturnType<SMTPConnection['_parseAddressCommand']> {
    const command = rawCommand.toString();
    const quoted = QUOTED_LOCAL_PART.exec(command);
    if (quoted === null || !/ /.test(quoted[0]) || command.includes(SPACE_PLACEHOLDER)) return super._parseAddressCommand(rawName, rawCommand);
    const swapped = command.slice(0, quoted.index) + quoted[0].replace(/ /g, SPACE_PLACEHOLDER) + command.slice(quoted.index + quoted[0].length);
    const parsed = super._parseAddressCommand(rawName, swapped);
    if (parsed === false) return false;
    return { ...parsed, address: parsed.address.split(SPACE_PLACEHOLDER).join(' ') };
  }
}

/**
 * smtp-server with the 220 greeting sent at once instead of after 100 ms.
 *
 * smtp-server 3.21.6 `SMTPConnection.init()` waits a hard-coded 100 ms before it greets
 * ("early talker" detection: a client that speaks first gets "421 You talk too soon"); there
 * is no option to turn it off. A legacy app that opens a connection per message therefore
 * could send at most ten messages a second per connection. This relay's clients are on
 * `listen.allowedClients` (loopback or the app's own network), and a client that is not gets
 * refused at connect anyway, so the detection buys nothing here: the greeting goes out in
 * the same tick as the accept, and a client that pipelines its EHLO before reading the
 * greeting is served normally (RFC 5321 asks the client to wait, it does not ask the server
 * to punish it). No delay remains for anyone, so no allowed client pays for it.
 *
 * How: `connect()` below is smtp-server's own `SMTPServer.connect()` (five statements) with
 * its `connection.init()` replaced by `init()`'s body minus the timer: `_setListeners`, the
 * maxClients check, then `connectionReady()` at once. Those internals are pinned by
 * test/unit/intake/greeting-override.test.ts, which compares smtp-server's `connect()` and
 * `init()` source text with the shapes this copy was made from and fails on any upgrade that
 * changes them (then re-read both functions and update this copy and the test together).
 * Exported for the benchmark's sink (bench/sink.mjs), which must greet as fast as an upstream.
 */
export class PromptGreetingServer extends SMTPServer {
  private readonly maxClientsAllowed: number | undefined;
  private readonly greetingName: string;

  constructor(
    options: SMTPServerOptions & { name: string },
    private readonly onTooManyClients: (socket: Socket) => void = () => undefined,
  ) {
    super(options);
    this.maxClientsAllowed = options.maxClients;
    this.greetingName = options.name;
  }

  override connect(socket: Socket, socketOptions?: SMTPConnectionOptions | null): void {
    const connection = new QuotedLocalPartConnection(this, socket, socketOptions);
    this.connections.add(connection);
    connection.on('error', (err: Error) => this._onError(err));
    connection.on('connect', (data: Parameters<SMTPServer['_onClientConnect']>[0]) => this._onClientConnect(data));
    // init() without `setTimeout(() => this.connectionReady(), 100)`
    connection._setListeners(() => {
      if (this.maxClientsAllowed && this.connections.size > this.maxClientsAllowed) {
        this.onTooManyClients(socket);
        return connection.send(421, `${this.greetingName} Too many connected clients, try again in a moment`, false);
      }
      connection.connectionReady();
    });
  }
}

function toIntakeSession(session: SMTPServerSession): IntakeSession {
  const from = session.envelope.mailFrom;
  const bodyType = from && from.args ? from.args.BODY : undefined;
  return {
    id: session.id,
    remoteAddress: session.remoteAddress,
    remotePort: session.remotePort,
    heloName: session.hostNameAppearsAs ?? '',
    protocol: session.transmissionType,
    envelope: {
      mailFrom: from ? from.address : '',
      rcptTo: session.envelope.rcptTo.map((r) => r.address),
      ...(bodyType !== undefined ? { bodyType: String(bodyType).toUpperCase() === '8BITMIME' ? ('8bitmime' as const) : ('7bit' as const) } : {}),
      ...(from && from.args && from.args.SMTPUTF8 !== undefined ? { smtpUtf8: true } : {}),
    },
  };
}

/**
 * Passes the message through until it grows past the size limit; then fails the copy with
 * E_MESSAGE_TOO_BIG while the original keeps draining (smtp-server replies after its end).
 * A client that disconnects mid-DATA destroys the original: the copy is destroyed too, so the
 * conductor never spools a half message. A consumer that stops reading early (it destroys the
 * copy) never stalls the original: the rest is drained so the reply can be sent.
 */
function guardSize(stream: SMTPServerDataStream, maxBytes: number, flow: { paused(): void; resumed(): void }): Readable {
  const copy = new PassThrough();
  let failed = false;
  // If the consumer gives up early (a 452 decided mid-stream), keep draining the original:
  // smtp-server sends the reply only after the client's end of data has been read.
  copy.on('close', () => stream.resume());
  stream.on('data', (chunk: Buffer) => {
    if (failed || copy.destroyed) return;
    if (stream.sizeExceeded || stream.byteLength > maxBytes) {
      failed = true;
      copy.destroy(new RelayError('E_MESSAGE_TOO_BIG', { detail: `Message exceeds the fixed maximum message size of ${maxBytes} bytes` }));
      stream.resume(); // keep draining even if we had paused for back-pressure
      return;
    }
    if (!copy.write(chunk)) {
      // the relay, not the client, holds the data back (in-flight budget, a slow disk): that
      // time does not count against the client's DATA rate
      stream.pause();
      flow.paused();
      copy.once('drain', () => {
        flow.resumed();
        stream.resume();
      });
    }
  });
  stream.on('end', () => {
    if (!failed) copy.end();
  });
  stream.on('error', (err) => copy.destroy(err));
  stream.on('close', () => {
    if (!stream.readableEnded && !failed) copy.destroy(new Error('client disconnected during DATA'));
  });
  return copy;
}
