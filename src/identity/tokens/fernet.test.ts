import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fernetDecrypt, fernetEncrypt, generateFernetKey } from './fernet.js';
import { packPayload, unpackPayload, type TokenPayload } from './payload.js';

const payload: TokenPayload = {
  userId: '0123456789abcdef0123456789abcdef',
  methods: ['password', 'token'],
  scope: { type: 'project', id: 'fedcba9876543210fedcba9876543210' },
  issuedAt: 1_790_000_000_123,
  expiresAt: 1_790_003_600_123,
  auditIds: ['AAAAAAAAAAAAAAAAAAAAAA', 'BBBBBBBBBBBBBBBBBBBBBA'],
  applicationCredentialId: null,
};

test('a payload survives packing, and hex ids pack small', () => {
  const packed = packPayload(payload);
  assert.deepEqual(unpackPayload(packed), payload);
  assert.ok(packed.length < 100, `packed payload is ${packed.length} bytes`);
  const named = { ...payload, userId: 'not-hex-user', scope: { type: 'domain' as const, id: 'default' } };
  assert.deepEqual(unpackPayload(packPayload(named)), named);
  assert.deepEqual(unpackPayload(packPayload({ ...payload, scope: { type: 'system' } })).scope, { type: 'system' });
});

test('a token decrypts with its key and with no other', () => {
  const key = generateFernetKey();
  const token = fernetEncrypt(key, packPayload(payload), 1_790_000_000);
  assert.match(token, /^[A-Za-z0-9_-]+$/);
  assert.ok(token.length < 255, `token is ${token.length} characters`);
  const opened = fernetDecrypt([generateFernetKey(), key], token);
  assert.ok(opened);
  assert.equal(opened.timestamp, 1_790_000_000);
  assert.deepEqual(unpackPayload(opened.plaintext), payload);
  assert.equal(fernetDecrypt([generateFernetKey()], token), null);
});

test('a tampered, truncated or foreign token is refused', () => {
  const key = generateFernetKey();
  const token = fernetEncrypt(key, packPayload(payload));
  const flipped = token.slice(0, 40) + (token[40] === 'A' ? 'B' : 'A') + token.slice(41);
  assert.equal(fernetDecrypt([key], flipped), null);
  assert.equal(fernetDecrypt([key], token.slice(0, -4)), null);
  assert.equal(fernetDecrypt([key], 'gAAAAA' + 'x'.repeat(150)), null);
  assert.equal(fernetDecrypt([key], 'not a token at all, with spaces and more than one hundred characters to get past the length check .....'), null);
});

test('a payload that is not ours fails to unpack', () => {
  assert.throws(() => unpackPayload(new Uint8Array([0x92, 0x02, 0x03])));
});
