import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { Unauthorized } from '../errors.js';
import { keystoneFault } from '../http/faults.js';
import { createApiServer } from '../http/server.js';
import type { RequestContext, TokenBody } from './context.js';
import { deadUrl, KeystoneStub } from './keystone-stub.test-util.js';
import { ServiceClient } from './service-client.js';
import { identityTokenValidator, installAuth, tokenHash, type AuthenticateOptions, type TokenValidator, type TokenValidatorOptions } from './token-middleware.js';

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
  stub.failWith = null;
  stub.validationDelayMs = 0;
});

function serviceClient(authUrl = `${stub.url}/v3`): ServiceClient {
  return new ServiceClient({ authUrl, username: 'nova', password: 'secret', projectName: 'service' }, { now, retries: 1, backoffMs: 1 });
}

/** An API server (as every service builds it) with auth installed and one route that echoes req.ctx. */
function apiServer(validator: TokenValidator, options: AuthenticateOptions = {}): { app: FastifyInstance; handled: () => number } {
  const app = createApiServer({ role: 'test-api', logger: pino({ level: 'silent' }), fault: keystoneFault });
  installAuth(app, validator, options);
  let handled = 0;
  app.get('/whoami', async (req) => {
    handled += 1;
    const { token: _token, ...rest } = req.ctx;
    return rest;
  });
  app.get('/', async () => ({ versions: [] }));
  app.get('/v3', { config: { public: true } }, async () => ({ version: {} }));
  return { app, handled: () => handled };
}

function validator(options: TokenValidatorOptions = {}, authUrl?: string): TokenValidator {
  return identityTokenValidator(serviceClient(authUrl), { now, ...options });
}

const UNAUTHORIZED_BODY = { error: { code: 401, title: 'Unauthorized', message: 'The request you have made requires authentication.' } };

test('a valid token passes and req.ctx is filled from the token body', async () => {
  const { app, handled } = apiServer(validator());
  const token = stub.issue();
  const res = await app.inject({ method: 'GET', url: '/whoami', headers: { 'x-auth-token': token } });
  assert.equal(res.statusCode, 200);
  assert.equal(handled(), 1);
  const ctx = res.json<Omit<RequestContext, 'token'>>();
  assert.equal(ctx.requestId, res.headers['x-openstack-request-id']);
  assert.equal(ctx.authToken, token);
  assert.equal(ctx.userId, 'u-alice');
  assert.equal(ctx.userName, 'alice');
  assert.equal(ctx.userDomainId, 'default');
  assert.equal(ctx.projectId, 'p-demo');
  assert.equal(ctx.projectName, 'demo');
  assert.deepEqual(ctx.roles, ['member', 'reader']);
  assert.deepEqual(ctx.roleIds, ['r-member', 'r-reader']);
  assert.deepEqual(ctx.serviceRoles, []);
  assert.equal(ctx.expiresAt, stub.tokens.get(token)?.body.expires_at);
});

test('401 with a Keystone-style body when the token is missing, unknown or malformed', async () => {
  const { app, handled } = apiServer(validator(), { authUri: 'http://keystone.example/v3' });
  const missing = await app.inject({ method: 'GET', url: '/whoami' });
  assert.equal(missing.statusCode, 401);
  assert.deepEqual(missing.json(), UNAUTHORIZED_BODY);
  assert.equal(missing.headers['www-authenticate'], 'Keystone uri="http://keystone.example/v3"');
  const unknown = await app.inject({ method: 'GET', url: '/whoami', headers: { 'x-auth-token': 'not-a-token' } });
  assert.equal(unknown.statusCode, 401);
  assert.deepEqual(unknown.json(), UNAUTHORIZED_BODY);
  assert.equal(stub.validations.get('not-a-token'), 1, 'the unknown token was asked about');
  const empty = await app.inject({ method: 'GET', url: '/whoami', headers: { 'x-auth-token': '   ' } });
  assert.equal(empty.statusCode, 401);
  const huge = await app.inject({ method: 'GET', url: '/whoami', headers: { 'x-auth-token': 'a'.repeat(9000) } });
  assert.equal(huge.statusCode, 401);
  assert.equal(handled(), 0);
});

test('public routes need no token', async () => {
  const { app } = apiServer(validator(), { public: (req) => req.url === '/' });
  assert.equal((await app.inject({ method: 'GET', url: '/' })).statusCode, 200);
  assert.equal((await app.inject({ method: 'GET', url: '/v3' })).statusCode, 200, 'config: { public: true } route');
  assert.equal((await app.inject({ method: 'GET', url: '/whoami' })).statusCode, 401);
});

test('a cached token is not validated again', async () => {
  const { app } = apiServer(validator());
  const token = stub.issue();
  for (let i = 0; i < 3; i += 1) {
    const res = await app.inject({ method: 'GET', url: '/whoami', headers: { 'x-auth-token': token } });
    assert.equal(res.statusCode, 200);
  }
  assert.equal(stub.validations.get(token), 1);
});

test('the cache is dropped after cacheTtlMs', async () => {
  const v = validator({ cacheTtlMs: 1000 });
  const token = stub.issue();
  assert.ok(await v.validate(token));
  clock += 999;
  assert.ok(await v.validate(token));
  assert.equal(stub.validations.get(token), 1);
  clock += 2;
  assert.ok(await v.validate(token));
  assert.equal(stub.validations.get(token), 2);
});

test('the cache never serves a token past its expires_at', async () => {
  const v = validator({ cacheTtlMs: 60_000 });
  const token = stub.issue({}, 5000);
  assert.ok(await v.validate(token));
  clock += 4999;
  assert.ok(await v.validate(token));
  assert.equal(stub.validations.get(token), 1);
  clock += 1;
  assert.equal(await v.validate(token), null);
  assert.equal(stub.validations.get(token), 2, 'identity was asked again once the token expired');
});

test('a token identity calls valid but that our clock says has expired is refused', async () => {
  const body = stub.tokens.get(stub.issue({}, 1000))?.body;
  assert.ok(body);
  const calls: string[] = [];
  const v = identityTokenValidator({ validateToken: async (t) => (calls.push(t), body) }, { now });
  clock += 1000;
  assert.equal(await v.validate('t'), null);
  assert.equal(calls.length, 1);
});

test('concurrent checks of one token share one request to identity', async () => {
  const { app } = apiServer(validator());
  const token = stub.issue();
  stub.validationDelayMs = 50;
  const answers = await Promise.all(Array.from({ length: 5 }, () => app.inject({ method: 'GET', url: '/whoami', headers: { 'x-auth-token': token } })));
  assert.deepEqual(
    answers.map((r) => r.statusCode),
    [200, 200, 200, 200, 200],
  );
  assert.equal(stub.validations.get(token), 1);
});

test('a shared in-flight check that fails fails every waiter, and is not cached', async () => {
  let calls = 0;
  let fail = true;
  const body = stub.tokens.get(stub.issue())?.body;
  assert.ok(body);
  const v = identityTokenValidator(
    {
      validateToken: async () => {
        calls += 1;
        await new Promise((resolve) => setTimeout(resolve, 20));
        if (fail) throw new Error('identity down');
        return body;
      },
    },
    { now },
  );
  const results = await Promise.allSettled([v.validate('t'), v.validate('t'), v.validate('t')]);
  assert.deepEqual(
    results.map((r) => r.status),
    ['rejected', 'rejected', 'rejected'],
  );
  assert.equal(calls, 1);
  fail = false;
  assert.equal((await v.validate('t'))?.user.id, 'u-alice');
  assert.equal(calls, 2);
});

test('invalid tokens are remembered for negativeTtlMs', async () => {
  const v = validator({ negativeTtlMs: 500 });
  assert.equal(await v.validate('bogus-1'), null);
  assert.equal(await v.validate('bogus-1'), null);
  assert.equal(stub.validations.get('bogus-1'), 1);
  clock += 501;
  assert.equal(await v.validate('bogus-1'), null);
  assert.equal(stub.validations.get('bogus-1'), 2);
});

test('the cache keeps at most cacheSize tokens, least recently used dropped first', async () => {
  const counts = new Map<string, number>();
  const body = stub.tokens.get(stub.issue())?.body;
  assert.ok(body);
  const v = identityTokenValidator(
    {
      validateToken: async (t) => {
        counts.set(t, (counts.get(t) ?? 0) + 1);
        return body;
      },
    },
    { now, cacheSize: 2 },
  );
  await v.validate('a');
  await v.validate('b');
  await v.validate('a'); // a is now the most recently used
  await v.validate('c'); // evicts b
  await v.validate('a');
  await v.validate('b');
  assert.equal(counts.get('a'), 1);
  assert.equal(counts.get('b'), 2);
  assert.equal(counts.get('c'), 1);
});

test('identity unreachable: 503, never 500, and the handler does not run', async () => {
  const { app, handled } = apiServer(validator({}, `${await deadUrl()}/v3`));
  const res = await app.inject({ method: 'GET', url: '/whoami', headers: { 'x-auth-token': stub.issue() } });
  assert.equal(res.statusCode, 503);
  assert.deepEqual(res.json(), { error: { code: 503, title: 'Service Unavailable', message: 'The Keystone service is temporarily unavailable.' } });
  assert.equal(handled(), 0);
});

test('identity answering 503, or a validator failing with a 401 of its own, gives 503', async () => {
  const { app, handled } = apiServer(validator());
  stub.failWith = 503;
  const res = await app.inject({ method: 'GET', url: '/whoami', headers: { 'x-auth-token': stub.issue() } });
  assert.equal(res.statusCode, 503);
  const failing = apiServer({ validate: async () => Promise.reject(new Unauthorized('service credentials refused')) });
  const res2 = await failing.app.inject({ method: 'GET', url: '/whoami', headers: { 'x-auth-token': 'x' } });
  assert.equal(res2.statusCode, 503);
  assert.equal(handled() + failing.handled(), 0);
});

test('a valid service token with the service role lets an expired user token through', async () => {
  const { app } = apiServer(validator());
  const user = stub.issue({}, 1000);
  const service = stub.issue({ roles: [{ id: 'r-service', name: 'service' }] });
  const notService = stub.issue();
  clock += 2000;
  const alone = await app.inject({ method: 'GET', url: '/whoami', headers: { 'x-auth-token': user } });
  assert.equal(alone.statusCode, 401);
  const withService = await app.inject({ method: 'GET', url: '/whoami', headers: { 'x-auth-token': user, 'x-service-token': service } });
  assert.equal(withService.statusCode, 200);
  assert.deepEqual(withService.json<RequestContext>().serviceRoles, ['service']);
  const withoutRole = await app.inject({ method: 'GET', url: '/whoami', headers: { 'x-auth-token': user, 'x-service-token': notService } });
  assert.equal(withoutRole.statusCode, 401);
  const bogus = await app.inject({ method: 'GET', url: '/whoami', headers: { 'x-auth-token': stub.issue(), 'x-service-token': 'bogus' } });
  assert.equal(bogus.statusCode, 401, 'an invalid service token is refused even with a valid user token');
});

test('distinct tokens are cached apart (no shared key)', async () => {
  const seen: string[] = [];
  const body: TokenBody | undefined = stub.tokens.get(stub.issue())?.body;
  assert.ok(body);
  const v = identityTokenValidator({ validateToken: async (t) => (seen.push(t), t === 'secret-token' ? body : null) }, { now });
  assert.ok(await v.validate('secret-token'));
  assert.equal(await v.validate('secret-tokeN'), null);
  assert.ok(await v.validate('secret-token'));
  assert.deepEqual(seen, ['secret-token', 'secret-tokeN']);
  assert.match(tokenHash('secret-token'), /^[0-9a-f]{64}$/);
});
