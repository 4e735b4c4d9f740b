import type { FastifyInstance } from 'fastify';
import { badRequest, notFound } from '../errors.js';
import { atLeast } from '../microversion.js';
import { authorize, type PlacementService } from '../placement.js';
import { findProvider } from '../providers.js';
import { projectUsages, projectUsagesByType, providerUsages } from '../usages.js';
import { checkQueryKeys, lastValue, queryOf, requireJsonAccepted } from '../validation.js';
import { registerRoutes, sendJson, uuidParam } from './routing.js';

const CONSUMER_TYPE = /^[A-Z0-9_]+$|^all|^unknown$/;

function checkLength(key: string, value: string | undefined): void {
  if (value !== undefined && (value.length < 1 || value.length > 255)) {
    throw badRequest(`Invalid query string parameters: '${value}' is ${value.length < 1 ? 'too short' : 'too long'}`);
  }
}

/** `/resource_providers/{uuid}/usages` and `GET /usages` (1.9; by consumer type from 1.38). */
export function registerUsages(app: FastifyInstance, svc: PlacementService): void {
  registerRoutes(app, [
    {
      method: 'GET',
      url: '/resource_providers/:uuid/usages',
      handler: async (req, reply) => {
        authorize(svc, req, 'placement:resource_providers:usages');
        requireJsonAccepted(req);
        const uuid = uuidParam(req);
        const provider = await findProvider(svc.db, uuid);
        if (!provider) throw notFound(`No resource provider with uuid ${uuid} found`);
        return sendJson(req, reply, 200, { resource_provider_generation: provider.generation, usages: await providerUsages(svc, provider.id) });
      },
    },
    {
      method: 'GET',
      url: '/usages',
      since: 9,
      handler: async (req, reply) => {
        const query = queryOf(req);
        const projectId = lastValue(query, 'project_id');
        authorize(svc, req, 'placement:usages', { project_id: projectId });
        requireJsonAccepted(req);
        const byType = atLeast(req, 38);
        checkQueryKeys(query, byType ? ['project_id', 'user_id', 'consumer_type'] : ['project_id', 'user_id']);
        if (projectId === undefined) throw badRequest("Invalid query string parameters: 'project_id' is a required property");
        const userId = lastValue(query, 'user_id');
        checkLength('project_id', projectId);
        checkLength('user_id', userId);
        if (!byType) return sendJson(req, reply, 200, { usages: await projectUsages(svc, projectId, userId) });
        const consumerType = lastValue(query, 'consumer_type');
        checkLength('consumer_type', consumerType);
        if (consumerType !== undefined && !CONSUMER_TYPE.test(consumerType)) {
          throw badRequest(`Invalid query string parameters: '${consumerType}' does not match '${CONSUMER_TYPE.source}'`);
        }
        return sendJson(req, reply, 200, { usages: await projectUsagesByType(svc, projectId, userId, consumerType) });
      },
    },
  ]);
}
