/**
 * upstreams[].from: golden pairs of header blocks (the outputs are what the earlier,
 * mailparser-based version produced for the same input), and the proof that the rewrite swaps
 * only the header of a spooled message: the body range is handed on, never read.
 */
import { describe, expect, it } from 'vitest';
import { rawHeader, readRaw, withHeader } from '../../../src/core/raw-source.js';
import { overrideSender } from '../../../src/message/sender-override.js';

const SENDER = 'mailer@corp.test';

const GOLDEN: readonly { readonly name: string; readonly header: string; readonly out: string }[] = [
  { name: 'a quoted display name is kept', header: 'From: "Jane Doe" <jane@legacy.test>\r\nTo: a@dest.test\r\nSubject: hi\r\n', out: 'From: Jane Doe <mailer@corp.test>\r\nTo: a@dest.test\r\nSubject: hi\r\n' },
  { name: 'an encoded-word name is decoded and encoded once (not twice)', header: 'From: =?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?= <jm@legacy.test>\r\nSubject: x\r\n', out: 'From: =?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?= <mailer@corp.test>\r\nSubject: x\r\n' },
  { name: 'no From: one is added', header: 'Subject: no from\r\nTo: a@dest.test\r\n', out: 'From: mailer@corp.test\r\nSubject: no from\r\nTo: a@dest.test\r\n' },
  { name: 'two From fields become one, without a name', header: 'From: plain@legacy.test\r\nFrom: second@legacy.test\r\nSubject: two\r\n', out: 'From: mailer@corp.test\r\nSubject: two\r\n' },
  { name: 'a name that looks like an address stays a quoted name', header: 'From: "CEO <ceo@bank.test>" <x@legacy.test>\r\nSubject: s\r\n', out: 'From: "CEO <ceo@bank.test>" <mailer@corp.test>\r\nSubject: s\r\n' },
  { name: 'a folded From is unfolded', header: 'From:\r\n "Folded, Name"\r\n <f@legacy.test>\r\nSubject: s\r\n', out: 'From: "Folded, Name" <mailer@corp.test>\r\nSubject: s\r\n' },
  { name: 'a group keeps its name as the display name', header: 'From: Undisclosed:;\r\nSubject: s\r\n', out: 'From: Undisclosed <mailer@corp.test>\r\nSubject: s\r\n' },
  { name: 'an encoded-word that does not decode stays literal text', header: 'From: =?bogus?X?zz?= <b@legacy.test>\r\n', out: 'From: =?UTF-8?Q?=3D=3Fbogus=3FX=3Fzz=3F=3D?= <mailer@corp.test>\r\n' },
];

describe('overrideSender (upstreams[].from)', () => {
  for (const pair of GOLDEN) {
    it(pair.name, () => {
      expect(overrideSender(Buffer.from(pair.header), SENDER).toString()).toBe(pair.out);
    });
  }

  it('an in-memory message gets the new header and the same body bytes', async () => {
    const message = Buffer.from('From: "Jane Doe" <jane@legacy.test>\r\nSubject: hi\r\n\r\nbody\r\n.line\r\n');
    const rewritten = withHeader(message, overrideSender(rawHeader(message), SENDER));
    expect((await readRaw(rewritten)).toString()).toBe('From: Jane Doe <mailer@corp.test>\r\nSubject: hi\r\n\r\nbody\r\n.line\r\n');
  });

  it('a spooled message keeps its body range: the file is not read (it does not even exist)', () => {
    const header = Buffer.from('From: "Jane Doe" <jane@legacy.test>\r\nSubject: hi\r\n');
    const source = { path: '/nonexistent/spool/queue/Q1.eml', header, bodyStart: header.length, bodyEnd: header.length + 5_000_000 };
    const rewritten = withHeader(source, overrideSender(rawHeader(source), SENDER));
    expect(rewritten).toEqual({ path: source.path, header: Buffer.from('From: Jane Doe <mailer@corp.test>\r\nSubject: hi\r\n'), bodyStart: source.bodyStart, bodyEnd: source.bodyEnd });
  });
});
