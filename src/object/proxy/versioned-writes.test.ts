import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import { copy } from './copy.js';
import { dlo } from './dlo.js';
import { bodyOf, chain, MemorySwift, request, testContext } from './memory-swift.test-util.js';
import type { Handler } from './pipeline.js';
import { slo } from './slo.js';
import { createVersionedWrites, DELETE_MARKER_CONTENT_TYPE, versionName, versionsPrefix, type VersioningInfoSource } from './versioned-writes.js';

const A = '/v1/AUTH_a';

describe('versioned_writes names', () => {
  it('prefixes versions with the UTF-8 length in 3 hex digits', () => {
    assert.equal(versionsPrefix('myobject'), '008myobject/');
    assert.equal(versionsPrefix('é'), '002é/');
    assert.equal(versionName('o', '1700000000.12345'), '001o/1700000000.12345');
  });
});

describe('versioned_writes middleware', () => {
  let store: MemorySwift;
  let app: Handler;
  let info: Record<string, unknown>;

  beforeEach(async () => {
    store = new MemorySwift();
    info = {};
    const infoSource: VersioningInfoSource = async (_ctx, _req, account, container) => {
      const stored = store.container(account, container);
      const sysmeta: Record<string, string> = {};
      for (const [name, value] of Object.entries(stored?.headers ?? {})) if (name.startsWith('x-container-sysmeta-')) sysmeta[name.slice(20)] = value;
      return { sysmeta, versions: null, writeAcl: stored?.headers['x-container-write'] ?? null };
    };
    app = chain([copy, slo, dlo, createVersionedWrites(infoSource)], store.handler, testContext(info));
  });

  async function get(path: string): Promise<{ status: number; body: string }> {
    const resp = await app(request('GET', path));
    return { status: resp.status, body: (await bodyOf(resp)).toString() };
  }

  function versions(): string[] {
    return [...(store.container('AUTH_a', 'versions')?.objects.keys() ?? [])].sort();
  }

  it('registers /info and keeps the location as sysmeta, shown under the client header', async () => {
    assert.deepEqual(info['versioned_writes'], { allowed_flags: ['x-versions-location', 'x-history-location'] });
    assert.equal((await app(request('PUT', `${A}/c`, { headers: { 'x-versions-location': 'versions' } }))).status, 201);
    assert.equal(store.container('AUTH_a', 'c')?.headers['x-container-sysmeta-versions-location'], 'versions');
    assert.equal(store.container('AUTH_a', 'c')?.headers['x-versions-location'], undefined);
    const head = await app(request('HEAD', `${A}/c`));
    assert.equal(head.headers['x-versions-location'], 'versions');
    assert.equal(head.headers['x-history-location'], undefined);
    await app(request('POST', `${A}/c`, { headers: { 'x-history-location': 'hist' } }));
    const after = await app(request('HEAD', `${A}/c`));
    assert.equal(after.headers['x-history-location'], 'hist');
    assert.equal(after.headers['x-versions-location'], undefined);
    await app(request('POST', `${A}/c`, { headers: { 'x-remove-history-location': 'x' } }));
    const removed = await app(request('HEAD', `${A}/c`));
    assert.equal(removed.headers['x-history-location'], undefined);
    assert.equal(removed.headers['x-versions-location'], undefined);
  });

  it('refuses both locations at once, and a location with a slash', async () => {
    const both = await app(request('PUT', `${A}/c`, { headers: { 'x-versions-location': 'v', 'x-history-location': 'h' } }));
    assert.equal(both.status, 400);
    assert.equal((await bodyOf(both)).toString(), 'Only one of x-versions-location or x-history-location may be specified');
    const slash = await app(request('PUT', `${A}/c`, { headers: { 'x-versions-location': 'v/x' } }));
    assert.equal(slash.status, 412);
    assert.equal(store.container('AUTH_a', 'c'), undefined);
    assert.equal((await app(request('PUT', `${A}/c`, { headers: { 'x-versions-location': 'v', 'x-history-location': '' } }))).status, 201);
  });

  it('stack mode: an overwrite archives the old version, DELETE brings it back (Tempest flow)', async () => {
    await app(request('PUT', `${A}/versions`));
    await app(request('PUT', `${A}/c`, { headers: { 'x-versions-location': 'versions' } }));
    await app(request('PUT', `${A}/c/obj`, { body: 'one', headers: { 'x-object-meta-v': '1', 'content-type': 'text/one' } }));
    assert.deepEqual(versions(), []);
    await app(request('PUT', `${A}/c/obj`, { body: 'two' }));
    assert.equal(versions().length, 1);
    assert.match(versions()[0] ?? '', /^003obj\/\d{10}\.\d{5}$/);
    const archived = store.object('AUTH_a', 'versions', versions()[0] ?? '');
    assert.equal(archived?.data.toString(), 'one');
    assert.equal(archived?.headers['x-object-meta-v'], '1');
    assert.equal(archived?.headers['content-type'], 'text/one');
    await app(request('PUT', `${A}/c/obj`, { body: 'three' }));
    assert.equal(versions().length, 2);
    assert.deepEqual(await get(`${A}/c/obj`), { status: 200, body: 'three' });

    assert.equal((await app(request('DELETE', `${A}/c/obj`))).status, 204);
    assert.deepEqual(await get(`${A}/c/obj`), { status: 200, body: 'two' });
    assert.equal(versions().length, 1);
    assert.equal((await app(request('DELETE', `${A}/c/obj`))).status, 204);
    assert.deepEqual(await get(`${A}/c/obj`), { status: 200, body: 'one' });
    assert.equal(store.object('AUTH_a', 'c', 'obj')?.headers['x-object-meta-v'], '1');
    assert.equal(versions().length, 0);
    assert.equal((await app(request('DELETE', `${A}/c/obj`))).status, 204);
    assert.equal((await get(`${A}/c/obj`)).status, 404);
    assert.equal((await app(request('DELETE', `${A}/c/obj`))).status, 404);
  });

  it('a COPY onto a versioned object archives it too', async () => {
    await app(request('PUT', `${A}/versions`));
    await app(request('PUT', `${A}/c`, { headers: { 'x-versions-location': 'versions' } }));
    await app(request('PUT', `${A}/c/obj`, { body: 'one' }));
    await app(request('PUT', `${A}/c/other`, { body: 'other' }));
    assert.equal((await app(request('COPY', `${A}/c/other`, { headers: { destination: 'c/obj' } }))).status, 201);
    assert.equal(versions().length, 1);
    assert.deepEqual(await get(`${A}/c/obj`), { status: 200, body: 'other' });
  });

  it('history mode: DELETE archives and leaves a delete marker', async () => {
    await app(request('PUT', `${A}/versions`));
    await app(request('PUT', `${A}/c`, { headers: { 'x-history-location': 'versions' } }));
    await app(request('PUT', `${A}/c/obj`, { body: 'one' }));
    await app(request('PUT', `${A}/c/obj`, { body: 'two' }));
    assert.equal((await app(request('DELETE', `${A}/c/obj`))).status, 204);
    assert.equal((await get(`${A}/c/obj`)).status, 404);
    const names = versions();
    assert.equal(names.length, 3);
    const contents = names.map((name) => store.object('AUTH_a', 'versions', name));
    assert.deepEqual(
      contents.map((o) => o?.data.toString()),
      ['one', 'two', ''],
    );
    assert.equal(contents[2]?.headers['content-type'], DELETE_MARKER_CONTENT_TYPE);
  });

  it('stack mode over history: DELETE after a delete marker restores the version before it', async () => {
    await app(request('PUT', `${A}/versions`));
    await app(request('PUT', `${A}/c`, { headers: { 'x-history-location': 'versions' } }));
    await app(request('PUT', `${A}/c/obj`, { body: 'one' }));
    await app(request('DELETE', `${A}/c/obj`));
    await app(request('POST', `${A}/c`, { headers: { 'x-versions-location': 'versions' } }));
    assert.equal((await app(request('DELETE', `${A}/c/obj`))).status, 204);
    assert.deepEqual(await get(`${A}/c/obj`), { status: 200, body: 'one' });
    assert.deepEqual(versions(), []);
  });

  it('answers 412 when the archive container is missing, and changes nothing', async () => {
    await app(request('PUT', `${A}/c`, { headers: { 'x-versions-location': 'missing' } }));
    await app(request('PUT', `${A}/c/obj`, { body: 'one' }));
    const resp = await app(request('PUT', `${A}/c/obj`, { body: 'two' }));
    assert.equal(resp.status, 412);
    assert.deepEqual(await get(`${A}/c/obj`), { status: 200, body: 'one' });
  });

  it('needs write access to the versioned container before archiving', async () => {
    await app(request('PUT', `${A}/versions`));
    await app(request('PUT', `${A}/c`, { headers: { 'x-versions-location': 'versions' } }));
    await app(request('PUT', `${A}/c/obj`, { body: 'one' }));
    store.denyWrites.add('c');
    const denying: Handler = (req) => app({ ...req, env: { ...req.env, authorize: () => ({ status: 403, headers: {}, body: 'denied' }) } });
    const resp = await denying(request('PUT', `${A}/c/obj`, { body: 'two' }));
    assert.equal(resp.status, 403);
    assert.deepEqual(versions(), []);
  });

  it('keeps large object manifests as manifests in the archive', async () => {
    await app(request('PUT', `${A}/versions`));
    await app(request('PUT', `${A}/segs`));
    await app(request('PUT', `${A}/segs/1`, { body: 'seg' }));
    await app(request('PUT', `${A}/c`, { headers: { 'x-versions-location': 'versions' } }));
    await app(request('PUT', `${A}/c/big`, { query: 'multipart-manifest=put', body: JSON.stringify([{ path: 'segs/1' }]) }));
    await app(request('PUT', `${A}/c/big`, { body: 'small now' }));
    const archived = store.object('AUTH_a', 'versions', versions()[0] ?? '');
    assert.equal(archived?.headers['x-static-large-object'], 'True');
    assert.match(archived?.headers['content-type'] ?? '', /swift_bytes=3/);
    assert.equal((await app(request('DELETE', `${A}/c/big`))).status, 204);
    assert.deepEqual(await get(`${A}/c/big`), { status: 200, body: 'seg' });
  });
});
