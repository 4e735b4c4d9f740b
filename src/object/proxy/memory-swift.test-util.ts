import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { Timestamp } from '../common.js';
import { conditionalStatus, parseRange, rangesForLength } from './large-object-response.js';
import { readBody, splitSwiftPath } from './large-object-util.js';
import type { Handler, Middleware, ProxyContext, SwiftRequest, SwiftResponse } from './pipeline.js';

/**
 * A tiny in-memory stand-in for the proxy app (tests only): containers and
 * objects with metadata, listings (prefix, marker, reverse, limit), Range,
 * the conditional headers with `X-Backend-Etag-Is-At`, and
 * `X-Backend-Ignore-Range-If-Metadata-Present`, as Swift's servers do. It
 * lets the copy, SLO, DLO and versioned_writes middlewares be tested
 * without storage servers. `denyWrites` names containers whose writes
 * `env.authorize` refuses (403).
 */

interface StoredObject {
  data: Buffer;
  headers: Record<string, string>;
}

interface StoredContainer {
  headers: Record<string, string>;
  objects: Map<string, StoredObject>;
}

const OBJECT_HEADERS = /^(x-object-meta-|x-object-sysmeta-|x-object-transient-sysmeta-)|^(content-type|content-disposition|content-encoding|x-delete-at|x-static-large-object|x-object-manifest)$/;

let clock = 1_700_000_000_00000;

function nextTimestamp(): Timestamp {
  clock += 1;
  return new Timestamp(clock);
}

/** The in-memory store and its handler. */
export class MemorySwift {
  readonly containers = new Map<string, StoredContainer>();
  readonly requests: { method: string; path: string; query: string; source?: string | undefined }[] = [];
  readonly denyWrites = new Set<string>();
  /** When false, `X-Backend-Ignore-Range-If-Metadata-Present` and `X-Backend-Etag-Is-At` are ignored (an older storage server). */
  backendFeatures = true;

  readonly handler: Handler = async (req) => this.handle(req);

  container(account: string, container: string): StoredContainer | undefined {
    return this.containers.get(`${account}/${container}`);
  }

  object(account: string, container: string, name: string): StoredObject | undefined {
    return this.container(account, container)?.objects.get(name);
  }

  private async handle(req: SwiftRequest): Promise<SwiftResponse> {
    this.requests.push({ method: req.method, path: req.path, query: req.query, source: req.env.source });
    const path = splitSwiftPath(req.path);
    if (!path || path.container === undefined) return this.text(404);
    const key = `${path.account}/${path.container}`;
    if (!req.env.authorizeOverride && ['PUT', 'POST', 'DELETE'].includes(req.method) && this.denyWrites.has(path.container)) {
      req.body?.resume();
      return this.text(403);
    }
    if (path.object === undefined) return this.containerRequest(req, key);
    const container = this.containers.get(key);
    if (!container) {
      req.body?.resume();
      return this.text(404);
    }
    return this.objectRequest(req, container, path.object);
  }

  private text(status: number, body = ''): SwiftResponse {
    return { status, headers: { 'content-type': 'text/html; charset=UTF-8', 'content-length': String(Buffer.byteLength(body)) }, body: Buffer.from(body) };
  }

  private async containerRequest(req: SwiftRequest, key: string): Promise<SwiftResponse> {
    const existing = this.containers.get(key);
    const pick = (headers: Record<string, string>): Record<string, string> => {
      const out: Record<string, string> = {};
      for (const [name, value] of Object.entries(headers)) if (/^x-container-(meta|sysmeta)-|^x-container-(read|write)$|^x-versions-location$|^x-history-location$/.test(name)) out[name] = value;
      return out;
    };
    switch (req.method) {
      case 'PUT':
      case 'POST': {
        if (req.method === 'POST' && !existing) return this.text(404);
        const container: StoredContainer = existing ?? { headers: {}, objects: new Map() };
        for (const [name, value] of Object.entries(pick(req.headers))) {
          if (value === '') delete container.headers[name];
          else container.headers[name] = value;
        }
        this.containers.set(key, container);
        return this.text(req.method === 'PUT' ? (existing ? 202 : 201) : 204);
      }
      case 'DELETE':
        if (!existing) return this.text(404);
        if (existing.objects.size) return this.text(409);
        this.containers.delete(key);
        return this.text(204);
      case 'HEAD':
      case 'GET': {
        if (!existing) return this.text(404);
        const bytes = [...existing.objects.values()].reduce((sum, o) => sum + o.data.length, 0);
        const headers = { ...existing.headers, 'x-container-object-count': String(existing.objects.size), 'x-container-bytes-used': String(bytes), 'content-type': 'application/json; charset=utf-8' };
        if (req.method === 'HEAD') return { status: 204, headers, body: null };
        const params = new URLSearchParams(req.query);
        const prefix = params.get('prefix') ?? '';
        const marker = params.get('marker') ?? '';
        const reverse = params.get('reverse') === 'on';
        const limit = Number(params.get('limit') ?? 10000);
        let names = [...existing.objects.keys()].filter((name) => name.startsWith(prefix)).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
        if (reverse) names = names.reverse();
        if (marker) names = names.filter((name) => (reverse ? name < marker : name > marker));
        const listing = names.slice(0, limit).map((name) => {
          const object = existing.objects.get(name) as StoredObject;
          return { name, bytes: object.data.length, hash: object.headers['etag'], content_type: object.headers['content-type'], last_modified: '2024-01-01T00:00:00.000000' };
        });
        const body = Buffer.from(JSON.stringify(listing));
        return { status: 200, headers: { ...headers, 'content-length': String(body.length) }, body };
      }
      default:
        return this.text(405);
    }
  }

  private async objectRequest(req: SwiftRequest, container: StoredContainer, name: string): Promise<SwiftResponse> {
    const existing = container.objects.get(name);
    switch (req.method) {
      case 'PUT': {
        const data = await readBody(req.body, 1 << 30);
        const declared = req.headers['content-length'];
        if (declared !== undefined && Number(declared) !== data.length) return this.text(499);
        const etag = createHash('md5').update(data).digest('hex');
        if (req.headers['etag'] && req.headers['etag'].replace(/"/g, '') !== etag) return this.text(422);
        const timestamp = nextTimestamp();
        const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
        for (const [header, value] of Object.entries(req.headers)) if (OBJECT_HEADERS.test(header)) headers[header] = value;
        headers['etag'] = etag;
        headers['x-timestamp'] = timestamp.normal;
        headers['last-modified'] = timestamp.httpDate;
        container.objects.set(name, { data, headers });
        return { status: 201, headers: { etag, 'last-modified': timestamp.httpDate, 'content-length': '0', 'content-type': 'text/html; charset=UTF-8' }, body: null };
      }
      case 'POST': {
        if (!existing) return this.text(404);
        const headers: Record<string, string> = {};
        for (const [header, value] of Object.entries(existing.headers)) if (!/^x-object-meta-|^x-object-manifest$/.test(header)) headers[header] = value;
        for (const [header, value] of Object.entries(req.headers)) if (OBJECT_HEADERS.test(header) && header !== 'x-static-large-object') headers[header] = value;
        existing.headers = headers;
        return this.text(202);
      }
      case 'DELETE':
        if (!existing) return this.text(404);
        container.objects.delete(name);
        return this.text(204);
      case 'GET':
      case 'HEAD': {
        if (!existing) return this.text(404);
        const headers = { ...existing.headers, 'content-length': String(existing.data.length), 'accept-ranges': 'bytes' };
        let etag = existing.headers['etag'] ?? null;
        if (this.backendFeatures) {
          for (const at of (req.headers['x-backend-etag-is-at'] ?? '').split(',')) if (at && existing.headers[at.trim()]) etag = existing.headers[at.trim()] ?? etag;
        }
        const conditional = conditionalStatus(req.headers, etag, existing.headers['last-modified']);
        if (conditional) return { status: conditional, headers: { ...headers, 'content-length': '0' }, body: null };
        let rangeHeader: string | undefined = req.headers['range'];
        if (this.backendFeatures) {
          for (const meta of (req.headers['x-backend-ignore-range-if-metadata-present'] ?? '').split(',')) if (meta && existing.headers[meta.trim()] !== undefined) rangeHeader = undefined;
        }
        const specs = parseRange(rangeHeader);
        if (specs) {
          const ranges = rangesForLength(specs, existing.data.length);
          if (ranges.length === 0) return { status: 416, headers: { ...headers, 'content-range': `bytes */${existing.data.length}`, 'content-length': '0' }, body: null };
          if (ranges.length === 1) {
            const [start, end] = ranges[0] as [number, number];
            return { status: 206, headers: { ...headers, 'content-range': `bytes ${start}-${end - 1}/${existing.data.length}`, 'content-length': String(end - start) }, body: req.method === 'HEAD' ? null : existing.data.subarray(start, end) };
          }
        }
        return { status: 200, headers, body: req.method === 'HEAD' ? null : existing.data };
      }
      default:
        return this.text(405);
    }
  }
}

/** A ProxyContext good enough for the middlewares under test (info registered into `info`). */
export function testContext(info: Record<string, unknown> = {}): ProxyContext {
  const missing = (): never => {
    throw new Error('not available in this test');
  };
  return {
    config: { max_file_size: 5 * 1024 * 1024 * 1024 + 2 },
    registerInfo: (name: string, value: Record<string, unknown>) => {
      info[name] = value;
    },
    get log() {
      return missing();
    },
  } as unknown as ProxyContext;
}

/** Wraps `app` in `middlewares` (first is outermost), as the proxy's pipeline does. */
export function chain(middlewares: Middleware[], app: Handler, ctx: ProxyContext): Handler {
  let handler = app;
  for (const middleware of [...middlewares].reverse()) handler = middleware.wrap(handler, ctx);
  return handler;
}

/** A request as the auth middleware hands it down (`env.authorize` allows everything unless the store denies). */
export function request(method: string, path: string, options: { query?: string; headers?: Record<string, string>; body?: Buffer | string | null } = {}): SwiftRequest {
  const body = options.body === undefined || options.body === null ? null : Buffer.from(options.body);
  const headers: Record<string, string> = { ...(options.headers ?? {}) };
  if (body && headers['content-length'] === undefined) headers['content-length'] = String(body.length);
  return {
    method,
    path,
    query: options.query ?? '',
    headers,
    body: body ? Readable.from([body]) : null,
    env: { requestId: 'req-test', remoteAddr: '127.0.0.1', identity: null, authorize: () => null },
  };
}

/** The whole body of a response. */
export async function bodyOf(resp: SwiftResponse): Promise<Buffer> {
  return readBody(resp.body, 1 << 30);
}
