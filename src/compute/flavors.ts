import type { Kysely } from 'kysely';
import type { RequestContext } from '../core/auth/context.js';
import { isUniqueViolation } from '../core/db/database.js';
import { isAdmin, type ComputeService } from './compute.js';
import { isoNow, newUuid } from './common.js';
import type { ComputeSchema, FlavorRow } from './db/schema.js';
import { badRequest, conflict, notFound } from './errors.js';
import type { EmbeddedFlavor } from './rpc.js';

/**
 * Flavors as Nova keeps them: the flavor row, its extra specs and, for a
 * private flavor, the projects that may use it. A private flavor is seen by
 * admins and by the projects in its access list only; to anyone else it does
 * not exist (404).
 */

type Db = Kysely<ComputeSchema>;

/** A flavor with its extra specs. */
export interface Flavor extends FlavorRow {
  extra_specs: Record<string, string>;
}

export type { EmbeddedFlavor };

/** Who looks at flavors: admins see every flavor, others the public ones and those shared with their project. */
export interface FlavorViewer {
  admin: boolean;
  projectId: string | null;
}

/** The viewer of a request. */
export function flavorViewer(compute: ComputeService, ctx: RequestContext): FlavorViewer {
  return { admin: isAdmin(compute, ctx), projectId: ctx.projectId };
}

/** Nova's 404 for a flavor that does not exist or that the caller may not see. */
export function flavorNotFound(id: string): Error {
  return notFound(`Flavor ${id} could not be found.`);
}

/** The object stored in `instance.flavor` (and `old_flavor`/`new_flavor`) for a flavor row. */
export function embeddedFlavor(row: FlavorRow, extraSpecs: Record<string, string>): EmbeddedFlavor {
  return {
    flavorid: row.flavorid,
    name: row.name,
    vcpus: Number(row.vcpus),
    memory_mb: Number(row.memory_mb),
    root_gb: Number(row.root_gb),
    ephemeral_gb: Number(row.ephemeral_gb),
    swap: Number(row.swap),
    rxtx_factor: Number(row.rxtx_factor),
    is_public: Number(row.is_public) === 1,
    description: row.description,
    extra_specs: { ...extraSpecs },
  };
}

/** The extra specs of flavors, by flavor id (every id has an entry). */
export async function extraSpecsOf(db: Db, flavorIds: string[]): Promise<Map<string, Record<string, string>>> {
  const out = new Map<string, Record<string, string>>(flavorIds.map((id) => [id, {}]));
  for (let i = 0; i < flavorIds.length; i += 500) {
    const rows = await db.selectFrom('flavor_extra_spec').selectAll().where('flavorid', 'in', flavorIds.slice(i, i + 500)).execute();
    for (const row of rows) {
      const specs = out.get(row.flavorid);
      if (specs) specs[row.key] = row.value;
    }
  }
  return out;
}

/** Whether `viewer` may see the flavor. */
async function visibleTo(db: Db, row: FlavorRow, viewer: FlavorViewer): Promise<boolean> {
  if (viewer.admin || Number(row.is_public) === 1) return true;
  if (!viewer.projectId) return false;
  const access = await db.selectFrom('flavor_project').select('project_id').where('flavorid', '=', row.flavorid).where('project_id', '=', viewer.projectId).executeTakeFirst();
  return access !== undefined;
}

/** A flavor row `viewer` may see, or undefined. */
export async function findFlavor(db: Db, flavorid: string, viewer: FlavorViewer): Promise<FlavorRow | undefined> {
  const row = await db.selectFrom('flavor').selectAll().where('flavorid', '=', flavorid).executeTakeFirst();
  if (!row || !(await visibleTo(db, row, viewer))) return undefined;
  return row;
}

/** A flavor `viewer` may see, with its extra specs; 404 `Flavor X could not be found.` otherwise. */
export async function getFlavor(db: Db, flavorid: string, viewer: FlavorViewer): Promise<Flavor> {
  const row = await findFlavor(db, flavorid, viewer);
  if (!row) throw flavorNotFound(flavorid);
  const specs = await extraSpecsOf(db, [row.flavorid]);
  return { ...row, extra_specs: specs.get(row.flavorid) ?? {} };
}

/**
 * The flavor a server asks for (`flavorRef`: an id, or a link whose last
 * segment is the id), with its extra specs, if the caller may use it; Nova's
 * 404 `Flavor X could not be found.` when it is missing or private to others.
 */
export async function loadFlavorFor(compute: ComputeService, ctx: RequestContext, flavorRef: string | number): Promise<Flavor> {
  const ref = String(flavorRef);
  const id = ref.includes('/') ? (ref.replace(/[?#].*$/, '').split('/').filter(Boolean).pop() ?? ref) : ref;
  return getFlavor(compute.db, id, flavorViewer(compute, ctx));
}

/** The sort keys Nova accepts on flavor lists, and the column each sorts by. */
export const FLAVOR_SORT_KEYS: Record<string, keyof FlavorRow> = {
  created_at: 'created_at',
  description: 'description',
  disabled: 'disabled',
  ephemeral_gb: 'ephemeral_gb',
  flavorid: 'flavorid',
  // Nova's internal id follows creation.
  id: 'created_at',
  is_public: 'is_public',
  memory_mb: 'memory_mb',
  name: 'name',
  root_gb: 'root_gb',
  rxtx_factor: 'rxtx_factor',
  swap: 'swap',
  updated_at: 'updated_at',
  // Not kept: every flavor ties, so the id decides.
  vcpu_weight: 'flavorid',
  vcpus: 'vcpus',
};

/** What `GET /flavors` filters and pages by. */
export interface FlavorQuery {
  /** true: public ones (and, for a project, those shared with it); false: private ones; null: all (admins). */
  isPublic: boolean | null;
  /** Leave out disabled flavors (non-admins never see them in lists). */
  enabledOnly: boolean;
  minRam?: number;
  minDisk?: number;
  /** A regular expression the name must match. */
  name?: RegExp;
  sortKey: keyof FlavorRow;
  sortDir: 'asc' | 'desc';
  limit: number;
  marker?: string;
}

type SortValue = string | number | null;

function compareValues(a: SortValue, b: SortValue): number {
  // Nulls first in ascending order, as MySQL and SQLite sort them.
  if (a === null || b === null) return a === b ? 0 : a === null ? -1 : 1;
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  const x = String(a);
  const y = String(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

function sortValue(row: FlavorRow, key: keyof FlavorRow): SortValue {
  const value = row[key];
  if (value === null || value === undefined) return null;
  return typeof value === 'number' || typeof value === 'string' ? value : Number(value);
}

/**
 * One page of the flavors `viewer` may list: sorted by `sortKey` then id,
 * after `marker` (a flavor id the viewer may see: else 400 `marker [X] not
 * found`). Flavors are few, so the page is cut in memory.
 */
export async function listFlavors(db: Db, viewer: FlavorViewer, query: FlavorQuery): Promise<FlavorRow[]> {
  let select = db.selectFrom('flavor').selectAll();
  if (query.minRam !== undefined) select = select.where('memory_mb', '>=', query.minRam);
  if (query.minDisk !== undefined) select = select.where('root_gb', '>=', query.minDisk);
  if (query.enabledOnly) select = select.where('disabled', '=', 0);
  const rows = await select.execute();
  const shared = new Set(
    viewer.projectId ? (await db.selectFrom('flavor_project').select('flavorid').where('project_id', '=', viewer.projectId).execute()).map((r) => r.flavorid) : [],
  );
  const canSee = (row: FlavorRow): boolean => viewer.admin || Number(row.is_public) === 1 || shared.has(row.flavorid);
  const matches = (row: FlavorRow): boolean => {
    if (!canSee(row)) return false;
    if (query.name && !query.name.test(row.name)) return false;
    if (query.isPublic === true) return Number(row.is_public) === 1 || shared.has(row.flavorid);
    if (query.isPublic === false) return Number(row.is_public) === 0;
    return true;
  };
  const sign = query.sortDir === 'desc' ? -1 : 1;
  const order = (a: FlavorRow, b: FlavorRow): number =>
    sign * (compareValues(sortValue(a, query.sortKey), sortValue(b, query.sortKey)) || compareValues(a.flavorid, b.flavorid));
  let page = rows.filter(matches).sort(order);
  if (query.marker !== undefined) {
    const marker = await db.selectFrom('flavor').selectAll().where('flavorid', '=', query.marker).executeTakeFirst();
    if (!marker || !canSee(marker)) throw badRequest(`marker [${query.marker}] not found`);
    page = page.filter((row) => order(row, marker) > 0);
  }
  return page.slice(0, query.limit);
}

/** What a new flavor is made of (validated by the API). */
export interface NewFlavor {
  flavorid?: string;
  name: string;
  vcpus: number;
  memory_mb: number;
  root_gb: number;
  ephemeral_gb: number;
  swap: number;
  rxtx_factor: number;
  is_public: boolean;
  description: string | null;
}

async function checkFlavorUnique(db: Db, flavorid: string, name: string): Promise<void> {
  if (await db.selectFrom('flavor').select('flavorid').where('flavorid', '=', flavorid).executeTakeFirst()) {
    throw conflict(`Flavor with ID ${flavorid} already exists.`);
  }
  if (await db.selectFrom('flavor').select('flavorid').where('name', '=', name).executeTakeFirst()) {
    throw conflict(`Flavor with name ${name} already exists.`);
  }
}

/**
 * Creates a flavor (a UUID for its id when none is given); 409 `Flavor with
 * ID X already exists.` or `Flavor with name X already exists.`. A private
 * flavor starts with an empty access list.
 */
export async function createFlavor(db: Db, values: NewFlavor): Promise<Flavor> {
  const row: FlavorRow = {
    flavorid: values.flavorid ?? newUuid(),
    name: values.name,
    vcpus: values.vcpus,
    memory_mb: values.memory_mb,
    root_gb: values.root_gb,
    ephemeral_gb: values.ephemeral_gb,
    swap: values.swap,
    rxtx_factor: values.rxtx_factor,
    is_public: values.is_public ? 1 : 0,
    disabled: 0,
    description: values.description,
    created_at: isoNow(),
    updated_at: null,
  };
  await checkFlavorUnique(db, row.flavorid, row.name);
  try {
    await db.insertInto('flavor').values(row).execute();
  } catch (err) {
    // A concurrent create took the id or the name between the check and the insert.
    if (isUniqueViolation(err)) await checkFlavorUnique(db, row.flavorid, row.name);
    throw err;
  }
  return { ...row, extra_specs: {} };
}

/** Deletes a flavor with its extra specs and access list; 404 when there is none. Servers keep their embedded copy. */
export async function deleteFlavor(db: Db, flavorid: string): Promise<void> {
  await db.transaction().execute(async (trx) => {
    const result = await trx.deleteFrom('flavor').where('flavorid', '=', flavorid).executeTakeFirst();
    if (Number(result.numDeletedRows) === 0) throw flavorNotFound(flavorid);
    await trx.deleteFrom('flavor_extra_spec').where('flavorid', '=', flavorid).execute();
    await trx.deleteFrom('flavor_project').where('flavorid', '=', flavorid).execute();
  });
}

/** Sets a flavor's description (the one thing that may change); 404 when there is none. */
export async function setFlavorDescription(db: Db, flavorid: string, description: string | null): Promise<void> {
  const result = await db.updateTable('flavor').set({ description, updated_at: isoNow() }).where('flavorid', '=', flavorid).executeTakeFirst();
  if (Number(result.numUpdatedRows) === 0) throw flavorNotFound(flavorid);
}

/** Adds or replaces extra specs of a flavor (others are kept). */
export async function setExtraSpecs(db: Db, flavorid: string, specs: Record<string, string>): Promise<void> {
  const keys = Object.keys(specs);
  if (keys.length === 0) return;
  await db.transaction().execute(async (trx) => {
    await trx.deleteFrom('flavor_extra_spec').where('flavorid', '=', flavorid).where('key', 'in', keys).execute();
    await trx
      .insertInto('flavor_extra_spec')
      .values(keys.map((key) => ({ flavorid, key, value: specs[key] ?? '' })))
      .execute();
  });
}

/** Removes one extra spec; 404 `Flavor X has no extra specs with key Y.` when it is not there. */
export async function deleteExtraSpec(db: Db, flavorid: string, key: string): Promise<void> {
  const result = await db.deleteFrom('flavor_extra_spec').where('flavorid', '=', flavorid).where('key', '=', key).executeTakeFirst();
  if (Number(result.numDeletedRows) === 0) throw notFound(`Flavor ${flavorid} has no extra specs with key ${key}.`);
}

/** The projects a flavor is shared with, sorted. */
export async function flavorProjects(db: Db, flavorid: string): Promise<string[]> {
  const rows = await db.selectFrom('flavor_project').select('project_id').where('flavorid', '=', flavorid).orderBy('project_id').execute();
  return rows.map((r) => r.project_id);
}

/** Shares a flavor with a project; 409 when it already is. */
export async function addFlavorAccess(db: Db, flavorid: string, projectId: string): Promise<void> {
  const exists = await db.selectFrom('flavor_project').select('project_id').where('flavorid', '=', flavorid).where('project_id', '=', projectId).executeTakeFirst();
  const duplicate = conflict(`Flavor access already exists for flavor ${flavorid} and project ${projectId} combination.`);
  if (exists) throw duplicate;
  try {
    await db.insertInto('flavor_project').values({ flavorid, project_id: projectId }).execute();
  } catch (err) {
    throw isUniqueViolation(err) ? duplicate : err;
  }
}

/** Stops sharing a flavor with a project; 404 when it was not. */
export async function removeFlavorAccess(db: Db, flavorid: string, projectId: string): Promise<void> {
  const result = await db.deleteFrom('flavor_project').where('flavorid', '=', flavorid).where('project_id', '=', projectId).executeTakeFirst();
  if (Number(result.numDeletedRows) === 0) throw notFound(`Flavor access not found for ${flavorid} / ${projectId} combination.`);
}
