import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, test } from 'node:test';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  S3ServiceException,
  UploadPartCommand,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import { startS3Cloud, type S3TestCloud } from './s3.test-util.js';

let t: S3TestCloud;
const MiB = 1024 * 1024;

before(async () => {
  t = await startS3Cloud();
  await t.alpha.send(new CreateBucketCommand({ Bucket: 'uploads' }));
});

after(async () => {
  await t.close();
});

async function s3Error(promise: Promise<unknown>): Promise<{ code: string; status: number | undefined }> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof S3ServiceException) return { code: err.name, status: err.$metadata.httpStatusCode };
    throw err;
  }
  assert.fail('the call succeeded');
}

const md5 = (data: Buffer | string): string => createHash('md5').update(data).digest('hex');

function pattern(size: number, seed: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (i * 7 + seed) % 256;
  return b;
}

/** The names in the bucket's segments container, through the Swift API. */
async function segments(bucket: string): Promise<string[]> {
  const res = await t.cloud.request('GET', `${t.cloud.account(t.cloud.alpha)}/${bucket}+segments`, { query: 'format=json' });
  if (res.status === 404 || res.status === 204) return [];
  return res.json<{ name: string }[]>().map((o) => o.name);
}

test('multipart: initiate, upload parts, list, complete; the object reads back whole with the S3 ETag', async () => {
  const created = await t.alpha.send(new CreateMultipartUploadCommand({ Bucket: 'uploads', Key: 'big/file.bin', ContentType: 'application/x-big', Metadata: { kind: 'mpu' } }));
  const uploadId = created.UploadId ?? '';
  assert.ok(uploadId);
  assert.equal(created.Key, 'big/file.bin');
  const one = pattern(5 * MiB, 1);
  const two = pattern(1 * MiB + 123, 2);
  const p1 = await t.alpha.send(new UploadPartCommand({ Bucket: 'uploads', Key: 'big/file.bin', UploadId: uploadId, PartNumber: 1, Body: one }));
  const p2 = await t.alpha.send(new UploadPartCommand({ Bucket: 'uploads', Key: 'big/file.bin', UploadId: uploadId, PartNumber: 2, Body: two }));
  assert.equal(p1.ETag, `"${md5(one)}"`);
  assert.equal(p2.ETag, `"${md5(two)}"`);

  const parts = await t.alpha.send(new ListPartsCommand({ Bucket: 'uploads', Key: 'big/file.bin', UploadId: uploadId }));
  assert.deepEqual(
    (parts.Parts ?? []).map((p) => [p.PartNumber, p.ETag, p.Size]),
    [
      [1, p1.ETag, one.length],
      [2, p2.ETag, two.length],
    ],
  );
  const page = await t.alpha.send(new ListPartsCommand({ Bucket: 'uploads', Key: 'big/file.bin', UploadId: uploadId, MaxParts: 1 }));
  assert.equal(page.IsTruncated, true);
  assert.equal(page.NextPartNumberMarker, '1');
  const uploads = await t.alpha.send(new ListMultipartUploadsCommand({ Bucket: 'uploads' }));
  assert.deepEqual((uploads.Uploads ?? []).map((u) => [u.Key, u.UploadId]), [['big/file.bin', uploadId]]);
  // An upload in progress is not an object.
  assert.equal((await t.alpha.send(new ListObjectsV2Command({ Bucket: 'uploads' }))).KeyCount, 0);

  const done = await t.alpha.send(
    new CompleteMultipartUploadCommand({
      Bucket: 'uploads',
      Key: 'big/file.bin',
      UploadId: uploadId,
      MultipartUpload: { Parts: [{ PartNumber: 1, ETag: p1.ETag }, { PartNumber: 2, ETag: p2.ETag }] },
    }),
  );
  const s3Etag = `"${md5(Buffer.concat([Buffer.from(md5(one), 'hex'), Buffer.from(md5(two), 'hex')]))}-2"`;
  assert.equal(done.ETag, s3Etag);
  assert.equal(done.Bucket, 'uploads');
  assert.equal(done.Key, 'big/file.bin');

  const head = await t.alpha.send(new HeadObjectCommand({ Bucket: 'uploads', Key: 'big/file.bin' }));
  assert.equal(head.ETag, s3Etag);
  assert.equal(head.ContentLength, one.length + two.length);
  assert.equal(head.ContentType, 'application/x-big');
  assert.deepEqual(head.Metadata, { kind: 'mpu' });
  const got = await t.alpha.send(new GetObjectCommand({ Bucket: 'uploads', Key: 'big/file.bin' }));
  assert.ok(Buffer.from((await got.Body?.transformToByteArray()) ?? []).equals(Buffer.concat([one, two])));
  // A ranged read across the part boundary, conditional on the S3 ETag (as s3transfer downloads).
  const ranged = await t.alpha.send(new GetObjectCommand({ Bucket: 'uploads', Key: 'big/file.bin', Range: `bytes=${one.length - 10}-${one.length + 9}`, IfMatch: s3Etag }));
  assert.ok(Buffer.from((await ranged.Body?.transformToByteArray()) ?? []).equals(Buffer.concat([one, two]).subarray(one.length - 10, one.length + 10)));

  const listed = await t.alpha.send(new ListObjectsV2Command({ Bucket: 'uploads' }));
  assert.equal(listed.Contents?.[0]?.Key, 'big/file.bin');
  assert.equal(listed.Contents?.[0]?.Size, one.length + two.length);
  assert.equal(listed.Contents?.[0]?.ETag, s3Etag);
  assert.equal(((await t.alpha.send(new ListMultipartUploadsCommand({ Bucket: 'uploads' }))).Uploads ?? []).length, 0);

  // Completing again with the same parts answers the same; other parts: NoSuchUpload.
  const again = await t.alpha.send(
    new CompleteMultipartUploadCommand({ Bucket: 'uploads', Key: 'big/file.bin', UploadId: uploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: p1.ETag }, { PartNumber: 2, ETag: p2.ETag }] } }),
  );
  assert.equal(again.ETag, s3Etag);
  assert.equal(
    (await s3Error(t.alpha.send(new CompleteMultipartUploadCommand({ Bucket: 'uploads', Key: 'big/file.bin', UploadId: uploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: p1.ETag }] } })))).code,
    'NoSuchUpload',
  );

  // Deleting the object takes its parts with it.
  assert.equal((await segments('uploads')).length, 2);
  await t.alpha.send(new DeleteObjectCommand({ Bucket: 'uploads', Key: 'big/file.bin' }));
  assert.deepEqual(await segments('uploads'), []);
  assert.equal((await s3Error(t.alpha.send(new HeadObjectCommand({ Bucket: 'uploads', Key: 'big/file.bin' })))).status, 404);
});

test('multipart: abort removes the parts; bad uploads and parts are refused', async () => {
  const { UploadId } = await t.alpha.send(new CreateMultipartUploadCommand({ Bucket: 'uploads', Key: 'aborted' }));
  const uploadId = UploadId ?? '';
  await t.alpha.send(new UploadPartCommand({ Bucket: 'uploads', Key: 'aborted', UploadId: uploadId, PartNumber: 1, Body: 'part one' }));
  assert.ok((await segments('uploads')).some((n) => n.startsWith(`aborted/${uploadId}`)));
  assert.equal((await t.alpha.send(new AbortMultipartUploadCommand({ Bucket: 'uploads', Key: 'aborted', UploadId: uploadId }))).$metadata.httpStatusCode, 204);
  assert.ok(!(await segments('uploads')).some((n) => n.startsWith('aborted/')));
  assert.deepEqual(await s3Error(t.alpha.send(new ListPartsCommand({ Bucket: 'uploads', Key: 'aborted', UploadId: uploadId }))), { code: 'NoSuchUpload', status: 404 });
  assert.equal((await s3Error(t.alpha.send(new UploadPartCommand({ Bucket: 'uploads', Key: 'aborted', UploadId: uploadId, PartNumber: 1, Body: 'x' })))).code, 'NoSuchUpload');
  assert.equal((await s3Error(t.alpha.send(new AbortMultipartUploadCommand({ Bucket: 'uploads', Key: 'aborted', UploadId: uploadId })))).code, 'NoSuchUpload');

  const { UploadId: id2 } = await t.alpha.send(new CreateMultipartUploadCommand({ Bucket: 'uploads', Key: 'checked' }));
  const uploadId2 = id2 ?? '';
  const small = await t.alpha.send(new UploadPartCommand({ Bucket: 'uploads', Key: 'checked', UploadId: uploadId2, PartNumber: 1, Body: 'too small to be first' }));
  const last = await t.alpha.send(new UploadPartCommand({ Bucket: 'uploads', Key: 'checked', UploadId: uploadId2, PartNumber: 2, Body: 'last' }));
  const complete = (parts: { PartNumber: number; ETag: string | undefined }[]) =>
    s3Error(t.alpha.send(new CompleteMultipartUploadCommand({ Bucket: 'uploads', Key: 'checked', UploadId: uploadId2, MultipartUpload: { Parts: parts } })));
  assert.deepEqual(await complete([{ PartNumber: 1, ETag: small.ETag }, { PartNumber: 2, ETag: last.ETag }]), { code: 'EntityTooSmall', status: 400 });
  assert.deepEqual(await complete([{ PartNumber: 1, ETag: `"${md5('other')}"` }]), { code: 'InvalidPart', status: 400 });
  assert.deepEqual(await complete([{ PartNumber: 3, ETag: last.ETag }]), { code: 'InvalidPart', status: 400 });
  assert.deepEqual(await complete([{ PartNumber: 2, ETag: last.ETag }, { PartNumber: 1, ETag: small.ETag }]), { code: 'InvalidPartOrder', status: 400 });
  assert.deepEqual(await complete([{ PartNumber: 1, ETag: 'not-an-etag' }]), { code: 'InvalidPart', status: 400 });
  // A single small part is a whole upload.
  const single = await t.alpha.send(new CompleteMultipartUploadCommand({ Bucket: 'uploads', Key: 'checked', UploadId: uploadId2, MultipartUpload: { Parts: [{ PartNumber: 2, ETag: last.ETag }] } }));
  assert.equal(single.ETag, `"${md5(Buffer.from(md5('last'), 'hex'))}-1"`);
  assert.equal(await (await t.alpha.send(new GetObjectCommand({ Bucket: 'uploads', Key: 'checked' }))).Body?.transformToString(), 'last');

  assert.deepEqual(await s3Error(t.alpha.send(new UploadPartCommand({ Bucket: 'uploads', Key: 'checked', UploadId: 'no-such-upload', PartNumber: 1, Body: 'x' }))), { code: 'NoSuchUpload', status: 404 });
  const zero = await t.signed('PUT', '/uploads/checked', { query: `partNumber=0&uploadId=${uploadId2}`, body: 'x' });
  assert.equal(zero.status, 400);
  assert.match(await zero.text(), /<Code>InvalidArgument<\/Code>/);
  assert.deepEqual(await s3Error(t.alpha.send(new CreateMultipartUploadCommand({ Bucket: 'no-such-uploads', Key: 'k' }))), { code: 'NoSuchBucket', status: 404 });
  await t.alpha.send(new DeleteObjectCommand({ Bucket: 'uploads', Key: 'checked' }));
});

test('multipart: UploadPartCopy with a source range', async () => {
  const source = pattern(6 * MiB, 9);
  await t.alpha.send(new PutObjectCommand({ Bucket: 'uploads', Key: 'source.bin', Body: source }));
  const { UploadId } = await t.alpha.send(new CreateMultipartUploadCommand({ Bucket: 'uploads', Key: 'copied.bin' }));
  const uploadId = UploadId ?? '';
  const c1 = await t.alpha.send(new UploadPartCopyCommand({ Bucket: 'uploads', Key: 'copied.bin', UploadId: uploadId, PartNumber: 1, CopySource: 'uploads/source.bin', CopySourceRange: `bytes=0-${5 * MiB - 1}` }));
  const c2 = await t.alpha.send(new UploadPartCopyCommand({ Bucket: 'uploads', Key: 'copied.bin', UploadId: uploadId, PartNumber: 2, CopySource: 'uploads/source.bin', CopySourceRange: `bytes=${5 * MiB}-${6 * MiB - 1}` }));
  assert.equal(c1.CopyPartResult?.ETag, `"${md5(source.subarray(0, 5 * MiB))}"`);
  const bad = await s3Error(t.alpha.send(new UploadPartCopyCommand({ Bucket: 'uploads', Key: 'copied.bin', UploadId: uploadId, PartNumber: 3, CopySource: 'uploads/source.bin', CopySourceRange: `bytes=0-${7 * MiB}` })));
  assert.deepEqual(bad, { code: 'InvalidArgument', status: 400 });
  await t.alpha.send(
    new CompleteMultipartUploadCommand({
      Bucket: 'uploads',
      Key: 'copied.bin',
      UploadId: uploadId,
      MultipartUpload: { Parts: [{ PartNumber: 1, ETag: c1.CopyPartResult?.ETag }, { PartNumber: 2, ETag: c2.CopyPartResult?.ETag }] },
    }),
  );
  const got = await t.alpha.send(new GetObjectCommand({ Bucket: 'uploads', Key: 'copied.bin' }));
  assert.ok(Buffer.from((await got.Body?.transformToByteArray()) ?? []).equals(source));
});

test('multipart: deleting a bucket removes its unfinished uploads', async () => {
  await t.alpha.send(new CreateBucketCommand({ Bucket: 'short-lived' }));
  const { UploadId } = await t.alpha.send(new CreateMultipartUploadCommand({ Bucket: 'short-lived', Key: 'pending' }));
  await t.alpha.send(new UploadPartCommand({ Bucket: 'short-lived', Key: 'pending', UploadId, PartNumber: 1, Body: 'data' }));
  assert.equal((await t.alpha.send(new DeleteBucketCommand({ Bucket: 'short-lived' }))).$metadata.httpStatusCode, 204);
  const seg = await t.cloud.request('HEAD', `${t.cloud.account(t.cloud.alpha)}/short-lived+segments`);
  assert.equal(seg.status, 404);
});
