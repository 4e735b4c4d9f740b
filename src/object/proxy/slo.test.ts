import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { beforeEach, describe, it } from 'node:test';
import { dlo } from './dlo.js';
import { bodyOf, chain, MemorySwift, request, testContext } from './memory-swift.test-util.js';
import type { Handler } from './pipeline.js';
import { slo } from './slo.js';

const md5 = (data: Buffer | string): string => createHash('md5').update(data).digest('hex');
const A = '/v1/AUTH_a';

describe('slo middleware', () => {
  let store: MemorySwift;
  let app: Handler;
  let info: Record<string, unknown>;
  const seg1 = Buffer.from('a'.repeat(10));
  const seg2 = Buffer.from('b'.repeat(10));

  beforeEach(async () => {
    store = new MemorySwift();
    info = {};
    app = chain([slo, dlo], store.handler, testContext(info));
    await app(request('PUT', `${A}/c`));
    await app(request('PUT', `${A}/segs`));
    await app(request('PUT', `${A}/segs/one`, { body: seg1 }));
    await app(request('PUT', `${A}/segs/two`, { body: seg2 }));
  });

  async function putManifest(name: string, manifest: unknown, headers: Record<string, string> = {}): Promise<ReturnType<Handler>> {
    return app(request('PUT', `${A}/c/${name}`, { query: 'multipart-manifest=put', headers, body: JSON.stringify(manifest) }));
  }

  const twoSegments = [
    { path: '/segs/one', etag: md5(seg1), size_bytes: 10 },
    { path: '/segs/two', etag: md5(seg2), size_bytes: 10 },
  ];

  it('registers its /info section', () => {
    assert.deepEqual(info['slo'], { max_manifest_segments: 1000, max_manifest_size: 8388608, yield_frequency: 10, min_segment_size: 1, allow_async_delete: false });
  });

  it('stores a manifest as Swift does and answers with the quoted SLO ETag', async () => {
    const resp = await putManifest('big', twoSegments, { 'content-type': 'text/plain' });
    assert.equal(resp.status, 201);
    const sloEtag = md5(md5(seg1) + md5(seg2));
    assert.equal(resp.headers['etag'], `"${sloEtag}"`);
    const stored = store.object('AUTH_a', 'c', 'big');
    assert.ok(stored);
    assert.equal(stored.headers['x-static-large-object'], 'True');
    assert.equal(stored.headers['x-object-sysmeta-slo-etag'], sloEtag);
    assert.equal(stored.headers['x-object-sysmeta-slo-size'], '20');
    assert.equal(stored.headers['content-type'], 'text/plain;swift_bytes=20');
    assert.equal(stored.headers['etag'], md5(stored.data));
    const manifest = JSON.parse(stored.data.toString()) as Record<string, unknown>[];
    assert.deepEqual(Object.keys(manifest[0] ?? {}), ['name', 'bytes', 'hash', 'content_type', 'last_modified']);
    assert.equal(manifest[0]?.['name'], '/segs/one');
  });

  it('streams the segments for GET and reports the totals for HEAD', async () => {
    await putManifest('big', twoSegments, { 'content-type': 'text/plain' });
    const head = await app(request('HEAD', `${A}/c/big`));
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], '20');
    assert.equal(head.headers['etag'], `"${md5(md5(seg1) + md5(seg2))}"`);
    assert.equal(head.headers['x-static-large-object'], 'True');
    assert.equal(head.headers['content-type'], 'text/plain');
    const get = await app(request('GET', `${A}/c/big`));
    assert.equal(get.status, 200);
    assert.deepEqual(await bodyOf(get), Buffer.concat([seg1, seg2]));
  });

  it('serves ranges across segments, single and multiple', async () => {
    await putManifest('big', twoSegments);
    const one = await app(request('GET', `${A}/c/big`, { headers: { range: 'bytes=8-11' } }));
    assert.equal(one.status, 206);
    assert.equal(one.headers['content-range'], 'bytes 8-11/20');
    assert.equal((await bodyOf(one)).toString(), 'aabb');
    const suffix = await app(request('GET', `${A}/c/big`, { headers: { range: 'bytes=-3' } }));
    assert.equal((await bodyOf(suffix)).toString(), 'bbb');
    const many = await app(request('GET', `${A}/c/big`, { headers: { range: 'bytes=0-0,19-19' } }));
    assert.equal(many.status, 206);
    assert.match(many.headers['content-type'] ?? '', /^multipart\/byteranges;boundary=/);
    const text = (await bodyOf(many)).toString();
    assert.match(text, /Content-Range: bytes 0-0\/20\r\n\r\na\r\n/);
    assert.match(text, /Content-Range: bytes 19-19\/20\r\n\r\nb\r\n/);
    const bad = await app(request('GET', `${A}/c/big`, { headers: { range: 'bytes=20-' } }));
    assert.equal(bad.status, 416);
  });

  it('works when the storage servers ignore the backend hints (range and ETag of the manifest)', async () => {
    await putManifest('big', twoSegments);
    store.backendFeatures = false;
    const ranged = await app(request('GET', `${A}/c/big`, { headers: { range: 'bytes=9-10' } }));
    assert.equal(ranged.status, 206);
    assert.equal((await bodyOf(ranged)).toString(), 'ab');
    const etag = md5(md5(seg1) + md5(seg2));
    const matched = await app(request('GET', `${A}/c/big`, { headers: { 'if-match': `"${etag}"` } }));
    assert.equal(matched.status, 200);
    assert.equal((await bodyOf(matched)).length, 20);
    const notModified = await app(request('HEAD', `${A}/c/big`, { headers: { 'if-none-match': etag } }));
    assert.equal(notModified.status, 304);
  });

  it('answers the conditional headers with the SLO ETag', async () => {
    await putManifest('big', twoSegments);
    const etag = md5(md5(seg1) + md5(seg2));
    assert.equal((await app(request('GET', `${A}/c/big`, { headers: { 'if-none-match': `"${etag}"` } }))).status, 304);
    assert.equal((await app(request('GET', `${A}/c/big`, { headers: { 'if-match': 'nope' } }))).status, 412);
  });

  it('returns the manifest for ?multipart-manifest=get, and the put form with format=raw', async () => {
    await putManifest('big', twoSegments, { 'content-type': 'text/plain' });
    const manifest = await app(request('GET', `${A}/c/big`, { query: 'multipart-manifest=get' }));
    assert.equal(manifest.headers['content-type'], 'application/json; charset=utf-8');
    const listed = JSON.parse((await bodyOf(manifest)).toString()) as { name: string; hash: string; bytes: number }[];
    assert.deepEqual(
      listed.map((s) => [s.name, s.hash, s.bytes]),
      [
        ['/segs/one', md5(seg1), 10],
        ['/segs/two', md5(seg2), 10],
      ],
    );
    const raw = await app(request('GET', `${A}/c/big`, { query: 'multipart-manifest=get&format=raw' }));
    const body = await bodyOf(raw);
    assert.equal(body.toString(), `[{"etag": "${md5(seg1)}", "path": "/segs/one", "size_bytes": 10}, {"etag": "${md5(seg2)}", "path": "/segs/two", "size_bytes": 10}]`);
    assert.equal(raw.headers['etag'], md5(body));
    assert.equal(raw.headers['content-type'], 'text/plain');
  });

  it('refuses bad segments with Swift error list (400), in the Accept format', async () => {
    const resp = await putManifest('bad', [{ path: '/segs/one', etag: 'wrong' }, { path: '/segs/missing' }], { accept: 'application/json' });
    assert.equal(resp.status, 400);
    assert.equal(resp.headers['content-type'], 'application/json');
    assert.deepEqual(JSON.parse((await bodyOf(resp)).toString()), { Errors: [['/segs/one', 'Etag Mismatch'], ['/segs/missing', '404 Not Found']] });
    const plain = await putManifest('bad', [{ path: '/segs/missing' }]);
    assert.equal((await bodyOf(plain)).toString(), 'Errors:\n/segs/missing, 404 Not Found\n');
    assert.equal(store.object('AUTH_a', 'c', 'bad'), undefined);
  });

  it('refuses invalid manifests, too many segments, oversized bodies and a wrong ETag', async () => {
    const invalid = await putManifest('bad', [{ nope: 1 }]);
    assert.equal(invalid.status, 400);
    assert.equal((await bodyOf(invalid)).toString(), "Index 0: expected keys to include one of 'data' or 'path'\n");
    const many = await putManifest('bad', Array.from({ length: 1001 }, () => ({ path: '/segs/one' })));
    assert.equal(many.status, 413);
    assert.equal((await bodyOf(many)).toString(), 'Number of object-backed segments must be <= 1000');
    const huge = await app(request('PUT', `${A}/c/bad`, { query: 'multipart-manifest=put', headers: { 'content-length': String(9 * 1024 * 1024) } }));
    assert.equal(huge.status, 413);
    const etag = await putManifest('bad', twoSegments, { etag: 'abc' });
    assert.equal(etag.status, 422);
    const reserved = await app(request('POST', `${A}/c/bad`, { headers: { 'x-static-large-object': 'True' } }));
    assert.equal(reserved.status, 400);
    assert.equal(store.object('AUTH_a', 'c', 'bad'), undefined);
  });

  it('handles ranged segments, data segments and nested SLOs', async () => {
    const inner = await putManifest('inner', [{ path: '/segs/one', range: '-4' }, { data: Buffer.from('XY').toString('base64') }]);
    assert.equal(inner.status, 201);
    const outer = await putManifest('outer', [{ path: '/c/inner' }, { path: '/segs/two', range: '0-1' }]);
    assert.equal(outer.status, 201);
    const stored = JSON.parse(store.object('AUTH_a', 'c', 'outer')?.data.toString() ?? '[]') as Record<string, unknown>[];
    assert.equal(stored[0]?.['sub_slo'], true);
    assert.equal(stored[0]?.['bytes'], 6);
    const get = await app(request('GET', `${A}/c/outer`));
    assert.equal((await bodyOf(get)).toString(), 'aaaaXYbb');
    const part = await app(request('GET', `${A}/c/outer`, { headers: { range: 'bytes=3-6' } }));
    assert.equal((await bodyOf(part)).toString(), 'aXYb');
  });

  it('answers 409 when a segment changed before the first byte, and cuts the stream after', async () => {
    await putManifest('big', twoSegments);
    await app(request('PUT', `${A}/segs/one`, { body: 'changed!!!' }));
    assert.equal((await app(request('GET', `${A}/c/big`))).status, 409);
    await app(request('PUT', `${A}/segs/one`, { body: seg1 }));
    await app(request('DELETE', `${A}/segs/two`));
    const resp = await app(request('GET', `${A}/c/big`));
    assert.equal(resp.status, 200);
    await assert.rejects(bodyOf(resp));
  });

  it('serves part numbers', async () => {
    await putManifest('big', twoSegments);
    const part = await app(request('GET', `${A}/c/big`, { query: 'part-number=2' }));
    assert.equal(part.status, 206);
    assert.equal(part.headers['x-parts-count'], '2');
    assert.equal(part.headers['content-range'], 'bytes 10-19/20');
    assert.deepEqual(await bodyOf(part), seg2);
    const head = await app(request('HEAD', `${A}/c/big`, { query: 'part-number=1' }));
    assert.equal(head.status, 206);
    assert.equal(head.headers['content-length'], '10');
    assert.equal((await app(request('GET', `${A}/c/big`, { query: 'part-number=3' }))).status, 416);
    assert.equal((await app(request('GET', `${A}/c/big`, { query: 'part-number=0' }))).status, 400);
  });

  it('deletes the segments then the manifest, reporting as bulk delete', async () => {
    await app(request('PUT', `${A}/c/inner`, { query: 'multipart-manifest=put', body: JSON.stringify([{ path: '/segs/two' }]) }));
    await putManifest('big', [{ path: '/segs/one' }, { path: '/c/inner' }]);
    const resp = await app(request('DELETE', `${A}/c/big`, { query: 'multipart-manifest=delete' }));
    assert.equal(resp.status, 200);
    assert.equal((await bodyOf(resp)).toString(), 'Number Deleted: 4\nNumber Not Found: 0\nResponse Body: \nResponse Status: 200 OK\nErrors:\n');
    assert.equal(store.container('AUTH_a', 'segs')?.objects.size, 0);
    assert.equal(store.container('AUTH_a', 'c')?.objects.size, 0);
  });

  it('reports what it could not delete, in JSON when asked', async () => {
    const notSlo = await app(request('DELETE', `${A}/segs/one`, { query: 'multipart-manifest=delete', headers: { accept: 'application/json' } }));
    assert.deepEqual(JSON.parse((await bodyOf(notSlo)).toString()), {
      'Response Status': '400 Bad Request',
      'Response Body': '',
      'Number Deleted': 0,
      'Number Not Found': 0,
      Errors: [['/segs/one', 'Not an SLO manifest']],
    });
    assert.ok(store.object('AUTH_a', 'segs', 'one'));
    const missing = await app(request('DELETE', `${A}/c/none`, { query: 'multipart-manifest=delete', headers: { accept: 'application/xml' } }));
    assert.equal(
      (await bodyOf(missing)).toString(),
      '<delete>\n<number_deleted>0</number_deleted>\n<number_not_found>1</number_not_found>\n<response_body></response_body>\n<response_status>200 OK</response_status>\n<errors>\n</errors>\n</delete>\n',
    );
  });

  it('shows SLO sizes and ETags in container listings', async () => {
    await putManifest('big', twoSegments, { 'content-type': 'text/plain' });
    // What a container server keeps: the listing override and swift_bytes.
    const stored = store.object('AUTH_a', 'c', 'big');
    assert.ok(stored);
    stored.headers['etag'] = `${stored.headers['etag'] ?? ''}; slo_etag=${md5(md5(seg1) + md5(seg2))}`;
    const listing = await app(request('GET', `${A}/c`, { query: 'format=json' }));
    const [entry] = JSON.parse((await bodyOf(listing)).toString()) as Record<string, unknown>[];
    assert.equal(entry?.['bytes'], 20);
    assert.equal(entry?.['content_type'], 'text/plain');
    assert.equal(entry?.['slo_etag'], `"${md5(md5(seg1) + md5(seg2))}"`);
    assert.equal(entry?.['hash'], md5(stored.data));
  });
});
