import { createHash, randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import { isoNow } from '../common.js';
import type { ComputeSchema, ConsoleAuthTokenRow } from '../db/schema.js';

/**
 * Console auth tokens (Nova's `ConsoleAuthToken`): the API hands a token out
 * in a console URL, the websocket proxy trades it once for the guest's
 * console address. Only the token's SHA-256 is stored, so the database never
 * holds a usable token. A token is refused once used, once expired, and once
 * its server is deleted (checked at use; the rows go with the next purge).
 */

/** What a token leads to (the row without its hash), and where its server is now. */
export interface ConsoleConnectInfo {
  instanceUuid: string;
  /** The host the server is on now (null when it has none), to ask whether its console is still at `host:port`. */
  instanceHost: string | null;
  consoleType: string;
  host: string;
  port: number;
  internalAccessPath: string | null;
  accessUrlBase: string | null;
  /** Unix seconds. */
  expires: number;
}

/** The hex SHA-256 of a token, as it is stored. */
export function hashConsoleToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** Unix seconds now. */
function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

type ValidRow = ConsoleAuthTokenRow & { instance_host: string | null };

function toInfo(row: ValidRow): ConsoleConnectInfo {
  return {
    instanceUuid: row.instance_uuid,
    instanceHost: row.instance_host,
    consoleType: row.console_type,
    host: row.host,
    port: Number(row.port),
    internalAccessPath: row.internal_access_path,
    accessUrlBase: row.access_url_base,
    expires: Number(row.expires),
  };
}

/**
 * Records a new token for a console of `instanceUuid` at `host:port`, valid
 * for `ttlSeconds`, and returns it (the only time it exists in clear).
 * Purges expired tokens and those of deleted servers on the way.
 */
export async function createConsoleToken(
  db: Kysely<ComputeSchema>,
  values: { instanceUuid: string; consoleType: string; host: string; port: number; internalAccessPath?: string | null; accessUrlBase: string | null },
  ttlSeconds: number,
): Promise<{ token: string; expires: number }> {
  await purgeConsoleTokens(db);
  const token = randomUUID();
  const expires = nowSeconds() + ttlSeconds;
  await db
    .insertInto('console_auth_tokens')
    .values({
      id: randomUUID(),
      token_hash: hashConsoleToken(token),
      console_type: values.consoleType,
      host: values.host,
      port: values.port,
      internal_access_path: values.internalAccessPath ?? null,
      instance_uuid: values.instanceUuid,
      expires,
      access_url_base: values.accessUrlBase,
      created_at: isoNow(),
    })
    .execute();
  return { token, expires };
}

/** The row of a token that is still good: known, not expired, its server not deleted. */
async function findValid(db: Kysely<ComputeSchema>, token: string): Promise<ValidRow | null> {
  if (token === '') return null;
  const row = await db
    .selectFrom('console_auth_tokens')
    .innerJoin('instance', 'instance.uuid', 'console_auth_tokens.instance_uuid')
    .selectAll('console_auth_tokens')
    .select('instance.host as instance_host')
    .where('console_auth_tokens.token_hash', '=', hashConsoleToken(token))
    .where('console_auth_tokens.expires', '>', nowSeconds())
    .where('instance.deleted', '=', 0)
    .executeTakeFirst();
  return row ?? null;
}

/** What a valid token leads to, without using it up (`GET /os-console-auth-tokens/{token}`); null when it is not valid. */
export async function lookupConsoleToken(db: Kysely<ComputeSchema>, token: string): Promise<ConsoleConnectInfo | null> {
  const row = await findValid(db, token);
  return row ? toInfo(row) : null;
}

/**
 * Uses a token up: returns what it leads to and deletes it, in one step that
 * only one caller can win (a second use, even a concurrent one, gets null).
 * Null too when the token is unknown, expired or its server deleted.
 */
export async function consumeConsoleToken(db: Kysely<ComputeSchema>, token: string): Promise<ConsoleConnectInfo | null> {
  const row = await findValid(db, token);
  if (!row) return null;
  const deleted = await db.deleteFrom('console_auth_tokens').where('id', '=', row.id).executeTakeFirst();
  return Number(deleted.numDeletedRows) === 1 ? toInfo(row) : null;
}

/** Deletes every token of a server (its delete, a move). Idempotent. */
export async function deleteConsoleTokensOf(db: Kysely<ComputeSchema>, instanceUuid: string): Promise<void> {
  await db.deleteFrom('console_auth_tokens').where('instance_uuid', '=', instanceUuid).execute();
}

/** Deletes expired tokens and those of deleted servers (Nova's `clean_expired_console_auths`). Returns how many went. */
export async function purgeConsoleTokens(db: Kysely<ComputeSchema>): Promise<number> {
  const expired = await db.deleteFrom('console_auth_tokens').where('expires', '<=', nowSeconds()).executeTakeFirst();
  const orphaned = await db
    .deleteFrom('console_auth_tokens')
    .where('instance_uuid', 'in', (eb) => eb.selectFrom('instance').select('uuid').where('deleted', '!=', 0))
    .executeTakeFirst();
  return Number(expired.numDeletedRows) + Number(orphaned.numDeletedRows);
}

/**
 * The URL handed out for a noVNC console, as Nova builds it: noVNC (1.1 and
 * later) takes the websocket path from the page's `path` parameter, so the
 * token goes inside it: `<base>?path=%3Ftoken%3D<token>` (a `path` the base
 * already has is kept in front).
 */
export function novncAccessUrl(base: string, token: string): string {
  const url = new URL(base);
  const prefix = url.searchParams.get('path') ?? '';
  url.searchParams.set('path', `${prefix}?token=${token}`);
  return url.toString();
}
