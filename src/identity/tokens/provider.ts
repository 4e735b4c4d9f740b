import { createHash } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { CatalogEntry, NamedRef, TokenBody } from '../../core/auth/context.js';
import { Unauthorized } from '../../core/errors.js';
import { buildCatalog } from '../catalog.js';
import { bool, isoTime, isoTimeNoZone, newAuditId } from '../common.js';
import type { IdentitySchema, RoleRow, UserRow } from '../db/schema.js';
import { isRevoked } from '../revocation.js';
import { effectiveRoles, expandImplied, impliedRoleMap } from '../roles.js';
import { fernetDecrypt, fernetEncrypt } from './fernet.js';
import type { KeyRepository } from './keys.js';
import { packPayload, unpackPayload, type TokenPayload } from './payload.js';

/** Why a token is not valid; the API turns it into 401 or 404. */
export class InvalidToken extends Error {}

export interface IssueRequest {
  user: UserRow;
  methods: string[];
  scope: TokenPayload['scope'];
  /** When re-scoping or chaining: the expiry and audit id of the token it comes from. */
  parent?: { expiresAt: number; auditIds: string[] };
  applicationCredential?: { id: string; expiresAt: number | null };
}

interface CacheEntry {
  generation: number;
  keyVersion: number;
  payload: TokenPayload;
  body: TokenBody;
  catalog: CatalogEntry[];
  until: number;
}

/**
 * Issues and validates Fernet tokens. Nothing is stored per token: validation
 * decrypts the payload, checks expiry and revocation events, and rebuilds the
 * body from the current state (user, scope, roles), so a disabled user, a
 * deleted project or a removed role shows at once. Validated bodies are cached
 * until the identity data changes (`generation`), the token expires or
 * `cacheTtlMs` passes.
 */
export class TokenProvider {
  private readonly cache = new Map<string, CacheEntry>();
  private catalogCache = new Map<string, { generation: number; catalog: CatalogEntry[] }>();

  constructor(
    private readonly db: Kysely<IdentitySchema>,
    private readonly keys: KeyRepository,
    private readonly options: { expirationSeconds: number; cacheTtlMs: number; allowExpiredWindowSeconds: number; generation: () => number },
  ) {}

  /** Makes a token for a user already authenticated; fails 401 when the scope is not allowed. */
  async issue(req: IssueRequest): Promise<{ token: string; body: TokenBody }> {
    await this.keys.refresh();
    const now = Date.now();
    let expiresAt = req.parent?.expiresAt ?? now + this.options.expirationSeconds * 1000;
    if (req.applicationCredential?.expiresAt) expiresAt = Math.min(expiresAt, req.applicationCredential.expiresAt);
    const auditIds = [newAuditId(), ...(req.parent ? [req.parent.auditIds[req.parent.auditIds.length - 1] ?? ''] : [])].filter(Boolean);
    const payload: TokenPayload = {
      userId: req.user.id,
      methods: req.methods,
      scope: req.scope,
      issuedAt: now,
      expiresAt,
      auditIds,
      applicationCredentialId: req.applicationCredential?.id ?? null,
    };
    const body = await this.buildBody(payload, true);
    if (typeof body === 'string') throw new Unauthorized(body);
    const token = fernetEncrypt(this.keys.primary(), packPayload(payload), Math.floor(now / 1000));
    return { token, body };
  }

  /**
   * Validates a token. Throws InvalidToken with the reason when it is
   * malformed, not ours, expired (unless allowExpired and within the window),
   * revoked, or its user, scope or roles are gone.
   */
  async validate(token: string, options: { allowExpired?: boolean; catalog?: boolean } = {}): Promise<TokenBody> {
    const { body, catalog } = await this.check(token, options.allowExpired ?? false);
    return options.catalog === false ? body : { ...body, catalog };
  }

  /** Validates as `validate` does, and returns the payload too (for revocation and re-scoping). */
  async open(token: string, options: { allowExpired?: boolean } = {}): Promise<{ payload: TokenPayload; body: TokenBody }> {
    const { payload, body } = await this.check(token, options.allowExpired ?? false);
    return { payload, body };
  }

  private async check(token: string, allowExpired: boolean): Promise<{ payload: TokenPayload; body: TokenBody; catalog: CatalogEntry[] }> {
    const key = createHash('sha256').update(token).digest('base64url');
    const now = Date.now();
    const generation = this.options.generation();
    await this.keys.refresh();
    const cached = this.cache.get(key);
    if (cached && cached.generation === generation && cached.keyVersion === this.keys.version && now < cached.until && !allowExpired) return cached;
    const opened = fernetDecrypt(this.keys.all(), token);
    if (!opened) throw new InvalidToken('The token is malformed or was not issued by this cloud.');
    let payload: TokenPayload;
    try {
      payload = unpackPayload(opened.plaintext);
    } catch {
      throw new InvalidToken('The token is malformed.');
    }
    if (payload.expiresAt <= now) {
      const windowEnd = payload.expiresAt + this.options.allowExpiredWindowSeconds * 1000;
      if (!allowExpired || windowEnd <= now) throw new InvalidToken('The token has expired.');
    }
    const body = await this.buildBody(payload, false);
    if (typeof body === 'string') throw new InvalidToken(body);
    const catalog = await this.catalog(body.project?.id ?? null, generation);
    if (payload.expiresAt > now) {
      if (this.cache.size > 50_000) this.cache.clear();
      this.cache.set(key, { generation, keyVersion: this.keys.version, payload, body, catalog, until: Math.min(payload.expiresAt, now + this.options.cacheTtlMs) });
    }
    return { payload, body, catalog };
  }

  async catalog(projectId: string | null, generation = this.options.generation()): Promise<CatalogEntry[]> {
    const key = projectId ?? '';
    const hit = this.catalogCache.get(key);
    if (hit && hit.generation === generation) return hit.catalog;
    const catalog = await buildCatalog(this.db, projectId);
    if (this.catalogCache.size > 10_000) this.catalogCache = new Map();
    this.catalogCache.set(key, { generation, catalog });
    return catalog;
  }

  /** Rebuilds a token body from the current state; a string says why it cannot be valid. */
  private async buildBody(p: TokenPayload, issuing: boolean): Promise<TokenBody | string> {
    const user = await this.db.selectFrom('user').selectAll().where('id', '=', p.userId).executeTakeFirst();
    if (!user) return 'The request you have made requires authentication.';
    if (!bool(user.enabled)) return `The account is disabled for user: ${user.id}.`;
    const userDomain = await this.domainRef(user.domain_id);
    if (!userDomain) return `The domain of user ${user.id} is disabled.`;
    const body: TokenBody = {
      methods: p.methods,
      user: { id: user.id, name: user.name, domain: userDomain.ref, password_expires_at: isoTimeNoZone(user.password_expires_at) },
      audit_ids: p.auditIds,
      expires_at: isoTime(p.expiresAt),
      issued_at: isoTime(p.issuedAt),
    };
    let roles: RoleRow[] = [];
    let projectId: string | null = null;
    const domainIds = [user.domain_id];
    switch (p.scope.type) {
      case 'project': {
        const project = await this.db.selectFrom('project').selectAll().where('id', '=', p.scope.id).where('is_domain', '=', 0).executeTakeFirst();
        if (!project) return `Could not find project: ${p.scope.id}.`;
        if (!bool(project.enabled)) return `Project is disabled: ${project.id}.`;
        const domain = await this.domainRef(project.domain_id);
        if (!domain) return `The domain of project ${project.id} is disabled.`;
        projectId = project.id;
        domainIds.push(project.domain_id);
        body.project = { id: project.id, name: project.name, domain: domain.ref };
        body.is_domain = false;
        roles = await effectiveRoles(this.db, user.id, { type: 'project', id: project.id });
        break;
      }
      case 'domain': {
        const domain = await this.domainRef(p.scope.id);
        if (!domain) return `Could not find domain, or it is disabled: ${p.scope.id}.`;
        domainIds.push(p.scope.id);
        body.domain = domain.ref;
        roles = await effectiveRoles(this.db, user.id, { type: 'domain', id: p.scope.id });
        break;
      }
      case 'system':
        body.system = { all: true };
        roles = await effectiveRoles(this.db, user.id, { type: 'system' });
        break;
      case 'unscoped':
        break;
    }
    const noAccess = `User ${user.id} has no access to ${p.scope.type === 'system' ? 'the system' : p.scope.type === 'unscoped' ? '' : `${p.scope.type} ${p.scope.id}`}.`;
    if (p.scope.type !== 'unscoped' && roles.length === 0) return noAccess;
    if (p.applicationCredentialId) {
      const restricted = await this.applicationCredentialRoles(p.applicationCredentialId, user.id);
      if (!restricted) return 'The application credential is gone or has expired.';
      roles = roles.filter((r) => restricted.roleIds.has(r.id));
      if (roles.length === 0) return noAccess;
      body.application_credential = { id: p.applicationCredentialId, name: restricted.name, restricted: !restricted.unrestricted };
    }
    if (p.scope.type !== 'unscoped') body.roles = roles.map((r) => ({ id: r.id, name: r.name }));
    if (!issuing) {
      const revoked = await isRevoked(this.db, {
        userId: user.id,
        issuedAt: p.issuedAt,
        auditIds: p.auditIds,
        projectId,
        domainIds,
        roleIds: roles.map((r) => r.id),
      });
      if (revoked) return 'The token has been revoked.';
    }
    return body;
  }

  private async applicationCredentialRoles(id: string, userId: string): Promise<{ name: string; unrestricted: boolean; roleIds: Set<string> } | null> {
    const cred = await this.db.selectFrom('application_credential').selectAll().where('id', '=', id).executeTakeFirst();
    if (!cred || cred.user_id !== userId) return null;
    if (cred.expires_at && Date.parse(cred.expires_at) <= Date.now()) return null;
    const rows = await this.db.selectFrom('application_credential_role').select('role_id').where('application_credential_id', '=', id).execute();
    const roleIds = expandImplied(
      rows.map((r) => r.role_id),
      await impliedRoleMap(this.db),
    );
    return { name: cred.name, unrestricted: bool(cred.unrestricted), roleIds };
  }

  private async domainRef(id: string): Promise<{ ref: NamedRef } | null> {
    const domain = await this.db.selectFrom('project').select(['id', 'name', 'enabled']).where('id', '=', id).where('is_domain', '=', 1).executeTakeFirst();
    if (!domain || !bool(domain.enabled)) return null;
    return { ref: { id: domain.id, name: domain.name } };
  }
}
