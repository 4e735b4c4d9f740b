import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Holds a reader to a number of units per second (Swift's auditor
 * `bytes_per_second`): after each `take(n)` it waits as long as needed for
 * the units taken since the start to fit the rate. A rate of 0 never waits.
 */
export class RateLimiter {
  private started = 0;
  private taken = 0;

  constructor(
    private readonly perSecond: number,
    private readonly clock: () => number = () => performance.now(),
  ) {}

  /** Counts `units` and waits until they are within the rate (resolves at once when the limiter is off or behind). */
  async take(units: number, signal?: AbortSignal): Promise<void> {
    if (this.perSecond <= 0) return;
    const now = this.clock();
    if (this.taken === 0) this.started = now;
    this.taken += units;
    const due = this.started + (this.taken / this.perSecond) * 1000;
    const wait = due - now;
    // A limiter left idle long does not build up credit beyond one second.
    if (wait < -1000) {
      this.started = now - 1000;
      this.taken = this.perSecond;
      return;
    }
    if (wait > 0) {
      try {
        await sleep(wait, undefined, signal ? { signal } : undefined);
      } catch {
        // Aborted: the caller checks its signal.
      }
    }
  }
}
