import assert from 'node:assert/strict';
import type { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { BulkAbort, bulkResponse, formatBulkReport } from './bulk-response.js';

async function text(stream: Readable): Promise<string> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(chunk as Buffer);
  return Buffer.concat(parts).toString('utf8');
}

describe('formatBulkReport', () => {
  const result = { 'Response Status': '400 Bad Request', 'Response Body': '', 'Number Deleted': 1, 'Number Not Found': 2 };
  const failures: [string, string][] = [['c/o%20<1>', '409 Conflict']];

  it('writes plain text with sorted keys', () => {
    assert.equal(formatBulkReport('text/plain', result, failures, 'delete'), 'Number Deleted: 1\nNumber Not Found: 2\nResponse Body: \nResponse Status: 400 Bad Request\nErrors:\nc/o%20<1>, 409 Conflict\n');
  });

  it('writes JSON with an Errors list', () => {
    assert.deepEqual(JSON.parse(formatBulkReport('application/json', result, failures, 'delete')), { ...result, Errors: [['c/o%20<1>', '409 Conflict']] });
  });

  it('writes XML under the root tag', () => {
    assert.equal(
      formatBulkReport('application/xml', result, failures, 'delete'),
      '<delete>\n<number_deleted>1</number_deleted>\n<number_not_found>2</number_not_found>\n<response_body></response_body>\n<response_status>400 Bad Request</response_status>\n<errors>\n<object><name>c/o%20&lt;1&gt;</name><status>409 Conflict</status></object>\n</errors>\n</delete>\n',
    );
  });
});

describe('bulkResponse', () => {
  it('sends whitespace while the work goes on, then a separator and the report', async () => {
    let release: () => void = () => undefined;
    const done = new Promise<void>((resolve) => (release = resolve));
    const resp = bulkResponse('application/json', 'extract', { 'Response Status': '201 Created', 'Response Body': '', 'Number Files Created': 0 }, 5, async (result, _failures, progress) => {
      await done;
      assert.equal(progress.gone, false);
      result['Number Files Created'] = 3;
    }, () => undefined);
    assert.equal(resp.status, 200);
    assert.equal(resp.headers['content-type'], 'application/json');
    const body = resp.body as Readable;
    const first = await new Promise<Buffer>((resolve) => body.once('data', resolve));
    assert.equal(first.toString(), ' ');
    release();
    const rest = await text(body);
    const [heartbeats, report] = rest.split('\r\n\r\n');
    assert.match(heartbeats ?? '', /^ *$/);
    assert.deepEqual(JSON.parse(report ?? ''), { 'Response Status': '201 Created', 'Response Body': '', 'Number Files Created': 3, Errors: [] });
  });

  it('reports an abort as the status and body, and an unexpected error as 500', async () => {
    const aborted = bulkResponse('text/plain', 'delete', { 'Response Status': '200 OK', 'Response Body': '' }, 60000, async () => {
      throw new BulkAbort(413, 'Maximum Bulk Deletes: 10000 per request');
    }, () => undefined);
    assert.equal(await text(aborted.body as Readable), 'Response Body: Maximum Bulk Deletes: 10000 per request\nResponse Status: 413 Request Entity Too Large\nErrors:\n');
    const errors: unknown[] = [];
    const failed = bulkResponse('text/plain', 'delete', { 'Response Status': '200 OK', 'Response Body': '' }, 60000, async () => {
      throw new Error('boom');
    }, (err) => errors.push(err));
    assert.equal(await text(failed.body as Readable), 'Response Body: \nResponse Status: 500 Internal Error\nErrors:\n');
    assert.equal(errors.length, 1);
  });
});
