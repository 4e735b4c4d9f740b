import type { FastifyInstance, FastifyRequest } from 'fastify';
import { notFound } from '../errors.js';
import { INVENTORY_DEFAULTS, addInventory, deleteAllInventories, deleteInventory, providerInventories, setInventories, updateInventory, type Inventory, type InventoryFields } from '../inventories.js';
import { minorOf } from '../microversion.js';
import { MAX_INT, authorize, type PlacementService } from '../placement.js';
import { requireProvider } from '../providers.js';
import { jsonBody, requireJsonAccepted, type JsonSchema } from '../validation.js';
import { providerUrl } from './resource-providers.js';
import { registerRoutes, sendEmpty, sendJson, uuidParam } from './routing.js';

const RC_PATTERN = '^[A-Z0-9_]+$';
/** Placement's largest float (a single-precision column). */
const SQL_SP_FLOAT_MAX = 3.40282e38;
const INT = (minimum: number): JsonSchema => ({ type: 'integer', maximum: MAX_INT, minimum });

const FIELDS: Record<string, JsonSchema> = {
  total: INT(1),
  reserved: INT(0),
  min_unit: INT(1),
  max_unit: INT(1),
  step_size: INT(1),
  allocation_ratio: { type: 'number', maximum: SQL_SP_FLOAT_MAX },
};

const BASE: JsonSchema = {
  type: 'object',
  properties: { resource_provider_generation: { type: 'integer' }, ...FIELDS },
  required: ['total', 'resource_provider_generation'],
  additionalProperties: false,
};
const POST: JsonSchema = {
  type: 'object',
  properties: { resource_class: { type: 'string', pattern: RC_PATTERN }, resource_provider_generation: { type: 'integer' }, ...FIELDS },
  required: ['total', 'resource_class'],
  additionalProperties: false,
};
const PUT_ALL: JsonSchema = {
  type: 'object',
  properties: {
    resource_provider_generation: { type: 'integer' },
    inventories: {
      type: 'object',
      patternProperties: { [RC_PATTERN]: { type: 'object', properties: { resource_provider_generation: { type: 'integer' }, ...FIELDS }, required: ['total'], additionalProperties: false } },
      additionalProperties: false,
    },
  },
  required: ['resource_provider_generation', 'inventories'],
  additionalProperties: false,
};

type Body = Partial<InventoryFields> & { total: number };

function withDefaults(body: Body): InventoryFields {
  return {
    total: body.total,
    reserved: body.reserved ?? INVENTORY_DEFAULTS.reserved,
    min_unit: body.min_unit ?? INVENTORY_DEFAULTS.min_unit,
    max_unit: body.max_unit ?? INVENTORY_DEFAULTS.max_unit,
    step_size: body.step_size ?? INVENTORY_DEFAULTS.step_size,
    allocation_ratio: body.allocation_ratio ?? INVENTORY_DEFAULTS.allocation_ratio,
  };
}

function fieldsView(inv: InventoryFields): Record<string, number> {
  return { total: inv.total, reserved: inv.reserved, min_unit: inv.min_unit, max_unit: inv.max_unit, step_size: inv.step_size, allocation_ratio: inv.allocation_ratio };
}

function inventoriesView(generation: number, inventories: Iterable<[string, InventoryFields]>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, inv] of inventories) out[name] = fieldsView(inv);
  return { resource_provider_generation: generation, inventories: out };
}

function newest(inventories: Inventory[]): string | null {
  return inventories.reduce<string | null>((acc, i) => (acc === null || i.updated_at > acc ? i.updated_at : acc), null);
}

function rcParam(req: FastifyRequest): string {
  return (req.params as Record<string, string>).resource_class ?? '';
}

/** `/resource_providers/{uuid}/inventories` and `/inventories/{resource_class}`. */
export function registerInventories(app: FastifyInstance, svc: PlacementService): void {
  const base = '/resource_providers/:uuid/inventories';
  registerRoutes(app, [
    {
      method: 'GET',
      url: base,
      handler: async (req, reply) => {
        authorize(svc, req, 'placement:resource_providers:inventories:list');
        requireJsonAccepted(req);
        const provider = await requireProvider(svc.db, uuidParam(req));
        const inventories = await providerInventories(svc, provider.id);
        return sendJson(req, reply, 200, inventoriesView(provider.generation, inventories.map((i) => [i.resource_class, i])), newest(inventories));
      },
    },
    {
      method: 'PUT',
      url: base,
      handler: async (req, reply) => {
        authorize(svc, req, 'placement:resource_providers:inventories:update');
        const uuid = uuidParam(req);
        await requireProvider(svc.db, uuid);
        const body = jsonBody<{ resource_provider_generation: number; inventories: Record<string, Body> }>(req, PUT_ALL);
        const wanted = new Map(Object.entries(body.inventories).map(([name, inv]) => [name, withDefaults(inv)]));
        const generation = await setInventories(svc, uuid, body.resource_provider_generation, wanted, minorOf(req));
        return sendJson(req, reply, 200, inventoriesView(generation, wanted));
      },
    },
    {
      method: 'POST',
      url: base,
      handler: async (req, reply) => {
        authorize(svc, req, 'placement:resource_providers:inventories:create');
        const uuid = uuidParam(req);
        await requireProvider(svc.db, uuid);
        const body = jsonBody<Body & { resource_class: string }>(req, POST);
        const inv = withDefaults(body);
        const generation = await addInventory(svc, uuid, body.resource_class, inv, minorOf(req));
        reply.header('location', `${providerUrl(uuid)}/inventories/${body.resource_class}`);
        return sendJson(req, reply, 201, { ...fieldsView(inv), resource_provider_generation: generation });
      },
    },
    {
      method: 'DELETE',
      url: base,
      since: 5,
      missingStatus: 405,
      handler: async (req, reply) => {
        authorize(svc, req, 'placement:resource_providers:inventories:delete');
        await deleteAllInventories(svc, uuidParam(req));
        return sendEmpty(reply, 204);
      },
    },
    {
      method: 'GET',
      url: `${base}/:resource_class`,
      handler: async (req, reply) => {
        authorize(svc, req, 'placement:resource_providers:inventories:show');
        requireJsonAccepted(req);
        const uuid = uuidParam(req);
        const name = rcParam(req);
        const provider = await requireProvider(svc.db, uuid);
        const inv = (await providerInventories(svc, provider.id)).find((i) => i.resource_class === name);
        if (!inv) throw notFound(`No inventory of class ${name} for ${uuid}`);
        return sendJson(req, reply, 200, { ...fieldsView(inv), resource_provider_generation: provider.generation }, inv.updated_at);
      },
    },
    {
      method: 'PUT',
      url: `${base}/:resource_class`,
      handler: async (req, reply) => {
        authorize(svc, req, 'placement:resource_providers:inventories:update');
        const uuid = uuidParam(req);
        await requireProvider(svc.db, uuid);
        const body = jsonBody<Body & { resource_provider_generation: number }>(req, BASE);
        const inv = withDefaults(body);
        const generation = await updateInventory(svc, uuid, rcParam(req), body.resource_provider_generation, inv, minorOf(req));
        return sendJson(req, reply, 200, { ...fieldsView(inv), resource_provider_generation: generation });
      },
    },
    {
      method: 'DELETE',
      url: `${base}/:resource_class`,
      handler: async (req, reply) => {
        authorize(svc, req, 'placement:resource_providers:inventories:delete');
        await deleteInventory(svc, uuidParam(req), rcParam(req));
        return sendEmpty(reply, 204);
      },
    },
  ]);
}
