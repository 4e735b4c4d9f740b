import type { RequestContext } from '../core/auth/context.js';
import { neutronTime, newUuid, owner, readCreate, STANDARD_ATTRS, str, type Attrs } from './common.js';
import type { SecurityGroupRuleRow } from './db/schema.js';
import { badRequest, invalidInput, NeutronError } from './errors.js';
import { formatCidr, formatIp, parseCidr, parseIp } from './ipam/addresses.js';

/**
 * Security group rules as Neutron reads, checks and compares them
 * (neutron/db/securitygroups_db.py, neutron-lib's security group
 * converters): the request's attributes, the checks that need no lookup, the
 * key under which two rules are the same, new rows and the view.
 */

/** IP protocol names Neutron accepts in rules, with their numbers, in Neutron's order. */
export const PROTOCOLS: Record<string, number> = {
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
/** The ethertypes of rules; a new group has an egress rule for each. */
export const ETHERTYPES = ['IPv4', 'IPv6'] as const;

const SUPPORTED_PROTOCOLS = `[None, ${Object.keys(PROTOCOLS)
  .map((p) => `'${p}'`)
  .join(', ')}]`;

function refuse(type: string, message: string): never {
  throw badRequest(message, type);
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

// Rules have the standard attributes but a name, and cannot be updated.
const { name: _name, ...UNNAMED_ATTRS } = STANDARD_ATTRS;

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
  ...UNNAMED_ATTRS,
};

/** A rule as the API shows it (with `normalized_cidr`: the prefix without host bits). */
export function ruleView(row: SecurityGroupRuleRow): Record<string, unknown> {
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

/** A rule as a request gives it: its row without what the service sets. */
export type RuleInput = Omit<SecurityGroupRuleRow, 'id' | 'created_at' | 'updated_at' | 'revision_number'>;

function protocolNumber(name: string): number {
  return PROTOCOLS[name] ?? Number(name);
}

/**
 * The checks Neutron makes of one rule before looking anything up, in its
 * order; also puts the rule in canonical form (IPv6 ICMP by its proper name,
 * the whole port range 1-65535 as no range).
 */
export function checkRule(rule: RuleInput): void {
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
export function ruleKey(rule: Omit<RuleInput, 'project_id' | 'description'>): string {
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
export function readRules(ctx: RequestContext, body: unknown): { rules: RuleInput[]; bulk: boolean } {
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

/** A new rule row of group `groupId` (revision 0): ingress over IPv4 from anywhere unless `rule` says otherwise. */
export function newRuleRow(groupId: string, projectId: string, rule: Partial<SecurityGroupRuleRow>, now: string): SecurityGroupRuleRow {
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
