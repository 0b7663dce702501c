/**
 * The failure rule table: what a delivery error means for the message and for the upstream.
 *
 * Does: turn an error thrown by an upstream transport (nodemailer's shape: code,
 *   responseCode, command, response) or one rejected recipient into a Decision, by the
 *   first matching row of RULES (read top to bottom, like a Postfix table).
 * Never: bounce what it does not recognise (the last row retries); throw.
 * Assumes: errors come from nodemailer 10 (its codes: ECONNECTION, ESOCKET, ETIMEDOUT, EDNS,
 *   EPROXY, ETLS, EAUTH, EENVELOPE, EMESSAGE, EPROTOCOL), from pop3-before-smtp.ts (ERECEIVE) or from delivery/graph/errors.ts (EGRAPH
 *   with the HTTP status as responseCode); the M365 replies are Exchange Online's.
 *
 * Actions (the outcome words of core/types.ts):
 *   failover: try the next upstream now (markDown: skip this upstream for a while)
 *   deferred: keep the message queued and try again later (markDown false: the upstream is fine)
 *   bounced:  the upstream refused this message for good; it goes to failed/ (or the 5xx to the client)
 */
import { isRelayError } from '../core/errors.js';
import type { RecipientRejection } from '../core/ports.js';
import type { Outcome } from '../core/types.js';

export type Decision = {
  /** the outcome of this try (core/types.ts Outcome): never 'sent', which is no failure */
  readonly action: Exclude<Outcome, 'sent'>;
  /** a sentence for the log that tells the admin what happened (and what to do) */
  readonly reason: string;
  /** enhanced status code for the delivery log line and DSN, e.g. 4.4.1 or 5.1.1 */
  readonly dsn: string;
  readonly markDown: boolean;
};

/** The fields of a nodemailer error that the rules read. */
export interface DeliveryErrorShape {
  readonly code: string | undefined;
  readonly responseCode: number | undefined;
  readonly command: string | undefined;
  readonly response: string | undefined;
  readonly message: string;
}

export interface Rule {
  /** what the row matches, in words an admin can read */
  readonly when: string;
  readonly match: (e: DeliveryErrorShape) => boolean;
  /** the decision; `dsn` is the default when the upstream's reply carries no enhanced code of the same class */
  readonly decision: Decision;
}

/** nodemailer codes for "could not talk to this server at all" (connect, DNS, proxy, socket, timeout). */
const CONNECTION_CODES = new Set(['ECONNECTION', 'ESOCKET', 'ETIMEDOUT', 'EDNS', 'EPROXY']);
/** Commands whose replies concern the message (envelope or content), not the session. */
const MESSAGE_COMMANDS = new Set(['MAIL FROM', 'RCPT TO', 'DATA']);

const text = (e: DeliveryErrorShape): string => `${e.response ?? ''} ${e.message}`;
const is4xx = (e: DeliveryErrorShape): boolean => e.responseCode !== undefined && e.responseCode >= 400 && e.responseCode < 500;
const is5xx = (e: DeliveryErrorShape): boolean => e.responseCode !== undefined && e.responseCode >= 500 && e.responseCode < 600;
const isCertificateError = (e: DeliveryErrorShape): boolean =>
  /certificate|self[- ]signed|CERT_|ERR_TLS|unable to verify|altname|handshake|SSL routines|wrong version number/i.test(text(e));

/**
 * What Microsoft 365 answers to AUTH when the tenant or mailbox is not set up for it. Rows of
 * RULES, and the hints `validate --connect` prints for a failed AUTH step (connect-hints.ts).
 */
export const M365_AUTH_RULES: readonly Rule[] = [
  {
    when: '535 5.7.139: SMTP AUTH is disabled for the tenant or mailbox (Microsoft 365)',
    match: (e) => e.responseCode === 535 && /5\.7\.139/.test(text(e)),
    decision: {
      action: 'failover',
      reason:
        'Microsoft 365 refused SMTP AUTH (535 5.7.139: SmtpClientAuthentication is disabled): enable SMTP AUTH for the sending mailbox (Set-CASMailbox -SmtpClientAuthenticationDisabled $false) or for the tenant',
      dsn: '4.7.0',
      markDown: true,
    },
  },
  {
    when: '550 5.7.30 Basic authentication is not supported (Microsoft 365 retired basic auth)',
    match: (e) => /5\.7\.30\b/.test(text(e)) && /basic auth/i.test(text(e)),
    decision: {
      action: 'failover',
      reason:
        'Microsoft 365 no longer accepts basic authentication (550 5.7.30): switch this upstream to auth.type "oauth2" (app registration with SMTP.SendAsApp, see README "Microsoft 365")',
      dsn: '4.7.0',
      markDown: true,
    },
  },
];

/** Exchange Online refused the XOAUTH2 token (535 5.7.3): what the admin must grant. */
export const M365_TOKEN_REFUSED_ADVICE =
  'the token was refused: check the SMTP.SendAsApp application permission (with admin consent), New-ServicePrincipal for the app in Exchange Online, and Add-MailboxPermission for auth.user';

export const RULES: readonly Rule[] = [
  {
    when: 'the token endpoint failed (E_TOKEN from the OAuth2 credentials)',
    match: (e) => e.code === 'E_TOKEN',
    decision: {
      action: 'failover',
      reason: 'no OAuth2 access token for this upstream (see the token error logged before); check tenantId, clientId and the client secret or certificate',
      dsn: '4.7.0',
      markDown: true,
    },
  },
  // Microsoft Graph upstreams (delivery/graph/): code EGRAPH, responseCode = the HTTP status,
  // response = "HTTP <status> <Graph error code>: <message>". Network failures there carry the
  // connection codes below (ECONNECTION, ETIMEDOUT, ETLS) and fail over like SMTP ones.
  {
    when: 'Graph 401 after one token refresh and resend (token for the wrong audience, or refused)',
    match: (e) => e.code === 'EGRAPH' && e.responseCode === 401,
    decision: {
      action: 'failover',
      reason:
        'Microsoft Graph refused the access token even after a fresh one (401): check auth.scope (https://graph.microsoft.com/.default, or your cloud\'s Graph host), tenantId and clientId',
      dsn: '4.7.0',
      markDown: true,
    },
  },
  {
    when: 'Graph 403 ErrorSendAsDenied (From is an address the mailbox may not send as)',
    match: (e) => e.code === 'EGRAPH' && /ErrorSendAsDenied/.test(text(e)),
    decision: {
      action: 'bounced',
      reason:
        'Microsoft Graph refused to send as the message\'s From address (ErrorSendAsDenied): give auth.user Send As rights on that address (Add-RecipientPermission <from> -Trustee <auth.user> -AccessRights SendAs), or set upstreams[].from or message.globalFrom to auth.user',
      dsn: '5.7.60',
      markDown: false,
    },
  },
  {
    when: 'Graph 403 ErrorAccessDenied (no Mail.Send application permission, or an access policy excludes the mailbox)',
    match: (e) => e.code === 'EGRAPH' && e.responseCode === 403,
    decision: {
      action: 'failover',
      reason:
        'Microsoft Graph denied access (403 ErrorAccessDenied): grant the app registration the Mail.Send application permission with admin consent, and include auth.user in its RBAC for Applications scope or application access policy',
      dsn: '4.7.0',
      markDown: true,
    },
  },
  {
    when: 'Graph 404 ErrorInvalidUser / MailboxNotEnabledForRESTAPI (no such mailbox in Exchange Online)',
    match: (e) => e.code === 'EGRAPH' && e.responseCode === 404 && /ErrorInvalidUser|MailboxNotEnabledForRESTAPI|ResourceNotFound/.test(text(e)),
    decision: {
      action: 'failover',
      reason:
        'Microsoft Graph does not know the sending mailbox (ErrorInvalidUser / MailboxNotEnabledForRESTAPI): set auth.user to a licensed Exchange Online mailbox of this tenant (an on-premises mailbox cannot send through Graph)',
      dsn: '4.4.1',
      markDown: true,
    },
  },
  {
    when: 'Graph 413 or ErrorMessageSizeExceeded (the message is over the mailbox\'s size limit)',
    match: (e) => e.code === 'EGRAPH' && (e.responseCode === 413 || /ErrorMessageSizeExceeded/.test(text(e))),
    decision: {
      action: 'bounced',
      reason:
        'the message is larger than Exchange Online accepts for this mailbox (the size is in the response; the default limit is 35 MB, an admin can raise it to 150 MB with Set-Mailbox -MaxSendSize)',
      dsn: '5.3.4',
      markDown: false,
    },
  },
  {
    when: 'Graph 429, 503 or 504 (throttled or briefly unavailable; Retry-After longer than the transport waits itself)',
    match: (e) => e.code === 'EGRAPH' && (e.responseCode === 429 || e.responseCode === 503 || e.responseCode === 504),
    decision: {
      action: 'deferred',
      reason: 'Microsoft Graph throttled the request or is briefly unavailable (429/503/504); retrying later on the same upstream, after its Retry-After',
      dsn: '4.3.2',
      markDown: false,
    },
  },
  {
    when: 'any other Graph 5xx',
    match: (e) => e.code === 'EGRAPH' && e.responseCode !== undefined && e.responseCode >= 500,
    decision: { action: 'failover', reason: 'Microsoft Graph failed to handle the request (5xx); trying the next upstream', dsn: '4.4.1', markDown: true },
  },
  {
    when: 'the upstream could not be built from its config (E_CONFIG: unreadable tls file, bad certificate; send-test and validate only)',
    match: (e) => e.code === 'E_CONFIG',
    decision: { action: 'failover', reason: 'this upstream cannot be used as configured (see the message); fix its config', dsn: '4.3.5', markDown: true },
  },
  {
    when: 'the POP3-/IMAP-before-SMTP login failed (ERECEIVE: receiveBeforeSend could not connect, or the POP3/IMAP server refused user or password)',
    match: (e) => e.code === 'ERECEIVE',
    decision: {
      action: 'failover',
      reason: 'the POP3/IMAP login this upstream requires before SMTP failed (see the message): check receiveBeforeSend.host, port, security, user and pass',
      dsn: '4.7.0',
      markDown: true,
    },
  },
  ...M365_AUTH_RULES,
  {
    when: 'authentication failed (EAUTH, any reply)',
    match: (e) => e.code === 'EAUTH',
    decision: { action: 'failover', reason: 'the upstream refused our credentials; check auth.user and the password or token', dsn: '4.7.0', markDown: true },
  },
  {
    when: '432 4.3.2 sender thread limit exceeded (Exchange Online: 3 connections per mailbox)',
    match: (e) => e.responseCode === 432 || /thread limit exceeded/i.test(text(e)),
    decision: {
      action: 'deferred',
      reason: 'the upstream has too many concurrent connections for this mailbox (Exchange Online allows 3); retrying later on the same upstream',
      dsn: '4.3.2',
      markDown: false,
    },
  },
  {
    when: '554 5.2.0 SubmissionQuotaExceededException (mailbox out of its daily recipient quota)',
    match: (e) => /SubmissionQuotaExceeded/i.test(text(e)),
    decision: {
      action: 'failover',
      reason: 'the sending mailbox is over its daily quota (Exchange Online: 10,000 recipients a day); skipping this upstream',
      dsn: '4.2.0',
      markDown: true,
    },
  },
  {
    when: 'TLS failed (ETLS: STARTTLS missing or refused; certificate or handshake errors)',
    match: (e) => e.code === 'ETLS' || (e.code === 'ESOCKET' && isCertificateError(e)),
    decision: { action: 'failover', reason: 'TLS with the upstream failed (STARTTLS not offered, or its certificate was not trusted)', dsn: '4.7.5', markDown: true },
  },
  {
    when: 'could not connect, or the connection broke (ECONNECTION, ESOCKET incl. ECONNREFUSED, ETIMEDOUT, EDNS, EPROXY)',
    match: (e) => e.code !== undefined && CONNECTION_CODES.has(e.code),
    decision: { action: 'failover', reason: 'the upstream could not be reached or dropped the connection', dsn: '4.4.1', markDown: true },
  },
  {
    when: 'the greeting refused us (421, other 4xx or 554 at connect: EPROTOCOL on CONN)',
    match: (e) => e.command === 'CONN' && (e.code === 'EPROTOCOL' || e.responseCode !== undefined),
    decision: { action: 'failover', reason: 'the upstream refused the connection in its greeting', dsn: '4.4.1', markDown: true },
  },
  {
    when: '530 or 503 to MAIL FROM (the upstream wants AUTH or STARTTLS we did not give it)',
    match: (e) => e.command === 'MAIL FROM' && (e.responseCode === 530 || e.responseCode === 503),
    decision: {
      action: 'failover',
      reason: 'the upstream requires authentication or TLS before MAIL FROM; check this upstream\'s security and auth settings',
      dsn: '4.7.0',
      markDown: true,
    },
  },
  {
    when: 'any 4xx to MAIL FROM, RCPT TO or DATA',
    match: (e) => is4xx(e) && e.command !== undefined && MESSAGE_COMMANDS.has(e.command),
    decision: { action: 'failover', reason: 'the upstream deferred the message (4xx); trying the next upstream', dsn: '4.0.0', markDown: false },
  },
  {
    when: 'a 5xx (except 503) to MAIL FROM, RCPT TO or DATA: the message itself was refused',
    match: (e) =>
      is5xx(e) && e.responseCode !== 503 && (e.code === 'EENVELOPE' || e.code === 'EMESSAGE') && e.command !== undefined && MESSAGE_COMMANDS.has(e.command),
    decision: { action: 'bounced', reason: 'the upstream refused the message permanently (5xx)', dsn: '5.0.0', markDown: false },
  },
  {
    when: 'anything else (never bounced: retried later)',
    match: () => true,
    decision: { action: 'deferred', reason: 'unclassified delivery error; retrying later', dsn: '4.0.0', markDown: false },
  },
];

const ENHANCED = /\b([245])\.(\d{1,3})\.(\d{1,3})\b/;

/** The upstream's own enhanced code when it has the class the decision implies. */
function dsnFor(decision: Decision, e: DeliveryErrorShape): string {
  const found = ENHANCED.exec(e.response ?? '');
  if (found === null) return decision.dsn;
  const wantedClass = decision.action === 'bounced' ? '5' : '4';
  return found[1] === wantedClass ? found[0] : decision.dsn;
}

function field(value: unknown, key: string): unknown {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[key] : undefined;
}

/** Reads the fields the rules need from whatever was thrown. */
export function toErrorShape(err: unknown): DeliveryErrorShape {
  const code = isRelayError(err) ? err.code : field(err, 'code');
  const responseCode = field(err, 'responseCode');
  const command = field(err, 'command');
  const response = field(err, 'response');
  const message = err instanceof Error ? err.message : String(err);
  return {
    code: typeof code === 'string' ? code : undefined,
    responseCode: typeof responseCode === 'number' ? responseCode : undefined,
    command: typeof command === 'string' ? command : undefined,
    response: typeof response === 'string' ? response : undefined,
    message,
  };
}

/** The first rule that matches `err` (the last rule matches everything). */
export function matchRule(err: unknown): Rule {
  const shape = toErrorShape(err);
  const rule = RULES.find((r) => r.match(shape));
  /* c8 ignore next */
  if (rule === undefined) throw new Error('classify: RULES must end with a catch-all row');
  return rule;
}

export function classifyError(err: unknown): Decision {
  const shape = toErrorShape(err);
  const rule = matchRule(err);
  return { ...rule.decision, dsn: dsnFor(rule.decision, shape) };
}

/**
 * One recipient refused while others were accepted (`SendReport.rejected`): classified as if
 * RCPT TO had failed for it alone (5xx → bounced for that recipient, 4xx → failover, no code → deferred).
 */
export function classifyRejection(r: RecipientRejection): Decision {
  return classifyError({
    code: 'EENVELOPE',
    responseCode: r.responseCode,
    command: 'RCPT TO',
    response: r.response,
    message: `recipient ${r.address} rejected`,
  });
}
