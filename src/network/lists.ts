import type { FastifyRequest } from 'fastify';
import { sql, type RawBuilder, type SelectQueryBuilder, type SqlBool } from 'kysely';
import type { DialectName } from '../core/db/database.js';
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
 * project, network, device), build the caller's views, then call
 * {@link listResponse}. A page of a big collection is cheaper read from SQL:
 * {@link sqlListResponse} answers the same when the query allows it.
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

/** The standard attributes every collection filters and sorts on; specs spread it before their own. */
export const STANDARD_ATTRIBUTES = ['id', 'name', 'tenant_id', 'project_id', 'description', 'created_at', 'updated_at', 'revision_number'] as const;

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

function fieldList(raw: unknown): string[] | null {
  const fields = values(raw).flatMap((f) => f.split(',')).filter(Boolean);
  return fields.length > 0 ? fields : null;
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
    fields: fieldList(query.fields),
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

/** True when a view passes the query's filters and tag filters. */
function passes(spec: ListSpec, query: ListQuery, item: Record<string, unknown>): boolean {
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
}

function paginated(query: ListQuery): boolean {
  return query.limit !== null || query.marker !== null;
}

/** The requested sort keys, then `id` (ascending) unless requested, so that the order is total. */
function totalOrder(query: ListQuery): [string, 'asc' | 'desc'][] {
  return query.sorts.some(([key]) => key === 'id') ? query.sorts : [...query.sorts, ['id', 'asc']];
}

/**
 * The body of a page: its items (with `fields` applied) and the
 * `<collection>_links` Neutron gives (`next` after the last item when there
 * is more in the paging direction, `previous` before the first when paging
 * started from a marker; the other way round with `page_reverse`).
 */
function pageBody(req: FastifyRequest, spec: ListSpec, query: ListQuery, page: Record<string, unknown>[], more: boolean): Record<string, unknown> {
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
  const links: { rel: string; href: string }[] = [];
  const first = page[0]?.id as string | undefined;
  const last = page.at(-1)?.id as string | undefined;
  const forwardMore = query.pageReverse ? query.marker !== null : more;
  const backwardMore = query.pageReverse ? more : query.marker !== null;
  if (last && forwardMore) links.push({ rel: 'next', href: link(last, false) });
  if (first && backwardMore) links.push({ rel: 'previous', href: link(first, true) });
  const body: Record<string, unknown> = { [spec.collection]: page.map((item) => selectFields(item, query.fields)) };
  if (links.length > 0) body[`${spec.collection}_links`] = links;
  return body;
}

/** Applies filters, tags, sorting, pagination and fields; returns the response body. */
export function listResponse(req: FastifyRequest, spec: ListSpec, items: Record<string, unknown>[], query: ListQuery): Record<string, unknown> {
  const result = items.filter((item) => passes(spec, query, item));
  const sorts = query.sorts.length > 0 || paginated(query) ? totalOrder(query) : [];
  if (sorts.length > 0) {
    result.sort((a, b) => {
      for (const [key, dir] of sorts) {
        const c = compare(a[key], b[key]);
        if (c !== 0) return dir === 'asc' ? c : -c;
      }
      return 0;
    });
  }
  if (!paginated(query)) return { [spec.collection]: result.map((item) => selectFields(item, query.fields)) };
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
  return pageBody(req, spec, query, page, more);
}

/** A sort key SQL can order by as {@link listResponse} orders views: its column, and whether it holds text. */
export interface SortColumn {
  column: string;
  text: boolean;
}

/** What a handler gives {@link sqlListResponse}. */
export interface SqlPaging<DB, TB extends keyof DB, Row extends { id: string }> {
  /** The collection's rows narrowed to what the caller may see and by the filters, neither ordered nor limited. */
  rows: SelectQueryBuilder<DB, TB, Row>;
  /** The filters `rows` applies as {@link listResponse} applies them to views. */
  filtersInSql: ReadonlySet<string>;
  /**
   * The sort keys (`id` among them) whose columns order as the views do:
   * not times (views show them to the second), nor attributes policy may hide.
   */
  sortColumns: Readonly<Record<string, SortColumn>> & { id: SortColumn };
  dialect: DialectName;
  /** The views of rows, in order; null when the caller may not see one of them. */
  views(rows: Row[]): Promise<Record<string, unknown>[] | null>;
}

/** Text compared code point by code point, as the views are sorted (not by the database's locale). */
const BINARY_COLLATION: Record<DialectName, string | null> = { sqlite: null, postgres: '"C"', mysql: 'utf8mb4_bin' };

/**
 * {@link listResponse} for a paginated list, with the page read in SQL:
 * `order by` the sort columns and `id`, after the marker's row (before it
 * with `page_reverse`), `limit + 1` rows to know whether there is more. The
 * body is the same as {@link listResponse}'s on every view: items, order,
 * links, 404 for a marker that is not in the list. Returns null, having read
 * at most the marker and the page, when the query needs the in-memory path:
 * not paginated, tag filters, a filter not in `filtersInSql`, a sort key
 * without a column, or a row the caller may not see (or whose view does not
 * pass the filters).
 */
export async function sqlListResponse<DB, TB extends keyof DB, Row extends { id: string }>(
  req: FastifyRequest,
  spec: ListSpec,
  query: ListQuery,
  paging: SqlPaging<DB, TB, Row>,
): Promise<Record<string, unknown> | null> {
  if (!paginated(query)) return null;
  const { all, any, notAll, notAny } = query.tags;
  if (all.length + any.length + notAll.length + notAny.length > 0) return null;
  if ([...query.filters.keys()].some((key) => !paging.filtersInSql.has(key))) return null;
  const order: OrderTerm[] = [];
  for (const [key, dir] of totalOrder(query)) {
    const sort = paging.sortColumns[key];
    if (!sort) return null;
    const collation = sort.text ? BINARY_COLLATION[paging.dialect] : null;
    const expr = collation ? sql`${sql.ref(sort.column)} collate ${sql.raw(collation)}` : sql`${sql.ref(sort.column)}`;
    // Paging backwards reads the reversed order, then turns the page round.
    order.push({ column: sort.column, expr, dir: query.pageReverse ? (dir === 'asc' ? 'desc' : 'asc') : dir });
  }
  let rows = paging.rows;
  let marker: Row | undefined;
  if (query.marker !== null) {
    marker = (await rows.where(sql<SqlBool>`${sql.ref(paging.sortColumns.id.column)} = ${query.marker}`).executeTakeFirst()) as Row | undefined;
    if (!marker) throw notFound(spec.resource, query.marker);
    rows = rows.where(after(order, marker));
  }
  for (const { expr, dir } of order) rows = rows.orderBy(expr, dir);
  if (query.limit !== null) rows = rows.limit(query.limit + 1);
  const found = await rows.execute();
  // The marker must be in the list as the views see it, as in listResponse.
  const shown = await paging.views(marker ? [marker, ...found] : found);
  if (!shown || !shown.every((view) => passes(spec, query, view))) return null;
  if (marker) shown.shift();
  const more = query.limit !== null && shown.length > query.limit;
  const page = query.limit === null ? shown : shown.slice(0, query.limit);
  if (query.pageReverse) page.reverse();
  return pageBody(req, spec, query, page, more);
}

/** A column of an `order by`: the expression sorted (collated) and the direction read. */
interface OrderTerm {
  column: string;
  expr: RawBuilder<unknown>;
  dir: 'asc' | 'desc';
}

/** Rows after `marker` in `order`: `(a > x) or (a = x and b > y) or ...` (`<` for descending keys). */
function after(order: OrderTerm[], row: { id: string }): RawBuilder<SqlBool> {
  const marker = row as Record<string, unknown>;
  const terms = order.map(({ expr, dir, column }, i) => {
    const equal = order.slice(0, i).map((o) => sql`${o.expr} = ${marker[o.column]}`);
    const beyond = dir === 'asc' ? sql`${expr} > ${marker[column]}` : sql`${expr} < ${marker[column]}`;
    return sql`(${sql.join([...equal, beyond], sql` and `)})`;
  });
  return sql<SqlBool>`(${sql.join(terms, sql` or `)})`;
}

/** The URL the client used to reach this service (scheme, host and port). */
export function baseUrl(req: FastifyRequest): string {
  const host = req.headers['x-forwarded-host'] ?? req.headers.host ?? 'localhost';
  const proto = (req.headers['x-forwarded-proto'] as string | undefined) ?? req.protocol ?? 'http';
  return `${proto}://${String(host)}`;
}

/** `fields=` of a show (`GET /v2.0/networks/<id>?fields=name`). */
export function showFields(req: FastifyRequest): string[] | null {
  return fieldList(((req.query ?? {}) as Record<string, unknown>).fields);
}
