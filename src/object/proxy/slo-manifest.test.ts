import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  annotateSegments,
  byterangePieces,
  ManifestError,
  parseManifestInput,
  pythonJson,
  rawManifest,
  sloEtag,
  strictBase64Decode,
  validateSegment,
  type AnnotatedSegment,
  type InputSegment,
  type SegmentHead,
  type StoredSegment,
} from './slo-manifest.js';
import type { SegmentPiece } from './large-object-segments.js';

const md5 = (text: string): string => createHash('md5').update(text).digest('hex');

function parse(manifest: unknown): InputSegment[] {
  return parseManifestInput(Buffer.from(typeof manifest === 'string' ? manifest : JSON.stringify(manifest)), '/v1/AUTH_a/c/manifest', 'v1', 'AUTH_a');
}

function errorOf(manifest: unknown): string {
  try {
    parse(manifest);
  } catch (error) {
    assert.ok(error instanceof ManifestError);
    return error.body;
  }
  assert.fail('no error');
}

describe('SLO manifest input', () => {
  it('accepts object and data segments', () => {
    const segments = parse([{ path: '/c/s1', etag: 'e', size_bytes: '10', range: '1-2' }, { data: 'aGk' + '=' }, { path: 'c/s2' }]);
    assert.deepEqual(segments[0], { kind: 'path', path: '/c/s1', etag: 'e', sizeBytes: 10, range: [1, 2] });
    assert.equal(segments[1]?.kind, 'data');
    assert.deepEqual(segments[2], { kind: 'path', path: 'c/s2', etag: null, sizeBytes: null, range: null });
  });

  it('refuses what is not a JSON list', () => {
    assert.equal(errorOf('{nope'), 'Manifest must be valid JSON.\n');
    assert.equal(errorOf({ path: '/c/o' }), 'Manifest must be a list.\n');
  });

  it('lists every bad segment with its index, as Swift words it', () => {
    const body = errorOf([
      'x',
      { etag: 'e' },
      { path: '/c/o', foo: 1, bar: 2 },
      { path: 5 },
      { path: '/c/o', etag: 5 },
      { path: '/just-a-container/' },
      { path: '/c/o', size_bytes: 'ten' },
      { path: '/c/o', size_bytes: 0 },
      { path: '/c/manifest' },
      { path: '/c/o', range: 'x-y' },
      { path: '/c/o', range: '1-2,4-5' },
      { path: '/c/o', range: '20-30', size_bytes: 10 },
      { data: 'not base64!' },
      { data: '' },
      { path: '/c/o', size_bytes: 0 },
    ]);
    assert.equal(
      body,
      [
        'Index 0: not a JSON object',
        "Index 1: expected keys to include one of 'data' or 'path'",
        'Index 2: extraneous keys "bar", "foo"',
        'Index 3: "path" must be a string',
        'Index 4: "etag" must be a string or null (if provided)',
        'Index 5: path does not refer to an object. Path must be of the form /container/object.',
        'Index 6: invalid size_bytes',
        'Index 7: too small; each segment must be at least 1 byte.',
        'Index 8: manifest must not include itself as a segment',
        'Index 9: invalid range',
        'Index 10: multiple ranges (only one allowed)',
        'Index 11: unsatisfiable range',
        'Index 12: data must be valid base64',
        'Index 13: too small; each segment must be at least 1 byte.',
        '',
      ].join('\n'),
    );
  });

  it('needs at least one object segment among data segments', () => {
    assert.equal(errorOf([{ data: 'aGk=' }]), 'Inline data segments require at least one object-backed segment.\n');
  });

  it('decodes base64 strictly', () => {
    assert.deepEqual(strictBase64Decode('aGk='), Buffer.from('hi'));
    assert.deepEqual(strictBase64Decode('aGk=='), Buffer.from('hi'));
    assert.equal(strictBase64Decode('aGk'), null);
    assert.equal(strictBase64Decode('a'), null);
    assert.equal(strictBase64Decode('a*b='), null);
    assert.equal(strictBase64Decode(5), null);
  });
});

describe('SLO segment checks against HEAD', () => {
  const head: SegmentHead = { status: 200, statusLine: '200 OK', contentLength: 100, etag: 'abc', contentType: 'text/plain', lastModified: 'Tue, 14 Nov 2023 22:13:20 GMT', isSlo: false };
  const segment = (extra: Partial<Extract<InputSegment, { kind: 'path' }>> = {}): Extract<InputSegment, { kind: 'path' }> => ({ kind: 'path', path: '/c/s p', etag: null, sizeBytes: null, range: null, ...extra });

  it('stores the segment in Swift form', () => {
    const checked = validateSegment(segment(), head, false);
    assert.deepEqual(checked.problems, []);
    assert.equal(checked.length, 100);
    assert.deepEqual(checked.stored, { name: '/c/s p', bytes: 100, hash: 'abc', content_type: 'text/plain', last_modified: '2023-11-14T22:13:20.000000' });
  });

  it('normalises ranges and drops one that covers the whole object', () => {
    assert.equal(validateSegment(segment({ range: [null, 10] }), head, false).stored?.range, '90-99');
    assert.equal(validateSegment(segment({ range: [null, 10] }), head, false).length, 10);
    assert.equal(validateSegment(segment({ range: [0, 500] }), head, false).stored?.range, undefined);
  });

  it('reports missing segments and mismatches, quoted', () => {
    assert.deepEqual(validateSegment(segment(), { ...head, status: 404, statusLine: '404 Not Found' }, false).problems, [['/c/s%20p', '404 Not Found']]);
    assert.deepEqual(validateSegment(segment({ etag: 'x', sizeBytes: 5 }), head, false).problems, [
      ['/c/s%20p', 'Size Mismatch'],
      ['/c/s%20p', 'Etag Mismatch'],
    ]);
    assert.deepEqual(validateSegment(segment({ range: [200, 300] }), head, false).problems, [['/c/s%20p', 'Unsatisfiable Range']]);
    assert.deepEqual(validateSegment(segment(), { ...head, contentLength: 0 }, false).problems, [['/c/s%20p', 'Too small; each segment must be at least 1 byte.']]);
    assert.deepEqual(validateSegment(segment(), { ...head, contentLength: 0 }, true).problems, []);
  });

  it('marks nested SLOs', () => {
    assert.equal(validateSegment(segment(), { ...head, isSlo: true }, false).stored?.sub_slo, true);
  });
});

describe('SLO ETag and raw form', () => {
  const stored: StoredSegment[] = [
    { name: '/c/a', bytes: 3, hash: 'h1', content_type: 'text/plain', last_modified: 'x' },
    { name: '/c/b', bytes: 3, hash: 'h2', content_type: 'text/plain', last_modified: 'x', range: '0-1' },
    { data: Buffer.from('zz').toString('base64') },
  ];

  it('is the MD5 of the segment ETags, ranges and data', () => {
    assert.equal(sloEtag(stored), md5(`h1h2:0-1;${md5('zz')}`));
    assert.equal(sloEtag([]), md5(''));
  });

  it('writes JSON as Python does', () => {
    assert.equal(pythonJson([{ b: 1, a: 'é' }]), '[{"b": 1, "a": "\\u00e9"}]');
    assert.equal(pythonJson({ b: true, a: null }, true), '{"a": null, "b": true}');
  });

  it('gives back the manifest in the form it was put', () => {
    assert.equal(
      rawManifest(stored).toString(),
      '[{"etag": "h1", "path": "/c/a", "size_bytes": 3}, {"etag": "h2", "path": "/c/b", "range": "0-1", "size_bytes": 3}, {"data": "eno="}]',
    );
  });
});

describe('SLO ranges over segments', () => {
  const leaf = (name: string, bytes: number, range?: string): StoredSegment => ({ name, bytes, hash: `h-${name}`, content_type: 'x', last_modified: 'x', ...(range ? { range } : {}) });
  const top = annotateSegments([leaf('/c/a', 10), leaf('/c/b', 10, '2-5'), { data: Buffer.from('xyz').toString('base64') }, { ...leaf('/c/sub', 8), sub_slo: true } as StoredSegment]);
  const sub = annotateSegments([leaf('/c/s1', 4), leaf('/c/s2', 4)]);
  const context = {
    version: 'v1',
    account: 'AUTH_a',
    name: '/v1/AUTH_a/c/m',
    fetched: [] as string[],
    async fetchSubManifest(name: string): Promise<AnnotatedSegment[]> {
      this.fetched.push(name);
      return sub;
    },
  };

  async function pieces(first: number, last: number): Promise<SegmentPiece[]> {
    const out: SegmentPiece[] = [];
    for await (const piece of byterangePieces(top, first, last, context)) out.push(piece);
    return out;
  }

  it('annotates lengths', () => {
    assert.deepEqual(
      top.map((s) => s.length),
      [10, 4, 3, 8],
    );
  });

  it('maps the whole object', async () => {
    const all = await pieces(0, 24);
    assert.deepEqual(
      all.map((p) => (p.data ? `data:${p.first}-${p.last}` : `${p.path}:${p.first}-${p.last}`)),
      ['/v1/AUTH_a/c/a:0-9', '/v1/AUTH_a/c/b:2-5', 'data:0-2', '/v1/AUTH_a/c/s1:0-3', '/v1/AUTH_a/c/s2:0-3'],
    );
    assert.equal(all[0]?.etag, 'h-/c/a');
    assert.equal(all[0]?.size, 10);
  });

  it('maps a range in the middle, skipping what it does not need', async () => {
    context.fetched.length = 0;
    const some = await pieces(12, 15);
    assert.deepEqual(
      some.map((p) => (p.data ? `data:${p.first}-${p.last}` : `${p.path}:${p.first}-${p.last}`)),
      ['/v1/AUTH_a/c/b:4-5', 'data:0-1'],
    );
    assert.deepEqual(context.fetched, []);
    const nested = await pieces(18, 19);
    assert.deepEqual(
      nested.map((p) => `${p.path}:${p.first}-${p.last}`),
      ['/v1/AUTH_a/c/s1:1-2'],
    );
    assert.deepEqual(context.fetched, ['/c/sub']);
  });
});
