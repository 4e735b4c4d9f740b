import type { DiskSnapshot, GuestPowerState, GuestSpec, GuestVif, HostResources, LifecycleListener, VirtDriver, VncEndpoint } from '../driver.js';

/** One call the fake driver was asked to make. */
export interface FakeCall {
  method: string;
  uuid?: string;
  args?: unknown[];
}

interface FakeGuest {
  spec: GuestSpec;
  power: GuestPowerState;
  rescued: boolean;
  /** The last password set with setAdminPassword. */
  adminPassword?: string;
  volumes: Map<string, string>;
  console: string[];
}

/**
 * A hypervisor that runs no guests: it keeps each guest's state in memory,
 * records every call, and can be told to fail the next spawns (for
 * reschedule tests). Its resources are what the configuration says.
 */
export class FakeDriver implements VirtDriver {
  /**
   * Consoles by server, shared by every fake host of the process, as a
   * guest's console log sits in its instance directory and moves with it:
   * a server migrated or resized to another fake host keeps its output.
   * Counted by the hosts that have the guest, dropped with the last.
   */
  private static readonly consoles = new Map<string, { lines: string[]; holders: number }>();
  readonly type = 'fake';
  private lifecycle: LifecycleListener | null = null;
  readonly calls: FakeCall[] = [];
  private readonly guests = new Map<string, FakeGuest>();
  /** Spawns still to fail, with the message they throw. */
  failSpawns: string[] = [];
  /** Keep at most this many calls (a long benchmark would otherwise grow the list for ever). */
  private readonly maxCalls = 10_000;

  constructor(private readonly resources: HostResources) {}

  private record(method: string, uuid?: string, ...args: unknown[]): void {
    if (this.calls.length >= this.maxCalls) this.calls.splice(0, this.calls.length - this.maxCalls + 1);
    this.calls.push({ method, ...(uuid ? { uuid } : {}), ...(args.length ? { args } : {}) });
  }

  private guest(uuid: string): FakeGuest {
    const guest = this.guests.get(uuid);
    if (!guest) throw new Error(`Instance ${uuid} could not be found on this host.`);
    return guest;
  }

  /** The power state of a guest, or undefined when there is none (tests). */
  powerState(uuid: string): GuestPowerState | undefined {
    return this.guests.get(uuid)?.power;
  }

  /** Makes a guest stop as if it shut down by itself (tests of the power-state sync). */
  crash(uuid: string): void {
    this.guest(uuid).power = 4;
  }

  async hostResources(): Promise<HostResources> {
    return this.resources;
  }

  async spawn(guest: GuestSpec): Promise<void> {
    this.record('spawn', guest.uuid);
    const failure = this.failSpawns.shift();
    if (failure !== undefined) throw new Error(failure);
    if (this.guests.has(guest.uuid)) this.releaseConsole(guest.uuid);
    this.guests.set(guest.uuid, { spec: guest, power: 1, rescued: false, volumes: new Map(guest.blockDevices.map((d) => [d.volumeId, d.device])), console: this.holdConsole(guest.uuid, guest.name) });
  }

  /** The volumes a guest has, by id, with their devices (tests). */
  volumesOf(uuid: string): Record<string, string> {
    return Object.fromEntries(this.guests.get(uuid)?.volumes ?? []);
  }

  private holdConsole(uuid: string, name: string): string[] {
    const shared = FakeDriver.consoles.get(uuid) ?? { lines: [`fake console of ${name}`, 'fake kernel: booting', 'fake init: starting services', 'fake init: network up', 'login:'], holders: 0 };
    shared.holders += 1;
    FakeDriver.consoles.set(uuid, shared);
    return shared.lines;
  }

  private releaseConsole(uuid: string): void {
    const shared = FakeDriver.consoles.get(uuid);
    if (shared && --shared.holders <= 0) FakeDriver.consoles.delete(uuid);
  }

  async destroy(uuid: string): Promise<void> {
    this.record('destroy', uuid);
    if (this.guests.delete(uuid)) this.releaseConsole(uuid);
  }

  async reboot(uuid: string, hard: boolean): Promise<void> {
    this.record('reboot', uuid, hard);
    const guest = this.guest(uuid);
    guest.power = 1;
    guest.console.push('reboot: Restarting system');
  }

  async powerOff(uuid: string): Promise<void> {
    this.record('powerOff', uuid);
    this.guest(uuid).power = 4;
  }

  async powerOn(uuid: string): Promise<void> {
    this.record('powerOn', uuid);
    this.guest(uuid).power = 1;
  }

  async pause(uuid: string): Promise<void> {
    this.record('pause', uuid);
    this.guest(uuid).power = 3;
  }

  async unpause(uuid: string): Promise<void> {
    this.record('unpause', uuid);
    this.guest(uuid).power = 1;
  }

  async suspend(uuid: string): Promise<void> {
    this.record('suspend', uuid);
    this.guest(uuid).power = 4;
  }

  async resume(uuid: string): Promise<void> {
    this.record('resume', uuid);
    this.guest(uuid).power = 1;
  }

  async setAdminPassword(uuid: string, password: string): Promise<void> {
    this.record('setAdminPassword', uuid);
    this.guest(uuid).adminPassword = password;
  }

  async rescue(uuid: string, rescueImageRef: string): Promise<void> {
    this.record('rescue', uuid, rescueImageRef);
    const guest = this.guest(uuid);
    guest.rescued = true;
    guest.power = 1;
  }

  async unrescue(uuid: string): Promise<void> {
    this.record('unrescue', uuid);
    const guest = this.guest(uuid);
    guest.rescued = false;
    guest.power = 1;
  }

  async snapshot(uuid: string): Promise<DiskSnapshot | null> {
    this.record('snapshot', uuid);
    this.guest(uuid);
    return null;
  }

  async resize(uuid: string, guest: GuestSpec): Promise<void> {
    this.record('resize', uuid, guest.vcpus, guest.memoryMb, guest.rootGb);
    const current = this.guests.get(uuid);
    this.guests.set(uuid, { spec: guest, power: current?.power ?? 1, rescued: false, volumes: current?.volumes ?? new Map(guest.blockDevices.map((d) => [d.volumeId, d.device])), console: current?.console ?? this.holdConsole(uuid, guest.name) });
  }

  async consoleOutput(uuid: string, lines?: number): Promise<string> {
    const out = this.guest(uuid).console;
    return (lines === undefined ? out : out.slice(-lines)).join('\n');
  }

  async attachInterface(uuid: string, vif: GuestVif): Promise<void> {
    this.record('attachInterface', uuid, vif.portId);
    this.guest(uuid).spec.vifs.push(vif);
  }

  async detachInterface(uuid: string, portId: string): Promise<void> {
    this.record('detachInterface', uuid, portId);
    const guest = this.guest(uuid);
    guest.spec.vifs = guest.spec.vifs.filter((v) => v.portId !== portId);
  }

  async attachVolume(uuid: string, volumeId: string, connectionInfo: Record<string, unknown>, device: string): Promise<void> {
    this.record('attachVolume', uuid, volumeId, connectionInfo, device);
    this.guest(uuid).volumes.set(volumeId, device);
  }

  async detachVolume(uuid: string, volumeId: string): Promise<void> {
    this.record('detachVolume', uuid, volumeId);
    this.guest(uuid).volumes.delete(volumeId);
  }

  async extendVolume(uuid: string, volumeId: string, sizeGb: number): Promise<void> {
    this.record('extendVolume', uuid, volumeId, sizeGb);
    if (!this.guest(uuid).volumes.has(volumeId)) throw new Error(`Volume ${volumeId} is not attached to ${uuid}.`);
  }

  async listGuests(): Promise<{ uuid: string; powerState: GuestPowerState }[]> {
    return [...this.guests.entries()].map(([uuid, g]) => ({ uuid, powerState: g.power }));
  }

  /** The fake runs no VNC servers: consoles are unavailable. */
  async vncConsole(): Promise<VncEndpoint | null> {
    return null;
  }

  /** Fake guests never change on their own; the listener is kept for tests that simulate it. */
  onLifecycle(listener: LifecycleListener): void {
    this.lifecycle = listener;
  }

  /** Tells the listener a guest changed by itself (a test's simulated crash). */
  simulateLifecycle(uuid: string, powerState: GuestPowerState): void {
    const guest = this.guests.get(uuid);
    if (guest) guest.power = powerState;
    this.lifecycle?.(uuid, powerState);
  }

  async close(): Promise<void> {}
}
