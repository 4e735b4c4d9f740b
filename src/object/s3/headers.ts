import { S3Error, invalidArgument } from './errors.js';
import { S3_ETAG_SYSMETA } from './request.js';

/** Swift response headers an S3 response keeps as they are. */
const KEPT = new Set([
  'accept-ranges',
  'content-length',
  'content-type',
  'content-range',
  'content-encoding',
  'content-disposition',
  'content-language',
  'last-modified',
  'x-robots-tag',
  'cache-control',
  'expires',
]);

/** Headers an S3 object PUT may store along with the data (Swift keeps them as object metadata). */
export const STORED_HEADERS = ['content-type', 'content-encoding', 'content-disposition', 'content-language', 'cache-control', 'expires', 'x-robots-tag'];

/** An ETag in quotes, as S3 writes it. */
export function quoteEtag(etag: string): string {
  const bare = etag.replace(/^"|"$/g, '');
  return `"${bare}"`;
}

/** Whether a Swift object is a static large object (a completed multipart upload). */
export function isSlo(headers: Record<string, string>): boolean {
  return (headers['x-static-large-object'] ?? '').toLowerCase() === 'true';
}

/**
 * The S3 ETag of a Swift object: the one stored at multipart completion
 * (`<md5 of part md5s>-<parts>`), else Swift's, with `-N` added for a static
 * large object made through Swift (clients read the `-` as "not an MD5").
 */
export function objectEtag(headers: Record<string, string>): string | null {
  const stored = headers[S3_ETAG_SYSMETA];
  if (stored) return quoteEtag(stored);
  const etag = headers.etag;
  if (!etag) return null;
  return isSlo(headers) ? quoteEtag(`${etag.replace(/^"|"$/g, '')}-N`) : quoteEtag(etag);
}

/**
 * The headers of an S3 object response from a Swift one: content headers,
 * `ETag` (quoted; the S3 one for multipart uploads), `x-amz-meta-*` from
 * `X-Object-Meta-*`, `x-amz-expiration` from `X-Delete-At`,
 * `x-amz-mp-parts-count`; everything else (sysmeta, backend headers) is dropped.
 */
export function s3ObjectHeaders(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (name.startsWith('x-object-meta-')) out[`x-amz-meta-${name.slice(14)}`] = value;
    else if (KEPT.has(name)) out[name] = value;
    else if (name === 'x-parts-count') out['x-amz-mp-parts-count'] = value;
    else if (name === 'x-delete-at' && /^\d+$/.test(value)) {
      out['x-amz-expiration'] = `expiry-date="${new Date(Number(value) * 1000).toUTCString()}", rule-id="swift-object-expiration"`;
    }
  }
  const etag = objectEtag(headers);
  if (etag) out.etag = etag;
  return out;
}

/** The `X-Object-Meta-*` of the `x-amz-meta-*` headers of a request (names S3 ignores are skipped). */
export function metaHeaders(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (!name.startsWith('x-amz-meta-')) continue;
    const key = name.slice(11);
    // AWS ignores user metadata whose name has these characters ('(' is allowed).
    if (key === '' || /[ "),/;<=>?@[\\\]{}]/.test(key)) continue;
    out[`x-object-meta-${key}`] = value;
  }
  return out;
}

/**
 * Checks a `Content-MD5` and turns it into Swift's `ETag` (hex), which the
 * object server verifies; InvalidDigest when it is not the base64 of 16 bytes.
 */
export function contentMd5ToEtag(value: string | undefined): string | null {
  if (value === undefined) return null;
  const trimmed = value.trim();
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(trimmed)) throw new S3Error('InvalidDigest', undefined, { ContentMD5: value });
  const bytes = Buffer.from(trimmed, 'base64');
  if (bytes.length !== 16) throw new S3Error('InvalidDigest', undefined, { ContentMD5: value });
  return bytes.toString('hex');
}

/** Parses a `Range` header of one byte range over `size` bytes: `[start, end]` inclusive, null when not a single range, InvalidRange when unsatisfiable. */
export function singleRange(header: string, size: number): [number, number] | null {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return null;
  let start: number;
  let end: number;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) throw new S3Error('InvalidRange');
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
    if (m[2] !== '' && Number(m[2]) < start) return null;
  }
  if (start >= size || size === 0) throw new S3Error('InvalidRange');
  return [start, end];
}

/** Validates `max-keys`-like integer parameters as S3 does: 0..2^31-1, clamped to `limit`. */
export function intParam(params: Map<string, string>, name: string, fallback: number, limit = 2147483647): number {
  const text = params.get(name);
  if (text === undefined) return fallback;
  if (!/^-?\d+$/.test(text.trim())) throw invalidArgument(name, text, `Provided ${name} not an integer or within integer range`);
  const value = Number(text);
  if (value < 0) throw invalidArgument(name, text, `Argument ${name} must be an integer between 0 and 2147483647`);
  if (value > 2147483647) throw invalidArgument(name, text, `Provided ${name} not an integer or within integer range`);
  return Math.min(value, limit);
}

/** S3's rules for DNS-compatible bucket names (3..63 of `a-z 0-9 . -`, no IP addresses, no `..`, `.-`, `-.`). */
export function validBucketName(name: string): boolean {
  if (name.length < 3 || name.length > 63) return false;
  if (!/^[a-z0-9][a-z0-9.-]*[a-z0-9]$/.test(name)) return false;
  if (name.includes('..') || name.includes('.-') || name.includes('-.')) return false;
  return !/^(\d{1,3}\.){3}\d{1,3}$/.test(name);
}
