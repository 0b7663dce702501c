import { describe, expect, it } from 'vitest';
import { RelayError } from '../../../src/core/errors.js';
import { RULES, classifyError, classifyRejection, matchRule } from '../../../src/delivery/classify.js';

/**
 * A literal error in nodemailer's shape: `code` (EAUTH, EENVELOPE, EMESSAGE, ECONNECTION, ETIMEDOUT,
 * ESOCKET, ...), and for server replies `responseCode`, `command` and `response` (the reply line).
 */
function nm(code: string, fields: { responseCode?: number; command?: string; response?: string; message?: string; originalCode?: string } = {}) {
  return Object.assign(new Error(fields.message ?? (fields.response !== undefined ? `failed: ${fields.response}` : code)), { code, ...fields });
}

describe(classifyError.name, () => {
  it.each([
    ['ECONNREFUSED', nm('ESOCKET', { command: 'CONN', originalCode: 'ECONNREFUSED', message: 'connect ECONNREFUSED 127.0.0.1:1' })],
    ['connection dropped', nm('ECONNECTION', { command: 'CONN', message: 'Connection closed unexpectedly' })],
    ['no greeting', nm('ETIMEDOUT', { command: 'CONN', message: 'Greeting never received' })],
    ['DNS failure', nm('EDNS', { command: 'CONN', message: 'getaddrinfo ENOTFOUND smtp.example' })],
    ['proxy failure', nm('EPROXY', { message: 'Socks module not loaded' })],
  ])('connect failure (%s) → failover, markDown, 4.4.1', (_name, err) => {
    expect(classifyError(err)).toMatchObject({ action: 'failover', markDown: true, dsn: '4.4.1' });
  });

  it.each([
    ['STARTTLS missing with requireTLS', nm('ETLS', { message: 'Error upgrading connection with STARTTLS: 500 Error: command not recognized' })],
    ['untrusted certificate', nm('ESOCKET', { command: 'CONN', message: 'self-signed certificate in certificate chain' })],
    ['expired certificate', nm('ESOCKET', { command: 'CONN', message: 'certificate has expired' })],
    ['wrong name', nm('ESOCKET', { command: 'CONN', message: "Hostname/IP does not match certificate's altnames" })],
  ])('TLS failure (%s) → failover, markDown, 4.7.5', (_name, err) => {
    expect(classifyError(err)).toMatchObject({ action: 'failover', markDown: true, dsn: '4.7.5' });
  });

  it.each([
    ['421', nm('EPROTOCOL', { command: 'CONN', responseCode: 421, response: '421 4.3.2 Service not available' })],
    ['450', nm('EPROTOCOL', { command: 'CONN', responseCode: 450, response: '450 busy' })],
    ['554', nm('EPROTOCOL', { command: 'CONN', responseCode: 554, response: '554 5.7.1 No SMTP service here' })],
  ])('greeting %s → failover, markDown', (_name, err) => {
    expect(classifyError(err)).toMatchObject({ action: 'failover', markDown: true });
  });

  it('a 554 greeting is reported with a 4.x.x code (the message is not refused)', () => {
    expect(classifyError(nm('EPROTOCOL', { command: 'CONN', responseCode: 554, response: '554 5.7.1 No SMTP service here' })).dsn).toBe('4.4.1');
  });

  it('EAUTH (bad password) → failover, markDown', () => {
    const err = nm('EAUTH', { command: 'AUTH PLAIN', responseCode: 535, response: '535 5.7.8 Authentication credentials invalid' });
    expect(classifyError(err)).toMatchObject({ action: 'failover', markDown: true, dsn: '4.7.0' });
  });

  it('EAUTH without a reply (forceAuth against a server without AUTH) → failover, markDown', () => {
    expect(classifyError(nm('EAUTH', { command: 'AUTH PLAIN', responseCode: 500, response: '500 Error: command not recognized' }))).toMatchObject({
      action: 'failover',
      markDown: true,
    });
  });

  it('535 5.7.139 (SMTP AUTH disabled for the tenant) → failover with advice to enable SMTP AUTH', () => {
    const err = nm('EAUTH', {
      command: 'AUTH XOAUTH2',
      responseCode: 535,
      response: '535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant.',
    });
    const decision = classifyError(err);
    expect(decision).toMatchObject({ action: 'failover', markDown: true });
    expect(decision.reason).toMatch(/enable SMTP AUTH/);
    expect(matchRule(err).when).toMatch(/5\.7\.139/);
  });

  it('550 5.7.30 Basic authentication is not supported → failover with advice to switch to oauth2', () => {
    const err = nm('EAUTH', { command: 'AUTH LOGIN', responseCode: 550, response: '550 5.7.30 Basic authentication is not supported for Client Submission.' });
    const decision = classifyError(err);
    expect(decision).toMatchObject({ action: 'failover', markDown: true });
    expect(decision.reason).toMatch(/oauth2/);
  });

  it('550 5.7.30 after MAIL FROM is still the basic-auth row, not a bounce', () => {
    const err = nm('EENVELOPE', { command: 'MAIL FROM', responseCode: 550, response: '550 5.7.30 Basic authentication is not supported for Client Submission.' });
    expect(classifyError(err)).toMatchObject({ action: 'failover', markDown: true });
  });

  it('432 4.3.2 sender thread limit exceeded → deferred, on the same upstream, not markDown', () => {
    const err = nm('EMESSAGE', { command: 'DATA', responseCode: 432, response: '432 4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded' });
    expect(classifyError(err)).toEqual({ action: 'deferred', reason: expect.stringMatching(/3/), dsn: '4.3.2', markDown: false });
  });

  it('554 5.2.0 SubmissionQuotaExceededException → failover, markDown', () => {
    const err = nm('EMESSAGE', {
      command: 'DATA',
      responseCode: 554,
      response: '554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException; Failed to process message',
    });
    expect(classifyError(err)).toMatchObject({ action: 'failover', markDown: true, dsn: '4.2.0' });
  });

  it.each([
    ['MAIL FROM 451', nm('EENVELOPE', { command: 'MAIL FROM', responseCode: 451, response: '451 4.3.0 Try later' }), '4.3.0'],
    ['RCPT TO 450', nm('EENVELOPE', { command: 'RCPT TO', responseCode: 450, response: '450 4.2.1 Mailbox busy' }), '4.2.1'],
    ['DATA 452', nm('EMESSAGE', { command: 'DATA', responseCode: 452, response: '452 Insufficient storage' }), '4.0.0'],
  ])('4xx to a message command (%s) → failover, not markDown', (_name, err, dsn) => {
    expect(classifyError(err)).toMatchObject({ action: 'failover', markDown: false, dsn });
  });

  it.each([
    ['MAIL FROM 552', nm('EENVELOPE', { command: 'MAIL FROM', responseCode: 552, response: '552 5.3.4 Message size exceeds limit' }), '5.3.4'],
    ['RCPT TO 550', nm('EENVELOPE', { command: 'RCPT TO', responseCode: 550, response: '550 5.1.1 User unknown' }), '5.1.1'],
    ['DATA 554', nm('EMESSAGE', { command: 'DATA', responseCode: 554, response: '554 5.6.0 Content rejected' }), '5.6.0'],
    ['smtp-sink 500 DATA', nm('EENVELOPE', { command: 'DATA', responseCode: 500, response: '500 Error: command failed' }), '5.0.0'],
  ])('5xx to a message command (%s) → bounced', (_name, err, dsn) => {
    expect(classifyError(err)).toEqual({ action: 'bounced', reason: expect.any(String), dsn, markDown: false });
  });

  it.each([
    ['530 must issue STARTTLS', 530],
    ['503 bad sequence', 503],
  ])('%s to MAIL FROM → failover, markDown (the upstream wants TLS or AUTH), never bounced', (_name, responseCode) => {
    const err = nm('EENVELOPE', { command: 'MAIL FROM', responseCode, response: `${responseCode} 5.7.0 Must issue a STARTTLS command first` });
    expect(classifyError(err)).toMatchObject({ action: 'failover', markDown: true });
  });

  it('503 to RCPT TO is not bounced (503 is a sequence error, not a verdict on the message)', () => {
    expect(classifyError(nm('EENVELOPE', { command: 'RCPT TO', responseCode: 503, response: '503 5.5.1 Error: need MAIL command' })).action).not.toBe('bounced');
  });

  it('RelayError E_TOKEN (token endpoint failed) → failover, markDown', () => {
    expect(classifyError(new RelayError('E_TOKEN', { logMessage: 'AADSTS7000215' }))).toMatchObject({ action: 'failover', markDown: true });
  });

  it.each([
    ['a plain Error', new Error('something odd')],
    ['a string', 'boom'],
    ['undefined', undefined],
    ['null', null],
    ['EENVELOPE without a reply (local)', nm('EENVELOPE', { command: 'API', message: 'No recipients defined' })],
    ['EFILEACCESS', nm('EFILEACCESS', { message: 'File access rejected' })],
    ['a 5xx to an unknown command', nm('EPROTOCOL', { command: 'RSET', responseCode: 554, response: '554 nope' })],
  ])('anything unclassified (%s) → deferred, never bounced', (_name, err) => {
    expect(classifyError(err)).toMatchObject({ action: 'deferred', markDown: false, dsn: '4.0.0' });
  });

  it('RULES is readable data: every row says when it applies, and the last row catches everything', () => {
    for (const rule of RULES) {
      expect(rule.when.length).toBeGreaterThan(10);
      expect(rule.decision.reason.length).toBeGreaterThan(10);
      expect(rule.decision.dsn).toMatch(/^[245]\.\d{1,3}\.\d{1,3}$/);
    }
    expect(RULES.at(-1)?.match({ code: undefined, responseCode: undefined, command: undefined, response: undefined, message: '' })).toBe(true);
  });
});

describe(classifyRejection.name, () => {
  it('5xx for one recipient → bounced with its enhanced code', () => {
    expect(classifyRejection({ address: 'gone@dest.test', responseCode: 550, response: '550 5.1.1 User unknown' })).toMatchObject({
      action: 'bounced',
      dsn: '5.1.1',
    });
  });

  it('4xx for one recipient → failover (not bounced), upstream not marked down', () => {
    expect(classifyRejection({ address: 'busy@dest.test', responseCode: 450, response: '450 4.2.1 Mailbox busy' })).toMatchObject({
      action: 'failover',
      markDown: false,
    });
  });

  it('no reply code → deferred', () => {
    expect(classifyRejection({ address: 'x@dest.test', responseCode: undefined, response: '' }).action).toBe('deferred');
  });
});
