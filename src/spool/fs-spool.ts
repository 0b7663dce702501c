/**
 * The durable spool on a local file system: one file per message.
 *
 * Layout of `dir`:
 *   tmp/                 drafts (`<qid>.msg` while the body arrives) and files being written;
 *                        emptied at start-up (nothing in it was ever acknowledged)
 *   queue/<qid>.msg      a queued message: body | final header | meta JSON | footer (msg-format.ts).
 *                        An entry exists iff its .msg exists.
 *   queue/<qid>.state    the meta as update() last wrote it (attempts, next attempt, recipients'
 *                        states, checkpoints): written only when an entry changes after the store
 *                        (a deferral, an admin action), and read in place of the meta in the .msg
 *   failed/<qid>.msg (+ .state, + .reason.json)   undeliverable, with why
 *   quarantine/          what recovery could not read (moved there, never deleted)
 *
 * Does: take a message's body as it arrives (`draft()`: memory, or `tmp/<qid>.msg` past
 *   `spillThresholdBytes`, written from the first body byte) and store it as one file: the
 *   draft file gets header + meta + footer appended (a small body is written with them in one
 *   write), is fsynced, closed and renamed into queue/, and queue/ is fsynced (one shared fsync
 *   for concurrent stores: group commit) before store() resolves. The body is never copied;
 *   a delivered message costs one unlink. An entry is read from its file's tail (footer, meta,
 *   header: the spool never reads a body). Moves undeliverable entries to failed/ with a
 *   reason, and unreadable files to quarantine/ at start-up, where it also converts entries of
 *   the previous layout (legacy-layout.ts) and removes a .state whose .msg is gone. Makes qids
 *   from the clock (never going back), a per-start random prefix that no message in the spool
 *   already carries, and a counter (no random bytes per message).
 * Never: resolve `store()` before the bytes and the name are durable (when `fsync` is on);
 *   delete a queued file it cannot read (it is quarantined); make a synchronous fs call;
 *   accept a qid that is not [A-Za-z0-9]+ (no path traversal).
 * Assumes: one process owns `dir` (spool-lock.ts: the relay takes the lock before `recover()`,
 *   `queue` before working on the files); `recover()` runs before the first `store()` (it
 *   creates the directories and converts old entries); operations on the same qid are not run
 *   concurrently by callers (different qids are independent).
 */
import { join, resolve } from 'node:path';
import type { Clock } from '../core/clock.js';
import { isRelayError, RelayError } from '../core/errors.js';
import type { FailedEntry, FailureReason, Logger, RecoveryReport, Spool, SpoolDraft } from '../core/ports.js';
import type { RawSource, SpoolEntry, SpoolMeta } from '../core/types.js';
import { FsDraft, type DraftBody } from './draft.js';
import { GroupCommitter } from './group-commit.js';
import { convertLegacyEntry, type LegacyContext } from './legacy-layout.js';
import { checkMeta, compareByReceivedAt } from './meta-check.js';
import { encodeFooter, FOOTER_BYTES, parseFooter } from './msg-format.js';
import { createQidSequence, isValidQid, makeQid, qidPrefix } from './qid.js';
import { createRealSpoolFs, type SpoolFileHandle, type SpoolFs } from './spool-fs.js';

export interface FsSpoolOptions {
  readonly dir: string;
  /** fsync files and directories before resolving; off only for tests/benchmarks on throwaway disks */
  readonly fsync: boolean;
  readonly clock: Clock;
  readonly fs?: SpoolFs;
  readonly log?: Logger;
  readonly newQid?: () => string;
  /** draws the random per-start qid prefix (tests force a collision with it) */
  readonly drawQidPrefix?: () => string;
  /** a draft body past this many bytes goes to its file in tmp/ as it arrives (default 256 KiB) */
  readonly spillThresholdBytes?: number;
}

const DEFAULT_SPILL_THRESHOLD_BYTES = 256 * 1024;
/** How much of a message file's end is read first: the footer, the meta and the header usually fit. */
const TAIL_FIRST_READ_BYTES = 8 * 1024;

type SpoolSubdir = 'tmp' | 'queue' | 'failed' | 'quarantine';
const SUBDIRS: readonly SpoolSubdir[] = ['tmp', 'queue', 'failed', 'quarantine'];

/** A message in a spool file: its header, and the range of the file that is its body. */
type FileSource = Exclude<RawSource, Buffer>;

/** A message file as read from its tail. */
interface MsgFile {
  readonly source: FileSource;
  /** the meta written with the message (a .state, when there is one, replaces it) */
  readonly meta: SpoolMeta;
}

/** The file kinds of the spool (the previous layout's .eml/.json too, for recovery). */
type FileKind = 'msg' | 'state' | 'eml' | 'json';
const FILE_KINDS: readonly FileKind[] = ['msg', 'state', 'eml', 'json'];
/** failed/<qid>.reason.json: why the entry failed */
const REASON_SUFFIX = '.reason.json';

function errnoCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

function isNotFound(err: unknown): boolean {
  return errnoCode(err) === 'ENOENT';
}

/** Compact JSON (no indentation): fewer bytes to write and less stringify work per message. */
function jsonBytes(value: unknown): Buffer {
  return Buffer.from(`${JSON.stringify(value)}\n`, 'utf8');
}

export class FsSpool implements Spool {
  readonly dir: string;
  private readonly fsyncEnabled: boolean;
  private readonly clock: Clock;
  private readonly fs: SpoolFs;
  private readonly log: Logger | undefined;
  private makeNewQid: () => string;
  /** the qids come from our own sequence (not options.newQid): recover() renews it */
  private readonly ownQids: boolean;
  private readonly drawQidPrefix: (() => string) | undefined;
  private readonly spillThresholdBytes: number;
  /** one committer per directory whose fsync is shared */
  private readonly dirCommitters = new Map<SpoolSubdir, GroupCommitter>();
  /**
   * Whether a queued entry has a .state, for the entries this spool stored, read or changed: a
   * removal then unlinks one file when there is none (a read always looks: another FsSpool on
   * the same directory, such as the offline queue CLI, may have written one).
   */
  private readonly hasState = new Map<string, boolean>();

  constructor(options: FsSpoolOptions) {
    this.dir = resolve(options.dir);
    this.fsyncEnabled = options.fsync;
    this.clock = options.clock;
    this.fs = options.fs ?? createRealSpoolFs();
    this.log = options.log;
    this.ownQids = options.newQid === undefined;
    this.drawQidPrefix = options.drawQidPrefix;
    this.makeNewQid = options.newQid ?? createQidSequence(this.clock, options.drawQidPrefix !== undefined ? { drawPrefix: options.drawQidPrefix } : {});
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
    let body: DraftBody;
    try {
      body = draft.seal();
    } catch (err) {
      await draft.discard();
      throw err;
    }
    const tmpMsg = this.draftPath(qid);
    const queueMsg = this.pathOf('queue', `${qid}.msg`);
    const meta = jsonBytes(input.meta);
    const rest = [input.header, meta, encodeFooter(body.length, input.header.length, meta.length)];
    /** the file this call made that must go if it fails */
    let made: string | undefined;
    try {
      if (body.kind === 'memory') {
        await this.writeFileDurably(tmpMsg, { exclusive: true }, (file) => file.writeAll([...body.chunks, ...rest]));
      } else {
        // the draft file already holds the body from its first byte: append, no copy
        await body.file.writeAll(rest);
        if (this.fsyncEnabled) await body.file.sync();
        await draft.closeFile();
      }
      made = tmpMsg;
      await this.fs.rename(tmpMsg, queueMsg);
      made = queueMsg;
      draft.committed();
      this.hasState.set(qid, false);
      await this.syncDir('queue');
    } catch (err) {
      if (made !== undefined) await this.removeQuietly([made]);
      await draft.discard();
      throw new RelayError('E_SPOOL_WRITE', { cause: err, logMessage: `spool store of ${qid} failed: ${describe(err)}` });
    }
    // a small body goes to the first attempt from memory (no read); a large one from the file
    const source: RawSource = body.kind === 'memory' ? Buffer.concat([input.header, ...body.chunks]) : { path: queueMsg, header: input.header, bodyStart: 0, bodyEnd: body.length };
    return { meta: input.meta, source };
  }

  async list(): Promise<SpoolEntry[]> {
    const names = new Set(await this.fs.readdir(this.pathOf('queue')));
    const entries: SpoolEntry[] = [];
    for (const name of names) {
      const qid = qidOfName(name, 'msg');
      if (qid === undefined) continue;
      const entry = await this.readEntry(qid, { corrupt: 'skip', hasState: names.has(`${qid}.state`) });
      if (entry !== undefined) entries.push(entry);
    }
    return entries.sort((a, b) => compareByReceivedAt(a.meta, b.meta));
  }

  async read(qid: string): Promise<SpoolEntry | undefined> {
    return this.readEntry(checkedQid(qid), { corrupt: 'throw', hasState: undefined });
  }

  /** Writes the entry's current meta to its .state (tmp, fsync, rename, queue/ fsync). */
  async update(meta: SpoolMeta): Promise<void> {
    const qid = checkedQid(meta.qid);
    const existing = await this.fs.stat(this.pathOf('queue', `${qid}.msg`)).catch((err: unknown) => {
      throw new RelayError('E_SPOOL_WRITE', { cause: err, logMessage: `spool update of ${qid}: stat failed: ${describe(err)}` });
    });
    if (existing === undefined) {
      // a .state without its .msg is not an entry
      throw new RelayError('E_SPOOL_CORRUPT', { logMessage: `spool update of ${qid}: no such entry in queue/` });
    }
    try {
      await this.writeState('queue', meta);
      await this.syncDir('queue');
    } catch (err) {
      throw new RelayError('E_SPOOL_WRITE', { cause: err, logMessage: `spool update of ${qid} failed: ${describe(err)}` });
    }
  }

  /**
   * Unlinks the .msg (the entry is gone), then its .state if it has one. No directory fsync: a
   * removal that a crash undoes only brings a delivered message back, and delivering it again
   * is the at-least-once promise; losing mail is not possible this way. Skipping it takes a
   * shared fsync off every delivered message's path.
   */
  async remove(qid: string): Promise<void> {
    checkedQid(qid);
    try {
      await this.unlinkIfPresent(this.pathOf('queue', `${qid}.msg`));
      const withState = this.hasState.get(qid) !== false; // unknown: look
      this.hasState.delete(qid);
      if (withState) await this.unlinkIfPresent(this.pathOf('queue', `${qid}.state`));
    } catch (err) {
      throw new RelayError('E_SPOOL_WRITE', { cause: err, logMessage: `spool remove of ${qid} failed: ${describe(err)}` });
    }
  }

  /**
   * Order: the reason is written durably in failed/ first; then the .msg moves (the entry is now
   * in failed/), then its .state. A crash between the two moves leaves queue/<qid>.state, which
   * recovery moves after its .msg.
   */
  async fail(qid: string, reason: FailureReason): Promise<void> {
    checkedQid(qid);
    try {
      await this.writeFileDurably(this.pathOf('failed', `${qid}.reason.json`), { exclusive: false }, (file) => file.writeAll([jsonBytes(reason)]));
      await this.moveToFailed(`${qid}.msg`);
      await this.renameIfPresent(this.pathOf('queue', `${qid}.state`), this.pathOf('failed', `${qid}.state`));
      this.hasState.delete(qid);
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
    let msg: MsgFile | string | undefined;
    try {
      msg = await this.readMsg('failed', qid);
    } catch (err) {
      throw new RelayError('E_SPOOL_CORRUPT', { cause: err, logMessage: `failed message ${qid} unreadable: ${describe(err)}` });
    }
    if (msg === undefined) return undefined;
    if (typeof msg === 'string') throw new RelayError('E_SPOOL_CORRUPT', { logMessage: `failed message ${qid} invalid: ${msg}` });
    const meta = (await this.readState('failed', qid, undefined)) ?? msg.meta;
    let reason: FailureReason | undefined;
    try {
      reason = JSON.parse((await this.fs.readFile(this.pathOf('failed', `${qid}.reason.json`))).toString('utf8')) as FailureReason;
    } catch {
      reason = undefined; // the entry stays usable without its reason
    }
    return { meta, reason, source: msg.source };
  }

  /**
   * Order: the new meta is written durably in tmp/ first; then the .msg moves into queue/ (the
   * entry exists from here on), then the new .state; then failed/'s .state and reason go. A crash
   * between the two renames queues the message with the meta it was received with (its
   * recipients pending again): delivered again, never lost.
   */
  async requeue(meta: SpoolMeta): Promise<SpoolEntry> {
    const qid = checkedQid(meta.qid);
    const tmpState = this.pathOf('tmp', `${qid}.${makeQid(this.clock.now())}.state`);
    const queueMsg = this.pathOf('queue', `${qid}.msg`);
    let msg: MsgFile | string | undefined;
    try {
      msg = await this.readMsg('failed', qid);
      if (typeof msg !== 'object') throw new Error(msg === undefined ? `failed/${qid}.msg does not exist` : `failed/${qid}.msg: ${msg}`);
      await this.writeFileDurably(tmpState, { exclusive: true }, (file) => file.writeAll([jsonBytes(meta)]));
      try {
        await this.fs.rename(this.pathOf('failed', `${qid}.msg`), queueMsg);
      } catch (err) {
        await this.removeQuietly([tmpState]);
        throw err;
      }
      await this.fs.rename(tmpState, this.pathOf('queue', `${qid}.state`));
      this.hasState.set(qid, true);
      await this.syncDir('queue');
      await this.unlinkIfPresent(this.pathOf('failed', `${qid}.state`));
      await this.unlinkIfPresent(this.pathOf('failed', `${qid}.reason.json`));
      await this.syncDir('failed');
    } catch (err) {
      throw new RelayError('E_SPOOL_WRITE', { cause: err, logMessage: `spool requeue of ${qid} failed: ${describe(err)}` });
    }
    return { meta, source: { ...msg.source, path: queueMsg } };
  }

  async removeFailed(qid: string): Promise<void> {
    checkedQid(qid);
    try {
      for (const name of [`${qid}.msg`, `${qid}.state`, `${qid}.reason.json`]) await this.unlinkIfPresent(this.pathOf('failed', name));
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

    await this.convertPairs('failed', { leftovers: 'remove' });
    await this.removeFailedLeftovers();

    const { byQid, strangers } = groupByQid(await this.fs.readdir(this.pathOf('queue')));
    const failedNames = new Set(await this.fs.readdir(this.pathOf('failed')));
    const entries: SpoolEntry[] = [];
    const quarantined: string[] = [];
    /** moved at once: a converted entry may take the name of a .msg set aside */
    const quarantine = async (name: string, problem: string): Promise<void> => {
      const movedAs = await this.moveToQuarantine(name);
      quarantined.push(name);
      this.log?.warn({ file: name, movedAs, problem }, 'spool.quarantined');
    };
    for (const name of strangers) await quarantine(name, 'not a queue file name');
    this.hasState.clear();
    for (const [qid, kinds] of [...byQid].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      if (kinds.has('msg')) {
        const entry = await this.readEntry(qid, { corrupt: 'problem', hasState: kinds.has('state') }).catch((err: unknown) => `unreadable: ${describe(err)}`);
        if (typeof entry === 'object') {
          entries.push(entry);
          // a conversion that finished before a crash: the old pair is a leftover
          await this.removeQuietly((['json', 'eml'] as const).filter((old) => kinds.has(old)).map((old) => this.pathOf('queue', `${qid}.${old}`)));
          continue;
        }
        await quarantine(`${qid}.msg`, entry ?? '.msg vanished');
        if (kinds.has('state')) await quarantine(`${qid}.state`, `its .msg: ${entry ?? 'vanished'}`);
      } else if (kinds.has('state')) {
        await this.recoverOrphanState(qid, failedNames);
      }
      if (kinds.has('json') || kinds.has('eml')) {
        const converted = await this.recoverLegacy('queue', qid, kinds, quarantine);
        if (converted !== undefined) entries.push(converted);
      }
    }
    if (quarantined.length > 0) await Promise.all([this.syncDir('quarantine'), this.syncDir('queue')]);

    entries.sort((a, b) => compareByReceivedAt(a.meta, b.meta));
    if (this.ownQids) {
      // New qids never take the prefix of a message already here (qid.ts: a clock that went
      // back across a restart must not repeat an old qid, whose file a rename would replace).
      const names = [...(await this.fs.readdir(this.pathOf('queue'))), ...(await this.fs.readdir(this.pathOf('failed')))];
      const used = new Set(names.map((name) => qidPrefix(name.split('.')[0] ?? '')).filter((p): p is string => p !== undefined));
      this.makeNewQid = createQidSequence(this.clock, { avoid: used, ...(this.drawQidPrefix !== undefined ? { drawPrefix: this.drawQidPrefix } : {}) });
    }
    return { removedTmp, quarantined, entries };
  }

  // ---- internals ----

  /** where a draft's body goes past the spill threshold: the future message file */
  private draftPath(qid: string): string {
    return this.pathOf('tmp', `${qid}.msg`);
  }

  private pathOf(subdir: SpoolSubdir, name?: string): string {
    return name === undefined ? join(this.dir, subdir) : join(this.dir, subdir, name);
  }

  /**
   * For the offline queue CLI, which holds the spool's lock but must not run recover() (that is
   * the relay's start-up): converts the previous layout's complete, valid .eml + .json pairs in
   * queue/ and failed/, so a spool nobody has started since the upgrade shows its mail. Touches
   * nothing else (half pairs, invalid metadata and leftovers wait for the relay's recovery).
   */
  async convertPreviousLayout(): Promise<void> {
    await this.convertPairs('queue', { leftovers: 'keep' });
    await this.convertPairs('failed', { leftovers: 'keep' });
  }

  /**
   * The previous layout's complete pairs of a directory converted (failed/'s reason files stay);
   * with `leftovers: 'remove'`, a pair next to its converted .msg (a crash after the rename) goes.
   */
  private async convertPairs(subdir: 'queue' | 'failed', options: { readonly leftovers: 'remove' | 'keep' }): Promise<void> {
    const { byQid } = groupByQid(await this.fs.readdir(this.pathOf(subdir)));
    for (const [qid, kinds] of byQid) {
      if (!kinds.has('json') && !kinds.has('eml')) continue;
      if (kinds.has('msg')) {
        if (options.leftovers === 'remove') await this.removeQuietly((['json', 'eml'] as const).filter((k) => kinds.has(k)).map((k) => this.pathOf(subdir, `${qid}.${k}`)));
        continue;
      }
      if (!kinds.has('json') || !kinds.has('eml')) continue; // half of an old pair: left as the old version left it
      const checked = await this.fs.readFile(this.pathOf(subdir, `${qid}.json`)).then(
        (bytes) => checkMeta(bytes, qid),
        (err: unknown) => ({ ok: false as const, problem: `unreadable: ${describe(err)}` }),
      );
      if (!checked.ok) {
        this.log?.error({ qid, problem: checked.problem }, 'spool.meta-invalid');
        continue;
      }
      await this.convert(subdir, qid, checked.meta).catch((err: unknown) => this.log?.error({ qid, subdir, err }, 'spool.convert-failed'));
    }
  }

  /**
   * failed/ at start-up, after its conversion: removes what a requeue() or removeFailed() a crash
   * cut short leaves, a .state or a reason whose message is no longer in failed/ (it went back
   * to queue/, or was deleted). A later fail() of that message without a .state of its own would
   * read the old .state as its own. A previous layout's pair keeps its reason.
   */
  private async removeFailedLeftovers(): Promise<void> {
    const names = new Set(await this.fs.readdir(this.pathOf('failed')));
    for (const name of names) {
      const qid = name.endsWith(REASON_SUFFIX) ? name.slice(0, -REASON_SUFFIX.length) : qidOfName(name, 'state');
      if (qid === undefined || !isValidQid(qid) || (['msg', 'json', 'eml'] as const).some((kind) => names.has(`${qid}.${kind}`))) continue;
      await this.removeQuietly([this.pathOf('failed', name)]);
      this.log?.warn({ file: `failed/${name}`, action: 'removed: its message is no longer in failed/' }, 'spool.state-orphan');
    }
  }

  /**
   * An old-layout pair in queue/ (no valid .msg for that qid): converted to a .msg and returned
   * as an entry; a half pair or an invalid .json is quarantined; a pair that cannot be written
   * now stays as it is (logged; the next start tries again).
   */
  private async recoverLegacy(
    subdir: 'queue',
    qid: string,
    kinds: ReadonlySet<FileKind>,
    quarantine: (name: string, problem: string) => Promise<void>,
  ): Promise<SpoolEntry | undefined> {
    if (!kinds.has('json')) {
      await quarantine(`${qid}.eml`, '.eml without .json (never acknowledged)');
      return undefined;
    }
    if (!kinds.has('eml')) {
      await quarantine(`${qid}.json`, '.json without .eml');
      return undefined;
    }
    const checked = await this.fs.readFile(this.pathOf(subdir, `${qid}.json`)).then(
      (bytes) => checkMeta(bytes, qid),
      (err: unknown) => ({ ok: false as const, problem: `unreadable: ${describe(err)}` }),
    );
    if (!checked.ok) {
      await quarantine(`${qid}.json`, checked.problem);
      await quarantine(`${qid}.eml`, `its .json: ${checked.problem}`);
      return undefined;
    }
    try {
      return await this.convert(subdir, qid, checked.meta);
    } catch (err) {
      this.log?.error({ qid, subdir, err }, 'spool.convert-failed');
      return undefined;
    }
  }

  private async convert(subdir: 'queue' | 'failed', qid: string, meta: SpoolMeta): Promise<SpoolEntry> {
    const ctx: LegacyContext = { fs: this.fs, writeFileDurably: (path, options, fill) => this.writeFileDurably(path, options, fill), syncDir: (dir) => this.syncDir(dir) };
    const msg = this.pathOf(subdir, `${qid}.msg`);
    const converted = await convertLegacyEntry(
      ctx,
      { subdir, eml: this.pathOf(subdir, `${qid}.eml`), json: this.pathOf(subdir, `${qid}.json`), msg, tmp: this.draftPath(qid) },
      meta,
    );
    this.log?.info({ qid, subdir }, 'spool.converted');
    return { meta: converted.meta, source: { path: msg, header: converted.header, bodyStart: 0, bodyEnd: converted.bodyBytes } };
  }

  /** queue/<qid>.state without its .msg: the rest of a fail() (its .msg is in failed/) is finished, else it goes. */
  private async recoverOrphanState(qid: string, failedNames: ReadonlySet<string>): Promise<void> {
    const from = this.pathOf('queue', `${qid}.state`);
    if (failedNames.has(`${qid}.msg`) && !failedNames.has(`${qid}.state`)) {
      await this.fs.rename(from, this.pathOf('failed', `${qid}.state`));
      this.log?.warn({ file: `${qid}.state`, action: 'moved to failed/ after its message' }, 'spool.state-orphan');
      return;
    }
    await this.removeQuietly([from]);
    this.log?.warn({ file: `${qid}.state`, action: 'removed: its message is gone' }, 'spool.state-orphan');
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

  /** Writes `<subdir>/<qid>.state` through tmp/ (write, fsync, rename); the caller fsyncs the directory. */
  private async writeState(subdir: 'queue', meta: SpoolMeta): Promise<void> {
    const tmpState = this.pathOf('tmp', `${meta.qid}.${makeQid(this.clock.now())}.state`);
    await this.writeFileDurably(tmpState, { exclusive: true }, (file) => file.writeAll([jsonBytes(meta)]));
    try {
      await this.fs.rename(tmpState, this.pathOf(subdir, `${meta.qid}.state`));
    } catch (err) {
      await this.removeQuietly([tmpState]);
      throw err;
    }
    this.hasState.set(meta.qid, true);
  }

  /** qids of the entries (.msg files) in a directory, sorted (qids sort by creation time). */
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
      const qid = qidOfName(name, 'msg');
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

  /**
   * A message file's header, body range and meta, read from its end (footer, then header + meta:
   * one read when they fit in the first). undefined when the file does not exist; a string says
   * why the file cannot be used (unknown format, lengths that do not add up, invalid meta).
   */
  private async readMsg(subdir: 'queue' | 'failed', qid: string): Promise<MsgFile | string | undefined> {
    const path = this.pathOf(subdir, `${qid}.msg`);
    let read: { readonly tail: Buffer; readonly sizeBytes: number };
    try {
      read = await this.fs.readTail(path, TAIL_FIRST_READ_BYTES);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
    const layout = parseFooter(read.tail.subarray(Math.max(0, read.tail.length - FOOTER_BYTES)), read.sizeBytes);
    if (typeof layout === 'string') return layout;
    if (layout.tailBytes > read.tail.length) {
      const again = await this.fs.readTail(path, layout.tailBytes);
      if (again.sizeBytes !== read.sizeBytes) return 'the file changed while it was read';
      read = again;
    }
    const tail = read.tail.subarray(read.tail.length - layout.tailBytes);
    const checked = checkMeta(tail.subarray(layout.headerBytes, layout.headerBytes + layout.metaBytes), qid);
    if (!checked.ok) return `its meta: ${checked.problem}`;
    // a copy: the tail read may hold body bytes, which must not stay in memory with the header
    const header = Buffer.from(tail.subarray(0, layout.headerBytes));
    return { meta: checked.meta, source: { path, header, bodyStart: 0, bodyEnd: layout.bodyBytes } };
  }

  /**
   * The meta in `<subdir>/<qid>.state`, or undefined when there is none (`known` false: the
   * directory listing said so, nothing is read). A .state that is not valid is logged and
   * ignored: the meta in the .msg stands (a recipient may get the message again; none loses it).
   */
  private async readState(subdir: 'queue' | 'failed', qid: string, known: boolean | undefined): Promise<SpoolMeta | undefined> {
    if (known === false) return undefined;
    let bytes: Buffer;
    try {
      bytes = await this.fs.readFile(this.pathOf(subdir, `${qid}.state`));
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
    const checked = checkMeta(bytes, qid);
    if (checked.ok) return checked.meta;
    this.log?.error({ qid, problem: `${subdir}/${qid}.state: ${checked.problem}` }, 'spool.meta-invalid');
    return undefined;
  }

  private async readEntry(qid: string, options: { readonly corrupt: 'skip' | 'throw'; readonly hasState: boolean | undefined }): Promise<SpoolEntry | undefined>;
  private async readEntry(qid: string, options: { readonly corrupt: 'problem'; readonly hasState: boolean | undefined }): Promise<SpoolEntry | string | undefined>;
  private async readEntry(qid: string, options: { readonly corrupt: 'skip' | 'throw' | 'problem'; readonly hasState: boolean | undefined }): Promise<SpoolEntry | string | undefined> {
    let msg: MsgFile | string | undefined;
    let state: SpoolMeta | undefined;
    try {
      msg = await this.readMsg('queue', qid);
      state = typeof msg === 'object' ? await this.readState('queue', qid, options.hasState) : undefined;
    } catch (err) {
      if (options.corrupt === 'problem') return `unreadable: ${describe(err)}`;
      if (options.corrupt === 'skip') {
        this.log?.error({ qid, err }, 'spool.message-unreadable');
        return undefined;
      }
      throw new RelayError('E_SPOOL_CORRUPT', { cause: err, logMessage: `spool message of ${qid} unreadable: ${describe(err)}` });
    }
    if (msg === undefined) return undefined;
    if (typeof msg === 'string') {
      if (options.corrupt === 'problem') return msg;
      if (options.corrupt === 'skip') {
        this.log?.error({ qid, problem: msg }, 'spool.meta-invalid');
        return undefined;
      }
      throw new RelayError('E_SPOOL_CORRUPT', { logMessage: `spool message of ${qid} invalid: ${msg}` });
    }
    this.hasState.set(qid, state !== undefined);
    return { meta: state ?? msg.meta, source: msg.source };
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

  private async renameIfPresent(fromPath: string, toPath: string): Promise<void> {
    try {
      await this.fs.rename(fromPath, toPath);
    } catch (err) {
      if (!isNotFound(err)) throw err;
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

/** The names of a spool directory by qid and kind; names of no known shape apart. */
function groupByQid(names: readonly string[]): { byQid: Map<string, Set<FileKind>>; strangers: string[] } {
  const byQid = new Map<string, Set<FileKind>>();
  const strangers: string[] = [];
  for (const name of [...names].sort()) {
    if (name.endsWith(REASON_SUFFIX)) continue; // failed/'s reason files belong to their entry
    const kind = FILE_KINDS.find((k) => qidOfName(name, k) !== undefined);
    if (kind === undefined) {
      strangers.push(name);
      continue;
    }
    const qid = qidOfName(name, kind)!;
    let kinds = byQid.get(qid);
    if (kinds === undefined) byQid.set(qid, (kinds = new Set()));
    kinds.add(kind);
  }
  return { byQid, strangers };
}

function checkedQid(qid: string): string {
  if (!isValidQid(qid)) {
    throw new RelayError('E_INTERNAL', { logMessage: `invalid spool qid ${JSON.stringify(String(qid).slice(0, 80))}` });
  }
  return qid;
}

/** `<qid>.<kind>` → qid, or undefined when the name is not of that shape. */
function qidOfName(name: string, kind: FileKind): string | undefined {
  const suffix = `.${kind}`;
  if (!name.endsWith(suffix)) return undefined;
  const qid = name.slice(0, -suffix.length);
  return isValidQid(qid) ? qid : undefined;
}

function describe(err: unknown): string {
  if (isRelayError(err)) return err.message;
  const code = errnoCode(err);
  const message = err instanceof Error ? err.message : String(err);
  return code === undefined ? message : `${code}: ${message}`;
}
