import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import type { ServiceClient } from '../../core/auth/service-client.js';
import type { DriverImage } from '../drivers/driver.js';

/** Image API fields that are not the image's own properties (they are not copied into `volume_image_metadata`). */
const CORE_FIELDS = new Set([
  'id', 'name', 'status', 'visibility', 'protected', 'checksum', 'owner', 'size', 'virtual_size', 'container_format', 'disk_format',
  'created_at', 'updated_at', 'tags', 'min_ram', 'min_disk', 'file', 'schema', 'self', 'os_hidden', 'os_hash_algo', 'os_hash_value',
  'direct_url', 'locations', 'stores', 'os_glance_importing_to_stores', 'os_glance_failed_import',
]);

/** An image as the `cinder` service user (an admin) reads it; throws when it is gone or unreadable. */
export async function fetchImage(client: ServiceClient, imageId: string, requestId?: string): Promise<DriverImage> {
  const res = await client.request<Record<string, unknown>>('image', 'GET', `/v2/images/${encodeURIComponent(imageId)}`, requestId ? { requestId } : {});
  if (res.status === 404) throw new Error(`Image ${imageId} could not be found.`);
  if (res.status !== 200 || typeof res.body !== 'object' || res.body === null) throw new Error(`The image service answered ${res.status} for image ${imageId}.`);
  const body = res.body;
  if (body.status !== 'active') throw new Error(`Image ${imageId} is not active.`);
  const properties: Record<string, string> = {};
  for (const [key, value] of Object.entries(body)) {
    if (CORE_FIELDS.has(key) || value === null || value === undefined) continue;
    properties[key] = typeof value === 'string' ? value : JSON.stringify(value);
  }
  const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
  return {
    id: imageId,
    name: str(body.name),
    disk_format: str(body.disk_format),
    container_format: str(body.container_format),
    size: num(body.size),
    virtual_size: num(body.virtual_size),
    min_disk: num(body.min_disk) ?? 0,
    min_ram: num(body.min_ram) ?? 0,
    checksum: str(body.checksum),
    properties,
  };
}

/** The `volume_image_metadata` Cinder records for a volume made from `image` (every value a string). */
export function imageMetadata(image: DriverImage): Record<string, string> {
  return {
    ...image.properties,
    image_id: image.id,
    image_name: image.name ?? '',
    checksum: image.checksum ?? '',
    container_format: image.container_format ?? '',
    disk_format: image.disk_format ?? '',
    min_disk: String(image.min_disk),
    min_ram: String(image.min_ram),
    size: String(image.size ?? 0),
  };
}

/** Opens the image's data as a stream (never buffered whole). */
export async function openImageData(client: ServiceClient, imageId: string): Promise<Readable> {
  const base = await client.endpoint('image');
  const res = await fetch(`${base}/v2/images/${encodeURIComponent(imageId)}/file`, { headers: { 'X-Auth-Token': await client.token(), 'User-Agent': 'stratus-volume-agent' } });
  if (res.status !== 200 || !res.body) {
    await res.body?.cancel().catch(() => undefined);
    throw new Error(res.status === 204 ? `Image ${imageId} has no data.` : `The image service answered ${res.status} for the data of image ${imageId}.`);
  }
  return Readable.fromWeb(res.body as WebReadableStream<Uint8Array>);
}

/** Streams `data` into the image (`PUT /v2/images/<id>/file`); throws unless the image service took it. */
export async function uploadImageData(client: ServiceClient, imageId: string, data: Readable): Promise<void> {
  const base = await client.endpoint('image');
  const res = await fetch(`${base}/v2/images/${encodeURIComponent(imageId)}/file`, {
    method: 'PUT',
    headers: { 'X-Auth-Token': await client.token(), 'Content-Type': 'application/octet-stream', 'User-Agent': 'stratus-volume-agent' },
    body: Readable.toWeb(data) as unknown as RequestInit['body'],
    duplex: 'half',
  } as RequestInit & { duplex: 'half' });
  const text = await res.text().catch(() => '');
  if (res.status !== 204 && res.status !== 200 && res.status !== 201) throw new Error(`The image service refused the data of image ${imageId} (${res.status}): ${text.slice(0, 200)}`);
}
