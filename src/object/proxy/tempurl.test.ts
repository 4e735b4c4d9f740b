import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createObjectTestCloud, type ObjectTestCloud } from '../testing.js';

/** A temp URL's query, signed as clients (swift tempurl, Tempest) sign it. */
function signed(method: string, path: string, key: string, options: { expires?: number | string; digest?: 'sha1' | 'sha256' | 'sha512'; base64?: boolean; prefix?: string; ip?: string; extra?: string } = {}): string {
  const expires = options.expires ?? Math.floor(Date.now() / 1000) + 600;
  const signedPath = options.prefix !== undefined ? `prefix:${path.split('/').slice(0, 4).join('/')}/${options.prefix}` : path;
  const body = `${options.ip ? `ip=${options.ip}\n` : ''}${method}\n${typeof expires === 'number' ? expires : Math.floor(Date.parse(expires) / 1000)}\n${signedPath}`;
  const mac = createHmac(options.digest ?? 'sha256', key).update(body);
  const sig = options.base64 ? `${options.digest}:${mac.digest('base64url')}` : mac.digest('hex');
  let query = `temp_url_sig=${encodeURIComponent(sig)}&temp_url_expires=${encodeURIComponent(String(expires))}`;
  if (options.prefix !== undefined) query += `&temp_url_prefix=${encodeURIComponent(options.prefix)}`;
  if (options.ip) query += `&temp_url_ip_range=${encodeURIComponent(options.ip)}`;
  if (options.extra) query += `&${options.extra}`;
  return query;
}

describe('tempurl', () => {
  let cloud: ObjectTestCloud;
  let a: string;
  const key = 'account-key';

  before(async () => {
    cloud = await createObjectTestCloud();
    a = cloud.account(cloud.alpha);
    assert.equal((await cloud.request('POST', a, { headers: { 'x-account-meta-temp-url-key': key } })).status, 204);
    assert.equal((await cloud.request('PUT', `${a}/c`)).status, 201);
    assert.equal((await cloud.request('PUT', `${a}/c/file.txt`, { body: 'hello tempurl', headers: { 'x-object-meta-private': 'p', 'x-object-meta-public-colour': 'blue' } })).status, 201);
  });
  after(async () => cloud?.close());

  it('lets anyone GET and HEAD with a valid signature, as an attachment that expires', async () => {
    const path = `${a}/c/file.txt`;
    const expires = Math.floor(Date.now() / 1000) + 300;
    const r = await cloud.request('GET', path, { user: null, query: signed('GET', path, key, { expires }) });
    assert.equal(r.status, 200);
    assert.equal(r.text, 'hello tempurl');
    assert.equal(r.headers['content-disposition'], `attachment; filename="file.txt"; filename*=UTF-8''file.txt`);
    assert.equal(r.headers.expires, new Date(expires * 1000).toUTCString());
    // Private metadata stays private; public-* is shown.
    assert.equal(r.headers['x-object-meta-private'], undefined);
    assert.equal(r.headers['x-object-meta-public-colour'], 'blue');
    const head = await cloud.request('HEAD', path, { user: null, query: signed('GET', path, key) });
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], '13');
  });

  it('accepts SHA-1, SHA-512 in base64, ISO 8601 expiry, inline and filename', async () => {
    const path = `${a}/c/file.txt`;
    assert.equal((await cloud.request('GET', path, { user: null, query: signed('GET', path, key, { digest: 'sha1' }) })).status, 200);
    assert.equal((await cloud.request('GET', path, { user: null, query: signed('GET', path, key, { digest: 'sha512', base64: true }) })).status, 200);
    const iso = new Date(Date.now() + 600_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
    assert.equal((await cloud.request('GET', path, { user: null, query: signed('GET', path, key, { expires: iso }) })).status, 200);
    const inline = await cloud.request('GET', path, { user: null, query: signed('GET', path, key, { extra: 'inline' }) });
    assert.equal(inline.headers['content-disposition'], 'inline');
    const named = await cloud.request('GET', path, { user: null, query: signed('GET', path, key, { extra: 'filename=My+Report.pdf' }) });
    assert.equal(named.headers['content-disposition'], `attachment; filename="My Report.pdf"; filename*=UTF-8''My%20Report.pdf`);
  });

  it('refuses bad, expired and misused signatures with 401', async () => {
    const path = `${a}/c/file.txt`;
    const expect401 = async (query: string, method = 'GET', target = path): Promise<void> => {
      const r = await cloud.request(method, target, { user: null, query });
      assert.equal(r.status, 401, query);
      if (method !== 'HEAD') assert.equal(r.text, '401 Unauthorized: Temp URL invalid\n');
    };
    await expect401(signed('GET', path, 'wrong-key'));
    await expect401(signed('GET', path, key, { expires: Math.floor(Date.now() / 1000) - 1 }));
    await expect401(signed('PUT', path, key)); // made for PUT, used for GET
    await expect401(signed('GET', path, key, { digest: 'sha1' }).replace(/temp_url_sig=([0-9a-f])/, (_m, c: string) => `temp_url_sig=${c === '0' ? '1' : '0'}`));
    await expect401(signed('GET', path, key), 'GET', `${a}/c/other.txt`);
    await expect401(signed('GET', path, key, { digest: 'sha512', base64: true }).replace('sha512%3A', 'md5%3A'));
    await expect401('temp_url_sig=abc&temp_url_expires=soon');
    await expect401(`temp_url_expires=${Math.floor(Date.now() / 1000) + 60}`);
    await expect401(signed('GET', path, key), 'HEAD', `${a}/c/missing`);
  });

  it('allows PUT with a PUT signature, without a token, and refuses manifest headers', async () => {
    const path = `${a}/c/upload.bin`;
    const put = await cloud.request('PUT', path, { user: null, body: 'uploaded', query: signed('PUT', path, key) });
    assert.equal(put.status, 201);
    assert.equal((await cloud.request('GET', path)).text, 'uploaded');
    // A HEAD may use a URL made for PUT.
    assert.equal((await cloud.request('HEAD', path, { user: null, query: signed('PUT', path, key) })).status, 200);
    const manifest = await cloud.request('PUT', path, { user: null, body: '', query: signed('PUT', path, key), headers: { 'x-object-manifest': 'c/seg' } });
    assert.equal(manifest.status, 400);
    assert.equal(manifest.text, "The header 'X-Object-Manifest' is not allowed in this tempurl");
    const elsewhere = await cloud.request('PUT', path, { user: null, body: '', query: signed('PUT', path, key), headers: { 'x-copy-from-account': 'AUTH_someone-else', 'x-copy-from': 'c/x' } });
    assert.equal(elsewhere.status, 401);
  });

  it('grants every object under a prefix with temp_url_prefix', async () => {
    await cloud.request('PUT', `${a}/c/pre/one`, { body: '1' });
    await cloud.request('PUT', `${a}/c/pre/sub/two`, { body: '2' });
    const query = signed('GET', `${a}/c/pre/one`, key, { prefix: 'pre/' });
    assert.equal((await cloud.request('GET', `${a}/c/pre/one`, { user: null, query })).text, '1');
    assert.equal((await cloud.request('GET', `${a}/c/pre/sub/two`, { user: null, query })).text, '2');
    assert.equal((await cloud.request('GET', `${a}/c/file.txt`, { user: null, query })).status, 401);
  });

  it('binds a URL to client addresses with temp_url_ip_range', async () => {
    const path = `${a}/c/file.txt`;
    assert.equal((await cloud.request('GET', path, { user: null, query: signed('GET', path, key, { ip: '127.0.0.0/8' }) })).status, 200);
    assert.equal((await cloud.request('GET', path, { user: null, query: signed('GET', path, key, { ip: '10.0.0.0/8' }) })).status, 401);
  });

  it('uses container keys and the second key of each, scoped to the container', async () => {
    await cloud.request('PUT', `${a}/other`);
    await cloud.request('PUT', `${a}/other/x`, { body: 'x' });
    await cloud.request('POST', `${a}/c`, { headers: { 'x-container-meta-temp-url-key-2': 'container-key' } });
    await cloud.request('POST', a, { headers: { 'x-account-meta-temp-url-key-2': 'second-key' } });
    const path = `${a}/c/file.txt`;
    assert.equal((await cloud.request('GET', path, { user: null, query: signed('GET', path, 'container-key') })).status, 200);
    assert.equal((await cloud.request('GET', path, { user: null, query: signed('GET', path, 'second-key') })).status, 200);
    assert.equal((await cloud.request('GET', `${a}/other/x`, { user: null, query: signed('GET', `${a}/other/x`, 'container-key') })).status, 401);
  });

  it('lets DELETE through with a DELETE signature and leaves requests without one alone', async () => {
    await cloud.request('PUT', `${a}/c/doomed`, { body: 'x' });
    assert.equal((await cloud.request('DELETE', `${a}/c/doomed`, { user: null, query: signed('DELETE', `${a}/c/doomed`, key) })).status, 204);
    assert.equal((await cloud.request('GET', `${a}/c/doomed`)).status, 404);
    assert.equal((await cloud.request('GET', `${a}/c/file.txt`, { user: null })).status, 401);
  });

  it('reports its settings in /info', async () => {
    const info = (await cloud.request('GET', '/info', { user: null })).json<{ tempurl: { methods: string[]; allowed_digests: string[] } }>();
    assert.deepEqual(info.tempurl.methods, ['GET', 'HEAD', 'PUT', 'POST', 'DELETE']);
    assert.deepEqual(info.tempurl.allowed_digests, ['sha1', 'sha256', 'sha512']);
  });
});
