import path from 'node:path';
import type { ServiceClient } from '../../core/auth/service-client.js';
import type { StratusConfig } from '../../core/config.js';
import { MemoryChunkStore } from './chunk-store.js';
import { ChunkedBackupDriver, COMPRESSIONS, type Compression } from './chunked.js';
import { BACKUP_SERVICES, isBackupDriverName, type BackupDriver } from './driver.js';
import { swiftStores } from './swift.js';

/**
 * The backup driver `volume.backup_driver` names: `object` (object storage
 * through the Swift API, found in `client`'s catalog) or `fake` (in memory,
 * shared per data directory). Throws on a bad configuration.
 */
export function createBackupDriver(config: StratusConfig, client: ServiceClient): BackupDriver {
  const v = config.volume;
  if (!isBackupDriverName(v.backup_driver)) throw new Error(`volume.backup_driver is "${v.backup_driver}": expected "object" or "fake"`);
  if (!COMPRESSIONS.includes(v.backup_compression as Compression)) throw new Error(`volume.backup_compression is "${v.backup_compression}": expected one of ${COMPRESSIONS.join(', ')}`);
  if (v.backup_swift_auth !== 'per_user' && v.backup_swift_auth !== 'single_user') throw new Error(`volume.backup_swift_auth is "${v.backup_swift_auth}": expected "per_user" or "single_user"`);
  const common = {
    defaultContainer: v.backup_container,
    chunkSize: v.backup_chunk_size,
    compression: v.backup_compression as Compression,
    perProject: v.backup_swift_auth === 'per_user',
  };
  if (v.backup_driver === 'fake') {
    const store = MemoryChunkStore.shared(path.resolve(config.data_dir));
    return new ChunkedBackupDriver({ ...common, service: BACKUP_SERVICES.fake, stores: (project) => store.open(project) });
  }
  return new ChunkedBackupDriver({ ...common, service: BACKUP_SERVICES.object, stores: swiftStores(client) });
}
