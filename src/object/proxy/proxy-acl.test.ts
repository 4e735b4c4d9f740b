import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createObjectTestCloud, type ObjectTestCloud } from '../testing.js';

describe('object proxy: Keystone auth and ACLs', () => {
  let cloud: ObjectTestCloud;
  let a: string;

  before(async () => {
    cloud = await createObjectTestCloud();
    a = cloud.account(cloud.alpha);
    await cloud.request('PUT', `${a}/private`);
    await cloud.request('PUT', `${a}/private/o`, { body: 'secret' });
  });
  after(async () => {
    await cloud.close();
  });

  it('keeps tenants apart', async () => {
    assert.equal((await cloud.request('GET', `${a}/private/o`, { user: cloud.beta })).status, 403);
    assert.equal((await cloud.request('GET', `${a}/private`, { user: cloud.beta })).status, 403);
    assert.equal((await cloud.request('GET', a, { user: cloud.beta })).status, 403);
    assert.equal((await cloud.request('PUT', `${a}/private/x`, { user: cloud.beta, body: 'x' })).status, 403);
    assert.equal((await cloud.request('PUT', `${a}/beta-made`, { user: cloud.beta })).status, 403);
    assert.equal((await cloud.request('HEAD', `${a}/private/x`, { user: cloud.beta })).status, 403);
    const anonymous = await cloud.request('GET', `${a}/private/o`, { user: null });
    assert.equal(anonymous.status, 401);
    assert.equal(anonymous.headers['www-authenticate'], `Keystone uri="${cloud.authUrl.replace(/\/v3$/, '')}"`);
    const badToken = await cloud.request('GET', `${a}/private/o`, { user: null, headers: { 'x-auth-token': 'not-a-token' } });
    assert.equal(badToken.status, 401);
    assert.ok(badToken.headers['www-authenticate']);
    // A service token without a service role makes the request anonymous, as keystonemiddleware does.
    const badService = await cloud.request('GET', `${a}/private/o`, { headers: { 'x-service-token': cloud.beta.token } });
    assert.equal(badService.status, 401);
  });

  it('lets owners in by operator role, and the reseller admin everywhere', async () => {
    assert.equal((await cloud.request('GET', `${a}/private/o`, { user: null, headers: { 'x-storage-token': cloud.alpha.token } })).status, 200);
    assert.equal((await cloud.request('GET', `${a}/private/o`, { user: cloud.alphaReader })).status, 403);
    assert.equal((await cloud.request('GET', a, { user: cloud.alphaReader })).status, 403);
    assert.equal((await cloud.request('GET', `${a}/private/o`, { user: cloud.reseller })).text, 'secret');
    assert.equal((await cloud.request('PUT', `${a}/private/by-reseller`, { user: cloud.reseller, body: 'r' })).status, 201);
  });

  it('grants reads and writes by project:user, project:*, names and roles', async () => {
    const c = `${a}/shared`;
    await cloud.request('PUT', c, { headers: { 'x-container-read': `${cloud.beta.projectId}:${cloud.beta.userId}` } });
    await cloud.request('PUT', `${c}/o`, { body: 'shared' });
    assert.equal((await cloud.request('GET', `${c}/o`, { user: cloud.beta })).text, 'shared');
    const listing = await cloud.request('GET', c, { user: cloud.beta });
    assert.equal(listing.status, 200);
    assert.equal(listing.text, 'o\n');
    const head = await cloud.request('HEAD', c, { user: cloud.beta });
    assert.equal(head.status, 204);
    assert.equal(head.headers['x-container-read'], undefined);
    assert.equal((await cloud.request('HEAD', c)).headers['x-container-read'], `${cloud.beta.projectId}:${cloud.beta.userId}`);
    assert.equal((await cloud.request('PUT', `${c}/o2`, { user: cloud.beta, body: 'x' })).status, 403);
    assert.equal((await cloud.request('POST', c, { user: cloud.beta, headers: { 'x-container-read': '*:*' } })).status, 403);

    await cloud.request('POST', c, { headers: { 'x-container-write': `${cloud.beta.projectId}:*`, 'x-container-read': 'beta:beta-member' } });
    assert.equal((await cloud.request('PUT', `${c}/from-beta`, { user: cloud.beta, body: 'b' })).status, 201);
    assert.equal((await cloud.request('GET', `${c}/from-beta`, { user: cloud.beta })).text, 'b');
    assert.equal((await cloud.request('DELETE', `${c}/from-beta`, { user: cloud.beta })).status, 204);

    await cloud.request('POST', c, { headers: { 'x-container-read': 'reader', 'x-remove-container-write': '1' } });
    assert.equal((await cloud.request('GET', `${c}/o`, { user: cloud.alphaReader })).text, 'shared');
    assert.equal((await cloud.request('GET', `${c}/o`, { user: cloud.beta })).status, 403);
    assert.equal((await cloud.request('PUT', `${c}/x`, { user: cloud.beta, body: 'x' })).status, 403);
  });

  it('opens containers to anonymous readers with referrer ACLs', async () => {
    const c = `${a}/public`;
    await cloud.request('PUT', c, { headers: { 'x-container-read': '.r:*' } });
    await cloud.request('PUT', `${c}/page`, { body: 'public page' });
    assert.equal((await cloud.request('GET', `${c}/page`, { user: null })).text, 'public page');
    assert.equal((await cloud.request('GET', c, { user: null })).status, 401);
    assert.equal((await cloud.request('PUT', `${c}/page`, { user: null, body: 'x' })).status, 401);
    await cloud.request('POST', c, { headers: { 'x-container-read': '.r:*,.rlistings' } });
    const listing = await cloud.request('GET', c, { user: null });
    assert.equal(listing.status, 200);
    assert.equal(listing.text, 'page\n');
    assert.equal((await cloud.request('GET', `${c}/page`, { user: cloud.beta })).status, 200);

    await cloud.request('POST', c, { headers: { 'x-container-read': '.r:.example.com,.r:-bad.example.com' } });
    assert.equal((await cloud.request('GET', `${c}/page`, { user: null, headers: { referer: 'http://www.example.com/x' } })).status, 200);
    assert.equal((await cloud.request('GET', `${c}/page`, { user: null, headers: { referer: 'http://bad.example.com/x' } })).status, 401);
    assert.equal((await cloud.request('GET', `${c}/page`, { user: null })).status, 401);
  });

  it('answers CORS preflights from container metadata', async () => {
    const c = `${a}/cors`;
    await cloud.request('PUT', c, { headers: { 'x-container-meta-access-control-allow-origin': 'http://app.example', 'x-container-meta-access-control-max-age': '60' } });
    await cloud.request('PUT', `${c}/o`, { body: 'x' });
    const preflight = await cloud.request('OPTIONS', `${c}/o`, { user: null, headers: { origin: 'http://app.example', 'access-control-request-method': 'GET' } });
    assert.equal(preflight.status, 200);
    assert.equal(preflight.headers['access-control-allow-origin'], 'http://app.example');
    assert.equal(preflight.headers['access-control-max-age'], '60');
    const refused = await cloud.request('OPTIONS', `${c}/o`, { user: null, headers: { origin: 'http://evil.example', 'access-control-request-method': 'GET' } });
    assert.equal(refused.status, 401);
    const get = await cloud.request('GET', `${c}/o`, { headers: { origin: 'http://app.example' } });
    assert.equal(get.headers['access-control-allow-origin'], 'http://app.example');
    assert.match(get.headers['access-control-expose-headers'] ?? '', /etag/);
  });
});
