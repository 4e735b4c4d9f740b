import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { PoolStats } from '../rpc.js';
import { availabilityZoneFilter, capabilitiesFilter, capacityFilter, filterPools, matchExtraSpec, type FilterRequest, type PoolState } from './filters.js';
import { weighPools } from './weighers.js';

function pool(name: string, stats: Partial<PoolStats> = {}, zone = 'nova'): PoolState {
  const s: PoolStats = {
    pool_name: name,
    total_capacity_gb: 100,
    free_capacity_gb: 100,
    allocated_capacity_gb: 0,
    provisioned_capacity_gb: 0,
    max_over_subscription_ratio: 1,
    reserved_percentage: 0,
    thin_provisioning_support: false,
    thick_provisioning_support: true,
    multiattach: true,
    online_extend_support: false,
    QoS_support: false,
    ...stats,
  };
  return { name: `h@${name}#${name}`, backend: `h@${name}`, availability_zone: zone, stats: s, capabilities: { volume_backend_name: name, vendor_name: 'Open Source', storage_protocol: 'NBD', ...s }, reported_at: '' };
}

const req = (r: Partial<FilterRequest> = {}): FilterRequest => ({ size: 1, availability_zone: 'nova', extra_specs: {}, source_backend: null, excluded: [], ...r });

test("extra-spec operators match as Cinder's extra_specs_ops", () => {
  const yes: [unknown, string][] = [
    ['fast', 'fast'],
    [true, 'True'],
    [true, '<is> True'],
    [true, '<is> true'],
    [false, '<is> False'],
    ['yes', '<is> True'],
    [10, '>= 10'],
    [10, '= 5'],
    [10, '== 10.0'],
    [10, '!= 11'],
    [10, '<= 10'],
    ['gold', '<or> silver <or> gold'],
    ['ssd,fast', '<in> fast'],
    [['a', 'b'], '<in> b'],
    ['abc', 's== abc'],
    ['abc', 's!= abd'],
    ['abc', 's< abd'],
    ['abc', 's>= abc'],
  ];
  for (const [value, requirement] of yes) assert.equal(matchExtraSpec(value, requirement), true, `${JSON.stringify(value)} ~ ${requirement}`);
  const no: [unknown, string][] = [
    ['fast', 'slow'],
    [true, 'true'],
    [true, '<is> False'],
    [9, '>= 10'],
    ['many', '>= 10'],
    [10, '>= many'],
    ['bronze', '<or> silver <or> gold'],
    ['abc', 's== abd'],
    [10, '>='],
  ];
  for (const [value, requirement] of no) assert.equal(matchExtraSpec(value, requirement), false, `${JSON.stringify(value)} !~ ${requirement}`);
});

test('the capabilities filter checks unscoped and capabilities: keys, and ignores other scopes', () => {
  const p = pool('fast');
  assert.equal(capabilitiesFilter.passes(p, req({ extra_specs: { volume_backend_name: 'fast', 'capabilities:storage_protocol': 'NBD', 'qos:read': 'x', 'RESKEY:foo': 'y' } })), true);
  assert.equal(capabilitiesFilter.passes(p, req({ extra_specs: { volume_backend_name: 'slow' } })), false);
  assert.equal(capabilitiesFilter.passes(p, req({ extra_specs: { unknown_capability: 'x' } })), false, 'a capability the pool lacks fails');
  assert.equal(capabilitiesFilter.passes(p, req({ extra_specs: { 'capabilities:multiattach': '<is> True' } })), true);
});

test("the capacity filter keeps the reserved part and applies thin provisioning's over-subscription", () => {
  assert.equal(capacityFilter.passes(pool('a', { free_capacity_gb: 10 }), req({ size: 10 })), true);
  assert.equal(capacityFilter.passes(pool('a', { free_capacity_gb: 10 }), req({ size: 11 })), false);
  assert.equal(capacityFilter.passes(pool('a', { free_capacity_gb: 10, reserved_percentage: 5 }), req({ size: 10 })), false, '5% of 100 is reserved');
  const thin = pool('t', { free_capacity_gb: 10, thin_provisioning_support: true, max_over_subscription_ratio: 20, provisioned_capacity_gb: 1500 });
  assert.equal(capacityFilter.passes(thin, req({ size: 150 })), true, '10 free x 20 = 200 virtual; provisioned ratio 16.5');
  assert.equal(capacityFilter.passes(thin, req({ size: 201 })), false);
  assert.equal(capacityFilter.passes(thin, req({ size: 150, extra_specs: { 'provisioning:type': 'thick' } })), false, 'thick volumes need real free space');
  assert.equal(capacityFilter.passes(pool('t', { thin_provisioning_support: true, max_over_subscription_ratio: 2, provisioned_capacity_gb: 190 }), req({ size: 20 })), false, 'over the ratio');
  assert.equal(capacityFilter.passes(pool('z', { total_capacity_gb: 0 }), req()), false);
});

test('the zone filter takes the volume zone and the type RESKEY:availability_zones', () => {
  assert.equal(availabilityZoneFilter.passes(pool('a', {}, 'az1'), req({ availability_zone: 'az1' })), true);
  assert.equal(availabilityZoneFilter.passes(pool('a', {}, 'az1'), req({ availability_zone: 'az2' })), false);
  assert.equal(availabilityZoneFilter.passes(pool('a', {}, 'az1'), req({ availability_zone: null, extra_specs: { 'RESKEY:availability_zones': 'az2, az1' } })), true);
  assert.equal(availabilityZoneFilter.passes(pool('a', {}, 'az1'), req({ availability_zone: null, extra_specs: { 'RESKEY:availability_zones': 'az2' } })), false);
});

test('excluded and source backends, then the weigher: most free room first, thin room counted over-subscribed', () => {
  const pools = [pool('a', { free_capacity_gb: 50 }), pool('b', { free_capacity_gb: 80 }), pool('c', { free_capacity_gb: 10, thin_provisioning_support: true, max_over_subscription_ratio: 20, provisioned_capacity_gb: 100 })];
  assert.deepEqual(weighPools(pools).map((p) => p.backend), ['h@c', 'h@b', 'h@a']);
  const { passed, rejected } = filterPools(pools, req({ excluded: ['h@c'] }));
  assert.deepEqual(passed.map((p) => p.backend), ['h@a', 'h@b']);
  assert.deepEqual(rejected, { 'h@c#c': 'RetryFilter' });
  assert.deepEqual(filterPools(pools, req({ source_backend: 'h@a#a' })).passed.map((p) => p.backend), ['h@a']);
  assert.deepEqual(weighPools([pool('y'), pool('x')]).map((p) => p.backend), ['h@x', 'h@y'], 'ties go by name');
});
