import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { beforeEach, describe, it } from 'node:test';
import { copy } from './copy.js';
import { dlo } from './dlo.js';
import { bodyOf, chain, MemorySwift, request, testContext } from './memory-swift.test-util.js';
import type { Handler } from './pipeline.js';
import { slo } from './slo.js';

const md5 = (data: Buffer | string): string => createHash('md5').update(data).digest('hex');
const A = '/v1/AUTH_a';

describe('copy middleware', () => {
  let store: MemorySwift;
  let app: Handler;

  beforeEach(async () => {
    store = new MemorySwift();
    app = chain([copy, slo, dlo], store.handler, testContext());
    for (const container of ['c', 'd', 'segs']) await app(request('PUT', `${A}/${container}`));
    await app(request('PUT', '/v1/AUTH_b/other'));
    await app(request('PUT', `${A}/c/src`, { body: 'source data', headers: { 'content-type': 'text/x-src', 'x-object-meta-src': 'src_value', 'content-disposition': 'inline', 'x-object-sysmeta-thing': 's' } }));
  });

  it('COPY with Destination copies data and metadata and says where from', async () => {
    const resp = await app(request('COPY', `${A}/c/src`, { headers: { destination: 'd/dst', 'x-object-meta-test': 'value' } }));
    assert.equal(resp.status, 201);
    assert.equal(resp.headers['x-copied-from'], 'c/src');
    assert.equal(resp.headers['x-copied-from-account'], 'AUTH_a');
    assert.ok(resp.headers['x-copied-from-last-modified']);
    assert.equal(resp.headers['x-object-meta-src'], 'src_value');
    assert.equal(resp.headers['x-object-meta-test'], 'value');
    assert.ok(resp.headers['etag']);
    const copied = store.object('AUTH_a', 'd', 'dst');
    assert.equal(copied?.data.toString(), 'source data');
    assert.equal(copied?.headers['content-type'], 'text/x-src');
    assert.equal(copied?.headers['x-object-meta-src'], 'src_value');
    assert.equal(copied?.headers['x-object-meta-test'], 'value');
    assert.equal(copied?.headers['content-disposition'], 'inline');
    assert.equal(copied?.headers['x-object-sysmeta-thing'], 's');
  });

  it('PUT with X-Copy-From (leading slash or not, quoted names) copies too', async () => {
    await app(request('PUT', `${A}/c/sp ace`, { body: 'spaced' }));
    const resp = await app(request('PUT', `${A}/d/x`, { headers: { 'x-copy-from': '/c/sp%20ace', 'content-length': '0' } }));
    assert.equal(resp.status, 201);
    assert.equal(resp.headers['x-copied-from'], 'c/sp%20ace');
    assert.equal(store.object('AUTH_a', 'd', 'x')?.data.toString(), 'spaced');
  });

  it('X-Fresh-Metadata drops the source user metadata but keeps sysmeta', async () => {
    const resp = await app(request('COPY', `${A}/c/src`, { headers: { destination: '/c/fresh', 'x-fresh-metadata': 'true' } }));
    assert.equal(resp.status, 201);
    assert.equal(resp.headers['x-object-meta-src'], undefined);
    const copied = store.object('AUTH_a', 'c', 'fresh');
    assert.equal(copied?.headers['x-object-meta-src'], undefined);
    assert.equal(copied?.headers['content-disposition'], undefined);
    assert.equal(copied?.headers['x-object-sysmeta-thing'], 's');
    assert.equal(copied?.data.toString(), 'source data');
  });

  it('changes the content type of an object copied onto itself', async () => {
    const resp = await app(request('PUT', `${A}/c/src`, { headers: { 'x-copy-from': 'c/src', 'content-type': 'text/plain; charset=UTF-8' } }));
    assert.equal(resp.status, 201);
    assert.equal(store.object('AUTH_a', 'c', 'src')?.headers['content-type'], 'text/plain; charset=UTF-8');
    assert.equal(store.object('AUTH_a', 'c', 'src')?.data.toString(), 'source data');
  });

  it('copies across accounts both ways', async () => {
    const there = await app(request('COPY', `${A}/c/src`, { headers: { destination: 'other/o', 'destination-account': 'AUTH_b' } }));
    assert.equal(there.status, 201);
    assert.equal(there.headers['x-copied-from-account'], 'AUTH_a');
    assert.equal(store.object('AUTH_b', 'other', 'o')?.data.toString(), 'source data');
    const back = await app(request('PUT', `${A}/d/back`, { headers: { 'x-copy-from': 'other/o', 'x-copy-from-account': 'AUTH_b' } }));
    assert.equal(back.status, 201);
    assert.equal(back.headers['x-copied-from-account'], 'AUTH_b');
    assert.equal(store.object('AUTH_a', 'd', 'back')?.data.toString(), 'source data');
  });

  it('makes a partial copy for a Range', async () => {
    await app(request('PUT', `${A}/d/part`, { headers: { 'x-copy-from': 'c/src', range: 'bytes=0-5' } }));
    assert.equal(store.object('AUTH_a', 'd', 'part')?.data.toString(), 'source');
  });

  it('refuses bad requests with Swift errors and changes nothing', async () => {
    const cases: [Record<string, string>, number, string][] = [
      [{}, 412, 'Destination header required'],
      [{ destination: 'nocontainer' }, 412, 'Destination header must be of the form <container name>/<object name>'],
      [{ destination: '/c/' }, 412, 'Destination header must be of the form <container name>/<object name>'],
      [{ destination: 'c/o', 'destination-account': '' }, 412, 'Account name cannot be empty'],
      [{ destination: 'c/o', 'destination-account': 'a/b' }, 412, 'Account name cannot contain slashes'],
    ];
    for (const [headers, status, body] of cases) {
      const resp = await app(request('COPY', `${A}/c/src`, { headers }));
      assert.equal(resp.status, status, JSON.stringify(headers));
      assert.equal((await bodyOf(resp)).toString(), body);
    }
    const badFrom = await app(request('PUT', `${A}/d/x`, { headers: { 'x-copy-from': 'justone' } }));
    assert.equal(badFrom.status, 412);
    assert.equal((await bodyOf(badFrom)).toString(), 'X-Copy-From header must be of the form <container name>/<object name>');
    const withBody = await app(request('PUT', `${A}/d/x`, { headers: { 'x-copy-from': 'c/src' }, body: 'data' }));
    assert.equal(withBody.status, 400);
    assert.equal((await bodyOf(withBody)).toString(), 'Copy requests require a zero byte body');
    const missing = await app(request('COPY', `${A}/c/nothing`, { headers: { destination: 'd/x' } }));
    assert.equal(missing.status, 404);
    const noContainer = await app(request('COPY', `${A}/c/src`, { headers: { destination: 'nocontainer/x' } }));
    assert.equal(noContainer.status, 404);
    assert.equal(store.object('AUTH_a', 'd', 'x'), undefined);
  });

  it('needs write access to the destination', async () => {
    store.denyWrites.add('d');
    const resp = await app(request('COPY', `${A}/c/src`, { headers: { destination: 'd/x' } }));
    assert.equal(resp.status, 403);
    assert.equal(store.object('AUTH_a', 'd', 'x'), undefined);
  });

  it('copies a large object whole, or its manifest with ?multipart-manifest=get', async () => {
    await app(request('PUT', `${A}/segs/s1`, { body: 'hello ' }));
    await app(request('PUT', `${A}/segs/s2`, { body: 'world' }));
    await app(request('PUT', `${A}/c/slo`, { query: 'multipart-manifest=put', body: JSON.stringify([{ path: 'segs/s1' }, { path: 'segs/s2' }]), headers: { 'x-object-meta-kind': 'slo' } }));
    await app(request('PUT', `${A}/c/dlo`, { headers: { 'x-object-manifest': 'segs/s' }, body: '' }));

    const whole = await app(request('COPY', `${A}/c/slo`, { headers: { destination: 'd/whole' } }));
    assert.equal(whole.status, 201);
    const plain = store.object('AUTH_a', 'd', 'whole');
    assert.equal(plain?.data.toString(), 'hello world');
    assert.equal(plain?.headers['x-static-large-object'], undefined);
    assert.equal(plain?.headers['x-object-sysmeta-slo-etag'], undefined);
    assert.equal(plain?.headers['x-object-meta-kind'], 'slo');

    const manifest = await app(request('COPY', `${A}/c/slo`, { query: 'multipart-manifest=get', headers: { destination: 'd/manifest' } }));
    assert.equal(manifest.status, 201);
    assert.equal(manifest.headers['etag'], `"${md5(md5('hello ') + md5('world'))}"`);
    assert.equal(store.object('AUTH_a', 'd', 'manifest')?.headers['x-static-large-object'], 'True');
    assert.equal((await bodyOf(await app(request('GET', `${A}/d/manifest`)))).toString(), 'hello world');

    const dloWhole = await app(request('PUT', `${A}/d/dlo-whole`, { headers: { 'x-copy-from': 'c/dlo' } }));
    assert.equal(dloWhole.status, 201);
    assert.equal(store.object('AUTH_a', 'd', 'dlo-whole')?.data.toString(), 'hello world');
    const dloManifest = await app(request('PUT', `${A}/d/dlo-manifest`, { query: 'multipart-manifest=get', headers: { 'x-copy-from': 'c/dlo' } }));
    assert.equal(dloManifest.status, 201);
    assert.equal(store.object('AUTH_a', 'd', 'dlo-manifest')?.headers['x-object-manifest'], 'segs/s');
  });

  it('adds COPY to the methods an OPTIONS allows', async () => {
    const app2 = chain([copy], async () => ({ status: 200, headers: { allow: 'GET, PUT' }, body: null }), testContext());
    const resp = await app2(request('OPTIONS', `${A}/c/o`));
    assert.equal(resp.headers['allow'], 'GET, PUT, COPY');
  });
});
