import { createHash } from 'node:crypto';
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createTestIdentity, type InjectMethod, type TestIdentity, type TestReply } from '../testing.js';

let t: TestIdentity;

before(async () => {
  t = await createTestIdentity();
});

after(async () => {
  await t.close();
});

function call(method: InjectMethod, url: string, token: string, payload?: unknown): Promise<TestReply> {
  return t.request(method, url, { token, payload });
}

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

async function createCredential(token: string, credential: Record<string, unknown>): Promise<Record<string, any>> {
  const res = await call('POST', '/v3/credentials', token, { credential });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body.credential as Record<string, any>;
}

test('credentials: create, show, list, update and delete', async () => {
  const cred = await createCredential(t.adminToken, { user_id: t.adminUserId, type: 'cert', blob: 'certificate-one', comment: 'kept' });
  assert.match(cred.id, /^[0-9a-f]{32}$/);
  assert.equal(cred.user_id, t.adminUserId);
  assert.equal(cred.type, 'cert');
  assert.equal(cred.blob, 'certificate-one');
  assert.equal(cred.project_id, null);
  assert.equal(cred.comment, 'kept');
  assert.equal(cred.links.self, `http://identity.test:5000/v3/credentials/${cred.id}`);

  const shown = await call('GET', `/v3/credentials/${cred.id}`, t.adminToken);
  assert.equal(shown.status, 200);
  assert.deepEqual(shown.body.credential, cred);

  const list = await call('GET', '/v3/credentials', t.adminToken);
  assert.equal(list.status, 200);
  assert.ok(list.body.credentials.some((c: { id: string }) => c.id === cred.id), 'the new credential is listed');
  assert.equal(list.body.links.self, 'http://identity.test:5000/v3/credentials');

  const updated = await call('PATCH', `/v3/credentials/${cred.id}`, t.adminToken, { credential: { blob: 'certificate-two', project_id: t.adminProjectId } });
  assert.equal(updated.status, 200);
  assert.equal(updated.body.credential.blob, 'certificate-two');
  assert.equal(updated.body.credential.project_id, t.adminProjectId);
  assert.equal(updated.body.credential.type, 'cert');
  assert.equal(updated.body.credential.comment, 'kept');
  const again = await call('GET', `/v3/credentials/${cred.id}`, t.adminToken);
  assert.equal(again.body.credential.blob, 'certificate-two');
  assert.equal(again.body.credential.project_id, t.adminProjectId);

  assert.equal((await call('DELETE', `/v3/credentials/${cred.id}`, t.adminToken)).status, 204);
  const gone = await call('GET', `/v3/credentials/${cred.id}`, t.adminToken);
  assert.equal(gone.status, 404);
  assert.equal(gone.body.error.code, 404);
  assert.equal((await call('DELETE', `/v3/credentials/${cred.id}`, t.adminToken)).status, 404);
  assert.equal((await call('PATCH', `/v3/credentials/${cred.id}`, t.adminToken, { credential: { blob: 'x' } })).status, 404);
});

test('credentials: list filters by user_id and type', async () => {
  const a = await createCredential(t.adminToken, { user_id: t.adminUserId, type: 'totp', blob: 'seed-a' });
  const b = await createCredential(t.adminToken, { user_id: t.memberUserId, type: 'totp', blob: 'seed-b' });
  const c = await createCredential(t.adminToken, { user_id: t.memberUserId, type: 'cert', blob: 'cert-c' });
  const ids = async (query: string): Promise<string[]> => {
    const res = await call('GET', `/v3/credentials${query}`, t.adminToken);
    assert.equal(res.status, 200);
    return (res.body.credentials as { id: string }[]).map((x) => x.id);
  };
  const byMember = await ids(`?user_id=${t.memberUserId}`);
  assert.ok(byMember.includes(b.id) && byMember.includes(c.id) && !byMember.includes(a.id), 'user_id filters');
  const totp = await ids('?type=totp');
  assert.ok(totp.includes(a.id) && totp.includes(b.id) && !totp.includes(c.id), 'type filters');
  assert.deepEqual(await ids(`?user_id=${t.memberUserId}&type=cert`), [c.id]);
  for (const x of [a, b, c]) assert.equal((await call('DELETE', `/v3/credentials/${x.id}`, t.adminToken)).status, 204);
});

test('credentials: an ec2 credential is keyed by its access key and needs a project', async () => {
  const blob = JSON.stringify({ access: 'access-one', secret: 'secret-one' });
  const missing = await call('POST', '/v3/credentials', t.adminToken, { credential: { user_id: t.adminUserId, type: 'ec2', blob } });
  assert.equal(missing.status, 400);
  const noAccess = await call('POST', '/v3/credentials', t.adminToken, { credential: { user_id: t.adminUserId, type: 'ec2', project_id: t.adminProjectId, blob: '{"secret": "s"}' } });
  assert.equal(noAccess.status, 400);
  const notJson = await call('POST', '/v3/credentials', t.adminToken, { credential: { user_id: t.adminUserId, type: 'ec2', project_id: t.adminProjectId, blob: 'not json' } });
  assert.equal(notJson.status, 400);

  const cred = await createCredential(t.adminToken, { user_id: t.adminUserId, type: 'ec2', project_id: t.adminProjectId, blob });
  assert.equal(cred.id, sha256('access-one'));
  assert.deepEqual(JSON.parse(cred.blob as string), { access: 'access-one', secret: 'secret-one' });
  const dup = await call('POST', '/v3/credentials', t.adminToken, { credential: { user_id: t.adminUserId, type: 'ec2', project_id: t.adminProjectId, blob } });
  assert.equal(dup.status, 409);

  // Tempest's update: new blob, another project, type again.
  const newBlob = JSON.stringify({ access: 'access-two', secret: 'secret-two' });
  const updated = await call('PATCH', `/v3/credentials/${cred.id}`, t.adminToken, { credential: { blob: newBlob, project_id: t.memberProjectId, type: 'ec2' } });
  assert.equal(updated.status, 200, JSON.stringify(updated.body));
  assert.equal(updated.body.credential.id, cred.id);
  assert.equal(updated.body.credential.project_id, t.memberProjectId);
  assert.equal(updated.body.credential.user_id, t.adminUserId);
  assert.deepEqual(JSON.parse(updated.body.credential.blob as string), { access: 'access-two', secret: 'secret-two' });
  const badUpdate = await call('PATCH', `/v3/credentials/${cred.id}`, t.adminToken, { credential: { blob: '{"secret": "no access"}' } });
  assert.equal(badUpdate.status, 400);
  assert.equal((await call('DELETE', `/v3/credentials/${cred.id}`, t.adminToken)).status, 204);
});

test('credentials: bad input is refused with 400', async () => {
  const cases: unknown[] = [
    {},
    { credential: { type: 'cert', blob: 'x' } },
    { credential: { user_id: t.adminUserId, blob: 'x' } },
    { credential: { user_id: t.adminUserId, type: 'cert' } },
    { credential: { user_id: t.adminUserId, type: 'cert', blob: { not: 'a string' } } },
    { credential: { user_id: t.adminUserId, type: 'cert', blob: 'x', project_id: 7 } },
  ];
  for (const payload of cases) {
    const res = await call('POST', '/v3/credentials', t.adminToken, payload);
    assert.equal(res.status, 400, JSON.stringify(payload));
    assert.equal(res.body.error.code, 400);
  }
  const cred = await createCredential(t.adminToken, { user_id: t.adminUserId, type: 'cert', blob: 'x' });
  assert.equal((await call('PATCH', `/v3/credentials/${cred.id}`, t.adminToken, { credential: {} })).status, 400);
  assert.equal((await call('PATCH', `/v3/credentials/${cred.id}`, t.adminToken, { credential: { id: 'another' } })).status, 400);
  assert.equal((await call('DELETE', `/v3/credentials/${cred.id}`, t.adminToken)).status, 204);
});

test('credentials: a member sees and manages only their own', async () => {
  const adminCred = await createCredential(t.adminToken, { user_id: t.adminUserId, type: 'cert', blob: 'admin-secret-blob' });
  const own = await createCredential(t.memberToken, { user_id: t.memberUserId, type: 'cert', blob: 'member-blob' });
  assert.equal(own.user_id, t.memberUserId);

  const list = await call('GET', '/v3/credentials', t.memberToken);
  assert.equal(list.status, 200);
  const ids = (list.body.credentials as { id: string; user_id: string }[]).map((c) => c.id);
  assert.ok(ids.includes(own.id), 'the member sees their own credential');
  assert.ok(!ids.includes(adminCred.id), "the member does not see the admin's credential");
  assert.ok((list.body.credentials as { user_id: string }[]).every((c) => c.user_id === t.memberUserId), 'the member sees only their own');
  const filtered = await call('GET', `/v3/credentials?user_id=${t.adminUserId}`, t.memberToken);
  assert.deepEqual(filtered.body.credentials, []);

  assert.equal((await call('GET', `/v3/credentials/${adminCred.id}`, t.memberToken)).status, 403);
  assert.equal((await call('PATCH', `/v3/credentials/${adminCred.id}`, t.memberToken, { credential: { blob: 'mine now' } })).status, 403);
  assert.equal((await call('DELETE', `/v3/credentials/${adminCred.id}`, t.memberToken)).status, 403);
  const forOther = await call('POST', '/v3/credentials', t.memberToken, { credential: { user_id: t.adminUserId, type: 'cert', blob: 'x' } });
  assert.equal(forOther.status, 403);
  const giveAway = await call('PATCH', `/v3/credentials/${own.id}`, t.memberToken, { credential: { user_id: t.adminUserId } });
  assert.equal(giveAway.status, 403);
  assert.equal((await call('GET', `/v3/credentials/${adminCred.id}`, t.adminToken)).body.credential.blob, 'admin-secret-blob');

  assert.equal((await call('PATCH', `/v3/credentials/${own.id}`, t.memberToken, { credential: { blob: 'member-blob-2' } })).status, 200);
  assert.equal((await call('DELETE', `/v3/credentials/${own.id}`, t.memberToken)).status, 204);
  assert.equal((await call('DELETE', `/v3/credentials/${adminCred.id}`, t.adminToken)).status, 204);
});

test('OS-EC2: create, list, show and delete; the credential is also in /v3/credentials', async () => {
  const base = `/v3/users/${t.memberUserId}/credentials/OS-EC2`;
  const created = await call('POST', base, t.memberToken, { tenant_id: t.memberProjectId });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const ec2 = created.body.credential as Record<string, any>;
  assert.deepEqual(Object.keys(ec2).sort(), ['access', 'links', 'secret', 'tenant_id', 'trust_id', 'user_id']);
  assert.equal(ec2.user_id, t.memberUserId);
  assert.equal(ec2.tenant_id, t.memberProjectId);
  assert.equal(ec2.trust_id, null);
  assert.match(ec2.access, /^[0-9a-f]{32}$/);
  assert.match(ec2.secret, /^[0-9a-f]{32}$/);
  assert.equal(ec2.links.self, `http://identity.test:5000${base}/${ec2.access}`);

  const second = (await call('POST', base, t.memberToken, { tenant_id: t.memberProjectId })).body.credential as Record<string, any>;
  const list = await call('GET', base, t.memberToken);
  assert.equal(list.status, 200);
  const accesses = (list.body.credentials as { access: string }[]).map((c) => c.access);
  assert.ok(accesses.includes(ec2.access) && accesses.includes(second.access), 'both EC2 credentials are listed');

  const shown = await call('GET', `${base}/${ec2.access}`, t.memberToken);
  assert.equal(shown.status, 200);
  assert.deepEqual(shown.body.credential, ec2);

  for (const token of [t.memberToken, t.adminToken]) {
    const all = await call('GET', '/v3/credentials?type=ec2', token);
    const generic = (all.body.credentials as Record<string, any>[]).find((c) => c.id === sha256(ec2.access as string));
    assert.ok(generic, 'the EC2 credential is listed in /v3/credentials');
    assert.equal(generic.type, 'ec2');
    assert.equal(generic.user_id, t.memberUserId);
    assert.equal(generic.project_id, t.memberProjectId);
    assert.deepEqual(JSON.parse(generic.blob as string), { access: ec2.access, secret: ec2.secret, trust_id: null });
  }

  assert.equal((await call('DELETE', `${base}/${ec2.access}`, t.memberToken)).status, 204);
  assert.equal((await call('GET', `${base}/${ec2.access}`, t.memberToken)).status, 404);
  assert.equal((await call('GET', `/v3/credentials/${sha256(ec2.access as string)}`, t.adminToken)).status, 404);
  assert.equal((await call('DELETE', `${base}/${ec2.access}`, t.memberToken)).status, 404);
  assert.equal((await call('DELETE', `${base}/${second.access}`, t.adminToken)).status, 204);
});

test('OS-EC2: bad input and other users', async () => {
  const base = `/v3/users/${t.memberUserId}/credentials/OS-EC2`;
  assert.equal((await call('POST', base, t.memberToken, {})).status, 400);
  assert.equal((await call('POST', base, t.memberToken, { tenant_id: 'no-such-project' })).status, 404);
  assert.equal((await call('POST', '/v3/users/no-such-user/credentials/OS-EC2', t.adminToken, { tenant_id: t.adminProjectId })).status, 404);

  const adminBase = `/v3/users/${t.adminUserId}/credentials/OS-EC2`;
  const adminEc2 = (await call('POST', adminBase, t.adminToken, { tenant_id: t.adminProjectId })).body.credential as Record<string, any>;
  assert.equal((await call('POST', adminBase, t.memberToken, { tenant_id: t.memberProjectId })).status, 403);
  assert.equal((await call('GET', adminBase, t.memberToken)).status, 403);
  assert.equal((await call('GET', `${adminBase}/${adminEc2.access}`, t.memberToken)).status, 403);
  assert.equal((await call('DELETE', `${adminBase}/${adminEc2.access}`, t.memberToken)).status, 403);
  // Naming yourself in the URL does not reach another user's key.
  assert.equal((await call('GET', `${base}/${adminEc2.access}`, t.memberToken)).status, 403);
  assert.equal((await call('GET', `${base}/${adminEc2.access}`, t.adminToken)).status, 404);
  assert.equal((await call('GET', `${adminBase}/${adminEc2.access}`, t.adminToken)).status, 200);
  assert.equal((await call('DELETE', `${adminBase}/${adminEc2.access}`, t.adminToken)).status, 204);
});

test('credentials: a token from a restricted application credential cannot make EC2 credentials and sees only its project', async () => {
  const made = await call('POST', `/v3/users/${t.memberUserId}/application_credentials`, t.memberToken, { application_credential: { name: 'ec2-restricted' } });
  assert.equal(made.status, 201);
  const { id, secret } = made.body.application_credential as { id: string; secret: string };
  const auth = await t.app.inject({
    method: 'POST',
    url: '/v3/auth/tokens',
    payload: { auth: { identity: { methods: ['application_credential'], application_credential: { id, secret } } } },
  });
  assert.equal(auth.statusCode, 201);
  const appToken = String(auth.headers['x-subject-token']);

  const ec2 = await call('POST', `/v3/users/${t.memberUserId}/credentials/OS-EC2`, appToken, { tenant_id: t.memberProjectId });
  assert.equal(ec2.status, 403);
  const generic = await call('POST', '/v3/credentials', appToken, {
    credential: { user_id: t.memberUserId, type: 'ec2', project_id: t.memberProjectId, blob: JSON.stringify({ access: 'app-a', secret: 's' }) },
  });
  assert.equal(generic.status, 403);

  const userLevel = await createCredential(t.memberToken, { user_id: t.memberUserId, type: 'totp', blob: 'seed' });
  const inProject = await createCredential(t.memberToken, { user_id: t.memberUserId, type: 'cert', blob: 'c', project_id: t.memberProjectId });
  const seen = ((await call('GET', '/v3/credentials', appToken)).body.credentials as { id: string }[]).map((c) => c.id);
  assert.ok(seen.includes(inProject.id), "the token sees its project's credential");
  assert.ok(!seen.includes(userLevel.id), 'the token does not see a credential without a project');
  assert.equal((await call('GET', `/v3/credentials/${userLevel.id}`, appToken)).status, 403);
  assert.equal((await call('GET', `/v3/credentials/${userLevel.id}`, t.memberToken)).status, 200);
  for (const c of [userLevel, inProject]) assert.equal((await call('DELETE', `/v3/credentials/${c.id}`, t.memberToken)).status, 204);
  assert.equal((await call('DELETE', `/v3/users/${t.memberUserId}/application_credentials/${id}`, t.memberToken)).status, 204);
});
