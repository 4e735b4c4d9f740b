import fs from 'node:fs';
import path from 'node:path';
import { Kysely, Migrator, MysqlDialect, PostgresDialect, SqliteDialect, type Dialect, type Migration } from 'kysely';
import { dbDuration } from '../metrics.js';

export type DialectName = 'sqlite' | 'postgres' | 'mysql';

/** A service's database handle: the typed query builder and what it runs on. */
export interface Database<Schema> {
  db: Kysely<Schema>;
  dialect: DialectName;
  /** The URL with any password masked, for logs. */
  safeUrl: string;
  close(): Promise<void>;
}

/**
 * Opens a database by URL: `sqlite:///abs/path.sqlite` (or `sqlite://rel`),
 * `postgres://user:pass@host:port/db`, `mysql://user:pass@host:port/db`.
 * SQLite runs in WAL mode with full fsync and foreign keys on, so that an
 * acknowledged write survives a crash. A PostgreSQL or MySQL database that does
 * not exist yet is created when the user may create databases.
 */
export async function openDatabase<Schema>(url: string, options: { role: string }): Promise<Database<Schema>> {
  const parsed = new URL(url);
  const safeUrl = parsed.password ? url.replace(`:${parsed.password}@`, ':***@') : url;
  const log = (event: { level: string; queryDurationMillis: number }): void => {
    dbDuration.observe({ role: options.role, dialect }, event.queryDurationMillis / 1000);
  };
  let dialect: DialectName;
  let kyselyDialect: Dialect;
  switch (parsed.protocol) {
    case 'sqlite:': {
      dialect = 'sqlite';
      const file = decodeURIComponent(url.slice('sqlite://'.length));
      fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
      const { default: BetterSqlite } = await import('better-sqlite3');
      const handle = new BetterSqlite(file);
      handle.pragma('journal_mode = WAL');
      handle.pragma('synchronous = FULL');
      handle.pragma('foreign_keys = ON');
      handle.pragma('busy_timeout = 10000');
      kyselyDialect = new SqliteDialect({ database: handle });
      break;
    }
    case 'postgres:':
    case 'postgresql:': {
      dialect = 'postgres';
      const pg = await import('pg');
      await ensurePostgresDatabase(pg.default, parsed);
      kyselyDialect = new PostgresDialect({ pool: new pg.default.Pool({ connectionString: url, max: 10 }) });
      break;
    }
    case 'mysql:':
    case 'mariadb:': {
      dialect = 'mysql';
      const mysql = await import('mysql2');
      const target = new URL(url);
      target.protocol = 'mysql:';
      kyselyDialect = new MysqlDialect({ pool: mysql.createPool({ uri: target.toString(), connectionLimit: 10 }) });
      break;
    }
    default:
      throw new Error(`unsupported database URL scheme '${parsed.protocol}' (use sqlite://, postgres:// or mysql://)`);
  }
  const db = new Kysely<Schema>({ dialect: kyselyDialect, log: (event) => log(event) });
  return { db, dialect, safeUrl, close: () => db.destroy() };
}

async function ensurePostgresDatabase(pg: typeof import('pg').default, url: URL): Promise<void> {
  const name = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (!name) return;
  const admin = new URL(url.toString());
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString() });
  try {
    await client.connect();
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (found.rowCount === 0) await client.query(`CREATE DATABASE "${name.replaceAll('"', '""')}"`);
  } catch {
    // No right to create databases or no maintenance database: the connection
    // to the real one will say what is wrong.
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Applies the service's migrations that have not run yet, in order, each in
 * a transaction where the dialect allows. Idempotent; safe on every start.
 */
export async function migrate(db: Kysely<any>, migrations: Record<string, Migration>, table = 'stratus_migration'): Promise<string[]> {
  const migrator = new Migrator({
    db,
    provider: { getMigrations: async () => migrations },
    migrationTableName: table,
    migrationLockTableName: `${table}_lock`,
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw error instanceof Error ? error : new Error(String(error));
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

/** True when a database error is a unique or primary key violation. */
export function isUniqueViolation(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as { code?: unknown; errno?: unknown };
  return e.code === 'SQLITE_CONSTRAINT_UNIQUE' || e.code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || e.code === '23505' || e.errno === 1062;
}
