import type { FastifyInstance } from 'fastify';
import type { ComputeService } from '../compute.js';
import { registerDiscovery } from './discovery.js';
import { registerInstanceActions } from './instance-actions.js';
import { registerMigrations } from './migrations.js';
import { registerExternalEvents } from './external-events.js';
import { registerServerActions } from './server-actions.js';
import { registerServers } from './servers.js';
import { registerFlavorAccess } from './flavor-access.js';
import { registerFlavorExtraSpecs } from './flavor-extra-specs.js';
import { registerFlavors } from './flavors.js';
import { registerKeypairs } from './keypairs.js';
import { registerLimits } from './limits.js';
import { registerQuotaSets } from './quota-sets.js';
import { registerAggregates } from './aggregates.js';
import { registerAvailabilityZones } from './availability-zones.js';
import { registerHypervisors } from './hypervisors.js';
import { registerServices } from './services.js';
import { registerSimpleTenantUsage } from './simple-tenant-usage.js';
import { registerServerGroups } from './server-groups.js';
import { registerServerMetadata } from './server-metadata.js';
import { registerServerTags } from './server-tags.js';

/** Every route of the compute API. */
export function registerComputeApi(app: FastifyInstance, compute: ComputeService): void {
  registerDiscovery(app, compute);
  registerServers(app, compute, compute.placement);
  registerServerActions(app, compute, compute.placement);
  registerExternalEvents(app, compute);
  registerFlavors(app, compute);
  registerFlavorAccess(app, compute);
  registerFlavorExtraSpecs(app, compute);
  registerKeypairs(app, compute);
  registerLimits(app, compute);
  registerQuotaSets(app, compute);
  registerServices(app, compute);
  registerHypervisors(app, compute);
  registerAvailabilityZones(app, compute);
  registerAggregates(app, compute);
  registerSimpleTenantUsage(app, compute);
  registerServerGroups(app, compute);
  registerServerMetadata(app, compute);
  registerServerTags(app, compute);
  registerInstanceActions(app, compute);
  registerMigrations(app, compute);
}
