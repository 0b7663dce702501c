/**
 * A real POP3 or IMAP server for tests (POP3-/IMAP-before-SMTP): 127.0.0.1, port 0, plain,
 * implicit TLS or STLS/STARTTLS with the test PKI. As POP3 it answers as RFC 1939 servers do
 * (+OK / -ERR, one line each) and checks USER and PASS; as IMAP (RFC 3501) it parses LOGIN's
 * quoted strings, sends an untagged line before the tagged OK/NO, and checks them against its users; a good login is recorded, so a fake SMTP upstream can
 * take mail only after one (`loggedIn`).
 *
 * Does: record every command (PASS with its value, for the test to compare), every login.
 * Never: listen anywhere but 127.0.0.1; leave a socket open after `close()`.
 */
import net from 'node:net';
import tls from 'node:tls';
import { TLS_PEM } from './tls.js';

export interface FakePop3 {
  readonly port: number;
  /** every command line received, in order */
  readonly commands: string[];
  /** successful logins (user names), in order */
  readonly logins: string[];
  readonly loggedIn: boolean;
  close(): Promise<void>;
}

/** IMAP quoted strings or atoms, in order (RFC 3501 4.3: backslash escapes \\ and \"). */
function imapArgs(text: string): string[] {
  const out: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|(\S+)/g;
  for (const m of text.matchAll(re)) out.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2]!);
  return out;
}

export async function startFakePop3(options: { users: Record<string, string>; tls?: 'none' | 'implicit' | 'stls'; protocol?: 'pop3' | 'imap' }): Promise<FakePop3> {
  const imap = options.protocol === 'imap';
  const commands: string[] = [];
  const logins: string[] = [];
  const sockets = new Set<net.Socket>();
  const secure = { key: TLS_PEM.serverKey, cert: TLS_PEM.serverCert };
  const serve = (socket: net.Socket, afterStls = false): void => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let user: string | undefined;
    let buffer = '';
    const onData = (chunk: Buffer): void => {
      buffer += chunk.toString('latin1');
      let end: number;
      while ((end = buffer.indexOf('\r\n')) >= 0) {
        const line = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        commands.push(line);
        if (imap) {
          const [tag = '*', verb = '', ...rest] = line.split(' ');
          const args = imapArgs(rest.join(' '));
          switch (verb.toUpperCase()) {
            case 'STARTTLS':
              if (options.tls !== 'stls' || afterStls) {
                socket.write(`${tag} BAD STARTTLS not available\r\n`);
                break;
              }
              socket.write(`${tag} OK Begin TLS negotiation now\r\n`);
              socket.removeListener('data', onData);
              serve(new tls.TLSSocket(socket, { isServer: true, ...secure }), true);
              return;
            case 'LOGIN':
              if (options.tls === 'stls' && !afterStls) socket.write(`${tag} NO [PRIVACYREQUIRED] use STARTTLS first\r\n`);
              else if (args.length === 2 && options.users[args[0]!] === args[1]) {
                logins.push(args[0]!);
                socket.write(`* CAPABILITY IMAP4rev1 IDLE\r\n${tag} OK LOGIN completed\r\n`);
              } else socket.write(`${tag} NO [AUTHENTICATIONFAILED] Invalid credentials\r\n`);
              break;
            case 'LOGOUT':
              socket.end(`* BYE logging out\r\n${tag} OK LOGOUT completed\r\n`);
              return;
            default:
              socket.write(`${tag} BAD unknown command\r\n`);
          }
          continue;
        }
        const [verb = '', ...rest] = line.split(' ');
        const arg = rest.join(' ');
        switch (verb.toUpperCase()) {
          case 'STLS':
            if (options.tls !== 'stls' || afterStls) {
              socket.write('-ERR STLS not available\r\n');
              break;
            }
            socket.write('+OK begin TLS\r\n');
            socket.removeListener('data', onData);
            serve(new tls.TLSSocket(socket, { isServer: true, ...secure }), true);
            return;
          case 'USER':
            user = arg;
            socket.write('+OK\r\n');
            break;
          case 'PASS':
            if (options.tls === 'stls' && !afterStls) socket.write('-ERR [AUTH] use STLS first\r\n');
            else if (user !== undefined && options.users[user] === arg) {
              logins.push(user);
              socket.write('+OK maildrop locked and ready\r\n');
            } else socket.write('-ERR [AUTH] invalid user name or password\r\n');
            break;
          case 'QUIT':
            socket.end('+OK bye\r\n');
            return;
          default:
            socket.write('-ERR unknown command\r\n');
        }
      }
    };
    socket.on('data', onData);
    if (!afterStls) socket.write(imap ? '* OK [CAPABILITY IMAP4rev1 STARTTLS] IMAP ready\r\n' : '+OK POP3 ready\r\n');
  };
  const server = options.tls === 'implicit' ? tls.createServer(secure, (s) => serve(s)) : net.createServer((s) => serve(s));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    commands,
    logins,
    get loggedIn() {
      return logins.length > 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
