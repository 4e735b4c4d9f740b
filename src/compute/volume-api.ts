import type { ServiceClient } from '../core/auth/service-client.js';
import { ComputeError } from './errors.js';

/**
 * What compute asks of the block storage service (Nova's `volume/cinder.py`,
 * small): volumes by id and the attachment calls of Block Storage v3.44+
 * (`attachments`: create reserves, update connects a host, complete marks
 * it in use, delete detaches). Compute-api and agents share it.
 *
 * The service is found in the catalog as `volumev3` or `block-storage`.
 * Where the catalog has neither, no volume exists: `get` answers Nova's
 * `Volume <id> could not be found.` (404), so the API behaves as Nova does
 * for an unknown volume until the block storage service runs.
 */

/** The fields of a volume compute reads. */
export interface Volume {
  id: string;
  status: string;
  size: number;
  availability_zone: string | null;
  multiattach: boolean;
  migration_status: string | null;
  bootable: string;
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
    const res = await this.call<{ volume?: Partial<Volume> & { id: string } }>('GET', `/volumes/${encodeURIComponent(volumeId)}`, undefined, userToken);
    if (res.status === 404 || !res.body.volume) throw volumeNotFound(volumeId);
    if (res.status >= 400) throw new ComputeError(500, `The block storage service answered ${res.status} for volume ${volumeId}.`);
    const v = res.body.volume;
    return { id: v.id, status: v.status ?? 'unknown', size: v.size ?? 0, availability_zone: v.availability_zone ?? null, multiattach: v.multiattach === true, migration_status: v.migration_status ?? null, bootable: String(v.bootable ?? 'false') };
  }

  /** Reserves the volume for the server (`attaching`); returns the attachment id. */
  async createAttachment(volumeId: string, instanceUuid: string, userToken?: string): Promise<string> {
    const res = await this.call<{ attachment?: { id: string }; badRequest?: { message: string } }>('POST', '/attachments', { attachment: { volume_uuid: volumeId, instance_uuid: instanceUuid } }, userToken);
    if (res.status === 404) throw volumeNotFound(volumeId);
    if (res.status >= 400 || !res.body.attachment) throw new ComputeError(400, `Invalid volume: ${JSON.stringify(res.body)}`);
    return res.body.attachment.id;
  }

  /** Connects the attachment to a host; returns the connection info the driver attaches with. */
  async updateAttachment(attachmentId: string, connector: VolumeConnector): Promise<Record<string, unknown>> {
    const res = await this.call<{ attachment?: { connection_info?: Record<string, unknown> } }>('PUT', `/attachments/${attachmentId}`, { attachment: { connector } });
    if (res.status >= 400 || !res.body.attachment) throw new Error(`could not connect attachment ${attachmentId}: ${res.status}`);
    return res.body.attachment.connection_info ?? {};
  }

  /** Marks the volume `in-use`. */
  async completeAttachment(attachmentId: string): Promise<void> {
    const res = await this.call('POST', `/attachments/${attachmentId}/action`, { 'os-complete': null });
    if (res.status >= 400) throw new Error(`could not complete attachment ${attachmentId}: ${res.status}`);
  }

  /** Ends the attachment (the volume goes back to `available` when it has no other). Succeeds when it is gone. */
  async deleteAttachment(attachmentId: string): Promise<void> {
    const res = await this.call('DELETE', `/attachments/${attachmentId}`);
    if (res.status >= 400 && res.status !== 404) throw new Error(`could not delete attachment ${attachmentId}: ${res.status}`);
  }
}
