/**
 * The file-system operations the spool uses, behind one small interface.
 *
 * Does: wrap the async `node:fs/promises` calls the spool needs (open for write,
 * write all bytes, fsync a file or a directory, copy a file's bytes into an open
 * file, rename, unlink, readdir, readFile, mkdir, stat), so tests can inject faults
 * (ENOSPC, EROFS, EACCES...) at any step and count or order the operations.
 * Never: make a synchronous fs call (the event loop must not block).
 * Assumes: POSIX semantics (rename replaces atomically; a directory can be opened
 * read-only and fsynced, as on Linux).
 */
import { open, readdir, readFile, mkdir, rename, stat, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';

/** A file opened for writing by the spool. */
export interface SpoolFileHandle {
  /** Writes every byte of `buffers` at the current end of what this handle wrote (loops on short writes). */
  writeAll(buffers: readonly Buffer[]): Promise<void>;
  /** Appends the whole content of the file at `sourcePath`; resolves with the number of bytes copied. */
  appendFileContents(sourcePath: string): Promise<number>;
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
  mkdir(path: string): Promise<void>;
  /** undefined when the path does not exist (ENOENT) */
  stat(path: string): Promise<{ readonly sizeBytes: number; readonly mtimeMs: number; readonly isFile: boolean } | undefined>;
}

const COPY_CHUNK_BYTES = 256 * 1024;

class RealSpoolFileHandle implements SpoolFileHandle {
  private positionBytes = 0;

  constructor(private readonly handle: FileHandle) {}

  async writeAll(buffers: readonly Buffer[]): Promise<void> {
    let pending = buffers.filter((buffer) => buffer.length > 0);
    // Bounded: every round either writes at least one byte or throws.
    while (pending.length > 0) {
      const { bytesWritten } = await this.handle.writev(pending, this.positionBytes);
      if (bytesWritten <= 0) throw Object.assign(new Error('writev wrote 0 bytes'), { code: 'EIO' });
      this.positionBytes += bytesWritten;
      pending = dropWrittenBytes(pending, bytesWritten);
    }
  }

  async appendFileContents(sourcePath: string): Promise<number> {
    const source = await open(sourcePath, 'r');
    try {
      const chunk = Buffer.allocUnsafe(COPY_CHUNK_BYTES);
      let copiedBytes = 0;
      // Bounded by the source file's size: stops at the first 0-byte read (end of file).
      for (;;) {
        const { bytesRead } = await source.read(chunk, 0, chunk.length, copiedBytes);
        if (bytesRead === 0) return copiedBytes;
        await this.writeAll([chunk.subarray(0, bytesRead)]);
        copiedBytes += bytesRead;
      }
    } finally {
      await source.close();
    }
  }

  sync(): Promise<void> {
    return this.handle.sync();
  }

  close(): Promise<void> {
    return this.handle.close();
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
      return new RealSpoolFileHandle(await open(path, options.exclusive ? 'wx' : 'w', 0o640));
    },
    async syncDir(path) {
      const handle = await open(path, 'r');
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
    },
    rename: (fromPath, toPath) => rename(fromPath, toPath),
    unlink: (path) => unlink(path),
    readdir: (path) => readdir(path),
    readFile: (path) => readFile(path),
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
