import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bestMatch, percentDecode, quote, splitSwiftPath, statusLine, utf8OrNull } from './feature-util.js';

describe('splitSwiftPath', () => {
  it('splits accounts, containers and objects as Swift does', () => {
    assert.deepEqual(splitSwiftPath('/v1/AUTH_a'), { version: 'v1', account: 'AUTH_a' });
    assert.deepEqual(splitSwiftPath('/v1/AUTH_a/'), { version: 'v1', account: 'AUTH_a' });
    assert.deepEqual(splitSwiftPath('/v1/AUTH_a/c'), { version: 'v1', account: 'AUTH_a', container: 'c' });
    assert.deepEqual(splitSwiftPath('/v1/AUTH_a/c/'), { version: 'v1', account: 'AUTH_a', container: 'c', object: '' });
    assert.deepEqual(splitSwiftPath('/v1/AUTH_a/c/d/e/'), { version: 'v1', account: 'AUTH_a', container: 'c', object: 'd/e/' });
    assert.equal(splitSwiftPath('/v1'), null);
    assert.equal(splitSwiftPath('/v1//c'), null);
    assert.equal(splitSwiftPath('/v1/a//o'), null);
  });
});

describe('quote', () => {
  it('encodes as Python urllib.parse.quote', () => {
    assert.equal(quote('a b/c~d_e.f-g'), 'a%20b/c~d_e.f-g');
    assert.equal(quote("é!*'()"), '%C3%A9%21%2A%27%28%29');
    assert.equal(quote('a b/c', ''), 'a%20b%2Fc');
    assert.equal(quote('a b/c', ' /'), 'a b/c');
  });

  it('round-trips through percentDecode', () => {
    assert.equal(utf8OrNull(percentDecode('c%2Fo%20%C3%A9')), 'c/o é');
    assert.equal(utf8OrNull(percentDecode('bad%FF')), null);
    assert.equal(utf8OrNull(percentDecode('nul%00')), null);
    assert.equal(utf8OrNull(percentDecode('plain é')), 'plain é');
  });
});

describe('bestMatch', () => {
  const offers = ['text/plain', 'application/json', 'application/xml', 'text/xml'];
  it('picks by q-value and specificity; the first offer without a header', () => {
    assert.equal(bestMatch(undefined, offers), 'text/plain');
    assert.equal(bestMatch('*/*', offers), 'text/plain');
    assert.equal(bestMatch('application/json', offers), 'application/json');
    assert.equal(bestMatch('application/*', offers), 'application/json');
    assert.equal(bestMatch('text/xml;q=0.9, application/json;q=0.5', offers), 'text/xml');
    assert.equal(bestMatch('text/*;q=0.1, application/xml', offers), 'application/xml');
  });

  it('answers null when nothing fits or the header is unreadable', () => {
    assert.equal(bestMatch('image/png', offers), null);
    assert.equal(bestMatch('application/json;q=0', offers), null);
    assert.equal(bestMatch('bogus', offers), null);
  });
});

describe('statusLine', () => {
  it('uses Swift reason phrases', () => {
    assert.equal(statusLine(201), '201 Created');
    assert.equal(statusLine(413), '413 Request Entity Too Large');
    assert.equal(statusLine(502), '502 Bad Gateway');
  });
});
