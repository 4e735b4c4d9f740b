import type { AgentAction, InstanceValues } from '../rpc.js';
import type { ComputeAgent } from './agent.js';
import { isAttachmentAction, runAttachmentAction } from './attachments.js';
import { isMoveAction, runMoveAction, uploadDisk } from './moves.js';

/** What each simple power action does: the driver call and the states it ends in. */
const POWER_ACTIONS: Partial<Record<AgentAction['kind'], { event: string; run: (agent: ComputeAgent, uuid: string) => Promise<void>; done: InstanceValues }>> = {
  stop: { event: 'compute_stop_instance', run: (a, u) => a.driver.powerOff(u), done: { vm_state: 'stopped', power_state: 4 } },
  start: { event: 'compute_start_instance', run: (a, u) => a.driver.powerOn(u), done: { vm_state: 'active', power_state: 1 } },
  pause: { event: 'compute_pause_instance', run: (a, u) => a.driver.pause(u), done: { vm_state: 'paused', power_state: 3 } },
  unpause: { event: 'compute_unpause_instance', run: (a, u) => a.driver.unpause(u), done: { vm_state: 'active', power_state: 1 } },
  suspend: { event: 'compute_suspend_instance', run: (a, u) => a.driver.suspend(u), done: { vm_state: 'suspended', power_state: 4 } },
  resume: { event: 'compute_resume_instance', run: (a, u) => a.driver.resume(u), done: { vm_state: 'active', power_state: 1 } },
  unrescue: { event: 'compute_unrescue_instance', run: (a, u) => a.driver.unrescue(u), done: { vm_state: 'active', power_state: 1 } },
};

/**
 * Runs an action on a server of this host. compute-api has already set the
 * task state; this calls the driver, records the end state (task state
 * cleared) and the action event. A failure leaves the server in its previous
 * vm_state with the task cleared (ERROR for a failed rebuild or resize), and
 * records a fault.
 */
export async function runAgentAction(agent: ComputeAgent, uuid: string, action: AgentAction, actionId: string): Promise<void> {
  if (isMoveAction(action)) return runMoveAction(agent, uuid, action, actionId);
  if (isAttachmentAction(action)) return runAttachmentAction(agent, uuid, action, actionId);
  const simple = POWER_ACTIONS[action.kind];
  const event = await agent.eventStart(actionId, simple?.event ?? (action.kind === 'set_password' ? 'compute_set_admin_password' : `compute_${action.kind}_instance`));
  const instance = await agent.instance(uuid);
  if (!instance) {
    await agent.eventFinish(event, new Error('the server is gone'));
    return;
  }
  try {
    let done: InstanceValues;
    if (simple) {
      await simple.run(agent, uuid);
      done = simple.done;
    } else {
      switch (action.kind) {
        case 'reboot':
          await agent.driver.reboot(uuid, action.hard);
          done = { vm_state: 'active', power_state: 1 };
          break;
        case 'rescue':
          await agent.driver.rescue(uuid, action.image_ref);
          done = { vm_state: 'rescued', power_state: 1 };
          break;
        case 'set_password':
          await agent.driver.setAdminPassword(uuid, action.password);
          done = {};
          break;
        case 'snapshot':
          await uploadSnapshot(agent, uuid, action.image_id);
          if (action.backup) await rotateBackups(agent, uuid, action.backup);
          done = {};
          break;
        case 'rebuild':
          await agent.driver.destroy(uuid);
          await agent.driver.spawn(agent.guestSpec({ ...instance, image_ref: action.image_ref, image_properties: action.image_properties }));
          done = { vm_state: 'active', power_state: 1, image_ref: action.image_ref, image_properties: action.image_properties, launched_at: new Date().toISOString() };
          // As Nova: a server that was stopped is rebuilt, then stopped again.
          if (instance.vm_state === 'stopped') {
            await agent.driver.powerOff(uuid);
            done = { ...done, vm_state: 'stopped', power_state: 4 };
          }
          break;
        default:
          throw new Error(`the ${action.kind} action is not supported by this compute agent yet`);
      }
    }
    await agent.update(uuid, { ...done, task_state: null });
    agent.notify(`compute.instance.${action.kind}.end`, { instance_id: uuid, host: agent.host });
    await agent.eventFinish(event);
  } catch (err) {
    agent.options.log.warn({ err, instance_uuid: uuid, action: action.kind }, 'server action failed');
    const message = err instanceof Error ? err.message : String(err);
    const power = await agent.driver.listGuests().then((g) => g.find((x) => x.uuid === uuid)?.powerState ?? 0);
    const broken = action.kind === 'rebuild';
    await agent.conductor.call('instance_fault', { uuid, code: 500, message, details: err instanceof Error ? (err.stack ?? '') : '', host: agent.host });
    await agent.update(uuid, { task_state: null, power_state: power, ...(broken ? { vm_state: 'error' } : {}) });
    await agent.eventFinish(event, err);
  }
}

/**
 * createBackup's rotation: of the server's active backups of this type, the
 * newest `rotation` stay and the older ones are deleted (as Nova's host does).
 */
async function rotateBackups(agent: ComputeAgent, uuid: string, backup: { type: string; rotation: number }): Promise<void> {
  const query = new URLSearchParams({ instance_uuid: uuid, image_type: 'backup', backup_type: backup.type, status: 'active', sort_key: 'created_at', sort_dir: 'desc', limit: '1000' });
  const res = await agent.options.client.request<{ images: { id: string }[] }>('image', 'GET', `/v2/images?${query.toString()}`);
  if (res.status >= 400) throw new Error(`could not list the backups of ${uuid}: ${res.status}`);
  for (const old of res.body.images.slice(backup.rotation)) {
    const gone = await agent.options.client.request('image', 'DELETE', `/v2/images/${old.id}`);
    if (gone.status >= 400 && gone.status !== 404) agent.options.log.warn({ instance_uuid: uuid, image_id: old.id, status: gone.status }, 'could not delete a rotated backup');
  }
}

/** Uploads the server's disk to the image `imageId` (made `queued` by compute-api). */
async function uploadSnapshot(agent: ComputeAgent, uuid: string, imageId: string): Promise<void> {
  await agent.update(uuid, { task_state: 'image_uploading' } as InstanceValues);
  await uploadDisk(agent, uuid, imageId);
}
