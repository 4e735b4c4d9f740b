/**
 * The server state machine, written down once (Nova's vm_states,
 * task_states, power_state and the API's `status`), with which actions each
 * state allows. Every transition in compute goes through these tables.
 */

export const VmState = {
  ACTIVE: 'active',
  BUILDING: 'building',
  PAUSED: 'paused',
  SUSPENDED: 'suspended',
  STOPPED: 'stopped',
  RESCUED: 'rescued',
  RESIZED: 'resized',
  SOFT_DELETED: 'soft-delete',
  DELETED: 'deleted',
  ERROR: 'error',
  SHELVED: 'shelved',
  SHELVED_OFFLOADED: 'shelved_offloaded',
} as const;
export type VmState = (typeof VmState)[keyof typeof VmState];

/** Power states as Nova numbers them (the API's `OS-EXT-STS:power_state`). */
export const PowerState = { NOSTATE: 0, RUNNING: 1, PAUSED: 3, SHUTDOWN: 4, CRASHED: 6, SUSPENDED: 7 } as const;
export type PowerState = (typeof PowerState)[keyof typeof PowerState];

/** The task states a server passes through (`OS-EXT-STS:task_state`). */
export type TaskState =
  | 'scheduling'
  | 'networking'
  | 'block_device_mapping'
  | 'spawning'
  | 'image_snapshot'
  | 'image_backup'
  | 'image_snapshot_pending'
  | 'image_pending_upload'
  | 'image_uploading'
  | 'updating_password'
  | 'resize_prep'
  | 'resize_migrating'
  | 'resize_migrated'
  | 'resize_finish'
  | 'resize_reverting'
  | 'resize_confirming'
  | 'rebooting'
  | 'reboot_pending'
  | 'reboot_started'
  | 'rebooting_hard'
  | 'reboot_pending_hard'
  | 'reboot_started_hard'
  | 'pausing'
  | 'unpausing'
  | 'suspending'
  | 'resuming'
  | 'powering-off'
  | 'powering-on'
  | 'rescuing'
  | 'unrescuing'
  | 'rebuilding'
  | 'rebuild_block_device_mapping'
  | 'rebuild_spawning'
  | 'migrating'
  | 'deleting'
  | 'shelving'
  | 'shelving_image_pending_upload'
  | 'shelving_image_uploading'
  | 'shelving_offloading'
  | 'unshelving';

/** Task states after which the API shows a particular status, whatever the vm_state (within the states listed). */
const TASK_STATUS: Partial<Record<TaskState, string>> = {
  rebooting: 'REBOOT',
  reboot_pending: 'REBOOT',
  reboot_started: 'REBOOT',
  rebooting_hard: 'HARD_REBOOT',
  reboot_pending_hard: 'HARD_REBOOT',
  reboot_started_hard: 'HARD_REBOOT',
  updating_password: 'PASSWORD',
  rebuilding: 'REBUILD',
  rebuild_block_device_mapping: 'REBUILD',
  rebuild_spawning: 'REBUILD',
  migrating: 'MIGRATING',
  resize_prep: 'RESIZE',
  resize_migrating: 'RESIZE',
  resize_migrated: 'RESIZE',
  resize_finish: 'RESIZE',
};

/** Which task states change the shown status in each vm_state (Nova's `_STATE_MAP`). */
const STATE_TASKS: Partial<Record<VmState, TaskState[]>> = {
  active: ['rebooting', 'reboot_pending', 'reboot_started', 'rebooting_hard', 'reboot_pending_hard', 'reboot_started_hard', 'updating_password', 'rebuilding', 'rebuild_block_device_mapping', 'rebuild_spawning', 'migrating', 'resize_prep', 'resize_migrating', 'resize_migrated', 'resize_finish'],
  stopped: ['resize_prep', 'resize_migrating', 'resize_migrated', 'resize_finish', 'rebuilding', 'rebuild_block_device_mapping', 'rebuild_spawning'],
  paused: ['migrating'],
  error: ['rebuilding', 'rebuild_block_device_mapping', 'rebuild_spawning'],
};

const DEFAULT_STATUS: Record<VmState, string> = {
  active: 'ACTIVE',
  building: 'BUILD',
  paused: 'PAUSED',
  suspended: 'SUSPENDED',
  stopped: 'SHUTOFF',
  rescued: 'RESCUE',
  resized: 'VERIFY_RESIZE',
  'soft-delete': 'SOFT_DELETED',
  deleted: 'DELETED',
  error: 'ERROR',
  shelved: 'SHELVED',
  shelved_offloaded: 'SHELVED_OFFLOADED',
};

/** The API's `status` of a server (`ACTIVE`, `BUILD`, `REBOOT`, `VERIFY_RESIZE`, ...). */
export function serverStatus(vmState: string, taskState: string | null): string {
  const state = vmState as VmState;
  if (state === 'resized' && taskState === 'resize_reverting') return 'REVERT_RESIZE';
  if (taskState && STATE_TASKS[state]?.includes(taskState as TaskState)) return TASK_STATUS[taskState as TaskState] ?? DEFAULT_STATUS[state];
  return DEFAULT_STATUS[state] ?? 'UNKNOWN';
}

/** The vm_states (and the task state, `null` for none) a status filter names (`?status=ACTIVE`). */
export function statesForStatus(status: string): { vmStates: VmState[]; taskStates?: TaskState[] } | null {
  const upper = status.toUpperCase();
  const vmStates = (Object.keys(DEFAULT_STATUS) as VmState[]).filter((s) => DEFAULT_STATUS[s] === upper);
  if (vmStates.length > 0) return { vmStates };
  const tasks = (Object.keys(TASK_STATUS) as TaskState[]).filter((t) => TASK_STATUS[t] === upper);
  if (tasks.length > 0) return { vmStates: ['active', 'stopped', 'paused', 'error'], taskStates: tasks };
  return null;
}

/** The server actions whose allowed states are checked before they start. */
export type ServerAction =
  | 'reboot_soft'
  | 'reboot_hard'
  | 'stop'
  | 'start'
  | 'pause'
  | 'unpause'
  | 'suspend'
  | 'resume'
  | 'rescue'
  | 'unrescue'
  | 'resize'
  | 'confirmResize'
  | 'revertResize'
  | 'rebuild'
  | 'createImage'
  | 'createBackup'
  | 'changePassword'
  | 'shelve'
  | 'shelveOffload'
  | 'unshelve'
  | 'migrate'
  | 'live-migration'
  | 'attach_interface'
  | 'detach_interface'
  | 'attach_volume'
  | 'detach_volume'
  | 'addSecurityGroup'
  | 'removeSecurityGroup'
  | 'delete';

/**
 * For each action: the vm_states it may start from, and the task states
 * (null: no task running) it may start during. Nova's `check_instance_state`.
 */
export const ACTION_STATES: Record<ServerAction, { vm: VmState[] | 'any'; task: (TaskState | null)[] | 'any' }> = {
  reboot_soft: { vm: ['active'], task: [null] },
  reboot_hard: { vm: ['active', 'stopped', 'paused', 'suspended', 'error'], task: [null, 'rebooting', 'reboot_pending', 'reboot_started', 'rebooting_hard', 'reboot_pending_hard', 'reboot_started_hard'] },
  stop: { vm: ['active', 'error'], task: [null] },
  start: { vm: ['stopped'], task: [null] },
  pause: { vm: ['active'], task: [null] },
  unpause: { vm: ['paused'], task: [null] },
  suspend: { vm: ['active'], task: [null] },
  resume: { vm: ['suspended'], task: [null] },
  rescue: { vm: ['active', 'stopped', 'error'], task: [null] },
  unrescue: { vm: ['rescued'], task: [null] },
  resize: { vm: ['active', 'stopped'], task: [null] },
  confirmResize: { vm: ['resized'], task: [null] },
  revertResize: { vm: ['resized'], task: [null] },
  rebuild: { vm: ['active', 'stopped', 'error'], task: [null] },
  createImage: { vm: ['active', 'stopped', 'paused', 'suspended'], task: [null] },
  createBackup: { vm: ['active', 'stopped', 'paused', 'suspended'], task: [null] },
  changePassword: { vm: ['active'], task: [null] },
  shelve: { vm: ['active', 'stopped', 'paused', 'suspended'], task: [null] },
  shelveOffload: { vm: ['shelved'], task: [null] },
  unshelve: { vm: ['shelved', 'shelved_offloaded'], task: [null] },
  migrate: { vm: ['active', 'stopped'], task: [null] },
  'live-migration': { vm: ['active', 'paused'], task: [null] },
  attach_interface: { vm: ['active', 'paused', 'stopped'], task: [null] },
  detach_interface: { vm: ['active', 'paused', 'stopped'], task: [null] },
  attach_volume: { vm: ['active', 'paused', 'stopped', 'resized', 'shelved', 'shelved_offloaded'], task: [null] },
  detach_volume: { vm: ['active', 'paused', 'stopped', 'resized', 'shelved', 'shelved_offloaded'], task: [null] },
  addSecurityGroup: { vm: 'any', task: 'any' },
  removeSecurityGroup: { vm: 'any', task: 'any' },
  delete: { vm: 'any', task: 'any' },
};

/** Null when `action` may start now, else which attribute forbids it (`vm_state` or `task_state`). */
export function actionBlockedBy(action: ServerAction, vmState: string, taskState: string | null): 'vm_state' | 'task_state' | null {
  const allowed = ACTION_STATES[action];
  if (allowed.vm !== 'any' && !allowed.vm.includes(vmState as VmState)) return 'vm_state';
  if (allowed.task !== 'any' && !allowed.task.includes(taskState as TaskState | null)) return 'task_state';
  return null;
}
