import type { FastifyInstance, FastifyRequest } from 'fastify';
import { contextOf, isAdmin, type ComputeService } from '../compute.js';
import type { InstanceRow } from '../db/schema.js';
import { badRequest, notFound } from '../errors.js';
import { loadInstanceFor } from '../instances.js';
import { projectLimits } from '../quotas.js';
import { checkMetadataEditable, deleteMetadataItem, metadataLimitExceeded, metadataOf, setMetadata } from '../server-metadata.js';
import { bodyOf, checkObject, invalidField, isObject, notOfType, pyRepr, unexpected } from './nova-input.js';

/**
 * `/servers/{id}/metadata`: list, replace all (PUT), merge (POST), and
 * `/metadata/{key}`: show, set (PUT), delete. Changes check the
 * `metadata_items` quota of the caller's project (403) and the server's
 * lock and state (409).
 */

/** Keys Nova's schema allows: 1..255 of letters, digits, `-_:. ` and space. */
const KEY = /^[a-zA-Z0-9\-_:. ]{1,255}$/;

/** Checks metadata as Nova's `metadata` schema does; returns it typed, or throws Nova's 400. */
function checkMetadataShape(value: unknown, name: string): Record<string, string> {
  if (!isObject(value)) throw invalidField(name, value, notOfType(value, 'object'));
  for (const [key, item] of Object.entries(value)) {
    if (!KEY.test(key)) continue;
    if (typeof item !== 'string') throw invalidField(key, item, notOfType(item, 'string'));
    if ([...item].length > 255) throw invalidField(key, item, `${pyRepr(item, true)} is too long`);
  }
  const badKeys = Object.keys(value).filter((k) => !KEY.test(k));
  if (badKeys.length > 0) throw invalidField(name, value, unexpected(badKeys));
  return value as Record<string, string>;
}

/**
 * Checks a server's metadata as Nova does at server create and rebuild (and
 * here): keys of 1..255 characters of `[a-zA-Z0-9-_:. ]`, string values of at
 * most 255 (400 `Invalid input for field/attribute ...`), and at most `limit`
 * items (403 `Maximum number of metadata items exceeds N`; -1: no limit).
 */
export function validateMetadata(metadata: unknown, limit: number, name = 'metadata'): Record<string, string> {
  const checked = checkMetadataShape(metadata, name);
  if (limit >= 0 && Object.keys(checked).length > limit) throw metadataLimitExceeded(limit);
  return checked;
}

/** The `metadata_items` limit that applies to the caller (Nova checks the caller's project, not the server's). */
async function metadataLimit(compute: ComputeService, req: FastifyRequest, server: InstanceRow): Promise<number> {
  const ctx = contextOf(req);
  return (await projectLimits(compute.db, compute.config.compute, ctx.projectId ?? server.project_id, ctx.userId)).metadata_items;
}

type ServerParams = { Params: { server_id: string } };
type KeyParams = { Params: { server_id: string; key: string } };

/** Registers the `/servers/{id}/metadata` routes. */
export function registerServerMetadata(app: FastifyInstance, compute: ComputeService): void {
  const load = (req: FastifyRequest<ServerParams | KeyParams>, rule: string): Promise<InstanceRow> => loadInstanceFor(compute, contextOf(req), req.params.server_id, `server-metadata:${rule}`);

  app.get<ServerParams>('/v2.1/servers/:server_id/metadata', async (req) => {
    const server = await load(req, 'index');
    return { metadata: await metadataOf(compute.db, server.uuid) };
  });

  const writeAll = (replace: boolean) => async (req: FastifyRequest<ServerParams>) => {
    const body = checkObject(bodyOf(req), null, ['metadata'], ['metadata']);
    const values = checkMetadataShape(body.metadata, 'metadata');
    const server = await load(req, replace ? 'update_all' : 'create');
    checkMetadataEditable(server, isAdmin(compute, contextOf(req)), 'update metadata');
    const limit = await metadataLimit(compute, req, server);
    return { metadata: await setMetadata(compute.db, server.uuid, values, { replace, limit }) };
  };
  app.post<ServerParams>('/v2.1/servers/:server_id/metadata', writeAll(false));
  app.put<ServerParams>('/v2.1/servers/:server_id/metadata', writeAll(true));

  app.get<KeyParams>('/v2.1/servers/:server_id/metadata/:key', async (req) => {
    const server = await load(req, 'show');
    const metadata = await metadataOf(compute.db, server.uuid);
    if (!Object.hasOwn(metadata, req.params.key)) throw notFound('Metadata item was not found');
    return { meta: { [req.params.key]: metadata[req.params.key] } };
  });

  app.put<KeyParams>('/v2.1/servers/:server_id/metadata/:key', async (req) => {
    const body = checkObject(bodyOf(req), null, ['meta'], ['meta']);
    const meta = checkMetadataShape(body.meta, 'meta');
    const count = Object.keys(meta).length;
    if (count < 1) throw invalidField('meta', meta, '{} does not have enough properties');
    if (count > 1) throw invalidField('meta', meta, `${pyRepr(meta, true)} has too many properties`);
    const server = await load(req, 'update');
    if (!Object.hasOwn(meta, req.params.key)) throw badRequest('Request body and URI mismatch');
    checkMetadataEditable(server, isAdmin(compute, contextOf(req)), 'update metadata');
    const limit = await metadataLimit(compute, req, server);
    await setMetadata(compute.db, server.uuid, meta, { replace: false, limit });
    return { meta };
  });

  app.delete<KeyParams>('/v2.1/servers/:server_id/metadata/:key', async (req, reply) => {
    const server = await load(req, 'delete');
    const metadata = await metadataOf(compute.db, server.uuid);
    if (!Object.hasOwn(metadata, req.params.key)) throw notFound('Metadata item was not found');
    checkMetadataEditable(server, isAdmin(compute, contextOf(req)), 'delete metadata');
    await deleteMetadataItem(compute.db, server.uuid, req.params.key);
    return reply.code(204).send();
  });
}
