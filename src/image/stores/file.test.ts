import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { after, before, test } from 'node:test';
import { FileStore } from './file.js';
import { openStores } from './index.js';
import { StoreDataMissing } from './store.js';
import { DEFAULTS } from '../../core/config.js';

let root: string;
let store: FileStore;

before(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'stratus-file-store-'));
  store = new FileStore('file', path.join(root, 'file'), 'test files');
  await store.open();
});

after(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

async function bytes(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

test('open creates the directory (owner only) and removes partial writes', async () => {
  const dir = path.join(root, 'fresh');
  const fresh = new FileStore('fresh', dir, 'fresh');
  await fresh.open();
  assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
  fs.writeFileSync(path.join(dir, `${randomUUID()}.partial-abc123`), 'half');
  fs.writeFileSync(path.join(dir, 'kept'), 'whole');
  await fresh.open();
  assert.deepEqual(fs.readdirSync(dir), ['kept']);
});

test('add writes the data under the image id and returns a file URL and the size', async () => {
  const id = randomUUID();
  const data = randomBytes(3 * 1024 * 1024 + 5);
  const stored = await store.add(id, Readable.from([data.subarray(0, 1000), data.subarray(1000)]));
  const file = path.join(store.dir, id);
  assert.equal(stored.url, pathToFileURL(file).href);
  assert.equal(stored.size, data.length);
  assert.ok(fs.readFileSync(file).equals(data), 'the file holds the data');
  assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  assert.deepEqual(fs.readdirSync(store.dir).filter((n) => n.startsWith(id)), [id], 'no temporary file left');
  assert.equal(store.localPath(stored.url), file);
  assert.equal(await store.size(stored.url), data.length);
});

test('get reads all or a range (inclusive ends)', async () => {
  const id = randomUUID();
  const data = Buffer.from('0123456789abcdef');
  const { url } = await store.add(id, Readable.from([data]));
  assert.ok((await bytes(await store.get(url))).equals(data), 'all of it');
  assert.equal((await bytes(await store.get(url, { start: 3, end: 6 }))).toString(), '3456');
  assert.equal((await bytes(await store.get(url, { start: 15, end: 15 }))).toString(), 'f');
});

test('a source that fails leaves nothing behind', async () => {
  const id = randomUUID();
  async function* failing(): AsyncGenerator<Buffer> {
    yield Buffer.alloc(1024, 1);
    throw new Error('the client went away');
  }
  await assert.rejects(store.add(id, Readable.from(failing())), /the client went away/);
  assert.deepEqual(fs.readdirSync(store.dir).filter((n) => n.startsWith(id)), [], 'no file of the image');
});

test('delete removes the data; deleting again is fine; reading it then is StoreDataMissing', async () => {
  const id = randomUUID();
  const { url } = await store.add(id, Readable.from([Buffer.from('x')]));
  await store.delete(url);
  assert.ok(!fs.existsSync(path.join(store.dir, id)), 'deleted');
  await store.delete(url);
  await assert.rejects(store.get(url), StoreDataMissing);
  await assert.rejects(store.size(url), StoreDataMissing);
});

test('owns only URLs of files directly in its directory; never touches others', async () => {
  const inside = pathToFileURL(path.join(store.dir, 'abc')).href;
  const outsideFile = path.join(root, 'outside');
  fs.writeFileSync(outsideFile, 'secret');
  const outside = pathToFileURL(outsideFile).href;
  assert.ok(store.owns(inside), 'its own file');
  assert.ok(!store.owns(outside), 'a file elsewhere');
  assert.ok(!store.owns(pathToFileURL(path.join(store.dir, 'sub', 'abc')).href), 'a file in a subdirectory');
  assert.ok(!store.owns('http://example.com/abc'), 'a web URL');
  await assert.rejects(store.get(outside), StoreDataMissing);
  await assert.rejects(store.delete(outside), StoreDataMissing);
  assert.equal(fs.readFileSync(outsideFile, 'utf8'), 'secret', 'the outside file is untouched');
  const traversal = `file://${store.dir}/../outside`;
  await assert.rejects(store.get(traversal), StoreDataMissing);
});

test('openStores: the default is the first writable store unless configured; bad configurations are refused', async () => {
  const config = structuredClone(DEFAULTS.image);
  config.stores = { web: { type: 'http' }, one: { type: 'file' }, two: { type: 'file', path: path.join(root, 'elsewhere') } };
  const stores = await openStores(config, root);
  assert.equal(stores.defaultId, 'one');
  assert.deepEqual(stores.writable().map((s) => s.id), ['one', 'two']);
  assert.ok(fs.existsSync(path.join(root, 'images', 'one')), 'a file store without a path lives under the data directory');
  assert.ok(fs.existsSync(path.join(root, 'elsewhere')), 'a configured path');
  const url = pathToFileURL(path.join(root, 'elsewhere', 'x')).href;
  assert.equal(stores.forUrl(url)?.id, 'two');
  assert.equal(stores.forUrl('https://example.com/image')?.type, 'http', 'web locations are readable');
  assert.equal(stores.forUrl('file:///nowhere/x'), undefined);
  assert.equal((await openStores({ ...config, default_store: 'two' }, root)).defaultId, 'two');
  await assert.rejects(openStores({ ...config, default_store: 'web' }, root), /not a writable/);
  await assert.rejects(openStores({ ...config, default_store: 'none' }, root), /not a writable/);
  await assert.rejects(openStores({ ...config, stores: { web: { type: 'http' } } }, root), /no writable/);
  await assert.rejects(openStores({ ...config, stores: { 'bad id!': { type: 'file' } } }, root), /must be/);
  await assert.rejects(openStores({ ...config, stores: { s3: { type: 's3' as 'file' } } }, root), /unknown type/);
});
