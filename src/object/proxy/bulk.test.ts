import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { createObjectTestCloud, type ObjectTestCloud } from '../testing.js';
import { buildTar } from './tar-fixture.test-util.js';

interface Report {
  'Response Status': string;
  'Response Body': string;
  Errors: [string, string][];
  [key: string]: unknown;
}

describe('bulk', () => {
  let cloud: ObjectTestCloud;
  let a: string;
  const json = { accept: 'application/json' };

  before(async () => {
    cloud = await createObjectTestCloud();
    a = cloud.account(cloud.alpha);
  });
  after(async () => cloud?.close());

  const names = async (path: string): Promise<string[]> => {
    const r = await cloud.request('GET', path, { query: 'format=json' });
    return r.status === 200 ? r.json<{ name: string }[]>().map((item) => item.name) : [];
  };

  describe('extract-archive', () => {
    it('creates containers and one object per file of a tar at the account', async () => {
      const tar = buildTar([
        { name: 'ex1/', type: '5' },
        { name: 'ex1/a.txt', data: 'alpha' },
        { name: './ex1/sub/b.json', data: '{"b":1}' },
        { name: 'ex2/c', data: 'c', pax: { 'SCHILY.xattr.user.mime_type': 'text/x-c', 'SCHILY.xattr.user.meta.origin': 'tar' } },
        { name: 'top-level-file', data: 'ignored' },
        { name: 'ex2/link', type: '2' },
      ]);
      const r = await cloud.request('PUT', a, { query: 'extract-archive=tar', headers: { ...json, 'x-object-meta-batch': 'one' }, body: tar });
      assert.equal(r.status, 200);
      assert.equal(r.headers['content-type'], 'application/json');
      const report = r.json<Report>();
      assert.deepEqual(report, { 'Response Status': '201 Created', 'Response Body': '', 'Number Files Created': 3, Errors: [] });
      assert.deepEqual(await names(`${a}/ex1`), ['a.txt', 'sub/b.json']);
      assert.equal((await cloud.request('GET', `${a}/ex1/sub/b.json`)).text, '{"b":1}');
      const c = await cloud.request('GET', `${a}/ex2/c`);
      assert.equal(c.text, 'c');
      assert.equal(c.headers['content-type'], 'text/x-c');
      assert.equal(c.headers['x-object-meta-origin'], 'tar');
      assert.equal(c.headers['x-object-meta-batch'], 'one');
      assert.equal((await cloud.request('GET', `${a}/ex1/a.txt`)).headers['content-type'], 'text/plain');
    });

    it('extracts a gzipped, streamed archive into a container and a pseudo-directory', async () => {
      await cloud.request('PUT', `${a}/target`);
      const big = Buffer.alloc(3 * 1024 * 1024, 9);
      const tgz = gzipSync(buildTar([{ name: 'one.bin', data: big }, { name: 'dir/two.txt', data: 'two' }]));
      const body = Readable.from([tgz.subarray(0, 1000), tgz.subarray(1000)]);
      const r = await cloud.request('PUT', `${a}/target/base/`, { query: 'extract-archive=tar.gz', headers: json, body });
      assert.equal(r.json<Report>()['Number Files Created'], 2);
      assert.deepEqual(await names(`${a}/target`), ['base/dir/two.txt', 'base/one.bin']);
      assert.equal((await cloud.request('GET', `${a}/target/base/one.bin`)).body.equals(big), true);
    });

    it('answers the report in plain text by default and in XML on request', async () => {
      const tar = buildTar([{ name: 'ex3/x', data: 'x' }]);
      const plain = await cloud.request('PUT', a, { query: 'extract-archive=tar', body: tar });
      assert.equal(plain.headers['content-type'], 'text/plain');
      assert.equal(plain.text, 'Number Files Created: 1\nResponse Body: \nResponse Status: 201 Created\nErrors:\n');
      const xml = await cloud.request('PUT', a, { query: 'extract-archive=tar', headers: { accept: 'application/xml' }, body: tar });
      assert.equal(xml.text, '<extract>\n<number_files_created>1</number_files_created>\n<response_body></response_body>\n<response_status>201 Created</response_status>\n<errors>\n</errors>\n</extract>\n');
    });

    it('reports bad archives, unsupported formats and files it could not store', async () => {
      const notTar = await cloud.request('PUT', a, { query: 'extract-archive=tar', headers: json, body: 'x'.repeat(2000) });
      assert.equal(notTar.status, 200);
      assert.equal(notTar.json<Report>()['Response Status'], '400 Bad Request');
      assert.match(notTar.json<Report>()['Response Body'], /^Invalid Tar File: /);
      const notGzip = await cloud.request('PUT', a, { query: 'extract-archive=tar.gz', headers: json, body: buildTar([{ name: 'c/x', data: 'x' }]) });
      assert.match(notGzip.json<Report>()['Response Body'], /^Invalid Tar File: /);
      const empty = await cloud.request('PUT', a, { query: 'extract-archive=tar', headers: json, body: buildTar([{ name: 'only-top', data: 'x' }]) });
      assert.deepEqual(empty.json<Report>(), { 'Response Status': '400 Bad Request', 'Response Body': 'Invalid Tar File: No Valid Files', 'Number Files Created': 0, Errors: [] });
      const zip = await cloud.request('PUT', a, { query: 'extract-archive=zip', body: 'x' });
      assert.equal(zip.status, 400);
      assert.equal(zip.text, 'Unsupported archive format');
      assert.equal((await cloud.request('PUT', a, { query: 'extract-archive=tar.bz2', body: 'x' })).status, 400);
      const longName = `ex4/${'n'.repeat(1100)}`;
      const failed = await cloud.request('PUT', a, { query: 'extract-archive=tar', headers: json, body: buildTar([{ name: 'ex4/fine', data: 'ok' }, { name: longName, data: 'x' }]) });
      const report = failed.json<Report>();
      assert.equal(report['Response Status'], '400 Bad Request');
      assert.equal(report['Number Files Created'], 1);
      assert.deepEqual(report.Errors, [[longName, '400 Bad Request']]);
      const unacceptable = await cloud.request('PUT', a, { query: 'extract-archive=tar', headers: { accept: 'image/png' }, body: buildTar([{ name: 'ex5/x', data: 'x' }]) });
      assert.equal(unacceptable.status, 200);
      assert.match(unacceptable.text, /Response Status: 406 Not Acceptable/);
      assert.deepEqual(await names(`${a}/ex5`), []);
    });

    it('stores nothing of a file the archive cuts short', async () => {
      const tar = buildTar([{ name: 'cut/whole', data: 'complete' }, { name: 'cut/partial', data: Buffer.alloc(200000, 5) }]);
      const r = await cloud.request('PUT', a, { query: 'extract-archive=tar', headers: json, body: tar.subarray(0, 100000) });
      const report = r.json<Report>();
      assert.equal(report['Response Status'], '400 Bad Request');
      assert.equal(report['Response Body'], 'Invalid Tar File: unexpected end of data');
      assert.deepEqual(await names(`${a}/cut`), ['whole']);
    });

    it('works only as far as the caller may write', async () => {
      const b = cloud.account(cloud.beta);
      const r = await cloud.request('PUT', b, { query: 'extract-archive=tar', headers: json, body: buildTar([{ name: 'stolen/x', data: 'x' }]) });
      const report = r.json<Report>();
      assert.equal(report['Response Status'], '400 Bad Request');
      assert.deepEqual(report.Errors, [[`${b}/stolen`, '403 Forbidden'], ['stolen/x', '403 Forbidden']]);
      const anonymous = await cloud.request('PUT', a, { user: null, query: 'extract-archive=tar', headers: json, body: buildTar([{ name: 'anon/x', data: 'x' }]) });
      assert.equal(anonymous.json<Report>()['Response Status'], '401 Unauthorized');
    });
  });

  describe('bulk-delete', () => {
    it('deletes objects then containers, counting what was not found', async () => {
      await cloud.request('PUT', `${a}/del`);
      await cloud.request('PUT', `${a}/del/o 1`, { body: '1' });
      await cloud.request('PUT', `${a}/del/dir/ü`, { body: '2' });
      const list = ['/del', 'del/o%201', '/del/dir/%C3%BC', 'del/missing', '', 'nope'].join('\n');
      const r = await cloud.request('DELETE', a, { query: 'bulk-delete', headers: { ...json, 'content-type': 'text/plain' }, body: list });
      assert.equal(r.status, 200);
      assert.deepEqual(r.json<Report>(), { 'Response Status': '200 OK', 'Response Body': '', 'Number Deleted': 3, 'Number Not Found': 2, Errors: [] });
      assert.equal((await cloud.request('HEAD', `${a}/del`)).status, 404);
    });

    it('accepts POST and reports failures with their status', async () => {
      await cloud.request('PUT', `${a}/keep`);
      await cloud.request('PUT', `${a}/keep/x`, { body: 'x' });
      const b = cloud.account(cloud.beta);
      await cloud.request('PUT', `${b}/theirs`, { user: cloud.beta });
      const r = await cloud.request('POST', a, { query: 'bulk-delete', headers: { ...json, 'content-type': 'text/plain' }, body: 'keep\nbad%FFname/x\n' });
      assert.deepEqual(r.json<Report>(), {
        'Response Status': '400 Bad Request',
        'Response Body': '',
        'Number Deleted': 0,
        'Number Not Found': 0,
        Errors: [
          ['bad%FFname/x', '412 Precondition Failed'],
          ['keep', '409 Conflict'],
        ],
      });
      const plain = await cloud.request('POST', b, { query: 'bulk-delete', body: 'theirs' });
      assert.equal(plain.text, 'Number Deleted: 0\nNumber Not Found: 0\nResponse Body: \nResponse Status: 400 Bad Request\nErrors:\ntheirs, 403 Forbidden\n');
      assert.equal((await cloud.request('HEAD', `${b}/theirs`, { user: cloud.beta })).status, 204);
    });

    it('refuses a body that is not a plain list, an empty list and lists too long', async () => {
      const wrongType = await cloud.request('DELETE', a, { query: 'bulk-delete', headers: { ...json, 'content-type': 'application/json' }, body: '["x"]' });
      assert.equal(wrongType.json<Report>()['Response Status'], '406 Not Acceptable');
      const nothing = await cloud.request('DELETE', a, { query: 'bulk-delete', headers: json, body: '\n\n' });
      assert.deepEqual(nothing.json<Report>(), { 'Response Status': '400 Bad Request', 'Response Body': 'Invalid bulk delete.', 'Number Deleted': 0, 'Number Not Found': 0, Errors: [] });
      const tooLong = await cloud.request('DELETE', a, { query: 'bulk-delete', headers: json, body: `c/${'x'.repeat(3000)}` });
      assert.deepEqual(tooLong.json<Report>()['Response Body'], 'Invalid File Name');
    });

    it('reports its limits in /info', async () => {
      const info = (await cloud.request('GET', '/info', { user: null })).json<Record<string, Record<string, number>>>();
      assert.deepEqual(info.bulk_delete, { max_deletes_per_request: 10000, max_failed_deletes: 1000 });
      assert.deepEqual(info.bulk_upload, { max_containers_per_extraction: 10000, max_failed_extractions: 1000 });
    });
  });
});
