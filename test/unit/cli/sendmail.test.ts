/** sendmail's pure parts: the command line, the message on stdin, the exit-code table, dot-stuffing and -bs accounting. */
import { describe, expect, it } from 'vitest';
import { prepareMessage, splitLines } from '../../../src/cli/sendmail-message.js';
import { parseSendmailArgs, type SendmailArgs } from '../../../src/cli/sendmail.js';
import { crlfNormalizer, replyCounter } from '../../../src/cli/smtp-pipe.js';
import { dotStuff } from '../../../src/cli/smtp-submit.js';
import { exitForReply, REPLY_RULES, SYSEXIT } from '../../../src/cli/sysexits.js';

function args(argv: string[]): SendmailArgs {
  const parsed = parseSendmailArgs(argv);
  if (!parsed.ok) throw new Error(parsed.problem);
  return parsed.args;
}

describe('sendmail command line', () => {
  it("reads Debian cron's argv", () => {
    expect(args(['-FCronDaemon', '-i', '-B8BITMIME', '-oem', 'ops@example.com'])).toMatchObject({
      fullName: 'CronDaemon',
      dotEndsMessage: false,
      eightBit: true,
      recipientsFromHeaders: false,
      recipients: ['ops@example.com'],
      mode: 'message',
    });
  });

  it("reads cronie's argv, with the sender last", () => {
    expect(args(['-FCronDaemon', '-i', '-odi', '-oem', '-oi', '-t', '-f', 'root'])).toMatchObject({ sender: 'root', recipientsFromHeaders: true, dotEndsMessage: false, recipients: [] });
  });

  it('reads bundled flags, attached and separate arguments, -o i, long options and "--"', () => {
    expect(args(['-ti', '-fme@x.test', '-F', 'Full Name', 'a@x.test', '-v', '--config=/c.json', '--relay', 'h:1', '--', '-odd@x.test'])).toMatchObject({
      recipientsFromHeaders: true,
      dotEndsMessage: false,
      sender: 'me@x.test',
      fullName: 'Full Name',
      verbose: true,
      config: '/c.json',
      relay: 'h:1',
      recipients: ['a@x.test', '-odd@x.test'],
    });
    expect(args(['-o', 'i']).dotEndsMessage).toBe(false);
    expect(args(['-oem']).dotEndsMessage).toBe(true);
    expect(args(['-r', 'bounce@x.test']).sender).toBe('bounce@x.test');
    expect(args(['-C/etc/alt.json']).config).toBe('/etc/alt.json');
  });

  it('accepts the options other sendmails accept and ignores them', () => {
    const ignored = ['-Am', '-c', '-e', 'q', '-G', '-h', '17', '-L', 'tag', '-m', '-n', '-N', 'never', '-O', 'DeliveryMode=b', '-odb', '-om', '-p', 'smtp', '-R', 'hdrs', '-U', '-V', 'envid', '-X', '/tmp/log', '-x', 'a@x.test'];
    expect(args(ignored)).toMatchObject({ recipients: ['a@x.test'], mode: 'message', dotEndsMessage: true, recipientsFromHeaders: false });
  });

  it('modes: -bm, -bs, -bi/-I/-q do nothing, -bd/-bp/-bv refused with what to use instead', () => {
    expect(args(['-bm']).mode).toBe('message');
    expect(args(['-bs']).mode).toBe('smtp');
    for (const argv of [['-bi'], ['-I'], ['-q'], ['-q30m']]) expect(args(argv).mode).toBe('nothing');
    expect(parseSendmailArgs(['-bd'])).toMatchObject({ ok: false, problem: expect.stringContaining('smtp-sidecar start') });
    expect(parseSendmailArgs(['-bp'])).toMatchObject({ ok: false, problem: expect.stringContaining('smtp-sidecar queue list') });
    expect(parseSendmailArgs(['-bv'])).toMatchObject({ ok: false });
  });

  it('refuses an unknown option and an option without its argument', () => {
    expect(parseSendmailArgs(['-k'])).toEqual({ ok: false, problem: 'unknown option -k' });
    expect(parseSendmailArgs(['-f'])).toEqual({ ok: false, problem: 'option -f needs an argument' });
    expect(parseSendmailArgs(['--nope'])).toEqual({ ok: false, problem: 'unknown option --nope' });
  });
});

const prepare = (input: string, extra: Partial<Parameters<typeof prepareMessage>[1]> = {}) =>
  prepareMessage(Buffer.from(input, 'utf8'), { dotEndsMessage: true, recipientsFromHeaders: false, sender: 's@x.test', fullName: undefined, localDomain: 'host.test', ...extra });

describe('the message on stdin', () => {
  it('splits on LF and CRLF, and stops at a lone "." only without -i', () => {
    expect(splitLines(Buffer.from('a\r\nb\n.\nc'), true).map(String)).toEqual(['a', 'b']);
    expect(splitLines(Buffer.from('a\r\nb\n.\nc'), false).map(String)).toEqual(['a', 'b', '.', 'c']);
    expect(splitLines(Buffer.from('..\n. \n'), true).map(String)).toEqual(['..', '. ']);
  });

  it('-t: To, Cc and Bcc (folded, groups, display names) are recipients; Bcc is removed', () => {
    const m = prepare('From: a@x.test\nTo: "Doe, J" <j@x.test>,\n  k@x.test\nCc: team: l@x.test, m@x.test;\nBcc: hidden@x.test\nSubject: s\n\nbody\n', { recipientsFromHeaders: true });
    expect(m.headerRecipients.map((r) => r.address)).toEqual(['j@x.test', 'k@x.test', 'l@x.test', 'm@x.test', 'hidden@x.test']);
    expect(m.data.toString()).toBe('From: a@x.test\r\nTo: "Doe, J" <j@x.test>,\r\n  k@x.test\r\nCc: team: l@x.test, m@x.test;\r\nSubject: s\r\n\r\nbody\r\n');
  });

  it('-t: with Resent-To/Cc/Bcc present only those are recipients', () => {
    const m = prepare('From: a@x.test\nTo: old@x.test\nResent-To: new@x.test\nResent-Bcc: hid@x.test\n\nb\n', { recipientsFromHeaders: true });
    expect(m.headerRecipients.map((r) => r.address)).toEqual(['new@x.test', 'hid@x.test']);
    expect(m.data.toString()).not.toContain('Resent-Bcc');
  });

  it('a bare user in To is reported as such (no domain), not dropped', () => {
    expect(prepare('To: root\n\nb\n', { recipientsFromHeaders: true }).headerRecipients).toEqual([{ address: '', written: 'root' }]);
  });

  it('adds From with the -F name when there is none; qualifies a bare-user From as cron writes it', () => {
    expect(prepare('Subject: s\n\nb\n', { fullName: 'Backup Job' }).data.toString()).toBe('From: Backup Job <s@x.test>\r\nSubject: s\r\n\r\nb\r\n');
    expect(prepare('From: root (Cron Daemon)\n\nb\n').data.toString()).toBe('From: Cron Daemon <root@host.test>\r\n\r\nb\r\n');
    expect(prepare('From: "Cron Daemon" <root>\n\nb\n').data.toString()).toBe('From: Cron Daemon <root@host.test>\r\n\r\nb\r\n');
    expect(prepare('From: App <app@x.test>\n\nb\n').data.toString()).toBe('From: App <app@x.test>\r\n\r\nb\r\n');
    expect(prepare('Subject: s\n\nb\n', { sender: '' }).data.toString()).toBe('Subject: s\r\n\r\nb\r\n');
  });

  it('a body without headers, or headers without a blank line before the body, gets the blank line', () => {
    expect(prepare('just text\nmore\n').data.toString()).toBe('From: s@x.test\r\n\r\njust text\r\nmore\r\n');
    expect(prepare('Subject: s\nthis is body\n').data.toString()).toBe('From: s@x.test\r\nSubject: s\r\n\r\nthis is body\r\n');
  });

  it('keeps 8-bit bytes and says so', () => {
    const m = prepareMessage(Buffer.from([0x53, 0x3a, 0x20, 0x78, 0x0a, 0x0a, 0xe9, 0x0a]), { dotEndsMessage: true, recipientsFromHeaders: false, sender: '', fullName: undefined, localDomain: 'h' });
    expect(m.eightBit).toBe(true);
    expect([...m.data]).toEqual([0x53, 0x3a, 0x20, 0x78, 0x0d, 0x0a, 0x0d, 0x0a, 0xe9, 0x0d, 0x0a]);
    expect(prepare('Subject: plain\n\nascii\n').eightBit).toBe(false);
  });
});

describe('dot-stuffing and -bs accounting', () => {
  it('doubles a leading dot and ends with CRLF.CRLF', () => {
    expect(dotStuff(Buffer.from('a\r\n.\r\n..b\r\n')).toString()).toBe('a\r\n..\r\n...b\r\n.\r\n');
    expect(dotStuff(Buffer.from('no eol')).toString()).toBe('no eol\r\n.\r\n');
  });

  it('turns bare LF into CRLF across chunks, leaving CRLF alone', () => {
    const normalize = crlfNormalizer();
    expect(Buffer.concat([normalize(Buffer.from('a\r')), normalize(Buffer.from('\nb\n'))]).toString()).toBe('a\r\nb\r\n');
  });

  it('counts one reply per command, none for message lines, one for the final dot', () => {
    const counter = replyCounter();
    counter.lines('EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDA');
    counter.lines('TA\r\nQUIT is text here\r\n.\r\nQUIT\r\n');
    expect(counter.expected()).toBe(6);
  });
});

describe('exit codes', () => {
  it.each([
    [{ code: 421, enhanced: '4.3.2', step: 'greeting' }, SYSEXIT.TEMPFAIL],
    [{ code: 451, enhanced: '4.4.1', step: 'END-OF-DATA' }, SYSEXIT.TEMPFAIL],
    [{ code: 452, enhanced: '4.5.3', step: 'RCPT' }, SYSEXIT.TEMPFAIL],
    [{ code: 554, enhanced: '5.7.1', step: 'greeting' }, SYSEXIT.NOPERM],
    [{ code: 550, enhanced: '5.1.1', step: 'END-OF-DATA' }, SYSEXIT.NOUSER],
    [{ code: 501, enhanced: '5.1.3', step: 'RCPT' }, SYSEXIT.NOUSER],
    [{ code: 550, enhanced: undefined, step: 'RCPT' }, SYSEXIT.NOUSER],
    [{ code: 553, enhanced: '5.1.8', step: 'MAIL' }, SYSEXIT.DATAERR],
    [{ code: 552, enhanced: '5.3.4', step: 'MAIL' }, SYSEXIT.DATAERR],
    [{ code: 552, enhanced: '5.3.4', step: 'END-OF-DATA' }, SYSEXIT.DATAERR],
    [{ code: 550, enhanced: '5.6.0', step: 'END-OF-DATA' }, SYSEXIT.DATAERR],
    [{ code: 502, enhanced: '5.5.1', step: 'EHLO' }, SYSEXIT.UNAVAILABLE],
    [{ code: 999, enhanced: undefined, step: 'DATA' }, SYSEXIT.TEMPFAIL],
  ] as const)('%o → %i', (reply, exit) => {
    expect(exitForReply(reply)).toBe(exit);
  });

  it('every rule says when it applies', () => {
    for (const rule of REPLY_RULES) expect(rule.when.length).toBeGreaterThan(10);
  });
});
