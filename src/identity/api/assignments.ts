import { GLOBAL_ROLE, type AssignmentRow, type ProjectRow, type RoleRow } from '../db/schema.js';
import type { Identity } from '../identity.js';
import { impliedRoleMap } from '../roles.js';

/** One assignment as the listing works with it before formatting. */
interface Entry {
  roleId: string;
  userId?: string;
  groupId?: string;
  scope: { project: string } | { domain: string } | { system: true };
  inherited: boolean;
  /** The assignment it comes from (the URL of the grant). */
  assignment: string;
  membership?: string;
  priorRole?: string;
}

const isTrue = (v: string | undefined): boolean => v !== undefined && !['0', 'false', 'False', 'no'].includes(v);

/**
 * `GET /v3/role_assignments`: every assignment, or with `effective` what
 * users really hold (group grants expanded to members, inherited grants to the
 * projects below, implied roles added, domain-specific roles dropped), with
 * the filters `user.id`, `group.id`, `role.id`, `scope.project.id`,
 * `scope.domain.id`, `scope.system`, `scope.OS-INHERIT:inherited_to`,
 * `include_subtree` and `include_names`.
 */
export async function listRoleAssignments(identity: Identity, q: Record<string, string | undefined>): Promise<Record<string, unknown>[]> {
  const db = identity.db;
  const base = `${identity.publicUrl}/v3`;
  const rows = await db.selectFrom('assignment').selectAll().execute();
  const projects = await db.selectFrom('project').selectAll().execute();
  const byParent = new Map<string, ProjectRow[]>();
  for (const p of projects) if (p.parent_id && p.is_domain === 0) byParent.set(p.parent_id, [...(byParent.get(p.parent_id) ?? []), p]);
  const below = (id: string): string[] => {
    const out: string[] = [];
    const stack = [...(byParent.get(id) ?? [])];
    while (stack.length) {
      const p = stack.pop();
      if (!p) break;
      out.push(p.id);
      stack.push(...(byParent.get(p.id) ?? []));
    }
    return out;
  };

  let entries = rows.map((r) => toEntry(r, base));
  if (isTrue(q.effective)) {
    const members = await db.selectFrom('user_group_membership').selectAll().execute();
    const expanded: Entry[] = [];
    for (const e of entries) {
      const targets: Entry[] = [];
      if (e.inherited) {
        const ids = 'domain' in e.scope ? projects.filter((p) => p.is_domain === 0 && p.domain_id === (e.scope as { domain: string }).domain).map((p) => p.id) : below((e.scope as { project: string }).project);
        for (const pid of ids) targets.push({ ...e, scope: { project: pid }, inherited: false });
      } else targets.push(e);
      for (const t of targets) {
        if (t.groupId) {
          const groupId = t.groupId;
          for (const m of members.filter((x) => x.group_id === groupId)) {
            expanded.push({ ...t, groupId: undefined, userId: m.user_id, membership: `${base}/groups/${groupId}/users/${m.user_id}` });
          }
        } else expanded.push(t);
      }
    }
    const implied = await impliedRoleMap(db);
    const roles = new Map((await db.selectFrom('role').selectAll().execute()).map((r) => [r.id, r]));
    entries = [];
    for (const e of expanded) {
      const seen = new Set<string>();
      const walk = (roleId: string, prior: string | undefined): void => {
        if (seen.has(roleId)) return;
        seen.add(roleId);
        const role = roles.get(roleId);
        if (role && role.domain_id === GLOBAL_ROLE) entries.push({ ...e, roleId, ...(prior ? { priorRole: `${base}/roles/${prior}` } : {}) });
        for (const next of implied.get(roleId) ?? []) walk(next, roleId);
      };
      walk(e.roleId, undefined);
    }
  }

  const projectFilter = q['scope.project.id'];
  const projectScope = projectFilter === undefined ? null : new Set([projectFilter, ...(isTrue(q.include_subtree) ? below(projectFilter) : [])]);
  entries = entries.filter(
    (e) =>
      (q['user.id'] === undefined || e.userId === q['user.id']) &&
      (q['group.id'] === undefined || e.groupId === q['group.id']) &&
      (q['role.id'] === undefined || e.roleId === q['role.id']) &&
      (projectScope === null || ('project' in e.scope && projectScope.has(e.scope.project))) &&
      (q['scope.domain.id'] === undefined || ('domain' in e.scope && e.scope.domain === q['scope.domain.id'])) &&
      (q['scope.system'] === undefined || 'system' in e.scope) &&
      (q['scope.OS-INHERIT:inherited_to'] === undefined || e.inherited),
  );
  return format(identity, entries, isTrue(q.include_names), projects);
}

function toEntry(r: AssignmentRow, base: string): Entry {
  const actor = r.type.startsWith('User') ? { userId: r.actor_id } : { groupId: r.actor_id };
  const actorPath = r.type.startsWith('User') ? `users/${r.actor_id}` : `groups/${r.actor_id}`;
  const inherited = r.inherited === 1;
  if (r.type.endsWith('System')) return { roleId: r.role_id, ...actor, scope: { system: true }, inherited, assignment: `${base}/system/${actorPath}/roles/${r.role_id}` };
  const kind = r.type.endsWith('Project') ? 'projects' : 'domains';
  const scope = kind === 'projects' ? { project: r.target_id } : { domain: r.target_id };
  const assignment = inherited ? `${base}/OS-INHERIT/${kind}/${r.target_id}/${actorPath}/roles/${r.role_id}/inherited_to_projects` : `${base}/${kind}/${r.target_id}/${actorPath}/roles/${r.role_id}`;
  return { roleId: r.role_id, ...actor, scope, inherited, assignment };
}

async function format(identity: Identity, entries: Entry[], names: boolean, projects: ProjectRow[]): Promise<Record<string, unknown>[]> {
  const db = identity.db;
  const projectMap = new Map(projects.map((p) => [p.id, p]));
  const domainRef = (id: string): Record<string, unknown> => ({ id, name: projectMap.get(id)?.name ?? '' });
  let roles = new Map<string, RoleRow>();
  let users = new Map<string, { name: string; domain_id: string }>();
  let groups = new Map<string, { name: string; domain_id: string }>();
  if (names) {
    roles = new Map((await db.selectFrom('role').selectAll().execute()).map((r) => [r.id, r]));
    users = new Map((await db.selectFrom('user').select(['id', 'name', 'domain_id']).execute()).map((u) => [u.id, u]));
    groups = new Map((await db.selectFrom('group').select(['id', 'name', 'domain_id']).execute()).map((g) => [g.id, g]));
  }
  return entries.map((e) => {
    const out: Record<string, unknown> = {};
    const role = roles.get(e.roleId);
    out.role = names && role ? { id: role.id, name: role.name, ...(role.domain_id !== GLOBAL_ROLE ? { domain: domainRef(role.domain_id) } : {}) } : { id: e.roleId };
    if (e.userId) {
      const u = users.get(e.userId);
      out.user = names && u ? { id: e.userId, name: u.name, domain: domainRef(u.domain_id) } : { id: e.userId };
    }
    if (e.groupId) {
      const g = groups.get(e.groupId);
      out.group = names && g ? { id: e.groupId, name: g.name, domain: domainRef(g.domain_id) } : { id: e.groupId };
    }
    let scope: Record<string, unknown>;
    if ('system' in e.scope) scope = { system: { all: true } };
    else if ('project' in e.scope) {
      const p = projectMap.get(e.scope.project);
      scope = { project: names && p ? { id: p.id, name: p.name, domain: domainRef(p.domain_id) } : { id: e.scope.project } };
    } else {
      scope = { domain: names ? domainRef(e.scope.domain) : { id: e.scope.domain } };
    }
    if (e.inherited) scope['OS-INHERIT:inherited_to'] = 'projects';
    out.scope = scope;
    const links: Record<string, string> = { assignment: e.assignment };
    if (e.membership) links.membership = e.membership;
    if (e.priorRole) links.prior_role = e.priorRole;
    out.links = links;
    return out;
  });
}
