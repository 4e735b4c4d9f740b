import { createHash } from 'node:crypto';
import { CONSTRAINTS } from '../common.js';
import { SegmentError, parseRange, serveLargeObject } from './large-object-response.js';
import { readPieces, type SegmentPiece } from './large-object-segments.js';
import { closeBody, errorResponse, isSuccess, normalizeEtag, readBody, splitSwiftPath, swiftUnquote, withoutHeaders, type SwiftPath } from './large-object-util.js';
import { subrequest, type Handler, type Middleware, type SwiftRequest, type SwiftResponse } from './pipeline.js';

/**
 * Dynamic large objects (Swift's `dlo` middleware): an object with
 * `X-Object-Manifest: <container>/<prefix>` reads as the concatenation of the
 * objects of `<container>` whose names start with `<prefix>`, in listing
 * order. The listing (and the segments) are read with the caller's
 * authority. `?multipart-manifest=get` returns the manifest object itself.
 */

interface ListingEntry {
  name: string;
  bytes: number;
  hash: string;
}

const LISTING_LIMIT = CONSTRAINTS.container_listing_limit;

/** One page of the segment container's listing, as the caller; an error response when it cannot be listed. */
async function listSegments(req: SwiftRequest, next: Handler, path: SwiftPath, container: string, prefix: string, marker = ''): Promise<ListingEntry[] | SwiftResponse> {
  const query = new URLSearchParams({ format: 'json', prefix });
  if (marker) query.set('marker', marker);
  const resp = await next(subrequest(req, 'GET', `/${path.version}/${path.account}/${container}`, { query: query.toString(), source: 'DLO' }));
  if (!isSuccess(resp.status)) return resp;
  if (resp.status === 204) {
    closeBody(resp);
    return [];
  }
  const parsed: unknown = JSON.parse((await readBody(resp.body)).toString('utf8'));
  if (!Array.isArray(parsed)) return [];
  return (parsed as Record<string, unknown>[])
    .filter((item) => typeof item === 'object' && item !== null && typeof item['name'] === 'string')
    .map((item) => ({ name: item['name'] as string, bytes: Number(item['bytes'] ?? 0), hash: String(item['hash'] ?? '') }));
}

/** The segment pieces for bytes `first..last` (inclusive; null last: to the end), fetching further listing pages as needed. */
async function* dloPieces(req: SwiftRequest, next: Handler, path: SwiftPath, container: string, prefix: string, firstPage: ListingEntry[], first: number, last: number | null): AsyncGenerator<SegmentPiece> {
  let segments = firstPage;
  let lastByte = last ?? Number.POSITIVE_INFINITY;
  let firstByte = first;
  for (;;) {
    for (const segment of segments) {
      const length = segment.bytes;
      if (firstByte >= length) {
        firstByte = Math.max(firstByte - length, -1);
        lastByte = Math.max(lastByte - length, -1);
        continue;
      }
      if (lastByte < 0) return;
      yield {
        path: `/${path.version}/${path.account}/${container}/${segment.name}`,
        first: firstByte <= 0 ? 0 : firstByte,
        last: lastByte >= length - 1 ? null : lastByte,
      };
      firstByte = Math.max(firstByte - length, -1);
      lastByte = Math.max(lastByte - length, -1);
    }
    if (segments.length < LISTING_LIMIT || lastByte < 0) return;
    const page = await listSegments(req, next, path, container, prefix, segments[segments.length - 1]?.name ?? '');
    if (!Array.isArray(page)) {
      closeBody(page);
      throw new SegmentError(`Got status ${page.status} listing container /${path.account}/${container}`);
    }
    segments = page;
  }
}

async function manifestResponse(req: SwiftRequest, path: SwiftPath, next: Handler, resp: SwiftResponse, manifest: string): Promise<SwiftResponse> {
  closeBody(resp);
  const slash = manifest.indexOf('/');
  const container = manifest.slice(0, slash);
  const prefix = manifest.slice(slash + 1);
  const listed = await listSegments(req, next, path, container, prefix);
  if (!Array.isArray(listed)) {
    if (req.method === 'HEAD') {
      closeBody(listed);
      return { ...listed, body: null };
    }
    return listed;
  }
  const complete = listed.length < LISTING_LIMIT;
  const headers = withoutHeaders(resp.headers, ['content-length', 'content-range', 'etag', 'transfer-encoding']);
  const total = listed.reduce((sum, s) => sum + s.bytes, 0);
  let etag: string | null = null;
  if (complete) {
    const hash = createHash('md5');
    for (const segment of listed) hash.update(normalizeEtag(segment.hash) ?? '');
    etag = hash.digest('hex');
    headers['etag'] = `"${etag}"`;
  }

  // Only a single range is honoured; with more segments than one listing
  // page holds, only a range that falls in the first page (the length is
  // not known).
  const specs = parseRange(req.headers['range']);
  let length: number | null = complete ? total : null;
  let range: string | null = null;
  const spec = specs && specs.length === 1 ? specs[0] : undefined;
  if (spec) {
    if (complete) range = req.headers['range'] ?? null;
    else if (spec[0] !== null && spec[1] !== null && spec[1] + 1 < total) {
      range = req.headers['range'] ?? null;
      length = total;
    }
  }
  return serveLargeObject(req, {
    headers,
    length,
    etag,
    multipleRanges: false,
    range,
    name: req.path,
    read: (start, end) => readPieces(req, next, dloPieces(req, next, path, container, prefix, listed, start, end >= Number.MAX_SAFE_INTEGER ? null : end - 1), { source: 'DLO', name: req.path }),
  });
}

function validateManifestHeader(value: string): boolean {
  const slash = value.indexOf('/');
  if (slash <= 0) return false;
  const prefix = value.slice(slash + 1);
  return Boolean(prefix) && !value.includes('?') && !value.includes('&') && !prefix.startsWith('/');
}

/** The `dlo` middleware. */
export const dlo: Middleware = {
  name: 'dlo',
  wrap(next: Handler): Handler {
    return async (req) => {
      const path = splitSwiftPath(req.path);
      if (!path || path.object === undefined) return next(req);
      if (req.method === 'GET' || req.method === 'HEAD') {
        if (new URLSearchParams(req.query).get('multipart-manifest') === 'get') return next(req);
        const existing = req.headers['x-backend-ignore-range-if-metadata-present'];
        const down = { ...req, headers: { ...req.headers, 'x-backend-ignore-range-if-metadata-present': existing ? `${existing},x-object-manifest` : 'x-object-manifest' } };
        const resp = await next(down);
        const manifest = resp.headers['x-object-manifest'];
        if (manifest === undefined) return resp;
        return manifestResponse(req, path, next, resp, swiftUnquote(manifest));
      }
      if (req.method === 'PUT' && req.headers['x-object-manifest'] !== undefined && !validateManifestHeader(req.headers['x-object-manifest'])) {
        req.body?.resume();
        return errorResponse(400, 'X-Object-Manifest must be in the format container/prefix');
      }
      return next(req);
    };
  },
};
