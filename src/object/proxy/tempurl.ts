import ipaddr from 'ipaddr.js';
import { quote, splitSwiftPath, swiftError, isSuccess, discard } from './feature-util.js';
import { ALLOWED_DIGESTS, DEPRECATED_DIGESTS, isAllowedDigest, parseSignature, sameSignature, tempUrlSignature, type Digest } from './hmac-signature.js';
import type { Handler, Middleware, ProxyContext, SwiftRequest, SwiftResponse } from './pipeline.js';
import { accountInfo, containerInfo, tempUrlKeys } from './resource-info.js';

/**
 * Temporary URLs (Swift's `tempurl`): a request that carries
 * `temp_url_sig` and `temp_url_expires` is let through without a token when
 * the signature is an HMAC, under one of the account's or container's
 * `Temp-URL-Key`s, of the method, the expiry and the path (or a path prefix
 * with `temp_url_prefix`, optionally bound to `temp_url_ip_range`). Anything
 * wrong is a 401 with `401 Unauthorized: Temp URL invalid`.
 */

/** Methods a temporary URL may grant. */
export const TEMPURL_METHODS = ['GET', 'HEAD', 'PUT', 'POST', 'DELETE'] as const;
const INCOMING_REMOVE = ['x-timestamp', 'x-open-expired'];
const OUTGOING_REMOVE_PREFIX = 'x-object-meta-';
const OUTGOING_ALLOW_PREFIX = 'x-object-meta-public-';
/** Headers that would let a PUT point at data the URL does not grant. */
const DISALLOWED_INCOMING = ['x-object-manifest', 'x-symlink-target'];

/** What a valid temporary URL leaves in `env.tempurl` (staticweb keeps it on the links it writes). */
export interface TempUrlGrant {
  sig: string;
  expires: string;
  prefix: string | null;
  ipRange: string | null;
  inline: boolean;
  /** `account` when an account key signed it, `container` for a container key. */
  scope: 'account' | 'container';
}

/**
 * `temp_url_expires` as seconds since the epoch: an integer or
 * `YYYY-MM-DDThh:mm:ssZ`; 0 when unreadable or already past; null when absent.
 */
export function normalizeExpires(value: string | null, nowSeconds = Date.now() / 1000): number | null {
  if (value === null) return null;
  let expires = 0;
  if (/^\s*[+-]?\d+\s*$/.test(value)) expires = Number.parseInt(value.trim(), 10);
  else {
    const iso = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})Z$/.exec(value);
    if (iso) {
      const [year, month, day, hour, minute, second] = iso.slice(1).map(Number) as [number, number, number, number, number, number];
      const ms = Date.UTC(year, month - 1, day, hour, minute, second);
      const check = new Date(ms);
      // Reject dates that do not exist (2024-02-30), as strptime does.
      if (check.getUTCMonth() === month - 1 && check.getUTCDate() === day && hour < 24 && minute < 60 && second < 62) expires = Math.floor(ms / 1000);
    }
  }
  return expires < nowSeconds ? 0 : expires;
}

/** `attachment; filename="a b.txt"; filename*=UTF-8''a%20b.txt` (RFC 6266). */
export function dispositionFormat(type: string, filename: string): string {
  return `${type}; filename="${quote(filename, ' /')}"; filename*=UTF-8''${quote(filename, '')}`;
}

/** Whether `address` lies in `range` (an address or a strict CIDR network); false for anything unparsable. */
export function inIpRange(address: string, range: string): boolean {
  try {
    let network: [ipaddr.IPv4 | ipaddr.IPv6, number];
    if (range.includes('/')) {
      network = ipaddr.parseCIDR(range);
      // Host bits set (1.2.3.4/24) is an error, as Python's ip_network says.
      const [base, bits] = network;
      const expected = base.kind() === 'ipv4' ? ipaddr.IPv4.networkAddressFromCIDR(range) : ipaddr.IPv6.networkAddressFromCIDR(range);
      if (expected.toString() !== base.toString()) return false;
      network = [base, bits];
    } else {
      const single = ipaddr.parse(range);
      network = [single, single.kind() === 'ipv4' ? 32 : 128];
    }
    const client = ipaddr.process(address);
    if (client.kind() !== network[0].kind()) return false;
    return client.match(network);
  } catch {
    return false;
  }
}

function invalid(req: SwiftRequest): SwiftResponse {
  return swiftError(401, req.method, '401 Unauthorized: Temp URL invalid\n');
}

function authorizeSameScope(account: string, container: string | null): NonNullable<SwiftRequest['env']['authorize']> {
  return (req) => {
    const parts = splitSwiftPath(req.path);
    if (!parts || parts.account !== account) return swiftError(401, req.method);
    if (container !== null && parts.container !== container) return swiftError(401, req.method);
    return null;
  };
}

/** Collects the keys of the account and the container with their scopes. */
async function scopedKeys(ctx: ProxyContext, req: SwiftRequest, account: string, container: string): Promise<{ key: string; scope: 'account' | 'container' }[]> {
  const [acc, cont] = await Promise.all([accountInfo(ctx, req, account), containerInfo(ctx, req, account, container)]);
  const keys: { key: string; scope: 'account' | 'container' }[] = [];
  if (isSuccess(acc.status)) for (const key of tempUrlKeys(acc.meta)) keys.push({ key, scope: 'account' });
  if (isSuccess(cont.status)) for (const key of tempUrlKeys(cont.meta)) keys.push({ key, scope: 'container' });
  return keys;
}

/**
 * Whether a PUT's `X-Copy-From` (and `X-Copy-From-Account`) stays inside
 * what the URL grants: the account, and the container for a container key.
 * Swift gets this from the URL's authorize callback on the copy's source
 * read; here the check is made up front, so that it holds whatever the
 * layers below do with `authorizeOverride`.
 */
export function copySourceInScope(req: SwiftRequest, account: string, container: string | null): boolean {
  const source = req.headers['x-copy-from'];
  const sourceAccountHeader = req.headers['x-copy-from-account'];
  if (source === undefined && sourceAccountHeader === undefined) return true;
  let sourceAccount = account;
  if (sourceAccountHeader !== undefined) {
    try {
      sourceAccount = decodeURIComponent(sourceAccountHeader);
    } catch {
      return false;
    }
  }
  if (sourceAccount !== account) return false;
  if (container === null || source === undefined) return true;
  let path: string;
  try {
    path = decodeURIComponent(source);
  } catch {
    return false;
  }
  return path.replace(/^\/+/, '').split('/')[0] === container;
}

function cleanOutgoing(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (name.startsWith(OUTGOING_REMOVE_PREFIX) && !name.startsWith(OUTGOING_ALLOW_PREFIX)) continue;
    out[name] = value;
  }
  return out;
}

function titleCase(header: string): string {
  return header.replace(/(^|-)([a-z])/g, (_m, dash: string, letter: string) => dash + letter.toUpperCase());
}

/** The temp URL parameters of a request's query. */
interface TempUrlQuery {
  sig: string | null;
  clientExpires: string | null;
  expires: number | null;
  prefix: string | null;
  filename: string | null;
  inline: boolean;
  ipRange: string | null;
}

function readQuery(query: string): TempUrlQuery {
  const params = new URLSearchParams(query);
  const clientExpires = params.get('temp_url_expires');
  return {
    sig: params.get('temp_url_sig'),
    clientExpires,
    expires: normalizeExpires(clientExpires),
    prefix: params.get('temp_url_prefix'),
    filename: params.get('filename'),
    inline: params.has('inline'),
    ipRange: params.get('temp_url_ip_range'),
  };
}

/** A request whose temp URL checked out: what it grants. */
interface Checked {
  grant: TempUrlGrant;
  expires: number;
  account: string;
  container: string;
  object: string;
}

/** Checks a temp URL's form, path, address and signature: the grant, or the 401 to answer. */
async function check(ctx: ProxyContext, req: SwiftRequest, q: TempUrlQuery): Promise<Checked | SwiftResponse> {
  const { sig, clientExpires, expires, prefix, ipRange } = q;
  if (!sig || !expires || clientExpires === null) return invalid(req);
  const parsed = parseSignature(sig);
  if (!parsed || !isAllowedDigest(parsed.digest)) return invalid(req);
  const digest: Digest = parsed.digest;

  if (!(TEMPURL_METHODS as readonly string[]).includes(req.method)) return invalid(req);
  // The container root only for a GET/HEAD with an empty prefix (staticweb listings).
  const allowContainerRoot = (req.method === 'GET' || req.method === 'HEAD') && prefix === '';
  const parts = splitSwiftPath(req.path);
  if (!parts || parts.version !== 'v1' || parts.container === undefined) return invalid(req);
  const object = parts.object ?? '';
  if (!allowContainerRoot && object.replace(/^\/+|\/+$/g, '') === '') return invalid(req);
  const { account, container } = parts;

  if (ipRange && !inIpRange(req.env.remoteAddr, ipRange)) return invalid(req);
  const keys = await scopedKeys(ctx, req, account, container);
  if (keys.length === 0) return invalid(req);
  if (prefix !== null && !object.startsWith(prefix)) return invalid(req);
  const signedPath = prefix === null ? `/v1/${account}/${container}/${object}` : `prefix:/v1/${account}/${container}/${prefix}`;
  // A HEAD may use a URL made for GET, POST or PUT.
  const methods = req.method === 'HEAD' ? ['HEAD', 'GET', 'POST', 'PUT'] : [req.method];
  let scope: 'account' | 'container' | null = null;
  for (const method of methods) {
    for (const { key, scope: keyScope } of keys) {
      if (sameSignature(parsed.hex, tempUrlSignature(digest, key, method, expires, signedPath, ipRange))) scope ??= keyScope;
    }
  }
  if (scope === null) return invalid(req);
  ctx.log.debug({ requestId: req.env.requestId, digest }, 'tempurl: signature accepted');
  return { grant: { sig, expires: clientExpires, prefix, ipRange, inline: q.inline, scope }, expires, account, container, object };
}

/** Content-Disposition and Expires of a successful GET/HEAD; null when the container root was asked for and staticweb did not answer. */
function decorate(req: SwiftRequest, resp: SwiftResponse, q: TempUrlQuery, checked: Checked): SwiftResponse | null {
  const headers = cleanOutgoing(resp.headers);
  if ((req.method === 'GET' || req.method === 'HEAD') && isSuccess(resp.status)) {
    const generator = headers['x-backend-content-generator'];
    delete headers['x-backend-content-generator'];
    const existing = headers['content-disposition'];
    delete headers['content-disposition'];
    const inline = q.inline || generator === 'staticweb';
    if (generator !== 'staticweb' && checked.object === '') return null;
    let disposition: string;
    if (inline) disposition = q.filename ? dispositionFormat('inline', q.filename) : 'inline';
    else if (q.filename) disposition = dispositionFormat('attachment', q.filename);
    else if (existing) disposition = existing;
    else {
      const trimmed = req.path.replace(/\/+$/, '');
      disposition = dispositionFormat('attachment', trimmed.slice(trimmed.lastIndexOf('/') + 1));
    }
    headers['content-disposition'] = disposition.replace(/\n/g, '%0A');
    headers.expires = new Date(checked.expires * 1000).toUTCString();
  }
  return { ...resp, headers };
}

async function handle(next: Handler, ctx: ProxyContext, req: SwiftRequest): Promise<SwiftResponse> {
  if (req.method === 'OPTIONS') return next(req);
  const q = readQuery(req.query);
  if (q.sig === null && q.expires === null) return next(req);
  const checked = await check(ctx, req, q);
  if ('status' in checked) return checked;
  const { grant, account, container } = checked;
  const scopeContainer = grant.scope === 'account' ? null : container;

  if (req.method !== 'GET' && req.method !== 'HEAD') {
    for (const header of DISALLOWED_INCOMING) {
      if (req.headers[header] !== undefined) return swiftError(400, req.method, `The header '${titleCase(header)}' is not allowed in this tempurl`);
    }
  }
  if (!copySourceInScope(req, account, scopeContainer)) return swiftError(401, req.method);
  const headers = { ...req.headers };
  for (const header of INCOMING_REMOVE) delete headers[header];
  // Only the temp URL's own parameters go on (no multipart-manifest=..., no format=...).
  const query = new URLSearchParams({ temp_url_sig: grant.sig, temp_url_expires: grant.expires });
  if (grant.prefix !== null) query.set('temp_url_prefix', grant.prefix);
  if (q.filename) query.set('filename', q.filename);
  if (q.inline) query.set('inline', '');
  const env = { ...req.env, authorize: authorizeSameScope(account, scopeContainer), authorizeOverride: true, tempurl: grant };
  const resp = await next({ ...req, headers, query: query.toString(), env });
  const decorated = decorate(req, resp, q, checked);
  if (decorated) return decorated;
  discard(resp.body);
  return invalid(req);
}

/** Swift's `tempurl` middleware. */
export const tempurl: Middleware = {
  name: 'tempurl',
  wrap(next, ctx) {
    ctx.registerInfo('tempurl', {
      methods: [...TEMPURL_METHODS],
      incoming_remove_headers: [...INCOMING_REMOVE],
      incoming_allow_headers: [],
      outgoing_remove_headers: [`${OUTGOING_REMOVE_PREFIX}*`],
      outgoing_allow_headers: [`${OUTGOING_ALLOW_PREFIX}*`],
      allowed_digests: [...ALLOWED_DIGESTS],
      deprecated_digests: [...DEPRECATED_DIGESTS],
    });
    return (req) => handle(next, ctx, req);
  },
};
