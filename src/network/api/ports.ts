import { notifyComputeNetworkChanged } from '../compute-notifier.js';
import type { FastifyInstance } from 'fastify';
import type { RequestContext } from '../../core/auth/context.js';
import { bool, dict, isRecord, list, mac, oneOf, readBody, readCreate, owner, STANDARD_ATTRS, str, uuid, type Attrs } from '../common.js';
import type { NetworkRow, PortRow } from '../db/schema.js';
import { ensureDefaultSecurityGroup } from '../default-security-group.js';
import { badRequest, invalidInput, notFound } from '../errors.js';
import { normalizeIp, parseCidr, parseIp } from '../ipam/addresses.js';
import { retryOnConflict, type FixedIpRequest } from '../ipam/allocator.js';
import { listResponse, parseListQuery, selectFields, showFields, sqlListResponse, STANDARD_ATTRIBUTES, type ListSpec, type SortColumn } from '../lists.js';
import { allowed, authorize, isAdmin, type NetworkService } from '../network.js';
import { loadNetworkFor } from '../networks.js';
import {
  afterPortChange,
  afterPortDelete,
  afterPortsChange,
  checkPortDeletable,
  createPortRecord,
  deletePortRecord,
  deviceOwnerPrefix,
  loadPortFor,
  networksById,
  portInfoOf,
  portTarget,
  portViews,
  updatePortRecord,
  type InternalPortSpec,
  type PortChanges,
  type PortExtras,
} from '../ports.js';

/** Neutron's `max_allowed_address_pair`. */
const MAX_ADDRESS_PAIRS = 10;

/** Neutron's VNIC types (`binding:vnic_type`). */
const VNIC_TYPES = ['normal', 'direct', 'macvtap', 'baremetal', 'direct-physical', 'virtio-forwarder', 'smart-nic', 'vdpa', 'remote-managed', 'accelerator-direct', 'accelerator-direct-physical'] as const;

/** Tag rules as Neutron's: non-empty strings of at most 255 characters. */
function tagList(value: unknown, name: string): string[] {
  const tags = list(value, name);
  for (const tag of tags) {
    if (typeof tag !== 'string' || tag === '') throw invalidInput(name, `'${JSON.stringify(tag)}' is not a valid tag`);
    if (tag.length > 255) throw invalidInput(name, `'${tag}' exceeds maximum length of 255`);
  }
  return [...new Set(tags as string[])];
}

/** `fixed_ips`: a list of `{subnet_id?, ip_address?}` without repeated addresses. */
function fixedIps(value: unknown, name: string): FixedIpRequest[] {
  if (!Array.isArray(value)) throw invalidInput(name, `Invalid data format for fixed IP: '${JSON.stringify(value)}'`);
  const seen = new Set<string>();
  return value.map((entry) => {
    if (!isRecord(entry)) throw invalidInput(name, `Invalid data format for fixed IP: '${JSON.stringify(entry)}'`);
    const extra = Object.keys(entry).filter((k) => k !== 'subnet_id' && k !== 'ip_address');
    if (extra.length > 0) throw badRequest(`Unrecognized attribute(s) '${extra.join(', ')}'`);
    const out: FixedIpRequest = {};
    if (entry.subnet_id !== undefined) out.subnet_id = uuid(entry.subnet_id, name);
    if (entry.ip_address !== undefined) {
      const ip = typeof entry.ip_address === 'string' ? normalizeIp(entry.ip_address) : null;
      if (ip === null) throw invalidInput(name, `'${String(entry.ip_address)}' is not a valid IP address`);
      if (seen.has(ip)) throw invalidInput(name, `Duplicate IP address '${ip}'`);
      seen.add(ip);
      out.ip_address = ip;
    }
    return out;
  });
}

function securityGroups(value: unknown, name: string): string[] {
  if (value === null) return [];
  return list(value, name).map((id) => uuid(id, name));
}

/** `allowed_address_pairs`: `{ip_address (address or CIDR), mac_address?}`, at most ten, no repeats. */
function addressPairs(value: unknown, name: string): { ip_address: string; mac_address?: string }[] {
  if (value === null) return [];
  if (!Array.isArray(value)) throw badRequest('Allowed address pairs must be a list.');
  if (value.length > MAX_ADDRESS_PAIRS) throw badRequest(`The number of allowed address pair exceeds the maximum ${MAX_ADDRESS_PAIRS}.`, 'AllowedAddressPairExhausted');
  const seen = new Set<string>();
  return value.map((entry) => {
    if (!isRecord(entry)) throw invalidInput(name, `'${JSON.stringify(entry)}' is not a dictionary`);
    const pair: { ip_address: string; mac_address?: string } = { ip_address: '' };
    if (entry.mac_address !== undefined) pair.mac_address = mac(entry.mac_address, name);
    if (entry.ip_address === undefined) throw badRequest('AllowedAddressPair must contain ip_address', 'AllowedAddressPairsMissingIP');
    const ip = entry.ip_address;
    if (typeof ip !== 'string' || (ip.includes('/') ? parseCidr(ip) === null : parseIp(ip) === null)) {
      throw badRequest(`'${String(ip)}' is not a valid IP ${typeof ip === 'string' && ip.includes('/') ? 'subnet' : 'address'}`);
    }
    pair.ip_address = ip;
    const key = `${pair.mac_address ?? ''}|${ip}`;
    if (seen.has(key)) throw badRequest(`Request contains duplicate address pair: mac_address ${pair.mac_address ?? 'None'} ip_address ${ip}.`, 'DuplicateAddressPairInRequest');
    seen.add(key);
    const extra = Object.keys(entry).filter((k) => k !== 'mac_address' && k !== 'ip_address');
    if (extra.length > 0) throw badRequest(`Unrecognized attribute(s) '${extra.join(', ')}'`);
    return pair;
  });
}

const BLANK_DHCP_OPTS = new Set(['router', 'classless-static-route']);

/** `extra_dhcp_opts`: `{opt_name, opt_value (null removes on update), ip_version 4|6}`. */
function dhcpOpts(value: unknown, name: string): { opt_name: string; opt_value: string | null; ip_version: number }[] | null {
  if (value === null) return null;
  return list(value, name).map((entry) => {
    if (!isRecord(entry)) throw invalidInput(name, `'${JSON.stringify(entry)}' is not a dictionary`);
    const extra = Object.keys(entry).filter((k) => k !== 'opt_name' && k !== 'opt_value' && k !== 'ip_version');
    if (extra.length > 0) throw invalidInput(name, `Unexpected keys supplied: ${extra.join(', ')}`);
    if (!('opt_name' in entry) || !('opt_value' in entry)) throw invalidInput(name, `Validation of dictionary's keys failed. Expected keys: {'opt_name', 'opt_value'} Provided keys: {${Object.keys(entry).map((k) => `'${k}'`).join(', ')}}`);
    const optName = str(entry.opt_name, name, 64);
    if (optName.trim() === '' || /[\r\n]/.test(optName)) throw invalidInput(name, `'${optName}' Blank strings are not permitted`);
    let optValue: string | null = null;
    if (entry.opt_value !== null) {
      optValue = str(entry.opt_value, name, 255);
      if (/[\r\n]/.test(optValue) || (optValue.trim() === '' && !BLANK_DHCP_OPTS.has(optName))) throw invalidInput(name, `'${optValue}' Blank strings are not permitted`);
    }
    let version = 4;
    if (entry.ip_version !== undefined) {
      const v = typeof entry.ip_version === 'string' && /^\d+$/.test(entry.ip_version) ? Number(entry.ip_version) : entry.ip_version;
      if (v !== 4 && v !== 6) throw invalidInput(name, `${String(entry.ip_version)} is not in [4, 6]`);
      version = v;
    }
    return { opt_name: optName, opt_value: optValue, ip_version: version };
  });
}

function profile(value: unknown, name: string): Record<string, unknown> {
  return value === null ? {} : dict(value, name);
}

/** The port attributes (neutron-lib's port, binding, port-security, allowed-address-pairs, extra_dhcp_opt, tag). */
const PORT_ATTRS: Attrs = {
  ...STANDARD_ATTRS,
  id: {},
  network_id: { post: true, required: true, convert: uuid },
  admin_state_up: { post: true, put: true, default: true, convert: bool },
  mac_address: { post: true, put: true, convert: mac },
  fixed_ips: { post: true, put: true, convert: fixedIps },
  device_id: { post: true, put: true, default: '', convert: (v, n) => str(v, n, 255) },
  device_owner: { post: true, put: true, default: '', convert: (v, n) => str(v, n, 255) },
  status: {},
  security_groups: { post: true, put: true, convert: securityGroups },
  port_security_enabled: { post: true, put: true, convert: bool },
  allowed_address_pairs: { post: true, put: true, convert: addressPairs },
  extra_dhcp_opts: { post: true, put: true, convert: dhcpOpts },
  dns_name: { post: true, put: true, convert: (v, n) => str(v, n, 255) },
  'binding:host_id': { post: true, put: true, convert: (v, n) => str(v, n, 255) },
  'binding:vnic_type': { post: true, put: true, default: 'normal', convert: oneOf(VNIC_TYPES) },
  'binding:profile': { post: true, put: true, convert: profile },
  'binding:vif_type': {},
  'binding:vif_details': {},
  tags: { post: true, convert: tagList },
};

/** What list filters and sorts on; `fixed_ips` and `security_groups` have their own matching. */
const LIST_SPEC: ListSpec = {
  collection: 'ports',
  resource: 'port',
  attributes: [
    ...STANDARD_ATTRIBUTES,
    'network_id',
    'admin_state_up',
    'mac_address',
    'device_id',
    'device_owner',
    'status',
    'port_security_enabled',
    'dns_name',
    'binding:host_id',
    'binding:vif_type',
    'binding:vnic_type',
  ],
  custom: {
    fixed_ips: (item, values) => matchFixedIps(item.fixed_ips as { subnet_id: string; ip_address: string }[], parseFixedIpFilter(values)),
    mac_address: (item, values) => values.some((v) => v.toLowerCase() === item.mac_address),
    security_groups: (item, values) => values.some((v) => (item.security_groups as string[] | undefined)?.includes(v) ?? false),
  },
};

/**
 * The sort keys a page of ports is read in SQL by: the columns every caller
 * sees as stored (not the times, shown to the second; not `binding:*`,
 * hidden from members).
 */
const SORT_COLUMNS: Record<string, SortColumn> & { id: SortColumn } = {
  id: { column: 'id', text: true },
  name: { column: 'name', text: true },
  description: { column: 'description', text: true },
  project_id: { column: 'project_id', text: true },
  tenant_id: { column: 'project_id', text: true },
  network_id: { column: 'network_id', text: true },
  mac_address: { column: 'mac_address', text: true },
  device_id: { column: 'device_id', text: true },
  device_owner: { column: 'device_owner', text: true },
  status: { column: 'status', text: true },
  dns_name: { column: 'dns_name', text: true },
  admin_state_up: { column: 'admin_state_up', text: false },
  port_security_enabled: { column: 'port_security_enabled', text: false },
  revision_number: { column: 'revision_number', text: false },
};

interface FixedIpFilter {
  ips: string[];
  subnets: string[];
  substrings: string[];
}

/** `fixed_ips=ip_address=X`, `fixed_ips=subnet_id=Y`, `fixed_ips=ip_address_substr=Z` (repeatable). */
function parseFixedIpFilter(values: string[]): FixedIpFilter {
  const filter: FixedIpFilter = { ips: [], subnets: [], substrings: [] };
  for (const value of values) {
    const at = value.indexOf('=');
    const key = at < 0 ? '' : value.slice(0, at);
    const wanted = value.slice(at + 1);
    if (key === 'ip_address') filter.ips.push(normalizeIp(wanted) ?? wanted);
    else if (key === 'subnet_id') filter.subnets.push(wanted);
    else if (key === 'ip_address_substr') filter.substrings.push(wanted);
    else throw badRequest(`Invalid input for fixed_ips. Reason: '${value}' is not of the form <ip_address|subnet_id|ip_address_substr>=<value>.`);
  }
  return filter;
}

/** True when one address of the port matches every kind of condition given. */
function matchFixedIps(fixed: { subnet_id: string; ip_address: string }[] | undefined, filter: FixedIpFilter): boolean {
  return (fixed ?? []).some(
    (a) =>
      (filter.ips.length === 0 || filter.ips.includes(a.ip_address)) &&
      (filter.subnets.length === 0 || filter.subnets.includes(a.subnet_id)) &&
      (filter.substrings.length === 0 || filter.substrings.some((s) => a.ip_address.includes(s))),
  );
}

/**
 * The attribute rules a request's body is checked against: each attribute
 * set, and the nested keys of `fixed_ips` and `allowed_address_pairs`
 * (`create_port:fixed_ips:ip_address`, ...).
 */
function policyAttributes(raw: Record<string, unknown>): string[] {
  const names = Object.keys(raw);
  const nested = (key: string) => (Array.isArray(raw[key]) ? (raw[key] as unknown[]).filter(isRecord) : []);
  for (const key of ['fixed_ips', 'allowed_address_pairs']) {
    for (const sub of ['ip_address', 'subnet_id', 'mac_address']) if (nested(key).some((e) => e[sub] !== undefined)) names.push(`${key}:${sub}`);
  }
  return names;
}

function rawItems(body: unknown, bulk: boolean): Record<string, unknown>[] {
  if (!isRecord(body)) return [];
  if (bulk) return (body.ports as unknown[]).filter(isRecord);
  return isRecord(body.port) ? [body.port] : [];
}

async function loadRows(net: NetworkService, ids: string[]): Promise<PortRow[]> {
  const rows = await net.db.selectFrom('port').selectAll().where('id', 'in', ids).execute();
  const byId = new Map(rows.map((r) => [r.id, r]));
  return ids.map((id) => byId.get(id)).filter((r): r is PortRow => r !== undefined);
}

/** The create spec of one item of a POST. */
function createSpec(item: Record<string, unknown>, projectId: string): InternalPortSpec & PortExtras {
  const spec: InternalPortSpec & PortExtras = {
    network_id: item.network_id as string,
    project_id: projectId,
    device_id: item.device_id as string,
    device_owner: item.device_owner as string,
    name: item.name as string,
    description: item.description as string,
    admin_state_up: item.admin_state_up as boolean,
    binding_vnic_type: item['binding:vnic_type'] as string,
    checkQuota: true,
  };
  if (item.fixed_ips !== undefined) spec.fixed_ips = item.fixed_ips as FixedIpRequest[];
  if (item.security_groups !== undefined) spec.security_groups = item.security_groups as string[];
  if (item.mac_address !== undefined) spec.mac_address = item.mac_address as string;
  if (item.port_security_enabled !== undefined) spec.port_security_enabled = item.port_security_enabled as boolean;
  if (item.allowed_address_pairs !== undefined) spec.allowed_address_pairs = item.allowed_address_pairs as PortExtras['allowed_address_pairs'];
  if (item.extra_dhcp_opts != null) spec.extra_dhcp_opts = item.extra_dhcp_opts as PortExtras['extra_dhcp_opts'];
  if (item.dns_name !== undefined) spec.dns_name = item.dns_name as string;
  if (item['binding:host_id'] !== undefined) spec.binding_host_id = item['binding:host_id'] as string;
  if (item['binding:profile'] !== undefined) spec.binding_profile = item['binding:profile'] as Record<string, unknown>;
  if (item.tags !== undefined) spec.tags = item.tags as string[];
  return spec;
}

/** The changes of a PUT, in {@link updatePortRecord}'s names. */
function changesOf(item: Record<string, unknown>): PortChanges {
  const changes: PortChanges = {};
  const copy = <K extends keyof PortChanges>(key: K, from: string = key) => {
    if (item[from] !== undefined) changes[key] = item[from] as PortChanges[K];
  };
  for (const key of ['name', 'description', 'admin_state_up', 'mac_address', 'fixed_ips', 'device_id', 'device_owner', 'security_groups', 'port_security_enabled', 'allowed_address_pairs', 'dns_name'] as const) copy(key);
  if (item.extra_dhcp_opts != null) changes.extra_dhcp_opts = item.extra_dhcp_opts as PortChanges['extra_dhcp_opts'];
  copy('binding_host_id', 'binding:host_id');
  copy('binding_vnic_type', 'binding:vnic_type');
  copy('binding_profile', 'binding:profile');
  return changes;
}

/** Tells the driver that these groups' members changed (a port joined, left or changed address). */
async function membersChanged(net: NetworkService, groups: string[]): Promise<void> {
  if (groups.length === 0) return;
  try {
    await net.driver.securityGroupsUpdated(groups);
  } catch (err) {
    net.log.warn({ err, groups }, 'telling the driver about security group members failed');
  }
}

/**
 * The ports a list reads, narrowed in SQL to those the caller may see (its
 * project's, and those on its networks; policy decides the rest) and by the
 * filters SQL applies as the views would (`filtersInSql`), so that big clouds
 * list fast. Not ordered, not limited.
 */
function portRows(net: NetworkService, ctx: RequestContext, filters: Map<string, string[]>) {
  let rows = net.db.selectFrom('port').selectAll();
  if (!isAdmin(net, ctx)) {
    const project = ctx.projectId ?? '';
    rows = rows.where((eb) => eb.or([eb('project_id', '=', project), eb('network_id', 'in', eb.selectFrom('network').select('id').where('project_id', '=', project))]));
  }
  const filtersInSql = new Set<string>();
  const where = (key: string, column: 'id' | 'network_id' | 'device_id' | 'device_owner' | 'status' | 'name' | 'project_id' | 'mac_address', values: string[] | undefined) => {
    if (!values || values.length === 0) return;
    rows = rows.where(column, 'in', values);
    filtersInSql.add(key);
  };
  for (const key of ['id', 'network_id', 'device_id', 'device_owner', 'status', 'name', 'project_id'] as const) where(key, key, filters.get(key));
  where('tenant_id', 'project_id', filters.get('tenant_id'));
  where('mac_address', 'mac_address', filters.get('mac_address')?.map((m) => m.toLowerCase()));
  const fixed = filters.get('fixed_ips');
  if (fixed) {
    const { ips, subnets, substrings } = parseFixedIpFilter(fixed);
    rows = rows.where('id', 'in', (eb) => {
      let addresses = eb.selectFrom('ip_allocation').select('port_id');
      if (ips.length > 0) addresses = addresses.where('ip_address', 'in', ips);
      if (subnets.length > 0) addresses = addresses.where('subnet_id', 'in', subnets);
      return addresses;
    });
    // Substrings are matched on the views.
    if (substrings.length === 0) filtersInSql.add('fixed_ips');
  }
  return { rows, filtersInSql };
}

/** The rows the caller may see (policy `get_port`, which reads each port's network). */
async function visiblePorts(net: NetworkService, ctx: RequestContext, rows: PortRow[]): Promise<PortRow[]> {
  if (isAdmin(net, ctx)) return rows;
  const networks = await networksById(net.db, [...new Set(rows.map((r) => r.network_id))]);
  return rows.filter((row) => allowed(net, ctx, 'get_port', portTarget(row, networks.get(row.network_id))));
}

/** Ports: `/v2.0/ports` (also bulk create) and `/v2.0/ports/<id>`. */
export function registerPorts(app: FastifyInstance, net: NetworkService): void {
  app.post('/v2.0/ports', async (req, reply) => {
    const { items, bulk } = readCreate(req.body, 'port', 'ports', PORT_ATTRS);
    const raws = rawItems(req.body, bulk);
    const specs: (InternalPortSpec & PortExtras)[] = [];
    // A bulk create often names one network and one project many times: read and prepare each once.
    const networks = new Map<string, NetworkRow>();
    const withDefaultGroup = new Set<string>();
    for (const [i, item] of items.entries()) {
      const projectId = owner(req.ctx, item);
      const networkId = item.network_id as string;
      const network = networks.get(networkId) ?? (await loadNetworkFor(net, req.ctx, networkId));
      networks.set(networkId, network);
      const target = portTarget({ project_id: projectId, device_owner: item.device_owner as string, network_id: network.id }, network);
      authorize(net, req.ctx, 'create_port', target, policyAttributes(raws[i] ?? {}));
      const spec = createSpec(item, projectId);
      const portSecurity = spec.port_security_enabled ?? Number(network.port_security_enabled) === 1;
      // The default group is made in its own transaction, before the port's.
      if (spec.security_groups === undefined && portSecurity && !spec.device_owner.startsWith('network:') && !withDefaultGroup.has(projectId)) {
        await ensureDefaultSecurityGroup(net.db, projectId);
        withDefaultGroup.add(projectId);
      }
      specs.push(spec);
    }
    const created = await retryOnConflict(() => net.db.transaction().execute(async (trx) => {
      const ports = [];
      for (const spec of specs) ports.push(await createPortRecord(net, trx, spec));
      return ports;
    }));
    await afterPortsChange(net, created.map((p) => p.id));
    const views = await portViews(net, req.ctx, await loadRows(net, created.map((p) => p.id)));
    const groupsWithMembers = new Set<string>();
    for (const [i, view] of views.entries()) {
      net.notify('port.create.end', { port: view }, req.ctx);
      if ((created[i]?.fixed_ips.length ?? 0) > 0) for (const group of (view.security_groups as string[] | undefined) ?? []) groupsWithMembers.add(group);
    }
    await membersChanged(net, [...groupsWithMembers]);
    reply.code(201);
    return bulk ? { ports: views } : { port: views[0] };
  });

  app.get('/v2.0/ports', async (req) => {
    const query = parseListQuery(req, LIST_SPEC, net.config.network.pagination_max_limit);
    const { rows, filtersInSql } = portRows(net, req.ctx, query.filters);
    const page = await sqlListResponse(req, LIST_SPEC, query, {
      rows,
      filtersInSql,
      sortColumns: SORT_COLUMNS,
      dialect: net.dialect,
      views: async (found) => {
        const visible = await visiblePorts(net, req.ctx, found);
        return visible.length === found.length ? portViews(net, req.ctx, visible) : null;
      },
    });
    return page ?? listResponse(req, LIST_SPEC, await portViews(net, req.ctx, await visiblePorts(net, req.ctx, await rows.execute())), query);
  });

  app.get<{ Params: { id: string } }>('/v2.0/ports/:id', async (req) => {
    const { row } = await loadPortFor(net, req.ctx, req.params.id);
    const [view] = await portViews(net, req.ctx, [row]);
    return { port: selectFields(view ?? {}, showFields(req)) };
  });

  app.put<{ Params: { id: string } }>('/v2.0/ports/:id', async (req) => {
    const item = readBody(req.body, 'port', PORT_ATTRS, 'update');
    const raw = isRecord(req.body) && isRecord(req.body.port) ? req.body.port : {};
    const { row, target } = await loadPortFor(net, req.ctx, req.params.id);
    const updatedTarget = { ...target, ...(item.device_owner !== undefined ? { device_owner: item.device_owner, device_owner_prefix: deviceOwnerPrefix(item.device_owner as string) } : {}) };
    authorize(net, req.ctx, 'update_port', updatedTarget, policyAttributes(raw));
    const changes = changesOf(item);
    const result = await retryOnConflict(() => net.db.transaction().execute((trx) => updatePortRecord(net, trx, row.id, changes)));
    await afterPortChange(net, row.id);
    if (result.addressesChanged) notifyComputeNetworkChanged(net, row);
    await membersChanged(net, result.groupsTouched);
    const [view] = await portViews(net, req.ctx, await loadRows(net, [row.id]));
    if (!view) throw notFound('port', row.id);
    net.notify('port.update.end', { port: view }, req.ctx);
    return { port: view };
  });

  app.delete<{ Params: { id: string } }>('/v2.0/ports/:id', async (req, reply) => {
    const { row, target } = await loadPortFor(net, req.ctx, req.params.id);
    authorize(net, req.ctx, 'delete_port', target);
    const info = await portInfoOf(net.db, row);
    await checkPortDeletable(net.db, row, info.fixed_ips);
    const [view] = await portViews(net, req.ctx, [row]);
    const routers = await net.db.selectFrom('floatingip').select('router_id').where('fixed_port_id', '=', row.id).where('router_id', 'is not', null).execute();
    await net.db.transaction().execute(async (trx) => {
      // Of two racing deletions, the second finds nothing and says so.
      const still = await trx.selectFrom('port').select('id').where('id', '=', row.id).executeTakeFirst();
      if (!still) throw notFound('port', row.id);
      await deletePortRecord(trx, row.id);
    });
    await afterPortDelete(net, info);
    if (info.fixed_ips.length > 0) await membersChanged(net, info.security_groups);
    for (const routerId of new Set(routers.map((r) => r.router_id))) {
      if (routerId) await net.driver.routerUpdated(routerId).catch((err: unknown) => net.log.warn({ err, router: routerId }, 'telling the driver about a router failed'));
    }
    net.notify('port.delete.end', { port_id: row.id, port: view }, req.ctx);
    reply.code(204);
  });
}

