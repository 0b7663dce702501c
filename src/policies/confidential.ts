/**
 * Confidential marking: set the configured headers on every message.
 *
 * Does: when `message.confidential.enabled`, `set` each configured header (an existing
 *   field of that name is replaced, never duplicated). Non-ASCII values are RFC 2047-encoded,
 *   and so is a value with a token too long to fold (a header line must stay within 998).
 * Never: touch anything else.
 * Assumes: names and values were validated by the config schema (no CR/LF).
 */
import type { HeaderEdit } from '../core/types.js';
import { edit, pass } from '../core/verdict.js';
import { encodeUnstructured } from '../core/address.js';
import type { Policy } from './types.js';

export const confidentialPolicy: Policy = {
  name: 'confidential',
  apply: ({ message }) => {
    if (!message.confidential.enabled) return pass();
    const edits: HeaderEdit[] = Object.entries(message.confidential.headers).map(([name, value]) => ({
      op: 'set',
      name,
      value: encodeUnstructured(value),
    }));
    return edits.length === 0 ? pass() : edit(edits);
  },
};
