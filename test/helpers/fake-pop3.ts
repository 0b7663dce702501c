/**
 * A real POP3 server for tests (POP3-before-SMTP): 127.0.0.1, port 0, plain, implicit TLS or
 * STLS with the test PKI. It answers as RFC 1939 servers do (+OK / -ERR, one line each) and
 * checks USER and PASS against its users; a good login is recorded, so a fake SMTP upstream can
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

export async function startFakePop3(options: { users: Record<string, string>; tls?: 'none' | 'implicit' | 'stls' }): Promise<FakePop3> {
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
    if (!afterStls) socket.write('+OK POP3 ready\r\n');
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
