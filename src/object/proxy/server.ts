import http from 'node:http';
import path from 'node:path';
import { Readable, pipeline } from 'node:stream';
import { ServiceClient } from '../../core/auth/service-client.js';
import { identityTokenValidator, type TokenValidator } from '../../core/auth/token-middleware.js';
import type { StratusConfig } from '../../core/config.js';
import { roleLogger, type Logger } from '../../core/logging.js';
import { httpDuration, httpErrors, httpRequests } from '../../core/metrics.js';
import type { HashPathSalt } from '../common.js';
import { Ring, ringFile } from '../ring/ring.js';
import { loadHashPathSalt } from '../salt.js';
import type { StorageClient } from '../storage/client.js';
import { HttpStorageClient } from '../storage/http-client.js';
import { splitSwiftPath } from './constraints.js';
import { attachInfoRegistry, InfoRegistry } from './info.js';
import { buildProxyPipeline } from './middlewares.js';
import type { ProxyContext, SwiftRequest, SwiftResponse } from './pipeline.js';
import { bodyLength, httpError, newTransId, REASONS } from './responses.js';

/**
 * The object proxy's HTTP side: node:http (not Fastify: Swift's API streams
 * bodies both ways, answers HEAD with lengths, and has odd cases a router
 * would get in the way of) turning each request into a `SwiftRequest` for
 * the pipeline and writing the `SwiftResponse` back.
 */

/** Options of {@link startObjectProxy}. */
export interface ObjectProxyOptions {
  /** Where tokens are checked, as the `swift` service user (or `username`). */
  identity: { authUrl: string; password: string; username?: string };
  validator?: TokenValidator;
  /** Port to listen on (default `config.object.port`; 0 for any free one). */
  port?: number;
  /** Address to listen on (default `config.bind_host`). */
  host?: string;
  logger?: Logger;
  storage?: StorageClient;
  rings?: ProxyContext['rings'];
  salt?: HashPathSalt;
}

/** A running object proxy. */
export interface RunningObjectProxy {
  port: number;
  ctx: ProxyContext;
  /** Stops accepting requests, ends kept-alive connections and closes the storage client it made. */
  stop(): Promise<void>;
}

const ROLE = 'object-proxy';
const TITLE_CACHE = new Map<string, string>();

/** `x-object-meta-color` → `X-Object-Meta-Color`, as Swift writes header names. */
function titleCase(name: string): string {
  let title = TITLE_CACHE.get(name);
  if (title === undefined) {
    title = name.replace(/(^|-)([a-z])/g, (_m, dash: string, c: string) => dash + c.toUpperCase());
    if (TITLE_CACHE.size < 10_000) TITLE_CACHE.set(name, title);
  }
  return title;
}

/** A header name as AWS writes it on S3 responses. */
function s3HeaderName(name: string): string {
  if (name.startsWith('x-amz-')) return name;
  return name === 'etag' ? 'ETag' : titleCase(name);
}

/** Header values must be bytes: text beyond latin-1 is sent as its UTF-8 bytes. */
function headerValue(value: string): string {
  return /[^\t\x20-\xff]/.test(value) ? Buffer.from(value.replace(/[\r\n]/g, ' '), 'utf8').toString('latin1') : value;
}

/**
 * A request path with its `%XX` escapes decoded as UTF-8 (invalid escapes
 * are kept as they are, as Python's `unquote` does); null when the bytes
 * are not UTF-8.
 */
export function decodePath(raw: string): string | null {
  if (!raw.includes('%')) return raw;
  const out: number[] = [];
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c === 0x25 && i + 2 < raw.length && /^[0-9a-fA-F]{2}$/.test(raw.slice(i + 1, i + 3))) {
      out.push(Number.parseInt(raw.slice(i + 1, i + 3), 16));
      i += 2;
    } else if (c < 0x80) {
      out.push(c);
    } else {
      for (const b of Buffer.from(raw[i] ?? '', 'utf8')) out.push(b);
    }
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(out));
  } catch {
    return null;
  }
}

/** The metrics route of a path: its kind, never its names. */
function routeOf(p: string): string {
  if (p === '/info' || p === '/healthcheck' || p === '/crossdomain.xml') return p;
  const parts = splitSwiftPath(p);
  if (!parts?.account) return 'other';
  return parts.object ? '/v1/{account}/{container}/{object}' : parts.container ? '/v1/{account}/{container}' : '/v1/{account}';
}

/**
 * The request body as the pipeline sees it. With `Expect: 100-continue` the
 * `100 Continue` goes out only when something starts reading it, so a
 * request refused without its body never makes the client send it.
 */
function requestBody(req: http.IncomingMessage, res: http.ServerResponse, expectContinue: boolean): Readable | null {
  const te = req.headers['transfer-encoding'];
  const length = req.headers['content-length'];
  const hasBody = te !== undefined || (length !== undefined && length !== '0');
  if (!hasBody) return null;
  if (!expectContinue) return req;
  let started = false;
  const body = new Readable({
    highWaterMark: 64 * 1024,
    read() {
      if (!started) {
        started = true;
        res.writeContinue();
        req.on('data', (chunk: Buffer) => {
          if (!body.push(chunk)) req.pause();
        });
        req.on('end', () => body.push(null));
        req.on('error', (err) => body.destroy(err));
        req.on('close', () => {
          if (!req.complete) body.destroy(new Error('client disconnected'));
        });
      } else {
        req.resume();
      }
    },
  });
  return body;
}

/**
 * Starts the object proxy: loads the rings (from `config.object.ring_dir`)
 * and the hash salt unless given, logs in to identity as the `swift`
 * service user for token checks, builds the pipeline, and listens. Every
 * response carries `X-Trans-Id`, `X-Openstack-Request-Id` and `Date`; one
 * log line and the HTTP metrics are recorded per request.
 */
export async function startObjectProxy(config: StratusConfig, options: ObjectProxyOptions): Promise<RunningObjectProxy> {
  const log = options.logger ?? roleLogger(ROLE);
  const salt = options.salt ?? loadHashPathSalt(config);
  const ringDir = config.object.ring_dir || path.join(config.data_dir, 'object', 'rings');
  const rings = options.rings ?? {
    account: Ring.load(ringFile(ringDir, 'account'), salt),
    container: Ring.load(ringFile(ringDir, 'container'), salt),
    object: Ring.load(ringFile(ringDir, 'object'), salt),
  };
  const ownStorage = options.storage ? null : new HttpStorageClient({ connectTimeoutMs: config.object.conn_timeout * 1000, timeoutMs: config.object.node_timeout * 1000 });
  const storage = options.storage ?? (ownStorage as StorageClient);
  const client = new ServiceClient(
    { authUrl: options.identity.authUrl, username: options.identity.username ?? 'swift', password: options.identity.password, projectName: 'service', region: config.region },
    { logger: log },
  );
  const validator = options.validator ?? identityTokenValidator(client, { cacheTtlMs: 60_000 });
  const registry = new InfoRegistry();
  const notReady = (): Promise<SwiftResponse> => Promise.resolve(httpError(503));
  const ctx: ProxyContext = {
    config: config.object,
    log,
    salt,
    rings,
    storage,
    client,
    validator,
    registerInfo: (name, info, admin) => registry.register(name, info, admin),
    pipeline: notReady,
    internal: notReady,
  };
  attachInfoRegistry(ctx, registry);
  buildProxyPipeline(ctx, { authUri: options.identity.authUrl.replace(/\/v3\/?$/, '') });

  const handle = (req: http.IncomingMessage, res: http.ServerResponse, expectContinue: boolean): void => {
    void serve(ctx, req, res, expectContinue);
  };
  const server = http.createServer({ maxHeaderSize: 64 * 1024, keepAliveTimeout: 65_000, requestTimeout: 0, headersTimeout: 60_000 });
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => handle(req, res, false));
  server.on('checkContinue', (req: http.IncomingMessage, res: http.ServerResponse) => handle(req, res, true));
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const body = '<html><h1>Bad Request</h1><p>The server could not comply with the request since it is either malformed or otherwise incorrect.</p></html>';
    socket.end(`HTTP/1.1 400 Bad Request\r\nContent-Type: text/html; charset=UTF-8\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? config.object.port, options.host ?? config.bind_host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  log.info({ port }, 'object proxy listening');
  return {
    port,
    ctx,
    async stop() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      ownStorage?.close();
    },
  };
}

async function serve(ctx: ProxyContext, req: http.IncomingMessage, res: http.ServerResponse, expectContinue: boolean): Promise<void> {
  const started = process.hrtime.bigint();
  const extra = req.headers['x-trans-id-extra'];
  const requestId = newTransId() + (typeof extra === 'string' && extra ? `-${encodeURIComponent(extra.slice(0, 32))}` : '');
  const method = req.method ?? 'GET';
  let url = req.url ?? '/';
  if (!url.startsWith('/')) {
    // An absolute-form request target.
    const slash = url.indexOf('/', url.indexOf('//') + 2);
    url = slash < 0 ? '/' : url.slice(slash);
  }
  const q = url.indexOf('?');
  const rawPath = q < 0 ? url : url.slice(0, q);
  const query = q < 0 ? '' : url.slice(q + 1);
  const decoded = decodePath(rawPath);
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    // As in Swift (a WSGI environ cannot tell `_` from `-` in header names), `X-Container-Meta-a_b` is `X-Container-Meta-A-B`.
    if (value !== undefined) headers[name.includes('_') ? name.replaceAll('_', '-') : name] = Array.isArray(value) ? value.join(', ') : value;
  }
  const body = requestBody(req, res, expectContinue);
  const swiftReq: SwiftRequest = {
    method,
    path: decoded ?? rawPath,
    query,
    headers,
    body,
    env: { requestId, remoteAddr: req.socket.remoteAddress ?? '', identity: null, rawPath },
  };
  let response: SwiftResponse;
  try {
    response = decoded === null ? httpError(412, 'Invalid UTF8 or contains NULL') : await ctx.pipeline(swiftReq);
  } catch (err) {
    ctx.log.error({ request_id: requestId, err }, 'unexpected error');
    response = { status: 500, headers: { 'content-type': 'text/plain' }, body: 'Internal server error.\n' };
  }
  const route = routeOf(swiftReq.path);
  res.once('close', () => {
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const status = res.statusCode;
    httpRequests.inc({ role: ROLE, method, route, status: String(status) });
    httpDuration.observe({ role: ROLE, method, route }, seconds);
    if (status >= 500) httpErrors.inc({ role: ROLE, route });
    ctx.log.info({ request_id: requestId, method, path: rawPath, status, ms: Math.round(seconds * 10000) / 10, client: swiftReq.env.remoteAddr, source: swiftReq.env.source }, 'request');
  });
  writeResponse(req, res, method, response, requestId, body);
}

function writeResponse(req: http.IncomingMessage, res: http.ServerResponse, method: string, response: SwiftResponse, requestId: string, body: Readable | null): void {
  const headers = response.headers;
  headers['x-trans-id'] ??= requestId;
  headers['x-openstack-request-id'] ??= requestId;
  headers['content-type'] ??= 'text/html; charset=UTF-8';
  delete headers['transfer-encoding'];
  delete headers.connection;
  const payload = response.body;
  const known = bodyLength(payload);
  // A body in hand sets the length (a HEAD keeps the length it was given: that of the resource).
  if (known !== undefined && (method !== 'HEAD' || headers['content-length'] === undefined)) headers['content-length'] = String(known);
  // A body the client was never asked for (no 100 Continue) or that is too big to drain: close the connection after the answer.
  if (body && !req.complete && (body !== req || Number(req.headers['content-length'] ?? Infinity) > 1024 * 1024)) res.shouldKeepAlive = false;
  res.statusCode = response.status;
  const reason = REASONS[response.status];
  if (reason) res.statusMessage = reason[0];
  // S3 clients expect AWS's spelling: `x-amz-*` in lower case (botocore keeps the case it reads for user metadata) and `ETag`.
  const s3 = headers['x-amz-request-id'] !== undefined;
  for (const [name, value] of Object.entries(headers)) {
    try {
      res.setHeader(s3 ? s3HeaderName(name) : titleCase(name), headerValue(value));
    } catch {
      // A header node refuses to send (a bad name) is left out rather than failing the response.
    }
  }
  const noBody = method === 'HEAD' || response.status === 204 || response.status === 304 || (response.status >= 100 && response.status < 200);
  if (payload === null || typeof payload === 'string' || Buffer.isBuffer(payload)) {
    res.end(noBody ? undefined : payload ?? undefined);
    return;
  }
  if (noBody) {
    payload.destroy();
    res.end();
    return;
  }
  pipeline(payload, res, (err) => {
    if (err && !res.destroyed) res.destroy(err);
  });
}
