import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { serverTags } from '../server-tags.js';
import { createTestCompute, expectComputeError, type TestCompute } from '../testing.js';
import { insertServer } from './server-fixtures.test-util.js';
import { validateTags } from './server-tags.js';

let t: TestCompute;
before(async () => {
  t = await createTestCompute();
});
after(async () => {
  await t.close();
});

const V = '2.26';

test('tags need 2.26', async () => {
  const server = await insertServer(t.compute.db, t.alpha);
  expectComputeError(await t.request('GET', `/servers/${server.uuid}/tags`, { user: t.alpha, version: '2.25' }), 404, 'The resource could not be found.');
});

test('replace all, list, check, add, delete one, delete all', async () => {
  const server = await insertServer(t.compute.db, t.alpha);
  const url = `/servers/${server.uuid}/tags`;
  const empty = await t.request('GET', url, { user: t.alpha, version: V });
  assert.equal(empty.status, 200, JSON.stringify(empty.body));
  assert.deepEqual(empty.body, { tags: [] }, 'no tags at first');

  const put = await t.request('PUT', url, { user: t.alpha, version: V, payload: { tags: ['web', 'db', 'web'] } });
  assert.equal(put.status, 200, JSON.stringify(put.body));
  assert.deepEqual(put.body, { tags: ['db', 'web'] }, 'replaced, deduplicated');

  const check = await t.request('GET', `${url}/web`, { user: t.alpha, version: V });
  assert.equal(check.status, 204, 'an existing tag is 204');
  expectComputeError(await t.request('GET', `${url}/nope`, { user: t.alpha, version: V }), 404, `Server ${server.uuid} has no tag 'nope'`);

  const added = await t.request('PUT', `${url}/blue%20sky`, { user: t.alpha, version: V });
  assert.equal(added.status, 201, JSON.stringify(added.body));
  assert.equal(added.headers.location, `http://compute.test:8774/v2.1/servers/${server.uuid}/tags/blue%20sky`, 'Location of the new tag');
  const again = await t.request('PUT', `${url}/blue%20sky`, { user: t.alpha, version: V });
  assert.equal(again.status, 204, 'adding an existing tag is 204');
  assert.equal(again.headers.location, undefined, 'no Location for an existing tag');

  const listed = await t.request('GET', url, { user: t.alpha, version: V });
  assert.deepEqual(listed.body.tags, ['blue sky', 'db', 'web'], 'sorted');

  const del = await t.request('DELETE', `${url}/db`, { user: t.alpha, version: V });
  assert.equal(del.status, 204, 'deleted one');
  expectComputeError(await t.request('DELETE', `${url}/db`, { user: t.alpha, version: V }), 404, `Instance ${server.uuid} has no tag 'db'`);

  const map = await serverTags(t.compute.db, [server.uuid, 'other']);
  assert.deepEqual(map.get(server.uuid), ['blue sky', 'web'], 'serverTags for the server view');
  assert.equal(map.has('other'), false, 'a server without tags is absent');

  const all = await t.request('DELETE', url, { user: t.alpha, version: V });
  assert.equal(all.status, 204, 'deleted all');
  assert.deepEqual((await t.request('GET', url, { user: t.alpha, version: V })).body.tags, [], 'none left');
});

test('validation: 1..60 characters, no / or ,, at most 50', async () => {
  const server = await insertServer(t.compute.db, t.alpha);
  const url = `/servers/${server.uuid}/tags`;
  expectComputeError(await t.request('PUT', url, { user: t.alpha, version: V, payload: { tags: ['a,b'] } }), 400, "Invalid input for field/attribute 0. Value: a,b. 'a,b' does not match '^[^,/]*$'");
  expectComputeError(await t.request('PUT', url, { user: t.alpha, version: V, payload: { tags: ['x'.repeat(61)] } }), 400, /is too long/);
  expectComputeError(await t.request('PUT', url, { user: t.alpha, version: V, payload: { tags: [''] } }), 400, /'' is too short/);
  expectComputeError(await t.request('PUT', url, { user: t.alpha, version: V, payload: { tags: 'web' } }), 400, /'web' is not of type 'array'/);
  expectComputeError(await t.request('PUT', url, { user: t.alpha, version: V, payload: { tag: ['web'] } }), 400, /'tags' is a required property/);
  const many = Array.from({ length: 51 }, (_, i) => `t${i}`);
  expectComputeError(await t.request('PUT', url, { user: t.alpha, version: V, payload: { tags: many } }), 400, /is too long/);
  expectComputeError(await t.request('PUT', `${url}/${'y'.repeat(61)}`, { user: t.alpha, version: V }), 400, /^Tag 'y+' is invalid\. It must be a non empty string without characters '\/' and ','\./);
  expectComputeError(await t.request('PUT', `${url}/a%2Cb`, { user: t.alpha, version: V }), 400, /Tag 'a,b' is invalid/);
  expectComputeError(await t.request('PUT', `${url}/ok`, { user: t.alpha, version: V, payload: { tag: 'ok' } }), 400, /is not of type 'null'/);

  const fifty = await t.request('PUT', url, { user: t.alpha, version: V, payload: { tags: many.slice(0, 50) } });
  assert.equal(fifty.status, 200, 'fifty tags are allowed');
  expectComputeError(await t.request('PUT', `${url}/one-more`, { user: t.alpha, version: V }), 400, 'The number of tags exceeded the per-server limit 50');
  assert.deepEqual(validateTags(['a', 'a', 'b']), ['a', 'b'], 'validateTags deduplicates');
  assert.throws(() => validateTags(['a/b']), /does not match/, 'validateTags refuses a slash');
});

test('changes need ACTIVE, PAUSED, SUSPENDED or STOPPED', async () => {
  const building = await insertServer(t.compute.db, t.alpha, { vm_state: 'building', task_state: 'spawning', launched_at: null });
  const url = `/servers/${building.uuid}/tags`;
  expectComputeError(await t.request('PUT', `${url}/x`, { user: t.alpha, version: V }), 409, `Cannot 'update tag' instance ${building.uuid} while it is in vm_state building`);
  expectComputeError(await t.request('PUT', url, { user: t.alpha, version: V, payload: { tags: ['x'] } }), 409, /Cannot 'update tags'/);
  expectComputeError(await t.request('DELETE', `${url}/x`, { user: t.alpha, version: V }), 409, /Cannot 'delete tag'/);
  expectComputeError(await t.request('DELETE', url, { user: t.alpha, version: V }), 409, /Cannot 'delete tags'/);
  const read = await t.request('GET', url, { user: t.alpha, version: V });
  assert.equal(read.status, 200, 'reading is allowed in any state');
  const stopped = await insertServer(t.compute.db, t.alpha, { vm_state: 'stopped', power_state: 4 });
  const ok = await t.request('PUT', `/servers/${stopped.uuid}/tags/x`, { user: t.alpha, version: V });
  assert.equal(ok.status, 201, 'a stopped server takes tags');
});

test("who: 404 for an unknown server, 403 for another project's, readers only read", async () => {
  const missing = '9128d044-7b61-403e-b766-7547076ff6c1';
  expectComputeError(await t.request('GET', `/servers/${missing}/tags`, { user: t.alpha, version: V }), 404, /has no mapping to a cell/);
  const server = await insertServer(t.compute.db, t.alpha);
  const url = `/servers/${server.uuid}/tags`;
  expectComputeError(await t.request('GET', url, { user: t.beta, version: V }), 403, /os-server-tags:index/);
  const reader = await t.request('GET', url, { user: t.alphaReader, version: V });
  assert.equal(reader.status, 200, 'a reader lists');
  expectComputeError(await t.request('PUT', `${url}/x`, { user: t.alphaReader, version: V }), 403, /os-server-tags:update/);
  const admin = await t.request('PUT', `${url}/x`, { user: t.admin, version: V });
  assert.equal(admin.status, 201, "an admin tags another project's server");
  const deleted = await insertServer(t.compute.db, t.alpha, { deleted: 1, vm_state: 'deleted' });
  expectComputeError(await t.request('GET', `/servers/${deleted.uuid}/tags`, { user: t.alpha, version: V }), 404, `Instance ${deleted.uuid} could not be found.`);
});
