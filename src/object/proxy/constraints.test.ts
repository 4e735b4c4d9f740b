import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkDeleteHeaders, checkMetadata, decodeQueryPart, getParam, guessContentType, setParams, splitSwiftPath, validateListingParams } from './constraints.js';
import { SwiftHttpError } from './responses.js';

const errorOf = (fn: () => unknown): { status: number; body: unknown } => {
  try {
    fn();
  } catch (err) {
    if (err instanceof SwiftHttpError) return { status: err.response.status, body: err.response.body };
    throw err;
  }
  return { status: 0, body: null };
};

describe('Swift constraints', () => {
  it('splits paths as split_path(path, 1, 4, True)', () => {
    assert.deepEqual(splitSwiftPath('/v1/a/c/o/with/slashes'), { version: 'v1', account: 'a', container: 'c', object: 'o/with/slashes' });
    assert.deepEqual(splitSwiftPath('/v1/a/c/'), { version: 'v1', account: 'a', container: 'c', object: '' });
    assert.deepEqual(splitSwiftPath('/v1/a'), { version: 'v1', account: 'a', container: null, object: null });
    assert.deepEqual(splitSwiftPath('/v1'), { version: 'v1', account: null, container: null, object: null });
    assert.equal(splitSwiftPath('/v1/a//o'), null);
    assert.equal(splitSwiftPath('/'), null);
  });

  it('checks metadata as check_metadata', () => {
    assert.equal(checkMetadata({ 'x-object-meta-a': 'b' }, 'object'), null);
    assert.equal(checkMetadata({ 'x-container-meta-': 'b' }, 'container')?.body, 'Metadata name cannot be empty');
    assert.equal(checkMetadata({ [`x-container-meta-${'n'.repeat(129)}`]: 'v' }, 'container')?.status, 400);
    assert.match(String(checkMetadata({ 'x-container-meta-k': 'v'.repeat(257) }, 'container')?.body), /^Metadata value longer than 256: x-container-meta-k$/);
    const many = Object.fromEntries(Array.from({ length: 91 }, (_, i) => [`x-account-meta-k${i}`, 'v']));
    assert.equal(checkMetadata(many, 'account')?.body, 'Too many metadata items; max 90');
    const big = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`x-account-meta-k${i}`, 'v'.repeat(250)]));
    assert.equal(checkMetadata(big, 'account')?.body, 'Total metadata too large; max 4096');
    assert.equal(checkMetadata({ 'x-container-meta-k': Buffer.from([0xff, 0xfe]).toString('latin1') }, 'container')?.body, 'Metadata must be valid UTF-8');
  });

  it('turns X-Delete-After into X-Delete-At and refuses the past', () => {
    const headers: Record<string, string> = { 'x-delete-after': '60' };
    checkDeleteHeaders(headers, 1_700_000_000.5);
    assert.deepEqual(headers, { 'x-delete-at': '1700000060' });
    assert.equal(errorOf(() => checkDeleteHeaders({ 'x-delete-after': 'soon' }, 1)).body, 'Non-integer X-Delete-After');
    assert.equal(errorOf(() => checkDeleteHeaders({ 'x-delete-after': '-5' }, 100)).body, 'X-Delete-After in past');
    assert.equal(errorOf(() => checkDeleteHeaders({ 'x-delete-at': '50' }, 100)).body, 'X-Delete-At in past');
    assert.equal(errorOf(() => checkDeleteHeaders({ 'x-delete-at': '1.5' }, 1)).body, 'Non-integer X-Delete-At');
  });

  it('reads query parameters strictly as UTF-8', () => {
    assert.equal(getParam('prefix=a%2Fb&limit=2', 'prefix'), 'a/b');
    assert.equal(getParam('prefix=a+b', 'prefix'), 'a b');
    assert.equal(getParam('reverse', 'reverse'), '');
    assert.equal(getParam('x=1', 'prefix'), undefined);
    assert.equal(decodeQueryPart('%E2%9C%93'), '✓');
    assert.equal(errorOf(() => getParam('marker=%FF', 'marker')).body, '"marker" parameter not valid UTF-8');
    assert.equal(setParams('format=xml&prefix=a', { format: 'json' }), 'prefix=a&format=json');
  });

  it('limits listings', () => {
    assert.deepEqual(errorOf(() => validateListingParams('limit=10001', 10000)), { status: 412, body: 'Maximum limit is 10000' });
    assert.equal(errorOf(() => validateListingParams('delimiter=ab', 10000)).body, 'Bad delimiter');
    assert.deepEqual(errorOf(() => validateListingParams('limit=10000&delimiter=/', 10000)), { status: 0, body: null });
  });

  it('guesses content types from names', () => {
    assert.equal(guessContentType('dir/photo.JPG'), 'image/jpeg');
    assert.equal(guessContentType('notes.txt'), 'text/plain');
    assert.equal(guessContentType('noextension'), 'application/octet-stream');
  });
});
