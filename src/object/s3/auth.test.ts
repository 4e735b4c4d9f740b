import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { SwiftRequest } from '../proxy/pipeline.js';
import { readS3Signature, signatureMatches } from './auth.js';
import { S3Error } from './errors.js';
import { canonicalRequest, EMPTY_SHA256, parseQuery, signingKey, signV2, signV4, stringToSignV2, stringToSignV4, uriEncode } from './signature.js';

const ACCESS = 'AKIDEXAMPLE';
const SECRET = 'secret-of-the-example';
const NOW = Date.UTC(2026, 10, 21, 12, 0, 0);

function amz(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

function request(method: string, path: string, query: string, headers: Record<string, string>): SwiftRequest {
  return { method, path, query, headers, body: null, env: { requestId: 'req-test', remoteAddr: '127.0.0.1', identity: null } };
}

/** Signs a request the way an S3 client does (SigV4 in the Authorization header). */
function signedV4(method: string, path: string, query: string, extra: Record<string, string> = {}, options: { at?: number; region?: string; sign?: string[] } = {}): SwiftRequest {
  const date = amz(options.at ?? NOW);
  const headers: Record<string, string> = { host: 's3.test:8080', 'x-amz-date': date, 'x-amz-content-sha256': EMPTY_SHA256, ...extra };
  const signed = options.sign ?? Object.keys(headers).sort();
  const scope = { date: date.slice(0, 8), region: options.region ?? 'us-east-1', service: 's3' };
  const canonical = canonicalRequest({ method, uri: uriEncode(path, true), query: parseQuery(query), headers, signedHeaders: signed, payloadHash: headers['x-amz-content-sha256'] ?? '' }) ?? '';
  const signature = signV4(signingKey(SECRET, scope), stringToSignV4(date, scope, canonical));
  headers.authorization = `AWS4-HMAC-SHA256 Credential=${ACCESS}/${scope.date}/${scope.region}/s3/aws4_request, SignedHeaders=${signed.join(';')}, Signature=${signature}`;
  return request(method, path, query, headers);
}

function presignedV4(path: string, expires: number, at = NOW): SwiftRequest {
  const date = amz(at);
  const scope = { date: date.slice(0, 8), region: 'us-east-1', service: 's3' };
  const query = `X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=${encodeURIComponent(`${ACCESS}/${scope.date}/us-east-1/s3/aws4_request`)}&X-Amz-Date=${date}&X-Amz-Expires=${expires}&X-Amz-SignedHeaders=host`;
  const headers = { host: 's3.test:8080' };
  const canonical = canonicalRequest({ method: 'GET', uri: uriEncode(path, true), query: parseQuery(query), headers, signedHeaders: ['host'], payloadHash: 'UNSIGNED-PAYLOAD' }) ?? '';
  const signature = signV4(signingKey(SECRET, scope), stringToSignV4(date, scope, canonical));
  return request('GET', path, `${query}&X-Amz-Signature=${signature}`, headers);
}

function s3Code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof S3Error) return err.code;
    throw err;
  }
  return 'none';
}

test('auth: requests without S3 authentication are not S3', () => {
  assert.equal(readS3Signature(request('GET', '/v1/AUTH_x/c', '', { 'x-auth-token': 't' }), 'us-east-1', NOW), null);
  assert.equal(readS3Signature(request('GET', '/bucket', '', { authorization: 'Bearer x' }), 'us-east-1', NOW), null);
});

test('auth: a SigV4 header-signed request gives the string to sign its signature was made of', () => {
  const req = signedV4('PUT', '/bucket/dir/a file+é.txt', 'uploadId=x&partNumber=1', { 'x-amz-meta-color': 'blue', 'content-type': 'text/plain' });
  const sig = readS3Signature(req, 'us-east-1', NOW);
  assert.ok(sig);
  assert.equal(sig.version, 4);
  assert.equal(sig.presigned, false);
  assert.equal(sig.access, ACCESS);
  assert.equal(sig.payloadHash, EMPTY_SHA256);
  assert.equal(signatureMatches(sig, SECRET), true);
  assert.equal(signatureMatches(sig, 'another-secret'), false);
  // The raw path, when the adapter keeps it, is what is signed.
  const raw = signedV4('GET', '/bucket/a b', '');
  raw.env.rawPath = '/bucket/a%20b';
  const viaRaw = readS3Signature(raw, 'us-east-1', NOW);
  assert.ok(viaRaw && signatureMatches(viaRaw, SECRET));
});

test('auth: SigV4 dates, scope and signed headers are checked', () => {
  assert.equal(s3Code(() => readS3Signature(signedV4('GET', '/b', '', {}, { at: NOW - 16 * 60 * 1000 }), 'us-east-1', NOW)), 'RequestTimeTooSkewed');
  assert.equal(s3Code(() => readS3Signature(signedV4('GET', '/b', '', {}, { at: NOW + 16 * 60 * 1000 }), 'us-east-1', NOW)), 'RequestTimeTooSkewed');
  assert.notEqual(readS3Signature(signedV4('GET', '/b', '', {}, { at: NOW - 14 * 60 * 1000 }), 'us-east-1', NOW), null);
  try {
    readS3Signature(signedV4('GET', '/b', '', {}, { region: 'eu-west-1' }), 'us-east-1', NOW);
    assert.fail('a foreign region is refused');
  } catch (err) {
    assert.ok(err instanceof S3Error);
    assert.equal(err.code, 'AuthorizationHeaderMalformed');
    assert.equal(err.details.Region, 'us-east-1');
  }
  const noSha = signedV4('GET', '/b', '');
  delete noSha.headers['x-amz-content-sha256'];
  assert.equal(s3Code(() => readS3Signature(noSha, 'us-east-1', NOW)), 'InvalidRequest');
  const badSha = signedV4('GET', '/b', '', { 'x-amz-content-sha256': 'nonsense' });
  assert.equal(s3Code(() => readS3Signature(badSha, 'us-east-1', NOW)), 'InvalidArgument');
  const unsignedMeta = signedV4('PUT', '/b/k', '', { 'x-amz-meta-a': '1' }, { sign: ['host', 'x-amz-content-sha256', 'x-amz-date'] });
  assert.equal(s3Code(() => readS3Signature(unsignedMeta, 'us-east-1', NOW)), 'AccessDenied');
  const missingSigned = signedV4('GET', '/b', '', { range: 'bytes=0-1' });
  delete missingSigned.headers.range;
  assert.equal(s3Code(() => readS3Signature(missingSigned, 'us-east-1', NOW)), 'SignatureDoesNotMatch');
  const badCredential = signedV4('GET', '/b', '');
  badCredential.headers.authorization = (badCredential.headers.authorization ?? '').replace(/Credential=[^,]+/, 'Credential=onlyaccess');
  assert.equal(s3Code(() => readS3Signature(badCredential, 'us-east-1', NOW)), 'AccessDenied');
  const noDate = signedV4('GET', '/b', '');
  delete noDate.headers['x-amz-date'];
  assert.equal(s3Code(() => readS3Signature(noDate, 'us-east-1', NOW)), 'AccessDenied');
});

test('auth: presigned SigV4 URLs are good until they expire, for at most a week', () => {
  const sig = readS3Signature(presignedV4('/bucket/key', 3600), 'us-east-1', NOW + 3599 * 1000);
  assert.ok(sig);
  assert.equal(sig.presigned, true);
  assert.equal(sig.payloadHash, 'UNSIGNED-PAYLOAD');
  assert.equal(signatureMatches(sig, SECRET), true);
  assert.equal(s3Code(() => readS3Signature(presignedV4('/bucket/key', 3600), 'us-east-1', NOW + 3601 * 1000)), 'AccessDenied');
  assert.equal(s3Code(() => readS3Signature(presignedV4('/bucket/key', 604801), 'us-east-1', NOW)), 'AuthorizationQueryParametersError');
  const wrongAlg = presignedV4('/bucket/key', 60);
  wrongAlg.query = wrongAlg.query.replace('AWS4-HMAC-SHA256', 'AWS4-HMAC-SHA1');
  assert.equal(s3Code(() => readS3Signature(wrongAlg, 'us-east-1', NOW)), 'InvalidArgument');
});

test('auth: SigV2 in the header and in the query', () => {
  const date = new Date(NOW).toUTCString();
  const headers: Record<string, string> = { date, 'content-type': 'text/plain' };
  const sts = stringToSignV2({ method: 'PUT', headers, date, path: '/bucket/key', query: parseQuery('acl') });
  headers.authorization = `AWS ${ACCESS}:${signV2(SECRET, sts)}`;
  const sig = readS3Signature(request('PUT', '/bucket/key', 'acl', headers), 'us-east-1', NOW);
  assert.ok(sig);
  assert.equal(sig.version, 2);
  assert.equal(signatureMatches(sig, SECRET), true);
  assert.equal(s3Code(() => readS3Signature(request('PUT', '/bucket/key', 'acl', headers), 'us-east-1', NOW + 20 * 60 * 1000)), 'RequestTimeTooSkewed');

  const expires = String(Math.floor(NOW / 1000) + 60);
  const qsts = stringToSignV2({ method: 'GET', headers: {}, date: expires, path: '/bucket/key', query: [] });
  const query = `AWSAccessKeyId=${ACCESS}&Expires=${expires}&Signature=${encodeURIComponent(signV2(SECRET, qsts))}`;
  const qsig = readS3Signature(request('GET', '/bucket/key', query, {}), 'us-east-1', NOW);
  assert.ok(qsig && signatureMatches(qsig, SECRET));
  assert.equal(s3Code(() => readS3Signature(request('GET', '/bucket/key', query, {}), 'us-east-1', NOW + 61 * 1000)), 'AccessDenied');
});
