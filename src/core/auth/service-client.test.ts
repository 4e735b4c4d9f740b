import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';
import { deadUrl, KeystoneStub } from './keystone-stub.test-util.js';
import { EndpointNotFound, ServiceAuthFailed, ServiceClient, UpstreamUnavailable, type ServiceCredentials } from './service-client.js';

let clock = Date.parse('2030-01-01T00:00:00Z');
const now = (): number => clock;
const stub = new KeystoneStub(now);

before(async () => {
  await stub.start();
});
after(async () => {
  await stub.stop();
});
beforeEach(() => {
  stub.logins = 0;
  stub.failWith = null;
  stub.onService = () => ({ status: 404, body: { error: 'no route' } });
});

function creds(overrides: Partial<ServiceCredentials> = {}): ServiceCredentials {
  return { authUrl: `${stub.url}/v3/`, username: 'nova', password: 'secret', projectName: 'service', region: 'RegionOne', ...overrides };
}

function client(overrides: Partial<ServiceCredentials> = {}, retries = 3): ServiceClient {
  return new ServiceClient(creds(overrides), { now, retries, backoffMs: 1, maxBackoffMs: 5 });
}

test('logs in with the password method and project scope, then reuses the token', async () => {
  const c = client({ userDomainName: 'svc-domain' });
  const [a, b] = await Promise.all([c.token(), c.token()]);
  const third = await c.token();
  assert.equal(stub.logins, 1, 'concurrent and later calls share one login');
  assert.equal(a, b);
  assert.equal(a, third);
  assert.ok(stub.tokens.has(a), 'the token is the X-Subject-Token identity issued');
  assert.deepEqual(stub.lastLogin, {
    auth: {
      identity: { methods: ['password'], password: { user: { name: 'nova', domain: { name: 'svc-domain' }, password: 'secret' } } },
      scope: { project: { name: 'service', domain: { name: 'Default' } } },
    },
  });
});

test('renews the token a few minutes before it expires', async () => {
  const c = client();
  const first = await c.token();
  clock += 54 * 60_000; // 6 minutes left of 60
  assert.equal(await c.token(), first);
  assert.equal(stub.logins, 1);
  clock += 2 * 60_000; // 4 minutes left: inside the 5-minute margin
  const second = await c.token();
  assert.notEqual(second, first);
  assert.equal(stub.logins, 2);
});

test('wrong credentials throw ServiceAuthFailed (a 503, not a 401 for the user)', async () => {
  const c = client({ password: 'wrong' });
  await assert.rejects(c.token(), (err: unknown) => err instanceof ServiceAuthFailed && err.status === 503 && err.identityStatus === 401);
});

test('catalog lookup: internal interface by default, filtered by region, public on request', async () => {
  const r1 = client();
  assert.equal(await r1.endpoint('compute'), `${stub.url}/svc/compute-internal-r1`);
  assert.equal(await r1.endpoint('compute', { interface: 'public' }), `${stub.url}/svc/compute-public`);
  assert.equal(await r1.endpoint('compute', { interface: 'admin' }), `${stub.url}/svc/compute-admin`);
  const r2 = client({ region: 'RegionTwo' });
  assert.equal(await r2.endpoint('compute'), `${stub.url}/svc/compute-internal-r2`);
  await assert.rejects(r2.endpoint('compute', { interface: 'public' }), EndpointNotFound);
  await assert.rejects(r1.endpoint('image'), (err: unknown) => err instanceof EndpointNotFound && err.serviceType === 'image');
});

test('request: sends token, request id and JSON; returns status, headers and parsed body', async () => {
  const c = client();
  const token = await c.token();
  let seen: { method: string; path: string; headers: Record<string, unknown>; body: string } | null = null;
  stub.onService = (call) => {
    seen = { method: call.method, path: call.path, headers: call.headers, body: call.body };
    return { status: 202, body: { server: { id: 's1' } }, headers: { 'X-Thing': 'yes' } };
  };
  const res = await c.request<{ server: { id: string } }>('compute', 'post', '/servers?x=1', {
    body: { server: { name: 'vm' } },
    requestId: 'req-0b9a2f4e-3f0c-4a34-9d5f-1f2e3d4c5b6a',
    headers: { 'X-Custom': 'c' },
  });
  assert.equal(res.status, 202);
  assert.deepEqual(res.body, { server: { id: 's1' } });
  assert.equal(res.headers.get('x-thing'), 'yes');
  assert.ok(seen);
  const call = seen as { method: string; path: string; headers: Record<string, unknown>; body: string };
  assert.equal(call.method, 'POST');
  assert.equal(call.path, '/svc/compute-internal-r1/servers?x=1');
  assert.equal(call.headers['x-auth-token'], token);
  assert.equal(call.headers['x-openstack-request-id'], 'req-0b9a2f4e-3f0c-4a34-9d5f-1f2e3d4c5b6a');
  assert.equal(call.headers['x-custom'], 'c');
  assert.equal(call.headers['content-type'], 'application/json');
  assert.deepEqual(JSON.parse(call.body), { server: { name: 'vm' } });
});

test('request for a user: user token in X-Auth-Token, service token in X-Service-Token', async () => {
  const c = client();
  const serviceToken = await c.token();
  let headers: Record<string, unknown> = {};
  stub.onService = (call) => {
    headers = call.headers;
    return { status: 200, body: {} };
  };
  await c.request('compute', 'GET', 'servers', { userToken: 'user-token', headers: { 'x-auth-token': 'overridden?' } });
  assert.equal(headers['x-auth-token'], 'user-token');
  assert.equal(headers['x-service-token'], serviceToken);
});

test('4xx answers are returned, not thrown', async () => {
  const c = client();
  let hits = 0;
  stub.onService = () => {
    hits += 1;
    return { status: 404, body: { itemNotFound: { code: 404, message: 'gone' } } };
  };
  const res = await c.request('compute', 'GET', '/servers/x');
  assert.equal(res.status, 404);
  assert.deepEqual(res.body, { itemNotFound: { code: 404, message: 'gone' } });
  assert.equal(hits, 1, '404 is not retried');
});

test('on 401 renews the service token once and retries', async () => {
  const c = client();
  const old = await c.token();
  const entry = stub.tokens.get(old);
  assert.ok(entry);
  entry.revoked = true;
  const tokensSeen: unknown[] = [];
  stub.onService = (call) => {
    tokensSeen.push(call.headers['x-auth-token']);
    return call.tokenValid ? { status: 200, body: { ok: true } } : { status: 401, body: { error: 'bad token' } };
  };
  const res = await c.request('compute', 'GET', '/servers');
  assert.equal(res.status, 200);
  assert.equal(stub.logins, 2);
  assert.equal(tokensSeen.length, 2);
  assert.equal(tokensSeen[0], old);
  assert.notEqual(tokensSeen[1], old);
});

test('a 401 that persists after one renewal is returned', async () => {
  const c = client();
  let hits = 0;
  stub.onService = () => {
    hits += 1;
    return { status: 401, body: { error: 'no' } };
  };
  const res = await c.request('compute', 'GET', '/servers');
  assert.equal(res.status, 401);
  assert.equal(hits, 2);
  assert.equal(stub.logins, 2);
});

test('retries 503 for a GET, then succeeds', async () => {
  const c = client();
  let hits = 0;
  stub.onService = () => {
    hits += 1;
    return hits <= 2 ? { status: 503, body: { error: 'busy' } } : { status: 200, body: { servers: [] } };
  };
  const res = await c.request('compute', 'GET', '/servers');
  assert.equal(res.status, 200);
  assert.deepEqual(res.body, { servers: [] });
  assert.equal(hits, 3);
});

test('gives up after N retries with UpstreamUnavailable', async () => {
  const c = client({}, 2);
  let hits = 0;
  stub.onService = () => {
    hits += 1;
    return { status: 502, body: {} };
  };
  await assert.rejects(
    c.request('compute', 'DELETE', '/servers/1'),
    (err: unknown) => err instanceof UpstreamUnavailable && err.status === 503 && err.attempts === 3 && err.lastStatus === 502 && err.serviceType === 'compute',
  );
  assert.equal(hits, 3, 'one attempt and two retries');
});

test('does not retry a 503 for a POST (not idempotent)', async () => {
  const c = client();
  let hits = 0;
  stub.onService = () => {
    hits += 1;
    return { status: 503, body: {} };
  };
  const res = await c.request('compute', 'POST', '/servers', { body: {} });
  assert.equal(res.status, 503);
  assert.equal(hits, 1);
});

test('identity down: token() throws UpstreamUnavailable after retrying refused connections', async () => {
  const c = new ServiceClient(creds({ authUrl: `${await deadUrl()}/v3` }), { now, retries: 2, backoffMs: 1 });
  await assert.rejects(c.token(), (err: unknown) => err instanceof UpstreamUnavailable && err.attempts === 3 && err.lastStatus === null);
});

test('identity answering 503: login retried, then fails', async () => {
  const c = client({}, 1);
  stub.failWith = 503;
  await assert.rejects(c.token(), UpstreamUnavailable);
  stub.failWith = null;
  assert.ok(await c.token());
});

test('validateToken: body for a valid token, null for unknown, allow_expired passed on', async () => {
  const c = client();
  const user = stub.issue({}, 1000);
  const body = await c.validateToken(user);
  assert.equal(body?.user.id, 'u-alice');
  assert.equal(body?.project?.id, 'p-demo');
  assert.equal(stub.validationQueries.at(-1), '?nocatalog');
  assert.equal(await c.validateToken('nope'), null);
  clock += 2000;
  assert.equal(await c.validateToken(user), null, 'expired');
  const expired = await c.validateToken(user, { allowExpired: true });
  assert.equal(expired?.user.id, 'u-alice');
  assert.equal(stub.validationQueries.at(-1), '?nocatalog&allow_expired=1');
});

test('validateToken: renews a refused service token once', async () => {
  const c = client();
  const user = stub.issue();
  const old = await c.token();
  const entry = stub.tokens.get(old);
  assert.ok(entry);
  entry.revoked = true;
  const body = await c.validateToken(user);
  assert.equal(body?.user.id, 'u-alice');
  assert.equal(stub.logins, 2);
});
