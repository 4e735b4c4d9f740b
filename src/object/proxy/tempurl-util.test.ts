import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SwiftRequest } from './pipeline.js';
import { copySourceInScope, dispositionFormat, inIpRange, normalizeExpires } from './tempurl.js';

const request = (headers: Record<string, string>): SwiftRequest => ({ method: 'PUT', path: '/v1/AUTH_a/c/o', query: '', headers, body: null, env: { requestId: 'req-1', remoteAddr: '127.0.0.1', identity: null } });

describe('tempurl helpers', () => {
  it('reads expiry as seconds or ISO 8601, and 0 once past or unreadable', () => {
    const now = 1_700_000_000;
    assert.equal(normalizeExpires(null, now), null);
    assert.equal(normalizeExpires('1700000100', now), 1700000100);
    assert.equal(normalizeExpires('2023-11-14T22:15:00Z', now), 1700000100);
    assert.equal(normalizeExpires('1699999999', now), 0);
    assert.equal(normalizeExpires('2023-02-30T00:00:00Z', now), 0);
    assert.equal(normalizeExpires('soon', now), 0);
    assert.equal(normalizeExpires('', now), 0);
  });

  it('writes Content-Disposition with both filename forms', () => {
    assert.equal(dispositionFormat('attachment', 'My Test File.pdf'), `attachment; filename="My Test File.pdf"; filename*=UTF-8''My%20Test%20File.pdf`);
    assert.equal(dispositionFormat('inline', 'é/"x"'), `inline; filename="%C3%A9/%22x%22"; filename*=UTF-8''%C3%A9%2F%22x%22`);
  });

  it('matches client addresses against a single address or a strict network', () => {
    assert.equal(inIpRange('1.2.3.4', '1.2.3.4'), true);
    assert.equal(inIpRange('1.2.3.5', '1.2.3.4'), false);
    assert.equal(inIpRange('1.2.3.200', '1.2.3.0/24'), true);
    assert.equal(inIpRange('::ffff:1.2.3.200', '1.2.3.0/24'), true);
    assert.equal(inIpRange('1.2.4.1', '1.2.3.0/24'), false);
    assert.equal(inIpRange('1.2.3.4', '1.2.3.4/24'), false); // host bits set: not a network
    assert.equal(inIpRange('::1', '::1'), true);
    assert.equal(inIpRange('::1', '1.2.3.0/24'), false);
    assert.equal(inIpRange('1.2.3.4', 'garbage'), false);
  });

  it('keeps copies of a PUT inside the granted account and container', () => {
    assert.equal(copySourceInScope(request({}), 'AUTH_a', 'c'), true);
    assert.equal(copySourceInScope(request({ 'x-copy-from': '/c/other' }), 'AUTH_a', 'c'), true);
    assert.equal(copySourceInScope(request({ 'x-copy-from': 'd/other' }), 'AUTH_a', 'c'), false);
    assert.equal(copySourceInScope(request({ 'x-copy-from': 'd/other' }), 'AUTH_a', null), true);
    assert.equal(copySourceInScope(request({ 'x-copy-from': 'c/o', 'x-copy-from-account': 'AUTH_b' }), 'AUTH_a', null), false);
    assert.equal(copySourceInScope(request({ 'x-copy-from': 'c/o', 'x-copy-from-account': 'AUTH_a' }), 'AUTH_a', 'c'), true);
  });
});
