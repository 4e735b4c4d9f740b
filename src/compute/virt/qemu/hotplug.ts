import type { Logger } from '../../../core/logging.js';
import type { GuestVif } from '../driver.js';
import { nicDevice, nicDeviceId, netdevId, volumeBlockdev, volumeDevice, volumeDeviceId, volumeNodeName } from './command-line.js';
import { freeSlot, writeRecord, type GuestNic, type GuestPaths, type GuestRecord, type GuestVolume } from './guest-record.js';
import type { QmpClient } from './qmp.js';
import { deleteTap, ensureTap } from './taps.js';

/**
 * Volumes and ports plugged into a guest while it runs (QMP `blockdev-add`
 * / `netdev_add` + `device_add`, `device_del` + `DEVICE_DELETED`), or
 * recorded for its next start when it does not run. Every device is in
 * `guest.json`, so a restart keeps it on the same PCI slot.
 */

/** What the operations need of the driver. */
export interface HotplugContext {
  paths(uuid: string): GuestPaths;
  record(uuid: string): Promise<GuestRecord>;
  /** The guest's QMP session; null when it does not run. */
  qmp(uuid: string): Promise<QmpClient | null>;
  detachTimeoutMs: number;
  log: Logger;
}

/** Removes a device and waits until the guest has let it go (it must answer the ACPI unplug request). */
async function unplugDevice(ctx: HotplugContext, qmp: QmpClient, uuid: string, id: string): Promise<void> {
  const deleted = qmp.waitForEvent('DEVICE_DELETED', (data) => data.device === id, ctx.detachTimeoutMs);
  try {
    await qmp.execute('device_del', { id });
  } catch (err) {
    // Already gone (a previous detach that timed out but finished later).
    if (err instanceof Error && /not found/i.test(err.message)) return;
    throw err;
  }
  if (!(await deleted)) throw new Error(`Device detach failed for ${id}: the guest ${uuid} did not release it within ${ctx.detachTimeoutMs / 1000} s`);
}

/** Plugs a port: its tap (made when missing), then the NIC. Plugging a port the guest has succeeds. */
export async function attachInterface(ctx: HotplugContext, uuid: string, vif: GuestVif): Promise<void> {
  const record = await ctx.record(uuid);
  if (record.nics.some((n) => n.portId === vif.portId)) return;
  const nic: GuestNic = { ...vif, slot: freeSlot(record), tapCreated: await ensureTap(vif.devName) };
  try {
    const qmp = await ctx.qmp(uuid);
    if (qmp) {
      await qmp.execute('netdev_add', { type: 'tap', id: netdevId(nic.portId), ifname: nic.devName, script: 'no', downscript: 'no' });
      try {
        await qmp.execute('device_add', nicDevice(nic));
      } catch (err) {
        await qmp.execute('netdev_del', { id: netdevId(nic.portId) }).catch(() => undefined);
        throw err;
      }
    }
    record.nics.push(nic);
    await writeRecord(ctx.paths(uuid), record);
  } catch (err) {
    if (nic.tapCreated) await deleteTap(nic.devName).catch(() => undefined);
    throw err;
  }
}

/** Unplugs a port and removes its tap when the driver made it. Unplugging a port the guest lacks succeeds. */
export async function detachInterface(ctx: HotplugContext, uuid: string, portId: string): Promise<void> {
  const record = await ctx.record(uuid);
  const nic = record.nics.find((n) => n.portId === portId);
  if (!nic) return;
  const qmp = await ctx.qmp(uuid);
  if (qmp) {
    await unplugDevice(ctx, qmp, uuid, nicDeviceId(portId));
    await qmp.execute('netdev_del', { id: netdevId(portId) }).catch((err: unknown) => ctx.log.warn({ err, instance_uuid: uuid, port_id: portId }, 'netdev_del failed'));
  }
  record.nics = record.nics.filter((n) => n.portId !== portId);
  await writeRecord(ctx.paths(uuid), record);
  if (nic.tapCreated) await deleteTap(nic.devName);
}

/** Plugs a volume (a local file or an NBD export). Plugging a volume the guest has succeeds. */
export async function attachVolume(ctx: HotplugContext, uuid: string, volumeId: string, connectionInfo: Record<string, unknown>, device: string): Promise<void> {
  const record = await ctx.record(uuid);
  if (record.volumes.some((v) => v.volumeId === volumeId) || (record.root.kind === 'volume' && record.root.volume.volumeId === volumeId)) return;
  const volume: GuestVolume = { volumeId, device, connectionInfo, slot: freeSlot(record) };
  const blockdev = volumeBlockdev(volumeId, connectionInfo);
  const qmp = await ctx.qmp(uuid);
  if (qmp) {
    await qmp.execute('blockdev-add', blockdev);
    try {
      await qmp.execute('device_add', volumeDevice(volume));
    } catch (err) {
      await qmp.execute('blockdev-del', { 'node-name': volumeNodeName(volumeId) }).catch(() => undefined);
      throw err;
    }
  }
  record.volumes.push(volume);
  await writeRecord(ctx.paths(uuid), record);
}

/** Unplugs a volume. Unplugging a volume the guest lacks succeeds; its root volume cannot be. */
export async function detachVolume(ctx: HotplugContext, uuid: string, volumeId: string): Promise<void> {
  const record = await ctx.record(uuid);
  if (record.root.kind === 'volume' && record.root.volume.volumeId === volumeId) throw new Error(`volume ${volumeId} is the root disk of ${uuid}`);
  if (!record.volumes.some((v) => v.volumeId === volumeId)) return;
  const qmp = await ctx.qmp(uuid);
  if (qmp) {
    await unplugDevice(ctx, qmp, uuid, volumeDeviceId(volumeId));
    await qmp.execute('blockdev-del', { 'node-name': volumeNodeName(volumeId) }).catch((err: unknown) => ctx.log.warn({ err, instance_uuid: uuid, volume_id: volumeId }, 'blockdev-del failed'));
  }
  record.volumes = record.volumes.filter((v) => v.volumeId !== volumeId);
  await writeRecord(ctx.paths(uuid), record);
}

/** Tells a running guest its volume grew (`block_resize`); a stopped guest sees the size when it starts. */
export async function extendVolume(ctx: HotplugContext, uuid: string, volumeId: string, sizeGb: number): Promise<void> {
  const record = await ctx.record(uuid);
  const attached = record.volumes.some((v) => v.volumeId === volumeId) || (record.root.kind === 'volume' && record.root.volume.volumeId === volumeId);
  if (!attached) throw new Error(`Volume ${volumeId} is not attached to ${uuid}.`);
  const qmp = await ctx.qmp(uuid);
  if (qmp) await qmp.execute('block_resize', { 'node-name': volumeNodeName(volumeId), size: sizeGb * 1024 ** 3 });
}
