import type { FastifyRequest } from 'fastify';
import type { RequestContext } from '../core/auth/context.js';
import type { AttachmentRow, SnapshotRow } from './db/schema.js';
import { volumeTarget, type VolumeFacts } from './volumes.js';
import { allowed, apiTime, atLeast, contextOf, isAdmin, type VolumeService } from './volume.js';

/**
 * The Block Storage views of volumes, snapshots and attachments, field by
 * field as Cinder writes them at the request's microversion.
 */

/** How a request sees resources: its microversion, its caller, and where links point. */
export interface ViewContext {
  req: FastifyRequest;
  ctx: RequestContext;
  admin: boolean;
  /** `http://host:8776/v3` or `.../v3/<project_id>` when the request's URL had the project id. */
  base: string;
  /** The same without the version, for bookmark links. */
  bookmarkBase: string;
}

/** The view context of a request. */
export function viewContext(volume: VolumeService, req: FastifyRequest): ViewContext {
  const ctx = contextOf(req);
  const root = volume.publicUrl.replace(/\/+$/, '');
  const url = req.originalUrl ?? req.url;
  const projectPart = ctx.projectId && url.includes(`/v3/${ctx.projectId}`) ? `/${ctx.projectId}` : '';
  return { req, ctx, admin: isAdmin(volume, ctx), base: `${root}/v3${projectPart}`, bookmarkBase: `${root}${projectPart}` };
}

/** A resource's `self` and `bookmark` links. */
export function resourceLinks(view: ViewContext, collection: string, id: string): { href: string; rel: string }[] {
  return [
    { href: `${view.base}/${collection}/${id}`, rel: 'self' },
    { href: `${view.bookmarkBase}/${collection}/${id}`, rel: 'bookmark' },
  ];
}

/** Admin metadata keys users see among the volume's metadata. */
const VISIBLE_ADMIN_METADATA = ['readonly', 'attached_mode'];

/** A volume's `metadata` as shown: the user's, with the visible admin items over them. */
export function shownMetadata(facts: Pick<VolumeFacts, 'metadata' | 'adminMetadata'>): Record<string, string> {
  const out = { ...facts.metadata };
  for (const key of VISIBLE_ADMIN_METADATA) {
    const value = facts.adminMetadata[key];
    if (value !== undefined) out[key] = value;
  }
  return out;
}

/** The `attachments` of a volume view: its attached attachments. */
function volumeAttachments(view: ViewContext, facts: VolumeFacts): Record<string, unknown>[] {
  const showHost = view.admin || view.ctx.roles.includes('service');
  return facts.attachments
    .filter((a) => a.attach_status === 'attached')
    .map((a) => ({
      id: a.volume_id,
      attachment_id: a.id,
      volume_id: a.volume_id,
      server_id: a.instance_uuid,
      host_name: showHost ? a.attached_host : null,
      device: a.mountpoint,
      attached_at: apiTime(a.attach_time),
    }));
}

/** Cinder shows `managing` states as the create and delete ones. */
function shownStatus(status: string): string {
  return ({ managing: 'creating', error_managing: 'error', error_managing_deleting: 'deleting' } as Record<string, string>)[status] ?? status;
}

/**
 * The detailed view of a volume (create, update, show and `/detail`).
 * `extended` adds what Cinder's extensions add to show and detail only:
 * `os-vol-host-attr:host`, `os-vol-tenant-attr:tenant_id`,
 * `os-vol-mig-status-attr:*` (each under its policy) and
 * `volume_image_metadata`.
 */
export function volumeDetail(volume: VolumeService, view: ViewContext, facts: VolumeFacts, extended: boolean): Record<string, unknown> {
  const { row } = facts;
  const { req } = view;
  const out: Record<string, unknown> = {
    id: row.id,
    status: shownStatus(row.status),
    size: row.size,
    availability_zone: row.availability_zone,
    created_at: apiTime(row.created_at),
    updated_at: apiTime(row.updated_at),
    name: row.display_name,
    description: row.display_description,
    volume_type: atLeast(req, '3.63') ? facts.typeName : (facts.typeName ?? row.volume_type_id),
    snapshot_id: row.snapshot_id,
    source_volid: row.source_volid,
    metadata: shownMetadata(facts),
    links: resourceLinks(view, 'volumes', row.id),
    user_id: row.user_id,
    bootable: row.bootable ? 'true' : 'false',
    encrypted: row.encryption_key_id !== null,
    replication_status: row.replication_status,
    consistencygroup_id: null,
    multiattach: row.multiattach === 1,
    attachments: volumeAttachments(view, facts),
  };
  if (view.admin) out.migration_status = row.migration_status;
  if (atLeast(req, '3.13')) out.group_id = row.group_id;
  if (view.admin && atLeast(req, '3.21')) out.provider_id = null;
  if (atLeast(req, '3.48')) {
    // Each volume is exported on its own (a file, an NBD export): no target is shared.
    out.shared_targets = false;
    out.service_uuid = null;
  }
  if (view.admin && atLeast(req, '3.61')) out.cluster_name = null;
  if (atLeast(req, '3.63')) out.volume_type_id = row.volume_type_id;
  if (atLeast(req, '3.64') && row.encryption_key_id) out.encryption_key_id = row.encryption_key_id;
  if (atLeast(req, '3.65')) out.consumes_quota = true;
  if (extended) {
    const target = volumeTarget(row);
    if (allowed(volume, view.ctx, 'volume_extension:volume_host_attribute', target)) out['os-vol-host-attr:host'] = row.host;
    if (allowed(volume, view.ctx, 'volume_extension:volume_tenant_attribute', target)) out['os-vol-tenant-attr:tenant_id'] = row.project_id;
    if (allowed(volume, view.ctx, 'volume_extension:volume_mig_status_attribute', target)) {
      out['os-vol-mig-status-attr:migstat'] = row.migration_status;
      out['os-vol-mig-status-attr:name_id'] = null;
    }
    if (Object.keys(facts.imageMetadata).length > 0 && allowed(volume, view.ctx, 'volume_extension:volume_image_metadata:show', target)) {
      out.volume_image_metadata = { ...facts.imageMetadata };
    }
  }
  return out;
}

/** The summary view of a volume (`GET /volumes`). */
export function volumeSummary(view: ViewContext, facts: Pick<VolumeFacts, 'row'>): Record<string, unknown> {
  return { id: facts.row.id, name: facts.row.display_name, links: resourceLinks(view, 'volumes', facts.row.id) };
}

/** The summary view of a snapshot (`GET /snapshots`, and the base of every other). */
export function snapshotSummary(row: SnapshotRow, metadata: Record<string, string>): Record<string, unknown> {
  return {
    id: row.id,
    created_at: apiTime(row.created_at),
    updated_at: apiTime(row.updated_at),
    name: row.display_name,
    description: row.display_description,
    volume_id: row.volume_id,
    status: row.status,
    size: row.volume_size,
    metadata: { ...metadata },
  };
}

/**
 * The detailed view of a snapshot (create, update, show, `/detail`):
 * `group_snapshot_id` (3.14), `user_id` (3.41), `consumes_quota` (3.65);
 * `extended` (show and detail) adds `os-extended-snapshot-attributes:*`
 * under their policy.
 */
export function snapshotDetail(volume: VolumeService, view: ViewContext, row: SnapshotRow, metadata: Record<string, string>, extended: boolean): Record<string, unknown> {
  const out = snapshotSummary(row, metadata);
  if (atLeast(view.req, '3.14')) out.group_snapshot_id = row.group_snapshot_id;
  if (atLeast(view.req, '3.41')) out.user_id = row.user_id;
  if (atLeast(view.req, '3.65')) out.consumes_quota = true;
  if (extended && allowed(volume, view.ctx, 'volume_extension:extended_snapshot_attributes', { project_id: row.project_id, user_id: row.user_id })) {
    out['os-extended-snapshot-attributes:progress'] = row.progress;
    out['os-extended-snapshot-attributes:project_id'] = row.project_id;
  }
  return out;
}

/** The summary view of an attachment. */
export function attachmentSummary(row: AttachmentRow): Record<string, unknown> {
  return { id: row.id, status: row.attach_status, instance: row.instance_uuid, volume_id: row.volume_id };
}

/** The detailed view of an attachment (create, update, show, `/detail`). */
export function attachmentDetail(row: AttachmentRow): Record<string, unknown> {
  let connectionInfo: unknown = {};
  if (row.connection_info) {
    try {
      connectionInfo = JSON.parse(row.connection_info) as unknown;
    } catch {
      connectionInfo = {};
    }
  }
  return {
    ...attachmentSummary(row),
    attached_at: apiTime(row.attach_time) ?? '',
    detached_at: apiTime(row.detach_time) ?? '',
    attach_mode: row.attach_mode,
    connection_info: connectionInfo,
  };
}
