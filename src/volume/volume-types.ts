import type { RequestContext } from '../core/auth/context.js';
import { notFound, VolumeError, volumeTypeNotFound } from './errors.js';
import { isAdmin, type VolumeService } from './volume.js';

/**
 * Volume types as the other modules need them: looked up by id or name
 * with Cinder's visibility (a private type is seen by administrators and
 * by the projects on its access list, and is "not found" for the rest),
 * the default type of a project (its own, 3.62, else
 * `config.volume.default_volume_type`), and a type's extra specs.
 */

/** A volume type with its extra specs. */
export interface VolumeType {
  id: string;
  name: string;
  description: string | null;
  is_public: boolean;
  qos_specs_id: string | null;
  extra_specs: Record<string, string>;
  created_at: string;
  updated_at: string | null;
}

/** Whether `ctx` may see private types it has no access to (Cinder's `context.is_admin`). */
function seesAll(volume: VolumeService, ctx: RequestContext | null): boolean {
  return ctx === null || isAdmin(volume, ctx);
}

/** Loads types (all, or those of `ids`) with their extra specs. */
export async function loadTypes(volume: VolumeService, ids?: readonly string[]): Promise<VolumeType[]> {
  if (ids && ids.length === 0) return [];
  let rows = volume.db.selectFrom('volume_type').selectAll();
  if (ids) rows = rows.where('id', 'in', [...ids]);
  const types = await rows.execute();
  if (types.length === 0) return [];
  let specsQuery = volume.db.selectFrom('volume_type_extra_spec').selectAll();
  if (ids) specsQuery = specsQuery.where('volume_type_id', 'in', types.map((t) => t.id));
  const specs = await specsQuery.execute();
  const byType = new Map<string, Record<string, string>>();
  for (const spec of specs) {
    const m = byType.get(spec.volume_type_id) ?? {};
    m[spec.key] = spec.value;
    byType.set(spec.volume_type_id, m);
  }
  return types.map((t) => ({
    id: t.id,
    name: t.name,
    description: t.description,
    is_public: Number(t.is_public) === 1,
    qos_specs_id: t.qos_specs_id,
    extra_specs: byType.get(t.id) ?? {},
    created_at: t.created_at,
    updated_at: t.updated_at,
  }));
}

/** The project ids on a private type's access list. */
export async function typeProjects(volume: VolumeService, typeId: string): Promise<string[]> {
  const rows = await volume.db.selectFrom('volume_type_project').select('project_id').where('volume_type_id', '=', typeId).orderBy('project_id').execute();
  return rows.map((r) => r.project_id);
}

/** True when `ctx` sees `type` (public, admin, or its project on the access list). */
export async function typeVisible(volume: VolumeService, ctx: RequestContext | null, type: { id: string; is_public: boolean }): Promise<boolean> {
  if (type.is_public || seesAll(volume, ctx)) return true;
  if (!ctx?.projectId) return false;
  const row = await volume.db.selectFrom('volume_type_project').select('project_id').where('volume_type_id', '=', type.id).where('project_id', '=', ctx.projectId).executeTakeFirst();
  return row !== undefined;
}

/**
 * The type `id` as `ctx` sees it (null: as an administrator); 404
 * `Volume type <id> could not be found.` when absent or hidden.
 */
export async function getVolumeType(volume: VolumeService, ctx: RequestContext | null, id: string): Promise<VolumeType> {
  const [type] = await loadTypes(volume, [id]);
  if (!type || !(await typeVisible(volume, ctx, type))) throw volumeTypeNotFound(id);
  return type;
}

/**
 * The type named or numbered `identity` (Cinder's `get_by_name_or_id`: an
 * id first, then a name, since names may look like ids), as `ctx` sees it;
 * 404 (`Volume type with name X could not be found.` for a name).
 */
export async function findVolumeType(volume: VolumeService, ctx: RequestContext | null, identity: string): Promise<VolumeType> {
  const [byId] = await loadTypes(volume, [identity]);
  if (byId && (await typeVisible(volume, ctx, byId))) return byId;
  const row = await volume.db.selectFrom('volume_type').select('id').where('name', '=', identity).executeTakeFirst();
  const [byName] = row ? await loadTypes(volume, [row.id]) : [];
  if (byName && (await typeVisible(volume, ctx, byName))) return byName;
  if (/^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i.test(identity)) throw volumeTypeNotFound(identity);
  throw notFound(`Volume type with name ${identity} could not be found.`);
}

/**
 * The type a volume of `projectId` gets when it names none: the project's
 * default (3.62 `/default-types`), else the configured one. 500
 * `VolumeTypeDefaultMisconfiguredError` when that type does not exist.
 */
export async function defaultVolumeType(volume: VolumeService, projectId: string | null): Promise<VolumeType> {
  if (projectId) {
    const own = await volume.db.selectFrom('default_volume_type').select('volume_type_id').where('project_id', '=', projectId).executeTakeFirst();
    if (own) {
      const [type] = await loadTypes(volume, [own.volume_type_id]);
      if (type) return type;
    }
  }
  const name = volume.config.volume.default_volume_type;
  const row = name ? await volume.db.selectFrom('volume_type').select('id').where('name', '=', name).executeTakeFirst() : undefined;
  const [type] = row ? await loadTypes(volume, [row.id]) : [];
  if (!type) throw new VolumeError(500, `The request cannot be fulfilled as the default volume type ${name} cannot be found.`);
  return type;
}

/** The extra specs of a type ({} when it has none or is gone). */
export async function typeExtraSpecs(volume: VolumeService, typeId: string): Promise<Record<string, string>> {
  const rows = await volume.db.selectFrom('volume_type_extra_spec').select(['key', 'value']).where('volume_type_id', '=', typeId).execute();
  return Object.fromEntries(rows.map((r) => [r.key, r.value]));
}

/** Names of types by id (for volume and snapshot views, which show the type's name). */
export async function typeNames(volume: VolumeService, ids: readonly string[]): Promise<Map<string, string>> {
  const unique = [...new Set(ids)];
  if (unique.length === 0) return new Map();
  const rows = await volume.db.selectFrom('volume_type').select(['id', 'name']).where('id', 'in', unique).execute();
  return new Map(rows.map((r) => [r.id, r.name]));
}
