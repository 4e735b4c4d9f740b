import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import type { Logger } from '../../../core/logging.js';
import type { BaseImage } from './guest-record.js';
import { guestPaths, isGuestName, readRecord } from './guest-record.js';
import { run } from '../../../core/host-commands.js';

/**
 * The per-host cache of base images (Nova's `_base`): each image is
 * downloaded once from the image service, its checksum verified, and kept
 * as `<cache>/<sha1(image id)>` with `<name>.info` saying its format and
 * size. Guests' disks are qcow2 overlays on these files. Concurrent spawns
 * of one image share one download.
 */

/** How the driver reaches the image service: its endpoint and a token (the `nova` user's, from the service client). */
export interface ImageServiceAccess {
  endpoint(serviceType: string): Promise<string>;
  token(): Promise<string>;
}

/** What the image service says of an image. */
interface ImageInfo {
  status?: string;
  disk_format?: string | null;
  checksum?: string | null;
  os_hash_algo?: string | null;
  os_hash_value?: string | null;
}

/** Formats qemu opens directly; anything else qemu-img reads is converted to qcow2 once, in the cache. */
const DIRECT_FORMATS = new Set(['qcow2', 'raw']);
const CONVERTIBLE_FORMATS: Record<string, string> = { vmdk: 'vmdk', vdi: 'vdi', vhd: 'vpc', vhdx: 'vhdx' };
const HASHES = new Set(['md5', 'sha1', 'sha224', 'sha256', 'sha384', 'sha512']);

/** The cache's file name of an image (as Nova names its base files). */
export function baseName(imageId: string): string {
  return createHash('sha1').update(imageId).digest('hex');
}

/** The base image cache of one host (see the module comment); `fetch` is safe to call concurrently. */
export class ImageCache {
  private readonly downloads = new Map<string, Promise<BaseImage>>();

  constructor(
    readonly dir: string,
    private readonly access: ImageServiceAccess,
    private readonly qemuImg: string,
    private readonly log: Logger,
  ) {}

  /**
   * The cached base of `imageId`, downloaded when missing. Touches it (its
   * mtime is its last use, for the cleanup). Throws when the image is not
   * active, its data does not match its checksum, or its format is unusable;
   * nothing is left in the cache then.
   */
  async fetch(imageId: string): Promise<BaseImage> {
    const cached = await this.cached(imageId);
    if (cached) {
      const now = new Date();
      await fs.utimes(cached.path, now, now).catch(() => undefined);
      return cached;
    }
    let download = this.downloads.get(imageId);
    if (!download) {
      download = this.download(imageId).finally(() => this.downloads.delete(imageId));
      this.downloads.set(imageId, download);
    }
    return download;
  }

  /** The cached base of `imageId`, or null. */
  async cached(imageId: string): Promise<BaseImage | null> {
    const file = path.join(this.dir, baseName(imageId));
    const info = await fs.readFile(`${file}.info`, 'utf8').catch(() => null);
    if (info === null || !(await fs.stat(file).catch(() => null))) return null;
    try {
      const parsed = JSON.parse(info) as { format: string; virtual_size: number };
      return { imageId, path: file, format: parsed.format, virtualSize: parsed.virtual_size };
    } catch {
      return null;
    }
  }

  private async download(imageId: string): Promise<BaseImage> {
    await fs.mkdir(this.dir, { recursive: true });
    const base = await this.access.endpoint('image');
    const headers = { 'X-Auth-Token': await this.access.token(), 'User-Agent': 'stratus-compute-agent' };
    const metaRes = await fetch(`${base}/v2/images/${encodeURIComponent(imageId)}`, { headers });
    if (metaRes.status === 404) throw new Error(`Image ${imageId} could not be found.`);
    if (metaRes.status !== 200) throw new Error(`The image service answered ${metaRes.status} for image ${imageId}.`);
    const image = (await metaRes.json()) as ImageInfo;
    if (image.status !== 'active') throw new Error(`Image ${imageId} is not active.`);
    const diskFormat = image.disk_format ?? '';
    if (!DIRECT_FORMATS.has(diskFormat) && !(diskFormat in CONVERTIBLE_FORMATS)) throw new Error(`Image ${imageId} has disk format '${diskFormat}', which the qemu driver cannot boot.`);

    const file = path.join(this.dir, baseName(imageId));
    const part = `${file}.part-${randomBytes(4).toString('hex')}`;
    try {
      const started = Date.now();
      const res = await fetch(`${base}/v2/images/${encodeURIComponent(imageId)}/file`, { headers });
      if (res.status !== 200 || !res.body) {
        await res.body?.cancel().catch(() => undefined);
        throw new Error(res.status === 204 ? `Image ${imageId} has no data.` : `The image service answered ${res.status} for the data of image ${imageId}.`);
      }
      const algo = image.os_hash_algo && image.os_hash_value && HASHES.has(image.os_hash_algo) ? image.os_hash_algo : image.checksum ? 'md5' : null;
      const expected = algo === image.os_hash_algo ? image.os_hash_value : image.checksum;
      const hash = algo ? createHash(algo) : null;
      let bytes = 0;
      const hasher = new Transform({
        transform(chunk: Buffer, _enc, done) {
          hash?.update(chunk);
          bytes += chunk.length;
          done(null, chunk);
        },
      });
      await pipeline(Readable.fromWeb(res.body as WebReadableStream<Uint8Array>), hasher, createWriteStream(part, { mode: 0o644 }));
      const actual = hash?.digest('hex');
      if (hash && actual !== expected) throw new Error(`Image ${imageId} failed verification: its ${algo} is ${actual}, the image service says ${expected ?? ''}.`);
      if (!hash) this.log.warn({ image_id: imageId }, 'the image has no checksum: its data could not be verified');
      let format = diskFormat;
      if (!DIRECT_FORMATS.has(format)) {
        const converted = `${part}.qcow2`;
        await run(this.qemuImg, ['convert', '-q', '-f', CONVERTIBLE_FORMATS[format] ?? format, '-O', 'qcow2', part, converted]);
        await fs.rename(converted, part);
        format = 'qcow2';
      }
      const info = await imageInfo(this.qemuImg, part, format);
      await fs.writeFile(`${file}.info`, JSON.stringify({ image_id: imageId, format, virtual_size: info.virtualSize }));
      await fs.rename(part, file);
      this.log.info({ image_id: imageId, bytes, format, ms: Date.now() - started }, 'base image downloaded into the cache');
      return { imageId, path: file, format, virtualSize: info.virtualSize };
    } catch (err) {
      await fs.rm(part, { force: true });
      await fs.rm(`${part}.qcow2`, { force: true });
      throw err;
    }
  }
}

/**
 * What `qemu-img info` says of a base in `format` (never probed: a raw
 * image that looks like qcow2 must stay raw). A qcow2 image that names a
 * backing or data file is refused: it could make a guest read host files.
 */
export async function imageInfo(qemuImg: string, file: string, format: string): Promise<{ virtualSize: number }> {
  const info = JSON.parse(await run(qemuImg, ['info', '--output=json', '-U', '-f', format, file])) as {
    'virtual-size': number;
    'backing-filename'?: string;
    'format-specific'?: { data?: { 'data-file'?: string } };
  };
  if (info['backing-filename'] || info['format-specific']?.data?.['data-file']) throw new Error('the image refers to another file (a backing or data file), which is not allowed');
  return { virtualSize: info['virtual-size'] };
}

/**
 * Removes the bases no guest directory uses (as root disk or rescue disk)
 * whose last use is older than `maxAgeSeconds`, and downloads abandoned
 * for a day. Returns the image ids removed. Safe while guests run: a base
 * in use is never touched.
 */
export async function cleanImageCache(cacheDir: string, instancesPath: string, maxAgeSeconds: number, log?: Logger): Promise<string[]> {
  const used = new Set<string>();
  for (const name of await fs.readdir(instancesPath).catch(() => [] as string[])) {
    if (!isGuestName(name)) continue;
    // A guest being made has no record yet, but its base was touched when fetched: the age keeps it.
    const record = await readRecord(guestPaths(instancesPath, name));
    if (record === null) continue;
    if (record.root.kind === 'image') used.add(path.basename(record.root.base.path));
    if (record.rescue) used.add(path.basename(record.rescue.base.path));
  }
  const removed: string[] = [];
  const now = Date.now();
  for (const name of await fs.readdir(cacheDir).catch(() => [] as string[])) {
    const file = path.join(cacheDir, name);
    const stat = await fs.stat(file).catch(() => null);
    if (!stat) continue;
    if (name.includes('.part-')) {
      if (now - stat.mtimeMs > 86_400_000) await fs.rm(file, { force: true });
      continue;
    }
    if (!/^[0-9a-f]{40}$/.test(name) || used.has(name) || now - stat.mtimeMs < maxAgeSeconds * 1000) continue;
    const imageId = await fs
      .readFile(`${file}.info`, 'utf8')
      .then((text) => (JSON.parse(text) as { image_id?: string }).image_id ?? name)
      .catch(() => name);
    await fs.rm(`${file}.info`, { force: true });
    await fs.rm(file, { force: true });
    removed.push(imageId);
    log?.info({ image_id: imageId, base: file }, 'removed an unused base image from the cache');
  }
  return removed;
}
