import { randomUUID } from 'node:crypto';
import type { RequestContext } from '../core/auth/context.js';
import { agentBackup, getBackup, updateBackupIf } from './backups.js';
import type { BackupRow, GroupRow, SnapshotRow, VolumeRow } from './db/schema.js';
import { getGroup, groupVolumeTypes } from './groups.js';
import { badRequest, notFound, VolumeError } from './errors.js';
import { checkQuotaAfterInsert, reserveQuota } from './quotas.js';
import { SchedulerRpc, type CreateRequest, type VolumeSource } from './rpc.js';
import { getSnapshot } from './snapshots.js';
import { checkTypeSize, isMultiattachType, sameBackendName, typeZones } from './volume-type-rules.js';
import { defaultVolumeType, findVolumeType, loadTypes, type VolumeType } from './volume-types.js';
import { backendOf, destroyVolumeRows, getVolume, notifyVolume, updateVolume } from './volumes.js';
import { authorize, now, type VolumeService } from './volume.js';

/**
 * Creating a volume (Cinder's create flow on the API side): the request is
 * checked (sources, size, type, zone, image, quota), the volume recorded
 * as `creating` and the create cast to the scheduler, which picks a backend
 * and hands it to that backend's agent; the conductor moves the volume to
 * `available` or `error`. A refused request records nothing.
 */

/** A create request, its members checked for type by the API layer. */
export interface NewVolume {
  size: number | null;
  name: string | null;
  description: string | null;
  /** Name or id. */
  volumeType: string | null;
  metadata: Record<string, string>;
  snapshotId: string | null;
  sourceVolid: string | null;
  imageRef: string | null;
  backupId: string | null;
  groupId: string | null;
  availabilityZone: string | null;
  /** A volume of a group made from a group snapshot or a source group: the group's volume types are not checked. */
  groupSource?: boolean;
}

/** What the image service tells about an image. */
interface Image {
  id: string;
  status: string;
  size: number | null;
  min_disk: number;
  virtual_size: number | null;
  [key: string]: unknown;
}

const GIB = 1024 * 1024 * 1024;

function invalidInput(reason: string): VolumeError {
  return badRequest(`Invalid input received: ${reason}`);
}

/** An image the user may see, by id (or by name, as Cinder also accepts), from the image service with the user's token. */
async function findImage(volume: VolumeService, ctx: RequestContext, ref: string): Promise<Image> {
  const uuid = ref.split('/').pop() ?? ref;
  const get = async (path: string): Promise<{ status: number; body: unknown }> => {
    try {
      return await volume.client.request('image', 'GET', path, { userToken: ctx.authToken, requestId: ctx.requestId });
    } catch (err) {
      volume.log.warn({ err, image: ref }, 'could not read the image');
      return { status: 503, body: null };
    }
  };
  const byId = await get(`/v2/images/${encodeURIComponent(uuid)}`);
  if (byId.status === 200 && byId.body && typeof byId.body === 'object') return byId.body as Image;
  const byName = await get(`/v2/images?name=${encodeURIComponent(ref)}`);
  const images = byName.status === 200 ? (((byName.body as { images?: Image[] } | null)?.images ?? []) as Image[]) : [];
  if (images.length > 1) throw new VolumeError(409, `Multiple matches found for '${ref}', use an ID to be more specific.`);
  if (images[0]) return images[0];
  throw badRequest('Invalid image identifier or unable to access requested image.');
}

/** Cinder's `check_image_metadata`: the image is active and fits the volume. */
function checkImage(image: Image, size: number): void {
  if (image.status !== 'active') throw invalidInput(`Image ${image.id} is not active.`);
  const imageGb = Math.ceil((Number(image.size ?? 0) || 0) / GIB);
  if (imageGb > size) throw invalidInput(`Size of specified image ${imageGb}GB is larger than volume size ${size}GB.`);
  const minDisk = Number(image.min_disk ?? 0) || 0;
  if (size < minDisk) throw invalidInput(`Volume size ${size}GB cannot be smaller than the image minDisk size ${minDisk}GB.`);
  const virtualGb = Math.ceil((Number(image.virtual_size ?? 0) || 0) / GIB);
  if (virtualGb > size) throw new VolumeError(400, `Image virtual size is ${virtualGb}GB and doesn't fit in a volume of size ${size}GB.`);
}

/** The zones volumes may be created in: those volume services report, and the storage zone. */
export async function knownZones(volume: VolumeService): Promise<Set<string>> {
  const rows = await volume.db.selectFrom('service').select('availability_zone').where('binary', '=', 'cinder-volume').distinct().execute();
  const zones = new Set(rows.map((r) => r.availability_zone));
  zones.add(volume.config.volume.storage_availability_zone);
  return zones;
}

/** Cinder's `_retype_is_possible` for a clone or a create from snapshot of another type. */
async function typesCompatible(volume: VolumeService, source: VolumeType | null, target: VolumeType): Promise<boolean> {
  const backends = await volume.db.selectFrom('service').select('host').where('binary', '=', 'cinder-volume').execute();
  return backends.length === 1 || sameBackendName(source, target);
}

/** A type by id whatever its visibility (a source's), or null when it is gone. */
async function typeById(volume: VolumeService, id: string): Promise<VolumeType | null> {
  const [type] = await loadTypes(volume, [id]);
  return type ?? null;
}

interface Sources {
  backup: BackupRow | null;
  snapshot: SnapshotRow | null;
  snapshotVolume: VolumeRow | null;
  sourceVolume: VolumeRow | null;
  image: Image | null;
  group: GroupRow | null;
}

async function loadSources(volume: VolumeService, ctx: RequestContext, input: NewVolume): Promise<Sources> {
  const snapshot = input.snapshotId !== null ? await getSnapshot(volume, ctx, input.snapshotId) : null;
  const sourceVolume = input.sourceVolid !== null ? await getVolume(volume, ctx, input.sourceVolid) : null;
  const group = input.groupId !== null ? await getGroup(volume, ctx, input.groupId) : null;
  const backup = input.backupId !== null ? await getBackup(volume, ctx, input.backupId) : null;
  const image = input.imageRef !== null ? await findImage(volume, ctx, input.imageRef) : null;
  const given = [snapshot ? 'snapshot' : null, image ? 'imageRef' : null, sourceVolume ? 'source volume' : null, backup ? 'backup' : null].filter((x) => x !== null);
  if (given.length > 1) throw invalidInput('May specify only one of backup, imageRef, snapshot, source volume');
  if (backup && backup.status !== 'available') throw badRequest("Invalid backup: Originating backup status must be one of 'available' values");
  if (snapshot && snapshot.status !== 'available') throw badRequest("Invalid snapshot: Originating snapshot status must be one of 'available' values");
  if (sourceVolume && !['available', 'in-use'].includes(sourceVolume.status)) throw badRequest("Invalid volume: Originating source volume status must be one of 'available, in-use' values");
  const snapshotVolume = snapshot ? ((await volume.db.selectFrom('volume').selectAll().where('id', '=', snapshot.volume_id).executeTakeFirst()) ?? null) : null;
  return { backup, snapshot, snapshotVolume, sourceVolume, image, group };
}

/** Cinder's `_extract_size`: the asked size, or the source's; at least the source's. */
function volumeSize(input: NewVolume, sources: Sources): number {
  let size = input.size;
  if (!size) size = sources.sourceVolume?.size ?? sources.snapshot?.volume_size ?? sources.backup?.size ?? null;
  if (size === null || size <= 0) throw invalidInput(`Volume size '${size === null ? 'None' : size}' must be an integer and greater than 0`);
  if (sources.sourceVolume && size < sources.sourceVolume.size) {
    throw invalidInput(`Volume size '${size}'GB cannot be smaller than original volume size  ${sources.sourceVolume.size}GB. They must be >= original volume size.`);
  }
  if (!sources.sourceVolume && sources.snapshot && size < sources.snapshot.volume_size) {
    throw invalidInput(`Volume size '${size}'GB cannot be smaller than the snapshot size ${sources.snapshot.volume_size}GB. They must be >= original snapshot size.`);
  }
  if (sources.backup && size < sources.backup.size) {
    throw invalidInput(`Volume size ${size}GB cannot be smaller than the backup size ${sources.backup.size}GB. It must be >= backup size.`);
  }
  return size;
}

async function chooseType(volume: VolumeService, ctx: RequestContext, input: NewVolume, sources: Sources): Promise<VolumeType> {
  if (input.volumeType) {
    const type = await findVolumeType(volume, ctx, input.volumeType);
    const origin = sources.sourceVolume ?? (sources.snapshot ? { volume_type_id: sources.snapshot.volume_type_id } : null);
    if (origin && origin.volume_type_id !== type.id && !(await typesCompatible(volume, await typeById(volume, origin.volume_type_id), type))) {
      const advice = sources.sourceVolume ? 'either match source volume, or omit type argument' : 'recommend omitting the type argument';
      throw invalidInput(`Invalid volume_type provided: ${type.id} (requested type is not compatible; ${advice}).`);
    }
    return type;
  }
  const inherited = sources.sourceVolume?.volume_type_id ?? sources.snapshot?.volume_type_id ?? null;
  if (inherited) {
    const type = await typeById(volume, inherited);
    if (!type) throw notFound(`Volume type ${inherited} could not be found.`);
    return type;
  }
  const imageType = sources.image?.cinder_img_volume_type;
  if (typeof imageType === 'string' && imageType !== '') return findVolumeType(volume, ctx, imageType);
  return defaultVolumeType(volume, ctx.projectId);
}

/** Cinder's `_extract_availability_zones`: the asked zone, the source's, or the default; it must be a known one. */
async function chooseZone(volume: VolumeService, input: NewVolume, sources: Sources, type: VolumeType): Promise<string> {
  const known = await knownZones(volume);
  const restricted = typeZones(type);
  const safe = restricted ? restricted.filter((z) => known.has(z)) : [...known];
  if (restricted && safe.length === 0) throw badRequest(`Volume type is only supported in these availability zones: ${restricted.join(',')}`);
  let zone = input.availabilityZone ?? sources.sourceVolume?.availability_zone ?? sources.snapshotVolume?.availability_zone ?? sources.group?.availability_zone ?? null;
  if (zone === null) zone = restricted ? (safe[0] ?? null) : volume.config.volume.default_availability_zone || volume.config.volume.storage_availability_zone;
  if (zone === null || !safe.includes(zone)) throw badRequest(`Invalid input received: Availability zone '${zone ?? 'None'}' is invalid.`);
  return zone;
}

function sourceOf(ctx: RequestContext, sources: Sources): { source: VolumeSource; backend: string | null } {
  if (sources.backup) return { source: { kind: 'backup', backup: agentBackup(sources.backup), user_token: ctx.authToken }, backend: null };
  if (sources.snapshot) {
    return { source: { kind: 'snapshot', snapshot_id: sources.snapshot.id, provider_location: sources.snapshot.provider_location, volume_id: sources.snapshot.volume_id }, backend: backendOf(sources.snapshotVolume?.host ?? null) };
  }
  if (sources.sourceVolume) return { source: { kind: 'volume', volume_id: sources.sourceVolume.id, provider_location: sources.sourceVolume.provider_location }, backend: backendOf(sources.sourceVolume.host) };
  // A volume of a group goes to the group's backend.
  const groupBackend = backendOf(sources.group?.host ?? null);
  if (sources.image) return { source: { kind: 'image', image_id: sources.image.id }, backend: groupBackend };
  return { source: { kind: 'empty' }, backend: groupBackend };
}

/** The row of a new volume, `creating`, not yet scheduled. */
function newVolumeRow(ctx: RequestContext, input: NewVolume, sources: Sources, chosen: { size: number; zone: string; typeId: string; multiattach: boolean }): VolumeRow {
  const origin = sources.sourceVolume ?? sources.snapshotVolume;
  return {
    id: randomUUID(),
    project_id: ctx.projectId ?? '',
    user_id: ctx.userId,
    host: null,
    size: chosen.size,
    availability_zone: chosen.zone,
    status: 'creating',
    attach_status: 'detached',
    migration_status: null,
    display_name: input.name,
    display_description: input.description,
    volume_type_id: chosen.typeId,
    source_volid: sources.sourceVolume?.id ?? null,
    snapshot_id: sources.snapshot?.id ?? null,
    image_id: sources.image?.id ?? null,
    bootable: origin?.bootable ?? 0,
    multiattach: chosen.multiattach ? 1 : 0,
    encryption_key_id: null,
    provider_location: null,
    previous_status: null,
    replication_status: 'disabled',
    group_id: sources.group?.id ?? null,
    scheduling_attempts: null,
    created_at: now(),
    updated_at: null,
    launched_at: null,
  };
}

/** What the scheduler gets to place the volume (kept by it for reschedules). */
function createRequest(ctx: RequestContext, row: VolumeRow, type: VolumeType, sources: Sources): CreateRequest {
  const { source, backend } = sourceOf(ctx, sources);
  return {
    volume_id: row.id,
    project_id: row.project_id,
    size: row.size,
    availability_zone: row.availability_zone,
    volume_type: { id: type.id, name: type.name, extra_specs: type.extra_specs },
    source,
    source_backend: backend,
    attempts: [],
    request_id: ctx.requestId,
  };
}

/**
 * Checks and records a new volume (`creating`), publishes
 * `volume.create.start` and casts the create to the scheduler. Returns the
 * row. On a refused request nothing is recorded; when the cast cannot be
 * sent the volume goes to `error`.
 */
export async function createVolume(volume: VolumeService, ctx: RequestContext, input: NewVolume): Promise<VolumeRow> {
  authorize(volume, ctx, input.imageRef !== null ? 'volume:create_from_image' : 'volume:create');
  const sources = await loadSources(volume, ctx, input);
  const size = volumeSize(input, sources);
  if (sources.image) checkImage(sources.image, size);
  const type = await chooseType(volume, ctx, input, sources);
  checkTypeSize(type, size);
  if (sources.group && !input.groupSource) {
    const groupTypes = (await groupVolumeTypes(volume, [sources.group.id])).get(sources.group.id) ?? [];
    if (!groupTypes.includes(type.id)) throw invalidInput(`Invalid volume_type provided: ${type.id} (requested type must be supported by this group).`);
  }
  const zone = await chooseZone(volume, input, sources, type);
  const multiattach = isMultiattachType(type);
  if (multiattach) authorize(volume, ctx, 'volume:multiattach');
  const projectId = ctx.projectId ?? '';
  await reserveQuota(volume, projectId, { volumes: 1, gigabytes: size }, type.name);

  const row = newVolumeRow(ctx, input, sources, { size, zone, typeId: type.id, multiattach });
  const id = row.id;
  await volume.db.transaction().execute(async (trx) => {
    await trx.insertInto('volume').values(row).execute();
    const metadata = Object.entries(input.metadata).map(([key, value]) => ({ volume_id: id, key, value }));
    if (metadata.length > 0) await trx.insertInto('volume_metadata').values(metadata).execute();
  });
  try {
    await checkQuotaAfterInsert(volume, projectId, { volumes: 1, gigabytes: size }, type.name);
    // The backup is taken for the restore, from `available` only: a concurrent change wins.
    if (sources.backup && !(await updateBackupIf(volume.db, sources.backup.id, { status: 'restoring', restore_volume_id: id }, ['available']))) {
      throw badRequest("Invalid backup: Originating backup status must be one of 'available' values");
    }
  } catch (err) {
    await destroyVolumeRows(volume.db, id);
    throw err;
  }
  await notifyVolume(volume, id, 'create.start', row);

  try {
    await new SchedulerRpc(volume.bus).createVolume(createRequest(ctx, row, type, sources));
  } catch (err) {
    volume.log.error({ err, volume_id: id }, 'could not cast the volume create to the scheduler');
    await updateVolume(volume.db, id, { status: 'error' });
    if (sources.backup) await updateBackupIf(volume.db, sources.backup.id, { status: 'available', restore_volume_id: null }, ['restoring']);
    throw err;
  }
  return row;
}
