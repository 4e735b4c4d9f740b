import type { Consumer } from '../../core/bus/index.js';
import { SCHEDULER_TOPIC, type CreateRequest } from '../rpc.js';
import { volumeHost, type VolumeService } from '../volume.js';
import { Conductor } from './conductor.js';
import { CapacityClaims, VolumeScheduler } from './scheduler.js';
import { recordHeartbeat } from './services.js';

/**
 * Starts the volume-scheduler role on `volume` (it needs the database):
 * serves `SCHEDULER_TOPIC` (placement of new volumes, `get_pools`,
 * `find_backend`) and `CONDUCTOR_TOPIC` (the agents' reports and updates)
 * as `server`, and keeps a `cinder-scheduler` service row with heartbeats
 * every `report_interval` seconds. The scheduler and the conductor share
 * the capacity claims of this process.
 */
export async function startSchedulerRoles(volume: VolumeService, server: string): Promise<{ stop(): Promise<void> }> {
  const claims = new CapacityClaims();
  const conductor = new Conductor(volume, claims);
  const scheduler = new VolumeScheduler(volume, claims, conductor);
  const consumers: Consumer[] = [];
  const host = volumeHost(volume.config);
  const beat = (): Promise<void> => recordHeartbeat(volume.db, { host, binary: 'cinder-scheduler', availability_zone: volume.config.volume.storage_availability_zone });
  let timer: NodeJS.Timeout | null = null;
  try {
    await beat();
    consumers.push(await conductor.serve(server));
    consumers.push(
      await volume.bus.serve(SCHEDULER_TOPIC, server, {
        create_volume: (req: CreateRequest) => scheduler.createVolume(req),
        get_pools: () => scheduler.getPools(),
        find_backend: (req: Parameters<VolumeScheduler['findBackend']>[0]) => scheduler.findBackend(req),
      }),
    );
    const every = volume.config.volume.report_interval;
    if (every > 0) timer = setInterval(() => void beat().catch((err: unknown) => volume.log.warn({ err }, 'scheduler heartbeat failed')), every * 1000);
  } catch (err) {
    for (const c of consumers) await c.stop();
    throw err;
  }
  return {
    async stop() {
      if (timer) clearInterval(timer);
      for (const c of consumers.splice(0)) await c.stop();
    },
  };
}
