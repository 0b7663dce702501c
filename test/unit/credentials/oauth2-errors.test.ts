import { describe, it, expect } from 'vitest';
import { ServerError } from '@azure/msal-node';
import { authorityMetadataFor, toTokenError } from '../../../src/delivery/credentials/oauth2.js';
import { SecretScrubber } from '../../../src/delivery/secret-scrubber.js';

const scrubberOf = (...secrets: string[]): SecretScrubber => {
  const scrubber = new SecretScrubber();
  for (const secret of secrets) scrubber.add('app', secret);
  return scrubber;
};

const SECRET = 'leaky~Secret.value_0123456789';

describe(toTokenError.name, () => {
  it('names the AADSTS code, the msal error and HTTP status, and says what to fix', () => {
    const error = toTokenError('m365', new ServerError('unauthorized_client', 'corr-1', 'AADSTS700016: Application not found', undefined, '700016', 400), scrubberOf());
    expect(error.code).toBe('E_TOKEN');
    expect(error.message).toContain('upstream "m365"');
    expect(error.message).toContain('AADSTS700016, unauthorized_client, HTTP 400');
    expect(error.message).toMatch(/check clientId and tenantId/);
    expect(error.cause).toMatchObject({ errorCode: 'unauthorized_client', errorNo: '700016', status: 400, correlationId: 'corr-1' });
  });

  it('scrubs the secret even if the upstream message echoed it, in the message and in the cause', () => {
    const echoed = new ServerError('invalid_client', '', `AADSTS7000215: bad secret ${SECRET} here`, undefined, '7000215', 401);
    const error = toTokenError('m365', echoed, scrubberOf(SECRET));
    const everything = JSON.stringify({ m: error.message, s: error.stack, c: error.cause, cs: String(error.cause), cst: (error.cause as Error).stack });
    expect(everything).toContain('AADSTS7000215');
    expect(everything).toContain('[REDACTED]');
    expect(everything).not.toContain(SECRET);
    expect(error.cause).not.toBe(echoed);
  });

  it('gives an unknown failure a generic hint without inventing a code', () => {
    const error = toTokenError('m365', new Error('boom'), scrubberOf());
    expect(error.message).toBe('token request for upstream "m365" failed: see the message from Entra below. Entra/msal said: boom');
  });
});

describe(authorityMetadataFor.name, () => {
  it('builds the Entra v2.0 endpoints from authority and tenant', () => {
    expect(authorityMetadataFor('https://login.example.test/t1')).toEqual({
      token_endpoint: 'https://login.example.test/t1/oauth2/v2.0/token',
      authorization_endpoint: 'https://login.example.test/t1/oauth2/v2.0/authorize',
      end_session_endpoint: 'https://login.example.test/t1/oauth2/v2.0/logout',
      jwks_uri: 'https://login.example.test/t1/discovery/v2.0/keys',
      issuer: 'https://login.example.test/t1/v2.0',
    });
  });
});
