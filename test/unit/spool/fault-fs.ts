/**
 * A SpoolFs for tests: wraps another SpoolFs (normally the real one on a temp dir),
 * records every operation in order, and fails chosen operations with an errno code.
 */
import type { SpoolFileHandle, SpoolFs } from '../../../src/spool/spool-fs.js';

export type FsOp = 'open' | 'write' | 'append' | 'sync' | 'close' | 'syncDir' | 'rename' | 'unlink' | 'readdir' | 'readFile' | 'readHead' | 'readTail' | 'mkdir' | 'stat';

export interface FsEvent {
  readonly op: FsOp | 'mark';
  readonly phase: 'start' | 'end' | 'error' | 'mark';
  /** the path (for rename: the destination) */
  readonly path: string;
  /** for syncDir: its sequence number; for marks: a label */
  readonly label?: string;
}

interface FaultRule {
  readonly op: FsOp;
  readonly matches: (path: string) => boolean;
  readonly code: string;
  remaining: number;
}

export function errnoError(code: string, op: string, path: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: injected fault, ${op} '${path}'`), { code, syscall: op, path });
}

export class FaultFs implements SpoolFs {
  readonly events: FsEvent[] = [];
  private readonly rules: FaultRule[] = [];
  private syncDirSequence = 0;

  constructor(
    private readonly base: SpoolFs,
    private readonly options: { readonly syncDirDelay?: () => Promise<void> } = {},
  ) {}

  /** Fail the next `times` calls of `op` whose path contains `pathPart` with errno `code`. */
  failOn(op: FsOp, pathPart: string, code: string, times = Number.POSITIVE_INFINITY): void {
    this.rules.push({ op, matches: (path) => path.includes(pathPart), code, remaining: times });
  }

  mark(label: string): void {
    this.events.push({ op: 'mark', phase: 'mark', path: '', label });
  }

  count(op: FsOp, phase: FsEvent['phase'] = 'start', pathPart = ''): number {
    return this.events.filter((event) => event.op === op && event.phase === phase && event.path.includes(pathPart)).length;
  }

  private async run<T>(op: FsOp, path: string, action: () => Promise<T>, label?: string): Promise<T> {
    const start: FsEvent = label === undefined ? { op, phase: 'start', path } : { op, phase: 'start', path, label };
    this.events.push(start);
    const rule = this.rules.find((candidate) => candidate.op === op && candidate.remaining > 0 && candidate.matches(path));
    if (rule !== undefined) {
      rule.remaining -= 1;
      this.events.push({ ...start, phase: 'error' });
      throw errnoError(rule.code, op, path);
    }
    try {
      const result = await action();
      this.events.push({ ...start, phase: 'end' });
      return result;
    } catch (err) {
      this.events.push({ ...start, phase: 'error' });
      throw err;
    }
  }

  async openForWrite(path: string, options: { readonly exclusive: boolean }): Promise<SpoolFileHandle> {
    const inner = await this.run('open', path, () => this.base.openForWrite(path, options));
    return {
      writeAll: (buffers) => this.run('write', path, () => inner.writeAll(buffers)),
      appendFileContents: (sourcePath, range) => this.run('append', path, () => inner.appendFileContents(sourcePath, range)),
      sync: () => this.run('sync', path, () => inner.sync()),
      close: () => this.run('close', path, () => inner.close()),
    };
  }

  syncDir(path: string): Promise<void> {
    this.syncDirSequence += 1;
    return this.run(
      'syncDir',
      path,
      async () => {
        await this.options.syncDirDelay?.();
        await this.base.syncDir(path);
      },
      String(this.syncDirSequence),
    );
  }

  rename(fromPath: string, toPath: string): Promise<void> {
    return this.run('rename', toPath, () => this.base.rename(fromPath, toPath));
  }
  unlink(path: string): Promise<void> {
    return this.run('unlink', path, () => this.base.unlink(path));
  }
  readdir(path: string): Promise<string[]> {
    return this.run('readdir', path, () => this.base.readdir(path));
  }
  readFile(path: string): Promise<Buffer> {
    return this.run('readFile', path, () => this.base.readFile(path));
  }
  readHead(path: string, maxBytes: number): ReturnType<SpoolFs['readHead']> {
    return this.run('readHead', path, () => this.base.readHead(path, maxBytes));
  }
  readTail(path: string, maxBytes: number): ReturnType<SpoolFs['readTail']> {
    return this.run('readTail', path, () => this.base.readTail(path, maxBytes));
  }
  mkdir(path: string): Promise<void> {
    return this.run('mkdir', path, () => this.base.mkdir(path));
  }
  stat(path: string): ReturnType<SpoolFs['stat']> {
    return this.run('stat', path, () => this.base.stat(path));
  }
}
