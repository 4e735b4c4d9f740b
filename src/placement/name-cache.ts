/**
 * Names to ids (and back) of resource classes or traits, cached in memory.
 * A miss reloads the table once, so that names another API process created
 * are found; deleted names may linger until the next reload, which is
 * harmless (nothing refers to them any more).
 */
export class NameCache {
  private byName = new Map<string, number>();
  private byId = new Map<number, string>();
  private loading: Promise<void> | null = null;

  constructor(private readonly load: () => Promise<{ id: number; name: string }[]>) {}

  /** The id of a name, or undefined when the database has no such name. */
  async id(name: string): Promise<number | undefined> {
    const hit = this.byName.get(name);
    if (hit !== undefined) return hit;
    await this.refresh();
    return this.byName.get(name);
  }

  /** Ids of several names; the names that do not exist are returned apart. */
  async ids(names: Iterable<string>): Promise<{ ids: Map<string, number>; missing: string[] }> {
    const ids = new Map<string, number>();
    let missing: string[] = [];
    for (const name of names) {
      const id = this.byName.get(name);
      if (id === undefined) missing.push(name);
      else ids.set(name, id);
    }
    if (missing.length > 0) {
      await this.refresh();
      const still: string[] = [];
      for (const name of missing) {
        const id = this.byName.get(name);
        if (id === undefined) still.push(name);
        else ids.set(name, id);
      }
      missing = still;
    }
    return { ids, missing };
  }

  /** The name of an id (reloading once on a miss); `UNKNOWN_<id>` if it is really gone. */
  async name(id: number): Promise<string> {
    const hit = this.byId.get(id);
    if (hit !== undefined) return hit;
    await this.refresh();
    return this.byId.get(id) ?? `UNKNOWN_${id}`;
  }

  /** The name of an id from what is cached (call {@link name} or {@link refresh} first for unseen ids). */
  cachedName(id: number): string | undefined {
    return this.byId.get(id);
  }

  /** Records a name this process just created or learned. */
  remember(id: number, name: string): void {
    this.byName.set(name, id);
    this.byId.set(id, name);
  }

  /** Forgets a name this process just deleted. */
  forget(name: string): void {
    const id = this.byName.get(name);
    this.byName.delete(name);
    if (id !== undefined) this.byId.delete(id);
  }

  /** Reloads the whole table (concurrent callers share one load). */
  async refresh(): Promise<void> {
    if (!this.loading) {
      this.loading = (async () => {
        try {
          const rows = await this.load();
          this.byName = new Map(rows.map((r) => [r.name, r.id]));
          this.byId = new Map(rows.map((r) => [r.id, r.name]));
        } finally {
          this.loading = null;
        }
      })();
    }
    await this.loading;
  }
}
