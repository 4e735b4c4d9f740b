import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createTestIdentity, type InjectMethod, type TestIdentity, type TestReply } from '../testing.js';

const CUSTOM = { identity: { driver: 'ldap' }, ldap: { url: 'ldap://myldap.com:389/', user_tree_dn: 'ou=Users,dc=my_new_root,dc=org' } };
let t: TestIdentity;

before(async () => {
  t = await createTestIdentity();
});

after(async () => {
  await t.close();
});

function call(method: InjectMethod, url: string, payload?: unknown, token = t.adminToken): Promise<TestReply> {
  return t.request(method, url, { token, payload });
}

async function newDomain(): Promise<string> {
  const res = await call('POST', '/v3/domains', { domain: { name: `d-${Math.random().toString(36).slice(2)}` } });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body.domain.id as string;
}

test('default configuration: all of it, a group, an option', async () => {
  const all = await call('GET', '/v3/domains/config/default');
  assert.equal(all.status, 200);
  assert.deepEqual(Object.keys(all.body.config).sort(), ['identity', 'ldap']);
  assert.deepEqual(all.body.config.identity, { driver: 'sql', list_limit: null });
  assert.equal(all.body.config.ldap.url, 'ldap://localhost');
  assert.equal('password' in all.body.config.ldap, false);
  assert.deepEqual((await call('GET', '/v3/domains/config/identity/default')).body.config, { identity: { driver: 'sql', list_limit: null } });
  assert.deepEqual((await call('GET', '/v3/domains/config/identity/driver/default')).body.config, { driver: 'sql' });
  assert.deepEqual((await call('GET', '/v3/domains/config/ldap/user_tree_dn/default')).body.config, { user_tree_dn: null });
  assert.equal((await call('GET', '/v3/domains/config/ldap/password/default')).status, 403);
  assert.equal((await call('GET', '/v3/domains/config/nova/default')).status, 403);
  assert.equal((await call('GET', '/v3/domains/config/identity/nonsense/default')).status, 403);
  assert.equal((await call('GET', '/v3/domains/config/default', undefined, t.memberToken)).status, 403);
});

test('a domain configuration: create (201 then 200), show by group and option, update, delete', async () => {
  const domain = await newDomain();
  const base = `/v3/domains/${domain}/config`;
  assert.equal((await call('GET', base)).status, 404);
  const created = await call('PUT', base, { config: CUSTOM });
  assert.equal(created.status, 201);
  assert.deepEqual(created.body.config, CUSTOM);
  assert.deepEqual((await call('GET', base)).body.config, CUSTOM);
  assert.deepEqual((await call('GET', `${base}/ldap`)).body.config, { ldap: CUSTOM.ldap });
  assert.deepEqual((await call('GET', `${base}/ldap/url`)).body.config, { url: CUSTOM.ldap.url });
  assert.equal((await call('HEAD', `${base}/identity`)).status, 200);

  const replaced = await call('PUT', base, { config: { identity: { driver: 'sql' } } });
  assert.equal(replaced.status, 200);
  assert.deepEqual(replaced.body.config, { identity: { driver: 'sql' } });
  assert.equal((await call('GET', `${base}/ldap`)).status, 404);
  await call('PUT', base, { config: CUSTOM });

  const patched = await call('PATCH', base, { config: { ldap: { url: 'ldap://other/' } } });
  assert.equal(patched.status, 200);
  assert.deepEqual(patched.body.config, { ...CUSTOM, ldap: { ...CUSTOM.ldap, url: 'ldap://other/' } });
  assert.deepEqual((await call('GET', base)).body.config, patched.body.config);

  const group = await call('PATCH', `${base}/identity`, { config: { identity: { driver: 'd2', list_limit: 42 } } });
  assert.equal(group.status, 200);
  assert.deepEqual(group.body.config.identity, { driver: 'd2', list_limit: 42 });
  const option = await call('PATCH', `${base}/identity/driver`, { config: { driver: 'd3' } });
  assert.equal(option.status, 200);
  assert.equal(option.body.config.identity.driver, 'd3');
  assert.equal(option.body.config.identity.list_limit, 42);

  assert.equal((await call('DELETE', `${base}/identity/driver`)).status, 204);
  assert.equal((await call('GET', `${base}/identity/driver`)).status, 404);
  assert.equal((await call('DELETE', `${base}/identity/driver`)).status, 404);
  assert.equal((await call('DELETE', `${base}/identity`)).status, 204);
  assert.equal((await call('GET', `${base}/identity`)).status, 404);
  assert.equal((await call('DELETE', base)).status, 204);
  assert.equal((await call('GET', base)).status, 404);
});

test('the LDAP password is stored but never shown', async () => {
  const domain = await newDomain();
  const base = `/v3/domains/${domain}/config`;
  const created = await call('PUT', base, { config: { ldap: { url: 'ldap://x/', password: 's3cret' } } });
  assert.equal(created.status, 201);
  assert.deepEqual(created.body.config, { ldap: { url: 'ldap://x/' } });
  assert.deepEqual((await call('GET', `${base}/ldap`)).body.config, { ldap: { url: 'ldap://x/' } });
  assert.equal((await call('GET', `${base}/ldap/password`)).status, 404);
  const row = await t.identity.db.selectFrom('domain_config').selectAll().where('domain_id', '=', domain).where('option', '=', 'password').executeTakeFirstOrThrow();
  assert.equal(row.sensitive, 1);
  const patched = await call('PATCH', `${base}/ldap/password`, { config: { password: 'new' } });
  assert.equal(patched.status, 200);
  assert.equal(JSON.stringify(patched.body).includes('new'), false);
  assert.equal((await call('DELETE', `${base}/ldap/password`)).status, 204);
  assert.equal((await call('DELETE', `${base}/ldap/password`)).status, 404);
});

test('domain configuration: unsupported groups and options are 403, unknown domains and unset parts 404', async () => {
  const domain = await newDomain();
  const base = `/v3/domains/${domain}/config`;
  assert.equal((await call('PUT', base, { config: { nova: { x: 1 } } })).status, 403);
  assert.equal((await call('PUT', base, { config: { ldap: { not_an_option: 1 } } })).status, 403);
  assert.equal((await call('PUT', base, { config: {} })).status, 403);
  assert.equal((await call('PUT', base, { config: { ldap: {} } })).status, 403);
  assert.equal((await call('PUT', base, { config: 'ldap' })).status, 400);
  assert.equal((await call('GET', `${base}/nova`)).status, 403);
  assert.equal((await call('GET', base)).status, 404);
  assert.equal((await call('PUT', '/v3/domains/no-such-domain/config', { config: CUSTOM })).status, 404);
  assert.equal((await call('GET', '/v3/domains/no-such-domain/config')).status, 404);
  assert.equal((await call('PATCH', '/v3/domains/no-such-domain/config', { config: CUSTOM })).status, 404);
  assert.equal((await call('DELETE', '/v3/domains/no-such-domain/config')).status, 404);
  assert.equal((await call('PUT', `/v3/domains/${t.memberProjectId}/config`, { config: CUSTOM })).status, 404);

  await call('PUT', base, { config: { identity: { driver: 'ldap' } } });
  assert.equal((await call('PATCH', `${base}/ldap`, { config: { ldap: { url: 'ldap://y/' } } })).status, 404);
  assert.equal((await call('PATCH', `${base}/identity`, { config: { identity: { driver: 'a' }, ldap: { url: 'ldap://y/' } } })).status, 403);
  assert.equal((await call('PATCH', `${base}/identity`, { config: { ldap: { url: 'ldap://y/' } } })).status, 403);
  assert.equal((await call('PATCH', `${base}/identity/driver`, { config: { driver: 'a', list_limit: 3 } })).status, 403);
  assert.equal((await call('DELETE', `${base}/ldap`)).status, 404);
  assert.deepEqual((await call('GET', base)).body.config, { identity: { driver: 'ldap' } });
});

test('domain configuration is refused to a member (403)', async () => {
  const domain = await newDomain();
  const base = `/v3/domains/${domain}/config`;
  const m = t.memberToken;
  assert.equal((await call('PUT', base, { config: CUSTOM }, m)).status, 403);
  await call('PUT', base, { config: CUSTOM });
  assert.equal((await call('GET', base, undefined, m)).status, 403);
  assert.equal((await call('PATCH', base, { config: { identity: { driver: 'x' } } }, m)).status, 403);
  assert.equal((await call('DELETE', base, undefined, m)).status, 403);
  assert.deepEqual((await call('GET', base)).body.config, CUSTOM);
});
