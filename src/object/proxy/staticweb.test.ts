import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createObjectTestCloud, type ObjectTestCloud } from '../testing.js';

describe('staticweb', () => {
  let cloud: ObjectTestCloud;
  let a: string;

  before(async () => {
    cloud = await createObjectTestCloud();
    a = cloud.account(cloud.alpha);
    assert.equal((await cloud.request('PUT', `${a}/site`, { headers: { 'x-container-read': '.r:*,.rlistings' } })).status, 201);
    for (const [name, body, type] of [
      ['index.html', '<h1>home</h1>', 'text/html'],
      ['docs/index.html', '<h1>docs</h1>', 'text/html'],
      ['docs/guide.txt', 'guide', 'text/plain'],
      ['files/a.txt', 'aaa', 'text/plain'],
      ['files/deep/b.txt', 'bbb', 'text/plain'],
      ['marker', '', 'application/directory'],
      ['404error.html', 'custom not found', 'text/html'],
    ] as const) {
      assert.equal((await cloud.request('PUT', `${a}/site/${name}`, { body, headers: { 'content-type': type } })).status, 201);
    }
  });
  after(async () => cloud?.close());

  const web = (meta: Record<string, string>): Promise<unknown> => cloud.request('POST', `${a}/site`, { headers: meta });

  it('leaves containers without web settings and authenticated callers alone', async () => {
    await web({ 'x-remove-container-meta-web-index': 'x', 'x-remove-container-meta-web-listings': 'x' });
    const anonymous = await cloud.request('GET', `${a}/site`, { user: null });
    assert.equal(anonymous.status, 200);
    assert.ok(anonymous.text.includes('index.html\n'));
    const webMode = await cloud.request('GET', `${a}/site`, { headers: { 'x-web-mode': 'true' } });
    assert.equal(webMode.status, 404);
  });

  it('serves the index page of the container and of pseudo-directories, redirecting to the slash', async () => {
    await web({ 'x-container-meta-web-index': 'index.html' });
    const redirect = await cloud.request('GET', `${a}/site`, { user: null });
    assert.equal(redirect.status, 301);
    assert.equal(redirect.headers.location, `${a}/site/`);
    const home = await cloud.request('GET', `${a}/site/`, { user: null });
    assert.equal(home.status, 200);
    assert.equal(home.text, '<h1>home</h1>');
    const docs = await cloud.request('GET', `${a}/site/docs`, { user: null });
    assert.equal(docs.status, 301);
    assert.equal(docs.headers.location, `${a}/site/docs/`);
    assert.equal((await cloud.request('GET', `${a}/site/docs/`, { user: null })).text, '<h1>docs</h1>');
    // An authenticated caller sees the container itself unless it asks for web mode.
    assert.ok((await cloud.request('GET', `${a}/site/`)).text.includes('docs/index.html'));
    assert.equal((await cloud.request('GET', `${a}/site/`, { headers: { 'x-web-mode': 'true' } })).text, '<h1>home</h1>');
  });

  it('lists pseudo-directories without an index when listings are on, with the style sheet', async () => {
    await web({ 'x-container-meta-web-listings': 'true', 'x-container-meta-web-listings-css': 'listings.css' });
    const listing = await cloud.request('GET', `${a}/site/files/`, { user: null });
    assert.equal(listing.status, 200);
    assert.equal(listing.headers['content-type'], 'text/html; charset=UTF-8');
    assert.equal(listing.headers['x-backend-content-generator'], undefined);
    assert.ok(listing.text.includes(`<title>Listing of ${a}/site/files/</title>`));
    assert.ok(listing.text.includes('<link rel="stylesheet" type="text/css" href="../listings.css" />'));
    assert.ok(listing.text.includes('<a href="./deep/">deep/</a>'));
    assert.ok(listing.text.includes('<a href="./a%2Etxt">a.txt</a>'));
    assert.ok(listing.text.includes('<a href="../">../</a>'));
    const noSlash = await cloud.request('GET', `${a}/site/files`, { user: null });
    assert.equal(noSlash.status, 301);
    assert.equal(noSlash.headers.location, `${a}/site/files/`);
  });

  it('lists the container root when there is no index', async () => {
    await web({ 'x-remove-container-meta-web-index': 'x', 'x-container-meta-web-listings': 'true', 'x-remove-container-meta-web-listings-css': 'x' });
    const root = await cloud.request('GET', `${a}/site/`, { user: null });
    assert.equal(root.status, 200);
    assert.ok(root.text.includes('<a href="./index%2Ehtml">index.html</a>'));
    assert.ok(root.text.includes('<style type="text/css">'));
    assert.ok(!root.text.includes('id="parent"'));
  });

  it('serves the custom error page with the 404 status, and treats directory markers as missing', async () => {
    await web({ 'x-container-meta-web-error': 'error.html' });
    const missing = await cloud.request('GET', `${a}/site/nothing-here`, { user: null });
    assert.equal(missing.status, 404);
    assert.equal(missing.text, 'custom not found');
    const marker = await cloud.request('GET', `${a}/site/marker`, { user: null });
    assert.equal(marker.status, 404);
    // Objects are served as they are.
    const file = await cloud.request('GET', `${a}/site/files/a.txt`, { user: null });
    assert.equal(file.status, 200);
    assert.equal(file.text, 'aaa');
  });

  it('says listings are off when only an index is set and it is missing', async () => {
    await web({ 'x-remove-container-meta-web-listings': 'x', 'x-remove-container-meta-web-error': 'x', 'x-container-meta-web-index': 'index.html' });
    const r = await cloud.request('GET', `${a}/site/files/`, { user: null });
    assert.equal(r.status, 404);
    assert.ok(r.text.includes('Web Listing Disabled'));
  });

  it('needs read access: a private container answers 401 to anonymous readers', async () => {
    assert.equal((await cloud.request('PUT', `${a}/private`, { headers: { 'x-container-meta-web-index': 'index.html', 'x-container-meta-web-listings': 'true' } })).status, 201);
    await cloud.request('PUT', `${a}/private/index.html`, { body: 'secret' });
    assert.equal((await cloud.request('GET', `${a}/private/`, { user: null })).status, 401);
    assert.equal((await cloud.request('GET', `${a}/private/index.html`, { user: null })).status, 401);
  });

  it('lists under a prefix temp URL, carrying the grant on its links', async () => {
    await cloud.request('POST', a, { headers: { 'x-account-meta-temp-url-key': 'k' } });
    await cloud.request('PUT', `${a}/private/dir/one.txt`, { body: '1' });
    const expires = Math.floor(Date.now() / 1000) + 600;
    const sig = createHmac('sha256', 'k').update(`GET\n${expires}\nprefix:${a}/private/dir/`).digest('hex');
    const query = `temp_url_sig=${sig}&temp_url_expires=${expires}&temp_url_prefix=dir/`;
    const r = await cloud.request('GET', `${a}/private/dir/`, { user: null, query });
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-disposition'], 'inline');
    assert.ok(r.text.includes(`<a href="./one%2Etxt?temp_url_prefix=dir%2F&amp;temp_url_expires=${expires}&amp;temp_url_sig=${sig}">one.txt</a>`));
    assert.equal((await cloud.request('GET', `${a}/private/dir/one.txt`, { user: null, query })).text, '1');
  });

  it('lists the container root under an empty-prefix temp URL, and only when staticweb answers', async () => {
    const expires = Math.floor(Date.now() / 1000) + 600;
    const sign = (container: string): string => `temp_url_sig=${createHmac('sha256', 'k').update(`GET\n${expires}\nprefix:${a}/${container}/`).digest('hex')}&temp_url_expires=${expires}&temp_url_prefix=`;
    await cloud.request('PUT', `${a}/webroot`, { headers: { 'x-container-meta-web-listings': 'true' } });
    await cloud.request('PUT', `${a}/webroot/dir/x`, { body: 'x' });
    const root = await cloud.request('GET', `${a}/webroot/`, { user: null, query: sign('webroot') });
    assert.equal(root.status, 200);
    assert.ok(root.text.includes('<a href="./dir/?temp_url_prefix=&amp;'));
    // An index page is an object like any other: the container root does not serve it under a temp URL.
    assert.equal((await cloud.request('GET', `${a}/private/`, { user: null, query: sign('private') })).status, 401);
    await cloud.request('PUT', `${a}/plain`);
    assert.equal((await cloud.request('GET', `${a}/plain/`, { user: null, query: sign('plain') })).status, 401);
  });

  it('titles listings with X-Container-Meta-Web-Listings-Label', async () => {
    await web({ 'x-container-meta-web-listings': 'true', 'x-container-meta-web-listings-label': 'example.com', 'x-remove-container-meta-web-index': 'x' });
    const r = await cloud.request('GET', `${a}/site/files/`, { user: null });
    assert.ok(r.text.includes('<h1 id="title">Listing of example.com/files/</h1>'));
  });
});
