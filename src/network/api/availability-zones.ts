import type { FastifyInstance } from 'fastify';
import { listResponse, parseListQuery, type ListSpec } from '../lists.js';
import { authorize, type NetworkService } from '../network.js';
import { knownAvailabilityZones } from '../networks.js';

/**
 * `GET /v2.0/availability_zones` (`availability_zone`): the zones networks
 * (DHCP) and routers (L3) may be placed in: the configured zone, and any
 * other zone the agents of that kind report. Every zone is `available`.
 */
const LIST_SPEC: ListSpec = { collection: 'availability_zones', resource: 'availability_zone', attributes: ['name', 'resource', 'state'] };

export function registerAvailabilityZones(app: FastifyInstance, net: NetworkService): void {
  app.get('/v2.0/availability_zones', async (req) => {
    authorize(net, req.ctx, 'get_availability_zone', {});
    const query = parseListQuery(req, LIST_SPEC);
    const zones: Record<string, unknown>[] = [];
    for (const resource of ['network', 'router'] as const) {
      for (const name of await knownAvailabilityZones(net, resource)) zones.push({ name, resource, state: 'available' });
    }
    return listResponse(req, LIST_SPEC, zones, { ...query, limit: null, marker: null });
  });
}
