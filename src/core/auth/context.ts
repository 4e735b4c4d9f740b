import type { PolicyCredentials } from '../policy/index.js';

/** An id and name pair as Keystone writes them in token bodies. */
export interface NamedRef {
  id: string;
  name: string;
}

/**
 * The `token` object of a Keystone v3 token body (`GET /v3/auth/tokens`), the
 * part that services read. Identity writes it; the token middleware reads it.
 */
export interface TokenBody {
  methods: string[];
  user: NamedRef & { domain: NamedRef; password_expires_at: string | null };
  audit_ids: string[];
  expires_at: string;
  issued_at: string;
  project?: NamedRef & { domain: NamedRef };
  domain?: NamedRef;
  system?: { all: boolean };
  roles?: NamedRef[];
  is_domain?: boolean;
  catalog?: CatalogEntry[];
  application_credential?: { id: string; name: string; restricted: boolean };
  [key: string]: unknown;
}

export interface CatalogEntry {
  id: string;
  type: string;
  name: string;
  endpoints: { id: string; interface: string; region: string | null; region_id: string | null; url: string }[];
}

/** Who is calling and with what authority: what every API handler gets. */
export interface RequestContext {
  requestId: string;
  authToken: string;
  userId: string;
  userName: string;
  userDomainId: string;
  userDomainName: string;
  /** Set for a project-scoped token. */
  projectId: string | null;
  projectName: string | null;
  projectDomainId: string | null;
  /** Set for a domain-scoped token. */
  domainId: string | null;
  /** `all` for a system-scoped token. */
  system: string | null;
  roles: string[];
  roleIds: string[];
  auditIds: string[];
  methods: string[];
  expiresAt: string;
  issuedAt: string;
  applicationCredentialId: string | null;
  /** Roles of a valid `X-Service-Token`, when one came with the request. */
  serviceRoles: string[];
  /** The whole token, for what the fields above leave out. */
  token: TokenBody;
}

/** Builds the context of a request from a validated token body. */
export function contextFromToken(requestId: string, authToken: string, token: TokenBody, serviceToken?: TokenBody): RequestContext {
  return {
    requestId,
    authToken,
    userId: token.user.id,
    userName: token.user.name,
    userDomainId: token.user.domain.id,
    userDomainName: token.user.domain.name,
    projectId: token.project?.id ?? null,
    projectName: token.project?.name ?? null,
    projectDomainId: token.project?.domain.id ?? null,
    domainId: token.domain?.id ?? null,
    system: token.system?.all ? 'all' : null,
    roles: (token.roles ?? []).map((r) => r.name),
    roleIds: (token.roles ?? []).map((r) => r.id),
    auditIds: token.audit_ids,
    methods: token.methods,
    expiresAt: token.expires_at,
    issuedAt: token.issued_at,
    applicationCredentialId: token.application_credential?.id ?? null,
    serviceRoles: (serviceToken?.roles ?? []).map((r) => r.name),
    token,
  };
}

/** The credentials the policy engine checks rules against (oslo.context's names). */
export function policyCredentials(ctx: RequestContext): PolicyCredentials {
  return {
    roles: ctx.roles,
    user_id: ctx.userId,
    user_domain_id: ctx.userDomainId,
    project_id: ctx.projectId,
    project_domain_id: ctx.projectDomainId,
    domain_id: ctx.domainId,
    system_scope: ctx.system,
    is_admin: false,
    service_roles: ctx.serviceRoles,
    token: ctx.token,
  };
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the authentication hook on every route that needs a token. */
    ctx: RequestContext;
  }
  interface FastifyContextConfig {
    /** The route needs no token (version documents, token issue). */
    public?: boolean;
  }
}
