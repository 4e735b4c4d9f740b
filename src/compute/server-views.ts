import { createHash } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';
import type { FastifyRequest } from 'fastify';
import type { RequestContext } from '../core/auth/context.js';
import { allowed, atLeast, isAdmin, type ComputeService } from './compute.js';
import { apiTime, parseJson } from './common.js';
import type { InstanceFaultRow, InstanceRow } from './db/schema.js';
import type { EmbeddedFlavor, NetworkInfo } from './rpc.js';
import { serverStatus } from './vm-states.js';
import { badRequest } from './errors.js';
import { invalidField } from './api/nova-input.js';

/** What a server view needs besides the row (loaded for a page of servers at once). */
export interface ServerExtras {
  metadata: Map<string, Record<string, string>>;
  tags: Map<string, string[]>;
  faults: Map<string, InstanceFaultRow>;
  groups: Map<string, string[]>;
  volumes: Map<string, { id: string; delete_on_termination: boolean }[]>;
  hostStatus: Map<string, string>;
}

/** Loads the extras of these servers in a few queries. */
export async function loadServerExtras(compute: ComputeService, rows: InstanceRow[]): Promise<ServerExtras> {
  const uuids = rows.map((r) => r.uuid);
  const extras: ServerExtras = { metadata: new Map(), tags: new Map(), faults: new Map(), groups: new Map(), volumes: new Map(), hostStatus: new Map() };
  if (uuids.length === 0) return extras;
  const db = compute.db;
  for (const chunk of chunks(uuids, 500)) {
    for (const m of await db.selectFrom('instance_metadata').selectAll().where('instance_uuid', 'in', chunk).execute()) {
      extras.metadata.set(m.instance_uuid, { ...(extras.metadata.get(m.instance_uuid) ?? {}), [m.key]: m.value });
    }
    for (const t of await db.selectFrom('instance_tag').selectAll().where('instance_uuid', 'in', chunk).orderBy('tag').execute()) {
      extras.tags.set(t.instance_uuid, [...(extras.tags.get(t.instance_uuid) ?? []), t.tag]);
    }
    for (const f of await db.selectFrom('instance_fault').selectAll().where('instance_uuid', 'in', chunk).orderBy('created_at').execute()) extras.faults.set(f.instance_uuid, f);
    for (const g of await db.selectFrom('instance_group_member').selectAll().where('instance_uuid', 'in', chunk).execute()) {
      extras.groups.set(g.instance_uuid, [...(extras.groups.get(g.instance_uuid) ?? []), g.group_uuid]);
    }
    for (const b of await db.selectFrom('block_device_mapping').select(['instance_uuid', 'volume_id', 'delete_on_termination']).where('instance_uuid', 'in', chunk).where('volume_id', 'is not', null).execute()) {
      extras.volumes.set(b.instance_uuid, [...(extras.volumes.get(b.instance_uuid) ?? []), { id: b.volume_id ?? '', delete_on_termination: b.delete_on_termination === 1 }]);
    }
  }
  const hosts = [...new Set(rows.map((r) => r.host).filter((h): h is string => h !== null))];
  if (hosts.length > 0) {
    const services = await db.selectFrom('service').select(['host', 'disabled', 'forced_down', 'last_seen_up']).where('binary', '=', 'nova-compute').where('host', 'in', hosts).execute();
    const downAfter = Date.now() - compute.config.compute.service_down_time * 1000;
    for (const s of services) {
      const up = !s.forced_down && s.last_seen_up !== null && Date.parse(s.last_seen_up) >= downAfter;
      extras.hostStatus.set(s.host, s.forced_down ? 'DOWN' : !up ? 'UNKNOWN' : s.disabled ? 'MAINTENANCE' : 'UP');
    }
  }
  return extras;
}

function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** `links` of a resource: self (versioned) and bookmark. */
export function links(compute: ComputeService, collection: string, id: string): { rel: string; href: string }[] {
  return [
    { rel: 'self', href: `${compute.publicUrl}/v2.1/${collection}/${id}` },
    { rel: 'bookmark', href: `${compute.publicUrl}/${collection}/${id}` },
  ];
}

/** Nova's `hostId`: a hash of the project and host, so projects cannot map the cloud's hosts. */
export function hostId(projectId: string, host: string | null): string {
  return host ? createHash('sha224').update(projectId + host).digest('hex') : '';
}

/** The `addresses` of a server: per network name, each fixed and floating address. */
export function addresses(networkInfo: NetworkInfo, withExtensions: boolean): Record<string, Record<string, unknown>[]> {
  const out: Record<string, Record<string, unknown>[]> = {};
  for (const vif of networkInfo) {
    const list = out[vif.network_name] ?? [];
    out[vif.network_name] = list;
    for (const ip of vif.fixed_ips) {
      list.push({ version: ip.version, addr: ip.ip_address, ...(withExtensions ? { 'OS-EXT-IPS:type': 'fixed', 'OS-EXT-IPS-MAC:mac_addr': vif.mac_address } : {}) });
      for (const fip of ip.floating_ips) list.push({ version: 4, addr: fip, ...(withExtensions ? { 'OS-EXT-IPS:type': 'floating', 'OS-EXT-IPS-MAC:mac_addr': vif.mac_address } : {}) });
    }
  }
  return out;
}

/** A server's flavor in its view: a link before 2.47, the sizes (and extra specs when allowed) from 2.47. */
function flavorView(compute: ComputeService, req: FastifyRequest, ctx: RequestContext, flavor: EmbeddedFlavor, projectId: string): Record<string, unknown> {
  if (!atLeast(req, '2.47')) return { id: flavor.flavorid, links: [{ rel: 'bookmark', href: `${compute.publicUrl}/flavors/${flavor.flavorid}` }] };
  const view: Record<string, unknown> = { vcpus: flavor.vcpus, ram: flavor.memory_mb, disk: flavor.root_gb, ephemeral: flavor.ephemeral_gb, swap: flavor.swap, original_name: flavor.name };
  if (allowed(compute, ctx, 'servers:show:flavor-extra-specs', { project_id: projectId })) view.extra_specs = flavor.extra_specs ?? {};
  return view;
}

/** The full view of a server (`GET /servers/{id}`, `/servers/detail`) at the request's microversion. */
export function serverView(compute: ComputeService, req: FastifyRequest, ctx: RequestContext, row: InstanceRow, extras: ServerExtras): Record<string, unknown> {
  const admin = isAdmin(compute, ctx);
  const networkInfo = parseJson<NetworkInfo>(row.network_info, []);
  const status = row.deleted ? 'DELETED' : serverStatus(row.vm_state, row.task_state);
  const view: Record<string, unknown> = {
    id: row.uuid,
    name: row.display_name,
    status,
    tenant_id: row.project_id,
    user_id: row.user_id,
    metadata: extras.metadata.get(row.uuid) ?? {},
    hostId: hostId(row.project_id, row.host),
    image: row.image_ref ? { id: row.image_ref, links: [{ rel: 'bookmark', href: `${compute.publicUrl}/images/${row.image_ref}` }] } : '',
    flavor: flavorView(compute, req, ctx, parseJson<EmbeddedFlavor>(row.flavor, {} as EmbeddedFlavor), row.project_id),
    created: apiTime(row.created_at),
    updated: apiTime(row.updated_at),
    addresses: addresses(networkInfo, true),
    accessIPv4: row.access_ip_v4 ?? '',
    accessIPv6: row.access_ip_v6 ?? '',
    links: links(compute, 'servers', row.uuid),
    'OS-DCF:diskConfig': row.disk_config,
    'OS-EXT-AZ:availability_zone': row.availability_zone ?? '',
    config_drive: row.config_drive,
    key_name: row.key_name,
    'OS-SRV-USG:launched_at': row.launched_at ? row.launched_at.replace('Z', '').padEnd(26, '0').slice(0, 26) : null,
    'OS-SRV-USG:terminated_at': row.terminated_at ? row.terminated_at.replace('Z', '').padEnd(26, '0').slice(0, 26) : null,
    'OS-EXT-STS:task_state': row.task_state,
    'OS-EXT-STS:vm_state': row.vm_state,
    'OS-EXT-STS:power_state': row.power_state,
    'os-extended-volumes:volumes_attached': (extras.volumes.get(row.uuid) ?? []).map((v) => (atLeast(req, '2.3') ? v : { id: v.id })),
  };
  if (['BUILD', 'ACTIVE'].includes(status)) view.progress = row.progress;
  const groups = parseJson<string[]>(row.security_groups, []);
  // As in Nova, a server without security groups has no `security_groups` key.
  if (groups.length > 0) view.security_groups = groups.map((name) => ({ name }));
  const fault = extras.faults.get(row.uuid);
  if (fault && ['ERROR', 'DELETED'].includes(status)) {
    view.fault = { code: fault.code, created: apiTime(fault.created_at), message: fault.message, ...(admin || fault.code !== 500 ? { details: fault.details } : {}) };
  }
  if (allowed(compute, ctx, 'os-extended-server-attributes', { project_id: row.project_id })) {
    view['OS-EXT-SRV-ATTR:host'] = row.host;
    view['OS-EXT-SRV-ATTR:hypervisor_hostname'] = row.node;
    view['OS-EXT-SRV-ATTR:instance_name'] = `instance-${row.uuid.slice(0, 8)}`;
    if (atLeast(req, '2.3')) {
      view['OS-EXT-SRV-ATTR:reservation_id'] = row.reservation_id;
      view['OS-EXT-SRV-ATTR:launch_index'] = row.launch_index;
      view['OS-EXT-SRV-ATTR:hostname'] = row.hostname;
      view['OS-EXT-SRV-ATTR:kernel_id'] = '';
      view['OS-EXT-SRV-ATTR:ramdisk_id'] = '';
      view['OS-EXT-SRV-ATTR:root_device_name'] = row.root_device_name;
      view['OS-EXT-SRV-ATTR:user_data'] = row.user_data;
    }
  } else if (atLeast(req, '2.90')) {
    view['OS-EXT-SRV-ATTR:hostname'] = row.hostname;
  }
  if (atLeast(req, '2.9')) view.locked = row.locked === 1;
  if (atLeast(req, '2.16') && row.host && allowed(compute, ctx, 'servers:show:host_status', { project_id: row.project_id })) view.host_status = extras.hostStatus.get(row.host) ?? 'UNKNOWN';
  if (atLeast(req, '2.19')) view.description = row.display_description;
  if (atLeast(req, '2.26')) view.tags = extras.tags.get(row.uuid) ?? [];
  if (atLeast(req, '2.63')) view.trusted_image_certificates = parseJson<string[] | null>(row.trusted_certs, null);
  if (atLeast(req, '2.73')) view.locked_reason = row.locked_reason;
  return view;
}

/** `server_groups` of the show view (2.71+): only `GET /servers/{id}` has it. */
export function withServerGroups(req: FastifyRequest, view: Record<string, unknown>, extras: ServerExtras, uuid: string): Record<string, unknown> {
  if (atLeast(req, '2.71')) view.server_groups = extras.groups.get(uuid) ?? [];
  return view;
}

/** What Nova's update and rebuild answers keep of the full view before 2.75. */
const CHANGED_VIEW_KEYS = ['id', 'name', 'status', 'tenant_id', 'user_id', 'metadata', 'hostId', 'image', 'flavor', 'created', 'updated', 'accessIPv4', 'accessIPv6', 'links', 'OS-DCF:diskConfig', 'progress', 'fault', 'locked', 'description', 'tags', 'trusted_image_certificates', 'locked_reason'];

/**
 * The server in the answer to `PUT /servers/{id}` and the rebuild action:
 * before 2.75 a short view (no extended attributes, addresses without their
 * type and MAC; rebuild adds `key_name` from 2.54 and `user_data` from 2.57);
 * from 2.75 the show view (rebuild with `user_data` in place of
 * `OS-EXT-SRV-ATTR:user_data`). `server_groups` from 2.71.
 */
export function changedServerView(compute: ComputeService, req: FastifyRequest, ctx: RequestContext, row: InstanceRow, extras: ServerExtras, kind: 'update' | 'rebuild'): Record<string, unknown> {
  const full = withServerGroups(req, serverView(compute, req, ctx, row, extras), extras, row.uuid);
  if (atLeast(req, '2.75')) {
    if (kind === 'rebuild') {
      delete full['OS-EXT-SRV-ATTR:user_data'];
      full.user_data = row.user_data;
    }
    return full;
  }
  const view: Record<string, unknown> = {};
  for (const key of CHANGED_VIEW_KEYS) if (key in full) view[key] = full[key];
  view.addresses = addresses(parseJson<NetworkInfo>(row.network_info, []), false);
  if (kind === 'rebuild' && atLeast(req, '2.54')) view.key_name = row.key_name;
  if (kind === 'rebuild' && atLeast(req, '2.57')) view.user_data = row.user_data;
  if (atLeast(req, '2.71')) view.server_groups = full.server_groups;
  return view;
}

/** Nova's `accessIPv4`/`accessIPv6` formats in a create or update body (400 `... is not a 'ipv4'`). */
export function checkAccessIps(server: Record<string, unknown>): void {
  for (const [field, ok, format] of [['accessIPv4', isIPv4, 'ipv4'], ['accessIPv6', isIPv6, 'ipv6']] as const) {
    const value = server[field];
    if (value === undefined || value === null || value === '') continue;
    if (typeof value !== 'string' || !ok(value)) throw badRequest(`Invalid input for field/attribute ${field}. Value: ${String(value)}. '${String(value)}' is not a '${format}'`);
  }
}

/** An IPv6 address in its canonical short form (`::babe:dc0c:1602`), as Nova's database stores access IPs. */
export function canonicalIpv6(address: string): string {
  return isIPv6(address) ? new URL(`http://[${address}]/`).hostname.slice(1, -1) : address;
}

/** `OS-DCF:diskConfig` of a request: AUTO or MANUAL, else 400 as Nova's schema says; undefined when absent. */
export function diskConfigOf(body: Record<string, unknown>): 'AUTO' | 'MANUAL' | undefined {
  const value = body['OS-DCF:diskConfig'];
  if (value === undefined) return undefined;
  if (value !== 'AUTO' && value !== 'MANUAL') throw invalidField('OS-DCF:diskConfig', value, `'${String(value)}' is not one of ['AUTO', 'MANUAL']`);
  return value;
}
