import fs from 'node:fs';
import path from 'node:path';
import type { DatabaseBroker } from './broker.js';

/**
 * The account and container servers keep their dbs open between requests.
 * A db file can vanish or be replaced under an open handle: the auditor
 * quarantines it, the replicator removes a handoff or reclaims a deleted
 * db, a replica is recreated in its place. A handle on such a file still
 * works (on Linux the inode lives on), so everything written through it
 * would be lost. Two guards:
 *
 * - `forgetDb(file)`: whoever moves, removes or (re)creates a db file in
 *   this process calls it (the workers, `createDb`); every cache of the
 *   process closes its handle at once.
 * - Each cached handle remembers the inode it opened and re-checks it (one
 *   `stat`) when it was last checked more than `checkIntervalMs` ago, which
 *   catches changes made by another process (the workers as their own role)
 *   within that interval without a `stat` on every request.
 */

interface Entry<B> {
  broker: B;
  dev: number;
  ino: number;
  checkedAt: number;
}

/** The caches of this process, for `forgetDb` (weak: a cache that is no longer used goes away by itself). */
const caches = new Set<WeakRef<BrokerCache<DatabaseBroker>>>();

/**
 * Closes every cached handle of `file` in this process (the next request
 * opens the file found at that path, or answers 404 when there is none).
 * Call it after moving, removing or replacing a db file. Idempotent, cheap
 * when the file is not cached.
 */
export function forgetDb(file: string): void {
  const target = path.resolve(file);
  for (const ref of caches) {
    const cache = ref.deref();
    if (cache) cache.forget(target);
    else caches.delete(ref);
  }
}

/** How often (ms) a cached handle checks that its file is still the one it opened (default). */
export const DEFAULT_DB_CHECK_INTERVAL_MS = 1000;

/**
 * Open brokers, least recently used evicted (closed) past `max`. A handle
 * whose file is gone or was replaced is closed and, when a file is there,
 * reopened (see the module comment).
 */
export class BrokerCache<B extends DatabaseBroker> {
  private readonly open = new Map<string, Entry<B>>();
  /** Set once a path that is not absolute and normalised was cached: only then must `forget` compare resolved paths. */
  private relativeKeys = false;
  private readonly self = new WeakRef<BrokerCache<DatabaseBroker>>(this as unknown as BrokerCache<DatabaseBroker>);

  constructor(
    private readonly opener: (file: string) => B,
    private readonly max = 512,
    /** How long a handle is trusted without a `stat` (0: checked on every `get`). */
    private readonly checkIntervalMs = DEFAULT_DB_CHECK_INTERVAL_MS,
  ) {
    caches.add(this.self);
  }

  /** The broker of an existing db, or null when the file does not exist. */
  get(file: string): B | null {
    const hit = this.open.get(file);
    if (hit) {
      const now = Date.now();
      if (now - hit.checkedAt < this.checkIntervalMs) {
        this.open.delete(file);
        this.open.set(file, hit);
        return hit.broker;
      }
      const stat = statOf(file);
      if (stat && stat.ino === hit.ino && stat.dev === hit.dev && hit.broker.db.open) {
        hit.checkedAt = now;
        this.open.delete(file);
        this.open.set(file, hit);
        return hit.broker;
      }
      this.evict(file);
    }
    return this.openFile(file);
  }

  private openFile(file: string): B | null {
    // A file replaced between the first stat and the open shows as another inode in the second: open again.
    for (let attempt = 0; attempt < 3; attempt++) {
      const before = statOf(file);
      if (!before) return null;
      let broker: B;
      try {
        broker = this.opener(file);
      } catch (err) {
        if (!fs.existsSync(file)) return null;
        throw err;
      }
      const after = statOf(file);
      if (!after || after.ino !== before.ino || after.dev !== before.dev) {
        broker.close();
        continue;
      }
      this.open.set(file, { broker, dev: after.dev, ino: after.ino, checkedAt: Date.now() });
      if (path.resolve(file) !== file) this.relativeKeys = true;
      if (this.open.size > this.max) {
        const oldest = this.open.keys().next();
        if (!oldest.done) this.evict(oldest.value);
      }
      return broker;
    }
    throw new Error(`db ${file} keeps being replaced`);
  }

  /** Closes and drops the handle of `file` (as given to `get`). */
  evict(file: string): void {
    this.open.get(file)?.broker.close();
    this.open.delete(file);
  }

  /** Closes and drops the handle of a file given as an absolute path (`forgetDb`). */
  forget(absolute: string): void {
    if (this.open.has(absolute)) this.evict(absolute);
    if (!this.relativeKeys) return;
    for (const key of [...this.open.keys()]) if (key !== absolute && path.resolve(key) === absolute) this.evict(key);
  }

  /** Closes every handle (the cache stays usable). */
  closeAll(): void {
    for (const e of this.open.values()) e.broker.close();
    this.open.clear();
  }
}

function statOf(file: string): fs.Stats | undefined {
  return fs.statSync(file, { throwIfNoEntry: false });
}
