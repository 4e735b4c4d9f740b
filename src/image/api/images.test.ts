import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { createTestImage, type TestImage, type TestReply, type TestUser } from '../testing.js';

// Facts from Glance's api-ref (images-images-v2.inc) and glance/api/v2/images.py.

type Json = Record<string, any>;

let t: TestImage;

before(async () => {
  t = await createTestImage();
});

after(async () => {
  await t.close();
});

const PATCH = { 'content-type': 'application/openstack-images-v2.1-json-patch' };

const unique = (prefix: string): string => `${prefix}-${randomBytes(4).toString('hex')}`;

function patch(user: TestUser, id: string, ops: unknown, headers: Record<string, string> = PATCH): Promise<TestReply> {
  return t.request('PATCH', `/v2/images/${id}`, { user, payload: ops, headers });
}

/** Every image a list query returns, following `next` links until there is none. */
async function listAll(user: TestUser, query: string): Promise<{ ids: string[]; pages: number }> {
  const ids: string[] = [];
  let url: string | undefined = `/v2/images?${query}`;
  let pages = 0;
  while (url) {
    const res = await t.request('GET', url, { user });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    ids.push(...(res.body.images as Json[]).map((i) => i.id as string));
    url = res.body.next as string | undefined;
    pages++;
    assert.ok(pages < 50, 'pagination does not end');
  }
  return { ids, pages };
}

async function listIds(user: TestUser, query: string): Promise<string[]> {
  const res = await t.request('GET', `/v2/images?${query}`, { user });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return (res.body.images as Json[]).map((i) => i.id as string);
}

/** Checks Glance's (webob's) JSON error body. */
function assertFault(res: TestReply, status: number): void {
  assert.equal(res.status, status, JSON.stringify(res.body));
  assert.equal(typeof res.body.message, 'string', `a message in ${JSON.stringify(res.body)}`);
  assert.equal(typeof res.body.title, 'string', `a title in ${JSON.stringify(res.body)}`);
  assert.ok(String(res.body.code).startsWith(`${status} `), `code "${res.body.code}" starts with the status ${status}`);
  assert.ok(String(res.body.code).endsWith(res.body.title as string), `code "${res.body.code}" ends with the title "${res.body.title}"`);
}

describe('create', () => {
  test('defaults: queued, shared, not protected, every base property present (null when unset)', async () => {
    const res = await t.request('POST', '/v2/images', { user: t.alpha, payload: {} });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const image = res.body;
    assert.equal(image.status, 'queued');
    assert.equal(image.visibility, 'shared');
    assert.equal(image.protected, false);
    assert.equal(image.os_hidden, false);
    assert.equal(image.owner, t.alpha.projectId);
    assert.deepEqual(image.tags, []);
    for (const key of ['name', 'checksum', 'os_hash_algo', 'os_hash_value', 'size', 'virtual_size', 'disk_format', 'container_format']) {
      assert.ok(key in image, `${key} is present`);
      assert.equal(image[key], null, `${key} is null`);
    }
    assert.equal(image.min_ram, 0);
    assert.equal(image.min_disk, 0);
    assert.match(image.id as string, /^[0-9a-f-]{36}$/);
    assert.equal(image.self, `/v2/images/${image.id}`);
    assert.equal(image.file, `/v2/images/${image.id}/file`);
    assert.equal(image.schema, '/v2/schemas/image');
    assert.match(image.created_at as string, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.ok(!('locations' in image) && !('direct_url' in image), 'no locations nor direct_url by default');
  });

  test('Location header names the new image; import methods and stores are offered', async () => {
    const res = await t.request('POST', '/v2/images', { user: t.alpha, payload: { name: 'located' } });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.ok(String(res.headers.location).endsWith(`/v2/images/${res.body.id}`), `Location ${String(res.headers.location)}`);
    assert.ok(String(res.headers['openstack-image-import-methods']).includes('glance-direct'), 'OpenStack-image-import-methods');
  });

  test('custom string properties, tags and the given id are kept', async () => {
    const id = randomUUID();
    const image = await t.createImage(t.alpha, { id, hypervisor_type: 'kvm', os_distro: 'ubuntu', tags: ['a', 'b', 'a'], min_ram: 512, protected: true });
    assert.equal(image.id, id);
    assert.equal(image.hypervisor_type, 'kvm');
    assert.equal(image.os_distro, 'ubuntu');
    assert.deepEqual(image.tags, ['a', 'b']);
    assert.equal(image.min_ram, 512);
    assert.equal(image.protected, true);
    const shown = await t.request('GET', `/v2/images/${id}`, { user: t.alpha });
    assert.equal(shown.body.hypervisor_type, 'kvm');
    await patch(t.alpha, id, [{ op: 'replace', path: '/protected', value: false }]);
  });

  test('a non-string custom property is 400', async () => {
    for (const value of [1, true, { a: 1 }, ['x'], null]) {
      const res = await t.request('POST', '/v2/images', { user: t.alpha, payload: { custom: value } });
      assertFault(res, 400);
    }
  });

  test("os_glance_* and other reserved names are 403", async () => {
    for (const key of ['os_glance_foo', 'os_glance_import_task', 'deleted', 'deleted_at', 'location']) {
      const res = await t.request('POST', '/v2/images', { user: t.alpha, payload: { [key]: 'x' } });
      assertFault(res, 403);
    }
  });

  test('read-only properties (status, checksum, size, ...) are 403', async () => {
    for (const [key, value] of [['status', 'active'], ['checksum', 'abc'], ['size', 10], ['os_hash_value', 'x'], ['created_at', '2020-01-01T00:00:00Z'], ['self', '/x'], ['file', '/x'], ['schema', '/x']] as const) {
      const res = await t.request('POST', '/v2/images', { user: t.alpha, payload: { [key]: value } });
      assertFault(res, 403);
    }
  });

  test('invalid disk or container format, visibility, or types are 400', async () => {
    for (const payload of [{ disk_format: 'floppy' }, { container_format: 'zip' }, { visibility: 'everyone' }, { protected: 'yes' }, { min_ram: -1 }, { min_disk: 'big' }, { name: 'x'.repeat(256) }, { id: 'not-a-uuid' }, { tags: [1] }]) {
      const res = await t.request('POST', '/v2/images', { user: t.alpha, payload });
      assertFault(res, 400);
    }
  });

  test('a body that is not a JSON object is 400', async () => {
    assertFault(await t.request('POST', '/v2/images', { user: t.alpha, payload: '[1,2]' }), 400);
    assertFault(await t.request('POST', '/v2/images', { user: t.alpha, payload: '{"name": ' }), 400);
  });

  test('public by a project member is 403, by an admin 201; community by a member is 201', async () => {
    assertFault(await t.request('POST', '/v2/images', { user: t.alpha, payload: { visibility: 'public' } }), 403);
    const pub = await t.createImage(t.admin, { visibility: 'public' });
    assert.equal(pub.visibility, 'public');
    const community = await t.createImage(t.alpha, { visibility: 'community' });
    assert.equal(community.visibility, 'community');
  });

  test('owner set to another project by a non-admin is 403; an admin may', async () => {
    assertFault(await t.request('POST', '/v2/images', { user: t.alpha, payload: { owner: t.beta.projectId } }), 403);
    const image = await t.createImage(t.admin, { owner: t.beta.projectId });
    assert.equal(image.owner, t.beta.projectId);
    const seen = await t.request('GET', `/v2/images/${image.id}`, { user: t.beta });
    assert.equal(seen.status, 200, 'the new owner sees it');
  });

  test('a reader cannot create images', async () => {
    assertFault(await t.request('POST', '/v2/images', { user: t.alphaReader, payload: {} }), 403);
  });

  test('a duplicate id is 409', async () => {
    const image = await t.createImage(t.alpha);
    assertFault(await t.request('POST', '/v2/images', { user: t.alpha, payload: { id: image.id } }), 409);
  });
});

describe('list', () => {
  test('default scoping: own, public, shared and accepted; community only with visibility=community', async () => {
    const mark = unique('scope');
    const own = await t.createImage(t.alpha, { mark, visibility: 'private' });
    const ownCommunity = await t.createImage(t.alpha, { mark, visibility: 'community' });
    const pub = await t.createImage(t.admin, { mark, visibility: 'public' });
    const betaPrivate = await t.createImage(t.beta, { mark, visibility: 'private' });
    const betaCommunity = await t.createImage(t.beta, { mark, visibility: 'community' });
    const betaShared = await t.createImage(t.beta, { mark, visibility: 'shared' });
    const betaSharedPending = await t.createImage(t.beta, { mark, visibility: 'shared' });
    const betaSharedRejected = await t.createImage(t.beta, { mark, visibility: 'shared' });
    for (const image of [betaShared, betaSharedPending, betaSharedRejected]) {
      const added = await t.request('POST', `/v2/images/${image.id}/members`, { user: t.beta, payload: { member: t.alpha.projectId } });
      assert.equal(added.status, 200, JSON.stringify(added.body));
    }
    const decide = async (id: string, status: string): Promise<void> => {
      const res = await t.request('PUT', `/v2/images/${id}/members/${t.alpha.projectId}`, { user: t.alpha, payload: { status } });
      assert.equal(res.status, 200, JSON.stringify(res.body));
    };
    await decide(betaShared.id, 'accepted');
    await decide(betaSharedRejected.id, 'rejected');

    const sorted = (ids: string[]): string[] => [...ids].sort();
    assert.deepEqual(sorted(await listIds(t.alpha, `mark=${mark}`)), sorted([own.id, ownCommunity.id, pub.id, betaShared.id]), 'default list');
    assert.deepEqual(sorted(await listIds(t.alpha, `mark=${mark}&visibility=community`)), sorted([ownCommunity.id, betaCommunity.id]), 'visibility=community');
    assert.deepEqual(sorted(await listIds(t.alpha, `mark=${mark}&visibility=public`)), [pub.id], 'visibility=public');
    assert.deepEqual(sorted(await listIds(t.alpha, `mark=${mark}&visibility=private`)), [own.id], 'visibility=private');
    assert.deepEqual(sorted(await listIds(t.alpha, `mark=${mark}&visibility=shared`)), [betaShared.id], 'visibility=shared');
    assert.deepEqual(sorted(await listIds(t.alpha, `mark=${mark}&member_status=pending`)), sorted([own.id, ownCommunity.id, pub.id, betaSharedPending.id]), 'member_status=pending');
    assert.deepEqual(sorted(await listIds(t.alpha, `mark=${mark}&member_status=rejected&visibility=shared`)), [betaSharedRejected.id], 'member_status=rejected');
    assert.deepEqual(
      sorted(await listIds(t.alpha, `mark=${mark}&member_status=all&visibility=shared`)),
      sorted([betaShared.id, betaSharedPending.id, betaSharedRejected.id]),
      'member_status=all',
    );
    const all = await listIds(t.alpha, `mark=${mark}&visibility=all`);
    assert.ok(all.includes(betaCommunity.id) && !all.includes(betaPrivate.id), 'visibility=all adds community images, never others\' private ones');
    const admin = await listIds(t.admin, `mark=${mark}&visibility=all&member_status=all`);
    assert.ok(admin.includes(betaPrivate.id), 'an admin sees every image with visibility=all');
    assertFault(await t.request('GET', '/v2/images?visibility=everyone', { user: t.alpha }), 400);
    assertFault(await t.request('GET', '/v2/images?member_status=maybe', { user: t.alpha }), 400);
  });

  test('filters: tag (AND of several), name, status=in:, custom property, os_hidden', async () => {
    const mark = unique('filters');
    const a = await t.createImage(t.alpha, { mark, name: `${mark}-a`, tags: ['red', 'big'], color: 'blue' });
    const b = await t.createImage(t.alpha, { mark, name: `${mark}-b`, tags: ['red'] });
    const hidden = await t.createImage(t.alpha, { mark, name: `${mark}-h`, os_hidden: true });
    const uploaded = await t.upload(t.alpha, b.id, randomBytes(64));
    assert.equal(uploaded.status, 204, JSON.stringify(uploaded.body));

    assert.deepEqual((await listIds(t.alpha, `mark=${mark}&tag=red`)).sort(), [a.id, b.id].sort(), 'tag=red');
    assert.deepEqual(await listIds(t.alpha, `mark=${mark}&tag=red&tag=big`), [a.id], 'tag=red&tag=big');
    assert.deepEqual(await listIds(t.alpha, `mark=${mark}&tag=red&tag=none`), [], 'tag=red&tag=none');
    assert.deepEqual(await listIds(t.alpha, `name=${mark}-b`), [b.id], 'name');
    assert.deepEqual(await listIds(t.alpha, `mark=${mark}&status=active`), [b.id], 'status');
    assert.deepEqual((await listIds(t.alpha, `mark=${mark}&status=in:queued,active`)).sort(), [a.id, b.id].sort(), 'status=in:');
    assert.deepEqual(await listIds(t.alpha, `mark=${mark}&color=blue`), [a.id], 'custom property');
    assert.deepEqual(await listIds(t.alpha, `mark=${mark}&color=green`), [], 'custom property, no match');
    assert.ok(!(await listIds(t.alpha, `mark=${mark}`)).includes(hidden.id), 'os_hidden images are left out by default');
    assert.deepEqual(await listIds(t.alpha, `mark=${mark}&os_hidden=true`), [hidden.id], 'os_hidden=true');
    assertFault(await t.request('GET', '/v2/images?os_hidden=maybe', { user: t.alpha }), 400);
  });

  test('size_min and size_max', async () => {
    const mark = unique('sizes');
    const sizes = [10, 100, 1000];
    const ids: string[] = [];
    for (const size of sizes) {
      const image = await t.createImage(t.alpha, { mark });
      const res = await t.upload(t.alpha, image.id, randomBytes(size));
      assert.equal(res.status, 204, JSON.stringify(res.body));
      ids.push(image.id as string);
    }
    assert.deepEqual((await listIds(t.alpha, `mark=${mark}&size_min=100`)).sort(), [ids[1], ids[2]].sort(), 'size_min');
    assert.deepEqual((await listIds(t.alpha, `mark=${mark}&size_max=100`)).sort(), [ids[0], ids[1]].sort(), 'size_max');
    assert.deepEqual(await listIds(t.alpha, `mark=${mark}&size_min=11&size_max=999`), [ids[1]], 'both');
    assertFault(await t.request('GET', '/v2/images?size_min=-1', { user: t.alpha }), 400);
  });

  test('created_at=gt: compares to the second', async () => {
    const mark = unique('times');
    const first = await t.createImage(t.alpha, { mark });
    await sleep(1100);
    const second = await t.createImage(t.alpha, { mark });
    assert.deepEqual(await listIds(t.alpha, `mark=${mark}&created_at=gt:${first.created_at}`), [second.id], 'gt');
    assert.deepEqual((await listIds(t.alpha, `mark=${mark}&created_at=gte:${first.created_at}`)).sort(), [first.id, second.id].sort(), 'gte');
    assert.deepEqual(await listIds(t.alpha, `mark=${mark}&created_at=lt:${second.created_at}`), [first.id], 'lt');
    assert.deepEqual(await listIds(t.alpha, `mark=${mark}&created_at=gt:2999-01-01T00:00:00Z`), [], 'future');
    assertFault(await t.request('GET', '/v2/images?created_at=gt:yesterday', { user: t.alpha }), 400);
  });

  test('sorting: sort_key/sort_dir, sort=name:asc,size:desc; an invalid key is 400', async () => {
    const mark = unique('sort');
    const made: Json[] = [];
    for (const [name, size] of [['b', 30], ['a', 10], ['c', 20], ['a', 40]] as const) {
      const image = await t.createImage(t.alpha, { mark, name: `${mark}-${name}` });
      const res = await t.upload(t.alpha, image.id, randomBytes(size));
      assert.equal(res.status, 204, JSON.stringify(res.body));
      made.push({ id: image.id, name: `${mark}-${name}`, size });
    }
    const names = async (query: string): Promise<string[]> => {
      const res = await t.request('GET', `/v2/images?mark=${mark}&${query}`, { user: t.alpha });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      return (res.body.images as Json[]).map((i) => `${String(i.name).slice(-1)}${i.size}`);
    };
    assert.deepEqual(await names('sort_key=size&sort_dir=asc'), ['a10', 'c20', 'b30', 'a40'], 'sort_key=size asc');
    assert.deepEqual(await names('sort_key=size&sort_dir=desc'), ['a40', 'b30', 'c20', 'a10'], 'sort_key=size desc');
    assert.deepEqual(await names('sort_key=name&sort_dir=asc&sort_key=size&sort_dir=asc'), ['a10', 'a40', 'b30', 'c20'], 'two sort keys');
    assert.deepEqual(await names('sort=name:asc,size:desc'), ['a40', 'a10', 'b30', 'c20'], 'sort=name:asc,size:desc');
    const byCreated = await t.request('GET', `/v2/images?mark=${mark}`, { user: t.alpha });
    assert.deepEqual((byCreated.body.images as Json[]).map((i) => i.id), made.map((m) => m.id).reverse(), 'default: created_at desc');
    assertFault(await t.request('GET', '/v2/images?sort_key=color', { user: t.alpha }), 400);
    assertFault(await t.request('GET', '/v2/images?sort=color:asc', { user: t.alpha }), 400);
    assertFault(await t.request('GET', '/v2/images?sort_key=name&sort_dir=sideways', { user: t.alpha }), 400);
    assertFault(await t.request('GET', '/v2/images?sort=name:asc&sort_key=size', { user: t.alpha }), 400);
  });

  test('limit and marker: following next links gives every image once', async () => {
    const mark = unique('pages');
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) ids.push((await t.createImage(t.alpha, { mark, name: `n${i % 3}` })).id as string);
    for (const query of [`mark=${mark}&limit=2`, `mark=${mark}&limit=3&sort_key=name&sort_dir=asc`, `mark=${mark}&limit=1&sort=name:desc`, `mark=${mark}&limit=7`]) {
      const { ids: seen, pages } = await listAll(t.alpha, query);
      assert.equal(new Set(seen).size, seen.length, `no duplicates with ${query}: ${seen.join(' ')}`);
      assert.deepEqual([...seen].sort(), [...ids].sort(), `every image with ${query}`);
      assert.ok(pages >= 2 || query.endsWith('limit=7'), `several pages with ${query}`);
    }
    // Sizes with nulls (queued images) and ties page as well.
    for (const [i, id] of ids.slice(0, 4).entries()) assert.equal((await t.upload(t.alpha, id, randomBytes(i % 2 === 0 ? 10 : 20))).status, 204);
    for (const query of [`mark=${mark}&limit=2&sort_key=size&sort_dir=asc`, `mark=${mark}&limit=3&sort=size:desc,name:asc`]) {
      const { ids: seen } = await listAll(t.alpha, query);
      assert.equal(new Set(seen).size, seen.length, `no duplicates with ${query}: ${seen.join(' ')}`);
      assert.deepEqual([...seen].sort(), [...ids].sort(), `every image with ${query}`);
    }
    const first = await t.request('GET', `/v2/images?mark=${mark}&limit=2`, { user: t.alpha });
    assert.equal(first.body.images.length, 2);
    assert.equal(first.body.first, `/v2/images?mark=${mark}&limit=2`);
    assert.ok(String(first.body.next).includes(`marker=${first.body.images[1].id}`), `next ${first.body.next}`);
    assert.equal(first.body.schema, '/v2/schemas/images');
  });

  test('a marker that is not an image is 400; a bad limit is 400', async () => {
    assertFault(await t.request('GET', `/v2/images?marker=${randomUUID()}`, { user: t.alpha }), 400);
    assertFault(await t.request('GET', '/v2/images?limit=-1', { user: t.alpha }), 400);
    assertFault(await t.request('GET', '/v2/images?limit=many', { user: t.alpha }), 400);
  });

  test('a marker the caller cannot see is 400, as an unknown one', async () => {
    const hidden = await t.createImage(t.alpha, { visibility: 'private' });
    assertFault(await t.request('GET', `/v2/images?marker=${hidden.id}`, { user: t.beta }), 400);
    assert.equal((await t.request('GET', `/v2/images?marker=${hidden.id}`, { user: t.alpha })).status, 200, 'the owner may page from it');
    assert.equal((await t.request('GET', `/v2/images?marker=${hidden.id}`, { user: t.admin })).status, 200, 'an admin may page from it');
  });

  test('changes-since is gone from v2 (400); limit is capped at api_limit_max', async () => {
    assertFault(await t.request('GET', '/v2/images?changes-since=2020-01-01T00:00:00Z', { user: t.alpha }), 400);
    const res = await t.request('GET', '/v2/images?limit=100000', { user: t.admin });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.ok(res.body.images.length <= t.config.image.api_limit_max, 'capped');
  });

  test('a reader lists its project images', async () => {
    const image = await t.createImage(t.alpha, { mark: unique('reader') });
    const ids = await listIds(t.alphaReader, `mark=${image.mark}`);
    assert.deepEqual(ids, [image.id]);
  });
});

describe('show', () => {
  test('the owner sees the image; 404 for another project, an unknown id, a deleted image', async () => {
    const image = await t.createImage(t.alpha, { visibility: 'private' });
    const shown = await t.request('GET', `/v2/images/${image.id}`, { user: t.alpha });
    assert.equal(shown.status, 200);
    assert.deepEqual(shown.body, image);
    assertFault(await t.request('GET', `/v2/images/${image.id}`, { user: t.beta }), 404);
    assertFault(await t.request('GET', `/v2/images/${randomUUID()}`, { user: t.alpha }), 404);
    assertFault(await t.request('GET', '/v2/images/not-a-uuid', { user: t.alpha }), 404);
    assert.equal((await t.request('DELETE', `/v2/images/${image.id}`, { user: t.alpha })).status, 204);
    assertFault(await t.request('GET', `/v2/images/${image.id}`, { user: t.alpha }), 404);
    assertFault(await t.request('GET', `/v2/images/${image.id}`, { user: t.admin }), 404);
  });

  test('a shared image is 404 to a non-member; a member (even pending) sees it', async () => {
    const image = await t.createImage(t.alpha, { visibility: 'shared' });
    assertFault(await t.request('GET', `/v2/images/${image.id}`, { user: t.beta }), 404);
    assert.equal((await t.request('POST', `/v2/images/${image.id}/members`, { user: t.alpha, payload: { member: t.beta.projectId } })).status, 200);
    assert.equal((await t.request('GET', `/v2/images/${image.id}`, { user: t.beta })).status, 200);
  });
});

describe('update (JSON patch)', () => {
  test('add, replace and remove of core and custom properties', async () => {
    const image = await t.createImage(t.alpha, { name: 'before', kept: 'yes' });
    const res = await patch(t.alpha, image.id, [
      { op: 'replace', path: '/name', value: 'after' },
      { op: 'add', path: '/min_ram', value: 1024 },
      { op: 'add', path: '/color', value: 'red' },
      { op: 'replace', path: '/kept', value: 'still' },
      { op: 'add', path: '/tags', value: ['x', 'y'] },
      { op: 'replace', path: '/visibility', value: 'private' },
      { op: 'replace', path: '/disk_format', value: 'qcow2' },
    ]);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.name, 'after');
    assert.equal(res.body.min_ram, 1024);
    assert.equal(res.body.color, 'red');
    assert.equal(res.body.kept, 'still');
    assert.equal(res.body.visibility, 'private');
    assert.equal(res.body.disk_format, 'qcow2');
    assert.deepEqual(res.body.tags, ['x', 'y']);
    const removed = await patch(t.alpha, image.id, [{ op: 'remove', path: '/color' }]);
    assert.equal(removed.status, 200, JSON.stringify(removed.body));
    assert.ok(!('color' in removed.body), 'color removed');
    const shown = await t.request('GET', `/v2/images/${image.id}`, { user: t.alpha });
    assert.deepEqual(shown.body, removed.body, 'the update is stored');
    const added = await patch(t.alpha, image.id, [{ op: 'add', path: '/name', value: 'added' }]);
    assert.equal(added.body.name, 'added', 'add on an existing core property replaces it');
  });

  test('removing a core property is 403; replacing or removing a missing property is 409', async () => {
    const image = await t.createImage(t.alpha);
    for (const name of ['name', 'min_ram', 'visibility', 'disk_format']) assertFault(await patch(t.alpha, image.id, [{ op: 'remove', path: `/${name}` }]), 403);
    assertFault(await patch(t.alpha, image.id, [{ op: 'replace', path: '/nothing', value: 'x' }]), 409);
    assertFault(await patch(t.alpha, image.id, [{ op: 'remove', path: '/nothing' }]), 409);
  });

  test('read-only properties are 403, reserved ones 403', async () => {
    const image = await t.createImage(t.alpha);
    for (const name of ['status', 'checksum', 'size', 'id', 'created_at', 'os_hash_value', 'self']) {
      assertFault(await patch(t.alpha, image.id, [{ op: 'replace', path: `/${name}`, value: 'x' }]), 403);
    }
    for (const name of ['os_glance_foo', 'deleted']) assertFault(await patch(t.alpha, image.id, [{ op: 'add', path: `/${name}`, value: 'x' }]), 403);
  });

  test('an invalid value is 400; the owner is changed by admins only', async () => {
    const image = await t.createImage(t.alpha);
    assertFault(await patch(t.alpha, image.id, [{ op: 'replace', path: '/disk_format', value: 'floppy' }]), 400);
    assertFault(await patch(t.alpha, image.id, [{ op: 'add', path: '/custom', value: 5 }]), 400);
    assertFault(await patch(t.alpha, image.id, [{ op: 'replace', path: '/visibility', value: 'public' }]), 403);
    assertFault(await patch(t.alpha, image.id, [{ op: 'replace', path: '/owner', value: t.beta.projectId }]), 403);
    const moved = await patch(t.admin, image.id, [{ op: 'replace', path: '/owner', value: t.beta.projectId }]);
    assert.equal(moved.status, 200, JSON.stringify(moved.body));
    assert.equal(moved.body.owner, t.beta.projectId);
  });

  test('the patch media type is required (415); a malformed body is 400', async () => {
    const image = await t.createImage(t.alpha);
    const wrong = await patch(t.alpha, image.id, [{ op: 'replace', path: '/name', value: 'x' }], { 'content-type': 'application/json' });
    assertFault(wrong, 415);
    assert.ok(String(wrong.headers['accept-patch']).includes('application/openstack-images-v2.1-json-patch'), 'Accept-Patch names the patch types');
    assertFault(await t.request('PATCH', `/v2/images/${image.id}`, { user: t.alpha, payload: '[{"op": ', headers: PATCH }), 400);
    assertFault(await patch(t.alpha, image.id, { op: 'replace', path: '/name', value: 'x' }), 400);
    assertFault(await patch(t.alpha, image.id, [{ op: 'move', path: '/name', value: 'x' }]), 400);
    assertFault(await patch(t.alpha, image.id, [{ op: 'replace', path: 'name', value: 'x' }]), 400);
    assertFault(await patch(t.alpha, image.id, [{ op: 'replace', path: '/name' }]), 400);
    const v20 = await patch(t.alpha, image.id, [{ replace: '/name', value: 'v2.0' }], { 'content-type': 'application/openstack-images-v2.0-json-patch' });
    assert.equal(v20.status, 200, JSON.stringify(v20.body));
    assert.equal(v20.body.name, 'v2.0', 'the draft-4 form of v2.0-json-patch');
  });

  test('disk_format of an active image cannot change (403); of an unknown image 404; by another project 404', async () => {
    const image = await t.createImage(t.alpha);
    assert.equal((await t.upload(t.alpha, image.id, randomBytes(32))).status, 204);
    assertFault(await patch(t.alpha, image.id, [{ op: 'replace', path: '/disk_format', value: 'qcow2' }]), 403);
    assertFault(await patch(t.alpha, image.id, [{ op: 'replace', path: '/container_format', value: 'ovf' }]), 403);
    const same = await patch(t.alpha, image.id, [{ op: 'replace', path: '/disk_format', value: 'raw' }]);
    assert.equal(same.status, 200, 'the same value is no change');
    assertFault(await patch(t.alpha, randomUUID(), [{ op: 'replace', path: '/name', value: 'x' }]), 404);
    const privateImage = await t.createImage(t.alpha, { visibility: 'private' });
    assertFault(await patch(t.beta, privateImage.id, [{ op: 'replace', path: '/name', value: 'x' }]), 404);
  });

  test('a reader cannot update; a member of a shared image cannot update', async () => {
    const image = await t.createImage(t.alpha);
    assertFault(await patch(t.alphaReader, image.id, [{ op: 'replace', path: '/name', value: 'x' }]), 403);
    assert.equal((await t.request('POST', `/v2/images/${image.id}/members`, { user: t.alpha, payload: { member: t.beta.projectId } })).status, 200);
    assertFault(await patch(t.beta, image.id, [{ op: 'replace', path: '/name', value: 'x' }]), 403);
  });
});

describe('delete', () => {
  test('a protected image is 403 until unprotected; then 204 and its data file is removed', async () => {
    const image = await t.createImage(t.alpha, { protected: true });
    assert.equal((await t.upload(t.alpha, image.id, randomBytes(100))).status, 204);
    const file = path.join(t.dataDir, 'images', 'file', image.id as string);
    assert.ok(fs.existsSync(file), `data stored at ${file}`);
    assertFault(await t.request('DELETE', `/v2/images/${image.id}`, { user: t.alpha }), 403);
    assert.equal((await patch(t.alpha, image.id, [{ op: 'replace', path: '/protected', value: false }])).status, 200);
    const deleted = await t.request('DELETE', `/v2/images/${image.id}`, { user: t.alpha });
    assert.equal(deleted.status, 204, JSON.stringify(deleted.body));
    assert.ok(!fs.existsSync(file), 'the data file is gone');
    assertFault(await t.request('GET', `/v2/images/${image.id}`, { user: t.alpha }), 404);
    assertFault(await t.request('DELETE', `/v2/images/${image.id}`, { user: t.alpha }), 404);
    assertFault(await t.request('GET', `/v2/images/${image.id}/file`, { user: t.alpha }), 404);
    assert.ok(!(await listIds(t.admin, `id=${image.id}`)).includes(image.id), 'a deleted image is not listed');
  });

  test('deleting a staged image removes the staged data', async () => {
    const staged = await t.createImage(t.alpha);
    const stage = await t.request('PUT', `/v2/images/${staged.id}/stage`, { user: t.alpha, payload: randomBytes(100) });
    assert.equal(stage.status, 204, JSON.stringify(stage.body));
    const stagedFile = path.join(t.dataDir, 'images', 'staging', staged.id as string);
    assert.ok(fs.existsSync(stagedFile), 'staged');
    assert.equal((await t.request('DELETE', `/v2/images/${staged.id}`, { user: t.alpha })).status, 204);
    assert.ok(!fs.existsSync(stagedFile), 'the staged data is gone');
  });

  test('another project cannot delete (404 when invisible, 403 when visible); a reader cannot', async () => {
    const privateImage = await t.createImage(t.alpha, { visibility: 'private' });
    assertFault(await t.request('DELETE', `/v2/images/${privateImage.id}`, { user: t.beta }), 404);
    const community = await t.createImage(t.alpha, { visibility: 'community' });
    assertFault(await t.request('DELETE', `/v2/images/${community.id}`, { user: t.beta }), 403);
    assertFault(await t.request('DELETE', `/v2/images/${privateImage.id}`, { user: t.alphaReader }), 403);
    assert.equal((await t.request('DELETE', `/v2/images/${community.id}`, { user: t.admin })).status, 204);
  });
});

describe('deactivate and reactivate', () => {
  test('a deactivated image is downloadable by admins only; reactivation restores it', async () => {
    const image = await t.createImage(t.alpha);
    const data = randomBytes(50);
    assert.equal((await t.upload(t.alpha, image.id, data)).status, 204);
    const off = await t.request('POST', `/v2/images/${image.id}/actions/deactivate`, { user: t.alpha });
    assert.equal(off.status, 204, JSON.stringify(off.body));
    assert.equal((await t.request('GET', `/v2/images/${image.id}`, { user: t.alpha })).body.status, 'deactivated');
    assert.equal((await t.request('POST', `/v2/images/${image.id}/actions/deactivate`, { user: t.alpha })).status, 204, 'deactivating twice is fine');
    assertFault(await t.request('GET', `/v2/images/${image.id}/file`, { user: t.alpha }), 403);
    const byAdmin = await t.request('GET', `/v2/images/${image.id}/file`, { user: t.admin });
    assert.equal(byAdmin.status, 200);
    assert.ok(byAdmin.raw.equals(data), 'the admin gets the data');
    const on = await t.request('POST', `/v2/images/${image.id}/actions/reactivate`, { user: t.alpha });
    assert.equal(on.status, 204, JSON.stringify(on.body));
    assert.equal((await t.request('GET', `/v2/images/${image.id}`, { user: t.alpha })).body.status, 'active');
    assert.equal((await t.request('GET', `/v2/images/${image.id}/file`, { user: t.alpha })).status, 200);
  });

  test('reactivating or deactivating a queued image is 403; a reader cannot deactivate; unknown image 404', async () => {
    const image = await t.createImage(t.alpha);
    assertFault(await t.request('POST', `/v2/images/${image.id}/actions/reactivate`, { user: t.alpha }), 403);
    assertFault(await t.request('POST', `/v2/images/${image.id}/actions/deactivate`, { user: t.alpha }), 403);
    assert.equal((await t.upload(t.alpha, image.id, randomBytes(8))).status, 204);
    assertFault(await t.request('POST', `/v2/images/${image.id}/actions/deactivate`, { user: t.alphaReader }), 403);
    assertFault(await t.request('POST', `/v2/images/${randomUUID()}/actions/deactivate`, { user: t.alpha }), 404);
  });
});

describe('authentication', () => {
  test('no token is 401 with WWW-Authenticate and the Glance error body', async () => {
    const res = await t.request('GET', '/v2/images', { user: null });
    assertFault(res, 401);
    assert.deepEqual(Object.keys(res.body).sort(), ['code', 'message', 'title']);
    assert.equal(res.body.code, '401 Unauthorized');
    assert.match(String(res.headers['www-authenticate']), /^Keystone uri="http:\/\/127\.0\.0\.1:\d+"$/);
  });

  test('without Accept: application/json, errors are HTML pages as webob writes them (what glanceclient reads)', async () => {
    const res = await t.request('GET', `/v2/images/${randomUUID()}`, { user: t.alpha, headers: { accept: '*/*' } });
    assert.equal(res.status, 404, 'unknown image');
    assert.match(String(res.headers['content-type']), /^text\/html/, 'an HTML page');
    assert.match(res.raw.toString(), /<title>404 Not Found<\/title>[\s\S]*No image found with ID/, 'the title and the message are in the page');
  });

  test('a garbage token is 401', async () => {
    const res = await t.request('GET', '/v2/images', { user: { token: 'garbage', userId: '', projectId: '' } });
    assertFault(res, 401);
    assert.ok(res.headers['www-authenticate'], 'WWW-Authenticate');
  });

  test('a revoked token is 401', async () => {
    const identity = await t.images.client.endpoint('identity', { interface: 'public' });
    const login = await fetch(`${identity}/auth/tokens`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({
        auth: {
          identity: { methods: ['password'], password: { user: { name: 'alpha-member', domain: { id: 'default' }, password: 'alpha-member-secret' } } },
          scope: { project: { name: 'alpha', domain: { id: 'default' } } },
        },
      }),
    });
    const token = login.headers.get('x-subject-token') ?? '';
    assert.equal(login.status, 201, 'login');
    const revoked = await fetch(`${identity}/auth/tokens`, { method: 'DELETE', headers: { 'X-Auth-Token': t.admin.token, 'X-Subject-Token': token } });
    assert.equal(revoked.status, 204, 'revocation');
    assertFault(await t.request('GET', '/v2/images', { user: { token, userId: '', projectId: '' } }), 401);
  });

  test('errors have the Glance JSON body', async () => {
    const res = await t.request('GET', `/v2/images/${randomUUID()}`, { user: t.alpha });
    assertFault(res, 404);
    assert.equal(res.body.code, '404 Not Found');
    assert.equal(res.body.title, 'Not Found');
    const unknown = await t.request('GET', '/v2/nothing-here', { user: t.alpha });
    assertFault(unknown, 404);
  });
});
