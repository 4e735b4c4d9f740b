import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { ByteReader } from './byte-reader.js';
import { buildTar, paxRecords } from './tar-fixture.test-util.js';
import { parsePax, readTar, TarError, type TarEntry } from './tar-reader.js';

/** Feeds `data` in pieces of `size` bytes (to cross every boundary). */
function chunked(data: Buffer, size: number): Readable {
  const pieces: Buffer[] = [];
  for (let at = 0; at < data.length; at += size) pieces.push(data.subarray(at, at + size));
  return Readable.from(pieces);
}

async function text(stream: Readable): Promise<string> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(chunk as Buffer);
  return Buffer.concat(parts).toString('utf8');
}

async function all(source: Readable, read = true): Promise<{ entry: TarEntry; data: string }[]> {
  const out: { entry: TarEntry; data: string }[] = [];
  for await (const entry of readTar(source)) out.push({ entry, data: read ? await text(entry.body) : '' });
  return out;
}

describe('readTar', () => {
  it('reads files, directories and links with their data, whatever the chunking', async () => {
    const archive = buildTar([
      { name: 'c/', type: '5' },
      { name: 'c/a.txt', data: 'hello' },
      { name: 'c/empty', data: '' },
      { name: 'c/link', type: '2' },
      { name: 'c/b.bin', data: Buffer.alloc(1500, 7) },
    ]);
    for (const size of [1, 7, 512, 100000]) {
      const entries = await all(chunked(archive, size));
      assert.deepEqual(
        entries.map((e) => [e.entry.name, e.entry.type, e.entry.size, e.data.length]),
        [
          ['c/', 'directory', 0, 0],
          ['c/a.txt', 'file', 5, 5],
          ['c/empty', 'file', 0, 0],
          ['c/link', 'symlink', 0, 0],
          ['c/b.bin', 'file', 1500, 1500],
        ],
      );
      assert.equal(entries[1]?.data, 'hello');
    }
  });

  it('skips the data of members that are not read', async () => {
    const archive = buildTar([
      { name: 'c/one', data: 'x'.repeat(3000) },
      { name: 'c/two', data: 'second' },
    ]);
    const names: string[] = [];
    let second = '';
    for await (const entry of readTar(chunked(archive, 100))) {
      names.push(entry.name);
      if (entry.name === 'c/two') second = await text(entry.body);
    }
    assert.deepEqual(names, ['c/one', 'c/two']);
    assert.equal(second, 'second');
  });

  it('skips the rest of a member read only in part', async () => {
    const archive = buildTar([
      { name: 'c/one', data: Buffer.alloc(200000, 1) },
      { name: 'c/two', data: 'after' },
    ]);
    const seen: string[] = [];
    for await (const entry of readTar(chunked(archive, 65536))) {
      if (entry.name === 'c/one') {
        for await (const chunk of entry.body) {
          assert.ok((chunk as Buffer).length > 0);
          break;
        }
      } else seen.push(await text(entry.body));
    }
    assert.deepEqual(seen, ['after']);
  });

  it('takes long names from pax records and GNU long-name records, and keeps pax xattrs', async () => {
    const long = `c/${'d'.repeat(150)}/${'é'.repeat(20)}.txt`;
    const archive = buildTar([
      { name: long, data: 'pax' },
      { name: `${long}2`, data: 'gnu', gnuLongName: true },
      { name: 'c/meta', data: 'm', pax: { 'SCHILY.xattr.user.mime_type': 'text/x-test', 'SCHILY.xattr.user.meta.colour': 'blue' } },
    ]);
    const entries = await all(chunked(archive, 333));
    assert.deepEqual(
      entries.map((e) => [e.entry.name, e.data]),
      [
        [long, 'pax'],
        [`${long}2`, 'gnu'],
        ['c/meta', 'm'],
      ],
    );
    assert.equal(entries[2]?.entry.pax['SCHILY.xattr.user.mime_type'], 'text/x-test');
    assert.equal(entries[2]?.entry.pax['SCHILY.xattr.user.meta.colour'], 'blue');
    assert.equal(entries[0]?.entry.nameIsUtf8, true);
  });

  it('streams a large member without holding it whole', async () => {
    const big = Buffer.alloc(5 * 1024 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = i % 251;
    const archive = buildTar([{ name: 'c/big', data: big }]);
    for await (const entry of readTar(chunked(archive, 64 * 1024))) {
      const hash = createHash('md5');
      let largest = 0;
      for await (const chunk of entry.body) {
        hash.update(chunk as Buffer);
        largest = Math.max(largest, (chunk as Buffer).length);
      }
      assert.equal(hash.digest('hex'), createHash('md5').update(big).digest('hex'));
      assert.ok(largest <= 64 * 1024);
    }
  });

  it('ends at the end-of-archive block and leaves the rest to a ByteReader', async () => {
    const archive = Buffer.concat([buildTar([{ name: 'c/a', data: 'a' }]), Buffer.from('TRAILER')]);
    const reader = new ByteReader(chunked(archive, 10));
    const names: string[] = [];
    for await (const entry of readTar(reader)) names.push(entry.name);
    assert.deepEqual(names, ['c/a']);
    // Only the first zero block is read.
    assert.equal((await reader.readExactly(512)).every((b) => b === 0), true);
    assert.equal((await reader.readExactly(100)).toString(), 'TRAILER');
  });

  it('accepts an archive whose stream ends without the zero blocks', async () => {
    const entries = await all(chunked(buildTar([{ name: 'c/a', data: 'abc' }], { end: false }), 50));
    assert.deepEqual(
      entries.map((e) => e.data),
      ['abc'],
    );
  });

  it('refuses empty, damaged and truncated archives', async () => {
    await assert.rejects(all(Readable.from([])), (err: unknown) => err instanceof TarError && err.message === 'empty file');
    await assert.rejects(all(Readable.from([Buffer.alloc(1024)])), (err: unknown) => err instanceof TarError && err.message === 'empty file');
    await assert.rejects(all(Readable.from([Buffer.from('this is not a tar file'.repeat(40))])), (err: unknown) => err instanceof TarError && err.message === 'bad checksum');
    const archive = buildTar([
      { name: 'c/a', data: 'abc' },
      { name: 'c/b', data: 'def' },
    ]);
    const damaged = Buffer.from(archive);
    damaged[1024 + 10] = (damaged[1024 + 10] as number) ^ 0x01;
    await assert.rejects(all(Readable.from([damaged])), (err: unknown) => err instanceof TarError && err.message === 'bad checksum');
    await assert.rejects(all(Readable.from([archive.subarray(0, 600)])), (err: unknown) => err instanceof TarError && /unexpected end of data/.test(err.message));
    await assert.rejects(all(Readable.from([archive.subarray(0, 300)])), (err: unknown) => err instanceof TarError && err.message === 'truncated header');
  });
});

describe('parsePax', () => {
  it('reads length-prefixed records, UTF-8 values included', () => {
    assert.deepEqual(parsePax(paxRecords({ path: 'a/ü', 'SCHILY.xattr.user.meta.x': 'y=z' })), { path: 'a/ü', 'SCHILY.xattr.user.meta.x': 'y=z' });
  });

  it('refuses malformed records', () => {
    assert.throws(() => parsePax(Buffer.from('99 path=a\n')), TarError);
    assert.throws(() => parsePax(Buffer.from('garbage')), TarError);
  });
});
