import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { test } from 'node:test';
import { FakeVolumeDriver } from '../drivers/fake.js';
import { MemoryChunkStore, type ChunkStore } from './chunk-store.js';
import { ChunkedBackupDriver, type BackupMetadata, type Compression } from './chunked.js';
import type { BackupRecord } from './driver.js';

const CHUNK = 4096;

function setup(options: { compression?: Compression; chunkSize?: number; wrap?: (store: ChunkStore) => ChunkStore } = {}) {
  const memory = new MemoryChunkStore();
  const driver = new ChunkedBackupDriver({
    service: 'test',
    stores: (project) => (options.wrap ?? ((s) => s))(memory.open(project)),
    defaultContainer: 'backups',
    chunkSize: options.chunkSize ?? CHUNK,
    compression: options.compression ?? 'gzip',
    perProject: true,
    attempts: 2,
  });
  return { memory, driver, fake: new FakeVolumeDriver() };
}

async function volumeWith(fake: FakeVolumeDriver, content: Buffer | null): Promise<{ id: string; size: number; provider_location: null }> {
  const volume = { id: randomUUID(), size: 1, provider_location: null };
  await fake.createVolume(volume);
  const record = fake.volumes.get(volume.id);
  assert.ok(record);
  record.content = content;
  return volume;
}

function record(volumeId: string, extra: Partial<BackupRecord> = {}): BackupRecord {
  return { id: randomUUID(), volume_id: volumeId, project_id: 'p1', snapshot_id: null, parent_id: null, display_name: 'b', display_description: null, container: null, service_metadata: null, created_at: new Date().toISOString(), ...extra };
}

const access = { userToken: null };

async function restoreInto(setupOf: ReturnType<typeof setup>, backup: BackupRecord, isNew = true): Promise<Buffer | null> {
  const target = await volumeWith(setupOf.fake, isNew ? null : randomBytes(10 * CHUNK));
  const writer = await setupOf.fake.openRestoreTarget(target, { isNew });
  await setupOf.driver.restore(backup, writer, { isNew, access });
  await writer.commit();
  return setupOf.fake.volumes.get(target.id)?.content ?? null;
}

test('every compression round-trips; chunks without data are not stored; the metadata lists each chunk', async () => {
  for (const compression of ['gzip', 'zlib', 'none'] as const) {
    const s = setup({ compression });
    const content = Buffer.concat([randomBytes(CHUNK), Buffer.alloc(CHUNK, 7), randomBytes(100)]);
    const volume = await volumeWith(s.fake, content);
    const b = record(volume.id);
    const outcome = await s.driver.backup(b, await s.fake.openBackupSource({ volume }), { parent: null, volumeMeta: { k: 'v' }, access });
    assert.equal(outcome.object_count, 3);
    const done = { ...b, ...outcome };
    const objects = s.memory.objects('p1', 'backups');
    const meta = JSON.parse(String(objects.get(`${volume.id}/backup_${b.id}/metadata`))) as BackupMetadata;
    assert.deepEqual(
      meta.objects.map((o) => [o.index, o.offset, o.length, o.compression]),
      [
        [0, 0, CHUNK, compression],
        [1, CHUNK, CHUNK, compression],
        [2, 2 * CHUNK, CHUNK, compression],
      ],
    );
    assert.equal(meta.size, 1024 ** 3);
    assert.deepEqual(meta.volume_meta, { k: 'v' });
    if (compression !== 'none') assert.ok((objects.get(`${volume.id}/backup_${b.id}/00001`)?.length ?? CHUNK) < 200, 'repeated bytes compress');
    assert.deepEqual(await restoreInto(s, done), content, compression);
    assert.deepEqual(await restoreInto(s, done, false), content, `${compression}, over an existing volume`);
  }
});

test('a damaged or missing object fails the restore with why', async () => {
  const s = setup();
  const volume = await volumeWith(s.fake, randomBytes(2 * CHUNK));
  const b = record(volume.id);
  const done = { ...b, ...(await s.driver.backup(b, await s.fake.openBackupSource({ volume }), { parent: null, volumeMeta: {}, access })) };
  const objects = s.memory.objects('p1', 'backups');
  const name = `${volume.id}/backup_${b.id}/00001`;
  const original = objects.get(name);
  assert.ok(original);
  objects.set(name, (await import('node:zlib')).gzipSync(randomBytes(CHUNK)));
  await assert.rejects(restoreInto(s, done), /does not match its MD5: the backup is damaged/);
  objects.delete(name);
  await assert.rejects(restoreInto(s, done), new RegExp(`Object ${name} of the backup is missing from container backups`));
  objects.set(name, original);
  assert.equal((await restoreInto(s, done))?.length, 2 * CHUNK);
  await s.driver.delete(done, { access });
  assert.equal(objects.size, 0);
  await s.driver.delete(done, { access });
});

test('an incremental backup keeps its parent chunk size, stores changed chunks, and names its parent objects for the rest', async () => {
  const s = setup();
  const first = randomBytes(4 * CHUNK);
  const volume = await volumeWith(s.fake, first);
  const parent = record(volume.id);
  const parentDone = { ...parent, ...(await s.driver.backup(parent, await s.fake.openBackupSource({ volume }), { parent: null, volumeMeta: {}, access })) };
  const second = Buffer.from(first);
  second[3 * CHUNK + 1] = (second[3 * CHUNK + 1] ?? 0) ^ 0xff;
  const stored = s.fake.volumes.get(volume.id);
  assert.ok(stored);
  stored.content = second;
  const bigger = new ChunkedBackupDriver({ service: 'test', stores: (p) => s.memory.open(p), defaultContainer: 'backups', chunkSize: 4 * CHUNK, compression: 'gzip', perProject: true });
  const child = record(volume.id, { parent_id: parent.id });
  const outcome = await bigger.backup(child, await s.fake.openBackupSource({ volume }), { parent: parentDone, volumeMeta: {}, access });
  assert.equal(outcome.object_count, 1);
  const meta = JSON.parse(String(s.memory.objects('p1', 'backups').get(`${volume.id}/backup_${child.id}/metadata`))) as BackupMetadata;
  assert.equal(meta.chunk_size, CHUNK);
  assert.deepEqual(
    meta.objects.map((o) => o.backup_id),
    [parent.id, parent.id, parent.id, child.id],
  );
  const childDone = { ...child, ...outcome };
  assert.deepEqual(await restoreInto(s, childDone), second);
  await s.driver.delete(childDone, { access });
  assert.deepEqual(await restoreInto(s, parentDone), first, 'deleting the child leaves the parent whole');
});

test('an aborted backup stops; a store whose ETag differs from the data sent fails it', async () => {
  const s = setup();
  const volume = await volumeWith(s.fake, randomBytes(3 * CHUNK));
  const abort = new AbortController();
  abort.abort();
  await assert.rejects(s.driver.backup(record(volume.id), await s.fake.openBackupSource({ volume }), { parent: null, volumeMeta: {}, access, signal: abort.signal }), /The backup was cancelled/);
  const lying = setup({ wrap: (store) => ({ ...store, put: async (c, n, d) => ({ etag: (await store.put(c, n, d)).etag ? 'd41d8cd98f00b204e9800998ecf8427e' : null }) }) });
  const v2 = await volumeWith(lying.fake, randomBytes(CHUNK));
  await assert.rejects(lying.driver.backup(record(v2.id), await lying.fake.openBackupSource({ volume: v2 }), { parent: null, volumeMeta: {}, access }), /The object store's MD5 of .* is not that of the data sent/);
  await assert.rejects(lying.driver.verify(record(v2.id), { access }), /has no data in the backup store/);
});
