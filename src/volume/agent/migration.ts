import { AgentRpc, type AgentVolume, type MigrationRequest, type MigrationSource } from '../rpc.js';
import type { VolumeAgent } from './agent.js';
import { toDriverVolume } from './operations.js';

/**
 * Volume migration on the agents (Cinder's generic, host-assisted
 * migration of an available volume). The source agent runs it: it exports
 * the volume to the destination's host, the destination agent makes the
 * volume on its backend from that export (same id: each backend keeps its
 * own files), the conductor then moves the record (host, location, type of
 * a retype) and the source removes its copy. A failure at any step leaves
 * the volume on its source with migration status `error` and removes what
 * the destination made.
 */

/** The attachment id of a migration's export of `volumeId` (exports are named after attachments). */
export function migrationAttachmentId(volumeId: string): string {
  return `migration-${volumeId}`;
}

const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** `migrate_volume`, on the agent that holds the volume. */
export async function migrateVolume(agent: VolumeAgent, req: MigrationRequest): Promise<void> {
  const { volume, destination } = req;
  const rpc = new AgentRpc(agent.options.bus);
  const connector = { host: destination.split('@')[0] ?? destination };
  const attachmentId = migrationAttachmentId(volume.id);
  /** Set once the destination may hold a copy; cleared when the record may point at it (then it must stay). */
  let discardable = false;
  try {
    if (!(await agent.updateVolume(volume.id, { migration_status: 'migrating' }))) return;
    const connection = await agent.driver.initializeConnection(toDriverVolume(volume), connector, attachmentId);
    let copied: { provider_location: string | null };
    try {
      discardable = true;
      copied = await rpc.acceptMigration(destination, { volume: { ...volume, host: destination }, connection });
    } finally {
      await agent.driver.terminateConnection(toDriverVolume(volume), connector, attachmentId).catch((err: unknown) => agent.warn(err, 'could not end a migration export', { volume_id: volume.id }));
    }
    discardable = false;
    const switched = await agent.conductor.migrationFinished(volume.id, destination, copied.provider_location, req.new_type_id);
    if (!switched.updated) {
      discardable = true;
      throw new Error(`volume ${volume.id} stopped migrating while its data was copied`);
    }
  } catch (err) {
    if (agent.isStopped) return;
    agent.warn(err, 'volume migration failed', { volume_id: volume.id, destination });
    if (discardable) await rpc.discardMigration(destination, { ...volume, host: destination }).catch((e: unknown) => agent.warn(e, 'could not remove a migrated copy', { volume_id: volume.id, destination }));
    // Applies only to a volume still migrating (an uncertain switch that did happen stays; the destination's next start removes an orphan copy).
    await agent.conductor.migrationFailed(volume.id, errorText(err));
    return;
  } finally {
    agent.changed();
  }
  // The record is on the destination: the source's copy is an orphan now (a failure here leaves it for the next start's cleanup).
  await agent.driver.deleteVolume(toDriverVolume(volume)).catch((err: unknown) => agent.warn(err, 'could not remove the source of a finished migration', { volume_id: volume.id }));
  agent.changed();
}

/** `accept_migration`, on the destination: makes the volume from the source's export. */
export async function acceptMigration(agent: VolumeAgent, source: MigrationSource): Promise<{ provider_location: string | null }> {
  const volume = toDriverVolume({ ...source.volume, provider_location: null });
  try {
    const update = await agent.driver.createFromExport(volume, source.connection);
    return { provider_location: update.provider_location ?? null };
  } catch (err) {
    await agent.driver.deleteVolume(volume).catch(() => undefined);
    throw err;
  } finally {
    agent.changed();
  }
}

/** `discard_migration`, on the destination: removes a copy whose migration failed after it was made. */
export async function discardMigration(agent: VolumeAgent, volume: AgentVolume): Promise<void> {
  try {
    await agent.driver.deleteVolume(toDriverVolume(volume));
  } finally {
    agent.changed();
  }
}
