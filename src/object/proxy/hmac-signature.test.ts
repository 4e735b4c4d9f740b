import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formPostSignature, isAllowedDigest, parseSignature, sameSignature, tempUrlSignature } from './hmac-signature.js';

// Expected values computed with Python's hmac, as Swift's documentation does.
describe('temp URL and form post signatures', () => {
  it('match Swift documentation examples (SHA-256, IP-bound, SHA-1)', () => {
    assert.equal(tempUrlSignature('sha256', 'mykey', 'GET', 1512508563, '/v1/AUTH_account/container/object'), '732fcac368abb10c78a4cbe95c3fab7f311584532bf779abd5074e13cbe8b88b');
    assert.equal(tempUrlSignature('sha256', 'mykey', 'GET', '1648082711', '/v1/AUTH_account/container/object', '1.2.3.4'), '3f48476acaf5ec272acd8e99f7b5bad96c52ddba53ed27c60613711774a06f0c');
    assert.equal(tempUrlSignature('sha1', 'mykey', 'GET', 1512508563, '/v1/AUTH_account/container/object'), 'a83dcf0587a84542b5f23a7807c38ff4bcaa6924');
  });

  it('signs forms over path, redirect, sizes and expiry with a UTF-8 key', () => {
    assert.equal(formPostSignature('sha1', 'kéy', '/v1/AUTH_a/c/pre', 'https://x/y', '104857600', '10', '1700000000'), '6dad6a7f2ba5a7c160937726845b6e3505767c24');
  });
});

describe('parseSignature', () => {
  it('knows hex digests by their length', () => {
    assert.deepEqual(parseSignature('A83DCF0587A84542B5F23A7807C38FF4BCAA6924'), { digest: 'sha1', hex: 'a83dcf0587a84542b5f23a7807c38ff4bcaa6924' });
    assert.equal(parseSignature('732fcac368abb10c78a4cbe95c3fab7f311584532bf779abd5074e13cbe8b88b')?.digest, 'sha256');
    assert.equal(parseSignature('ab'.repeat(64))?.digest, 'sha512');
  });

  it('reads <digest>:<base64> in both alphabets', () => {
    const hex = '66b4a28e7d06c8386cbf596d223f615944eb6c0784e3935c297c816b3eda3db48cbd1390e23b581f89d10269b912b6365f5d58735621cb638c0b2377cae79e5e';
    const urlsafe = 'sha512:ZrSijn0GyDhsv1ltIj9hWUTrbAeE45NcKXyBaz7aPbSMvROQ4jtYH4nRAmm5ErY2X11Yc1Yhy2OMCyN3yueeXg==';
    assert.deepEqual(parseSignature(urlsafe), { digest: 'sha512', hex });
    assert.deepEqual(parseSignature(urlsafe.replace(/==$/, '')), { digest: 'sha512', hex });
    const standard = `sha512:${Buffer.from(hex, 'hex').toString('base64')}`;
    assert.deepEqual(parseSignature(standard), { digest: 'sha512', hex });
  });

  it('refuses what is neither', () => {
    assert.equal(parseSignature('xyz'), null);
    assert.equal(parseSignature('abc'), null);
    assert.equal(parseSignature('ab'.repeat(30)), null);
    assert.equal(parseSignature('sha512:not base64!'), null);
    assert.equal(isAllowedDigest('md5'), false);
    assert.equal(isAllowedDigest('sha256'), true);
  });
});

describe('sameSignature', () => {
  it('compares whole strings', () => {
    assert.equal(sameSignature('abcd', 'abcd'), true);
    assert.equal(sameSignature('abcd', 'abce'), false);
    assert.equal(sameSignature('abcd', 'abc'), false);
  });
});
