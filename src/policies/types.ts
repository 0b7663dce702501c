/**
 * Shapes shared by the policies and their runner.
 *
 * Does: describe what a policy sees (PolicyInput), what it is (Policy) and what the
 *   ordered run of all policies yields (PolicyOutcome).
 * Never: carry behaviour or I/O.
 */
import type { Limits, MessageConfig } from '../config/schema.js';
import type { ErrorCode } from '../core/errors.js';
import type { Envelope, HeaderEdit, MessageFacts } from '../core/types.js';
import type { Verdict } from '../core/verdict.js';

export interface PolicyInput {
  /** as received, after earlier policies' envelope edits */
  readonly envelope: Envelope;
  readonly facts: MessageFacts;
  readonly message: MessageConfig;
  readonly limits: Limits;
  /** listen.hostname, for Message-ID */
  readonly hostname: string;
  readonly now: Date;
  /** injected randomness for new Message-IDs */
  readonly newMessageIdLocalPart: () => string;
}

export type Policy = { readonly name: string; readonly apply: (input: PolicyInput) => Verdict };

export type PolicyOutcome =
  | {
      readonly kind: 'accept';
      readonly headerEdits: readonly HeaderEdit[];
      readonly envelope: Envelope;
      /** names of the policies that made edits, in order */
      readonly applied: readonly string[];
    }
  | { readonly kind: 'reject'; readonly policy: string; readonly code: ErrorCode; readonly detail: string };
