/**
 * The TCP connection to an upstream (direct, or through its HTTP CONNECT proxy), opened by us so
 * that `timeouts.connectSeconds` bounds exactly the connect: nodemailer 10's connectionTimeout
 * covers the whole session setup (connect, TLS, greeting, STARTTLS) and would cut the greeting
 * short (connect 2 s / greeting 5 s timed out at 2 s). With the socket handed over,
 * connection-options.ts gives nodemailer's setup deadline the greeting time on top.
 *
 * Does: resolve with a connected socket, or reject with ETIMEDOUT after connectSeconds, the
 *   system error (ECONNREFUSED, EHOSTUNREACH, ...: validate's hints read it) or the proxy's error.
 *   `asNodemailerError` gives delivery nodemailer's vocabulary (ESOCKET) for classify.ts.
 * Never: leave a socket or a timer behind on failure.
 */
import net from 'node:net';
import httpProxyClient from 'nodemailer/lib/smtp-connection/http-proxy-client';

export interface SocketTarget {
  readonly host: string;
  readonly port: number;
  readonly proxy?: string | undefined;
  readonly connectSeconds: number;
}

export function openUpstreamSocket(target: SocketTarget): Promise<net.Socket> {
  const timeoutMs = target.connectSeconds * 1000;
  if (target.proxy !== undefined) {
    const proxy = target.proxy;
    return new Promise((resolve, reject) => {
      httpProxyClient(proxy, target.port, target.host, { timeout: timeoutMs }, (err, proxied) => {
        if (err !== null && err !== undefined) reject(err);
        else if (proxied === undefined) reject(new Error('proxy returned no socket'));
        else resolve(proxied);
      });
    });
  }
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: target.host, port: target.port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(Object.assign(new Error(`Connection timeout: no answer within ${target.connectSeconds} s`), { code: 'ETIMEDOUT' }));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    });
  });
}

const NODEMAILER_CODES = new Set(['ECONNECTION', 'ESOCKET', 'ETIMEDOUT', 'EDNS', 'EPROXY', 'ETLS']);

/** A connect failure in nodemailer's words, as its own connect reports one: ESOCKET with the system code as originalCode. */
export function asNodemailerError(err: unknown): Error {
  const e: Error & { code?: unknown } = err instanceof Error ? err : new Error(String(err));
  if (typeof e.code === 'string' && NODEMAILER_CODES.has(e.code)) return e;
  return Object.assign(e, { originalCode: e.code, code: 'ESOCKET', command: 'CONN' });
}
