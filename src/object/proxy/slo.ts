import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { SegmentError, serveLargeObject, parseRange } from './large-object-response.js';
import { readPieces } from './large-object-segments.js';
import {
  acceptBestMatch,
  BodyTooLarge,
  cleanContentType,
  closeBody,
  contentLength,
  errorResponse,
  isSuccess,
  mediaType,
  normalizeEtag,
  readBody,
  splitSwiftPath,
  statusLine,
  trueValue,
  withoutHeaders,
  type SwiftPath,
} from './large-object-util.js';
import { guessContentType } from './constraints.js';
import { BULK_FORMATS, bulkResponseBody, handleMultipartDelete } from './slo-delete.js';
import {
  annotateSegments,
  byterangePieces,
  ManifestError,
  parseManifestInput,
  parseStoredManifest,
  pythonJson,
  rawManifest,
  sizeAndEtag,
  SLO_LIMITS,
  sloEtag,
  validateSegment,
  type AnnotatedSegment,
  type InputSegment,
  type SegmentHead,
  type StoredSegment,
} from './slo-manifest.js';
import { subrequest, type Handler, type Middleware, type ProxyContext, type SwiftRequest, type SwiftResponse } from './pipeline.js';

/**
 * Static large objects (Swift's `slo` middleware): a manifest object lists
 * segment objects (and inline data); a GET of it streams their bytes in
 * order. `PUT ?multipart-manifest=put` checks every segment with a HEAD and
 * stores the manifest in Swift's internal form with `X-Static-Large-Object:
 * True`; `?multipart-manifest=get` returns the manifest; `DELETE
 * ?multipart-manifest=delete` removes the segments too.
 */

/** Sysmeta where the SLO's ETag is kept beside the manifest. */
export const SYSMETA_SLO_ETAG = 'x-object-sysmeta-slo-etag';
/** Sysmeta where the SLO's total size is kept beside the manifest. */
export const SYSMETA_SLO_SIZE = 'x-object-sysmeta-slo-size';
const CONTAINER_UPDATE_OVERRIDE_ETAG = 'x-object-sysmeta-container-update-override-etag';

type ObjectPath = SwiftPath & { container: string; object: string };

function appendCsv(existing: string | undefined, value: string): string {
  return existing ? `${existing},${value}` : value;
}

/** Runs `work` over `items` with at most `limit` at a time, results in order. */
async function mapLimit<T, R>(items: T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let index = 0;
  async function worker(): Promise<void> {
    while (index < items.length) {
      const mine = index++;
      results[mine] = await work(items[mine] as T);
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

async function headSegment(req: SwiftRequest, self: Handler, path: ObjectPath, name: string): Promise<SegmentHead> {
  const resp = await self(subrequest(req, 'HEAD', `/${path.version}/${path.account}/${name.replace(/^\/+/, '')}`, { source: 'SLO' }));
  closeBody(resp);
  return {
    status: resp.status,
    statusLine: statusLine(resp.status),
    contentLength: contentLength(resp.headers) ?? 0,
    etag: normalizeEtag(resp.headers['etag']) ?? '',
    contentType: mediaType(resp.headers['content-type']),
    lastModified: resp.headers['last-modified'],
    isSlo: trueValue(resp.headers['x-static-large-object']),
  };
}

/** Reads and parses the client's manifest: the segments, or the error response. */
async function readManifestInput(req: SwiftRequest, path: ObjectPath): Promise<InputSegment[] | SwiftResponse> {
  if (req.headers['x-copy-from']) return errorResponse(405, 'Multipart Manifest PUTs cannot be COPY requests');
  const declared = contentLength(req.headers);
  if (declared === null && (req.headers['transfer-encoding'] ?? '').toLowerCase() !== 'chunked') return errorResponse(411);
  const tooLarge = `Manifest File > ${SLO_LIMITS.max_manifest_size} bytes`;
  if (declared !== null && declared > SLO_LIMITS.max_manifest_size) {
    req.body?.destroy();
    return errorResponse(413, tooLarge);
  }
  let body: Buffer;
  try {
    body = await readBody(req.body, SLO_LIMITS.max_manifest_size);
  } catch (error) {
    if (error instanceof BodyTooLarge) return errorResponse(413, tooLarge);
    throw error;
  }
  let parsed: InputSegment[];
  try {
    parsed = parseManifestInput(body, req.path, path.version, path.account);
  } catch (error) {
    if (error instanceof ManifestError) return errorResponse(400, error.body, error.contentType);
    throw error;
  }
  if (parsed.filter((segment) => segment.kind === 'path').length > SLO_LIMITS.max_manifest_segments) {
    return errorResponse(413, `Number of object-backed segments must be <= ${SLO_LIMITS.max_manifest_segments}`);
  }
  return parsed;
}

/** HEADs every object segment (each path once, a few at a time) and builds the stored manifest, or lists the problems. */
async function checkSegments(req: SwiftRequest, path: ObjectPath, self: Handler, parsed: InputSegment[]): Promise<{ stored: StoredSegment[]; totalSize: number; problems: [string, string][] }> {
  const uniquePaths = [...new Set(parsed.flatMap((segment) => (segment.kind === 'path' ? [segment.path] : [])))];
  const heads = new Map<string, SegmentHead>();
  await mapLimit(uniquePaths, 4, async (name) => {
    heads.set(name, await headSegment(req, self, path, name));
  });
  const problems: [string, string][] = [];
  const stored: StoredSegment[] = [];
  let totalSize = 0;
  parsed.forEach((segment, index) => {
    if (segment.kind === 'data') {
      stored.push({ data: segment.data });
      totalSize += segment.raw.length;
      return;
    }
    const checked = validateSegment(segment, heads.get(segment.path) as SegmentHead, index === parsed.length - 1);
    problems.push(...checked.problems);
    if (checked.stored) stored.push(checked.stored);
    totalSize += checked.length;
  });
  return { stored, totalSize, problems };
}

/** `PUT ?multipart-manifest=put`: checks the segments, then stores the manifest in Swift's form; 201 with the quoted SLO ETag. */
async function handlePut(req: SwiftRequest, path: ObjectPath, next: Handler, self: Handler): Promise<SwiftResponse> {
  const parsed = await readManifestInput(req, path);
  if (!Array.isArray(parsed)) return parsed;
  const format = acceptBestMatch(req.headers['accept'], BULK_FORMATS) ?? 'text/plain';
  const { stored, totalSize, problems } = await checkSegments(req, path, self, parsed);
  if (problems.length) return errorResponse(400, bulkResponseBody(format, {}, problems, 'upload'), format);

  const etag = sloEtag(stored);
  const clientEtag = normalizeEtag(req.headers['etag']);
  if (clientEtag && clientEtag !== etag) return errorResponse(422);

  const manifest = Buffer.from(pythonJson(stored), 'utf8');
  const manifestEtag = createHash('md5').update(manifest).digest('hex');
  const headers = withoutHeaders(req.headers, ['transfer-encoding', 'content-length', 'etag', 'content-md5', 'expect', 'x-static-large-object']);
  headers['content-length'] = String(manifest.length);
  headers['etag'] = manifestEtag;
  headers['x-static-large-object'] = 'True';
  headers[SYSMETA_SLO_ETAG] = etag;
  headers[SYSMETA_SLO_SIZE] = String(totalSize);
  // Listings show the SLO's ETag beside the manifest's (Swift's container update override).
  const [overrideValue = '', ...overrideParams] = (headers[CONTAINER_UPDATE_OVERRIDE_ETAG] ?? '').split(';');
  headers[CONTAINER_UPDATE_OVERRIDE_ETAG] = `${[overrideValue || manifestEtag, ...overrideParams].join(';')}; slo_etag=${etag}`;
  // Listings show the SLO's size (the container server reads swift_bytes).
  headers['content-type'] = `${req.headers['content-type'] || guessContentType(path.object)};swift_bytes=${totalSize}`;
  const resp = await next(subrequest(req, 'PUT', req.path, { headers, body: Readable.from([manifest]) }));
  if (isSuccess(resp.status)) resp.headers['etag'] = `"${etag}"`;
  return resp;
}

/** Fetches a manifest as stored, whole (the caller's read access applies). */
async function fetchManifest(req: SwiftRequest, next: Handler, path: string, method = 'GET'): Promise<SwiftResponse> {
  return next(subrequest(req, method, path, { query: 'multipart-manifest=get', source: 'SLO' }));
}

function partNumber(req: SwiftRequest, params: URLSearchParams): number | null | SwiftResponse {
  const value = params.get('part-number');
  if (value === null) return null;
  const number = /^\s*[+-]?\d+\s*$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isInteger(number) || number <= 0) return errorResponse(400, 'Part number must be an integer greater than 0');
  if (parseRange(req.headers['range'])) return errorResponse(400, 'Range requests are not supported with part number queries');
  return number;
}

function manifestResponse(resp: SwiftResponse, body: Buffer | null, formatRaw: boolean): SwiftResponse {
  const headers: Record<string, string> = { ...resp.headers, 'content-type': cleanContentType(resp.headers['content-type'] ?? 'application/octet-stream') };
  if (!formatRaw) return { ...resp, headers: { ...resp.headers, 'content-type': 'application/json; charset=utf-8' } };
  if (body === null) return { ...resp, headers };
  let raw: Buffer;
  try {
    raw = rawManifest(parseStoredManifest(body));
  } catch {
    return errorResponse(500, 'Unable to load SLO manifest');
  }
  headers['content-length'] = String(raw.length);
  headers['etag'] = createHash('md5').update(raw).digest('hex');
  return { status: resp.status, headers, body: raw };
}

/** Sub-manifests fetched while reading one SLO: a few kept, as Swift's LRU of 20. */
function subManifestFetcher(req: SwiftRequest, next: Handler, path: ObjectPath): (name: string) => Promise<AnnotatedSegment[]> {
  const cache = new Map<string, AnnotatedSegment[]>();
  return async (name) => {
    const cached = cache.get(name);
    if (cached) return cached;
    const subPath = `/${path.version}/${path.account}/${name.replace(/^\/+/, '')}`;
    const resp = await fetchManifest(req, next, subPath);
    if (!isSuccess(resp.status)) {
      const text = (await readBody(resp.body, 4096).catch(() => Buffer.alloc(0))).toString('utf8');
      throw new SegmentError(`while fetching ${req.path}, GET of submanifest ${subPath} failed with status ${resp.status} (${text.length <= 60 ? text : `${text.slice(0, 57)}...`})`, resp.status >= 500 ? 503 : 409);
    }
    let segments: AnnotatedSegment[];
    try {
      segments = annotateSegments(parseStoredManifest(await readBody(resp.body, SLO_LIMITS.max_manifest_size * 2)));
    } catch {
      throw new SegmentError(`while fetching ${req.path}, JSON-decoding of submanifest ${subPath} failed`);
    }
    if (cache.size >= 20) cache.delete(cache.keys().next().value as string);
    cache.set(name, segments);
    return segments;
  };
}

/** What a GET/HEAD of an SLO needs of its manifest. */
interface ManifestState {
  resp: SwiftResponse;
  etag: string;
  size: number;
  /** Read only when the request needs them (GET, part numbers, manifests without the size/ETag sysmeta). */
  segments: AnnotatedSegment[];
}

/**
 * The manifest behind a GET/HEAD answered by an SLO manifest `resp`. The
 * conditional and range headers were for the assembled object, not the
 * manifest: when the storage servers applied them to the manifest, it is
 * fetched again plainly (the middleware decides them itself).
 */
async function loadManifest(req: SwiftRequest, next: Handler, first: SwiftResponse, wantSegments: boolean): Promise<ManifestState | SwiftResponse> {
  let resp = first;
  let etag = resp.headers[SYSMETA_SLO_ETAG] ?? '';
  let size = Number.parseInt(resp.headers[SYSMETA_SLO_SIZE] ?? '', 10);
  const legacy = !etag || !Number.isFinite(size) || size < 0;
  const needSegments = wantSegments || legacy;
  if (resp.status !== 200 || (needSegments && req.method === 'HEAD')) {
    closeBody(resp);
    resp = await fetchManifest(req, next, req.path);
    if (!trueValue(resp.headers['x-static-large-object']) || resp.status !== 200) return resp;
    etag = resp.headers[SYSMETA_SLO_ETAG] ?? etag;
    size = Number.parseInt(resp.headers[SYSMETA_SLO_SIZE] ?? '', 10);
  }
  if (!needSegments) {
    closeBody(resp);
    return { resp, etag, size, segments: [] };
  }
  let segments: AnnotatedSegment[];
  try {
    segments = annotateSegments(parseStoredManifest(await readBody(resp.body, SLO_LIMITS.max_manifest_size * 2)));
  } catch {
    return errorResponse(500, 'Unable to load SLO manifest');
  }
  if (legacy) ({ size, etag } = sizeAndEtag(segments));
  return { resp, etag, size, segments };
}

/** `?part-number=N`: the HEAD answer, the 416, or the range of that segment for a GET. */
function partResponse(req: SwiftRequest, state: ManifestState, headers: Record<string, string>, part: number): SwiftResponse | string {
  const { segments, size } = state;
  headers['x-parts-count'] = String(segments.length);
  if (part > segments.length) {
    const text = req.method === 'HEAD' ? '' : 'The requested part number is not satisfiable';
    return { status: 416, headers: { ...headers, 'content-length': String(text.length), 'content-range': `bytes */${size}` }, body: text || null };
  }
  const start = segments.slice(0, part - 1).reduce((sum, s) => sum + s.length, 0);
  const end = start + (segments[part - 1] as AnnotatedSegment).length - 1;
  if (req.method === 'HEAD') {
    return { status: 206, headers: { ...headers, 'accept-ranges': 'bytes', 'content-length': String(end - start + 1), 'content-range': `bytes ${start}-${end}/${size}` }, body: null };
  }
  return `bytes=${start}-${end}`;
}

/** GET/HEAD of an object: an SLO is answered assembled (or its manifest for `?multipart-manifest=get`); anything else passes. */
async function handleGetOrHead(req: SwiftRequest, path: ObjectPath, next: Handler): Promise<SwiftResponse> {
  const params = new URLSearchParams(req.query);
  const manifestGet = params.get('multipart-manifest') === 'get';
  const down: SwiftRequest = { ...req };
  if (!manifestGet) {
    // Ask the object servers to compare ETags with the SLO's and to ignore Range for manifests.
    down.headers = {
      ...req.headers,
      'x-backend-etag-is-at': appendCsv(req.headers['x-backend-etag-is-at'], SYSMETA_SLO_ETAG),
      'x-backend-ignore-range-if-metadata-present': appendCsv(req.headers['x-backend-ignore-range-if-metadata-present'], 'x-static-large-object'),
    };
  }
  const resp = await next(down);
  if (!trueValue(resp.headers['x-static-large-object'])) return resp;
  if (manifestGet) {
    const formatRaw = params.get('format') === 'raw';
    const body = formatRaw && req.method === 'GET' && resp.status === 200 ? await readBody(resp.body, SLO_LIMITS.max_manifest_size * 2) : null;
    return manifestResponse(resp, body, formatRaw);
  }
  const part = partNumber(req, params);
  if (part !== null && typeof part === 'object') {
    closeBody(resp);
    return part;
  }
  const state = await loadManifest(req, next, resp, req.method === 'GET' || part !== null);
  if ('status' in state) return state;
  const headers = withoutHeaders(state.resp.headers, ['content-length', 'content-range', 'etag', 'transfer-encoding']);
  headers['content-type'] = cleanContentType(state.resp.headers['content-type'] ?? 'application/octet-stream');
  headers['etag'] = `"${state.etag}"`;
  headers['x-manifest-etag'] = normalizeEtag(state.resp.headers['etag']) ?? '';
  let range: string | undefined;
  if (part !== null) {
    const answer = partResponse(req, state, headers, part);
    if (typeof answer !== 'string') return answer;
    range = answer;
  }
  const fetchSub = subManifestFetcher(req, next, path);
  const context = { version: path.version, account: path.account, name: req.path, fetchSubManifest: fetchSub };
  return serveLargeObject(req, {
    headers,
    length: state.size,
    etag: state.etag,
    multipleRanges: true,
    name: req.path,
    ...(range !== undefined ? { range } : {}),
    read: (start, end) => readPieces(req, next, byterangePieces(state.segments, start, end - 1, context), { source: 'SLO', name: req.path }),
  });
}

/** Adds `slo_etag` to the listing entries of SLOs (kept by the container as an ETag parameter) and applies `swift_bytes`. */
async function handleContainerListing(req: SwiftRequest, next: Handler): Promise<SwiftResponse> {
  const resp = await next(req);
  const length = contentLength(resp.headers);
  if (resp.status !== 200 || mediaType(resp.headers['content-type']) !== 'application/json' || length === null || length > 16 * 1024 * 1024) return resp;
  const body = await readBody(resp.body, length + 1);
  const text = body.toString('utf8');
  if (!text.includes('slo_etag') && !text.includes('swift_bytes')) return { ...resp, body };
  let listing: unknown;
  try {
    listing = JSON.parse(text);
  } catch {
    return { ...resp, body };
  }
  if (!Array.isArray(listing)) return { ...resp, body };
  for (const item of listing as Record<string, unknown>[]) {
    if (typeof item !== 'object' || item === null || 'subdir' in item) continue;
    if (typeof item['hash'] === 'string' && item['hash'].includes(';')) {
      const [hash = '', ...params] = item['hash'].split(';');
      const kept: string[] = [];
      for (const param of params) {
        const [key = '', value = ''] = param.split('=').map((s) => s.trim());
        if (key === 'slo_etag') item['slo_etag'] = `"${value}"`;
        else kept.push(`; ${key}=${value}`);
      }
      item['hash'] = hash.trim() + kept.join('');
    }
    if (typeof item['content_type'] === 'string') {
      const match = /;\s*swift_bytes=(\d+)/.exec(item['content_type']);
      if (match) {
        item['bytes'] = Number(match[1]);
        item['content_type'] = item['content_type'].replace(/;\s*swift_bytes=\d+/, '');
      }
    }
  }
  const out = Buffer.from(JSON.stringify(listing), 'utf8');
  return { ...resp, headers: { ...resp.headers, 'content-length': String(out.length) }, body: out };
}

/** The `slo` middleware. */
export const slo: Middleware = {
  name: 'slo',
  wrap(next: Handler, ctx: ProxyContext): Handler {
    ctx.registerInfo('slo', {
      max_manifest_segments: SLO_LIMITS.max_manifest_segments,
      max_manifest_size: SLO_LIMITS.max_manifest_size,
      yield_frequency: SLO_LIMITS.yield_frequency,
      min_segment_size: SLO_LIMITS.min_segment_size,
      allow_async_delete: false,
    });
    const self: Handler = async (req) => {
      const path = splitSwiftPath(req.path);
      if (!path || path.container === undefined) return next(req);
      if (path.object === undefined) return req.method === 'GET' ? handleContainerListing(req, next) : next(req);
      const objectPath = path as ObjectPath;
      const params = new URLSearchParams(req.query);
      const manifest = params.get('multipart-manifest');
      if (req.method === 'PUT' && manifest === 'put') return handlePut(req, objectPath, next, self);
      if (req.method === 'DELETE' && manifest === 'delete') return handleMultipartDelete(req, objectPath, next);
      if (req.method === 'GET' || req.method === 'HEAD') return handleGetOrHead(req, objectPath, next);
      if (req.headers['x-static-large-object'] !== undefined) {
        return errorResponse(400, 'X-Static-Large-Object is a reserved header. To create a static large object add query param multipart-manifest=put.');
      }
      return next(req);
    };
    return self;
  },
};
