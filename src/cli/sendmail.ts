/**
 * `smtp-sidecar sendmail` (also run as `/usr/sbin/sendmail`, a symlink to the bin): the
 * sendmail command line that cron, PHP's mail() and shell scripts use, submitting to the
 * running relay over SMTP so that every policy of the relay applies.
 *
 * Does: parse the sendmail options the way Postfix's sendmail does (getopt letters, bundled or
 *   separate arguments, recipients anywhere); read the message from stdin (see
 *   sendmail-message.ts), submit it (smtp-submit.ts) or relay an SMTP session (-bs,
 *   smtp-pipe.ts); exit with a sysexits code and print the relay's own answer on failure.
 * Never: keep a queue of its own (the relay is the queue: when it cannot be reached the caller
 *   gets EX_TEMPFAIL 75 and keeps the message); need the relay's secrets (it reads only
 *   listen.host/listen.port and delivery.waitSeconds, so that any user may run it even when the
 *   config file's references cannot be resolved by that user); send a message to some
 *   recipients when others were refused (all or nothing).
 * Assumes: the relay listens where its config says (0.0.0.0 / :: are reached on loopback).
 *
 * Options accepted and ignored, as Postfix's sendmail accepts them: -A ARG, -c, -e ARG, -G,
 * -h N, -L TAG, -m, -n, -N DSN, -O OPTION, -o<anything but i> (-odi, -oem, -om, ...), -p PROTO,
 * -R RET, -U, -V ENVID, -X LOGFILE, -x.
 */
import { hostname as osHostname, userInfo } from 'node:os';
import { DEFAULT_CONFIG_PATH } from '../config/load.js';
import type { CliIo } from './io.js';
import { hostPort, readLocalAddresses } from './local-addresses.js';
import { type ParsedRecipient, parseAddressList, prepareMessage } from './sendmail-message.js';
import { pipeSmtpSession } from './smtp-pipe.js';
import { parseVia, type Refusal, submitMessage } from './smtp-submit.js';
import { exitForReply, SYSEXIT, SYSEXIT_NAME, type SmtpStep, type SysExit } from './sysexits.js';
import { SENDMAIL_CONNECT_TIMEOUT_MS, SENDMAIL_REPLY_MARGIN_MS, SENDMAIL_REPLY_TIMEOUT_MS, SENDMAIL_UNBOUNDED_REPLY_TIMEOUT_MS } from '../core/delays.js';

export const SENDMAIL_HELP = `Usage: sendmail [options] [recipient ...] < message
       smtp-sidecar sendmail [options] [recipient ...] < message

Submits the message on standard input to the running smtp-sidecar relay over SMTP, like
Postfix's sendmail. Install it as /usr/sbin/sendmail (a symlink to smtp-sidecar's dist/main.js)
for cron, PHP's mail() (sendmail_path = "/usr/sbin/sendmail -t -i") and scripts.

Options:
  -t               also take recipients from the To, Cc and Bcc headers (Resent-* when present);
                   Bcc is removed from the message
  -i, -oi          a line with only "." is part of the message (without it, it ends the message)
  -f ADDR, -r ADDR envelope sender (default: USER@HOSTNAME; "<>" for the null sender)
  -F NAME          full name for the From header added when the message has none
  -B 8BITMIME      declare an 8-bit body (also declared whenever the message has 8-bit bytes)
  -bm              read a message from stdin (the default)
  -bs              speak SMTP on stdin/stdout (relayed to the relay as it is)
  -bi, -I, -q      accepted and do nothing (no alias database; the relay retries by itself)
  -v               print the relay's answer on success too
  -C FILE, --config FILE
                   the relay's config file, for listen.host and listen.port
                   (default: ${DEFAULT_CONFIG_PATH}; built-in 127.0.0.1:25 when it is missing)
  --relay HOST:PORT
                   the relay's SMTP address (also the SMTP_SIDECAR_RELAY environment variable)
  Ignored, as other sendmail implementations accept them: -A -c -e -G -h -L -m -n -N -O
  -o<x> (-odi, -oem, ...) -p -R -U -V -X -x

Exit codes (sysexits.h): 0 accepted by the relay, 64 usage, 65 message refused (size, content),
67 recipient refused, 69 refused otherwise, 74 cannot read stdin, 75 relay not reachable or
answered 4xx (try again later), 77 refused by policy (5.7.x), 78 config file invalid.
`;

/** Option letters that take an argument (attached, or the next word), as in Postfix's getopt string. */
const WITH_ARGUMENT = new Set(['A', 'B', 'C', 'F', 'L', 'N', 'O', 'R', 'V', 'X', 'b', 'e', 'f', 'h', 'o', 'p', 'r']);
const IGNORED_FLAGS = new Set(['G', 'U', 'c', 'm', 'n', 'x']);

export interface SendmailArgs {
  readonly mode: 'message' | 'smtp' | 'nothing';
  readonly dotEndsMessage: boolean;
  readonly recipientsFromHeaders: boolean;
  readonly sender: string | undefined;
  readonly fullName: string | undefined;
  readonly eightBit: boolean;
  readonly verbose: boolean;
  readonly help: boolean;
  readonly config: string | undefined;
  readonly relay: string | undefined;
  readonly recipients: readonly string[];
}

export type ParsedArgs = { readonly ok: true; readonly args: SendmailArgs } | { readonly ok: false; readonly problem: string };

/** Parses a sendmail command line (everything after the program or the `sendmail` command word). */
export function parseSendmailArgs(argv: readonly string[]): ParsedArgs {
  const args = {
    mode: 'message' as SendmailArgs['mode'],
    dotEndsMessage: true,
    recipientsFromHeaders: false,
    sender: undefined as string | undefined,
    fullName: undefined as string | undefined,
    eightBit: false,
    verbose: false,
    help: false,
    config: undefined as string | undefined,
    relay: undefined as string | undefined,
    recipients: [] as string[],
  };
  const fail = (problem: string): ParsedArgs => ({ ok: false, problem });
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i]!;
    if (word === '--') {
      args.recipients.push(...argv.slice(i + 1));
      break;
    }
    if (word.startsWith('--')) {
      const [name, inline] = word.slice(2).split(/=(.*)/s, 2) as [string, string | undefined];
      if (name === 'help') {
        args.help = true;
        continue;
      }
      if (name !== 'config' && name !== 'relay') return fail(`unknown option --${name}`);
      const value = inline ?? argv[++i];
      if (value === undefined || value === '') return fail(`option --${name} needs a value`);
      args[name] = value;
      continue;
    }
    if (!word.startsWith('-') || word === '-') {
      args.recipients.push(word);
      continue;
    }
    for (let j = 1; j < word.length; j++) {
      const letter = word[j]!;
      if (letter === 'q') break; // -q, -q1h: process the queue: the relay does that by itself
      if (WITH_ARGUMENT.has(letter)) {
        const attached = word.slice(j + 1);
        const value = attached !== '' ? attached : argv[++i];
        if (value === undefined) return fail(`option -${letter} needs an argument`);
        const problem = applyArgument(args, letter, value);
        if (problem !== undefined) return fail(problem);
        break;
      }
      if (letter === 't') args.recipientsFromHeaders = true;
      else if (letter === 'i') args.dotEndsMessage = false;
      else if (letter === 'v') args.verbose = true;
      else if (letter === 'I') args.mode = 'nothing';
      else if (!IGNORED_FLAGS.has(letter)) return fail(`unknown option -${letter}`);
    }
    if (word.startsWith('-q') && args.mode === 'message') args.mode = 'nothing';
  }
  return { ok: true, args };
}

function applyArgument(
  args: { mode: SendmailArgs['mode']; dotEndsMessage: boolean; sender: string | undefined; fullName: string | undefined; eightBit: boolean; config: string | undefined },
  letter: string,
  value: string,
): string | undefined {
  switch (letter) {
    case 'f':
    case 'r':
      args.sender = value;
      return undefined;
    case 'F':
      args.fullName = value;
      return undefined;
    case 'C':
      args.config = value;
      return undefined;
    case 'B':
      if (value.toUpperCase() === '8BITMIME') args.eightBit = true;
      return undefined;
    case 'o':
      if (value === 'i') args.dotEndsMessage = false;
      return undefined;
    case 'b':
      if (value === 'm') args.mode = 'message';
      else if (value === 's') args.mode = 'smtp';
      else if (value === 'i') args.mode = 'nothing';
      else if (value === 'd') return '-bd (daemon mode) is not supported: run the relay with "smtp-sidecar start"';
      else if (value === 'p') return '-bp (print the queue) is not supported: use "smtp-sidecar queue list"';
      else return `-b${value} is not supported (supported: -bm, -bs, -bi)`;
      return undefined;
    default:
      return undefined; // accepted and ignored (see the file comment)
  }
}

export interface SendmailDeps {
  readonly hostname?: string;
  readonly username?: string;
  readonly readFile?: (path: string) => string;
}

interface RelayTarget {
  readonly host: string;
  readonly port: number;
  readonly waitSeconds: number;
  /** where the address came from, for error messages */
  readonly source: string;
}

type TargetOrExit = { readonly target: RelayTarget } | { readonly exit: SysExit };

/** The relay's address: --relay, SMTP_SIDECAR_RELAY, or listen.host/port of the config file (only those keys are read). */
function relayTarget(args: SendmailArgs, io: CliIo, readFile: ((path: string) => string) | undefined): TargetOrExit {
  const explicit = args.relay ?? (io.env['SMTP_SIDECAR_RELAY'] || undefined);
  if (explicit !== undefined) {
    const via = parseVia(explicit);
    if (via === undefined) {
      io.stderr(`sendmail: relay address "${explicit}" is not HOST:PORT (e.g. 127.0.0.1:25)\n`);
      return { exit: SYSEXIT.USAGE };
    }
    return { target: { ...via, waitSeconds: 10, source: args.relay !== undefined ? '--relay' : 'SMTP_SIDECAR_RELAY' } };
  }
  const path = args.config ?? DEFAULT_CONFIG_PATH;
  const result = readLocalAddresses(path, { env: io.env, ...(readFile === undefined ? {} : { readFile }) });
  if (!result.ok) {
    io.stderr(`sendmail: the config file is not valid (fix it, or give the relay's address with --relay HOST:PORT):\n${result.problems.map((p) => `  ${p}\n`).join('')}`);
    return { exit: SYSEXIT.CONFIG };
  }
  const { smtp, waitSeconds, source } = result.addresses;
  if (smtp.port === 0) {
    io.stderr(`sendmail: listen.port in ${path} is 0 (any free port), so the relay's address is unknown: give it with --relay HOST:PORT\n`);
    return { exit: SYSEXIT.CONFIG };
  }
  return { target: { host: smtp.host, port: smtp.port, waitSeconds, source: `listen.host/listen.port of ${source}` } };
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
  return Buffer.concat(chunks);
}

/** An address that is safe in `MAIL FROM:<...>` / `RCPT TO:<...>`: no CR, LF, NUL, angle brackets, and one @ with text on both sides. */
const SAFE_ENVELOPE_ADDRESS = /^[^\r\n\0<>]+@[^\r\n\0<>@\s]+$/;

function envelopeSender(args: SendmailArgs, hostname: string, username: string): string | undefined {
  let sender = args.sender ?? username;
  if (sender === '<>' || sender === '') return '';
  const parsed = sender.includes('<') ? parseAddressList(sender)[0]?.address : sender;
  if (parsed === undefined || parsed === '') return undefined;
  sender = parsed.includes('@') ? parsed : `${parsed}@${hostname}`;
  return SAFE_ENVELOPE_ADDRESS.test(sender) ? sender : undefined;
}

function describeReplyStep(refusal: Refusal): string {
  const steps: Record<SmtpStep, string> = {
    greeting: 'the connection',
    EHLO: 'EHLO',
    MAIL: `the sender`,
    RCPT: `recipient <${refusal.recipient ?? ''}>`,
    DATA: 'the DATA command',
    'END-OF-DATA': 'the message',
  };
  return steps[refusal.step];
}

const exitLine = (exit: SysExit): string => `exit ${exit} ${SYSEXIT_NAME[exit]}`;

export async function sendmailCommand(argv: readonly string[], io: CliIo, deps: SendmailDeps = {}): Promise<number> {
  const parsed = parseSendmailArgs(argv);
  if (!parsed.ok) {
    io.stderr(`sendmail: ${parsed.problem}\n\n${SENDMAIL_HELP}`);
    return SYSEXIT.USAGE;
  }
  const args = parsed.args;
  if (args.help) return io.stdout(SENDMAIL_HELP), SYSEXIT.OK;
  if (args.mode === 'nothing') return SYSEXIT.OK;
  const resolved = relayTarget(args, io, deps.readFile);
  if ('exit' in resolved) return resolved.exit;
  const target = resolved.target;
  const where = hostPort(target.host, target.port);
  const unreachable = (reason: string): number => {
    io.stderr(
      `sendmail: cannot reach the relay at ${where} (${reason}); the address comes from ${target.source}. ` +
        `Is smtp-sidecar running (systemctl status smtp-sidecar, docker ps)? Another address: -C CONFIG or --relay HOST:PORT. ` +
        `The message was NOT sent (${exitLine(SYSEXIT.TEMPFAIL)}: try again later)\n`,
    );
    return SYSEXIT.TEMPFAIL;
  };

  // the relay may hold its answer to the end of DATA for delivery.waitSeconds (-1: until the upstream answers)
  const finalReplyTimeoutMs = target.waitSeconds < 0 ? SENDMAIL_UNBOUNDED_REPLY_TIMEOUT_MS : target.waitSeconds * 1000 + SENDMAIL_REPLY_MARGIN_MS;
  if (args.mode === 'smtp') {
    const result = await pipeSmtpSession({ host: target.host, port: target.port, connectTimeoutMs: SENDMAIL_CONNECT_TIMEOUT_MS, finalReplyTimeoutMs }, io.stdin, io.stdout);
    return result.kind === 'unreachable' ? unreachable(result.reason) : SYSEXIT.OK;
  }

  const hostname = deps.hostname ?? osHostname();
  const sender = envelopeSender(args, hostname, deps.username ?? currentUser(io.env));
  if (sender === undefined) {
    io.stderr(`sendmail: sender "${args.sender ?? ''}" is not a usable address; use -f user@example.com\n`);
    return SYSEXIT.USAGE;
  }

  let input: Buffer;
  try {
    input = await readAll(io.stdin);
  } catch (err) {
    io.stderr(`sendmail: cannot read the message from standard input (${(err as Error).message}); nothing was sent\n`);
    return SYSEXIT.IOERR;
  }
  const message = prepareMessage(input, {
    dotEndsMessage: args.dotEndsMessage,
    recipientsFromHeaders: args.recipientsFromHeaders,
    sender,
    fullName: args.fullName,
    localDomain: hostname,
  });

  const candidates: ParsedRecipient[] = [...args.recipients.flatMap(parseAddressList), ...message.headerRecipients];
  const unusable = candidates.filter((r) => r.address === '' || !SAFE_ENVELOPE_ADDRESS.test(r.address));
  if (unusable.length > 0) {
    io.stderr(
      `sendmail: ${unusable.map((r) => `"${r.written}"`).join(', ')} ${unusable.length === 1 ? 'is not a full address' : 'are not full addresses'}: ` +
        `the relay sends only to user@domain (for cron, set MAILTO=you@example.com in the crontab). Nothing was sent (${exitLine(SYSEXIT.NOUSER)})\n`,
    );
    return SYSEXIT.NOUSER;
  }
  const seen = new Set<string>();
  const recipients = candidates.map((r) => r.address).filter((a) => !seen.has(a.toLowerCase()) && seen.add(a.toLowerCase()));
  if (recipients.length === 0) {
    io.stderr(
      `sendmail: no recipients: give them as arguments${args.recipientsFromHeaders ? ' or in To/Cc/Bcc headers' : ', or use -t to read them from the To/Cc/Bcc headers'}. Nothing was sent (${exitLine(SYSEXIT.USAGE)})\n`,
    );
    return SYSEXIT.USAGE;
  }

  const result = await submitMessage(
    {
      host: target.host,
      port: target.port,
      heloName: hostname.includes('.') ? hostname : 'localhost',
      connectTimeoutMs: SENDMAIL_CONNECT_TIMEOUT_MS,
      replyTimeoutMs: SENDMAIL_REPLY_TIMEOUT_MS,
      finalReplyTimeoutMs,
    },
    { from: sender, to: recipients, eightBit: args.eightBit || message.eightBit },
    message.data,
  );
  switch (result.kind) {
    case 'accepted':
      if (args.verbose) for (const reply of result.replies) io.stdout(`sendmail: the relay at ${where} accepted the message: ${reply.raw}\n`);
      return SYSEXIT.OK;
    case 'unreachable':
      return unreachable(result.reason);
    case 'broken': {
      const after = result.step === 'END-OF-DATA';
      io.stderr(
        `sendmail: the session with the relay at ${where} broke ${after ? 'while waiting for its answer to the message' : `at ${result.step}`} (${result.reason}). ` +
          (after ? 'The relay may have accepted the message; a retry may deliver it twice. ' : 'The message was NOT sent. ') +
          `${deliveredNote(result.delivered)}(${exitLine(SYSEXIT.TEMPFAIL)})\n`,
      );
      return SYSEXIT.TEMPFAIL;
    }
    case 'refused': {
      for (const refusal of result.refusals) io.stderr(`sendmail: the relay at ${where} refused ${describeReplyStep(refusal)}: ${refusal.reply.raw}\n`);
      const exit = worstExit(result.refusals);
      io.stderr(`sendmail: the message was NOT sent${result.delivered.length > 0 ? ' to the other recipients' : ''}. ${deliveredNote(result.delivered)}(${exitLine(exit)})\n`);
      return exit;
    }
  }
}

function deliveredNote(delivered: readonly string[]): string {
  return delivered.length === 0 ? '' : `It was already accepted for ${delivered.join(', ')} (an earlier transaction). `;
}

/** A permanent refusal outranks a temporary one: retrying would not help. */
function worstExit(refusals: readonly Refusal[]): SysExit {
  const exits = refusals.map((r) => exitForReply({ code: r.reply.code, enhanced: r.reply.enhanced, step: r.step }));
  return exits.find((e) => e !== SYSEXIT.TEMPFAIL) ?? SYSEXIT.TEMPFAIL;
}

function currentUser(env: NodeJS.ProcessEnv): string {
  try {
    return userInfo().username;
  } catch {
    // a container user without a passwd entry
    return env['USER'] || env['LOGNAME'] || 'nobody';
  }
}
