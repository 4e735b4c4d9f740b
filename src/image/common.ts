import { randomUUID } from 'node:crypto';

/** `2026-11-21T10:00:00.123456Z`: how times are stored (they sort as text). */
export function isoNow(): string {
  return new Date().toISOString().replace(/Z$/, '000Z');
}

/** Glance shows times to the second: `2026-11-21T10:00:00Z`. */
export function glanceTime(stored: string | null): string | null {
  return stored ? stored.replace(/\.\d+Z$/, 'Z') : null;
}

export function newUuid(): string {
  return randomUUID();
}

export const UUID_PATTERN = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/** Glance's disk and container formats (its defaults of `disk_formats` and `container_formats`). */
export const DISK_FORMATS = ['ami', 'ari', 'aki', 'vhd', 'vhdx', 'vmdk', 'raw', 'qcow2', 'vdi', 'iso', 'ploop'] as const;
export const CONTAINER_FORMATS = ['ami', 'ari', 'aki', 'bare', 'ovf', 'ova', 'docker', 'compressed'] as const;
export const VISIBILITIES = ['public', 'private', 'shared', 'community'] as const;
export const MEMBER_STATUSES = ['pending', 'accepted', 'rejected'] as const;
