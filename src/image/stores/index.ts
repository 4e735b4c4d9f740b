import path from 'node:path';
import type { ImageConfig } from '../../core/config.js';
import { FileStore } from './file.js';
import { HttpStore } from './http.js';
import { DEFAULT_SEGMENT_SIZE, ObjectStore, type ObjectStoreConnection } from './object.js';
import type { ImageStore } from './store.js';

export type { ByteRange, ImageStore, StoredData } from './store.js';
export { StoreDataMissing } from './store.js';
export { FileStore } from './file.js';
export { HttpStore } from './http.js';
export { ObjectStore, type ObjectStoreConnection } from './object.js';

/** The configured stores, by id, and which one takes data by default. */
export interface Stores {
  all: Map<string, ImageStore>;
  defaultId: string;
  /** The store that holds a location URL, if any. */
  forUrl(url: string): ImageStore | undefined;
  /** Stores that can take data. */
  writable(): ImageStore[];
}

/**
 * Builds the stores of the configuration (creating file stores'
 * directories). Throws on a configuration that cannot work: an unknown type,
 * no writable store, a default that is not a writable store, an `object`
 * store without `objectStorage` (how to reach object storage: the image
 * service's catalog endpoint and token).
 */
export async function openStores(config: ImageConfig, dataDir: string, options: { objectStorage?: ObjectStoreConnection } = {}): Promise<Stores> {
  const all = new Map<string, ImageStore>();
  for (const [id, spec] of Object.entries(config.stores)) {
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(id)) throw new Error(`image store id '${id}' must be 1-64 letters, digits, '_' or '-'`);
    const description = spec.description ?? `${spec.type} store ${id}`;
    if (spec.type === 'file') {
      const store = new FileStore(id, path.resolve(spec.path || path.join(dataDir, 'images', id)), description);
      await store.open();
      all.set(id, store);
    } else if (spec.type === 'http') {
      all.set(id, new HttpStore(id, description));
    } else if (spec.type === 'object') {
      if (!options.objectStorage) throw new Error(`image store '${id}': an object store needs the image service's connection to object storage`);
      const segmentSize = spec.segment_size === undefined ? DEFAULT_SEGMENT_SIZE : Number(spec.segment_size);
      all.set(id, new ObjectStore(id, description, { container: spec.container || 'glance', segmentSize, connection: options.objectStorage }));
    } else {
      throw new Error(`image store '${id}': unknown type '${String((spec as { type: unknown }).type)}' (file, http or object)`);
    }
  }
  // Web locations are readable even without a configured http store.
  const webLocations = new HttpStore('http', 'web locations');
  const writable = (): ImageStore[] => [...all.values()].filter((s) => !s.readOnly);
  const first = writable()[0];
  if (!first) throw new Error('no writable image store is configured');
  const defaultId = config.default_store || first.id;
  const chosen = all.get(defaultId);
  if (!chosen || chosen.readOnly) throw new Error(`image default_store '${defaultId}' is not a writable configured store`);
  return {
    all,
    defaultId,
    forUrl: (url) => [...all.values()].find((s) => s.owns(url)) ?? (/^https?:\/\//i.test(url) ? webLocations : undefined),
    writable,
  };
}
