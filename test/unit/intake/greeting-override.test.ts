/**
 * Pins the smtp-server internals that src/intake/smtp-listener.ts (PromptGreetingServer)
 * relies on to send the 220 greeting without smtp-server's hard-coded 100 ms delay.
 *
 * If this fails after an smtp-server upgrade: read the new `SMTPServer.prototype.connect` and
 * `SMTPConnection.prototype.init` (node_modules/smtp-server/dist/esm), update the copy in
 * PromptGreetingServer.connect() to match (keeping the greeting without a timer), then update
 * the shapes and the version list below. Do not just update the strings.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { SMTPServer } from 'smtp-server';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import { describe, expect, it } from 'vitest';

/** smtp-server versions whose connect()/init() were read and found to match the override. */
const VERIFIED_VERSIONS = ['3.21.6'];

const normalize = (source: string): string => source.replace(/\/\/[^\n]*/g, '').replace(/\s+/g, ' ').trim();

const CONNECT_SHAPE = normalize(`connect(socket, socketOptions) {
        let connection = new SMTPConnection(this, socket, socketOptions);
        this.connections.add(connection);
        connection.on('error', err => this._onError(err));
        connection.on('connect', data => this._onClientConnect(data));
        connection.init();
    }`);

const INIT_SHAPE = normalize(`init() {
        this._setListeners(() => {
            if (this._server.options.maxClients && this._server.connections.size > this._server.options.maxClients) {
                return this.send(421, this.name + ' Too many connected clients, try again in a moment', false);
            }
            let readyTimer = setTimeout(() => this.connectionReady(), 100);
            readyTimer.unref();
        });
    }`);

const HINT = 'smtp-server changed the internals PromptGreetingServer (src/intake/smtp-listener.ts) copies: re-read connect() and init() and update the override';

describe('smtp-server internals behind the greeting without delay', () => {
  it('is a verified smtp-server version', () => {
    const pkgPath = createRequire(import.meta.url).resolve('smtp-server/package.json');
    const version = (JSON.parse(readFileSync(pkgPath, 'utf8')) as { version: string }).version;
    expect(VERIFIED_VERSIONS, `smtp-server ${version} is not verified. ${HINT}`).toContain(version);
  });

  it('SMTPServer.connect() is the five statements the override copies', () => {
    expect(normalize(SMTPServer.prototype.connect.toString()), HINT).toBe(CONNECT_SHAPE);
  });

  it('SMTPConnection.init() is _setListeners + maxClients check + the 100 ms timer before connectionReady()', () => {
    expect(normalize(SMTPConnection.prototype.init.toString()), HINT).toBe(INIT_SHAPE);
  });

  it('the methods the override calls exist', () => {
    for (const name of ['_setListeners', 'connectionReady', 'send'] as const) {
      expect(typeof SMTPConnection.prototype[name], `${name}: ${HINT}`).toBe('function');
    }
    for (const name of ['_onError', '_onClientConnect'] as const) {
      expect(typeof SMTPServer.prototype[name], `${name}: ${HINT}`).toBe('function');
    }
  });
});
