import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { DEFAULT_DOMAIN_ID } from '../bootstrap.js';
import { createTestIdentity, type InjectMethod, type TestIdentity } from '../testing.js';

let t: TestIdentity;

before(async () => {
  t = await createTestIdentity();
});

after(async () => {
  await t.close();
});

interface Reply {
  status: number;
  body: Record<string, any>;
  subject: string;
}

async function call(method: InjectMethod, url: string, token: string | null, payload?: unknown, headers: Record<string, string> = {}): Promise<Reply> {
  const res = await t.request(method, url, { token, payload, headers });
  const subject = res.headers['x-subject-token'];
  return { status: res.status, body: res.body, subject: typeof subject === 'string' ? subject : '' };
}

const base = (): string => `/v3/users/${t.memberUserId}/application_credentials`;

async function create(body: Record<string, unknown>, token = t.memberToken): Promise<Record<string, any>> {
  const res = await call('POST', base(), token, { application_credential: body });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body.application_credential as Record<string, any>;
}

async function remove(id: string): Promise<void> {
  assert.equal((await call('DELETE', `${base()}/${id}`, t.memberToken)).status, 204);
}

/** POST /v3/auth/tokens with the application_credential method. */
function authenticate(credential: Record<string, unknown>): Promise<Reply> {
  return call('POST', '/v3/auth/tokens', null, { auth: { identity: { methods: ['application_credential'], application_credential: credential } } });
}

const roleNames = (token: Record<string, any>): string[] => (token.roles as { name: string }[]).map((r) => r.name).sort();

test('create returns the secret once; the credential gives a token for its project with its roles', async () => {
  const cred = await create({ name: 'monitoring', description: 'for the monitor' });
  assert.match(cred.id, /^[0-9a-f]{32}$/);
  assert.equal(typeof cred.secret, 'string');
  assert.ok((cred.secret as string).length >= 64, 'the generated secret is long');
  assert.match(cred.secret, /^[A-Za-z0-9_-]+$/);
  assert.equal(cred.name, 'monitoring');
  assert.equal(cred.description, 'for the monitor');
  assert.equal(cred.project_id, t.memberProjectId);
  assert.equal(cred.expires_at, null);
  assert.equal(cred.unrestricted, false);
  assert.deepEqual(cred.access_rules, []);
  assert.deepEqual((cred.roles as { name: string }[]).map((r) => r.name).sort(), ['member', 'reader']);
  for (const role of cred.roles as Record<string, unknown>[]) assert.deepEqual(Object.keys(role).sort(), ['domain_id', 'id', 'name']);
  assert.equal(cred.links.self, `http://identity.test:5000${base()}/${cred.id}`);

  const shown = await call('GET', `${base()}/${cred.id}`, t.memberToken);
  assert.equal(shown.status, 200);
  assert.ok(!('secret' in shown.body.application_credential), 'the secret is shown only at create');
  const { secret, ...rest } = cred;
  assert.deepEqual(shown.body.application_credential, rest);
  assert.ok(secret, 'the create response has the secret');

  const auth = await authenticate({ id: cred.id, secret });
  assert.equal(auth.status, 201, JSON.stringify(auth.body));
  assert.ok(auth.subject, 'the token is in X-Subject-Token');
  const token = auth.body.token as Record<string, any>;
  assert.equal(token.project.id, t.memberProjectId);
  assert.equal(token.user.id, t.memberUserId);
  assert.deepEqual(token.methods, ['application_credential']);
  assert.deepEqual(roleNames(token), ['member', 'reader']);
  assert.deepEqual(token.application_credential, { id: cred.id, name: 'monitoring', restricted: true });
  await remove(cred.id);
});

test('authenticate by name and user, by user id or by user name and domain', async () => {
  const cred = await create({ name: 'by-name', secret: 'my own secret' });
  assert.equal(cred.secret, 'my own secret');
  const byId = await authenticate({ name: 'by-name', user: { id: t.memberUserId }, secret: 'my own secret' });
  assert.equal(byId.status, 201);
  assert.equal(byId.body.token.project.id, t.memberProjectId);
  const byName = await authenticate({ name: 'by-name', user: { name: 'member-user', domain: { id: DEFAULT_DOMAIN_ID } }, secret: 'my own secret' });
  assert.equal(byName.status, 201);
  assert.equal(byName.body.token.application_credential.id, cred.id);
  assert.equal((await authenticate({ name: 'by-name', user: { id: t.adminUserId }, secret: 'my own secret' })).status, 401);
  await remove(cred.id);
});

test('a credential limited to reader gives only reader', async () => {
  const readerId = (await call('GET', '/v3/roles?name=reader', t.adminToken)).body.roles[0].id as string;
  for (const ref of [{ id: readerId }, { name: 'reader' }]) {
    const cred = await create({ name: `reader-${Object.keys(ref)[0]}`, roles: [ref] });
    assert.deepEqual(cred.roles, [{ id: readerId, name: 'reader', domain_id: null }]);
    const auth = await authenticate({ id: cred.id, secret: cred.secret });
    assert.equal(auth.status, 201);
    assert.deepEqual(roleNames(auth.body.token as Record<string, any>), ['reader']);
    const validated = await call('GET', '/v3/auth/tokens', t.adminToken, undefined, { 'x-subject-token': auth.subject });
    assert.equal(validated.status, 200);
    assert.deepEqual(roleNames(validated.body.token as Record<string, any>), ['reader']);
    await remove(cred.id);
  }
  // Asking for member brings reader, which member implies.
  const member = await create({ name: 'member-only', roles: [{ name: 'member' }] });
  assert.deepEqual((member.roles as { name: string }[]).map((r) => r.name).sort(), ['member', 'reader']);
  await remove(member.id);
});

test('a wrong secret or an unknown credential gives 401', async () => {
  const cred = await create({ name: 'wrong-secret' });
  const wrong = await authenticate({ id: cred.id, secret: 'not the secret' });
  assert.equal(wrong.status, 401);
  assert.equal(wrong.body.error.code, 401);
  assert.equal((await authenticate({ id: 'ffffffffffffffffffffffffffffffff', secret: cred.secret })).status, 401);
  assert.equal((await authenticate({ id: cred.id, secret: cred.secret })).status, 201);
  await remove(cred.id);
});

test('deleting the credential invalidates the tokens made from it', async () => {
  const cred = await create({ name: 'to-delete' });
  const auth = await authenticate({ id: cred.id, secret: cred.secret });
  assert.equal(auth.status, 201);
  const subject = { 'x-subject-token': auth.subject };
  assert.equal((await call('GET', '/v3/auth/tokens', t.adminToken, undefined, subject)).status, 200);
  assert.equal((await call('GET', '/v3/auth/projects', auth.subject)).status, 200);

  await remove(cred.id);
  assert.equal((await call('GET', `${base()}/${cred.id}`, t.memberToken)).status, 404);
  assert.equal((await call('GET', '/v3/auth/tokens', t.adminToken, undefined, subject)).status, 404);
  assert.equal((await call('GET', '/v3/auth/projects', auth.subject)).status, 401);
  assert.equal((await authenticate({ id: cred.id, secret: cred.secret })).status, 401);
  assert.equal((await call('DELETE', `${base()}/${cred.id}`, t.memberToken)).status, 404);
  // The member's own token is untouched.
  assert.equal((await call('GET', base(), t.memberToken)).status, 200);
});

test('expiry: echoed with microseconds, refused in the past, 401 once passed', async () => {
  const future = new Date(Date.now() + 3600_000).toISOString().replace(/\.(\d{3})Z$/, '.$1456');
  const cred = await create({ name: 'expiring', expires_at: future });
  assert.equal(cred.expires_at, future);
  const auth = await authenticate({ id: cred.id, secret: cred.secret });
  assert.equal(auth.status, 201);
  assert.ok(Date.parse(auth.body.token.expires_at as string) <= Date.parse(`${future}Z`), 'the token ends when the credential does');

  const past = await call('POST', base(), t.memberToken, { application_credential: { name: 'already-expired', expires_at: '2001-01-01T00:00:00' } });
  assert.equal(past.status, 400);
  const garbage = await call('POST', base(), t.memberToken, { application_credential: { name: 'bad-time', expires_at: 'tomorrow-ish' } });
  assert.equal(garbage.status, 400);

  await t.identity.db.updateTable('application_credential').set({ expires_at: '2001-01-01T00:00:00.000000Z' }).where('id', '=', cred.id).execute();
  t.identity.changed();
  const expired = await authenticate({ id: cred.id, secret: cred.secret });
  assert.equal(expired.status, 401);
  assert.equal((await call('GET', '/v3/auth/tokens', t.adminToken, undefined, { 'x-subject-token': auth.subject })).status, 404);
  await remove(cred.id);
});

test('names are unique per user: 409', async () => {
  const cred = await create({ name: 'twice' });
  const again = await call('POST', base(), t.memberToken, { application_credential: { name: 'twice' } });
  assert.equal(again.status, 409);
  assert.equal(again.body.error.code, 409);
  const admin = await call('POST', `/v3/users/${t.adminUserId}/application_credentials`, t.adminToken, { application_credential: { name: 'twice' } });
  assert.equal(admin.status, 201);
  assert.equal((await call('DELETE', `/v3/users/${t.adminUserId}/application_credentials/${admin.body.application_credential.id}`, t.adminToken)).status, 204);
  await remove(cred.id);
});

test('bad input gives 400; unknown role names 404; roles the user lacks 400', async () => {
  const bad: unknown[] = [
    {},
    { application_credential: {} },
    { application_credential: { name: '' } },
    { application_credential: { name: '   ' } },
    { application_credential: { name: 42 } },
    { application_credential: { name: 'x', unknown_field: 1 } },
    { application_credential: { name: 'x', unrestricted: 'yes' } },
    { application_credential: { name: 'x', description: 5 } },
    { application_credential: { name: 'x', roles: 'member' } },
    { application_credential: { name: 'x', roles: [{}] } },
    { application_credential: { name: 'x', roles: [{ id: 'a', name: 'b' }] } },
    { application_credential: { name: 'x', roles: [{ id: 'not an id!' }] } },
    { application_credential: { name: 'x', access_rules: [{ path: '/v2.1/servers', method: 'GET', service: 'compute' }] } },
  ];
  for (const payload of bad) {
    const res = await call('POST', base(), t.memberToken, payload);
    assert.equal(res.status, 400, JSON.stringify(payload));
    assert.equal(res.body.error.code, 400);
  }
  const rules = await call('POST', base(), t.memberToken, { application_credential: { name: 'x', access_rules: [{ path: '/', method: 'GET', service: 'compute' }] } });
  assert.match(rules.body.error.message as string, /[Aa]ccess rules are not supported/);

  assert.equal((await call('POST', base(), t.memberToken, { application_credential: { name: 'x', roles: [{ name: 'admin' }] } })).status, 400);
  assert.equal((await call('POST', base(), t.memberToken, { application_credential: { name: 'x', roles: [{ id: 'ffffffffffffffffffffffffffffffff' }] } })).status, 400);
  assert.equal((await call('POST', base(), t.memberToken, { application_credential: { name: 'x', roles: [{ name: 'no-such-role' }] } })).status, 404);
  const list = await call('GET', base(), t.memberToken);
  assert.deepEqual(list.body.application_credentials, []);
});

test('only the user, with a project-scoped token, creates their credentials', async () => {
  const forOther = await call('POST', `/v3/users/${t.adminUserId}/application_credentials`, t.memberToken, { application_credential: { name: 'theft' } });
  assert.equal(forOther.status, 403);
  const byAdmin = await call('POST', base(), t.adminToken, { application_credential: { name: 'on-behalf' } });
  assert.equal(byAdmin.status, 403);
  const unscoped = await t.login('member-user', 'member-secret');
  const res = await call('POST', base(), unscoped, { application_credential: { name: 'unscoped' } });
  assert.equal(res.status, 403);
});

test('list, filter by name, show; other users are kept out', async () => {
  const one = await create({ name: 'list-one' });
  const two = await create({ name: 'list-two' });
  const all = await call('GET', base(), t.memberToken);
  assert.equal(all.status, 200);
  assert.deepEqual((all.body.application_credentials as { name: string }[]).map((c) => c.name).sort(), ['list-one', 'list-two']);
  assert.ok((all.body.application_credentials as Record<string, unknown>[]).every((c) => !('secret' in c)), 'a list shows no secret');
  assert.equal(all.body.links.self, `http://identity.test:5000${base()}`);
  const filtered = await call('GET', `${base()}?name=list-two`, t.memberToken);
  assert.deepEqual((filtered.body.application_credentials as { id: string }[]).map((c) => c.id), [two.id]);

  const adminCred = (await call('POST', `/v3/users/${t.adminUserId}/application_credentials`, t.adminToken, { application_credential: { name: 'admin-cred' } })).body.application_credential as { id: string };
  const adminBase = `/v3/users/${t.adminUserId}/application_credentials`;
  assert.equal((await call('GET', adminBase, t.memberToken)).status, 403);
  assert.equal((await call('GET', `${adminBase}/${adminCred.id}`, t.memberToken)).status, 403);
  assert.equal((await call('GET', `${base()}/${adminCred.id}`, t.memberToken)).status, 403);
  assert.equal((await call('DELETE', `${base()}/${adminCred.id}`, t.memberToken)).status, 403);
  assert.equal((await call('GET', `${adminBase}/${adminCred.id}`, t.adminToken)).status, 200);
  // The admin reads the member's credentials (Keystone's default policy).
  assert.equal((await call('GET', `${base()}/${one.id}`, t.adminToken)).status, 200);
  assert.equal((await call('GET', `${adminBase}/${one.id}`, t.adminToken)).status, 404);
  assert.equal((await call('DELETE', `${adminBase}/${adminCred.id}`, t.adminToken)).status, 204);
  await remove(one.id);
  await remove(two.id);
});

test('a restricted credential token may not create or delete credentials; an unrestricted one may create', async () => {
  const restricted = await create({ name: 'restricted' });
  const unrestricted = await create({ name: 'unrestricted', unrestricted: true });
  assert.equal(unrestricted.unrestricted, true);
  const rToken = (await authenticate({ id: restricted.id, secret: restricted.secret })).subject;
  const uToken = (await authenticate({ id: unrestricted.id, secret: unrestricted.secret })).subject;

  assert.equal((await call('POST', base(), rToken, { application_credential: { name: 'child' } })).status, 403);
  assert.equal((await call('DELETE', `${base()}/${unrestricted.id}`, rToken)).status, 403);
  assert.equal((await call('GET', base(), rToken)).status, 200);

  const child = await call('POST', base(), uToken, { application_credential: { name: 'child' } });
  assert.equal(child.status, 201);
  assert.equal(child.body.application_credential.project_id, t.memberProjectId);
  await remove(child.body.application_credential.id as string);
  await remove(restricted.id);
  await remove(unrestricted.id);
});

test('access rules: none, and none may be had', async () => {
  const res = await call('GET', `/v3/users/${t.memberUserId}/access_rules`, t.memberToken);
  assert.equal(res.status, 200);
  assert.deepEqual(res.body.access_rules, []);
  assert.equal((await call('GET', `/v3/users/${t.adminUserId}/access_rules`, t.memberToken)).status, 403);
  assert.equal((await call('GET', `/v3/users/${t.memberUserId}/access_rules/abc`, t.memberToken)).status, 404);
});
