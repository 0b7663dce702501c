/**
 * sysexits(3) codes for `smtp-sidecar sendmail`, and the rule table that turns the relay's SMTP
 * answer into one of them (cron, PHP's mail() and scripts only look at the exit code).
 *
 * Does: map one SMTP reply (its code, enhanced code and the command it answered) to an exit
 *   code by the first matching row of REPLY_RULES (read top to bottom, like classify.ts).
 * Never: report success for anything but a 2xx to the end of DATA (the caller decides that);
 *   map a 4xx to anything but EX_TEMPFAIL (the sender may try again).
 * Assumes: replies come from smtp-sidecar's listener, which puts an enhanced status code on
 *   every reply it decides (smtp-server's own syntax errors carry none).
 */

/** The codes of sysexits.h that a sendmail-compatible command uses. */
export const SYSEXIT = {
  OK: 0,
  /** bad command line: unknown option, no recipients, unsupported mode */
  USAGE: 64,
  /** the message itself was refused (size, attachments, line endings, content) */
  DATAERR: 65,
  /** a recipient was refused (unknown, bad syntax, no domain) */
  NOUSER: 67,
  /** the relay refused for another permanent reason */
  UNAVAILABLE: 69,
  /** a bug in this command */
  SOFTWARE: 70,
  /** standard input could not be read */
  IOERR: 74,
  /** try again later: the relay is not reachable, timed out or answered 4xx */
  TEMPFAIL: 75,
  /** the relay refused this client or sender by policy (5.7.x) */
  NOPERM: 77,
  /** the config file is unreadable or invalid */
  CONFIG: 78,
} as const;

export type SysExit = (typeof SYSEXIT)[keyof typeof SYSEXIT];

export const SYSEXIT_NAME: Readonly<Record<SysExit, string>> = {
  0: 'EX_OK',
  64: 'EX_USAGE',
  65: 'EX_DATAERR',
  67: 'EX_NOUSER',
  69: 'EX_UNAVAILABLE',
  70: 'EX_SOFTWARE',
  74: 'EX_IOERR',
  75: 'EX_TEMPFAIL',
  77: 'EX_NOPERM',
  78: 'EX_CONFIG',
};

/** The SMTP step a reply answered. */
export type SmtpStep = 'greeting' | 'EHLO' | 'MAIL' | 'RCPT' | 'DATA' | 'END-OF-DATA';

export interface ReplyFacts {
  readonly code: number;
  /** the enhanced status code at the start of the reply text (e.g. 5.1.1), when there is one */
  readonly enhanced: string | undefined;
  readonly step: SmtpStep;
}

export interface ReplyRule {
  /** what the row matches, in words an admin can read */
  readonly when: string;
  readonly match: (r: ReplyFacts) => boolean;
  readonly exit: SysExit;
}

const permanent = (r: ReplyFacts): boolean => r.code >= 500 && r.code < 600;

export const REPLY_RULES: readonly ReplyRule[] = [
  { when: 'any 4xx reply (the relay asks to try again later)', match: (r) => r.code >= 400 && r.code < 500, exit: SYSEXIT.TEMPFAIL },
  { when: 'a 5.7.x reply (policy: client not allowed, sender not permitted)', match: (r) => permanent(r) && r.enhanced?.startsWith('5.7.') === true, exit: SYSEXIT.NOPERM },
  { when: '5.1.7 / 5.1.8: the sender address is bad', match: (r) => permanent(r) && (r.enhanced === '5.1.7' || r.enhanced === '5.1.8'), exit: SYSEXIT.DATAERR },
  { when: 'a 5xx to RCPT TO, or a 5.1.x addressing reply after DATA (recipient unknown, bad syntax)', match: (r) => permanent(r) && (r.step === 'RCPT' || r.enhanced?.startsWith('5.1.') === true), exit: SYSEXIT.NOUSER },
  { when: 'a 5xx to MAIL FROM (the sender was refused)', match: (r) => permanent(r) && r.step === 'MAIL', exit: SYSEXIT.DATAERR },
  { when: 'a 5xx to the end of DATA (size, attachments, line endings, content)', match: (r) => permanent(r) && r.step === 'END-OF-DATA', exit: SYSEXIT.DATAERR },
  { when: 'any other 5xx (greeting, EHLO, DATA command)', match: permanent, exit: SYSEXIT.UNAVAILABLE },
  { when: 'anything else (not a valid SMTP failure reply): try again later', match: () => true, exit: SYSEXIT.TEMPFAIL },
];

export function exitForReply(reply: ReplyFacts): SysExit {
  for (const rule of REPLY_RULES) if (rule.match(reply)) return rule.exit;
  return SYSEXIT.TEMPFAIL;
}
