import type { FastifyRequest } from 'fastify';
import { badRequest, notFound } from './errors.js';

/**
 * Neutron's list semantics, shared by every collection: filters on any
 * attribute (`?name=a&name=b` matches either; booleans as `true`/`false`;
 * `?name=` matches the empty string), the tag filters (`tags`, `tags-any`,
 * `not-tags`, `not-tags-any`), `fields=` (repeatable), `sort_key`/`sort_dir`
 * (repeatable, paired), `limit`/`marker`/`page_reverse` with `<collection>_links`.
 * An unknown filter is a 400 (`filter-validation`).
 *
 * Lists are applied to views: handlers narrow rows in SQL where it pays (by
 * project, network, device), build the caller's views, then call {@link listResponse}.
 */
export interface ListSpec {
  /** `ports`, `networks`, ...: the collection's key and URL segment. */
  collection: string;
  /** The resource kind for the marker's not-found error (`port`, ...). */
  resource: string;
  /** Attributes one may filter and sort on (beyond these, `custom`). */
  attributes: readonly string[];
  /** Filters with their own matching (e.g. ports' `fixed_ips=ip_address=...`). */
  custom?: Record<string, (item: Record<string, unknown>, values: string[]) => boolean>;
}

export interface ListQuery {
  filters: Map<string, string[]>;
  fields: string[] | null;
  sorts: [string, 'asc' | 'desc'][];
  limit: number | null;
  marker: string | null;
  pageReverse: boolean;
  tags: { all: string[]; any: string[]; notAll: string[]; notAny: string[] };
}

const CONTROL = new Set(['fields', 'sort_key', 'sort_dir', 'limit', 'marker', 'page_reverse', 'tags', 'tags-any', 'not-tags', 'not-tags-any']);

function values(raw: unknown): string[] {
  if (raw === undefined) return [];
  return (Array.isArray(raw) ? raw : [raw]).map(String);
}

function tagList(raw: unknown): string[] {
  return values(raw).flatMap((v) => v.split(',')).filter((t) => t !== '');
}

/** Parses and checks a list request's query string. */
export function parseListQuery(req: FastifyRequest, spec: ListSpec, maxLimit = -1): ListQuery {
  const query = (req.query ?? {}) as Record<string, unknown>;
  const filters = new Map<string, string[]>();
  for (const [key, raw] of Object.entries(query)) {
    if (CONTROL.has(key)) continue;
    if (!spec.attributes.includes(key) && !spec.custom?.[key]) throw badRequest(`['${key}'] is invalid attribute for filtering`);
    filters.set(key, values(raw));
  }
  const fields = values(query.fields).flatMap((f) => f.split(',')).filter(Boolean);
  const keys = values(query.sort_key);
  const dirs = values(query.sort_dir);
  if (keys.length !== dirs.length && dirs.length > 0) throw badRequest('The number of sort_keys and sort_dirs must be same');
  const sorts: [string, 'asc' | 'desc'][] = keys.map((key, i) => {
    if (!spec.attributes.includes(key)) throw badRequest(`${key} is an invalid attribute for sort_keys`);
    const dir = (dirs[i] ?? 'asc').toLowerCase();
    if (dir !== 'asc' && dir !== 'desc') throw badRequest(`${dirs[i]} is an invalid value for sort_dirs, valid values are 'asc' and 'desc'`);
    return [key, dir];
  });
  let limit: number | null = null;
  const rawLimit = values(query.limit)[0];
  if (rawLimit !== undefined) {
    if (!/^-?\d+$/.test(rawLimit)) throw badRequest(`Limit must be an integer 0 or greater and not '${rawLimit}'`);
    const n = Number(rawLimit);
    if (n < 0) throw badRequest(`Limit must be an integer 0 or greater and not '${rawLimit}'`);
    limit = n === 0 ? null : n;
  }
  if (maxLimit > 0 && (limit === null || limit > maxLimit)) limit = maxLimit;
  return {
    filters,
    fields: fields.length > 0 ? fields : null,
    sorts,
    limit,
    marker: values(query.marker)[0] ?? null,
    pageReverse: /^true$/i.test(values(query.page_reverse)[0] ?? ''),
    tags: { all: tagList(query.tags), any: tagList(query['tags-any']), notAll: tagList(query['not-tags']), notAny: tagList(query['not-tags-any']) },
  };
}

function matches(value: unknown, wanted: string[]): boolean {
  if (typeof value === 'boolean') return wanted.some((w) => /^(true|1)$/i.test(w) === value && /^(true|false|1|0)$/i.test(w));
  if (value === null || value === undefined) return wanted.some((w) => w === '' || w === 'None' || w === 'null');
  if (Array.isArray(value)) return value.some((v) => wanted.includes(String(v)));
  if (typeof value === 'object') return false;
  return wanted.includes(String(value));
}

function compare(a: unknown, b: unknown): number {
  if (a === b) return 0;
  if (a === null || a === undefined) return -1;
  if (b === null || b === undefined) return 1;
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'boolean' && typeof b === 'boolean') return Number(a) - Number(b);
  const x = String(a);
  const y = String(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** Keeps only the requested fields of a view (all when `fields` is null). */
export function selectFields(item: Record<string, unknown>, fields: string[] | null): Record<string, unknown> {
  if (!fields) return item;
  const out: Record<string, unknown> = {};
  for (const field of fields) if (field in item) out[field] = item[field];
  return out;
}

/** Applies filters, tags, sorting, pagination and fields; returns the response body. */
export function listResponse(req: FastifyRequest, spec: ListSpec, items: Record<string, unknown>[], query: ListQuery): Record<string, unknown> {
  let result = items.filter((item) => {
    for (const [key, wanted] of query.filters) {
      const custom = spec.custom?.[key];
      if (custom ? !custom(item, wanted) : !matches(item[key], wanted)) return false;
    }
    const tags = (item.tags as string[] | undefined) ?? [];
    const { all, any, notAll, notAny } = query.tags;
    if (all.length > 0 && !all.every((t) => tags.includes(t))) return false;
    if (any.length > 0 && !any.some((t) => tags.includes(t))) return false;
    if (notAll.length > 0 && notAll.every((t) => tags.includes(t))) return false;
    if (notAny.length > 0 && notAny.some((t) => tags.includes(t))) return false;
    return true;
  });
  const paginated = query.limit !== null || query.marker !== null;
  const sorts = query.sorts.length > 0 || paginated ? [...query.sorts, ...(query.sorts.some(([k]) => k === 'id') ? [] : [['id', 'asc'] as [string, 'asc']])] : [];
  if (sorts.length > 0) {
    result = [...result].sort((a, b) => {
      for (const [key, dir] of sorts) {
        const c = compare(a[key], b[key]);
        if (c !== 0) return dir === 'asc' ? c : -c;
      }
      return 0;
    });
  }
  const body: Record<string, unknown> = {};
  if (paginated) {
    if (query.pageReverse) result.reverse();
    let start = 0;
    if (query.marker !== null) {
      const at = result.findIndex((item) => item.id === query.marker);
      if (at < 0) throw notFound(spec.resource, query.marker);
      start = at + 1;
    }
    const page = query.limit === null ? result.slice(start) : result.slice(start, start + query.limit);
    const more = query.limit !== null && start + query.limit < result.length;
    if (query.pageReverse) page.reverse();
    const links: { rel: string; href: string }[] = [];
    const link = (marker: string, reverse: boolean): string => {
      const params = new URLSearchParams();
      for (const [key, raw] of Object.entries((req.query ?? {}) as Record<string, unknown>)) {
        if (key === 'marker' || key === 'page_reverse') continue;
        for (const v of values(raw)) params.append(key, v);
      }
      params.set('marker', marker);
      if (reverse) params.set('page_reverse', 'True');
      return `${baseUrl(req)}/v2.0/${spec.collection}?${params.toString()}`;
    };
    const first = page[0]?.id as string | undefined;
    const last = page.at(-1)?.id as string | undefined;
    const forwardMore = query.pageReverse ? query.marker !== null : more;
    const backwardMore = query.pageReverse ? more : query.marker !== null;
    if (last && forwardMore) links.push({ rel: 'next', href: link(last, false) });
    if (first && backwardMore) links.push({ rel: 'previous', href: link(first, true) });
    result = page;
    if (links.length > 0) body[`${spec.collection}_links`] = links;
  }
  body[spec.collection] = result.map((item) => selectFields(item, query.fields));
  return { [spec.collection]: body[spec.collection], ...(body[`${spec.collection}_links`] ? { [`${spec.collection}_links`]: body[`${spec.collection}_links`] } : {}) };
}

/** The URL the client used to reach this service (scheme, host and port). */
export function baseUrl(req: FastifyRequest): string {
  const host = req.headers['x-forwarded-host'] ?? req.headers.host ?? 'localhost';
  const proto = (req.headers['x-forwarded-proto'] as string | undefined) ?? req.protocol ?? 'http';
  return `${proto}://${String(host)}`;
}

/** `fields=` of a show (`GET /v2.0/networks/<id>?fields=name`). */
export function showFields(req: FastifyRequest): string[] | null {
  const query = (req.query ?? {}) as Record<string, unknown>;
  const fields = values(query.fields).flatMap((f) => f.split(',')).filter(Boolean);
  return fields.length > 0 ? fields : null;
}
