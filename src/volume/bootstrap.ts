import { randomUUID } from 'node:crypto';
import { isUniqueViolation } from '../core/db/database.js';
import { now, type VolumeService } from './volume.js';

/**
 * Creates the default volume type (`volume.default_volume_type`, Cinder's
 * `__DEFAULT__`) when no type of that name exists. Idempotent, and safe
 * when several API processes start at once.
 */
export async function ensureDefaultVolumeType(volume: VolumeService): Promise<void> {
  const name = volume.config.volume.default_volume_type;
  if (!name) return;
  const existing = await volume.db.selectFrom('volume_type').select('id').where('name', '=', name).executeTakeFirst();
  if (existing) return;
  try {
    await volume.db
      .insertInto('volume_type')
      .values({ id: randomUUID(), name, description: 'Default Volume Type', is_public: 1, qos_specs_id: null, created_at: now(), updated_at: null })
      .execute();
  } catch (err) {
    if (!isUniqueViolation(err)) throw err;
  }
}
