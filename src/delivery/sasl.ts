/**
 * How a basic credential is presented to an upstream: nodemailer's auth options for SASL LOGIN
 * and PLAIN, and PLAIN with an authorization identity (RFC 4616 `authzid NUL authcid NUL passwd`,
 * PeopleSoft's SASL authorization id), which nodemailer's built-in PLAIN never sends.
 *
 * Does: one mapping used by the delivery transport and by `validate --connect`, so a check
 * authenticates exactly as delivery will. The authzid variant runs as a nodemailer custom auth
 * handler for PLAIN (nodemailer prefers a custom handler over its own for the same method).
 * Never: put the password in an error text (nodemailer masks the AUTH line in its transcript:
 * "AUTH PLAIN /* secret *\/"; the reply text of a refusal carries no credential).
 * Assumes: the config is validated (authzid only with type "plain").
 */
import ntlm from '@ewsjs/ntlm-client';
import type { UpstreamConfig } from '../config/schema.js';

export type BasicAuth = Extract<UpstreamConfig['auth'], { type: 'login' | 'plain' | 'ntlm' }>;

/** nodemailer's custom auth handler context (the part used here). */
interface CustomAuthContext {
  sendCommand(command: string): Promise<{ status: number; response: string; text?: string }>;
}
export type CustomAuthHandler = (ctx: CustomAuthContext) => Promise<void>;

export interface SaslOptions {
  readonly auth: { readonly user: string; readonly pass: string };
  readonly authMethod: 'LOGIN' | 'PLAIN' | 'NTLM';
  readonly customAuth?: Readonly<Record<string, CustomAuthHandler>>;
}

const b64 = (value: string): string => Buffer.from(value, 'utf8').toString('base64');

/** The SASL PLAIN initial response with an authorization identity. */
function plainResponse(authzid: string, user: string, pass: string): string {
  return b64(`${authzid}\u0000${user}\u0000${pass}`);
}

export function saslOptions(auth: BasicAuth): SaslOptions {
  const base = { auth: { user: auth.user, pass: auth.pass } };
  if (auth.type === 'ntlm') return { ...base, authMethod: 'NTLM', customAuth: { NTLM: ntlmHandler(auth) } };
  if (auth.type === 'login') return { ...base, authMethod: 'LOGIN' };
  const authzid = auth.authzid;
  if (authzid === undefined) return { ...base, authMethod: 'PLAIN' };
  const plainWithAuthzid: CustomAuthHandler = async (ctx) => {
    const reply = await ctx.sendCommand(`AUTH PLAIN ${plainResponse(authzid, auth.user, auth.pass)}`);
    if (reply.status !== 235) throw new Error(`Invalid login: ${reply.response}`);
  };
  return { ...base, authMethod: 'PLAIN', customAuth: { PLAIN: plainWithAuthzid } };
}

/**
 * NTLM over SMTP (MS-SMTPX): AUTH NTLM <negotiate> → 334 <challenge> → <authenticate> → 235.
 * The messages come from @ewsjs/ntlm-client (NTLMv2 when the server's challenge asks for the
 * NTLM2 key, as Exchange's does); chosen over nodemailer-ntlm-auth, which wraps httpntlm and pulls
 * an HTTP client and underscore in for the same three functions, and is not maintained with it.
 */
function ntlmHandler(auth: Extract<BasicAuth, { type: 'ntlm' }>): CustomAuthHandler {
  const strip = (message: string) => message.replace(/^NTLM /, '');
  return async (ctx) => {
    const negotiate = strip(ntlm.createType1Message(auth.workstation, auth.domain ?? ''));
    const challenge = await ctx.sendCommand(`AUTH NTLM ${negotiate}`);
    if (challenge.status !== 334) throw new Error(`Invalid login: ${challenge.response}`);
    const type2 = ntlm.decodeType2Message(challenge.response.replace(/^334[ -]/, '').trim());
    const authenticate = strip(ntlm.createType3Message(type2, auth.user, auth.pass, auth.workstation, auth.domain));
    const reply = await ctx.sendCommand(authenticate);
    if (reply.status !== 235) throw new Error(`Invalid login: ${reply.response}`);
  };
}
