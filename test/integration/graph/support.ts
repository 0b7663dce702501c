/** Shared set-up for the Graph upstream tests: the fake Entra + fake Graph pair, a Graph transport, test messages. */
import { randomBytes } from 'node:crypto';
import MailComposer from 'nodemailer/lib/mail-composer';
import { afterEach } from 'vitest';
import { ManualClock, systemClock, type Clock } from '../../../src/core/clock.js';
import type { OAuth2Auth } from '../../../src/config/schema.js';
import { createOAuth2TokenSource, type OAuth2TokenSource } from '../../../src/delivery/credentials/oauth2.js';
import { createUndiciNetworkClient } from '../../../src/delivery/credentials/msal-network.js';
import { TokenCache } from '../../../src/delivery/credentials/token-cache.js';
import { TokenStatusBoard } from '../../../src/delivery/credentials/token-status.js';
import { createGraphTransport, type GraphTransportOptions } from '../../../src/delivery/graph/transport.js';
import { startFakeGraph, type FakeGraph, type FakeGraphOptions } from '../../helpers/fake-graph.js';
import { startFakeTokenEndpoint, tlsFixture, type FakeTokenEndpoint } from '../../helpers/fake-token-endpoint.js';
import { capturingLogger } from '../delivery/support.js';

export const SECRET = 'Gr4ph~fake.Secret-Value_0123456789abcdef';
export const MAILBOX = 'relay@contoso.test';
export const GRAPH_SCOPE = 'https://graph.microsoft.com/.default';
export const CA_PEM = tlsFixture('ca.pem');

export interface GraphRig {
  readonly entra: FakeTokenEndpoint;
  readonly graph: FakeGraph;
  readonly auth: OAuth2Auth;
  close(): Promise<void>;
}

export async function startGraphRig(options: { graph?: Partial<FakeGraphOptions>; roles?: readonly string[]; tokenLifetimeSeconds?: number } = {}): Promise<GraphRig> {
  const entra = await startFakeTokenEndpoint({
    clientSecret: SECRET,
    scope: GRAPH_SCOPE,
    ...(options.roles === undefined ? {} : { roles: options.roles }),
    ...(options.tokenLifetimeSeconds === undefined ? {} : { tokenLifetimeSeconds: options.tokenLifetimeSeconds }),
  });
  const graph = await startFakeGraph({ tokens: entra, mailboxes: [MAILBOX], ...options.graph });
  const auth: OAuth2Auth = {
    type: 'oauth2',
    user: MAILBOX,
    tenantId: entra.tenantId,
    clientId: entra.clientId,
    authority: entra.authority,
    scope: GRAPH_SCOPE,
    refreshBeforeExpirySeconds: 600,
    clientSecret: SECRET,
  };
  return {
    entra,
    graph,
    auth,
    async close() {
      await graph.close();
      await entra.close();
    },
  };
}

export interface TransportUnderTest {
  readonly transport: ReturnType<typeof createGraphTransport>;
  readonly tokens: OAuth2TokenSource;
  readonly lines: string[];
  close(): Promise<void>;
}

export function graphTransport(rig: GraphRig, overrides: Partial<GraphTransportOptions> & { clock?: Clock } = {}): TransportUnderTest {
  const clock = overrides.clock ?? systemClock;
  const { logger, lines } = capturingLogger();
  const network = createUndiciNetworkClient({ ca: CA_PEM });
  const tokens = createOAuth2TokenSource('graph', rig.auth, { cache: new TokenCache({ clock }), clock, logger, status: new TokenStatusBoard(), networkClient: network });
  const transport = createGraphTransport({
    name: 'graph',
    endpoint: rig.graph.endpoint,
    user: MAILBOX,
    saveToSentItems: true,
    http: { tls: { ca: CA_PEM, rejectUnauthorized: true, minVersion: 'TLSv1.2' }, connectTimeoutMs: 3000, socketTimeoutMs: 10_000 },
    tokens,
    clock,
    logger,
    ...overrides,
  });
  return {
    transport,
    tokens,
    lines,
    async close() {
      await transport.close();
      await tokens.close();
      await network.close();
    },
  };
}

export { ManualClock };

/** Builds a message with nodemailer's composer (CRLF, base64 attachments). */
export async function compose(mail: ConstructorParameters<typeof MailComposer>[0]): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    new MailComposer({ messageId: `<${randomBytes(6).toString('hex')}@app.test>`, date: new Date('2026-01-02T03:04:05Z'), ...mail }).compile().build((err, message) => (err ? reject(err) : resolve(message)));
  });
}

/** Incompressible bytes of a given size (content the test can compare). */
export function payload(bytes: number): Buffer {
  return randomBytes(bytes);
}

/** Per-test cleanups (run after each test, last first) and a rig that registers its own. */
export function graphTestScope(): { cleanups: (() => Promise<void>)[]; rig(options?: Parameters<typeof startGraphRig>[0]): Promise<GraphRig> } {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  return {
    cleanups,
    async rig(options = {}) {
      const r = await startGraphRig(options);
      cleanups.push(() => r.close());
      return r;
    },
  };
}
