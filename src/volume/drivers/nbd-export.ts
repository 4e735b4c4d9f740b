import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** One volume's NBD export: a `qemu-nbd` daemon, and the attachments that use it. */
export interface NbdExport {
  volume_id: string;
  pid: number;
  host: string;
  port: number;
  /** The export name: the volume's id. */
  export_name: string;
  attachments: string[];
}

/**
 * NBD exports of a file backend: one `qemu-nbd` daemon per exported volume
 * (not per attachment: two writers on one image would fight over its lock;
 * a multiattach volume's attachments share the export), named after the
 * volume (`nbd-<volume id>.json` and `.pid` in the backend's directory), so
 * a restarted agent finds them. The daemons outlive the agent: attached
 * guests keep their disks while it restarts.
 */
export class NbdExports {
  /** One change at a time per volume. */
  private readonly locks = new Map<string, Promise<unknown>>();

  constructor(
    private readonly dir: string,
    private readonly qemuNbd: string,
    private readonly bindHost: string,
  ) {}

  private recordPath(volumeId: string): string {
    return path.join(this.dir, `nbd-${volumeId}.json`);
  }

  private pidPath(volumeId: string): string {
    return path.join(this.dir, `nbd-${volumeId}.pid`);
  }

  private serial<T>(volumeId: string, work: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(volumeId) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(work);
    this.locks.set(volumeId, next);
    void next.finally(() => {
      if (this.locks.get(volumeId) === next) this.locks.delete(volumeId);
    }).catch(() => undefined);
    return next;
  }

  /** The export of a volume whose daemon still runs, or null. */
  read(volumeId: string): NbdExport | null {
    try {
      const record = JSON.parse(fs.readFileSync(this.recordPath(volumeId), 'utf8')) as NbdExport;
      return isOurDaemon(record) ? record : null;
    } catch {
      return null;
    }
  }

  private write(record: NbdExport): void {
    const file = this.recordPath(record.volume_id);
    fs.writeFileSync(`${file}.tmp`, JSON.stringify(record));
    fs.renameSync(`${file}.tmp`, file);
  }

  /** Exports `file` (of `format`) for `attachmentId`, starting the volume's daemon if needed. Idempotent. */
  open(volumeId: string, file: string, format: string, attachmentId: string): Promise<NbdExport> {
    return this.serial(volumeId, async () => {
      const current = this.read(volumeId);
      if (current) {
        if (!current.attachments.includes(attachmentId)) {
          current.attachments.push(attachmentId);
          this.write(current);
        }
        return current;
      }
      let lastError: unknown;
      for (let attempt = 0; attempt < 5; attempt++) {
        const port = await freeTcpPort(this.bindHost);
        try {
          const pid = await this.startDaemon(volumeId, file, format, port);
          const record: NbdExport = { volume_id: volumeId, pid, host: this.bindHost, port, export_name: volumeId, attachments: [attachmentId] };
          this.write(record);
          return record;
        } catch (err) {
          lastError = err;
          if (!/address already in use/i.test(String((err as Error).message))) break;
        }
      }
      throw lastError instanceof Error ? lastError : new Error(String(lastError));
    });
  }

  private startDaemon(volumeId: string, file: string, format: string, port: number): Promise<number> {
    const pidFile = this.pidPath(volumeId);
    fs.rmSync(pidFile, { force: true });
    const args = ['--fork', `--pid-file=${pidFile}`, '--persistent', '--shared=8', '-f', format, '-b', this.bindHost, '-p', String(port), '-x', volumeId, file];
    return new Promise((resolve, reject) => {
      execFile(this.qemuNbd, args, { timeout: 30_000 }, (err, _stdout, stderr) => {
        if (err) {
          reject(new Error(`qemu-nbd could not export volume ${volumeId}: ${String(stderr || err.message).trim().split('\n').slice(0, 3).join(' ')}`));
          return;
        }
        try {
          resolve(Number(fs.readFileSync(pidFile, 'utf8').trim()));
        } catch (e) {
          reject(e instanceof Error ? e : new Error(String(e)));
        }
      });
    });
  }

  /** Ends `attachmentId`'s use of the export; the daemon stops with the last attachment. Succeeds when there is none. */
  close(volumeId: string, attachmentId: string): Promise<void> {
    return this.serial(volumeId, async () => {
      const current = this.read(volumeId);
      if (!current) {
        this.forget(volumeId);
        return;
      }
      current.attachments = current.attachments.filter((a) => a !== attachmentId);
      if (current.attachments.length > 0) {
        this.write(current);
        return;
      }
      await stopDaemon(current);
      this.forget(volumeId);
    });
  }

  /** Stops a volume's export whatever its attachments (the volume is deleted). */
  closeAll(volumeId: string): Promise<void> {
    return this.serial(volumeId, async () => {
      const current = this.read(volumeId);
      if (current) await stopDaemon(current);
      this.forget(volumeId);
    });
  }

  private forget(volumeId: string): void {
    fs.rmSync(this.recordPath(volumeId), { force: true });
    fs.rmSync(this.pidPath(volumeId), { force: true });
  }

  /** The volume ids with an export record in the directory (running or not). */
  recorded(): string[] {
    const ids: string[] = [];
    for (const name of fs.readdirSync(this.dir)) {
      const m = /^nbd-(.+)\.json$/.exec(name);
      if (m?.[1]) ids.push(m[1]);
    }
    return ids;
  }
}

/** True when the record's pid is a qemu-nbd exporting that volume (not a recycled pid). */
function isOurDaemon(record: NbdExport): boolean {
  try {
    const cmdline = fs.readFileSync(`/proc/${record.pid}/cmdline`, 'utf8').split('\0');
    return cmdline.some((a) => a.endsWith('qemu-nbd')) && cmdline.includes(record.export_name);
  } catch {
    return false;
  }
}

async function stopDaemon(record: NbdExport): Promise<void> {
  if (!isOurDaemon(record)) return;
  try {
    process.kill(record.pid, 'SIGTERM');
  } catch {
    return;
  }
  for (let i = 0; i < 100 && isOurDaemon(record); i++) await sleep(50);
  if (isOurDaemon(record)) {
    try {
      process.kill(record.pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
}

/** A TCP port free on `host` right now. */
function freeTcpPort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
