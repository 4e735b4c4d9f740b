import { getParam, setParams, splitSwiftPath, validApiVersion } from './constraints.js';
import type { Middleware, SwiftRequest } from './pipeline.js';
import { httpError, readAll, SwiftHttpError } from './responses.js';

/**
 * Swift's `listing_formats`: account and container listings are always
 * asked of the proxy app as JSON; this middleware writes what the client
 * wants (`format=json|xml|plain`, else the `Accept` header; plain text by
 * default): JSON as is, XML as Swift's documents, plain text as one name
 * per line (204 when empty). A middleware below may set
 * `env.formatListing = false` to return its own body untouched (staticweb).
 */

const FORMATS: Record<string, string> = { plain: 'text/plain', json: 'application/json', xml: 'application/xml' };
const OFFERED = ['text/plain', 'application/json', 'application/xml', 'text/xml'];
/** Listings larger than this are passed through as JSON (Swift's `MAX_CONTAINER_LISTING_CONTENT_LENGTH`). */
const MAX_LISTING_BYTES = 1024 * 10000 * 2;

const TOKEN = "[^()<>@,;:\\\\\"/\\[\\]?={}\\x00-\\x20\\x7f]+";
const ACCEPT_ITEM = new RegExp(`^\\s*(${TOKEN})/(${TOKEN})((?:\\s*;\\s*(?:${TOKEN})\\s*=\\s*(?:${TOKEN}|"(?:[^"\\\\]|\\\\.)*"))*?\\s*)$`);

/** Swift's `Accept.best_match`: the offered type matching the best-ranked accepted one; the first offer without an Accept header; null when none matches. Throws on a malformed header. */
export function bestMatch(accept: string | undefined, offers: string[]): string | null {
  if (!accept) return offers[0] ?? null;
  const types: { pattern: RegExp; q: number; exact: boolean }[] = [];
  for (const item of accept.split(',')) {
    const match = ACCEPT_ITEM.exec(item);
    if (!match) throw new Error('Invalid accept header');
    const [, type = '', subtype = '', params = ''] = match;
    let q = 1;
    let seenQ = false;
    for (const param of params.split(';').map((p) => p.trim()).filter(Boolean)) {
      const [name = '', value = ''] = param.split('=').map((s) => s.trim());
      if (name === 'q') {
        if (seenQ) throw new Error('Multiple "q" params');
        seenQ = true;
        q = Number(value);
        if (Number.isNaN(q)) throw new Error('Invalid q');
      }
    }
    const part = (p: string): string => (p === '*' ? TOKEN : p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
    types.push({ pattern: new RegExp(`^${part(type)}/${part(subtype)}$`), q, exact: type !== '*' && subtype !== '*' });
  }
  types.sort((a, b) => b.q - a.q || Number(b.exact) - Number(a.exact));
  if (types.length === 0) return offers[0] ?? null;
  for (const { pattern } of types) for (const offer of offers) if (pattern.test(offer)) return offer;
  return null;
}

/** The content type a listing response should have (Swift's `get_listing_content_type`): 400 on a bad Accept, 406 when nothing offered is acceptable. */
export function listingContentType(req: SwiftRequest): string {
  const format = getParam(req.query, 'format');
  const accept = format ? (FORMATS[format.toLowerCase()] ?? FORMATS.plain) : req.headers.accept;
  let type: string | null;
  try {
    type = bestMatch(accept, OFFERED);
  } catch {
    throw new SwiftHttpError(httpError(400, 'Invalid Accept header'));
  }
  if (!type) throw new SwiftHttpError(httpError(406));
  return type;
}

function escapeText(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}

function escapeAttr(text: string): string {
  return escapeText(text).replaceAll('"', '&quot;').replaceAll('\r', '&#13;').replaceAll('\n', '&#10;').replaceAll('\t', '&#09;');
}

const XML_HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n';
const str = (value: unknown): string => (typeof value === 'boolean' ? (value ? 'True' : 'False') : value === null || value === undefined ? 'None' : String(value));

/** A container listing as Swift's XML document. */
export function containerToXml(listing: Record<string, unknown>[], container: string): string {
  const items = listing.map((record) => {
    if ('subdir' in record) {
      const name = str(record.subdir);
      return `<subdir name="${escapeAttr(name)}"><name>${escapeText(name)}</name></subdir>`;
    }
    const fields = ['name', 'hash', 'bytes', 'content_type', 'last_modified'].map((f) => `<${f}>${escapeText(str(record[f]))}</${f}>`).join('');
    return `<object>${fields}</object>`;
  });
  const open = `<container name="${escapeAttr(container)}"`;
  return XML_HEAD + (items.length ? `${open}>${items.join('')}</container>` : `${open} />`);
}

/** An account listing as Swift's XML document. */
export function accountToXml(listing: Record<string, unknown>[], account: string): string {
  const items = listing.map((record) => {
    if ('subdir' in record) return `<subdir name="${escapeAttr(str(record.subdir))}" />\n`;
    let fields = ['name', 'count', 'bytes', 'last_modified'].map((f) => `<${f}>${escapeText(str(record[f]))}</${f}>`).join('');
    if ('storage_policy' in record) fields += `<storage_policy>${escapeText(str(record.storage_policy))}</storage_policy>`;
    return `<container>${fields}</container>\n`;
  });
  return `${XML_HEAD}<account name="${escapeAttr(account)}">\n${items.join('')}</account>`;
}

/** A listing as plain text: one name (or subdir) per line. */
export function listingToText(listing: Record<string, unknown>[]): string {
  return listing.map((item) => `${str('name' in item ? item.name : item.subdir)}\n`).join('');
}

/** The listing_formats middleware (see the module comment). */
export const listingFormats: Middleware = {
  name: 'listing_formats',
  wrap(next) {
    return async (req) => {
      const parts = splitSwiftPath(req.path);
      if (!parts || !parts.account || parts.object || !validApiVersion(parts.version) || (req.method !== 'GET' && req.method !== 'HEAD')) return next(req);
      const outType = listingContentType(req);
      const canVary = getParam(req.query, 'format') === undefined;
      req.query = setParams(req.query, { format: 'json' });
      req.env.formatListing ??= true;
      const response = await next(req);
      if (req.env.formatListing === false) return response;
      if (response.status !== 200 && response.status !== 204) return response;
      if (canVary) {
        const vary = response.headers.vary;
        if (!vary) response.headers.vary = 'Accept';
        else if (!vary.toLowerCase().split(',').map((v) => v.trim()).includes('accept')) response.headers.vary = `${vary}, Accept`;
      }
      const type = (response.headers['content-type'] ?? '').split(';')[0]?.trim();
      if (type !== 'application/json') return response;
      if (req.method === 'HEAD') {
        response.headers['content-type'] = `${outType}; charset=utf-8`;
        response.headers['content-length'] = '0';
        return response;
      }
      const length = response.headers['content-length'];
      if (length !== undefined && Number(length) > MAX_LISTING_BYTES) return response;
      const raw = await readAll(response.body, MAX_LISTING_BYTES * 2);
      let body: string | Buffer = raw;
      if (outType !== 'application/json') {
        let listing: unknown;
        try {
          listing = JSON.parse(raw.toString('utf8'));
        } catch {
          listing = null;
        }
        if (!Array.isArray(listing) || !listing.every((i) => i !== null && typeof i === 'object')) return { ...response, body: raw };
        const records = listing as Record<string, unknown>[];
        if (outType.endsWith('/xml')) body = parts.container ? containerToXml(records, parts.container) : accountToXml(records, parts.account);
        else body = listingToText(records);
      }
      const out = { ...response, body };
      if (Buffer.byteLength(body) === 0) out.status = 204;
      out.headers['content-type'] = `${outType}; charset=utf-8`;
      out.headers['content-length'] = String(Buffer.byteLength(body));
      return out;
    };
  },
};
