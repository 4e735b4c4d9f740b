import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { errorResponse, normalizeEtag } from './large-object-util.js';
import type { SwiftRequest, SwiftResponse } from './pipeline.js';

/**
 * What the large object middlewares (SLO, DLO) answer for a GET or HEAD of
 * an object they assemble from segments: Swift's `Range` rules (swob's
 * `Range`), the conditional headers, `multipart/byteranges`, and a body that
 * is streamed segment after segment.
 */

/** One byte-range-spec of a `Range` header: `[first, last]`, either null (`-N` is `[null, N]`, `N-` is `[N, null]`). */
export type RangeSpec = [number | null, number | null];

/**
 * Parses `Range: bytes=...` as swob does: null when the header is absent or
 * syntactically invalid (then it is ignored and the whole object is sent).
 */
export function parseRange(value: string | undefined): RangeSpec[] | null {
  if (!value) return null;
  const text = value.replace(/ /g, '');
  if (!text.toLowerCase().startsWith('bytes=')) return null;
  const specs: RangeSpec[] = [];
  for (const part of text.slice(6).split(',')) {
    const dash = part.indexOf('-');
    if (dash < 0) return null;
    const startText = part.slice(0, dash);
    const endText = part.slice(dash + 1);
    let start: number | null = null;
    if (startText) {
      if (!/^\+?\d+$/.test(startText)) return null;
      start = Number(startText);
    }
    let end: number | null = null;
    if (endText) {
      if (!/^\d+$/.test(endText)) return null;
      end = Number(endText);
      if (start !== null && end < start) return null;
    } else if (start === null) {
      return null;
    }
    specs.push([start, end]);
  }
  return specs;
}

const MAX_RANGES = 50;
const MAX_RANGE_OVERLAPS = 2;
const MAX_NONASCENDING_RANGES = 8;

/**
 * The satisfiable ranges for a body of `length` bytes as `[start, end)` pairs
 * (swob's `ranges_for_length`): an empty list means 416; more than 50 ranges,
 * more than two overlaps or 8+ ranges out of order are refused (empty) as
 * Swift refuses them.
 */
export function rangesForLength(specs: RangeSpec[], length: number): [number, number][] {
  const ranges: [number, number][] = [];
  for (const [begin, end] of specs) {
    if (begin === null) {
      if (end === 0 || end === null) continue;
      ranges.push(end > length ? [0, length] : [length - end, length]);
      continue;
    }
    if (begin >= length) continue;
    ranges.push([begin, end === null ? length : Math.min(end + 1, length)]);
  }
  if (ranges.length > MAX_RANGES) return [];
  let overlaps = 0;
  for (let i = 0; i < ranges.length; i++) {
    for (let j = i + 1; j < ranges.length; j++) {
      const [s1, e1] = ranges[i] as [number, number];
      const [s2, e2] = ranges[j] as [number, number];
      if ((s1 < s2 && s2 < e1) || (s1 < e2 && e2 < e1) || (s2 < s1 && s1 < e2) || (s2 < e1 && e1 < e2)) {
        overlaps += 1;
        if (overlaps > MAX_RANGE_OVERLAPS) return [];
      }
    }
  }
  let ascending = true;
  for (let i = 1; i < ranges.length; i++) {
    const previous = ranges[i - 1] as [number, number];
    const current = ranges[i] as [number, number];
    if (previous[0] > current[0] || (previous[0] === current[0] && previous[1] > current[1])) {
      ascending = false;
      break;
    }
  }
  if (!ascending && ranges.length >= MAX_NONASCENDING_RANGES) return [];
  return ranges;
}

function etagSet(value: string): Set<string> {
  const tags = new Set<string>();
  for (const part of value.split(',')) {
    const tag = part.trim();
    if (tag) tags.add(normalizeEtag(tag) ?? tag);
  }
  return tags;
}

function parseHttpDate(value: string | undefined): number | null {
  if (!value) return null;
  const time = Date.parse(value);
  return Number.isNaN(time) ? null : Math.floor(time / 1000);
}

/**
 * The status a conditional GET/HEAD gets instead of the body (swob's
 * `_get_conditional_response_status`): 304 when `If-None-Match` matches or
 * nothing changed since `If-Modified-Since`, 412 when `If-Match` does not
 * match or it changed since `If-Unmodified-Since`; null to go on.
 */
export function conditionalStatus(headers: Record<string, string>, etag: string | null, lastModified: string | undefined): 304 | 412 | null {
  const tag = normalizeEtag(etag);
  const ifNoneMatch = headers['if-none-match'];
  if (tag && ifNoneMatch !== undefined) {
    const tags = etagSet(ifNoneMatch);
    if (tags.has('*') || tags.has(tag)) return 304;
  }
  const ifMatch = headers['if-match'];
  if (tag && ifMatch !== undefined) {
    const tags = etagSet(ifMatch);
    if (!tags.has('*') && !tags.has(tag)) return 412;
  }
  const modified = parseHttpDate(lastModified);
  if (modified !== null) {
    const since = parseHttpDate(headers['if-modified-since']);
    if (since !== null && modified <= since) return 304;
    const unmodifiedSince = parseHttpDate(headers['if-unmodified-since']);
    if (unmodifiedSince !== null && modified > unmodifiedSince) return 412;
  }
  return null;
}

/**
 * A segment could not be read as its manifest says (missing, changed, a
 * server error): before the first byte went out the client gets `status`
 * (409, or 503 for a server error), after it the connection is dropped.
 */
export class SegmentError extends Error {
  constructor(message: string, readonly status: 409 | 503 = 409) {
    super(message);
  }
}

/** Reads bytes `[start, end)` of the assembled object. */
export type RangeReader = (start: number, end: number) => AsyncGenerator<Buffer>;

/** Enforces that a reader gives exactly `end - start` bytes (Swift's byte counting of segmented bodies). */
async function* counted(read: RangeReader, start: number, end: number, name: string): AsyncGenerator<Buffer> {
  let left = end - start;
  for await (const chunk of read(start, end)) {
    if (chunk.length > left) {
      if (left > 0) yield chunk.subarray(0, left);
      throw new SegmentError(`Too many bytes for ${name}`);
    }
    left -= chunk.length;
    if (chunk.length) yield chunk;
  }
  if (left > 0) throw new SegmentError(`Expected another ${left} bytes for ${name}; closing connection`);
}

function multipartBody(read: RangeReader, ranges: [number, number][], contentType: string, boundary: string, length: number, name: string): AsyncGenerator<Buffer> {
  return (async function* generate() {
    for (const [start, end] of ranges) {
      const inner = counted(read, start, end, name);
      // Fetch the range's first bytes before its part header, so that a bad
      // first segment is found before anything is sent.
      const first = await inner.next();
      yield Buffer.from(`--${boundary}\r\nContent-Type: ${contentType}\r\nContent-Range: bytes ${start}-${end - 1}/${length}\r\n\r\n`, 'latin1');
      if (!first.done) {
        yield first.value;
        for await (const chunk of inner) yield chunk;
      }
      yield Buffer.from('\r\n');
    }
    yield Buffer.from(`--${boundary}--`);
  })();
}

function multipartLength(ranges: [number, number][], contentType: string, boundary: string, length: number): number {
  let total = 0;
  for (const [start, end] of ranges) {
    total += Buffer.byteLength(`--${boundary}\r\nContent-Type: ${contentType}\r\nContent-Range: bytes ${start}-${end - 1}/${length}\r\n\r\n`, 'latin1');
    total += end - start + 2;
  }
  return total + boundary.length + 4;
}

/**
 * Starts a generator and waits for its first chunk, so that the caller can
 * still answer with an error status when the first segment is bad; then the
 * rest streams. A SegmentError before the first chunk becomes its status.
 */
export async function startBody(chunks: AsyncGenerator<Buffer>): Promise<{ body: Readable } | { error: SegmentError }> {
  let first: IteratorResult<Buffer>;
  try {
    first = await chunks.next();
  } catch (error) {
    if (error instanceof SegmentError) return { error };
    throw error;
  }
  async function* rest(): AsyncGenerator<Buffer> {
    try {
      if (first.done) return;
      yield first.value;
      for (;;) {
        const next = await chunks.next();
        if (next.done) return;
        yield next.value;
      }
    } finally {
      await chunks.return(undefined);
    }
  }
  return { body: Readable.from(rest(), { objectMode: false }) };
}

/** How a large object middleware describes what it assembled. */
export interface LargeObjectBody {
  /** Headers of the response (the manifest's, with `etag`, `content-type` etc. already set); content-length is set here. */
  headers: Record<string, string>;
  /** Total size in bytes; null when unknown (then no Content-Length, no ranges: the body is sent chunked). */
  length: number | null;
  /** The ETag to compare `If-Match`/`If-None-Match` with (unquoted). */
  etag: string | null;
  read: RangeReader;
  /** DLO honours only a single range; SLO serves several as `multipart/byteranges`. */
  multipleRanges: boolean;
  /** The request's Range header to apply; undefined: the request's own. */
  range?: string | null;
  /** For messages. */
  name: string;
}

/**
 * The response to a GET or HEAD of an assembled large object: 304/412 for
 * the conditional headers, headers only for HEAD, 206 (one range or
 * `multipart/byteranges`) or 416 for `Range`, else 200 with the whole body.
 * The first segment is fetched before answering (409/503 when it is bad).
 */
export async function serveLargeObject(req: SwiftRequest, object: LargeObjectBody): Promise<SwiftResponse> {
  const headers = { ...object.headers };
  delete headers['content-range'];
  delete headers['transfer-encoding'];
  headers['accept-ranges'] = 'bytes';
  const conditional = conditionalStatus(req.headers, object.etag, headers['last-modified']);
  if (conditional) return { status: conditional, headers: { ...headers, 'content-length': '0' }, body: null };
  if (object.length === null) {
    delete headers['content-length'];
    if (req.method === 'HEAD') return { status: 200, headers, body: null };
    const started = await startBody(object.read(0, Number.MAX_SAFE_INTEGER));
    if ('error' in started) return errorResponse(started.error.status);
    return { status: 200, headers, body: started.body };
  }
  const length = object.length;
  headers['content-length'] = String(length);
  if (req.method === 'HEAD') return { status: 200, headers, body: null };

  let status = 200;
  let chunks: AsyncGenerator<Buffer>;
  const rangeHeader = object.range === undefined ? req.headers['range'] : object.range ?? undefined;
  const specs = parseRange(rangeHeader);
  const ranges = specs && (object.multipleRanges || specs.length === 1) ? rangesForLength(specs, length) : null;
  if (ranges && ranges.length === 0) {
    const error = errorResponse(416, undefined, headers['content-type'] ?? 'text/html; charset=UTF-8');
    return { ...error, headers: { ...headers, ...error.headers, 'content-range': `bytes */${length}` } };
  }
  if (ranges && length > 0 && ranges.length === 1) {
    const [start, end] = ranges[0] as [number, number];
    status = 206;
    headers['content-range'] = `bytes ${start}-${end - 1}/${length}`;
    headers['content-length'] = String(end - start);
    chunks = counted(object.read, start, end, object.name);
  } else if (ranges && length > 0 && ranges.length > 1) {
    status = 206;
    const boundary = randomBytes(16).toString('hex');
    const contentType = headers['content-type'] ?? 'application/octet-stream';
    headers['content-type'] = `multipart/byteranges;boundary=${boundary}`;
    headers['content-length'] = String(multipartLength(ranges, contentType, boundary, length));
    chunks = multipartBody(object.read, ranges, contentType, boundary, length, object.name);
  } else {
    chunks = counted(object.read, 0, length, object.name);
  }
  const started = await startBody(chunks);
  if ('error' in started) return errorResponse(started.error.status);
  return { status, headers, body: started.body };
}
