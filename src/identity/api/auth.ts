import type { FastifyInstance, FastifyRequest } from 'fastify';
import { contextFromToken } from '../../core/auth/context.js';
import { BadRequest, Forbidden, NotFound, Unauthorized } from '../../core/errors.js';
import { accessibleDomains, accessibleProjects } from '../access.js';
import { bool } from '../common.js';
import type { UserRow } from '../db/schema.js';
import { authorize, collectionLinks, type Identity } from '../identity.js';
import { revoke } from '../revocation.js';
import { effectiveRoles } from '../roles.js';
import type { TokenPayload } from '../tokens/payload.js';
import { InvalidToken, type IssueRequest } from '../tokens/provider.js';
import { domainView, projectView } from '../views.js';

const AUTH_REQUIRED = 'The request you have made requires authentication.';

const idOrName = {
  type: 'object',
  properties: { id: { type: 'string' }, name: { type: 'string' }, domain: { type: 'object', properties: { id: { type: 'string' }, name: { type: 'string' } } } },
} as const;

const authSchema = {
  type: 'object',
  required: ['auth'],
  properties: {
    auth: {
      type: 'object',
      required: ['identity'],
      properties: {
        identity: {
          type: 'object',
          required: ['methods'],
          properties: {
            methods: { type: 'array', items: { type: 'string' }, minItems: 1 },
            password: {
              type: 'object',
              required: ['user'],
              properties: { user: { ...idOrName, properties: { ...idOrName.properties, password: { type: 'string' } } } },
            },
            token: { type: 'object', required: ['id'], properties: { id: { type: 'string' } } },
            application_credential: {
              type: 'object',
              required: ['secret'],
              properties: { id: { type: 'string' }, name: { type: 'string' }, secret: { type: 'string' }, user: idOrName },
            },
          },
        },
        scope: {
          anyOf: [
            { type: 'string', enum: ['unscoped'] },
            {
              type: 'object',
              properties: {
                project: idOrName,
                domain: { type: 'object', properties: { id: { type: 'string' }, name: { type: 'string' } } },
                system: { type: 'object', properties: { all: { type: 'boolean' } } },
                'OS-TRUST:trust': { type: 'object' },
              },
            },
          ],
        },
      },
    },
  },
} as const;

interface AuthBody {
  auth: {
    identity: {
      methods: string[];
      password?: { user: { id?: string; name?: string; domain?: { id?: string; name?: string }; password?: string } };
      token?: { id: string };
      application_credential?: { id?: string; name?: string; secret: string; user?: { id?: string; name?: string; domain?: { id?: string; name?: string } } };
    };
    scope?: 'unscoped' | { project?: { id?: string; name?: string; domain?: { id?: string; name?: string } }; domain?: { id?: string; name?: string }; system?: { all?: boolean }; 'OS-TRUST:trust'?: unknown };
  };
}

/**
 * The authentication API: the token-checking hook for every other route,
 * token issue by password, token and application credential, validation,
 * check, revocation, and what a token may scope to.
 */
export function registerAuth(app: FastifyInstance, identity: Identity): void {
  app.decorateRequest('ctx', null as unknown as never);
  app.addHook('onRequest', async (req) => {
    if (req.routeOptions.config.public) return;
    const token = req.headers['x-auth-token'];
    if (typeof token !== 'string' || token === '') throw new Unauthorized(AUTH_REQUIRED);
    try {
      const body = await identity.tokens.validate(token, { catalog: false });
      req.ctx = contextFromToken(req.requestId, token, body);
    } catch (err) {
      if (err instanceof InvalidToken) throw new Unauthorized(AUTH_REQUIRED);
      throw err;
    }
  });

  app.post<{ Body: AuthBody; Querystring: { nocatalog?: string } }>('/v3/auth/tokens', { config: { public: true }, schema: { body: authSchema } }, async (req, reply) => {
    const issue = await authenticate(identity, req.body);
    const { token, body } = await identity.tokens.issue(issue);
    if (req.query.nocatalog === undefined && issue.scope.type !== 'unscoped') {
      body.catalog = await identity.tokens.catalog(body.project?.id ?? null);
    }
    reply.code(201).header('X-Subject-Token', token);
    return { token: body };
  });

  const subject = async (req: FastifyRequest, allowExpired: boolean): Promise<{ token: string; payload: TokenPayload; body: Awaited<ReturnType<Identity['tokens']['validate']>> }> => {
    const token = req.headers['x-subject-token'];
    if (typeof token !== 'string' || token === '') throw new NotFound('Could not find token: the X-Subject-Token header is missing.');
    try {
      const opened = await identity.tokens.open(token, { allowExpired });
      return { token, ...opened };
    } catch (err) {
      if (err instanceof InvalidToken) throw new NotFound(`Could not find token: ${err.message}`);
      throw err;
    }
  };
  const allowExpired = (q: { allow_expired?: string }): boolean => q.allow_expired !== undefined && !['0', 'false', 'False'].includes(q.allow_expired);

  app.get<{ Querystring: { nocatalog?: string; allow_expired?: string } }>('/v3/auth/tokens', { exposeHeadRoute: false }, async (req, reply) => {
    const s = await subject(req, allowExpired(req.query));
    authorize(identity, req, 'identity:validate_token', { target: { token: { user_id: s.body.user.id } } });
    const body = { ...s.body };
    if (req.query.nocatalog === undefined && (body.project || body.domain || body.system)) body.catalog = await identity.tokens.catalog(body.project?.id ?? null);
    reply.header('X-Subject-Token', s.token);
    return { token: body };
  });

  app.head<{ Querystring: { allow_expired?: string } }>('/v3/auth/tokens', async (req, reply) => {
    const s = await subject(req, allowExpired(req.query));
    authorize(identity, req, 'identity:check_token', { target: { token: { user_id: s.body.user.id } } });
    reply.code(200).header('X-Subject-Token', s.token);
    return reply.send();
  });

  app.delete('/v3/auth/tokens', async (req, reply) => {
    const s = await subject(req, false);
    authorize(identity, req, 'identity:revoke_token', { target: { token: { user_id: s.body.user.id } } });
    await revoke(identity.db, { audit_id: s.payload.auditIds[0] ?? null }, s.body.expires_at);
    identity.changed();
    return reply.code(204).send();
  });

  app.get('/v3/auth/catalog', async (req) => {
    authorize(identity, req, 'identity:get_auth_catalog');
    if (!req.ctx.projectId && !req.ctx.domainId && !req.ctx.system) throw new Forbidden('A scoped token is required to read the catalog.');
    return { catalog: await identity.tokens.catalog(req.ctx.projectId), links: collectionLinks(identity, req) };
  });

  app.get('/v3/auth/projects', async (req) => {
    authorize(identity, req, 'identity:get_auth_projects');
    const projects = await accessibleProjects(identity.db, req.ctx.userId);
    return { projects: projects.map((p) => projectView(identity, p)), links: collectionLinks(identity, req) };
  });

  app.get('/v3/auth/domains', async (req) => {
    authorize(identity, req, 'identity:get_auth_domains');
    const domains = await accessibleDomains(identity.db, req.ctx.userId);
    return { domains: domains.map((d) => domainView(identity, d)), links: collectionLinks(identity, req) };
  });

  app.get('/v3/auth/system', async (req) => {
    authorize(identity, req, 'identity:get_auth_system');
    const roles = await effectiveRoles(identity.db, req.ctx.userId, { type: 'system' });
    return { system: roles.length > 0 ? [{ all: true }] : [], links: collectionLinks(identity, req) };
  });
}

/** Works out who is authenticating and for what scope; 401 on any failure. */
async function authenticate(identity: Identity, body: AuthBody): Promise<IssueRequest> {
  const { methods } = body.auth.identity;
  const known = ['password', 'token', 'application_credential'];
  for (const m of methods) {
    if (!known.includes(m)) throw new Unauthorized(`Attempted to authenticate with an unsupported method: ${m}.`);
    if (!(m in body.auth.identity)) throw new BadRequest(`Expecting to find ${m} in identity. The server could not comply with the request since it is either malformed or otherwise incorrect.`);
  }
  if (body.auth.scope && typeof body.auth.scope === 'object' && body.auth.scope['OS-TRUST:trust']) throw new Forbidden('Trusts are not supported by this cloud.');
  const scope = await resolveScope(identity, body.auth.scope);
  const uniqueMethods = [...new Set(methods)];
  if (uniqueMethods.includes('application_credential')) {
    const cred = body.auth.identity.application_credential;
    if (!cred) throw new BadRequest('Expecting to find application_credential in identity.');
    return authenticateApplicationCredential(identity, cred, scope);
  }
  if (uniqueMethods.includes('token')) {
    const tokenId = body.auth.identity.token?.id ?? '';
    let opened;
    try {
      opened = await identity.tokens.open(tokenId);
    } catch (err) {
      if (err instanceof InvalidToken) throw new Unauthorized(AUTH_REQUIRED);
      throw err;
    }
    if (opened.payload.applicationCredentialId) throw new Forbidden('A token made from an application credential cannot be re-scoped.');
    const user = await identity.db.selectFrom('user').selectAll().where('id', '=', opened.payload.userId).executeTakeFirst();
    if (!user) throw new Unauthorized(AUTH_REQUIRED);
    const effective = scope ?? (opened.payload.scope.type === 'unscoped' ? { type: 'unscoped' as const } : opened.payload.scope);
    const parentMethods = opened.payload.methods;
    return { user, methods: [...new Set([...parentMethods, 'token'])], scope: effective, parent: { expiresAt: opened.payload.expiresAt, auditIds: opened.payload.auditIds } };
  }
  const password = body.auth.identity.password;
  if (!password) throw new BadRequest('Expecting to find password in identity.');
  const user = await findUser(identity, password.user);
  if (typeof password.user.password !== 'string' || !(await identity.hasher.verify(user.password_hash, password.user.password))) {
    throw new Unauthorized(AUTH_REQUIRED);
  }
  // Whether the user may have this scope is decided once, when the token is built.
  return { user, methods: ['password'], scope: scope ?? (await defaultScope(identity, user)) };
}

async function findUser(identity: Identity, ref: { id?: string; name?: string; domain?: { id?: string; name?: string } }): Promise<UserRow> {
  let user: UserRow | undefined;
  if (ref.id) {
    user = await identity.db.selectFrom('user').selectAll().where('id', '=', ref.id).executeTakeFirst();
  } else if (ref.name) {
    if (!ref.domain || (!ref.domain.id && !ref.domain.name)) throw new BadRequest('Expecting to find domain in user. The server could not comply with the request since it is either malformed or otherwise incorrect.');
    const domain = await findDomain(identity, ref.domain);
    if (domain) user = await identity.db.selectFrom('user').selectAll().where('name', '=', ref.name).where('domain_id', '=', domain.id).executeTakeFirst();
  } else {
    throw new BadRequest('Expecting to find either id or name in user.');
  }
  if (!user) throw new Unauthorized(AUTH_REQUIRED);
  return user;
}

async function findDomain(identity: Identity, ref: { id?: string; name?: string }): Promise<{ id: string; enabled: number } | undefined> {
  let q = identity.db.selectFrom('project').select(['id', 'enabled']).where('is_domain', '=', 1);
  q = ref.id ? q.where('id', '=', ref.id) : q.where('name', '=', ref.name ?? '');
  return q.executeTakeFirst();
}

async function resolveScope(identity: Identity, scope: AuthBody['auth']['scope']): Promise<TokenPayload['scope'] | null> {
  if (scope === undefined) return null;
  if (scope === 'unscoped') return { type: 'unscoped' };
  const kinds = ['project', 'domain', 'system'].filter((k) => k in scope);
  if (kinds.length > 1) throw new BadRequest('Specify a domain, project or system, not more than one.');
  if (scope.project) {
    const p = scope.project;
    let q = identity.db.selectFrom('project').select(['id', 'enabled', 'domain_id']).where('is_domain', '=', 0);
    if (p.id) q = q.where('id', '=', p.id);
    else if (p.name) {
      if (!p.domain || (!p.domain.id && !p.domain.name)) throw new BadRequest('Expecting to find domain in project.');
      const domain = await findDomain(identity, p.domain);
      if (!domain) throw new Unauthorized(`Could not find domain: ${p.domain.id ?? p.domain.name}.`);
      q = q.where('name', '=', p.name).where('domain_id', '=', domain.id);
    } else throw new BadRequest('Expecting to find either id or name in project.');
    const project = await q.executeTakeFirst();
    if (!project) throw new Unauthorized(`Could not find project: ${p.id ?? p.name}.`);
    if (!bool(project.enabled)) throw new Unauthorized(`Project is disabled: ${project.id}.`);
    return { type: 'project', id: project.id };
  }
  if (scope.domain) {
    if (!scope.domain.id && !scope.domain.name) throw new BadRequest('Expecting to find either id or name in domain.');
    const domain = await findDomain(identity, scope.domain);
    if (!domain) throw new Unauthorized(`Could not find domain: ${scope.domain.id ?? scope.domain.name}.`);
    if (!bool(domain.enabled)) throw new Unauthorized(`Domain is disabled: ${domain.id}.`);
    return { type: 'domain', id: domain.id };
  }
  if (scope.system) {
    if (scope.system.all !== true) throw new BadRequest("Invalid input for field 'scope.system': only {\"all\": true} is supported.");
    return { type: 'system' };
  }
  return null;
}

/** No scope asked: the user's default project when the user has a role there, else unscoped. */
async function defaultScope(identity: Identity, user: UserRow): Promise<TokenPayload['scope']> {
  if (user.default_project_id) {
    const project = await identity.db.selectFrom('project').select(['id', 'enabled']).where('id', '=', user.default_project_id).where('is_domain', '=', 0).executeTakeFirst();
    if (project && bool(project.enabled)) {
      const roles = await effectiveRoles(identity.db, user.id, { type: 'project', id: project.id });
      if (roles.length > 0) return { type: 'project', id: project.id };
    }
  }
  return { type: 'unscoped' };
}

async function authenticateApplicationCredential(
  identity: Identity,
  ref: NonNullable<AuthBody['auth']['identity']['application_credential']>,
  scope: TokenPayload['scope'] | null,
): Promise<IssueRequest> {
  let q = identity.db.selectFrom('application_credential').selectAll();
  if (ref.id) q = q.where('id', '=', ref.id);
  else if (ref.name && ref.user) {
    const user = await findUser(identity, ref.user);
    q = q.where('name', '=', ref.name).where('user_id', '=', user.id);
  } else throw new BadRequest('Expecting to find either id, or name and user, in application_credential.');
  const cred = await q.executeTakeFirst();
  if (!cred || !(await identity.hasher.verify(cred.secret_hash, ref.secret))) throw new Unauthorized(AUTH_REQUIRED);
  if (cred.expires_at && Date.parse(cred.expires_at) <= Date.now()) throw new Unauthorized('The application credential has expired.');
  const user = await identity.db.selectFrom('user').selectAll().where('id', '=', cred.user_id).executeTakeFirst();
  if (!user || !bool(user.enabled)) throw new Unauthorized(AUTH_REQUIRED);
  const own: TokenPayload['scope'] = cred.project_id ? { type: 'project', id: cred.project_id } : { type: 'system' };
  if (scope && scope.type !== 'unscoped' && JSON.stringify(scope) !== JSON.stringify(own)) {
    throw new Unauthorized('An application credential token is scoped to the credential\'s own project; another scope was asked.');
  }
  return { user, methods: ['application_credential'], scope: own, applicationCredential: { id: cred.id, expiresAt: cred.expires_at ? Date.parse(cred.expires_at) : null } };
}

