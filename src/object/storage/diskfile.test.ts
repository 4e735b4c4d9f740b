import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import {
  cleanTmp,
  computeHashes,
  CorruptFileError,
  encodeTrailer,
  getHashes,
  invalidateSuffix,
  mergeMetadata,
  objectDir,
  quarantineHashDir,
  readMetadataFile,
  readReplicaFiles,
  readTail,
  resolveFiles,
  writeMetadataOnlyFile,
  writeObject,
} from './diskfile.js';

describe('diskfile', () => {
  let dev: string;
  const hash = '0123456789abcdef0123456789abc5e7';
  before(() => {
    dev = fs.mkdtempSync(path.join(os.tmpdir(), 'stratus-diskfile-'));
  });
  after(() => {
    fs.rmSync(dev, { recursive: true, force: true });
  });

  it('resolves a hash directory: newest data or tombstone wins, a newer .meta applies', () => {
    const s = resolveFiles('/x', ['1.00000.data', '3.00000.meta', '2.00000.data', '1.50000.ts', '2.50000.meta']);
    assert.equal(s.data, '2.00000.data');
    assert.equal(s.meta, '3.00000.meta');
    assert.deepEqual(s.obsolete.sort(), ['1.00000.data', '1.50000.ts', '2.50000.meta']);
    const t = resolveFiles('/x', ['1.00000.data', '2.00000.ts', '3.00000.meta']);
    assert.equal(t.data, null);
    assert.equal(t.tombstone, '2.00000.ts');
    assert.equal(t.meta, null);
    assert.equal(t.timestamp, '2.00000');
  });

  it('writes an object with its metadata as a trailer and reads both back', async () => {
    await writeObject(dev, 5, hash, { name: '/a/c/o', 'x-timestamp': '1700000000.00000', etag: 'x', 'content-length': '5', 'content-type': 'a/b' }, Readable.from([Buffer.from('he'), Buffer.from('llo')]));
    const dir = objectDir(dev, 5, hash);
    assert.deepEqual(fs.readdirSync(dir), ['1700000000.00000.data']);
    const bytes = fs.readFileSync(path.join(dir, '1700000000.00000.data'));
    assert.equal(bytes.subarray(0, 5).toString(), 'hello');
    assert.equal(bytes.subarray(-8, -4).toString(), 'SWM1');
    const files = await readReplicaFiles(dev, 5, hash);
    assert.equal(files.data?.length, 5);
    assert.equal(files.data?.metadata['content-type'], 'a/b');
    const chunks: Buffer[] = [];
    for await (const c of (await files.data?.open()) as AsyncIterable<Buffer>) chunks.push(c);
    assert.equal(Buffer.concat(chunks).toString(), 'hello');
    await writeMetadataOnlyFile(dev, dir, '1700000001.00000.meta', { 'x-timestamp': '1700000001.00000', 'x-object-meta-a': '1' }, true);
    assert.deepEqual(await readMetadataFile(path.join(dir, '1700000001.00000.meta')), { 'x-timestamp': '1700000001.00000', 'x-object-meta-a': '1' });
    // A newer object replaces both files.
    await writeObject(dev, 5, hash, { name: '/a/c/o', 'x-timestamp': '1700000002.00000', etag: 'y', 'content-length': '0', 'content-type': 'a/b' }, Buffer.alloc(0));
    assert.deepEqual(fs.readdirSync(dir), ['1700000002.00000.data']);
  });

  it('refuses a file without a valid trailer', async () => {
    const file = path.join(dev, 'junk');
    fs.writeFileSync(file, 'not an object at all');
    const handle = await fs.promises.open(file, 'r');
    try {
      await assert.rejects(readTail(handle), CorruptFileError);
    } finally {
      await handle.close();
    }
    fs.writeFileSync(file, Buffer.concat([Buffer.from('body'), encodeTrailer({ a: 'b' })]).subarray(0, 10));
    await assert.rejects(readMetadataFile(file), CorruptFileError);
  });

  it('merges .meta metadata as Swift does', () => {
    const data = { 'x-timestamp': '1.00000', 'content-type': 'a/b', etag: 'e', 'content-length': '3', 'x-object-meta-old': 'o', 'x-object-sysmeta-s': 's', 'content-encoding': 'gzip' };
    const merged = mergeMetadata(data, { 'x-timestamp': '2.00000', 'x-object-meta-new': 'n' });
    assert.deepEqual(merged, { 'x-timestamp': '2.00000', 'x-object-meta-new': 'n', etag: 'e', 'content-length': '3', 'x-object-sysmeta-s': 's', 'content-type': 'a/b' });
    const retyped = mergeMetadata(data, { 'x-timestamp': '2.00000', 'content-type': 'c/d', 'content-type-timestamp': '2.00000' });
    assert.equal(retyped['content-type'], 'c/d');
  });

  it('removes stale temporary uploads only', async () => {
    const tmp = path.join(dev, 'tmp');
    fs.mkdirSync(tmp, { recursive: true });
    fs.writeFileSync(path.join(tmp, 'old'), 'x');
    fs.writeFileSync(path.join(tmp, 'fresh'), 'y');
    const past = new Date(Date.now() - 2 * 3600_000);
    fs.utimesSync(path.join(tmp, 'old'), past, past);
    assert.equal(await cleanTmp(dev), 1);
    assert.deepEqual(fs.readdirSync(tmp), ['fresh']);
    fs.rmSync(path.join(tmp, 'fresh'));
  });

  it('computes suffix hashes, notices changes, and quarantines', async () => {
    const h2 = 'ffffffffffffffffffffffffffffa5e7';
    await writeObject(dev, 9, h2, { name: '/a/c/p', 'x-timestamp': '1700000000.00000', etag: 'x', 'content-length': '1', 'content-type': 'a/b' }, Buffer.from('x'));
    const first = await getHashes(dev, 9);
    assert.deepEqual(first, await computeHashes(dev, 9));
    assert.ok(first['5e7']);
    const dest = await quarantineHashDir(dev, 9, h2);
    assert.equal(dest, path.join(dev, 'quarantined', 'objects', h2));
    const second = await getHashes(dev, 9);
    assert.equal(second['5e7'], undefined);
    invalidateSuffix(dev, 9, '5e7', true);
    assert.deepEqual(await getHashes(dev, 9), {});
  });
});
