/**
 * A scripted UpstreamTransport for unit tests of the attempt loop and the dispatcher: each
 * send takes the next step of its script (a SendReport, an error to throw, or a function of
 * the message), and every message it was handed is kept. Defaults to accepting everyone.
 * `upstreamSet` wraps transports (with settings) into an UpstreamSet.
 */
import type { OutgoingMessage, SendReport, UpstreamSet, UpstreamSettings, UpstreamTransport, VerifyStep } from '../../src/core/ports.js';

export type ScriptStep = SendReport | Error | ((message: OutgoingMessage) => SendReport | Promise<SendReport>);

export interface FakeTransport extends UpstreamTransport {
  readonly sent: OutgoingMessage[];
  closed: boolean;
  /** steps still to come; when empty, every recipient is accepted */
  readonly script: ScriptStep[];
}

export const accepted = (message: OutgoingMessage): SendReport => ({ accepted: [...message.envelope.rcptTo], rejected: [], response: '250 2.0.0 OK queued' });

/** An error shaped like nodemailer's. */
export function smtpError(code: string, fields: { responseCode?: number; command?: string; response?: string; message?: string } = {}): Error {
  return Object.assign(new Error(fields.message ?? fields.response ?? code), { code, ...fields });
}

export function fakeTransport(name: string, ...script: ScriptStep[]): FakeTransport {
  const transport: FakeTransport = {
    name,
    sent: [],
    closed: false,
    script,
    async send(message) {
      if (transport.closed) throw new Error(`${name}: send after close`);
      transport.sent.push(message);
      const step = transport.script.shift();
      if (step === undefined) return accepted(message);
      if (step instanceof Error) throw step;
      if (typeof step === 'function') return step(message);
      return step;
    },
    async verify(onStep) {
      const step: VerifyStep = { step: 'fake', status: 'ok', detail: name };
      onStep?.(step);
      return [step];
    },
    async close() {
      transport.closed = true;
    },
  };
  return transport;
}

export function upstreamSet(...entries: (FakeTransport | [FakeTransport, UpstreamSettings])[]): UpstreamSet & { closed: boolean } {
  const map = new Map(
    entries.map((e) => {
      const [transport, settings] = Array.isArray(e) ? e : [e, {}];
      return [transport.name, { name: transport.name, transport, settings }] as const;
    }),
  );
  const set = {
    names: [...map.keys()],
    get: (name: string) => map.get(name),
    closed: false,
    async close() {
      set.closed = true;
      await Promise.all([...map.values()].map((u) => u.transport.close()));
    },
  };
  return set;
}
