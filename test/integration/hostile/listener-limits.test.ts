/**
 * Issue 12 finding 4 (SMTP part): sessions that send no mail cannot hold listener slots.
 * NOOP-chatty sessions are cut once nothing moved mail for the idle timeout; a junk-command
 * budget; a session lifetime cap (never in the middle of a DATA); a minimum DATA rate (1 byte/s
 * with a line feed every 30 bytes is cut off); refusals are logged once per interval with a
 * count, not one line per refused connection. Every wait is bounded in count and time.
 *
 * The tests wait on the relay's real timers (seconds), each with its own relay: they run
 * concurrently, so the file takes as long as its slowest test, not the sum.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { rawSmtp, openTransaction, type RawSmtp } from '../../helpers/smtp-client.js';
import { dataPayload, hostileForTest, sendMessage, type HostileTest } from './support.js';

const MESSAGE = 'From: app@legacy.test\r\nSubject: limits\r\n\r\nbody\r\n';

async function session(h: HostileTest): Promise<RawSmtp> {
  const c = h.track(await rawSmtp(h.relay.port));
  expect(await c.next()).toMatch(/^220 /);
  expect(await c.command('EHLO chatty.test')).toMatch(/^250/);
  return c;
}

/** Sends NOOP every `everyMs` until the relay answers something else or `maxTries` is reached (the pacing is the behaviour under test). */
async function noopUntilCut(c: RawSmtp, everyMs: number, maxTries: number): Promise<string[]> {
  const replies: string[] = [];
  for (let i = 0; i < maxTries && !c.socket.destroyed; i++) {
    const reply = await c.command('NOOP').catch(() => 'closed');
    replies.push(reply);
    if (!reply.startsWith('250')) break;
    await sleep(everyMs);
  }
  return replies;
}

describe.concurrent('listener limits (each test with its own relay, run concurrently)', () => {
  describe('sessions that send no mail', () => {
    it('NOOP every 0.5 s no longer holds a slot past the idle timeout: 421 4.4.2, and the slots serve new clients', async ({ onTestFinished }) => {
      const h = await hostileForTest(onTestFinished, { listen: { maxClients: 3, socketTimeoutSeconds: 2 } });
      const chatty = await Promise.all([0, 1, 2].map(() => session(h)));
      const outcomes = await Promise.all(chatty.map((c) => noopUntilCut(c, 500, 20)));
      for (const replies of outcomes) {
        expect(replies.slice(0, -1).every((r) => r.startsWith('250'))).toBe(true);
        expect(replies.at(-1)).toMatch(/^421 4\.4\.2 No mail sent for 2 seconds/);
        expect(replies.length).toBeLessThan(12); // cut soon after 2 s of NOOPs, not after 20
      }
      await Promise.all(chatty.map((c) => c.closed));
      expect(await sendMessage(h.relay.port, MESSAGE)).toMatch(/^250 /);
      expect(h.relay.logs.events('intake.session-cut').some((l) => l['reason'] === 'no-progress')).toBe(true);
    });

    it('more junk commands than listen.maxJunkCommands between messages get 421 4.7.0; a message resets the count', async ({ onTestFinished }) => {
      const h = await hostileForTest(onTestFinished, { listen: { maxJunkCommands: 5 } });
      const c = await session(h); // EHLO: 1 junk command
      for (let i = 0; i < 4; i++) expect(await c.command(i % 2 === 0 ? 'NOOP' : 'RSET')).toMatch(/^250/);
      expect(await c.command('MAIL FROM:<app@legacy.test>')).toMatch(/^250/);
      expect(await c.command('RCPT TO:<alice@dest.test>')).toMatch(/^250/);
      expect(await c.command('DATA')).toMatch(/^354/);
      c.write(dataPayload(Buffer.from(MESSAGE)));
      expect(await c.next()).toMatch(/^250 /);
      for (let i = 0; i < 5; i++) expect(await c.command('NOOP')).toMatch(/^250/);
      expect(await c.command('VRFY someone')).toMatch(/^421 4\.7\.0 Too many commands without a message/);
      await c.closed;
    });
  });

  describe('session lifetime (listen.maxSessionSeconds)', () => {
    it('an idle session past its lifetime gets 421 4.4.2 while it waits', async ({ onTestFinished }) => {
      const h = await hostileForTest(onTestFinished, { listen: { maxSessionSeconds: 1 } });
      const c = await session(h);
      expect(await c.next(5000)).toMatch(/^421 4\.4\.2 Session lasted longer than 1 seconds/);
      await c.closed;
    });

    it('a DATA in progress at expiry is finished and answered; the next command gets the 421', async ({ onTestFinished }) => {
      const h = await hostileForTest(onTestFinished, { listen: { maxSessionSeconds: 1 } });
      const c = h.track(await openTransaction(h.relay.port, 'app@legacy.test', ['alice@dest.test']));
      c.write('From: app@legacy.test\r\nSubject: slow but fine\r\n\r\n');
      for (let i = 0; i < 6; i++) {
        c.write(`line ${i} ${'x'.repeat(500)}\r\n`); // 250 bytes/s and up: above the minimum rate
        await sleep(250); // a DATA that lasts past the 1 s lifetime: the pacing is the behaviour under test
      }
      c.write('.\r\n');
      expect(await c.next(10_000)).toMatch(/^250 /);
      expect(await c.command('MAIL FROM:<app@legacy.test>')).toMatch(/^421 4\.4\.2 Session lasted longer/);
      expect(h.upstream.messages).toHaveLength(1);
    });
  });

  describe('minimum DATA rate', () => {
    it('1 byte/s with a line feed every 30 bytes is cut off with 421 4.4.2 long before 85 s, and nothing is accepted', async ({ onTestFinished }) => {
      const h = await hostileForTest(onTestFinished, { listen: { minDataRateAfterSeconds: 2 } }); // default rate: 256 bytes/s
      const c = h.track(await openTransaction(h.relay.port, 'app@legacy.test', ['alice@dest.test']));
      const started = Date.now();
      const line = Buffer.from(`Subject: slow${'.'.repeat(14)}\r\n`); // 30 bytes with its line feed
      // one byte a second (a line feed every 30 bytes) until the relay answers, at most 12 s
      let sent = 0;
      const trickle = setInterval(() => {
        if (!c.socket.destroyed) c.write(line.subarray(sent % 30, (sent % 30) + 1));
        sent++;
      }, 1000);
      const reply = await c.next(12_000).finally(() => clearInterval(trickle));
      expect(reply).toMatch(/^421 4\.4\.2 Message data arrives too slowly/);
      expect(Date.now() - started).toBeLessThan(12_000);
      await c.closed;
      expect(h.upstream.messages).toHaveLength(0);
      expect(h.relay.logs.events('intake.session-cut').map((l) => l['reason'])).toContain('slow-data');
    });
  });

  describe('refusals are logged once per interval with a count', () => {
    it('20 connections over maxClients give one log line at once and one summary with the count, not 20 lines', async ({ onTestFinished }) => {
      const h = await hostileForTest(onTestFinished, { listen: { maxClients: 1 } });
      await session(h);
      for (let i = 0; i < 20; i++) {
        const extra = h.track(await rawSmtp(h.relay.port));
        expect(await extra.next()).toMatch(/^421 /);
        await extra.closed;
      }
      const first = h.relay.logs.events('refused');
      expect(first).toHaveLength(1);
      expect(first[0]).toMatchObject({ reason: 'listen.maxClients reached', count: 1 });
      const logs = h.relay.logs;
      await h.stop(); // the listener's close logs what was still being counted
      const all = logs.events('refused');
      expect(all).toHaveLength(2);
      expect(all[1]).toMatchObject({ reason: 'listen.maxClients reached', count: 19 });
    });
  });
});
