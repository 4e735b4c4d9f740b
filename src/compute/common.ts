import { randomUUID } from 'node:crypto';
import { sql, type Kysely } from 'kysely';

/** Now, as Nova writes times in its database (ISO 8601 UTC, microseconds are not kept). */
export function isoNow(): string {
  return new Date().toISOString();
}

/** Nova's API time format: `2026-11-21T10:00:00Z` (no fraction). */
export function apiTime(iso: string | null): string | null {
  return iso === null ? null : `${iso.slice(0, 19)}Z`;
}

/** Nova's `created`/`updated` of servers and migrations' `created_at` without zone: `2026-11-21T10:00:00.000000`. */
export function apiTimeNoZone(iso: string | null): string | null {
  return iso === null ? null : `${iso.slice(0, 19)}.000000`;
}

export function newUuid(): string {
  return randomUUID();
}

/** Parses JSON kept in a text column, with `fallback` for null or broken text. */
export function parseJson<T>(text: string | null | undefined, fallback: T): T {
  if (text === null || text === undefined || text === '') return fallback;
  try {
    return JSON.parse(text) as T;
  } catch {
    return fallback;
  }
}

/**
 * The next integer id of a table whose API shows integer ids (services,
 * hypervisors, aggregates, migrations). Call it in the transaction that
 * inserts; a concurrent insert that took the same id fails on the primary key
 * and its caller retries ({@link retryOnConflict}).
 */
export async function nextId(db: Kysely<any>, table: string): Promise<number> {
  const row = await db
    .selectFrom(table)
    .select(sql<number>`coalesce(max(id), 0)`.as('n'))
    .executeTakeFirst();
  return Number((row as { n?: number } | undefined)?.n ?? 0) + 1;
}

/** True for a UUID in the canonical form (Nova also takes it without dashes). */
export function isUuid(text: unknown): text is string {
  return typeof text === 'string' && /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i.test(text);
}

/** A UUID with dashes and lower case. */
export function canonicalUuid(text: string): string {
  const hex = text.replaceAll('-', '').toLowerCase();
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
