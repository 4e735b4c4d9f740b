import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createObjectTestCloud, type ObjectTestCloud } from '../testing.js';

/**
 * Copy, static and dynamic large objects and versioned writes through the
 * whole proxy (auth, gatekeeper, listing formats) on real storage servers:
 * the flows of Tempest's object storage tests and the cross-tenant rules.
 */

const md5 = (data: Buffer | string): string => createHash('md5').update(data).digest('hex');

/** The headers Tempest's `assertHeaders(resp, 'Object', method)` requires. */
function assertTempestHeaders(resp: { status: number; headers: Record<string, string> }, method: string): void {
  const h = resp.headers;
  if (resp.status !== 204) assert.ok(h['content-length'] !== undefined || h['transfer-encoding'] !== undefined, 'content-length or transfer-encoding');
  assert.ok(h['content-type'], 'content-type');
  assert.match(h['x-trans-id'] ?? '', /^tx[0-9a-f]{21}-[0-9a-f]{10}/);
  assert.ok(h['date'], 'date');
  if (['GET', 'HEAD', 'PUT', 'COPY'].includes(method)) {
    assert.ok(h['etag'], 'etag');
    assert.ok(h['last-modified'], 'last-modified');
  }
  if (method === 'GET' || method === 'HEAD') assert.match(h['x-timestamp'] ?? '', /^\d+\.?\d*$/);
  if (method === 'COPY') {
    assert.ok(h['x-copied-from'], 'x-copied-from');
    assert.ok(h['x-copied-from-last-modified'], 'x-copied-from-last-modified');
  }
}

describe('copy, SLO, DLO and versioned writes on the test cloud', () => {
  let cloud: ObjectTestCloud;
  let a: string;
  let b: string;

  before(async () => {
    cloud = await createObjectTestCloud();
    a = cloud.account(cloud.alpha);
    b = cloud.account(cloud.beta);
  });
  after(async () => {
    await cloud.close();
  });

  describe('static large objects', () => {
    const segment = randomBytes(1024 * 1024);

    it('uploads, reads, lists and deletes an SLO as Tempest does', async () => {
      await cloud.request('PUT', `${a}/slo`);
      for (const name of ['seg_01', 'seg_02']) assert.equal((await cloud.request('PUT', `${a}/slo/${name}`, { body: segment })).status, 201);
      const manifest = JSON.stringify(['seg_01', 'seg_02'].map((name) => ({ path: `/slo/${name}`, etag: md5(segment), size_bytes: segment.length })));
      const put = await cloud.request('PUT', `${a}/slo/big`, { query: 'multipart-manifest=put', body: manifest });
      assert.equal(put.status, 201);
      const sloEtag = md5(md5(segment) + md5(segment));
      assert.equal(put.headers['etag'], `"${sloEtag}"`);
      assertTempestHeaders(put, 'PUT');

      const head = await cloud.request('HEAD', `${a}/slo/big`);
      assert.equal(head.status, 200);
      assertTempestHeaders(head, 'HEAD');
      assert.equal(head.headers['x-static-large-object'], 'True');
      assert.equal(head.headers['etag'], `"${sloEtag}"`);
      assert.equal(head.headers['content-length'], String(2 * segment.length));
      assert.ok(head.headers['x-timestamp']);
      assert.ok(head.headers['last-modified']);
      assert.equal(head.headers['x-object-sysmeta-slo-etag'], undefined);

      const get = await cloud.request('GET', `${a}/slo/big`);
      assert.equal(get.status, 200);
      assertTempestHeaders(get, 'GET');
      assert.ok(get.body.equals(Buffer.concat([segment, segment])));

      const range = await cloud.request('GET', `${a}/slo/big`, { headers: { range: `bytes=${segment.length - 2}-${segment.length + 1}` } });
      assert.equal(range.status, 206);
      assert.ok(range.body.equals(Buffer.concat([segment.subarray(-2), segment.subarray(0, 2)])));

      const listing = await cloud.request('GET', `${a}/slo`, { query: 'format=json&prefix=big' });
      const [entry] = listing.json<{ name: string; bytes: number; hash: string; content_type: string }[]>();
      assert.equal(entry?.bytes, 2 * segment.length);
      assert.ok(!entry?.content_type.includes('swift_bytes'));

      const raw = await cloud.request('GET', `${a}/slo/big`, { query: 'multipart-manifest=get&format=raw' });
      assert.deepEqual(
        raw.json<{ path: string }[]>().map((s) => s.path),
        ['/slo/seg_01', '/slo/seg_02'],
      );

      const del = await cloud.request('DELETE', `${a}/slo/big`, { query: 'multipart-manifest=delete' });
      assert.equal(del.status, 200);
      assertTempestHeaders(del, 'DELETE');
      assert.match(del.text, /Number Deleted: 3\n/);
      const container = await cloud.request('HEAD', `${a}/slo`);
      assert.equal(container.headers['x-container-object-count'], '0');
    });

    it('refuses a manifest with missing segments with Swift error list', async () => {
      await cloud.request('PUT', `${a}/slo2`);
      const put = await cloud.request('PUT', `${a}/slo2/bad`, { query: 'multipart-manifest=put', body: JSON.stringify([{ path: '/slo2/missing' }]) });
      assert.equal(put.status, 400);
      assert.equal(put.text, 'Errors:\n/slo2/missing, 404 Not Found\n');
      assert.equal((await cloud.request('HEAD', `${a}/slo2/bad`)).status, 404);
    });

    it('reads segments with the caller authority: a public manifest does not open private segments', async () => {
      await cloud.request('PUT', `${a}/private-segs`);
      await cloud.request('PUT', `${a}/private-segs/s`, { body: 'secret' });
      await cloud.request('PUT', `${a}/public`, { headers: { 'x-container-read': '.r:*' } });
      assert.equal((await cloud.request('PUT', `${a}/public/slo`, { query: 'multipart-manifest=put', body: JSON.stringify([{ path: '/private-segs/s' }]) })).status, 201);
      const denied = await cloud.request('GET', `${a}/public/slo`, { user: null });
      assert.equal(denied.status, 409);
      assert.ok(!denied.text.includes('secret'));
      await cloud.request('POST', `${a}/private-segs`, { headers: { 'x-container-read': '.r:*' } });
      assert.equal((await cloud.request('GET', `${a}/public/slo`, { user: null })).text, 'secret');
    });
    it('drops the connection when a later segment is gone, after the first bytes went out', async () => {
      await cloud.request('PUT', `${a}/fragile`);
      await cloud.request('PUT', `${a}/fragile/1`, { body: segment });
      await cloud.request('PUT', `${a}/fragile/2`, { body: segment });
      await cloud.request('PUT', `${a}/fragile/slo`, { query: 'multipart-manifest=put', body: JSON.stringify([{ path: '/fragile/1' }, { path: '/fragile/2' }]) });
      await cloud.request('DELETE', `${a}/fragile/2`);
      const outcome = await cloud.request('GET', `${a}/fragile/slo`).then(
        (reply) => ({ status: reply.status, length: reply.body.length }),
        () => ({ status: 200, length: -1 }),
      );
      assert.equal(outcome.status, 200);
      assert.ok(outcome.length < 2 * segment.length);
    });
  });

  describe('dynamic large objects', () => {
    it('concatenates segments by prefix, via PUT or a later POST (Tempest)', async () => {
      await cloud.request('PUT', `${a}/dlo`);
      const parts = Array.from({ length: 10 }, (_, i) => `segment-data-${i}`);
      for (const [i, part] of parts.entries()) await cloud.request('PUT', `${a}/dlo/LObject/${i}`, { body: part });
      const put = await cloud.request('PUT', `${a}/dlo/LObject`, { body: '', headers: { 'x-object-manifest': 'dlo/LObject/' } });
      assert.equal(put.status, 201);
      const head = await cloud.request('HEAD', `${a}/dlo/LObject`);
      assertTempestHeaders(head, 'HEAD');
      assert.equal(head.headers['x-object-manifest'], 'dlo/LObject/');
      assert.equal(head.headers['etag'], `"${md5(parts.map((p) => md5(p)).join(''))}"`);
      assert.equal(head.headers['accept-ranges'], 'bytes');
      assert.ok(head.headers['x-timestamp']);
      const get = await cloud.request('GET', `${a}/dlo/LObject`);
      assertTempestHeaders(get, 'GET');
      assert.equal(get.text, parts.join(''));

      await cloud.request('PUT', `${a}/dlo/Later`, { body: '' });
      assert.equal((await cloud.request('POST', `${a}/dlo/Later`, { headers: { 'x-object-manifest': 'dlo/LObject/' } })).status, 202);
      assert.equal((await cloud.request('GET', `${a}/dlo/Later`)).text, parts.join(''));
      const ranged = await cloud.request('GET', `${a}/dlo/Later`, { headers: { range: 'bytes=10-20' } });
      assert.equal(ranged.status, 206);
      assert.equal(ranged.text, parts.join('').slice(10, 21));
    });
  });

  describe('server-side copy', () => {
    before(async () => {
      await cloud.request('PUT', `${a}/src`);
      await cloud.request('PUT', `${a}/dst`);
      await cloud.request('PUT', `${a}/src/obj`, { body: 'copy me', headers: { 'x-object-meta-src': 'src_value', 'content-type': 'text/x-test' } });
    });

    it('COPY answers with X-Copied-From headers and keeps metadata (Tempest)', async () => {
      const resp = await cloud.request('COPY', `${a}/src/obj`, { headers: { destination: 'dst/copied', 'x-object-meta-test': 'value' } });
      assert.equal(resp.status, 201);
      assertTempestHeaders(resp, 'COPY');
      assert.equal(resp.headers['x-copied-from'], 'src/obj');
      assert.ok(resp.headers['x-copied-from-last-modified']);
      assert.equal(resp.headers['x-object-meta-src'], 'src_value');
      assert.equal(resp.headers['x-object-meta-test'], 'value');
      assert.match(resp.headers['etag'] ?? '', /^[0-9a-f]{32}$/);
      assert.ok(resp.headers['last-modified']);
      const copied = await cloud.request('GET', `${a}/dst/copied`);
      assert.equal(copied.text, 'copy me');
      assert.equal(copied.headers['content-type'], 'text/x-test');
      assert.equal(copied.headers['x-object-meta-src'], 'src_value');
    });

    it('PUT with X-Copy-From and X-Fresh-Metadata drops the old metadata', async () => {
      const resp = await cloud.request('PUT', `${a}/dst/fresh`, { headers: { 'x-copy-from': 'src/obj', 'x-fresh-metadata': 'true', 'content-length': '0' } });
      assert.equal(resp.status, 201);
      const copied = await cloud.request('GET', `${a}/dst/fresh`);
      assert.equal(copied.text, 'copy me');
      assert.equal(copied.headers['x-object-meta-src'], undefined);
    });

    it('copies across tenants only with read access to the source', async () => {
      await cloud.request('PUT', `${b}/inbox`, { user: cloud.beta });
      const denied = await cloud.request('PUT', `${b}/inbox/stolen`, { user: cloud.beta, headers: { 'x-copy-from': 'src/obj', 'x-copy-from-account': a.slice(4) } });
      assert.equal(denied.status, 403);
      assert.equal((await cloud.request('HEAD', `${b}/inbox/stolen`, { user: cloud.beta })).status, 404);
      const intoOther = await cloud.request('COPY', `${a}/src/obj`, { headers: { destination: 'inbox/pushed', 'destination-account': b.slice(4) } });
      assert.equal(intoOther.status, 403);

      await cloud.request('POST', `${a}/src`, { headers: { 'x-container-read': `${cloud.beta.projectId}:*` } });
      const allowed = await cloud.request('PUT', `${b}/inbox/shared`, { user: cloud.beta, headers: { 'x-copy-from': 'src/obj', 'x-copy-from-account': a.slice(4) } });
      assert.equal(allowed.status, 201);
      assert.equal(allowed.headers['x-copied-from-account'], a.slice(4));
      assert.equal((await cloud.request('GET', `${b}/inbox/shared`, { user: cloud.beta })).text, 'copy me');
    });

    it('answers 412 for a bad Destination', async () => {
      const resp = await cloud.request('COPY', `${a}/src/obj`, { headers: { destination: 'nope' } });
      assert.equal(resp.status, 412);
      assert.equal(resp.text, 'Destination header must be of the form <container name>/<object name>');
    });
  });

  describe('versioned writes', () => {
    it('follows Tempest test_versioned_container', async () => {
      const versions = await cloud.request('PUT', `${a}/TestVersionContainer`);
      assert.equal(versions.status, 201);
      assert.equal((await cloud.request('HEAD', `${a}/TestVersionContainer`)).headers['x-versions-location'], undefined);
      await cloud.request('PUT', `${a}/TestBaseContainer`, { headers: { 'X-versions-Location': 'TestVersionContainer' } });
      const base = await cloud.request('HEAD', `${a}/TestBaseContainer`);
      assert.equal(base.headers['x-versions-location'], 'TestVersionContainer');
      assert.equal(base.headers['x-container-sysmeta-versions-location'], undefined);

      const data1 = randomBytes(1024);
      const data2 = randomBytes(1024);
      await cloud.request('PUT', `${a}/TestBaseContainer/TestObject`, { body: data1 });
      await cloud.request('PUT', `${a}/TestBaseContainer/TestObject`, { body: data2 });
      assert.ok((await cloud.request('GET', `${a}/TestBaseContainer/TestObject`)).body.equals(data2));
      assert.equal((await cloud.request('DELETE', `${a}/TestBaseContainer/TestObject`)).status, 204);
      const after1 = await cloud.request('HEAD', `${a}/TestBaseContainer`);
      assert.equal(after1.headers['x-container-object-count'], '1');
      assert.equal(after1.headers['x-container-bytes-used'], '1024');
      assert.ok((await cloud.request('GET', `${a}/TestBaseContainer/TestObject`)).body.equals(data1));
      await cloud.request('DELETE', `${a}/TestBaseContainer/TestObject`);
      assert.equal((await cloud.request('HEAD', `${a}/TestBaseContainer`)).headers['x-container-object-count'], '0');
      assert.equal((await cloud.request('HEAD', `${a}/TestVersionContainer`)).headers['x-container-object-count'], '0');
    });

    it('stack mode pops the newest archived version first', async () => {
      await cloud.request('PUT', `${a}/stack-archive`);
      await cloud.request('PUT', `${a}/stack`, { headers: { 'x-versions-location': 'stack-archive' } });
      for (const version of ['v1', 'v2', 'v3']) await cloud.request('PUT', `${a}/stack/obj`, { body: version });
      for (const expected of ['v2', 'v1']) {
        assert.equal((await cloud.request('DELETE', `${a}/stack/obj`)).status, 204);
        assert.equal((await cloud.request('GET', `${a}/stack/obj`)).text, expected);
      }
      await cloud.request('DELETE', `${a}/stack/obj`);
      assert.equal((await cloud.request('GET', `${a}/stack/obj`)).status, 404);
    });

    it('history mode keeps every version and a delete marker', async () => {
      await cloud.request('PUT', `${a}/archive`);
      await cloud.request('PUT', `${a}/history`, { headers: { 'x-history-location': 'archive' } });
      assert.equal((await cloud.request('HEAD', `${a}/history`)).headers['x-history-location'], 'archive');
      await cloud.request('PUT', `${a}/history/obj`, { body: '1' });
      await cloud.request('PUT', `${a}/history/obj`, { body: '2' });
      await cloud.request('DELETE', `${a}/history/obj`);
      assert.equal((await cloud.request('GET', `${a}/history/obj`)).status, 404);
      const listing = await cloud.request('GET', `${a}/archive`, { query: 'format=json&prefix=003obj/' });
      const items = listing.json<{ content_type: string }[]>();
      assert.equal(items.length, 3);
      assert.equal(items[2]?.content_type, 'application/x-deleted;swift_versions_deleted=1');
    });

    it('refuses both modes at once and a missing archive container', async () => {
      const both = await cloud.request('PUT', `${a}/both`, { headers: { 'x-versions-location': 'x', 'x-history-location': 'y' } });
      assert.equal(both.status, 400);
      await cloud.request('PUT', `${a}/lost`, { headers: { 'x-versions-location': 'no-such-container' } });
      await cloud.request('PUT', `${a}/lost/obj`, { body: '1' });
      assert.equal((await cloud.request('PUT', `${a}/lost/obj`, { body: '2' })).status, 412);
      assert.equal((await cloud.request('GET', `${a}/lost/obj`)).text, '1');
    });
  });
});
