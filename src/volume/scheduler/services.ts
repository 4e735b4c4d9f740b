import { sql, type Kysely } from 'kysely';
import { isUniqueViolation } from '../../core/db/database.js';
import type { VolumeSchema } from '../db/schema.js';
import { now } from '../volume.js';

/** A heartbeat of a volume service (`cinder-volume` or `cinder-scheduler`). */
export interface ServiceBeat {
  host: string;
  binary: string;
  availability_zone: string;
  /** The backend's report as JSON (agents); left as is when undefined. */
  capabilities?: string | null;
}

/**
 * Records a heartbeat: creates the service row on first contact, else bumps
 * `report_count` and `last_seen_up` (and the zone and capabilities).
 * Idempotent; concurrent first beats of one service settle on one row.
 */
export async function recordHeartbeat(db: Kysely<VolumeSchema>, beat: ServiceBeat): Promise<void> {
  const at = now();
  for (let attempt = 0; ; attempt++) {
    try {
      await db.transaction().execute(async (trx) => {
        const row = await trx.selectFrom('service').select(['id', 'report_count']).where('host', '=', beat.host).where('binary', '=', beat.binary).executeTakeFirst();
        if (row) {
          await trx
            .updateTable('service')
            .set({ last_seen_up: at, report_count: row.report_count + 1, updated_at: at, availability_zone: beat.availability_zone, ...(beat.capabilities !== undefined ? { capabilities: beat.capabilities } : {}) })
            .where('id', '=', row.id)
            .execute();
          return;
        }
        const max = await trx.selectFrom('service').select(sql<number>`coalesce(max(id), 0)`.as('n')).executeTakeFirst();
        await trx
          .insertInto('service')
          .values({
            id: Number(max?.n ?? 0) + 1,
            host: beat.host,
            binary: beat.binary,
            topic: beat.binary,
            availability_zone: beat.availability_zone,
            disabled: 0,
            disabled_reason: null,
            frozen: 0,
            capabilities: beat.capabilities ?? null,
            last_seen_up: at,
            report_count: 1,
            created_at: at,
            updated_at: at,
          })
          .execute();
      });
      return;
    } catch (err) {
      if (attempt < 5 && isUniqueViolation(err)) continue;
      throw err;
    }
  }
}
