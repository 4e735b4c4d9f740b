import type { FastifyRequest } from 'fastify';
import type { RequestContext } from '../core/auth/context.js';
import { atLeast, type ComputeService } from './compute.js';
import { isoNow, newUuid } from './common.js';
import type { BlockDeviceMappingRow } from './db/schema.js';
import { badRequest, ComputeError } from './errors.js';
import type { EmbeddedFlavor } from './rpc.js';
import { VolumeApi, type Volume } from './volume-api.js';
import { invalidField, isObject, notOfType, pyRepr, unexpected } from './api/nova-input.js';
import { booleanLike } from './api/request-checks.js';

/**
 * The block devices of a server create (`block_device_mapping_v2`, or the
 * legacy `block_device_mapping`), as Nova's API reads them: the format
 * first (`parseBlockDevices`), then against the image and block storage
 * services with the caller's token (`resolveBlockDevices`: boot sequence,
 * volumes, snapshots, images, volume types, sizes against the flavor), then
 * existing volumes are reserved for the new server (`reserveVolumes`) and
 * the mappings recorded with it (`mappingRows`). Volumes from an image, a
 * snapshot or blank are made later, by the host that builds the server.
 */

/** One requested block device, checked for format. */
export interface RequestedBdm {
  source_type: 'volume' | 'image' | 'snapshot' | 'blank';
  destination_type: 'volume' | 'local';
  /** 0 for the root; null when the device is not bootable (Nova's negative or absent index). */
  boot_index: number | null;
  /** The volume, snapshot or image id (null for blank). */
  uuid: string | null;
  volume_size: number | null;
  device_name: string | null;
  device_type: string | null;
  disk_bus: string | null;
  guest_format: string | null;
  delete_on_termination: boolean;
  tag: string | null;
  volume_type: string | null;
}

/** The image metadata a server boots with (an image's, or what a volume keeps of its image). */
export interface BootImage {
  id: string;
  min_disk: number;
  min_ram: number;
  size: number;
  properties: Record<string, unknown>;
}

/** What `resolveBlockDevices` found. */
export interface ResolvedBdms {
  bdms: RequestedBdm[];
  /** The root is a volume (no local root disk; the server's image is ""). */
  volumeBacked: boolean;
  /** The existing volumes mapped, by id. */
  volumes: Map<string, Volume>;
}

const SOURCES = ['volume', 'image', 'snapshot', 'blank'];
const DESTINATIONS = ['local', 'volume'];
const DISK_BUSES = ['fdc', 'ide', 'sata', 'scsi', 'usb', 'virtio', 'xen', 'lxc', 'uml'];
/** Nova's `max_local_block_devices`. */
const MAX_LOCAL_DEVICES = 3;
const LEGACY_KEYS = ['virtual_name', 'volume_id', 'snapshot_id', 'volume_size', 'device_name', 'delete_on_termination', 'no_device', 'connection_info'];
const V2_KEYS = [...LEGACY_KEYS, 'source_type', 'uuid', 'image_id', 'destination_type', 'guest_format', 'device_type', 'disk_bus', 'boot_index'];

/** Nova's `InvalidBDMFormat`. */
function invalidFormat(details: string): ComputeError {
  return badRequest(`Block Device Mapping is Invalid: ${details}`);
}

/** The device name without `/dev/` (`vda`). */
export function stripDev(name: string | null): string {
  return (name ?? '').replace(/^\/dev\//, '');
}

function text(entry: Record<string, unknown>, key: string, max = 255): string | null {
  const v = entry[key];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string') throw invalidField(key, v, notOfType(v, 'string'));
  if (v.length > max) throw invalidField(key, v, `'${v}' is too long`);
  return v;
}

function sizeOf(entry: Record<string, unknown>): number | null {
  const v = entry.volume_size;
  if (v === undefined || v === null) return null;
  if (typeof v === 'string' && /^[0-9]+$/.test(v)) return Number(v);
  if (typeof v === 'number' && Number.isInteger(v)) {
    if (v < 0) throw invalidField('volume_size', v, `${v} is less than the minimum of 0`);
    return v;
  }
  if (typeof v === 'string') throw invalidField('volume_size', v, `'${v}' does not match '^[0-9]*$'`);
  throw invalidField('volume_size', v, `${pyRepr(v, true)} is not of type 'integer', 'string'`);
}

function bootIndexOf(entry: Record<string, unknown>): number | null {
  const v = entry.boot_index;
  if (v === undefined || v === null) return null;
  let n: number;
  if (typeof v === 'number' && Number.isInteger(v)) n = v;
  else if (typeof v === 'string' && /^-?[0-9]+$/.test(v)) n = Number(v);
  else if (typeof v === 'string') throw invalidField('boot_index', v, `'${v}' does not match '^-?[0-9]+$'`);
  else throw invalidField('boot_index', v, `${pyRepr(v, true)} is not of type 'integer', 'string'`);
  return n < 0 ? null : n;
}

function deviceNameOf(entry: Record<string, unknown>): string | null {
  const v = entry.device_name;
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string') throw invalidField('device_name', v, notOfType(v, 'string'));
  if (v.length < 1 || v.length > 255) throw invalidFormat('Device name empty or too long.');
  if (/\s/.test(v)) throw invalidFormat('Device name contains spaces.');
  if (!/^[a-zA-Z0-9._\-/]*$/.test(v)) throw invalidField('device_name', v, `'${v}' does not match '^[a-zA-Z0-9._-r/]*$'`);
  return v.startsWith('/dev/') ? v : `/dev/${v}`;
}

function tagOf(entry: Record<string, unknown>): string | null {
  const v = entry.tag;
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string' || v.length > 60 || /[,/]/.test(v)) throw invalidField('tag', v, `'${String(v)}' does not match "^[^,/]*$"`);
  return v;
}

/** The keys of a `block_device_mapping_v2` entry at this microversion (`tag` 2.32 and 2.42+, `volume_type` 2.67+). */
function v2Keys(req: FastifyRequest): string[] {
  const tag = atLeast(req, '2.42') || (atLeast(req, '2.32') && !atLeast(req, '2.33'));
  return [...V2_KEYS, ...(tag ? ['tag'] : []), ...(atLeast(req, '2.67') ? ['volume_type'] : [])];
}

/** One `block_device_mapping_v2` entry (Nova's schema, then `BlockDeviceDict.from_api`); null for a `no_device` entry. */
function parseV2(req: FastifyRequest, entry: unknown, imageGiven: boolean): RequestedBdm | null {
  if (!isObject(entry)) throw invalidField('block_device_mapping_v2', entry, notOfType(entry, 'object'));
  const extra = Object.keys(entry).filter((k) => !v2Keys(req).includes(k));
  if (extra.length > 0) throw invalidField('block_device_mapping_v2', entry, unexpected(extra));
  if (entry.no_device) return null;
  const source = entry.source_type;
  if (source === undefined || source === null) throw invalidFormat('Some required fields are missing');
  if (typeof source !== 'string' || !SOURCES.includes(source)) throw invalidField('source_type', source, `${pyRepr(source, true)} is not one of ['volume', 'image', 'snapshot', 'blank']`);
  const destination = entry.destination_type ?? null;
  if (destination !== null && (typeof destination !== 'string' || !DESTINATIONS.includes(destination))) throw invalidField('destination_type', destination, `${pyRepr(destination, true)} is not one of ['local', 'volume']`);
  const uuidText = text(entry, 'uuid');
  if (uuidText !== null && (uuidText.length < 1 || !/^[a-zA-Z0-9._-]*$/.test(uuidText))) throw invalidField('uuid', uuidText, `'${uuidText}' does not match '^[a-zA-Z0-9._-]*$'`);
  const bootIndex = bootIndexOf(entry);
  const dest = (destination ?? (source === 'volume' || source === 'snapshot' ? 'volume' : 'local')) as RequestedBdm['destination_type'];
  const volumeType = text(entry, 'volume_type');
  const legacyId = source === 'volume' ? text(entry, 'volume_id') : source === 'snapshot' ? text(entry, 'snapshot_id') : source === 'image' ? text(entry, 'image_id') : null;
  const id = uuidText ?? legacyId;
  if (source === 'blank' && uuidText) throw invalidFormat('Invalid device UUID.');
  if (source !== 'blank' && !id) throw invalidFormat('Missing device UUID.');
  if (source === 'image' && dest === 'local' && !(imageGiven && bootIndex === 0)) throw invalidFormat('Mapping image to local is not supported.');
  if (dest === 'local' && volumeType) throw invalidFormat('Specifying a volume_type with destination_type=local is not supported.');
  if (source === 'volume' && volumeType) throw invalidFormat('Specifying volume type to existing volume is not supported.');
  const diskBus = text(entry, 'disk_bus');
  if (diskBus !== null && !DISK_BUSES.includes(diskBus)) throw badRequest(`Block Device Mapping is Invalid: The provided disk bus ${diskBus} is not valid.`);
  return {
    source_type: source as RequestedBdm['source_type'],
    destination_type: dest,
    boot_index: bootIndex,
    uuid: id,
    volume_size: sizeOf(entry),
    device_name: deviceNameOf(entry),
    device_type: text(entry, 'device_type'),
    disk_bus: diskBus,
    guest_format: text(entry, 'guest_format'),
    delete_on_termination: entry.delete_on_termination === undefined || entry.delete_on_termination === null ? false : booleanLike(entry.delete_on_termination, 'delete_on_termination'),
    tag: tagOf(entry),
    volume_type: volumeType,
  };
}

/** One legacy `block_device_mapping` entry (Nova's `from_legacy`); null for a `no_device` entry. */
function parseLegacy(entry: unknown): RequestedBdm | null {
  if (!isObject(entry)) throw invalidField('block_device_mapping', entry, notOfType(entry, 'object'));
  const extra = Object.keys(entry).filter((k) => !LEGACY_KEYS.includes(k));
  if (extra.length > 0) throw invalidField('block_device_mapping', entry, unexpected(extra));
  const virtual = text(entry, 'virtual_name');
  const base = { boot_index: null, volume_size: sizeOf(entry), device_name: deviceNameOf(entry), device_type: null, disk_bus: null, tag: null, volume_type: null };
  const dot = entry.delete_on_termination === undefined || entry.delete_on_termination === null ? false : booleanLike(entry.delete_on_termination, 'delete_on_termination');
  if (virtual === 'swap' || (virtual !== null && /^ephemeral\d+$/.test(virtual))) {
    return { ...base, source_type: 'blank', destination_type: 'local', uuid: null, guest_format: virtual === 'swap' ? 'swap' : null, delete_on_termination: true };
  }
  const snapshot = text(entry, 'snapshot_id');
  if (snapshot) return { ...base, source_type: 'snapshot', destination_type: 'volume', uuid: snapshot, guest_format: null, delete_on_termination: dot };
  const volume = text(entry, 'volume_id');
  if (volume) return { ...base, source_type: 'volume', destination_type: 'volume', uuid: volume, guest_format: null, delete_on_termination: dot };
  if (entry.no_device) return null;
  throw invalidFormat('Unrecognized legacy format.');
}

/**
 * The block devices of a create body, checked for format; [] when it has
 * none. A legacy mapping's root is the device named `vda` (else the image,
 * when one is given, else its first volume or snapshot).
 */
export function parseBlockDevices(req: FastifyRequest, server: Record<string, unknown>, imageGiven: boolean): RequestedBdm[] {
  const legacy = server.block_device_mapping;
  const v2 = server.block_device_mapping_v2;
  for (const [name, value] of [['block_device_mapping', legacy], ['block_device_mapping_v2', v2]] as const) {
    if (value !== undefined && !Array.isArray(value)) throw invalidField(name, value, notOfType(value, 'array'));
  }
  const legacyList = (legacy ?? []) as unknown[];
  const v2List = (v2 ?? []) as unknown[];
  if (legacyList.length > 0 && v2List.length > 0) throw badRequest('Using different block_device_mapping syntaxes is not allowed in the same request.');
  if (v2List.length > 0) return v2List.map((e) => parseV2(req, e, imageGiven)).filter((b): b is RequestedBdm => b !== null);
  const bdms = legacyList.map(parseLegacy).filter((b): b is RequestedBdm => b !== null);
  const root = bdms.find((b) => b.source_type !== 'blank' && stripDev(b.device_name) === 'vda');
  if (root) root.boot_index = 0;
  else if (!imageGiven) {
    const first = bdms.find((b) => b.source_type !== 'blank');
    if (first) first.boot_index = 0;
  }
  return bdms;
}

/** The root mapping (boot index 0), if any. */
export function rootBdm(bdms: RequestedBdm[]): RequestedBdm | undefined {
  return bdms.find((b) => b.boot_index === 0);
}

/** Nova's `InvalidBDMBootSequence`: boot indexes 0, 1, 2, ... with no gap (the image is 0 when it is the root). */
function checkBootSequence(bdms: RequestedBdm[], imageRoot: boolean): void {
  const indexes = [...(imageRoot ? [0] : []), ...bdms.map((b) => b.boot_index).filter((i): i is number => i !== null)].sort((a, b) => a - b);
  if (indexes.length === 0 || indexes.some((v, i) => v !== i)) {
    throw badRequest('Block Device Mapping is Invalid: Boot sequence for the instance and image/block device mapping combination is not valid.');
  }
}

/** The image of a boot from volume (`get_bdm_image_metadata`): the root's image, or what its volume (or its snapshot's volume) keeps of one. */
async function bootImageOfRoot(ctx: RequestContext, root: RequestedBdm, volumes: VolumeApi, loadImage: (id: string) => Promise<BootImage>): Promise<BootImage> {
  const empty: BootImage = { id: '', min_disk: 0, min_ram: 0, size: 0, properties: {} };
  if (root.source_type === 'blank' || !root.uuid) return empty;
  if (root.source_type === 'image') {
    return loadImage(root.uuid).catch(() => {
      throw badRequest(`Block Device Mapping is Invalid: failed to get image ${root.uuid ?? ''}.`);
    });
  }
  let volumeId = root.uuid;
  if (root.source_type === 'snapshot') {
    const snapshot = await volumes.getSnapshot(root.uuid, ctx.authToken).catch(() => {
      throw badRequest(`Block Device Mapping is Invalid: failed to get snapshot ${root.uuid ?? ''}.`);
    });
    volumeId = snapshot.volume_id;
  }
  const volume = await volumes.get(volumeId, ctx.authToken).catch(() => {
    throw badRequest(`Block Device Mapping is Invalid: failed to get volume ${volumeId}.`);
  });
  if (!['true', 'True', '1'].includes(volume.bootable)) throw badRequest(`Block Device ${volumeId} is not bootable.`);
  const meta = volume.volume_image_metadata;
  const properties = Object.fromEntries(Object.entries(meta).filter(([k]) => !['image_id', 'image_name', 'size', 'checksum', 'min_ram', 'min_disk'].includes(k)));
  return { id: meta.image_id ?? '', min_disk: Number(meta.min_disk ?? 0), min_ram: Number(meta.min_ram ?? 0), size: volume.size * 1024 ** 3, properties };
}

/**
 * Checks the block devices against the services (Nova's `_validate_bdm` and
 * its API checks), with the caller's token, and fills in sizes. `image` is
 * the loaded `imageRef`, or null for a boot from volume, whose image
 * metadata is returned in `bootImage`. Throws Nova's 400s; changes nothing.
 */
export async function resolveBlockDevices(
  compute: ComputeService,
  ctx: RequestContext,
  req: FastifyRequest,
  bdms: RequestedBdm[],
  options: { image: BootImage | null; flavor: EmbeddedFlavor; maxCount: number; loadImage: (id: string) => Promise<BootImage> },
): Promise<ResolvedBdms & { bootImage: BootImage }> {
  const volumes = new VolumeApi(compute.client);
  const root = rootBdm(bdms);
  const imageRoot = options.image !== null && (!root || (root.source_type === 'image' && root.destination_type === 'local'));
  if (options.image && bdms.some((b) => b.destination_type === 'volume' && stripDev(b.device_name) === 'vda') && imageRoot) {
    throw badRequest('The volume cannot be assigned the same device name as the root device vda');
  }
  if (options.maxCount > 1 && bdms.some((b) => b.source_type === 'volume')) throw badRequest('Cannot attach one or more volumes to multiple instances');
  checkBootSequence(bdms, imageRoot && !root);
  const bootImage = options.image ?? (root ? await bootImageOfRoot(ctx, root, volumes, options.loadImage) : { id: '', min_disk: 0, min_ram: 0, size: 0, properties: {} });

  let types: { id: string; name: string }[] | null = null;
  const found = new Map<string, Volume>();
  for (const bdm of bdms) {
    if (bdm.volume_type) {
      types ??= await volumes.volumeTypes(ctx.authToken);
      const wanted = bdm.volume_type;
      if (!types.some((t) => t.id === wanted || t.name === wanted)) throw badRequest(`Volume type ${wanted} could not be found.`);
    }
    if (bdm.source_type === 'image' && bdm.uuid) {
      if (bdm.uuid !== options.image?.id) {
        await options.loadImage(bdm.uuid).catch(() => {
          throw badRequest(`Block Device Mapping is Invalid: failed to get image ${bdm.uuid ?? ''}.`);
        });
      }
      if (bdm.destination_type === 'volume' && !bdm.volume_size) throw badRequest("Images with destination_type 'volume' need to have a non-zero size specified");
    } else if (bdm.source_type === 'volume' && bdm.uuid) {
      const volume = found.get(bdm.uuid) ?? (await volumes.get(bdm.uuid, ctx.authToken).catch((err: unknown) => {
        throw err instanceof ComputeError && err.status === 404 ? badRequest(err.message) : err;
      }));
      found.set(volume.id, volume);
      if (volume.multiattach && !atLeast(req, '2.60')) throw badRequest('Multiattach volumes are only supported starting with compute API version 2.60.');
      if (volume.status !== 'available' && !(volume.multiattach && volume.status === 'in-use')) {
        throw badRequest(`Invalid volume: volume '${volume.id}' status must be 'available'. Currently in '${volume.status}'`);
      }
      bdm.volume_size = volume.size;
    } else if (bdm.source_type === 'snapshot' && bdm.uuid) {
      const snapshot = await volumes.getSnapshot(bdm.uuid, ctx.authToken).catch(() => {
        throw badRequest(`Block Device Mapping is Invalid: failed to get snapshot ${bdm.uuid ?? ''}.`);
      });
      bdm.volume_size = bdm.volume_size || snapshot.size;
    } else if (bdm.source_type === 'blank' && bdm.destination_type === 'volume' && !bdm.volume_size) {
      throw badRequest("Blank volumes (source: 'blank', dest: 'volume') need to have non-zero size");
    }
  }
  checkLocalDevices(bdms, options.flavor);

  const volumeBacked = root?.destination_type === 'volume';
  if (volumeBacked) {
    if (options.flavor.memory_mb < bootImage.min_ram) throw badRequest("Flavor's memory is too small for requested image.");
    const minDisk = bootImage.min_disk * 1024 ** 3;
    if (root.source_type !== 'volume' && root.volume_size !== null && minDisk > root.volume_size * 1024 ** 3) {
      throw badRequest(`Volume is smaller than the minimum size specified in image metadata. Volume size is ${root.volume_size * 1024 ** 3} bytes, minimum size is ${minDisk} bytes.`);
    }
  }
  return { bdms, volumeBacked, volumes: found, bootImage };
}

/** Swap and ephemeral devices against the flavor, and the number of local devices. */
function checkLocalDevices(bdms: RequestedBdm[], flavor: EmbeddedFlavor): void {
  const blankLocal = bdms.filter((b) => b.source_type === 'blank' && b.destination_type === 'local');
  const swaps = blankLocal.filter((b) => b.guest_format === 'swap');
  const ephemerals = blankLocal.filter((b) => b.guest_format !== 'swap');
  const ephemeralSize = ephemerals.reduce((sum, b) => sum + (b.volume_size || flavor.ephemeral_gb), 0);
  if (ephemeralSize > flavor.ephemeral_gb) {
    throw badRequest('Ephemeral disks requested are larger than the instance type allows. If no size is given in one block device mapping, flavor ephemeral size will be used.');
  }
  if (swaps.length > 1) throw invalidFormat('More than one swap drive requested.');
  if (swaps[0] && (swaps[0].volume_size ?? 0) > flavor.swap) throw badRequest('Swap drive requested is larger than instance type allows.');
  if (bdms.filter((b) => b.destination_type === 'local').length > MAX_LOCAL_DEVICES) throw invalidFormat('You specified more local devices than the limit allows');
}

/**
 * Reserves each existing volume for the server (an attachment without a
 * host, as Nova's API does before it records the server); returns the
 * attachment ids by volume id. On failure the reservations made are undone.
 */
export async function reserveVolumes(compute: ComputeService, ctx: RequestContext, instanceUuid: string, resolved: ResolvedBdms): Promise<Map<string, string>> {
  const volumes = new VolumeApi(compute.client);
  const reserved = new Map<string, string>();
  try {
    for (const bdm of resolved.bdms) {
      if (bdm.source_type !== 'volume' || !bdm.uuid || reserved.has(bdm.uuid)) continue;
      reserved.set(bdm.uuid, await volumes.createAttachment(bdm.uuid, instanceUuid, ctx.authToken));
    }
  } catch (err) {
    await releaseReservations(compute, reserved);
    throw err;
  }
  return reserved;
}

/** Deletes attachments made by `reserveVolumes` (a create that failed afterwards). */
export async function releaseReservations(compute: ComputeService, reserved: Map<string, string>): Promise<void> {
  const volumes = new VolumeApi(compute.client);
  for (const attachmentId of reserved.values()) {
    await volumes.deleteAttachment(attachmentId).catch((err: unknown) => compute.log.warn({ err, attachment_id: attachmentId }, 'could not release a volume reservation'));
  }
}

/**
 * The mapping rows of one new server: the root on `vda`, the others on the
 * next free `vdX` unless they name a device; existing volumes with their
 * reservation.
 */
export function mappingRows(instanceUuid: string, bdms: RequestedBdm[], reserved: Map<string, string>): BlockDeviceMappingRow[] {
  const used = new Set(bdms.map((b) => stripDev(b.device_name)).filter((n) => n !== ''));
  used.add('vda');
  let next = 1;
  const freeName = (): string => {
    while (next < 26 && used.has(`vd${String.fromCharCode(97 + next)}`)) next++;
    const name = `vd${String.fromCharCode(97 + Math.min(next, 25))}`;
    used.add(name);
    return `/dev/${name}`;
  };
  const now = Date.parse(isoNow());
  const ordered = [...bdms].sort((a, b) => (a.boot_index ?? Infinity) - (b.boot_index ?? Infinity));
  // One millisecond apart, so that lists (ordered by creation) keep the boot order, then the request's.
  return ordered.map((b, i) => ({
    id: newUuid(),
    instance_uuid: instanceUuid,
    source_type: b.source_type,
    destination_type: b.destination_type,
    boot_index: b.boot_index,
    device_name: b.device_name ?? (b.boot_index === 0 ? '/dev/vda' : freeName()),
    device_type: b.device_type ?? 'disk',
    disk_bus: b.disk_bus,
    guest_format: b.guest_format,
    image_id: b.source_type === 'image' ? b.uuid : null,
    volume_id: b.source_type === 'volume' ? b.uuid : null,
    snapshot_id: b.source_type === 'snapshot' ? b.uuid : null,
    volume_size: b.volume_size,
    volume_type: b.volume_type,
    delete_on_termination: b.delete_on_termination ? 1 : 0,
    tag: b.tag,
    attachment_id: b.source_type === 'volume' && b.uuid ? (reserved.get(b.uuid) ?? null) : null,
    connection_info: null,
    created_at: new Date(now + i).toISOString(),
  }));
}
