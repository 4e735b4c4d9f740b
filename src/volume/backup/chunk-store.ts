import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { BackupAccess } from './driver.js';

/**
 * Where a chunked backup puts its objects: containers of named objects in
 * one account (object storage through the Swift API, or memory for tests).
 */
export interface ChunkStore {
  /** Creates the container when missing. */
  ensureContainer(container: string): Promise<void>;
  /** Stores the stream's bytes as the object; answers the store's MD5 of them (the ETag), when it gives one. */
  put(container: string, name: string, data: Readable): Promise<{ etag: string | null }>;
  /** The object's bytes; throws {@link ObjectMissing} when there is no such object. */
  get(container: string, name: string): Promise<Readable>;
  /** Removes the object; succeeds when it is absent. */
  delete(container: string, name: string): Promise<void>;
  /** The names of the container's objects that start with `prefix` ([] when the container is missing). */
  list(container: string, prefix: string): Promise<string[]>;
}

/** Opens the store of an account: `project` names the project whose account it is (null: the service's own). */
export type ChunkStoreOpener = (project: string | null, access: BackupAccess) => ChunkStore;

/** No such object (or container) in the store. */
export class ObjectMissing extends Error {
  constructor(container: string, name: string) {
    super(`Object ${name} was not found in container ${container}.`);
    this.name = 'ObjectMissing';
  }
}

/**
 * A store in memory, shared by key (a data directory) so that a backup
 * manager started again in the same process finds its objects, as with a
 * real store. Objects are kept whole: for tests and small volumes only.
 */
export class MemoryChunkStore {
  private static readonly stores = new Map<string, MemoryChunkStore>();
  /** Objects by account, container and name. */
  readonly accounts = new Map<string, Map<string, Map<string, Buffer>>>();
  /** Every call made, in order (`put:<container>/<name>`), the last 10,000. */
  readonly calls: string[] = [];
  private readonly failures: string[] = [];

  /** The store of that key, made on first use. */
  static shared(key: string): MemoryChunkStore {
    let store = MemoryChunkStore.stores.get(key);
    if (!store) {
      store = new MemoryChunkStore();
      MemoryChunkStore.stores.set(key, store);
    }
    return store;
  }

  /** Makes the next put fail with `message`. */
  failNextPut(message = 'fake object store failure'): void {
    this.failures.push(message);
  }

  /** The objects of one container of an account (for tests). */
  objects(project: string | null, container: string): Map<string, Buffer> {
    return this.accounts.get(project ?? '')?.get(container) ?? new Map<string, Buffer>();
  }

  /** The store of one account. */
  open(project: string | null): ChunkStore {
    const account = project ?? '';
    const containers = (): Map<string, Map<string, Buffer>> => {
      let found = this.accounts.get(account);
      if (!found) {
        found = new Map();
        this.accounts.set(account, found);
      }
      return found;
    };
    const record = (call: string): void => {
      if (this.calls.length >= 10_000) this.calls.splice(0, 1000);
      this.calls.push(call);
    };
    return {
      ensureContainer: async (container) => {
        record(`container:${container}`);
        if (!containers().has(container)) containers().set(container, new Map());
      },
      put: async (container, name, data) => {
        record(`put:${container}/${name}`);
        const parts: Buffer[] = [];
        for await (const chunk of data) parts.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array));
        const failure = this.failures.shift();
        if (failure !== undefined) throw new Error(failure);
        const objects = containers().get(container);
        if (!objects) throw new ObjectMissing(container, name);
        const bytes = Buffer.concat(parts);
        objects.set(name, bytes);
        return { etag: createHash('md5').update(bytes).digest('hex') };
      },
      get: async (container, name) => {
        record(`get:${container}/${name}`);
        const bytes = containers().get(container)?.get(name);
        if (!bytes) throw new ObjectMissing(container, name);
        return Readable.from([bytes]);
      },
      delete: async (container, name) => {
        record(`delete:${container}/${name}`);
        containers().get(container)?.delete(name);
      },
      list: async (container, prefix) => [...(containers().get(container)?.keys() ?? [])].filter((n) => n.startsWith(prefix)).sort(),
    };
  }
}
