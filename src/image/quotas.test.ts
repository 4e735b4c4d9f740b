import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { createTestImage, type TestImage, type TestReply } from './testing.js';

// Per-project quotas (Glance's unified limits, doc/source/admin/quotas.rst): 413 when over.
// Identity has no registered limits here, so `image.default_limits` apply.

const MIB = 1024 * 1024;

function assertOverLimit(res: TestReply): void {
  assert.equal(res.status, 413, JSON.stringify(res.body));
  assert.equal(res.body.code, '413 Request Entity Too Large', `Glance (webob) error body ${JSON.stringify(res.body)}`);
  assert.equal(res.body.title, 'Request Entity Too Large');
  assert.equal(typeof res.body.message, 'string', 'a message');
}

/** Files of an image in a store directory (partial writes included). */
function filesOf(t: TestImage, store: string, id: string): string[] {
  const dir = path.join(t.dataDir, 'images', store);
  return fs.readdirSync(dir).filter((name) => name.startsWith(id));
}

describe('image_count_total', () => {
  let t: TestImage;
  before(async () => {
    t = await createTestImage({ 'image.default_limits.image_count_total': 1 });
  });
  after(async () => {
    await t.close();
  });

  test('a second image is 413; after a delete there is room again', async () => {
    const first = await t.createImage(t.alpha);
    assertOverLimit(await t.request('POST', '/v2/images', { user: t.alpha, payload: { name: 'second' } }));
    const listed = await t.request('GET', '/v2/images', { user: t.alpha });
    assert.equal(listed.body.images.length, 1, 'nothing was created');
    assert.equal((await t.createImage(t.beta)).owner, t.beta.projectId, 'another project has its own count');
    assert.equal((await t.request('DELETE', `/v2/images/${first.id}`, { user: t.alpha })).status, 204);
    await t.createImage(t.alpha);
  });

  test('/v2/info/usage shows the limit', async () => {
    const res = await t.request('GET', '/v2/info/usage', { user: t.alpha });
    assert.deepEqual(res.body.usage.image_count_total, { limit: 1, usage: 1 });
  });
});

describe('image_size_total and image_stage_total', () => {
  let t: TestImage;
  before(async () => {
    t = await createTestImage({ 'image.default_limits.image_size_total': 1, 'image.default_limits.image_stage_total': 1 });
  });
  after(async () => {
    await t.close();
  });

  test('an upload of 2 MiB into 1 MiB is 413; the image stays queued with no file left', async () => {
    const image = await t.createImage(t.alpha);
    assertOverLimit(await t.upload(t.alpha, image.id, Buffer.alloc(2 * MIB, 7)));
    const shown = (await t.request('GET', `/v2/images/${image.id}`, { user: t.alpha })).body;
    assert.equal(shown.status, 'queued');
    assert.equal(shown.size, null);
    assert.deepEqual(filesOf(t, 'file', image.id as string), [], 'no file left');
  });

  test('a streamed upload without Content-Length is cut off at the quota: 413, queued, no file left', async () => {
    const image = await t.createImage(t.alpha);
    const chunks = Array.from({ length: 4 }, () => Buffer.alloc(MIB / 2, 1));
    const res = await t.app.inject({
      method: 'PUT',
      url: `/v2/images/${image.id}/file`,
      headers: { accept: 'application/json', 'x-auth-token': t.alpha.token, 'content-type': 'application/octet-stream' },
      payload: Readable.from(chunks),
    });
    const body = JSON.parse(res.body || '{}') as Record<string, unknown>;
    assertOverLimit({ status: res.statusCode, body, raw: res.rawPayload, headers: res.headers });
    const shown = (await t.request('GET', `/v2/images/${image.id}`, { user: t.alpha })).body;
    assert.equal(shown.status, 'queued');
    assert.deepEqual(filesOf(t, 'file', image.id as string), [], 'no partial file left');
  });

  test('an upload within the quota succeeds; the next one is refused', async () => {
    const image = await t.createImage(t.beta);
    assert.equal((await t.upload(t.beta, image.id, Buffer.alloc(MIB / 2, 1))).status, 204);
    const next = await t.createImage(t.beta);
    assertOverLimit(await t.upload(t.beta, next.id, Buffer.alloc(MIB, 1)));
    assert.equal((await t.request('GET', `/v2/images/${next.id}`, { user: t.beta })).body.status, 'queued');
  });

  test('staging more than image_stage_total is 413; the image stays queued', async () => {
    const image = await t.createImage(t.alpha);
    assertOverLimit(await t.request('PUT', `/v2/images/${image.id}/stage`, { user: t.alpha, payload: Buffer.alloc(2 * MIB, 3) }));
    assert.equal((await t.request('GET', `/v2/images/${image.id}`, { user: t.alpha })).body.status, 'queued');
    assert.deepEqual(filesOf(t, 'staging', image.id as string), [], 'nothing staged');
  });
});

describe('per-image limits: image_property_quota, image_member_quota', () => {
  let t: TestImage;
  before(async () => {
    t = await createTestImage({ 'image.image_property_quota': 2, 'image.image_member_quota': 1 });
  });
  after(async () => {
    await t.close();
  });

  test('more custom properties than the quota is 413, at creation and by update', async () => {
    assertOverLimit(await t.request('POST', '/v2/images', { user: t.alpha, payload: { a: '1', b: '2', c: '3' } }));
    const image = await t.createImage(t.alpha, { a: '1', b: '2' });
    const headers = { 'content-type': 'application/openstack-images-v2.1-json-patch' };
    assertOverLimit(await t.request('PATCH', `/v2/images/${image.id}`, { user: t.alpha, payload: [{ op: 'add', path: '/c', value: '3' }], headers }));
    const swapped = await t.request('PATCH', `/v2/images/${image.id}`, { user: t.alpha, payload: [{ op: 'remove', path: '/a' }, { op: 'add', path: '/c', value: '3' }], headers });
    assert.equal(swapped.status, 200, JSON.stringify(swapped.body));
  });

  test('more members than the quota is 413', async () => {
    const image = await t.createImage(t.alpha);
    assert.equal((await t.request('POST', `/v2/images/${image.id}/members`, { user: t.alpha, payload: { member: t.beta.projectId } })).status, 200);
    assertOverLimit(await t.request('POST', `/v2/images/${image.id}/members`, { user: t.alpha, payload: { member: 'another-project' } }));
  });
});
