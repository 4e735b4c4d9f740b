import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http from 'node:http';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { createObjectTestCloud, type ObjectTestCloud } from '../testing.js';

const md5 = (data: string | Buffer): string => createHash('md5').update(data).digest('hex');

describe('object proxy: objects', () => {
  let cloud: ObjectTestCloud;
  let c: string;

  before(async () => {
    cloud = await createObjectTestCloud();
    c = `${cloud.account(cloud.alpha)}/objects`;
    assert.equal((await cloud.request('PUT', c)).status, 201);
  });
  after(async () => {
    await cloud.close();
  });

  it('stores, reads, updates metadata of and deletes an object', async () => {
    const put = await cloud.request('PUT', `${c}/hello.txt`, { body: 'hello world', headers: { 'x-object-meta-color': 'red', 'content-type': 'text/plain' } });
    assert.equal(put.status, 201);
    assert.equal(put.headers.etag, md5('hello world'));
    assert.ok(put.headers['last-modified']);
    assert.match(put.headers['x-trans-id'] ?? '', /^tx[0-9a-f]{21}-[0-9a-f]{10}$/);
    assert.equal(put.headers['x-openstack-request-id'], put.headers['x-trans-id']);

    const get = await cloud.request('GET', `${c}/hello.txt`);
    assert.equal(get.status, 200);
    assert.equal(get.text, 'hello world');
    assert.equal(get.headers['content-type'], 'text/plain');
    assert.equal(get.headers['x-object-meta-color'], 'red');
    assert.equal(get.headers['accept-ranges'], 'bytes');
    assert.match(get.headers['x-timestamp'] ?? '', /^\d{10}\.\d{5}$/);

    const head = await cloud.request('HEAD', `${c}/hello.txt`);
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], '11');
    assert.equal(head.body.length, 0);

    const post = await cloud.request('POST', `${c}/hello.txt`, { headers: { 'x-object-meta-shape': 'round' } });
    assert.equal(post.status, 202);
    const after = await cloud.request('HEAD', `${c}/hello.txt`);
    assert.equal(after.headers['x-object-meta-shape'], 'round');
    assert.equal(after.headers['x-object-meta-color'], undefined);

    assert.equal((await cloud.request('DELETE', `${c}/hello.txt`)).status, 204);
    assert.equal((await cloud.request('GET', `${c}/hello.txt`)).status, 404);
    assert.equal((await cloud.request('DELETE', `${c}/hello.txt`)).status, 404);
  });

  it('keeps names with unicode and slashes', async () => {
    const name = 'dir/sub dir/ünïcødé ✓.bin';
    assert.equal((await cloud.request('PUT', `${c}/${name}`, { body: 'x' })).status, 201);
    assert.equal((await cloud.request('GET', `${c}/${name}`)).text, 'x');
    const listing = await cloud.request('GET', c, { query: `format=json&prefix=${encodeURIComponent('dir/sub dir/')}` });
    assert.deepEqual(
      listing.json<{ name: string }[]>().map((o) => o.name),
      [name],
    );
  });

  it('streams a chunked body and checks the ETag', async () => {
    const parts = [Buffer.alloc(70_000, 'a'), Buffer.alloc(70_000, 'b')];
    const put = await cloud.request('PUT', `${c}/chunked`, { body: Readable.from(parts), headers: { 'transfer-encoding': 'chunked' } });
    assert.equal(put.status, 201);
    assert.equal(put.headers.etag, md5(Buffer.concat(parts)));
    const get = await cloud.request('GET', `${c}/chunked`);
    assert.deepEqual(get.body, Buffer.concat(parts));
    const bad = await cloud.request('PUT', `${c}/mismatch`, { body: 'data', headers: { etag: md5('other') } });
    assert.equal(bad.status, 422);
    assert.equal((await cloud.request('HEAD', `${c}/mismatch`)).status, 404);
    const good = await cloud.request('PUT', `${c}/quoted`, { body: 'data', headers: { etag: `"${md5('data')}"` } });
    assert.equal(good.status, 201);
  });

  it('serves single and multiple ranges', async () => {
    await cloud.request('PUT', `${c}/range`, { body: '0123456789' });
    const one = await cloud.request('GET', `${c}/range`, { headers: { range: 'bytes=2-4' } });
    assert.equal(one.status, 206);
    assert.equal(one.text, '234');
    assert.equal(one.headers['content-range'], 'bytes 2-4/10');
    const suffix = await cloud.request('GET', `${c}/range`, { headers: { range: 'bytes=-3' } });
    assert.equal(suffix.text, '789');
    const multi = await cloud.request('GET', `${c}/range`, { headers: { range: 'bytes=0-1,5-6' } });
    assert.equal(multi.status, 206);
    assert.match(multi.headers['content-type'] ?? '', /^multipart\/byteranges;\s*boundary=/);
    assert.match(multi.text, /01/);
    assert.match(multi.text, /56/);
    const unsatisfiable = await cloud.request('GET', `${c}/range`, { headers: { range: 'bytes=20-30' } });
    assert.equal(unsatisfiable.status, 416);
  });

  it('applies conditional headers', async () => {
    const put = await cloud.request('PUT', `${c}/cond`, { body: 'abc' });
    const etag = put.headers.etag ?? '';
    assert.equal((await cloud.request('GET', `${c}/cond`, { headers: { 'if-none-match': etag } })).status, 304);
    assert.equal((await cloud.request('GET', `${c}/cond`, { headers: { 'if-match': 'nope' } })).status, 412);
    assert.equal((await cloud.request('GET', `${c}/cond`, { headers: { 'if-match': etag } })).status, 200);
    const modified = await cloud.request('GET', `${c}/cond`, { headers: { 'if-modified-since': new Date(Date.now() + 3_600_000).toUTCString() } });
    assert.equal(modified.status, 304);
    assert.equal((await cloud.request('PUT', `${c}/cond`, { body: 'x', headers: { 'if-none-match': '*' } })).status, 412);
    assert.equal((await cloud.request('PUT', `${c}/cond`, { body: 'x', headers: { 'if-none-match': 'abc' } })).status, 400);
    assert.equal((await cloud.request('PUT', `${c}/cond-new`, { body: 'x', headers: { 'if-none-match': '*' } })).status, 201);
  });

  it('detects content types and keeps given ones', async () => {
    await cloud.request('PUT', `${c}/pic.png`, { body: 'x' });
    assert.equal((await cloud.request('HEAD', `${c}/pic.png`)).headers['content-type'], 'image/png');
    await cloud.request('PUT', `${c}/doc.html`, { body: 'x', headers: { 'content-type': 'application/x-custom' } });
    assert.equal((await cloud.request('HEAD', `${c}/doc.html`)).headers['content-type'], 'application/x-custom');
    await cloud.request('PUT', `${c}/detect.json`, { body: '{}', headers: { 'content-type': 'text/plain', 'x-detect-content-type': 'true' } });
    assert.equal((await cloud.request('HEAD', `${c}/detect.json`)).headers['content-type'], 'application/json');
    await cloud.request('PUT', `${c}/noext`, { body: 'x' });
    assert.equal((await cloud.request('HEAD', `${c}/noext`)).headers['content-type'], 'application/octet-stream');
  });

  it('turns X-Delete-After into X-Delete-At and refuses bad values', async () => {
    const put = await cloud.request('PUT', `${c}/expiring`, { body: 'x', headers: { 'x-delete-after': '3600' } });
    assert.equal(put.status, 201);
    const head = await cloud.request('HEAD', `${c}/expiring`);
    const at = Number(head.headers['x-delete-at']);
    assert.ok(at > Date.now() / 1000 + 3500 && at < Date.now() / 1000 + 3700);
    const bad = await cloud.request('PUT', `${c}/expiring2`, { body: 'x', headers: { 'x-delete-after': 'soon' } });
    assert.equal(bad.status, 400);
    assert.equal(bad.text, 'Non-integer X-Delete-After');
    const past = await cloud.request('POST', `${c}/expiring`, { headers: { 'x-delete-at': '1000' } });
    assert.equal(past.status, 400);
    assert.equal(past.text, 'X-Delete-At in past');
    const gone = await cloud.request('PUT', `${c}/expired`, { body: 'x', headers: { 'x-delete-at': String(Math.floor(Date.now() / 1000) + 2) } });
    assert.equal(gone.status, 201);
  });

  it('answers Swift errors for bad object requests', async () => {
    const missing = await cloud.request('PUT', `${cloud.account(cloud.alpha)}/no-such-container/o`, { body: 'x' });
    assert.equal(missing.status, 404);
    assert.equal(missing.text, '<html><h1>Not Found</h1><p>The resource could not be found.</p></html>');
    const longName = await cloud.request('PUT', `${c}/${'n'.repeat(1025)}`, { body: 'x' });
    assert.equal(longName.status, 400);
    assert.equal(longName.text, 'Object name length of 1025 longer than 1024');
    const noLength = await cloud.request('PUT', `${c}/nolength`, { headers: { 'content-length': '' } });
    assert.ok([400, 411].includes(noLength.status));
    const meta = await cloud.request('PUT', `${c}/meta`, { body: 'x', headers: { 'x-object-meta-big': 'v'.repeat(257) } });
    assert.equal(meta.status, 400);
    assert.equal(meta.text, 'Metadata value longer than 256: x-object-meta-big');
    const tooMany = Object.fromEntries(Array.from({ length: 91 }, (_, i) => [`x-object-meta-k${i}`, 'v']));
    assert.equal((await cloud.request('POST', `${c}/range`, { headers: tooMany })).text, 'Too many metadata items; max 90');
    const swiftParam = await cloud.request('PUT', `${c}/ct`, { body: 'x', headers: { 'content-type': 'text/plain;swift_bytes=3' } });
    assert.equal(swiftParam.status, 400);
    assert.equal(swiftParam.text, 'Invalid Content-Type, swift_* is not a valid parameter name.');
    const method = await cloud.request('PATCH', `${c}/range`);
    assert.equal(method.status, 405);
    assert.equal(method.headers.allow, 'DELETE, GET, HEAD, OPTIONS, POST, PUT');
    assert.equal((await cloud.request('GET', '/v2/AUTH_x/c/o')).status, 400);
    assert.equal((await cloud.request('GET', '/v1')).status, 412);
    assert.equal((await cloud.request('GET', `${cloud.account(cloud.alpha)}//o`)).status, 404);
  });

  it('refuses a body larger than max_file_size', async () => {
    const big = await cloud.request('PUT', `${c}/big`, { headers: { 'content-length': '6000000000', expect: '100-continue' } });
    assert.equal(big.status, 413);
    assert.equal(big.text, 'Your request is too large.');
  });

  it('does not let clients set system metadata or timestamps', async () => {
    const put = await cloud.request('PUT', `${c}/sysmeta`, { body: 'x', headers: { 'x-object-sysmeta-secret': 'v', 'x-timestamp': '1000000000.00000', 'x-backend-storage-policy-index': '5' } });
    assert.equal(put.status, 201);
    const head = await cloud.request('HEAD', `${c}/sysmeta`);
    assert.equal(head.headers['x-object-sysmeta-secret'], undefined);
    assert.ok(Number(head.headers['x-timestamp']) > 1_600_000_000);
    for (const name of Object.keys(head.headers)) assert.ok(!name.startsWith('x-backend'), name);
  });
});

describe('object proxy: HTTP edges', () => {
  let cloud: ObjectTestCloud;
  let c: string;

  before(async () => {
    cloud = await createObjectTestCloud();
    c = `${cloud.account(cloud.alpha)}/edges`;
    await cloud.request('PUT', c);
  });
  after(async () => {
    await cloud.close();
  });

  it('streams a large object both ways', async () => {
    const chunk = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 31) & 0xff;
    const count = 24;
    const hash = createHash('md5');
    for (let i = 0; i < count; i++) hash.update(chunk);
    const expected = hash.digest('hex');
    const body = Readable.from((function* () {
      for (let i = 0; i < count; i++) yield chunk;
    })());
    const put = await cloud.request('PUT', `${c}/large`, { body, headers: { 'content-length': String(count * chunk.length) } });
    assert.equal(put.status, 201);
    assert.equal(put.headers.etag, expected);
    const get = await cloud.request('GET', `${c}/large`);
    assert.equal(get.body.length, count * chunk.length);
    assert.equal(md5(get.body), expected);
  });

  it('refuses paths that are not UTF-8 or hold NUL', async () => {
    const raw = async (path: string): Promise<{ status: number; body: string }> => {
      const res = await fetch(`${cloud.url}${path}`, { headers: { 'x-auth-token': cloud.alpha.token } });
      return { status: res.status, body: await res.text() };
    };
    assert.deepEqual(await raw(`${c}/%FF`), { status: 412, body: 'Invalid UTF8 or contains NULL' });
    assert.deepEqual(await raw(`${c}/a%00b`), { status: 412, body: 'Invalid UTF8 or contains NULL' });
    assert.equal((await raw(`${c}/%zz`)).status, 404);
  });

  it('does not ask for the body of a PUT it refuses (Expect: 100-continue)', async () => {
    const url = new URL(cloud.url);
    const outcome = await new Promise<{ status: number; continued: boolean }>((resolve, reject) => {
      let continued = false;
      const req = http.request({ host: url.hostname, port: url.port, method: 'PUT', path: `${c}/refused`, headers: { expect: '100-continue', 'content-length': '5' }, agent: false });
      req.on('continue', () => {
        continued = true;
        req.end('hello');
      });
      req.on('response', (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, continued }));
      });
      req.on('error', reject);
      req.flushHeaders();
    });
    assert.deepEqual(outcome, { status: 401, continued: false });
    const accepted = await new Promise<number>((resolve, reject) => {
      const req = http.request({ host: url.hostname, port: url.port, method: 'PUT', path: `${c}/accepted`, headers: { expect: '100-continue', 'content-length': '5', 'x-auth-token': cloud.alpha.token }, agent: false });
      req.on('continue', () => req.end('hello'));
      req.on('response', (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.flushHeaders();
    });
    assert.equal(accepted, 201);
    assert.equal((await cloud.request('GET', `${c}/accepted`)).text, 'hello');
  });

  it('stores the account ACL for owners only', async () => {
    const a = cloud.account(cloud.alpha);
    const acl = JSON.stringify({ 'read-only': [cloud.beta.projectId] });
    assert.equal((await cloud.request('POST', a, { headers: { 'x-account-access-control': acl } })).status, 204);
    assert.equal((await cloud.request('HEAD', a)).headers['x-account-access-control'], acl);
    const bad = await cloud.request('POST', a, { headers: { 'x-account-access-control': '{"owner": ["x"]}' } });
    assert.equal(bad.status, 400);
    assert.equal(bad.text, 'Key "owner" not recognized');
  });
});
