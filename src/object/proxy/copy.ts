import { closeBody, contentLength, errorResponse, normalizeEtag, splitSwiftPath, swiftQuote, swiftUnquote, toReadable, trueValue, type SwiftPath } from './large-object-util.js';
import { subrequest, type Handler, type Middleware, type ProxyContext, type SwiftRequest, type SwiftResponse } from './pipeline.js';

/**
 * Server-side copy (Swift's `copy` middleware): `COPY` with `Destination`
 * (and `Destination-Account`) and `PUT` with `X-Copy-From` (and
 * `X-Copy-From-Account`). The source is read with a GET and streamed into a
 * PUT of the destination, both as the caller (read access to the source,
 * write access to the destination), both through the middlewares below
 * (so a large object is copied whole, and `?multipart-manifest=get` copies a
 * manifest instead). The source's metadata is kept unless `X-Fresh-Metadata`
 * is true; metadata given with the request wins.
 */

/** Source response headers that are the object's own and travel with a copy (what Swift's object server keeps). */
const COPIED_HEADERS = new Set(['content-disposition', 'content-encoding', 'content-language', 'cache-control', 'expires', 'x-robots-tag', 'x-delete-at']);

/** Request headers that applied to reading the source only. */
const SOURCE_ONLY_HEADERS = ['range', 'if-match', 'if-none-match', 'if-modified-since', 'if-unmodified-since', 'x-copy-from', 'x-copy-from-account', 'destination', 'destination-account', 'transfer-encoding', 'content-length', 'expect', 'x-newest'];

const isUserOrSysmeta = (name: string): boolean => name.startsWith('x-object-meta-') || name.startsWith('x-object-sysmeta-') || name.startsWith('x-object-transient-sysmeta-');
const isSysmeta = (name: string): boolean => name.startsWith('x-object-sysmeta-');
/** Sysmeta that describes content (SLO size and ETag, listing overrides): valid only for the bytes it came with. */
const isContentSysmeta = (name: string): boolean => name.startsWith('x-object-sysmeta-slo-') || name.startsWith('x-object-sysmeta-container-update-override-');

class PreconditionFailed extends Error {}

/** Swift's `check_path_header(req, name, 2, ...)`: `<container>/<object>` (a leading `/` optional), percent-decoded. */
function containerAndObject(value: string, message: string): [string, string] {
  let text = swiftUnquote(value);
  if (!text.startsWith('/')) text = `/${text}`;
  const slash = text.indexOf('/', 1);
  if (slash < 0) throw new PreconditionFailed(message);
  const container = text.slice(1, slash);
  const object = text.slice(slash + 1);
  if (!container || !object) throw new PreconditionFailed(message);
  return [container, object];
}

/** Swift's `check_account_format`. */
function accountName(value: string): string {
  const name = swiftUnquote(value);
  if (!name) throw new PreconditionFailed('Account name cannot be empty');
  if (name.includes('/')) throw new PreconditionFailed('Account name cannot contain slashes');
  return name;
}

/**
 * Headers and query of the PUT of the destination: the source's metadata
 * (only its sysmeta with `X-Fresh-Metadata`), then the request's own; the
 * source's ETag when the bytes are the object's own (so the copy is
 * verified); a manifest stays a manifest with `?multipart-manifest=get`.
 */
function sinkRequest(req: SwiftRequest, source: SwiftResponse, manifestCopy: boolean, length: number): { headers: Record<string, string>; query: string } {
  const isSlo = trueValue(source.headers['x-static-large-object']);
  const dloManifest = source.headers['x-object-manifest'];
  const keepEtag = source.status === 200 && !isSlo && (dloManifest === undefined || manifestCopy);
  const fresh = trueValue(req.headers['x-fresh-metadata']);
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(source.headers)) {
    if (isContentSysmeta(name) && !keepEtag) continue;
    if (name.startsWith('x-object-sysmeta-slo-')) continue;
    if (fresh ? isSysmeta(name) : isUserOrSysmeta(name) || COPIED_HEADERS.has(name)) headers[name] = value;
  }
  for (const [name, value] of Object.entries(req.headers)) {
    if (!SOURCE_ONLY_HEADERS.includes(name)) headers[name] = value;
  }
  let query = '';
  if (manifestCopy) {
    if (isSlo) query = 'multipart-manifest=put';
    if (dloManifest !== undefined) headers['x-object-manifest'] = dloManifest;
  }
  if (keepEtag && source.headers['etag']) headers['etag'] = normalizeEtag(source.headers['etag']) ?? '';
  else delete headers['etag'];
  if (!req.headers['content-type'] && source.headers['content-type']) headers['content-type'] = source.headers['content-type'];
  headers['content-length'] = String(length);
  return { headers, query };
}

async function handlePut(req: SwiftRequest, path: SwiftPath & { container: string; object: string }, next: Handler, maxFileSize: number): Promise<SwiftResponse> {
  const declared = contentLength(req.headers);
  if (declared) {
    req.body?.destroy();
    return errorResponse(400, 'Copy requests require a zero byte body', 'text/plain');
  }
  req.body?.resume();
  const sourceAccount = req.headers['x-copy-from-account'] ? accountName(req.headers['x-copy-from-account']) : path.account;
  const [sourceContainer, sourceObject] = containerAndObject(req.headers['x-copy-from'] ?? '', 'X-Copy-From header must be of the form <container name>/<object name>');
  const sourcePath = `/${path.version}/${sourceAccount}/${sourceContainer}/${sourceObject}`;
  const manifestCopy = new URLSearchParams(req.query).get('multipart-manifest') === 'get';

  const getHeaders: Record<string, string> = { 'x-newest': 'true' };
  for (const name of ['range', 'if-match', 'if-none-match', 'if-modified-since', 'if-unmodified-since']) {
    const value = req.headers[name];
    if (value !== undefined) getHeaders[name] = value;
  }
  const source = await next(subrequest(req, 'GET', sourcePath, { query: manifestCopy ? 'multipart-manifest=get&format=raw' : '', headers: getHeaders, source: 'SSC' }));
  if (source.status >= 300) return source;
  const length = contentLength(source.headers);
  if (length === null || length > maxFileSize) {
    closeBody(source);
    return errorResponse(413);
  }

  const { headers, query } = sinkRequest(req, source, manifestCopy, length);
  const copied: Record<string, string> = {
    'x-copied-from-account': swiftQuote(sourceAccount),
    'x-copied-from': swiftQuote(`${sourceContainer}/${sourceObject}`),
  };
  if (source.headers['last-modified']) copied['x-copied-from-last-modified'] = source.headers['last-modified'];
  for (const [name, value] of Object.entries(headers)) {
    if (isUserOrSysmeta(name) || name === 'x-delete-at') copied[name] = value;
  }

  const body = toReadable(source.body);
  let resp: SwiftResponse;
  try {
    resp = await next(subrequest(req, 'PUT', req.path, { query, headers, body, source: 'SSC' }));
  } finally {
    if (!body.readableEnded) closeBody({ body });
  }
  if (resp.status >= 200 && resp.status < 300) resp.headers = { ...resp.headers, ...copied };
  return resp;
}

function handleCopy(req: SwiftRequest, path: SwiftPath & { container: string; object: string }, next: Handler, maxFileSize: number): Promise<SwiftResponse> {
  const destination = req.headers['destination'];
  if (!destination) throw new PreconditionFailed('Destination header required');
  const headers = { ...req.headers };
  let account = path.account;
  if (req.headers['destination-account'] !== undefined) {
    account = accountName(req.headers['destination-account']);
    headers['x-copy-from-account'] = path.account;
  }
  const [container, object] = containerAndObject(destination, 'Destination header must be of the form <container name>/<object name>');
  headers['content-length'] = '0';
  headers['x-copy-from'] = `/${swiftQuote(path.container)}/${swiftQuote(path.object)}`;
  if (headers['x-copy-from-account'] !== undefined) headers['x-copy-from-account'] = swiftQuote(headers['x-copy-from-account']);
  delete headers['destination'];
  delete headers['destination-account'];
  const put: SwiftRequest = { ...req, method: 'PUT', path: `/${path.version}/${account}/${container}/${object}`, headers };
  return handlePut(put, { version: path.version, account, container, object }, next, maxFileSize);
}

async function handleOptions(req: SwiftRequest, next: Handler): Promise<SwiftResponse> {
  const resp = await next(req);
  if (resp.status >= 200 && resp.status < 300) {
    for (const name of ['allow', 'access-control-allow-methods']) {
      const value = resp.headers[name];
      if (value !== undefined && !value.includes('COPY')) resp.headers[name] = `${value}, COPY`;
    }
  }
  return resp;
}

/** The `copy` middleware. */
export const copy: Middleware = {
  name: 'copy',
  wrap(next: Handler, ctx: ProxyContext): Handler {
    const maxFileSize = ctx.config.max_file_size;
    return async (req) => {
      const path = splitSwiftPath(req.path);
      if (!path || path.container === undefined || path.object === undefined) return next(req);
      const objectPath = path as SwiftPath & { container: string; object: string };
      try {
        if (req.method === 'PUT' && req.headers['x-copy-from']) return await handlePut(req, objectPath, next, maxFileSize);
        if (req.method === 'COPY') return await handleCopy(req, objectPath, next, maxFileSize);
        if (req.method === 'OPTIONS') return await handleOptions(req, next);
      } catch (error) {
        if (error instanceof PreconditionFailed) {
          req.body?.resume();
          return errorResponse(412, error.message);
        }
        throw error;
      }
      return next(req);
    };
  },
};
