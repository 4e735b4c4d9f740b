import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { crc32 } from 'node:zlib';
import { S3BodyStream, type S3BodyOptions } from './body.js';
import { chunkStringToSign, sha256Hex, signingKey, signV4, trailerStringToSign } from './signature.js';

const SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
const DATE = '20130524T000000Z';
const SCOPE = { date: '20130524', region: 'us-east-1', service: 's3' };
const KEY = signingKey(SECRET, SCOPE);
// The seed signature of AWS's aws-chunked example request.
const SEED = '4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9';

/** Runs bytes through the stream in pieces of `step` bytes; what came out, and the error. */
async function run(options: S3BodyOptions, input: Buffer, step = input.length || 1): Promise<{ out: Buffer; error: Error | null; stream: S3BodyStream }> {
  const pieces: Buffer[] = [];
  for (let i = 0; i < input.length; i += step) pieces.push(input.subarray(i, i + step));
  const stream = new S3BodyStream(options);
  Readable.from(pieces).pipe(stream);
  const out: Buffer[] = [];
  try {
    for await (const piece of stream) out.push(piece as Buffer);
    return { out: Buffer.concat(out), error: null, stream };
  } catch (err) {
    return { out: Buffer.concat(out), error: err as Error, stream };
  }
}

/** An aws-chunked body of these chunk sizes, signed (or not), with trailers. */
function chunked(sizes: number[], options: { signed?: boolean; trailers?: Record<string, string>; trailerSigned?: boolean; tamper?: number } = {}): Buffer {
  const parts: Buffer[] = [];
  let previous = SEED;
  sizes.forEach((size, i) => {
    const data = Buffer.alloc(size, 'a');
    let header = size.toString(16);
    if (options.signed) {
      previous = signV4(KEY, chunkStringToSign(DATE, SCOPE, previous, sha256Hex(data)));
      header += `;chunk-signature=${i === options.tamper ? '0'.repeat(64) : previous}`;
    }
    parts.push(Buffer.from(`${header}\r\n`), data);
    if (size > 0) parts.push(Buffer.from('\r\n'));
  });
  if (options.trailers) {
    const trailers = { ...options.trailers };
    if (options.trailerSigned) trailers['x-amz-trailer-signature'] = signV4(KEY, trailerStringToSign(DATE, SCOPE, previous, trailers));
    for (const [k, v] of Object.entries(trailers)) parts.push(Buffer.from(`${k}:${v}\r\n`));
  }
  parts.push(Buffer.from('\r\n'));
  return Buffer.concat(parts);
}

const signing = { key: KEY, amzDate: DATE, scope: SCOPE, seedSignature: SEED };

test('aws-chunked: the AWS example body decodes, its chunk signatures check, whatever the read sizes', async () => {
  const body = chunked([65536, 1024, 0], { signed: true });
  assert.equal(body.length, 66824, 'the Content-Length of the AWS example');
  for (const step of [body.length, 8192, 1000, 7, 1]) {
    const { out, error } = await run({ encoding: 'chunked', length: 66560, signing, trailers: [] }, body, step);
    assert.equal(error, null, `step ${step}`);
    assert.equal(out.length, 66560);
    assert.ok(out.equals(Buffer.alloc(66560, 'a')));
  }
});

test('aws-chunked: a wrong chunk signature fails and the payload is never complete downstream', async () => {
  for (const tamper of [0, 1, 2]) {
    const { out, error, stream } = await run({ encoding: 'chunked', length: 66560, signing, trailers: [] }, chunked([65536, 1024, 0], { signed: true, tamper }), 4096);
    assert.ok(error, `chunk ${tamper}`);
    assert.equal(stream.failure?.code, 'SignatureDoesNotMatch');
    assert.ok(out.length < 66560);
  }
});

test('aws-chunked: unsigned chunks with a CRC32 trailer (what current SDKs send)', async () => {
  const data = Buffer.alloc(66560, 'a');
  const good = Buffer.alloc(4);
  good.writeUInt32BE(crc32(data));
  const ok = await run(
    { encoding: 'chunked', length: 66560, trailers: ['x-amz-checksum-crc32'], checksum: { algorithm: 'crc32', trailer: 'x-amz-checksum-crc32' } },
    chunked([65536, 1024, 0], { trailers: { 'x-amz-checksum-crc32': good.toString('base64') } }),
    3000,
  );
  assert.equal(ok.error, null);
  assert.equal(ok.out.length, 66560);
  assert.equal(ok.stream.trailers['x-amz-checksum-crc32'], good.toString('base64'));

  const bad = await run(
    { encoding: 'chunked', length: 66560, trailers: ['x-amz-checksum-crc32'], checksum: { algorithm: 'crc32', trailer: 'x-amz-checksum-crc32' } },
    chunked([65536, 1024, 0], { trailers: { 'x-amz-checksum-crc32': 'AAAAAA==' } }),
  );
  assert.equal(bad.stream.failure?.code, 'BadDigest');
  assert.match(bad.stream.failure?.message ?? '', /CRC32/);
  assert.ok(bad.out.length < 66560);

  const unexpected = await run({ encoding: 'chunked', length: 66560, trailers: [] }, chunked([65536, 1024, 0], { trailers: { 'x-amz-checksum-crc32': 'AAAAAA==' } }));
  assert.equal(unexpected.stream.failure?.code, 'IncompleteBody');
  const missing = await run({ encoding: 'chunked', length: 66560, trailers: ['x-amz-checksum-crc32'] }, chunked([65536, 1024, 0]));
  assert.equal(missing.stream.failure?.code, 'MalformedTrailerError');
});

test('aws-chunked: signed chunks with a signed trailer', async () => {
  const data = Buffer.alloc(9000, 'a');
  const sha = createHash('sha256').update(data).digest('base64');
  const options: S3BodyOptions = {
    encoding: 'chunked',
    length: 9000,
    signing,
    trailers: ['x-amz-checksum-sha256', 'x-amz-trailer-signature'],
    checksum: { algorithm: 'sha256', trailer: 'x-amz-checksum-sha256' },
  };
  const ok = await run(options, chunked([8192, 808, 0], { signed: true, trailers: { 'x-amz-checksum-sha256': sha }, trailerSigned: true }), 100);
  assert.equal(ok.error, null);
  assert.ok(ok.out.equals(data));
  const unsigned = await run(options, chunked([8192, 808, 0], { signed: true, trailers: { 'x-amz-checksum-sha256': sha, 'x-amz-trailer-signature': '0'.repeat(64) } }));
  assert.equal(unsigned.stream.failure?.code, 'SignatureDoesNotMatch');
});

test('aws-chunked: framing errors (small chunk, lengths, garbage)', async () => {
  const small = await run({ encoding: 'chunked', length: 2000, trailers: [] }, chunked([1000, 1000, 0]));
  assert.equal(small.stream.failure?.code, 'InvalidChunkSizeError');
  const longer = await run({ encoding: 'chunked', length: 100, trailers: [] }, chunked([200, 0]));
  assert.equal(longer.stream.failure?.code, 'IncompleteBody');
  const shorter = await run({ encoding: 'chunked', length: 300, trailers: [] }, chunked([200, 0]));
  assert.equal(shorter.stream.failure?.code, 'IncompleteBody');
  const cut = chunked([200, 0]).subarray(0, 150);
  assert.equal((await run({ encoding: 'chunked', length: 200, trailers: [] }, cut)).stream.failure?.code, 'IncompleteBody');
  assert.equal((await run({ encoding: 'chunked', length: 5, trailers: [] }, Buffer.from('zz\r\nhello\r\n0\r\n\r\n'))).stream.failure?.code, 'IncompleteBody');
  assert.equal((await run({ encoding: 'chunked', length: 5, trailers: [] }, Buffer.from('5\r\nhelloXX0\r\n\r\n'))).stream.failure?.code, 'IncompleteBody');
  const noSig = await run({ encoding: 'chunked', length: 5, signing, trailers: [] }, Buffer.from('5\r\nhello\r\n0\r\n\r\n'));
  assert.equal(noSig.stream.failure?.code, 'SignatureDoesNotMatch');
});

test('plain bodies: x-amz-content-sha256, length and Content checksum are verified before the last bytes go on', async () => {
  const data = Buffer.from('Welcome to Amazon S3.');
  const sha256 = sha256Hex(data);
  const ok = await run({ encoding: 'plain', length: data.length, sha256 }, data, 4);
  assert.equal(ok.error, null);
  assert.ok(ok.out.equals(data));
  const wrong = await run({ encoding: 'plain', length: data.length, sha256: sha256Hex('other') }, data, 4);
  assert.equal(wrong.stream.failure?.code, 'XAmzContentSHA256Mismatch');
  assert.ok(wrong.out.length < data.length, 'the payload never arrives whole');
  const short = await run({ encoding: 'plain', length: data.length + 1 }, data);
  assert.equal(short.stream.failure?.code, 'IncompleteBody');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(data));
  assert.equal((await run({ encoding: 'plain', length: null, checksum: { algorithm: 'crc32', value: crc.toString('base64') } }, data, 5)).error, null);
  const badCrc = await run({ encoding: 'plain', length: null, checksum: { algorithm: 'crc32', value: 'AAAAAA==' } }, data, 5);
  assert.equal(badCrc.stream.failure?.code, 'BadDigest');
  const empty = await run({ encoding: 'plain', length: 0, sha256: sha256Hex('') }, Buffer.alloc(0));
  assert.equal(empty.error, null);
  assert.equal(empty.out.length, 0);
});
