import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import type { RequestContext } from '../../core/auth/context.js';
import { bool, int, isoNow, json, newStandardColumns, owner, readBody, readCreate, standardView, STANDARD_ATTRS, type Attrs } from '../common.js';
import type { NetworkSchema, SubnetpoolRow } from '../db/schema.js';
import { invalidInput, NeutronError, notFound } from '../errors.js';
import { BITS, formatCidr, parseCidr, type Cidr, type IpVersion } from '../ipam/addresses.js';
import { retryOnConflict } from '../ipam/allocator.js';
import { lockSubnetpool, poolPrefixes } from '../ipam/pools.js';
import { compactPrefixes, coveredBy } from '../ipam/prefixes.js';
import { invalidOperation, subnetCidr } from '../ipam/subnet-rules.js';
import { listResponse, parseListQuery, selectFields, showFields, STANDARD_ATTRIBUTES, type ListSpec } from '../lists.js';
import { allowed, authorize, isAdmin, type NetworkService } from '../network.js';
import { saveTags, tagsAttr } from '../networks.js';
import { checkQuota } from '../quotas.js';
import { loadTags } from '../tags.js';

/**
 * `/v2.0/subnetpools` (`subnet_allocation`, `default-subnetpools`): pools
 * of prefixes subnets are cut from. The IP version follows the prefixes;
 * prefixes are kept compact (merged); one default pool per IP version.
 */

type Db = Kysely<NetworkSchema>;

const readOnly = { post: false, put: false };
const prefixlenAttr = { post: true, put: true, convert: (v: unknown, n: string) => int(v, n, 0) };

const SUBNETPOOL_ATTRS: Attrs = {
  ...STANDARD_ATTRS,
  prefixes: { post: true, put: true, required: true, convert: prefixList },
  default_prefixlen: prefixlenAttr,
  min_prefixlen: prefixlenAttr,
  max_prefixlen: prefixlenAttr,
  shared: { post: true, default: false, convert: bool },
  is_default: { post: true, put: true, default: false, convert: bool },
  default_quota: { post: true, put: true, convert: (v, n) => (v === null ? null : int(v, n, 0)) },
  address_scope_id: { post: true, put: true, convert: addressScope },
  tags: { post: true, convert: tagsAttr },
  id: readOnly,
  ip_version: readOnly,
  created_at: readOnly,
  updated_at: readOnly,
  revision_number: readOnly,
};

const LIST_SPEC: ListSpec = {
  collection: 'subnetpools',
  resource: 'subnetpool',
  attributes: [
    ...STANDARD_ATTRIBUTES,
    'ip_version',
    'default_prefixlen',
    'min_prefixlen',
    'max_prefixlen',
    'shared',
    'is_default',
    'default_quota',
    'address_scope_id',
    'prefixes',
  ],
};

function prefixList(value: unknown, name: string): string[] {
  if (!Array.isArray(value)) throw invalidInput(name, `'${JSON.stringify(value)}' is not a list`);
  return value.map((p) => subnetCidr(p, name));
}

/** Address scopes are not offered: only null is accepted, any id is one that does not exist. */
function addressScope(value: unknown, name: string): null {
  if (value === null) return null;
  if (typeof value !== 'string') throw invalidInput(name, `'${String(value)}' is not a valid UUID`);
  throw new NeutronError(404, 'AddressScopeNotFound', `Address scope ${value} could not be found.`);
}

/** The policy target of a pool. */
export function subnetpoolTarget(row: SubnetpoolRow): Record<string, unknown> {
  return { id: row.id, project_id: row.project_id, tenant_id: row.project_id, shared: row.shared === 1, is_default: row.is_default === 1 };
}

/** The pool as the caller may see it (owner, shared, admin); 404 `SubnetPoolNotFound` otherwise. Pass a transaction as `db` to read in it. */
export async function loadSubnetpoolFor(net: NetworkService, ctx: RequestContext, id: string, db: Db = net.db): Promise<SubnetpoolRow> {
  const row = await db.selectFrom('subnetpool').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row || !allowed(net, ctx, 'get_subnetpool', subnetpoolTarget(row))) throw notFound('subnetpool', id);
  return row;
}

/** The default pool of an IP version the caller may use, or undefined. */
export async function defaultSubnetpoolFor(net: NetworkService, ctx: RequestContext, version: number, db: Db = net.db): Promise<SubnetpoolRow | undefined> {
  const rows = await db.selectFrom('subnetpool').selectAll().where('is_default', '=', 1).where('ip_version', '=', version).execute();
  return rows.find((row) => allowed(net, ctx, 'get_subnetpool', subnetpoolTarget(row)));
}

export function subnetpoolView(row: SubnetpoolRow, tags: string[]): Record<string, unknown> {
  return {
    ...standardView(row, tags),
    ip_version: Number(row.ip_version),
    prefixes: json<string[]>(row.prefixes, []),
    default_prefixlen: Number(row.default_prefixlen),
    min_prefixlen: Number(row.min_prefixlen),
    max_prefixlen: Number(row.max_prefixlen),
    shared: row.shared === 1,
    is_default: row.is_default === 1,
    default_quota: row.default_quota === null ? null : Number(row.default_quota),
    address_scope_id: row.address_scope_id,
  };
}

function bounds(type: string, value: number, baseType: string, base: number): NeutronError {
  return new NeutronError(400, 'IllegalSubnetPoolPrefixBounds', `Illegal prefix bounds: ${type}=${value}, ${baseType}=${base}.`);
}

/** The pool's prefixes (compacted), IP version and prefix lengths, checked as Neutron's SubnetPoolReader does. */
function readPool(prefixTexts: string[], lengths: { min?: number; max?: number; default?: number }): { version: IpVersion; prefixes: Cidr[]; min: number; max: number; default: number } {
  if (prefixTexts.length === 0) throw new NeutronError(400, 'EmptySubnetPoolPrefixList', 'Empty subnet pool prefix list.');
  const cidrs = prefixTexts.map((p) => parseCidr(p)).filter((c): c is Cidr => c !== null);
  const version = cidrs[0]?.version ?? 4;
  if (cidrs.some((c) => c.version !== version)) throw new NeutronError(400, 'PrefixVersionMismatch', 'Cannot mix IPv4 and IPv6 prefixes in a subnet pool.');
  const min = lengths.min ?? (version === 4 ? 8 : 64);
  const max = lengths.max ?? BITS[version];
  const def = lengths.default ?? min;
  if (min > max) throw bounds('min_prefixlen', min, 'max_prefixlen', max);
  if (max > BITS[version]) throw bounds('max_prefixlen', max, 'ip_version_max', BITS[version]);
  if (def < min) throw bounds('default_prefixlen', def, 'min_prefixlen', min);
  if (def > max) throw bounds('default_prefixlen', def, 'max_prefixlen', max);
  return { version, prefixes: compactPrefixes(version, cidrs), min, max, default: def };
}

async function checkNoOtherDefault(db: Db, version: number, id: string): Promise<void> {
  const other = await db.selectFrom('subnetpool').select('id').where('is_default', '=', 1).where('ip_version', '=', version).where('id', '!=', id).executeTakeFirst();
  if (other) throw invalidOperation('A default subnetpool for this IP family has already been set. Only one default may exist per IP family');
}

async function createSubnetpools(net: NetworkService, req: FastifyRequest): Promise<{ rows: SubnetpoolRow[]; bulk: boolean }> {
  const ctx = req.ctx;
  const { items, bulk } = readCreate(req.body, 'subnetpool', 'subnetpools', SUBNETPOOL_ATTRS);
  const now = isoNow();
  const prepared = items.map((item) => {
    const project = owner(ctx, item);
    const explicit = [...(item.shared === true ? ['shared'] : []), ...(item.is_default === true ? ['is_default'] : [])];
    authorize(net, ctx, 'create_subnetpool', { project_id: project, tenant_id: project, shared: item.shared === true }, explicit);
    const pool = readPool(item.prefixes as string[], { min: item.min_prefixlen as number | undefined, max: item.max_prefixlen as number | undefined, default: item.default_prefixlen as number | undefined });
    const row: SubnetpoolRow = {
      ...newStandardColumns(project, item, now),
      // Neutron shows a new subnet pool at revision 0.
      revision_number: 0,
      ip_version: pool.version,
      prefixes: JSON.stringify(pool.prefixes.map(formatCidr)),
      default_prefixlen: pool.default,
      min_prefixlen: pool.min,
      max_prefixlen: pool.max,
      shared: item.shared === true ? 1 : 0,
      is_default: item.is_default === true ? 1 : 0,
      default_quota: (item.default_quota as number | null | undefined) ?? null,
      address_scope_id: null,
    };
    return { row, tags: (item.tags as string[] | undefined) ?? [] };
  });
  const perProject = new Map<string, number>();
  for (const p of prepared) perProject.set(p.row.project_id, (perProject.get(p.row.project_id) ?? 0) + 1);
  await retryOnConflict(() =>
    net.db.transaction().execute(async (trx) => {
      for (const [project, count] of perProject) await checkQuota(trx, net.config.network, project, 'subnetpool', count);
      for (const { row, tags } of prepared) {
        if (row.is_default === 1) await checkNoOtherDefault(trx, row.ip_version, row.id);
        await trx.insertInto('subnetpool').values(row).execute();
        await saveTags(trx, 'subnetpools', row.id, tags);
      }
    }),
  );
  return { rows: prepared.map((p) => p.row), bulk };
}

async function updateSubnetpool(net: NetworkService, ctx: RequestContext, id: string, body: Record<string, unknown>): Promise<SubnetpoolRow> {
  return net.db.transaction().execute(async (trx) => {
    const row = await loadSubnetpoolFor(net, ctx, id, trx);
    authorize(net, ctx, 'update_subnetpool', subnetpoolTarget(row), Object.keys(body));
    const old = poolPrefixes(row);
    let prefixTexts = old.map(formatCidr);
    if (body.prefixes !== undefined) {
      const asked = (body.prefixes as string[]).map((p) => parseCidr(p)).filter((c): c is Cidr => c !== null);
      if (asked.some((c) => c.version !== row.ip_version)) throw new NeutronError(400, 'PrefixVersionMismatch', 'Cannot mix IPv4 and IPv6 prefixes in a subnet pool.');
      if (!coveredBy(old, asked)) throw new NeutronError(400, 'IllegalSubnetPoolPrefixUpdate', 'Illegal update to prefixes: Existing prefixes must be a subset of the new prefixes.');
      prefixTexts = asked.map(formatCidr);
    }
    const pool = readPool(prefixTexts, {
      min: (body.min_prefixlen as number | undefined) ?? Number(row.min_prefixlen),
      max: (body.max_prefixlen as number | undefined) ?? Number(row.max_prefixlen),
      default: (body.default_prefixlen as number | undefined) ?? Number(row.default_prefixlen),
    });
    const next: SubnetpoolRow = {
      ...row,
      name: (body.name as string | undefined) ?? row.name,
      description: (body.description as string | undefined) ?? row.description,
      prefixes: JSON.stringify(pool.prefixes.map(formatCidr)),
      min_prefixlen: pool.min,
      max_prefixlen: pool.max,
      default_prefixlen: pool.default,
      is_default: body.is_default === undefined ? row.is_default : body.is_default ? 1 : 0,
      default_quota: body.default_quota === undefined ? row.default_quota : (body.default_quota as number | null),
      revision_number: Number(row.revision_number) + 1,
      updated_at: isoNow(),
    };
    if (next.is_default === 1 && row.is_default !== 1) await checkNoOtherDefault(trx, row.ip_version, id);
    const { id: _id, ...changes } = next;
    await trx.updateTable('subnetpool').set(changes).where('id', '=', id).execute();
    return next;
  });
}

async function deleteSubnetpool(net: NetworkService, ctx: RequestContext, id: string): Promise<SubnetpoolRow> {
  return net.db.transaction().execute(async (trx) => {
    const row = await loadSubnetpoolFor(net, ctx, id, trx);
    authorize(net, ctx, 'delete_subnetpool', subnetpoolTarget(row));
    await lockSubnetpool(trx, net.dialect, id);
    const used = await trx.selectFrom('subnet').select('id').where('subnetpool_id', '=', id).executeTakeFirst();
    if (used) throw new NeutronError(400, 'SubnetPoolDeleteError', 'Unable to delete subnet pool: Subnet pool has existing allocations.');
    await trx.deleteFrom('tag').where('resource_type', '=', 'subnetpools').where('resource_id', '=', id).execute();
    await trx.deleteFrom('subnetpool').where('id', '=', id).execute();
    return row;
  });
}

export function registerSubnetpools(app: FastifyInstance, net: NetworkService): void {
  app.get('/v2.0/subnetpools', async (req) => {
    const ctx = req.ctx;
    const query = parseListQuery(req, LIST_SPEC, net.config.network.pagination_max_limit);
    let select = net.db.selectFrom('subnetpool').selectAll();
    if (!isAdmin(net, ctx)) select = select.where((eb) => eb.or([eb('project_id', '=', ctx.projectId ?? ''), eb('shared', '=', 1)]));
    const rows = (await select.execute()).filter((row) => allowed(net, ctx, 'get_subnetpool', subnetpoolTarget(row)));
    const tags = await loadTags(net.db, 'subnetpools', rows.map((r) => r.id));
    return listResponse(req, LIST_SPEC, rows.map((row) => subnetpoolView(row, tags.get(row.id) ?? [])), query);
  });

  app.get<{ Params: { id: string } }>('/v2.0/subnetpools/:id', async (req) => {
    const row = await loadSubnetpoolFor(net, req.ctx, req.params.id);
    const tags = await loadTags(net.db, 'subnetpools', [row.id]);
    return { subnetpool: selectFields(subnetpoolView(row, tags.get(row.id) ?? []), showFields(req)) };
  });

  app.post('/v2.0/subnetpools', async (req, reply) => {
    const { rows, bulk } = await createSubnetpools(net, req);
    const tags = await loadTags(net.db, 'subnetpools', rows.map((r) => r.id));
    const views = rows.map((row) => subnetpoolView(row, tags.get(row.id) ?? []));
    for (const view of views) net.notify('subnetpool.create.end', { subnetpool: view }, req.ctx);
    reply.code(201);
    return bulk ? { subnetpools: views } : { subnetpool: views[0] };
  });

  app.put<{ Params: { id: string } }>('/v2.0/subnetpools/:id', async (req) => {
    const body = readBody(req.body, 'subnetpool', SUBNETPOOL_ATTRS, 'update');
    const row = await updateSubnetpool(net, req.ctx, req.params.id, body);
    const tags = await loadTags(net.db, 'subnetpools', [row.id]);
    const view = subnetpoolView(row, tags.get(row.id) ?? []);
    net.notify('subnetpool.update.end', { subnetpool: view }, req.ctx);
    return { subnetpool: view };
  });

  app.delete<{ Params: { id: string } }>('/v2.0/subnetpools/:id', async (req, reply) => {
    const row = await deleteSubnetpool(net, req.ctx, req.params.id);
    net.notify('subnetpool.delete.end', { subnetpool_id: row.id, subnetpool: subnetpoolView(row, []) }, req.ctx);
    reply.code(204);
  });
}
