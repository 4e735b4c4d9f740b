import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import type { RequestContext } from '../../core/auth/context.js';
import { bool, isoNow, neutronTime, newUuid, owner, readBody, readCreate, standardView, str, type Attrs } from '../common.js';
import type { NetworkSchema, SecurityGroupRow, SecurityGroupRuleRow } from '../db/schema.js';
import { ensureDefaultSecurityGroup } from '../default-security-group.js';
import { badRequest, conflict, invalidInput, NeutronError, notFound } from '../errors.js';
import { formatCidr, formatIp, parseCidr, parseIp } from '../ipam/addresses.js';
import { listResponse, parseListQuery, selectFields, showFields, type ListSpec } from '../lists.js';
import { allowed, authorize, isAdmin, type NetworkService } from '../network.js';
import { checkLimit, checkQuota } from '../quotas.js';
import { deleteTags, loadTags } from '../tags.js';

// Neutron's security-group, stateful-security-group and standard-attr-*
// extensions: groups with their rules, a `default` group per project, and
// rules checked and compared as Neutron does (neutron/db/securitygroups_db.py).

type Db = Kysely<NetworkSchema>;

/** IP protocol names Neutron accepts in rules, with their numbers, in Neutron's order. */
const PROTOCOLS: Record<string, number> = {
  ah: 51,
  dccp: 33,
  egp: 8,
  esp: 50,
  gre: 47,
  hopopt: 0,
  icmp: 1,
  igmp: 2,
  ip: 0,
  ipip: 4,
  'ipv6-encap': 41,
  'ipv6-frag': 44,
  'ipv6-icmp': 58,
  icmpv6: 58,
  'ipv6-nonxt': 59,
  'ipv6-opts': 60,
  'ipv6-route': 43,
  ospf: 89,
  pgm: 113,
  rsvp: 46,
  sctp: 132,
  tcp: 6,
  udp: 17,
  udplite: 136,
  vrrp: 112,
};

/** Number to name; `icmpv6` is only an alias, and for 0 the later name (`ip`) wins, as in neutron-lib. */
const PROTOCOL_NAMES = new Map(Object.entries(PROTOCOLS).filter(([name]) => name !== 'icmpv6').map(([name, n]) => [String(n), name]));

/** Protocols whose rules may name ports. */
const PORT_PROTOCOLS = new Set([33, 132, 6, 17, 136]);
/** Protocols only IPv6 carries: a rule with one of these cannot be IPv4. */
const IPV6_ONLY = new Set(['ipv6-encap', 'ipv6-frag', 'ipv6-icmp', 'icmpv6', 'ipv6-nonxt', 'ipv6-opts', 'ipv6-route', '41', '44', '58', '59', '60', '43']);
const ETHERTYPES = ['IPv4', 'IPv6'] as const;

const SUPPORTED_PROTOCOLS = `[None, ${Object.keys(PROTOCOLS)
  .map((p) => `'${p}'`)
  .join(', ')}]`;

function refuse(type: string, message: string): never {
  throw badRequest(message, type);
}

/** A group's name: a string, and never `default` (that one is made by the service). */
function groupName(value: unknown, name: string): string {
  const text = str(value, name, 255);
  if (text.toLowerCase() === 'default') throw conflict('SecurityGroupDefaultAlreadyExists', 'Default security group already exists.');
  return text;
}

/** Neutron's `convert_protocol`: a known name (any case), a number 0-255 (kept as text), or null. `any` means null. */
function protocol(value: unknown): string | null {
  if (value === null) return null;
  const text = typeof value === 'number' || typeof value === 'string' ? String(value).trim() : null;
  if (text !== null && /^[-+]?\d+$/.test(text)) {
    const n = Number(text);
    if (n >= 0 && n <= 255) return String(n);
  } else if (text !== null) {
    const lower = text.toLowerCase();
    if (lower === 'any') return null;
    if (lower in PROTOCOLS) return lower;
  }
  refuse('SecurityGroupRuleInvalidProtocol', `Security group rule protocol ${String(value)} not supported. Only protocol values ${SUPPORTED_PROTOCOLS} and integer representations [0 to 255] are supported.`);
}

/** Neutron's `convert_validate_port_value`: null or an integer 0-65535. */
function portValue(value: unknown): number | null {
  if (value === null) return null;
  const n = typeof value === 'string' && /^\s*[-+]?\d+\s*$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 65535) refuse('SecurityGroupInvalidPortValue', `Invalid value for port ${String(value)}`);
  return n;
}

function ethertype(value: unknown): string {
  const match = typeof value === 'string' ? ETHERTYPES.find((e) => e.toLowerCase() === value.toLowerCase()) : undefined;
  if (!match) refuse('SecurityGroupRuleInvalidEtherType', `Security group rule for ethertype '${String(value)}' not supported. Allowed values are ['IPv4', 'IPv6'].`);
  return match;
}

function direction(value: unknown, name: string): string {
  if (value !== 'ingress' && value !== 'egress') throw invalidInput(name, `${String(value)} is not in ['ingress', 'egress']`);
  return value;
}

/**
 * `remote_ip_prefix`: an address or CIDR in canonical text, host bits kept
 * (`10.0.0.5/24` stays, `10.0.0.5` becomes `10.0.0.5/32`); empty means none.
 */
function ipPrefix(value: unknown): string | null {
  if (value === null || value === '') return null;
  const text = typeof value === 'string' ? value : '';
  const slash = text.indexOf('/');
  const ip = parseIp(slash < 0 ? text : text.slice(0, slash));
  const cidr = parseCidr(text);
  if (!ip || !cidr) throw new NeutronError(400, 'InvalidCIDR', `Invalid CIDR ${String(value)} given as IP prefix.`);
  return `${formatIp(ip.version, ip.value)}/${cidr.prefix}`;
}

/** A remote's id: null or '' for none; not checked further here (an unknown one is a 404 later). */
function remoteId(value: unknown, name: string): string | null {
  return value === null || value === '' ? null : str(value, name, 36);
}

const GROUP_ATTRS: Attrs = {
  name: { post: true, put: true, default: '', convert: groupName },
  description: { post: true, put: true, default: '', convert: (v, n) => str(v, n, 255) },
  project_id: { post: true, convert: (v, n) => str(v, n, 255) },
  tenant_id: { post: true, convert: (v, n) => str(v, n, 255) },
  stateful: { post: true, put: true, default: true, convert: bool },
};

const RULE_ATTRS: Attrs = {
  security_group_id: { post: true, required: true, convert: (v, n) => str(v, n, 36) },
  remote_group_id: { post: true, default: null, convert: remoteId },
  remote_address_group_id: { post: true, default: null, convert: remoteId },
  direction: { post: true, required: true, convert: direction },
  protocol: { post: true, default: null, convert: protocol },
  port_range_min: { post: true, default: null, convert: portValue },
  port_range_max: { post: true, default: null, convert: portValue },
  ethertype: { post: true, default: 'IPv4', convert: ethertype },
  remote_ip_prefix: { post: true, default: null, convert: ipPrefix },
  description: { post: true, default: '', convert: (v, n) => str(v, n, 255) },
  project_id: { post: true, convert: (v, n) => str(v, n, 255) },
  tenant_id: { post: true, convert: (v, n) => str(v, n, 255) },
};

const GROUP_LIST: ListSpec = {
  collection: 'security_groups',
  resource: 'security_group',
  attributes: ['id', 'name', 'description', 'project_id', 'tenant_id', 'stateful', 'revision_number', 'created_at', 'updated_at'],
};

const RULE_LIST: ListSpec = {
  collection: 'security_group_rules',
  resource: 'security_group_rule',
  attributes: [
    'id',
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
    'project_id',
    'tenant_id',
    'description',
    'revision_number',
    'created_at',
    'updated_at',
  ],
};

// ---------------------------------------------------------------- views

function ruleView(row: SecurityGroupRuleRow): Record<string, unknown> {
  const cidr = row.remote_ip_prefix ? parseCidr(row.remote_ip_prefix) : null;
  return {
    id: row.id,
    tenant_id: row.project_id,
    project_id: row.project_id,
    security_group_id: row.security_group_id,
    ethertype: row.ethertype,
    direction: row.direction,
    protocol: row.protocol,
    port_range_min: row.port_range_min === null ? null : Number(row.port_range_min),
    port_range_max: row.port_range_max === null ? null : Number(row.port_range_max),
    remote_ip_prefix: row.remote_ip_prefix,
    remote_address_group_id: row.remote_address_group_id,
    normalized_cidr: cidr ? formatCidr(cidr) : null,
    remote_group_id: row.remote_group_id,
    description: row.description,
    created_at: neutronTime(row.created_at),
    updated_at: neutronTime(row.updated_at),
    revision_number: Number(row.revision_number),
  };
}

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
  const rows: SecurityGroupRow[] = groups.map(({ projectId, item }) => ({
    id: newUuid(),
    project_id: projectId,
    name: item.name as string,
    description: item.description as string,
    stateful: item.stateful === false ? 0 : 1,
    created_at: now,
    updated_at: now,
    revision_number: 1,
  }));
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

function newRuleRow(groupId: string, projectId: string, rule: Partial<SecurityGroupRuleRow>, now: string): SecurityGroupRuleRow {
  return {
    id: newUuid(),
    project_id: projectId,
    security_group_id: groupId,
    direction: 'ingress',
    ethertype: 'IPv4',
    protocol: null,
    port_range_min: null,
    port_range_max: null,
    remote_ip_prefix: null,
    remote_group_id: null,
    remote_address_group_id: null,
    description: '',
    created_at: now,
    updated_at: now,
    revision_number: 0,
    ...rule,
  };
}

async function listGroups(net: NetworkService, req: FastifyRequest): Promise<unknown> {
  const ctx = req.ctx;
  const query = parseListQuery(req, GROUP_LIST);
  await ensureDefault(net, ctx, listedProject(req));
  let select = net.db.selectFrom('security_group').selectAll();
  if (!isAdmin(net, ctx)) select = select.where('project_id', '=', ctx.projectId ?? '');
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

interface RuleInput {
  project_id: string;
  security_group_id: string;
  direction: string;
  ethertype: string;
  protocol: string | null;
  port_range_min: number | null;
  port_range_max: number | null;
  remote_ip_prefix: string | null;
  remote_group_id: string | null;
  remote_address_group_id: string | null;
  description: string;
}

function protocolNumber(name: string): number {
  return PROTOCOLS[name] ?? Number(name);
}

/**
 * The checks Neutron makes of one rule before looking anything up, in its
 * order; also puts the rule in canonical form (IPv6 ICMP by its proper name,
 * the whole port range 1-65535 as no range).
 */
function checkRule(rule: RuleInput): void {
  if (rule.ethertype === 'IPv6' && (rule.protocol === 'icmp' || rule.protocol === 'icmpv6')) rule.protocol = 'ipv6-icmp';
  else if (rule.ethertype === 'IPv6' && rule.protocol === '1') rule.protocol = '58';
  if (rule.port_range_min === 1 && rule.port_range_max === 65535) rule.port_range_min = rule.port_range_max = null;
  checkPorts(rule);
  if (rule.remote_ip_prefix) {
    const version = rule.remote_ip_prefix.includes(':') ? 'IPv6' : 'IPv4';
    if (version !== rule.ethertype) refuse('SecurityGroupRuleParameterConflict', `Conflicting value ethertype ${rule.ethertype} for CIDR ${rule.remote_ip_prefix}`);
  }
  if (rule.protocol !== null && IPV6_ONLY.has(rule.protocol) && rule.ethertype === 'IPv4') {
    refuse('SecurityGroupEthertypeConflictWithProtocol', `Invalid ethertype ${rule.ethertype} for protocol ${rule.protocol}.`);
  }
  const remotes = [rule.remote_ip_prefix, rule.remote_group_id, rule.remote_address_group_id].filter((r) => r !== null && r !== '');
  if (remotes.length > 1) refuse('SecurityGroupMultipleRemoteEntites', 'Only one of remote_ip_prefix or remote_group_id or remote_address_group_id may be provided.');
}

function checkPorts(rule: RuleInput): void {
  const { port_range_min: min, port_range_max: max } = rule;
  if (min === null && max === null) return;
  if (!rule.protocol) refuse('SecurityGroupProtocolRequiredWithPorts', 'Must also specify protocol if port range is given.');
  const number = protocolNumber(rule.protocol);
  if (PORT_PROTOCOLS.has(number)) {
    if (min === 0 || max === 0) refuse('SecurityGroupInvalidPortValue', 'Invalid value for port 0');
    if (min === null || max === null || min > max) refuse('SecurityGroupInvalidPortRange', 'For TCP/UDP protocols, port_range_min must be <= port_range_max');
  } else if (number === 1 || number === 58) {
    for (const [attr, field, value] of [
      ['port_range_min', 'type', min],
      ['port_range_max', 'code', max],
    ] as const) {
      if (value !== null && (value < 0 || value > 255)) refuse('SecurityGroupInvalidIcmpValue', `Invalid value for ICMP ${field} (${attr}) ${value}. It must be 0 to 255.`);
    }
    if (min === null && max !== null) refuse('SecurityGroupMissingIcmpType', `ICMP code (port-range-max) ${max} is provided but ICMP type (port-range-min) is missing.`);
  } else {
    refuse('SecurityGroupInvalidProtocolForPort', `Ports cannot be specified for protocol ${number}. Ports are only supported for DCCP, SCTP, TCP, UDP, UDPLITE.`);
  }
}

/** What makes two rules the same for Neutron: protocols by name and number, "everywhere" prefixes as none. */
function ruleKey(rule: Omit<RuleInput, 'project_id' | 'description'>): string {
  let proto = rule.protocol;
  if (proto !== null && rule.ethertype === 'IPv6') {
    if (proto === 'icmp' || proto === 'icmpv6') proto = 'ipv6-icmp';
    else if (proto === '1') proto = '58';
  }
  const protoKey = proto === null ? '+' : proto in PROTOCOLS ? `${proto}/${PROTOCOLS[proto]}` : PROTOCOL_NAMES.has(proto) ? `${PROTOCOL_NAMES.get(proto)}/${proto}` : `${proto}/${proto}`;
  const prefix = rule.remote_ip_prefix === null || rule.remote_ip_prefix === '0.0.0.0/0' || rule.remote_ip_prefix === '::/0' ? '+' : rule.remote_ip_prefix;
  const text = (v: unknown): string => (v === null || v === undefined ? '+' : String(v));
  return [rule.direction, rule.ethertype, text(rule.port_range_max), text(rule.port_range_min), protoKey, text(rule.remote_group_id), text(rule.remote_address_group_id), prefix, rule.security_group_id].join('_');
}

/** Reads a rule create (one or bulk), with Neutron's checks that need no lookup. */
function readRules(ctx: RequestContext, body: unknown): { rules: RuleInput[]; bulk: boolean } {
  const { items, bulk } = readCreate(body, 'security_group_rule', 'security_group_rules', RULE_ATTRS);
  const rules = items.map((item) => {
    const projectId = owner(ctx, item);
    return { ...(item as Omit<RuleInput, 'project_id'>), project_id: projectId };
  });
  if (bulk) {
    if (new Set(rules.map((r) => r.security_group_id)).size > 1) refuse('SecurityGroupNotSingleGroupRules', 'Only allowed to update rules for one security profile at a time');
    if (new Set(rules.map((r) => r.project_id)).size > 1) refuse('SecurityGroupRulesNotSingleTenant', 'Multiple tenant_ids in bulk security group rule create not allowed');
  }
  return { rules, bulk };
}

/** A group a rule may name (as its own group or as remote): any for an admin, else one of the rule's project. */
async function ruleGroup(net: NetworkService, ctx: RequestContext, id: string, projectId: string): Promise<SecurityGroupRow> {
  const row = await net.db.selectFrom('security_group').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row || (row.project_id !== projectId && !isAdmin(net, ctx))) throw notFound('security_group', id);
  return row;
}

async function createRules(net: NetworkService, req: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const ctx = req.ctx;
  const { rules, bulk } = readRules(ctx, req.body);
  const groups = new Map<string, SecurityGroupRow | undefined>();
  for (const rule of rules) {
    if (!groups.has(rule.security_group_id)) groups.set(rule.security_group_id, await net.db.selectFrom('security_group').selectAll().where('id', '=', rule.security_group_id).executeTakeFirst());
    const groupProject = groups.get(rule.security_group_id)?.project_id ?? '';
    const attributes = Object.keys(rule).filter((k) => k !== 'project_id');
    authorize(net, ctx, 'create_security_group_rule', ruleTarget(rule, groupProject), attributes);
  }
  for (const rule of rules) {
    checkRule(rule);
    if (rule.remote_group_id) await ruleGroup(net, ctx, rule.remote_group_id, rule.project_id);
    if (rule.remote_address_group_id) throw new NeutronError(404, 'AddressGroupNotFound', `Address group ${rule.remote_address_group_id} could not be found.`);
    await ruleGroup(net, ctx, rule.security_group_id, rule.project_id);
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
