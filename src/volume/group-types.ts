import type { RequestContext } from '../core/auth/context.js';
import { notFound } from './errors.js';
import { isAdmin, type VolumeService } from './volume.js';

/**
 * Group types (Block Storage 3.11) as the other modules need them: loaded
 * with their group specs, looked up by id or name with Cinder's visibility
 * (a private type is seen by administrators and the projects on its access
 * list, and is "not found" for the rest).
 */

/** A group type with its specs. */
export interface GroupType {
  id: string;
  name: string;
  description: string | null;
  is_public: boolean;
  group_specs: Record<string, string>;
  created_at: string;
  updated_at: string | null;
}

/** Cinder's `GroupTypeNotFound`. */
export const groupTypeNotFound = (id: string): Error => notFound(`Group type ${id} could not be found.`);

/** Loads group types (all, or those of `ids`) with their specs. */
export async function loadGroupTypes(volume: VolumeService, ids?: readonly string[]): Promise<GroupType[]> {
  if (ids && ids.length === 0) return [];
  let rows = volume.db.selectFrom('group_type').selectAll();
  if (ids) rows = rows.where('id', 'in', [...ids]);
  const types = await rows.execute();
  if (types.length === 0) return [];
  const specs = await volume.db
    .selectFrom('group_type_spec')
    .selectAll()
    .where(
      'group_type_id',
      'in',
      types.map((t) => t.id),
    )
    .execute();
  const byType = new Map<string, Record<string, string>>();
  for (const spec of specs) byType.set(spec.group_type_id, { ...(byType.get(spec.group_type_id) ?? {}), [spec.key]: spec.value });
  return types.map((t) => ({
    id: t.id,
    name: t.name,
    description: t.description,
    is_public: Number(t.is_public) === 1,
    group_specs: byType.get(t.id) ?? {},
    created_at: t.created_at,
    updated_at: t.updated_at,
  }));
}

/** True when `ctx` (null: the service itself) sees `type`. */
export async function groupTypeVisible(volume: VolumeService, ctx: RequestContext | null, type: { id: string; is_public: boolean }): Promise<boolean> {
  if (type.is_public || ctx === null || isAdmin(volume, ctx)) return true;
  if (!ctx.projectId) return false;
  const row = await volume.db.selectFrom('group_type_project').select('project_id').where('group_type_id', '=', type.id).where('project_id', '=', ctx.projectId).executeTakeFirst();
  return row !== undefined;
}

/** The group type `id` as `ctx` sees it; 404 `Group type <id> could not be found.` */
export async function getGroupType(volume: VolumeService, ctx: RequestContext | null, id: string): Promise<GroupType> {
  const [type] = await loadGroupTypes(volume, [id]);
  if (!type || !(await groupTypeVisible(volume, ctx, type))) throw groupTypeNotFound(id);
  return type;
}

/**
 * The group type numbered or named `identity` (an id first, then a name,
 * since names may look like ids); 404 as Cinder's `GroupTypeNotFound` or
 * `GroupTypeNotFoundByName`.
 */
export async function findGroupType(volume: VolumeService, ctx: RequestContext | null, identity: string): Promise<GroupType> {
  const [byId] = await loadGroupTypes(volume, [identity]);
  if (byId && (await groupTypeVisible(volume, ctx, byId))) return byId;
  const row = await volume.db.selectFrom('group_type').select('id').where('name', '=', identity).executeTakeFirst();
  const [byName] = row ? await loadGroupTypes(volume, [row.id]) : [];
  if (byName && (await groupTypeVisible(volume, ctx, byName))) return byName;
  if (/^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i.test(identity)) throw groupTypeNotFound(identity);
  throw notFound(`Group type with name ${identity} could not be found.`);
}
