/**
 * The one strict config schema: it gives the TypeScript types, the defaults, the
 * validation errors and the documentation (README reference and config.schema.json).
 *
 * Does: describe every key with its unit in its name and its default.
 * Never: read files or the environment (config/load.ts resolves references first).
 * Assumes: `${env:..}`, `${file:..}` and `enc:` references are already resolved.
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { readAuthority } from './authority.js';

const CRLF = /[\r\n]/;

/** A string that ends up in an SMTP command or a header: no CR or LF, ever. */
const line = () =>
  z.string().refine((v) => !CRLF.test(v), { message: 'must not contain CR or LF (it would end up in an SMTP command or header)' });

/**
 * A one-line secret (password, client secret). A ${file:} reference already drops one trailing
 * newline (Docker secrets end with one); a value with more lines is the wrong file or a paste
 * accident, and would be sent with its line breaks.
 */
const secretLine = () =>
  z.string().refine((v) => !CRLF.test(v), { message: 'must be one line: a ${file:} secret may end with one newline (it is dropped), not hold several lines (is it the right file?)' });

const ADDRESS = /^[^\s@<>()",;:\\[\]]+@[^\s@<>()",;:\\[\]]+$/;
const address = () => line().regex(ADDRESS, { message: 'must be a plain email address like user@example.com' });
/**
 * Why a pattern can never match an address (matchesAddressPattern in core/address.ts knows
 * only `user@x`, `*@x` and `*@*.x`; a `*` anywhere else is taken literally and so never
 * matches what the admin meant, e.g. `*@*`), or undefined when it can.
 */
export function patternProblem(pattern: string): string | undefined {
  const at = pattern.lastIndexOf('@');
  const local = pattern.slice(0, at);
  const domain = pattern.slice(at + 1);
  const wildcardDomain = domain.startsWith('*.') ? domain.slice(2) : domain;
  if ((local !== '*' && local.includes('*')) || wildcardDomain.includes('*') || wildcardDomain === '' || wildcardDomain.startsWith('.')) {
    return `"${pattern}" can never match: the only wildcards are *@example.com (any user), *@*.example.com (any subdomain) and, in routes, "*" alone (every recipient no other route matches)`;
  }
  return undefined;
}

/** `user@example.com`, `*@example.com` or `*@*.example.com` */
const addressPattern = () =>
  line()
    .regex(/^(\*|[^\s@<>]+)@(\*\.)?[^\s@<>]+$/, { message: 'must be an address or a pattern like *@example.com' })
    .superRefine((v, ctx) => {
      const problem = /@/.test(v) ? patternProblem(v) : undefined;
      if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
    });
/** A route pattern: an address pattern, or "*" alone (the catch-all route). */
const routePattern = () => z.union([z.literal('*'), addressPattern()], { message: 'must be an address, a pattern like *@example.com, or "*" (the catch-all route)' });

const HEADER_NAME = /^[!-9;-~]+$/; // printable ASCII without ':' (RFC 5322 field name)
const headerName = () => line().regex(HEADER_NAME, { message: 'must be a header field name (printable ASCII, no colon or space)' });

const cidr = () =>
  line().refine(
    (v) => {
      const [ip, bits, extra] = v.split('/');
      if (extra !== undefined || ip === undefined) return false;
      const family = isIP(ip);
      if (family === 0) return false;
      if (bits === undefined) return true;
      const n = Number(bits);
      return Number.isInteger(n) && n >= 0 && n <= (family === 4 ? 32 : 128);
    },
    { message: 'must be an IP address or CIDR range like 127.0.0.0/8 or ::1/128' },
  );

const port = () => z.number().int().min(1).max(65535);

export const limitsSchema = z
  .strictObject({
    maxAttachments: z.number().int().min(0).default(50).describe('Most attachments a message may carry (0: none allowed). Inline images count.'),
    maxAttachmentsTotalMB: z.number().min(0).default(10).describe('Most decoded attachment bytes per message, in MB (1 MB = 1,048,576 bytes).'),
    countInlineParts: z.boolean().default(true).describe('Whether inline parts (embedded images) count as attachments, as mailparser reports them.'),
  })
  .describe('Attachment limits; a message over them gets 552 5.3.4.');

const listenSchema = z.strictObject({
  host: line().default('127.0.0.1').describe('Address to listen on. Loopback by default; use 0.0.0.0 only inside a container network.'),
  port: z.number().int().min(0).max(65535).default(25).describe('SMTP port. 25 is what legacy apps expect (needs CAP_NET_BIND_SERVICE or root); 0 picks a free port (tests).'),
  hostname: line().default('smtp-sidecar').describe('Name in the greeting and in Message-IDs the relay adds.'),
  allowedClients: z.array(cidr()).default(['127.0.0.0/8', '::1/128']).describe('Client addresses/CIDR ranges allowed to connect; others get 554 5.7.1.'),
  maxMessageSizeMB: z.number().positive().default(35).describe('Largest message accepted, in MB; advertised as SIZE, larger gets 552 5.3.4.'),
  maxRecipients: z.number().int().min(1).default(100).describe('Most recipients per message; more get 452 4.5.3.'),
  maxClients: z.number().int().min(1).default(100).describe('Most simultaneous client connections; more get 421.'),
  socketTimeoutSeconds: z.number().positive().default(60).describe('Idle client connections are closed after this many seconds.'),
  shutdownGraceSeconds: z.number().min(0).default(30).describe('On SIGTERM, how long open sessions may finish before they get 421.'),
  addReceivedHeader: z
    .boolean()
    .default(true)
    .describe('Add a Received: trace header (RFC 5321 4.4) to every message: the client address and HELO name, listen.hostname and the queue id.'),
  maxSessionSeconds: z
    .number()
    .positive()
    .default(600)
    .describe('Longest an SMTP session may last; then it gets 421 4.4.2 (after a DATA in progress ends) and the client reconnects.'),
  maxJunkCommands: z
    .number()
    .int()
    .min(1)
    .default(20)
    .describe('Most commands that send no mail (NOOP, RSET, HELO/EHLO, VRFY, HELP, unknown) a session may send between two messages; more get 421 4.7.0. Such commands also do not count as activity: one that arrives after socketTimeoutSeconds without mail gets 421 4.4.2.'),
  minDataRateBytesPerSecond: z
    .number()
    .min(0)
    .default(256)
    .describe('Slowest average rate a DATA phase may have once it has run minDataRateAfterSeconds; slower gets 421 4.4.2 and nothing is accepted (0: no minimum).'),
  minDataRateAfterSeconds: z.number().positive().default(30).describe('How long a DATA phase runs before minDataRateBytesPerSecond applies.'),
  maxInFlightMB: z
    .number()
    .positive()
    .default(64)
    .describe(
      'Most message data held in memory by all DATA transactions together, in MB (header blocks, and bodies until they pass 256 KiB and go to a spool file). A DATA that starts while it is used up waits (at most half of socketTimeoutSeconds, 30 s at most), then gets 452 4.3.1.',
    ),
  bareLineFeeds: z.enum(['normalize', 'reject']).default('normalize').describe('Bare CR or LF in message data: normalize to CRLF (as Postfix) or reject with 550 5.6.0.'),
});

const confidentialSchema = z.strictObject({
  enabled: z.boolean().default(false).describe('Add the confidential marking headers to every message.'),
  headers: z.record(headerName(), line()).default({ Sensitivity: 'Company-Confidential' }).describe('Headers to set (replacing existing ones of the same name).'),
});

const messageSchema = z.strictObject({
  globalFrom: address().optional().describe('The one From address the relay sends as. Unset: senders are kept.'),
  rewriteFrom: z.enum(['always', 'unless-allowed', 'never']).default('always').describe('When to rewrite From to globalFrom (only when globalFrom is set).'),
  allowedSenders: z.array(addressPattern()).default([]).describe('Senders kept as they are with rewriteFrom "unless-allowed" (addresses or *@domain).'),
  keepOriginalFromAs: z
    .union([z.literal('none'), headerName()])
    .default('Reply-To')
    .describe('Header that keeps the original From after a rewrite (only added when the message has none); "none" drops it.'),
  confidential: confidentialSchema.prefault({}).describe('Confidential marking headers.'),
  alwaysCc: z.array(address()).default([]).describe('Added to the Cc header and the envelope of every message.'),
  alwaysBcc: z.array(address()).default([]).describe('Added to the envelope of every message (never to a header).'),
  stripBcc: z.boolean().default(true).describe('Remove Bcc and Resent-Bcc header fields (as Postfix cleanup does); the envelope recipients still get the message. false relays them as they are.'),
  defaultFrom: address().optional().describe('From added when a message has none (PeopleSoft SMTPSender); an existing From is never rewritten (globalFrom does that).'),
  defaultReplyTo: address().optional().describe('Reply-To added when a message has none (a fixed reply address, e.g. PeopleSoft SMTPBlackberryReplyTo); wins over keepOriginalFromAs.'),
});

const retrySchema = z.strictObject({
  minBackoffSeconds: z.number().positive().default(60).describe('First retry delay; doubles each attempt (with jitter).'),
  maxBackoffSeconds: z.number().positive().default(3600).describe('Longest retry delay.'),
  maxLifetimeHours: z.number().positive().default(48).describe('After this long in the queue a message moves to failed/.'),
});

const notifySchema = z.strictObject({
  to: z
    .array(address())
    .default([])
    .describe('Admin addresses that get a failure notice (RFC 3464 delivery status notification, from the null sender <>) when a message moves to failed/: refused for good, also after the client had its 250, or expired. Empty: no admin notices.'),
  sender: z.boolean().default(false).describe('Also send the notice to the original envelope sender (off by default: legacy senders are rarely read).'),
  from: address().optional().describe('From header of the notices; default message.globalFrom, else postmaster@<listen.hostname>.'),
  maxPerHour: z.number().int().min(1).default(10).describe('Most notices one address gets in an hour; more are not sent (logged as notice.rate-limited).'),
});

const deliverySchema = z.strictObject({
  spoolDir: line().default('./spool').describe('Durable queue directory (tmp/, queue/, failed/).'),
  outboxDir: line().default('./outbox').describe('Where messages go as .eml files when no upstream is configured.'),
  waitSeconds: z
    .number()
    .min(-1)
    .default(10)
    .describe('How long the DATA reply waits for the first delivery attempt; 0 replies right after spooling; -1 never queues (the client gets the final answer or 451 4.4.1).'),
  fsync: z.boolean().default(true).describe('fsync spool files and directories before replying 250. Turn off only for tests on throwaway disks.'),
  concurrency: z.number().int().min(1).default(20).describe('Most messages in delivery at once across all upstreams.'),
  upstreamDownSeconds: z.number().min(0).default(60).describe('How long an upstream that failed is skipped before it is probed again.'),
  notify: notifySchema.prefault({}).describe('Failure notices: who is told when mail finally fails.'),
  retry: retrySchema.prefault({}).describe('Retry backoff and the lifetime of a queued message.'),
  failedRetentionDays: z
    .number()
    .min(0)
    .default(30)
    .describe('Failed messages (failed/) older than this many days are deleted by the relay (checked at start and hourly); 0 keeps them until an admin purges them.'),
});

const tlsSchema = z.strictObject({
  minVersion: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2').describe('Lowest TLS version accepted.'),
  maxVersion: z
    .enum(['TLSv1.2', 'TLSv1.3'])
    .optional()
    .describe('Highest TLS version offered (unset: the highest Node supports); equal to minVersion for exactly one version (PeopleSoft SMTPSSLProtocol).'),
  ca: z.string().optional().describe('PEM file of the CA that signed the upstream certificate (path).'),
  servername: line().optional().describe('Name expected in the upstream certificate (SNI); defaults to host.'),
  rejectUnauthorized: z.boolean().default(true).describe('Verify the upstream certificate. false logs a warning at start-up.'),
  cert: z.string().optional().describe('Client certificate PEM file (path), for upstreams that authenticate clients.'),
  key: z.string().optional().describe('Client private key PEM file (path).'),

});

const timeoutsSchema = z.strictObject({
  connectSeconds: z.number().positive().default(10).describe('How long to wait for the TCP connection (through the proxy when one is set).'),
  greetingSeconds: z.number().positive().default(10).describe('How long to wait for the 220 greeting once connected, in full (not cut short by connectSeconds); an implicit-TLS handshake and STARTTLS must fit in connectSeconds + greetingSeconds.'),
  socketSeconds: z.number().positive().default(60).describe('How long a connection may stay idle during a transaction.'),
});

const authNone = z.strictObject({ type: z.literal('none').describe('Authentication variant: no AUTH.') });
const authBasic = z.strictObject({
  type: z.enum(['login', 'plain']).describe('Authentication variant: SASL LOGIN or PLAIN with user and pass.'),
  user: line().min(1).describe('User name (login/plain) or the mailbox that sends (oauth2).'),
  pass: secretLine().min(1).describe('Secret: use ${env:NAME}, ${file:/run/secrets/x} or enc:...'),
  authzid: line()
    .min(1)
    .optional()
    .describe('SASL PLAIN authorization identity: log in as user but act as this identity (RFC 4616; PeopleSoft SASL authorization id). Only with type "plain".'),
  allowPlaintext: z
    .boolean()
    .default(false)
    .describe('Send the password where no TLS protects it. Off (default): security "starttls" requires STARTTLS (as "starttls-required") and "none" is a config error. On: allowed, with a warning at start-up and in validate.'),
}).superRefine((v, ctx) => {
  if (v.authzid !== undefined && v.type !== 'plain') ctx.addIssue({ code: 'custom', message: 'authzid is sent with SASL PLAIN only: set type "plain"', path: ['authzid'] });
});
const authNtlm = z.strictObject({
  type: z.literal('ntlm').describe('Authentication variant: NTLM (NTLMv2) with user, pass and domain, for on-premises Exchange (PeopleSoft SMTPNTLMEnable).'),
  user: line().min(1).describe('User name (without the domain).'),
  pass: z.string().min(1).describe('Secret: use ${env:NAME}, ${file:/run/secrets/x} or enc:...'),
  domain: line().optional().describe('NTLM domain (PeopleSoft SMTPNTLMDomain); unset: the domain the server names in its challenge.'),
  workstation: line().default('').describe('Workstation name sent in the NTLM messages (empty by default: the host name stays private).'),
});
const clientCertificateSchema = z.strictObject({
  thumbprintSha256: z.string().regex(/^[0-9a-fA-F]{64}$/, { message: 'must be the certificate SHA-256 thumbprint as 64 hex digits' }).describe('SHA-256 thumbprint of the certificate, 64 hex digits.'),
  privateKey: z.string().min(1).describe('PEM private key text (secret: use ${file:/path} or enc:...)'),
  x5c: z.string().optional().describe('PEM certificate chain, sent as x5c (subject name/issuer auth); also used to warn before expiry.'),
});
const DEFAULT_SCOPE_SMTP = 'https://outlook.office365.com/.default';
const DEFAULT_SCOPE_GRAPH = 'https://graph.microsoft.com/.default';

/** OAuth2 client credentials; the SMTP and Graph variants differ only in the default scope. */
const oauth2Auth = (defaultScope: string, what: string, typeMessage?: string) =>
  z
    .strictObject({
      type: z.literal('oauth2', typeMessage === undefined ? undefined : { message: typeMessage }).describe(what),
      user: address().describe('The mailbox that sends.'),
      tenantId: line().min(1).describe('Microsoft Entra tenant ID (GUID) or domain.'),
      clientId: line().min(1).describe('Application (client) ID of the app registration.'),
      clientSecret: secretLine().min(1).optional().describe('Client secret of the app registration (secret: use ${env:NAME}, ${file:/path} or enc:...). Set exactly one of clientSecret or clientCertificate.'),
      clientCertificate: clientCertificateSchema.optional().describe('Certificate credential of the app registration, instead of clientSecret.'),
      authority: z
        .url({ protocol: /^https$/, message: 'must be an https:// URL' })
        .default('https://login.microsoftonline.com')
        .describe('Token authority: the base (https://login.microsoftonline.com, a sovereign cloud, a private endpoint) or the full token URL ("server token URL": https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token); validate says which it understood.'),
      scope: line().default(defaultScope).describe('OAuth2 scope requested with client credentials.'),
      refreshBeforeExpirySeconds: z.number().min(0).default(600).describe('Fetch a new token this long before the current one expires.'),
      tokenCa: z.string().optional().describe('PEM file (path) of a CA for the token endpoint, e.g. behind TLS inspection.'),
    })
    .superRefine((v, ctx) => {
      if ((v.clientSecret === undefined) === (v.clientCertificate === undefined)) {
        ctx.addIssue({ code: 'custom', message: 'set exactly one of clientSecret or clientCertificate', path: ['clientSecret'] });
      }
      const authority = readAuthority(v.authority, v.tenantId);
      if (!authority.ok) ctx.addIssue({ code: 'custom', message: authority.problem, path: ['authority'] });
    });
const authOauth2 = oauth2Auth(DEFAULT_SCOPE_SMTP, 'Authentication variant: OAuth2 client credentials and SASL XOAUTH2 (Microsoft 365).');

/** POP3-/IMAP-before-SMTP (eG Enterprise "mail receiver settings"): a login to read mail before sending. */
const receiveBeforeSendSchema = z
  .strictObject({
    protocol: z.enum(['pop3', 'imap']).default('pop3').describe('Mail-reading protocol to log in with: "pop3" (USER/PASS, QUIT) or "imap" (LOGIN, LOGOUT).'),
    host: line().min(1).describe('POP3 or IMAP server host name or address.'),
    port: port().optional().describe('Port; unset: 995 (pop3) / 993 (imap) with security "tls", else 110 / 143.'),
    security: z.enum(['tls', 'starttls', 'none']).default('tls').describe('tls (implicit TLS, port 995/993) | starttls (STLS / STARTTLS, required) | none (cleartext: needs allowPlaintext). Certificates are checked with this upstream\'s tls.ca and tls.rejectUnauthorized.'),
    user: line().min(1).describe('POP3/IMAP user name.'),
    pass: secretLine().min(1).describe('POP3/IMAP password (secret: use ${env:NAME}, ${file:/run/secrets/x} or enc:...).'),
    allowPlaintext: z.boolean().default(false).describe('Allow security "none", which sends the POP3/IMAP password in clear.'),
    validMinutes: z.number().min(0).default(5).describe('How long a successful login is trusted: SMTP connections opened within this many minutes of it log in no more (0: log in before every connection). Keep it below the server\'s own POP/IMAP-before-SMTP window.'),
  })
  .superRefine((v, ctx) => {
    if (v.security === 'none' && !v.allowPlaintext) {
      ctx.addIssue({ code: 'custom', message: `security "none" would send the ${v.protocol.toUpperCase()} password in clear: use "tls" or "starttls" (or set allowPlaintext: true to accept that)`, path: ['security'] });
    }
  });

/** Keys every upstream has, whatever its protocol. */
const upstreamName = () =>
  line().regex(/^[A-Za-z0-9._-]+$/, { message: 'must be letters, digits, dot, dash or underscore' }).describe('Unique name, used in logs, metrics, routes and health (letters, digits, dot, dash, underscore).');
const upstreamFrom = () => address().optional().describe('Sender this upstream requires; overrides globalFrom for messages sent through it.');
const upstreamLimits = () =>
  z
    .strictObject({
      maxAttachments: z.number().int().min(0).optional().describe('Most attachments this upstream takes (unset: no own limit).'),
      maxAttachmentsTotalMB: z.number().min(0).optional().describe('Most decoded attachment MB this upstream takes (unset: no own limit).'),
    })
    .optional()
    .describe('Per-upstream attachment limits (no defaults: only what is set applies); a message over them skips this upstream.');
const upstreamRate = () => z.number().int().min(1).optional().describe('Rate cap (Exchange Online: 30 per mailbox). Messages over it wait in the spool.');

const smtpUpstreamSchema = z.strictObject({
  name: upstreamName(),
  protocol: z.literal('smtp').default('smtp').describe('How the relay talks to this upstream: "smtp" (SMTP submission or relay) or "graph" (Microsoft Graph sendMail, see the graph variant).'),
  host: line().min(1).describe('Upstream SMTP server host name or address.'),
  port: port().default(587).describe('Upstream SMTP port (587 submission with STARTTLS, 465 implicit TLS, 25 relay).'),
  hostname: line().optional().describe('EHLO name (FQDN) sent to this upstream; defaults to listen.hostname.'),
  security: z.enum(['none', 'starttls', 'starttls-required', 'tls']).default('starttls-required').describe('none | starttls (use STARTTLS when offered; required with any password or token unless auth.allowPlaintext) | starttls-required | tls (implicit TLS, port 465).'),
  tls: tlsSchema.prefault({}).describe('TLS settings for this upstream.'),
  timeouts: timeoutsSchema.prefault({}).describe('Timeouts for this upstream.'),
  auth: z.discriminatedUnion('type', [authNone, authBasic, authNtlm, authOauth2]).default({ type: 'none' }).describe('How the relay authenticates to this upstream; one of the variants below, chosen by auth.type.'),
  from: upstreamFrom(),
  proxy: z.url({ protocol: /^https?$/, message: 'must be an http:// or https:// proxy URL' }).optional().describe('HTTP CONNECT proxy for SMTP and token requests.'),
  limits: upstreamLimits(),
  maxMessagesPerMinute: upstreamRate(),
  maxConnections: z.number().int().min(1).default(3).describe('Pooled connections (Exchange Online: 3 per mailbox).'),
  receiveBeforeSend: receiveBeforeSendSchema.optional().describe('Log in to this POP3 or IMAP server before each SMTP connection (POP3-/IMAP-before-SMTP, eG "mail receiver settings"), for servers that accept mail only from clients that recently read mail. A failed login fails over to the next upstream.'),
});

/** Keys of an SMTP upstream that mean nothing to a Graph upstream (named in the error). */
const SMTP_ONLY_KEYS = ['host', 'port', 'hostname', 'security', 'maxConnections', 'receiveBeforeSend'];

const graphUpstreamSchema = z.strictObject(
  {
    name: upstreamName(),
    protocol: z.literal('graph').describe('Microsoft Graph: the mailbox auth.user sends through Graph\'s mail API (for tenants with SMTP AUTH turned off).'),
    auth: oauth2Auth(
      DEFAULT_SCOPE_GRAPH,
      'OAuth2 client credentials for Microsoft Graph (application permission Mail.Send); the default scope is https://graph.microsoft.com/.default.',
      'a graph upstream needs auth.type "oauth2" (Microsoft Graph takes OAuth2 tokens only)',
    ).describe('OAuth2 client credentials (auth.type "oauth2" is the only type Graph takes).'),
    graph: z
      .strictObject({
        endpoint: z.url({ protocol: /^https$/, message: 'must be an https:// URL' }).default('https://graph.microsoft.com').describe('Graph endpoint; change it for sovereign clouds (e.g. https://graph.microsoft.us).'),
        saveToSentItems: z.boolean().default(true).describe('Keep a copy in the mailbox\'s Sent Items. false sends every message as a draft marked delete-after-submit (three requests instead of one).'),
      })
      .prefault({})
      .describe('Microsoft Graph settings.'),
    tls: tlsSchema.omit({ cert: true, key: true }).prefault({}).describe('TLS settings for the Graph endpoint (tls.ca: a CA for a proxy that inspects TLS).'),
    timeouts: timeoutsSchema.omit({ greetingSeconds: true }).prefault({}).describe('Timeouts for Graph requests (socketSeconds: the longest wait for an answer).'),
    from: upstreamFrom(),
    proxy: z.url({ protocol: /^https?$/, message: 'must be an http:// or https:// proxy URL' }).optional().describe('HTTP CONNECT proxy for Graph and token requests.'),
    limits: upstreamLimits(),
    maxMessagesPerMinute: upstreamRate(),
  },
  {
    error: (issue) => {
      if (issue.code !== 'unrecognized_keys') return undefined;
      const keys = (issue as { keys?: string[] }).keys ?? [];
      const smtp = keys.filter((k) => SMTP_ONLY_KEYS.includes(k));
      return smtp.length > 0
        ? `${smtp.map((k) => `"${k}"`).join(', ')} ${smtp.length === 1 ? 'is an SMTP setting' : 'are SMTP settings'}: a graph upstream talks to graph.endpoint over HTTPS; remove ${smtp.length === 1 ? 'it' : 'them'}`
        : `unknown key(s) for a graph upstream: ${keys.map((k) => `"${k}"`).join(', ')}`;
    },
  },
);

export const upstreamSchema = z.discriminatedUnion('protocol', [smtpUpstreamSchema, graphUpstreamSchema]);

const routeSchema = z.strictObject({
  recipients: z
    .array(routePattern())
    .min(1)
    .describe('Recipient addresses or patterns like *@sms.example.net; ["*"] alone makes the catch-all route: recipients that no other route matches use only its upstreams.'),
  upstreams: z.array(line()).min(1).describe('Names of upstreams (from upstreams[].name) to try in order.'),
});

const logSchema = z.strictObject({
  level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info').describe('Lowest level logged.'),
  trace: z.enum(['off', 'summary', 'detail']).default('summary').describe('off | summary (one delivery line per recipient) | detail (adds the upstream SMTP transcript, AUTH masked, whatever log.level is). Switches on reload.'),
  subjects: z.boolean().default(false).describe('Log message subjects (off for privacy).'),
  format: z
    .enum(['json', 'line'])
    .default('json')
    .describe('json: one JSON object per line (for jq and log shippers); line: one human line per event, Postfix style (to=<...>, relay=..., delay=..., dsn=..., status=sent (250 ...)). start --pretty forces line.'),
});

const httpSchema = z.strictObject({
  enabled: z.boolean().default(true).describe('Serve the operations HTTP endpoints.'),
  host: line().default('127.0.0.1').describe('Address the HTTP server listens on. Loopback by default; 0.0.0.0 in a container for health checks and scraping. The admin API answers loopback clients with the token from <spoolDir>/admin.token only.'),
  port: z.number().int().min(0).max(65535).default(8025).describe('HTTP port (0 picks a free port).'),
  maxConnections: z.number().int().min(1).default(64).describe('Most simultaneous HTTP connections; more are closed at once (logged once per minute with a count).'),
  headersTimeoutSeconds: z.number().positive().default(10).describe('A connection must send its whole request head within this many seconds of connecting (or of its previous request), or it is closed with 408.'),
  idleTimeoutSeconds: z.number().positive().default(5).describe('A keep-alive connection with no new request is closed after this many seconds.'),
});

export const configSchema = z
  .strictObject({
    $schema: z.string().optional(),
    listen: listenSchema.prefault({}).describe('The SMTP listener legacy applications connect to.'),
    message: messageSchema.prefault({}).describe('The site mail policy applied to every message before it is spooled.'),
    limits: limitsSchema.prefault({}),
    delivery: deliverySchema.prefault({}).describe('The durable spool, the synchronous wait and retries.'),
    upstreams: z.array(upstreamSchema).default([]).describe('Ordered list of upstream servers: the first is the primary, the rest are tried in order (failover). Empty: messages go to delivery.outboxDir as .eml files.'),
    routes: z.array(routeSchema).default([]).describe('Recipient-based routing: recipients matching a route (the first that matches) use its upstreams in order; the others use the catch-all route (recipients ["*"]) when there is one, else all upstreams.'),
    log: logSchema.prefault({}).describe('Logging (pino JSON lines on stdout).'),
    http: httpSchema.prefault({}).describe('The operations HTTP server: /healthz, /readyz, /metrics and the loopback-only admin queue API.'),
  })
  .superRefine((cfg, ctx) => {
    const names = new Set<string>();
    cfg.upstreams.forEach((u, i) => {
      if (u.tls.maxVersion !== undefined && u.tls.maxVersion < u.tls.minVersion) {
        ctx.addIssue({ code: 'custom', message: 'must not be lower than tls.minVersion', path: ['upstreams', i, 'tls', 'maxVersion'] });
      }
      if (names.has(u.name)) ctx.addIssue({ code: 'custom', message: `duplicate upstream name "${u.name}"`, path: ['upstreams', i, 'name'] });
      names.add(u.name);
      if (u.protocol === 'smtp' && (u.auth.type === 'login' || u.auth.type === 'plain') && u.security === 'none' && !u.auth.allowPlaintext) {
        ctx.addIssue({
          code: 'custom',
          message: `security "none" would send the ${u.auth.type} password in clear: use "starttls-required" or "tls" (or set auth.allowPlaintext: true to accept that)`,
          path: ['upstreams', i, 'security'],
        });
      }
      if (u.protocol === 'smtp' && u.auth.type === 'oauth2' && u.security === 'none') {
        ctx.addIssue({ code: 'custom', message: 'oauth2 needs TLS: use security "starttls-required" or "tls"', path: ['upstreams', i, 'security'] });
      }
    });
    let catchAll: number | undefined;
    cfg.routes.forEach((r, i) => {
      r.upstreams.forEach((n, j) => {
        if (!names.has(n)) ctx.addIssue({ code: 'custom', message: `unknown upstream "${n}"`, path: ['routes', i, 'upstreams', j] });
      });
      if (!r.recipients.includes('*')) return;
      if (r.recipients.length > 1) {
        ctx.addIssue({ code: 'custom', message: '"*" (the catch-all) must be the only pattern of its route: put the other patterns in a route of their own', path: ['routes', i, 'recipients'] });
      }
      if (catchAll !== undefined) {
        ctx.addIssue({ code: 'custom', message: `only one catch-all route ("*") is allowed; routes[${catchAll}] is one already`, path: ['routes', i, 'recipients'] });
      }
      catchAll ??= i;
    });
    if (cfg.delivery.retry.minBackoffSeconds > cfg.delivery.retry.maxBackoffSeconds) {
      ctx.addIssue({ code: 'custom', message: 'must not exceed maxBackoffSeconds', path: ['delivery', 'retry', 'minBackoffSeconds'] });
    }
  });

export type Config = z.infer<typeof configSchema>;
export type UpstreamConfig = z.infer<typeof upstreamSchema>;
export type SmtpUpstreamConfig = Extract<UpstreamConfig, { protocol: 'smtp' }>;
export type GraphUpstreamConfig = Extract<UpstreamConfig, { protocol: 'graph' }>;
export type Limits = z.infer<typeof limitsSchema>;
export type MessageConfig = Config['message'];
export type ListenConfig = Config['listen'];
export type DeliveryConfig = Config['delivery'];
export type RouteConfig = Config['routes'][number];
export type OAuth2Auth = Extract<UpstreamConfig['auth'], { type: 'oauth2' }>;

