import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { conditionalStatus, parseRange, rangesForLength, SegmentError, serveLargeObject, type RangeReader } from './large-object-response.js';
import { bodyOf, request } from './memory-swift.test-util.js';

const DATA = Buffer.from('abcdefghijklmnopqrstuvwxyz');

/** A reader over DATA that fails when asked for `failAt`. */
function reader(failAt?: number): RangeReader {
  return async function* read(start, end) {
    for (let i = start; i < Math.min(end, DATA.length); i += 5) {
      if (failAt !== undefined && i >= failAt) throw new SegmentError('segment gone');
      yield DATA.subarray(i, Math.min(end, i + 5));
    }
  };
}

describe('Range headers as Swift reads them', () => {
  it('parses the three forms and ignores what is not valid', () => {
    assert.deepEqual(parseRange('bytes=0-1'), [[0, 1]]);
    assert.deepEqual(parseRange('bytes=-5'), [[null, 5]]);
    assert.deepEqual(parseRange('bytes=5-'), [[5, null]]);
    assert.deepEqual(parseRange('bytes=1-2, 4-5'), [[1, 2], [4, 5]]);
    for (const bad of [undefined, '', 'bytes=5-3', 'bytes=-', 'bytes=45', 'items=0-1', 'bytes=a-b', 'bytes=1-2,x']) assert.equal(parseRange(bad), null, String(bad));
  });

  it('gives satisfiable ranges for a length, empty for 416', () => {
    assert.deepEqual(rangesForLength([[0, 1]], 10), [[0, 2]]);
    assert.deepEqual(rangesForLength([[null, 5]], 10), [[5, 10]]);
    assert.deepEqual(rangesForLength([[null, 50]], 10), [[0, 10]]);
    assert.deepEqual(rangesForLength([[8, 100]], 10), [[8, 10]]);
    assert.deepEqual(rangesForLength([[10, 12]], 10), []);
    assert.deepEqual(rangesForLength([[null, 0]], 10), []);
    assert.deepEqual(rangesForLength([[10, 12], [1, 1]], 10), [[1, 2]]);
  });

  it('refuses egregious range sets (overlaps, too many, out of order)', () => {
    assert.deepEqual(rangesForLength([[0, 5], [1, 6], [2, 7], [3, 8]], 10), []);
    assert.deepEqual(rangesForLength(Array.from({ length: 51 }, (_, i) => [i, i] as [number, number]), 100), []);
    assert.deepEqual(rangesForLength(Array.from({ length: 8 }, (_, i) => [16 - 2 * i, 16 - 2 * i] as [number, number]), 100), []);
    assert.equal(rangesForLength(Array.from({ length: 7 }, (_, i) => [16 - 2 * i, 16 - 2 * i] as [number, number]), 100).length, 7);
  });
});

describe('conditional headers', () => {
  const lastModified = 'Tue, 14 Nov 2023 22:13:20 GMT';
  it('answers 304 and 412 as swob does', () => {
    assert.equal(conditionalStatus({ 'if-none-match': '"abc"' }, 'abc', lastModified), 304);
    assert.equal(conditionalStatus({ 'if-none-match': '*' }, 'abc', lastModified), 304);
    assert.equal(conditionalStatus({ 'if-none-match': 'other' }, 'abc', lastModified), null);
    assert.equal(conditionalStatus({ 'if-match': 'other' }, 'abc', lastModified), 412);
    assert.equal(conditionalStatus({ 'if-match': 'x, "abc"' }, 'abc', lastModified), null);
    assert.equal(conditionalStatus({ 'if-modified-since': lastModified }, 'abc', lastModified), 304);
    assert.equal(conditionalStatus({ 'if-modified-since': 'Mon, 13 Nov 2023 00:00:00 GMT' }, 'abc', lastModified), null);
    assert.equal(conditionalStatus({ 'if-unmodified-since': 'Mon, 13 Nov 2023 00:00:00 GMT' }, 'abc', lastModified), 412);
    assert.equal(conditionalStatus({ 'if-unmodified-since': 'garbage' }, 'abc', lastModified), null);
  });
});

describe('serveLargeObject', () => {
  const object = { headers: { 'content-type': 'text/plain', 'last-modified': 'Tue, 14 Nov 2023 22:13:20 GMT' }, length: DATA.length, etag: 'e1', multipleRanges: true, name: '/v1/a/c/o' };

  it('sends the whole body with its length', async () => {
    const resp = await serveLargeObject(request('GET', '/v1/a/c/o'), { ...object, read: reader() });
    assert.equal(resp.status, 200);
    assert.equal(resp.headers['content-length'], '26');
    assert.equal(resp.headers['accept-ranges'], 'bytes');
    assert.deepEqual(await bodyOf(resp), DATA);
  });

  it('answers HEAD with headers only', async () => {
    const resp = await serveLargeObject(request('HEAD', '/v1/a/c/o'), { ...object, read: reader(0) });
    assert.equal(resp.status, 200);
    assert.equal(resp.headers['content-length'], '26');
    assert.equal(resp.body, null);
  });

  it('serves one range as 206 with Content-Range', async () => {
    const resp = await serveLargeObject(request('GET', '/v1/a/c/o', { headers: { range: 'bytes=3-12' } }), { ...object, read: reader() });
    assert.equal(resp.status, 206);
    assert.equal(resp.headers['content-range'], 'bytes 3-12/26');
    assert.equal(resp.headers['content-length'], '10');
    assert.equal((await bodyOf(resp)).toString(), 'defghijklm');
  });

  it('serves several ranges as multipart/byteranges with an exact length', async () => {
    const resp = await serveLargeObject(request('GET', '/v1/a/c/o', { headers: { range: 'bytes=0-1,-2' } }), { ...object, read: reader() });
    assert.equal(resp.status, 206);
    const boundary = /boundary=(\w+)$/.exec(resp.headers['content-type'] ?? '')?.[1] ?? '';
    const body = (await bodyOf(resp)).toString();
    assert.equal(body, `--${boundary}\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-1/26\r\n\r\nab\r\n--${boundary}\r\nContent-Type: text/plain\r\nContent-Range: bytes 24-25/26\r\n\r\nyz\r\n--${boundary}--`);
    assert.equal(resp.headers['content-length'], String(Buffer.byteLength(body)));
  });

  it('answers 416 for an unsatisfiable range and ignores an invalid one', async () => {
    const bad = await serveLargeObject(request('GET', '/v1/a/c/o', { headers: { range: 'bytes=30-40' } }), { ...object, read: reader() });
    assert.equal(bad.status, 416);
    assert.equal(bad.headers['content-range'], 'bytes */26');
    const ignored = await serveLargeObject(request('GET', '/v1/a/c/o', { headers: { range: 'bytes=9-3' } }), { ...object, read: reader() });
    assert.equal(ignored.status, 200);
    assert.equal((await bodyOf(ignored)).length, 26);
  });

  it('honours only a single range when multiple ranges are off', async () => {
    const resp = await serveLargeObject(request('GET', '/v1/a/c/o', { headers: { range: 'bytes=0-1,3-4' } }), { ...object, multipleRanges: false, read: reader() });
    assert.equal(resp.status, 200);
  });

  it('answers the conditional headers against the given ETag', async () => {
    const resp = await serveLargeObject(request('GET', '/v1/a/c/o', { headers: { 'if-none-match': '"e1"' } }), { ...object, read: reader(0) });
    assert.equal(resp.status, 304);
    assert.equal(resp.headers['content-length'], '0');
    const failed = await serveLargeObject(request('GET', '/v1/a/c/o', { headers: { 'if-match': 'zz' } }), { ...object, read: reader(0) });
    assert.equal(failed.status, 412);
  });

  it('answers 409 when the first segment is bad, and drops the stream when a later one is', async () => {
    const first = await serveLargeObject(request('GET', '/v1/a/c/o'), { ...object, read: reader(0) });
    assert.equal(first.status, 409);
    const later = await serveLargeObject(request('GET', '/v1/a/c/o'), { ...object, read: reader(10) });
    assert.equal(later.status, 200);
    await assert.rejects(bodyOf(later), /segment gone/);
  });

  it('drops the stream when segments give fewer bytes than promised', async () => {
    const resp = await serveLargeObject(request('GET', '/v1/a/c/o'), { ...object, length: 30, read: reader() });
    await assert.rejects(bodyOf(resp), /Expected another 4 bytes/);
  });

  it('streams without a length when the length is unknown', async () => {
    const resp = await serveLargeObject(request('GET', '/v1/a/c/o', { headers: { range: 'bytes=0-1' } }), { ...object, length: null, read: reader() });
    assert.equal(resp.status, 200);
    assert.equal(resp.headers['content-length'], undefined);
    assert.deepEqual(await bodyOf(resp), DATA);
  });
});
