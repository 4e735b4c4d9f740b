import type { FastifyInstance } from 'fastify';
import type { AllocationRequest } from '../allocations.js';
import { INVENTORY_DEFAULTS, type InventoryFields } from '../inventories.js';
import { minorOf } from '../microversion.js';
import { MAX_INT, authorize, normalizeUuid, type PlacementService } from '../placement.js';
import { reshape, type ReshapeInventory } from '../reshaper.js';
import { jsonBody, type JsonSchema } from '../validation.js';
import { allocationsSchemaFor, toRequest, type DictBody } from './allocations.js';
import { registerRoutes, sendEmpty } from './routing.js';

const UUID_PATTERN = '^[0-9a-fA-F-]{36}$';
const RC_PATTERN = '^[A-Z0-9_]+$';
const INT = (minimum: number): JsonSchema => ({ type: 'integer', maximum: MAX_INT, minimum });
const INVENTORY: JsonSchema = {
  type: 'object',
  properties: { resource_provider_generation: { type: 'integer' }, total: INT(1), reserved: INT(0), min_unit: INT(1), max_unit: INT(1), step_size: INT(1), allocation_ratio: { type: 'number', maximum: 3.40282e38 } },
  required: ['total'],
  additionalProperties: false,
};
const PROVIDER_INVENTORIES: JsonSchema = {
  type: 'object',
  properties: {
    resource_provider_generation: { type: 'integer' },
    inventories: { type: 'object', patternProperties: { [RC_PATTERN]: INVENTORY }, additionalProperties: false },
  },
  required: ['resource_provider_generation', 'inventories'],
  additionalProperties: false,
};

const schemas = new Map<number, JsonSchema>();
function schemaFor(minor: number): JsonSchema {
  const band = minor >= 38 ? 38 : minor >= 34 ? 34 : 30;
  let schema = schemas.get(band);
  if (!schema) {
    schema = {
      type: 'object',
      properties: {
        inventories: { type: 'object', patternProperties: { [UUID_PATTERN]: PROVIDER_INVENTORIES }, minProperties: 1, additionalProperties: false },
        allocations: { ...allocationsSchemaFor(band), minProperties: 0 },
      },
      required: ['inventories', 'allocations'],
      additionalProperties: false,
    };
    schemas.set(band, schema);
  }
  return schema;
}

type InventoryBody = Partial<InventoryFields> & { total: number };

/** `POST /reshaper` (1.30): move inventory and allocations between providers atomically. */
export function registerReshaper(app: FastifyInstance, svc: PlacementService): void {
  registerRoutes(app, [
    {
      method: 'POST',
      url: '/reshaper',
      since: 30,
      handler: async (req, reply) => {
        authorize(svc, req, 'placement:reshaper:reshape');
        const minor = minorOf(req);
        const body = jsonBody<{ inventories: Record<string, { resource_provider_generation: number; inventories: Record<string, InventoryBody> }>; allocations: Record<string, DictBody> }>(req, schemaFor(minor));
        const inventories: ReshapeInventory[] = Object.entries(body.inventories).map(([uuid, entry]) => ({
          uuid: normalizeUuid(uuid),
          generation: entry.resource_provider_generation,
          inventories: new Map(Object.entries(entry.inventories).map(([name, inv]) => [name, { ...INVENTORY_DEFAULTS, ...inv }])),
        }));
        const allocations: AllocationRequest[] = Object.entries(body.allocations).map(([consumer, entry]) => toRequest(normalizeUuid(consumer), entry, minor));
        await reshape(svc, inventories, allocations, minor);
        return sendEmpty(reply, 204);
      },
    },
  ]);
}
