import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  canonicalQueryString,
  canonicalRequest,
  chunkStringToSign,
  EMPTY_SHA256,
  parseQuery,
  sha256Hex,
  signingKey,
  signV2,
  signV4,
  stringToSignV2,
  stringToSignV4,
  trailerStringToSign,
  uriEncode,
} from './signature.js';

// The example credentials and requests of AWS's S3 SigV4 and SigV2 documentation.
const SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
const DATE = '20130524T000000Z';
const SCOPE = { date: '20130524', region: 'us-east-1', service: 's3' };
const KEY = signingKey(SECRET, SCOPE);
const HOST = 'examplebucket.s3.amazonaws.com';

function signature(parts: Parameters<typeof canonicalRequest>[0]): string {
  const canonical = canonicalRequest(parts);
  assert.ok(canonical !== null);
  return signV4(KEY, stringToSignV4(DATE, SCOPE, canonical));
}

test('SigV4: GET object with a Range (AWS example)', () => {
  const parts = {
    method: 'GET',
    uri: '/test.txt',
    query: [],
    headers: { host: HOST, range: 'bytes=0-9', 'x-amz-content-sha256': EMPTY_SHA256, 'x-amz-date': DATE },
    signedHeaders: ['host', 'range', 'x-amz-content-sha256', 'x-amz-date'],
    payloadHash: EMPTY_SHA256,
  };
  const canonical = canonicalRequest(parts) ?? '';
  assert.equal(
    canonical,
    ['GET', '/test.txt', '', `host:${HOST}`, 'range:bytes=0-9', `x-amz-content-sha256:${EMPTY_SHA256}`, `x-amz-date:${DATE}`, '', 'host;range;x-amz-content-sha256;x-amz-date', EMPTY_SHA256].join('\n'),
  );
  assert.equal(stringToSignV4(DATE, SCOPE, canonical), `AWS4-HMAC-SHA256\n${DATE}\n20130524/us-east-1/s3/aws4_request\n7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972`);
  assert.equal(signature(parts), 'f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41');
});

test('SigV4: PUT object with a $ in the key (AWS example)', () => {
  const payload = sha256Hex('Welcome to Amazon S3.');
  assert.equal(payload, '44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072');
  assert.equal(uriEncode('/test$file.text', true), '/test%24file.text');
  const sig = signature({
    method: 'PUT',
    uri: uriEncode('/test$file.text', true),
    query: [],
    headers: { date: 'Fri, 24 May 2013 00:00:00 GMT', host: HOST, 'x-amz-content-sha256': payload, 'x-amz-date': DATE, 'x-amz-storage-class': 'REDUCED_REDUNDANCY' },
    signedHeaders: ['date', 'host', 'x-amz-content-sha256', 'x-amz-date', 'x-amz-storage-class'],
    payloadHash: payload,
  });
  assert.equal(sig, '98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd');
});

test('SigV4: sub-resource and list queries (AWS examples)', () => {
  const headers = { host: HOST, 'x-amz-content-sha256': EMPTY_SHA256, 'x-amz-date': DATE };
  const signedHeaders = ['host', 'x-amz-content-sha256', 'x-amz-date'];
  assert.equal(canonicalQueryString(parseQuery('lifecycle')), 'lifecycle=');
  assert.equal(signature({ method: 'GET', uri: '/', query: parseQuery('lifecycle'), headers, signedHeaders, payloadHash: EMPTY_SHA256 }), 'fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543');
  assert.equal(signature({ method: 'GET', uri: '/', query: parseQuery('prefix=J&max-keys=2'), headers, signedHeaders, payloadHash: EMPTY_SHA256 }), '34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7');
});

test('SigV4: a presigned URL leaves its signature out of the canonical query (AWS example)', () => {
  const query = parseQuery(
    'X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404',
  );
  const sig = signature({ method: 'GET', uri: '/test.txt', query, headers: { host: HOST }, signedHeaders: ['host'], payloadHash: 'UNSIGNED-PAYLOAD' });
  assert.equal(sig, 'aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404');
});

test('SigV4: aws-chunked seed and chunk signatures chain (AWS example)', () => {
  const seed = signature({
    method: 'PUT',
    uri: '/examplebucket/chunkObject.txt',
    query: [],
    headers: {
      host: 's3.amazonaws.com',
      'x-amz-content-sha256': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD',
      'content-encoding': 'aws-chunked',
      'content-length': '66824',
      'x-amz-date': DATE,
      'x-amz-decoded-content-length': '66560',
      'x-amz-storage-class': 'REDUCED_REDUNDANCY',
    },
    signedHeaders: 'content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class'.split(';'),
    payloadHash: 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD',
  });
  assert.equal(seed, '4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9');
  const expected = [
    [65536, 'ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648'],
    [1024, '0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497'],
    [0, 'b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9'],
  ] as const;
  let previous = seed;
  for (const [size, want] of expected) {
    previous = signV4(KEY, chunkStringToSign(DATE, SCOPE, previous, sha256Hex(Buffer.alloc(size, 'a'))));
    assert.equal(previous, want, `chunk of ${size} bytes`);
  }
});

test('SigV4: canonical forms (encoding, sorting, header values, missing signed header)', () => {
  assert.equal(uriEncode('a b+c/d~e_f.g-h*é'), 'a%20b%2Bc%2Fd~e_f.g-h%2A%C3%A9');
  assert.equal(uriEncode('dir/file name', true), 'dir/file%20name');
  assert.deepEqual(parseQuery('a=1&b&c=x+y&d=%2F&&e='), [
    ['a', '1'],
    ['b', ''],
    ['c', 'x y'],
    ['d', '/'],
    ['e', ''],
  ]);
  assert.equal(canonicalQueryString([['b', '2'], ['a', 'z'], ['a', 'y'], ['X-Amz-Signature', 'x'], ['c', 'a b']]), 'a=y&a=z&b=2&c=a%20b');
  const canonical = canonicalRequest({ method: 'GET', uri: '/', query: [], headers: { host: 'h', 'x-amz-meta-a': '  one   two ' }, signedHeaders: ['x-amz-meta-a', 'host'], payloadHash: 'UNSIGNED-PAYLOAD' });
  assert.equal(canonical, 'GET\n/\n\nhost:h\nx-amz-meta-a:one two\n\nhost;x-amz-meta-a\nUNSIGNED-PAYLOAD');
  assert.equal(canonicalRequest({ method: 'GET', uri: '/', query: [], headers: {}, signedHeaders: ['host'], payloadHash: 'x' }), null);
});

test('SigV4: trailer string to sign hashes the sorted trailers without the signature', () => {
  const sts = trailerStringToSign(DATE, SCOPE, 'prev', { 'x-amz-trailer-signature': 'sig', 'x-amz-checksum-crc32': 'AAAAAA==' });
  assert.equal(sts, ['AWS4-HMAC-SHA256-TRAILER', DATE, '20130524/us-east-1/s3/aws4_request', 'prev', sha256Hex('x-amz-checksum-crc32:AAAAAA==\n')].join('\n'));
});

test('SigV2: the documented GET object example, and sub-resources and amz headers in the string', () => {
  const sts = stringToSignV2({ method: 'GET', headers: { date: 'Tue, 27 Mar 2007 19:36:42 +0000' }, date: 'Tue, 27 Mar 2007 19:36:42 +0000', path: '/johnsmith/photos/puppy.jpg', query: [] });
  assert.equal(sts, 'GET\n\n\nTue, 27 Mar 2007 19:36:42 +0000\n/johnsmith/photos/puppy.jpg');
  assert.equal(signV2(SECRET, sts), 'bWq2s1WEIj+Ydj0vQ697zp+IXMU=');
  const put = stringToSignV2({
    method: 'PUT',
    headers: { 'content-md5': ' abc== ', 'content-type': 'text/plain', 'x-amz-meta-b': 'two', 'x-amz-acl': 'public-read', 'x-amz-date': 'now' },
    date: '',
    path: '/bucket/key',
    query: parseQuery('uploadId=U&partNumber=3&foo=bar'),
  });
  assert.equal(put, 'PUT\nabc==\ntext/plain\n\nx-amz-acl:public-read\nx-amz-date:now\nx-amz-meta-b:two\n/bucket/key?partNumber=3&uploadId=U');
});
