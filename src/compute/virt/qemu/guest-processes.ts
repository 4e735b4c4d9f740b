import fs from 'node:fs/promises';
import type { Logger } from '../../../core/logging.js';
import type { GuestPowerState, LifecycleListener } from '../driver.js';
import { type Accel, buildCommandLine, guestMarker } from './command-line.js';
import { guestPaths, type GuestPaths, type GuestRecord } from './guest-record.js';
import { exists, killProcess, processAlive, readPid, run, waitForExit } from '../../../core/host-commands.js';
import { QmpClient } from './qmp.js';

/**
 * The guests' QEMU processes: started daemonized from their records,
 * stopped (ACPI first, or at once), one QMP session each, held while the
 * process runs. Operations on a guest run one at a time through
 * `exclusive`; what happens to a guest outside them (its process exits,
 * QEMU pauses or resumes it) goes to the lifecycle listener.
 */

/** What the processes need to know. */
export interface GuestProcessesOptions {
  instancesPath: string;
  binary: string;
  vncListen: string;
  /** Seconds a guest has to power off after ACPI powerdown. */
  shutdownTimeout: () => number;
  /** The accelerator new processes start with. */
  accel: () => Accel;
  log: Logger;
}

interface LiveGuest {
  qmp: QmpClient;
  pid: number;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The running guests of one driver (see the module comment). */
export class GuestProcesses {
  private listener: LifecycleListener | null = null;
  private readonly live = new Map<string, LiveGuest>();
  private readonly busy = new Map<string, number>();
  private readonly queues = new Map<string, Promise<unknown>>();
  private readonly connecting = new Map<string, Promise<QmpClient>>();
  private closing = false;
  private readonly log: Logger;

  constructor(private readonly options: GuestProcessesOptions) {
    this.log = options.log;
  }

  /** Registers the one listener of changes the driver did not make. */
  onLifecycle(listener: LifecycleListener): void {
    this.listener = listener;
  }

  /** Waits for the operations in progress, then closes every QMP session; guests keep running. */
  async close(): Promise<void> {
    this.closing = true;
    await Promise.allSettled([...this.queues.values()]);
    await Promise.all([...this.live.values()].map((g) => g.qmp.close()));
    this.live.clear();
  }

  private paths(uuid: string): GuestPaths {
    return guestPaths(this.options.instancesPath, uuid);
  }

  /** Runs `work` on the guest after the operations before it; its own changes are not lifecycle events. */
  async exclusive<T>(uuid: string, work: () => Promise<T>): Promise<T> {
    const before = this.queues.get(uuid) ?? Promise.resolve();
    this.busy.set(uuid, (this.busy.get(uuid) ?? 0) + 1);
    const result = before.then(work, work);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.queues.set(uuid, tail);
    try {
      return await result;
    } finally {
      const left = (this.busy.get(uuid) ?? 1) - 1;
      if (left > 0) this.busy.set(uuid, left);
      else this.busy.delete(uuid);
      if (this.queues.get(uuid) === tail) this.queues.delete(uuid);
    }
  }

  /** The pid of the guest's live process, or null. */
  async pidOf(uuid: string): Promise<number | null> {
    const pid = await readPid(this.paths(uuid).pid);
    return pid !== null && (await processAlive(pid, guestMarker(uuid))) ? pid : null;
  }

  /** The guest's QMP session, connecting when the process runs but no session is open; null when it does not run. */
  async qmpOf(uuid: string): Promise<QmpClient | null> {
    const live = this.live.get(uuid);
    if (live && !live.qmp.isClosed) return live.qmp;
    const pid = await this.pidOf(uuid);
    if (pid === null) return null;
    return this.connect(uuid, pid);
  }

  /** Opens a QMP session to the guest's running process and watches it; concurrent callers share one (QEMU serves one client per socket). */
  connect(uuid: string, pid: number): Promise<QmpClient> {
    let pending = this.connecting.get(uuid);
    if (!pending) {
      pending = QmpClient.connect(this.paths(uuid).qmp, { timeoutMs: 5000 })
        .then((qmp) => {
          this.watch(uuid, qmp, pid);
          return qmp;
        })
        .finally(() => this.connecting.delete(uuid));
      this.connecting.set(uuid, pending);
    }
    return pending;
  }

  /** Follows a session: events and its end the driver did not cause go to the listener. */
  private watch(uuid: string, qmp: QmpClient, pid: number): void {
    this.live.set(uuid, { qmp, pid });
    qmp.on('event', (e) => {
      if (this.closing || this.busy.has(uuid)) return;
      if (e.event === 'STOP') this.tell(uuid, 3);
      else if (e.event === 'RESUME') this.tell(uuid, 1);
    });
    qmp.once('close', () => {
      if (this.live.get(uuid)?.qmp === qmp) this.live.delete(uuid);
      if (this.closing || this.busy.has(uuid)) return;
      void this.noticeGone(uuid, pid);
    });
  }

  /** The QMP session ended without the driver asking: the process exited (tell the listener) or only the socket went. */
  private async noticeGone(uuid: string, pid: number): Promise<void> {
    if (await waitForExit(pid, guestMarker(uuid), 2000)) {
      const power: GuestPowerState = (await exists(this.paths(uuid).state)) ? 7 : 4;
      this.log.info({ instance_uuid: uuid, pid, power_state: power }, 'the guest stopped by itself');
      this.tell(uuid, power);
      return;
    }
    await this.connect(uuid, pid).catch((err: unknown) => this.log.warn({ err, instance_uuid: uuid }, 'lost the QMP session of a running guest'));
  }

  /** Tells the listener, which must not break the driver. */
  private tell(uuid: string, power: GuestPowerState): void {
    try {
      this.listener?.(uuid, power);
    } catch (err) {
      this.log.warn({ err, instance_uuid: uuid }, 'the lifecycle listener failed');
    }
  }

  /** Starts the guest's process from its record (from a saved state with `incoming`) and waits until it runs. */
  async start(uuid: string, record: GuestRecord, incoming?: string): Promise<void> {
    const paths = this.paths(uuid);
    if ((await this.pidOf(uuid)) !== null) return;
    await fs.rm(paths.qmp, { force: true });
    await fs.rm(paths.monitor, { force: true });
    await fs.rm(paths.pid, { force: true });
    await trimConsole(paths.console);
    const args = buildCommandLine(record, paths, { accel: this.options.accel(), vncListen: this.options.vncListen, ...(incoming ? { incomingState: incoming } : {}) });
    await run(this.options.binary, args, { timeoutMs: 60_000, detached: true });
    const pid = await readPid(paths.pid);
    if (pid === null) throw new Error(`QEMU started guest ${uuid} but wrote no pid file`);
    const qmp = await this.connect(uuid, pid);
    for (let delay = 10; ; delay = Math.min(delay * 2, 200)) {
      const status = await qmp.execute<{ status: string }>('query-status');
      if (status.status === 'running') break;
      if (status.status !== 'inmigrate' && status.status !== 'prelaunch' && status.status !== 'finish-migrate') {
        if (incoming) await qmp.execute('cont');
        else throw new Error(`guest ${uuid} is ${status.status} after its start`);
      }
      await sleep(delay);
    }
    this.log.info({ instance_uuid: uuid, pid, accel: this.options.accel(), incoming: incoming !== undefined }, 'guest started');
  }

  /**
   * Stops the guest's process: `clean` asks the guest to power off (ACPI)
   * and waits `shutdown_timeout`, then (or at once when not clean) QEMU is
   * told to quit, then killed. Returns when the process and its QMP session
   * are gone; succeeds when it was not running.
   */
  async stop(uuid: string, clean: boolean): Promise<void> {
    const pid = await this.pidOf(uuid);
    if (pid === null) {
      this.live.delete(uuid);
      return;
    }
    const marker = guestMarker(uuid);
    const qmp = await this.qmpOf(uuid).catch(() => null);
    let gone = false;
    if (qmp && clean) {
      const status = await qmp.execute<{ status: string }>('query-status').catch(() => ({ status: 'unknown' }));
      if (status.status === 'running') {
        await qmp.execute('system_powerdown').catch(() => undefined);
        gone = await waitForExit(pid, marker, this.options.shutdownTimeout() * 1000);
        if (!gone) this.log.warn({ instance_uuid: uuid, timeout: this.options.shutdownTimeout() }, 'the guest did not power off in time; stopping it hard');
      }
    }
    if (!gone && qmp && !qmp.isClosed) {
      await qmp.execute('quit').catch(() => undefined);
      gone = await waitForExit(pid, marker, 5000);
    }
    if (!gone) await killProcess(pid, marker);
    if (qmp) await qmp.whenClosed();
    this.live.delete(uuid);
  }
}

/** Console output Nova returns at most (its `MAX_CONSOLE_BYTES`). */
export const CONSOLE_BYTES = 100 * 1024;
/** A console log past this is cut to its last {@link CONSOLE_BYTES} when its guest starts. */
const CONSOLE_LIMIT = 1024 * 1024;

/** The last `bytes` of a file as text (CRLF as LF); empty when it does not exist. */
export async function readTail(file: string, bytes: number): Promise<string> {
  const handle = await fs.open(file, 'r').catch(() => null);
  if (!handle) return '';
  try {
    const size = (await handle.stat()).size;
    const length = Math.min(size, bytes);
    const buffer = Buffer.alloc(length);
    await handle.read(buffer, 0, length, size - length);
    return buffer.toString('utf8').replaceAll('\r\n', '\n');
  } finally {
    await handle.close();
  }
}

/** Keeps a console log from growing for ever across restarts. */
async function trimConsole(file: string): Promise<void> {
  const stat = await fs.stat(file).catch(() => null);
  if (!stat || stat.size <= CONSOLE_LIMIT) return;
  const tail = await readTail(file, CONSOLE_BYTES);
  await fs.writeFile(file, tail);
}
