/**
 * Who may use the admin API (and any admin page): one per-process secret token, written to a
 * file only the relay's user can read, presented as `Authorization: Bearer <token>`.
 *
 * Does: make a fresh random token at every start and publish it as `<spoolDir>/admin.token`
 *   (mode 0600, written to a new O_EXCL file and renamed into place, so it is never half
 *   written and never written through a file or link someone else prepared); read it back for
 *   the `queue` CLI; judge a request (`AdminGuard.check`): loopback peer, a Host header that is
 *   exactly one of the loopback names with the listening port, no cross-site browser request
 *   (Origin, if sent, must be this very origin; Sec-Fetch-Site, if sent, same-origin or none),
 *   and the token (compared in constant time).
 * Never: accept a cookie or a token in the URL query (a cookie for 127.0.0.1 is sent to every
 *   port of that host, so another local program could collect it; a query string ends up in
 *   logs and history); log the token.
 * Assumes: the spool directory exists and belongs to the relay's user (0750); the HTTP server
 *   listens on one port whose number it passes in `allowedHosts`.
 *
 * Why a token file and not a Unix socket with peer credentials: the same secret serves the CLI
 *   (it reads the file as the relay's user), scripts (curl -H "Authorization: Bearer ..."), and a
 *   browser page, which cannot speak to a Unix socket. A page gets the token in the URL fragment
 *   (`/page#token=...`, never sent to the server; the CLI prints that link), keeps it in
 *   sessionStorage (scoped to this origin, port included) and sends it as a Bearer header: a
 *   cross-site page can neither read it nor add that header without a CORS preflight, which
 *   this server never grants. Other containers of a pod share loopback but not the spool volume.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { open, readFile, rename, unlink } from 'node:fs/promises';
import type { IncomingHttpHeaders } from 'node:http';
import { join } from 'node:path';
import { isLoopbackAddress } from '../core/loopback.js';

export const ADMIN_TOKEN_FILE = 'admin.token';

export function adminTokenPath(spoolDir: string): string {
  return join(spoolDir, ADMIN_TOKEN_FILE);
}

/**
 * Writes a fresh token to `path` (mode 0600 whatever the umask) and returns it. The bytes go to
 * a new file opened with O_CREAT|O_EXCL (`wx`: it fails rather than follow a planted file or
 * symlink), which is then renamed over the old token.
 */
export async function publishAdminToken(path: string, random: (bytes: number) => Buffer = randomBytes): Promise<string> {
  const token = random(32).toString('base64url');
  const tmp = `${path}.${process.pid}.${random(6).toString('hex')}.tmp`;
  const file = await open(tmp, 'wx', 0o600);
  try {
    await file.chmod(0o600);
    await file.writeFile(`${token}\n`);
  } catch (err) {
    await file.close();
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await file.close();
  await rename(tmp, path);
  return token;
}

/** The token a running relay published, for the CLI; a readable problem when it cannot be read. */
export async function readAdminToken(path: string): Promise<{ token: string } | { problem: string }> {
  try {
    const token = (await readFile(path, 'utf8')).trim();
    return token === '' ? { problem: `${path} is empty` } : { token };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM') return { problem: `cannot read ${path} (permission denied): run this command as the user the relay runs as` };
    if (code === 'ENOENT') return { problem: `${path} does not exist: is the relay running with this config's delivery.spoolDir?` };
    return { problem: `cannot read ${path}: ${(err as Error).message}` };
  }
}

/** The Host header values the admin API answers to: the loopback names with the listening port. */
export function loopbackHostHeaders(port: number): string[] {
  return ['127.0.0.1', 'localhost', '[::1]'].map((name) => `${name}:${port}`);
}

export interface AdminRequest {
  readonly method: string | undefined;
  readonly remoteAddress: string | undefined;
  readonly headers: IncomingHttpHeaders;
}

export type AdminVerdict =
  | { readonly ok: true }
  | { readonly ok: false; readonly status: 401 | 403; readonly reason: string };

export interface AdminGuardOptions {
  /** the per-process token; undefined refuses every request (not published yet) */
  readonly token: () => string | undefined;
  /** exact Host header values accepted (lower case), e.g. loopbackHostHeaders(port) */
  readonly allowedHosts: () => readonly string[];
}

const digest = (value: string): Buffer => createHash('sha256').update(value, 'utf8').digest();

function bearerOf(header: string | undefined): string | undefined {
  const match = /^Bearer[ ]+([A-Za-z0-9._~+/=-]+)\s*$/i.exec(header ?? '');
  return match?.[1];
}

export class AdminGuard {
  constructor(private readonly options: AdminGuardOptions) {}

  /** Whether the request may use admin routes; the reason says what to fix (it never holds the token). */
  check(req: AdminRequest): AdminVerdict {
    if (!isLoopbackAddress(req.remoteAddress)) {
      return { ok: false, status: 403, reason: 'the admin API is only available from loopback (127.0.0.1 or ::1)' };
    }
    const host = req.headers.host?.toLowerCase();
    const allowed = this.options.allowedHosts();
    if (host === undefined || !allowed.includes(host)) {
      return { ok: false, status: 403, reason: `the Host header must be one of ${allowed.join(', ')} (a missing or other name is refused: DNS rebinding)` };
    }
    const origin = req.headers.origin;
    if (origin !== undefined && origin.toLowerCase() !== `http://${host}`) {
      return { ok: false, status: 403, reason: 'cross-site requests are refused (the Origin is not this server)' };
    }
    const site = req.headers['sec-fetch-site'];
    if (site !== undefined && site !== 'same-origin' && site !== 'none') {
      return { ok: false, status: 403, reason: 'cross-site requests are refused (Sec-Fetch-Site)' };
    }
    const expected = this.options.token();
    const presented = bearerOf(req.headers.authorization);
    if (expected === undefined || presented === undefined || !timingSafeEqual(digest(presented), digest(expected))) {
      return {
        ok: false,
        status: 401,
        reason: `the admin API needs "Authorization: Bearer <token>" with the token from ${ADMIN_TOKEN_FILE} in the spool directory (readable by the relay's user only)`,
      };
    }
    return { ok: true };
  }
}
