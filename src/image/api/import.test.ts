import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { qemuImgAvailable } from '../formats/inspect.js';
import { createTestImage, type TestImage, type TestReply, type TestUser } from '../testing.js';

// Facts from Glance's api-ref (images-import.inc) and glance/api/v2/images.py (import_image).

type Json = Record<string, any>;

const run = promisify(execFile);
const noQemuImg = (await qemuImgAvailable()) ? false : 'qemu-img is not installed';

let t: TestImage;
let web: http.Server;
let webPort: number;
const served = randomBytes(200 * 1024);

before(async () => {
  web = http.createServer((req, res) => {
    if (req.url === '/image.raw') {
      res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': String(served.length) });
      res.end(served);
    } else {
      res.writeHead(404).end('not here');
    }
  });
  await new Promise<void>((resolve) => web.listen(0, '127.0.0.1', resolve));
  webPort = (web.address() as AddressInfo).port;
  t = await createTestImage({
    'image.stores': { file: { type: 'file' }, fast: { type: 'file' } },
    'image.web_download.allowed_ports': [webPort],
  });
});

after(async () => {
  await t.close();
  await new Promise<void>((resolve) => web.close(() => resolve()));
});

function assertFault(res: TestReply, status: number): void {
  assert.equal(res.status, status, JSON.stringify(res.body));
  assert.ok(String(res.body.code).startsWith(`${status} `), `Glance error body ${JSON.stringify(res.body)}`);
}

function stage(user: TestUser, id: string, data: Buffer): Promise<TestReply> {
  return t.request('PUT', `/v2/images/${id}/stage`, { user, payload: data });
}

function startImport(user: TestUser, id: string, body: Json, headers: Record<string, string> = {}): Promise<TestReply> {
  return t.request('POST', `/v2/images/${id}/import`, { user, payload: body, headers });
}

async function show(id: string): Promise<Json> {
  return (await t.request('GET', `/v2/images/${id}`, { user: t.admin })).body;
}

/** Waits for the image's import task to finish (imports run in the background). */
async function settled(id: string): Promise<{ image: Json; task: Json }> {
  const until = Date.now() + 15_000;
  for (;;) {
    const tasks = await t.request('GET', `/v2/images/${id}/tasks`, { user: t.admin });
    assert.equal(tasks.status, 200, JSON.stringify(tasks.body));
    const list = tasks.body.tasks as Json[];
    const last = list[list.length - 1];
    if (last && last.status !== 'processing' && last.status !== 'pending') return { image: await show(id), task: last };
    assert.ok(Date.now() < until, `the import of ${id} did not finish: ${JSON.stringify(list)}`);
    await sleep(20);
  }
}

describe('glance-direct', () => {
  test('stage (uploading, size known) then import: active, stores set, a successful task with the request id', async () => {
    const image = await t.createImage(t.alpha);
    const data = randomBytes(70_000);
    const staged = await stage(t.alpha, image.id, data);
    assert.equal(staged.status, 204, JSON.stringify(staged.body));
    const afterStage = await show(image.id);
    assert.equal(afterStage.status, 'uploading');
    assert.equal(afterStage.size, data.length);
    assert.equal(afterStage.checksum, null, 'no checksum before the import');
    assertFault(await stage(t.alpha, image.id, data), 409);

    const res = await startImport(t.alpha, image.id, { method: { name: 'glance-direct' } });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const { image: done, task } = await settled(image.id);
    assert.equal(task.status, 'success', JSON.stringify(task));
    assert.equal(task.type, 'api_image_import');
    assert.equal(task.image_id, image.id);
    assert.equal(task.request_id, res.headers['x-openstack-request-id'], 'the task names the import request');
    assert.equal(task.user_id, t.alpha.userId);
    assert.equal(done.status, 'active');
    assert.equal(done.stores, 'file');
    assert.equal(done.size, data.length);
    assert.equal(done.virtual_size, data.length, 'raw: the virtual size is the data size');
    assert.equal(done.checksum, createHash('md5').update(data).digest('hex'));
    assert.equal(done.os_hash_value, createHash('sha512').update(data).digest('hex'));
    assert.equal(done.os_glance_import_task, undefined, 'the import lock is released');
    assert.ok(!fs.existsSync(path.join(t.dataDir, 'images', 'staging', image.id as string)), 'the staged data is gone');
    const down = await t.request('GET', `/v2/images/${image.id}/file`, { user: t.alpha });
    assert.ok(down.raw.equals(data), 'the imported data downloads');
  });

  test('import into a named store (stores, X-Image-Meta-Store) and into all stores', async () => {
    const one = await t.createImage(t.alpha);
    assert.equal((await stage(t.alpha, one.id, randomBytes(1000))).status, 204);
    assert.equal((await startImport(t.alpha, one.id, { method: { name: 'glance-direct' }, stores: ['fast'] })).status, 202);
    assert.equal((await settled(one.id)).image.stores, 'fast');

    const two = await t.createImage(t.alpha);
    assert.equal((await stage(t.alpha, two.id, randomBytes(1000))).status, 204);
    assert.equal((await startImport(t.alpha, two.id, { method: { name: 'glance-direct' } }, { 'x-image-meta-store': 'fast' })).status, 202);
    assert.equal((await settled(two.id)).image.stores, 'fast');

    const all = await t.createImage(t.alpha);
    assert.equal((await stage(t.alpha, all.id, randomBytes(1000))).status, 204);
    assert.equal((await startImport(t.alpha, all.id, { method: { name: 'glance-direct' }, all_stores: true })).status, 202);
    assert.deepEqual(String((await settled(all.id)).image.stores).split(',').sort(), ['fast', 'file']);

    const unknown = await t.createImage(t.alpha);
    assert.equal((await stage(t.alpha, unknown.id, randomBytes(10))).status, 204);
    assertFault(await startImport(t.alpha, unknown.id, { method: { name: 'glance-direct' }, stores: ['nowhere'] }), 409);
    assert.equal((await show(unknown.id)).status, 'uploading', 'nothing changed');
  });

  test('glance-direct without staged data is 409; of an active image 409', async () => {
    const image = await t.createImage(t.alpha);
    assertFault(await startImport(t.alpha, image.id, { method: { name: 'glance-direct' } }), 409);
    assert.equal((await t.upload(t.alpha, image.id, randomBytes(10))).status, 204);
    assertFault(await startImport(t.alpha, image.id, { method: { name: 'glance-direct' } }), 409);
  });

  test('qcow2 data staged for a raw image: the import fails and the image is queued again', { skip: noQemuImg }, async () => {
    const image = await t.createImage(t.alpha, { disk_format: 'raw' });
    const file = path.join(t.dataDir, 'import-qcow2');
    await run('qemu-img', ['create', '-q', '-f', 'qcow2', file, '1M']);
    assert.equal((await stage(t.alpha, image.id, fs.readFileSync(file))).status, 204);
    assert.equal((await startImport(t.alpha, image.id, { method: { name: 'glance-direct' } })).status, 202);
    const { image: failed, task } = await settled(image.id);
    assert.equal(task.status, 'failure', JSON.stringify(task));
    assert.ok(String(task.message).length > 0, 'the task says why');
    assert.equal(failed.status, 'queued');
    assert.equal(failed.os_glance_failed_import, 'file');
    assert.ok(!fs.existsSync(path.join(t.dataDir, 'images', 'file', image.id as string)), 'no data stored');
  });
});

describe('web-download', () => {
  test('from an allowed URL: active with the served bytes', async () => {
    const image = await t.createImage(t.alpha);
    const res = await startImport(t.alpha, image.id, { method: { name: 'web-download', uri: `http://127.0.0.1:${webPort}/image.raw` } });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const { image: done, task } = await settled(image.id);
    assert.equal(task.status, 'success', JSON.stringify(task));
    assert.equal(done.status, 'active');
    assert.equal(done.size, served.length);
    assert.equal(done.checksum, createHash('md5').update(served).digest('hex'));
    assert.equal(done.stores, 'file');
    const down = await t.request('GET', `/v2/images/${image.id}/file`, { user: t.alpha });
    assert.ok(down.raw.equals(served), 'same bytes');
  });

  test('a URL the server answers with 404: the task fails and the image is queued again', async () => {
    const image = await t.createImage(t.alpha);
    assert.equal((await startImport(t.alpha, image.id, { method: { name: 'web-download', uri: `http://127.0.0.1:${webPort}/missing` } })).status, 202);
    const { image: failed, task } = await settled(image.id);
    assert.equal(task.status, 'failure', JSON.stringify(task));
    assert.equal(failed.status, 'queued');
  });

  test('a URI that does not pass the filters is 400; the image is untouched', async () => {
    const image = await t.createImage(t.alpha);
    for (const uri of ['http://127.0.0.1:1/image.raw', `ftp://127.0.0.1:${webPort}/image.raw`, 'file:///etc/passwd', 'not a uri', 5]) {
      assertFault(await startImport(t.alpha, image.id, { method: { name: 'web-download', uri } }), 400);
    }
    assert.equal((await show(image.id)).status, 'queued');
  });

  test('web-download of an image that is not queued is 409', async () => {
    const image = await t.createImage(t.alpha);
    assert.equal((await t.upload(t.alpha, image.id, randomBytes(10))).status, 204);
    assertFault(await startImport(t.alpha, image.id, { method: { name: 'web-download', uri: `http://127.0.0.1:${webPort}/image.raw` } }), 409);
  });
});

describe('copy-image', () => {
  test('an admin copies an active image into a second store', async () => {
    const image = await t.createImage(t.alpha);
    const data = randomBytes(5000);
    assert.equal((await t.upload(t.alpha, image.id, data)).status, 204);
    assertFault(await startImport(t.alpha, image.id, { method: { name: 'copy-image' }, stores: ['fast'] }), 403);
    const res = await startImport(t.admin, image.id, { method: { name: 'copy-image' }, stores: ['fast'] });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const { image: done, task } = await settled(image.id);
    assert.equal(task.status, 'success', JSON.stringify(task));
    assert.equal(done.status, 'active');
    assert.deepEqual(String(done.stores).split(',').sort(), ['fast', 'file']);
    assert.ok(fs.readFileSync(path.join(t.dataDir, 'images', 'fast', image.id as string)).equals(data), 'copied bytes');
    assertFault(await startImport(t.admin, image.id, { method: { name: 'copy-image' }, stores: ['fast'] }), 400);
    assert.equal((await t.request('DELETE', `/v2/images/${image.id}`, { user: t.alpha })).status, 204);
    for (const store of ['file', 'fast']) assert.ok(!fs.existsSync(path.join(t.dataDir, 'images', store, image.id as string)), `the copy in ${store} is deleted`);
  });

  test('copy-image with all_stores skips the stores that hold the image', async () => {
    const image = await t.createImage(t.alpha);
    assert.equal((await t.upload(t.alpha, image.id, randomBytes(100))).status, 204);
    assert.equal((await startImport(t.admin, image.id, { method: { name: 'copy-image' }, all_stores: true })).status, 202);
    const { image: done, task } = await settled(image.id);
    assert.equal(task.status, 'success', JSON.stringify(task));
    assert.deepEqual(String(done.stores).split(',').sort(), ['fast', 'file']);
  });

  test('copy-image of a queued image is 409', async () => {
    const image = await t.createImage(t.alpha);
    assertFault(await startImport(t.admin, image.id, { method: { name: 'copy-image' }, stores: ['fast'] }), 409);
  });
});

describe('a target store that fails', () => {
  const fastDir = (): string => path.join(t.dataDir, 'images', 'fast');

  test('all_stores_must_succeed (the default): the import fails, the image is queued again and no store keeps data', async () => {
    const image = await t.createImage(t.alpha);
    assert.equal((await stage(t.alpha, image.id, randomBytes(3000))).status, 204, 'staged');
    fs.renameSync(fastDir(), `${fastDir()}.away`);
    try {
      assert.equal((await startImport(t.alpha, image.id, { method: { name: 'glance-direct' }, all_stores: true })).status, 202, 'import accepted');
      const { image: done, task } = await settled(image.id);
      assert.equal(task.status, 'failure', JSON.stringify(task));
      assert.equal(done.status, 'queued', 'the client can start again');
      assert.equal(done.stores, undefined, 'no store is recorded');
      assert.equal(done.os_glance_failed_import, 'fast', 'the failed store is named');
      assert.ok(!fs.existsSync(path.join(t.dataDir, 'images', 'file', image.id as string)), 'what went into the first store is removed again');
    } finally {
      fs.renameSync(`${fastDir()}.away`, fastDir());
    }
  });

  test('all_stores_must_succeed false: active in the stores that worked, the failed one named', async () => {
    const image = await t.createImage(t.alpha);
    const data = randomBytes(3000);
    assert.equal((await stage(t.alpha, image.id, data)).status, 204, 'staged');
    fs.renameSync(fastDir(), `${fastDir()}.away`);
    try {
      assert.equal((await startImport(t.alpha, image.id, { method: { name: 'glance-direct' }, all_stores: true, all_stores_must_succeed: false })).status, 202, 'import accepted');
      const { image: done, task } = await settled(image.id);
      assert.equal(task.status, 'success', JSON.stringify(task));
      assert.equal(done.status, 'active', 'active');
      assert.equal(done.stores, 'file', 'in the store that worked');
      assert.equal(done.os_glance_failed_import, 'fast', 'the failed store is named');
      assert.ok(fs.readFileSync(path.join(t.dataDir, 'images', 'file', image.id as string)).equals(data), 'the stored bytes');
    } finally {
      fs.renameSync(`${fastDir()}.away`, fastDir());
    }
  });
});

describe('requests', () => {
  test('an unknown method is 400; a body without method 400; an unknown image 404', async () => {
    const image = await t.createImage(t.alpha);
    assertFault(await startImport(t.alpha, image.id, { method: { name: 'teleport' } }), 400);
    assertFault(await startImport(t.alpha, image.id, {}), 400);
    assertFault(await startImport(t.alpha, image.id, { method: { name: 'glance-direct' }, all_stores: 'yes' }), 400);
    assertFault(await startImport(t.alpha, randomUUID(), { method: { name: 'glance-direct' } }), 404);
    assert.equal((await show(image.id)).status, 'queued');
  });

  test('another project cannot import into an image it sees; a reader cannot stage', async () => {
    const image = await t.createImage(t.alpha, { visibility: 'community' });
    assertFault(await startImport(t.beta, image.id, { method: { name: 'web-download', uri: `http://127.0.0.1:${webPort}/image.raw` } }), 403);
    assertFault(await stage(t.alphaReader, image.id, randomBytes(10)), 403);
    assert.equal((await show(image.id)).status, 'queued');
  });

  test("an image's tasks are 404 to a project that cannot see it", async () => {
    const image = await t.createImage(t.alpha, { visibility: 'private' });
    assertFault(await t.request('GET', `/v2/images/${image.id}/tasks`, { user: t.beta }), 404);
    const own = await t.request('GET', `/v2/images/${image.id}/tasks`, { user: t.alpha });
    assert.equal(own.status, 200, JSON.stringify(own.body));
    assert.deepEqual(own.body.tasks, []);
  });

  test('staging needs application/octet-stream (415)', async () => {
    const image = await t.createImage(t.alpha);
    const res = await t.request('PUT', `/v2/images/${image.id}/stage`, { user: t.alpha, payload: 'text', headers: { 'content-type': 'text/plain' } });
    assertFault(res, 415);
  });
});
