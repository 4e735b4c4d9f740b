import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cleanAcl, formatAclV2, parseAcl, parseAclV2, referrerAllowed } from './acl.js';

describe('container ACLs', () => {
  it('cleans messy ACLs as Swift does', () => {
    assert.equal(cleanAcl('X-Container-Read', 'bob, sue'), 'bob,sue');
    assert.equal(cleanAcl('X-Container-Read', 'bob , sue'), 'bob,sue');
    assert.equal(cleanAcl('X-Container-Read', 'bob,,,sue'), 'bob,sue');
    assert.equal(cleanAcl('X-Container-Read', '.referrer : *'), '.r:*');
    assert.equal(cleanAcl('X-Container-Read', '.ref:*.example.com'), '.r:.example.com');
    assert.equal(cleanAcl('X-Container-Read', '.r:*, .rlistings'), '.r:*,.rlistings');
    assert.equal(cleanAcl('X-Container-Read', '.r:-thief.com'), '.r:-thief.com');
  });

  it('refuses referrers in write ACLs, empty referrers and unknown designators', () => {
    assert.throws(() => cleanAcl('X-Container-Write', '.r:*'), /Referrers not allowed in write ACL: '\.r:\*'/);
    assert.throws(() => cleanAcl('X-Container-Read', '.r:'), /No host\/domain value after referrer designation in ACL: '\.r:'/);
    assert.throws(() => cleanAcl('X-Container-Read', '.r:-'), /No host\/domain value/);
    assert.throws(() => cleanAcl('X-Container-Read', '.x:y'), /Unknown designator '\.x' in ACL: '\.x:y'/);
  });

  it('parses referrers and groups', () => {
    assert.deepEqual(parseAcl('.r:*,.rlistings,p1:u1,p%3A2:*'), { referrers: ['*'], groups: ['.rlistings', 'p1:u1', 'p:2:*'] });
    assert.deepEqual(parseAcl(undefined), { referrers: [], groups: [] });
  });

  it('applies referrer designations in order', () => {
    assert.equal(referrerAllowed('http://www.example.com/index.html', ['.example.com']), true);
    assert.equal(referrerAllowed('http://thief.example.com/', ['.example.com', '-thief.example.com']), false);
    assert.equal(referrerAllowed(undefined, ['*']), true);
    assert.equal(referrerAllowed('http://a.org/', ['b.org']), false);
    assert.equal(referrerAllowed('http://a.org/', []), false);
  });

  it('reads and writes version-2 ACLs', () => {
    assert.deepEqual(parseAclV2('{"read-only":["a"]}'), { 'read-only': ['a'] });
    assert.deepEqual(parseAclV2(''), {});
    assert.equal(parseAclV2('[1]'), null);
    assert.equal(parseAclV2('nope'), null);
    assert.equal(formatAclV2({ 'read-write': ['b'], admin: ['é'] }), '{"admin":["\\u00e9"],"read-write":["b"]}');
  });
});
