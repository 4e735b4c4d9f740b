import type { ServiceClient } from '../core/auth/service-client.js';
import type { Logger } from '../core/logging.js';
import { ComputeError } from './errors.js';

/**
 * What compute asks of the block storage service (Nova's `volume/cinder.py`,
 * small): volumes and snapshots by id, volume create and delete (boot from
 * volume), and the attachment calls of Block Storage v3.44+ (`attachments`:
 * create reserves, update connects a host, complete marks it in use, delete
 * detaches). Compute-api and agents share it.
 *
 * Calls carry the user's token when one is given (the volume then belongs
 * to, and is checked against, the user's project), else the `nova` service
 * user's. The service is found in the catalog as `volumev3` or
 * `block-storage`. Where the catalog has neither, no volume exists: `get`
 * answers Nova's `Volume <id> could not be found.` (404), so the API behaves
 * as Nova does for an unknown volume until the block storage service runs.
 */

/** The fields of a volume compute reads. */
export interface Volume {
  id: string;
  status: string;
  size: number;
  availability_zone: string | null;
  multiattach: boolean;
  migration_status: string | null;
  /** `true` or `false`, as Cinder writes it. */
  bootable: string;
  /** The servers it is attached to, with their attachment ids. */
  attachments: { server_id: string; attachment_id: string }[];
  /** The image it was made from (`image_id`, `min_ram`, `min_disk`, ...). */
  volume_image_metadata: Record<string, string>;
}

/** The fields of a volume snapshot compute reads. */
export interface VolumeSnapshot {
  id: string;
  volume_id: string;
  size: number;
  status: string;
}

/** What a new volume is made of (a boot from volume's `image`, `snapshot` or `blank` source). */
export interface NewVolume {
  size: number;
  name?: string;
  imageRef?: string;
  snapshot_id?: string;
  volume_type?: string;
  availability_zone?: string;
}

/** What a host offers to connect a volume (os-brick's connector, small). */
export interface VolumeConnector {
  host: string;
  initiator?: string;
  ip?: string;
  platform?: string;
  os_type?: string;
  multipath?: boolean;
  mountpoint?: string;
}

const SERVICE_TYPES = ['volumev3', 'block-storage'];
const MICROVERSION = { 'OpenStack-API-Version': 'volume 3.44' };

/** Nova's `VolumeNotFound`. */
export function volumeNotFound(volumeId: string): ComputeError {
  return new ComputeError(404, `Volume ${volumeId} could not be found.`);
}

/** Nova's `SnapshotNotFound`. */
export function snapshotNotFound(snapshotId: string): ComputeError {
  return new ComputeError(404, `Snapshot ${snapshotId} could not be found.`);
}

/** The message of a Cinder fault body (`{"badRequest": {"message": ...}}`), or the status. */
export function faultMessage(status: number, body: unknown): string {
  if (typeof body === 'object' && body !== null) {
    for (const value of Object.values(body as Record<string, unknown>)) {
      if (typeof value === 'object' && value !== null && typeof (value as { message?: unknown }).message === 'string') return (value as { message: string }).message;
    }
  }
  return `the block storage service answered ${status}`;
}

export class VolumeApi {
  constructor(private readonly client: ServiceClient) {}

  /** The catalog type of the block storage service, or null when this cloud has none. */
  async serviceType(): Promise<string | null> {
    const catalog = await this.client.catalog();
    return SERVICE_TYPES.find((type) => catalog.some((entry) => entry.type === type)) ?? null;
  }

  private async call<T>(method: string, path: string, body?: unknown, userToken?: string): Promise<{ status: number; body: T }> {
    const type = await this.serviceType();
    if (!type) return { status: 404, body: {} as T };
    return this.client.request<T>(type, method, path, { headers: MICROVERSION, ...(body === undefined ? {} : { body }), ...(userToken ? { userToken } : {}) });
  }

  /** A volume by id (with the user's token when given); 404 `Volume <id> could not be found.` when there is none. */
  async get(volumeId: string, userToken?: string): Promise<Volume> {
    const res = await this.call<{ volume?: Record<string, any> }>('GET', `/volumes/${encodeURIComponent(volumeId)}`, undefined, userToken);
    if (res.status === 404 || (res.status < 400 && !res.body.volume)) throw volumeNotFound(volumeId);
    if (res.status >= 400 || !res.body.volume) throw new ComputeError(500, `The block storage service answered ${res.status} for volume ${volumeId}.`);
    const v = res.body.volume;
    const attachments = Array.isArray(v.attachments) ? (v.attachments as Record<string, unknown>[]) : [];
    return {
      id: String(v.id),
      status: String(v.status ?? 'unknown'),
      size: Number(v.size ?? 0),
      availability_zone: typeof v.availability_zone === 'string' ? v.availability_zone : null,
      multiattach: v.multiattach === true,
      migration_status: typeof v.migration_status === 'string' ? v.migration_status : null,
      bootable: String(v.bootable ?? 'false'),
      attachments: attachments.map((a) => ({ server_id: String(a.server_id ?? ''), attachment_id: String(a.attachment_id ?? a.id ?? '') })),
      volume_image_metadata: typeof v.volume_image_metadata === 'object' && v.volume_image_metadata !== null ? (v.volume_image_metadata as Record<string, string>) : {},
    };
  }

  /** A volume snapshot by id; 404 `Snapshot <id> could not be found.` when there is none. */
  async getSnapshot(snapshotId: string, userToken?: string): Promise<VolumeSnapshot> {
    const res = await this.call<{ snapshot?: Record<string, unknown> }>('GET', `/snapshots/${encodeURIComponent(snapshotId)}`, undefined, userToken);
    if (res.status === 404 || (res.status < 400 && !res.body.snapshot)) throw snapshotNotFound(snapshotId);
    if (res.status >= 400 || !res.body.snapshot) throw new ComputeError(500, `The block storage service answered ${res.status} for snapshot ${snapshotId}.`);
    const s = res.body.snapshot;
    return { id: String(s.id), volume_id: String(s.volume_id ?? ''), size: Number(s.size ?? 0), status: String(s.status ?? 'unknown') };
  }

  /** The volume types the user may use (`id` and `name`). */
  async volumeTypes(userToken?: string): Promise<{ id: string; name: string }[]> {
    const res = await this.call<{ volume_types?: { id: string; name: string }[] }>('GET', '/types', undefined, userToken);
    if (res.status >= 400) throw new ComputeError(500, `The block storage service answered ${res.status} for the volume types.`);
    return res.body.volume_types ?? [];
  }

  /** Creates a volume (in the user's project when `userToken` is given); returns its id. Throws the service's message when refused. */
  async createVolume(spec: NewVolume, userToken?: string): Promise<string> {
    const res = await this.call<{ volume?: { id: string } }>('POST', '/volumes', { volume: spec }, userToken);
    if (res.status >= 400 || !res.body.volume) throw new ComputeError(res.status >= 400 ? res.status : 500, faultMessage(res.status, res.body));
    return res.body.volume.id;
  }

  /** Deletes a volume. Succeeds when it is gone already. */
  async deleteVolume(volumeId: string, userToken?: string): Promise<void> {
    const res = await this.call('DELETE', `/volumes/${encodeURIComponent(volumeId)}`, undefined, userToken);
    if (res.status >= 400 && res.status !== 404) throw new Error(`could not delete volume ${volumeId}: ${faultMessage(res.status, res.body)}`);
  }

  /**
   * Reserves the volume for the server (`reserved`, or `attaching` with a
   * connector); returns the attachment id. A volume the service refuses
   * (in use, in a transient state) is Nova's 400 `Invalid volume: ...`.
   */
  async createAttachment(volumeId: string, instanceUuid: string, userToken?: string): Promise<string> {
    const res = await this.call<{ attachment?: { id: string } }>('POST', '/attachments', { attachment: { volume_uuid: volumeId, instance_uuid: instanceUuid } }, userToken);
    if (res.status === 404) throw volumeNotFound(volumeId);
    if (res.status >= 400 || !res.body.attachment) throw new ComputeError(400, `Invalid volume: ${faultMessage(res.status, res.body)}`);
    return res.body.attachment.id;
  }

  /** Connects the attachment to a host; returns the connection info the driver attaches with. */
  async updateAttachment(attachmentId: string, connector: VolumeConnector): Promise<Record<string, unknown>> {
    const res = await this.call<{ attachment?: { connection_info?: Record<string, unknown> } }>('PUT', `/attachments/${attachmentId}`, { attachment: { connector } });
    if (res.status >= 400 || !res.body.attachment) throw new Error(`could not connect attachment ${attachmentId}: ${faultMessage(res.status, res.body)}`);
    return res.body.attachment.connection_info ?? {};
  }

  /** Marks the volume `in-use`. */
  async completeAttachment(attachmentId: string): Promise<void> {
    const res = await this.call('POST', `/attachments/${attachmentId}/action`, { 'os-complete': null });
    if (res.status >= 400) throw new Error(`could not complete attachment ${attachmentId}: ${faultMessage(res.status, res.body)}`);
  }

  /**
   * Tells the block storage service a swap it asked for (a volume
   * migration) is over (`os-migrate_volume_completion`); returns the volume
   * id the server keeps (the service may give the new volume the old id).
   * Where the service does not answer it, the new volume's id.
   */
  async migrateVolumeCompletion(oldId: string, newId: string, error: boolean): Promise<string> {
    const res = await this.call<{ save_volume_id?: string }>('POST', `/volumes/${encodeURIComponent(oldId)}/action`, { 'os-migrate_volume_completion': { new_volume: newId, error } });
    return res.status < 400 && typeof res.body.save_volume_id === 'string' ? res.body.save_volume_id : newId;
  }

  /** Ends the attachment (the volume goes back to `available` when it has no other). Succeeds when it is gone. */
  async deleteAttachment(attachmentId: string): Promise<void> {
    const res = await this.call('DELETE', `/attachments/${attachmentId}`);
    if (res.status >= 400 && res.status !== 404) throw new Error(`could not delete attachment ${attachmentId}: ${faultMessage(res.status, res.body)}`);
  }
}

/** How long a volume may take to leave `detaching`/`in-use` once its last attachment is gone, before its delete is tried anyway. */
const DETACH_TIMEOUT_MS = 30_000;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * What a server's delete does to its volumes: every attachment deleted
 * (the volumes are detached), then each volume marked
 * `delete_on_termination` deleted, waiting for its detach to finish.
 * Failures are logged, never thrown: the server goes regardless, as in Nova.
 */
export async function removeServerVolumes(volumes: VolumeApi, bdms: { volume_id: string | null; attachment_id: string | null; delete_on_termination?: number; destination_type?: string }[], log: Logger, userToken?: string): Promise<void> {
  const mapped = bdms.filter((b) => b.volume_id && (b.destination_type === undefined || b.destination_type === 'volume'));
  for (const bdm of mapped) {
    if (bdm.attachment_id) await volumes.deleteAttachment(bdm.attachment_id).catch((err: unknown) => log.warn({ err, volume_id: bdm.volume_id }, 'could not detach a volume of a deleted server'));
  }
  for (const bdm of mapped) {
    if (bdm.delete_on_termination !== 1 || !bdm.volume_id) continue;
    const volumeId = bdm.volume_id;
    await deleteWhenDetached(volumes, volumeId, userToken).catch((err: unknown) => log.warn({ err, volume_id: volumeId }, 'could not delete a volume of a deleted server'));
  }
}

async function deleteWhenDetached(volumes: VolumeApi, volumeId: string, userToken?: string): Promise<void> {
  const start = Date.now();
  for (let delay = 20; ; delay = Math.min(delay * 2, 1000)) {
    const status = await volumes.get(volumeId).then(
      (v) => v.status,
      () => 'deleted',
    );
    if (status === 'deleted' || status === 'deleting') return;
    const busy = ['in-use', 'detaching', 'attaching', 'reserved', 'creating', 'downloading'].includes(status);
    if (!busy || Date.now() - start > DETACH_TIMEOUT_MS) return volumes.deleteVolume(volumeId, userToken);
    await sleep(delay);
  }
}
