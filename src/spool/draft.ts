/**
 * A message body while it arrives, for FsSpool (the SpoolDraft of core/ports.ts).
 *
 * Does: keep the chunks in memory up to `spillThresholdBytes`, then write them and every later
 *   chunk to a file of its own in the spool's tmp/ (through the spool's SpoolFs, so fault tests
 *   reach it): that file starts with the first body byte, so the spool turns it into the
 *   message file by appending header, meta and footer (msg-format.ts) and renaming it, with no
 *   copy; hand the spool what it holds when the message is stored (`seal`); close and remove
 *   its file on `discard` and on a failed write.
 * Never: holds more than the threshold (+ one chunk) in memory; leaves its file behind when it
 *   fails or is discarded (recovery removes whatever a crash leaves in tmp/); accepts a write
 *   after it was sealed, discarded or failed.
 * Assumes: one writer, which awaits each write before the next (the receive conductor).
 */
import { RelayError } from '../core/errors.js';
import type { Logger, SpoolDraft } from '../core/ports.js';
import type { SpoolFileHandle, SpoolFs } from './spool-fs.js';

/** What a sealed draft holds: its chunks, or its file (still open, `length` bytes written). */
export type DraftBody =
  | { readonly kind: 'memory'; readonly chunks: readonly Buffer[]; readonly length: number }
  | { readonly kind: 'file'; readonly file: SpoolFileHandle; readonly path: string; readonly length: number };

type DraftState = 'open' | 'sealed' | 'done' | 'failed';

export class FsDraft implements SpoolDraft {
  #chunks: Buffer[] = [];
  #length = 0;
  #file: SpoolFileHandle | undefined;
  /** whether the file was created (it must be removed) */
  #fileCreated = false;
  #state: DraftState = 'open';

  constructor(
    readonly qid: string,
    private readonly fs: SpoolFs,
    /** its file, in the tmp/ of the spool that made it (only that spool stores it) */
    readonly filePath: string,
    private readonly spillThresholdBytes: number,
    private readonly log: Logger | undefined,
  ) {}

  get length(): number {
    return this.#length;
  }

  /** the body bytes held in #chunks: all of them until it spills to its file, none after */
  get bytesInMemory(): number {
    return this.#chunks.length === 0 ? 0 : this.#length;
  }

  async write(chunk: Buffer): Promise<void> {
    if (this.#state !== 'open') {
      throw new RelayError(this.#state === 'failed' ? 'E_SPOOL_WRITE' : 'E_INTERNAL', { logMessage: `spool draft of ${this.qid}: write after it was ${this.#state}` });
    }
    this.#length += chunk.length;
    try {
      if (this.#file !== undefined) {
        await this.#file.writeAll([chunk]);
        return;
      }
      this.#chunks.push(chunk);
      if (this.#length <= this.spillThresholdBytes) return;
      // Past the threshold the body goes to a file as it arrives: memory per message in
      // flight stays small (50 concurrent 1 MB messages must fit well under 250 MB).
      this.#file = await this.fs.openForWrite(this.filePath, { exclusive: true });
      this.#fileCreated = true;
      const pending = this.#chunks;
      this.#chunks = [];
      await this.#file.writeAll(pending);
    } catch (err) {
      await this.discard();
      this.#state = 'failed';
      throw new RelayError('E_SPOOL_WRITE', { cause: err, logMessage: `spool draft of ${this.qid}: writing the body failed: ${(err as Error).message}` });
    }
  }

  /**
   * For the spool's store(): what the draft holds. No write after this. A file stays open for
   * the spool to append to; `discard()` still closes and removes it (a failed store).
   */
  seal(): DraftBody {
    if (this.#state !== 'open') {
      throw new RelayError(this.#state === 'failed' ? 'E_SPOOL_WRITE' : 'E_INTERNAL', { logMessage: `spool draft of ${this.qid}: stored after it was ${this.#state}` });
    }
    this.#state = 'sealed';
    if (this.#file === undefined) return { kind: 'memory', chunks: this.#chunks, length: this.#length };
    return { kind: 'file', file: this.#file, path: this.filePath, length: this.#length };
  }

  /** Closes the sealed draft's file (once: a later discard() only removes it). */
  async closeFile(): Promise<void> {
    const file = this.#file;
    this.#file = undefined;
    if (file !== undefined) await file.close();
  }

  /** The spool renamed the file into place (or stored the chunks): nothing is left to remove. */
  committed(): void {
    this.#state = 'done';
    this.#chunks = [];
    this.#file = undefined;
    this.#fileCreated = false;
  }

  async discard(): Promise<void> {
    if (this.#state === 'done') return;
    this.#state = 'done';
    this.#chunks = [];
    const file = this.#file;
    this.#file = undefined;
    if (file !== undefined) await file.close().catch(() => undefined);
    if (!this.#fileCreated) return;
    this.#fileCreated = false;
    try {
      await this.fs.unlink(this.filePath);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.log?.warn({ file: this.filePath, err }, 'spool.cleanup-failed');
    }
  }
}
