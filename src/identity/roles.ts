import type { Kysely } from 'kysely';
import { GLOBAL_ROLE, type IdentitySchema, type RoleRow } from './db/schema.js';

type Db = Kysely<IdentitySchema>;

/** Where a set of roles applies. */
export type Target = { type: 'project'; id: string } | { type: 'domain'; id: string } | { type: 'system' };

/** The ids of the groups a user belongs to. */
export async function userGroupIds(db: Db, userId: string): Promise<string[]> {
  const rows = await db.selectFrom('user_group_membership').select('group_id').where('user_id', '=', userId).execute();
  return rows.map((r) => r.group_id);
}

/** A project's ancestors, nearest first (not including the project itself). */
export async function projectAncestors(db: Db, projectId: string): Promise<{ id: string; domain_id: string }[]> {
  const out: { id: string; domain_id: string }[] = [];
  let current = await db.selectFrom('project').select(['parent_id', 'domain_id']).where('id', '=', projectId).executeTakeFirst();
  const seen = new Set([projectId]);
  while (current?.parent_id && !seen.has(current.parent_id)) {
    seen.add(current.parent_id);
    const parent = await db.selectFrom('project').select(['id', 'parent_id', 'domain_id', 'is_domain']).where('id', '=', current.parent_id).executeTakeFirst();
    if (!parent || parent.is_domain === 1) break;
    out.push({ id: parent.id, domain_id: parent.domain_id });
    current = parent;
  }
  return out;
}

/**
 * The role ids granted directly to a user on a target: to the user or to
 * one of the user's groups, plus what is inherited (`OS-INHERIT`) from the
 * project's ancestors and domain. Implied roles are NOT expanded here.
 */
export async function directRoleIds(db: Db, userId: string, target: Target): Promise<Set<string>> {
  const actors = [userId, ...(await userGroupIds(db, userId))];
  const ids = new Set<string>();
  const add = (rows: { role_id: string }[]): void => rows.forEach((r) => ids.add(r.role_id));
  switch (target.type) {
    case 'system':
      add(await db.selectFrom('assignment').select('role_id').where('type', 'in', ['UserSystem', 'GroupSystem']).where('actor_id', 'in', actors).execute());
      break;
    case 'domain':
      add(
        await db
          .selectFrom('assignment')
          .select('role_id')
          .where('type', 'in', ['UserDomain', 'GroupDomain'])
          .where('actor_id', 'in', actors)
          .where('target_id', '=', target.id)
          .where('inherited', '=', 0)
          .execute(),
      );
      break;
    case 'project': {
      const project = await db.selectFrom('project').select(['domain_id']).where('id', '=', target.id).executeTakeFirst();
      if (!project) return ids;
      add(
        await db
          .selectFrom('assignment')
          .select('role_id')
          .where('type', 'in', ['UserProject', 'GroupProject'])
          .where('actor_id', 'in', actors)
          .where('target_id', '=', target.id)
          .where('inherited', '=', 0)
          .execute(),
      );
      const ancestors = await projectAncestors(db, target.id);
      const inheritedTargets = [project.domain_id, ...ancestors.map((a) => a.id)];
      add(
        await db
          .selectFrom('assignment')
          .select('role_id')
          .where('actor_id', 'in', actors)
          .where('target_id', 'in', inheritedTargets)
          .where('inherited', '=', 1)
          .where('type', 'in', ['UserProject', 'GroupProject', 'UserDomain', 'GroupDomain'])
          .execute(),
      );
      break;
    }
  }
  return ids;
}

/** The implication graph: prior role id -> implied role ids. */
export async function impliedRoleMap(db: Db): Promise<Map<string, string[]>> {
  const rows = await db.selectFrom('implied_role').selectAll().execute();
  const map = new Map<string, string[]>();
  for (const r of rows) map.set(r.prior_role_id, [...(map.get(r.prior_role_id) ?? []), r.implied_role_id]);
  return map;
}

/** Expands role ids with everything they imply, transitively. */
export function expandImplied(ids: Iterable<string>, implied: Map<string, string[]>): Set<string> {
  const out = new Set<string>();
  const stack = [...ids];
  while (stack.length > 0) {
    const id = stack.pop();
    if (id === undefined || out.has(id)) continue;
    out.add(id);
    stack.push(...(implied.get(id) ?? []));
  }
  return out;
}

/**
 * The roles a user holds on a target, as they go into a token: direct,
 * group and inherited grants, expanded by implication; domain-specific roles
 * are left out (they only carry their implications, as in Keystone).
 */
export async function effectiveRoles(db: Db, userId: string, target: Target): Promise<RoleRow[]> {
  const direct = await directRoleIds(db, userId, target);
  if (direct.size === 0) return [];
  const all = expandImplied(direct, await impliedRoleMap(db));
  const rows = await db.selectFrom('role').selectAll().where('id', 'in', [...all]).execute();
  return rows.filter((r) => r.domain_id === GLOBAL_ROLE).sort((a, b) => a.name.localeCompare(b.name));
}
