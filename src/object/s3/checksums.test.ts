import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { createChecksum, validChecksumValue } from './checksums.js';

const CHECK = Buffer.from('123456789');
const b64 = (hex: string): string => Buffer.from(hex, 'hex').toString('base64');

test('checksums: the catalogue check values of "123456789", fed in one piece or byte by byte', () => {
  const expected: Record<string, string> = {
    crc32: b64('cbf43926'),
    crc32c: b64('e3069283'),
    crc64nvme: b64('ae8b14860a799888'),
    sha1: createHash('sha1').update(CHECK).digest('base64'),
    sha256: createHash('sha256').update(CHECK).digest('base64'),
  };
  for (const [name, want] of Object.entries(expected)) {
    const whole = createChecksum(name);
    assert.ok(whole, name);
    whole.update(CHECK);
    assert.equal(whole.digest(), want, `${name} in one piece`);
    const split = createChecksum(name);
    assert.ok(split);
    for (const byte of CHECK) split.update(Buffer.from([byte]));
    assert.equal(split.digest(), want, `${name} byte by byte`);
    assert.ok(validChecksumValue(name, want));
  }
  assert.equal(createChecksum('md5'), null);
});

test('checksums: empty input and value forms', () => {
  const crc = createChecksum('crc32');
  assert.equal(crc?.digest(), 'AAAAAA==');
  assert.equal(crc?.algorithm, 'CRC32');
  assert.equal(validChecksumValue('crc32', 'AAAAAA=='), true);
  assert.equal(validChecksumValue('crc32', 'AAAAAAAA'), false, 'six bytes are not a CRC32');
  assert.equal(validChecksumValue('sha256', 'not base64!'), false);
});
