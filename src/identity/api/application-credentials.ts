import { randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { BadRequest, Conflict, Forbidden, NotFound } from '../../core/errors.js';
import { bool, isoNow, isoTime, newId, parseTime } from '../common.js';
import { GLOBAL_ROLE, type ApplicationCredentialRow, type RoleRow } from '../db/schema.js';
import { authorize, collectionLinks, selfLink, type Identity } from '../identity.js';
import { effectiveRoles, expandImplied, impliedRoleMap } from '../roles.js';

/** What a caller may send in `POST .../application_credentials`, once checked. */
interface CreateInput {
  name: string;
  description: string | null;
  secret: string | null;
  expiresAt: string | null;
  unrestricted: boolean;
  roles: { id?: string; name?: string }[];
}

type Params = { user_id: string };
type MemberParams = Params & { application_credential_id: string };

const ID_STRING = /^[a-zA-Z0-9-]+$/;
const CREATE_KEYS = ['id', 'name', 'description', 'secret', 'expires_at', 'project_id', 'roles', 'access_rules', 'unrestricted', 'system'];

/**
 * Refuses the request when the caller's token was issued from a restricted
 * application credential (Keystone's `_check_unrestricted_application_credential`),
 * or in exchange for an EC2/S3 signature (`/v3/s3tokens`, `/v3/ec2tokens`):
 * such a token may not make or remove credentials of any kind.
 */
export function forbidRestrictedApplicationCredential(req: FastifyRequest, what: string): void {
  const cred = req.ctx.token.application_credential;
  const restricted = cred ? cred.restricted : req.ctx.methods.includes('application_credential');
  if (restricted) throw new Forbidden(`Using method 'application_credential' is not allowed for managing ${what}.`);
  // As Keystone: a token an S3/EC2 signature was exchanged for cannot mint more credentials.
  if (req.ctx.methods.includes('ec2credential')) throw new Forbidden(`Using method 'ec2credential' is not allowed for managing ${what}.`);
}

/** True when a database error is a unique-constraint violation (SQLite, PostgreSQL, MySQL). */
export function isUniqueViolation(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  return code === '23505' || code === 'ER_DUP_ENTRY' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || /UNIQUE constraint failed|duplicate key|Duplicate entry/i.test(err.message);
}

/**
 * Application credentials (`/v3/users/{user_id}/application_credentials`):
 * a user delegates their roles on the project of their token to a secret
 * an application can authenticate with. The secret is hashed with argon2id
 * and returned once, in the create response. Access rules are not supported:
 * `/v3/users/{user_id}/access_rules` is always empty.
 *
 * Deleting an application credential invalidates every token made from it:
 * token validation (tokens/provider.ts) rebuilds the body from the current
 * state and rejects a token whose application credential no longer exists.
 */
export function registerApplicationCredentials(app: FastifyInstance, identity: Identity): void {
  app.post<{ Params: Params }>('/v3/users/:user_id/application_credentials', async (req, reply) => {
    const created = await createApplicationCredential(identity, req);
    reply.code(201);
    return { application_credential: created };
  });

  app.get<{ Params: Params; Querystring: { name?: string } }>('/v3/users/:user_id/application_credentials', async (req) => {
    const userId = req.params.user_id;
    authorize(identity, req, 'identity:list_application_credentials', { user_id: userId });
    let q = identity.db.selectFrom('application_credential').selectAll().where('user_id', '=', userId);
    if (typeof req.query.name === 'string') q = q.where('name', '=', req.query.name);
    const rows = await q.orderBy('created_at').orderBy('id').execute();
    const roles = await rolesOf(identity, rows.map((r) => r.id));
    return {
      application_credentials: rows.map((r) => view(identity, r, roles.get(r.id) ?? [])),
      links: collectionLinks(identity, req),
    };
  });

  app.get<{ Params: MemberParams }>('/v3/users/:user_id/application_credentials/:application_credential_id', async (req) => {
    const row = await findOwned(identity, req, 'identity:get_application_credential');
    const roles = await rolesOf(identity, [row.id]);
    return { application_credential: view(identity, row, roles.get(row.id) ?? []) };
  });

  app.delete<{ Params: MemberParams }>('/v3/users/:user_id/application_credentials/:application_credential_id', async (req, reply) => {
    const row = await findOwned(identity, req, 'identity:delete_application_credential');
    forbidRestrictedApplicationCredential(req, 'additional application credentials');
    await identity.db.transaction().execute(async (trx) => {
      await trx.deleteFrom('application_credential_role').where('application_credential_id', '=', row.id).execute();
      await trx.deleteFrom('application_credential').where('id', '=', row.id).execute();
    });
    identity.changed();
    identity.notify('application_credential', 'deleted', row.id);
    return reply.code(204).send();
  });

  registerAccessRules(app, identity);
}

/** Creates a credential for the caller on the project of their token; the result carries the secret. */
async function createApplicationCredential(identity: Identity, req: FastifyRequest<{ Params: Params }>): Promise<Record<string, unknown>> {
  const userId = req.params.user_id;
  authorize(identity, req, 'identity:create_application_credential', { user_id: userId });
  forbidRestrictedApplicationCredential(req, 'additional application credentials');
  if (req.ctx.userId !== userId) throw new Forbidden('Cannot create an application credential for another user.');
  const projectId = req.ctx.projectId;
  if (!projectId) throw new Forbidden('An application credential is created for the project of the token: a project-scoped token is required.');
  const input = parseCreate(req.body);
  const roles = await chooseRoles(identity, req, projectId, input.roles);
  const secret = input.secret ?? randomBytes(64).toString('base64url');
  const row: ApplicationCredentialRow = {
    id: newId(),
    name: input.name,
    secret_hash: await identity.hasher.hash(secret),
    description: input.description,
    user_id: userId,
    project_id: projectId,
    system: null,
    expires_at: input.expiresAt,
    unrestricted: input.unrestricted ? 1 : 0,
    created_at: isoNow(),
  };
  await insertCredential(identity, row, roles);
  identity.changed();
  identity.notify('application_credential', 'created', row.id);
  return { ...view(identity, row, roles), secret };
}

/**
 * `/v3/users/{user_id}/access_rules`: access rules are not supported, so a
 * user has none. Keystone's own `identity:*_access_rule` rules are not in
 * our defaults; the application-credential rules stand in for them.
 */
function registerAccessRules(app: FastifyInstance, identity: Identity): void {
  app.get<{ Params: Params }>('/v3/users/:user_id/access_rules', async (req) => {
    authorize(identity, req, 'identity:list_application_credentials', { user_id: req.params.user_id });
    return { access_rules: [], links: collectionLinks(identity, req) };
  });
  app.get<{ Params: Params & { access_rule_id: string } }>('/v3/users/:user_id/access_rules/:access_rule_id', async (req) => {
    authorize(identity, req, 'identity:get_application_credential', { user_id: req.params.user_id });
    throw new NotFound(`Could not find Access Rule: ${req.params.access_rule_id}.`);
  });
  app.delete<{ Params: Params & { access_rule_id: string } }>('/v3/users/:user_id/access_rules/:access_rule_id', async (req) => {
    authorize(identity, req, 'identity:delete_application_credential', { user_id: req.params.user_id });
    throw new NotFound(`Could not find Access Rule: ${req.params.access_rule_id}.`);
  });
}

/**
 * Loads the credential of a member URL and checks the rule. As in Keystone,
 * the rule's `user_id` is the credential's owner, not the URL's, so naming
 * yourself in the URL does not open another user's credential.
 */
async function findOwned(identity: Identity, req: FastifyRequest<{ Params: MemberParams }>, rule: string): Promise<ApplicationCredentialRow> {
  const { user_id: userId, application_credential_id: id } = req.params;
  const row = await identity.db.selectFrom('application_credential').selectAll().where('id', '=', id).executeTakeFirst();
  authorize(identity, req, rule, { user_id: row?.user_id ?? userId });
  if (!row || row.user_id !== userId) throw new NotFound(`Could not find Application Credential: ${id}.`);
  return row;
}

async function insertCredential(identity: Identity, row: ApplicationCredentialRow, roles: RoleRow[]): Promise<void> {
  const duplicate = () => new Conflict(`Conflict occurred attempting to store application_credential - Duplicate entry found with name ${row.name}.`);
  const existing = await identity.db.selectFrom('application_credential').select('id').where('user_id', '=', row.user_id).where('name', '=', row.name).executeTakeFirst();
  if (existing) throw duplicate();
  try {
    await identity.db.transaction().execute(async (trx) => {
      await trx.insertInto('application_credential').values(row).execute();
      if (roles.length > 0) {
        await trx
          .insertInto('application_credential_role')
          .values(roles.map((r) => ({ application_credential_id: row.id, role_id: r.id })))
          .execute();
      }
    });
  } catch (err) {
    if (isUniqueViolation(err)) throw duplicate();
    throw err;
  }
}

/**
 * The roles the credential gets. None asked: every role of the caller's
 * token. Asked (by id or by name): each must be in the caller's token, and
 * the roles they imply come along, as in Keystone. Either way the user must
 * still hold each role on the project.
 */
async function chooseRoles(identity: Identity, req: FastifyRequest, projectId: string, requested: CreateInput['roles']): Promise<RoleRow[]> {
  const tokenRoles = new Set(req.ctx.roleIds);
  let ids: string[];
  if (requested.length === 0) {
    ids = [...tokenRoles];
  } else {
    const asked: string[] = [];
    for (const ref of requested) asked.push(ref.id ?? (await roleIdByName(identity, ref.name ?? '')));
    for (const id of asked) {
      if (!tokenRoles.has(id)) throw new BadRequest('Invalid application credential: Cannot create an application credential with unassigned role');
    }
    const implied = expandImplied(asked, await impliedRoleMap(identity.db));
    ids = [...implied].filter((id) => asked.includes(id) || tokenRoles.has(id));
  }
  const current = new Set((await effectiveRoles(identity.db, req.ctx.userId, { type: 'project', id: projectId })).map((r) => r.id));
  for (const id of ids) {
    if (!current.has(id)) {
      throw new BadRequest(`Invalid application credential: Could not find role assignment with role: ${id}, user or group: ${req.ctx.userId}, project, domain, or system: ${projectId}.`);
    }
  }
  if (ids.length === 0) throw new BadRequest('Invalid application credential: the token carries no roles to delegate.');
  const rows = await identity.db.selectFrom('role').selectAll().where('id', 'in', ids).execute();
  return rows.sort((a, b) => a.name.localeCompare(b.name));
}

async function roleIdByName(identity: Identity, name: string): Promise<string> {
  const role = await identity.db.selectFrom('role').select('id').where('name', '=', name).where('domain_id', '=', GLOBAL_ROLE).executeTakeFirst();
  if (!role) throw new NotFound(`Could not find role: ${name}.`);
  return role.id;
}

/** The roles of each credential, by credential id. */
async function rolesOf(identity: Identity, credentialIds: string[]): Promise<Map<string, RoleRow[]>> {
  const out = new Map<string, RoleRow[]>();
  if (credentialIds.length === 0) return out;
  const links = await identity.db.selectFrom('application_credential_role').selectAll().where('application_credential_id', 'in', credentialIds).execute();
  if (links.length === 0) return out;
  const roles = await identity.db.selectFrom('role').selectAll().where('id', 'in', [...new Set(links.map((l) => l.role_id))]).execute();
  const byId = new Map(roles.map((r) => [r.id, r]));
  for (const link of links) {
    const role = byId.get(link.role_id);
    if (role) out.set(link.application_credential_id, [...(out.get(link.application_credential_id) ?? []), role]);
  }
  for (const list of out.values()) list.sort((a, b) => a.name.localeCompare(b.name));
  return out;
}

/** How Keystone writes an application credential (never its secret hash). */
function view(identity: Identity, row: ApplicationCredentialRow, roles: RoleRow[]): Record<string, unknown> {
  return {
    id: row.id,
    name: row.name,
    description: row.description,
    expires_at: row.expires_at ? row.expires_at.replace(/Z$/, '') : null,
    project_id: row.project_id,
    roles: roles.map((r) => ({ id: r.id, name: r.name, domain_id: r.domain_id === GLOBAL_ROLE ? null : r.domain_id })),
    unrestricted: bool(row.unrestricted),
    access_rules: [],
    links: selfLink(identity, `users/${row.user_id}/application_credentials/${row.id}`),
  };
}

/** Checks the create body as Keystone's schema does; 400 naming the field. */
function parseCreate(body: unknown): CreateInput {
  const invalid = (field: string, why: string): BadRequest => new BadRequest(`Invalid input for field '${field}': ${why}`);
  if (!isObject(body) || !isObject(body.application_credential)) throw invalid('application_credential', "'application_credential' is a required property and must be an object");
  const ac = body.application_credential;
  for (const key of Object.keys(ac)) {
    if (!CREATE_KEYS.includes(key)) throw invalid(key, `Additional properties are not allowed ('${key}' was unexpected)`);
  }
  const name = ac.name;
  if (typeof name !== 'string' || name.length < 1 || name.length > 255 || !/\S/.test(name)) throw invalid('name', 'a name of 1 to 255 characters, not only spaces, is required');
  const optionalString = (key: string): string | null => {
    const v = ac[key];
    if (v === undefined || v === null) return null;
    if (typeof v !== 'string') throw invalid(key, `${JSON.stringify(v)} is not of type 'string', 'null'`);
    return v;
  };
  for (const key of ['id', 'project_id']) if (ac[key] !== undefined && typeof ac[key] !== 'string') throw invalid(key, `${JSON.stringify(ac[key])} is not of type 'string'`);
  if (optionalString('system') !== null) throw invalid('system', 'system application credentials are not supported; the credential is for the project of the token');
  const unrestricted = ac.unrestricted;
  if (unrestricted !== undefined && unrestricted !== null && typeof unrestricted !== 'boolean') throw invalid('unrestricted', `${JSON.stringify(unrestricted)} is not of type 'boolean', 'null'`);
  if (ac.access_rules !== undefined) {
    if (!Array.isArray(ac.access_rules)) throw invalid('access_rules', `${JSON.stringify(ac.access_rules)} is not of type 'array'`);
    if (ac.access_rules.length > 0) throw new BadRequest('Access rules are not supported by this cloud: create the application credential without access_rules.');
  }
  const secret = optionalString('secret');
  return {
    name,
    description: optionalString('description'),
    secret: secret === '' ? null : secret,
    expiresAt: parseExpiry(optionalString('expires_at')),
    unrestricted: unrestricted === true,
    roles: parseRoleRefs(ac.roles, invalid),
  };
}

function parseRoleRefs(value: unknown, invalid: (field: string, why: string) => BadRequest): CreateInput['roles'] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw invalid('roles', `${JSON.stringify(value)} is not of type 'array'`);
  return value.map((ref: unknown, i) => {
    const field = `roles.${i}`;
    if (!isObject(ref) || Object.keys(ref).length !== 1) throw invalid(field, 'each role is an object with exactly one of id or name');
    if (ref.id !== undefined) {
      if (typeof ref.id !== 'string' || ref.id.length > 64 || !ID_STRING.test(ref.id)) throw invalid(`${field}.id`, `${JSON.stringify(ref.id)} is not a valid id`);
      return { id: ref.id };
    }
    if (typeof ref.name !== 'string' || ref.name.length < 1 || ref.name.length > 255 || !/\S/.test(ref.name)) throw invalid(field, 'each role is an object with exactly one of id or name');
    return { name: ref.name };
  });
}

/**
 * Parses `expires_at` (ISO 8601; no zone means UTC) into the stored form,
 * UTC with microseconds (`2026-01-02T03:04:05.123456Z`), keeping the digits
 * a caller sent beyond milliseconds so the response echoes them (Keystone
 * answers `2026-01-02T03:04:05.123456`). 400 when it is not in the future.
 */
function parseExpiry(value: string | null): string | null {
  if (value === null) return null;
  const ms = parseTime(value, 'expires_at');
  if (ms <= Date.now()) throw new BadRequest("The 'expires_at' must not be before now. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.");
  const fraction = /T\d{2}:\d{2}:\d{2}[.,](\d+)/.exec(value)?.[1] ?? '';
  const micros = fraction.padEnd(6, '0').slice(3, 6);
  return isoTime(ms).replace(/\d{3}Z$/, `${micros}Z`);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
