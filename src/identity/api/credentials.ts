import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { BadRequest, Conflict, Forbidden, NotFound } from '../../core/errors.js';
import { newId, parseJson, splitExtra } from '../common.js';
import type { CredentialRow } from '../db/schema.js';
import { allowed, authorize, collectionLinks, selfLink, type Identity } from '../identity.js';
import { forbidRestrictedApplicationCredential, isUniqueViolation } from './application-credentials.js';
import { getProject, getUser } from './lookup.js';

const KNOWN = ['id', 'user_id', 'project_id', 'type', 'blob', 'links'];
const EC2 = 'ec2';
/** Blob keys that tie an EC2 credential to a delegation; an update may not change them. */
const SCOPE_KEYS = ['trust_id', 'app_cred_id', 'access_token_id', 'access_id'];

type Input = Record<string, unknown>;

const credentialProperties = {
  id: { type: 'string' },
  user_id: { type: 'string' },
  type: { type: 'string' },
  blob: { type: 'string' },
} as const;

const createSchema = {
  type: 'object',
  required: ['credential'],
  properties: { credential: { type: 'object', required: ['blob', 'type', 'user_id'], properties: credentialProperties } },
} as const;

const updateSchema = {
  type: 'object',
  required: ['credential'],
  properties: { credential: { type: 'object', minProperties: 1, properties: credentialProperties } },
} as const;

/** The key of an EC2 credential: its id is the SHA-256 of its access key, in hex. */
export function ec2CredentialId(access: string): string {
  return createHash('sha256').update(access, 'utf8').digest('hex');
}

/**
 * Credentials (`/v3/credentials`) and the EC2 view of them
 * (`/v3/users/{user_id}/credentials/OS-EC2`). An EC2 credential is a
 * credential of type `ec2` whose blob is `{"access", "secret", ...}` and
 * whose id is the SHA-256 of the access key, so it is found by access key.
 *
 * Unlike Keystone, which encrypts blobs with its credential keys, the blob
 * is kept in identity's database as it was given (`key_hash` is empty):
 * the database must be protected as the secrets in it deserve.
 */
export function registerCredentials(app: FastifyInstance, identity: Identity): void {
  app.post<{ Body: { credential: Input } }>('/v3/credentials', { schema: { body: createSchema } }, async (req, reply) => {
    const row = await createCredential(identity, req, req.body.credential);
    reply.code(201);
    return { credential: credentialView(identity, row) };
  });

  app.get<{ Querystring: { user_id?: string; type?: string } }>('/v3/credentials', async (req) => {
    authorize(identity, req, 'identity:list_credentials', req.ctx.system ? {} : { target: { credential: { user_id: req.ctx.userId } } });
    let q = identity.db.selectFrom('credential').selectAll();
    if (typeof req.query.user_id === 'string') q = q.where('user_id', '=', req.query.user_id);
    if (typeof req.query.type === 'string') q = q.where('type', '=', req.query.type);
    const rows = await q.orderBy('id').execute();
    // As Keystone: the list holds only what the caller may read one by one.
    const visible = rows.filter((r) => allowed(identity, req.ctx, 'identity:get_credential', { target: { credential: { user_id: r.user_id } } }) && inDelegatedScope(req, r.project_id));
    return { credentials: visible.map((r) => credentialView(identity, r)), links: collectionLinks(identity, req) };
  });

  app.get<{ Params: { credential_id: string } }>('/v3/credentials/:credential_id', async (req) => {
    const row = await findAuthorized(identity, req, 'identity:get_credential');
    return { credential: credentialView(identity, row) };
  });

  app.patch<{ Params: { credential_id: string }; Body: { credential: Input } }>('/v3/credentials/:credential_id', { schema: { body: updateSchema } }, async (req) => {
    const current = await findAuthorized(identity, req, 'identity:update_credential');
    const next = updatedRow(current, req.body.credential);
    // The owner may change: the caller must be allowed to update the result too.
    authorize(identity, req, 'identity:update_credential', { target: { credential: { user_id: next.user_id } } });
    checkDelegatedScope(req, next.project_id);
    await identity.db
      .updateTable('credential')
      .set({ user_id: next.user_id, project_id: next.project_id, type: next.type, blob: next.blob, extra: next.extra })
      .where('id', '=', current.id)
      .execute();
    identity.changed();
    identity.notify('credential', 'updated', current.id);
    return { credential: credentialView(identity, next) };
  });

  app.delete<{ Params: { credential_id: string } }>('/v3/credentials/:credential_id', async (req, reply) => {
    const row = await findAuthorized(identity, req, 'identity:delete_credential');
    await identity.db.deleteFrom('credential').where('id', '=', row.id).execute();
    identity.changed();
    identity.notify('credential', 'deleted', row.id);
    return reply.code(204).send();
  });

  registerEc2Credentials(app, identity);
}

/** Creates a credential; an EC2 one is keyed by its access key and must name a project. */
async function createCredential(identity: Identity, req: FastifyRequest, input: Input): Promise<CredentialRow> {
  authorize(identity, req, 'identity:create_credential', { target: { credential: { user_id: input.user_id } } });
  const type = String(input.type);
  const projectId = optionalProjectId(input.project_id);
  let blob = String(input.blob);
  let id = newId();
  if (isEc2(type)) {
    forbidRestrictedApplicationCredential(req, 'additional credentials');
    if (!projectId) throw new BadRequest("Invalid input for field 'credential': 'project_id' is a required property of an ec2 credential.");
    const parsed = ec2Blob(blob);
    if (req.ctx.applicationCredentialId) blob = JSON.stringify({ ...parsed, app_cred_id: req.ctx.applicationCredentialId });
    id = ec2CredentialId(String(parsed.access));
  }
  checkDelegatedScope(req, projectId);
  const row: CredentialRow = { id, user_id: String(input.user_id), project_id: projectId, type, blob, key_hash: '', extra: JSON.stringify(splitExtra(input, KNOWN)) };
  await insertCredential(identity, row);
  return row;
}

/** `/v3/users/{user_id}/credentials/OS-EC2`: what `openstack ec2 credentials ...` uses. */
function registerEc2Credentials(app: FastifyInstance, identity: Identity): void {
  const base = '/v3/users/:user_id/credentials/OS-EC2';

  app.post<{ Params: { user_id: string } }>(base, async (req, reply) => {
    const userId = req.params.user_id;
    authorize(identity, req, 'identity:ec2_create_credential', { user_id: userId, target: { credential: { user_id: userId } } });
    forbidRestrictedApplicationCredential(req, 'additional credentials');
    await getUser(identity, userId);
    const body: unknown = req.body;
    const tenantId = typeof body === 'object' && body !== null ? (body as Input).tenant_id : undefined;
    if (typeof tenantId !== 'string' || tenantId === '') throw new BadRequest("Invalid input for field 'tenant_id': the project of the EC2 credential is required.");
    await getProject(identity, tenantId);
    checkDelegatedScope(req, tenantId);
    const access = newId();
    const blob = JSON.stringify({ access, secret: newId(), trust_id: null });
    const row: CredentialRow = { id: ec2CredentialId(access), user_id: userId, project_id: tenantId, type: EC2, blob, key_hash: '', extra: '{}' };
    await insertCredential(identity, row);
    reply.code(201);
    return { credential: ec2View(identity, row) };
  });

  app.get<{ Params: { user_id: string } }>(base, async (req) => {
    const userId = req.params.user_id;
    authorize(identity, req, 'identity:ec2_list_credentials', { user_id: userId });
    await getUser(identity, userId);
    const rows = await identity.db.selectFrom('credential').selectAll().where('user_id', '=', userId).where('type', '=', EC2).orderBy('id').execute();
    const visible = rows.filter((r) => inDelegatedScope(req, r.project_id));
    return { credentials: visible.map((r) => ec2View(identity, r)), links: collectionLinks(identity, req) };
  });

  app.get<{ Params: { user_id: string; access: string } }>(`${base}/:access`, async (req) => {
    const row = await findEc2(identity, req, 'identity:ec2_get_credential');
    return { credential: ec2View(identity, row) };
  });

  app.delete<{ Params: { user_id: string; access: string } }>(`${base}/:access`, async (req, reply) => {
    const row = await findEc2(identity, req, 'identity:ec2_delete_credential');
    await identity.db.deleteFrom('credential').where('id', '=', row.id).execute();
    identity.changed();
    identity.notify('credential', 'deleted', row.id);
    return reply.code(204).send();
  });
}

/**
 * Loads the credential of `:credential_id` and checks the rule against its
 * owner (an unknown id is checked against no owner, so only those who may
 * see any credential learn that it does not exist), then 404.
 */
async function findAuthorized(identity: Identity, req: FastifyRequest<{ Params: { credential_id: string } }>, rule: string): Promise<CredentialRow> {
  const id = req.params.credential_id;
  const row = await identity.db.selectFrom('credential').selectAll().where('id', '=', id).executeTakeFirst();
  authorize(identity, req, rule, { target: { credential: row ? { user_id: row.user_id } : {} } });
  if (!row) throw new NotFound(`Could not find credential: ${id}.`);
  checkDelegatedScope(req, row.project_id);
  return row;
}

/** Loads the EC2 credential of `:access` that belongs to `:user_id`; 404 otherwise. */
async function findEc2(identity: Identity, req: FastifyRequest<{ Params: { user_id: string; access: string } }>, rule: string): Promise<CredentialRow> {
  const { user_id: userId, access } = req.params;
  const row = await identity.db.selectFrom('credential').selectAll().where('id', '=', ec2CredentialId(access)).executeTakeFirst();
  const notFound = new NotFound(`Could not find credential: ${ec2CredentialId(access)}.`);
  if (!row || row.type !== EC2) throw notFound;
  authorize(identity, req, rule, { user_id: userId, target: { credential: { user_id: row.user_id } } });
  await getUser(identity, userId);
  if (row.user_id !== userId) throw notFound;
  checkDelegatedScope(req, row.project_id);
  return row;
}

/** The row a PATCH makes; 400 for what Keystone refuses. */
function updatedRow(current: CredentialRow, input: Input): CredentialRow {
  if (input.id !== undefined && input.id !== current.id) throw new BadRequest('Cannot change the ID of a credential.');
  const next: CredentialRow = {
    ...current,
    user_id: typeof input.user_id === 'string' ? input.user_id : current.user_id,
    project_id: input.project_id === undefined ? current.project_id : optionalProjectId(input.project_id),
    type: typeof input.type === 'string' ? input.type : current.type,
    blob: typeof input.blob === 'string' ? input.blob : current.blob,
    extra: JSON.stringify({ ...parseJson(current.extra), ...splitExtra(input, KNOWN) }),
  };
  if (isEc2(next.type)) {
    if (!next.project_id) throw new BadRequest('Expecting to find project_id in credential. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.');
    if (next.blob !== current.blob || !isEc2(current.type)) {
      const fresh = ec2Blob(next.blob);
      const old = isEc2(current.type) ? parseJson(current.blob) : {};
      for (const key of SCOPE_KEYS) {
        if ((old[key] ?? null) !== (fresh[key] ?? null)) throw new BadRequest(`${key} can not be updated for credential`);
      }
    }
  }
  return next;
}

async function insertCredential(identity: Identity, row: CredentialRow): Promise<void> {
  const duplicate = () => new Conflict(`Conflict occurred attempting to store credential - Duplicate ID, ${row.id}.`);
  const existing = await identity.db.selectFrom('credential').select('id').where('id', '=', row.id).executeTakeFirst();
  if (existing) throw duplicate();
  try {
    await identity.db.insertInto('credential').values(row).execute();
  } catch (err) {
    if (isUniqueViolation(err)) throw duplicate();
    throw err;
  }
  identity.changed();
  identity.notify('credential', 'created', row.id);
}

/**
 * A token made from an application credential is bound to its project: it
 * reaches only credentials of that project (Keystone's
 * `_check_credential_project_scope`, without trusts or OAuth1 here).
 */
function inDelegatedScope(req: FastifyRequest, projectId: string | null): boolean {
  return !req.ctx.applicationCredentialId || (projectId !== null && projectId === req.ctx.projectId);
}

function checkDelegatedScope(req: FastifyRequest, projectId: string | null): void {
  if (!inDelegatedScope(req, projectId)) throw new Forbidden('Credential project does not match the project scope of the delegated token.');
}

function optionalProjectId(value: unknown): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string') throw new BadRequest(`Invalid input for field 'credential.project_id': ${JSON.stringify(value)} is not of type 'string', 'null'`);
  return value;
}

function isEc2(type: string): boolean {
  return type.toLowerCase() === EC2;
}

/** An EC2 blob: a JSON object with a string `access`; 400 otherwise. */
function ec2Blob(blob: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(blob);
  } catch {
    throw new BadRequest('Invalid blob in credential');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed) || Object.keys(parsed).length === 0) {
    throw new BadRequest('Expecting to find blob in credential. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.');
  }
  const access = (parsed as Input).access;
  if (typeof access !== 'string' || access === '') {
    throw new BadRequest('Expecting to find access in credential. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.');
  }
  return parsed as Input;
}

/** How Keystone writes a credential: the blob is a string, as stored. */
function credentialView(identity: Identity, row: CredentialRow): Record<string, unknown> {
  return {
    ...parseJson(row.extra),
    id: row.id,
    user_id: row.user_id,
    project_id: row.project_id,
    type: row.type,
    blob: row.blob,
    links: selfLink(identity, `credentials/${row.id}`),
  };
}

/** The EC2 form: the blob's keys at the top, the project as `tenant_id`. */
function ec2View(identity: Identity, row: CredentialRow): Record<string, unknown> {
  const blob = parseJson(row.blob);
  const access = typeof blob.access === 'string' ? blob.access : '';
  return {
    user_id: row.user_id,
    tenant_id: row.project_id,
    access,
    secret: blob.secret ?? null,
    trust_id: blob.trust_id ?? null,
    links: selfLink(identity, `users/${row.user_id}/credentials/OS-EC2/${access}`),
  };
}
