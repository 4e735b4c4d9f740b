import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { qemuImgAvailable } from '../formats/inspect.js';
import { createTestImage, type TestImage, type TestReply } from '../testing.js';

// Facts from Glance's api-ref (images-data.inc) and glance/api/v2/image_data.py.

const run = promisify(execFile);
const noQemuImg = (await qemuImgAvailable()) ? false : 'qemu-img is not installed';

let t: TestImage;
let work: string;

before(async () => {
  t = await createTestImage({ 'image.stores': { file: { type: 'file' }, fast: { type: 'file' } } });
  work = path.join(t.dataDir, 'test-work');
  fs.mkdirSync(work);
});

after(async () => {
  await t.close();
});

function assertFault(res: TestReply, status: number): void {
  assert.equal(res.status, status, JSON.stringify(res.body));
  assert.ok(String(res.body.code).startsWith(`${status} `), `Glance error body ${JSON.stringify(res.body)}`);
}

function storeFile(store: string, id: string): string {
  return path.join(t.dataDir, 'images', store, id);
}

/** `qemu-img create -f qcow2 [extra] <name> 1M`, read back. */
async function qcow2(name: string, ...extra: string[]): Promise<Buffer> {
  const file = path.join(work, name);
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', ...extra, file, '1M']);
  return fs.readFileSync(file);
}

async function status(id: string): Promise<string> {
  return (await t.request('GET', `/v2/images/${id}`, { user: t.admin })).body.status as string;
}

describe('upload', () => {
  test('computes size, checksum (md5), os_hash_value (sha512) and virtual_size; the image becomes active', async () => {
    const image = await t.createImage(t.alpha);
    const data = randomBytes(3 * 1024 * 1024 + 17);
    const res = await t.upload(t.alpha, image.id, data);
    assert.equal(res.status, 204, JSON.stringify(res.body));
    assert.equal(res.raw.length, 0, 'no body');
    const shown = (await t.request('GET', `/v2/images/${image.id}`, { user: t.alpha })).body;
    assert.equal(shown.status, 'active');
    assert.equal(shown.size, data.length);
    assert.equal(shown.virtual_size, data.length);
    assert.equal(shown.checksum, createHash('md5').update(data).digest('hex'));
    assert.equal(shown.os_hash_algo, 'sha512');
    assert.equal(shown.os_hash_value, createHash('sha512').update(data).digest('hex'));
    assert.equal(shown.stores, 'file');
    assert.ok(fs.readFileSync(storeFile('file', image.id as string)).equals(data), 'the stored file holds the data');
  });

  test('uploading twice is 409; the first data stays', async () => {
    const image = await t.createImage(t.alpha);
    const data = randomBytes(100);
    assert.equal((await t.upload(t.alpha, image.id, data)).status, 204);
    assertFault(await t.upload(t.alpha, image.id, randomBytes(100)), 409);
    const down = await t.request('GET', `/v2/images/${image.id}/file`, { user: t.alpha });
    assert.ok(down.raw.equals(data), 'the first data is kept');
  });

  test('two uploads at once: one is stored, the other is 409', async () => {
    const image = await t.createImage(t.alpha);
    const results = await Promise.all([t.upload(t.alpha, image.id, randomBytes(200_000)), t.upload(t.alpha, image.id, randomBytes(200_000))]);
    assert.deepEqual(results.map((r) => r.status).sort(), [204, 409], JSON.stringify(results.map((r) => r.body)));
    const shown = (await t.request('GET', `/v2/images/${image.id}`, { user: t.alpha })).body;
    assert.equal(shown.status, 'active');
    const down = await t.request('GET', `/v2/images/${image.id}/file`, { user: t.alpha });
    assert.equal(createHash('md5').update(down.raw).digest('hex'), shown.checksum, 'the stored data matches the checksum');
  });

  test('without disk_format or container_format: 400, and the image stays queued', async () => {
    for (const body of [{ disk_format: null }, { container_format: null }]) {
      const image = await t.createImage(t.alpha, body);
      assertFault(await t.upload(t.alpha, image.id, randomBytes(10)), 400);
      assert.equal(await status(image.id as string), 'queued');
    }
  });

  test('a content type other than application/octet-stream is 415', async () => {
    const image = await t.createImage(t.alpha);
    for (const type of ['text/plain', 'application/json']) {
      const res = await t.request('PUT', `/v2/images/${image.id}/file`, { user: t.alpha, payload: '"data"', headers: { 'content-type': type } });
      assertFault(res, 415);
    }
    assert.equal(await status(image.id as string), 'queued');
  });

  test('unknown image 404; another project 404 (private) or 403 (visible); a reader 403', async () => {
    assertFault(await t.upload(t.alpha, randomUUID(), randomBytes(10)), 404);
    const privateImage = await t.createImage(t.alpha, { visibility: 'private' });
    assertFault(await t.upload(t.beta, privateImage.id, randomBytes(10)), 404);
    const community = await t.createImage(t.alpha, { visibility: 'community' });
    assertFault(await t.upload(t.beta, community.id, randomBytes(10)), 403);
    assertFault(await t.upload(t.alphaReader, privateImage.id, randomBytes(10)), 403);
    assert.equal(await status(privateImage.id as string), 'queued');
  });

  test('an empty upload makes an active image of size 0', async () => {
    const image = await t.createImage(t.alpha);
    const res = await t.upload(t.alpha, image.id, Buffer.alloc(0));
    assert.equal(res.status, 204, JSON.stringify(res.body));
    const shown = (await t.request('GET', `/v2/images/${image.id}`, { user: t.alpha })).body;
    assert.equal(shown.size, 0);
    assert.equal(shown.checksum, createHash('md5').digest('hex'));
  });

  test('X-Image-Meta-Store chooses a configured store; an unknown store is 400', async () => {
    const image = await t.createImage(t.alpha);
    const data = randomBytes(64);
    const res = await t.request('PUT', `/v2/images/${image.id}/file`, { user: t.alpha, payload: data, headers: { 'x-image-meta-store': 'fast' } });
    assert.equal(res.status, 204, JSON.stringify(res.body));
    const shown = (await t.request('GET', `/v2/images/${image.id}`, { user: t.alpha })).body;
    assert.equal(shown.stores, 'fast');
    assert.ok(fs.existsSync(storeFile('fast', image.id as string)), 'data in the fast store');
    assert.ok(!fs.existsSync(storeFile('file', image.id as string)), 'nothing in the default store');
    assert.ok((await t.request('GET', `/v2/images/${image.id}/file`, { user: t.alpha })).raw.equals(data), 'downloaded from the fast store');

    const other = await t.createImage(t.alpha);
    const unknown = await t.request('PUT', `/v2/images/${other.id}/file`, { user: t.alpha, payload: data, headers: { 'x-image-meta-store': 'nowhere' } });
    assertFault(unknown, 400);
    assert.equal(await status(other.id as string), 'queued');
  });

  test('qcow2 data declared raw is refused (400); the image is queued again and no file is left', { skip: noQemuImg }, async () => {
    const image = await t.createImage(t.alpha, { disk_format: 'raw' });
    const res = await t.upload(t.alpha, image.id, await qcow2('declared-raw.qcow2'));
    assertFault(res, 400);
    assert.equal(await status(image.id as string), 'queued');
    const dir = path.join(t.dataDir, 'images', 'file');
    assert.ok(!fs.readdirSync(dir).some((name) => name.startsWith(image.id as string)), `no file of ${image.id} in ${dir}`);
    const shown = (await t.request('GET', `/v2/images/${image.id}`, { user: t.alpha })).body;
    assert.equal(shown.size, null);
    assert.equal(shown.checksum, null);
    // The client can try again with the right format.
    const fixed = await t.request('PATCH', `/v2/images/${image.id}`, {
      user: t.alpha,
      payload: [{ op: 'replace', path: '/disk_format', value: 'qcow2' }],
      headers: { 'content-type': 'application/openstack-images-v2.1-json-patch' },
    });
    assert.equal(fixed.status, 200, JSON.stringify(fixed.body));
    assert.equal((await t.upload(t.alpha, image.id, await qcow2('declared-qcow2.qcow2'))).status, 204);
    const active = (await t.request('GET', `/v2/images/${image.id}`, { user: t.alpha })).body;
    assert.equal(active.status, 'active');
    assert.equal(active.virtual_size, 1024 * 1024);
  });

  test('a qcow2 with a backing file is refused', { skip: noQemuImg }, async () => {
    await qcow2('base.qcow2');
    const child = await qcow2('child.qcow2', '-b', path.join(work, 'base.qcow2'), '-F', 'qcow2');
    const image = await t.createImage(t.alpha, { disk_format: 'qcow2' });
    assertFault(await t.upload(t.alpha, image.id, child), 400);
    assert.equal(await status(image.id as string), 'queued');
    assert.ok(!fs.existsSync(storeFile('file', image.id as string)), 'no file left');
  });

  test('a container other than bare is not inspected', { skip: noQemuImg }, async () => {
    const image = await t.createImage(t.alpha, { disk_format: 'raw', container_format: 'ovf' });
    assert.equal((await t.upload(t.alpha, image.id, await qcow2('in-ovf.qcow2'))).status, 204);
  });
});

describe('download', () => {
  let id: string;
  const data = randomBytes(1000);

  before(async () => {
    id = (await t.createImage(t.alpha)).id as string;
    const res = await t.upload(t.alpha, id, data);
    assert.equal(res.status, 204, JSON.stringify(res.body));
  });

  test('the same bytes, with Content-MD5 and Content-Length', async () => {
    const res = await t.request('GET', `/v2/images/${id}/file`, { user: t.alpha });
    assert.equal(res.status, 200);
    assert.ok(res.raw.equals(data), 'same bytes');
    assert.equal(res.headers['content-md5'], createHash('md5').update(data).digest('hex'));
    assert.equal(res.headers['content-type'], 'application/octet-stream');
    assert.equal(Number(res.headers['content-length']), data.length);
  });

  test('Range: 206 with Content-Range; a suffix range; an open-ended range', async () => {
    const part = await t.request('GET', `/v2/images/${id}/file`, { user: t.alpha, headers: { range: 'bytes=10-19' } });
    assert.equal(part.status, 206);
    assert.ok(part.raw.equals(data.subarray(10, 20)), 'bytes 10-19');
    assert.equal(part.headers['content-range'], `bytes 10-19/${data.length}`);
    assert.equal(Number(part.headers['content-length']), 10);

    const suffix = await t.request('GET', `/v2/images/${id}/file`, { user: t.alpha, headers: { range: 'bytes=-100' } });
    assert.equal(suffix.status, 206);
    assert.ok(suffix.raw.equals(data.subarray(900)), 'the last 100 bytes');
    assert.equal(suffix.headers['content-range'], `bytes 900-999/${data.length}`);

    const open = await t.request('GET', `/v2/images/${id}/file`, { user: t.alpha, headers: { range: 'bytes=995-' } });
    assert.equal(open.status, 206);
    assert.ok(open.raw.equals(data.subarray(995)), 'from 995 to the end');
    assert.equal(open.headers['content-range'], `bytes 995-999/${data.length}`);
  });

  test('several ranges are 400; the legacy Content-Range request header is honoured', async () => {
    assertFault(await t.request('GET', `/v2/images/${id}/file`, { user: t.alpha, headers: { range: 'bytes=0-1,5-6' } }), 400);
    for (const header of ['bytes 2-5/*', `bytes 2-5/${data.length}`]) {
      const res = await t.request('GET', `/v2/images/${id}/file`, { user: t.alpha, headers: { 'content-range': header } });
      assert.equal(res.status, 206, `${header}: ${JSON.stringify(res.body)}`);
      assert.ok(res.raw.equals(data.subarray(2, 6)), `bytes 2-5 for ${header}`);
      assert.equal(res.headers['content-range'], `bytes 2-5/${data.length}`);
    }
    assertFault(await t.request('GET', `/v2/images/${id}/file`, { user: t.alpha, headers: { 'content-range': 'bytes 2-5000/*' } }), 416);
  });

  test('an unsatisfiable range is 416', async () => {
    for (const range of [`bytes=${data.length}-`, 'bytes=2000-3000', 'bytes=50-10', 'items=1-2']) {
      const res = await t.request('GET', `/v2/images/${id}/file`, { user: t.alpha, headers: { range } });
      assertFault(res, 416);
      assert.equal(res.headers['content-range'], `bytes */${data.length}`, range);
    }
  });

  test('a queued image has no data: 204', async () => {
    const image = await t.createImage(t.alpha);
    const res = await t.request('GET', `/v2/images/${image.id}/file`, { user: t.alpha });
    assert.equal(res.status, 204);
    assert.equal(res.raw.length, 0);
  });

  test('an active image whose data file has gone: 204, as Glance answers when the store has no data', async () => {
    const image = await t.createImage(t.alpha);
    assert.equal((await t.upload(t.alpha, image.id, randomBytes(10))).status, 204);
    fs.rmSync(storeFile('file', image.id as string));
    const res = await t.request('GET', `/v2/images/${image.id}/file`, { user: t.alpha });
    assert.equal(res.status, 204, JSON.stringify(res.body));
  });

  test('unknown image 404; a reader may not download (download_image needs member)', async () => {
    assertFault(await t.request('GET', `/v2/images/${randomUUID()}/file`, { user: t.alpha }), 404);
    assertFault(await t.request('GET', `/v2/images/${id}/file`, { user: t.alphaReader }), 403);
    assertFault(await t.request('GET', `/v2/images/${id}/file`, { user: t.beta }), 404);
  });

  test('a member of a shared image downloads it', async () => {
    assert.equal((await t.request('POST', `/v2/images/${id}/members`, { user: t.alpha, payload: { member: t.beta.projectId } })).status, 200);
    const res = await t.request('GET', `/v2/images/${id}/file`, { user: t.beta });
    assert.equal(res.status, 200);
    assert.ok(res.raw.equals(data), 'same bytes');
  });
});
