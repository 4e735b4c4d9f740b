import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import type { QemuConfig } from '../../../core/config.js';
import { NotImplemented } from '../../../core/errors.js';
import type { Logger } from '../../../core/logging.js';
import type { MetadataOptions } from '../../metadata/content.js';
import type { DiskSnapshot, GuestPowerState, GuestSpec, GuestVif, HostResources, LifecycleListener, VirtDriver, VncEndpoint } from '../driver.js';
import { type Accel, shellQuote } from './command-line.js';
import { createConfigDrive, createEphemeral, createOverlay, createSwap, growOverlay, rootSize } from './disks.js';
import { freeSlot, guestPaths, isGuestName, readRecord, writeRecord, type GuestPaths, type GuestRecord } from './guest-record.js';
import { GuestProcesses, CONSOLE_BYTES, readTail } from './guest-processes.js';
import { exists, run } from '../../../core/host-commands.js';
import { hostResources } from './host-resources.js';
import { attachInterface, attachVolume, detachInterface, detachVolume, extendVolume, type HotplugContext } from './hotplug.js';
import { cleanImageCache, ImageCache, type ImageServiceAccess } from './image-cache.js';
import { decideAccel } from './probe.js';
import { QmpClient } from './qmp.js';
import { deleteTap, ensureTap } from './taps.js';

/** How to build a {@link QemuDriver}. */
export interface QemuDriverOptions {
  /** The compute host's name (the hypervisor's name in placement). */
  host: string;
  /** The address reported as the hypervisor's `host_ip` (default 127.0.0.1). */
  hostIp?: string;
  /** `compute.qemu` with `instances_path` and `image_cache_path` resolved to absolute paths. */
  config: QemuConfig;
  /** The image service, as the `nova` user (a ServiceClient does). */
  images: ImageServiceAccess;
  log: Logger;
  /** The KVM probe guest (`<data_dir>/images/probe-vmlinuz`, `probe-initrd`). */
  probe?: { kernel: string; initrd: string };
  /** The cloud's metadata settings, for config drives (default: domain `novalocal`, no vendor data). */
  metadata?: MetadataOptions;
  /** Seconds between image cache cleanups (default 2400, Nova's `image_cache.manager_interval`); 0: never. */
  imageCacheInterval?: number;
  /** Seconds a guest has to release a hot-unplugged device (default 30). */
  detachTimeout?: number;
}

/** QEMU's run states (`query-status`) as Nova's power states. */
function powerOfStatus(status: string): GuestPowerState {
  switch (status) {
    case 'running':
      return 1;
    case 'shutdown':
      return 4;
    case 'suspended':
      // The guest's own sleep (ACPI S3), as Nova maps libvirt's PMSUSPENDED.
      return 7;
    case 'guest-panicked':
    case 'internal-error':
    case 'io-error':
      return 6;
    default:
      return 3;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The `qemu` virt driver: one `qemu-system-x86_64` per guest, daemonized
 * (guests outlive the agent), controlled over QMP on `<dir>/qmp.sock`,
 * with its disks, console log and state in `<instances_path>/<uuid>/`.
 * Operations on one guest run one at a time; changes the driver did not
 * make (the guest powered off inside, its process killed, QEMU paused it)
 * go to the lifecycle listener. Call {@link init} before use.
 */
export class QemuDriver implements VirtDriver {
  readonly type = 'qemu';
  readonly cache: ImageCache;
  private accel: Accel = 'tcg';
  private accelReason = 'not decided yet';
  private readonly guests: GuestProcesses;
  private timer: NodeJS.Timeout | null = null;
  private readonly config: QemuConfig;
  private readonly log: Logger;

  constructor(private readonly options: QemuDriverOptions) {
    this.config = options.config;
    this.log = options.log;
    this.cache = new ImageCache(options.config.image_cache_path, options.images, 'qemu-img', options.log);
    this.guests = new GuestProcesses({
      instancesPath: options.config.instances_path,
      binary: options.config.binary,
      vncListen: options.config.vnc_listen,
      shutdownTimeout: () => this.config.shutdown_timeout,
      accel: () => this.accel,
      log: options.log,
    });
  }

  /** The accelerator guests start with, and why. */
  get accelerator(): { accel: Accel; reason: string } {
    return { accel: this.accel, reason: this.accelReason };
  }

  /**
   * Makes the directories, decides KVM or TCG (the probe), reconnects to
   * the guests still running from a previous run, and starts the cache
   * cleanup. Never throws for a guest it cannot reconnect (it logs it).
   */
  async init(): Promise<void> {
    await fs.mkdir(this.config.instances_path, { recursive: true });
    await fs.mkdir(this.config.image_cache_path, { recursive: true });
    const decision = await decideAccel({ binary: this.config.binary, accel: this.config.accel, ...(this.options.probe ? { probe: this.options.probe } : {}), timeoutSeconds: this.config.probe_timeout });
    this.accel = decision.accel;
    this.accelReason = decision.reason;
    this.log.info({ accel: decision.accel, reason: decision.reason, hypervisor_type: decision.accel === 'kvm' ? 'KVM' : 'QEMU' }, `guests run under ${decision.accel === 'kvm' ? 'KVM' : 'TCG'}: ${decision.reason}`);
    for (const name of await fs.readdir(this.config.instances_path)) {
      if (!isGuestName(name)) continue;
      const pid = await this.guests.pidOf(name);
      if (pid === null) continue;
      await this.guests.connect(name, pid).then(
        () => this.log.info({ instance_uuid: name, pid }, 'reconnected to a running guest'),
        (err: unknown) => this.log.warn({ err, instance_uuid: name, pid }, 'a guest runs but its QMP socket does not answer'),
      );
    }
    const interval = this.options.imageCacheInterval ?? 2400;
    if (interval > 0) {
      this.timer = setInterval(() => void this.cleanImageCache().catch((err: unknown) => this.log.warn({ err }, 'image cache cleanup failed')), interval * 1000);
      this.timer.unref();
    }
  }

  /** Removes the unused bases older than `remove_unused_base_images_after` (also run periodically). Returns the image ids removed. */
  cleanImageCache(): Promise<string[]> {
    return cleanImageCache(this.config.image_cache_path, this.config.instances_path, this.config.remove_unused_base_images_after, this.log);
  }

  async hostResources(): Promise<HostResources> {
    return hostResources({ host: this.options.host, hostIp: this.options.hostIp ?? '127.0.0.1', binary: this.config.binary, instancesPath: this.config.instances_path, accel: this.accel, accelReason: this.accelReason });
  }

  onLifecycle(listener: LifecycleListener): void {
    this.guests.onLifecycle(listener);
  }

  /** Closes the QMP connections and stops the timers; guests keep running. */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.guests.close();
  }

  private paths(uuid: string): GuestPaths {
    return guestPaths(this.config.instances_path, uuid);
  }

  private async record(uuid: string): Promise<GuestRecord> {
    const record = await readRecord(this.paths(uuid));
    if (!record) throw new Error(`Instance ${uuid} could not be found on this host.`);
    return record;
  }

  // ---- the driver interface ----

  async spawn(spec: GuestSpec): Promise<void> {
    const uuid = spec.uuid;
    await this.guests.exclusive(uuid, async () => {
      const paths = this.paths(uuid);
      if (await exists(paths.dir)) await this.remove(uuid);
      await fs.mkdir(paths.dir, { recursive: true });
      try {
        const bootVolume = spec.blockDevices.find((d) => d.bootIndex === 0);
        let root: GuestRecord['root'];
        if (bootVolume) root = { kind: 'volume', volume: { volumeId: bootVolume.volumeId, device: bootVolume.device, connectionInfo: bootVolume.connectionInfo, slot: 0x3 } };
        else if (spec.imageRef) root = { kind: 'image', base: await this.cache.fetch(spec.imageRef) };
        else throw new Error(`server ${uuid} has neither an image nor a boot volume`);
        const record: GuestRecord = { version: 1, spec, root, volumes: [], nics: [], configDrive: spec.configDrive || this.config.force_config_drive, rescue: null };
        for (const d of spec.blockDevices) if (d !== bootVolume) record.volumes.push({ volumeId: d.volumeId, device: d.device, connectionInfo: d.connectionInfo, slot: freeSlot(record) });
        for (const vif of spec.vifs) record.nics.push({ ...vif, slot: freeSlot(record), tapCreated: false });
        // Written first: from now on the guest (its base in use, its taps) is found by cleanup and destroy.
        await writeRecord(paths, record);
        if (root.kind === 'image') await createOverlay({ qemuImg: 'qemu-img' }, paths.disk, root.base, rootSize(spec.rootGb, root.base));
        if (spec.ephemeralGb > 0) await createEphemeral(paths.ephemeral, spec.ephemeralGb);
        if (spec.swapMb > 0) await createSwap(paths.swap, spec.swapMb);
        if (record.configDrive) await createConfigDrive(paths.config, spec, this.options.metadata ?? { dhcpDomain: 'novalocal', vendorData: {} });
        for (const nic of record.nics) {
          nic.tapCreated = await ensureTap(nic.devName);
          await writeRecord(paths, record);
        }
        await this.guests.start(uuid, record);
      } catch (err) {
        await this.remove(uuid).catch((e: unknown) => this.log.warn({ err: e, instance_uuid: uuid }, 'could not clean up a failed spawn'));
        throw err;
      }
    });
  }

  /** Stops the process, removes the taps the driver made and the guest's directory. */
  private async remove(uuid: string): Promise<void> {
    const paths = this.paths(uuid);
    await this.guests.stop(uuid, false);
    const record = await readRecord(paths);
    for (const nic of record?.nics ?? []) if (nic.tapCreated) await deleteTap(nic.devName);
    await fs.rm(paths.dir, { recursive: true, force: true });
  }

  async destroy(uuid: string): Promise<void> {
    await this.guests.exclusive(uuid, async () => {
      await this.remove(uuid);
      this.log.info({ instance_uuid: uuid }, 'guest destroyed');
    });
  }

  async powerOff(uuid: string): Promise<void> {
    await this.guests.exclusive(uuid, async () => {
      await this.record(uuid);
      await this.guests.stop(uuid, true);
      // A suspended guest that is stopped forgets its saved state (as a managed save is dropped).
      await fs.rm(this.paths(uuid).state, { force: true });
    });
  }

  async powerOn(uuid: string): Promise<void> {
    await this.guests.exclusive(uuid, async () => {
      const record = await this.record(uuid);
      if (await exists(this.paths(uuid).state)) await this.restore(uuid, record);
      else await this.guests.start(uuid, record);
    });
  }

  async reboot(uuid: string, hard: boolean): Promise<void> {
    await this.guests.exclusive(uuid, async () => {
      const record = await this.record(uuid);
      // Soft: the guest powers off by itself (ACPI), then starts again; one that does not is stopped hard after the timeout.
      await this.guests.stop(uuid, !hard);
      await fs.rm(this.paths(uuid).state, { force: true });
      await this.guests.start(uuid, record);
    });
  }

  async pause(uuid: string): Promise<void> {
    await this.guests.exclusive(uuid, async () => {
      const qmp = await this.running(uuid);
      await qmp.execute('stop');
    });
  }

  async unpause(uuid: string): Promise<void> {
    await this.guests.exclusive(uuid, async () => {
      const qmp = await this.running(uuid);
      await qmp.execute('cont');
    });
  }

  private async running(uuid: string): Promise<QmpClient> {
    await this.record(uuid);
    const qmp = await this.guests.qmpOf(uuid);
    if (!qmp) throw new Error(`Instance ${uuid} is not running.`);
    return qmp;
  }

  /**
   * Saves the guest's memory and devices to `<dir>/state` (QEMU's migration
   * to a file) and ends its process; power state SUSPENDED while the file
   * is there. The file appears only once complete.
   */
  async suspend(uuid: string): Promise<void> {
    await this.guests.exclusive(uuid, async () => {
      const paths = this.paths(uuid);
      const qmp = await this.running(uuid);
      const partial = `${paths.state}.part`;
      await fs.rm(partial, { force: true });
      await qmp.execute('stop');
      try {
        await qmp.execute('migrate-set-parameters', { 'max-bandwidth': 4 * 1024 ** 3 });
        await qmp.execute('migrate', { uri: `exec:cat > ${shellQuote(partial)} && mv ${shellQuote(partial)} ${shellQuote(paths.state)}` });
        for (let delay = 10; ; delay = Math.min(delay * 2, 200)) {
          const info = await qmp.execute<{ status?: string; 'error-desc'?: string }>('query-migrate');
          if (info.status === 'completed') break;
          if (info.status === 'failed' || info.status === 'cancelled') throw new Error(`saving the state of ${uuid} failed: ${info['error-desc'] ?? info.status}`);
          await sleep(delay);
        }
      } catch (err) {
        await qmp.execute('cont').catch(() => undefined);
        throw err;
      }
      const deadline = Date.now() + 60_000;
      while (!(await exists(paths.state))) {
        if (Date.now() > deadline) throw new Error(`the saved state of ${uuid} did not appear`);
        await sleep(20);
      }
      await this.guests.stop(uuid, false);
      this.log.info({ instance_uuid: uuid }, 'guest suspended');
    });
  }

  async resume(uuid: string): Promise<void> {
    await this.guests.exclusive(uuid, async () => {
      const record = await this.record(uuid);
      if (!(await exists(this.paths(uuid).state))) {
        // Nothing saved: resuming a running guest is done; a stopped one starts.
        await this.guests.start(uuid, record);
        return;
      }
      await this.restore(uuid, record);
    });
  }

  /** Starts the guest from its saved state, then drops the state. */
  private async restore(uuid: string, record: GuestRecord): Promise<void> {
    const state = this.paths(uuid).state;
    await this.guests.start(uuid, record, state);
    await fs.rm(state, { force: true });
  }

  async rescue(uuid: string, rescueImageRef: string): Promise<void> {
    await this.guests.exclusive(uuid, async () => {
      const record = await this.record(uuid);
      const imageRef = rescueImageRef || record.spec.imageRef;
      if (!imageRef) throw new Error(`server ${uuid} has no image to rescue it with`);
      const base = await this.cache.fetch(imageRef);
      const paths = this.paths(uuid);
      await this.guests.stop(uuid, false);
      await fs.rm(paths.state, { force: true });
      await fs.rm(paths.rescue, { force: true });
      await createOverlay({ qemuImg: 'qemu-img' }, paths.rescue, base, base.virtualSize);
      record.rescue = { base };
      await writeRecord(paths, record);
      await this.guests.start(uuid, record);
    });
  }

  async unrescue(uuid: string): Promise<void> {
    await this.guests.exclusive(uuid, async () => {
      const record = await this.record(uuid);
      const paths = this.paths(uuid);
      if (!record.rescue && (await this.guests.pidOf(uuid)) !== null) return;
      await this.guests.stop(uuid, false);
      record.rescue = null;
      await writeRecord(paths, record);
      await fs.rm(paths.rescue, { force: true });
      await this.guests.start(uuid, record);
    });
  }

  async setAdminPassword(uuid: string): Promise<void> {
    await this.record(uuid);
    // Nova's libvirt driver needs a guest agent for this; the qemu driver has none.
    throw new NotImplemented('Unable to set password on instance');
  }

  /**
   * The root disk's current state as a standalone qcow2 file: a running
   * guest is paused for the copy (QEMU flushes its writes when it stops)
   * and resumed. The file is streamed by the caller and removed by
   * `cleanup`.
   */
  async snapshot(uuid: string): Promise<DiskSnapshot | null> {
    const paths = this.paths(uuid);
    const file = `${paths.dir}/snapshot-${randomBytes(6).toString('hex')}.qcow2`;
    await this.guests.exclusive(uuid, async () => {
      const record = await this.record(uuid);
      if (record.root.kind !== 'image') throw new Error(`server ${uuid} boots from a volume: its snapshot is a volume snapshot`);
      const qmp = await this.guests.qmpOf(uuid);
      const wasRunning = qmp ? (await qmp.execute<{ status: string }>('query-status')).status === 'running' : false;
      if (qmp && wasRunning) await qmp.execute('stop');
      try {
        await run('qemu-img', ['convert', '-U', '-f', 'qcow2', '-O', 'qcow2', paths.disk, file]);
      } catch (err) {
        await fs.rm(file, { force: true });
        throw err;
      } finally {
        if (qmp && wasRunning) await qmp.execute('cont').catch((err: unknown) => this.log.warn({ err, instance_uuid: uuid }, 'could not resume the guest after its snapshot'));
      }
    });
    const size = (await fs.stat(file)).size;
    return { diskFormat: 'qcow2', size, data: createReadStream(file), cleanup: () => fs.rm(file, { force: true }) };
  }

  /**
   * A cold resize on this host: the guest is stopped (cleanly), its root
   * disk grown to the new flavor (never shrunk), its ephemeral and swap
   * disks made to the new sizes, and it starts again with the new vCPUs
   * and memory if it was running.
   */
  async resize(uuid: string, guest: GuestSpec): Promise<void> {
    await this.guests.exclusive(uuid, async () => {
      const record = await this.record(uuid);
      const paths = this.paths(uuid);
      const wasRunning = (await this.guests.pidOf(uuid)) !== null;
      await this.guests.stop(uuid, true);
      await fs.rm(paths.state, { force: true });
      const old = record.spec;
      if (record.root.kind === 'image') await growOverlay({ qemuImg: 'qemu-img' }, paths.disk, rootSize(guest.rootGb, record.root.base));
      if (guest.ephemeralGb === 0) await fs.rm(paths.ephemeral, { force: true });
      else if (old.ephemeralGb === 0 || !(await exists(paths.ephemeral))) await createEphemeral(paths.ephemeral, guest.ephemeralGb);
      else if (guest.ephemeralGb > old.ephemeralGb) await fs.truncate(paths.ephemeral, guest.ephemeralGb * 1024 ** 3);
      if (guest.swapMb === 0) await fs.rm(paths.swap, { force: true });
      else if (guest.swapMb !== old.swapMb || !(await exists(paths.swap))) await createSwap(paths.swap, guest.swapMb);
      record.spec = { ...guest, blockDevices: old.blockDevices, vifs: old.vifs };
      await writeRecord(paths, record);
      if (wasRunning) await this.guests.start(uuid, record);
    });
  }

  async consoleOutput(uuid: string, lines?: number): Promise<string> {
    const paths = this.paths(uuid);
    if (!(await exists(paths.record))) throw new Error(`Instance ${uuid} could not be found on this host.`);
    const text = await readTail(paths.console, CONSOLE_BYTES);
    if (lines === undefined) return text;
    const all = text.split('\n');
    if (all[all.length - 1] === '') all.pop();
    return all.slice(-lines).join('\n');
  }

  private hotplug(): HotplugContext {
    return {
      paths: (uuid) => this.paths(uuid),
      record: (uuid) => this.record(uuid),
      qmp: (uuid) => this.guests.qmpOf(uuid),
      detachTimeoutMs: (this.options.detachTimeout ?? 30) * 1000,
      log: this.log,
    };
  }

  async attachInterface(uuid: string, vif: GuestVif): Promise<void> {
    await this.guests.exclusive(uuid, () => attachInterface(this.hotplug(), uuid, vif));
  }

  async detachInterface(uuid: string, portId: string): Promise<void> {
    await this.guests.exclusive(uuid, () => detachInterface(this.hotplug(), uuid, portId));
  }

  async attachVolume(uuid: string, volumeId: string, connectionInfo: Record<string, unknown>, device: string): Promise<void> {
    await this.guests.exclusive(uuid, () => attachVolume(this.hotplug(), uuid, volumeId, connectionInfo, device));
  }

  async detachVolume(uuid: string, volumeId: string): Promise<void> {
    await this.guests.exclusive(uuid, () => detachVolume(this.hotplug(), uuid, volumeId));
  }

  async extendVolume(uuid: string, volumeId: string, sizeGb: number): Promise<void> {
    await this.guests.exclusive(uuid, () => extendVolume(this.hotplug(), uuid, volumeId, sizeGb));
  }

  async listGuests(): Promise<{ uuid: string; powerState: GuestPowerState }[]> {
    const guests: { uuid: string; powerState: GuestPowerState }[] = [];
    for (const name of await fs.readdir(this.config.instances_path).catch(() => [] as string[])) {
      if (!isGuestName(name) || !(await exists(this.paths(name).record))) continue;
      guests.push({ uuid: name, powerState: await this.powerState(name) });
    }
    return guests;
  }

  private async powerState(uuid: string): Promise<GuestPowerState> {
    const qmp = await this.guests.qmpOf(uuid).catch(() => null);
    if (qmp) {
      const status = await qmp.execute<{ status: string }>('query-status').catch(() => null);
      if (status) return powerOfStatus(status.status);
      return 0;
    }
    // A suspended guest has no process either: SHUTDOWN, as libvirt reports a managed-saved
    // domain and as the agent records a suspend (vm_state `suspended` tells them apart).
    return 4;
  }

  async vncConsole(uuid: string): Promise<VncEndpoint | null> {
    const qmp = await this.guests.qmpOf(uuid).catch(() => null);
    if (!qmp) return null;
    const vnc = await qmp.execute<{ enabled: boolean; service?: string }>('query-vnc');
    if (!vnc.enabled || !vnc.service) return null;
    return { host: this.config.vnc_listen, port: Number(vnc.service) };
  }

  /** The guest's process id, or null when it does not run (tests, diagnostics). */
  pid(uuid: string): Promise<number | null> {
    return this.guests.pidOf(uuid);
  }
}
