/**
 * Pins the nodemailer internals src/delivery/nodemailer-internals.ts relies on: the TLSSocket
 * in `_socket` after an upgrade (validate's TLS line), one command through `_sendCommand` and
 * `_responseActions` (validate's MAIL FROM probe), and `_createSendStream` (the raw sender's
 * DotStuffer instead of DataStream).
 *
 * If this fails after a nodemailer upgrade: read the new code named in the failure
 * (node_modules/nodemailer/dist/esm/smtp-connection/index.js), update nodemailer-internals.ts
 * to match (for _createSendStream also check DotStuffer still equals DataStream,
 * test/unit/delivery/dot-stuff.test.ts), then update the shapes and the version list below.
 * Do not just update the strings.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { describe, expect, it } from 'vitest';

const VERIFIED_VERSIONS = ['10.6.0'];
const HINT = 'nodemailer changed the internals RawConnection (src/delivery/nodemailer-internals.ts) overrides: re-read send() and _createSendStream() and update the override';
const TLS_HINT = 'nodemailer changed how it keeps the upgraded TLS socket: re-read _upgradeConnection() and update secureSocketOf() in src/delivery/nodemailer-internals.ts';
const COMMAND_HINT = 'nodemailer changed how it sends a command and hands out the reply: re-read _sendCommand() and _processResponse() and update sendCommand() in src/delivery/nodemailer-internals.ts';

const normalize = (source: string): string => source.replace(/\/\/[^\n]*/g, '').replace(/\s+/g, ' ').trim();
const proto = SMTPConnection.prototype as unknown as Record<string, unknown>;
const source = (name: string): string => normalize(String(proto[name]));

const CREATE_SEND_STREAM_SHAPE = normalize(`_createSendStream(callback) {
        const envelope = this._envelope;
        const dataStream = new DataStream();
        if (this.options.lmtp) {
            envelope.accepted.forEach((recipient, i) => {
                const final = i === envelope.accepted.length - 1;
                this._responseActions.push(str => {
                    this._actionLMTPStream(recipient, final, str, callback);
                });
            });
        }
        else {
            this._responseActions.push(str => {
                this._actionSMTPStream(str, callback);
            });
        }
        this._currentDataStream = dataStream;
        dataStream.pipe(this._socket, {
            end: false
        });
        if (this.options.debug) {
            const logStream = new PassThrough();
            logStream.on('readable', () => {
                let chunk;
                while ((chunk = logStream.read())) {
                    this.logger.debug({
                        tnx: 'message'
                    }, chunk.toString('binary').replace(/\\r?\\n$/, ''));
                }
            });
            dataStream.pipe(logStream);
        }
        dataStream.once('end', () => {
            if (this._currentDataStream === dataStream) {
                this._currentDataStream = false;
            }
            this.logger.info({
                tnx: 'message',
                inByteCount: dataStream.inByteCount,
                outByteCount: dataStream.outByteCount
            }, '<%s bytes encoded mime message (source size %s bytes)>', dataStream.outByteCount, dataStream.inByteCount);
        });
        return dataStream;
    }`);

describe('nodemailer internals', () => {
  it('is a verified nodemailer version', () => {
    const pkgPath = createRequire(import.meta.url).resolve('nodemailer/package.json');
    const version = (JSON.parse(readFileSync(pkgPath, 'utf8')) as { version: string }).version;
    expect(VERIFIED_VERSIONS, `nodemailer ${version} is not verified: re-read every internal src/delivery/nodemailer-internals.ts names (its header lists them), then add the version here`).toContain(version);
  });

  it('_createSendStream() is the one RawConnection replaces', () => {
    expect(source('_createSendStream'), HINT).toBe(CREATE_SEND_STREAM_SHAPE);
  });

  it('send() takes its data stream from _createSendStream(), pipes or writes the message into it and reads outByteCount', () => {
    const send = source('send');
    expect(send, HINT).toContain('const stream = this._createSendStream((err, str) => {');
    expect(send, HINT).toContain('result.messageSize = stream.outByteCount;');
    expect(send, HINT).toContain('message.pipe(stream);');
    expect(send, HINT).toContain('stream.write(message); stream.end();');
    expect(typeof proto['_actionSMTPStream'], HINT).toBe('function');
  });

  it('_upgradeConnection() keeps the socket tls.connect() returns in _socket, then sets secure', () => {
    const upgrade = source('_upgradeConnection');
    expect(upgrade, TLS_HINT).toContain('this._socket = tls.connect(opts, () => { this._clearPhase(); this.secure = true;');
    expect(source('connect'), TLS_HINT).toContain('this._socket = this.options.connection;');
    expect(new SMTPConnection({})._socket, TLS_HINT).toBe(false);
  });

  it('_sendCommand() writes one line to the socket and _processResponse() gives the next reply to the first of _responseActions', () => {
    expect(source('_sendCommand'), COMMAND_HINT).toContain("socket.write(Buffer.from(str + '\\r\\n', 'utf-8'));");
    const processResponse = source('_processResponse');
    expect(processResponse, COMMAND_HINT).toContain('const action = this._responseActions.shift();');
    expect(processResponse, COMMAND_HINT).toContain('action.call(this, str);');
    expect((new SMTPConnection({}) as unknown as { _responseActions: unknown })._responseActions, COMMAND_HINT).toEqual([]);
  });
});
