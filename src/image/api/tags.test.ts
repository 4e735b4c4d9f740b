import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { createTestImage, type TestImage, type TestReply } from '../testing.js';

// Facts from Glance's api-ref (images-tags.inc) and glance/api/v2/image_tags.py.

let t: TestImage;

before(async () => {
  t = await createTestImage({ 'image.image_tag_quota': 3 });
});

after(async () => {
  await t.close();
});

function assertFault(res: TestReply, status: number): void {
  assert.equal(res.status, status, JSON.stringify(res.body));
  assert.ok(String(res.body.code).startsWith(`${status} `), `Glance error body ${JSON.stringify(res.body)}`);
}

async function tags(id: string): Promise<string[]> {
  return (await t.request('GET', `/v2/images/${id}`, { user: t.alpha })).body.tags as string[];
}

test('add (idempotent) and delete a tag; 204 each', async () => {
  const image = await t.createImage(t.alpha);
  const added = await t.request('PUT', `/v2/images/${image.id}/tags/blue`, { user: t.alpha });
  assert.equal(added.status, 204, JSON.stringify(added.body));
  assert.equal(added.raw.length, 0, 'no body');
  assert.equal((await t.request('PUT', `/v2/images/${image.id}/tags/blue`, { user: t.alpha })).status, 204, 'adding again is fine');
  assert.equal((await t.request('PUT', `/v2/images/${image.id}/tags/${encodeURIComponent('with space')}`, { user: t.alpha })).status, 204);
  assert.deepEqual(await tags(image.id), ['blue', 'with space']);
  const gone = await t.request('DELETE', `/v2/images/${image.id}/tags/blue`, { user: t.alpha });
  assert.equal(gone.status, 204, JSON.stringify(gone.body));
  assert.deepEqual(await tags(image.id), ['with space']);
  const listed = await t.request('GET', '/v2/images?tag=with%20space', { user: t.alpha });
  assert.ok((listed.body.images as { id: string }[]).some((i) => i.id === image.id), 'found by tag');
});

test('deleting a tag the image does not have is 404', async () => {
  const image = await t.createImage(t.alpha);
  assertFault(await t.request('DELETE', `/v2/images/${image.id}/tags/absent`, { user: t.alpha }), 404);
});

test('an unknown or invisible image is 404', async () => {
  assertFault(await t.request('PUT', `/v2/images/${randomUUID()}/tags/x`, { user: t.alpha }), 404);
  assertFault(await t.request('DELETE', `/v2/images/${randomUUID()}/tags/x`, { user: t.alpha }), 404);
  const image = await t.createImage(t.alpha, { visibility: 'private' });
  assertFault(await t.request('PUT', `/v2/images/${image.id}/tags/x`, { user: t.beta }), 404);
});

test('a tag longer than 255 characters is 400', async () => {
  const image = await t.createImage(t.alpha);
  assertFault(await t.request('PUT', `/v2/images/${image.id}/tags/${'x'.repeat(256)}`, { user: t.alpha }), 400);
  assert.equal((await t.request('PUT', `/v2/images/${image.id}/tags/${'x'.repeat(255)}`, { user: t.alpha })).status, 204, '255 is fine');
});

test('more tags than image_tag_quota is 413', async () => {
  const image = await t.createImage(t.alpha);
  for (const tag of ['a', 'b', 'c']) assert.equal((await t.request('PUT', `/v2/images/${image.id}/tags/${tag}`, { user: t.alpha })).status, 204);
  assertFault(await t.request('PUT', `/v2/images/${image.id}/tags/d`, { user: t.alpha }), 413);
  assert.equal((await t.request('PUT', `/v2/images/${image.id}/tags/a`, { user: t.alpha })).status, 204, 'an existing tag is no new tag');
});

test('a reader or another project cannot tag', async () => {
  const image = await t.createImage(t.alpha, { visibility: 'community' });
  assertFault(await t.request('PUT', `/v2/images/${image.id}/tags/x`, { user: t.alphaReader }), 403);
  assertFault(await t.request('PUT', `/v2/images/${image.id}/tags/x`, { user: t.beta }), 403);
  assertFault(await t.request('DELETE', `/v2/images/${image.id}/tags/x`, { user: t.beta }), 403);
});
