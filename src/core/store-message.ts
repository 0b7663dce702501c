/**
 * Spools a message whose bytes are all in hand (a failure notice, a test's fixture) through the
 * same draft → store path as a received one.
 *
 * Does: write the body into a new draft of the spool and store it with the header and meta.
 * Never: leaves the draft behind when the store fails (it is discarded).
 * Assumes: `meta.qid` came from `spool.newQid()` (or is otherwise unique in the spool).
 */
import type { Spool } from './ports.js';
import type { SpoolEntry, SpoolMeta } from './types.js';

export async function storeMessage(
  spool: Spool,
  input: { readonly header: Buffer; readonly body: Buffer | readonly Buffer[]; readonly meta: SpoolMeta },
): Promise<SpoolEntry> {
  const draft = spool.draft(input.meta.qid);
  try {
    for (const chunk of Buffer.isBuffer(input.body) ? [input.body] : input.body) await draft.write(chunk);
    return await spool.store({ draft, header: input.header, meta: input.meta });
  } finally {
    await draft.discard();
  }
}
