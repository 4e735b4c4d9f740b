/**
 * The virt driver interface: what a compute agent asks of its hypervisor.
 * Small and typed; the agent owns the state machine, the driver only acts on
 * guests. Drivers never touch compute's database (agents have none).
 * Every method is idempotent where that makes sense: destroying a guest that
 * is gone succeeds, powering off a stopped one succeeds.
 */

import type { Readable } from 'node:stream';
import type { InstanceMetadataInfo } from '../metadata/content.js';

/** What a driver needs to know of a server. */
export interface GuestSpec {
  uuid: string;
  name: string;
  /** The flavor's sizes. */
  vcpus: number;
  memoryMb: number;
  rootGb: number;
  ephemeralGb: number;
  swapMb: number;
  /** The image id ('' when booted from a volume) and its properties. */
  imageRef: string;
  imageProperties: Record<string, unknown>;
  /** Volumes connected to this host before the guest starts; the one with boot index 0 is its root disk. */
  blockDevices: GuestBlockDevice[];
  /** The server's ports, as the network service bound them. */
  vifs: GuestVif[];
  userData: string | null;
  keyData: string | null;
  configDrive: boolean;
  metadata: Record<string, string>;
  /** What the guest's config drive and the metadata service say of it. */
  metadataInfo: InstanceMetadataInfo;
}

/** Where a guest's VNC server listens, for the console proxy to connect to. */
export interface VncEndpoint {
  host: string;
  port: number;
}

/** A guest's disk captured for a snapshot image, to be streamed to the image service once. */
export interface DiskSnapshot {
  /** The image's `disk_format` (`qcow2`, `raw`). */
  diskFormat: string;
  /** The bytes, when known. */
  size?: number;
  data: Readable;
  /** Removes what the capture left on the host; called once after the upload, whether it worked or not. */
  cleanup(): Promise<void>;
}

/** A guest's power state changed on its own (it shut down inside, or its process died). */
export type LifecycleListener = (uuid: string, powerState: GuestPowerState) => void;

export interface GuestVif {
  portId: string;
  networkId: string;
  mac: string;
  /** The device the network driver plugs the port into (a tap for the linux driver). */
  devName: string;
  fixedIps: string[];
}

/** A volume as a guest gets it. */
export interface GuestBlockDevice {
  volumeId: string;
  /** `/dev/vda`, ... */
  device: string;
  /** 0 for the root disk, null for a data disk. */
  bootIndex: number | null;
  /** What the block storage service handed out for this host (`driver_volume_type` and `data`). */
  connectionInfo: Record<string, unknown>;
}

/** A guest's power state as the driver sees it (Nova's numbers). */
export type GuestPowerState = 0 | 1 | 3 | 4 | 6 | 7;

/** What a host offers (reported to placement and shown by `hypervisor show`). */
export interface HostResources {
  hypervisorHostname: string;
  hypervisorType: string;
  hypervisorVersion: number;
  hostIp: string;
  vcpus: number;
  memoryMb: number;
  localGb: number;
  cpuInfo: Record<string, unknown>;
  /** Capability traits (`COMPUTE_*`, `HW_CPU_*`) this host's driver supports. */
  traits: string[];
}

export interface VirtDriver {
  /** The driver's name (`fake`, `qemu`). */
  readonly type: string;
  /** Host resources; called at start and periodically. */
  hostResources(): Promise<HostResources>;
  /** Builds and starts a guest. Throws on failure (the agent cleans up and reschedules). */
  spawn(guest: GuestSpec): Promise<void>;
  /** Stops and removes a guest and its local disks. Succeeds when the guest does not exist. */
  destroy(uuid: string): Promise<void>;
  reboot(uuid: string, hard: boolean): Promise<void>;
  powerOff(uuid: string): Promise<void>;
  powerOn(uuid: string): Promise<void>;
  pause(uuid: string): Promise<void>;
  unpause(uuid: string): Promise<void>;
  suspend(uuid: string): Promise<void>;
  resume(uuid: string): Promise<void>;
  /** Boots the guest from a rescue image, keeping its disk attached. */
  rescue(uuid: string, rescueImageRef: string): Promise<void>;
  unrescue(uuid: string): Promise<void>;
  /** Sets the guest's administrator password (Nova's `set_admin_password`). */
  setAdminPassword(uuid: string, password: string): Promise<void>;
  /** The guest's root disk as a stream of qcow2 (or raw) bytes for a snapshot image; null when the driver has no disk data (fake). */
  snapshot(uuid: string): Promise<DiskSnapshot | null>;
  /** Gives the guest a new flavor's sizes (a cold resize on this host). */
  resize(uuid: string, guest: GuestSpec): Promise<void>;
  /** Console output, the last `lines` lines when given. */
  consoleOutput(uuid: string, lines?: number): Promise<string>;
  attachInterface(uuid: string, vif: GuestVif): Promise<void>;
  detachInterface(uuid: string, portId: string): Promise<void>;
  attachVolume(uuid: string, volumeId: string, connectionInfo: Record<string, unknown>, device: string): Promise<void>;
  detachVolume(uuid: string, volumeId: string): Promise<void>;
  /** Tells the guest an attached volume grew (the `volume-extended` event) to `sizeGb`. */
  extendVolume(uuid: string, volumeId: string, sizeGb: number): Promise<void>;
  /** Every guest this driver runs on the host, with its power state (for the power-state sync and recovery). */
  listGuests(): Promise<{ uuid: string; powerState: GuestPowerState }[]>;
  /** Where the guest's VNC server listens; null when this driver has no consoles (fake) or the guest is not running. */
  vncConsole(uuid: string): Promise<VncEndpoint | null>;
  /** Registers the one listener told of power changes the agent did not ask for. */
  onLifecycle(listener: LifecycleListener): void;
  /** Stops the driver's own work (timers, QMP connections); guests keep running. */
  close(): Promise<void>;
}
