import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createObjectTestCloud, type ObjectTestCloud } from '../testing.js';

describe('object proxy: accounts and containers', () => {
  let cloud: ObjectTestCloud;
  let a: string;

  before(async () => {
    cloud = await createObjectTestCloud();
    a = cloud.account(cloud.alpha);
  });
  after(async () => {
    await cloud.close();
  });

  it('answers an account never written as an empty one', async () => {
    const b = cloud.account(cloud.beta);
    const head = await cloud.request('HEAD', b, { user: cloud.beta });
    assert.equal(head.status, 204);
    assert.equal(head.headers['x-account-container-count'], '0');
    assert.equal(head.headers['x-account-object-count'], '0');
    assert.equal(head.headers['x-account-bytes-used'], '0');
    assert.ok(head.headers['x-timestamp']);
    assert.equal((await cloud.request('GET', b, { user: cloud.beta })).status, 204);
    const json = await cloud.request('GET', b, { user: cloud.beta, query: 'format=json' });
    assert.equal(json.status, 200);
    assert.deepEqual(json.json(), []);
    const xml = await cloud.request('GET', b, { user: cloud.beta, query: 'format=xml' });
    assert.equal(xml.text, `<?xml version="1.0" encoding="UTF-8"?>\n<account name="AUTH_${cloud.beta.projectId}">\n</account>`);
    assert.equal(xml.headers['content-type'], 'application/xml; charset=utf-8');
  });

  it('creates, describes, updates and deletes a container', async () => {
    const c = `${a}/crud`;
    const put = await cloud.request('PUT', c, { headers: { 'x-container-meta-color': 'blue' } });
    assert.equal(put.status, 201);
    assert.equal((await cloud.request('PUT', c)).status, 202);
    const head = await cloud.request('HEAD', c);
    assert.equal(head.status, 204);
    assert.equal(head.headers['x-container-object-count'], '0');
    assert.equal(head.headers['x-container-bytes-used'], '0');
    assert.equal(head.headers['x-container-meta-color'], 'blue');
    assert.equal(head.headers['x-storage-policy'], 'Policy-0');
    assert.equal((await cloud.request('POST', c, { headers: { 'x-container-meta-shape': 'square', 'x-remove-container-meta-color': 'x' } })).status, 204);
    const after = await cloud.request('HEAD', c);
    assert.equal(after.headers['x-container-meta-shape'], 'square');
    assert.equal(after.headers['x-container-meta-color'], undefined);

    await cloud.request('PUT', `${c}/o1`, { body: 'abc' });
    const full = await cloud.request('HEAD', c);
    assert.equal(full.headers['x-container-object-count'], '1');
    assert.equal(full.headers['x-container-bytes-used'], '3');
    const conflict = await cloud.request('DELETE', c);
    assert.equal(conflict.status, 409);
    assert.match(conflict.text, /There was a conflict when trying to complete your request\./);
    await cloud.request('DELETE', `${c}/o1`);
    assert.equal((await cloud.request('DELETE', c)).status, 204);
    assert.equal((await cloud.request('HEAD', c)).status, 404);
    assert.equal((await cloud.request('DELETE', c)).status, 404);
    assert.equal((await cloud.request('POST', c, { headers: { 'x-container-meta-a': 'b' } })).status, 404);
  });

  it('lists objects with every query option and format', async () => {
    const c = `${a}/listing`;
    await cloud.request('PUT', c);
    const names = ['a', 'b/1', 'b/2', 'c', 'd/x/1', 'e'];
    for (const name of names) await cloud.request('PUT', `${c}/${name}`, { body: name, headers: { 'content-type': 'text/plain' } });
    const list = async (query: string): Promise<string[]> => {
      const res = await cloud.request('GET', c, { query: `format=json&${query}` });
      assert.equal(res.status, 200, query);
      return res.json<{ name?: string; subdir?: string }[]>().map((o) => o.name ?? `subdir:${o.subdir ?? ''}`);
    };
    assert.deepEqual(await list(''), names);
    assert.deepEqual(await list('prefix=b/'), ['b/1', 'b/2']);
    assert.deepEqual(await list('delimiter=/'), ['a', 'subdir:b/', 'c', 'subdir:d/', 'e']);
    assert.deepEqual(await list('prefix=d/&delimiter=/'), ['subdir:d/x/']);
    assert.deepEqual(await list('marker=b/2'), ['c', 'd/x/1', 'e']);
    assert.deepEqual(await list('end_marker=c'), ['a', 'b/1', 'b/2']);
    assert.deepEqual(await list('marker=a&end_marker=d'), ['b/1', 'b/2', 'c']);
    assert.deepEqual(await list('limit=2'), ['a', 'b/1']);
    assert.deepEqual(await list('reverse=true'), [...names].reverse());
    assert.deepEqual(await list('reverse=true&limit=2'), ['e', 'd/x/1']);

    const full = await cloud.request('GET', c, { query: 'format=json&limit=1' });
    const entry = full.json<Record<string, unknown>[]>()[0] ?? {};
    assert.equal(entry.name, 'a');
    assert.equal(entry.bytes, 1);
    assert.equal(entry.content_type, 'text/plain');
    assert.equal(entry.hash, '0cc175b9c0f1b6a831c399e269772661');
    assert.match(String(entry.last_modified), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$/);

    const plain = await cloud.request('GET', c, { query: 'limit=2' });
    assert.equal(plain.text, 'a\nb/1\n');
    assert.equal(plain.headers['content-type'], 'text/plain; charset=utf-8');
    const xml = await cloud.request('GET', c, { query: 'format=xml&limit=1' });
    assert.match(xml.text, /^<\?xml version="1\.0" encoding="UTF-8"\?>\n<container name="listing"><object><name>a<\/name><hash>0cc175b9c0f1b6a831c399e269772661<\/hash><bytes>1<\/bytes><content_type>text\/plain<\/content_type><last_modified>/);
    const accept = await cloud.request('GET', c, { headers: { accept: 'application/json' } });
    assert.equal(accept.headers['content-type'], 'application/json; charset=utf-8');
    assert.equal(accept.headers.vary, 'Accept');
    assert.equal((await cloud.request('GET', c, { headers: { accept: 'image/png' } })).status, 406);
    const empty = await cloud.request('GET', c, { query: 'prefix=zzz' });
    assert.equal(empty.status, 204);
    const limit = await cloud.request('GET', c, { query: 'limit=10001' });
    assert.equal(limit.status, 412);
    assert.equal(limit.text, 'Maximum limit is 10000');
  });

  it('lists containers of the account with the query options', async () => {
    for (const name of ['list-a', 'list-b', 'list-c']) await cloud.request('PUT', `${a}/${name}`);
    const names = async (query: string): Promise<string[]> =>
      (await cloud.request('GET', a, { query: `format=json&${query}` })).json<{ name: string }[]>().map((x) => x.name);
    assert.deepEqual(await names('prefix=list-'), ['list-a', 'list-b', 'list-c']);
    assert.deepEqual(await names('prefix=list-&marker=list-a'), ['list-b', 'list-c']);
    assert.deepEqual(await names('prefix=list-&limit=1&reverse=true'), ['list-c']);
    assert.deepEqual(await names('prefix=list-&end_marker=list-c'), ['list-a', 'list-b']);
    const head = await cloud.request('HEAD', a);
    assert.equal(head.status, 204);
    assert.ok(Number(head.headers['x-account-container-count']) >= 3);
    assert.ok(head.headers['x-account-storage-policy-policy-0-container-count']);
    const xml = await cloud.request('GET', a, { query: 'format=xml&prefix=list-a' });
    assert.match(xml.text, /<account name="AUTH_[0-9a-f]+">\n<container><name>list-a<\/name><count>0<\/count><bytes>0<\/bytes><last_modified>/);
  });

  it('keeps account metadata and shows temp URL keys only to owners', async () => {
    assert.equal((await cloud.request('POST', a, { headers: { 'x-account-meta-color': 'green', 'x-account-meta-temp-url-key': 'secret' } })).status, 204);
    const head = await cloud.request('HEAD', a);
    assert.equal(head.headers['x-account-meta-color'], 'green');
    assert.equal(head.headers['x-account-meta-temp-url-key'], 'secret');
    assert.equal((await cloud.request('POST', a, { headers: { 'x-remove-account-meta-color': '1' } })).status, 204);
    assert.equal((await cloud.request('HEAD', a)).headers['x-account-meta-color'], undefined);
    const reseller = await cloud.request('HEAD', a, { user: cloud.reseller });
    assert.equal(reseller.status, 204);
    assert.equal(reseller.headers['x-account-meta-temp-url-key'], 'secret');
    const tooLong = await cloud.request('POST', a, { headers: { [`x-account-meta-${'k'.repeat(129)}`]: 'v' } });
    assert.equal(tooLong.status, 400);
    assert.match(tooLong.text, /^Metadata name too long: x-account-meta-k+$/);
  });

  it('refuses bad container requests with Swift messages', async () => {
    const long = await cloud.request('PUT', `${a}/${'c'.repeat(257)}`);
    assert.equal(long.status, 400);
    assert.equal(long.text, 'Container name length of 257 longer than 256');
    const policy = await cloud.request('PUT', `${a}/policy`, { headers: { 'x-storage-policy': 'gold' } });
    assert.equal(policy.status, 400);
    assert.equal(policy.text, "Invalid X-Storage-Policy 'gold'");
    const acl = await cloud.request('PUT', `${a}/acl`, { headers: { 'x-container-write': '.r:*' } });
    assert.equal(acl.status, 400);
    assert.equal(acl.text, "Referrers not allowed in write ACL: '.r:*'");
    const meta = await cloud.request('POST', `${a}/list-a`, { headers: { 'x-container-meta-k': 'v'.repeat(257) } });
    assert.equal(meta.status, 400);
    assert.equal(meta.text, 'Metadata value longer than 256: x-container-meta-k');
  });

  it('lets only the reseller admin create and delete accounts', async () => {
    const b = cloud.account(cloud.beta);
    assert.equal((await cloud.request('PUT', a)).status, 403);
    assert.equal((await cloud.request('DELETE', a)).status, 403);
    assert.equal((await cloud.request('PUT', b, { user: cloud.reseller })).status, 201);
    assert.equal((await cloud.request('HEAD', b, { user: cloud.beta })).status, 204);
  });

  it('serves /info, /healthcheck and /crossdomain.xml to anyone', async () => {
    const info = await cloud.request('GET', '/info', { user: null });
    assert.equal(info.status, 200);
    const body = info.json<{ swift: Record<string, unknown> }>();
    assert.equal(body.swift.max_file_size, 5368709122);
    assert.equal(body.swift.container_listing_limit, 10000);
    assert.deepEqual(body.swift.policies, [{ name: 'Policy-0', aliases: 'Policy-0', default: true }]);
    const health = await cloud.request('GET', '/healthcheck', { user: null });
    assert.equal(health.status, 200);
    assert.equal(health.text, 'OK');
    const cross = await cloud.request('GET', '/crossdomain.xml', { user: null });
    assert.equal(cross.status, 200);
    assert.match(cross.text, /<allow-access-from domain="\*" secure="false" \/>/);
  });
});
