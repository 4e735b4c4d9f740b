import type { FastifyInstance, FastifyRequest } from 'fastify';
import { atLeast, authorize, contextOf, isAdmin, type ComputeService } from '../compute.js';
import { badRequest, notFound } from '../errors.js';
import { createGroup, deleteGroup, GROUP_POLICIES, groupNotFoundMessage, listGroups, loadGroupFor, membersOf, type GroupPolicy, type GroupRules, type ServerGroup } from '../server-groups.js';
import { bodyOf, checkObject, invalidField, lastValue, nonNegativeInteger, notOfType, pageLimit, pyRepr, queryOf, rejectUnknownQuery } from './nova-input.js';

/**
 * `/os-server-groups`: list (the caller's project; every project with
 * `all_projects` for admins; `limit`/`offset`), show, create, delete.
 * Before 2.64 a group shows `policies` (one) and an empty `metadata`; from
 * 2.64 `policy` and `rules`. `project_id`/`user_id` from 2.13.
 */

/** A group as the request's microversion shows it. */
export function serverGroupView(req: FastifyRequest, group: ServerGroup, members: string[]): Record<string, unknown> {
  const view: Record<string, unknown> = { id: group.uuid, name: group.name };
  if (atLeast(req, '2.64')) {
    view.policy = group.policy;
    view.rules = group.rules;
  } else {
    view.policies = [group.policy];
    view.metadata = {};
  }
  view.members = members;
  if (atLeast(req, '2.13')) {
    view.project_id = group.project_id;
    view.user_id = group.user_id;
  }
  return view;
}

/** Printable characters, not starting or ending with white space (Nova's `name` format). */
const VALID_NAME = /^(?![\p{C}\p{Z}])[^\p{C}\p{Zl}\p{Zp}]*(?<![\p{C}\p{Z}])$/u;

function checkName(value: unknown): string {
  if (typeof value !== 'string') throw invalidField('name', value, notOfType(value, 'string'));
  if (value.length < 1) throw invalidField('name', value, "'' is too short");
  if (value.length > 255) throw invalidField('name', value, `${pyRepr(value, true)} is too long`);
  if (!VALID_NAME.test(value)) throw badRequest("An invalid 'name' value was provided. The name must be: printable characters. Can not start or end with whitespace.");
  return value;
}

function checkRules(value: unknown): GroupRules {
  const rules = checkObject(value, 'rules', [], ['max_server_per_host']);
  const max = rules.max_server_per_host;
  if (max === undefined) return {};
  const name = 'max_server_per_host';
  if (typeof max === 'string') {
    if (max === '') throw invalidField(name, max, "'' is too short");
    if (!/^[0-9]*$/.test(max)) throw invalidField(name, max, `'${max}' does not match '^[0-9]*$'`);
  } else if (typeof max !== 'number' || !Number.isInteger(max)) {
    throw invalidField(name, max, `${pyRepr(max, true)} is not of type 'integer', 'string'`);
  }
  if (Number(max) < 1) throw invalidField(name, max, `${pyRepr(max, true)} is less than the minimum of 1`);
  return { max_server_per_host: Number(max) };
}

/** Reads a create body as its microversion's schema says (2.1, 2.15, 2.64). */
function readCreate(req: FastifyRequest): { name: string; policy: GroupPolicy; rules: GroupRules } {
  const body = checkObject(bodyOf(req), null, ['server_group'], ['server_group']);
  const v264 = atLeast(req, '2.64');
  const allowedPolicies: readonly string[] = atLeast(req, '2.15') ? GROUP_POLICIES : GROUP_POLICIES.slice(0, 2);
  const enumText = `[${allowedPolicies.map((p) => `'${p}'`).join(', ')}]`;
  const group = checkObject(body.server_group, 'server_group', ['name', v264 ? 'policy' : 'policies'], v264 ? ['name', 'policy', 'rules'] : ['name', 'policies']);
  const name = checkName(group.name);
  if (v264) {
    const policy = group.policy;
    if (typeof policy !== 'string') throw invalidField('policy', policy, notOfType(policy, 'string'));
    if (!allowedPolicies.includes(policy)) throw invalidField('policy', policy, `'${policy}' is not one of ${enumText}`);
    const rules = group.rules === undefined ? {} : checkRules(group.rules);
    if (policy !== 'anti-affinity' && Object.keys(rules).length > 0) throw badRequest('Only anti-affinity policy supports rules.');
    return { name, policy: policy as GroupPolicy, rules };
  }
  const policies = group.policies;
  if (!Array.isArray(policies)) throw invalidField('policies', policies, notOfType(policies, 'array'));
  const [first, ...rest] = policies as unknown[];
  if (first === undefined) throw invalidField('policies', policies, '[] is too short');
  if (typeof first !== 'string' || !allowedPolicies.includes(first)) throw invalidField('0', first, `${pyRepr(first, true)} is not one of ${enumText}`);
  if (rest.length > 0) throw invalidField('policies', policies, `Additional items are not allowed (${rest.map((p) => pyRepr(p, true)).join(', ')} ${rest.length === 1 ? 'was' : 'were'} unexpected)`);
  return { name, policy: first as GroupPolicy, rules: {} };
}

/** Registers the `/os-server-groups` routes. */
export function registerServerGroups(app: FastifyInstance, compute: ComputeService): void {
  app.get('/v2.1/os-server-groups', async (req) => {
    const ctx = contextOf(req);
    const query = queryOf(req);
    if (atLeast(req, '2.75')) rejectUnknownQuery(query, ['all_projects', 'limit', 'offset']);
    for (const name of ['limit', 'offset']) for (const value of query[name] ?? []) nonNegativeInteger(name, value);
    authorize(compute, ctx, 'os-server-groups:index', { project_id: ctx.projectId });
    let projectId: string | null = ctx.projectId ?? '';
    // Like Nova, a non-admin's all_projects is ignored rather than refused.
    if ('all_projects' in query && isAdmin(compute, ctx)) {
      authorize(compute, ctx, 'os-server-groups:index:all_projects', { project_id: ctx.projectId });
      projectId = null;
    }
    const limitText = lastValue(query, 'limit');
    const offsetText = lastValue(query, 'offset');
    const asked = limitText === undefined ? undefined : Number(limitText);
    const groups = await listGroups(compute.db, {
      projectId,
      offset: offsetText === undefined ? 0 : Number(offsetText),
      limit: pageLimit(compute, asked === 0 ? undefined : asked),
    });
    const members = await membersOf(compute.db, groups.map((g) => g.uuid));
    return { server_groups: groups.map((g) => serverGroupView(req, g, members.get(g.uuid) ?? [])) };
  });

  app.get<{ Params: { id: string } }>('/v2.1/os-server-groups/:id', async (req) => {
    const group = await loadGroupFor(compute, contextOf(req), req.params.id, 'os-server-groups:show');
    const members = await membersOf(compute.db, [group.uuid]);
    return { server_group: serverGroupView(req, group, members.get(group.uuid) ?? []) };
  });

  app.post('/v2.1/os-server-groups', async (req) => {
    const ctx = contextOf(req);
    const values = readCreate(req);
    authorize(compute, ctx, 'os-server-groups:create', { project_id: ctx.projectId });
    const group = await createGroup(compute, ctx, values);
    return { server_group: serverGroupView(req, group, []) };
  });

  app.delete<{ Params: { id: string } }>('/v2.1/os-server-groups/:id', async (req, reply) => {
    const group = await loadGroupFor(compute, contextOf(req), req.params.id, 'os-server-groups:delete');
    if (!(await deleteGroup(compute.db, group.uuid))) throw notFound(groupNotFoundMessage(group.uuid));
    return reply.code(204).send();
  });
}
