/**
 * Policy verdicts: expected outcomes are values, not exceptions.
 * A policy returns pass(), edit(...) or reject(code, detail).
 */
import type { ErrorCode } from './errors.js';
import type { HeaderEdit } from './types.js';

export interface EnvelopeEdit {
  /** new envelope sender */
  readonly mailFrom?: string;
  /** recipients to add to the envelope (duplicates are ignored) */
  readonly addRecipients?: readonly string[];
}

export type Verdict =
  | { readonly kind: 'pass' }
  | { readonly kind: 'edit'; readonly headers: readonly HeaderEdit[]; readonly envelope?: EnvelopeEdit }
  | { readonly kind: 'reject'; readonly code: ErrorCode; readonly detail: string };

export const pass = (): Verdict => ({ kind: 'pass' });

export const edit = (headers: readonly HeaderEdit[], envelope?: EnvelopeEdit): Verdict =>
  envelope === undefined ? { kind: 'edit', headers } : { kind: 'edit', headers, envelope };

export const reject = (code: ErrorCode, detail: string): Verdict => ({ kind: 'reject', code, detail });
