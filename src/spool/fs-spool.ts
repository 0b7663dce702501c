/**
 * The durable spool on a local file system.
 *
 * Does: take a message's body as it arrives (`draft()`: memory, spilled to `tmp/<qid>.spill`
 * past `spillThresholdBytes`); store a message as `queue/<qid>.eml` (final bytes) +
 * `queue/<qid>.json` (SpoolMeta, compact JSON, with `headerBytes`: the header block's length,
 * so an entry's header is read without its body) by writing and fsyncing both in `tmp/` at the same time,
 * renaming the .eml then (once that rename is done) the .json into `queue/` and fsyncing
 * `queue/` (one shared fsync for concurrent stores: group commit) before resolving.
 * An entry exists only when its .json exists. Moves undeliverable entries to `failed/`
 * with a reason, and unreadable ones to `quarantine/` at start-up. Makes qids from the
 * clock, a per-spool random prefix and a counter (no random bytes per message).
 * Never: resolve `store()` before the bytes and the names are durable (when `fsync`
 * is on); delete a queued file it cannot read (it is quarantined); make a synchronous
 * fs call; accept a qid that is not [A-Za-z0-9]+ (no path traversal).
 * Assumes: one process owns `dir` (spool-lock.ts: the relay takes the lock before `recover()`,
 * `queue` before working on the files); `recover()` runs before the first `store()`
 * (it creates the directories); operations on the same qid are not run concurrently
 * by callers (different qids are independent).
 */
import { join, resolve } from 'node:path';
import type { Clock } from '../core/clock.js';
import { RelayError } from '../core/errors.js';
import type { FailedEntry, FailureReason, Logger, RecoveryReport, Spool, SpoolDraft } from '../core/ports.js';
import { headerBlockEnd } from '../core/raw-source.js';
import type { RawSource, SpoolEntry, SpoolMeta } from '../core/types.js';
import { FsDraft, type DraftBody } from './draft.js';
import { GroupCommitter } from './group-commit.js';
import { checkMeta, compareByReceivedAt } from './meta-check.js';
import { createQidSequence, isValidQid, makeQid } from './qid.js';
import { createRealSpoolFs, type SpoolFileHandle, type SpoolFs } from './spool-fs.js';

export interface FsSpoolOptions {
  readonly dir: string;
  /** fsync files and directories before resolving; off only for tests/benchmarks on throwaway disks */
  readonly fsync: boolean;
  readonly clock: Clock;
  readonly fs?: SpoolFs;
  readonly log?: Logger;
  readonly newQid?: () => string;
  /** a draft body past this many bytes goes to a file in tmp/ as it arrives (default 256 KiB) */
  readonly spillThresholdBytes?: number;
}

const DEFAULT_SPILL_THRESHOLD_BYTES = 256 * 1024;
/**
 * How far into an entry of an older version (no `headerBytes`) the blank line after the header
 * is looked for: the intake refuses header blocks over 1 MiB.
 */
const LEGACY_HEADER_SCAN_BYTES = 1024 * 1024 + 4;
/** The first look for it (most header blocks are a few KiB). */
const LEGACY_HEADER_FIRST_READ_BYTES = 64 * 1024;

/** A message in a spool file: its header, and the range of the file that is its body. */
type FileSource = Exclude<RawSource, Buffer>;

type SpoolSubdir = 'tmp' | 'queue' | 'failed' | 'quarantine';
const SUBDIRS: readonly SpoolSubdir[] = ['tmp', 'queue', 'failed', 'quarantine'];

function errnoCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

function isNotFound(err: unknown): boolean {
  return errnoCode(err) === 'ENOENT';
}

/** Compact JSON (no indentation): fewer bytes to write and less stringify work per message. */
function metaBytes(value: unknown): Buffer {
  return Buffer.from(`${JSON.stringify(value)}\n`, 'utf8');
}

export class FsSpool implements Spool {
  readonly dir: string;
  private readonly fsyncEnabled: boolean;
  private readonly clock: Clock;
  private readonly fs: SpoolFs;
  private readonly log: Logger | undefined;
  private readonly makeNewQid: () => string;
  private readonly spillThresholdBytes: number;
  /** one committer per directory whose fsync is shared */
  private readonly dirCommitters = new Map<SpoolSubdir, GroupCommitter>();

  constructor(options: FsSpoolOptions) {
    this.dir = resolve(options.dir);
    this.fsyncEnabled = options.fsync;
    this.clock = options.clock;
    this.fs = options.fs ?? createRealSpoolFs();
    this.log = options.log;
    this.makeNewQid = options.newQid ?? createQidSequence(this.clock);
    this.spillThresholdBytes = options.spillThresholdBytes ?? DEFAULT_SPILL_THRESHOLD_BYTES;
  }

  newQid(): string {
    return this.makeNewQid();
  }

  draft(qid: string): SpoolDraft {
    return new FsDraft(checkedQid(qid), this.fs, this.draftPath(qid), this.spillThresholdBytes, this.log);
  }

  async store(input: { readonly draft: SpoolDraft; readonly header: Buffer; readonly meta: SpoolMeta }): Promise<SpoolEntry> {
    const qid = checkedQid(input.meta.qid);
    const draft = input.draft;
    if (!(draft instanceof FsDraft) || draft.qid !== qid || draft.filePath !== this.draftPath(qid)) {
      throw new RelayError('E_INTERNAL', { logMessage: `spool store of ${qid}: the draft is not this spool's draft for ${qid}` });
    }
    const meta: SpoolMeta = { ...input.meta, headerBytes: input.header.length };
    let body: DraftBody;
    try {
      body = await draft.seal();
    } catch (err) {
      throw new RelayError('E_SPOOL_WRITE', { cause: err, logMessage: `spool store of ${qid} failed: ${describe(err)}` });
    }
    const tmpEml = this.pathOf('tmp', `${qid}.eml`);
    const tmpJson = this.pathOf('tmp', `${qid}.json`);
    const queueEml = this.pathOf('queue', `${qid}.eml`);
    const queueJson = this.pathOf('queue', `${qid}.json`);
    /** files this call created that must go if it fails (in removal order) */
    let created: string[] = [];
    try {
      // Both files are written and fsynced at the same time: one round trip of waits
      // instead of two, and the file system can commit both fsyncs in one journal commit.
      // Neither name is visible in queue/ before both are durable (renames come after).
      const [emlWrite, jsonWrite] = await Promise.allSettled([
        this.writeFileDurably(tmpEml, { exclusive: true }, (file) => this.fillEml(file, qid, input.header, body)),
        this.writeFileDurably(tmpJson, { exclusive: true }, (file) => file.writeAll([metaBytes(meta)])),
      ]);
      if (emlWrite.status === 'rejected' || jsonWrite.status === 'rejected') {
        // writeFileDurably removed the file it failed on; the other one goes too.
        created = emlWrite.status === 'fulfilled' ? [tmpEml] : jsonWrite.status === 'fulfilled' ? [tmpJson] : [];
        throw emlWrite.status === 'rejected' ? emlWrite.reason : (jsonWrite as PromiseRejectedResult).reason;
      }
      created = [tmpJson, tmpEml];
      // The .eml rename completes before the .json one starts: a crash must never leave a
      // visible .json (an entry) whose .eml is missing.
      await this.fs.rename(tmpEml, queueEml);
      created = [tmpJson, queueEml];
      await this.fs.rename(tmpJson, queueJson);
      // The .json goes first on cleanup: an entry without .json is not an entry.
      created = [queueJson, queueEml];
      await this.syncDir('queue');
    } catch (err) {
      await this.removeQuietly(created);
      await draft.discard();
      throw new RelayError('E_SPOOL_WRITE', { cause: err, logMessage: `spool store of ${qid} failed: ${describe(err)}` });
    }
    await draft.discard(); // the bytes are in the .eml now
    const source: RawSource =
      body.kind === 'memory' ? Buffer.concat([input.header, ...body.chunks]) : fileSource(queueEml, input.header, input.header.length + body.length);
    return { meta, source };
  }

  /** Writes the message bytes: the header, then the body from memory or from its spill file. */
  private async fillEml(file: SpoolFileHandle, qid: string, header: Buffer, body: DraftBody): Promise<void> {
    if (body.kind === 'memory') {
      await file.writeAll([header, ...body.chunks]);
      return;
    }
    await file.writeAll([header]);
    const copiedBytes = await file.appendFileContents(body.path);
    if (copiedBytes !== body.length) {
      this.log?.warn({ qid, copiedBytes, expectedBytes: body.length }, 'spool.spill-length-mismatch');
    }
  }

  async list(): Promise<SpoolEntry[]> {
    const names = await this.fs.readdir(this.pathOf('queue'));
    const entries: SpoolEntry[] = [];
    for (const name of names) {
      const qid = qidOfName(name, '.json');
      if (qid === undefined) continue;
      const entry = await this.readEntry(qid, { corrupt: 'skip' });
      if (entry !== undefined) entries.push(entry);
    }
    return entries.sort((a, b) => compareByReceivedAt(a.meta, b.meta));
  }

  async read(qid: string): Promise<SpoolEntry | undefined> {
    return this.readEntry(checkedQid(qid), { corrupt: 'throw' });
  }

  async update(meta: SpoolMeta): Promise<void> {
    const qid = checkedQid(meta.qid);
    const queueJson = this.pathOf('queue', `${qid}.json`);
    const tmpJson = this.pathOf('tmp', `${qid}.${makeQid(this.clock.now())}.meta`);
    const existing = await this.fs.stat(queueJson).catch((err: unknown) => {
      throw new RelayError('E_SPOOL_WRITE', { cause: err, logMessage: `spool update of ${qid}: stat failed: ${describe(err)}` });
    });
    if (existing === undefined) {
      // Writing the .json would create an entry without its .eml.
      throw new RelayError('E_SPOOL_CORRUPT', { logMessage: `spool update of ${qid}: no such entry in queue/` });
    }
    let created: string[] = [];
    try {
      await this.writeFileDurably(tmpJson, { exclusive: true }, (file) => file.writeAll([metaBytes(meta)]));
      created = [tmpJson];
      await this.fs.rename(tmpJson, queueJson);
      created = [];
      await this.syncDir('queue');
    } catch (err) {
      await this.removeQuietly(created);
      throw new RelayError('E_SPOOL_WRITE', { cause: err, logMessage: `spool update of ${qid} failed: ${describe(err)}` });
    }
  }

  /**
   * No directory fsync here: a removal that a crash undoes only brings a delivered message
   * back, and delivering it again is the at-least-once promise; losing mail is not possible
   * this way. Skipping it takes a shared fsync off every delivered message's path.
   */
  async remove(qid: string): Promise<void> {
    checkedQid(qid);
    try {
      await this.unlinkIfPresent(this.pathOf('queue', `${qid}.json`));
      await this.unlinkIfPresent(this.pathOf('queue', `${qid}.eml`));
    } catch (err) {
      throw new RelayError('E_SPOOL_WRITE', { cause: err, logMessage: `spool remove of ${qid} failed: ${describe(err)}` });
    }
  }

  async fail(qid: string, reason: FailureReason): Promise<void> {
    checkedQid(qid);
    try {
      await this.writeFileDurably(this.pathOf('failed', `${qid}.reason.json`), { exclusive: false }, (file) =>
        file.writeAll([metaBytes(reason)]),
      );
      await this.moveToFailed(`${qid}.eml`);
      await this.moveToFailed(`${qid}.json`);
      await Promise.all([this.syncDir('failed'), this.syncDir('queue')]);
    } catch (err) {
      throw new RelayError('E_SPOOL_WRITE', { cause: err, logMessage: `spool fail of ${qid} failed: ${describe(err)}` });
    }
  }

  async queuedQids(): Promise<string[]> {
    return this.qidsIn('queue');
  }

  async failedQids(): Promise<string[]> {
    return this.qidsIn('failed');
  }

  async readFailed(qid: string): Promise<FailedEntry | undefined> {
    checkedQid(qid);
    let bytes: Buffer;
    try {
      bytes = await this.fs.readFile(this.pathOf('failed', `${qid}.json`));
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw new RelayError('E_SPOOL_CORRUPT', { cause: err, logMessage: `failed meta of ${qid} unreadable: ${describe(err)}` });
    }
    const checked = checkMeta(bytes, qid);
    if (!checked.ok) throw new RelayError('E_SPOOL_CORRUPT', { logMessage: `failed meta of ${qid} invalid: ${checked.problem}` });
    const source = await this.sourceOf('failed', checked.meta);
    if (source === undefined) return undefined; // a half-finished requeue or removal
    let reason: FailureReason | undefined;
    try {
      reason = JSON.parse((await this.fs.readFile(this.pathOf('failed', `${qid}.reason.json`))).toString('utf8')) as FailureReason;
    } catch {
      reason = undefined; // the entry stays usable without its reason
    }
    return { meta: checked.meta, reason, source };
  }

  /**
   * Order: the new meta is written durably in tmp/ first; then the .eml moves into queue/, then
   * the .json (an entry exists only once its .json is there), then failed/'s .json and reason go.
   * A crash in between leaves at worst a queue/ .eml without .json, which recovery quarantines
   * (bytes kept), never a lost message.
   */
  async requeue(meta: SpoolMeta): Promise<SpoolEntry> {
    const qid = checkedQid(meta.qid);
    const tmpJson = this.pathOf('tmp', `${qid}.${makeQid(this.clock.now())}.meta`);
    const queueEml = this.pathOf('queue', `${qid}.eml`);
    let source: FileSource | undefined;
    try {
      source = await this.sourceOf('failed', meta);
      if (source === undefined) throw Object.assign(new Error(`failed/${qid}.eml does not exist`), { code: 'ENOENT' });
      await this.writeFileDurably(tmpJson, { exclusive: true }, (file) => file.writeAll([metaBytes(meta)]));
      try {
        await this.fs.rename(this.pathOf('failed', `${qid}.eml`), queueEml);
      } catch (err) {
        await this.removeQuietly([tmpJson]);
        throw err;
      }
      await this.fs.rename(tmpJson, this.pathOf('queue', `${qid}.json`));
      await this.syncDir('queue');
      await this.unlinkIfPresent(this.pathOf('failed', `${qid}.json`));
      await this.unlinkIfPresent(this.pathOf('failed', `${qid}.reason.json`));
      await this.syncDir('failed');
    } catch (err) {
      throw new RelayError('E_SPOOL_WRITE', { cause: err, logMessage: `spool requeue of ${qid} failed: ${describe(err)}` });
    }
    return { meta, source: { ...source, path: queueEml } };
  }

  async removeFailed(qid: string): Promise<void> {
    checkedQid(qid);
    try {
      for (const name of [`${qid}.json`, `${qid}.eml`, `${qid}.reason.json`]) await this.unlinkIfPresent(this.pathOf('failed', name));
    } catch (err) {
      throw new RelayError('E_SPOOL_WRITE', { cause: err, logMessage: `spool removal of failed ${qid} failed: ${describe(err)}` });
    }
  }

  async probeWritable(): Promise<boolean> {
    const probePath = this.pathOf('tmp', `probe${makeQid(this.clock.now())}.tmp`);
    try {
      await this.writeFileDurably(probePath, { exclusive: true }, (file) => file.writeAll([Buffer.from('probe\n')]));
    } catch (err) {
      this.log?.warn({ err }, 'spool.not-writable');
      return false;
    }
    try {
      await this.fs.unlink(probePath);
      return true;
    } catch (err) {
      this.log?.warn({ err }, 'spool.not-writable');
      return false;
    }
  }

  async recover(): Promise<RecoveryReport> {
    for (const subdir of SUBDIRS) await this.fs.mkdir(this.pathOf(subdir));

    let removedTmp = 0;
    for (const name of await this.fs.readdir(this.pathOf('tmp'))) {
      try {
        await this.fs.unlink(this.pathOf('tmp', name));
        removedTmp += 1;
      } catch (err) {
        this.log?.warn({ file: name, err }, 'spool.tmp-cleanup-failed');
      }
    }

    const queueNames = new Set(await this.fs.readdir(this.pathOf('queue')));
    const entries: SpoolEntry[] = [];
    const toQuarantine: { readonly name: string; readonly problem: string }[] = [];
    for (const name of [...queueNames].sort()) {
      const jsonQid = qidOfName(name, '.json');
      const emlQid = qidOfName(name, '.eml');
      if (emlQid !== undefined) {
        if (!queueNames.has(`${emlQid}.json`)) toQuarantine.push({ name, problem: '.eml without .json (never acknowledged)' });
        continue;
      }
      if (jsonQid === undefined) {
        toQuarantine.push({ name, problem: 'not a queue file name' });
        continue;
      }
      const emlName = `${jsonQid}.eml`;
      const problem = queueNames.has(emlName) ? await this.metaProblem(jsonQid) : '.json without .eml';
      if (typeof problem === 'string') {
        toQuarantine.push({ name, problem });
        if (queueNames.has(emlName)) toQuarantine.push({ name: emlName, problem: `its .json: ${problem}` });
        continue;
      }
      const source = await this.sourceOf('queue', problem).catch((err: unknown) => `its .eml is unreadable: ${describe(err)}`);
      if (typeof source !== 'object') {
        const why = source ?? '.eml vanished';
        toQuarantine.push({ name, problem: why }, { name: emlName, problem: why });
        continue;
      }
      entries.push({ meta: problem, source });
    }

    const quarantined: string[] = [];
    for (const { name, problem } of toQuarantine) {
      const movedAs = await this.moveToQuarantine(name);
      quarantined.push(name);
      this.log?.warn({ file: name, movedAs, problem }, 'spool.quarantined');
    }
    if (toQuarantine.length > 0) await Promise.all([this.syncDir('quarantine'), this.syncDir('queue')]);

    entries.sort((a, b) => compareByReceivedAt(a.meta, b.meta));
    return { removedTmp, quarantined, entries };
  }

  // ---- internals ----

  /** where a draft's body goes past the spill threshold */
  private draftPath(qid: string): string {
    return this.pathOf('tmp', `${qid}.spill`);
  }

  private pathOf(subdir: SpoolSubdir, name?: string): string {
    return name === undefined ? join(this.dir, subdir) : join(this.dir, subdir, name);
  }

  /**
   * Opens, fills, fsyncs (when enabled) and closes a file. On failure after the open it
   * closes and removes the file it created (a failed open created nothing: with
   * `exclusive`, EEXIST must not remove someone else's file).
   */
  private async writeFileDurably(
    path: string,
    options: { readonly exclusive: boolean },
    fill: (file: SpoolFileHandle) => Promise<void>,
  ): Promise<void> {
    const file = await this.fs.openForWrite(path, options);
    try {
      await fill(file);
      if (this.fsyncEnabled) await file.sync();
    } catch (err) {
      await file.close().catch(() => undefined);
      await this.removeQuietly([path]);
      throw err;
    }
    try {
      await file.close();
    } catch (err) {
      await this.removeQuietly([path]);
      throw err;
    }
  }

  /** qids of the entries (.json files, reason files excluded) in a directory, sorted (qids sort by creation time). */
  private async qidsIn(subdir: 'queue' | 'failed'): Promise<string[]> {
    let names: string[];
    try {
      names = await this.fs.readdir(this.pathOf(subdir));
    } catch (err) {
      if (isNotFound(err)) return [];
      throw err;
    }
    const qids: string[] = [];
    for (const name of names) {
      if (name.endsWith('.reason.json')) continue;
      const qid = qidOfName(name, '.json');
      if (qid !== undefined) qids.push(qid);
    }
    return qids.sort();
  }

  /** fsync of a spool directory, shared by every caller waiting at the same time. */
  private async syncDir(subdir: SpoolSubdir): Promise<void> {
    if (!this.fsyncEnabled) return;
    let committer = this.dirCommitters.get(subdir);
    if (committer === undefined) {
      const path = this.pathOf(subdir);
      committer = new GroupCommitter(() => this.fs.syncDir(path));
      this.dirCommitters.set(subdir, committer);
    }
    await committer.commit();
  }

  private async readEntry(qid: string, options: { readonly corrupt: 'skip' | 'throw' }): Promise<SpoolEntry | undefined> {
    let bytes: Buffer;
    try {
      bytes = await this.fs.readFile(this.pathOf('queue', `${qid}.json`));
    } catch (err) {
      if (isNotFound(err)) return undefined;
      if (options.corrupt === 'skip') {
        this.log?.error({ qid, err }, 'spool.meta-unreadable');
        return undefined;
      }
      throw new RelayError('E_SPOOL_CORRUPT', { cause: err, logMessage: `spool meta of ${qid} unreadable: ${describe(err)}` });
    }
    const checked = checkMeta(bytes, qid);
    if (!checked.ok) {
      if (options.corrupt === 'skip') {
        this.log?.error({ qid, problem: checked.problem }, 'spool.meta-invalid');
        return undefined;
      }
      throw new RelayError('E_SPOOL_CORRUPT', { logMessage: `spool meta of ${qid} invalid: ${checked.problem}` });
    }
    let source: RawSource | undefined;
    try {
      source = await this.sourceOf('queue', checked.meta);
    } catch (err) {
      if (options.corrupt === 'skip') {
        this.log?.error({ qid, err }, 'spool.message-unreadable');
        return undefined;
      }
      throw new RelayError('E_SPOOL_CORRUPT', { cause: err, logMessage: `spool message of ${qid} unreadable: ${describe(err)}` });
    }
    return source === undefined ? undefined : { meta: checked.meta, source };
  }

  /**
   * The entry's bytes as a source: its header block read from the start of its .eml (only the
   * header: `headerBytes` long, or up to the blank line for an entry of an older version), the
   * body as the range after it. undefined when the .eml does not exist.
   */
  private async sourceOf(subdir: 'queue' | 'failed', meta: SpoolMeta): Promise<FileSource | undefined> {
    const path = this.pathOf(subdir, `${meta.qid}.eml`);
    const known = meta.headerBytes;
    let read: { readonly head: Buffer; readonly sizeBytes: number };
    try {
      read = await this.fs.readHead(path, known ?? LEGACY_HEADER_FIRST_READ_BYTES);
      if (known === undefined && headerBlockEnd(read.head) === read.head.length && read.head.length < Math.min(read.sizeBytes, LEGACY_HEADER_SCAN_BYTES)) {
        read = await this.fs.readHead(path, LEGACY_HEADER_SCAN_BYTES); // a long header: look further
      }
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
    if (known !== undefined) {
      if (read.head.length !== known) throw new Error(`${subdir}/${meta.qid}.eml has ${read.sizeBytes} bytes, shorter than its ${known}-byte header`);
      return fileSource(path, read.head, read.sizeBytes);
    }
    // a copy: the rest of what was read is body, and must not stay in memory with the header
    return fileSource(path, Buffer.from(read.head.subarray(0, headerBlockEnd(read.head))), read.sizeBytes);
  }

  /** The meta when it is sound, else the problem. */
  private async metaProblem(qid: string): Promise<SpoolMeta | string> {
    try {
      const checked = checkMeta(await this.fs.readFile(this.pathOf('queue', `${qid}.json`)), qid);
      return checked.ok ? checked.meta : checked.problem;
    } catch (err) {
      return `unreadable: ${describe(err)}`;
    }
  }

  /** Moves queue/<name> into quarantine/ without overwriting anything already there. */
  private async moveToQuarantine(name: string): Promise<string> {
    let target = name;
    // Bounded: at most a few attempts; a collision needs an existing file of that exact name.
    for (let attempt = 0; attempt < 5; attempt += 1) {
      if ((await this.fs.stat(this.pathOf('quarantine', target))) === undefined) break;
      target = `${name}.${this.clock.now()}-${attempt}`;
    }
    await this.fs.rename(this.pathOf('queue', name), this.pathOf('quarantine', target));
    return target;
  }

  /** Renames queue/<name> to failed/<name>; tolerates a previous partial fail() that already moved it. */
  private async moveToFailed(name: string): Promise<void> {
    try {
      await this.fs.rename(this.pathOf('queue', name), this.pathOf('failed', name));
    } catch (err) {
      if (isNotFound(err) && (await this.fs.stat(this.pathOf('failed', name))) !== undefined) return;
      throw err;
    }
  }

  private async unlinkIfPresent(path: string): Promise<void> {
    try {
      await this.fs.unlink(path);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  /** Best effort, in order; errors are logged, never thrown. */
  private async removeQuietly(paths: readonly string[]): Promise<void> {
    for (const path of paths) {
      try {
        await this.fs.unlink(path);
      } catch (err) {
        if (!isNotFound(err)) this.log?.warn({ file: path, err }, 'spool.cleanup-failed');
      }
    }
  }
}


/** `header` followed by the bytes after it in the file, up to `sizeBytes`. */
function fileSource(path: string, header: Buffer, sizeBytes: number): FileSource {
  return { path, header, bodyStart: header.length, bodyEnd: sizeBytes };
}

function checkedQid(qid: string): string {
  if (!isValidQid(qid)) {
    throw new RelayError('E_INTERNAL', { logMessage: `invalid spool qid ${JSON.stringify(String(qid).slice(0, 80))}` });
  }
  return qid;
}

/** `<qid><suffix>` → qid, or undefined when the name is not of that shape. */
function qidOfName(name: string, suffix: '.eml' | '.json'): string | undefined {
  if (!name.endsWith(suffix)) return undefined;
  const qid = name.slice(0, -suffix.length);
  return isValidQid(qid) ? qid : undefined;
}

function describe(err: unknown): string {
  const code = errnoCode(err);
  const message = err instanceof Error ? err.message : String(err);
  return code === undefined ? message : `${code}: ${message}`;
}
