import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { MimeInvalid, parseContentDisposition, readMultipartForm } from './multipart-form.js';

function chunked(data: Buffer, size: number): Readable {
  const pieces: Buffer[] = [];
  for (let at = 0; at < data.length; at += size) pieces.push(data.subarray(at, at + size));
  return Readable.from(pieces);
}

async function text(stream: Readable): Promise<string> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(chunk as Buffer);
  return Buffer.concat(parts).toString('latin1');
}

/** A form as browsers (and Tempest) write one. */
function form(boundary: string, parts: { headers: string[]; body: string }[], close = true): Buffer {
  const lines: string[] = [];
  for (const part of parts) lines.push(`--${boundary}`, ...part.headers, '', part.body);
  if (close) lines.push(`--${boundary}--`, '');
  return Buffer.from(lines.join('\r\n'), 'latin1');
}

async function all(source: Readable, boundary: string): Promise<{ headers: Record<string, string>; body: string }[]> {
  const out: { headers: Record<string, string>; body: string }[] = [];
  for await (const part of readMultipartForm(source, boundary)) out.push({ headers: part.headers, body: await text(part.body) });
  return out;
}

describe('readMultipartForm', () => {
  const boundary = '--boundary--';
  const body = form(boundary, [
    { headers: ['Content-Disposition: form-data; name="redirect"'], body: '' },
    { headers: ['Content-Disposition: form-data; name="max_file_size"'], body: '104857600' },
    { headers: ['Content-Disposition: form-data; name="file1"; filename="testfile"', 'Content-Type: application/octet-stream'], body: 'hello world' },
    { headers: ['Content-Disposition: form-data; name="file2"; filename="two"'], body: `line\r\n--not-the-boundary\r\n${'z'.repeat(70000)}` },
  ]);

  it('splits fields and files at the boundary, whatever the chunking', async () => {
    for (const size of [1, 3, 17, 4096, 1 << 20]) {
      const parts = await all(chunked(body, size), boundary);
      assert.equal(parts.length, 4);
      assert.deepEqual(parts[0], { headers: { 'content-disposition': 'form-data; name="redirect"' }, body: '' });
      assert.equal(parts[1]?.body, '104857600');
      assert.equal(parts[2]?.headers['content-type'], 'application/octet-stream');
      assert.equal(parts[2]?.body, 'hello world');
      assert.equal(parts[3]?.body, `line\r\n--not-the-boundary\r\n${'z'.repeat(70000)}`);
    }
  });

  it('skips parts the caller does not read', async () => {
    const seen: string[] = [];
    for await (const part of readMultipartForm(chunked(body, 1000), boundary)) {
      if (part.headers['content-disposition']?.includes('file1')) seen.push(await text(part.body));
    }
    assert.deepEqual(seen, ['hello world']);
  });

  it('allows empty lines before the first boundary and a body without the closing one', async () => {
    const unclosed = Buffer.concat([Buffer.from('\r\n\r\n'), form('b', [{ headers: ['Content-Disposition: form-data; name="a"'], body: 'value' }], false)]);
    const parts = await all(chunked(unclosed, 5), 'b');
    assert.equal(parts.length, 1);
    assert.equal(parts[0]?.body, 'value');
  });

  it('refuses a body that does not start with the boundary', async () => {
    await assert.rejects(all(Readable.from([Buffer.from('garbage\r\n--b\r\n')]), 'b'), MimeInvalid);
    await assert.rejects(all(Readable.from([]), 'b'), MimeInvalid);
  });
});

describe('parseContentDisposition', () => {
  it('reads the value and its attributes', () => {
    assert.deepEqual(parseContentDisposition('form-data; name="file1"; filename="a b.txt"'), ['form-data', { name: 'file1', filename: 'a b.txt' }]);
    assert.deepEqual(parseContentDisposition('multipart/form-data; boundary=----WebKitFormBoundaryX'), ['multipart/form-data', { boundary: '----WebKitFormBoundaryX' }]);
    assert.deepEqual(parseContentDisposition('form-data'), ['form-data', {}]);
  });
});
