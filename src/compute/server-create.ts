import { randomBytes } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { RequestContext } from '../core/auth/context.js';
import { atLeast, authorize, isAdmin, type ComputeService } from './compute.js';
import { canonicalUuid, isoNow, isUuid, newUuid } from './common.js';
import type { InstanceRow } from './db/schema.js';
import { badRequest, conflict, ComputeError } from './errors.js';
import { embeddedFlavor, loadFlavorFor } from './flavors.js';
import { recordAction } from './instances.js';
import { checkServerQuota, lockProjectQuota, projectLimits, serversThatFit } from './quotas.js';
import { canonicalIpv6, checkAccessIps, diskConfigOf } from './server-views.js';
import { metadataLimitExceeded } from './server-metadata.js';
import { ConductorRpc, type RequestedNetwork, type RequestSpec } from './rpc.js';
import { invalidField, isObject, notOfType, unexpected } from './api/nova-input.js';
import { mappingRows, parseBlockDevices, releaseReservations, reserveVolumes, resolveBlockDevices, type ResolvedBdms } from './block-devices.js';

/** What a create request became after validation. */
export interface CreatedServers {
  uuids: string[];
  reservationId: string;
  adminPass: string;
  securityGroups: string[];
  /** `OS-DCF:diskConfig` as recorded. */
  diskConfig: string;
}

const TOP_KEYS = ['server', 'os:scheduler_hints', 'OS-SCH-HNT:scheduler_hints'];
const SERVER_KEYS = [
  'name', 'imageRef', 'flavorRef', 'networks', 'adminPass', 'metadata', 'personality', 'user_data', 'key_name', 'security_groups', 'availability_zone', 'config_drive',
  'min_count', 'max_count', 'return_reservation_id', 'block_device_mapping', 'block_device_mapping_v2', 'accessIPv4', 'accessIPv6', 'OS-DCF:diskConfig',
  'description', 'tags', 'trusted_image_certificates', 'host', 'hypervisor_hostname', 'hostname',
];

function str(body: Record<string, unknown>, key: string, max = 255): string | undefined {
  const v = body[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw invalidField(key, v, notOfType(v, 'string'));
  if (v.length > max) throw invalidField(key, v, `'${v}' is too long`);
  return v;
}

function count(body: Record<string, unknown>, key: string): number | undefined {
  const v = body[key];
  if (v === undefined) return undefined;
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n)) throw invalidField(key, v, notOfType(v, 'integer'));
  if (n < 1) throw invalidField(key, v, `${n} is less than the minimum of 1`);
  return n;
}

/** The image a server boots from, as the image service gives it to the caller. */
async function loadImage(compute: ComputeService, ctx: RequestContext, imageRef: string): Promise<{ id: string; min_disk: number; min_ram: number; properties: Record<string, unknown>; size: number }> {
  const id = imageRef.split('/').pop() ?? '';
  if (!isUuid(id)) throw badRequest(`Invalid image identifier or unable to access requested image.`);
  const res = await compute.client.request<Record<string, unknown>>('image', 'GET', `/v2/images/${canonicalUuid(id)}`, { userToken: ctx.authToken });
  if (res.status === 404) throw badRequest(`Image ${id} could not be found.`);
  if (res.status >= 400) throw badRequest(`Invalid image identifier or unable to access requested image.`);
  const image = res.body;
  if (image.status !== 'active') throw badRequest(`Image ${id} is not active.`);
  const standard = new Set(['id', 'name', 'status', 'visibility', 'protected', 'checksum', 'owner', 'size', 'min_ram', 'min_disk', 'disk_format', 'container_format', 'created_at', 'updated_at', 'tags', 'file', 'self', 'schema', 'virtual_size', 'os_hidden', 'os_hash_algo', 'os_hash_value', 'locations', 'direct_url', 'stores']);
  const properties = Object.fromEntries(Object.entries(image).filter(([k]) => !standard.has(k)));
  properties.disk_format = image.disk_format;
  properties.container_format = image.container_format;
  return { id: String(image.id), min_disk: Number(image.min_disk ?? 0), min_ram: Number(image.min_ram ?? 0), properties, size: Number(image.size ?? 0) };
}

/** Resolves `networks`: `auto` to the one network the project can use, each entry checked with the caller's token. */
async function requestedNetworks(compute: ComputeService, ctx: RequestContext, req: FastifyRequest, value: unknown): Promise<'none' | RequestedNetwork[]> {
  if (value === 'none') return 'none';
  const net = async <T>(path: string): Promise<{ status: number; body: T }> => compute.client.request<T>('network', 'GET', path, { userToken: ctx.authToken });
  if (value === undefined || value === 'auto') {
    if (value === undefined && atLeast(req, '2.37')) throw invalidField('networks', value, "'networks' is a required property");
    const res = await net<{ networks: { id: string; 'router:external'?: boolean }[] }>(`/v2.0/networks?fields=id&fields=router:external`);
    const usable = (res.body.networks ?? []).filter((n) => !n['router:external']);
    if (usable.length === 0) {
      if (value === 'auto') throw badRequest('Unable to automatically allocate a network for project');
      return [];
    }
    if (usable.length > 1) throw conflict('Multiple possible networks found, use a Network ID to be more specific.');
    return [{ network_id: usable[0]?.id ?? '' }];
  }
  if (!Array.isArray(value)) throw invalidField('networks', value, notOfType(value, 'array'));
  const out: RequestedNetwork[] = [];
  for (const entry of value) {
    if (!isObject(entry)) throw invalidField('networks', entry, notOfType(entry, 'object'));
    const extra = Object.keys(entry).filter((k) => !['uuid', 'port', 'fixed_ip', 'tag'].includes(k));
    if (extra.length) throw invalidField('networks', entry, unexpected(extra));
    const r: RequestedNetwork = {};
    if (entry.port !== undefined && entry.port !== null) {
      if (!isUuid(entry.port)) throw invalidField('port', entry.port, `'${String(entry.port)}' is not a 'uuid'`);
      const port = await net<{ port?: { id: string; device_id: string; network_id: string } }>(`/v2.0/ports/${entry.port}`);
      if (port.status === 404 || !port.body.port) throw badRequest(`Port id ${entry.port} could not be found.`);
      if (port.body.port.device_id) throw conflict(`Port ${entry.port} is still in use.`);
      r.port_id = port.body.port.id;
      r.network_id = port.body.port.network_id;
    } else {
      if (typeof entry.uuid !== 'string') throw badRequest('Bad networks format: network uuid is not in proper format (null)');
      if (!isUuid(entry.uuid)) throw badRequest(`Bad networks format: network uuid is not in proper format (${entry.uuid})`);
      const res = await net<{ network?: { id: string } }>(`/v2.0/networks/${entry.uuid}?fields=id`);
      if (res.status === 404 || !res.body.network) throw badRequest(`Network ${entry.uuid} could not be found.`);
      r.network_id = res.body.network.id;
      if (entry.fixed_ip !== undefined) {
        if (typeof entry.fixed_ip !== 'string' || !/^[0-9a-fA-F.:]+$/.test(entry.fixed_ip)) throw invalidField('fixed_ip', entry.fixed_ip, `'${String(entry.fixed_ip)}' is not a 'ip-address'`);
        r.fixed_ip = entry.fixed_ip;
      }
    }
    if (typeof entry.tag === 'string') r.tag = entry.tag;
    out.push(r);
  }
  return out;
}

/**
 * How many servers the network service's port quota leaves room for (each
 * needs a port on every requested network it is not given a port for), as
 * Nova asks before it records anything: 403 `Maximum number of ports
 * exceeded` when not even `minCount` fit. Infinity when no port is needed
 * or the quota is unlimited.
 */
async function serversWithPorts(compute: ComputeService, ctx: RequestContext, networks: 'none' | RequestedNetwork[], minCount: number): Promise<number> {
  const perServer = networks === 'none' ? 0 : networks.filter((n) => !n.port_id).length;
  if (perServer === 0) return Infinity;
  // The limit first (cheap); what is used only when there is a limit.
  const limits = await compute.client.request<{ quota?: { port?: number } }>('network', 'GET', `/v2.0/quotas/${ctx.projectId}`, { userToken: ctx.authToken });
  const limit = limits.status === 200 ? limits.body.quota?.port : undefined;
  if (limit === undefined || limit < 0) return Infinity;
  const res = await compute.client.request<{ quota?: { port?: { limit: number; used: number; reserved?: number } } }>('network', 'GET', `/v2.0/quotas/${ctx.projectId}/details`, { userToken: ctx.authToken });
  const port = res.status === 200 ? res.body.quota?.port : undefined;
  if (!port || port.limit < 0) return Infinity;
  const room = Math.floor((port.limit - port.used - (port.reserved ?? 0)) / perServer);
  if (room < minCount) throw new ComputeError(403, 'Maximum number of ports exceeded');
  return room;
}

/** Security group names, each checked to exist for the project (Nova asks the network service). */
async function securityGroups(compute: ComputeService, ctx: RequestContext, value: unknown): Promise<string[]> {
  if (value === undefined) return ['default'];
  if (!Array.isArray(value)) throw invalidField('security_groups', value, notOfType(value, 'array'));
  const names = value.map((g) => {
    if (!isObject(g) || typeof g.name !== 'string' || g.name === '') throw invalidField('security_groups', g, "'name' is a required property");
    return g.name;
  });
  const unique = [...new Set(names)];
  const res = await compute.client.request<{ security_groups?: { id: string; name: string }[] }>('network', 'GET', `/v2.0/security-groups?project_id=${ctx.projectId}&fields=id&fields=name`, { userToken: ctx.authToken });
  for (const name of unique) {
    if (name === 'default') continue;
    if (!(res.body.security_groups ?? []).some((g) => g.name === name || g.id === name)) throw badRequest(`Security group ${name} not found for project ${ctx.projectId}.`);
  }
  return unique;
}

/**
 * `POST /servers`: validates the request (flavor, image, networks, key,
 * group, quotas), records the servers (`building`/`scheduling`) with their
 * request spec in one transaction that also checks the quota, then hands
 * them to the conductor. Nothing is recorded when any check fails.
 */
export async function createServers(compute: ComputeService, req: FastifyRequest, ctx: RequestContext, body: unknown): Promise<CreatedServers> {
  if (!isObject(body)) throw invalidField('server', body, notOfType(body, 'object'));
  const extraTop = Object.keys(body).filter((k) => !TOP_KEYS.includes(k));
  if (extraTop.length) throw badRequest(`Invalid input for field/attribute . Value: ${JSON.stringify(body)}. ${unexpected(extraTop)}`);
  const server = body.server;
  if (!isObject(server)) throw invalidField('server', server, server === undefined ? "'server' is a required property" : notOfType(server, 'object'));
  const extra = Object.keys(server).filter((k) => !SERVER_KEYS.includes(k));
  if (extra.length) throw invalidField('server', server, unexpected(extra));
  const target = { project_id: ctx.projectId };
  authorize(compute, ctx, 'servers:create', target);

  const name = str(server, 'name');
  if (name === undefined) throw invalidField('server', server, "'name' is a required property");
  if (name.trim() === '' || name !== name.trim()) throw invalidField('name', name, `'${name}' does not match the name pattern`);
  const description = atLeast(req, '2.19') ? (server.description === null ? null : str(server, 'description')) : undefined;
  const flavorRef = server.flavorRef;
  if (flavorRef === undefined) throw invalidField('server', server, "'flavorRef' is a required property");
  if (typeof flavorRef !== 'string' && typeof flavorRef !== 'number') throw invalidField('flavorRef', flavorRef, notOfType(flavorRef, 'string'));
  const flavorRow = await loadFlavorFor(compute, ctx, flavorRef).catch((err: unknown) => {
    // A flavor the caller cannot use is the request's fault here: 400, with the 404's message.
    throw err instanceof ComputeError && err.status === 404 ? badRequest(err.message) : err;
  });
  const flavor = embeddedFlavor(flavorRow, flavorRow.extra_specs);
  const minCount = count(server, 'min_count') ?? 1;
  const maxCount = count(server, 'max_count') ?? minCount;
  if (minCount > maxCount) throw badRequest("min_count must be <= max_count");

  const imageRef = str(server, 'imageRef');
  const bdms = parseBlockDevices(req, server, Boolean(imageRef));
  if (!imageRef && bdms.length === 0) throw badRequest('Missing imageRef attribute');
  if (bdms.length > 0) authorize(compute, ctx, 'servers:create:attach_volume', target);
  const image = imageRef ? await loadImage(compute, ctx, imageRef) : null;
  // A volume root is checked once the block devices are (below); a local root here.
  const localRoot = !bdms.some((b) => b.boot_index === 0 && b.destination_type === 'volume');
  if (image && localRoot) {
    if (flavor.memory_mb < image.min_ram) throw badRequest('Flavor\'s memory is too small for requested image.');
    if (flavor.root_gb > 0 && flavor.root_gb < image.min_disk) throw badRequest("Flavor's disk is too small for requested image.");
    if (flavor.root_gb > 0 && image.size > flavor.root_gb * 1024 ** 3) throw badRequest("Flavor's disk is too small for requested image.");
    if (flavor.root_gb === 0) authorize(compute, ctx, 'servers:create:zero_disk_flavor', target);
  }

  let keyData: string | null = null;
  const keyName = server.key_name === null ? undefined : str(server, 'key_name');
  if (keyName !== undefined) {
    const key = await compute.db.selectFrom('key_pair').select('public_key').where('user_id', '=', ctx.userId).where('name', '=', keyName).executeTakeFirst();
    if (!key) throw badRequest('Invalid key_name provided.');
    keyData = key.public_key;
  }
  const userData = server.user_data === null ? undefined : str(server, 'user_data', 65535);
  if (userData !== undefined && !/^[A-Za-z0-9+/\s]*={0,2}\s*$/.test(userData)) throw invalidField('user_data', userData, `'${userData}' is not a 'base64'`);
  const metadata = server.metadata ?? {};
  if (!isObject(metadata)) throw invalidField('metadata', metadata, notOfType(metadata, 'object'));
  for (const [k, v] of Object.entries(metadata)) {
    if (k.length < 1 || k.length > 255) throw invalidField('metadata', metadata, `'${k}' does not match any of the regexes: '^[a-zA-Z0-9-_:. ]{1,255}$'`);
    if (typeof v !== 'string') throw invalidField(k, v, notOfType(v, 'string'));
    if (v.length > 255) throw invalidField(k, v, `'${v}' is too long`);
  }
  const metadataItems = (await projectLimits(compute.db, compute.config.compute, ctx.projectId ?? '', ctx.userId)).metadata_items;
  if (metadataItems >= 0 && Object.keys(metadata).length > metadataItems) throw metadataLimitExceeded(metadataItems);
  checkAccessIps(server);
  const accessIpv6 = str(server, 'accessIPv6') === undefined ? null : canonicalIpv6(str(server, 'accessIPv6') ?? '');

  const zoneText = str(server, 'availability_zone');
  let zone: string | null = zoneText ?? (compute.config.compute.default_schedule_zone || null);
  let forceHost: string | null = null;
  let forceNode: string | null = null;
  if (zone?.includes(':')) {
    const [z, h, n] = zone.split(':');
    authorize(compute, ctx, 'servers:create:forced_host', target);
    zone = z || null;
    forceHost = h || null;
    forceNode = n || null;
  }
  const requestedHost = atLeast(req, '2.74') ? (str(server, 'host') ?? null) : null;
  const requestedNode = atLeast(req, '2.74') ? (str(server, 'hypervisor_hostname') ?? null) : null;
  if (requestedHost || requestedNode) authorize(compute, ctx, 'servers:create:requested_destination', target);
  if (zone !== null) {
    const zones = await knownZones(compute);
    if (!zones.has(zone)) throw badRequest(`The requested availability zone is not available`);
  }
  const hints = (isObject(body['os:scheduler_hints']) ? body['os:scheduler_hints'] : isObject(body['OS-SCH-HNT:scheduler_hints']) ? body['OS-SCH-HNT:scheduler_hints'] : {}) as Record<string, unknown>;
  const list = (v: unknown): string[] => (v === undefined ? [] : Array.isArray(v) ? v.map(String) : [String(v)]);
  let group: RequestSpec['group'] = null;
  if (hints.group !== undefined) {
    const row = await compute.db.selectFrom('instance_group').selectAll().where('uuid', '=', String(hints.group)).executeTakeFirst();
    if (!row || (row.project_id !== ctx.projectId && !isAdmin(compute, ctx))) throw badRequest(`Invalid server group ${String(hints.group)}`);
    group = { uuid: row.uuid, policy: row.policy, rules: JSON.parse(row.rules) as Record<string, number> };
  }

  const networks = server.networks === undefined && !atLeast(req, '2.37') ? await requestedNetworks(compute, ctx, req, undefined) : await requestedNetworks(compute, ctx, req, server.networks);
  const groups = await securityGroups(compute, ctx, server.security_groups);
  if (Array.isArray(networks) && networks.some((n) => n.port_id) && maxCount > 1) throw badRequest('Unable to launch multiple instances with a single configured port ID. Please launch your instance one by one with different ports.');
  const portRoom = await serversWithPorts(compute, ctx, networks, minCount);
  const diskConfig = diskConfigOf(server);
  const configDrive = server.config_drive === true || server.config_drive === 'True' || server.config_drive === 'true' ? 'True' : '';
  const tags = atLeast(req, '2.52') && Array.isArray(server.tags) ? server.tags.map(String) : [];
  const hostname = atLeast(req, '2.90') ? str(server, 'hostname') : undefined;
  let resolved: ResolvedBdms | null = null;
  let bootImage = image ?? { id: '', min_disk: 0, min_ram: 0, size: 0, properties: {} };
  if (bdms.length > 0) {
    const found = await resolveBlockDevices(compute, ctx, req, bdms, { image, flavor, maxCount, loadImage: (id) => loadImage(compute, ctx, id) });
    resolved = found;
    bootImage = found.bootImage;
  }

  const spec: RequestSpec = {
    project_id: ctx.projectId ?? '',
    user_id: ctx.userId,
    flavor,
    image: { id: bootImage.id, min_disk: bootImage.min_disk, min_ram: bootImage.min_ram, properties: bootImage.properties },
    availability_zone: zone,
    force_host: forceHost,
    force_node: forceNode,
    requested_host: requestedHost,
    requested_node: requestedNode,
    group,
    same_host: list(hints.same_host),
    different_host: list(hints.different_host),
    requested_networks: networks === 'none' ? 'none' : networks,
    security_groups: networks === 'none' ? [] : groups,
    ignore_hosts: [],
    local_root: !resolved?.volumeBacked,
  };

  const reservationId = `r-${randomBytes(4).toString('hex')}`;
  const adminPass = typeof server.adminPass === 'string' ? server.adminPass : randomBytes(9).toString('base64url').slice(0, 12);
  const now = isoNow();
  const projectId = ctx.projectId ?? '';
  const uuids: string[] = [];
  const actionIds: Record<string, string> = {};
  // Existing volumes are reserved before the servers are recorded (only one server may map them).
  const plannedUuids = Array.from({ length: maxCount }, () => newUuid());
  const reserved = resolved ? await reserveVolumes(compute, ctx, plannedUuids[0] ?? '', resolved) : new Map<string, string>();
  try {
    await compute.db.transaction().execute(async (trx) => {
      await lockProjectQuota(trx, projectId);
      let n = Math.min(maxCount, portRoom);
      if (n > minCount) n = Math.max(minCount, Math.min(n, await serversThatFit(trx, compute.config.compute, projectId, ctx.userId, flavor.vcpus, flavor.memory_mb)));
      await checkServerQuota(trx, compute.config.compute, projectId, ctx.userId, n, flavor.vcpus, flavor.memory_mb);
      if (group) {
        const limits = await projectLimits(trx, compute.config.compute, projectId, ctx.userId);
        const members = await trx.selectFrom('instance_group_member').innerJoin('instance', 'instance.uuid', 'instance_group_member.instance_uuid').select((eb) => eb.fn.countAll<number>().as('n')).where('group_uuid', '=', group.uuid).where('instance.deleted', '=', 0).executeTakeFirst();
        if (limits.server_group_members >= 0 && Number(members?.n ?? 0) + n > limits.server_group_members) throw new ComputeError(403, 'Quota exceeded, too many servers in group');
      }
      for (let i = 0; i < n; i++) {
        const uuid = plannedUuids[i] ?? newUuid();
        uuids.push(uuid);
        const displayName = n > 1 ? `${name}-${i + 1}` : name;
        const row: InstanceRow = {
          uuid,
          project_id: projectId,
          user_id: ctx.userId,
          display_name: displayName,
          display_description: description === undefined ? (atLeast(req, '2.19') ? null : displayName) : description,
          hostname: hostname ?? sanitizeHostname(displayName, uuid),
          host: null,
          node: null,
          availability_zone: zone,
          vm_state: 'building',
          task_state: 'scheduling',
          power_state: 0,
          flavor: JSON.stringify(flavor),
          old_flavor: null,
          new_flavor: null,
          vcpus: flavor.vcpus,
          memory_mb: flavor.memory_mb,
          image_ref: image?.id ?? '',
          image: JSON.stringify(bootImage.properties),
          key_name: keyName ?? null,
          key_data: keyData,
          user_data: userData ?? null,
          config_drive: configDrive,
          access_ip_v4: str(server, 'accessIPv4') ?? null,
          disk_config: diskConfig ?? 'MANUAL',
          access_ip_v6: accessIpv6,
          locked: 0,
          locked_by: null,
          locked_reason: null,
          progress: 0,
          reservation_id: reservationId,
          launch_index: i,
          root_device_name: '/dev/vda',
          security_groups: JSON.stringify(spec.security_groups),
          network_info: '[]',
          request_spec: JSON.stringify(spec),
          trusted_certs: null,
          launched_at: null,
          terminated_at: null,
          created_at: now,
          updated_at: now,
          deleted: 0,
          deleted_at: null,
        };
        await trx.insertInto('instance').values(row).execute();
        for (const [key, value] of Object.entries(metadata)) await trx.insertInto('instance_metadata').values({ instance_uuid: uuid, key, value: String(value) }).execute();
        for (const tag of new Set(tags)) await trx.insertInto('instance_tag').values({ instance_uuid: uuid, tag }).execute();
        if (group) await trx.insertInto('instance_group_member').values({ group_uuid: group.uuid, instance_uuid: uuid }).execute();
        if (resolved) for (const bdm of mappingRows(uuid, resolved.bdms, reserved)) await trx.insertInto('block_device_mapping').values(bdm).execute();
        // The create action in the same commit: one write to disk per request, and no server without its action.
        actionIds[uuid] = await recordAction(trx, { uuid, project_id: projectId }, 'create', { requestId: req.requestId, userId: ctx.userId, projectId });
      }
    });
  } catch (err) {
    await releaseReservations(compute, reserved);
    throw err;
  }
  compute.notify('compute.instance.create.start', { instance_ids: uuids, project_id: projectId });
  // The user's token goes with the build (not stored): the host makes the server's new volumes in the user's project.
  await new ConductorRpc(compute.bus).buildInstances({ instance_uuids: uuids, action_ids: actionIds, ...(resolved ? { user_token: ctx.authToken } : {}) }, { request_id: req.requestId, user_id: ctx.userId, project_id: projectId });
  return { uuids, reservationId, adminPass, securityGroups: spec.security_groups, diskConfig: diskConfig ?? 'MANUAL' };
}

/** The availability zones servers may ask for: the default one and those of aggregates. */
async function knownZones(compute: ComputeService): Promise<Set<string>> {
  const rows = await compute.db.selectFrom('aggregate_metadata').select('value').where('key', '=', 'availability_zone').execute();
  return new Set([compute.config.compute.default_availability_zone, ...rows.map((r) => r.value)]);
}

/** Nova's hostname from a display name: lower case letters, digits and dashes, at most 63. */
export function sanitizeHostname(name: string, uuid: string): string {
  const host = name
    .toLowerCase()
    .replace(/[ _.]/g, '-')
    .replace(/[^a-z0-9-]/g, '')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63);
  return host || `server-${uuid}`;
}
