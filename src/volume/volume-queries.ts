import type { Kysely } from 'kysely';
import type { VolumeRow, VolumeSchema } from './db/schema.js';
import { pageOf, timeMatches, type SortDir, type TimeOperator } from './listing.js';

/**
 * The volume list (`GET /volumes`, `/volumes/detail`, `/volumes/summary`)
 * as Cinder's database layer answers it: the project's volumes (or every
 * project's), filtered by column values, metadata, image metadata, host
 * and times, sorted and paged.
 */

/** The columns of a volume row (what filters and sort keys may name). */
export const VOLUME_COLUMNS: readonly (keyof VolumeRow)[] = [
  'id',
  'project_id',
  'user_id',
  'host',
  'size',
  'availability_zone',
  'status',
  'attach_status',
  'migration_status',
  'display_name',
  'display_description',
  'volume_type_id',
  'source_volid',
  'snapshot_id',
  'image_id',
  'bootable',
  'multiattach',
  'encryption_key_id',
  'provider_location',
  'previous_status',
  'replication_status',
  'group_id',
  'created_at',
  'updated_at',
  'launched_at',
];

/** Boolean columns (filters read `true`/`false` for them). */
export const VOLUME_BOOLEANS = ['bootable', 'multiattach'];

/** One condition of a list. */
export type ColumnFilter =
  | { column: string; values: unknown[] }
  | { column: string; like: string }
  | { column: string; time: { op: TimeOperator; time: string }[] };

export interface VolumeFilters {
  /** Every project's volumes (an administrator's `all_tenants`), else those of `projectId`. */
  allProjects: boolean;
  projectId: string;
  columns: ColumnFilter[];
  metadata?: Record<string, string>;
  imageMetadata?: Record<string, string>;
  /** `host`, `host@backend` or `host@backend#pool`: volumes there. */
  host?: string;
  /** A filter that matches nothing (an unknown key, as Cinder answers for an administrator). */
  nothing?: boolean;
}

function sameValue(stored: unknown, wanted: unknown, boolean: boolean): boolean {
  if (boolean) return Boolean(stored) === (wanted === true || wanted === 1 || wanted === 'true' || wanted === 'True');
  if (stored === null || stored === undefined) return wanted === null;
  if (wanted === null) return false;
  return String(stored) === String(wanted);
}

/** Cinder's `_filter_host`: the host itself, or any backend or pool under it. */
function hostMatches(stored: string | null, wanted: string): boolean {
  if (stored === null) return false;
  if (stored === wanted) return true;
  const separator = wanted.includes('#') ? null : wanted.includes('@') ? '#' : '@';
  return separator !== null && stored.startsWith(`${wanted}${separator}`);
}

async function pairsOf(db: Kysely<VolumeSchema>, table: 'volume_metadata' | 'volume_admin_metadata', ids: string[]): Promise<Map<string, Record<string, string>>> {
  const out = new Map<string, Record<string, string>>();
  if (ids.length === 0) return out;
  const rows = await db.selectFrom(table).select(['volume_id', 'key', 'value']).where('volume_id', 'in', ids).execute();
  for (const r of rows) out.set(r.volume_id, { ...(out.get(r.volume_id) ?? {}), [r.key]: r.value });
  return out;
}

/** The volumes that match `filters`, unsorted. */
export async function matchingVolumes(db: Kysely<VolumeSchema>, filters: VolumeFilters): Promise<VolumeRow[]> {
  if (filters.nothing) return [];
  let query = db.selectFrom('volume').selectAll();
  if (!filters.allProjects) query = query.where('project_id', '=', filters.projectId);
  let rows = await query.execute();
  for (const filter of filters.columns) {
    const boolean = VOLUME_BOOLEANS.includes(filter.column);
    rows = rows.filter((row) => {
      const stored = (row as unknown as Record<string, unknown>)[filter.column];
      if ('values' in filter) return filter.values.some((v) => sameValue(stored, v, boolean));
      if ('like' in filter) return stored !== null && stored !== undefined && String(stored).includes(filter.like);
      return timeMatches(typeof stored === 'string' ? stored : null, filter.time);
    });
  }
  if (filters.host !== undefined) {
    const host = filters.host;
    rows = rows.filter((row) => hostMatches(row.host, host));
  }
  if (filters.metadata && Object.keys(filters.metadata).length > 0) {
    const ids = rows.map((r) => r.id);
    const [user, admin] = await Promise.all([pairsOf(db, 'volume_metadata', ids), pairsOf(db, 'volume_admin_metadata', ids)]);
    const wanted = Object.entries(filters.metadata);
    rows = rows.filter((row) => wanted.every(([k, v]) => user.get(row.id)?.[k] === v || admin.get(row.id)?.[k] === v));
  }
  if (filters.imageMetadata && Object.keys(filters.imageMetadata).length > 0) {
    const ids = rows.map((r) => r.id);
    const glance = new Map<string, Record<string, string>>();
    if (ids.length > 0) {
      const found = await db.selectFrom('volume_glance_metadata').select(['volume_id', 'key', 'value']).where('volume_id', 'in', ids).where('snapshot_id', '=', '').execute();
      for (const r of found) glance.set(r.volume_id, { ...(glance.get(r.volume_id) ?? {}), [r.key]: r.value });
    }
    const wanted = Object.entries(filters.imageMetadata);
    rows = rows.filter((row) => wanted.every(([k, v]) => glance.get(row.id)?.[k] === v));
  }
  return rows;
}

/** One page of matching volumes; `marker` is a volume row already found by the caller. */
export function volumePage(rows: VolumeRow[], options: { keys: string[]; dirs: SortDir[]; marker: VolumeRow | null; offset: number; limit: number }): VolumeRow[] {
  return pageOf(rows, options);
}

/**
 * `/volumes/summary`: how many volumes, their total size, and every
 * metadata key with its distinct values (of the project's volumes, or of
 * all with `allProjects`). Filters do not apply, as in Cinder.
 */
export async function volumeSummary(db: Kysely<VolumeSchema>, projectId: string | null): Promise<{ count: number; size: number; metadata: Record<string, string[]> }> {
  let totals = db.selectFrom('volume').select((eb) => [eb.fn.countAll<number>().as('n'), eb.fn.sum<number>('size').as('gb')]);
  if (projectId !== null) totals = totals.where('project_id', '=', projectId);
  const t = await totals.executeTakeFirst();
  let meta = db.selectFrom('volume_metadata').innerJoin('volume', 'volume.id', 'volume_metadata.volume_id').select(['volume_metadata.key', 'volume_metadata.value']).distinct();
  if (projectId !== null) meta = meta.where('volume.project_id', '=', projectId);
  const pairs = await meta.orderBy('volume_metadata.key').orderBy('volume_metadata.value').execute();
  const metadata: Record<string, string[]> = {};
  for (const p of pairs) (metadata[p.key] ??= []).push(p.value);
  return { count: Number(t?.n ?? 0), size: Number(t?.gb ?? 0), metadata };
}
