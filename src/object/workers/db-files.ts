import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { forgetDb } from '../storage/broker-cache.js';
import { listDir, removeIfEmpty } from './context.js';

/** Account or container databases. */
export type DbKind = 'account' | 'container';

/** One db file of a device: `<device>/<kind>s/<partition>/<suffix>/<hash>/<hash>.db`. */
export interface DbFile {
  partition: number;
  hash: string;
  file: string;
}

/**
 * Every db of a kind on a device, partition by partition. Directories that
 * are not Swift's layout are skipped; a hash directory without its db is
 * skipped too (a db being created or removed).
 */
export async function* iterDbFiles(devicePath: string, kind: DbKind): AsyncGenerator<DbFile> {
  const root = path.join(devicePath, `${kind}s`);
  for (const part of await listDir(root)) {
    if (!/^\d+$/.test(part)) continue;
    for (const suffix of await listDir(path.join(root, part))) {
      if (!/^[0-9a-f]{3}$/.test(suffix)) continue;
      for (const hash of await listDir(path.join(root, part, suffix))) {
        if (!/^[0-9a-f]{32}$/.test(hash)) continue;
        const file = path.join(root, part, suffix, hash, `${hash}.db`);
        if (fs.existsSync(file)) yield { partition: Number(part), hash, file };
      }
    }
  }
}

/**
 * Removes a db's hash directory (the db with its WAL files) and the suffix
 * and partition directories it leaves empty. The storage servers of this
 * process drop their handles of it (`forgetDb`).
 */
export async function removeDbDir(db: DbFile): Promise<void> {
  const dir = path.dirname(db.file);
  await fs.promises.rm(dir, { recursive: true, force: true });
  forgetDb(db.file);
  await removeIfEmpty(path.dirname(dir));
  await removeIfEmpty(path.dirname(path.dirname(dir)));
}

/**
 * Moves a db's hash directory to `<device>/quarantined/<kind>s/<hash>` (a
 * numbered name when one is there already), as Swift quarantines a broken
 * db, and makes the storage servers of this process drop their handles of
 * it (`forgetDb`). Returns the new path, or null when it was gone.
 */
export async function quarantineDb(devicePath: string, kind: DbKind, db: DbFile): Promise<string | null> {
  const target = path.join(devicePath, 'quarantined', `${kind}s`);
  await fs.promises.mkdir(target, { recursive: true });
  let dest = path.join(target, db.hash);
  if (fs.existsSync(dest)) dest = `${dest}-${randomBytes(4).toString('hex')}`;
  try {
    await fs.promises.rename(path.dirname(db.file), dest);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  } finally {
    forgetDb(db.file);
  }
  await removeIfEmpty(path.dirname(path.dirname(db.file)));
  return dest;
}
