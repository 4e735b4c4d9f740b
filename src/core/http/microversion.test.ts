import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BadRequest, NotAcceptable, NotFound } from '../errors.js';
import { keystoneFault, neutronFault, novaFault } from './faults.js';
import { negotiateMicroversion } from './microversion.js';

const range = { service: 'compute', min: '2.1', max: '2.93', legacyHeader: 'X-OpenStack-Nova-API-Version' };

test('no header gives the minimum; latest gives the maximum; the answer names the version', () => {
  assert.deepEqual(negotiateMicroversion({}, range).version, { major: 2, minor: 1 });
  const latest = negotiateMicroversion({ 'openstack-api-version': 'compute latest' }, range);
  assert.deepEqual(latest.version, { major: 2, minor: 93 });
  assert.equal(latest.responseHeaders['OpenStack-API-Version'], 'compute 2.93');
  assert.equal(latest.responseHeaders['X-OpenStack-Nova-API-Version'], '2.93');
  assert.match(latest.responseHeaders.Vary ?? '', /OpenStack-API-Version/);
});

test('the standard header for this service wins; others are ignored; the legacy header works alone', () => {
  const both = negotiateMicroversion({ 'openstack-api-version': 'volume 3.10, compute 2.10', 'x-openstack-nova-api-version': '2.5' }, range);
  assert.deepEqual(both.version, { major: 2, minor: 10 });
  assert.deepEqual(negotiateMicroversion({ 'x-openstack-nova-api-version': '2.5' }, range).version, { major: 2, minor: 5 });
  assert.deepEqual(negotiateMicroversion({ 'openstack-api-version': 'volume 3.10' }, range).version, { major: 2, minor: 1 });
  assert.deepEqual(negotiateMicroversion({ 'openstack-api-version': 'compute 2.9' }, range).version, { major: 2, minor: 9 }, '2.9 < 2.10 numerically');
});

test('out of range is 406, malformed is 400', () => {
  assert.throws(() => negotiateMicroversion({ 'openstack-api-version': 'compute 2.94' }, range), NotAcceptable);
  assert.throws(() => negotiateMicroversion({ 'openstack-api-version': 'compute 1.99' }, range), NotAcceptable);
  assert.throws(() => negotiateMicroversion({ 'openstack-api-version': 'compute two' }, range), BadRequest);
});

test('fault bodies per API', () => {
  const err = new NotFound('Server x could not be found.');
  assert.deepEqual(keystoneFault(err).body, { error: { code: 404, title: 'Not Found', message: 'Server x could not be found.' } });
  assert.deepEqual(novaFault(err).body, { itemNotFound: { code: 404, message: 'Server x could not be found.' } });
  assert.deepEqual(novaFault(new BadRequest('bad')).body, { badRequest: { code: 400, message: 'bad' } });
  assert.deepEqual(neutronFault(err).body, { NeutronError: { type: 'NotFound', message: 'Server x could not be found.', detail: '' } });
});
