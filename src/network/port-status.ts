import { sql } from 'kysely';
import { isoNow } from './common.js';
import { notifyPortStatus } from './compute-notifier.js';
import type { PortRow } from './db/schema.js';
import type { NetworkService } from './network.js';
import { fullPortViews } from './ports.js';

/** The statuses a data plane reports for a port. */
export type PortStatus = 'ACTIVE' | 'DOWN' | 'BUILD' | 'ERROR';

/**
 * The driver's `portStatus` callback (and the agents' `update_device_up`/
 * `down`): records the port's new status (revision bumped, `port.update.end`
 * published) and tells compute when a server's port came up or went down.
 * A port already in that status is left alone (nothing bumped, nothing
 * sent); a port that no longer exists is ignored. Returns whether the port
 * exists. Never throws for a port that vanished; database errors propagate.
 */
export async function portStatusChanged(net: NetworkService, portId: string, status: PortStatus): Promise<boolean> {
  const change = await net.db.transaction().execute(async (trx) => {
    const row = await trx.selectFrom('port').selectAll().where('id', '=', portId).executeTakeFirst();
    if (!row) return null;
    if (row.status === status) return { row, previous: status };
    const updatedAt = isoNow();
    // Conditional on the status read, so that of two racing reports each bumps the revision once.
    const result = await trx
      .updateTable('port')
      .set({ status, updated_at: updatedAt, revision_number: sql<number>`revision_number + 1` })
      .where('id', '=', portId)
      .where('status', '=', row.status)
      .executeTakeFirst();
    if (Number(result.numUpdatedRows) === 0) return { row, previous: status };
    const updated: PortRow = { ...row, status, updated_at: updatedAt, revision_number: Number(row.revision_number) + 1 };
    return { row: updated, previous: row.status };
  });
  if (!change) {
    net.log.debug({ port: portId, status }, 'status reported for a port that no longer exists');
    return false;
  }
  const { row, previous } = change;
  if (previous === status) return true;
  try {
    const [view] = await fullPortViews(net.db, [row]);
    net.notify('port.update.end', { port: view });
  } catch (err) {
    net.log.warn({ err, port: portId }, 'could not publish the port status change');
  }
  notifyPortStatus(net, row, previous, status);
  return true;
}
