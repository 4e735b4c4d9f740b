import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { BrokerCache, ContainerBroker, forgetDb, type ObjectRow } from './broker.js';

function row(name: string, created: string): ObjectRow {
  return { name, created_at: created, size: 3, content_type: 'text/plain', etag: 'e', deleted: 0, storage_policy_index: 0, ctype_timestamp: '', meta_timestamp: '' };
}

/** The object names of a db file, read through a handle of its own. */
function namesIn(file: string): string[] {
  const b = ContainerBroker.open(file);
  try {
    return b.getItemsSince(-1, 100).map((r) => r.name);
  } finally {
    b.close();
  }
}

describe('db handle cache', () => {
  let dir: string;
  let n = 0;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stratus-broker-cache-'));
  });
  after(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** A db path in a hash directory of its own, as the servers lay them out. */
  function dbFile(): string {
    n += 1;
    return path.join(dir, 'containers', String(n), 'abc', `h${n}`, `h${n}.db`);
  }

  it('forgets a db that this process moved away or created anew (forgetDb), without waiting for a check', () => {
    const cache = new BrokerCache<ContainerBroker>((f) => ContainerBroker.open(f), 8, 3_600_000);
    const file = dbFile();
    ContainerBroker.create(file, path.join(dir, 'tmp'), { account: 'a', container: 'c', timestamp: '1700000000.00000' });
    const first = cache.get(file);
    assert.ok(first);
    const firstId = first.info().id;
    first.putObjects([row('kept', '1700000001.00000')]);

    // Quarantined as the auditor does it: the hash directory moves away.
    const quarantined = path.join(dir, 'quarantined', `h${n}`);
    fs.mkdirSync(path.dirname(quarantined), { recursive: true });
    fs.renameSync(path.dirname(file), quarantined);
    forgetDb(file);
    assert.equal(cache.get(file), null, 'no db there now');

    // A replica recreates it: writes reach the new file, not the quarantined one.
    ContainerBroker.create(file, path.join(dir, 'tmp'), { account: 'a', container: 'c', timestamp: '1700000000.00000' });
    const second = cache.get(file);
    assert.ok(second);
    assert.notEqual(second.info().id, firstId);
    second.putObjects([row('new', '1700000002.00000')]);
    assert.deepEqual(namesIn(file), ['new']);
    assert.deepEqual(namesIn(path.join(quarantined, `h${n}.db`)), ['kept']);

    // A relative path names the same file.
    const relative = path.relative(process.cwd(), file);
    const third = cache.get(relative);
    assert.ok(third);
    forgetDb(file);
    assert.equal(third.db.open, false);
    cache.closeAll();
  });

  it('notices a db that another process replaced or removed (its inode changed)', () => {
    const cache = new BrokerCache<ContainerBroker>((f) => ContainerBroker.open(f), 8, 0);
    const file = dbFile();
    ContainerBroker.create(file, path.join(dir, 'tmp'), { account: 'a', container: 'c', timestamp: '1700000000.00000' });
    const first = cache.get(file);
    assert.ok(first);
    const firstId = first.info().id;

    // Another process moves the directory away and creates a db in its place (no forgetDb in this one).
    fs.renameSync(path.dirname(file), path.join(dir, `elsewhere-${n}`));
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const other = path.join(dir, `other-${n}.db`);
    ContainerBroker.create(other, path.join(dir, 'tmp'), { account: 'a', container: 'c', timestamp: '1700000005.00000' });
    fs.renameSync(other, file);

    const second = cache.get(file);
    assert.ok(second);
    assert.notEqual(second.info().id, firstId);
    assert.equal(second.info().put_timestamp, '1700000005.00000');
    assert.equal(first.db.open, false, 'the stale handle is closed');

    // And removes it: nothing there.
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
    assert.equal(cache.get(file), null);
    cache.closeAll();
  });

  it('answers null for a db removed between the check and the open', () => {
    const file = dbFile();
    ContainerBroker.create(file, path.join(dir, 'tmp'), { account: 'a', container: 'c', timestamp: '1700000000.00000' });
    const cache = new BrokerCache<ContainerBroker>((f) => {
      fs.rmSync(path.dirname(f), { recursive: true, force: true });
      return ContainerBroker.open(f);
    });
    assert.equal(cache.get(file), null);
  });

  it('still opens a db that was only written by another handle', () => {
    const cache = new BrokerCache<ContainerBroker>((f) => ContainerBroker.open(f), 8, 0);
    const file = dbFile();
    ContainerBroker.create(file, path.join(dir, 'tmp'), { account: 'a', container: 'c', timestamp: '1700000000.00000' });
    const first = cache.get(file);
    assert.ok(first);
    const writer = new Database(file);
    writer.prepare("UPDATE info SET put_timestamp = '1700000009.00000'").run();
    writer.close();
    assert.equal(cache.get(file), first, 'same file, same handle');
    assert.equal(first.info().put_timestamp, '1700000009.00000');
    cache.closeAll();
  });
});
