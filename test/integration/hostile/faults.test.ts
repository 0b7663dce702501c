/**
 * Issue 7 item 6 (in-process part): a full or unwritable spool disk gets 452 4.3.1 and nothing
 * is acknowledged, and mail flows again when space returns; an upstream that drops the
 * connection after DATA gets the message again (the one duplicate case); a slow upstream times
 * out and the next upstream gets the message.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../../src/core/clock.js';
import { FsSpool } from '../../../src/spool/fs-spool.js';
import { createRealSpoolFs, type SpoolFs } from '../../../src/spool/spool-fs.js';
import { plainUpstreamConfig, sendMessage, startAuthUpstream, startHostile, type Hostile } from './support.js';

let h: Hostile | undefined;
const dirs: string[] = [];
afterEach(async () => {
  await h?.stop();
  h = undefined;
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

const MESSAGE = 'From: app@legacy.test\r\nSubject: fault\r\n\r\nbody\r\n';

function faultyFs(state: { code: string | undefined }): SpoolFs {
  const real = createRealSpoolFs();
  const fail = (): void => {
    if (state.code !== undefined) throw Object.assign(new Error(`${state.code}: injected`), { code: state.code });
  };
  return {
    ...real,
    async openForWrite(path, options) {
      fail();
      const handle = await real.openForWrite(path, options);
      return {
        writeAll: async (buffers) => {
          fail();
          return handle.writeAll(buffers);
        },
        appendFileContents: async (source) => {
          fail();
          return handle.appendFileContents(source);
        },
        sync: () => handle.sync(),
        close: () => handle.close(),
      };
    },
    rename: async (from, to) => {
      fail();
      return real.rename(from, to);
    },
  };
}

async function spoolDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'hostile-spool-'));
  dirs.push(dir);
  return dir;
}

describe('spool faults', () => {
  for (const code of ['ENOSPC', 'EROFS']) {
    it(`${code} on write → 452 4.3.1, nothing acknowledged; space returns → delivered`, async () => {
      const state: { code: string | undefined } = { code };
      const dir = await spoolDir();
      const spool = new FsSpool({ dir, fsync: false, clock: systemClock, fs: faultyFs(state) });
      h = await startHostile({}, { spool });
      expect(await sendMessage(h.relay.port, MESSAGE)).toMatch(/^452 4\.3\.1 /);
      expect(h.upstream.messages).toHaveLength(0);
      expect(await readdir(join(dir, 'queue'))).toEqual([]);
      expect(h.relay.logs.events('received')).toHaveLength(0);
      state.code = undefined;
      expect(await sendMessage(h.relay.port, MESSAGE)).toMatch(/^250 /);
      expect(h.upstream.messages).toHaveLength(1);
    });
  }

  it('a body spill file that cannot be written → 452 4.3.1, nothing left in tmp/, and the process survives', async () => {
    const dir = await spoolDir();
    const real = createRealSpoolFs();
    // the spool's own draft file (in tmp/, past its spill threshold) fails to open: a full disk
    const disk = { full: true };
    const fs: SpoolFs = {
      ...real,
      openForWrite: async (path, options) => {
        if (disk.full && path.startsWith(join(dir, 'tmp'))) throw Object.assign(new Error('ENOSPC: injected'), { code: 'ENOSPC' });
        return real.openForWrite(path, options);
      },
    };
    const spool = new FsSpool({ dir, fsync: false, clock: systemClock, fs });
    h = await startHostile({}, { spool });
    const big = `From: app@legacy.test\r\nSubject: big\r\n\r\n${'0123456789abcdef\r\n'.repeat(300_000)}`; // ~5.4 MB, past the spill threshold
    const reply = await sendMessage(h.relay.port, big, { timeoutMs: 8_000 }).catch((e: unknown) => String(e));
    if (!reply.startsWith('452')) console.log(h.relay.logs.lines.slice(-8).join('\n'));
    expect(reply).toMatch(/^452 4\.3\.1 /);
    expect(h.upstream.messages).toHaveLength(0);
    expect(await readdir(join(dir, 'tmp'))).toEqual([]);
    disk.full = false;
    expect(await sendMessage(h.relay.port, MESSAGE)).toMatch(/^250 /);
  });
});

describe('upstream faults', () => {
  it('an upstream that drops the connection after DATA gets the message again (the documented duplicate)', async () => {
    h = await startHostile({ delivery: { waitSeconds: 0 } }, {}, { dropAfterData: true });
    expect(await sendMessage(h.relay.port, MESSAGE)).toMatch(/^250 2\.0\.0 Ok: queued as /);
    await h.upstream.waitForMessages(1, 10_000);
    h.upstream.setScript({});
    const all = await h.upstream.waitForMessages(2, 15_000);
    // at-least-once: the upstream saw the same message twice, byte for byte
    expect(all[0]!.sha256).toBe(all[1]!.sha256);
  });

  it('a slow upstream (replies later than timeouts.socketSeconds) times out and the next upstream gets the message', async () => {
    const slow = await startAuthUpstream({ delayMs: 4000 });
    const fast = await startAuthUpstream();
    h = await startHostile({
      delivery: { waitSeconds: 10 },
      upstreams: [plainUpstreamConfig('slow', slow.port, 1), plainUpstreamConfig('fast', fast.port, 5)],
    });
    h.extraUpstreams.push(slow, fast);
    expect(await sendMessage(h.relay.port, MESSAGE, { timeoutMs: 20_000 })).toMatch(/^250 /);
    await fast.waitForMessages(1, 10_000);
    expect(slow.messages).toHaveLength(0);
  });
});
