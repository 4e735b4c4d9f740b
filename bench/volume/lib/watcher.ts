import { sleep } from '../../lib/proc.js';
import { say } from '../../lib/run.js';
import type { Cloud } from './client.js';

/** What a waiter hears: the poll that no longer showed its volume in the transient status, or that the watch stopped. */
export interface Seen {
  /** `done` (left the transient status: the final status is checked after the phase), a status seen (`error`...), or `aborted`. */
  outcome: string;
  /** Date.now() of the end of the poll that saw it. */
  at: number;
}

interface Waiter {
  /** Polls that started before the waiter registered must not settle it. */
  since: number;
  resolve(seen: Seen): void;
}

/**
 * Watches the volumes of the project with one `GET /volumes/detail?status=<transient>`
 * at a time (`creating` while volumes are created, `deleting` while they are
 * deleted), `pollMs` after the previous poll ended, following `next` links,
 * and tells each waiter when its volume is no longer in that status: it has
 * left the list (or, should the filter be ignored, shows another status).
 * One request at a time, whatever the number of volumes in flight, never one
 * per volume; the list stays as short as the volumes in flight.
 */
export class Watcher {
  private readonly waiters = new Map<string, Waiter>();
  private running = true;
  private loop: Promise<void> | null = null;
  private pollSeq = 0;
  polls = 0;
  pollErrors = 0;

  constructor(
    private readonly cloud: Cloud,
    private readonly transient: 'creating' | 'deleting',
    private readonly pollMs: number,
    private readonly aborted: () => boolean,
  ) {}

  start(): void {
    this.loop = this.run();
  }

  /** Stops polling; whoever still waits hears `aborted`. */
  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
    this.release();
  }

  private release(): void {
    for (const [id, waiter] of this.waiters) {
      this.waiters.delete(id);
      waiter.resolve({ outcome: 'aborted', at: Date.now() });
    }
  }

  /** Resolves once a poll that started after this call no longer shows `id` in the transient status. */
  wait(id: string): Promise<Seen> {
    if (!this.running) return Promise.resolve({ outcome: 'aborted', at: Date.now() });
    return new Promise((resolve) => this.waiters.set(id, { since: this.pollSeq + 1, resolve }));
  }

  private async run(): Promise<void> {
    while (this.running) {
      if (this.aborted()) {
        this.running = false;
        this.release();
        break;
      }
      if (this.waiters.size === 0) {
        await sleep(5);
        continue;
      }
      const seq = ++this.pollSeq;
      try {
        const shown = new Map<string, string>();
        let url: string | null = `${this.cloud.volumeUrl}/volumes/detail?status=${this.transient}&limit=1000`;
        while (url) {
          const res = await this.cloud.call('GET', url);
          if (res.status !== 200) throw new Error(`GET ${url}: HTTP ${res.status}: ${res.text.slice(0, 200)}`);
          const body = res.body as { volumes: { id: string; status: string }[]; volumes_links?: { rel: string; href: string }[] };
          for (const v of body.volumes) shown.set(v.id, v.status);
          url = body.volumes_links?.find((l) => l.rel === 'next')?.href ?? null;
        }
        this.polls++;
        const at = Date.now();
        for (const [id, waiter] of this.waiters) {
          if (waiter.since > seq) continue;
          const status = shown.get(id);
          if (status === this.transient) continue;
          this.waiters.delete(id);
          waiter.resolve({ outcome: status === undefined ? 'done' : status, at });
        }
      } catch (err) {
        this.pollErrors++;
        say(`warning: poll failed: ${err instanceof Error ? err.message : String(err)}`);
      }
      await sleep(this.pollMs);
    }
  }
}
