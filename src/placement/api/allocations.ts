import type { FastifyInstance, FastifyRequest } from 'fastify';
import { INCOMPLETE_CONSUMER_ID, consumerAllocations, deleteConsumerAllocations, providerAllocations, replaceAllocations, type AllocationRequest } from '../allocations.js';
import { badRequest, notFound } from '../errors.js';
import { atLeast, minorOf } from '../microversion.js';
import { MAX_INT, authorize, isUuidLike, normalizeUuid, type PlacementService } from '../placement.js';
import { findProvider } from '../providers.js';
import { jsonBody, requireJsonAccepted, type JsonSchema } from '../validation.js';
import { registerRoutes, sendEmpty, sendJson, uuidParam } from './routing.js';

const UUID_PATTERN = '^[0-9a-fA-F-]{36}$';
const RESOURCES: JsonSchema = {
  type: 'object',
  minProperties: 1,
  patternProperties: { '^[A-Z0-9_]+$': { type: 'integer', minimum: 1, maximum: MAX_INT } },
  additionalProperties: false,
};
const OWNER = { type: 'string', minLength: 1, maxLength: 255 };

/** The list form of 1.0 to 1.11. */
function listSchema(withOwner: boolean): JsonSchema {
  const item = {
    type: 'object',
    properties: {
      resource_provider: { type: 'object', properties: { uuid: { type: 'string', format: 'uuid' } }, required: ['uuid'], additionalProperties: false },
      resources: RESOURCES,
    },
    required: ['resource_provider', 'resources'],
    additionalProperties: false,
  };
  return {
    type: 'object',
    properties: { allocations: { type: 'array', minItems: 1, items: item }, ...(withOwner ? { project_id: OWNER, user_id: OWNER } : {}) },
    required: withOwner ? ['allocations', 'project_id', 'user_id'] : ['allocations'],
    additionalProperties: false,
  };
}

/** The dict form from 1.12, grown by each microversion. */
function dictSchema(minor: number, post: boolean): JsonSchema {
  const properties: Record<string, unknown> = {
    allocations: {
      type: 'object',
      minProperties: post || minor >= 28 ? 0 : 1,
      patternProperties: { [UUID_PATTERN]: { type: 'object', properties: { generation: { type: 'integer' }, resources: RESOURCES }, required: ['resources'], additionalProperties: false } },
      additionalProperties: false,
    },
    project_id: OWNER,
    user_id: OWNER,
  };
  const required = ['allocations', 'project_id', 'user_id'];
  if (minor >= 28) {
    properties.consumer_generation = { type: ['integer', 'null'] };
    required.push('consumer_generation');
  }
  if (minor >= 34) {
    properties.mappings = { type: 'object', minProperties: 1, patternProperties: { '^[a-zA-Z0-9_-]{1,64}$': { type: 'array', minItems: 1, items: { type: 'string', format: 'uuid' } } } };
  }
  if (minor >= 38) {
    properties.consumer_type = { type: 'string', pattern: '^[A-Z0-9_]+$', minLength: 1, maxLength: 255 };
    required.push('consumer_type');
  }
  return { type: 'object', properties, required, additionalProperties: false };
}

/** The `POST /allocations` schema of a microversion (the reshaper's `allocations` too). */
export function allocationsSchemaFor(minor: number): JsonSchema {
  return schemaFor(minor, 'post');
}

const schemas = new Map<string, JsonSchema>();
function schemaFor(minor: number, kind: 'put' | 'post'): JsonSchema {
  const band = kind === 'put' ? (minor < 8 ? 'list' : minor < 12 ? 'list-owner' : `dict-${minor >= 38 ? 38 : minor >= 34 ? 34 : minor >= 28 ? 28 : 12}`) : `post-${minor >= 38 ? 38 : minor >= 34 ? 34 : minor >= 28 ? 28 : 13}`;
  let schema = schemas.get(band);
  if (!schema) {
    if (band === 'list') schema = listSchema(false);
    else if (band === 'list-owner') schema = listSchema(true);
    else if (kind === 'put') schema = dictSchema(minor, false);
    else schema = { type: 'object', minProperties: 1, patternProperties: { [UUID_PATTERN]: dictSchema(minor, true) }, additionalProperties: false };
    schemas.set(band, schema);
  }
  return schema;
}

/** One consumer's entry in the dict format (1.12+). */
export interface DictBody {
  allocations: Record<string, { resources: Record<string, number> }>;
  project_id: string;
  user_id: string;
  consumer_generation?: number | null;
  consumer_type?: string;
}

/** A dict-format entry as the allocation store takes it. */
export function toRequest(consumer: string, body: DictBody, minor: number): AllocationRequest {
  const allocations = new Map<string, Map<string, number>>();
  for (const [provider, entry] of Object.entries(body.allocations)) allocations.set(normalizeUuid(provider), new Map(Object.entries(entry.resources)));
  const request: AllocationRequest = { consumer, projectId: body.project_id, userId: body.user_id, allocations };
  if (minor >= 28) request.consumerGeneration = body.consumer_generation ?? null;
  if (minor >= 38 && body.consumer_type !== undefined) request.consumerType = body.consumer_type;
  return request;
}

function putRequest(req: FastifyRequest, consumer: string): AllocationRequest {
  const minor = minorOf(req);
  if (minor >= 12) return toRequest(consumer, jsonBody<DictBody>(req, schemaFor(minor, 'put')), minor);
  const body = jsonBody<{ allocations: { resource_provider: { uuid: string }; resources: Record<string, number> }[]; project_id?: string; user_id?: string }>(req, schemaFor(minor, 'put'));
  const allocations = new Map<string, Map<string, number>>();
  for (const a of body.allocations) allocations.set(normalizeUuid(a.resource_provider.uuid), new Map(Object.entries(a.resources)));
  return { consumer, projectId: body.project_id ?? INCOMPLETE_CONSUMER_ID, userId: body.user_id ?? INCOMPLETE_CONSUMER_ID, allocations };
}

/** The consumer of the path, canonical when it is a UUID (consumers are stored so). */
function consumerParam(req: FastifyRequest): string {
  const raw = uuidParam(req, 'consumer_uuid');
  return isUuidLike(raw) ? normalizeUuid(raw) : raw;
}

/** `/allocations/{consumer_uuid}`, `POST /allocations` (1.13) and `/resource_providers/{uuid}/allocations`. */
export function registerAllocations(app: FastifyInstance, svc: PlacementService): void {
  registerRoutes(app, [
    {
      method: 'GET',
      url: '/allocations/:consumer_uuid',
      handler: async (req, reply) => {
        authorize(svc, req, 'placement:allocations:list');
        requireJsonAccepted(req);
        const found = await consumerAllocations(svc, consumerParam(req));
        const body: Record<string, unknown> = { allocations: Object.fromEntries(found.allocations) };
        if (found.consumer && atLeast(req, 12)) {
          body.project_id = found.consumer.project_id;
          body.user_id = found.consumer.user_id;
          if (atLeast(req, 28)) body.consumer_generation = found.consumer.generation;
          if (atLeast(req, 38)) body.consumer_type = found.consumer.consumer_type ?? 'unknown';
        }
        return sendJson(req, reply, 200, body, found.lastModified);
      },
    },
    {
      method: 'PUT',
      url: '/allocations/:consumer_uuid',
      handler: async (req, reply) => {
        authorize(svc, req, 'placement:allocations:update');
        const raw = uuidParam(req, 'consumer_uuid');
        if (!isUuidLike(raw)) throw badRequest(`Malformed consumer_uuid: ${raw}`);
        const consumer = normalizeUuid(raw);
        await replaceAllocations(svc, [putRequest(req, consumer)], { consumerInMessages: consumer });
        return sendEmpty(reply, 204);
      },
    },
    {
      method: 'DELETE',
      url: '/allocations/:consumer_uuid',
      handler: async (req, reply) => {
        authorize(svc, req, 'placement:allocations:delete');
        await deleteConsumerAllocations(svc, consumerParam(req));
        return sendEmpty(reply, 204);
      },
    },
    {
      method: 'POST',
      url: '/allocations',
      since: 13,
      handler: async (req, reply) => {
        authorize(svc, req, 'placement:allocations:manage');
        const minor = minorOf(req);
        const body = jsonBody<Record<string, DictBody>>(req, schemaFor(minor, 'post'));
        const requests = Object.entries(body).map(([consumer, entry]) => toRequest(normalizeUuid(consumer), entry, minor));
        if (new Set(requests.map((r) => r.consumer)).size !== requests.length) throw badRequest('JSON does not validate: a consumer is named more than once');
        await replaceAllocations(svc, requests);
        return sendEmpty(reply, 204);
      },
    },
    {
      method: 'GET',
      url: '/resource_providers/:uuid/allocations',
      handler: async (req, reply) => {
        authorize(svc, req, 'placement:resource_providers:allocations:list');
        requireJsonAccepted(req);
        const uuid = uuidParam(req);
        const provider = await findProvider(svc.db, uuid);
        if (!provider) throw notFound(`Resource provider '${uuid}' not found: No resource provider with uuid ${uuid} found`);
        const found = await providerAllocations(svc, provider.id);
        const allocations: Record<string, unknown> = {};
        for (const [consumer, entry] of found.allocations) {
          allocations[consumer] = atLeast(req, 28) ? entry : { resources: entry.resources };
        }
        return sendJson(req, reply, 200, { allocations, resource_provider_generation: provider.generation }, found.lastModified);
      },
    },
  ]);
}
