import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createTestIdentity, type TestIdentity } from '../testing.js';

let t: TestIdentity;
before(async () => {
  t = await createTestIdentity();
});
after(async () => {
  await t.close();
});

const passwordAuth = (user: Record<string, unknown>, scope?: unknown): Record<string, unknown> => ({
  auth: { identity: { methods: ['password'], password: { user } }, ...(scope === undefined ? {} : { scope }) },
});

async function issue(payload: unknown, query = ''): Promise<{ status: number; token: string | undefined; body: any }> {
  const res = await t.app.inject({ method: 'POST', url: `/v3/auth/tokens${query}`, payload: payload as object });
  const token = res.headers['x-subject-token'];
  return { status: res.statusCode, token: typeof token === 'string' ? token : undefined, body: res.json() };
}

async function validate(token: string, subject: string, query = ''): Promise<{ status: number; body: any }> {
  const res = await t.app.inject({ method: 'GET', url: `/v3/auth/tokens${query}`, headers: { 'x-auth-token': token, 'x-subject-token': subject } });
  return { status: res.statusCode, body: res.json() };
}

test('version documents at / and /v3', async () => {
  const root = await t.app.inject({ method: 'GET', url: '/' });
  assert.equal(root.statusCode, 300);
  assert.equal(root.json().versions.values[0].id, 'v3.14');
  const v3 = await t.app.inject({ method: 'GET', url: '/v3' });
  assert.equal(v3.statusCode, 200);
  assert.equal(v3.json().version.status, 'stable');
  assert.equal(v3.json().version.links[0].href, 'http://identity.test:5000/v3/');
});

test('password auth scoped to a project by name returns the token, roles and catalog', async () => {
  const r = await issue(passwordAuth({ name: 'admin', domain: { name: 'Default' }, password: t.adminPassword }, { project: { name: 'admin', domain: { id: 'default' } } }));
  assert.equal(r.status, 201);
  assert.ok(r.token);
  assert.equal(r.body.token.project.id, t.adminProjectId);
  assert.deepEqual(r.body.token.roles.map((x: { name: string }) => x.name).sort(), ['admin', 'member', 'reader']);
  assert.deepEqual(r.body.token.methods, ['password']);
  assert.ok(Array.isArray(r.body.token.catalog));
  assert.match(r.body.token.expires_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
  const noCatalog = await issue(passwordAuth({ id: t.adminUserId, password: t.adminPassword }, { project: { id: t.adminProjectId } }), '?nocatalog');
  assert.equal(noCatalog.body.token.catalog, undefined);
});

test('unscoped, domain-scoped and system-scoped tokens', async () => {
  const unscoped = await issue(passwordAuth({ id: t.adminUserId, password: t.adminPassword }, 'unscoped'));
  assert.equal(unscoped.status, 201);
  assert.equal(unscoped.body.token.project, undefined);
  assert.equal(unscoped.body.token.roles, undefined);
  const system = await issue(passwordAuth({ id: t.adminUserId, password: t.adminPassword }, { system: { all: true } }));
  assert.equal(system.status, 201);
  assert.deepEqual(system.body.token.system, { all: true });
  const domain = await issue(passwordAuth({ id: t.adminUserId, password: t.adminPassword }, { domain: { id: 'default' } }));
  assert.equal(domain.status, 401, 'admin has no role on the Default domain itself');
});

test('wrong password, unknown user and no role on the project give 401 and no token', async () => {
  for (const payload of [
    passwordAuth({ id: t.adminUserId, password: 'wrong' }),
    passwordAuth({ name: 'nobody', domain: { id: 'default' }, password: 'x' }),
    passwordAuth({ id: t.memberUserId, password: 'member-secret' }, { project: { id: t.adminProjectId } }),
  ]) {
    const r = await issue(payload);
    assert.equal(r.status, 401);
    assert.equal(r.token, undefined);
    assert.equal(r.body.error.code, 401);
    assert.equal(r.body.error.title, 'Unauthorized');
  }
});

test('malformed bodies get 400 in Keystone form', async () => {
  const bodies: unknown[] = [{}, { auth: {} }, { auth: { identity: { methods: 'password' } } }, { auth: { identity: { methods: ['password'] } } }, passwordAuth({ name: 'admin', password: 'x' })];
  for (const payload of bodies) {
    const r = await issue(payload);
    assert.equal(r.status, 400, JSON.stringify(payload));
    assert.equal(r.body.error.code, 400);
  }
  const raw = await t.app.inject({ method: 'POST', url: '/v3/auth/tokens', headers: { 'content-type': 'application/json' }, payload: '{"auth": ' });
  assert.equal(raw.statusCode, 400);
  assert.equal(raw.json().error.title, 'Bad Request');
  const huge = await t.app.inject({ method: 'POST', url: '/v3/projects', headers: { 'content-type': 'application/json', 'x-auth-token': t.adminToken }, payload: JSON.stringify({ project: { name: 'x', description: 'y'.repeat(200_000) } }) });
  assert.equal(huge.statusCode, 413);
});

test('validation: own token, admin validating another, member refused, tampered 404', async () => {
  const own = await validate(t.memberToken, t.memberToken);
  assert.equal(own.status, 200);
  assert.equal(own.body.token.user.id, t.memberUserId);
  const byAdmin = await validate(t.adminToken, t.memberToken);
  assert.equal(byAdmin.status, 200);
  const byMember = await validate(t.memberToken, t.adminToken);
  assert.equal(byMember.status, 403);
  const tampered = t.memberToken.slice(0, 50) + (t.memberToken[50] === 'A' ? 'B' : 'A') + t.memberToken.slice(51);
  assert.equal((await validate(t.adminToken, tampered)).status, 404);
  const asCaller = await t.app.inject({ method: 'GET', url: '/v3/auth/projects', headers: { 'x-auth-token': tampered } });
  assert.equal(asCaller.statusCode, 401);
  assert.match(String(asCaller.headers['www-authenticate']), /^Keystone uri="http:\/\/identity\.test:5000"/);
  const head = await t.app.inject({ method: 'HEAD', url: '/v3/auth/tokens', headers: { 'x-auth-token': t.adminToken, 'x-subject-token': t.memberToken } });
  assert.equal(head.statusCode, 200);
});

test('token method re-scopes and keeps the expiry and audit chain', async () => {
  const unscoped = await issue(passwordAuth({ id: t.adminUserId, password: t.adminPassword }, 'unscoped'));
  const scoped = await issue({ auth: { identity: { methods: ['token'], token: { id: unscoped.token } }, scope: { project: { id: t.adminProjectId } } } });
  assert.equal(scoped.status, 201);
  assert.equal(scoped.body.token.expires_at, unscoped.body.token.expires_at);
  assert.equal(scoped.body.token.audit_ids[1], unscoped.body.token.audit_ids[0]);
  assert.deepEqual(scoped.body.token.methods.sort(), ['password', 'token']);
});

test('revoking a token makes it invalid at once, and only it', async () => {
  const a = await t.login('admin', t.adminPassword, 'admin');
  const b = await t.login('admin', t.adminPassword, 'admin');
  const del = await t.app.inject({ method: 'DELETE', url: '/v3/auth/tokens', headers: { 'x-auth-token': t.adminToken, 'x-subject-token': a } });
  assert.equal(del.statusCode, 204);
  assert.equal((await validate(t.adminToken, a)).status, 404);
  assert.equal((await validate(t.adminToken, b)).status, 200);
  const chained = await issue({ auth: { identity: { methods: ['token'], token: { id: a } } } });
  assert.equal(chained.status, 401, 'a revoked token cannot make new tokens');
});

test('changing a password, disabling a user, removing the role, deleting the project each end tokens', async () => {
  const admin = (method: 'POST' | 'PATCH' | 'PUT' | 'DELETE', url: string, payload?: object) => t.app.inject({ method, url, headers: { 'x-auth-token': t.adminToken }, ...(payload ? { payload } : {}) });
  const project = (await admin('POST', '/v3/projects', { project: { name: 'rev-project' } })).json().project;
  const user = (await admin('POST', '/v3/users', { user: { name: 'rev-user', password: 'pw-1' } })).json().user;
  const member = (await t.app.inject({ method: 'GET', url: '/v3/roles?name=member', headers: { 'x-auth-token': t.adminToken } })).json().roles[0];
  assert.equal((await admin('PUT', `/v3/projects/${project.id}/users/${user.id}/roles/${member.id}`)).statusCode, 204);

  let token = await t.login('rev-user', 'pw-1', 'rev-project');
  const change = await t.app.inject({ method: 'POST', url: `/v3/users/${user.id}/password`, headers: { 'x-auth-token': token }, payload: { user: { original_password: 'pw-1', password: 'pw-2' } } });
  assert.equal(change.statusCode, 204);
  assert.equal((await validate(t.adminToken, token)).status, 404, 'password change');
  const wrongOriginal = await t.app.inject({ method: 'POST', url: `/v3/users/${user.id}/password`, headers: { 'x-auth-token': t.adminToken }, payload: { user: { original_password: 'nope', password: 'pw-3' } } });
  assert.equal(wrongOriginal.statusCode, 401);

  token = await t.login('rev-user', 'pw-2', 'rev-project');
  assert.equal((await admin('DELETE', `/v3/projects/${project.id}/users/${user.id}/roles/${member.id}`)).statusCode, 204);
  assert.equal((await validate(t.adminToken, token)).status, 404, 'role removal');
  assert.equal((await admin('PUT', `/v3/projects/${project.id}/users/${user.id}/roles/${member.id}`)).statusCode, 204);

  token = await t.login('rev-user', 'pw-2', 'rev-project');
  assert.equal((await admin('PATCH', `/v3/users/${user.id}`, { user: { enabled: false } })).statusCode, 200);
  assert.equal((await validate(t.adminToken, token)).status, 404, 'disabled user');
  assert.equal((await admin('PATCH', `/v3/users/${user.id}`, { user: { enabled: true } })).statusCode, 200);
  assert.equal((await validate(t.adminToken, token)).status, 404, 're-enabling does not bring old tokens back');

  token = await t.login('rev-user', 'pw-2', 'rev-project');
  assert.equal((await admin('DELETE', `/v3/projects/${project.id}`)).statusCode, 204);
  assert.equal((await validate(t.adminToken, token)).status, 404, 'deleted project');
});

test('auth/projects, auth/domains, auth/system and auth/catalog', async () => {
  const get = (url: string, token: string) => t.app.inject({ method: 'GET', url, headers: { 'x-auth-token': token } });
  const projects = (await get('/v3/auth/projects', t.memberToken)).json().projects;
  assert.deepEqual(projects.map((p: { id: string }) => p.id), [t.memberProjectId]);
  assert.deepEqual((await get('/v3/auth/domains', t.memberToken)).json().domains, []);
  assert.deepEqual((await get('/v3/auth/system', t.adminToken)).json().system, [{ all: true }]);
  assert.deepEqual((await get('/v3/auth/system', t.memberToken)).json().system, []);
  assert.equal((await get('/v3/auth/catalog', t.memberToken)).statusCode, 200);
});
