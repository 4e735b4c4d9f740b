import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import type { RequestContext } from '../../core/auth/context.js';
import { bool, isoNow, newStandardColumns, owner, readBody, readCreate, STANDARD_ATTRS, standardView, str, type Attrs } from '../common.js';
import type { NetworkSchema, SecurityGroupRow, SecurityGroupRuleRow } from '../db/schema.js';
import { ensureDefaultSecurityGroup } from '../default-security-group.js';
import { conflict, NeutronError, notFound } from '../errors.js';
import { listResponse, parseListQuery, selectFields, showFields, STANDARD_ATTRIBUTES, type ListSpec } from '../lists.js';
import { allowed, authorize, isAdmin, type NetworkService } from '../network.js';
import { checkLimit, checkQuota } from '../quotas.js';
import { checkRule, ETHERTYPES, newRuleRow, readRules, ruleKey, ruleView } from '../security-group-rules.js';
import { deleteTags, loadTags } from '../tags.js';

// Neutron's security-group, stateful-security-group and standard-attr-*
// extensions: groups with their rules, a `default` group per project, and
// rules checked and compared as Neutron does (neutron/db/securitygroups_db.py;
// the rules themselves are read and checked in ../security-group-rules.ts).

type Db = Kysely<NetworkSchema>;

/** A group's name: a string, and never `default` (that one is made by the service). */
function groupName(value: unknown, name: string): string {
  const text = str(value, name, 255);
  if (text.toLowerCase() === 'default') throw conflict('SecurityGroupDefaultAlreadyExists', 'Default security group already exists.');
  return text;
}

const GROUP_ATTRS: Attrs = {
  ...STANDARD_ATTRS,
  name: { ...STANDARD_ATTRS.name, convert: groupName },
  stateful: { post: true, put: true, default: true, convert: bool },
};

const GROUP_LIST: ListSpec = {
  collection: 'security_groups',
  resource: 'security_group',
  attributes: [...STANDARD_ATTRIBUTES, 'stateful'],
};

const RULE_LIST: ListSpec = {
  collection: 'security_group_rules',
  resource: 'security_group_rule',
  attributes: [
    ...STANDARD_ATTRIBUTES.filter((a) => a !== 'name'),
    'security_group_id',
    'remote_group_id',
    'remote_address_group_id',
    'direction',
    'protocol',
    'port_range_min',
    'port_range_max',
    'ethertype',
    'remote_ip_prefix',
    'normalized_cidr',
  ],
};

// ---------------------------------------------------------------- views

async function rulesOf(db: Db, groupIds: string[]): Promise<Map<string, SecurityGroupRuleRow[]>> {
  const byGroup = new Map<string, SecurityGroupRuleRow[]>();
  for (let i = 0; i < groupIds.length; i += 500) {
    const rows = await db
      .selectFrom('security_group_rule')
      .selectAll()
      .where('security_group_id', 'in', groupIds.slice(i, i + 500))
      .orderBy('created_at')
      .orderBy('id')
      .execute();
    for (const row of rows) {
      const list = byGroup.get(row.security_group_id);
      if (list) list.push(row);
      else byGroup.set(row.security_group_id, [row]);
    }
  }
  return byGroup;
}

/** The views of groups, each with its rules and tags (two queries for any number of groups). */
async function groupViews(db: Db, rows: SecurityGroupRow[]): Promise<Record<string, unknown>[]> {
  const ids = rows.map((row) => row.id);
  const [rules, tags] = await Promise.all([rulesOf(db, ids), loadTags(db, 'security-groups', ids)]);
  return rows.map((row) => ({
    ...standardView(row, tags.get(row.id) ?? []),
    stateful: Boolean(Number(row.stateful)),
    security_group_rules: (rules.get(row.id) ?? []).map(ruleView),
  }));
}

async function groupView(db: Db, row: SecurityGroupRow): Promise<Record<string, unknown>> {
  const [view] = await groupViews(db, [row]);
  return view ?? {};
}

// ---------------------------------------------------------------- shared steps

function groupTarget(row: { project_id: string }): Record<string, unknown> {
  return { project_id: row.project_id, tenant_id: row.project_id };
}

function ruleTarget(row: { project_id: string }, groupProject: string): Record<string, unknown> {
  return { project_id: row.project_id, tenant_id: row.project_id, 'security_group:project_id': groupProject, 'security_group:tenant_id': groupProject };
}

/** A group the caller may see, else Neutron's 404 (never saying whether it exists). */
async function findGroup(net: NetworkService, ctx: RequestContext, id: string): Promise<SecurityGroupRow> {
  const row = await net.db.selectFrom('security_group').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row || !allowed(net, ctx, 'get_security_group', groupTarget(row))) throw notFound('security_group', id);
  return row;
}

/** A rule the caller may see (its own, or in a group of its project), with its group's project. */
async function findRule(net: NetworkService, ctx: RequestContext, id: string): Promise<{ row: SecurityGroupRuleRow; groupProject: string }> {
  const found = await net.db
    .selectFrom('security_group_rule')
    .innerJoin('security_group', 'security_group.id', 'security_group_rule.security_group_id')
    .selectAll('security_group_rule')
    .select('security_group.project_id as group_project')
    .where('security_group_rule.id', '=', id)
    .executeTakeFirst();
  if (!found) throw notFound('security_group_rule', id);
  const { group_project: groupProject, ...row } = found;
  if (!allowed(net, ctx, 'get_security_group_rule', ruleTarget(row, groupProject))) throw notFound('security_group_rule', id);
  return { row, groupProject };
}

/**
 * Creates the project's `default` group where Neutron would: for the project
 * a request is about, when that is the caller's own or the caller is an admin.
 */
async function ensureDefault(net: NetworkService, ctx: RequestContext, projectId: string | null): Promise<void> {
  if (!projectId || (projectId !== ctx.projectId && !isAdmin(net, ctx))) return;
  await ensureDefaultSecurityGroup(net.db, projectId);
}

/** The project a list is about: its `project_id`/`tenant_id` filter, else the caller's. */
function listedProject(req: FastifyRequest): string | null {
  const query = (req.query ?? {}) as Record<string, unknown>;
  const first = (v: unknown): string | undefined => (Array.isArray(v) ? (v[0] as string | undefined) : (v as string | undefined));
  return first(query.project_id) ?? first(query.tenant_id) ?? req.ctx.projectId;
}

/** Tells the data plane after a commit; a failure there is logged, never undoes the change. */
function groupsChanged(net: NetworkService, ids: Iterable<string>): void {
  const list = [...new Set(ids)];
  if (list.length === 0) return;
  net.driver.securityGroupsUpdated(list).catch((err: unknown) => net.log.error({ err, security_groups: list }, 'driver could not apply security group changes'));
}

/** True for a foreign key violation (a port took the group while it was being deleted). */
function isForeignKeyViolation(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as { code?: unknown; errno?: unknown };
  return e.code === 'SQLITE_CONSTRAINT_FOREIGNKEY' || e.code === '23503' || e.errno === 1451 || e.errno === 1452;
}

function groupInUse(id: string): NeutronError {
  return conflict('SecurityGroupInUse', `Security Group ${id} in use.`);
}

async function inUse(db: Db, id: string): Promise<boolean> {
  const row = await db.selectFrom('port_security_group').select('port_id').where('security_group_id', '=', id).limit(1).executeTakeFirst();
  return row !== undefined;
}

/** A rule change revises its group (Neutron's `revises_on_change`); the row lock also orders concurrent rule changes of one group. */
async function reviseGroup(db: Db, id: string, now: string): Promise<void> {
  await db
    .updateTable('security_group')
    .set((eb) => ({ revision_number: eb('revision_number', '+', 1), updated_at: now }))
    .where('id', '=', id)
    .execute();
}

// ---------------------------------------------------------------- groups

async function createGroups(net: NetworkService, req: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const ctx = req.ctx;
  const { items, bulk } = readCreate(req.body, 'security_group', 'security_groups', GROUP_ATTRS);
  const groups = items.map((item) => {
    const attributes = Object.keys(item);
    const projectId = owner(ctx, item);
    authorize(net, ctx, 'create_security_group', { project_id: projectId, tenant_id: projectId }, attributes);
    return { projectId, item };
  });
  const projects = [...new Set(groups.map((g) => g.projectId))];
  for (const projectId of projects) await ensureDefault(net, ctx, projectId);
  const now = isoNow();
  const rows: SecurityGroupRow[] = groups.map(({ projectId, item }) => ({ ...newStandardColumns(projectId, item, now), stateful: item.stateful === false ? 0 : 1 }));
  await net.db.transaction().execute(async (trx) => {
    for (const projectId of projects) {
      await checkQuota(trx, net.config.network, projectId, 'security_group', rows.filter((r) => r.project_id === projectId).length);
      await checkLimit(trx, net.config.network, projectId, 'security_group_rule', ETHERTYPES.length);
    }
    await trx.insertInto('security_group').values(rows).execute();
    const egress = rows.flatMap((row) => ETHERTYPES.map((ether) => newRuleRow(row.id, row.project_id, { direction: 'egress', ethertype: ether }, now)));
    await trx.insertInto('security_group_rule').values(egress).execute();
  });
  const views = await groupViews(net.db, rows);
  for (const view of views) net.notify('security_group.create.end', { security_group: view }, ctx);
  groupsChanged(net, rows.map((r) => r.id));
  reply.code(201);
  return bulk ? { security_groups: views } : { security_group: views[0] };
}

async function listGroups(net: NetworkService, req: FastifyRequest): Promise<unknown> {
  const ctx = req.ctx;
  const query = parseListQuery(req, GROUP_LIST);
  await ensureDefault(net, ctx, listedProject(req));
  let select = net.db.selectFrom('security_group').selectAll();
  if (!isAdmin(net, ctx)) select = select.where('project_id', '=', ctx.projectId ?? '');
  // A project filter (compute checks a server's groups this way) narrows in SQL too; listResponse applies every filter.
  const q = req.query as Record<string, unknown>;
  for (const key of ['project_id', 'tenant_id']) if (typeof q[key] === 'string' && q[key] !== '') select = select.where('project_id', '=', q[key] as string);
  const rows = (await select.execute()).filter((row) => allowed(net, ctx, 'get_security_group', groupTarget(row)));
  return listResponse(req, GROUP_LIST, await groupViews(net.db, rows), query);
}

async function showGroup(net: NetworkService, req: FastifyRequest<{ Params: { id: string } }>): Promise<unknown> {
  await ensureDefault(net, req.ctx, req.ctx.projectId);
  const row = await findGroup(net, req.ctx, req.params.id);
  return { security_group: selectFields(await groupView(net.db, row), showFields(req)) };
}

async function updateGroup(net: NetworkService, req: FastifyRequest<{ Params: { id: string } }>): Promise<unknown> {
  const ctx = req.ctx;
  const found = await findGroup(net, ctx, req.params.id);
  const changes = readBody(req.body, 'security_group', GROUP_ATTRS, 'update');
  authorize(net, ctx, 'update_security_group', groupTarget(found), Object.keys(changes));
  const row = await net.db.transaction().execute(async (trx) => {
    const current = await trx.selectFrom('security_group').selectAll().where('id', '=', found.id).executeTakeFirst();
    if (!current) throw notFound('security_group', found.id);
    if ('stateful' in changes && Boolean(changes.stateful) !== Boolean(Number(current.stateful)) && (await inUse(trx, current.id))) throw groupInUse(current.id);
    if (current.name === 'default' && 'name' in changes) throw conflict('SecurityGroupCannotUpdateDefault', 'Updating default security group not allowed.');
    const next: SecurityGroupRow = {
      ...current,
      name: (changes.name as string | undefined) ?? current.name,
      description: (changes.description as string | undefined) ?? current.description,
      stateful: 'stateful' in changes ? (changes.stateful ? 1 : 0) : current.stateful,
      updated_at: isoNow(),
      revision_number: Number(current.revision_number) + 1,
    };
    await trx
      .updateTable('security_group')
      .set({ name: next.name, description: next.description, stateful: next.stateful, updated_at: next.updated_at, revision_number: next.revision_number })
      .where('id', '=', current.id)
      .execute();
    return next;
  });
  const view = await groupView(net.db, row);
  net.notify('security_group.update.end', { security_group: view }, ctx);
  groupsChanged(net, [row.id]);
  return { security_group: view };
}

async function deleteGroup(net: NetworkService, req: FastifyRequest<{ Params: { id: string } }>): Promise<void> {
  const ctx = req.ctx;
  const row = await findGroup(net, ctx, req.params.id);
  authorize(net, ctx, 'delete_security_group', groupTarget(row));
  const view = await groupView(net.db, row);
  const now = isoNow();
  let referring: string[] = [];
  try {
    referring = await net.db.transaction().execute(async (trx) => {
      if (await inUse(trx, row.id)) throw groupInUse(row.id);
      if (row.name === 'default' && !isAdmin(net, ctx)) throw conflict('SecurityGroupCannotRemoveDefault', 'Insufficient rights for removing default security group.');
      // Rules of other groups that allow this one go with it (as the foreign key cascades in Neutron).
      const others = await trx
        .selectFrom('security_group_rule')
        .select('security_group_id')
        .distinct()
        .where('remote_group_id', '=', row.id)
        .where('security_group_id', '!=', row.id)
        .execute();
      await trx.deleteFrom('security_group_rule').where((eb) => eb.or([eb('security_group_id', '=', row.id), eb('remote_group_id', '=', row.id)])).execute();
      for (const other of others) await reviseGroup(trx, other.security_group_id, now);
      await trx.deleteFrom('default_security_group').where('security_group_id', '=', row.id).execute();
      const deleted = await trx.deleteFrom('security_group').where('id', '=', row.id).executeTakeFirst();
      if (Number(deleted.numDeletedRows) === 0) throw notFound('security_group', row.id);
      await deleteTags(trx, 'security-groups', row.id);
      return others.map((o) => o.security_group_id);
    });
  } catch (err) {
    if (isForeignKeyViolation(err)) throw groupInUse(row.id);
    throw err;
  }
  net.notify('security_group.delete.end', { security_group_id: row.id, security_group: view }, ctx);
  groupsChanged(net, [row.id, ...referring]);
}

// ---------------------------------------------------------------- rules

/** A group a rule may name (as its own group or as remote): any for an admin, else one of the rule's project; 404 otherwise. */
function checkRuleGroup(net: NetworkService, ctx: RequestContext, row: SecurityGroupRow | undefined, id: string, projectId: string): void {
  if (!row || (row.project_id !== projectId && !isAdmin(net, ctx))) throw notFound('security_group', id);
}

async function createRules(net: NetworkService, req: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const ctx = req.ctx;
  const { rules, bulk } = readRules(ctx, req.body);
  // Each group named (own or remote) is read once, however many rules name it.
  const groups = new Map<string, Promise<SecurityGroupRow | undefined>>();
  const group = (id: string): Promise<SecurityGroupRow | undefined> => {
    let row = groups.get(id);
    if (!row) groups.set(id, (row = net.db.selectFrom('security_group').selectAll().where('id', '=', id).executeTakeFirst()));
    return row;
  };
  for (const rule of rules) {
    const groupProject = (await group(rule.security_group_id))?.project_id ?? '';
    const attributes = Object.keys(rule).filter((k) => k !== 'project_id');
    authorize(net, ctx, 'create_security_group_rule', ruleTarget(rule, groupProject), attributes);
  }
  for (const rule of rules) {
    checkRule(rule);
    if (rule.remote_group_id) checkRuleGroup(net, ctx, await group(rule.remote_group_id), rule.remote_group_id, rule.project_id);
    if (rule.remote_address_group_id) throw new NeutronError(404, 'AddressGroupNotFound', `Address group ${rule.remote_address_group_id} could not be found.`);
    checkRuleGroup(net, ctx, await group(rule.security_group_id), rule.security_group_id, rule.project_id);
  }
  const seen = new Set<string>();
  for (const rule of rules) {
    const key = ruleKey(rule);
    if (seen.has(key)) throw conflict('DuplicateSecurityGroupRuleInPost', 'Duplicate Security Group Rule in POST.');
    seen.add(key);
  }
  const now = isoNow();
  const rows = rules.map((rule) => newRuleRow(rule.security_group_id, rule.project_id, { ...rule }, now));
  const groupId = rules[0]?.security_group_id ?? '';
  await net.db.transaction().execute(async (trx) => {
    // First, so that concurrent creates in one group queue here and each sees the others' rules.
    await reviseGroup(trx, groupId, now);
    for (const projectId of new Set(rows.map((r) => r.project_id))) {
      await checkQuota(trx, net.config.network, projectId, 'security_group_rule', rows.filter((r) => r.project_id === projectId).length);
    }
    const existing = await trx.selectFrom('security_group_rule').selectAll().where('security_group_id', '=', groupId).execute();
    for (const other of existing) {
      if (seen.has(ruleKey(other))) throw conflict('SecurityGroupRuleExists', `Security group rule already exists. Rule id is ${other.id}.`);
    }
    await trx.insertInto('security_group_rule').values(rows).execute();
  });
  const views = rows.map(ruleView);
  for (const view of views) net.notify('security_group_rule.create.end', { security_group_rule: view }, ctx);
  groupsChanged(net, [groupId]);
  reply.code(201);
  return bulk ? { security_group_rules: views } : { security_group_rule: views[0] };
}

async function listRules(net: NetworkService, req: FastifyRequest): Promise<unknown> {
  const ctx = req.ctx;
  const query = parseListQuery(req, RULE_LIST);
  await ensureDefault(net, ctx, listedProject(req));
  let select = net.db
    .selectFrom('security_group_rule')
    .innerJoin('security_group', 'security_group.id', 'security_group_rule.security_group_id')
    .selectAll('security_group_rule')
    .select('security_group.project_id as group_project');
  if (!isAdmin(net, ctx)) {
    const project = ctx.projectId ?? '';
    select = select.where((eb) => eb.or([eb('security_group_rule.project_id', '=', project), eb('security_group.project_id', '=', project)]));
  }
  const views: Record<string, unknown>[] = [];
  for (const { group_project: groupProject, ...row } of await select.execute()) {
    if (allowed(net, ctx, 'get_security_group_rule', ruleTarget(row, groupProject))) views.push(ruleView(row));
  }
  return listResponse(req, RULE_LIST, views, query);
}

async function deleteRule(net: NetworkService, req: FastifyRequest<{ Params: { id: string } }>): Promise<void> {
  const ctx = req.ctx;
  const { row, groupProject } = await findRule(net, ctx, req.params.id);
  authorize(net, ctx, 'delete_security_group_rule', ruleTarget(row, groupProject));
  await net.db.transaction().execute(async (trx) => {
    const deleted = await trx.deleteFrom('security_group_rule').where('id', '=', row.id).executeTakeFirst();
    if (Number(deleted.numDeletedRows) === 0) throw notFound('security_group_rule', row.id);
    await reviseGroup(trx, row.security_group_id, isoNow());
  });
  net.notify('security_group_rule.delete.end', { security_group_rule_id: row.id, security_group_rule: ruleView(row) }, ctx);
  groupsChanged(net, [row.security_group_id]);
}

/** Routes of `/v2.0/security-groups` and `/v2.0/security-group-rules`. */
export function registerSecurityGroups(app: FastifyInstance, net: NetworkService): void {
  app.post('/v2.0/security-groups', async (req, reply) => createGroups(net, req, reply));
  app.get('/v2.0/security-groups', async (req) => listGroups(net, req));
  app.get<{ Params: { id: string } }>('/v2.0/security-groups/:id', async (req) => showGroup(net, req));
  app.put<{ Params: { id: string } }>('/v2.0/security-groups/:id', async (req) => updateGroup(net, req));
  app.delete<{ Params: { id: string } }>('/v2.0/security-groups/:id', async (req, reply) => {
    await deleteGroup(net, req);
    reply.code(204);
  });

  app.post('/v2.0/security-group-rules', async (req, reply) => createRules(net, req, reply));
  app.get('/v2.0/security-group-rules', async (req) => listRules(net, req));
  app.get<{ Params: { id: string } }>('/v2.0/security-group-rules/:id', async (req) => {
    const { row } = await findRule(net, req.ctx, req.params.id);
    return { security_group_rule: selectFields(ruleView(row), showFields(req)) };
  });
  app.delete<{ Params: { id: string } }>('/v2.0/security-group-rules/:id', async (req, reply) => {
    await deleteRule(net, req);
    reply.code(204);
  });
}
