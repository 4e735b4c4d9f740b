import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { after, before, test } from 'node:test';
import { createTestIdentity, type TestIdentity } from '../testing.js';

let t: TestIdentity;
let access: string;
let secret: string;

before(async () => {
  t = await createTestIdentity();
  const res = await t.request('POST', `/v3/users/${t.memberUserId}/credentials/OS-EC2`, { token: t.memberToken, payload: { tenant_id: t.memberProjectId } });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  access = res.body.credential.access as string;
  secret = res.body.credential.secret as string;
});

after(async () => {
  await t.close();
});

const hmac = (key: string | Buffer, data: string, alg = 'sha256'): Buffer => createHmac(alg, key).update(data).digest();
const sha256 = (data: string): string => createHash('sha256').update(data).digest('hex');

function amzDate(ms = Date.now()): string {
  return new Date(ms).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

/** A SigV4 string to sign of some canonical request, and its signature with `key`. */
function signV4(key: string, date = amzDate(), service = 's3', canonical = 'GET\n/bucket/key\n\nhost:s3.test\n\nhost\nUNSIGNED-PAYLOAD'): { token: string; signature: string } {
  const day = date.slice(0, 8);
  const stringToSign = ['AWS4-HMAC-SHA256', date, `${day}/us-east-1/${service}/aws4_request`, sha256(canonical)].join('\n');
  const signing = hmac(hmac(hmac(hmac(`AWS4${key}`, day), 'us-east-1'), service), 'aws4_request');
  return { token: Buffer.from(stringToSign).toString('base64url'), signature: hmac(signing, stringToSign).toString('hex') };
}

function s3tokens(body: unknown, token: string | null = t.adminToken) {
  return t.request('POST', '/v3/s3tokens', { token, payload: body });
}

test('s3tokens: a SigV4 string to sign signed with the secret gets a token of the credential user on its project', async () => {
  const res = await s3tokens({ credentials: { access, ...signV4(secret) } });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  const token = res.body.token;
  assert.equal(token.user.id, t.memberUserId);
  assert.equal(token.project.id, t.memberProjectId);
  assert.deepEqual(token.methods, ['ec2credential']);
  assert.ok((token.roles as { name: string }[]).some((r) => r.name === 'member'));
  assert.ok(Array.isArray(token.catalog));
  // The token it made is a real one.
  const subject = res.headers['x-subject-token'];
  assert.equal(typeof subject, 'string');
  const check = await t.request('GET', '/v3/auth/tokens', { token: t.adminToken, headers: { 'x-subject-token': String(subject) } });
  assert.equal(check.status, 200);
  assert.equal(check.body.token.user.id, t.memberUserId);
  assert.deepEqual(check.body.token.methods, ['ec2credential']);
  // Such a token cannot make more credentials (a leaked presigned URL must not become a lasting key).
  const more = await t.request('POST', `/v3/users/${t.memberUserId}/credentials/OS-EC2`, { token: String(subject), payload: { tenant_id: t.memberProjectId } });
  assert.equal(more.status, 403);
});

test('s3tokens: the base64 may be standard or URL-safe, and the body key credential or ec2Credentials', async () => {
  const signed = signV4(secret);
  const standard = Buffer.from(signed.token, 'base64url').toString('base64');
  for (const body of [{ credential: { access, token: standard, signature: signed.signature } }, { ec2Credentials: { access, ...signed } }]) {
    const res = await s3tokens(body);
    assert.equal(res.status, 200, JSON.stringify(res.body));
  }
});

test('s3tokens: a SigV2 string to sign (HMAC-SHA1, base64)', async () => {
  const stringToSign = 'GET\n\n\nTue, 27 Mar 2007 19:36:42 +0000\n/bucket/photos/puppy.jpg';
  const res = await s3tokens({ credentials: { access, token: Buffer.from(stringToSign).toString('base64'), signature: hmac(secret, stringToSign, 'sha1').toString('base64') } });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.equal(res.body.token.project.id, t.memberProjectId);
});

test('s3tokens: wrong signature, unknown access key, bad scope: 401 and no token', async () => {
  const signed = signV4(secret);
  const cases: { body: unknown; message: RegExp }[] = [
    { body: { credentials: { access, token: signed.token, signature: signV4('not-the-secret').signature } }, message: /signature mismatch/ },
    { body: { credentials: { access: 'no-such-access-key', ...signed } }, message: /access key not found/ },
    { body: { credentials: { access, ...signV4(secret, amzDate(), 'ec2') } }, message: /Invalid EC2 signature/ },
    { body: { credentials: { token: signed.token, signature: signed.signature } }, message: /not supplied/ },
  ];
  for (const { body, message } of cases) {
    const res = await s3tokens(body);
    assert.equal(res.status, 401, JSON.stringify(body));
    assert.equal(res.body.error.code, 401);
    assert.match(res.body.error.message, message);
    assert.equal(res.headers['x-subject-token'], undefined);
  }
});

test('s3tokens: an old X-Amz-Date in the signed headers is refused; a body is required', async () => {
  const old = amzDate(Date.now() - 20 * 60 * 1000);
  const expired = await s3tokens({ credentials: { access, ...signV4(secret, old), headers: { 'X-Amz-Date': old } } });
  assert.equal(expired.status, 401);
  assert.match(expired.body.error.message, /expired/);
  const fresh = amzDate();
  assert.equal((await s3tokens({ credentials: { access, ...signV4(secret, fresh), headers: { 'X-Amz-Date': fresh } } })).status, 200);
  const empty = await s3tokens({});
  assert.equal(empty.status, 400);
});

test('s3tokens: only a service or an admin may ask', async () => {
  const body = { credentials: { access, ...signV4(secret) } };
  assert.equal((await s3tokens(body, t.memberToken)).status, 403);
  assert.equal((await s3tokens(body, null)).status, 401);
  const get = await t.request('GET', '/v3/s3tokens', { token: t.adminToken });
  assert.equal(get.status, 405);
});

test('s3tokens: a disabled user or a lost role gets 401', async () => {
  const created = await t.request('POST', '/v3/users', { token: t.adminToken, payload: { user: { name: 's3-disabled', password: 'pw-s3-disabled', domain_id: 'default' } } });
  const userId = created.body.user.id as string;
  const roles = await t.request('GET', '/v3/roles?name=member', { token: t.adminToken });
  const memberRole = roles.body.roles[0].id as string;
  const cred = await t.request('POST', '/v3/credentials', {
    token: t.adminToken,
    payload: { credential: { user_id: userId, project_id: t.memberProjectId, type: 'ec2', blob: JSON.stringify({ access: 's3-disabled-access', secret: 's3-disabled-secret' }) } },
  });
  assert.equal(cred.status, 201, JSON.stringify(cred.body));
  const body = { credentials: { access: 's3-disabled-access', ...signV4('s3-disabled-secret') } };
  assert.equal((await s3tokens(body)).status, 401, 'no role on the project');
  assert.equal((await t.request('PUT', `/v3/projects/${t.memberProjectId}/users/${userId}/roles/${memberRole}`, { token: t.adminToken })).status, 204);
  assert.equal((await s3tokens(body)).status, 200);
  assert.equal((await t.request('PATCH', `/v3/users/${userId}`, { token: t.adminToken, payload: { user: { enabled: false } } })).status, 200);
  assert.equal((await s3tokens(body)).status, 401, 'disabled user');
});

test('ec2tokens: EC2 query signatures version 2 and 4', async () => {
  const params: Record<string, string> = { Action: 'DescribeInstances', AWSAccessKeyId: access, SignatureMethod: 'HmacSHA256', SignatureVersion: '2', Timestamp: new Date().toISOString() };
  const qs = Object.keys(params)
    .sort()
    .map((k) => `${encodeURIComponent(k)}=${encodeURIComponent(params[k] ?? '')}`)
    .join('&');
  const v2 = hmac(secret, `GET\nec2.test:8788\n/\n${qs}`).toString('base64');
  const ok = await t.request('POST', '/v3/ec2tokens', { token: t.adminToken, payload: { credentials: { access, signature: v2, host: 'ec2.test:8788', verb: 'GET', path: '/', params } } });
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  assert.equal(ok.body.token.user.id, t.memberUserId);
  assert.equal(typeof ok.headers['x-subject-token'], 'string');
  const bad = await t.request('POST', '/v3/ec2tokens', { token: t.adminToken, payload: { credentials: { access, signature: v2, host: 'ec2.test:8788', verb: 'POST', path: '/', params } } });
  assert.equal(bad.status, 401);

  // Version 4 from the Authorization header, signed without the port.
  const date = amzDate();
  const day = date.slice(0, 8);
  const headers = { Host: 'ec2.test', 'X-Amz-Date': date };
  const bodyHash = sha256('Action=DescribeRegions&Version=2013-10-15');
  const canonical = ['POST', '/', '', `host:ec2.test\nx-amz-date:${date}\n`, 'host;x-amz-date', bodyHash].join('\n');
  const scope = `${day}/RegionOne/ec2/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', date, scope, sha256(canonical)].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${secret}`, day), 'RegionOne'), 'ec2'), 'aws4_request');
  const signature = hmac(key, stringToSign).toString('hex');
  const authorization = `AWS4-HMAC-SHA256 Credential=${access}/${scope}, SignedHeaders=host;x-amz-date, Signature=${signature}`;
  const v4 = await t.request('POST', '/v3/ec2tokens', {
    token: t.adminToken,
    payload: { credentials: { access, signature, host: 'ec2.test:8788', verb: 'POST', path: '/', params: {}, headers: { ...headers, Authorization: authorization }, body_hash: bodyHash } },
  });
  assert.equal(v4.status, 200, JSON.stringify(v4.body));
  const wrongBody = await t.request('POST', '/v3/ec2tokens', {
    token: t.adminToken,
    payload: { credentials: { access, signature, host: 'ec2.test', verb: 'POST', path: '/', params: {}, headers: { ...headers, Authorization: authorization }, body_hash: sha256('other') } },
  });
  assert.equal(wrongBody.status, 401);
  assert.equal((await t.request('POST', '/v3/ec2tokens', { token: t.memberToken, payload: { credentials: { access, signature: v2, host: 'ec2.test:8788', verb: 'GET', path: '/', params } } })).status, 403);
});
