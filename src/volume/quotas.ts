import { sql } from 'kysely';
import { VolumeError } from './errors.js';
import type { VolumeService } from './volume.js';

/**
 * Block Storage quotas as Cinder counts them (`DbQuotaDriver`), with usage
 * counted from the rows rather than kept in a usage table: `volumes`,
 * `gigabytes` (volume sizes plus snapshot sizes, Cinder's default with
 * `no_snapshot_gb_quota = False`), `snapshots`, and per volume type
 * `volumes_<type>`, `gigabytes_<type>`, `snapshots_<type>` (unlimited
 * unless set). `per_volume_gigabytes` is a limit on one volume's size.
 * `backups` and `backup_gigabytes` count the backups and their sizes
 * (backups.ts checks them); `groups` counts volume groups (groups.ts
 * checks it).
 *
 * A limit is the project's own (a `quota` row), else the `default` quota
 * class (a `quota_class` row), else `config.volume.default_quotas`.
 */
export const QUOTA_RESOURCES = ['volumes', 'per_volume_gigabytes', 'snapshots', 'gigabytes', 'backups', 'backup_gigabytes', 'groups'] as const;
export type QuotaResource = (typeof QUOTA_RESOURCES)[number];

/** The parts of a per-type quota: `volumes_<type>`, `gigabytes_<type>`, `snapshots_<type>`. */
export const TYPE_QUOTA_PARTS = ['volumes', 'gigabytes', 'snapshots'] as const;

/** Resources counted from the rows (all but `per_volume_gigabytes`). */
export type Deltas = { volumes?: number; gigabytes?: number; snapshots?: number };

/** Limits and usages by resource name, global and per type (`volumes_<type>`). */
export type QuotaValues = Record<string, number>;

/** Every quota resource name, in Cinder's order: the global ones, then each volume type's, then `groups`. */
export async function quotaResourceNames(volume: VolumeService): Promise<string[]> {
  const types = await volume.db.selectFrom('volume_type').select('name').orderBy('created_at').orderBy('name').execute();
  return [...QUOTA_RESOURCES.filter((r) => r !== 'groups'), ...types.flatMap((t) => TYPE_QUOTA_PARTS.map((p) => `${p}_${t.name}`)), 'groups'];
}

/** True when `name` is a quota resource (global, or per type of an existing type). */
export async function isQuotaResource(volume: VolumeService, name: string): Promise<boolean> {
  return (await quotaResourceNames(volume)).includes(name);
}

/** The configured default of a resource (`-1`, unlimited, for per-type ones). */
function configDefault(volume: VolumeService, resource: string): number {
  const value = volume.config.volume.default_quotas[resource];
  return typeof value === 'number' && Number.isInteger(value) ? value : -1;
}

/**
 * The limits of quota class `className`: its rows over the `default`
 * class's over the configuration (Cinder's `get_class_quotas` with
 * defaults). Every resource is present.
 */
export async function classLimits(volume: VolumeService, className = 'default'): Promise<QuotaValues> {
  const names = await quotaResourceNames(volume);
  const limits: QuotaValues = Object.fromEntries(names.map((r) => [r, configDefault(volume, r)]));
  const classes = className === 'default' ? ['default'] : ['default', className];
  const rows = await volume.db.selectFrom('quota_class').select(['class_name', 'resource', 'hard_limit']).where('class_name', 'in', classes).execute();
  // The default class first, then the named one, which wins.
  for (const row of rows.sort((a, b) => Number(a.class_name !== 'default') - Number(b.class_name !== 'default'))) {
    if (row.resource in limits) limits[row.resource] = Number(row.hard_limit);
  }
  return limits;
}

/** A project's limits: its own rows over the default class (every resource present). */
export async function projectLimits(volume: VolumeService, projectId: string): Promise<QuotaValues> {
  const limits = await classLimits(volume);
  const rows = await volume.db.selectFrom('quota').select(['resource', 'hard_limit']).where('project_id', '=', projectId).execute();
  for (const row of rows) if (row.resource in limits) limits[row.resource] = Number(row.hard_limit);
  return limits;
}

/** The limits a project has set itself (its `quota` rows only). */
export async function projectOwnLimits(volume: VolumeService, projectId: string): Promise<QuotaValues> {
  const rows = await volume.db.selectFrom('quota').select(['resource', 'hard_limit']).where('project_id', '=', projectId).execute();
  return Object.fromEntries(rows.map((r) => [r.resource, Number(r.hard_limit)]));
}

/**
 * What a project uses, counted from its rows: `volumes`, `gigabytes`
 * (volumes and snapshots), `snapshots`, the per-type ones for every type,
 * `groups`, and 0 for the resources nothing records yet.
 */
export async function projectUsage(volume: VolumeService, projectId: string): Promise<QuotaValues> {
  const { db } = volume;
  const [vols, snaps, types] = await Promise.all([
    db
      .selectFrom('volume')
      .select((eb) => ['volume_type_id', eb.fn.countAll<number>().as('n'), eb.fn.coalesce(eb.fn.sum<number>('size'), sql<number>`0`).as('gb')])
      .where('project_id', '=', projectId)
      .groupBy('volume_type_id')
      .execute(),
    db
      .selectFrom('snapshot')
      .select((eb) => ['volume_type_id', eb.fn.countAll<number>().as('n'), eb.fn.coalesce(eb.fn.sum<number>('volume_size'), sql<number>`0`).as('gb')])
      .where('project_id', '=', projectId)
      .groupBy('volume_type_id')
      .execute(),
    db.selectFrom('volume_type').select(['id', 'name']).execute(),
  ]);
  const usage: QuotaValues = Object.fromEntries((await quotaResourceNames(volume)).filter((r) => r !== 'per_volume_gigabytes').map((r) => [r, 0]));
  const typeName = new Map(types.map((t) => [t.id, t.name]));
  const add = (key: string, n: number): void => {
    usage[key] = (usage[key] ?? 0) + n;
  };
  for (const row of vols) {
    add('volumes', Number(row.n));
    add('gigabytes', Number(row.gb));
    const name = typeName.get(row.volume_type_id);
    if (name !== undefined) {
      add(`volumes_${name}`, Number(row.n));
      add(`gigabytes_${name}`, Number(row.gb));
    }
  }
  const groups = await db
    .selectFrom('volume_group')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('project_id', '=', projectId)
    .executeTakeFirst();
  usage.groups = Number(groups?.n ?? 0);
  const backups = await db
    .selectFrom('backup')
    .select((eb) => [eb.fn.countAll<number>().as('n'), eb.fn.coalesce(eb.fn.sum<number>('size'), sql<number>`0`).as('gb')])
    .where('project_id', '=', projectId)
    .executeTakeFirst();
  usage.backups = Number(backups?.n ?? 0);
  usage.backup_gigabytes = Number(backups?.gb ?? 0);
  for (const row of snaps) {
    add('snapshots', Number(row.n));
    add('gigabytes', Number(row.gb));
    const name = typeName.get(row.volume_type_id);
    if (name !== undefined) {
      add(`snapshots_${name}`, Number(row.n));
      add(`gigabytes_${name}`, Number(row.gb));
    }
  }
  return usage;
}

/** Cinder's quota errors are 413 with `Retry-After: 0`. */
function quotaError(message: string): VolumeError {
  const error = new VolumeError(413, message);
  error.headers['Retry-After'] = '0';
  return error;
}

/** Cinder's `VolumeSizeExceedsLimit`: one volume larger than `per_volume_gigabytes`. */
export function volumeSizeExceedsLimit(size: number, limit: number): VolumeError {
  return quotaError(`Requested volume size ${size}G is larger than maximum allowed limit ${limit}G.`);
}

/**
 * Refuses (413 `VolumeSizeExceedsLimit`) a volume of `size` GB when the
 * project's `per_volume_gigabytes` is set and smaller. Create, extend (with
 * the new size) and transfer accept check it.
 */
export async function checkPerVolumeLimit(volume: VolumeService, projectId: string, size: number, limits?: QuotaValues): Promise<void> {
  const limit = (limits ?? (await projectLimits(volume, projectId))).per_volume_gigabytes ?? -1;
  if (limit >= 0 && size > limit) throw volumeSizeExceedsLimit(size, limit);
}

/** The deltas with their per-type copies (`volumes_<type>`, ...), as Cinder's `add_volume_type_opts`. */
function withTypeDeltas(deltas: Deltas, volumeTypeName: string | null): [string, number][] {
  const out: [string, number][] = [];
  for (const part of TYPE_QUOTA_PARTS) {
    const n = deltas[part];
    if (n === undefined || n <= 0) continue;
    out.push([part, n]);
    if (volumeTypeName) out.push([`${part}_${volumeTypeName}`, n]);
  }
  return out;
}

/**
 * Throws the error Cinder's `process_reserve_over_quota` raises for the
 * first resource (in name order) that is over: a gigabytes one is
 * `VolumeSizeExceedsAvailableQuota`, a count one `VolumeLimitExceeded` or
 * `SnapshotLimitExceeded`.
 */
function overQuota(overs: { resource: string; limit: number; consumed: number }[], kind: 'volumes' | 'snapshots', requestedGb: number): never {
  overs.sort((a, b) => (a.resource < b.resource ? -1 : a.resource > b.resource ? 1 : 0));
  const unexpected: string[] = [];
  for (const over of overs) {
    if (over.resource.includes('gigabytes')) {
      throw quotaError(`Requested volume or snapshot exceeds allowed ${over.resource} quota. Requested ${requestedGb}G, quota is ${over.limit}G and ${over.consumed}G has been consumed.`);
    }
    if (over.resource.includes(kind)) {
      if (kind === 'volumes') throw quotaError(`Maximum number of volumes allowed (${over.limit}) exceeded for quota '${over.resource}'.`);
      throw quotaError(`Maximum number of snapshots allowed (${over.limit}) exceeded`);
    }
    unexpected.push(over.resource);
  }
  throw quotaError(`Unexpected over quota on ${unexpected.join(', ')}.`);
}

async function check(volume: VolumeService, projectId: string, deltas: Deltas, volumeTypeName: string | null, options: { size?: number | undefined }, inserted: boolean): Promise<void> {
  const wanted = withTypeDeltas(deltas, volumeTypeName);
  const size = options.size ?? (deltas.volumes && deltas.volumes > 0 && deltas.gigabytes !== undefined ? deltas.gigabytes / deltas.volumes : undefined);
  if (wanted.length === 0 && size === undefined) return;
  const limits = await projectLimits(volume, projectId);
  if (size !== undefined) await checkPerVolumeLimit(volume, projectId, size, limits);
  // Nothing to count when every wanted resource is unlimited (or unknown: a type without quotas).
  if (!wanted.some(([resource]) => (limits[resource] ?? -1) >= 0)) return;
  const used = await projectUsage(volume, projectId);
  const overs: { resource: string; limit: number; consumed: number }[] = [];
  for (const [resource, n] of wanted) {
    const limit = limits[resource] ?? -1;
    if (limit < 0) continue;
    // After the insert the new rows are counted already: what was consumed before them is `used - n`.
    const consumed = inserted ? Math.max(0, (used[resource] ?? 0) - n) : (used[resource] ?? 0);
    if (consumed + n > limit) overs.push({ resource, limit, consumed });
  }
  if (overs.length > 0) overQuota(overs, deltas.volumes && deltas.volumes > 0 ? 'volumes' : deltas.snapshots && deltas.snapshots > 0 ? 'snapshots' : 'volumes', deltas.gigabytes ?? 0);
}

/**
 * Checks that `deltas` more (a create: `{volumes: 1, gigabytes: size}`; a
 * snapshot: `{snapshots: 1, gigabytes: size}`; an extend: `{gigabytes:
 * growth}`) fit the project's limits, global and of `volumeTypeName`, and
 * that the volume's size fits `per_volume_gigabytes` (`options.size`, by
 * default `gigabytes / volumes` of a create). Throws Cinder's 413
 * (`VolumeLimitExceeded`, `VolumeSizeExceedsAvailableQuota`,
 * `SnapshotLimitExceeded`, `VolumeSizeExceedsLimit`). Call it before
 * inserting; it reserves nothing (usage is the rows), so check again with
 * {@link checkQuotaAfterInsert} once the rows exist. Changes nothing.
 */
export async function reserveQuota(volume: VolumeService, projectId: string, deltas: Deltas, volumeTypeName: string | null, options: { size?: number } = {}): Promise<void> {
  await check(volume, projectId, deltas, volumeTypeName, options, false);
}

/**
 * The same check as {@link reserveQuota}, made after the new rows are in
 * (they are counted in the usage): when two requests raced past
 * `reserveQuota` for the last unit, at least one of them sees the overshoot
 * here and must remove its row and return the error. Changes nothing.
 */
export async function checkQuotaAfterInsert(volume: VolumeService, projectId: string, deltas: Deltas, volumeTypeName: string | null, options: { size?: number } = {}): Promise<void> {
  await check(volume, projectId, deltas, volumeTypeName, options, true);
}

/**
 * Checks that one more backup of `size` GiB fits the project's `backups`
 * and `backup_gigabytes` limits; `inserted`: the backup's row is in already
 * (counted in the usage), the check after the insert that catches two
 * requests racing for the last unit. Throws Cinder's 413
 * `VolumeBackupSizeExceedsAvailableQuota` or `BackupLimitExceeded`.
 * Changes nothing.
 */
export async function checkBackupQuota(volume: VolumeService, projectId: string, size: number, inserted: boolean): Promise<void> {
  const limits = await projectLimits(volume, projectId);
  const wanted: [string, number][] = [
    ['backup_gigabytes', size],
    ['backups', 1],
  ];
  if (!wanted.some(([resource]) => (limits[resource] ?? -1) >= 0)) return;
  const used = await projectUsage(volume, projectId);
  for (const [resource, n] of wanted) {
    const limit = limits[resource] ?? -1;
    if (limit < 0) continue;
    const consumed = inserted ? Math.max(0, (used[resource] ?? 0) - n) : (used[resource] ?? 0);
    if (consumed + n <= limit) continue;
    if (resource === 'backup_gigabytes') throw quotaError(`Requested backup exceeds allowed Backup gigabytes quota. Requested ${size}G, quota is ${limit}G and ${consumed}G has been consumed.`);
    throw quotaError(`Maximum number of backups allowed (${limit}) exceeded`);
  }
}

/**
 * A volume type was renamed: its per-type quota rows (project and class)
 * follow the name, as Cinder's `update_quota_resource`.
 */
export async function renameTypeQuotas(volume: VolumeService, oldName: string, newName: string): Promise<void> {
  if (oldName === newName) return;
  await volume.db.transaction().execute(async (trx) => {
    for (const part of TYPE_QUOTA_PARTS) {
      await trx.deleteFrom('quota').where('resource', '=', `${part}_${newName}`).execute();
      await trx.deleteFrom('quota_class').where('resource', '=', `${part}_${newName}`).execute();
      await trx.updateTable('quota').set({ resource: `${part}_${newName}` }).where('resource', '=', `${part}_${oldName}`).execute();
      await trx.updateTable('quota_class').set({ resource: `${part}_${newName}` }).where('resource', '=', `${part}_${oldName}`).execute();
    }
  });
}

/** A volume type was deleted: its per-type quota rows go with it. */
export async function deleteTypeQuotas(volume: VolumeService, name: string): Promise<void> {
  const resources = TYPE_QUOTA_PARTS.map((p) => `${p}_${name}`);
  await volume.db.deleteFrom('quota').where('resource', 'in', resources).execute();
  await volume.db.deleteFrom('quota_class').where('resource', 'in', resources).execute();
}
