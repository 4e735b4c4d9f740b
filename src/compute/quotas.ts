import { PostgresAdapter, sql, type Kysely } from 'kysely';
import type { ComputeConfig } from '../core/config.js';
import type { ComputeSchema } from './db/schema.js';
import { quotaExceeded } from './errors.js';

/**
 * Compute quotas as Nova counts them (`[quota]driver = DbQuotaDriver` with
 * usage counted from the records): instances, cores and ram from the
 * project's servers that are not deleted, key_pairs per user, server_groups
 * per project, server_group_members per group; metadata_items and the
 * injected file limits are per-request limits.
 *
 * A limit is the project's own (a `quota` row with user_id ''), else its
 * quota class `default` (a `quota_class` row), else the configured default.
 */
export const QUOTA_RESOURCES = [
  'instances',
  'cores',
  'ram',
  'metadata_items',
  'injected_files',
  'injected_file_content_bytes',
  'injected_file_path_bytes',
  'key_pairs',
  'server_groups',
  'server_group_members',
] as const;
export type QuotaResource = (typeof QUOTA_RESOURCES)[number];

/** The `default` quota class overlaid on the configured defaults. */
export async function classLimits(db: Kysely<ComputeSchema>, config: ComputeConfig, className = 'default'): Promise<Record<QuotaResource, number>> {
  const limits = Object.fromEntries(QUOTA_RESOURCES.map((r) => [r, config.default_quotas[r] ?? -1])) as Record<QuotaResource, number>;
  const rows = await db.selectFrom('quota_class').select(['resource', 'hard_limit']).where('class_name', '=', className).execute();
  for (const row of rows) if (row.resource in limits) limits[row.resource as QuotaResource] = Number(row.hard_limit);
  return limits;
}

/** A project's limits (or a user's in it, when `userId` is given): its own rows over the class defaults. */
export async function projectLimits(db: Kysely<ComputeSchema>, config: ComputeConfig, projectId: string, userId = ''): Promise<Record<QuotaResource, number>> {
  const limits = await classLimits(db, config);
  const rows = await db.selectFrom('quota').select(['resource', 'hard_limit', 'user_id']).where('project_id', '=', projectId).where('user_id', 'in', userId ? ['', userId] : ['']).execute();
  // The project's rows first, then the user's, which win.
  for (const row of rows.sort((a, b) => a.user_id.localeCompare(b.user_id))) if (row.resource in limits) limits[row.resource as QuotaResource] = Number(row.hard_limit);
  return limits;
}

/** What a project uses of the counted resources (instances, cores, ram; server_groups; key_pairs of `userId`). */
export async function projectUsage(db: Kysely<ComputeSchema>, projectId: string, userId?: string): Promise<Record<'instances' | 'cores' | 'ram' | 'server_groups' | 'key_pairs', number>> {
  let servers = db
    .selectFrom('instance')
    .select((eb) => [eb.fn.countAll<number>().as('n'), eb.fn.coalesce(eb.fn.sum<number>('vcpus'), sql<number>`0`).as('cores'), eb.fn.coalesce(eb.fn.sum<number>('memory_mb'), sql<number>`0`).as('ram')])
    .where('project_id', '=', projectId)
    .where('deleted', '=', 0);
  if (userId) servers = servers.where('user_id', '=', userId);
  const row = await servers.executeTakeFirst();
  const groups = await db.selectFrom('instance_group').select((eb) => eb.fn.countAll<number>().as('n')).where('project_id', '=', projectId).executeTakeFirst();
  const keys = userId ? await db.selectFrom('key_pair').select((eb) => eb.fn.countAll<number>().as('n')).where('user_id', '=', userId).executeTakeFirst() : undefined;
  return { instances: Number(row?.n ?? 0), cores: Number(row?.cores ?? 0), ram: Number(row?.ram ?? 0), server_groups: Number(groups?.n ?? 0), key_pairs: Number(keys?.n ?? 0) };
}

/**
 * Takes the project's quota lock until the caller's transaction ends, so
 * that concurrent creations count one after another (PostgreSQL: an advisory
 * lock, since READ COMMITTED would let two see room for the last one;
 * SQLite runs one write transaction at a time already).
 */
export async function lockProjectQuota(db: Kysely<ComputeSchema>, projectId: string): Promise<void> {
  if (db.getExecutor().adapter instanceof PostgresAdapter) {
    await sql`select pg_advisory_xact_lock(hashtext(${`stratus-compute-quota:${projectId}`}))`.execute(db);
  }
}

/**
 * Refuses with Nova's 403 `Quota exceeded for <resource>: Requested N, but
 * already used U of L <resource>` when `count` more servers of the given size
 * would pass a limit (instances first, then cores, then ram, as Nova reports
 * the first). Call it inside the transaction that records the servers, after
 * {@link lockProjectQuota}.
 */
export async function checkServerQuota(db: Kysely<ComputeSchema>, config: ComputeConfig, projectId: string, userId: string, count: number, vcpus: number, memoryMb: number): Promise<void> {
  await checkQuotaDeltas(db, config, projectId, userId, [
    ['instances', count],
    ['cores', count * vcpus],
    ['ram', count * memoryMb],
  ]);
}

/**
 * Nova's upsize check for a resize: 403 `Quota exceeded for cores|ram` when
 * the growth from `from` to `to` would pass the limit (shrinking needs no room).
 */
export async function checkResizeQuota(db: Kysely<ComputeSchema>, config: ComputeConfig, projectId: string, userId: string, from: { vcpus: number; memory_mb: number }, to: { vcpus: number; memory_mb: number }): Promise<void> {
  const deltas: [ServerResource, number][] = [
    ['cores', to.vcpus - from.vcpus],
    ['ram', to.memory_mb - from.memory_mb],
  ];
  await checkQuotaDeltas(
    db,
    config,
    projectId,
    userId,
    deltas.filter(([, n]) => n > 0),
  );
}

type ServerResource = QuotaResource & ('instances' | 'cores' | 'ram');

/** Throws Nova's 403 for the first of `wanted` (in order) that would pass its limit. */
async function checkQuotaDeltas(db: Kysely<ComputeSchema>, config: ComputeConfig, projectId: string, userId: string, wanted: [ServerResource, number][]): Promise<void> {
  if (wanted.length === 0) return;
  const limits = await projectLimits(db, config, projectId, userId);
  const used = await projectUsage(db, projectId);
  for (const [resource, requested] of wanted) {
    const limit = limits[resource];
    if (limit >= 0 && used[resource] + requested > limit) throw quotaExceeded(resource, requested, used[resource], limit);
  }
}

/** How many servers of this size still fit (for `min_count`/`max_count`); Infinity when unlimited. */
export async function serversThatFit(db: Kysely<ComputeSchema>, config: ComputeConfig, projectId: string, userId: string, vcpus: number, memoryMb: number): Promise<number> {
  const limits = await projectLimits(db, config, projectId, userId);
  const used = await projectUsage(db, projectId);
  let fit = Infinity;
  if (limits.instances >= 0) fit = Math.min(fit, limits.instances - used.instances);
  if (limits.cores >= 0 && vcpus > 0) fit = Math.min(fit, Math.floor((limits.cores - used.cores) / vcpus));
  if (limits.ram >= 0 && memoryMb > 0) fit = Math.min(fit, Math.floor((limits.ram - used.ram) / memoryMb));
  return Math.max(0, fit);
}
