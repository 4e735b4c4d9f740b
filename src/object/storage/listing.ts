import { Timestamp } from '../common.js';
import { errorResponse, isoformat, isTrue, type ServerResponse } from './server-util.js';

/**
 * Listings of a container (objects) or an account (containers), as Swift's
 * brokers page them: `limit`, `marker`, `end_marker`, `prefix`, `delimiter`
 * (names past the delimiter fold into one `subdir` entry), `path`, `reverse`;
 * and their formats (JSON, XML, plain text).
 */
export interface ListParams {
  limit: number;
  marker: string;
  endMarker: string;
  prefix: string | null;
  delimiter: string | null;
  path: string | null;
  reverse: boolean;
}

/** The string just after every string that starts with `s` minus its last character (Swift's `chr(ord(c) + 1)` on the last code point). */
function bumpLast(s: string): string {
  const chars = Array.from(s);
  const last = chars.pop();
  if (last === undefined) return s;
  const code = last.codePointAt(0) ?? 0;
  return chars.join('') + String.fromCodePoint(Math.min(code + 1, 0x10ffff));
}

/**
 * Runs Swift's listing algorithm over `table` (rows of `columns`, the name
 * first) with SQL range conditions and, for a delimiter, one query per
 * folded `subdir`. `query(sql, args)` runs a prepared statement.
 */
export function listRows<R extends { name: string }>(query: (sql: string, args: unknown[]) => R[], table: string, columns: string, params: ListParams): (R | { subdir: string })[] {
  let { marker, endMarker, prefix, delimiter } = params;
  const { limit, reverse, path } = params;
  if (reverse) [marker, endMarker] = [endMarker, marker];
  let pathPrefix: string | null = null;
  if (path !== null) {
    prefix = path ? `${path.replace(/\/+$/, '')}/` : '';
    pathPrefix = prefix;
    delimiter = '/';
  } else if (delimiter && !prefix) prefix = '';
  const endPrefix = prefix ? bumpLast(prefix) : null;
  const origMarker = marker;
  const results: (R | { subdir: string })[] = [];
  let forceGte = false;
  while (results.length < limit) {
    const conditions: string[] = [];
    const args: unknown[] = [];
    if (endMarker && (!prefix || (endPrefix !== null && endMarker < endPrefix))) {
      conditions.push('name < ?');
      args.push(endMarker);
    } else if (prefix && endPrefix !== null) {
      conditions.push('name < ?');
      args.push(endPrefix);
    }
    if (forceGte) {
      conditions.push('name >= ?');
      args.push(marker);
      forceGte = false;
    } else if (marker && (!prefix || marker >= prefix)) {
      conditions.push('name > ?');
      args.push(marker);
    } else if (prefix) {
      conditions.push('name >= ?');
      args.push(prefix);
    }
    conditions.push('deleted = 0');
    const sql = `SELECT ${columns} FROM ${table} WHERE ${conditions.join(' AND ')} ORDER BY name ${reverse ? 'DESC' : 'ASC'} LIMIT ?`;
    const pageLimit = limit - results.length;
    args.push(pageLimit);
    const rows = query(sql, args);
    if (prefix === null || !delimiter) {
      for (const r of rows) results.push(r);
      return results;
    }
    if (rows.length === 0) break;
    let folded = false;
    for (const row of rows) {
      const name = row.name;
      if (reverse) endMarker = name;
      else marker = name;
      if (results.length >= limit) return results;
      const end = name.indexOf(delimiter, prefix.length);
      if (pathPrefix !== null) {
        if (name === pathPrefix) continue;
        if (end >= 0 && name.length > end + delimiter.length) {
          if (reverse) endMarker = name.slice(0, end + delimiter.length);
          else marker = name.slice(0, end) + bumpLast(delimiter);
          folded = true;
          break;
        }
      } else if (end >= 0) {
        if (reverse) endMarker = name.slice(0, end + delimiter.length);
        else {
          marker = name.slice(0, end) + bumpLast(delimiter);
          forceGte = true;
        }
        const dir = name.slice(0, end + delimiter.length);
        if (dir !== origMarker) results.push({ subdir: dir });
        folded = true;
        break;
      }
      results.push(row);
    }
    if (!folded && rows.length < pageLimit) break;
  }
  return results;
}

/** Listing parameters from a query string, or a 400/412 as Swift's `validate_container_params`/`constrain_req_limit`. */
export function parseListParams(query: string, maxLimit: number): ListParams | ServerResponse {
  const q = new URLSearchParams(query);
  let limit = maxLimit;
  const rawLimit = q.get('limit');
  if (rawLimit !== null && rawLimit !== '') {
    if (!/^-?\d+$/.test(rawLimit)) return errorResponse(400, 'Value of limit must be a positive integer');
    limit = Number(rawLimit);
    if (limit < 0) return errorResponse(400, 'Value of limit must be a positive integer');
    if (limit > maxLimit) return errorResponse(412, `Maximum limit is ${maxLimit}`);
  }
  const get = (name: string): string | null => {
    const v = q.get(name);
    return v === null ? null : v;
  };
  for (const name of ['marker', 'end_marker', 'prefix', 'delimiter', 'path']) {
    const v = get(name);
    if (v !== null && v.includes('\u0000')) return errorResponse(400, `Invalid ${name}`);
  }
  const delimiter = get('delimiter');
  return {
    limit,
    marker: get('marker') ?? '',
    endMarker: get('end_marker') ?? '',
    prefix: get('prefix'),
    delimiter: delimiter === '' ? null : delimiter,
    path: get('path'),
    reverse: isTrue(get('reverse') ?? undefined),
  };
}

/** The format a listing is asked in: `format=json|xml|plain`, else the Accept header (default plain), as Swift's `get_listing_content_type`. */
export function listingContentType(query: string, accept: string | undefined): string | ServerResponse {
  const format = new URLSearchParams(query).get('format');
  if (format) {
    const f = format.toLowerCase();
    if (f === 'json') return 'application/json';
    if (f === 'xml') return 'application/xml';
    if (f === 'plain' || f === 'text') return 'text/plain';
  }
  if (!accept) return 'text/plain';
  const types = accept
    .split(',')
    .map((part) => {
      const [type = '', ...paramsList] = part.trim().split(';');
      const qParam = paramsList.map((p) => p.trim()).find((p) => p.startsWith('q='));
      return { type: type.trim().toLowerCase(), q: qParam ? Number(qParam.slice(2)) : 1 };
    })
    .filter((t) => t.q > 0)
    .sort((a, b) => b.q - a.q);
  for (const { type } of types) {
    if (type === 'application/json') return 'application/json';
    if (type === 'application/xml' || type === 'text/xml') return type;
    if (type === 'text/plain' || type === '*/*' || type === 'text/*') return 'text/plain';
    if (type === 'application/*') return 'application/json';
  }
  return errorResponse(406);
}

function xmlEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** An object entry of a listing (Swift's `update_object_record`): `swift_bytes` in the content type becomes `bytes`. */
export function objectEntry(row: { name: string; created_at: string; size: number; content_type: string; etag: string }): Record<string, unknown> {
  let contentType = row.content_type;
  let bytes = row.size;
  const match = /;\s*swift_bytes=(\d+)/.exec(contentType);
  if (match) {
    bytes = Number(match[1]);
    contentType = contentType.slice(0, match.index) + contentType.slice(match.index + match[0].length);
  }
  return { bytes, hash: row.etag, name: row.name, content_type: contentType, last_modified: isoformat(Timestamp.parse(row.created_at)) };
}

/** A container entry of an account listing. */
export function containerEntry(row: { name: string; object_count: number; bytes_used: number; put_timestamp: string }): Record<string, unknown> {
  return { name: row.name, count: row.object_count, bytes: row.bytes_used, last_modified: isoformat(Timestamp.parse(row.put_timestamp)), storage_policy: 'Policy-0' };
}

/** Listing bodies in each format; '' for an empty plain listing (the server answers 204). */
export function renderListing(entries: Record<string, unknown>[], contentType: string, kind: 'container' | 'account', name: string): string {
  if (contentType.endsWith('/json')) return JSON.stringify(entries).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  if (contentType.endsWith('/xml')) {
    const parts = [`<?xml version="1.0" encoding="UTF-8"?>\n<${kind} name="${xmlEscape(name)}">`];
    for (const e of entries) {
      if ('subdir' in e) {
        const sub = xmlEscape(String(e.subdir));
        parts.push(`<subdir name="${sub}"><name>${sub}</name></subdir>`);
        continue;
      }
      const tag = kind === 'container' ? 'object' : 'container';
      const fields = kind === 'container' ? ['name', 'hash', 'bytes', 'content_type', 'last_modified'] : ['name', 'count', 'bytes', 'last_modified'];
      parts.push(`<${tag}>${fields.map((f) => `<${f}>${xmlEscape(String(e[f] ?? ''))}</${f}>`).join('')}</${tag}>`);
    }
    parts.push(`</${kind}>`);
    return parts.join('');
  }
  return entries.map((e) => `${String('subdir' in e ? e.subdir : e.name)}\n`).join('');
}
