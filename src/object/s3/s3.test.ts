import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, test } from 'node:test';
import {
  CopyObjectCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetBucketAclCommand,
  GetBucketLocationCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  ListObjectsCommand,
  ListObjectsV2Command,
  PutBucketAclCommand,
  PutObjectCommand,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { ec2Credential, signRequest, startS3Cloud, type S3TestCloud } from './s3.test-util.js';
import { chunkStringToSign, EMPTY_SHA256, sha256Hex, signingKey, signV2, signV4 } from './signature.js';

let t: S3TestCloud;

before(async () => {
  t = await startS3Cloud();
});

after(async () => {
  await t.close();
});

/** The S3 error code and status of a failing call. */
async function s3Error(promise: Promise<unknown>): Promise<{ code: string; status: number | undefined }> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof S3ServiceException) return { code: err.name, status: err.$metadata.httpStatusCode };
    throw err;
  }
  assert.fail('the call succeeded');
}

const md5 = (data: string | Buffer): string => createHash('md5').update(data).digest('hex');

test('S3 buckets: create, head, location, list, refuse duplicates and bad names, delete', async () => {
  await t.alpha.send(new CreateBucketCommand({ Bucket: 'alpha-bucket' }));
  assert.equal((await t.alpha.send(new HeadBucketCommand({ Bucket: 'alpha-bucket' }))).$metadata.httpStatusCode, 200);
  assert.deepEqual(await s3Error(t.alpha.send(new CreateBucketCommand({ Bucket: 'alpha-bucket' }))), { code: 'BucketAlreadyOwnedByYou', status: 409 });
  await t.alpha.send(new CreateBucketCommand({ Bucket: 'alpha-located', CreateBucketConfiguration: { LocationConstraint: 'us-east-1' as never } }));
  assert.equal((await s3Error(t.alpha.send(new CreateBucketCommand({ Bucket: 'alpha-elsewhere', CreateBucketConfiguration: { LocationConstraint: 'eu-west-1' } })))).code, 'InvalidLocationConstraint');
  assert.deepEqual(await s3Error(t.alpha.send(new CreateBucketCommand({ Bucket: 'Bad_Name' }))), { code: 'InvalidBucketName', status: 400 });
  const location = await t.alpha.send(new GetBucketLocationCommand({ Bucket: 'alpha-bucket' }));
  assert.equal(location.LocationConstraint, undefined, 'us-east-1 is the empty location');

  const listed = await t.alpha.send(new ListBucketsCommand({}));
  const names = (listed.Buckets ?? []).map((b) => b.Name);
  assert.ok(names.includes('alpha-bucket') && names.includes('alpha-located'));
  assert.ok((listed.Buckets ?? []).every((b) => b.CreationDate instanceof Date));
  assert.match(listed.Owner?.ID ?? '', /^alpha:/);
  // Projects are isolated: beta sees none of alpha's buckets and may make its own of the same name.
  const betaNames = ((await t.beta.send(new ListBucketsCommand({}))).Buckets ?? []).map((b) => b.Name);
  assert.ok(!betaNames.includes('alpha-bucket'));
  assert.equal((await s3Error(t.beta.send(new HeadBucketCommand({ Bucket: 'alpha-bucket' })))).status, 404);

  await t.alpha.send(new PutObjectCommand({ Bucket: 'alpha-located', Key: 'k', Body: 'x' }));
  assert.deepEqual(await s3Error(t.alpha.send(new DeleteBucketCommand({ Bucket: 'alpha-located' }))), { code: 'BucketNotEmpty', status: 409 });
  await t.alpha.send(new DeleteObjectCommand({ Bucket: 'alpha-located', Key: 'k' }));
  assert.equal((await t.alpha.send(new DeleteBucketCommand({ Bucket: 'alpha-located' }))).$metadata.httpStatusCode, 204);
  assert.deepEqual(await s3Error(t.alpha.send(new DeleteBucketCommand({ Bucket: 'alpha-located' }))), { code: 'NoSuchBucket', status: 404 });
  assert.equal((await s3Error(t.alpha.send(new HeadBucketCommand({ Bucket: 'alpha-located' })))).status, 404);
});

test('S3 objects: put with metadata, get, head, ranges, conditions, delete', async () => {
  await t.alpha.send(new CreateBucketCommand({ Bucket: 'objects' }));
  const body = 'The quick brown fox jumps over the lazy dog';
  const put = await t.alpha.send(new PutObjectCommand({ Bucket: 'objects', Key: 'dir/fox é.txt', Body: body, ContentType: 'text/plain', Metadata: { color: 'blue' }, CacheControl: 'max-age=60' }));
  assert.equal(put.ETag, `"${md5(body)}"`);

  const got = await t.alpha.send(new GetObjectCommand({ Bucket: 'objects', Key: 'dir/fox é.txt' }));
  assert.equal(await got.Body?.transformToString(), body);
  assert.equal(got.ContentType, 'text/plain');
  assert.equal(got.ContentLength, body.length);
  assert.equal(got.ETag, `"${md5(body)}"`);
  assert.deepEqual(got.Metadata, { color: 'blue' });
  assert.equal(got.CacheControl, 'max-age=60');
  assert.ok(got.LastModified instanceof Date);

  const head = await t.alpha.send(new HeadObjectCommand({ Bucket: 'objects', Key: 'dir/fox é.txt' }));
  assert.equal(head.ContentLength, body.length);
  assert.deepEqual(head.Metadata, { color: 'blue' });

  const range = await t.alpha.send(new GetObjectCommand({ Bucket: 'objects', Key: 'dir/fox é.txt', Range: 'bytes=4-8' }));
  assert.equal(range.$metadata.httpStatusCode, 206);
  assert.equal(await range.Body?.transformToString(), 'quick');
  assert.equal(range.ContentRange, `bytes 4-8/${body.length}`);
  const suffix = await t.alpha.send(new GetObjectCommand({ Bucket: 'objects', Key: 'dir/fox é.txt', Range: 'bytes=-3' }));
  assert.equal(await suffix.Body?.transformToString(), 'dog');
  const headRange = await t.alpha.send(new HeadObjectCommand({ Bucket: 'objects', Key: 'dir/fox é.txt', Range: 'bytes=0-2' }));
  assert.equal(headRange.ContentLength, 3);
  assert.equal(headRange.ContentRange, `bytes 0-2/${body.length}`);
  assert.deepEqual(await s3Error(t.alpha.send(new GetObjectCommand({ Bucket: 'objects', Key: 'dir/fox é.txt', Range: 'bytes=1000-2000' }))), { code: 'InvalidRange', status: 416 });

  const etag = `"${md5(body)}"`;
  assert.equal((await s3Error(t.alpha.send(new GetObjectCommand({ Bucket: 'objects', Key: 'dir/fox é.txt', IfNoneMatch: etag })))).status, 304);
  assert.deepEqual(await s3Error(t.alpha.send(new GetObjectCommand({ Bucket: 'objects', Key: 'dir/fox é.txt', IfMatch: '"0123"' }))), { code: 'PreconditionFailed', status: 412 });
  const matched = await t.alpha.send(new GetObjectCommand({ Bucket: 'objects', Key: 'dir/fox é.txt', IfMatch: etag, Range: 'bytes=0-2' }));
  assert.equal(await matched.Body?.transformToString(), 'The');
  const future = new Date(Date.now() + 3600_000);
  assert.equal((await s3Error(t.alpha.send(new GetObjectCommand({ Bucket: 'objects', Key: 'dir/fox é.txt', IfModifiedSince: future })))).status, 304);

  assert.deepEqual(await s3Error(t.alpha.send(new GetObjectCommand({ Bucket: 'objects', Key: 'missing' }))), { code: 'NoSuchKey', status: 404 });
  assert.deepEqual(await s3Error(t.alpha.send(new GetObjectCommand({ Bucket: 'no-such-bucket', Key: 'missing' }))), { code: 'NoSuchBucket', status: 404 });
  assert.deepEqual(await s3Error(t.alpha.send(new PutObjectCommand({ Bucket: 'no-such-bucket', Key: 'k', Body: 'x' }))), { code: 'NoSuchBucket', status: 404 });
  // Another project's credentials reach their own account, where this bucket does not exist.
  assert.deepEqual(await s3Error(t.beta.send(new GetObjectCommand({ Bucket: 'objects', Key: 'dir/fox é.txt' }))), { code: 'NoSuchBucket', status: 404 });

  assert.equal((await t.alpha.send(new DeleteObjectCommand({ Bucket: 'objects', Key: 'dir/fox é.txt' }))).$metadata.httpStatusCode, 204);
  assert.equal((await t.alpha.send(new DeleteObjectCommand({ Bucket: 'objects', Key: 'dir/fox é.txt' }))).$metadata.httpStatusCode, 204, 'deleting again is no error');
  assert.equal((await s3Error(t.alpha.send(new HeadObjectCommand({ Bucket: 'objects', Key: 'dir/fox é.txt' })))).status, 404);
});

test('S3 objects: Content-MD5 and x-amz-content-sha256 are checked, and a failed check stores nothing', async () => {
  await t.alpha.send(new CreateBucketCommand({ Bucket: 'digests' }));
  const good = Buffer.from(md5('payload'), 'hex').toString('base64');
  await t.alpha.send(new PutObjectCommand({ Bucket: 'digests', Key: 'ok', Body: 'payload', ContentMD5: good }));
  const wrong = Buffer.from(md5('other'), 'hex').toString('base64');
  assert.deepEqual(await s3Error(t.alpha.send(new PutObjectCommand({ Bucket: 'digests', Key: 'bad-md5', Body: 'payload', ContentMD5: wrong }))), { code: 'BadDigest', status: 400 });
  assert.equal((await s3Error(t.alpha.send(new HeadObjectCommand({ Bucket: 'digests', Key: 'bad-md5' })))).status, 404);
  assert.equal((await s3Error(t.alpha.send(new PutObjectCommand({ Bucket: 'digests', Key: 'bad-md5', Body: 'payload', ContentMD5: 'not-base64!' })))).code, 'InvalidDigest');

  const res = await t.signed('PUT', '/digests/bad-sha', { body: 'payload', payloadHash: sha256Hex('something else') });
  assert.equal(res.status, 400);
  assert.match(await res.text(), /<Code>XAmzContentSHA256Mismatch<\/Code>/);
  assert.equal((await s3Error(t.alpha.send(new HeadObjectCommand({ Bucket: 'digests', Key: 'bad-sha' })))).status, 404);
  const ok = await t.signed('PUT', '/digests/good-sha', { body: 'payload' });
  assert.equal(ok.status, 200);
  assert.equal(ok.headers.get('etag'), `"${md5('payload')}"`);
});

test('S3 objects: a signed aws-chunked upload is decoded and its chunk signatures checked', async () => {
  await t.alpha.send(new CreateBucketCommand({ Bucket: 'chunked' }));
  const data = Buffer.alloc(20000);
  for (let i = 0; i < data.length; i++) data[i] = i % 251;
  const upload = async (key: string, tamper: boolean): Promise<Response> => {
    const sizes = [8192, 8192, data.length - 16384, 0];
    const host = new URL(t.cloud.url).host;
    const signedAt = Date.now();
    const date = new Date(signedAt).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
    const scope = { date: date.slice(0, 8), region: 'us-east-1', service: 's3' };
    const key4 = signingKey(t.alphaCred.secret, scope);
    const encodedLength = sizes.reduce((n, s) => n + s.toString(16).length + ';chunk-signature='.length + 64 + 2 + s + (s > 0 ? 2 : 0), 0) + 2;
    // The seed signature is the request's own (Authorization header).
    const headers = signRequest(
      t.alphaCred,
      'PUT',
      `/chunked/${key}`,
      '',
      { host, 'content-encoding': 'aws-chunked', 'x-amz-decoded-content-length': String(data.length), 'content-length': String(encodedLength) },
      'STREAMING-AWS4-HMAC-SHA256-PAYLOAD',
      signedAt,
    );
    let previous = /Signature=([0-9a-f]+)/.exec(headers.authorization ?? '')?.[1] ?? '';
    const parts: Buffer[] = [];
    let at = 0;
    sizes.forEach((size, i) => {
      const chunk = data.subarray(at, at + size);
      at += size;
      previous = signV4(key4, chunkStringToSign(date, scope, previous, size === 0 ? EMPTY_SHA256 : sha256Hex(chunk)));
      const signature = tamper && i === 1 ? 'f'.repeat(64) : previous;
      parts.push(Buffer.from(`${size.toString(16)};chunk-signature=${signature}\r\n`), chunk);
      if (size > 0) parts.push(Buffer.from('\r\n'));
    });
    parts.push(Buffer.from('\r\n'));
    const body = Buffer.concat(parts);
    assert.equal(body.length, encodedLength);
    delete headers.host;
    return fetch(`${t.cloud.url}/chunked/${key}`, { method: 'PUT', headers, body });
  };
  const ok = await upload('good', false);
  assert.equal(ok.status, 200, await ok.clone().text());
  assert.equal(ok.headers.get('etag'), `"${md5(data)}"`);
  const got = await t.alpha.send(new GetObjectCommand({ Bucket: 'chunked', Key: 'good' }));
  assert.ok(Buffer.from(await got.Body?.transformToByteArray() ?? []).equals(data));
  assert.equal(got.ContentEncoding, undefined, 'aws-chunked is not kept as the content encoding');

  const bad = await upload('tampered', true);
  assert.equal(bad.status, 403);
  assert.match(await bad.text(), /<Code>SignatureDoesNotMatch<\/Code>/);
  assert.equal((await s3Error(t.alpha.send(new HeadObjectCommand({ Bucket: 'chunked', Key: 'tampered' })))).status, 404);
});

test('S3 listings: v1 and v2 with prefix, delimiter, markers, continuation, max-keys and url encoding', async () => {
  await t.alpha.send(new CreateBucketCommand({ Bucket: 'listing' }));
  const keys = ['a.txt', 'b/1.txt', 'b/2.txt', 'c d.txt', 'e/f/g.txt', 'z.txt'];
  for (const key of keys) await t.alpha.send(new PutObjectCommand({ Bucket: 'listing', Key: key, Body: key }));

  const all = await t.alpha.send(new ListObjectsV2Command({ Bucket: 'listing' }));
  assert.deepEqual((all.Contents ?? []).map((c) => c.Key), keys);
  assert.equal(all.KeyCount, keys.length);
  assert.equal(all.IsTruncated, false);
  const first = all.Contents?.[0];
  assert.equal(first?.Size, 5);
  assert.equal(first?.ETag, `"${md5('a.txt')}"`);
  assert.equal(first?.StorageClass, 'STANDARD');

  const folded = await t.alpha.send(new ListObjectsV2Command({ Bucket: 'listing', Delimiter: '/' }));
  assert.deepEqual((folded.Contents ?? []).map((c) => c.Key), ['a.txt', 'c d.txt', 'z.txt']);
  assert.deepEqual((folded.CommonPrefixes ?? []).map((p) => p.Prefix), ['b/', 'e/']);
  assert.equal(folded.KeyCount, 5);
  const inB = await t.alpha.send(new ListObjectsV2Command({ Bucket: 'listing', Prefix: 'b/', Delimiter: '/' }));
  assert.deepEqual((inB.Contents ?? []).map((c) => c.Key), ['b/1.txt', 'b/2.txt']);

  // Page through two at a time with continuation tokens.
  const paged: string[] = [];
  let token: string | undefined;
  for (let page = 0; page < 10; page++) {
    const res = await t.alpha.send(new ListObjectsV2Command({ Bucket: 'listing', MaxKeys: 2, ContinuationToken: token }));
    paged.push(...(res.Contents ?? []).map((c) => c.Key ?? ''));
    assert.equal(res.MaxKeys, 2);
    if (!res.IsTruncated) break;
    token = res.NextContinuationToken;
    assert.ok(token);
  }
  assert.deepEqual(paged, keys);
  const after = await t.alpha.send(new ListObjectsV2Command({ Bucket: 'listing', StartAfter: 'c d.txt' }));
  assert.deepEqual((after.Contents ?? []).map((c) => c.Key), ['e/f/g.txt', 'z.txt']);
  assert.equal(after.StartAfter, 'c d.txt');

  const v1 = await t.alpha.send(new ListObjectsCommand({ Bucket: 'listing', MaxKeys: 2, Delimiter: '/' }));
  assert.equal(v1.IsTruncated, true);
  assert.equal(v1.NextMarker, 'b/');
  assert.match(v1.Contents?.[0]?.Owner?.ID ?? '', /^alpha:/);
  const v1next = await t.alpha.send(new ListObjectsCommand({ Bucket: 'listing', Marker: 'b/', Delimiter: '/' }));
  assert.deepEqual((v1next.Contents ?? []).map((c) => c.Key), ['c d.txt', 'z.txt']);
  assert.deepEqual((v1next.CommonPrefixes ?? []).map((p) => p.Prefix), ['e/']);

  // encoding-type=url: the SDK decodes the keys again.
  const encoded = await t.signed('GET', '/listing', { query: 'encoding-type=url&list-type=2&prefix=c' });
  const xml = await encoded.text();
  assert.match(xml, /<Key>c%20d.txt<\/Key>/);
  assert.match(xml, /<EncodingType>url<\/EncodingType>/);
  assert.match(xml, /^<\?xml version="1.0" encoding="UTF-8"\?>\n<ListBucketResult xmlns="http:\/\/s3.amazonaws.com\/doc\/2006-03-01\/">/);
  const zero = await t.alpha.send(new ListObjectsV2Command({ Bucket: 'listing', MaxKeys: 0 }));
  assert.equal(zero.KeyCount, 0);
  assert.equal(zero.IsTruncated, false);
  assert.equal((await s3Error(t.alpha.send(new ListObjectsV2Command({ Bucket: 'listing', MaxKeys: -1 })))).code, 'InvalidArgument');
  assert.deepEqual(await s3Error(t.alpha.send(new ListObjectsV2Command({ Bucket: 'no-such-listing' }))), { code: 'NoSuchBucket', status: 404 });
});

test('S3 copies and multi-object delete', async () => {
  await t.alpha.send(new CreateBucketCommand({ Bucket: 'copies' }));
  await t.alpha.send(new PutObjectCommand({ Bucket: 'copies', Key: 'src', Body: 'source data', ContentType: 'text/x-source', Metadata: { a: '1' } }));
  const copied = await t.alpha.send(new CopyObjectCommand({ Bucket: 'copies', Key: 'dst', CopySource: 'copies/src' }));
  assert.equal(copied.CopyObjectResult?.ETag, `"${md5('source data')}"`);
  assert.ok(copied.CopyObjectResult?.LastModified instanceof Date);
  const dst = await t.alpha.send(new GetObjectCommand({ Bucket: 'copies', Key: 'dst' }));
  assert.equal(await dst.Body?.transformToString(), 'source data');
  assert.equal(dst.ContentType, 'text/x-source');
  assert.deepEqual(dst.Metadata, { a: '1' });

  await t.alpha.send(new CopyObjectCommand({ Bucket: 'copies', Key: 'src', CopySource: '/copies/src', MetadataDirective: 'REPLACE', Metadata: { b: '2' }, ContentType: 'text/y' }));
  const replaced = await t.alpha.send(new HeadObjectCommand({ Bucket: 'copies', Key: 'src' }));
  assert.deepEqual(replaced.Metadata, { b: '2' });
  assert.equal(replaced.ContentType, 'text/y');
  assert.deepEqual(await s3Error(t.alpha.send(new CopyObjectCommand({ Bucket: 'copies', Key: 'src', CopySource: 'copies/src' }))), { code: 'InvalidRequest', status: 400 });
  assert.deepEqual(await s3Error(t.alpha.send(new CopyObjectCommand({ Bucket: 'copies', Key: 'x', CopySource: 'copies/nothing' }))), { code: 'NoSuchKey', status: 404 });
  assert.equal((await s3Error(t.alpha.send(new CopyObjectCommand({ Bucket: 'copies', Key: 'x', CopySource: 'copies/src', CopySourceIfMatch: '"nope"' })))).code, 'PreconditionFailed');

  const deleted = await t.alpha.send(
    new DeleteObjectsCommand({ Bucket: 'copies', Delete: { Objects: [{ Key: 'src' }, { Key: 'dst' }, { Key: 'never-existed' }] } }),
  );
  assert.deepEqual((deleted.Deleted ?? []).map((d) => d.Key).sort(), ['dst', 'never-existed', 'src']);
  assert.equal((deleted.Errors ?? []).length, 0);
  const quiet = await t.alpha.send(new DeleteObjectsCommand({ Bucket: 'copies', Delete: { Objects: [{ Key: 'a' }], Quiet: true } }));
  assert.equal((quiet.Deleted ?? []).length, 0);
  const left = await t.alpha.send(new ListObjectsV2Command({ Bucket: 'copies' }));
  assert.equal(left.KeyCount, 0);
});

test('S3 authentication: wrong secret, unknown key, skewed clock, and presigned URLs', async () => {
  assert.deepEqual(await s3Error(t.client({ access: t.alphaCred.access, secret: 'wrong' }).send(new ListBucketsCommand({}))), { code: 'SignatureDoesNotMatch', status: 403 });
  assert.deepEqual(await s3Error(t.client({ access: 'no-such-access-key', secret: 'x' }).send(new ListBucketsCommand({}))), { code: 'InvalidAccessKeyId', status: 403 });
  // A user without an operator role on the project (reader) may not use its account.
  const readerCred = await ec2Credential(t.cloud, t.cloud.alphaReader);
  assert.deepEqual(await s3Error(t.client(readerCred).send(new ListBucketsCommand({}))), { code: 'AccessDenied', status: 403 });
  const skewed = await t.signed('GET', '/', { skewMs: 20 * 60 * 1000 });
  assert.equal(skewed.status, 403);
  assert.match(await skewed.text(), /<Code>RequestTimeTooSkewed<\/Code>/);

  await t.alpha.send(new CreateBucketCommand({ Bucket: 'presigned' }));
  await t.alpha.send(new PutObjectCommand({ Bucket: 'presigned', Key: 'shared.txt', Body: 'for everyone with the link' }));
  const url = await getSignedUrl(t.alpha, new GetObjectCommand({ Bucket: 'presigned', Key: 'shared.txt' }), { expiresIn: 300 });
  assert.match(url, /X-Amz-Signature=/);
  const res = await fetch(url);
  assert.equal(res.status, 200);
  assert.equal(await res.text(), 'for everyone with the link');
  const tampered = await fetch(url.replace('shared.txt', 'shared.txX'));
  assert.equal(tampered.status, 403);
  assert.match(await tampered.text(), /<Code>SignatureDoesNotMatch<\/Code>/);
  const expired = await fetch(url.replace(/X-Amz-Expires=\d+/, 'X-Amz-Expires=0').replace(/X-Amz-Date=\d{8}T\d{6}Z/, 'X-Amz-Date=20200101T000000Z'));
  assert.equal(expired.status, 403);

  // SigV2, header and query forms.
  const date = new Date().toUTCString();
  const v2 = await fetch(`${t.cloud.url}/presigned/shared.txt`, {
    headers: { date, authorization: `AWS ${t.alphaCred.access}:${signV2(t.alphaCred.secret, `GET\n\n\n${date}\n/presigned/shared.txt`)}` },
  });
  assert.equal(v2.status, 200);
  assert.equal(await v2.text(), 'for everyone with the link');
  const expires = String(Math.floor(Date.now() / 1000) + 60);
  const v2url = `${t.cloud.url}/presigned/shared.txt?AWSAccessKeyId=${t.alphaCred.access}&Expires=${expires}&Signature=${encodeURIComponent(signV2(t.alphaCred.secret, `GET\n\n\n${expires}\n/presigned/shared.txt`))}`;
  assert.equal((await fetch(v2url)).status, 200);
  const v2bad = await fetch(`${t.cloud.url}/presigned/shared.txt`, { headers: { date, authorization: `AWS ${t.alphaCred.access}:${signV2('wrong', `GET\n\n\n${date}\n/presigned/shared.txt`)}` } });
  assert.equal(v2bad.status, 403);

  const putUrl = await getSignedUrl(t.alpha, new PutObjectCommand({ Bucket: 'presigned', Key: 'uploaded.txt' }), { expiresIn: 300 });
  const put = await fetch(putUrl, { method: 'PUT', body: 'put through a link' });
  assert.equal(put.status, 200);
  const got = await t.alpha.send(new GetObjectCommand({ Bucket: 'presigned', Key: 'uploaded.txt' }));
  assert.equal(await got.Body?.transformToString(), 'put through a link');
});

test('S3 errors: XML bodies with the request id, unsupported sub-resources, methods', async () => {
  const res = await t.signed('GET', '/no-such-bucket-here');
  assert.equal(res.status, 404);
  assert.equal(res.headers.get('content-type'), 'application/xml');
  const requestId = res.headers.get('x-amz-request-id');
  assert.ok(requestId);
  const xml = await res.text();
  assert.match(xml, /^<\?xml version="1.0" encoding="UTF-8"\?>\n<Error><Code>NoSuchBucket<\/Code><Message>The specified bucket does not exist.<\/Message><BucketName>no-such-bucket-here<\/BucketName><Resource>\/no-such-bucket-here<\/Resource>/);
  assert.ok(xml.includes(`<RequestId>${requestId}</RequestId>`));

  await t.alpha.send(new CreateBucketCommand({ Bucket: 'misc' }));
  for (const sub of ['lifecycle', 'policy', 'cors', 'website', 'replication', 'encryption']) {
    const r = await t.signed('GET', '/misc', { query: sub });
    assert.equal(r.status, 501, sub);
    assert.match(await r.text(), /<Code>NotImplemented<\/Code>/);
  }
  const post = await t.signed('POST', '/misc/key');
  assert.equal(post.status, 501);
  const service = await t.signed('DELETE', '/');
  assert.equal(service.status, 405);
  assert.match(await service.text(), /<Code>MethodNotAllowed<\/Code>/);
  const versioning = await t.signed('GET', '/misc', { query: 'versioning' });
  assert.equal(versioning.status, 200);
  assert.match(await versioning.text(), /<VersioningConfiguration xmlns="http:\/\/s3.amazonaws.com\/doc\/2006-03-01\/"\/>/);
  const tagging = await t.signed('GET', '/misc', { query: 'tagging' });
  assert.match(await tagging.text(), /<Tagging xmlns="[^"]+"><TagSet\/><\/Tagging>/);
  const sse = await t.signed('PUT', '/misc/k', { body: 'x', headers: { 'x-amz-server-side-encryption': 'AES256' } });
  assert.equal(sse.status, 501);
  const storageClass = await t.signed('PUT', '/misc/k', { body: 'x', headers: { 'x-amz-storage-class': 'GLACIER' } });
  assert.equal(storageClass.status, 400);
  assert.match(await storageClass.text(), /InvalidStorageClass/);
});

test('S3 ACLs: the owner has FULL_CONTROL; public-read opens the bucket to anonymous Swift reads', async () => {
  await t.alpha.send(new CreateBucketCommand({ Bucket: 'acl-bucket' }));
  await t.alpha.send(new PutObjectCommand({ Bucket: 'acl-bucket', Key: 'page.html', Body: '<p>hi</p>' }));
  const acl = await t.alpha.send(new GetBucketAclCommand({ Bucket: 'acl-bucket' }));
  assert.equal(acl.Grants?.length, 1);
  assert.equal(acl.Grants?.[0]?.Permission, 'FULL_CONTROL');
  assert.equal(acl.Grants?.[0]?.Grantee?.Type, 'CanonicalUser');
  const path = `${t.cloud.account(t.cloud.alpha)}/acl-bucket/page.html`;
  assert.equal((await t.cloud.request('GET', path, { user: null })).status, 401);
  await t.alpha.send(new PutBucketAclCommand({ Bucket: 'acl-bucket', ACL: 'public-read' }));
  const anonymous = await t.cloud.request('GET', path, { user: null });
  assert.equal(anonymous.status, 200);
  assert.equal(anonymous.text, '<p>hi</p>');
  const publicAcl = await t.alpha.send(new GetBucketAclCommand({ Bucket: 'acl-bucket' }));
  assert.ok(publicAcl.Grants?.some((g) => g.Permission === 'READ' && g.Grantee?.URI === 'http://acs.amazonaws.com/groups/global/AllUsers'));
  await t.alpha.send(new PutBucketAclCommand({ Bucket: 'acl-bucket', ACL: 'private' }));
  assert.equal((await t.cloud.request('GET', path, { user: null })).status, 401);
  assert.equal((await s3Error(t.alpha.send(new PutBucketAclCommand({ Bucket: 'acl-bucket', ACL: 'authenticated-read' })))).status, 501);
});

test('S3 and Swift see the same objects, and /info reports s3api', async () => {
  await t.alpha.send(new CreateBucketCommand({ Bucket: 'shared-view' }));
  await t.alpha.send(new PutObjectCommand({ Bucket: 'shared-view', Key: 'from-s3', Body: 'via s3', Metadata: { origin: 's3' } }));
  const swift = await t.cloud.request('GET', `${t.cloud.account(t.cloud.alpha)}/shared-view/from-s3`);
  assert.equal(swift.status, 200);
  assert.equal(swift.text, 'via s3');
  assert.equal(swift.headers['x-object-meta-origin'], 's3');
  assert.equal((await t.cloud.request('PUT', `${t.cloud.account(t.cloud.alpha)}/shared-view/from-swift`, { body: 'via swift', headers: { 'x-object-meta-origin': 'swift' } })).status, 201);
  const viaS3 = await t.alpha.send(new GetObjectCommand({ Bucket: 'shared-view', Key: 'from-swift' }));
  assert.equal(await viaS3.Body?.transformToString(), 'via swift');
  assert.deepEqual(viaS3.Metadata, { origin: 'swift' });

  const info = await t.cloud.request('GET', '/info', { user: null });
  const s3api = info.json<Record<string, Record<string, unknown>>>().s3api;
  assert.equal(s3api?.max_upload_part_num, 1000);
  assert.equal(s3api?.min_segment_size, 5242880);
  assert.equal(s3api?.allow_multipart_uploads, true);
});
