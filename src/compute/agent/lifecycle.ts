import type { GuestPowerState, LifecycleListener } from '../virt/driver.js';
import type { ComputeAgent } from './agent.js';

/**
 * What an agent does when its driver says a guest changed by itself (Nova's
 * `handle_lifecycle_event` and `_sync_instance_power_state`): the power
 * state is recorded; a server ACTIVE or PAUSED whose guest shut down or
 * crashed becomes SHUTOFF (as Nova's stop); a server STOPPED whose guest
 * runs is stopped again. A server with a task in progress is left to its
 * task, which records the state it ends in.
 */

const SHUTDOWN = 4;
const CRASHED = 6;

/** The listener an agent registers with its driver (`driver.onLifecycle`). */
export function lifecycleListener(agent: ComputeAgent): LifecycleListener {
  return (uuid, powerState) => {
    void handleLifecycleEvent(agent, uuid, powerState).catch((err: unknown) => agent.options.log.warn({ err, instance_uuid: uuid, power_state: powerState }, 'could not sync a lifecycle event'));
  };
}

/** Syncs one server with its guest's new power state. */
export async function handleLifecycleEvent(agent: ComputeAgent, uuid: string, powerState: GuestPowerState): Promise<void> {
  const instance = await agent.instance(uuid);
  if (!instance || instance.host !== agent.host || instance.task_state !== null) return;
  agent.options.log.info({ instance_uuid: uuid, vm_state: instance.vm_state, power_state: powerState, was: instance.power_state }, 'lifecycle event');
  const down = powerState === SHUTDOWN || powerState === CRASHED;
  switch (instance.vm_state) {
    case 'active':
    case 'paused':
      if (down) {
        if (await agent.update(uuid, { vm_state: 'stopped', power_state: powerState }, [null])) agent.notify('compute.instance.power_off.end', { instance_id: uuid, host: agent.host, state: 'stopped' });
        return;
      }
      break;
    case 'stopped':
      if (!down && powerState !== 0) {
        // A stopped server must not run (Nova stops it again).
        await agent.driver.powerOff(uuid);
        await agent.update(uuid, { power_state: SHUTDOWN }, [null]);
        return;
      }
      break;
    default:
      break;
  }
  if (powerState !== instance.power_state) await agent.update(uuid, { power_state: powerState }, [null]);
}
