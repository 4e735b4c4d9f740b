import type { FastifyInstance, FastifyRequest } from 'fastify';
import { allowed, atLeast, authorize, contextOf, isAdmin, type ComputeService } from '../compute.js';
import type { FlavorRow } from '../db/schema.js';
import { badRequest, notFound } from '../errors.js';
import {
  createFlavor,
  deleteFlavor,
  extraSpecsOf,
  FLAVOR_SORT_KEYS,
  flavorViewer,
  getFlavor,
  listFlavors,
  setFlavorDescription,
  type FlavorQuery,
  type NewFlavor,
} from '../flavors.js';
import {
  bodyObject,
  booleanLike,
  checkKeys,
  checkName,
  checkQueryKeys,
  collectionLinks,
  queryParam,
  integerLike,
  invalidField,
  invalidQuery,
  pagination,
  pyRepr,
  queryParams,
  resourceLinks,
  strictBool,
  type Obj,
} from './request-checks.js';

/**
 * `/flavors`: list (brief and detail), show, create, update (the
 * description, 2.55) and delete. Views follow the microversion: `description`
 * from 2.55, `extra_specs` from 2.61 for callers who may read them, `swap` an
 * integer from 2.75 (`""` for none before).
 */

const LIST_PARAMS = ['limit', 'marker', 'is_public', 'minRam', 'minDisk', 'sort_key', 'sort_dir'];

/** The brief view of a flavor (lists). */
function briefView(compute: ComputeService, req: FastifyRequest, row: FlavorRow): Record<string, unknown> {
  const view: Record<string, unknown> = { id: row.flavorid, name: row.name, links: resourceLinks(compute, 'flavors', row.flavorid) };
  if (atLeast(req, '2.55')) view.description = row.description;
  return view;
}

/** The full view of a flavor; `extraSpecs` only when the caller sees them (2.61+). */
export function flavorView(compute: ComputeService, req: FastifyRequest, row: FlavorRow, extraSpecs?: Record<string, string>): Record<string, unknown> {
  const swap = Number(row.swap);
  const rxtx = Number(row.rxtx_factor);
  const view: Record<string, unknown> = {
    id: row.flavorid,
    name: row.name,
    ram: Number(row.memory_mb),
    disk: Number(row.root_gb),
    swap: atLeast(req, '2.75') ? swap : swap || '',
    'OS-FLV-EXT-DATA:ephemeral': Number(row.ephemeral_gb),
    'OS-FLV-DISABLED:disabled': Number(row.disabled) === 1,
    vcpus: Number(row.vcpus),
    'os-flavor-access:is_public': Number(row.is_public) === 1,
    rxtx_factor: rxtx || '',
    links: resourceLinks(compute, 'flavors', row.flavorid),
  };
  if (atLeast(req, '2.55')) view.description = row.description;
  if (extraSpecs) view.extra_specs = extraSpecs;
  return view;
}

/** Whether the caller sees `extra_specs` in flavor views (2.61 and `os-flavor-extra-specs:index`). */
export function showsExtraSpecs(compute: ComputeService, req: FastifyRequest): boolean {
  return atLeast(req, '2.61') && allowed(compute, contextOf(req), 'os-flavor-extra-specs:index');
}

function parseIsPublic(text: string | undefined): boolean | null {
  if (text === undefined) return true;
  if (text.toLowerCase() === 'none') return null;
  const value = strictBool(text);
  if (value === undefined) throw badRequest(`Invalid is_public filter [${text}]`);
  return value;
}

function parseIntFilter(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\s*[-+]?\d+\s*$/.test(text)) throw badRequest(`Invalid ${name} filter [${text}]`);
  return Number(text.trim());
}

function parseListQuery(compute: ComputeService, req: FastifyRequest): FlavorQuery {
  checkQueryKeys(req, LIST_PARAMS, atLeast(req, '2.75'));
  const params = queryParams(req);
  for (const [name, allowedValues] of [
    ['sort_key', Object.keys(FLAVOR_SORT_KEYS)],
    ['sort_dir', ['asc', 'desc']],
  ] as const) {
    for (const value of params[name] ?? []) {
      if (!(allowedValues as readonly string[]).includes(value)) throw invalidQuery(name, value, `'${value}' is not one of ${pyRepr([...allowedValues])}`);
    }
  }
  const { limit, marker } = pagination(compute, req);
  const admin = isAdmin(compute, contextOf(req));
  const sortKeyName = queryParam(req, 'sort_key') || 'flavorid';
  const nameFilter = atLeast(req, '2.75') ? undefined : queryParam(req, 'name');
  let name: RegExp | undefined;
  if (nameFilter !== undefined) {
    try {
      name = new RegExp(nameFilter);
    } catch {
      throw badRequest(`Invalid name filter [${nameFilter}]`);
    }
  }
  return {
    isPublic: admin ? parseIsPublic(queryParam(req, 'is_public')) : true,
    enabledOnly: !admin,
    minRam: parseIntFilter('minRam', queryParam(req, 'minRam')),
    minDisk: parseIntFilter('minDisk', queryParam(req, 'minDisk')),
    name,
    sortKey: FLAVOR_SORT_KEYS[sortKeyName] ?? 'flavorid',
    sortDir: queryParam(req, 'sort_dir') === 'desc' ? 'desc' : 'asc',
    limit,
    marker,
  };
}

async function listView(compute: ComputeService, req: FastifyRequest, detail: boolean): Promise<Record<string, unknown>> {
  const query = parseListQuery(compute, req);
  const rows = await listFlavors(compute.db, flavorViewer(compute, contextOf(req)), query);
  let flavors: Record<string, unknown>[];
  if (detail) {
    const specs = showsExtraSpecs(compute, req) ? await extraSpecsOf(compute.db, rows.map((r) => r.flavorid)) : undefined;
    flavors = rows.map((row) => flavorView(compute, req, row, specs?.get(row.flavorid)));
  } else {
    flavors = rows.map((row) => briefView(compute, req, row));
  }
  const out: Record<string, unknown> = { flavors };
  const links = collectionLinks(compute, req, detail ? 'flavors/detail' : 'flavors', rows.length, rows[rows.length - 1]?.flavorid);
  if (links.length > 0) out.flavors_links = links;
  return out;
}

const FLAVOR_ID = /^(?! )[a-zA-Z0-9. _-]+(?<! )$/;
const RXTX = /^[0-9]+(\.[0-9]+)?$/;
const DESCRIPTION_MAX = 65535;

function flavorId(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'number') return value === 0 ? undefined : String(value);
  if (typeof value !== 'string') throw invalidField('id', value, `${pyRepr(value)} is not of type 'string', 'number', 'null'`);
  if (value.length < 1) throw invalidField('id', value, `'' is too short`);
  if (value.length > 255) throw invalidField('id', value, `'${value}' is too long`);
  if (!FLAVOR_ID.test(value)) throw invalidField('id', value, `'${value}' does not match '${FLAVOR_ID.source}'`);
  return value;
}

function rxtxFactor(value: unknown): number {
  let n: number;
  if (typeof value === 'number') n = value;
  else if (typeof value === 'string') {
    if (!RXTX.test(value)) throw invalidField('rxtx_factor', value, `'${value}' does not match '${RXTX.source}'`);
    n = Number(value);
  } else throw invalidField('rxtx_factor', value, `${pyRepr(value)} is not of type 'number', 'string'`);
  if (n <= 0) throw invalidField('rxtx_factor', value, `${pyRepr(value)} is less than or equal to the minimum of 0`);
  if (n > 3.40282e38) throw invalidField('rxtx_factor', value, `${pyRepr(value)} is greater than the maximum of 3.40282e+38`);
  return n;
}

/** The description of a create or update (2.55): null or printable text up to 64 KiB. */
function description(value: unknown): string | null {
  if (value === null) return null;
  if (typeof value !== 'string') throw invalidField('description', value, `${pyRepr(value)} is not of type 'string', 'null'`);
  if (value.length > DESCRIPTION_MAX) throw invalidField('description', value, `'${value.slice(0, 20)}...' is too long`);
  if (/[\p{C}\p{Zl}\p{Zp}]/u.test(value)) throw invalidField('description', value, `'${value}' does not match the printable characters pattern`);
  return value;
}

/** Validates a `POST /flavors` body as Nova's schema for the request's microversion. */
function parseCreate(req: FastifyRequest): NewFlavor {
  const body = bodyObject(req.body, 'flavor');
  const withDescription = atLeast(req, '2.55');
  const known = ['name', 'id', 'ram', 'vcpus', 'disk', 'OS-FLV-EXT-DATA:ephemeral', 'swap', 'rxtx_factor', 'os-flavor-access:is_public', ...(withDescription ? ['description'] : [])];
  checkKeys(body, 'flavor', known, ['name', 'ram', 'vcpus', 'disk']);
  const optional = (key: string, read: (v: unknown) => number, fallback: number): number => (body[key] === undefined ? fallback : read(body[key]));
  return {
    name: checkName(body.name, 'name'),
    flavorid: flavorId(body.id),
    memory_mb: integerLike(body.ram, 'ram', 1),
    vcpus: integerLike(body.vcpus, 'vcpus', 1),
    root_gb: integerLike(body.disk, 'disk', 0),
    ephemeral_gb: optional('OS-FLV-EXT-DATA:ephemeral', (v) => integerLike(v, 'OS-FLV-EXT-DATA:ephemeral', 0), 0),
    swap: optional('swap', (v) => integerLike(v, 'swap', 0), 0),
    rxtx_factor: optional('rxtx_factor', rxtxFactor, 1.0),
    is_public: body['os-flavor-access:is_public'] === undefined ? true : booleanLike(body['os-flavor-access:is_public'], 'os-flavor-access:is_public'),
    description: withDescription && body.description !== undefined ? description(body.description) : null,
  };
}

function parseUpdate(req: FastifyRequest): string | null {
  const body: Obj = bodyObject(req.body, 'flavor');
  checkKeys(body, 'flavor', ['description'], ['description']);
  return description(body.description);
}

/** Registers `/flavors` (list, detail, show, create, update, delete). */
export function registerFlavors(app: FastifyInstance, compute: ComputeService): void {
  app.get('/v2.1/flavors', async (req) => listView(compute, req, false));
  app.get('/v2.1/flavors/detail', async (req) => listView(compute, req, true));

  app.get<{ Params: { id: string } }>('/v2.1/flavors/:id', async (req) => {
    const flavor = await getFlavor(compute.db, req.params.id, flavorViewer(compute, contextOf(req)));
    return { flavor: flavorView(compute, req, flavor, showsExtraSpecs(compute, req) ? flavor.extra_specs : undefined) };
  });

  app.post('/v2.1/flavors', async (req) => {
    authorize(compute, contextOf(req), 'os-flavor-manage:create');
    const flavor = await createFlavor(compute.db, parseCreate(req));
    return { flavor: flavorView(compute, req, flavor, showsExtraSpecs(compute, req) ? {} : undefined) };
  });

  app.put<{ Params: { id: string } }>('/v2.1/flavors/:id', async (req) => {
    if (!atLeast(req, '2.55')) throw notFound('The resource could not be found.');
    authorize(compute, contextOf(req), 'os-flavor-manage:update');
    const text = parseUpdate(req);
    await setFlavorDescription(compute.db, req.params.id, text);
    const flavor = await getFlavor(compute.db, req.params.id, { admin: true, projectId: null });
    return { flavor: flavorView(compute, req, flavor, showsExtraSpecs(compute, req) ? flavor.extra_specs : undefined) };
  });

  app.delete<{ Params: { id: string } }>('/v2.1/flavors/:id', async (req, reply) => {
    authorize(compute, contextOf(req), 'os-flavor-manage:delete');
    await deleteFlavor(compute.db, req.params.id);
    return reply.code(202).send();
  });
}
