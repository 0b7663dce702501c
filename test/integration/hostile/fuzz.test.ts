/**
 * Issue 7 item 7: bounded property tests (fast-check, fixed seed). Unit level: random and
 * mutated messages through the header-block reader, the header editor and the facts parser.
 * Intake level (real sockets, fewer runs): random bodies are relayed byte for byte; random
 * command sequences with smuggling tails never produce a smuggled message. Throughout: no
 * crash and no unhandled rejection.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Headers } from '@zone-eu/mailsplit';
import { formatMailbox } from '../../../src/core/address.js';
import { applyHeaderEdits, formatHeaderField, headerFieldValues } from '../../../src/message/header-edits.js';
import { HeaderBlockReader } from '../../../src/message/header-block.js';
import { createFactsParser } from '../../../src/message/parse.js';
import { isRelayError } from '../../../src/core/errors.js';
import { isLoopbackAddress } from '../../../src/core/loopback.js';
import { AdminGuard, loopbackHostHeaders } from '../../../src/ops/admin-auth.js';
import { rawSmtp } from '../../helpers/smtp-client.js';
import { bodyOf, EOD_VARIANTS, expectAlive, sendMessage, startHostile, type Hostile } from './support.js';

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => {
  unhandled.push(reason);
};
beforeAll(() => {
  process.on('unhandledRejection', onUnhandled);
});
afterAll(() => {
  process.off('unhandledRejection', onUnhandled);
  expect(unhandled).toEqual([]);
});

/** `promise`, or `otherwise` after `ms` (the timer is cleared either way: no timer outlives the race). */
async function withinMs<T, U>(promise: Promise<T>, ms: number, otherwise: U): Promise<T | U> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<U>((resolve) => (timer = setTimeout(() => resolve(otherwise), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** `npm run fuzz` runs the same properties longer (FUZZ_SCALE × the runs; FUZZ_SEED picks another seed); CI runs the bounded default. */
const SCALE = Math.max(1, Number(process.env.FUZZ_SCALE ?? 1));
const SEED = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) : 0x5eed7;
const SAMPLE = Buffer.from(
  'From: "A" <app@legacy.test>\r\nTo: b@dest.test\r\nSubject: s\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="x"\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\nhi\r\n--x\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nQUJD\r\n--x--\r\n',
);

/** a random message: either random bytes or SAMPLE with random bytes spliced in */
const messageArb = fc.oneof(
  fc.uint8Array({ maxLength: 600 }).map((a) => Buffer.from(a)),
  fc.tuple(fc.nat(SAMPLE.length), fc.nat(40), fc.uint8Array({ maxLength: 40 })).map(([at, cut, insert]) =>
    Buffer.concat([SAMPLE.subarray(0, at), Buffer.from(insert), SAMPLE.subarray(Math.min(SAMPLE.length, at + cut))]),
  ),
  fc.array(fc.constantFrom('From: a@b.c', 'X: y', '\r\n', '\n', '\r', ' folded', '--x', 'Content-Type: multipart/mixed; boundary=x', '\0', 'é', '=?utf-8?q?a?='), { maxLength: 40 }).map((p) =>
    Buffer.from(p.join(''), 'utf8'),
  ),
);

function chunked(bytes: Buffer, cuts: readonly number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(bytes.subarray(prev, p));
    prev = p;
  }
  out.push(bytes.subarray(prev));
  return out;
}

describe('unit-level fuzzing', () => {
  it('HeaderBlockReader: header + body === input for any bytes and chunking', () => {
    fc.assert(
      fc.property(messageArb, fc.array(fc.nat(), { maxLength: 8 }), fc.integer({ min: 0, max: 300 }), (msg, cuts, limit) => {
        const reader = new HeaderBlockReader(limit);
        const body: Buffer[] = [];
        try {
          for (const c of chunked(msg, cuts)) body.push(...reader.push(c));
          reader.end();
        } catch (err) {
          expect(isRelayError(err) && err.code === 'E_HEADER_TOO_BIG').toBe(true);
          return;
        }
        expect(Buffer.concat([reader.header, ...body]).equals(msg)).toBe(true);
      }),
      { seed: SEED, numRuns: 300 * SCALE },
    );
  });

  it('applyHeaderEdits: never touches the body, never throws on input, the set field is there once', () => {
    fc.assert(
      fc.property(messageArb, fc.string({ maxLength: 60 }), (msg, value) => {
        const reader = new HeaderBlockReader(1 << 20);
        const body = [...reader.push(msg)];
        reader.end();
        const clean = value.replace(/[\r\n\0]/g, ' ');
        const edited = applyHeaderEdits(reader.header, [
          { op: 'set', name: 'From', value: 'x@y.test' },
          { op: 'setIfAbsent', name: 'Reply-To', value: clean === '' ? 'a' : clean },
          { op: 'remove', name: 'Sender' },
        ]);
        expect(headerFieldValues(edited, 'from')).toEqual(['x@y.test']);
        expect(headerFieldValues(edited, 'sender')).toEqual([]);
        const out = Buffer.concat([edited, ...body]);
        expect(out.subarray(out.length - Buffer.concat(body).length).equals(Buffer.concat(body))).toBe(true);
        // a value with a line break is refused, never written
        expect(() => applyHeaderEdits(reader.header, [{ op: 'set', name: 'X', value: `a\r\nBcc: e@x.test` }])).toThrow();
      }),
      { seed: SEED, numRuns: 300 * SCALE },
    );
  });

  it('a From field however its name is folded or spaced is replaced by the From edit: one From for a MIME reader', () => {
    const wsp = fc.constantFrom('', ' ', '\t', '\r\n ', '\r\n\t', ' \r\n ');
    fc.assert(
      fc.property(fc.constantFrom('From', 'FROM', 'from'), wsp, wsp, fc.string({ maxLength: 20 }), (name, before, after, value) => {
        const clean = value.replace(/[\r\n]/g, ' ');
        const header = Buffer.from(`From: real@legacy.test\r\n${name}${before}:${after}${clean} spoof@evil.test\r\nSubject: s\r\n`, 'latin1');
        const edited = applyHeaderEdits(header, [{ op: 'set', name: 'From', value: 'noreply@corp.test' }]);
        const froms = new Headers(edited).getList().filter((l) => l.key === 'from');
        expect(froms.map((l) => l.line)).toEqual(['From: noreply@corp.test']);
      }),
      { seed: SEED, numRuns: 200 * SCALE },
    );
  });

  it('every mailbox field the relay writes has lines of at most 78 characters (short address) and never above 998', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 1500 }), fc.string({ unit: 'grapheme', maxLength: 400 }), fc.stringMatching(/^[A-Za-z=?_.]{0,1500}$/), fc.stringMatching(/^[A-Za-z]{60,1200}$/), fc.stringMatching(/^[A-Za-z.,]{60,1200}$/)), fc.boolean(), (name, longAddress) => {
        const address = longAddress ? `${'l'.repeat(200)}@${'d'.repeat(40)}.test` : 'app@legacy.test';
        const lines = formatHeaderField('Reply-To', formatMailbox({ name, address })).split('\r\n');
        for (const line of lines) expect(line.length).toBeLessThanOrEqual(longAddress ? 998 : 78);
      }),
      { seed: SEED, numRuns: 300 * SCALE },
    );
  });

  it('facts parser: always settles (facts or a RelayError), whatever the bytes and chunking', async () => {
    await fc.assert(
      fc.asyncProperty(messageArb, fc.array(fc.nat(), { maxLength: 6 }), async (msg, cuts) => {
        const parser = createFactsParser({ maxHeaderBytes: 4096 });
        for (const c of chunked(msg, cuts)) parser.input.write(c);
        parser.input.end();
        const settled = await withinMs(
          parser.facts.then(
            () => 'ok',
            (err: unknown) => (isRelayError(err) ? 'relay-error' : 'other'),
          ),
          2000,
          'hang',
        );
        expect(['ok', 'relay-error']).toContain(settled);
      }),
      { seed: SEED, numRuns: 200 * SCALE },
    );
  });
});

describe('intake-level fuzzing (real sockets)', () => {
  let h: Hostile;
  beforeAll(async () => {
    h = await startHostile({ limits: { maxAttachments: 1000 } });
  });
  afterAll(async () => {
    await h.stop();
  });

  it('random CRLF-clean bodies are relayed with the body bytes unchanged', async () => {
    const lineArb = fc.oneof(fc.uint8Array({ maxLength: 120 }).map((a) => Buffer.from(a.filter((b) => b !== 0x0d && b !== 0x0a))), fc.constantFrom(Buffer.from('.'), Buffer.from('..'), Buffer.from('.\0'), Buffer.from('')));
    await fc.assert(
      fc.asyncProperty(fc.array(lineArb, { maxLength: 30 }), async (lines) => {
        const body = Buffer.concat(lines.flatMap((l) => [l, Buffer.from('\r\n')]));
        const message = Buffer.concat([Buffer.from('From: app@legacy.test\r\nSubject: fuzz\r\n\r\n'), body]);
        const before = h.upstream.messages.length;
        const reply = await sendMessage(h.relay.port, message);
        if (!reply.startsWith('250')) {
          expect(reply).toMatch(/^5\d\d 5\./);
          return;
        }
        expect(h.upstream.messages).toHaveLength(before + 1);
        expect(bodyOf(h.upstream.messages[before]!.raw)?.equals(body)).toBe(true);
      }),
      { seed: SEED, numRuns: 25 * SCALE },
    );
  });

  it('long lines: folded at whitespace so no line upstream exceeds 998, or refused with 550 5.6.0 when a run cannot be folded', async () => {
    const token = fc.oneof(fc.stringMatching(/^[a-z<>\/=".]{1,12}$/), fc.nat(1400).map((n) => 't'.repeat(n + 1)));
    const longLine = fc.array(token, { minLength: 1, maxLength: 300 }).map((tokens) => tokens.join(' '));
    await fc.assert(
      fc.asyncProperty(fc.array(longLine, { minLength: 1, maxLength: 4 }), async (lines) => {
        const body = lines.map((l) => `${l}\r\n`).join('');
        const message = Buffer.from(`From: app@legacy.test\r\nSubject: long\r\n\r\n${body}`);
        const before = h.upstream.messages.length;
        const reply = await sendMessage(h.relay.port, message);
        const unfoldable = lines.some((l) => l.split(' ').some((t, i) => (i === 0 ? t.length : t.length + 1) > 998));
        if (unfoldable) {
          expect(reply).toMatch(/^550 5\.6\.0 Message has a line of \d+ characters with no space to fold it at/);
          expect(h.upstream.messages).toHaveLength(before);
          return;
        }
        expect(reply).toMatch(/^250 /);
        const got = h.upstream.messages[before]!.raw;
        expect(Math.max(...got.toString('latin1').split('\r\n').map((l) => l.length))).toBeLessThanOrEqual(998);
        expect(bodyOf(got)!.toString('latin1').replace(/\r\n(?= )/g, '')).toBe(body);
      }),
      { seed: SEED, numRuns: 20 * SCALE },
    );
  });

  it('random command sequences with smuggling tails never deliver a smuggled message', async () => {
    const step = fc.oneof(
      fc.constantFrom('MAIL FROM:<app@legacy.test>\r\n', 'RCPT TO:<alice@dest.test>\r\n', 'RSET\r\n', 'NOOP\r\n', 'HELO x\r\n', 'BDAT 10\r\n', 'VRFY a\r\n', '\r\n', 'MAIL FROM:<x\0y@z.test>\r\n'),
      fc.constantFrom(...EOD_VARIANTS.map(([, eod]) => `\r\nRSET\r\nMAIL FROM:<app@legacy.test>\r\nRCPT TO:<alice@dest.test>\r\nDATA\r\nSubject: t\r\n\r\nx${eod}MAIL FROM:<smuggled@evil.test>\r\nRCPT TO:<victim@dest.test>\r\nDATA\r\nsmuggled\r\n.\r\n`)),
      fc.uint8Array({ maxLength: 30 }).map((a) => Buffer.from(a).toString('latin1')),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 8 }), async (steps) => {
        const c = await rawSmtp(h.relay.port);
        try {
          await c.next();
          c.write('EHLO fuzz.test\r\n');
          for (const s of steps) c.write(Buffer.from(s, 'latin1'));
          c.write('\r\n.\r\nQUIT\r\n');
          await withinMs(c.closed, 1500, undefined); // a session left in DATA is closed by us below
        } finally {
          c.close();
        }
        for (const m of h.upstream.messages) {
          expect(m.envelope.mailFrom).not.toBe('smuggled@evil.test');
          expect(m.envelope.rcptTo).not.toContain('victim@dest.test');
        }
      }),
      { seed: SEED, numRuns: 15 * SCALE },
    );
    await expectAlive(h.relay.port);
  });
});

describe('admin API guard fuzzing (issue 12 finding 2)', () => {
  it('AdminGuard admits a request only from loopback, with an exact loopback Host, no foreign Origin and the token', () => {
    const token = 'T0ken-value_abc';
    const allowed = loopbackHostHeaders(8025);
    const guard = new AdminGuard({ token: () => token, allowedHosts: () => allowed });
    const near = fc.constantFrom(...allowed).chain((h) => fc.oneof(fc.constant(h.toUpperCase()), fc.string({ maxLength: 8 }).map((s) => `${h}${s}`), fc.string({ maxLength: 8 }).map((s) => `${s}${h}`)));
    const hostArb = fc.option(fc.oneof(fc.constantFrom(...allowed), near, fc.constantFrom('[::1].evil.example', '[::1].evil.example:8025', 'localhost.:8025', '127.0.0.1', '0x7f.1:8025'), fc.string({ maxLength: 30 })), { nil: undefined });
    const authArb = fc.option(fc.oneof(fc.constant(`Bearer ${token}`), fc.constant(`bearer  ${token} `), fc.string({ maxLength: 30 }).map((s) => `Bearer ${s}`), fc.string({ maxLength: 30 })), { nil: undefined });
    const originArb = fc.option(fc.oneof(fc.constantFrom('http://127.0.0.1:8025', 'http://localhost:8025', 'http://evil.example', 'null'), fc.string({ maxLength: 30 })), { nil: undefined });
    const peerArb = fc.constantFrom('127.0.0.1', '::1', '::ffff:127.0.0.1', '10.0.0.7', '172.17.0.2', undefined);
    fc.assert(
      fc.property(hostArb, authArb, originArb, peerArb, (host, authorization, origin, peer) => {
        const headers: Record<string, string> = {};
        if (host !== undefined) headers.host = host;
        if (authorization !== undefined) headers.authorization = authorization;
        if (origin !== undefined) headers.origin = origin;
        const verdict = guard.check({ method: 'DELETE', remoteAddress: peer, headers });
        const hostOk = host !== undefined && allowed.includes(host.toLowerCase());
        const expected =
          isLoopbackAddress(peer) &&
          hostOk &&
          (origin === undefined || origin.toLowerCase() === `http://${host!.toLowerCase()}`) &&
          authorization !== undefined &&
          new RegExp(`^Bearer +${token}\\s*$`, 'i').test(authorization);
        expect(verdict.ok).toBe(expected);
        if (!verdict.ok) expect(verdict.reason).not.toContain(token);
      }),
      { seed: SEED, numRuns: 500 * SCALE },
    );
  });
});
