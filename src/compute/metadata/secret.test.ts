import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { testConfig } from '../../core/testing.js';
import { instanceIdSignature, metadataSecret, validSignature } from './secret.js';

test('the shared secret: configured, else generated once and kept in the data directory', () => {
  const { config, dir } = testConfig('metadata-secret');
  try {
    const first = metadataSecret(config);
    assert.ok(first.length >= 32);
    assert.equal(metadataSecret(config), first, 'the same on every call');
    const file = path.join(dir, 'metadata-proxy-secret');
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.equal(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp')).length, 0);
    config.compute.metadata.shared_secret = 'configured';
    assert.equal(metadataSecret(config), 'configured');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the signature is the hex HMAC-SHA256 of the instance id', () => {
  const expected = createHmac('sha256', 's').update('abc').digest('hex');
  assert.equal(instanceIdSignature('s', 'abc'), expected);
  assert.equal(validSignature('s', 'abc', expected), true);
  assert.equal(validSignature('s', 'abd', expected), false);
  assert.equal(validSignature('s', 'abc', ''), false);
});
