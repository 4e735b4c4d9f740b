import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { loadHashDir, objectDir, removeObsolete } from './diskfile-format.js';

/**
 * What replication and auditing need of a device's objects: suffix hashes
 * (REPLICATE), listings of partitions, suffixes and hashes, quarantine, and
 * the cleanup of stale temporary files.
 */

/**
 * Removes temporary files older than `maxAgeMs` from `<device>/tmp`: uploads
 * that a crash (or a killed process) left behind. Never visible as objects;
 * this only frees their space. Returns how many were removed.
 */
export async function cleanTmp(devicePath: string, maxAgeMs = 3600_000): Promise<number> {
  const dir = path.join(devicePath, 'tmp');
  let names: string[];
  try {
    names = await fs.promises.readdir(dir);
  } catch {
    return 0;
  }
  const cutoff = Date.now() - maxAgeMs;
  let removed = 0;
  for (const name of names) {
    const file = path.join(dir, name);
    try {
      const stat = await fs.promises.stat(file);
      if (stat.isFile() && stat.mtimeMs < cutoff) {
        await fs.promises.unlink(file);
        removed += 1;
      }
    } catch {
      // Gone meanwhile.
    }
  }
  return removed;
}

const hashCache = new Map<string, Map<string, string | null>>();
const invalid = new Map<string, Set<string>>();

function partitionDir(devicePath: string, partition: number): string {
  return path.join(devicePath, 'objects', String(partition));
}

/**
 * Marks a suffix as changed so the next REPLICATE recomputes its hash. In
 * this process it only touches memory; `persist` also appends the suffix to
 * `<partition>/hashes.invalid`, which a server in another process reads
 * (workers that change files behind the server's back use it).
 */
export function invalidateSuffix(devicePath: string, partition: number, suffix: string, persist = false): void {
  const dir = partitionDir(devicePath, partition);
  let set = invalid.get(dir);
  if (!set) invalid.set(dir, (set = new Set()));
  set.add(suffix);
  if (persist) {
    try {
      fs.mkdirSync(dir, { recursive: true });
      fs.appendFileSync(path.join(dir, 'hashes.invalid'), `${suffix}\n`);
    } catch {
      // The partition is gone: nothing to rehash.
    }
  }
}

/**
 * The hash of one suffix directory: MD5 of its hash directories' names and
 * file names, in order; null when it holds nothing. Removes obsolete files
 * and empty hash directories on the way, as Swift's rehash does.
 */
export async function hashSuffix(devicePath: string, partition: number, suffix: string): Promise<string | null> {
  const dir = path.join(partitionDir(devicePath, partition), suffix);
  let hashes: string[];
  try {
    hashes = (await fs.promises.readdir(dir)).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  const md5 = createHash('md5');
  let any = false;
  for (const hash of hashes) {
    const state = await loadHashDir(path.join(dir, hash));
    await removeObsolete(state);
    const kept = state.files.filter((f) => !state.obsolete.includes(f)).sort();
    if (kept.length === 0) {
      await fs.promises.rmdir(state.dir).catch(() => undefined);
      continue;
    }
    any = true;
    md5.update(hash);
    for (const f of kept) md5.update(f);
  }
  if (!any) {
    await fs.promises.rmdir(dir).catch(() => undefined);
    return null;
  }
  return md5.digest('hex');
}

/** The suffixes of a partition on a device. */
export async function listSuffixes(devicePath: string, partition: number): Promise<string[]> {
  try {
    return (await fs.promises.readdir(partitionDir(devicePath, partition))).filter((n) => /^[0-9a-f]{3}$/.test(n)).sort();
  } catch {
    return [];
  }
}

/** The partitions a device holds objects of. */
export async function listPartitions(devicePath: string): Promise<number[]> {
  try {
    return (await fs.promises.readdir(path.join(devicePath, 'objects')))
      .filter((n) => /^\d+$/.test(n))
      .map(Number)
      .sort((a, b) => a - b);
  } catch {
    return [];
  }
}

/** The hash directories of a suffix. */
export async function listHashes(devicePath: string, partition: number, suffix: string): Promise<string[]> {
  try {
    return (await fs.promises.readdir(path.join(partitionDir(devicePath, partition), suffix))).filter((n) => /^[0-9a-f]{32}$/.test(n)).sort();
  } catch {
    return [];
  }
}

/** Suffix hashes of a partition computed from disk now (no cache): for a replicator comparing its own device. */
export async function computeHashes(devicePath: string, partition: number): Promise<Record<string, string | null>> {
  const out: Record<string, string | null> = {};
  for (const suffix of await listSuffixes(devicePath, partition)) {
    const h = await hashSuffix(devicePath, partition, suffix);
    if (h !== null) out[suffix] = h;
  }
  return out;
}

/**
 * The suffix hashes of a partition as REPLICATE answers them: cached in this
 * process, recomputed for the suffixes invalidated since (by this process or
 * in `hashes.invalid`) and for those in `recalculate`. The cache lives in
 * memory only, so a restart recomputes everything once.
 */
export async function getHashes(devicePath: string, partition: number, recalculate: string[] = []): Promise<Record<string, string | null>> {
  const dir = partitionDir(devicePath, partition);
  let cached = hashCache.get(dir);
  const toDo = new Set(recalculate);
  const mem = invalid.get(dir);
  if (mem) {
    for (const s of mem) toDo.add(s);
    invalid.delete(dir);
  }
  const invalidFile = path.join(dir, 'hashes.invalid');
  try {
    const text = await fs.promises.readFile(invalidFile, 'utf8');
    await fs.promises.unlink(invalidFile).catch(() => undefined);
    for (const line of text.split('\n')) if (/^[0-9a-f]{3}$/.test(line)) toDo.add(line);
  } catch {
    // No invalidations from other processes.
  }
  if (!cached) {
    cached = new Map();
    for (const suffix of await listSuffixes(devicePath, partition)) toDo.add(suffix);
    hashCache.set(dir, cached);
  }
  for (const suffix of toDo) {
    const h = await hashSuffix(devicePath, partition, suffix);
    if (h === null) cached.delete(suffix);
    else cached.set(suffix, h);
  }
  return Object.fromEntries(cached);
}

/**
 * Moves a hash directory to `<device>/quarantined/objects/<hash>` (a
 * numbered name when one is already there) and invalidates its suffix, so
 * the replicator brings a good copy back. Returns the new path, or null when
 * the directory was already gone.
 */
export async function quarantineHashDir(devicePath: string, partition: number, hash: string): Promise<string | null> {
  const source = objectDir(devicePath, partition, hash);
  const target = path.join(devicePath, 'quarantined', 'objects');
  await fs.promises.mkdir(target, { recursive: true });
  let dest = path.join(target, hash);
  if (fs.existsSync(dest)) dest = `${dest}-${randomBytes(4).toString('hex')}`;
  try {
    await fs.promises.rename(source, dest);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  invalidateSuffix(devicePath, partition, hash.slice(-3), true);
  return dest;
}

