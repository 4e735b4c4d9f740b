import type { Kysely } from 'kysely';
import type { IdentitySchema, ProjectRow } from './db/schema.js';
import { userGroupIds } from './roles.js';

/**
 * The enabled projects a user may scope to: where the user or one of the
 * user's groups has a role, directly, or inherited from a domain (every
 * project in it) or from a parent project (every project below it).
 */
export async function accessibleProjects(db: Kysely<IdentitySchema>, userId: string, options: { includeDisabled?: boolean } = {}): Promise<ProjectRow[]> {
  const actors = [userId, ...(await userGroupIds(db, userId))];
  const rows = await db.selectFrom('assignment').select(['type', 'target_id', 'inherited']).where('actor_id', 'in', actors).execute();
  const direct = new Set<string>();
  const inheritedDomains = new Set<string>();
  const inheritedParents = new Set<string>();
  for (const r of rows) {
    if (r.type === 'UserProject' || r.type === 'GroupProject') (r.inherited ? inheritedParents : direct).add(r.target_id);
    else if ((r.type === 'UserDomain' || r.type === 'GroupDomain') && r.inherited) inheritedDomains.add(r.target_id);
  }
  if (direct.size === 0 && inheritedDomains.size === 0 && inheritedParents.size === 0) return [];
  const all = await db.selectFrom('project').selectAll().where('is_domain', '=', 0).execute();
  const byParent = new Map<string, ProjectRow[]>();
  for (const p of all) if (p.parent_id) byParent.set(p.parent_id, [...(byParent.get(p.parent_id) ?? []), p]);
  const ids = new Set(direct);
  for (const p of all) if (inheritedDomains.has(p.domain_id)) ids.add(p.id);
  const stack = [...inheritedParents].flatMap((id) => byParent.get(id) ?? []);
  while (stack.length > 0) {
    const p = stack.pop();
    if (!p || ids.has(p.id)) continue;
    ids.add(p.id);
    stack.push(...(byParent.get(p.id) ?? []));
  }
  return all.filter((p) => ids.has(p.id) && (options.includeDisabled || p.enabled === 1));
}

/** The enabled domains where the user or one of the user's groups has a (non-inherited) role. */
export async function accessibleDomains(db: Kysely<IdentitySchema>, userId: string): Promise<ProjectRow[]> {
  const actors = [userId, ...(await userGroupIds(db, userId))];
  const rows = await db
    .selectFrom('assignment')
    .select('target_id')
    .where('actor_id', 'in', actors)
    .where('type', 'in', ['UserDomain', 'GroupDomain'])
    .where('inherited', '=', 0)
    .execute();
  if (rows.length === 0) return [];
  return db
    .selectFrom('project')
    .selectAll()
    .where('is_domain', '=', 1)
    .where('enabled', '=', 1)
    .where(
      'id',
      'in',
      rows.map((r) => r.target_id),
    )
    .execute();
}
