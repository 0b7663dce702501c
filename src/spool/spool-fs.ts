/**
 * The file-system operations the spool uses, behind one small interface.
 *
 * Does: provide the fs calls the spool needs (open for write, write all bytes, fsync a
 * file or a directory, copy a file's bytes into an open file, rename, unlink, readdir,
 * readFile, read the start or the end of a file, mkdir, stat), so tests can inject faults (ENOSPC, EROFS, EACCES...) at any
 * step and count or order the operations. The per-message calls (open, write, fsync,
 * close, rename, unlink) use callback-style `node:fs` on plain file descriptors wrapped
 * in one promise each: `fs/promises` FileHandles cost a FileHandle object, an
 * AbortSignal/DOMException pair and extra promise hops per call, which profiles showed
 * as a few % of the relay's CPU per message.
 * Never: make a synchronous fs call (the event loop must not block); leave a
 * descriptor it opened unclosed when a copy fails (the caller closes write handles).
 * Assumes: POSIX semantics (rename replaces atomically; a directory can be opened
 * read-only and fsynced, as on Linux); callers close every handle `openForWrite`
 * returned (a plain fd, unlike a FileHandle, is never closed by the garbage collector).
 */
import { close, fstat, fsync, open, read, rename, unlink, write, writev } from 'node:fs';
import { mkdir, readdir, readFile, stat } from 'node:fs/promises';

/** A file opened for writing by the spool. */
export interface SpoolFileHandle {
  /** Writes every byte of `buffers` at the current end of what this handle wrote (loops on short writes). */
  writeAll(buffers: readonly Buffer[]): Promise<void>;
  /**
   * Appends the content of the file at `sourcePath` (all of it, or bytes [start, end) of it);
   * resolves with the number of bytes copied (fewer when the file ends before `end`).
   */
  appendFileContents(sourcePath: string, range?: { readonly start: number; readonly end: number }): Promise<number>;
  sync(): Promise<void>;
  close(): Promise<void>;
}

export interface SpoolFs {
  /** Opens `path` for writing; `exclusive` fails with EEXIST when it already exists (flag 'wx'), else truncates ('w'). */
  openForWrite(path: string, options: { readonly exclusive: boolean }): Promise<SpoolFileHandle>;
  /** fsyncs a directory so the names created, renamed or removed in it are durable. */
  syncDir(path: string): Promise<void>;
  rename(fromPath: string, toPath: string): Promise<void>;
  unlink(path: string): Promise<void>;
  readdir(path: string): Promise<string[]>;
  readFile(path: string): Promise<Buffer>;
  /** The first `maxBytes` bytes of a file (fewer when it is shorter) and the file's size. */
  readHead(path: string, maxBytes: number): Promise<{ readonly head: Buffer; readonly sizeBytes: number }>;
  /** The last `maxBytes` bytes of a file (all of it when it is shorter) and the file's size. */
  readTail(path: string, maxBytes: number): Promise<{ readonly tail: Buffer; readonly sizeBytes: number }>;
  mkdir(path: string): Promise<void>;
  /** undefined when the path does not exist (ENOENT) */
  stat(path: string): Promise<{ readonly sizeBytes: number; readonly mtimeMs: number; readonly isFile: boolean } | undefined>;
}

const COPY_CHUNK_BYTES = 256 * 1024;

/** `fs.open` as a promise of a plain descriptor. */
function openFd(path: string, flags: string, mode: number): Promise<number> {
  return new Promise((resolvePromise, rejectPromise) => {
    open(path, flags, mode, (err, fd) => (err === null ? resolvePromise(fd) : rejectPromise(err)));
  });
}

/** `fs.fsync`, `fs.close`, `fs.rename`, `fs.unlink` as promises. */
function fsyncFd(fd: number): Promise<void> {
  return new Promise((resolvePromise, rejectPromise) => {
    fsync(fd, (err) => (err === null ? resolvePromise() : rejectPromise(err)));
  });
}

function closeFd(fd: number): Promise<void> {
  return new Promise((resolvePromise, rejectPromise) => {
    close(fd, (err) => (err === null || err === undefined ? resolvePromise() : rejectPromise(err)));
  });
}

function renamePath(fromPath: string, toPath: string): Promise<void> {
  return new Promise((resolvePromise, rejectPromise) => {
    rename(fromPath, toPath, (err) => (err === null ? resolvePromise() : rejectPromise(err)));
  });
}

function unlinkPath(path: string): Promise<void> {
  return new Promise((resolvePromise, rejectPromise) => {
    unlink(path, (err) => (err === null ? resolvePromise() : rejectPromise(err)));
  });
}

/** One positional write of `buffers` (pwrite for one buffer, pwritev for several); resolves with the bytes written. */
function writeAt(fd: number, buffers: readonly Buffer[], positionBytes: number): Promise<number> {
  return new Promise((resolvePromise, rejectPromise) => {
    const done = (err: NodeJS.ErrnoException | null, bytesWritten: number): void => {
      if (err === null) resolvePromise(bytesWritten);
      else rejectPromise(err);
    };
    const only = buffers.length === 1 ? buffers[0] : undefined;
    if (only !== undefined) write(fd, only, 0, only.length, positionBytes, done);
    else writev(fd, buffers as Buffer[], positionBytes, done);
  });
}

function fstatSize(fd: number): Promise<number> {
  return new Promise((resolvePromise, rejectPromise) => {
    fstat(fd, (err, stats) => (err === null ? resolvePromise(stats.size) : rejectPromise(err)));
  });
}

function readAt(fd: number, into: Buffer, positionBytes: number): Promise<number> {
  return new Promise((resolvePromise, rejectPromise) => {
    read(fd, into, 0, into.length, positionBytes, (err, bytesRead) => (err === null ? resolvePromise(bytesRead) : rejectPromise(err)));
  });
}

class RealSpoolFileHandle implements SpoolFileHandle {
  private positionBytes = 0;

  constructor(private readonly fd: number) {}

  async writeAll(buffers: readonly Buffer[]): Promise<void> {
    let pending = buffers.filter((buffer) => buffer.length > 0);
    // Bounded: every round either writes at least one byte or throws.
    while (pending.length > 0) {
      const bytesWritten = await writeAt(this.fd, pending, this.positionBytes);
      if (bytesWritten <= 0) throw Object.assign(new Error('write wrote 0 bytes'), { code: 'EIO' });
      this.positionBytes += bytesWritten;
      pending = dropWrittenBytes(pending, bytesWritten);
    }
  }

  async appendFileContents(sourcePath: string, range?: { readonly start: number; readonly end: number }): Promise<number> {
    const sourceFd = await openFd(sourcePath, 'r', 0);
    try {
      const start = range?.start ?? 0;
      const end = range?.end ?? Number.POSITIVE_INFINITY;
      const chunk = Buffer.allocUnsafe(COPY_CHUNK_BYTES);
      let copiedBytes = 0;
      // Bounded by the range and the source file's size: stops at `end` or at the first 0-byte read.
      while (start + copiedBytes < end) {
        const want = Math.min(chunk.length, end - start - copiedBytes);
        const bytesRead = await readAt(sourceFd, chunk.subarray(0, want), start + copiedBytes);
        if (bytesRead === 0) break;
        await this.writeAll([chunk.subarray(0, bytesRead)]);
        copiedBytes += bytesRead;
      }
      return copiedBytes;
    } finally {
      await closeFd(sourceFd);
    }
  }

  sync(): Promise<void> {
    return fsyncFd(this.fd);
  }

  close(): Promise<void> {
    return closeFd(this.fd);
  }
}

/** The buffers still to write after `writtenBytes` of them went out. */
function dropWrittenBytes(buffers: readonly Buffer[], writtenBytes: number): Buffer[] {
  const rest: Buffer[] = [];
  let toSkip = writtenBytes;
  for (const buffer of buffers) {
    if (toSkip >= buffer.length) {
      toSkip -= buffer.length;
      continue;
    }
    rest.push(toSkip > 0 ? buffer.subarray(toSkip) : buffer);
    toSkip = 0;
  }
  return rest;
}

function isNotFound(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

/** The default: the real file system. */
export function createRealSpoolFs(): SpoolFs {
  return {
    async openForWrite(path, options) {
      return new RealSpoolFileHandle(await openFd(path, options.exclusive ? 'wx' : 'w', 0o640));
    },
    async syncDir(path) {
      const fd = await openFd(path, 'r', 0);
      try {
        await fsyncFd(fd);
      } finally {
        await closeFd(fd);
      }
    },
    rename: renamePath,
    unlink: unlinkPath,
    readdir: (path) => readdir(path),
    readFile: (path) => readFile(path),
    async readHead(path, maxBytes) {
      const fd = await openFd(path, 'r', 0);
      try {
        const sizeBytes = await fstatSize(fd);
        const head = Buffer.allocUnsafe(Math.max(0, Math.min(maxBytes, sizeBytes)));
        let filled = 0;
        // Bounded by the buffer: stops when it is full or at the end of the file.
        while (filled < head.length) {
          const bytesRead = await readAt(fd, head.subarray(filled), filled);
          if (bytesRead === 0) break;
          filled += bytesRead;
        }
        return { head: head.subarray(0, filled), sizeBytes };
      } finally {
        await closeFd(fd);
      }
    },
    async readTail(path, maxBytes) {
      const fd = await openFd(path, 'r', 0);
      try {
        const sizeBytes = await fstatSize(fd);
        const tail = Buffer.allocUnsafe(Math.max(0, Math.min(maxBytes, sizeBytes)));
        const from = sizeBytes - tail.length;
        let filled = 0;
        // Bounded by the buffer: stops when it is full or at the end of the file.
        while (filled < tail.length) {
          const bytesRead = await readAt(fd, tail.subarray(filled), from + filled);
          if (bytesRead === 0) break;
          filled += bytesRead;
        }
        if (filled < tail.length) throw Object.assign(new Error(`${path} shrank while it was read`), { code: 'EIO' });
        return { tail, sizeBytes };
      } finally {
        await closeFd(fd);
      }
    },
    async mkdir(path) {
      await mkdir(path, { recursive: true, mode: 0o750 });
    },
    async stat(path) {
      try {
        const stats = await stat(path);
        return { sizeBytes: stats.size, mtimeMs: stats.mtimeMs, isFile: stats.isFile() };
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw err;
      }
    },
  };
}
