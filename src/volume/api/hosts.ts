import type { FastifyInstance, FastifyRequest } from 'fastify';
import { sql } from 'kysely';
import { badRequest, notFound, VolumeError } from '../errors.js';
import { apiTime, authorize, contextOf, type VolumeService } from '../volume.js';
import { listServices, serviceIsUp, VOLUME_BINARY } from '../volume-services.js';
import { bodyOf, queryOf } from './catalog-input.js';

/**
 * `os-hosts` (deprecated in Cinder, still used by clients): the enabled
 * services' hosts (`?zone=`), a volume host's usage per project, and the
 * update, which Cinder does not implement either.
 */

async function listHosts(volume: VolumeService, req: FastifyRequest): Promise<Record<string, unknown>[]> {
  const zone = queryOf(req).zone;
  const at = Date.now();
  return (await listServices(volume))
    .filter((s) => Number(s.disabled) === 0 && (!zone || s.availability_zone === zone))
    .map((s) => ({
      host_name: s.host,
      service: s.topic,
      zone: s.availability_zone,
      'service-status': serviceIsUp(volume, s, at) ? 'available' : 'unavailable',
      'service-state': Number(s.disabled) === 1 ? 'disabled' : 'enabled',
      'last-update': apiTime(s.last_seen_up ?? s.updated_at),
    }));
}

/** `host#` and its length: a volume on one of the backend's pools starts with it. */
function poolPrefix(host: string): { prefix: string; length: number } {
  return { prefix: `${host}#`, length: host.length + 1 };
}

async function showHost(volume: VolumeService, req: FastifyRequest<{ Params: { host: string } }>): Promise<unknown> {
  authorize(volume, contextOf(req), 'volume_extension:hosts');
  const host = req.params.host;
  const [service] = await listServices(volume, { binary: VOLUME_BINARY, host });
  if (!service) throw notFound(`Service ${VOLUME_BINARY} could not be found on host ${host}.`);
  const volumes = await volume.db
    .selectFrom('volume')
    .select((eb) => ['volume.project_id', eb.fn.countAll<number>().as('n'), eb.fn.coalesce(eb.fn.sum<number>('volume.size'), sql<number>`0`).as('gb')])
    .where((eb) => eb.or([eb('volume.host', '=', service.host), eb(sql<string>`substr(volume.host, 1, ${poolPrefix(service.host).length})`, '=', poolPrefix(service.host).prefix)]))
    .groupBy('volume.project_id')
    .orderBy('volume.project_id')
    .execute();
  const snapshots = await volume.db
    .selectFrom('snapshot')
    .innerJoin('volume', 'volume.id', 'snapshot.volume_id')
    .select((eb) => ['snapshot.project_id', eb.fn.countAll<number>().as('n'), eb.fn.coalesce(eb.fn.sum<number>('snapshot.volume_size'), sql<number>`0`).as('gb')])
    .where((eb) => eb.or([eb('volume.host', '=', service.host), eb(sql<string>`substr(volume.host, 1, ${poolPrefix(service.host).length})`, '=', poolPrefix(service.host).prefix)]))
    .groupBy('snapshot.project_id')
    .execute();
  const snaps = new Map(snapshots.map((s) => [s.project_id, { n: Number(s.n), gb: Number(s.gb) }]));
  const total = { n: 0, gb: 0, sn: 0, sgb: 0 };
  const perProject = volumes.map((v) => {
    const s = snaps.get(v.project_id) ?? { n: 0, gb: 0 };
    total.n += Number(v.n);
    total.gb += Number(v.gb);
    total.sn += s.n;
    total.sgb += s.gb;
    return { resource: { host, project: v.project_id, volume_count: String(v.n), total_volume_gb: String(v.gb), snapshot_count: String(s.n), total_snapshot_gb: String(s.gb) } };
  });
  return {
    host: [{ resource: { host, project: '(total)', volume_count: String(total.n), total_volume_gb: String(total.gb), snapshot_count: String(total.sn), total_snapshot_gb: String(total.sgb) } }, ...perProject],
  };
}

/** Registers `os-hosts`. */
export function registerHosts(app: FastifyInstance, volume: VolumeService): void {
  app.get('/v3/os-hosts', async (req) => {
    authorize(volume, contextOf(req), 'volume_extension:hosts');
    return { hosts: await listHosts(volume, req) };
  });
  app.get<{ Params: { host: string } }>('/v3/os-hosts/:host', async (req) => showHost(volume, req));
  app.put<{ Params: { host: string } }>('/v3/os-hosts/:host', async (req) => {
    const hosts = await listHosts(volume, req);
    if (!hosts.some((h) => h.host_name === req.params.host)) throw notFound(`Host ${req.params.host} could not be found.`);
    authorize(volume, contextOf(req), 'volume_extension:hosts');
    const body = bodyOf(req.body);
    for (const [key, value] of Object.entries(body)) {
      if (key.toLowerCase().trim() !== 'status') throw badRequest(`Invalid update setting: '${key}'`);
      const v = typeof value === 'string' ? value.toLowerCase().trim() : '';
      if (v !== 'enable' && v !== 'disable') throw badRequest(`Invalid status: '${String(value)}'`);
    }
    // Cinder's HostAPI.set_host_enabled is not implemented either; os-services enable/disable does it.
    throw new VolumeError(501, 'Enabling or disabling a host is not implemented: use os-services enable or disable.');
  });
}
