/**
 * A fake on-premises Exchange that offers only AUTH NTLM (MS-SMTPX), on 127.0.0.1, port 0.
 *
 * Does: check what it receives as a server would: the negotiate message (signature, type 1),
 *   then sends a type 2 challenge (random 8 bytes, Unicode, NTLM2 key, target info), then checks
 *   the authenticate message (signature, type 3, user and domain fields) and its NTLMv2 proof
 *   (HMAC-MD5 over the challenge and the client's blob with the key derived from the password,
 *   the upper-cased user and the domain). Answers 235 or 535 5.7.3, and 530 5.7.1 to MAIL FROM
 *   before a successful AUTH. Records each accepted message and every AUTH attempt.
 * Never: accepts a message without a successful AUTH; listens beyond loopback.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import net from 'node:net';

const require = createRequire(import.meta.url);
// MD4 (the NT hash): OpenSSL 3 has it only in its legacy provider; js-md4 comes with the NTLM client
const md4 = require('js-md4') as { arrayBuffer(data: Buffer): ArrayBuffer };

const SIGNATURE = Buffer.from('NTLMSSP\0', 'latin1');
const FLAGS = (1 << 0) /* Unicode */ | (1 << 9) /* NTLM */ | (1 << 19) /* NTLM2 key */ | (1 << 23); /* target info */

export interface NtlmAttempt {
  readonly user: string;
  readonly domain: string;
  readonly workstation: string;
  readonly accepted: boolean;
  readonly problem?: string;
}

export interface FakeNtlmUpstream {
  readonly port: number;
  readonly attempts: NtlmAttempt[];
  readonly messages: { readonly mailFrom: string; readonly rcptTo: string[]; readonly data: string; readonly user: string }[];
  close(): Promise<void>;
}

function secBuf(msg: Buffer, at: number): Buffer {
  const length = msg.readUInt16LE(at);
  const offset = msg.readUInt32LE(at + 4);
  if (offset + length > msg.length) throw new Error(`security buffer at ${at} points past the message`);
  return msg.subarray(offset, offset + length);
}

function challengeMessage(challenge: Buffer, domain: string): Buffer {
  const target = Buffer.from(domain, 'utf16le');
  const info = Buffer.concat([Buffer.from([2, 0]), Buffer.alloc(2), target, Buffer.alloc(4)]); // MsvAvNbDomainName, MsvAvEOL
  info.writeUInt16LE(target.length, 2);
  const header = Buffer.alloc(48);
  SIGNATURE.copy(header, 0);
  header.writeUInt32LE(2, 8);
  header.writeUInt16LE(target.length, 12);
  header.writeUInt16LE(target.length, 14);
  header.writeUInt32LE(48, 16);
  header.writeUInt32LE(FLAGS, 20);
  challenge.copy(header, 24);
  header.writeUInt16LE(info.length, 40);
  header.writeUInt16LE(info.length, 42);
  header.writeUInt32LE(48 + target.length, 44);
  return Buffer.concat([header, target, info]);
}

export async function startFakeNtlmUpstream(options: { users: Readonly<Record<string, string>>; domain: string }): Promise<FakeNtlmUpstream> {
  const attempts: NtlmAttempt[] = [];
  const messages: FakeNtlmUpstream['messages'] = [];
  const sockets = new Set<net.Socket>();

  const check = (type3: Buffer, challenge: Buffer): NtlmAttempt => {
    const fail = (problem: string, fields: Partial<NtlmAttempt> = {}): NtlmAttempt => ({ user: '', domain: '', workstation: '', ...fields, accepted: false, problem });
    if (!type3.subarray(0, 8).equals(SIGNATURE) || type3.readUInt32LE(8) !== 3) return fail('not an NTLM authenticate message');
    const ntResponse = secBuf(type3, 20);
    const domain = secBuf(type3, 28).toString('utf16le');
    const user = secBuf(type3, 36).toString('utf16le');
    const workstation = secBuf(type3, 44).toString('utf16le');
    const fields = { user, domain, workstation };
    if (domain.toUpperCase() !== options.domain.toUpperCase()) return fail(`unknown domain "${domain}"`, fields);
    const password = options.users[user];
    if (password === undefined) return fail(`unknown user "${user}"`, fields);
    if (ntResponse.length <= 24) return fail('an NTLMv1 response (only NTLMv2 is accepted)', fields);
    const ntHash = Buffer.from(md4.arrayBuffer(Buffer.from(password, 'utf16le')));
    const v2Hash = createHmac('md5', ntHash).update(Buffer.from(user.toUpperCase() + domain, 'utf16le')).digest();
    const blob = ntResponse.subarray(16);
    const proof = createHmac('md5', v2Hash).update(Buffer.concat([challenge, blob])).digest();
    if (!proof.equals(ntResponse.subarray(0, 16))) return fail('the NTLMv2 proof does not match (wrong password)', fields);
    return { ...fields, accepted: true };
  };

  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let buffer = '';
    let state: 'command' | 'type1' | 'type3' | 'data' = 'command';
    let challenge = Buffer.alloc(0);
    let user: string | undefined;
    let envelope = { mailFrom: '', rcptTo: [] as string[] };
    let data: string[] = [];
    const reply = (line: string) => socket.write(`${line}\r\n`);
    const onType1 = (b64: string) => {
      const type1 = Buffer.from(b64, 'base64');
      if (type1.length < 12 || !type1.subarray(0, 8).equals(SIGNATURE) || type1.readUInt32LE(8) !== 1) {
        attempts.push({ user: '', domain: '', workstation: '', accepted: false, problem: 'not an NTLM negotiate message' });
        state = 'command';
        return reply('501 5.7.0 Invalid NTLM negotiate message');
      }
      challenge = randomBytes(8);
      state = 'type3';
      return reply(`334 ${challengeMessage(challenge, options.domain).toString('base64')}`);
    };
    const onLine = (line: string) => {
      if (state === 'data') {
        if (line === '.') {
          state = 'command';
          messages.push({ ...envelope, data: data.join('\r\n'), user: user ?? '' });
          return reply('250 2.6.0 Queued mail for delivery');
        }
        data.push(line.startsWith('..') ? line.slice(1) : line);
        return;
      }
      if (state === 'type1') return onType1(line);
      if (state === 'type3') {
        state = 'command';
        const attempt = (() => {
          try {
            return check(Buffer.from(line, 'base64'), challenge);
          } catch (err) {
            return { user: '', domain: '', workstation: '', accepted: false, problem: (err as Error).message };
          }
        })();
        attempts.push(attempt);
        if (!attempt.accepted) return reply('535 5.7.3 Authentication unsuccessful');
        user = attempt.user;
        return reply('235 2.7.0 Authentication successful');
      }
      const [verb = '', ...rest] = line.split(' ');
      switch (verb.toUpperCase()) {
        case 'EHLO':
          return reply('250-exchange.corp.test Hello\r\n250-SIZE 37748736\r\n250-AUTH NTLM\r\n250 8BITMIME');
        case 'HELO':
          return reply('250 exchange.corp.test');
        case 'AUTH':
          if ((rest[0] ?? '').toUpperCase() !== 'NTLM') return reply('504 5.7.4 Unrecognized authentication type');
          if (rest[1] === undefined) {
            state = 'type1';
            return reply('334 ');
          }
          return onType1(rest[1]);
        case 'MAIL':
          if (user === undefined) return reply('530 5.7.1 Client was not authenticated');
          envelope = { mailFrom: /<([^>]*)>/.exec(line)?.[1] ?? '', rcptTo: [] };
          return reply('250 2.1.0 Sender OK');
        case 'RCPT':
          envelope.rcptTo.push(/<([^>]*)>/.exec(line)?.[1] ?? '');
          return reply('250 2.1.5 Recipient OK');
        case 'DATA':
          data = [];
          state = 'data';
          return reply('354 Start mail input; end with <CRLF>.<CRLF>');
        case 'RSET':
          return reply('250 2.0.0 Resetting');
        case 'NOOP':
          return reply('250 2.0.0 OK');
        case 'QUIT':
          reply('221 2.0.0 Service closing transmission channel');
          return socket.end();
        default:
          return reply('500 5.3.3 Unrecognized command');
      }
    };
    socket.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('latin1');
      let at: number;
      while ((at = buffer.indexOf('\r\n')) >= 0) {
        const line = buffer.slice(0, at);
        buffer = buffer.slice(at + 2);
        onLine(line);
      }
    });
    reply('220 exchange.corp.test Microsoft ESMTP MAIL Service ready');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    attempts,
    messages,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
