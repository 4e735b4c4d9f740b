import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { BadRequest, Forbidden, NotFound } from '../../core/errors.js';
import { GLOBAL_ROLE, type AssignmentRow, type RoleRow } from '../db/schema.js';
import { authorize, collectionLinks, type Identity } from '../identity.js';
import { revoke } from '../revocation.js';
import { roleView } from '../views.js';
import { listRoleAssignments } from './assignments.js';
import { getDomain, getGroup, getProject, getRole, getUser } from './lookup.js';

type TargetKind = 'project' | 'domain' | 'system';
type ActorKind = 'user' | 'group';

interface GrantSpec {
  target: TargetKind;
  actor: ActorKind;
  inherited: boolean;
}

const TYPE: Record<TargetKind, Record<ActorKind, string>> = {
  project: { user: 'UserProject', group: 'GroupProject' },
  domain: { user: 'UserDomain', group: 'GroupDomain' },
  system: { user: 'UserSystem', group: 'GroupSystem' },
};

function policyNames(spec: GrantSpec): { check: string; list: string; create: string; revoke: string } {
  if (spec.target === 'system') {
    const a = spec.actor;
    return { check: `identity:check_system_grant_for_${a}`, list: `identity:list_system_grants_for_${a}`, create: `identity:create_system_grant_for_${a}`, revoke: `identity:revoke_system_grant_for_${a}` };
  }
  return { check: 'identity:check_grant', list: 'identity:list_grants', create: 'identity:create_grant', revoke: 'identity:revoke_grant' };
}

/** Resolves the target and actor of a grant URL (404 for unknown ids); returns the target's domain. */
async function resolve(identity: Identity, spec: GrantSpec, targetId: string, actorId: string): Promise<{ targetId: string; domainId: string | null }> {
  let domainId: string | null = null;
  if (spec.target === 'project') domainId = (await getProject(identity, targetId)).domain_id;
  else if (spec.target === 'domain') domainId = (await getDomain(identity, targetId)).id;
  if (spec.actor === 'user') await getUser(identity, actorId);
  else await getGroup(identity, actorId);
  return { targetId: spec.target === 'system' ? 'system' : targetId, domainId };
}

/** The URL prefix of a grant, Keystone's layout (OS-INHERIT for inherited ones). */
function prefix(spec: GrantSpec): string {
  const actor = spec.actor === 'user' ? 'users/:actorId' : 'groups/:actorId';
  if (spec.target === 'system') return `/v3/system/${actor}/roles`;
  const target = spec.target === 'project' ? 'projects/:targetId' : 'domains/:targetId';
  return spec.inherited ? `/v3/OS-INHERIT/${target}/${actor}/roles` : `/v3/${target}/${actor}/roles`;
}

type Params = { targetId?: string; actorId: string; roleId?: string };

function registerGrantRoutes(app: FastifyInstance, identity: Identity, spec: GrantSpec): void {
  const db = identity.db;
  const names = policyNames(spec);
  const base = prefix(spec);
  const suffix = spec.inherited ? '/inherited_to_projects' : '';
  const row = (targetId: string, actorId: string, roleId: string): AssignmentRow => ({ type: TYPE[spec.target][spec.actor], actor_id: actorId, target_id: targetId, role_id: roleId, inherited: spec.inherited ? 1 : 0 });
  const find = (r: AssignmentRow) =>
    db.selectFrom('assignment').select('role_id').where('type', '=', r.type).where('actor_id', '=', r.actor_id).where('target_id', '=', r.target_id).where('role_id', '=', r.role_id).where('inherited', '=', r.inherited).executeTakeFirst();

  const check = async (req: FastifyRequest<{ Params: Params }>, reply: FastifyReply): Promise<unknown> => {
    authorize(identity, req, names.check);
    const { targetId } = await resolve(identity, spec, req.params.targetId ?? 'system', req.params.actorId);
    const role = await getRole(identity, req.params.roleId ?? '');
    if (!(await find(row(targetId, req.params.actorId, role.id)))) throw new NotFound(`Could not find role assignment with role: ${role.id}, ${spec.actor}: ${req.params.actorId}, ${spec.target}: ${targetId}.`);
    return reply.code(204).send();
  };
  app.head<{ Params: Params }>(`${base}/:roleId${suffix}`, check);
  app.get<{ Params: Params }>(`${base}/:roleId${suffix}`, { exposeHeadRoute: false }, check);

  app.put<{ Params: Params }>(`${base}/:roleId${suffix}`, async (req, reply) => {
    authorize(identity, req, names.create);
    const { targetId, domainId } = await resolve(identity, spec, req.params.targetId ?? 'system', req.params.actorId);
    const role = await getRole(identity, req.params.roleId ?? '');
    checkDomainRole(role, domainId);
    const r = row(targetId, req.params.actorId, role.id);
    if (!(await find(r))) await db.insertInto('assignment').values(r).execute();
    identity.changed();
    return reply.code(204).send();
  });

  app.delete<{ Params: Params }>(`${base}/:roleId${suffix}`, async (req, reply) => {
    authorize(identity, req, names.revoke);
    const { targetId } = await resolve(identity, spec, req.params.targetId ?? 'system', req.params.actorId);
    const role = await getRole(identity, req.params.roleId ?? '');
    const r = row(targetId, req.params.actorId, role.id);
    if (!(await find(r))) throw new NotFound(`Could not find role assignment with role: ${role.id}, ${spec.actor}: ${req.params.actorId}, ${spec.target}: ${targetId}.`);
    await db
      .deleteFrom('assignment')
      .where('type', '=', r.type)
      .where('actor_id', '=', r.actor_id)
      .where('target_id', '=', r.target_id)
      .where('role_id', '=', r.role_id)
      .where('inherited', '=', r.inherited)
      .execute();
    // Tokens made with this role on this project stop at once (Keystone's
    // revocation event); elsewhere validation recomputes the roles.
    if (spec.target === 'project' && !spec.inherited) {
      const users = spec.actor === 'user' ? [req.params.actorId] : (await db.selectFrom('user_group_membership').select('user_id').where('group_id', '=', req.params.actorId).execute()).map((m) => m.user_id);
      for (const userId of users) await revoke(db, { user_id: userId, project_id: targetId });
    }
    identity.changed();
    return reply.code(204).send();
  });

  app.get<{ Params: Params }>(`${base}${suffix}`, async (req) => {
    authorize(identity, req, names.list);
    const { targetId } = await resolve(identity, spec, req.params.targetId ?? 'system', req.params.actorId);
    const rows = await db
      .selectFrom('assignment')
      .innerJoin('role', 'role.id', 'assignment.role_id')
      .selectAll('role')
      .where('assignment.type', '=', TYPE[spec.target][spec.actor])
      .where('assignment.actor_id', '=', req.params.actorId)
      .where('assignment.target_id', '=', targetId)
      .where('assignment.inherited', '=', spec.inherited ? 1 : 0)
      .orderBy('role.name')
      .execute();
    return { roles: rows.map((r) => roleView(identity, r)), links: collectionLinks(identity, req) };
  });
}

/** A domain-specific role can only be granted inside its own domain. */
function checkDomainRole(role: RoleRow, targetDomainId: string | null): void {
  if (role.domain_id === GLOBAL_ROLE) return;
  if (targetDomainId === null || role.domain_id !== targetDomainId) {
    throw new Forbidden(`The domain-specific role ${role.id} can only be granted within its domain ${role.domain_id}.`);
  }
}

/** Role grants on projects, domains and the system, OS-INHERIT grants, and `GET /v3/role_assignments`. */
export function registerGrants(app: FastifyInstance, identity: Identity): void {
  for (const target of ['project', 'domain', 'system'] as const) {
    for (const actor of ['user', 'group'] as const) {
      registerGrantRoutes(app, identity, { target, actor, inherited: false });
      if (target !== 'system') registerGrantRoutes(app, identity, { target, actor, inherited: true });
    }
  }
  app.get<{ Querystring: Record<string, string | undefined> }>('/v3/role_assignments', async (req) => {
    const q = req.query;
    const domainId = q['scope.domain.id'];
    authorize(identity, req, 'identity:list_role_assignments', domainId ? { target: { domain_id: domainId } } : {});
    if (q.effective !== undefined && q['group.id'] !== undefined) throw new BadRequest('Combining effective and group filter will always result in an empty list.');
    if (q['scope.project.id'] !== undefined && q['scope.domain.id'] !== undefined) throw new BadRequest('Specify a domain or project, not both.');
    return { role_assignments: await listRoleAssignments(identity, q), links: collectionLinks(identity, req) };
  });
}
