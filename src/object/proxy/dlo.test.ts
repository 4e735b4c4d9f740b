import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { beforeEach, describe, it } from 'node:test';
import { dlo } from './dlo.js';
import { bodyOf, chain, MemorySwift, request, testContext } from './memory-swift.test-util.js';
import type { Handler } from './pipeline.js';

const md5 = (data: Buffer | string): string => createHash('md5').update(data).digest('hex');
const A = '/v1/AUTH_a';

describe('dlo middleware', () => {
  let store: MemorySwift;
  let app: Handler;
  const parts = ['part0-', 'part1-', 'part2'];

  beforeEach(async () => {
    store = new MemorySwift();
    app = chain([dlo], store.handler, testContext());
    await app(request('PUT', `${A}/c`));
    await app(request('PUT', `${A}/segs`));
    for (const [i, part] of parts.entries()) await app(request('PUT', `${A}/segs/big/${String(i).padStart(3, '0')}`, { body: part }));
    await app(request('PUT', `${A}/c/big`, { headers: { 'x-object-manifest': 'segs/big/', 'content-type': 'text/plain', 'x-object-meta-color': 'blue' }, body: '' }));
  });

  it('streams the segments in listing order with the quoted MD5 of their ETags', async () => {
    const resp = await app(request('GET', `${A}/c/big`));
    assert.equal(resp.status, 200);
    assert.equal((await bodyOf(resp)).toString(), parts.join(''));
    assert.equal(resp.headers['etag'], `"${md5(parts.map((p) => md5(p)).join(''))}"`);
    assert.equal(resp.headers['content-length'], String(parts.join('').length));
    assert.equal(resp.headers['x-object-manifest'], 'segs/big/');
    assert.equal(resp.headers['x-object-meta-color'], 'blue');
    assert.equal(resp.headers['accept-ranges'], 'bytes');
  });

  it('answers HEAD with the total length and no body', async () => {
    const resp = await app(request('HEAD', `${A}/c/big`));
    assert.equal(resp.status, 200);
    assert.equal(resp.headers['content-length'], '17');
    assert.equal(resp.body, null);
  });

  it('serves a single range across segments and ignores several', async () => {
    const one = await app(request('GET', `${A}/c/big`, { headers: { range: 'bytes=4-8' } }));
    assert.equal(one.status, 206);
    assert.equal(one.headers['content-range'], 'bytes 4-8/17');
    assert.equal((await bodyOf(one)).toString(), '0-par');
    const many = await app(request('GET', `${A}/c/big`, { headers: { range: 'bytes=0-1,4-5' } }));
    assert.equal(many.status, 200);
    assert.equal((await bodyOf(many)).length, 17);
    const bad = await app(request('GET', `${A}/c/big`, { headers: { range: 'bytes=17-' } }));
    assert.equal(bad.status, 416);
    assert.equal(bad.headers['content-range'], 'bytes */17');
  });

  it('answers the conditional headers with the DLO ETag', async () => {
    const etag = md5(parts.map((p) => md5(p)).join(''));
    assert.equal((await app(request('GET', `${A}/c/big`, { headers: { 'if-none-match': `"${etag}"` } }))).status, 304);
  });

  it('returns the manifest itself for ?multipart-manifest=get', async () => {
    const resp = await app(request('GET', `${A}/c/big`, { query: 'multipart-manifest=get' }));
    assert.equal(resp.status, 200);
    assert.equal((await bodyOf(resp)).length, 0);
    assert.equal(resp.headers['etag'], md5(''));
  });

  it('includes the manifest when it matches its own prefix, and gives an empty object for no segments', async () => {
    await app(request('PUT', `${A}/c/self/1`, { body: 'one' }));
    await app(request('PUT', `${A}/c/self`, { headers: { 'x-object-manifest': 'c/self' }, body: 'me' }));
    assert.equal((await bodyOf(await app(request('GET', `${A}/c/self`)))).toString(), 'meone');
    await app(request('PUT', `${A}/c/empty`, { headers: { 'x-object-manifest': 'segs/nothing' }, body: '' }));
    const empty = await app(request('GET', `${A}/c/empty`));
    assert.equal(empty.headers['etag'], `"${md5('')}"`);
    assert.equal((await bodyOf(empty)).length, 0);
  });

  it('passes the listing error on, and refuses a bad X-Object-Manifest', async () => {
    await app(request('PUT', `${A}/c/lost`, { headers: { 'x-object-manifest': 'nowhere/x' }, body: '' }));
    assert.equal((await app(request('GET', `${A}/c/lost`))).status, 404);
    for (const value of ['noslash', '/c/x', 'c/', 'c/x?y', 'c//x']) {
      const resp = await app(request('PUT', `${A}/c/bad`, { headers: { 'x-object-manifest': value }, body: '' }));
      assert.equal(resp.status, 400, value);
      assert.equal((await bodyOf(resp)).toString(), 'X-Object-Manifest must be in the format container/prefix');
    }
  });

  it('drops the connection when a segment does not match its MD5', async () => {
    const stored = store.object('AUTH_a', 'segs', 'big/001');
    assert.ok(stored);
    stored.data = Buffer.from('PART1-');
    const resp = await app(request('GET', `${A}/c/big`));
    assert.equal(resp.status, 200);
    await assert.rejects(bodyOf(resp), /Bad MD5 checksum/);
  });
});
