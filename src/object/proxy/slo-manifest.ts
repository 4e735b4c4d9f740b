import { createHash } from 'node:crypto';
import { SegmentError, parseRange, rangesForLength, type RangeSpec } from './large-object-response.js';
import type { SegmentPiece } from './large-object-segments.js';
import { swiftQuote } from './large-object-util.js';

/**
 * Static large object manifests, the pure part: what a client may PUT
 * (`?multipart-manifest=put`) and the errors Swift gives for it, the form
 * Swift keeps on disk, the SLO's ETag, the `format=raw` form, and which bytes
 * of which segments make up a range of the assembled object.
 */

/** Swift's defaults (`/info` `slo`). */
export const SLO_LIMITS = {
  max_manifest_segments: 1000,
  max_manifest_size: 8 * 1024 * 1024,
  yield_frequency: 10,
  min_segment_size: 1,
  max_recursion_depth: 10,
};

/** A valid segment of a client's manifest. */
export type InputSegment =
  | { kind: 'path'; path: string; etag: string | null; sizeBytes: number | null; range: RangeSpec | null }
  | { kind: 'data'; data: string; raw: Buffer };

/** An object segment as the stored manifest keeps it (Swift's internal form). */
export interface StoredObjectSegment {
  name: string;
  bytes: number;
  hash: string;
  content_type: string;
  last_modified: string;
  range?: string;
  sub_slo?: boolean;
}

/** An inline data segment as stored: base64. */
export interface StoredDataSegment {
  data: string;
}

/** A segment of a stored manifest. */
export type StoredSegment = StoredObjectSegment | StoredDataSegment;

/** A manifest the client sent is not acceptable: 400 with Swift's body. */
export class ManifestError extends Error {
  constructor(
    readonly body: string,
    readonly contentType = 'text/plain',
  ) {
    super(body.trim());
  }
}

function pythonInt(value: unknown): number | null {
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (typeof value === 'number') return Number.isFinite(value) ? Math.trunc(value) : null;
  if (typeof value === 'string') {
    const text = value.trim();
    if (!/^[+-]?\d+(_\d+)*$/.test(text)) return null;
    return Number(text.replace(/_/g, ''));
  }
  return null;
}

/** Swift's `strict_b64decode`: only the base64 alphabet, enough padding; null when invalid. */
export function strictBase64Decode(value: unknown): Buffer | null {
  if (typeof value !== 'string') return null;
  const stripped = value.replace(/^=+|=+$/g, '');
  if (!/^[A-Za-z0-9+/]*$/.test(stripped)) return null;
  const dataChars = value.replace(/=/g, '').length;
  const padding = value.length - value.replace(/=+$/, '').length;
  const remainder = dataChars % 4;
  if (remainder === 1) return null;
  if (remainder === 2 && padding < 2) return null;
  if (remainder === 3 && padding < 1) return null;
  return Buffer.from(stripped, 'base64');
}

/**
 * Parses and checks the body of `PUT ?multipart-manifest=put` as Swift's
 * `parse_and_validate_input` does (`reqPath` is the manifest's own decoded
 * path `/v1/<account>/<container>/<object>`). Throws a ManifestError whose
 * body lists every bad segment (`Index 2: invalid range`).
 */
export function parseManifestInput(body: Buffer, reqPath: string, version: string, account: string): InputSegment[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    throw new ManifestError('Manifest must be valid JSON.\n', 'text/html; charset=UTF-8');
  }
  if (!Array.isArray(parsed)) throw new ManifestError('Manifest must be a list.\n', 'text/html; charset=UTF-8');
  const errors: string[] = [];
  const out: InputSegment[] = [];
  parsed.forEach((item: unknown, index: number) => {
    const segment = parseSegment(item, index, parsed.length, reqPath, version, account);
    if (typeof segment === 'string') errors.push(segment);
    else out.push(segment);
  });
  const isData = (item: unknown): boolean => (typeof item === 'string' ? item.includes('data') : typeof item === 'object' && item !== null && !Array.isArray(item) && 'data' in item);
  if (parsed.length && parsed.every(isData)) {
    errors.push('Inline data segments require at least one object-backed segment.');
  }
  if (errors.length) throw new ManifestError(errors.map((line) => `${line}\n`).join(''));
  return out;
}

function parseSegment(item: unknown, index: number, count: number, reqPath: string, version: string, account: string): InputSegment | string {
  if (typeof item !== 'object' || item === null || Array.isArray(item)) return `Index ${index}: not a JSON object`;
  const dict = item as Record<string, unknown>;
  const kind = 'data' in dict ? 'data' : 'path' in dict ? 'path' : null;
  if (!kind) return `Index ${index}: expected keys to include one of 'data' or 'path'`;
  const allowed = kind === 'data' ? ['data'] : ['path', 'range', 'etag', 'size_bytes'];
  const extraneous = Object.keys(dict).filter((key) => !allowed.includes(key)).sort();
  if (extraneous.length) return `Index ${index}: extraneous keys ${extraneous.map((key) => JSON.stringify(key)).join(', ')}`;

  if (kind === 'data') {
    const raw = strictBase64Decode(dict['data']);
    if (!raw) return `Index ${index}: data must be valid base64`;
    if (raw.length < 1) return `Index ${index}: too small; each segment must be at least 1 byte.`;
    return { kind: 'data', data: raw.toString('base64'), raw };
  }

  const path = dict['path'];
  if (typeof path !== 'string') return `Index ${index}: "path" must be a string`;
  const etag = dict['etag'];
  if (!(etag === undefined || etag === null || typeof etag === 'string')) return `Index ${index}: "etag" must be a string or null (if provided)`;
  if (!path.replace(/^\/+|\/+$/g, '').includes('/')) {
    return `Index ${index}: path does not refer to an object. Path must be of the form /container/object.`;
  }
  let sizeBytes: number | null = null;
  if (dict['size_bytes'] !== undefined && dict['size_bytes'] !== null) {
    sizeBytes = pythonInt(dict['size_bytes']);
    if (sizeBytes === null) return `Index ${index}: invalid size_bytes`;
    if (sizeBytes < 1 && index !== count - 1) return `Index ${index}: too small; each segment must be at least 1 byte.`;
  }
  if (`/${version}/${account}/${path.replace(/^\/+/, '')}` === reqPath) return `Index ${index}: manifest must not include itself as a segment`;
  let range: RangeSpec | null = null;
  const rangeValue = dict['range'];
  if (rangeValue !== undefined && rangeValue !== null && rangeValue !== '' && rangeValue !== 0 && rangeValue !== false) {
    const specs = parseRange(`bytes=${String(rangeValue)}`);
    if (!specs) return `Index ${index}: invalid range`;
    if (specs.length > 1) return `Index ${index}: multiple ranges (only one allowed)`;
    range = specs[0] ?? null;
    if (range && sizeBytes !== null && rangesForLength([range], sizeBytes).length !== 1) return `Index ${index}: unsatisfiable range`;
  }
  return { kind: 'path', path, etag: typeof etag === 'string' ? etag : null, sizeBytes, range };
}

/** What a HEAD of a segment told (through the SLO middleware, so a sub-SLO reports its total size and SLO ETag). */
export interface SegmentHead {
  status: number;
  /** `404 Not Found` etc. */
  statusLine: string;
  contentLength: number;
  /** Unquoted. */
  etag: string;
  /** Without parameters. */
  contentType: string;
  lastModified: string | undefined;
  isSlo: boolean;
}

/** Swift's `last_modified` form in manifests and listings: `2024-01-02T03:04:05.000000`. */
export function manifestTimestamp(lastModified: string | undefined): string {
  const time = lastModified ? Date.parse(lastModified) : Number.NaN;
  const date = Number.isNaN(time) ? new Date() : new Date(time);
  return `${date.toISOString().slice(0, 19)}.${String(date.getUTCMilliseconds() * 1000).padStart(6, '0')}`;
}

/**
 * Checks one object segment against its HEAD (Swift's `validate_seg_dict`):
 * the problems (`[quoted path, reason]`) and, when there are none, the stored
 * form and the number of bytes it adds.
 */
export function validateSegment(segment: Extract<InputSegment, { kind: 'path' }>, head: SegmentHead, allowEmpty: boolean): { problems: [string, string][]; length: number; stored: StoredObjectSegment | null } {
  const quoted = swiftQuote(segment.path);
  if (head.status < 200 || head.status >= 300) return { problems: [[quoted, head.statusLine]], length: 0, stored: null };
  const problems: [string, string][] = [];
  let length = head.contentLength;
  let range: string | undefined;
  if (segment.range) {
    const ranges = rangesForLength([segment.range], head.contentLength);
    if (ranges.length === 0) {
      problems.push([quoted, 'Unsatisfiable Range']);
    } else {
      const [start, end] = ranges[0] as [number, number];
      if (!(start === 0 && end === head.contentLength)) {
        range = `${start}-${end - 1}`;
        length = end - start;
      }
    }
  }
  if (length < 1 && !allowEmpty) problems.push([quoted, 'Too small; each segment must be at least 1 byte.']);
  if (segment.sizeBytes !== null && segment.sizeBytes !== head.contentLength) problems.push([quoted, 'Size Mismatch']);
  if (segment.etag !== null && segment.etag !== head.etag) problems.push([quoted, 'Etag Mismatch']);
  const stored: StoredObjectSegment = {
    name: `/${segment.path.replace(/^\/+/, '')}`,
    bytes: head.contentLength,
    hash: head.etag,
    content_type: head.contentType,
    last_modified: manifestTimestamp(head.lastModified),
  };
  if (range !== undefined) stored.range = range;
  if (head.isSlo) stored.sub_slo = true;
  return { problems, length, stored: problems.length ? null : stored };
}

function md5Hex(data: Buffer | string): string {
  return createHash('md5').update(data).digest('hex');
}

/** The ETag of an SLO: the MD5 of its segments' ETags (`etag:range;` for ranged ones, the MD5 of the bytes for data segments). */
export function sloEtag(segments: StoredSegment[]): string {
  const hash = createHash('md5');
  for (const segment of segments) {
    if ('data' in segment) hash.update(md5Hex(Buffer.from(segment.data, 'base64')));
    else if (segment.range) hash.update(`${segment.hash}:${segment.range};`);
    else hash.update(segment.hash);
  }
  return hash.digest('hex');
}

/** JSON as Python's `json.dumps` writes it (`, ` and `: ` separators, non-ASCII escaped), so manifests and their ETags match Swift's byte for byte. */
export function pythonJson(value: unknown, sortKeys = false): string {
  const escape = (text: string): string =>
    JSON.stringify(text).replace(/[\u007f-\uffff]/g, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`);
  const write = (item: unknown): string => {
    if (item === null || item === undefined) return 'null';
    if (typeof item === 'string') return escape(item);
    if (typeof item === 'number') return Number.isFinite(item) ? String(item) : 'null';
    if (typeof item === 'boolean') return item ? 'true' : 'false';
    if (Array.isArray(item)) return `[${item.map(write).join(', ')}]`;
    const entries = Object.entries(item as Record<string, unknown>).filter(([, v]) => v !== undefined);
    if (sortKeys) entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, v]) => `${escape(key)}: ${write(v)}`).join(', ')}}`;
  };
  return write(value);
}

/** Parses a stored manifest body; throws when it is not one. */
export function parseStoredManifest(body: Buffer): StoredSegment[] {
  const parsed: unknown = JSON.parse(body.toString('utf8'));
  if (!Array.isArray(parsed)) throw new Error('SLO manifest is not a list');
  return parsed as StoredSegment[];
}

/** The stored manifest in the form the client PUT it (`?multipart-manifest=get&format=raw`), as Swift writes it. */
export function rawManifest(segments: StoredSegment[]): Buffer {
  const raw = segments.map((segment) => {
    if ('data' in segment) return segment;
    const out: Record<string, unknown> = { path: segment.name, size_bytes: segment.bytes, etag: segment.hash };
    if (segment.range !== undefined) out['range'] = segment.range;
    for (const [key, value] of Object.entries(segment)) {
      if (!['name', 'bytes', 'hash', 'content_type', 'last_modified', 'sub_slo', 'range'].includes(key)) out[key] = value;
    }
    return out;
  });
  return Buffer.from(pythonJson(raw, true), 'utf8');
}

/** A stored segment with what reading it needs: its length in the assembled object, the range within its object, decoded data. */
export interface AnnotatedSegment {
  segment: StoredSegment;
  /** Bytes it contributes. */
  length: number;
  /** Inline bytes of a data segment. */
  raw?: Buffer;
  /** First and last byte (inclusive) of its object that it uses. */
  rangeStart: number;
  rangeEnd: number;
}

function swiftBytes(contentType: string | undefined): number | null {
  const match = /;\s*swift_bytes=(\d+)/.exec(contentType ?? '');
  return match ? Number(match[1]) : null;
}

/** Annotates stored segments (Swift's `_annotate_segments`). */
export function annotateSegments(segments: StoredSegment[]): AnnotatedSegment[] {
  return segments.map((segment) => {
    if ('data' in segment) {
      const raw = Buffer.from(segment.data, 'base64');
      return { segment, length: raw.length, raw, rangeStart: 0, rangeEnd: raw.length - 1 };
    }
    let bytes = Number(segment.bytes);
    if (segment.sub_slo) bytes = swiftBytes(segment.content_type) ?? bytes;
    if (segment.range) {
      const [start = 0, end = 0] = segment.range.split('-').map(Number);
      return { segment, length: end - start + 1, rangeStart: start, rangeEnd: end };
    }
    return { segment, length: bytes, rangeStart: 0, rangeEnd: bytes - 1 };
  });
}

/** Total size and SLO ETag computed from the segments (for manifests stored without the sysmeta). */
export function sizeAndEtag(segments: AnnotatedSegment[]): { size: number; etag: string } {
  return { size: segments.reduce((sum, s) => sum + s.length, 0), etag: sloEtag(segments.map((s) => s.segment)) };
}

/** How `byterangePieces` reaches nested manifests. */
export interface PieceContext {
  version: string;
  account: string;
  /** The manifest being read, for messages. */
  name: string;
  /** Fetches and annotates the segments of a sub-SLO (`/container/object`). */
  fetchSubManifest(name: string): Promise<AnnotatedSegment[]>;
}

/**
 * The pieces of segment objects (and inline data) that make up bytes
 * `first..last` (inclusive) of an SLO, descending into nested SLOs only
 * where the range needs them (Swift's `_byterange_listing_iterator`); at most
 * 10 levels deep.
 */
export async function* byterangePieces(segments: AnnotatedSegment[], first: number, last: number, context: PieceContext, depth = 1): AsyncGenerator<SegmentPiece> {
  let lastSubName: string | null = null;
  let subSegments: AnnotatedSegment[] = [];
  for (const annotated of segments) {
    const length = annotated.length;
    if (first >= length) {
      first -= length;
      last -= length;
      continue;
    }
    if (last < 0) return;
    const segment = annotated.segment;
    if ('data' in segment || annotated.raw) {
      yield { data: annotated.raw ?? Buffer.alloc(0), first: Math.max(0, first), last: Math.min(length - 1, last) };
    } else if (segment.sub_slo) {
      if (depth >= SLO_LIMITS.max_recursion_depth) throw new SegmentError(`While processing manifest ${context.name}, max recursion depth was exceeded`);
      if (lastSubName !== segment.name) subSegments = await context.fetchSubManifest(segment.name);
      lastSubName = segment.name;
      yield* byterangePieces(subSegments, annotated.rangeStart + Math.max(0, first), Math.min(annotated.rangeEnd, annotated.rangeStart + last), context, depth + 1);
    } else {
      yield {
        path: `/${context.version}/${context.account}/${segment.name.replace(/^\/+/, '')}`,
        first: Math.max(0, first) + annotated.rangeStart,
        last: Math.min(annotated.rangeEnd, annotated.rangeStart + last),
        etag: segment.hash,
        size: Number(segment.bytes),
      };
    }
    first -= length;
    last -= length;
  }
}
