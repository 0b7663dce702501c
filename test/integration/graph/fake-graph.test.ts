/** The fake Graph refuses what Graph refuses: the checks the Graph transport's tests rely on. */
import { Agent, request } from 'undici';
import { describe, expect, it } from 'vitest';
import { startFakeGraph } from '../../helpers/fake-graph.js';
import { startFakeTokenEndpoint } from '../../helpers/fake-token-endpoint.js';
import { CA_PEM, MAILBOX, SECRET, graphTestScope, graphTransport } from './support.js';

const { cleanups, rig } = graphTestScope();

function client(): Agent {
  const agent = new Agent({ connect: { ca: CA_PEM } });
  cleanups.push(() => agent.close());
  return agent;
}

async function call(agent: Agent, url: string, init: { method: 'GET' | 'POST' | 'PUT'; token?: string; contentType?: string; body?: string | Buffer; headers?: Record<string, string> }) {
  const res = await request(url, {
    method: init.method,
    dispatcher: agent,
    headers: {
      ...(init.token === undefined ? {} : { authorization: `Bearer ${init.token}` }),
      ...(init.contentType === undefined ? {} : { 'content-type': init.contentType }),
      ...(init.headers ?? {}),
    },
    ...(init.body === undefined ? {} : { body: init.body }),
  });
  const text = await res.body.text();
  return { status: res.statusCode, body: text === '' ? undefined : (JSON.parse(text) as { error?: { code?: string; message?: string }; uploadUrl?: string; id?: string }) };
}

describe('fake Graph', () => {
  it('refuses a request over 4 MB (413), bad base64 (400), a token for another audience (401) and no token (401)', async () => {
    const r = await rig();
    const t = graphTransport(r);
    cleanups.push(() => t.close());
    const token = (await t.tokens.getToken()).accessToken;
    const agent = client();
    const sendMail = `${r.graph.endpoint}/v1.0/users/${MAILBOX}/sendMail`;
    expect((await call(agent, sendMail, { method: 'POST', token, contentType: 'text/plain', body: Buffer.alloc(4 * 1024 * 1024 + 1, 0x41) })).status).toBe(413);
    const bad = await call(agent, sendMail, { method: 'POST', token, contentType: 'text/plain', body: 'not base64!' });
    expect(bad).toMatchObject({ status: 400, body: { error: { message: 'Invalid base64 string for MIME content.' } } });
    expect((await call(agent, sendMail, { method: 'POST', contentType: 'text/plain', body: 'QQ==' })).status).toBe(401);

    const outlook = await startFakeTokenEndpoint({ clientSecret: SECRET });
    cleanups.push(() => outlook.close());
    const graph = await startFakeGraph({ tokens: outlook, mailboxes: [MAILBOX] });
    cleanups.push(() => graph.close());
    const smtpToken = await call(agent, `${outlook.authority}/${outlook.tenantId}/oauth2/v2.0/token`, {
      method: 'POST',
      contentType: 'application/x-www-form-urlencoded',
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: outlook.clientId, scope: outlook.scope, client_secret: SECRET }).toString(),
    });
    const wrongAudience = await call(agent, `${graph.endpoint}/v1.0/users/${MAILBOX}/sendMail`, { method: 'POST', token: (smtpToken.body as { access_token: string }).access_token, contentType: 'text/plain', body: 'QQ==' });
    expect(wrongAudience).toMatchObject({ status: 401, body: { error: { code: 'InvalidAuthenticationToken', message: expect.stringMatching(/audience/) } } });
    expect(r.graph.deliveries).toHaveLength(0);
  });

  it('checks upload ranges: start where the session stands, no bearer token on the upload URL, 201 after the last byte; a sent draft is gone', async () => {
    const r = await rig();
    const t = graphTransport(r);
    cleanups.push(() => t.close());
    const token = (await t.tokens.getToken()).accessToken;
    const agent = client();
    const mime = Buffer.from(`From: ${MAILBOX}\r\nTo: a@dest.test\r\nSubject: s\r\n\r\nhi\r\n`).toString('base64');
    const draft = await call(agent, `${r.graph.endpoint}/v1.0/users/${MAILBOX}/messages`, { method: 'POST', token, contentType: 'text/plain', body: mime });
    expect(draft.status).toBe(201);
    const messageUrl = `${r.graph.endpoint}/v1.0/users/${MAILBOX}/messages/${draft.body!.id!}`;
    const session = await call(agent, `${messageUrl}/attachments/createUploadSession`, {
      method: 'POST', token, contentType: 'application/json', body: JSON.stringify({ AttachmentItem: { attachmentType: 'file', name: 'f.bin', size: 10 } }),
    });
    const uploadUrl = session.body!.uploadUrl!;
    const put = (range: string, body: string, withToken = false) => call(agent, uploadUrl, { method: 'PUT', ...(withToken ? { token } : {}), body, headers: { 'content-range': range } });
    expect((await put('bytes 0-4/10', '01234', true)).status).toBe(401);
    expect((await put('bytes 5-9/10', '56789')).status).toBe(416);
    expect((await put('bytes 0-4/11', '01234')).status).toBe(400);
    expect((await put('bytes 0-4/10', '01234')).status).toBe(200);
    expect((await call(agent, uploadUrl, { method: 'GET' })).body).toMatchObject({ nextExpectedRanges: ['5'] });
    expect((await put('bytes 5-9/10', '56789')).status).toBe(201);
    expect((await call(agent, `${messageUrl}/send`, { method: 'POST', token })).status).toBe(202);
    expect(r.graph.deliveries[0]!.attachments[0]!.content.toString()).toBe('0123456789');
    expect((await call(agent, `${messageUrl}/send`, { method: 'POST', token })).status).toBe(404);
    expect((await call(agent, `${messageUrl}/attachments/createUploadSession`, { method: 'POST', token, contentType: 'application/json', body: '{}' })).status).toBe(404);
  });
});
