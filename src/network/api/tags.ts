import type { FastifyInstance, FastifyRequest } from 'fastify';
import { sql, type Kysely } from 'kysely';
import type { RequestContext } from '../../core/auth/context.js';
import { isoNow, isRecord } from '../common.js';
import type { NetworkSchema } from '../db/schema.js';
import { NeutronError } from '../errors.js';
import { allowed, authorize, type NetworkService } from '../network.js';
import { findNetwork, networkTarget, onNetworkTarget } from '../networks.js';
import { portTarget } from '../ports.js';
import { ownerTarget } from '../routers.js';

/**
 * Tags on resources (`standard-attr-tag`): list, replace, add, check,
 * remove one, remove all, under `/v2.0/<collection>/<id>/tags`. The parent
 * must exist and be visible to the caller (404), and the caller must be
 * allowed to update it (403). A change bumps the parent's revision.
 */

/** Neutron's `MAX_TAG_LEN`. */
const MAX_TAG_LENGTH = 255;

type ParentTable = 'network' | 'subnet' | 'port' | 'router' | 'floatingip' | 'security_group' | 'subnetpool';

interface Parent {
  /** The URL segment and the tag's `resource_type`. */
  collection: string;
  table: ParentTable;
  /** The policy resource name (`get_<resource>`, `update_<resource>`). */
  resource: string;
}

const PARENTS: Parent[] = [
  { collection: 'networks', table: 'network', resource: 'network' },
  { collection: 'subnets', table: 'subnet', resource: 'subnet' },
  { collection: 'ports', table: 'port', resource: 'port' },
  { collection: 'routers', table: 'router', resource: 'router' },
  { collection: 'floatingips', table: 'floatingip', resource: 'floatingip' },
  { collection: 'security-groups', table: 'security_group', resource: 'security_group' },
  { collection: 'subnetpools', table: 'subnetpool', resource: 'subnetpool' },
];

function invalid(message: string): NeutronError {
  return new NeutronError(400, 'InvalidInput', `Invalid input for operation: ${message}.`);
}

/** Neutron's `validate_string(tag, MAX_TAG_LEN)`. */
function checkTag(tag: unknown): string {
  if (typeof tag !== 'string') throw invalid(`'${JSON.stringify(tag)}' is not a valid string`);
  if (tag.length > MAX_TAG_LENGTH) throw invalid(`'${tag}' exceeds maximum length of ${MAX_TAG_LENGTH}`);
  return tag;
}

/** Neutron's `validate_tags`: `{"tags": [unique strings]}`. */
function readTags(body: unknown): string[] {
  if (!isRecord(body) || !('tags' in body)) throw invalid('Invalid tags body');
  const tags = body.tags;
  if (!Array.isArray(tags)) throw invalid(`'${JSON.stringify(tags)}' is not a list`);
  for (const tag of tags) checkTag(tag);
  const seen = new Set<string>();
  const duplicates = (tags as string[]).filter((t) => (seen.has(t) ? true : (seen.add(t), false)));
  if (duplicates.length > 0) throw invalid(`Duplicate items in the list: '${[...new Set(duplicates)].join(', ')}'`);
  return tags as string[];
}

/** The policy target of a parent row, with its network's keys for subnets and ports; null when it does not exist. */
async function loadTarget(db: Kysely<NetworkSchema>, parent: Parent, id: string): Promise<Record<string, unknown> | null> {
  switch (parent.table) {
    case 'network': {
      const row = await findNetwork(db, id);
      return row ? networkTarget(row) : null;
    }
    case 'subnet': {
      const row = await db.selectFrom('subnet').select(['id', 'project_id', 'network_id']).where('id', '=', id).executeTakeFirst();
      if (!row) return null;
      const network = await findNetwork(db, row.network_id);
      return { ...(network ? onNetworkTarget(network) : {}), id: row.id, project_id: row.project_id, tenant_id: row.project_id };
    }
    case 'port': {
      const row = await db.selectFrom('port').select(['id', 'project_id', 'network_id', 'device_owner']).where('id', '=', id).executeTakeFirst();
      if (!row) return null;
      return { ...portTarget(row, await findNetwork(db, row.network_id)), id: row.id };
    }
    case 'subnetpool': {
      const row = await db.selectFrom('subnetpool').select(['id', 'project_id', 'shared']).where('id', '=', id).executeTakeFirst();
      return row ? { ...ownerTarget(row), shared: Number(row.shared) === 1 } : null;
    }
    case 'router':
    case 'floatingip':
    case 'security_group': {
      const row = await db.selectFrom(parent.table).select(['id', 'project_id']).where('id', '=', id).executeTakeFirst();
      return row ? ownerTarget(row) : null;
    }
  }
}

export function registerTags(app: FastifyInstance, net: NetworkService): void {
  for (const parent of PARENTS) registerParent(app, net, parent);
}

function registerParent(app: FastifyInstance, net: NetworkService, parent: Parent): void {
  const base = `/v2.0/${parent.collection}/:id/tags`;
  type Req = FastifyRequest<{ Params: { id: string; tag?: string } }>;

  /** The parent's target; 404 when missing or not visible. */
  const visible = async (ctx: RequestContext, id: string): Promise<Record<string, unknown>> => {
    const target = await loadTarget(net.db, parent, id);
    if (!target || !allowed(net, ctx, `get_${parent.resource}`, target)) throw new NeutronError(404, 'TagResourceNotFound', `Resource ${parent.collection} ${id} could not be found.`);
    return target;
  };
  /** Visible, and the caller may update the parent and do `action` on its tags (403). */
  const changeable = async (ctx: RequestContext, id: string, action: 'create_tags' | 'update_tags' | 'delete_tags'): Promise<void> => {
    const target = await visible(ctx, id);
    authorize(net, ctx, `update_${parent.resource}`, target);
    authorize(net, ctx, action, target);
  };
  const current = async (id: string): Promise<string[]> =>
    (await net.db.selectFrom('tag').select('tag').where('resource_type', '=', parent.collection).where('resource_id', '=', id).orderBy('tag').execute()).map((r) => r.tag);
  /** Bumps the parent's revision in the transaction that changed its tags. */
  const bump = async (trx: Kysely<NetworkSchema>, id: string): Promise<void> => {
    await trx
      .updateTable(parent.table)
      .set({ revision_number: sql<number>`revision_number + 1`, updated_at: isoNow() })
      .where('id', '=', id)
      .execute();
  };
  const tell = (ctx: RequestContext, action: string, id: string, tags?: string[]): void => {
    net.notify(`tag.${action}.end`, { parent_resource: parent.collection, parent_resource_id: id, ...(tags ? { tags } : {}) }, ctx);
  };

  app.get(base, async (req: Req) => {
    await visible(req.ctx, req.params.id);
    return { tags: await current(req.params.id) };
  });

  app.get(`${base}/:tag`, async (req: Req, reply) => {
    const tag = checkTag(req.params.tag);
    await visible(req.ctx, req.params.id);
    if (!(await current(req.params.id)).includes(tag)) throw new NeutronError(404, 'TagNotFound', `Tag ${tag} could not be found.`);
    return reply.code(204).send();
  });

  app.put(base, async (req: Req) => {
    const tags = readTags(req.body);
    const id = req.params.id;
    await changeable(req.ctx, id, 'update_tags');
    await net.db.transaction().execute(async (trx) => {
      const old = (await trx.selectFrom('tag').select('tag').where('resource_type', '=', parent.collection).where('resource_id', '=', id).execute()).map((r) => r.tag);
      const removed = old.filter((t) => !tags.includes(t));
      const added = tags.filter((t) => !old.includes(t));
      if (removed.length > 0) await trx.deleteFrom('tag').where('resource_type', '=', parent.collection).where('resource_id', '=', id).where('tag', 'in', removed).execute();
      if (added.length > 0) await trx.insertInto('tag').values(added.map((tag) => ({ resource_type: parent.collection, resource_id: id, tag }))).execute();
      if (removed.length > 0 || added.length > 0) await bump(trx, id);
    });
    tell(req.ctx, 'update', id, tags);
    return { tags };
  });

  app.put(`${base}/:tag`, async (req: Req, reply) => {
    const tag = checkTag(req.params.tag);
    const id = req.params.id;
    await changeable(req.ctx, id, 'create_tags');
    await net.db.transaction().execute(async (trx) => {
      const exists = await trx.selectFrom('tag').select('tag').where('resource_type', '=', parent.collection).where('resource_id', '=', id).where('tag', '=', tag).executeTakeFirst();
      if (exists) return;
      await trx.insertInto('tag').values({ resource_type: parent.collection, resource_id: id, tag }).execute();
      await bump(trx, id);
    });
    tell(req.ctx, 'create', id, [tag]);
    return reply.code(201).send();
  });

  app.delete(`${base}/:tag`, async (req: Req, reply) => {
    const tag = checkTag(req.params.tag);
    const id = req.params.id;
    await changeable(req.ctx, id, 'delete_tags');
    const removed = await net.db.transaction().execute(async (trx) => {
      const result = await trx.deleteFrom('tag').where('resource_type', '=', parent.collection).where('resource_id', '=', id).where('tag', '=', tag).executeTakeFirst();
      if (Number(result.numDeletedRows) === 0) return false;
      await bump(trx, id);
      return true;
    });
    if (!removed) throw new NeutronError(404, 'TagNotFound', `Tag ${tag} could not be found.`);
    tell(req.ctx, 'delete', id, [tag]);
    return reply.code(204).send();
  });

  app.delete(base, async (req: Req, reply) => {
    const id = req.params.id;
    await changeable(req.ctx, id, 'delete_tags');
    await net.db.transaction().execute(async (trx) => {
      const result = await trx.deleteFrom('tag').where('resource_type', '=', parent.collection).where('resource_id', '=', id).executeTakeFirst();
      if (Number(result.numDeletedRows) > 0) await bump(trx, id);
    });
    tell(req.ctx, 'delete_all', id);
    return reply.code(204).send();
  });
}
