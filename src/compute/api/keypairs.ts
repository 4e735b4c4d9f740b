import type { FastifyInstance, FastifyRequest } from 'fastify';
import { atLeast, authorize, contextOf, type ComputeService } from '../compute.js';
import type { KeyPairRow } from '../db/schema.js';
import {
  deleteKeypair,
  generateSshKeypair,
  generateX509Keypair,
  getKeypair,
  keypairId,
  listKeypairs,
  sshFingerprint,
  storeKeypair,
  x509Fingerprint,
  type KeypairType,
} from '../keypairs.js';
import { bodyObject, checkKeys, checkName, checkQueryKeys, collectionLinks, queryParam, invalidField, pagination, pyIsoTime, pyRepr } from './request-checks.js';

/**
 * `/os-keypairs`: a user's key pairs. `type` from 2.2 (and 201/204 instead
 * of 200/202), `user_id` (admins act for another user) from 2.10, paging
 * from 2.35, generation refused from 2.92 (`public_key` is required) when
 * names may also have `@` and `.`.
 */

function nameOf(value: unknown, req: FastifyRequest): string {
  const name = checkName(value, 'name');
  const pattern = atLeast(req, '2.92') ? /^[_\-@. a-zA-Z0-9]+$/ : /^[_\- a-zA-Z0-9]+$/;
  if (!pattern.test(name)) throw invalidField('name', name, `'${name}' does not match '${pattern.source}'`);
  return name.trim();
}

interface CreateRequest {
  name: string;
  type: KeypairType;
  publicKey: string | undefined;
  userId: string | undefined;
}

function parseCreate(req: FastifyRequest): CreateRequest {
  const body = bodyObject(req.body, 'keypair');
  const allowed = ['name', 'public_key', ...(atLeast(req, '2.2') ? ['type'] : []), ...(atLeast(req, '2.10') ? ['user_id'] : [])];
  checkKeys(body, 'keypair', allowed, atLeast(req, '2.92') ? ['name', 'public_key'] : ['name']);
  const name = nameOf(body.name, req);
  let type: KeypairType = 'ssh';
  if (body.type !== undefined) {
    if (body.type !== 'ssh' && body.type !== 'x509') throw invalidField('type', body.type, `${pyRepr(body.type)} is not one of ['ssh', 'x509']`);
    type = body.type;
  }
  if (body.public_key !== undefined && typeof body.public_key !== 'string') throw invalidField('public_key', body.public_key, `${pyRepr(body.public_key)} is not of type 'string'`);
  if (body.user_id !== undefined && typeof body.user_id !== 'string') throw invalidField('user_id', body.user_id, `${pyRepr(body.user_id)} is not of type 'string'`);
  return { name, type, publicKey: body.public_key, userId: body.user_id || undefined };
}

/** The user a request acts for: `?user_id=` from 2.10 (policy decides who may), else the caller. */
function targetUser(req: FastifyRequest): string {
  const asked = atLeast(req, '2.10') ? queryParam(req, 'user_id') : undefined;
  return asked || contextOf(req).userId;
}

function createView(req: FastifyRequest, row: KeyPairRow, privateKey: string | undefined): Record<string, unknown> {
  return {
    ...(privateKey === undefined ? {} : { private_key: privateKey }),
    ...(atLeast(req, '2.2') ? { type: row.type } : {}),
    name: row.name,
    public_key: row.public_key,
    fingerprint: row.fingerprint,
    user_id: row.user_id,
  };
}

function showView(req: FastifyRequest, row: KeyPairRow): Record<string, unknown> {
  return {
    name: row.name,
    public_key: row.public_key,
    fingerprint: row.fingerprint,
    user_id: row.user_id,
    created_at: pyIsoTime(row.created_at),
    deleted: false,
    deleted_at: null,
    id: keypairId(row),
    updated_at: null,
    ...(atLeast(req, '2.2') ? { type: row.type } : {}),
  };
}

function indexView(req: FastifyRequest, row: KeyPairRow): Record<string, unknown> {
  return { keypair: { name: row.name, public_key: row.public_key, fingerprint: row.fingerprint, ...(atLeast(req, '2.2') ? { type: row.type } : {}) } };
}

async function create(compute: ComputeService, req: FastifyRequest): Promise<{ status: number; body: unknown }> {
  const ctx = contextOf(req);
  const wanted = parseCreate(req);
  const userId = wanted.userId ?? ctx.userId;
  authorize(compute, ctx, 'os-keypairs:create', { user_id: userId });
  let privateKey: string | undefined;
  let publicKey: string;
  let fingerprint: string;
  if (wanted.publicKey !== undefined) {
    publicKey = wanted.publicKey;
    fingerprint = wanted.type === 'x509' ? x509Fingerprint(publicKey) : sshFingerprint(publicKey);
  } else {
    const pair = wanted.type === 'x509' ? await generateX509Keypair(userId) : generateSshKeypair();
    ({ privateKey, publicKey, fingerprint } = pair);
  }
  const row = await storeKeypair(compute.db, compute.config.compute, ctx.projectId ?? '', { user_id: userId, name: wanted.name, type: wanted.type, fingerprint, public_key: publicKey });
  return { status: atLeast(req, '2.2') ? 201 : 200, body: { keypair: createView(req, row, privateKey) } };
}

/** Registers `/os-keypairs` (list, create/import, show, delete). */
export function registerKeypairs(app: FastifyInstance, compute: ComputeService): void {
  app.get('/v2.1/os-keypairs', async (req) => {
    const paged = atLeast(req, '2.35');
    checkQueryKeys(req, ['user_id', 'limit', 'marker'], atLeast(req, '2.75'));
    const userId = targetUser(req);
    authorize(compute, contextOf(req), 'os-keypairs:index', { user_id: userId });
    const page = paged ? pagination(compute, req) : {};
    const rows = await listKeypairs(compute.db, userId, page);
    const out: Record<string, unknown> = { keypairs: rows.map((row) => indexView(req, row)) };
    if (paged) {
      const links = collectionLinks(compute, req, 'os-keypairs', rows.length, rows[rows.length - 1]?.name);
      if (links.length > 0) out.keypairs_links = links;
    }
    return out;
  });

  app.post('/v2.1/os-keypairs', async (req, reply) => {
    const { status, body } = await create(compute, req);
    return reply.code(status).send(body);
  });

  app.get<{ Params: { name: string } }>('/v2.1/os-keypairs/:name', async (req) => {
    checkQueryKeys(req, ['user_id'], atLeast(req, '2.75'));
    const userId = targetUser(req);
    authorize(compute, contextOf(req), 'os-keypairs:show', { user_id: userId });
    return { keypair: showView(req, await getKeypair(compute.db, userId, req.params.name)) };
  });

  app.delete<{ Params: { name: string } }>('/v2.1/os-keypairs/:name', async (req, reply) => {
    checkQueryKeys(req, ['user_id'], atLeast(req, '2.75'));
    const userId = targetUser(req);
    authorize(compute, contextOf(req), 'os-keypairs:delete', { user_id: userId });
    await deleteKeypair(compute.db, userId, req.params.name);
    return reply.code(atLeast(req, '2.2') ? 204 : 202).send();
  });
}
