import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AccountBroker, ContainerBroker, MetadataError, mergeObjectRow, type ObjectRow } from './broker.js';

function row(name: string, created: string, extra: Partial<ObjectRow> = {}): ObjectRow {
  return { name, created_at: created, size: 1, content_type: 'text/plain', etag: 'e', deleted: 0, storage_policy_index: 0, ctype_timestamp: '', meta_timestamp: '', ...extra };
}

describe('brokers', () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stratus-broker-'));
  });
  after(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('creates a db once, atomically, in its place', () => {
    const file = path.join(dir, 'containers', '1', 'abc', 'h', 'h.db');
    assert.equal(ContainerBroker.create(file, path.join(dir, 'tmp'), { account: 'a', container: 'c', timestamp: '1700000000.00000' }), true);
    assert.equal(ContainerBroker.create(file, path.join(dir, 'tmp'), { account: 'a', container: 'c', timestamp: '1700000001.00000' }), false);
    assert.deepEqual(fs.readdirSync(path.join(dir, 'tmp')), []);
    const b = ContainerBroker.open(file);
    try {
      const info = b.info();
      assert.equal(info.account, 'a');
      assert.equal(info.container, 'c');
      assert.equal(info.put_timestamp, '1700000000.00000');
      assert.equal(b.isDeleted(), false);
    } finally {
      b.close();
    }
  });

  it('merges object rows: newest data wins, a newer content type is kept, deletions count', () => {
    const file = path.join(dir, 'c2.db');
    ContainerBroker.create(file, path.join(dir, 'tmp'), { account: 'a', container: 'c2', timestamp: '1700000000.00000' });
    const b = ContainerBroker.open(file);
    try {
      b.putObjects([row('x', '1700000001.00000', { size: 10 }), row('y', '1700000001.00000', { size: 5 })]);
      b.putObjects([row('x', '1700000000.50000', { size: 99 })]);
      assert.equal(b.info().object_count, 2);
      assert.equal(b.info().bytes_used, 15);
      b.putObjects([row('x', '1700000001.00000', { content_type: 'new/type', ctype_timestamp: '1700000002.00000' })]);
      const listed = b.listObjects({ limit: 10, marker: '', endMarker: '', prefix: null, delimiter: null, path: null, reverse: false });
      assert.equal((listed[0] as ObjectRow).content_type, 'new/type');
      assert.equal((listed[0] as ObjectRow).size, 10);
      b.putObjects([row('y', '1700000003.00000', { deleted: 1, size: 0 })]);
      assert.equal(b.info().object_count, 1);
      assert.equal(b.info().bytes_used, 10);
      // Rows are replaced, never updated: the newest change has the highest ROWID.
      const since = b.getItemsSince(-1, 100);
      assert.deepEqual(
        since.map((r) => r.name),
        ['x', 'y'],
      );
      assert.equal(since[1]?.deleted, 1);
    } finally {
      b.close();
    }
  });

  it('merges rows from a replica and remembers how far it got', () => {
    const tmp = path.join(dir, 'tmp');
    ContainerBroker.create(path.join(dir, 'r1.db'), tmp, { account: 'a', container: 'r', timestamp: '1700000000.00000' });
    ContainerBroker.create(path.join(dir, 'r2.db'), tmp, { account: 'a', container: 'r', timestamp: '1700000000.00000' });
    const one = ContainerBroker.open(path.join(dir, 'r1.db'));
    const two = ContainerBroker.open(path.join(dir, 'r2.db'));
    try {
      one.putObjects([row('a', '1700000001.00000'), row('b', '1700000001.00000')]);
      const info = one.replicationInfo();
      two.mergeItems(one.getItemsSince(two.getSync(info.id), 1000), info.id);
      assert.equal(two.getSync(info.id), info.max_row);
      assert.equal(two.info().object_count, 2);
      two.mergeSyncs([{ remote_id: 'other', sync_point: 5 }]);
      two.mergeSyncs([{ remote_id: 'other', sync_point: 3 }]);
      assert.equal(two.getSync('other'), 5);
      two.mergeTimestamps('1699999999.00000', '1700000005.00000', '0');
      assert.equal(two.info().created_at, '1699999999.00000');
      assert.equal(two.info().put_timestamp, '1700000005.00000');
    } finally {
      one.close();
      two.close();
    }
  });

  it('merges metadata by timestamp and enforces the overall limits', () => {
    const file = path.join(dir, 'm.db');
    AccountBroker.create(file, path.join(dir, 'tmp'), { account: 'a', timestamp: '1700000000.00000' });
    const b = AccountBroker.open(file);
    try {
      b.updateMetadata({ 'x-account-meta-a': ['1', '1700000002.00000'] });
      b.updateMetadata({ 'x-account-meta-a': ['old', '1700000001.00000'] });
      assert.deepEqual(b.metadata['x-account-meta-a'], ['1', '1700000002.00000']);
      const many: Record<string, [string, string]> = {};
      for (let i = 0; i < 91; i++) many[`x-account-meta-k${i}`] = ['v', '1700000003.00000'];
      assert.throws(() => b.updateMetadata(many, true), MetadataError);
      assert.equal(b.metadata['x-account-meta-k0'], undefined);
    } finally {
      b.close();
    }
  });

  it('keeps account container rows: newest timestamps, newest counts, deleted when emptied and deleted', () => {
    const file = path.join(dir, 'acct.db');
    AccountBroker.create(file, path.join(dir, 'tmp'), { account: 'a', timestamp: '1700000000.00000' });
    const b = AccountBroker.open(file);
    try {
      const base = { put_timestamp: '1700000001.00000', delete_timestamp: '0', deleted: 0, storage_policy_index: 0 };
      b.putContainers([{ name: 'c', ...base, object_count: 3, bytes_used: 30, stats_timestamp: '1700000002.00000' }]);
      b.putContainers([{ name: 'c', ...base, object_count: 1, bytes_used: 10, stats_timestamp: '1700000001.50000' }]);
      assert.equal(b.info().object_count, 3);
      assert.equal(b.info().container_count, 1);
      b.putContainers([{ name: 'c', ...base, delete_timestamp: '1700000005.00000', object_count: 0, bytes_used: 0, stats_timestamp: '1700000005.00000' }]);
      assert.equal(b.info().container_count, 0);
      assert.equal(b.info().object_count, 0);
      b.deleteDb('1700000006.00000');
      assert.equal(b.isDeleted(), true);
      assert.equal(b.isStatusDeleted(), true);
    } finally {
      b.close();
    }
  });

  it('merges a POST-only row into an existing object', () => {
    const existing = row('o', '1700000001.00000', { ctype_timestamp: '1700000001.00000', meta_timestamp: '1700000001.00000' });
    const post = row('o', '1700000001.00000', { content_type: 'b/c', ctype_timestamp: '1700000003.00000', meta_timestamp: '1700000003.00000' });
    assert.equal(mergeObjectRow(existing, post)?.content_type, 'b/c');
    assert.equal(mergeObjectRow(post, existing), null);
  });
});
