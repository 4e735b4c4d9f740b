import { exists, run } from '../../../core/host-commands.js';

/**
 * Tap devices of guests' ports, as libvirt makes them for Nova: the qemu
 * driver makes the ones that are missing (named `tap` + the port id's first
 * 11 characters), remembers that it did, and removes only those; the
 * network's bridge agent sees each one appear and puts it on its network's
 * bridge.
 */

/** Interface names Linux accepts (at most 15 characters) and that are safe as arguments. */
function checkName(name: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/.test(name)) throw new Error(`'${name}' is not a usable tap device name`);
}

/** True when the network device exists on the host. */
export function tapExists(name: string): Promise<boolean> {
  checkName(name);
  return exists(`/sys/class/net/${name}`);
}

/** Makes the tap `name` (up) when it is missing; true when this call made it. */
export async function ensureTap(name: string): Promise<boolean> {
  if (await tapExists(name)) return false;
  await run('ip', ['tuntap', 'add', 'dev', name, 'mode', 'tap']);
  await run('ip', ['link', 'set', 'dev', name, 'up']);
  return true;
}

/** Removes the tap `name`; succeeds when it is already gone. */
export async function deleteTap(name: string): Promise<void> {
  if (!(await tapExists(name))) return;
  await run('ip', ['link', 'delete', 'dev', name]).catch(async (err: unknown) => {
    if (await tapExists(name)) throw err;
  });
}
