import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/core/clock.js';
import { FsSpool } from '../../../src/spool/fs-spool.js';
import { GroupCommitter } from '../../../src/spool/group-commit.js';
import { createRealSpoolFs } from '../../../src/spool/spool-fs.js';
import { FaultFs } from './fault-fs.js';
import { HEADER, memoryBody, sampleMeta } from './spool-fixtures.js';
import { storeMessage } from '../../../src/core/store-message.js';

/** A flush the test finishes by hand. */
function manualFlushes() {
  const pending: { resolve: () => void; reject: (err: unknown) => void }[] = [];
  const flush = () =>
    new Promise<void>((resolve, reject) => {
      pending.push({ resolve, reject });
    });
  return { flush, pending };
}

/** Lets queued promise callbacks run. */
async function settle(): Promise<void> {
  for (let round = 0; round < 10; round += 1) await Promise.resolve();
}

function track(promise: Promise<void>): { state: 'pending' | 'resolved' | 'rejected'; error?: unknown } {
  const tracked: { state: 'pending' | 'resolved' | 'rejected'; error?: unknown } = { state: 'pending' };
  promise.then(
    () => {
      tracked.state = 'resolved';
    },
    (error: unknown) => {
      tracked.state = 'rejected';
      tracked.error = error;
    },
  );
  return tracked;
}

describe(GroupCommitter.name, () => {
  it('starts a flush for the first caller and makes callers arriving during it wait for the next flush', async () => {
    const { flush, pending } = manualFlushes();
    const committer = new GroupCommitter(flush);
    const first = track(committer.commit());
    await settle();
    expect(pending).toHaveLength(1);

    const late = [track(committer.commit()), track(committer.commit()), track(committer.commit())];
    await settle();
    expect(pending).toHaveLength(1); // no second flush while the first runs

    pending[0]?.resolve();
    await settle();
    expect(first.state).toBe('resolved');
    expect(late.map((caller) => caller.state)).toEqual(['pending', 'pending', 'pending']); // the first flush does not cover them
    expect(pending).toHaveLength(2); // the next flush started right away, for all of them

    pending[1]?.resolve();
    await settle();
    expect(late.map((caller) => caller.state)).toEqual(['resolved', 'resolved', 'resolved']);
    expect(committer.flushesStarted).toBe(2);
  });

  it('rejects every caller a failed flush covers, and starts afresh afterwards', async () => {
    const { flush, pending } = manualFlushes();
    const committer = new GroupCommitter(flush);
    const first = track(committer.commit());
    await settle();
    const late = [track(committer.commit()), track(committer.commit())];
    pending[0]?.resolve();
    await settle();
    pending[1]?.reject(Object.assign(new Error('EIO'), { code: 'EIO' }));
    await settle();
    expect(first.state).toBe('resolved');
    expect(late.map((caller) => caller.state)).toEqual(['rejected', 'rejected']);

    const after = track(committer.commit());
    await settle();
    expect(pending).toHaveLength(3);
    pending[2]?.resolve();
    await settle();
    expect(after.state).toBe('resolved');
  });
});

describe('FsSpool group commit', () => {
  let dir = '';
  afterEach(async () => {
    if (dir !== '') await rm(dir, { recursive: true, force: true });
    dir = '';
  });

  it('N concurrent stores share far fewer queue/ fsyncs, and none resolves before a queue/ fsync that began after its rename', async () => {
    dir = await mkdtemp(join(tmpdir(), 'spool-gc-'));
    const storeCount = 50;
    // A directory fsync that lasts until every store has renamed its message file, so that the
    // other stores pile up behind the first one (as they do behind a slow disk).
    const renamedJsons = () => fs.count('rename', 'end', '.msg');
    const fs: FaultFs = new FaultFs(createRealSpoolFs(), {
      syncDirDelay: async () => {
        for (let round = 0; round < 5000 && renamedJsons() < storeCount; round += 1) await new Promise((resolve) => setTimeout(resolve, 1));
      },
    });
    const spool = new FsSpool({ dir, fsync: true, clock: new ManualClock(), fs });
    await spool.recover();
    const qids = Array.from({ length: storeCount }, (_, index) => `gc${index}`);

    await Promise.all(
      qids.map(async (qid) => {
        await storeMessage(spool, { header: HEADER, body: memoryBody('body\r\n'), meta: sampleMeta(qid) });
        fs.mark(`resolved ${qid}`);
      }),
    );

    const queueDir = join(dir, 'queue');
    const dirSyncs = fs.events.filter((event) => event.op === 'syncDir' && event.phase === 'start' && event.path === queueDir).length;
    // the first store's fsync, then one more covering the 49 that arrived while it ran
    expect(dirSyncs).toBe(2);

    for (const qid of qids) {
      const renameDone = fs.events.findIndex(
        (event) => event.op === 'rename' && event.phase === 'end' && event.path === join(queueDir, `${qid}.msg`),
      );
      const resolved = fs.events.findIndex((event) => event.op === 'mark' && event.label === `resolved ${qid}`);
      expect(renameDone).toBeGreaterThanOrEqual(0);
      expect(resolved).toBeGreaterThan(renameDone);
      // some queue/ fsync started after the rename and ended before the store resolved
      const covering = fs.events.slice(renameDone + 1, resolved).filter((event) => event.op === 'syncDir' && event.path === queueDir);
      const startedLabels = new Set(covering.filter((event) => event.phase === 'start').map((event) => event.label));
      const covered = covering.some((event) => event.phase === 'end' && startedLabels.has(event.label));
      expect(covered, `store ${qid} resolved without a covering queue/ fsync`).toBe(true);
    }
  });
});
