/**
 * The one secret scrubber: replaces every known secret, and the forms it takes on the wire
 * (base64, SASL PLAIN, XOAUTH2), with [REDACTED] in text and in error messages.
 *
 * Does: remember configured secrets (passwords, client secrets, private keys) for good and the
 *   last few access tokens (a token is replaced every hour; older ones are no longer sent).
 * Never: scrub values shorter than 4 characters (they would mangle ordinary text).
 * Assumes: every text a transport, a token source or `validate --connect` shows passes through
 *   the scrubber that knows that upstream's secrets.
 */

const MIN_SECRET_LENGTH = 4;
/** access tokens remembered per scrubber: the current one and a few before it */
const TOKENS_KEPT = 4;

const b64 = (value: string): string => Buffer.from(value, 'utf8').toString('base64');

/** Forms in which a secret could show up in a reply, a transcript or an error text. */
function wireForms(user: string, secret: string): string[] {
  return [secret, b64(secret), b64(`\u0000${user}\u0000${secret}`), b64(`user=${user}\u0001auth=Bearer ${secret}\u0001\u0001`)];
}

export class SecretScrubber {
  private readonly fixed = new Set<string>();
  private readonly tokens: string[][] = [];

  /** A configured secret (password, client secret, private key), with its SASL forms for `user` (and a PLAIN authzid). */
  add(user: string, secret: string, authzid?: string): void {
    if (secret.length < MIN_SECRET_LENGTH) return;
    for (const form of wireForms(user, secret)) this.fixed.add(form);
    if (authzid !== undefined) this.fixed.add(b64(`${authzid}\u0000${user}\u0000${secret}`));
  }

  /** An access token handed out for `user`: the last few are remembered. */
  addToken(user: string, token: string): void {
    if (token.length < MIN_SECRET_LENGTH) return;
    this.tokens.push(wireForms(user, token));
    if (this.tokens.length > TOKENS_KEPT) this.tokens.splice(0, this.tokens.length - TOKENS_KEPT);
  }

  scrub(text: string): string {
    let out = text;
    for (const secret of this.all()) if (out.includes(secret)) out = out.split(secret).join('[REDACTED]');
    return out;
  }

  /** Scrubs an error's `message` and `response` in place (nodemailer's errors are plain Errors). */
  scrubError(err: unknown): void {
    if (typeof err !== 'object' || err === null) return;
    const target = err as { message?: unknown; response?: unknown };
    for (const key of ['message', 'response'] as const) {
      const original = target[key];
      if (typeof original !== 'string') continue;
      const value = this.scrub(original);
      if (value === original) continue;
      try {
        target[key] = value;
      } catch {
        // a frozen error keeps its text
      }
    }
  }

  private *all(): Iterable<string> {
    yield* this.fixed;
    for (const forms of this.tokens) yield* forms;
  }
}
