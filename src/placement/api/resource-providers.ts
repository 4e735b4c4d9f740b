import type { FastifyInstance, FastifyRequest } from 'fastify';
import { randomUUID } from 'node:crypto';
import { badRequest } from '../errors.js';
import { atLeast, minorOf } from '../microversion.js';
import { authorize, isUuidLike, normalizeUuid, type PlacementService } from '../placement.js';
import { listProviders, type ProviderListFilter } from '../provider-list.js';
import { createProvider, deleteProvider, requireProvider, updateProvider, type Provider } from '../providers.js';
import { parseMemberOf, parseRequired, parseResources } from '../query-filters.js';
import { checkQueryKeys, jsonBody, lastValue, queryOf, requireJsonAccepted, type JsonSchema } from '../validation.js';
import { registerRoutes, sendEmpty, sendJson, uuidParam } from './routing.js';

const NAME = { type: 'string', maxLength: 200 };
const UUID = { type: 'string', format: 'uuid' };
const PARENT = { anyOf: [UUID, { type: 'null' }] };

const POST_1_0: JsonSchema = { type: 'object', properties: { name: NAME, uuid: UUID }, required: ['name'], additionalProperties: false };
const POST_1_14: JsonSchema = { type: 'object', properties: { name: NAME, uuid: UUID, parent_provider_uuid: PARENT }, required: ['name'], additionalProperties: false };
const PUT_1_0: JsonSchema = { type: 'object', properties: { name: NAME }, required: ['name'], additionalProperties: false };
const PUT_1_14: JsonSchema = { type: 'object', properties: { name: NAME, parent_provider_uuid: PARENT }, required: ['name'], additionalProperties: false };

/** `/resource_providers/{uuid}`: the provider's path. */
export function providerUrl(uuid: string): string {
  return `/resource_providers/${uuid}`;
}

/** A provider as placement shows it at the request's microversion. */
export function providerView(req: FastifyRequest, p: Provider): Record<string, unknown> {
  const self = providerUrl(p.uuid);
  const rels = ['inventories', 'usages'];
  if (atLeast(req, 1)) rels.push('aggregates');
  if (atLeast(req, 6)) rels.push('traits');
  if (atLeast(req, 11)) rels.push('allocations');
  const view: Record<string, unknown> = {
    uuid: p.uuid,
    name: p.name,
    generation: p.generation,
    links: [{ rel: 'self', href: self }, ...rels.map((rel) => ({ rel, href: `${self}/${rel}` }))],
  };
  if (atLeast(req, 14)) {
    view.parent_provider_uuid = p.parent_provider_uuid;
    view.root_provider_uuid = p.root_provider_uuid;
  }
  return view;
}

function listFilter(req: FastifyRequest): ProviderListFilter {
  const minor = minorOf(req);
  const query = queryOf(req);
  const allowed = ['name', 'uuid'];
  if (minor >= 3) allowed.push('member_of');
  if (minor >= 4) allowed.push('resources');
  if (minor >= 14) allowed.push('in_tree');
  if (minor >= 18) allowed.push('required');
  checkQueryKeys(query, allowed);
  const filter: ProviderListFilter = {};
  const name = lastValue(query, 'name');
  if (name !== undefined) filter.name = name;
  for (const key of ['uuid', 'in_tree'] as const) {
    const value = lastValue(query, key);
    if (value === undefined) continue;
    if (!isUuidLike(value)) throw badRequest(`Invalid query string parameters: '${value}' is not a 'uuid'`);
    if (key === 'uuid') filter.uuid = normalizeUuid(value);
    else filter.inTree = normalizeUuid(value);
  }
  if (query.has('member_of')) filter.memberOf = parseMemberOf(query, 'member_of', minor);
  if (query.has('required')) filter.traits = parseRequired(query, 'required', minor);
  const resources = lastValue(query, 'resources');
  if (resources !== undefined) filter.resources = parseResources(resources);
  return filter;
}

function newest(providers: Provider[]): string | null {
  return providers.reduce<string | null>((acc, p) => (acc === null || p.updated_at > acc ? p.updated_at : acc), null);
}

/** `/resource_providers` and `/resource_providers/{uuid}`. */
export function registerResourceProviders(app: FastifyInstance, svc: PlacementService): void {
  registerRoutes(app, [
    {
      method: 'GET',
      url: '/resource_providers',
      handler: async (req, reply) => {
        authorize(svc, req, 'placement:resource_providers:list');
        requireJsonAccepted(req);
        const providers = await listProviders(svc, listFilter(req));
        return sendJson(req, reply, 200, { resource_providers: providers.map((p) => providerView(req, p)) }, newest(providers));
      },
    },
    {
      method: 'POST',
      url: '/resource_providers',
      handler: async (req, reply) => {
        authorize(svc, req, 'placement:resource_providers:create');
        const body = jsonBody<{ name: string; uuid?: string; parent_provider_uuid?: string | null }>(req, atLeast(req, 14) ? POST_1_14 : POST_1_0);
        const uuid = body.uuid ? normalizeUuid(body.uuid) : randomUUID();
        if (body.name === '') throw badRequest(`Unable to create resource provider "", ${uuid}: Object action create failed because: name is required`);
        const parentUuid = body.parent_provider_uuid ? normalizeUuid(body.parent_provider_uuid) : null;
        const provider = await createProvider(svc, { uuid, name: body.name, parentUuid });
        const location = providerUrl(provider.uuid);
        if (!atLeast(req, 20)) return sendEmpty(reply, 201, { location });
        reply.header('location', location);
        return sendJson(req, reply, 200, providerView(req, provider), provider.updated_at);
      },
    },
    {
      method: 'GET',
      url: '/resource_providers/:uuid',
      handler: async (req, reply) => {
        authorize(svc, req, 'placement:resource_providers:show');
        requireJsonAccepted(req);
        const provider = await requireProvider(svc.db, uuidParam(req));
        return sendJson(req, reply, 200, providerView(req, provider), provider.updated_at);
      },
    },
    {
      method: 'PUT',
      url: '/resource_providers/:uuid',
      handler: async (req, reply) => {
        authorize(svc, req, 'placement:resource_providers:update');
        const uuid = uuidParam(req);
        await requireProvider(svc.db, uuid);
        const body = jsonBody<{ name: string; parent_provider_uuid?: string | null }>(req, atLeast(req, 14) ? PUT_1_14 : PUT_1_0);
        const input: { name: string; parentUuid?: string | null } = { name: body.name };
        if (body.parent_provider_uuid !== undefined) input.parentUuid = body.parent_provider_uuid === null ? null : normalizeUuid(body.parent_provider_uuid);
        const provider = await updateProvider(svc, uuid, input, atLeast(req, 37));
        return sendJson(req, reply, 200, providerView(req, provider), provider.updated_at);
      },
    },
    {
      method: 'DELETE',
      url: '/resource_providers/:uuid',
      handler: async (req, reply) => {
        authorize(svc, req, 'placement:resource_providers:delete');
        await deleteProvider(svc, uuidParam(req));
        return sendEmpty(reply, 204);
      },
    },
  ]);
}
