import type { FastifyInstance, FastifyRequest } from 'fastify';
import { badRequest, notFound } from '../errors.js';
import { SchedulerRpc, type BackendReport } from '../rpc.js';
import { capabilitiesMatch } from '../scheduler/filters.js';
import { atLeast, authorize, contextOf, type VolumeService } from '../volume.js';
import { backendOf, listServices, VOLUME_BINARY } from '../volume-services.js';
import { findVolumeType } from '../volume-types.js';
import { boolParam, queryOf } from './catalog-input.js';

/**
 * `GET /scheduler-stats/get_pools` (admin; names, or with `detail=True`
 * each pool's capabilities as the scheduler sees them; filters `name` from
 * 3.28 and `volume_type` from 3.35) and `GET /capabilities/{host}` (a
 * backend's capabilities from its last report).
 */

async function getPools(volume: VolumeService, req: FastifyRequest): Promise<unknown> {
  const ctx = contextOf(req);
  authorize(volume, ctx, 'scheduler_extension:scheduler_stats:get_pools');
  const query = queryOf(req);
  const detail = boolParam(query, 'detail');
  const filters: Record<string, string> = { ...query };
  delete filters.detail;
  if (atLeast(req, '3.31')) {
    // The pool resource takes only its configured filters, from administrators too (Cinder's reject_invalid_filters).
    const invalid = Object.keys(filters).filter((k) => !['name', 'volume_type'].includes(k));
    if (invalid.length > 0) throw badRequest(`Invalid filters ${invalid.join(',')} are found in query options.`);
  } else if (!atLeast(req, '3.28')) {
    for (const key of Object.keys(filters)) delete filters[key];
  }
  if (!atLeast(req, '3.35')) delete filters.volume_type;
  let pools = await new SchedulerRpc(volume.bus).getPools();
  if (filters.name !== undefined) pools = pools.filter((p) => p.name === filters.name);
  if (filters.volume_type !== undefined) {
    const type = await findVolumeType(volume, null, filters.volume_type);
    pools = pools.filter((p) => capabilitiesMatch(p.capabilities as Record<string, unknown>, type.extra_specs));
  }
  return { pools: pools.map((p) => (detail ? { name: p.name, capabilities: p.capabilities } : { name: p.name })) };
}

/** The standard capability properties Cinder's drivers describe. */
const PROPERTIES = {
  thin_provisioning: { title: 'Thin Provisioning', description: 'Sets thin provisioning.', type: 'boolean' },
  compression: { title: 'Compression', description: 'Enables compression.', type: 'boolean' },
  qos: { title: 'QoS', description: 'Enables QoS.', type: 'boolean' },
  replication_enabled: { title: 'Replication', description: 'Enables replication.', type: 'boolean' },
};

async function capabilities(volume: VolumeService, req: FastifyRequest<{ Params: { host: string } }>): Promise<unknown> {
  authorize(volume, contextOf(req), 'volume_extension:capabilities');
  const backend = backendOf(req.params.host);
  const [service] = (await listServices(volume, { binary: VOLUME_BINARY })).filter((s) => s.host === backend);
  if (!service) throw notFound(`Can't find service: ${req.params.host}`);
  let report: Partial<BackendReport> = {};
  try {
    report = service.capabilities ? (JSON.parse(service.capabilities) as Partial<BackendReport>) : {};
  } catch {
    report = {};
  }
  return {
    namespace: `OS::Storage::Capabilities::${service.host}`,
    vendor_name: report.vendor_name ?? null,
    volume_backend_name: report.volume_backend_name ?? null,
    pool_name: null,
    driver_version: report.driver_version ?? null,
    storage_protocol: report.storage_protocol ?? null,
    display_name: null,
    description: null,
    visibility: null,
    replication_targets: [],
    properties: PROPERTIES,
  };
}

/** Registers `/scheduler-stats/get_pools` and `/capabilities/{host}`. */
export function registerSchedulerStats(app: FastifyInstance, volume: VolumeService): void {
  app.get('/v3/scheduler-stats/get_pools', async (req) => getPools(volume, req));
  app.get<{ Params: { host: string } }>('/v3/capabilities/:host', async (req) => capabilities(volume, req));
}
