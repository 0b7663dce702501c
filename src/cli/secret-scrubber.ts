/** Replaces every known secret (and the forms it takes on the wire: base64, SASL PLAIN, XOAUTH2) in CLI output. */
export class SecretScrubber {
  private readonly secrets = new Set<string>();

  add(user: string, secret: string): void {
    if (secret.length < 4) return;
    const b64 = (value: string): string => Buffer.from(value, 'utf8').toString('base64');
    for (const form of [secret, b64(secret), b64(`\u0000${user}\u0000${secret}`), b64(`user=${user}\u0001auth=Bearer ${secret}\u0001\u0001`)]) {
      this.secrets.add(form);
    }
  }

  scrub(text: string): string {
    let out = text;
    for (const secret of this.secrets) if (out.includes(secret)) out = out.split(secret).join('[REDACTED]');
    return out;
  }
}
