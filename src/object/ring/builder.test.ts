import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { builderFile, RebalanceError, RingBuilder, RingBuilderError, type NewDevice } from './builder.js';
import { Ring, ringFile } from './ring.js';

const HOUR = 3_600_000;
const T0 = Date.UTC(2024, 0, 1);

function dev(zone: number, index: number, weight = 100, region = 1): NewDevice {
  return { region, zone, ip: `10.0.${region}.${zone}`, port: 6200, device: `d${index}`, weight, meta: '' };
}

/** Partitions each device holds, by id. */
function holdings(builder: RingBuilder): Map<number, number> {
  return builder.stats().parts;
}

/** Replicas on another device than before, between two assignments. */
function movedBetween(a: Int32Array[], b: Int32Array[]): number {
  let moved = 0;
  for (const [r, row] of a.entries()) for (const [p, id] of row.entries()) if (b[r]?.[p] !== id) moved += 1;
  return moved;
}

function assertDistinctDevices(builder: RingBuilder): void {
  const assignment = builder.assignment();
  assert.ok(assignment);
  const parts = 2 ** builder.partPower;
  for (let p = 0; p < parts; p += 1) {
    const ids: (number | undefined)[] = assignment.map((row) => row[p]);
    assert.equal(new Set(ids).size, builder.replicas, `partition ${p} has a device twice: ${ids.join(',')}`);
    for (const id of ids) assert.ok(id !== undefined && id >= 0 && builder.device(id) && !builder.device(id)?.removed, `partition ${p} on unknown device ${id}`);
  }
}

describe('ring builder', () => {
  it('places every partition on distinct devices, balanced within a few % on equal weights', () => {
    const builder = RingBuilder.create(10, 3, 1);
    for (let i = 0; i < 7; i += 1) builder.addDevice(dev(i % 3 + 1, i));
    const report = builder.rebalance({ now: T0 });
    assert.equal(report.movedPartitions, 1024);
    assert.equal(report.version, 1);
    assertDistinctDevices(builder);
    const ideal = (1024 * 3) / 7;
    for (const [id, n] of holdings(builder)) assert.ok(Math.abs(n - ideal) / ideal < 0.03, `device ${id} holds ${n}, ideal ${ideal}`);
    assert.ok(report.balance < 3, `balance ${report.balance}`);
  });

  it('honours weights', () => {
    const builder = RingBuilder.create(10, 3, 1);
    const weights = [100, 100, 200, 200, 50, 150];
    for (const [i, w] of weights.entries()) builder.addDevice(dev(1, i, w));
    builder.rebalance({ now: T0 });
    assertDistinctDevices(builder);
    const total = weights.reduce((a, b) => a + b, 0);
    for (const [id, n] of holdings(builder)) {
      const ideal = (1024 * 3 * (weights[id] ?? 0)) / total;
      assert.ok(Math.abs(n - ideal) <= Math.max(2, ideal * 0.02), `device ${id} (weight ${weights[id]}) holds ${n}, ideal ${ideal}`);
    }
  });

  it('puts each partition once in each zone with 3 zones of one device and 3 replicas', () => {
    const builder = RingBuilder.create(8, 3, 1);
    for (let z = 1; z <= 3; z += 1) builder.addDevice(dev(z, z));
    const report = builder.rebalance({ now: T0 });
    assert.equal(report.balance, 0);
    assert.equal(report.dispersion, 0);
    const assignment = builder.assignment();
    assert.ok(assignment);
    for (let p = 0; p < 256; p += 1) {
      const zones: (number | undefined)[] = assignment.map((row) => builder.device(row[p] ?? -1)?.zone);
      assert.deepEqual([...zones].sort(), [1, 2, 3]);
    }
  });

  it('spreads replicas over zones before devices of one zone', () => {
    const builder = RingBuilder.create(9, 3, 0);
    // Three zones of four devices each.
    for (let i = 0; i < 12; i += 1) builder.addDevice(dev((i % 3) + 1, i));
    const report = builder.rebalance({ now: T0 });
    assert.equal(report.dispersion, 0);
    const assignment = builder.assignment();
    assert.ok(assignment);
    for (let p = 0; p < 512; p += 1) {
      const zones: Set<number | undefined> = new Set(assignment.map((row) => builder.device(row[p] ?? -1)?.zone));
      assert.equal(zones.size, 3, `partition ${p} is not in three zones`);
    }
  });

  it('moves about 1/n of the part-replicas when an n-th device is added, and no more', () => {
    const builder = RingBuilder.create(10, 3, 1);
    for (let i = 0; i < 4; i += 1) builder.addDevice(dev(i + 1, i));
    builder.rebalance({ now: T0 });
    const before = builder.assignment();
    assert.ok(before);
    builder.addDevice(dev(5, 4));
    const report = builder.rebalance({ now: T0 + 2 * HOUR });
    const after = builder.assignment();
    assert.ok(after);
    const ideal = (1024 * 3) / 5;
    const moved = movedBetween(before, after);
    assert.equal(report.movedReplicas, moved);
    assert.ok(moved >= ideal - 2 && moved <= ideal * 1.02, `moved ${moved} replicas, ideal ${ideal}`);
    // Only onto the new device.
    for (const [r, row] of after.entries()) for (const [p, id] of row.entries()) if (before[r]?.[p] !== id) assert.equal(id, 4);
    assertDistinctDevices(builder);
    assert.ok(report.balance < 1, `balance ${report.balance}`);
  });

  it('does not move a partition again within min_part_hours', () => {
    const builder = RingBuilder.create(8, 3, 1);
    for (let i = 0; i < 3; i += 1) builder.addDevice(dev(i + 1, i));
    builder.rebalance({ now: T0 });
    const first = builder.assignment();
    assert.ok(first);
    builder.addDevice(dev(4, 3));
    const early = builder.rebalance({ now: T0 + 30 * 60_000 });
    assert.equal(early.movedReplicas, 0);
    assert.equal(builder.stats().parts.get(3), 0);
    const late = builder.rebalance({ now: T0 + HOUR });
    assert.ok(late.movedReplicas > 0);
    const second = builder.assignment();
    assert.ok(second);
    // Those moved just now stay put an hour more, even though the device set changed again.
    builder.addDevice(dev(5, 4));
    const again = builder.rebalance({ now: T0 + HOUR + 10 * 60_000 });
    const third = builder.assignment();
    assert.ok(third);
    for (let p = 0; p < 256; p += 1) {
      const changedBefore = second.some((row, r) => row[p] !== first[r]?.[p]);
      const changedNow = third.some((row, r) => row[p] !== second[r]?.[p]);
      assert.ok(!(changedBefore && changedNow), `partition ${p} moved twice within min_part_hours`);
    }
    assert.ok(again.movedReplicas > 0);
    builder.pretendMinPartHoursPassed();
    builder.rebalance({ now: T0 + HOUR + 11 * 60_000 });
    assert.ok(builder.stats().balance < 2, `balance ${builder.stats().balance}`);
  });

  it('reassigns all partitions of a removed device, even within min_part_hours', () => {
    const builder = RingBuilder.create(8, 3, 24);
    for (let i = 0; i < 4; i += 1) builder.addDevice(dev(i + 1, i));
    builder.rebalance({ now: T0 });
    builder.removeDevice(2);
    const report = builder.rebalance({ now: T0 + 60_000 });
    assert.equal(report.movedReplicas, 192);
    assert.equal(builder.device(2), undefined);
    assertDistinctDevices(builder);
    for (const [, n] of holdings(builder)) assert.equal(n, 256);
    const data = builder.ringData();
    assert.equal(data.devices[2], null);
    // The id is not reused.
    assert.equal(builder.addDevice(dev(5, 9)), 4);
  });

  it('drains a device of weight 0 as min_part_hours allows', () => {
    const builder = RingBuilder.create(8, 3, 0);
    for (let i = 0; i < 5; i += 1) builder.addDevice(dev(i + 1, i));
    builder.rebalance({ now: T0 });
    builder.setWeight(0, 0);
    builder.rebalance({ now: T0 + 1 });
    assert.equal(holdings(builder).get(0), 0);
    assertDistinctDevices(builder);
    assert.ok(builder.stats().balance < 2);
  });

  it('writes a ring file that Ring.load reads, with 3 distinct devices per name', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stratus-ring-'));
    try {
      const builder = RingBuilder.create(10, 3, 1);
      for (let i = 0; i < 6; i += 1) builder.addDevice(dev((i % 3) + 1, i));
      builder.rebalance({ now: T0 });
      builder.save(builderFile(dir, 'object'));
      builder.writeRing(dir, 'object');
      const ring = Ring.load(ringFile(dir, 'object'), { prefix: '', suffix: 'salt' });
      assert.equal(ring.version, 1);
      assert.equal(ring.replicaCount, 3);
      assert.equal(ring.partitionCount, 1024);
      for (const name of ['a', 'b', 'c', 'photos/cat.jpg']) {
        const { partition, nodes } = ring.getNodes('AUTH_test', 'c', name);
        assert.ok(partition >= 0 && partition < 1024);
        assert.equal(new Set(nodes.map((n) => n.id)).size, 3);
        assert.equal(new Set(nodes.map((n) => n.zone)).size, 3);
      }
      // The builder file round-trips.
      const again = RingBuilder.load(builderFile(dir, 'object'));
      assert.deepEqual(again.ringData(), builder.ringData());
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('changes nothing when nothing needs to move', () => {
    const builder = RingBuilder.create(8, 3, 0);
    for (let i = 0; i < 3; i += 1) builder.addDevice(dev(i + 1, i));
    builder.rebalance({ now: T0 });
    const report = builder.rebalance({ now: T0 + HOUR });
    assert.equal(report.changed, false);
    assert.equal(report.version, 1);
  });

  it('refuses what cannot work, changing nothing', () => {
    const builder = RingBuilder.create(8, 3, 1);
    builder.addDevice(dev(1, 1));
    builder.addDevice(dev(2, 2));
    assert.throws(() => builder.rebalance({ now: T0 }), RebalanceError);
    assert.equal(builder.version, 0);
    assert.throws(() => builder.ringData(), RingBuilderError);
    assert.throws(() => builder.addDevice(dev(1, 1)), /already uses 10\.0\.1\.1:6200\/d1/);
    assert.throws(() => builder.addDevice({ ...dev(3, 3), weight: -1 }), RingBuilderError);
    assert.throws(() => builder.addDevice({ ...dev(3, 3), port: 70000 }), RingBuilderError);
    assert.throws(() => builder.addDevice({ ...dev(3, 3), device: '../x' }), RingBuilderError);
    assert.throws(() => builder.setWeight(7, 10), /no device with id 7/);
    assert.throws(() => RingBuilder.create(0, 3, 1), RingBuilderError);
    assert.throws(() => RingBuilder.create(10, 0, 1), RingBuilderError);
    assert.equal(builder.devices.length, 2);
  });

  it('keeps replicas in distinct regions and honours zone weights across regions', () => {
    const builder = RingBuilder.create(9, 3, 0);
    // Two regions: r1 with two zones, r2 with one zone.
    builder.addDevice(dev(1, 0, 100, 1));
    builder.addDevice(dev(2, 1, 100, 1));
    builder.addDevice(dev(1, 2, 100, 2));
    builder.rebalance({ now: T0 });
    const assignment = builder.assignment();
    assert.ok(assignment);
    for (let p = 0; p < 512; p += 1) {
      const regions: Set<number | undefined> = new Set(assignment.map((row) => builder.device(row[p] ?? -1)?.region));
      assert.equal(regions.size, 2);
    }
  });

  it('with an overload, spreads over zones even when weights would crowd one', () => {
    const skewed = (): RingBuilder => {
      const builder = RingBuilder.create(8, 3, 0);
      builder.addDevice(dev(1, 0, 100));
      builder.addDevice(dev(1, 1, 100));
      builder.addDevice(dev(2, 2, 100));
      builder.addDevice(dev(2, 3, 100));
      builder.addDevice(dev(3, 4, 50));
      return builder;
    };
    const byWeight = skewed();
    const plain = byWeight.rebalance({ now: T0 });
    assert.ok(plain.dispersion > 0, 'weights alone crowd a zone for some partitions');
    assert.ok(plain.balance < 2);
    const spread = skewed();
    spread.setOverload(2);
    const report = spread.rebalance({ now: T0 });
    assert.equal(report.dispersion, 0);
  });
});
