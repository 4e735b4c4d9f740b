/**
 * The events a compute agent waits for (`network-vif-plugged` of each port
 * of a server it builds). Events may come before anyone waits for them (the
 * fake network binds at once), so they are kept for a while per server.
 */
export class InstanceEvents {
  private readonly seen = new Map<string, Map<string, string>>();
  private readonly waiters = new Map<string, Set<() => void>>();

  /** Records an event (`network-vif-plugged:<port>` with its status) and wakes the server's waiters. */
  deliver(uuid: string, name: string, tag: string | undefined, status: string): void {
    const events = this.seen.get(uuid) ?? new Map<string, string>();
    this.seen.set(uuid, events);
    events.set(`${name}:${tag ?? ''}`, status);
    for (const wake of this.waiters.get(uuid) ?? []) wake();
  }

  /**
   * Resolves with the statuses once every event in `keys` (`name:tag`) came
   * for the server, or with the ones that came when `timeoutMs` passes (0:
   * does not wait).
   */
  async waitFor(uuid: string, keys: string[], timeoutMs: number): Promise<{ complete: boolean; failed: string[] }> {
    const check = (): { complete: boolean; failed: string[] } => {
      const events = this.seen.get(uuid) ?? new Map<string, string>();
      return { complete: keys.every((k) => events.has(k)), failed: keys.filter((k) => events.get(k) === 'failed') };
    };
    const now = check();
    if (now.complete || timeoutMs <= 0) return now;
    return new Promise((resolve) => {
      const set = this.waiters.get(uuid) ?? new Set<() => void>();
      this.waiters.set(uuid, set);
      const done = (): void => {
        clearTimeout(timer);
        set.delete(wake);
        if (set.size === 0) this.waiters.delete(uuid);
        resolve(check());
      };
      const wake = (): void => {
        if (check().complete) done();
      };
      const timer = setTimeout(done, timeoutMs);
      set.add(wake);
    });
  }

  /** Forgets a server's events (after its build, or when it is deleted). */
  clear(uuid: string): void {
    this.seen.delete(uuid);
  }
}
