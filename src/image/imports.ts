import fs from 'node:fs';
import fsp from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import type { FastifyRequest } from 'fastify';
import type { RequestContext } from '../core/auth/context.js';
import { BadRequest, Conflict } from '../core/errors.js';
import { activate, addLocation, stagedPath, stagingStore, transition } from './api/data.js';
import { notifyImage } from './api/images.js';
import { checkData } from './checks.js';
import { isoNow, newUuid, UUID_PATTERN } from './common.js';
import { convertImage, inspectImage } from './formats/inspect.js';
import { authorize, type ImageService } from './image.js';
import { ingest, type Ingested } from './ingest.js';
import { findImage, loadImage } from './repository.js';
import type { ImageStore } from './stores/index.js';

/** What `POST /v2/images/{id}/import` asked for, once checked. */
interface ImportRequest {
  method: string;
  params: Record<string, unknown>;
  stores: ImageStore[];
  allStores: boolean;
  mustSucceed: boolean;
}

const LOCK = 'os_glance_import_task';
const IMPORTING = 'os_glance_importing_to_stores';
const FAILED = 'os_glance_failed_import';

/** True when `web-download` may fetch this URI (Glance's `import_filtering_opts`). */
export function uriAllowed(images: ImageService, uri: string): boolean {
  const rules = images.config.image.web_download;
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return false;
  }
  const scheme = url.protocol.replace(/:$/, '');
  if (!rules.allowed_schemes.includes(scheme)) return false;
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (rules.allowed_hosts.length && !rules.allowed_hosts.includes(host)) return false;
  if (rules.disallowed_hosts.includes(host)) return false;
  const port = url.port ? Number(url.port) : scheme === 'https' ? 443 : 80;
  return rules.allowed_ports.length === 0 || rules.allowed_ports.map(Number).includes(port);
}

function parseRequest(images: ImageService, req: FastifyRequest): ImportRequest {
  const body = req.body as Record<string, unknown> | undefined;
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new BadRequest('Body expected in request.');
  const method = body.method as Record<string, unknown> | undefined;
  if (!method || typeof method !== 'object') throw new BadRequest("Import request requires a 'method' field.");
  const name = method.name;
  if (typeof name !== 'string') throw new BadRequest("Import request requires a 'name' field.");
  if (!images.config.image.import_methods.includes(name)) throw new BadRequest(`Unknown import method name '${name}'.`);
  const mustSucceed = body.all_stores_must_succeed ?? true;
  if (typeof mustSucceed !== 'boolean') throw new BadRequest("'all_stores_must_succeed' must be boolean value only");
  const allStores = body.all_stores ?? false;
  if (typeof allStores !== 'boolean') throw new BadRequest("'all_stores' must be boolean value only");
  let ids: string[];
  if (allStores) {
    if (body.stores !== undefined) throw new BadRequest('All_stores parameter can\'t be used with x-image-meta-store header or stores parameter');
    ids = images.stores.writable().map((s) => s.id);
  } else if (body.stores !== undefined) {
    if (!Array.isArray(body.stores) || body.stores.some((s) => typeof s !== 'string')) throw new BadRequest("'stores' must be a list of store identifiers");
    ids = body.stores as string[];
  } else {
    const header = req.headers['x-image-meta-store'];
    ids = [typeof header === 'string' && header ? header : images.stores.defaultId];
  }
  const stores = [...new Set(ids)].map((id) => {
    const store = images.stores.all.get(id);
    if (!store || store.readOnly) throw new Conflict(`Store for scheme ${id} not found`);
    return store;
  });
  return { method: name, params: method, stores, allStores, mustSucceed };
}

/**
 * Validates an import request, takes the image's import lock, records the
 * task and starts the work in the background; the caller answers 202.
 */
export async function startImport(images: ImageService, req: FastifyRequest, id: string): Promise<void> {
  const request = parseRequest(images, req);
  const ctx = req.ctx;
  const { image, target } = await findImage(images, ctx, id);
  const row = image.row;
  const { method } = request;
  if (row.owner) await images.quotas.enforce(row.owner, { image_size_total: 0 });
  if (row.status === 'active' && method !== 'copy-image') throw new Conflict('Image with status active cannot be target for import');
  if (row.status !== 'active' && method === 'copy-image') throw new Conflict('Only images with status active can be targeted for copying');
  if (row.status !== 'queued' && (method === 'web-download' || method === 'glance-download')) throw new Conflict(`Image needs to be in 'queued' state to use '${method}' method`);
  if (row.status !== 'uploading' && method === 'glance-direct') throw new Conflict("Image needs to be staged before 'glance-direct' method can be used");
  if (!row.container_format) throw new Conflict("'container_format' needs to be set before import");
  if (!row.disk_format) throw new Conflict("'disk_format' needs to be set before import");
  if (method === 'glance-download') {
    if (!('glance_region' in request.params)) throw new BadRequest("'glance_region' needs to be set for glance-download import method");
    if (!('glance_image_id' in request.params)) throw new BadRequest("'glance_image_id' needs to be set for glance-download import method");
    if (typeof request.params.glance_image_id !== 'string' || !UUID_PATTERN.test(request.params.glance_image_id)) {
      throw new BadRequest(`Remote image id does not look like a UUID: ${String(request.params.glance_image_id)}`);
    }
    request.params.glance_service_interface ??= 'public';
  }
  authorize(images, req, method === 'copy-image' ? 'copy_image' : 'import_image', target);
  authorize(images, req, 'modify_image', target);
  let stores = request.stores;
  if (method === 'copy-image') {
    const present = new Set(image.locations.map((l) => l.store));
    if (request.allStores) stores = stores.filter((s) => !present.has(s.id));
    else {
      const already = stores.find((s) => present.has(s.id));
      if (already) throw new BadRequest(`Image is already present at store '${already.id}'`);
    }
  }
  if (method === 'web-download') {
    const uri = request.params.uri;
    if (typeof uri !== 'string' || !uriAllowed(images, uri)) throw new BadRequest(`URI for web-download does not pass filtering: ${String(uri)}`);
  }

  const taskId = newUuid();
  const now = isoNow();
  try {
    await images.db.insertInto('image_property').values({ image_id: id, name: LOCK, value: taskId }).execute();
  } catch {
    throw new Conflict(`New operation on image '${id}' is not permitted as prior operation is still in progress`);
  }
  const body = req.body as Record<string, unknown>;
  await images.db
    .insertInto('image_task')
    .values({
      id: taskId,
      image_id: id,
      type: 'api_image_import',
      status: 'processing',
      input: JSON.stringify({ image_id: id, import_req: body, backend: stores.map((s) => s.id) }),
      result: null,
      message: '',
      owner: ctx.projectId ?? '',
      user_id: ctx.userId,
      request_id: req.requestId,
      created_at: now,
      updated_at: now,
      expires_at: null,
    })
    .execute();
  await setProperties(images, id, { [IMPORTING]: stores.map((s) => s.id).join(','), [FAILED]: '' });
  if (method !== 'copy-image') {
    const from = row.status;
    if (!(await transition(images, id, from, 'importing', { worker: images.workerId }))) {
      await finishTask(images, taskId, 'failure', `Image status changed from ${from} before the import started`);
      await images.db.deleteFrom('image_property').where('image_id', '=', id).where('name', '=', LOCK).execute();
      throw new Conflict(`Image status transition from ${from} to importing is not allowed`);
    }
  }
  const work = runImport(images, ctx, taskId, id, { ...request, stores }).catch((err: unknown) => images.log.error({ err, image_id: id }, 'image import crashed'));
  images.running.add(work);
  void work.finally(() => images.running.delete(work));
}

async function setProperties(images: ImageService, id: string, properties: Record<string, string | null>): Promise<void> {
  await images.db.transaction().execute(async (trx) => {
    const names = Object.keys(properties);
    await trx.deleteFrom('image_property').where('image_id', '=', id).where('name', 'in', names).execute();
    const rows = Object.entries(properties)
      .filter((entry): entry is [string, string] => entry[1] !== null)
      .map(([name, value]) => ({ image_id: id, name, value }));
    if (rows.length) await trx.insertInto('image_property').values(rows).execute();
    await trx.updateTable('image').set({ updated_at: isoNow() }).where('id', '=', id).execute();
  });
}

async function finishTask(images: ImageService, taskId: string, status: 'success' | 'failure', message: string, result: unknown = null): Promise<void> {
  await images.db
    .updateTable('image_task')
    .set({ status, message, result: result === null ? null : JSON.stringify(result), updated_at: isoNow(), expires_at: new Date(Date.now() + 48 * 3600_000).toISOString().replace(/Z$/, '000Z') })
    .where('id', '=', taskId)
    .execute();
}

/** Fetches `uri` into the staging area (web-download), capped at the image size cap. */
async function download(images: ImageService, id: string, uri: string, headers: Record<string, string> = {}): Promise<void> {
  const response = await fetch(uri, { headers, redirect: 'follow' });
  if (!response.ok || !response.body) throw new Error(`${uri} answered ${response.status} ${response.statusText}`);
  const cap = images.config.image.image_size_cap;
  await ingest(stagingStore(images), id, Readable.fromWeb(response.body as WebReadableStream<Uint8Array>), cap, `the data at ${uri} is larger than the image size cap (${cap} bytes)`);
}

/** glance-download: reads the source image's record and data from the image service of another (or this) region. */
async function downloadFromGlance(images: ImageService, ctx: RequestContext, id: string, params: Record<string, unknown>): Promise<Record<string, unknown>> {
  const region = String(params.glance_region);
  const iface = String(params.glance_service_interface ?? 'public');
  const catalog = await images.client.catalog();
  const endpoint = catalog
    .filter((entry) => entry.type === 'image')
    .flatMap((entry) => entry.endpoints)
    .find((ep) => ep.interface === iface && (ep.region_id === region || ep.region === region));
  if (!endpoint) throw new Error(`no image endpoint with interface '${iface}' in region '${region}'`);
  const base = endpoint.url.replace(/\/+$/, '');
  const headers = { 'X-Auth-Token': ctx.authToken };
  const source = `${base}/v2/images/${String(params.glance_image_id)}`;
  const meta = await fetch(source, { headers: { ...headers, Accept: 'application/json' } });
  if (meta.status !== 200) throw new Error(`image ${String(params.glance_image_id)} in region ${region}: ${meta.status} ${meta.statusText}`);
  const record = (await meta.json()) as Record<string, unknown>;
  await download(images, id, `${source}/file`, headers);
  return record;
}

/** Glance's `glance_download_properties`: which source properties a glance-download copies. */
function copied(images: ImageService, record: Record<string, unknown>): Record<string, string> {
  const patterns = images.config.image.glance_download_properties.map((p) => new RegExp(`^${p.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replaceAll('*', '.*')}$`));
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(record)) {
    if (typeof value === 'string' && patterns.some((re) => re.test(name))) out[name] = value;
  }
  return out;
}

/**
 * The import itself: get the data into staging (web-download,
 * glance-download) or use what was staged (glance-direct) or what is stored
 * (copy-image); check it with qemu-img and convert it when configured; copy
 * it into each target store. The task and the image's `os_glance_*`
 * properties say how it went; on failure the image returns to `queued`.
 */
async function runImport(images: ImageService, ctx: RequestContext, taskId: string, id: string, request: ImportRequest): Promise<void> {
  const log = images.log.child({ image_id: id, task_id: taskId, method: request.method });
  const staged = stagedPath(images, id);
  const copying = request.method === 'copy-image';
  const failed: string[] = [];
  const remaining = request.stores.map((s) => s.id);
  /** Data this import stored that no image record points at yet (removed if it fails). */
  let written: { store: ImageStore; url: string }[] = [];
  try {
    if (request.method === 'web-download') await download(images, id, String(request.params.uri));
    if (request.method === 'glance-download') {
      const record = await downloadFromGlance(images, ctx, id, request.params);
      await setProperties(images, id, copied(images, record));
      await images.db
        .updateTable('image')
        .set({ disk_format: (record.disk_format as string | null) ?? null, container_format: (record.container_format as string | null) ?? null })
        .where('id', '=', id)
        .execute();
    }
    const image = await loadImage(images.db, id);
    if (!image) throw new Error('the image was deleted during the import');
    let virtualSize: number | null = image.row.virtual_size;
    let source: () => Promise<Readable>;
    if (copying) {
      const location = image.locations[0];
      const store = location ? images.stores.forUrl(location.url) : undefined;
      if (!location || !store) throw new Error('the image has no data to copy');
      source = () => store.get(location.url);
    } else {
      if (!fs.existsSync(staged)) throw new Error('no staged data was found for the image');
      virtualSize = await checkData(images, staged, image.row.disk_format, image.row.container_format);
      const target = images.config.image.convert_to;
      if (target === 'raw' || target === 'qcow2') {
        const info = await inspectImage(staged, { qemuImg: images.config.image.qemu_img });
        if (info.format !== target && image.row.container_format === 'bare') {
          await convertImage(staged, `${staged}.converted`, target, { qemuImg: images.config.image.qemu_img });
          await fsp.rename(`${staged}.converted`, staged);
          await images.db.updateTable('image').set({ disk_format: target }).where('id', '=', id).execute();
          log.info({ from: info.format, to: target }, 'converted image data during import');
        }
      }
      source = async () => fs.createReadStream(staged, { highWaterMark: 1 << 20 });
    }

    // Every target store first; the image record changes only once the data is in.
    const stored: (Ingested & { store: ImageStore })[] = [];
    for (const store of request.stores) {
      try {
        const data = await ingest(store, id, await source(), Infinity, '');
        stored.push({ ...data, store });
        written.push({ store, url: data.url });
      } catch (err) {
        log.warn({ err, store: store.id }, 'import into a store failed');
        if (request.mustSucceed) throw err;
        failed.push(store.id);
      }
      remaining.splice(remaining.indexOf(store.id), 1);
      await setProperties(images, id, { [IMPORTING]: remaining.join(','), [FAILED]: failed.join(',') });
    }
    // (copy-image may have had nothing to do: the image was in every store already)
    if (stored.length === 0 && request.stores.length > 0) throw new Error(`the data could not be stored in any of ${request.stores.map((s) => s.id).join(', ')}`);
    const [first, ...others] = stored;
    if (!copying && first && !(await activate(images, id, 'importing', { ...first, store: first.store.id }, virtualSize))) throw new Error('the image was deleted during the import');
    for (const data of copying ? stored : others) {
      await addLocation(images.db, id, data.store.id, data.url);
    }
    written = [];
    await fsp.rm(staged, { force: true });
    await setProperties(images, id, { [LOCK]: null, [IMPORTING]: '', [FAILED]: failed.join(',') });
    await finishTask(images, taskId, 'success', '', { image_id: id });
    const done = await loadImage(images.db, id);
    if (done) notifyImage(images, copying ? 'image.update' : 'image.activate', done);
    log.info({ stores: request.stores.map((s) => s.id), failed }, 'image import finished');
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    log.warn({ err }, 'image import failed');
    for (const w of written) await w.store.delete(w.url).catch(() => undefined);
    await fsp.rm(staged, { force: true });
    await fsp.rm(`${staged}.converted`, { force: true });
    if (!copying) {
      // The client can try again from the start.
      await images.db.updateTable('image').set({ status: 'queued', worker: null, size: null, updated_at: isoNow() }).where('id', '=', id).where('status', '=', 'importing').execute();
    }
    await setProperties(images, id, { [LOCK]: null, [IMPORTING]: '', [FAILED]: [...new Set([...failed, ...remaining])].join(',') }).catch(() => undefined);
    await finishTask(images, taskId, 'failure', message);
  }
}

/** The tasks of an image (Image API 2.12). */
export async function imageTasks(images: ImageService, req: FastifyRequest, id: string): Promise<unknown[]> {
  const { target } = await findImage(images, req.ctx, id);
  authorize(images, req, 'get_image', target);
  return images.db.selectFrom('image_task').selectAll().where('image_id', '=', id).orderBy('created_at').execute();
}

/**
 * After a crash or restart: images this worker held in `saving` or
 * `importing` go back to `queued` (their partial data is gone) and their
 * tasks fail, so that clients can try again.
 */
export async function recoverInterrupted(images: ImageService): Promise<void> {
  const held = await images.db.selectFrom('image').select(['id', 'status']).where('worker', '=', images.workerId).where('status', 'in', ['saving', 'importing']).execute();
  for (const row of held) {
    await images.db.updateTable('image').set({ status: 'queued', worker: null, size: null, updated_at: isoNow() }).where('id', '=', row.id).execute();
    await fsp.rm(stagedPath(images, row.id), { force: true });
    const tasks = await images.db.selectFrom('image_task').select('id').where('image_id', '=', row.id).where('status', '=', 'processing').execute();
    for (const task of tasks) await finishTask(images, task.id, 'failure', 'The image service restarted during the import.');
    await setProperties(images, row.id, { [LOCK]: null, [IMPORTING]: '' });
    images.log.warn({ image_id: row.id, status: row.status }, 'an interrupted upload or import was reset to queued');
  }
}

