import fsp from 'node:fs/promises';
import path from 'node:path';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Kysely, Transaction } from 'kysely';
import { ApiError, BadRequest, Conflict, Forbidden, NotFound, OverLimit, UnsupportedMediaType } from '../../core/errors.js';
import { checkData } from '../checks.js';
import { isoNow, newUuid } from '../common.js';
import type { ImageSchema } from '../db/schema.js';
import { authorize, isAdmin, type ImageService } from '../image.js';
import { ingest, type Ingested } from '../ingest.js';
import { findImage, loadImage } from '../repository.js';
import { FileStore, StoreDataMissing, type ByteRange, type ImageStore } from '../stores/index.js';
import type { LoadedImage } from '../views.js';
import { notifyImage } from './images.js';

class Gone extends ApiError {
  constructor(message: string) {
    super(410, 'Gone', message);
  }
}

class RangeNotSatisfiable extends ApiError {
  constructor(size: number) {
    super(416, 'Requested Range Not Satisfiable', 'Requested range not satisfiable');
    this.headers['Content-Range'] = `bytes */${size}`;
  }
}

/** The staging area of `glance-direct`: a file store of its own. */
export function stagingStore(images: ImageService): FileStore {
  return new FileStore('os_glance_staging_store', images.stagingDir, 'staging');
}

/** The staged file of an image, if any. */
export function stagedPath(images: ImageService, imageId: string): string {
  return path.join(images.stagingDir, imageId);
}

/** Removes an image's data from every store that holds it, and what it staged. */
export async function deleteImageData(images: ImageService, image: LoadedImage): Promise<void> {
  for (const location of image.locations) {
    const store = images.stores.forUrl(location.url);
    if (store && !store.readOnly) {
      await store.delete(location.url).catch((err: unknown) => images.log.warn({ err, image_id: image.row.id }, 'could not delete image data'));
    }
  }
  await images.db.deleteFrom('image_location').where('image_id', '=', image.row.id).execute();
  await fsp.rm(stagedPath(images, image.row.id), { force: true });
}

/** The store named by `X-Image-Meta-Store`, or the default one. */
export function chosenStore(images: ImageService, req: FastifyRequest): ImageStore {
  const header = req.headers['x-image-meta-store'];
  const id = typeof header === 'string' && header ? header : images.stores.defaultId;
  const store = images.stores.all.get(id);
  if (!store || store.readOnly) throw new BadRequest(`Store for identifier ${id} not found`);
  return store;
}

function requireOctetStream(req: FastifyRequest): void {
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (type !== 'application/octet-stream') throw new UnsupportedMediaType(`Unsupported Content-Type ${type || '(none)'}: image data must be sent as application/octet-stream.`);
}

function declaredLength(req: FastifyRequest): number | null {
  const header = req.headers['content-length'];
  return header === undefined ? null : Number(header);
}

/**
 * Moves an image from one status to another only if no one else did first;
 * `worker` records this process while it holds the image.
 */
export async function transition(images: ImageService, id: string, from: string, to: string, extra: Record<string, unknown> = {}): Promise<boolean> {
  const done = await images.db
    .updateTable('image')
    .set({ status: to, updated_at: isoNow(), ...extra })
    .where('id', '=', id)
    .where('status', '=', from)
    .where('deleted_at', 'is', null)
    .executeTakeFirst();
  return Number(done.numUpdatedRows) === 1;
}

/**
 * Records stored data on an image that this worker holds in `from` status,
 * making it active. False when the image changed meanwhile (deleted): the
 * caller must then remove the data.
 */
export async function activate(images: ImageService, id: string, from: string, stored: Ingested & { store: string }, virtualSize: number | null): Promise<boolean> {
  return images.db.transaction().execute(async (trx) => {
    const now = isoNow();
    const done = await trx
      .updateTable('image')
      .set({ status: 'active', size: stored.size, checksum: stored.md5, os_hash_algo: 'sha512', os_hash_value: stored.sha512, virtual_size: virtualSize, updated_at: now, worker: null })
      .where('id', '=', id)
      .where('status', '=', from)
      .where('worker', '=', images.workerId)
      .where('deleted_at', 'is', null)
      .executeTakeFirst();
    if (Number(done.numUpdatedRows) !== 1) return false;
    await addLocation(trx, id, stored.store, stored.url);
    return true;
  });
}

/** Records where a copy of an image's data is. */
export async function addLocation(db: Kysely<ImageSchema> | Transaction<ImageSchema>, imageId: string, store: string, url: string): Promise<void> {
  await db.insertInto('image_location').values({ id: newUuid(), image_id: imageId, store, url, metadata: JSON.stringify({ store }), created_at: isoNow() }).execute();
}

function parseRange(header: string, size: number): ByteRange | 'invalid' {
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match || (match[1] === '' && match[2] === '')) return 'invalid';
  let start: number;
  let end: number;
  if (match[1] === '') {
    const suffix = Number(match[2]);
    if (suffix === 0) return 'invalid';
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(match[1]);
    end = match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1);
  }
  if (start > end || start >= size) return 'invalid';
  return { start, end };
}

export function registerData(app: FastifyInstance, images: ImageService): void {
  // Image data streams straight to the store: Fastify hands the raw request over.
  app.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));

  app.put<{ Params: { id: string } }>('/v2/images/:id/file', async (req, reply) => {
    requireOctetStream(req);
    const { image, target } = await findImage(images, req.ctx, req.params.id);
    authorize(images, req, 'upload_image', target);
    const store = chosenStore(images, req);
    const row = image.row;
    if (!row.disk_format || !row.container_format) throw new BadRequest('Properties disk_format, container_format must be set prior to saving data.');
    if (row.status !== 'queued') throw new Conflict(`Image status transition from ${row.status} to saving is not allowed`);
    const owner = row.owner ?? '';
    const length = declaredLength(req);
    const cap = images.config.image.image_size_cap;
    if (length !== null && length > cap) throw new OverLimit(`Image exceeds the storage quota: the image size cap is ${cap} bytes.`);
    const room = owner ? (await images.quotas.enforce(owner, { image_size_total: length ?? 0, image_count_uploading: 1 })).image_size_total : Infinity;
    if (!(await transition(images, row.id, 'queued', 'saving', { worker: images.workerId }))) throw new Conflict(`Image status transition from ${row.status} to saving is not allowed`);

    let stored: Ingested | null = null;
    try {
      const limit = Math.min(cap, room);
      stored = await ingest(store, row.id, req.body as NodeJS.ReadableStream as never, limit, limit === cap ? `Image exceeds the storage quota: the image size cap is ${cap} bytes.` : `Denying attempt to upload image because it exceeds the quota of project ${owner}.`);
      const file = store.localPath(stored.url);
      const virtualSize = file ? await checkData(images, file, row.disk_format, row.container_format) : null;
      if (!(await activate(images, row.id, 'saving', { ...stored, store: store.id }, virtualSize))) {
        throw new Gone(`Image ${row.id} could not be found after upload. The image may have been deleted during the upload.`);
      }
    } catch (err) {
      if (stored) await store.delete(stored.url).catch(() => undefined);
      // Back to queued, so that the client can try again.
      await images.db.updateTable('image').set({ status: 'queued', worker: null, updated_at: isoNow() }).where('id', '=', row.id).where('status', '=', 'saving').where('worker', '=', images.workerId).execute();
      req.log.info({ err, image_id: row.id }, 'image upload failed; the image is queued again');
      throw err;
    }
    const active = await loadImage(images.db, row.id);
    if (active) {
      notifyImage(images, 'image.upload', active);
      notifyImage(images, 'image.activate', active);
    }
    reply.code(204);
  });

  app.get<{ Params: { id: string } }>('/v2/images/:id/file', async (req, reply) => {
    const { image, target } = await findImage(images, req.ctx, req.params.id);
    authorize(images, req, 'download_image', target);
    const row = image.row;
    if (row.status === 'deactivated' && !isAdmin(images, req.ctx)) throw new Forbidden('The requested image has been deactivated. Image data download is forbidden.');
    const location = image.locations[0];
    if (!location || (row.status !== 'active' && row.status !== 'deactivated')) {
      reply.code(204);
      return reply.send();
    }
    const store = images.stores.forUrl(location.url);
    if (!store) throw new NotFound(`The image data of ${row.id} is in a store that this service does not have.`);
    const size = row.size ?? (await store.size(location.url));
    const rangeHeader = req.headers.range;
    const contentRange = req.headers['content-range'];
    let range: ByteRange | undefined;
    if (typeof rangeHeader === 'string' && rangeHeader) {
      if (rangeHeader.includes(',')) throw new BadRequest('Requests with multiple ranges are not supported in Glance. You may make multiple single-range requests instead.');
      const parsed = parseRange(rangeHeader, size);
      if (parsed === 'invalid') throw new RangeNotSatisfiable(size);
      range = parsed;
    } else if (typeof contentRange === 'string' && contentRange) {
      // Glance still honours Content-Range in requests (`bytes 2-5/*`); the whole range must be in the data.
      const match = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(contentRange.trim());
      const start = Number(match?.[1]);
      const end = Number(match?.[2]);
      if (!match || start > end || end >= size) throw new RangeNotSatisfiable(size);
      range = { start, end };
    }
    const stream = await store.get(location.url, range).catch((err: unknown) => {
      if (err instanceof StoreDataMissing) return null;
      throw err;
    });
    if (!stream) {
      // As Glance when the store has no data at the location (glance_store.NotFound): 204, not a 500.
      req.log.warn({ image_id: row.id, url: location.url }, 'image data missing from its store');
      reply.code(204);
      return reply.send();
    }
    images.notify('image.send', { image_id: row.id, owner_id: row.owner, receiver_tenant_id: req.ctx.projectId, receiver_user_id: req.ctx.userId, bytes_sent: range ? range.end - range.start + 1 : size });
    reply.header('Content-Type', 'application/octet-stream');
    if (range) {
      reply.code(206).header('Content-Range', `bytes ${range.start}-${range.end}/${size}`).header('Content-Length', String(range.end - range.start + 1));
    } else {
      reply.code(200).header('Content-Length', String(size));
      if (row.checksum) reply.header('Content-MD5', row.checksum);
    }
    return reply.send(stream);
  });

  app.put<{ Params: { id: string } }>('/v2/images/:id/stage', async (req, reply) => {
    if (!images.config.image.import_methods.includes('glance-direct')) throw new NotFound('The glance-direct import method is not enabled.');
    requireOctetStream(req);
    const { image, target } = await findImage(images, req.ctx, req.params.id);
    authorize(images, req, 'stage_image', target);
    const row = image.row;
    if (row.status !== 'queued') throw new Conflict(`Image status transition from ${row.status} to uploading is not allowed`);
    const owner = row.owner ?? '';
    const length = declaredLength(req);
    const room = owner ? (await images.quotas.enforce(owner, { image_stage_total: length ?? 0, image_count_uploading: 1 })).image_stage_total : Infinity;
    if (!(await transition(images, row.id, 'queued', 'uploading', { worker: images.workerId }))) throw new Conflict(`Image status transition from ${row.status} to uploading is not allowed`);
    const staging = stagingStore(images);
    let stored: Ingested | null = null;
    try {
      const cap = images.config.image.image_size_cap;
      stored = await ingest(staging, row.id, req.body as never, Math.min(cap, room), `Image exceeds the staging quota or the image size cap (${cap} bytes).`);
      const done = await images.db
        .updateTable('image')
        .set({ size: stored.size, worker: null, updated_at: isoNow() })
        .where('id', '=', row.id)
        .where('status', '=', 'uploading')
        .where('deleted_at', 'is', null)
        .executeTakeFirst();
      if (Number(done.numUpdatedRows) !== 1) throw new Gone(`Image ${row.id} could not be found after staging. The image may have been deleted meanwhile.`);
    } catch (err) {
      if (stored) await staging.delete(stored.url).catch(() => undefined);
      await images.db.updateTable('image').set({ status: 'queued', worker: null, updated_at: isoNow() }).where('id', '=', row.id).where('status', '=', 'uploading').execute();
      throw err;
    }
    reply.code(204);
  });
}
