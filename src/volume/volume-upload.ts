import type { RequestContext } from '../core/auth/context.js';
import type { VolumeRow } from './db/schema.js';
import { badRequest, invalidVolume } from './errors.js';
import { AgentRpc } from './rpc.js';
import { loadTypes } from './volume-types.js';
import { agentVolume, imageMetadata, notifyVolume, updateVolumeIf, volumeRow } from './volumes.js';
import { apiTime, type VolumeService } from './volume.js';

/**
 * `os-volume_upload_image`: a new image is created in the image service
 * with the user's token (`queued`), the volume goes to `uploading`, and its
 * agent streams the volume into the image; the conductor puts the volume
 * back in its previous status when done.
 */

/** What the user asked for the image. */
export interface UploadRequest {
  name: string;
  diskFormat: string;
  containerFormat: string;
  /** 3.1: `visibility` and `protected`. */
  visibility: string | null;
  protected: boolean | null;
}

/** Image properties never copied from a volume's image metadata (Cinder's `glance_core_properties`, and Glance's reserved names). */
const CORE_PROPERTIES = ['checksum', 'container_format', 'disk_format', 'image_name', 'image_id', 'min_disk', 'min_ram', 'name', 'size'];
const RESERVED = ['id', 'status', 'owner', 'visibility', 'protected', 'created_at', 'updated_at', 'file', 'schema', 'self', 'locations', 'direct_url', 'tags', 'virtual_size', 'os_hash_algo', 'os_hash_value', 'os_hidden', 'deleted', 'deleted_at', 'stores'];

/** Starts the upload; returns Cinder's `os-volume_upload_image` answer. 400 when the volume is not `available` or the image cannot be created. */
export async function uploadToImage(volume: VolumeService, ctx: RequestContext, row: VolumeRow, upload: UploadRequest): Promise<Record<string, unknown>> {
  if (!(await updateVolumeIf(volume.db, row.id, { status: 'uploading', previous_status: row.status }, { status: ['available'] }))) {
    throw invalidVolume(`Volume ${row.id} status must be available`);
  }
  const restore = async (): Promise<void> => {
    await updateVolumeIf(volume.db, row.id, { status: row.status, previous_status: null }, { status: ['uploading'] });
  };
  let image: Record<string, unknown>;
  try {
    const properties = Object.fromEntries(Object.entries(await imageMetadata(volume.db, row.id)).filter(([k]) => !CORE_PROPERTIES.includes(k) && !RESERVED.includes(k) && !k.startsWith('os_glance')));
    const body: Record<string, unknown> = {
      ...properties,
      name: upload.name,
      disk_format: upload.diskFormat,
      container_format: upload.containerFormat,
      ...(upload.visibility !== null ? { visibility: upload.visibility } : {}),
      ...(upload.protected !== null ? { protected: upload.protected } : {}),
    };
    const res = await volume.client.request<Record<string, unknown>>('image', 'POST', '/v2/images', { body, userToken: ctx.authToken, requestId: ctx.requestId });
    if (res.status !== 201 && res.status !== 200) {
      const text = typeof res.body === 'string' ? res.body : JSON.stringify(res.body);
      throw badRequest(`The image service refused the image (${res.status}): ${text}`);
    }
    image = res.body;
  } catch (err) {
    await restore();
    if (err instanceof Error && 'status' in err) throw err;
    throw badRequest(err instanceof Error ? err.message : String(err));
  }
  const imageId = String(image.id);
  try {
    await new AgentRpc(volume.bus).copyVolumeToImage(agentVolume(row), { id: imageId, disk_format: upload.diskFormat, container_format: upload.containerFormat }, row.status);
  } catch (err) {
    await restore();
    throw err;
  }
  await notifyVolume(volume, row.id, 'upload_image.start');
  const current = (await volumeRow(volume.db, row.id)) ?? row;
  const [type] = await loadTypes(volume, [row.volume_type_id]);
  return {
    id: row.id,
    updated_at: apiTime(current.updated_at),
    status: 'uploading',
    display_description: row.display_description,
    size: row.size,
    volume_type: type
      ? {
          created_at: apiTime(type.created_at),
          updated_at: apiTime(type.updated_at),
          deleted: false,
          deleted_at: null,
          id: type.id,
          name: type.name,
          description: type.description,
          is_public: type.is_public,
          qos_specs_id: type.qos_specs_id,
          extra_specs: type.extra_specs,
        }
      : null,
    image_id: imageId,
    container_format: image.container_format ?? upload.containerFormat,
    disk_format: image.disk_format ?? upload.diskFormat,
    image_name: image.name ?? upload.name,
    ...('protected' in image ? { protected: image.protected } : {}),
    ...('visibility' in image ? { visibility: image.visibility } : {}),
  };
}
