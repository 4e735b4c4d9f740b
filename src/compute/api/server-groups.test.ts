import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { addMember, checkGroupMembersQuota, groupMembers, loadGroupFor } from '../server-groups.js';
import { createTestCompute, expectComputeError, type TestCompute } from '../testing.js';
import { insertServer } from './server-fixtures.test-util.js';

let t: TestCompute;
before(async () => {
  t = await createTestCompute();
});
after(async () => {
  await t.close();
});

async function create(body: Record<string, unknown>, version?: string, user = t.alpha) {
  return t.request('POST', '/os-server-groups', { user, payload: { server_group: body }, ...(version ? { version } : {}) });
}

test('create and show before 2.13: policies, empty metadata, no project or user', async () => {
  const res = await create({ name: 'web', policies: ['affinity'] });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  const group = res.body.server_group;
  assert.deepEqual(Object.keys(group).sort(), ['id', 'members', 'metadata', 'name', 'policies'], 'keys of the 2.1 view');
  assert.deepEqual(group.policies, ['affinity'], 'policies');
  assert.deepEqual(group.metadata, {}, 'metadata');
  assert.deepEqual(group.members, [], 'members');
  const show = await t.request('GET', `/os-server-groups/${group.id}`, { user: t.alpha });
  assert.equal(show.status, 200, JSON.stringify(show.body));
  assert.deepEqual(show.body.server_group, group, 'show equals what create answered');
});

test('2.13 adds project_id and user_id; 2.64 shows policy and rules instead of policies and metadata', async () => {
  const v213 = await create({ name: 'g213', policies: ['anti-affinity'] }, '2.13');
  assert.equal(v213.body.server_group.project_id, t.alpha.projectId, 'project_id');
  assert.equal(v213.body.server_group.user_id, t.alpha.userId, 'user_id');
  const v264 = await create({ name: 'g264', policy: 'anti-affinity', rules: { max_server_per_host: '3' } }, '2.64');
  assert.equal(v264.status, 200, JSON.stringify(v264.body));
  assert.deepEqual(Object.keys(v264.body.server_group).sort(), ['id', 'members', 'name', 'policy', 'project_id', 'rules', 'user_id'], 'keys of the 2.64 view');
  assert.deepEqual(v264.body.server_group.rules, { max_server_per_host: 3 }, 'rules as an integer');
  const old = await t.request('GET', `/os-server-groups/${v264.body.server_group.id}`, { user: t.alpha, version: '2.63' });
  assert.deepEqual(old.body.server_group.policies, ['anti-affinity'], 'the same group before 2.64');
  const rulesLess = await t.request('GET', `/os-server-groups/${v213.body.server_group.id}`, { user: t.alpha, version: '2.64' });
  assert.deepEqual(rulesLess.body.server_group.rules, {}, 'a group without rules shows {}');
});

test('the soft policies come with 2.15; the body follows the microversion', async () => {
  expectComputeError(await create({ name: 'soft', policies: ['soft-affinity'] }, '2.14'), 400, "Invalid input for field/attribute 0. Value: soft-affinity. 'soft-affinity' is not one of ['anti-affinity', 'affinity']");
  const ok = await create({ name: 'soft', policies: ['soft-affinity'] }, '2.15');
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  expectComputeError(await create({ name: 'x', policy: 'affinity' }, '2.63'), 400, /'policies' is a required property/);
  expectComputeError(await create({ name: 'x', policies: ['affinity'] }, '2.64'), 400, /'policy' is a required property/);
  expectComputeError(await create({ name: 'x', policies: ['affinity', 'anti-affinity'] }), 400, /Additional items are not allowed/);
  expectComputeError(await create({ name: 'x', policies: [] }), 400, /\[\] is too short/);
  expectComputeError(await create({ name: 'x', policy: 'spread' }, '2.64'), 400, /'spread' is not one of/);
  expectComputeError(await create({ name: 'x', policies: ['affinity'], color: 'red' }), 400, /Additional properties are not allowed \('color' was unexpected\)/);
  expectComputeError(await t.request('POST', '/os-server-groups', { user: t.alpha, payload: { name: 'x' } }), 400, /'server_group' is a required property/);
});

test('names: 1..255 printable characters without surrounding spaces; not unique', async () => {
  expectComputeError(await create({ name: '', policies: ['affinity'] }), 400, /'' is too short/);
  expectComputeError(await create({ name: 'a'.repeat(256), policies: ['affinity'] }), 400, /is too long/);
  expectComputeError(await create({ name: ' padded', policies: ['affinity'] }), 400, "An invalid 'name' value was provided. The name must be: printable characters. Can not start or end with whitespace.");
  expectComputeError(await create({ name: 5, policies: ['affinity'] }), 400, /5 is not of type 'string'/);
  const a = await create({ name: 'twin', policies: ['affinity'] });
  const b = await create({ name: 'twin', policies: ['affinity'] });
  assert.equal(b.status, 200, 'a second group may have the same name');
  assert.notEqual(a.body.server_group.id, b.body.server_group.id, 'different ids');
});

test('rules: only anti-affinity has them, max_server_per_host is a positive integer', async () => {
  expectComputeError(await create({ name: 'r', policy: 'affinity', rules: { max_server_per_host: 2 } }, '2.64'), 400, 'Only anti-affinity policy supports rules.');
  expectComputeError(await create({ name: 'r', policy: 'anti-affinity', rules: { max_server_per_host: 0 } }, '2.64'), 400, /0 is less than the minimum of 1/);
  expectComputeError(await create({ name: 'r', policy: 'anti-affinity', rules: { max_server_per_host: 'two' } }, '2.64'), 400, /does not match/);
  expectComputeError(await create({ name: 'r', policy: 'anti-affinity', rules: { other: 1 } }, '2.64'), 400, /'other' was unexpected/);
  const empty = await create({ name: 'r', policy: 'affinity', rules: {} }, '2.64');
  assert.equal(empty.status, 200, 'empty rules are fine with any policy');
});

test('list: own project only; all_projects for admins; limit and offset; unknown parameters from 2.75', async () => {
  const betaGroup = await create({ name: 'beta-only', policies: ['affinity'] }, undefined, t.beta);
  const own = await t.request('GET', '/os-server-groups', { user: t.alpha });
  assert.equal(own.status, 200, JSON.stringify(own.body));
  assert.ok(own.body.server_groups.length > 0, 'alpha sees its groups');
  assert.ok(!own.body.server_groups.some((g: { id: string }) => g.id === betaGroup.body.server_group.id), "alpha does not see beta's group");
  const ignored = await t.request('GET', '/os-server-groups?all_projects=True', { user: t.alpha });
  assert.equal(ignored.body.server_groups.length, own.body.server_groups.length, "a member's all_projects is ignored");
  const all = await t.request('GET', '/os-server-groups?all_projects=True', { user: t.admin });
  assert.ok(all.body.server_groups.some((g: { id: string }) => g.id === betaGroup.body.server_group.id), 'the admin sees every project');
  const page = await t.request('GET', '/os-server-groups?limit=2&offset=1', { user: t.alpha });
  assert.deepEqual(
    page.body.server_groups.map((g: { id: string }) => g.id),
    own.body.server_groups.slice(1, 3).map((g: { id: string }) => g.id),
    'offset 1, limit 2',
  );
  expectComputeError(await t.request('GET', '/os-server-groups?limit=-1', { user: t.alpha }), 400, /Invalid input for query parameters limit/);
  const lax = await t.request('GET', '/os-server-groups?color=red', { user: t.alpha, version: '2.74' });
  assert.equal(lax.status, 200, 'unknown parameters are ignored before 2.75');
  expectComputeError(await t.request('GET', '/os-server-groups?color=red', { user: t.alpha, version: '2.75' }), 400, /'color' was unexpected/);
});

test("show and delete: 404 for a missing group, the policy's 403 for another project's", async () => {
  const missing = '5bbcc3c4-1da2-4437-a48a-66f15b1b13f9';
  expectComputeError(await t.request('GET', `/os-server-groups/${missing}`, { user: t.alpha }), 404, `Instance group ${missing} could not be found.`);
  expectComputeError(await t.request('DELETE', `/os-server-groups/${missing}`, { user: t.alpha }), 404, /could not be found/);
  const group = (await create({ name: 'mine', policies: ['affinity'] })).body.server_group;
  expectComputeError(await t.request('GET', `/os-server-groups/${group.id}`, { user: t.beta }), 403, /Policy doesn't allow os_compute_api:os-server-groups:show/);
  expectComputeError(await t.request('DELETE', `/os-server-groups/${group.id}`, { user: t.alphaReader }), 403, /os-server-groups:delete/);
  const asAdmin = await t.request('GET', `/os-server-groups/${group.id}`, { user: t.admin });
  assert.equal(asAdmin.status, 200, 'an admin sees any group');
  const del = await t.request('DELETE', `/os-server-groups/${group.id}`, { user: t.alpha });
  assert.equal(del.status, 204, JSON.stringify(del.body));
  expectComputeError(await t.request('GET', `/os-server-groups/${group.id}`, { user: t.alpha }), 404, /could not be found/);
});

test('a reader cannot create', async () => {
  expectComputeError(await create({ name: 'ro', policies: ['affinity'] }, undefined, t.alphaReader), 403, /os-server-groups:create/);
});

test('members: servers added and not deleted, in the order they were made', async () => {
  const group = (await create({ name: 'members', policies: ['anti-affinity'] })).body.server_group;
  const first = await insertServer(t.compute.db, t.alpha, { created_at: '2026-01-01T00:00:00.000Z' });
  const second = await insertServer(t.compute.db, t.alpha, { created_at: '2026-01-02T00:00:00.000Z' });
  const gone = await insertServer(t.compute.db, t.alpha, { deleted: 1, vm_state: 'deleted' });
  await addMember(t.compute.db, group.id, second.uuid);
  await addMember(t.compute.db, group.id, first.uuid);
  await addMember(t.compute.db, group.id, first.uuid);
  await addMember(t.compute.db, group.id, gone.uuid);
  assert.deepEqual(await groupMembers(t.compute.db, group.id), [first.uuid, second.uuid], 'groupMembers');
  const show = await t.request('GET', `/os-server-groups/${group.id}`, { user: t.alpha });
  assert.deepEqual(show.body.server_group.members, [first.uuid, second.uuid], 'members in the view');
  const list = await t.request('GET', '/os-server-groups', { user: t.alpha });
  const listed = list.body.server_groups.find((g: { id: string }) => g.id === group.id);
  assert.deepEqual(listed?.members, [first.uuid, second.uuid], 'members in the list');
});

test('loadGroupFor and the server_group_members quota, for server create', async () => {
  const group = (await create({ name: 'quota-members', policies: ['affinity'] })).body.server_group;
  const ctx = { projectId: t.beta.projectId, userId: t.beta.userId } as Parameters<typeof loadGroupFor>[1];
  await assert.rejects(loadGroupFor(t.compute, ctx, group.id), /os-server-groups:show/, 'the policy refuses another project');
  const loaded = await loadGroupFor(t.compute, ctx, group.id, null);
  assert.equal(loaded.uuid, group.id, 'without a rule, any group loads');
  await t.compute.db.insertInto('quota').values({ project_id: t.alpha.projectId, user_id: '', resource: 'server_group_members', hard_limit: 1 }).execute();
  await checkGroupMembersQuota(t.compute, t.compute.db, t.alpha.projectId, t.alpha.userId, group.id, 1);
  const server = await insertServer(t.compute.db, t.alpha);
  await addMember(t.compute.db, group.id, server.uuid);
  await assert.rejects(checkGroupMembersQuota(t.compute, t.compute.db, t.alpha.projectId, t.alpha.userId, group.id, 1), /Quota exceeded, too many servers in group/, 'the second member is over the limit');
  await t.compute.db.deleteFrom('quota').where('project_id', '=', t.alpha.projectId).execute();
});

test('the server_groups quota: 403 once the project has as many as its limit', async () => {
  const fresh = await t.request('GET', '/os-server-groups', { user: t.beta });
  const used = fresh.body.server_groups.length;
  await t.compute.db.insertInto('quota').values({ project_id: t.beta.projectId, user_id: '', resource: 'server_groups', hard_limit: used + 1 }).execute();
  const ok = await create({ name: 'last', policies: ['affinity'] }, undefined, t.beta);
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  expectComputeError(await create({ name: 'one-too-many', policies: ['affinity'] }, undefined, t.beta), 403, 'Quota exceeded, too many server groups.');
  await t.request('DELETE', `/os-server-groups/${ok.body.server_group.id}`, { user: t.beta });
  const again = await create({ name: 'room-again', policies: ['affinity'] }, undefined, t.beta);
  assert.equal(again.status, 200, 'a deleted group frees its place');
  await t.compute.db.deleteFrom('quota').where('project_id', '=', t.beta.projectId).execute();
});
