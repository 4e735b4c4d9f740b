import type { Kysely } from 'kysely';
import { isoNow, isoTime, newId } from './common.js';
import type { IdentitySchema, RevocationEventRow } from './db/schema.js';

/** The fields of a token a revocation event can match. */
export interface RevocableToken {
  userId: string;
  issuedAt: number;
  auditIds: string[];
  projectId: string | null;
  /** The domain of the token's scope, and the user's domain. */
  domainIds: string[];
  roleIds: string[];
}

export type RevocationFields = Partial<Pick<RevocationEventRow, 'user_id' | 'project_id' | 'domain_id' | 'role_id' | 'audit_id' | 'audit_chain_id'>>;

/**
 * Records that every token matching `fields` and issued until now is invalid.
 * `expiresAt` lets old events be pruned once no token they match can be valid.
 */
export async function revoke(db: Kysely<IdentitySchema>, fields: RevocationFields, expiresAt: string | null = null): Promise<void> {
  await db
    .insertInto('revocation_event')
    .values({
      id: newId(),
      user_id: fields.user_id ?? null,
      project_id: fields.project_id ?? null,
      domain_id: fields.domain_id ?? null,
      role_id: fields.role_id ?? null,
      audit_id: fields.audit_id ?? null,
      audit_chain_id: fields.audit_chain_id ?? null,
      issued_before: isoNow(),
      expires_at: expiresAt,
      revoked_at: isoNow(),
    })
    .execute();
}

/** True when an event revokes the token: one issued at or after it, all of whose set fields match. */
export async function isRevoked(db: Kysely<IdentitySchema>, token: RevocableToken): Promise<boolean> {
  const events = await db.selectFrom('revocation_event').selectAll().where('issued_before', '>=', isoTime(token.issuedAt)).execute();
  return events.some((e) => matches(e, token));
}

function matches(e: RevocationEventRow, t: RevocableToken): boolean {
  if (e.user_id !== null && e.user_id !== t.userId) return false;
  if (e.project_id !== null && e.project_id !== t.projectId) return false;
  if (e.domain_id !== null && !t.domainIds.includes(e.domain_id)) return false;
  if (e.role_id !== null && !t.roleIds.includes(e.role_id)) return false;
  if (e.audit_id !== null && e.audit_id !== t.auditIds[0]) return false;
  if (e.audit_chain_id !== null && !t.auditIds.includes(e.audit_chain_id)) return false;
  return true;
}

/** Deletes events older than any token could be (issued_before + token lifetime + window). */
export async function pruneRevocations(db: Kysely<IdentitySchema>, olderThanMs: number): Promise<void> {
  await db.deleteFrom('revocation_event').where('issued_before', '<', isoTime(Date.now() - olderThanMs)).execute();
}
