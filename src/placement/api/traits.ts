import type { FastifyInstance, FastifyRequest } from 'fastify';
import { badRequest } from '../errors.js';
import { authorize, type PlacementService } from '../placement.js';
import { requireProvider } from '../providers.js';
import { CUSTOM_NAME } from '../resource-classes.js';
import { deleteTrait, ensureTrait, getTrait, listTraits, providerTraits, setProviderTraits, type TraitListFilter } from '../traits.js';
import { checkQueryKeys, jsonBody, lastValue, queryOf, requireJsonAccepted, type JsonSchema } from '../validation.js';
import { registerRoutes, sendEmpty, sendJson, uuidParam } from './routing.js';

const SET_TRAITS: JsonSchema = {
  type: 'object',
  properties: {
    traits: { type: 'array', items: { type: 'string', minLength: 1, maxLength: 255 } },
    resource_provider_generation: { type: 'integer' },
  },
  required: ['traits', 'resource_provider_generation'],
  additionalProperties: false,
};

function nameParam(req: FastifyRequest): string {
  return (req.params as Record<string, string>).name ?? '';
}

function listFilter(req: FastifyRequest): TraitListFilter {
  const query = queryOf(req);
  checkQueryKeys(query, ['name', 'associated']);
  const filter: TraitListFilter = {};
  const name = lastValue(query, 'name');
  if (name !== undefined) {
    const at = name.indexOf(':');
    if (at < 0) {
      throw badRequest(`Badly formatted name parameter. Expected name query string parameter in form: ?name=[in|startswith]:[name1,name2|prefix]. Got: "${name}"`);
    }
    const op = name.slice(0, at);
    const value = name.slice(at + 1);
    if (op === 'in') filter.nameIn = value.split(',');
    else if (op === 'startswith') filter.prefix = value;
  }
  const associated = lastValue(query, 'associated');
  if (associated !== undefined) {
    const lower = associated.toLowerCase();
    if (lower !== 'true' && lower !== 'false') throw badRequest('The query parameter "associated" only accepts "true" or "false"');
    filter.associated = lower === 'true';
  }
  return filter;
}

/** `/traits` and `/resource_providers/{uuid}/traits` (1.6). */
export function registerTraits(app: FastifyInstance, svc: PlacementService): void {
  registerRoutes(app, [
    {
      method: 'GET',
      url: '/traits',
      since: 6,
      handler: async (req, reply) => {
        authorize(svc, req, 'placement:traits:list');
        requireJsonAccepted(req);
        const traits = await listTraits(svc, listFilter(req));
        return sendJson(req, reply, 200, { traits: traits.map((t) => t.name) });
      },
    },
    {
      method: 'GET',
      url: '/traits/:name',
      since: 6,
      handler: async (req, reply) => {
        authorize(svc, req, 'placement:traits:show');
        await getTrait(svc, nameParam(req));
        return sendEmpty(reply, 204);
      },
    },
    {
      method: 'PUT',
      url: '/traits/:name',
      since: 6,
      handler: async (req, reply) => {
        authorize(svc, req, 'placement:traits:update');
        const name = nameParam(req);
        if (!CUSTOM_NAME.test(name) || name.length > 255) {
          throw badRequest('The trait is invalid. A valid trait must be no longer than 255 characters, start with the prefix "CUSTOM_" and use following characters: "A"-"Z", "0"-"9" and "_"');
        }
        const { created } = await ensureTrait(svc, name);
        return sendEmpty(reply, created ? 201 : 204, { location: `/traits/${name}` });
      },
    },
    {
      method: 'DELETE',
      url: '/traits/:name',
      since: 6,
      handler: async (req, reply) => {
        authorize(svc, req, 'placement:traits:delete');
        await deleteTrait(svc, nameParam(req));
        return sendEmpty(reply, 204);
      },
    },
    {
      method: 'GET',
      url: '/resource_providers/:uuid/traits',
      since: 6,
      handler: async (req, reply) => {
        authorize(svc, req, 'placement:resource_providers:traits:list');
        requireJsonAccepted(req);
        const provider = await requireProvider(svc.db, uuidParam(req));
        return sendJson(req, reply, 200, { traits: await providerTraits(svc, provider.id), resource_provider_generation: provider.generation });
      },
    },
    {
      method: 'PUT',
      url: '/resource_providers/:uuid/traits',
      since: 6,
      handler: async (req, reply) => {
        authorize(svc, req, 'placement:resource_providers:traits:update');
        const uuid = uuidParam(req);
        const body = jsonBody<{ traits: string[]; resource_provider_generation: number }>(req, SET_TRAITS);
        await requireProvider(svc.db, uuid);
        const names = [...new Set(body.traits)];
        const generation = await setProviderTraits(svc, uuid, body.resource_provider_generation, names);
        return sendJson(req, reply, 200, { traits: names.sort(), resource_provider_generation: generation });
      },
    },
    {
      method: 'DELETE',
      url: '/resource_providers/:uuid/traits',
      since: 6,
      handler: async (req, reply) => {
        authorize(svc, req, 'placement:resource_providers:traits:delete');
        const uuid = uuidParam(req);
        await requireProvider(svc.db, uuid);
        await setProviderTraits(svc, uuid, null, []);
        return sendEmpty(reply, 204);
      },
    },
  ]);
}
