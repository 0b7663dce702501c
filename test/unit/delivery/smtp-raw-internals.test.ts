/**
 * Pins the nodemailer internals src/delivery/smtp-raw.ts (RawConnection) relies on to send the
 * message through DotStuffer instead of nodemailer's DataStream.
 *
 * If this fails after a nodemailer upgrade: read the new SMTPConnection.send() and
 * _createSendStream() (node_modules/nodemailer/dist/esm/smtp-connection/index.js), update
 * RawConnection._createSendStream() to match, check DotStuffer still equals DataStream
 * (test/unit/delivery/dot-stuff.test.ts), then update the shapes and the version list below.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { describe, expect, it } from 'vitest';

const VERIFIED_VERSIONS = ['10.6.0'];
const HINT = 'nodemailer changed the internals RawConnection (src/delivery/smtp-raw.ts) overrides: re-read send() and _createSendStream() and update the override';

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

describe('nodemailer internals behind the raw sender', () => {
  it('is a verified nodemailer version', () => {
    const pkgPath = createRequire(import.meta.url).resolve('nodemailer/package.json');
    const version = (JSON.parse(readFileSync(pkgPath, 'utf8')) as { version: string }).version;
    expect(VERIFIED_VERSIONS, `nodemailer ${version} is not verified. ${HINT}`).toContain(version);
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
});
