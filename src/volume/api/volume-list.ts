import type { FastifyRequest } from 'fastify';
import { volumeNotFound } from '../errors.js';
import { TIME_OPERATORS, type TimeOperator } from '../listing.js';
import { matchingVolumes, volumePage, VOLUME_BOOLEANS, VOLUME_COLUMNS, type ColumnFilter, type VolumeFilters } from '../volume-queries.js';
import { volumeDetail, volumeSummary, viewContext } from '../views.js';
import { volumeFacts, volumeRow } from '../volumes.js';
import { atLeast, authorize, contextOf, type VolumeService } from '../volume.js';
import { checkFilters, invalidInput, isObject, lenientBool, literalValue, nextLinks, pagination, parseIsoTime, queryOf, sortParams, strictBool } from './volume-input.js';

/**
 * `GET /volumes` and `/volumes/detail`: Cinder's filters (per microversion
 * and role), sorting, paging with `volumes_links`, and `count` (3.45).
 */

/** Filters popped before the microversion that added them, for pre-3.31 requests. */
const ADDED_FILTERS: [string, string][] = [
  ['3.4', 'glance_metadata'],
  ['3.10', 'group_id'],
  ['3.60', 'created_at'],
  ['3.60', 'updated_at'],
  ['3.65', 'consumes_quota'],
];

/** Cinder's `created_at=gt:2024-01-01T00:00:00,lte:...` (3.60). */
function timeFilter(name: string, text: string): { op: TimeOperator; time: string }[] {
  return text.split(',').map((unit) => {
    const at = unit.indexOf(':');
    if (at < 0) throw invalidInput(`Invalid ${name} value`);
    const op = unit.slice(0, at);
    if (!(TIME_OPERATORS as readonly string[]).includes(op)) throw invalidInput(`Invalid ${op} operator`);
    const time = parseIsoTime(unit.slice(at + 1));
    if (time === null) throw invalidInput(`Invalid ${unit.slice(at + 1)} value`);
    return { op: op as TimeOperator, time };
  });
}

/** The filters of a volume list request, as Cinder processes them. */
export function volumeFilters(req: FastifyRequest, query: Map<string, string>, admin: boolean, projectId: string): VolumeFilters {
  if (!atLeast(req, '3.31')) for (const [version, key] of ADDED_FILTERS) if (!atLeast(req, version)) query.delete(key);
  checkFilters(req, query, 'volume', admin);
  const allProjects = admin && query.has('all_tenants') && lenientBool(query.get('all_tenants'));
  query.delete('all_tenants');
  const filters: VolumeFilters = { allProjects, projectId, columns: [] };
  const strict = atLeast(req, '3.2');
  for (const [rawKey, text] of query) {
    const like = rawKey.endsWith('~') && atLeast(req, '3.34');
    const key = like ? rawKey.slice(0, -1) : rawKey;
    const column = key === 'name' ? 'display_name' : key;
    if (key === 'metadata' || key === 'glance_metadata') {
      const value = literalValue(text);
      if (!isObject(value)) {
        filters.nothing = true;
        continue;
      }
      const pairs = Object.fromEntries(Object.entries(value).map(([k, v]) => [k, String(v)]));
      if (key === 'metadata') filters.metadata = pairs;
      else filters.imageMetadata = pairs;
      continue;
    }
    if (key === 'host') {
      filters.host = text;
      continue;
    }
    if (key === 'consumes_quota') {
      // Every volume consumes quota here (no temporary migration volumes).
      if (strictBool(text) === false) filters.nothing = true;
      continue;
    }
    if (key === 'created_at' || key === 'updated_at') {
      filters.columns.push({ column: key, time: timeFilter(key, text) });
      continue;
    }
    if (!(VOLUME_COLUMNS as readonly string[]).includes(column)) {
      // Cinder's database layer answers nothing for a filter on an unknown attribute.
      filters.nothing = true;
      continue;
    }
    let filter: ColumnFilter;
    if (like) filter = { column, like: text };
    else if (VOLUME_BOOLEANS.includes(column)) {
      const value = strict ? strictBool(text) : !['False', 'false', 'FALSE'].includes(text) && text !== '';
      if (value === null) throw invalidInput(`'${key} = ${text}'`);
      filter = { column, values: [value] };
    } else if (column === 'display_name') filter = { column, values: [text] };
    else {
      const value = literalValue(text);
      filter = { column, values: Array.isArray(value) ? value : [value] };
    }
    filters.columns.push(filter);
  }
  return filters;
}

/** Sort keys may be volume columns (`name` is `display_name`); else 400 `Invalid sort key`. */
function volumeSortKeys(keys: string[]): string[] {
  return keys.map((key) => {
    const column = key === 'name' ? 'display_name' : key;
    if (!(VOLUME_COLUMNS as readonly string[]).includes(column)) throw invalidInput('Invalid sort key');
    return column;
  });
}

/** The answer of `GET /volumes` (detail: `/volumes/detail`). */
export async function listVolumes(volume: VolumeService, req: FastifyRequest, detail: boolean): Promise<Record<string, unknown>> {
  const ctx = contextOf(req);
  authorize(volume, ctx, 'volume:get_all');
  const view = viewContext(volume, req);
  const query = queryOf(req);
  const page = pagination(query, volume.config.volume.max_limit);
  const sort = sortParams(query);
  let withCount = false;
  if (atLeast(req, '3.45') && query.has('with_count')) {
    withCount = lenientBool(query.get('with_count'));
    query.delete('with_count');
  }
  const filters = volumeFilters(req, query, view.admin, ctx.projectId ?? '');
  const keys = volumeSortKeys(sort.keys);
  let marker = null;
  if (page.marker !== null) {
    const row = await volumeRow(volume.db, page.marker);
    if (!row || (!view.admin && row.project_id !== ctx.projectId)) throw volumeNotFound(page.marker);
    marker = row;
  }
  const rows = await matchingVolumes(volume.db, filters);
  const pageRows = volumePage(rows, { keys, dirs: sort.dirs, marker, offset: page.offset, limit: page.limit });
  const items = detail ? (await volumeFacts(volume.db, pageRows)).map((f) => volumeDetail(volume, view, f, true)) : pageRows.map((row) => volumeSummary(view, { row }));
  const out: Record<string, unknown> = { volumes: items };
  const links = nextLinks(req, view.base, detail ? 'volumes/detail' : 'volumes', pageRows, page.limit, withCount ? rows.length : undefined);
  if (links.length > 0) out.volumes_links = links;
  if (withCount) out.count = rows.length;
  return out;
}
