/** Shared test support for the credential tests: an oauth2 config for a fake endpoint, a captured pino logger. */
import type { OAuth2Auth } from '../../../src/config/schema.js';
import { createLogger } from '../../../src/ops/logger.js';
import type { FakeTokenEndpoint } from '../../helpers/fake-token-endpoint.js';

export function OAuth2AuthForTest(
  fake: Pick<FakeTokenEndpoint, 'authority' | 'tenantId' | 'clientId' | 'scope'>,
  credential: { clientSecret: string } | { clientCertificate: { thumbprintSha256: string; privateKey: string; x5c?: string } },
): OAuth2Auth {
  return {
    type: 'oauth2',
    user: 'relay@contoso.test',
    tenantId: fake.tenantId,
    clientId: fake.clientId,
    authority: fake.authority,
    scope: fake.scope,
    refreshBeforeExpirySeconds: 600,
    ...credential,
  };
}

/** A pino logger (with the product's redaction) writing into memory, at trace level. */
export function capturedLogger(): { logger: ReturnType<typeof createLogger>; lines: string[]; text: () => string } {
  const lines: string[] = [];
  const logger = createLogger({ level: 'trace', destination: { write: (line: string) => void lines.push(line) } });
  return { logger, lines, text: () => lines.join('') };
}
