import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig, type StratusConfig } from '../../core/config.js';
import { builderFile } from './builder.js';
import { devicesDir, ensureDefaultRings, ringDir } from './defaults.js';
import { ringFile, type Ring } from './ring.js';

const SALT = { prefix: '', suffix: 'defaults-test' };

describe('default rings', () => {
  let dir = '';
  let config: StratusConfig;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stratus-default-rings-'));
    config = loadConfig({ overrides: { data_dir: dir }, env: {} });
    config.object.default_ring.part_power = 8;
  });
  after(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('puts rings and devices under the data directory unless configured', () => {
    assert.equal(ringDir(config), path.join(dir, 'object', 'rings'));
    assert.equal(devicesDir(config), path.join(dir, 'object', 'devices'));
    const other = structuredClone(config);
    other.object.ring_dir = path.join(dir, 'etc-rings');
    other.object.devices_dir = path.join(dir, 'srv');
    assert.equal(ringDir(other), path.join(dir, 'etc-rings'));
    assert.equal(devicesDir(other), path.join(dir, 'srv'));
  });

  it('builds three rings of three devices, one zone each, and their directories', () => {
    const result = ensureDefaultRings(config, SALT);
    assert.deepEqual(result.created, ['account', 'container', 'object']);
    assert.ok(result.rings);
    const ports = { account: 6202, container: 6201, object: 6200 } as const;
    for (const kind of ['account', 'container', 'object'] as const) {
      const ring: Ring = result.rings[kind];
      assert.equal(ring.partitionCount, 256);
      assert.equal(ring.replicaCount, 3);
      assert.deepEqual(
        ring.devices.map((d) => [d.device, d.zone, d.ip, d.port, d.weight]),
        [1, 2, 3].map((i) => [`d${i}`, i, '127.0.0.1', ports[kind], 100]),
      );
      const { nodes } = ring.getNodes('AUTH_x', 'c', 'o');
      assert.deepEqual(nodes.map((n) => n.device).sort(), ['d1', 'd2', 'd3']);
      assert.ok(fs.existsSync(builderFile(result.ringDir, kind)));
    }
    for (const d of ['d1', 'd2', 'd3']) assert.ok(fs.statSync(path.join(result.devicesDir, d)).isDirectory());
  });

  it('is idempotent', () => {
    const mtime = fs.statSync(ringFile(ringDir(config), 'object')).mtimeMs;
    const again = ensureDefaultRings(config);
    assert.deepEqual(again.created, []);
    assert.equal(again.rings, undefined);
    assert.equal(fs.statSync(ringFile(ringDir(config), 'object')).mtimeMs, mtime);
  });

  it('rewrites a lost ring from its builder, and refuses to guess one without', () => {
    const rings = ringDir(config);
    const before = fs.readFileSync(ringFile(rings, 'container'));
    fs.rmSync(ringFile(rings, 'container'));
    assert.deepEqual(ensureDefaultRings(config).created, ['container']);
    assert.deepEqual(fs.readFileSync(ringFile(rings, 'container')), before);
    fs.rmSync(ringFile(rings, 'container'));
    fs.rmSync(builderFile(rings, 'container'));
    assert.throws(() => ensureDefaultRings(config), /no container ring and no container builder/);
  });
});
