import type { FastifyInstance } from 'fastify';
import { providerAggregates, setProviderAggregates } from '../aggregates.js';
import { atLeast } from '../microversion.js';
import { authorize, normalizeUuid, type PlacementService } from '../placement.js';
import { requireProvider } from '../providers.js';
import { jsonBody, requireJsonAccepted, type JsonSchema } from '../validation.js';
import { registerRoutes, sendJson, uuidParam } from './routing.js';

const LIST: JsonSchema = { type: 'array', items: { type: 'string', format: 'uuid' }, uniqueItems: true };
const PUT_1_19: JsonSchema = {
  type: 'object',
  properties: { aggregates: LIST, resource_provider_generation: { type: 'integer' } },
  required: ['aggregates', 'resource_provider_generation'],
  additionalProperties: false,
};

function view(aggregates: string[], generation: number, withGeneration: boolean): Record<string, unknown> {
  return withGeneration ? { aggregates, resource_provider_generation: generation } : { aggregates };
}

/** `/resource_providers/{uuid}/aggregates` (1.1; generations from 1.19). */
export function registerAggregates(app: FastifyInstance, svc: PlacementService): void {
  const url = '/resource_providers/:uuid/aggregates';
  registerRoutes(app, [
    {
      method: 'GET',
      url,
      since: 1,
      handler: async (req, reply) => {
        authorize(svc, req, 'placement:resource_providers:aggregates:list');
        requireJsonAccepted(req);
        const provider = await requireProvider(svc.db, uuidParam(req));
        return sendJson(req, reply, 200, view(await providerAggregates(svc, provider.id), provider.generation, atLeast(req, 19)));
      },
    },
    {
      method: 'PUT',
      url,
      since: 1,
      handler: async (req, reply) => {
        authorize(svc, req, 'placement:resource_providers:aggregates:update');
        const uuid = uuidParam(req);
        await requireProvider(svc.db, uuid);
        const withGeneration = atLeast(req, 19);
        let aggregates: string[];
        let generation: number | undefined;
        if (withGeneration) {
          const body = jsonBody<{ aggregates: string[]; resource_provider_generation: number }>(req, PUT_1_19);
          aggregates = body.aggregates;
          generation = body.resource_provider_generation;
        } else {
          aggregates = jsonBody<string[]>(req, LIST);
        }
        const normalized = [...new Set(aggregates.map(normalizeUuid))];
        const after = await setProviderAggregates(svc, uuid, normalized, generation);
        return sendJson(req, reply, 200, view(normalized, after, withGeneration));
      },
    },
  ]);
}
