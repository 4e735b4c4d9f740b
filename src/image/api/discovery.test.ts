import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createTestImage, type TestImage } from '../testing.js';

// Facts from Glance's api-ref (versions.inc, discovery.inc, stores.inc) and glance/api/versions.py.

type Json = Record<string, any>;

let t: TestImage;

before(async () => {
  t = await createTestImage({ 'image.stores': { file: { type: 'file', description: 'Local files' }, fast: { type: 'file' } }, 'image.default_limits.image_count_total': 10 });
});

after(async () => {
  await t.close();
});

test('/versions is 200 and / is 300, both without a token; CURRENT is v2.x', async () => {
  const versions = await t.request('GET', '/versions', { user: null, headers: { host: 'image.example:9292' } });
  assert.equal(versions.status, 200, JSON.stringify(versions.body));
  const list = versions.body.versions as Json[];
  assert.ok(list.length > 1, 'several versions');
  const current = list.filter((v) => v.status === 'CURRENT');
  assert.equal(current.length, 1, 'one CURRENT version');
  assert.match(current[0]?.id as string, /^v2\.\d+$/);
  assert.ok(list.some((v) => v.id === 'v2.0' && v.status === 'SUPPORTED'), 'v2.0 supported');
  assert.deepEqual(list[0]?.links, [{ rel: 'self', href: 'http://image.example:9292/v2/' }]);
  const root = await t.request('GET', '/', { user: null });
  assert.equal(root.status, 300, JSON.stringify(root.body));
  assert.deepEqual((root.body.versions as Json[]).map((v) => v.id), list.map((v) => v.id));
});

test('/v2/schemas/image has the base properties; additional properties are strings', async () => {
  const res = await t.request('GET', '/v2/schemas/image', { user: t.alpha });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.equal(res.body.name, 'image');
  const properties = res.body.properties as Json;
  for (const key of ['id', 'name', 'status', 'visibility', 'protected', 'os_hidden', 'checksum', 'os_hash_algo', 'os_hash_value', 'owner', 'size', 'virtual_size', 'container_format', 'disk_format', 'created_at', 'updated_at', 'tags', 'direct_url', 'min_ram', 'min_disk', 'self', 'file', 'schema', 'locations']) {
    assert.ok(key in properties, `${key} is in the image schema`);
  }
  assert.ok((properties.disk_format.enum as unknown[]).includes('qcow2'), 'qcow2 is a disk format');
  assert.ok((properties.container_format.enum as unknown[]).includes('bare'), 'bare is a container format');
  assert.deepEqual(properties.visibility.enum, ['community', 'public', 'private', 'shared']);
  assert.equal(properties.status.readOnly, true);
  assert.deepEqual(res.body.additionalProperties, { type: 'string' });
  assert.deepEqual((res.body.links as Json[]).map((l) => l.rel), ['self', 'enclosure', 'describedby']);
});

test('the other schemas: images, member, members, task, tasks', async () => {
  for (const name of ['images', 'member', 'members', 'task', 'tasks']) {
    const res = await t.request('GET', `/v2/schemas/${name}`, { user: t.alpha });
    assert.equal(res.status, 200, `${name}: ${JSON.stringify(res.body)}`);
    assert.equal(res.body.name, name);
  }
  const member = await t.request('GET', '/v2/schemas/member', { user: t.alpha });
  assert.deepEqual(member.body.properties.status.enum, ['pending', 'accepted', 'rejected']);
  assert.equal((await t.request('GET', '/v2/schemas/image', { user: null })).status, 401, 'schemas need a token');
});

test('/v2/info/import lists the import methods', async () => {
  const res = await t.request('GET', '/v2/info/import', { user: t.alpha });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  const methods = res.body['import-methods'] as Json;
  assert.equal(methods.type, 'array');
  assert.equal(methods.description, 'Import methods available.');
  assert.deepEqual(methods.value, t.config.image.import_methods);
  assert.ok((methods.value as string[]).includes('glance-direct'), 'glance-direct');
});

test('/v2/info/stores lists the stores with the default marked; detail is for admins', async () => {
  const res = await t.request('GET', '/v2/info/stores', { user: t.alpha });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.deepEqual(res.body.stores, [
    { id: 'file', description: 'Local files', default: 'true' },
    { id: 'fast', description: 'file store fast' },
  ]);
  assert.equal((await t.request('GET', '/v2/info/stores/detail', { user: t.alpha })).status, 403);
  const detail = await t.request('GET', '/v2/info/stores/detail', { user: t.admin });
  assert.equal(detail.status, 200, JSON.stringify(detail.body));
  assert.equal(detail.body.stores[0].type, 'file');
  assert.ok('properties' in detail.body.stores[0], 'properties');
});

test('/v2/info/usage shows the limits and what the project uses', async () => {
  const before = await t.request('GET', '/v2/info/usage', { user: t.beta });
  assert.equal(before.status, 200, JSON.stringify(before.body));
  const usage = before.body.usage as Json;
  assert.deepEqual(Object.keys(usage).sort(), ['image_count_total', 'image_count_uploading', 'image_size_total', 'image_stage_total']);
  assert.deepEqual(usage.image_count_total, { limit: 10, usage: 0 });
  assert.deepEqual(usage.image_size_total, { limit: -1, usage: 0 });
  const image = await t.createImage(t.beta);
  assert.equal((await t.upload(t.beta, image.id, Buffer.alloc(2 * 1024 * 1024, 1))).status, 204);
  const after = (await t.request('GET', '/v2/info/usage', { user: t.beta })).body.usage as Json;
  assert.deepEqual(after.image_count_total, { limit: 10, usage: 1 });
  assert.equal(after.image_size_total.usage, 2, 'sizes in MiB');
  assert.deepEqual(after.image_count_uploading, { limit: -1, usage: 0 });
});
