import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { serverMetadata } from '../server-metadata.js';
import { createTestCompute, expectComputeError, type TestCompute } from '../testing.js';
import { insertServer } from './server-fixtures.test-util.js';
import { validateMetadata } from './server-metadata.js';

let t: TestCompute;
before(async () => {
  t = await createTestCompute();
});
after(async () => {
  await t.close();
});

test('replace all, merge, list, show, set and delete one item', async () => {
  const server = await insertServer(t.compute.db, t.alpha);
  const url = `/servers/${server.uuid}/metadata`;
  const empty = await t.request('GET', url, { user: t.alpha });
  assert.equal(empty.status, 200, JSON.stringify(empty.body));
  assert.deepEqual(empty.body, { metadata: {} }, 'none at first');

  const put = await t.request('PUT', url, { user: t.alpha, payload: { metadata: { role: 'web', tier: 'front' } } });
  assert.equal(put.status, 200, JSON.stringify(put.body));
  assert.deepEqual(put.body, { metadata: { role: 'web', tier: 'front' } }, 'PUT answers the new metadata');

  const post = await t.request('POST', url, { user: t.alpha, payload: { metadata: { tier: 'back', zone: 'a' } } });
  assert.equal(post.status, 200, JSON.stringify(post.body));
  assert.deepEqual(post.body, { metadata: { role: 'web', tier: 'back', zone: 'a' } }, 'POST merges and answers all of it');

  const replaced = await t.request('PUT', url, { user: t.alpha, payload: { metadata: { only: 'this' } } });
  assert.deepEqual(replaced.body, { metadata: { only: 'this' } }, 'PUT drops the others');
  assert.deepEqual((await t.request('GET', url, { user: t.alpha })).body, { metadata: { only: 'this' } }, 'as stored');

  const show = await t.request('GET', `${url}/only`, { user: t.alpha });
  assert.deepEqual(show.body, { meta: { only: 'this' } }, 'one item');
  expectComputeError(await t.request('GET', `${url}/nope`, { user: t.alpha }), 404, 'Metadata item was not found');
  expectComputeError(await t.request('GET', `${url}/constructor`, { user: t.alpha }), 404, 'Metadata item was not found');

  const setOne = await t.request('PUT', `${url}/color`, { user: t.alpha, payload: { meta: { color: 'blue' } } });
  assert.equal(setOne.status, 200, JSON.stringify(setOne.body));
  assert.deepEqual(setOne.body, { meta: { color: 'blue' } }, 'PUT of one item answers it');
  assert.deepEqual((await t.request('GET', url, { user: t.alpha })).body.metadata, { only: 'this', color: 'blue' }, 'added to the others');

  const del = await t.request('DELETE', `${url}/color`, { user: t.alpha });
  assert.equal(del.status, 204, 'deleted');
  expectComputeError(await t.request('DELETE', `${url}/color`, { user: t.alpha }), 404, 'Metadata item was not found');

  const map = await serverMetadata(t.compute.db, [server.uuid]);
  assert.deepEqual(map.get(server.uuid), { only: 'this' }, 'serverMetadata for the server view');
});

test('validation: keys 1..255 of [a-zA-Z0-9-_:. ], string values up to 255', async () => {
  const server = await insertServer(t.compute.db, t.alpha);
  const url = `/servers/${server.uuid}/metadata`;
  expectComputeError(await t.request('PUT', url, { user: t.alpha, payload: { metadata: { '': 'x' } } }), 400, "Invalid input for field/attribute metadata. Value: {'': 'x'}. Additional properties are not allowed ('' was unexpected)");
  expectComputeError(await t.request('POST', url, { user: t.alpha, payload: { metadata: { ['k'.repeat(256)]: 'x' } } }), 400, /Additional properties are not allowed/);
  expectComputeError(await t.request('POST', url, { user: t.alpha, payload: { metadata: { 'a/b': 'x' } } }), 400, /'a\/b' was unexpected/);
  expectComputeError(await t.request('POST', url, { user: t.alpha, payload: { metadata: { k: 'v'.repeat(256) } } }), 400, /^Invalid input for field\/attribute k\. .* is too long$/);
  expectComputeError(await t.request('POST', url, { user: t.alpha, payload: { metadata: { k: 1 } } }), 400, 'Invalid input for field/attribute k. Value: 1. 1 is not of type \'string\'');
  expectComputeError(await t.request('POST', url, { user: t.alpha, payload: { metadata: ['k'] } }), 400, /is not of type 'object'/);
  expectComputeError(await t.request('PUT', url, { user: t.alpha, payload: '' }), 400, "None is not of type 'object'");
  expectComputeError(await t.request('PUT', url, { user: t.alpha, payload: { meta: { k: 'v' } } }), 400, /'metadata' is a required property/);
  expectComputeError(await t.request('PUT', `${url}/key`, { user: t.alpha, payload: { meta: { testkey: 'testvalue' } } }), 400, 'Request body and URI mismatch');
  expectComputeError(await t.request('PUT', `${url}/a`, { user: t.alpha, payload: { meta: { a: '1', b: '2' } } }), 400, /has too many properties/);
  expectComputeError(await t.request('PUT', `${url}/a`, { user: t.alpha, payload: { meta: {} } }), 400, /does not have enough properties/);
  const spaced = await t.request('POST', url, { user: t.alpha, payload: { metadata: { 'a key:with.dots-and_more': 'ok' } } });
  assert.equal(spaced.status, 200, 'the allowed punctuation passes');
});

test('the metadata_items quota counts the result of a merge', async () => {
  await t.compute.db.insertInto('quota').values({ project_id: t.beta.projectId, user_id: '', resource: 'metadata_items', hard_limit: 2 }).execute();
  const server = await insertServer(t.compute.db, t.beta);
  const url = `/servers/${server.uuid}/metadata`;
  const two = await t.request('PUT', url, { user: t.beta, payload: { metadata: { a: '1', b: '2' } } });
  assert.equal(two.status, 200, 'two items fit');
  expectComputeError(await t.request('POST', url, { user: t.beta, payload: { metadata: { c: '3' } } }), 403, 'Maximum number of metadata items exceeds 2');
  expectComputeError(await t.request('PUT', `${url}/c`, { user: t.beta, payload: { meta: { c: '3' } } }), 403, 'Maximum number of metadata items exceeds 2');
  const overwrite = await t.request('POST', url, { user: t.beta, payload: { metadata: { a: 'one' } } });
  assert.equal(overwrite.status, 200, 'changing an existing item adds none');
  expectComputeError(await t.request('PUT', url, { user: t.beta, payload: { metadata: { x: '1', y: '2', z: '3' } } }), 403, /exceeds 2/);
  assert.deepEqual((await t.request('GET', url, { user: t.beta })).body.metadata, { a: 'one', b: '2' }, 'nothing changed by the refused requests');
  await t.compute.db.deleteFrom('quota').where('project_id', '=', t.beta.projectId).execute();
});

test('validateMetadata, for server create', () => {
  assert.deepEqual(validateMetadata({ a: 'b' }, 128), { a: 'b' }, 'valid metadata passes');
  assert.throws(() => validateMetadata({ a: 'b', c: 'd' }, 1), /Maximum number of metadata items exceeds 1/, 'over the limit');
  assert.deepEqual(validateMetadata({ a: 'b', c: 'd' }, -1), { a: 'b', c: 'd' }, '-1 is no limit');
  assert.throws(() => validateMetadata({ '': 'b' }, 128), /Additional properties are not allowed/, 'a blank key');
  assert.throws(() => validateMetadata('x', 128), /is not of type 'object'/, 'not an object');
});

test('changes: 409 when locked (except for admins) or not settled; reads are allowed', async () => {
  const locked = await insertServer(t.compute.db, t.alpha, { locked: 1, locked_by: 'owner' });
  const url = `/servers/${locked.uuid}/metadata`;
  expectComputeError(await t.request('POST', url, { user: t.alpha, payload: { metadata: { a: '1' } } }), 409, `Instance ${locked.uuid} is locked`);
  const admin = await t.request('POST', url, { user: t.admin, payload: { metadata: { a: '1' } } });
  assert.equal(admin.status, 200, 'an admin ignores the lock');
  expectComputeError(await t.request('DELETE', `${url}/a`, { user: t.alpha }), 409, /is locked/);
  assert.equal((await t.request('GET', url, { user: t.alpha })).status, 200, 'reading a locked server');

  const building = await insertServer(t.compute.db, t.alpha, { vm_state: 'building', task_state: 'spawning', launched_at: null });
  expectComputeError(await t.request('PUT', `/servers/${building.uuid}/metadata`, { user: t.alpha, payload: { metadata: {} } }), 409, `Cannot 'update metadata' instance ${building.uuid} while it is in vm_state building`);
  const rebooting = await insertServer(t.compute.db, t.alpha, { task_state: 'rebooting' });
  expectComputeError(await t.request('POST', `/servers/${rebooting.uuid}/metadata`, { user: t.alpha, payload: { metadata: { a: '1' } } }), 409, /while it is in task_state rebooting/);
  const errored = await insertServer(t.compute.db, t.alpha, { vm_state: 'error' });
  await t.compute.db.insertInto('instance_metadata').values({ instance_uuid: errored.uuid, key: 'a', value: '1' }).execute();
  expectComputeError(await t.request('DELETE', `/servers/${errored.uuid}/metadata/a`, { user: t.alpha }), 409, `Cannot 'delete metadata' instance ${errored.uuid} while it is in vm_state error`);
});

test("who: another project's server is 404, a reader only reads", async () => {
  const server = await insertServer(t.compute.db, t.alpha);
  const url = `/servers/${server.uuid}/metadata`;
  expectComputeError(await t.request('GET', url, { user: t.beta }), 404, `Instance ${server.uuid} could not be found.`);
  expectComputeError(await t.request('GET', '/servers/9128d044-7b61-403e-b766-7547076ff6c1/metadata', { user: t.alpha }), 404, /could not be found/);
  assert.equal((await t.request('GET', url, { user: t.alphaReader })).status, 200, 'a reader lists');
  expectComputeError(await t.request('POST', url, { user: t.alphaReader, payload: { metadata: { a: '1' } } }), 403, /server-metadata:create/);
  const deleted = await insertServer(t.compute.db, t.alpha, { deleted: 1, vm_state: 'deleted' });
  expectComputeError(await t.request('GET', `/servers/${deleted.uuid}/metadata`, { user: t.alpha }), 404, /could not be found/);
});
