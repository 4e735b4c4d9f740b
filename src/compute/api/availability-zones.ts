import type { FastifyInstance } from 'fastify';
import { authorize, contextOf, type ComputeService } from '../compute.js';
import { INTERNAL_ZONE, listServices, type ServiceState } from '../services.js';
import { pyIsoTime } from './request-checks.js';

/**
 * `/os-availability-zone` (and `/detail`, admin): the zones of the
 * services. A zone with an enabled service is available; a zone whose
 * services are all disabled is not. The list hides the `internal` zone of
 * the scheduler and conductor; the detail shows every host's services.
 */

interface Zones {
  available: string[];
  unavailable: string[];
}

function zonesOf(services: ServiceState[]): Zones {
  const available = new Set(services.filter((s) => Number(s.disabled) === 0).map((s) => s.zone));
  const unavailable = new Set(services.filter((s) => Number(s.disabled) === 1 && !available.has(s.zone)).map((s) => s.zone));
  return { available: [...available].sort(), unavailable: [...unavailable].sort() };
}

type HostServices = Record<string, Record<string, { available: boolean; active: boolean; updated_at: string | null }>>;

/** Registers `GET /os-availability-zone` and `GET /os-availability-zone/detail`. */
export function registerAvailabilityZones(app: FastifyInstance, compute: ComputeService): void {
  app.get('/v2.1/os-availability-zone', async (req) => {
    authorize(compute, contextOf(req), 'os-availability-zone:list');
    const { available, unavailable } = zonesOf(await listServices(compute.db, compute.config.compute));
    const entry = (zone: string, ok: boolean): Record<string, unknown> => ({ zoneName: zone, zoneState: { available: ok }, hosts: null });
    return {
      availabilityZoneInfo: [...available.filter((z) => z !== INTERNAL_ZONE).map((z) => entry(z, true)), ...unavailable.filter((z) => z !== INTERNAL_ZONE).map((z) => entry(z, false))],
    };
  });

  app.get('/v2.1/os-availability-zone/detail', async (req) => {
    authorize(compute, contextOf(req), 'os-availability-zone:detail');
    const services = await listServices(compute.db, compute.config.compute);
    const { available, unavailable } = zonesOf(services);
    const hostsByZone = new Map<string, HostServices>();
    for (const s of services) {
      if (Number(s.disabled) === 1) continue;
      const hosts = hostsByZone.get(s.zone) ?? {};
      const host = (hosts[s.host] ??= {});
      host[s.binary] = { available: s.up, active: true, updated_at: pyIsoTime(s.updated_at) };
      hostsByZone.set(s.zone, hosts);
    }
    return {
      availabilityZoneInfo: [
        ...available.map((zone) => ({ zoneName: zone, zoneState: { available: true }, hosts: hostsByZone.get(zone) ?? {} })),
        ...unavailable.map((zone) => ({ zoneName: zone, zoneState: { available: false }, hosts: null })),
      ],
    };
  });
}
