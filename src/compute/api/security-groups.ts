import type { FastifyInstance } from 'fastify';
import type { RequestContext } from '../../core/auth/context.js';
import { authorize, contextOf, isAdmin, type ComputeService } from '../compute.js';
import { isUuid } from '../common.js';
import { badRequest, ComputeError, forbidden, notFound } from '../errors.js';
import { loadInstanceFor } from '../instances.js';
import { isObject } from './nova-input.js';
import { neutron, proxyUntil235 } from './network-proxy.js';

/**
 * `os-security-groups`, `os-security-group-rules` and
 * `/servers/{id}/os-security-groups` (up to 2.35): Nova's view of the
 * network service's security groups. Only ingress rules show, as
 * `ip_protocol`/`from_port`/`to_port` with either `ip_range.cidr` or the
 * remote `group`; a rule made here is an ingress rule.
 */

interface NeutronRule {
  id: string;
  security_group_id: string;
  direction: string;
  ethertype: string;
  protocol: string | null;
  port_range_min: number | null;
  port_range_max: number | null;
  remote_ip_prefix: string | null;
  remote_group_id: string | null;
}

interface NeutronGroup {
  id: string;
  name: string;
  description: string;
  project_id?: string;
  tenant_id?: string;
  security_group_rules?: NeutronRule[];
}

/** Nova's rule view: ports as Nova saw them (a protocol without ports is 1-65535 or -1), the cidr or the remote group. */
function ruleView(rule: NeutronRule, groups: Map<string, NeutronGroup>): Record<string, unknown> {
  let from = rule.port_range_min;
  let to = rule.port_range_max;
  if (rule.protocol && from === null && to === null) {
    const wide = ['tcp', 'udp'].includes(rule.protocol.toLowerCase());
    from = wide ? 1 : -1;
    to = wide ? 65535 : -1;
  }
  const view: Record<string, unknown> = { id: rule.id, parent_group_id: rule.security_group_id, ip_protocol: rule.protocol, from_port: from, to_port: to, group: {}, ip_range: {} };
  if (rule.remote_group_id) {
    const remote = groups.get(rule.remote_group_id);
    view.group = remote ? { name: remote.name, tenant_id: remote.project_id ?? remote.tenant_id ?? '' } : {};
  } else {
    view.ip_range = { cidr: rule.remote_ip_prefix ?? (rule.ethertype === 'IPv6' ? '::/0' : '0.0.0.0/0') };
  }
  return view;
}

function groupView(group: NeutronGroup, groups: Map<string, NeutronGroup>): Record<string, unknown> {
  return {
    id: group.id,
    name: group.name,
    description: group.description ?? '',
    tenant_id: group.project_id ?? group.tenant_id ?? '',
    rules: (group.security_group_rules ?? []).filter((r) => r.direction === 'ingress').map((r) => ruleView(r, groups)),
  };
}

/** Nova's check of a group's name or description (`validate_property`: checked trimmed, kept as given). */
function checkProperty(value: unknown, property: string): string {
  if (typeof value !== 'string') throw badRequest(`Security group ${property} is not a string or unicode`);
  const trimmed = value.trim();
  if (!trimmed) throw badRequest(`Security group ${property} cannot be empty.`);
  if (trimmed.length > 255) throw badRequest(`Security group ${property} should not be greater than 255 characters.`);
  return value;
}

/** Nova's check of a security group id: the network service's ids are UUIDs. */
function checkId(id: unknown): string {
  if (typeof id !== 'string' || !isUuid(id)) throw badRequest('Security group id should be uuid');
  return id;
}

async function loadGroup(compute: ComputeService, ctx: RequestContext, id: string): Promise<NeutronGroup> {
  const body = await neutron<{ security_group: NeutronGroup }>(compute, ctx, 'GET', `/v2.0/security-groups/${id}`, undefined, (status) =>
    status === 404 ? notFound(`Security group ${id} not found.`) : null,
  );
  return body.security_group;
}

/** The groups that rules of `groups` name as their remote group, by id (with `groups` themselves). */
async function remoteGroups(compute: ComputeService, ctx: RequestContext, groups: NeutronGroup[]): Promise<Map<string, NeutronGroup>> {
  const known = new Map(groups.map((g) => [g.id, g]));
  const missing = new Set<string>();
  for (const g of groups) for (const r of g.security_group_rules ?? []) if (r.remote_group_id && !known.has(r.remote_group_id)) missing.add(r.remote_group_id);
  for (const id of missing) {
    const res = await compute.client.request<{ security_group?: NeutronGroup }>('network', 'GET', `/v2.0/security-groups/${id}`, { userToken: ctx.authToken });
    if (res.status < 400 && res.body.security_group) known.set(id, res.body.security_group);
  }
  return known;
}

/** Nova's `_new_ingress_rule`: the neutron rule for Nova's rule arguments, or null when a cidr rule lacks its protocol and ports. */
function ingressRule(args: { protocol: unknown; from: unknown; to: unknown; cidr?: string; groupId?: string }): Record<string, unknown> | null {
  let { from, to } = args;
  const protocol = args.protocol === null || args.protocol === undefined ? null : String(args.protocol);
  const upper = (protocol ?? '').toUpperCase();
  if (args.groupId) {
    if (upper === 'ICMP' && from == null && to == null) from = to = -1;
    else if (['TCP', 'UDP'].includes(upper) && from == null && to == null) {
      from = 1;
      to = 65535;
    }
  }
  const rule: Record<string, unknown> = { direction: 'ingress', ethertype: args.cidr?.includes(':') ? 'IPv6' : 'IPv4', remote_ip_prefix: args.cidr ?? null, remote_group_id: args.groupId ?? null };
  if (protocol && from != null && to != null) {
    const f = Number(from);
    const t = Number(to);
    if (!Number.isInteger(f) || !Number.isInteger(t)) throw badRequest(upper === 'ICMP' ? 'Type and Code must be integers for ICMP protocol type' : 'To and From ports must be integers');
    if (!['TCP', 'UDP', 'ICMP'].includes(upper)) throw badRequest(`Invalid IP protocol ${protocol}.`);
    if (['TCP', 'UDP'].includes(upper) && f > t) throw badRequest(`Invalid port range ${f}:${t}. Former value cannot be greater than the later`);
    if (['TCP', 'UDP'].includes(upper) && (f < 1 || t > 65535)) throw badRequest(`Invalid port range ${f}:${t}. Valid ${upper} ports should be between 1-65535`);
    if (upper === 'ICMP' && (f < -1 || f > 255 || t < -1 || t > 255)) throw badRequest(`Invalid port range ${f}:${t}. For ICMP, the type:code must be valid`);
    rule.protocol = protocol.toLowerCase();
    if (f !== -1) rule.port_range_min = f;
    if (t !== -1) rule.port_range_max = t;
  } else if (args.cidr) {
    return null;
  }
  return rule;
}

/** Nova's `parse_cidr`: the whole IPv4 space when none is given; 400 for a malformed one. */
function parseCidr(cidr: unknown): string {
  if (cidr === undefined || cidr === null || cidr === '') return '0.0.0.0/0';
  const text = decodeURIComponent(String(cidr));
  const m = /^([0-9a-fA-F:.]+)(?:\/(\d{1,3}))?$/.exec(text);
  const v4 = m?.[1] && /^\d{1,3}(\.\d{1,3}){3}$/.test(m[1]) && m[1].split('.').every((o) => Number(o) <= 255);
  const v6 = m?.[1]?.includes(':');
  const prefix = m?.[2] === undefined ? null : Number(m[2]);
  if (!m || (!v4 && !v6) || (prefix !== null && prefix > (v4 ? 32 : 128))) throw badRequest(`Invalid cidr ${text}.`);
  return prefix === null ? `${m[1]}/${v4 ? 32 : 128}` : text;
}

/** The same ingress rule already in the group (Nova refuses it as 400). */
function sameRule(existing: NeutronRule, wanted: Record<string, unknown>): boolean {
  return (
    existing.direction === 'ingress' &&
    existing.ethertype === wanted.ethertype &&
    (existing.protocol ?? null) === (wanted.protocol ?? null) &&
    (existing.port_range_min ?? null) === (wanted.port_range_min ?? null) &&
    (existing.port_range_max ?? null) === (wanted.port_range_max ?? null) &&
    (existing.remote_ip_prefix ?? null) === (wanted.remote_ip_prefix ?? null) &&
    (existing.remote_group_id ?? null) === (wanted.remote_group_id ?? null)
  );
}

export function registerSecurityGroups(app: FastifyInstance, compute: ComputeService): void {
  app.get('/v2.1/os-security-groups', async (req) => {
    proxyUntil235(req);
    const ctx = contextOf(req);
    authorize(compute, ctx, 'os-security-groups:get', { project_id: ctx.projectId });
    const q = req.query as Record<string, string>;
    const allTenants = isAdmin(compute, ctx) && q.all_tenants !== undefined && !['0', 'false', 'False'].includes(q.all_tenants);
    const path = allTenants ? '/v2.0/security-groups' : `/v2.0/security-groups?project_id=${encodeURIComponent(ctx.projectId ?? '')}`;
    const body = await neutron<{ security_groups: NeutronGroup[] }>(compute, ctx, 'GET', path);
    const groups = await remoteGroups(compute, ctx, body.security_groups);
    let list = body.security_groups.map((g) => groupView(g, groups));
    const offset = Number(q.offset ?? 0);
    if (Number.isInteger(offset) && offset > 0) list = list.slice(offset);
    const limit = Number(q.limit);
    if (q.limit !== undefined && Number.isInteger(limit) && limit >= 0) list = list.slice(0, limit);
    return { security_groups: list };
  });

  app.post('/v2.1/os-security-groups', async (req) => {
    proxyUntil235(req);
    const ctx = contextOf(req);
    authorize(compute, ctx, 'os-security-groups:create', { project_id: ctx.projectId });
    const body = req.body;
    if (!isObject(body) || !isObject(body.security_group)) throw badRequest('The request body is invalid: security_group is missing.');
    const name = checkProperty(body.security_group.name, 'name');
    const description = checkProperty(body.security_group.description, 'description');
    const created = await neutron<{ security_group: NeutronGroup }>(compute, ctx, 'POST', '/v2.0/security-groups', { security_group: { name, description } }, (status, message) =>
      status === 409 || status === 403 ? forbidden(`Quota exceeded, too many security groups. ${message}`) : null,
    );
    const group = created.security_group;
    return { security_group: groupView(group, await remoteGroups(compute, ctx, [group])) };
  });

  app.get<{ Params: { id: string } }>('/v2.1/os-security-groups/:id', async (req) => {
    proxyUntil235(req);
    const ctx = contextOf(req);
    authorize(compute, ctx, 'os-security-groups:show', { project_id: ctx.projectId });
    const group = await loadGroup(compute, ctx, checkId(req.params.id));
    return { security_group: groupView(group, await remoteGroups(compute, ctx, [group])) };
  });

  app.put<{ Params: { id: string } }>('/v2.1/os-security-groups/:id', async (req) => {
    proxyUntil235(req);
    const ctx = contextOf(req);
    authorize(compute, ctx, 'os-security-groups:update', { project_id: ctx.projectId });
    const id = checkId(req.params.id);
    const body = req.body;
    if (!isObject(body) || !isObject(body.security_group)) throw badRequest('The request body is invalid: security_group is missing.');
    const name = checkProperty(body.security_group.name, 'name');
    const description = checkProperty(body.security_group.description, 'description');
    await loadGroup(compute, ctx, id);
    const updated = await neutron<{ security_group: NeutronGroup }>(compute, ctx, 'PUT', `/v2.0/security-groups/${id}`, { security_group: { name, description } }, (status) =>
      status === 404 ? notFound(`Security group ${id} not found.`) : null,
    );
    const group = updated.security_group;
    return { security_group: groupView(group, await remoteGroups(compute, ctx, [group])) };
  });

  app.delete<{ Params: { id: string } }>('/v2.1/os-security-groups/:id', async (req, reply) => {
    proxyUntil235(req);
    const ctx = contextOf(req);
    authorize(compute, ctx, 'os-security-groups:delete', { project_id: ctx.projectId });
    const id = checkId(req.params.id);
    await loadGroup(compute, ctx, id);
    await neutron(compute, ctx, 'DELETE', `/v2.0/security-groups/${id}`, undefined, (status, message) => (status === 404 ? notFound(`Security group ${id} not found.`) : status === 409 ? badRequest(message) : null));
    return reply.code(202).send();
  });

  app.post('/v2.1/os-security-group-rules', async (req) => {
    proxyUntil235(req);
    const ctx = contextOf(req);
    authorize(compute, ctx, 'os-security-groups:rule:create', { project_id: ctx.projectId });
    const body = req.body;
    if (!isObject(body) || !isObject(body.security_group_rule)) throw badRequest('The request body is invalid: security_group_rule is missing.');
    const args = body.security_group_rule;
    const parent = await loadGroup(compute, ctx, checkId(args.parent_group_id));
    let source: NeutronGroup | null = null;
    if (args.group_id !== undefined && args.group_id !== null) source = await loadGroup(compute, ctx, checkId(args.group_id));
    const cidr = source ? undefined : parseCidr(args.cidr);
    const rule = ingressRule({ protocol: args.ip_protocol, from: args.from_port, to: args.to_port, ...(cidr === undefined ? {} : { cidr }), ...(source ? { groupId: source.id } : {}) });
    if (!rule) throw badRequest('Not enough parameters to build a valid rule.');
    if (cidr !== undefined) {
      const [net, prefix] = cidr.split('/');
      if (prefix === '0' && net !== '0.0.0.0' && net !== '::') throw badRequest(`Bad prefix for network in cidr ${cidr}`);
    }
    if ((parent.security_group_rules ?? []).some((r) => sameRule(r, rule))) throw badRequest(`This rule already exists in group ${parent.id}`);
    const created = await neutron<{ security_group_rule: NeutronRule }>(compute, ctx, 'POST', '/v2.0/security-group-rules', { security_group_rule: { ...rule, security_group_id: parent.id } }, (status, message) =>
      status === 409 ? badRequest(`This rule already exists in group ${parent.id}`) : status === 403 ? forbidden(`Quota exceeded, too many security group rules. ${message}`) : null,
    );
    const groups = new Map([[parent.id, parent], ...(source ? ([[source.id, source]] as [string, NeutronGroup][]) : [])]);
    return { security_group_rule: ruleView(created.security_group_rule, groups) };
  });

  app.delete<{ Params: { id: string } }>('/v2.1/os-security-group-rules/:id', async (req, reply) => {
    proxyUntil235(req);
    const ctx = contextOf(req);
    authorize(compute, ctx, 'os-security-groups:rule:delete', { project_id: ctx.projectId });
    const id = req.params.id;
    if (!isUuid(id)) throw badRequest('Security group id should be uuid');
    await neutron(compute, ctx, 'DELETE', `/v2.0/security-group-rules/${id}`, undefined, (status) => (status === 404 ? notFound(`Rule (${id}) not found.`) : null));
    return reply.code(202).send();
  });

  app.get<{ Params: { id: string } }>('/v2.1/servers/:id/os-security-groups', async (req) => {
    proxyUntil235(req);
    const ctx = contextOf(req);
    const instance = await loadInstanceFor(compute, ctx, req.params.id, 'os-security-groups:list');
    const ports = await compute.client.request<{ ports?: { security_groups: string[] }[] }>('network', 'GET', `/v2.0/ports?device_id=${instance.uuid}`);
    if (ports.status >= 400) throw new ComputeError(500, `The network service answered ${ports.status}`);
    const ids = [...new Set((ports.body.ports ?? []).flatMap((p) => p.security_groups))];
    const groups: NeutronGroup[] = [];
    for (const id of ids) {
      const res = await compute.client.request<{ security_group?: NeutronGroup }>('network', 'GET', `/v2.0/security-groups/${id}`);
      if (res.status < 400 && res.body.security_group) groups.push(res.body.security_group);
    }
    const known = await remoteGroups(compute, ctx, groups);
    return { security_groups: groups.map((g) => groupView(g, known)) };
  });
}
