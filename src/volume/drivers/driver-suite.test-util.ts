import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { DriverUserError, type DriverImage, type DriverVolume, type VolumeDriver } from './driver.js';

/** An image for a create: its API record and its data. */
export interface ImageFixture {
  image: DriverImage;
  data: Buffer;
}

export interface DriverSuiteOptions {
  /** A fresh, empty driver. */
  make(): Promise<VolumeDriver>;
  /** An image whose disk is 2 GiB (does not fit a 1 GiB volume). */
  tooBigImage(): Promise<ImageFixture>;
}

/** A raw image of `bytes` random bytes. */
export function rawImage(bytes = 64 * 1024): ImageFixture {
  const data = randomBytes(bytes);
  return {
    data,
    image: { id: randomUUID(), name: 'raw-image', disk_format: 'raw', container_format: 'bare', size: data.length, virtual_size: data.length, min_disk: 0, min_ram: 0, checksum: null, properties: {} },
  };
}

/** The first `n` bytes of a stream (the stream is destroyed after). */
export async function head(stream: Readable, n: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let got = 0;
  try {
    for await (const chunk of stream) {
      const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
      chunks.push(b);
      got += b.length;
      if (got >= n) break;
    }
  } finally {
    stream.destroy();
  }
  return Buffer.concat(chunks).subarray(0, n);
}

const vol = (size = 1): DriverVolume => ({ id: randomUUID(), size, provider_location: null });

/**
 * The contract every volume driver keeps (STYLE: one shared suite, fake
 * included): creates from each source, idempotent deletes, snapshots,
 * extend, connections, copy to image, and cleanup of orphans.
 */
export function driverSuite(name: string, options: DriverSuiteOptions): void {
  const opened = (fixture: ImageFixture) => async (): Promise<Readable> => Readable.from([fixture.data]);

  test(`${name}: an empty volume takes capacity; deleting it gives it back, and deleting again succeeds`, async () => {
    const driver = await options.make();
    const before = await driver.stats();
    const v = vol(2);
    const update = await driver.createVolume(v);
    assert.ok(update.provider_location, 'a provider location is returned');
    const during = await driver.stats();
    assert.equal(during.allocated_capacity_gb, before.allocated_capacity_gb + 2);
    await driver.deleteVolume({ ...v, provider_location: update.provider_location ?? null });
    await driver.deleteVolume(v);
    assert.equal((await driver.stats()).allocated_capacity_gb, before.allocated_capacity_gb);
    await driver.deleteVolume(vol());
    await driver.stop();
  });

  test(`${name}: a volume from an image holds the image's data, and copies it back to an image`, async () => {
    const driver = await options.make();
    const fixture = rawImage();
    const v = vol(1);
    await driver.createFromImage(v, fixture.image, opened(fixture));
    const out = await driver.copyToImage(v, 'raw');
    assert.deepEqual(await head(out, fixture.data.length), fixture.data);
    await driver.deleteVolume(v);
    await driver.stop();
  });

  test(`${name}: an image larger than the volume is refused as the request's fault, and the partial volume deletes`, async () => {
    const driver = await options.make();
    const before = await driver.stats();
    const fixture = await options.tooBigImage();
    const v = vol(1);
    await assert.rejects(driver.createFromImage(v, fixture.image, opened(fixture)), (err: unknown) => {
      assert.ok(err instanceof DriverUserError);
      assert.equal(err.reason, 'image_too_big');
      assert.equal(err.message, "Image virtual size is 2GB and doesn't fit in a volume of size 1GB.");
      return true;
    });
    await driver.deleteVolume(v);
    assert.equal((await driver.stats()).allocated_capacity_gb, before.allocated_capacity_gb);
    await driver.stop();
  });

  test(`${name}: snapshots, volumes from snapshots, clones and revert keep the data`, async () => {
    const driver = await options.make();
    const fixture = rawImage();
    const source = vol(1);
    await driver.createFromImage(source, fixture.image, opened(fixture));
    const snapshot = { id: randomUUID(), volume_id: source.id, volume_size: 1, provider_location: null };
    const snap = await driver.createSnapshot(snapshot, source);
    const fromSnapshot = vol(2);
    await driver.createFromSnapshot(fromSnapshot, { ...snapshot, provider_location: snap.provider_location ?? null });
    const clone = vol(3);
    await driver.createClone(clone, source);
    await driver.revertToSnapshot(source, snapshot);
    for (const v of [fromSnapshot, clone, source]) assert.deepEqual(await head(await driver.copyToImage(v, 'raw'), fixture.data.length), fixture.data, `data of ${v.id}`);
    const stats = await driver.stats();
    assert.ok(stats.allocated_capacity_gb >= 1 + 1 + 2 + 3, 'volumes and the snapshot take capacity');
    await driver.deleteSnapshot(snapshot);
    await driver.deleteSnapshot(snapshot);
    for (const v of [fromSnapshot, clone, source]) await driver.deleteVolume(v);
    await driver.stop();
  });

  test(`${name}: a migration makes the volume on another backend from the source's export`, async () => {
    const source = await options.make();
    const target = await options.make();
    const fixture = rawImage();
    const v = vol(1);
    const made = await source.createFromImage(v, fixture.image, opened(fixture));
    const located = { ...v, provider_location: made.provider_location ?? null };
    const connector = { host: 'volume-host' };
    const connection = await source.initializeConnection(located, connector, `migration-${v.id}`);
    const copied = await target.createFromExport(v, connection);
    await source.terminateConnection(located, connector, `migration-${v.id}`);
    assert.deepEqual(await head(await target.copyToImage({ ...v, provider_location: copied.provider_location ?? null }, 'raw'), fixture.data.length), fixture.data);
    await source.deleteVolume(located);
    await target.deleteVolume(v);
    await source.stop();
    await target.stop();
  });

  test(`${name}: extend grows the volume`, async () => {
    const driver = await options.make();
    const v = vol(1);
    await driver.createVolume(v);
    const before = (await driver.stats()).allocated_capacity_gb;
    await driver.extendVolume(v, 3);
    assert.equal((await driver.stats()).allocated_capacity_gb, before + 2);
    await driver.deleteVolume(v);
    await driver.stop();
  });

  test(`${name}: connections are made per attachment and ended idempotently`, async () => {
    const driver = await options.make();
    const v = vol(1);
    await driver.createVolume(v);
    const attachment = randomUUID();
    const info = await driver.initializeConnection(v, { host: 'some-other-host' }, attachment);
    assert.equal(typeof info.driver_volume_type, 'string');
    assert.equal(info.data.access_mode, 'rw');
    await driver.terminateConnection(v, { host: 'some-other-host' }, attachment);
    await driver.terminateConnection(v, null, attachment);
    await driver.deleteVolume(v);
    await driver.stop();
  });

  test(`${name}: a backup reads the data where the extents say; a restore writes it into new and existing volumes`, async () => {
    const driver = await options.make();
    const fixture = rawImage();
    const n = fixture.data.length;
    const source = vol(1);
    await driver.createFromImage(source, fixture.image, opened(fixture));
    const snapshot = { id: randomUUID(), volume_id: source.id, volume_size: 1, provider_location: null };
    await driver.createSnapshot(snapshot, source);
    for (const from of [{ volume: source }, { snapshot }]) {
      const reader = await driver.openBackupSource(from);
      assert.equal(reader.size, 1024 ** 3);
      assert.equal(reader.extents[0]?.offset, 0, 'the data is found at the start');
      const covered = reader.extents.reduce((sum, e) => sum + e.length, 0);
      assert.ok(covered >= n && covered < reader.size / 2, `the extents cover the data, not the whole volume (${covered})`);
      assert.deepEqual(await head(reader.read(0, n), n), fixture.data);
      assert.deepEqual(await head(reader.read(n, 4096), 4096), Buffer.alloc(4096), 'past the data: zeros');
      assert.deepEqual(await head(reader.read(reader.size - 10, 10), 10), Buffer.alloc(10), 'the end of the volume reads');
      await reader.close();
      await reader.close();
    }
    const fresh = vol(1);
    await driver.createVolume(fresh);
    const writer = await driver.openRestoreTarget(fresh, { isNew: true });
    assert.equal(writer.size, 1024 ** 3);
    await writer.write(0, Readable.from([fixture.data.subarray(0, 1000), fixture.data.subarray(1000)]));
    await writer.commit();
    assert.deepEqual(await head(await driver.copyToImage(fresh, 'raw'), n), fixture.data);
    const existing = vol(1);
    const other = rawImage(2 * n);
    await driver.createFromImage(existing, other.image, opened(other));
    const over = await driver.openRestoreTarget(existing, { isNew: false });
    await over.write(0, Readable.from([fixture.data]));
    await over.zero(n, n);
    await over.commit();
    const after = await head(await driver.copyToImage(existing, 'raw'), 2 * n);
    assert.deepEqual(Buffer.concat([after, Buffer.alloc(2 * n - after.length)]), Buffer.concat([fixture.data, Buffer.alloc(n)]), 'written, then zeroed');
    const abandoned = await driver.openRestoreTarget(existing, { isNew: false });
    await abandoned.close();
    await driver.deleteSnapshot(snapshot);
    for (const v of [source, fresh, existing]) await driver.deleteVolume(v);
    await driver.stop();
  });

  test(`${name}: cleanup removes what no volume or snapshot owns and keeps the rest`, async () => {
    const driver = await options.make();
    const keep = vol(1);
    const orphan = vol(4);
    await driver.createVolume(keep);
    await driver.createVolume(orphan);
    const snapshot = { id: randomUUID(), volume_id: orphan.id, volume_size: 4, provider_location: null };
    await driver.createSnapshot(snapshot, orphan);
    await driver.cleanup([keep.id], []);
    assert.equal((await driver.stats()).allocated_capacity_gb, 1, 'only the known volume is left');
    await driver.extendVolume(keep, 2);
    await driver.deleteVolume(keep);
    await driver.stop();
  });
}
