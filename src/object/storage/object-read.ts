import { createHash, randomBytes } from 'node:crypto';
import type http from 'node:http';
import { Readable, Transform } from 'node:stream';
import { Timestamp } from '../common.js';
import { bodyFromTail, bodyStream, fileTimestamp, POST_HEADERS, type ObjectMetadata, type OpenedObject } from './diskfile.js';
import { BodyMd5 } from './md5-hasher.js';
import { errorResponse, header, isTrue, type ServerResponse } from './server-util.js';

/**
 * GET and HEAD of an object server: the headers of a stored object, Swift's
 * conditional requests (If-Match, If-None-Match, If-Modified-Since,
 * If-Unmodified-Since) and byte ranges (one range: 206 with Content-Range;
 * several: multipart/byteranges; none satisfiable: 416).
 */

/** Swift's rules for `Range: bytes=...`: null when the header is absent or malformed (then ignored), else the ranges as asked. */
export function parseRange(value: string | undefined): [number | null, number | null][] | null {
  if (!value) return null;
  const text = value.replace(/ /g, '');
  if (!text.toLowerCase().startsWith('bytes=')) return null;
  const out: [number | null, number | null][] = [];
  for (const spec of text.slice(6).split(',')) {
    const dash = spec.indexOf('-');
    if (dash < 0) return null;
    const a = spec.slice(0, dash);
    const b = spec.slice(dash + 1);
    if (a && !/^\d+$/.test(a)) return null;
    if (b && !/^\d+$/.test(b)) return null;
    const start = a ? Number(a) : null;
    const end = b ? Number(b) : null;
    if (start === null && end === null) return null;
    if (start !== null && end !== null && end < start) return null;
    out.push([start, end]);
  }
  return out;
}

/**
 * Half-open byte ranges of a body of `length` bytes (Swift's
 * `ranges_for_length`): [] when none is satisfiable (416) or the request is
 * egregious (more than 50 ranges, more than 2 overlaps, 8 or more out of order).
 */
export function rangesForLength(ranges: [number | null, number | null][], length: number): [number, number][] {
  const out: [number, number][] = [];
  for (const [start, end] of ranges) {
    if (start === null) {
      if (end === 0 || end === null) continue;
      out.push(end > length ? [0, length] : [length - end, length]);
    } else if (end === null) {
      if (start < length) out.push([start, length]);
    } else if (start < length) out.push([start, Math.min(end + 1, length)]);
  }
  if (out.length > 50) return [];
  let overlaps = 0;
  for (let i = 0; i < out.length; i++) {
    for (let j = i + 1; j < out.length; j++) {
      const [s1, e1] = out[i] as [number, number];
      const [s2, e2] = out[j] as [number, number];
      if ((s1 < s2 && s2 < e1) || (s1 < e2 && e2 < e1) || (s2 < s1 && s1 < e2) || (s2 < e1 && e1 < e2)) {
        overlaps += 1;
        if (overlaps > 2) return [];
      }
    }
  }
  let ascending = true;
  for (let i = 1; i < out.length; i++) if ((out[i - 1] as [number, number])[0] > (out[i] as [number, number])[0]) ascending = false;
  if (!ascending && out.length >= 8) return [];
  return out;
}

function normalizeEtag(tag: string): string {
  return tag.length > 1 && tag.startsWith('"') && tag.endsWith('"') ? tag.slice(1, -1) : tag;
}

/** The entity tags of an If-Match/If-None-Match header. */
export function matchTags(value: string | undefined): Set<string> | null {
  if (value === undefined) return null;
  const tags = new Set<string>();
  for (const t of value.split(',')) {
    const tag = t.trim();
    if (tag) tags.add(normalizeEtag(tag));
  }
  return tags;
}

function matches(tags: Set<string>, etag: string): boolean {
  return tags.has('*') || tags.has(normalizeEtag(etag));
}

function parseHttpDate(value: string | undefined): number | null {
  if (!value) return null;
  const t = Date.parse(value);
  return Number.isNaN(t) ? null : Math.floor(t / 1000);
}

/** The status a conditional request turns a 2xx into (304 or 412), or null (Swift's `_get_conditional_response_status`). */
export function conditionalStatus(headers: http.IncomingHttpHeaders, etag: string | null, lastModified: Timestamp | null): number | null {
  const ifNoneMatch = matchTags(header(headers, 'if-none-match'));
  const ifMatch = matchTags(header(headers, 'if-match'));
  if (etag !== null && ifNoneMatch && matches(ifNoneMatch, etag)) return 304;
  if (etag !== null && ifMatch && !matches(ifMatch, etag)) return 412;
  if (lastModified) {
    const lm = Math.ceil(lastModified.seconds);
    const ims = parseHttpDate(header(headers, 'if-modified-since'));
    if (ims !== null && lm <= ims) return 304;
    const ius = parseHttpDate(header(headers, 'if-unmodified-since'));
    if (ius !== null && lm > ius) return 412;
  }
  return null;
}

/** A 404 of the object server, conditional as Swift's (If-Match: * → 412). */
export function notFound(headers: http.IncomingHttpHeaders, extra: Record<string, string> = {}): ServerResponse {
  const ifMatch = matchTags(header(headers, 'if-match'));
  if (ifMatch && ifMatch.has('*')) return errorResponse(412, undefined, extra);
  return errorResponse(404, undefined, extra);
}

/** True for a key a GET/HEAD returns as a header. */
function isShown(key: string): boolean {
  return key.startsWith('x-object-meta-') || key.startsWith('x-object-sysmeta-') || key.startsWith('x-object-transient-sysmeta-') || POST_HEADERS.has(key);
}

/** The headers of a stored object as the object server returns them. */
export function objectHeaders(opened: OpenedObject): Record<string, string | number> {
  const md = opened.metadata;
  const ts = Timestamp.parse(md['x-timestamp'] ?? '0');
  const out: Record<string, string | number> = {
    'content-type': md['content-type'] ?? 'application/octet-stream',
  };
  for (const [k, v] of Object.entries(md)) if (isShown(k)) out[k] = v;
  out.etag = md.etag ?? '';
  out['last-modified'] = ts.httpDate;
  out['content-length'] = opened.length;
  out['x-timestamp'] = ts.normal;
  out['x-backend-timestamp'] = ts.internal;
  out['x-backend-data-timestamp'] = fileTimestamp(opened.state.data ?? '');
  out['x-backend-durable-timestamp'] = fileTimestamp(opened.state.data ?? '');
  out['accept-ranges'] = 'bytes';
  return out;
}

/** The ETag conditional requests compare: the first metadata key named in `X-Backend-Etag-Is-At` that is set, else the ETag. */
function conditionalEtag(headers: http.IncomingHttpHeaders, md: ObjectMetadata): string {
  const at = header(headers, 'x-backend-etag-is-at');
  if (at) {
    for (const key of at.split(',')) {
      const v = md[key.trim().toLowerCase()];
      if (v !== undefined) return v;
    }
  }
  return md.etag ?? '';
}

/**
 * Builds the GET/HEAD response of an opened object; takes over its file
 * handle (closed when the body is done or not needed). `onCorrupt` is called
 * when a whole-body read finds that the MD5 differs from the ETag (after the
 * response for a streamed body; before it, as a 404, for a small one); it
 * must not reject.
 */
export async function readResponse(req: http.IncomingMessage, opened: OpenedObject, onCorrupt: () => Promise<void>): Promise<ServerResponse> {
  const headers = objectHeaders(opened);
  const md = opened.metadata;
  const close = (): void => {
    void opened.handle.close().catch(() => undefined);
  };
  const status = conditionalStatus(req.headers, conditionalEtag(req.headers, md), Timestamp.parse(md['x-timestamp'] ?? '0'));
  if (status !== null) {
    close();
    headers['content-length'] = 0;
    return { status, headers, body: null };
  }
  if (req.method === 'HEAD') {
    close();
    return { status: 200, headers, body: null };
  }
  const length = opened.length;
  let ranges = parseRange(header(req.headers, 'range'));
  const ignoreIf = header(req.headers, 'x-backend-ignore-range-if-metadata-present');
  if (ranges && ignoreIf && ignoreIf.split(',').some((k) => md[k.trim().toLowerCase()] !== undefined)) ranges = null;
  const satisfiable = ranges ? rangesForLength(ranges, length) : null;
  // A suffix range of an empty body is answered with the whole (empty) body, as Swift, Apache and nginx do.
  if (satisfiable && (satisfiable.length === 0 || length > 0)) {
    if (satisfiable.length === 0) {
      close();
      const out: Record<string, string | number> = { ...headers, 'content-range': `bytes */${length}`, 'content-type': 'text/html; charset=UTF-8' };
      delete out['content-length'];
      return { status: 416, headers: out, body: '<html><h1>Requested Range Not Satisfiable</h1><p>The Range requested is not available.</p></html>' };
    }
    if (satisfiable.length === 1) {
      const [start, end] = satisfiable[0] as [number, number];
      const small = bodyFromTail(opened, start, end);
      const body = small ?? bodyStream(opened, start, end);
      if (small) close();
      return { status: 206, headers: { ...headers, 'content-range': `bytes ${start}-${end - 1}/${length}`, 'content-length': end - start }, body };
    }
    return multiRange(opened, headers, satisfiable);
  }
  const small = bodyFromTail(opened);
  if (small) {
    close();
    if (isTrue(req.headers['x-backend-skip-etag-check']) || createHash('md5').update(small).digest('hex') === md.etag) return { status: 200, headers, body: small };
    await onCorrupt();
    return errorResponse(404);
  }
  // A whole-body read checks the MD5 on the way (Swift's etag validation), off the event loop for a large body.
  const source = bodyStream(opened);
  const md5 = new BodyMd5(length);
  let seen = 0;
  let finished = false;
  const stream = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      seen += chunk.length;
      const hashing = md5.update(chunk);
      if (hashing) hashing.then(() => callback(null, chunk), callback);
      else callback(null, chunk);
    },
    flush(callback) {
      finished = true;
      callback();
      void md5.digest().then((hex) => {
        if (seen === length && hex !== md.etag) void onCorrupt();
      });
    },
  });
  source.on('error', (err) => stream.destroy(err));
  stream.on('close', () => {
    if (!finished) md5.abort();
    if (!source.destroyed) source.destroy();
  });
  source.pipe(stream);
  return { status: 200, headers, body: stream };
}

function multiRange(opened: OpenedObject, headers: Record<string, string | number>, ranges: [number, number][]): ServerResponse {
  const boundary = randomBytes(16).toString('hex');
  const length = opened.length;
  const ctype = String(headers['content-type']);
  const partHead = (start: number, end: number): Buffer => Buffer.from(`--${boundary}\r\nContent-Type: ${ctype}\r\nContent-Range: bytes ${start}-${end - 1}/${length}\r\n\r\n`, 'latin1');
  let total = 0;
  for (const [s, e] of ranges) total += partHead(s, e).length + (e - s) + 2;
  total += boundary.length + 4;
  async function* generate(): AsyncGenerator<Buffer> {
    try {
      for (const [s, e] of ranges) {
        yield partHead(s, e);
        const small = bodyFromTail(opened, s, e);
        if (small) yield small;
        else for await (const chunk of bodyStream(opened, s, e, true) as AsyncIterable<Buffer>) yield chunk;
        yield Buffer.from('\r\n');
      }
      yield Buffer.from(`--${boundary}--`);
    } finally {
      await opened.handle.close().catch(() => undefined);
    }
  }
  return {
    status: 206,
    headers: { ...headers, 'content-type': `multipart/byteranges;boundary=${boundary}`, 'content-length': total },
    body: Readable.from(generate(), { objectMode: false }),
  };
}
