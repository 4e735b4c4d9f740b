import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { createObjectTestCloud, type ObjectTestCloud } from '../testing.js';

interface FormOptions {
  redirect?: string;
  maxFileSize?: number;
  maxFileCount?: number;
  expires?: number;
  key?: string;
  digest?: 'sha1' | 'sha256' | 'sha512';
  signature?: string;
  extraFields?: Record<string, string>;
  files?: { name: string; data: string | Buffer; type?: string }[];
}

const BOUNDARY = '----stratus-form-boundary';

/** A browser-style form for a form POST to `path`, signed with `key`. */
function form(path: string, options: FormOptions): Buffer {
  const redirect = options.redirect ?? '';
  const maxFileSize = String(options.maxFileSize ?? 1024);
  const maxFileCount = String(options.maxFileCount ?? 10);
  const expires = String(options.expires ?? Math.floor(Date.now() / 1000) + 600);
  const signature = options.signature ?? createHmac(options.digest ?? 'sha256', options.key ?? 'form-key').update([path, redirect, maxFileSize, maxFileCount, expires].join('\n')).digest('hex');
  const fields: Record<string, string> = { redirect, max_file_size: maxFileSize, max_file_count: maxFileCount, expires, signature, ...options.extraFields };
  const parts: Buffer[] = [];
  for (const [name, value] of Object.entries(fields)) parts.push(Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`));
  (options.files ?? []).forEach((file, i) => {
    parts.push(Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="file${i}"; filename="${file.name}"\r\nContent-Type: ${file.type ?? 'application/octet-stream'}\r\n\r\n`));
    parts.push(Buffer.isBuffer(file.data) ? file.data : Buffer.from(file.data));
    parts.push(Buffer.from('\r\n'));
  });
  parts.push(Buffer.from(`--${BOUNDARY}--\r\n`));
  return Buffer.concat(parts);
}

const formHeaders = { 'content-type': `multipart/form-data; boundary=${BOUNDARY}` };

describe('formpost', () => {
  let cloud: ObjectTestCloud;
  let a: string;

  before(async () => {
    cloud = await createObjectTestCloud();
    a = cloud.account(cloud.alpha);
    assert.equal((await cloud.request('POST', a, { headers: { 'x-account-meta-temp-url-key': 'form-key' } })).status, 204);
    assert.equal((await cloud.request('PUT', `${a}/uploads`)).status, 201);
  });
  after(async () => cloud?.close());

  it('stores each file under the prefix and answers 201 in plain text', async () => {
    const path = `${a}/uploads/pre-`;
    const r = await cloud.request('POST', path, {
      user: null,
      headers: formHeaders,
      body: form(path, { files: [{ name: 'a.txt', data: 'first', type: 'text/plain' }, { name: 'b.bin', data: Buffer.alloc(600, 1) }] }),
    });
    assert.equal(r.status, 201);
    assert.equal(r.headers['content-type'], 'text/plain');
    assert.equal(r.text, '201 Created');
    const first = await cloud.request('GET', `${a}/uploads/pre-a.txt`);
    assert.equal(first.text, 'first');
    assert.equal(first.headers['content-type'], 'text/plain');
    assert.equal((await cloud.request('GET', `${a}/uploads/pre-b.bin`)).body.length, 600);
  });

  it('works the way Tempest posts it (SHA-1, object name as prefix, streamed body)', async () => {
    const path = `${a}/uploads/obj`;
    const body = form(path, { digest: 'sha1', files: [{ name: 'testfile', data: 'hello world' }] });
    const r = await cloud.request('POST', path, { user: null, headers: formHeaders, body: Readable.from([body.subarray(0, 50), body.subarray(50)]) });
    assert.equal(r.status, 201);
    assert.equal((await cloud.request('GET', `${a}/uploads/objtestfile`)).text, 'hello world');
  });

  it('redirects with status and message when asked to', async () => {
    const path = `${a}/uploads/`;
    const ok = await cloud.request('POST', path, { user: null, headers: formHeaders, body: form(path, { redirect: 'https://example.com/done?x=1', files: [{ name: 'r.txt', data: 'r' }] }) });
    assert.equal(ok.status, 303);
    assert.equal(ok.headers.location, 'https://example.com/done?x=1&status=201&message=');
    assert.ok(ok.text.includes('Click to continue...'));
    const tooMany = await cloud.request('POST', path, {
      user: null,
      headers: formHeaders,
      body: form(path, { redirect: 'https://example.com/done', maxFileCount: 1, files: [{ name: 'r1', data: '1' }, { name: 'r2', data: '2' }] }),
    });
    assert.equal(tooMany.status, 303);
    assert.equal(tooMany.headers.location, 'https://example.com/done?status=400&message=max%20file%20count%20exceeded');
    assert.equal((await cloud.request('GET', `${a}/uploads/r1`)).text, '1');
    assert.equal((await cloud.request('GET', `${a}/uploads/r2`)).status, 404);
  });

  it('refuses expired forms and bad signatures with 401', async () => {
    const path = `${a}/uploads/x`;
    const expired = await cloud.request('POST', path, { user: null, headers: formHeaders, body: form(path, { expires: Math.floor(Date.now() / 1000) - 5, files: [{ name: 'f', data: 'f' }] }) });
    assert.equal(expired.status, 401);
    assert.ok(expired.text.includes('FormPost: Form Expired'));
    const wrong = await cloud.request('POST', path, { user: null, headers: formHeaders, body: form(path, { key: 'Wrong', files: [{ name: 'f', data: 'f' }] }) });
    assert.equal(wrong.status, 401);
    assert.ok(wrong.text.includes('FormPost: Invalid Signature'));
    const otherPath = await cloud.request('POST', `${a}/uploads/y`, { user: null, headers: formHeaders, body: form(path, { files: [{ name: 'f', data: 'f' }] }) });
    assert.equal(otherPath.status, 401);
    assert.equal((await cloud.request('GET', `${a}/uploads/xf`)).status, 404);
  });

  it('refuses files over max_file_size and leaves nothing behind', async () => {
    const path = `${a}/uploads/big-`;
    const r = await cloud.request('POST', path, { user: null, headers: formHeaders, body: form(path, { maxFileSize: 100, files: [{ name: 'f', data: Buffer.alloc(5000, 2) }] }) });
    assert.equal(r.status, 400);
    assert.equal(r.text, 'FormPost: max_file_size exceeded');
    assert.equal((await cloud.request('GET', `${a}/uploads/big-f`)).status, 404);
  });

  it('answers with the PUT\'s status when the container is missing, whatever the file size', async () => {
    const path = `${a}/no-such-container/`;
    const r = await cloud.request('POST', path, { user: null, headers: formHeaders, body: form(path, { maxFileSize: 100, files: [{ name: 'f', data: Buffer.alloc(300000, 3) }] }) });
    assert.equal(r.status, 404);
    // The connection is still good for the next request.
    assert.equal((await cloud.request('HEAD', `${a}/uploads`)).status, 204);
  });

  it('answers 400 for malformed forms', async () => {
    const path = `${a}/uploads/m`;
    const noFiles = await cloud.request('POST', path, { user: null, headers: formHeaders, body: form(path, {}) });
    assert.equal(noFiles.status, 400);
    assert.equal(noFiles.text, '400 Bad Request\r\nFormPost: No Files To Process');
    const badBoundary = await cloud.request('POST', path, { user: null, headers: formHeaders, body: 'not a form at all' });
    assert.equal(badBoundary.status, 400);
    assert.equal(badBoundary.text, 'FormPost: invalid starting boundary');
    const badSize = await cloud.request('POST', path, { user: null, headers: formHeaders, body: form(path, { extraFields: { max_file_size: 'lots' }, files: [{ name: 'f', data: 'f' }] }) });
    assert.equal(badSize.status, 400);
    assert.equal(badSize.text, 'FormPost: max_file_size not an integer');
  });

  it('sets X-Delete-After from the form', async () => {
    const path = `${a}/uploads/tmp-`;
    const r = await cloud.request('POST', path, { user: null, headers: formHeaders, body: form(path, { extraFields: { x_delete_after: '3600' }, files: [{ name: 'f', data: 'f' }] }) });
    assert.equal(r.status, 201);
    const head = await cloud.request('HEAD', `${a}/uploads/tmp-f`);
    assert.ok(Number(head.headers['x-delete-at']) > Date.now() / 1000 + 3000);
  });

  it('reports its digests in /info', async () => {
    const info = (await cloud.request('GET', '/info', { user: null })).json<{ formpost: { allowed_digests: string[] } }>();
    assert.deepEqual(info.formpost.allowed_digests, ['sha1', 'sha256', 'sha512']);
  });
});
