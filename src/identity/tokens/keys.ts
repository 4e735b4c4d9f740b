import type { Kysely } from 'kysely';
import type { IdentitySchema } from '../db/schema.js';
import { generateFernetKey } from './fernet.js';
import { isoNow } from '../common.js';

/**
 * The Fernet key repository, kept in identity's own database so that every
 * identity process of a deployment shares it. As Keystone's: key 0 is
 * *staged* (every process can already decrypt with it, none encrypts with it),
 * the highest index is *primary* (encrypts), the others are *secondary*
 * (decrypt only). Rotation promotes the staged key, stages a new one and drops
 * the oldest secondaries beyond `maxActive`; a process that has not reloaded
 * yet still reads every token made with the new primary.
 */
export class KeyRepository {
  private keys: string[] = [];
  private primaryKey = '';
  private loadedAt = 0;
  /** Moves whenever the set of keys in memory changes (validation caches compare it). */
  version = 0;

  constructor(
    private readonly db: Kysely<IdentitySchema>,
    private readonly reloadMs = 5_000,
  ) {}

  /** Creates the staged and primary keys when there are none. Idempotent. */
  async setup(): Promise<void> {
    const rows = await this.db.selectFrom('fernet_key').select('id').execute();
    if (rows.length === 0) {
      await this.db
        .insertInto('fernet_key')
        .values([
          { id: 0, key: generateFernetKey(), created_at: isoNow() },
          { id: 1, key: generateFernetKey(), created_at: isoNow() },
        ])
        .execute();
    }
    await this.load();
  }

  /** Rotates as described above; returns the new primary's index. */
  async rotate(maxActive: number): Promise<number> {
    if (maxActive < 2) throw new Error('max_active_keys must be at least 2');
    const index = await this.db.transaction().execute(async (trx) => {
      const rows = await trx.selectFrom('fernet_key').selectAll().orderBy('id').execute();
      const staged = rows.find((r) => r.id === 0);
      const highest = rows.reduce((max, r) => Math.max(max, r.id), 0);
      const next = highest + 1;
      if (staged) {
        await trx.insertInto('fernet_key').values({ id: next, key: staged.key, created_at: isoNow() }).execute();
        await trx.updateTable('fernet_key').set({ key: generateFernetKey(), created_at: isoNow() }).where('id', '=', 0).execute();
      } else {
        await trx.insertInto('fernet_key').values({ id: 0, key: generateFernetKey(), created_at: isoNow() }).execute();
      }
      const secondaries = rows.filter((r) => r.id !== 0).map((r) => r.id).sort((a, b) => a - b);
      // After rotation there are: staged + new primary + secondaries; keep maxActive in all.
      const excess = secondaries.length + 2 - maxActive;
      if (excess > 0) await trx.deleteFrom('fernet_key').where('id', 'in', secondaries.slice(0, excess)).execute();
      return next;
    });
    await this.load();
    return index;
  }

  async load(): Promise<void> {
    const rows = await this.db.selectFrom('fernet_key').selectAll().orderBy('id', 'desc').execute();
    const primary = rows[0];
    if (!primary) throw new Error('no Fernet keys: run setup first');
    this.primaryKey = primary.key;
    // Primary first: most tokens were made with it.
    const keys = rows.map((r) => r.key);
    if (keys.join() !== this.keys.join()) this.version += 1;
    this.keys = keys;
    this.loadedAt = Date.now();
  }

  /** Reloads from the database when the copy in memory is older than the reload interval. */
  async refresh(): Promise<void> {
    if (Date.now() - this.loadedAt > this.reloadMs) await this.load();
  }

  primary(): string {
    return this.primaryKey;
  }

  all(): readonly string[] {
    return this.keys;
  }
}
