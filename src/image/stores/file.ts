import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { StoreDataMissing, type ByteRange, type ImageStore, type StoredData } from './store.js';

/** Suffix of data still being written; such files are removed at start. */
const PARTIAL = '.partial-';

/**
 * Images as files in one directory, named by image id. Data is written to a
 * temporary name, fsynced, renamed into place and the directory fsynced, so
 * that an image is either wholly there or not at all, even after a crash.
 */
export class FileStore implements ImageStore {
  readonly type = 'file';
  readonly readOnly = false;

  constructor(
    readonly id: string,
    readonly dir: string,
    readonly description: string,
  ) {}

  /** Creates the directory and removes what an interrupted write left. */
  async open(): Promise<void> {
    await fsp.mkdir(this.dir, { recursive: true, mode: 0o700 });
    for (const name of await fsp.readdir(this.dir)) {
      if (name.includes(PARTIAL)) await fsp.rm(path.join(this.dir, name), { force: true });
    }
  }

  async add(imageId: string, source: Readable): Promise<StoredData> {
    const final = path.join(this.dir, imageId);
    const partial = `${final}${PARTIAL}${randomBytes(6).toString('hex')}`;
    let size = 0;
    try {
      const out = fs.createWriteStream(partial, { flags: 'wx', mode: 0o600, highWaterMark: 1 << 20 });
      await pipeline(source, out);
      size = out.bytesWritten;
      // fsync works on the file, whichever descriptor asks: the data is on disk before the rename.
      const handle = await fsp.open(partial, 'r+');
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
    } catch (err) {
      await fsp.rm(partial, { force: true });
      throw err;
    }
    await fsp.rename(partial, final);
    await syncDir(this.dir);
    return { url: pathToFileURL(final).href, size };
  }

  async get(url: string, range?: ByteRange): Promise<Readable> {
    const file = this.pathOf(url);
    const handle = await fsp.open(file, 'r').catch((err: NodeJS.ErrnoException) => {
      throw err.code === 'ENOENT' ? new StoreDataMissing(`image data ${url} is missing`) : err;
    });
    return handle.createReadStream({ highWaterMark: 512 * 1024, ...(range ? { start: range.start, end: range.end } : {}) });
  }

  async size(url: string): Promise<number> {
    try {
      return (await fsp.stat(this.pathOf(url))).size;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new StoreDataMissing(`image data ${url} is missing`);
      throw err;
    }
  }

  async delete(url: string): Promise<void> {
    await fsp.rm(this.pathOf(url), { force: true });
  }

  localPath(url: string): string {
    return this.pathOf(url);
  }

  owns(url: string): boolean {
    if (!url.startsWith('file://')) return false;
    return path.dirname(fileURLToPath(url)) === this.dir;
  }

  private pathOf(url: string): string {
    const file = fileURLToPath(url);
    // Never read or remove outside the store's directory, whatever a location says.
    if (path.dirname(file) !== this.dir) throw new StoreDataMissing(`location ${url} is not in store ${this.id}`);
    return file;
  }
}

/** Makes a rename in a directory durable. */
export async function syncDir(dir: string): Promise<void> {
  const handle = await fsp.open(dir, fs.constants.O_RDONLY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
