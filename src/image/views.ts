import type { ImageRow, LocationRow, MemberRow, TaskRow } from './db/schema.js';
import { glanceTime } from './common.js';

/** An image with what hangs off it, as loaded from the database. */
export interface LoadedImage {
  row: ImageRow;
  properties: Record<string, string>;
  tags: string[];
  locations: LocationRow[];
}

/**
 * An image as Glance's API shows it: the base properties always (null when
 * unset), then the additional properties (strings), the tags, the links;
 * `stores` lists the stores that hold its data.
 */
export function imageView(image: LoadedImage): Record<string, unknown> {
  const { row } = image;
  const view: Record<string, unknown> = { ...image.properties };
  Object.assign(view, {
    id: row.id,
    name: row.name,
    status: row.status,
    visibility: row.visibility,
    protected: row.protected === 1,
    os_hidden: row.os_hidden === 1,
    checksum: row.checksum,
    os_hash_algo: row.os_hash_algo,
    os_hash_value: row.os_hash_value,
    owner: row.owner,
    size: row.size === null ? null : Number(row.size),
    virtual_size: row.virtual_size === null ? null : Number(row.virtual_size),
    min_ram: row.min_ram,
    min_disk: row.min_disk,
    disk_format: row.disk_format,
    container_format: row.container_format,
    created_at: glanceTime(row.created_at),
    updated_at: glanceTime(row.updated_at),
    tags: [...image.tags].sort(),
    self: `/v2/images/${row.id}`,
    file: `/v2/images/${row.id}/file`,
    schema: '/v2/schemas/image',
  });
  const stores = [...new Set(image.locations.map((l) => l.store).filter((s) => s !== 'http'))].sort();
  if (stores.length) view.stores = stores.join(',');
  return view;
}

export function memberView(member: MemberRow): Record<string, unknown> {
  return {
    created_at: glanceTime(member.created_at),
    image_id: member.image_id,
    member_id: member.member,
    schema: '/v2/schemas/member',
    status: member.status,
    updated_at: glanceTime(member.updated_at),
  };
}

export function taskView(task: TaskRow): Record<string, unknown> {
  return {
    id: task.id,
    image_id: task.image_id,
    request_id: task.request_id,
    user_id: task.user_id,
    type: task.type,
    status: task.status,
    owner: task.owner,
    expires_at: glanceTime(task.expires_at),
    created_at: glanceTime(task.created_at),
    updated_at: glanceTime(task.updated_at),
    deleted_at: null,
    deleted: false,
    input: JSON.parse(task.input) as unknown,
    result: task.result === null ? null : (JSON.parse(task.result) as unknown),
    message: task.message,
  };
}
