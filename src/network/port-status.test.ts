import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import type { Notification } from '../core/bus/index.js';
import { notifyComputeNetworkChanged, notifyComputePortDeleted } from './compute-notifier.js';
import { portStatusChanged } from './port-status.js';
import { createTestNetwork, type TestNetwork } from './testing.js';

// Facts from Neutron's nova notifier (neutron/notifiers/nova.py) and Nova's
// os-server-external-events API.

/** A compute API on loopback that records the event batches it is sent. */
class FakeCompute {
  readonly batches: { events: Record<string, unknown>[]; token: string | undefined }[] = [];
  status = 200;
  private server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      if (req.method === 'POST' && req.url === '/v2.1/os-server-external-events') {
        const parsed = JSON.parse(body) as { events: Record<string, unknown>[] };
        this.batches.push({ events: parsed.events, token: req.headers['x-auth-token'] as string | undefined });
        res.writeHead(this.status, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ events: parsed.events.map((e) => ({ ...e, code: 200 })) }));
        return;
      }
      res.writeHead(404).end();
    });
  });

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/v2.1`;
  }

  events(): Record<string, unknown>[] {
    return this.batches.flatMap((b) => b.events);
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

const compute = new FakeCompute();
let t: TestNetwork;
let networkId: string;

before(async () => {
  const url = await compute.start();
  t = await createTestNetwork({}, { services: [{ type: 'compute', name: 'nova', url }] });
  networkId = (await t.create(t.admin, 'networks', 'network', { name: 'vm-net' })).id as string;
});

after(async () => {
  await t?.close();
  await compute.stop();
});

async function port(body: Record<string, unknown>): Promise<Record<string, any>> {
  return t.create(t.admin, 'ports', 'port', { network_id: networkId, ...body });
}

async function show(id: string): Promise<Record<string, any>> {
  const res = await t.request('GET', `/v2.0/ports/${id}`, { user: t.admin });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body.port as Record<string, any>;
}

function reset(): void {
  compute.batches.length = 0;
  compute.status = 200;
}

test('a compute port going ACTIVE sends exactly one network-vif-plugged', async () => {
  reset();
  const server = randomUUID();
  const created = await port({ device_owner: 'compute:nova', device_id: server, 'binding:host_id': 'compute-1' });
  await t.settle();
  const shown = await show(created.id);
  assert.equal(shown.status, 'ACTIVE', 'the fake driver wired it');
  assert.deepEqual(compute.events(), [{ name: 'network-vif-plugged', server_uuid: server, tag: created.id, status: 'completed' }], 'one event');
  assert.equal(compute.batches.length, 1, 'one request');
  assert.ok(compute.batches[0]?.token, 'sent with the service token');

  // The same status again says nothing and changes nothing.
  assert.equal(await portStatusChanged(t.net, created.id, 'ACTIVE'), true, 'the port exists');
  await t.settle();
  assert.equal(compute.events().length, 1, 'no second event');
  assert.equal((await show(created.id)).revision_number, shown.revision_number, 'no bump');
  await portStatusChanged(t.net, created.id, 'DOWN');
  const down = await show(created.id);
  assert.equal(down.revision_number, shown.revision_number + 1, 'a change bumps the revision once');
  assert.ok(down.updated_at >= shown.updated_at, 'and updated_at');
  await t.settle();
});

test('ACTIVE -> DOWN sends network-vif-unplugged; ERROR from DOWN sends a failed plug', async () => {
  reset();
  const server = randomUUID();
  const created = await port({ device_owner: 'compute:az1', device_id: server });
  await portStatusChanged(t.net, created.id, 'ACTIVE');
  await t.settle();
  await portStatusChanged(t.net, created.id, 'DOWN');
  await t.settle();
  await portStatusChanged(t.net, created.id, 'ERROR');
  await t.settle();
  assert.deepEqual(
    compute.events().map((e) => [e.name, e.status]),
    [
      ['network-vif-plugged', 'completed'],
      ['network-vif-unplugged', 'completed'],
      ['network-vif-plugged', 'failed'],
    ],
    'one event per transition',
  );
  assert.equal((await show(created.id)).status, 'ERROR', 'status recorded');
});

test('ports not of a server change status without telling compute; port.update.end is published', async () => {
  reset();
  const seen: Notification[] = [];
  const consumer = await t.net.bus.onNotification('port.update.end', (n) => {
    seen.push(n);
  });
  try {
    const dhcp = await port({ device_owner: 'network:dhcp', device_id: `dhcp-${randomUUID()}` });
    const unowned = await port({ device_owner: 'compute:nova', device_id: '' });
    await portStatusChanged(t.net, dhcp.id, 'ACTIVE');
    await portStatusChanged(t.net, unowned.id, 'ACTIVE');
    await t.settle();
    assert.deepEqual(compute.events(), [], 'compute hears nothing');
    assert.equal((await show(dhcp.id)).status, 'ACTIVE', 'status recorded');
    for (let i = 0; i < 50 && !seen.some((n) => (n.payload as any).port?.id === dhcp.id); i++) await new Promise((r) => setTimeout(r, 20));
    const note = seen.find((n) => (n.payload as any).port?.id === dhcp.id);
    assert.equal((note?.payload as any)?.port?.status, 'ACTIVE', 'port.update.end carries the new status');
  } finally {
    await consumer.stop();
  }
  assert.equal(await portStatusChanged(t.net, randomUUID(), 'ACTIVE'), false, 'an unknown port is ignored');
});

test('events close together go in one request; deleted and changed ports have their own events', async () => {
  reset();
  const a = await port({ device_owner: 'compute:nova', device_id: randomUUID() });
  const b = await port({ device_owner: 'compute:nova', device_id: randomUUID() });
  await Promise.all([portStatusChanged(t.net, a.id, 'ACTIVE'), portStatusChanged(t.net, b.id, 'ACTIVE')]);
  notifyComputeNetworkChanged(t.net, { id: a.id, device_id: a.device_id, device_owner: a.device_owner });
  notifyComputePortDeleted(t.net, { id: b.id, device_id: b.device_id, device_owner: b.device_owner });
  notifyComputePortDeleted(t.net, { id: b.id, device_id: b.device_id, device_owner: b.device_owner });
  notifyComputePortDeleted(t.net, { id: randomUUID(), device_id: randomUUID(), device_owner: 'network:router_interface' });
  await new Promise((r) => setTimeout(r, 400));
  await t.settle();
  assert.equal(compute.batches.length, 1, `one request for the batch: ${JSON.stringify(compute.batches)}`);
  const key = (e: unknown[]): string => JSON.stringify(e);
  assert.deepEqual(
    compute
      .events()
      .map((e) => [e.name, e.tag, e.server_uuid])
      .map(key)
      .sort(),
    [
      ['network-vif-plugged', a.id, a.device_id],
      ['network-vif-plugged', b.id, b.device_id],
      ['network-changed', a.id, a.device_id],
      ['network-vif-deleted', b.id, b.device_id],
    ]
      .map(key)
      .sort(),
    'plugged, changed, deleted (duplicates dropped, non-compute ports ignored)',
  );
});

test('a failing compute is logged, never thrown into the caller', async () => {
  reset();
  compute.status = 500;
  const created = await port({ device_owner: 'compute:nova', device_id: randomUUID() });
  assert.equal(await portStatusChanged(t.net, created.id, 'ACTIVE'), true, 'status recorded');
  await t.settle();
  assert.equal(compute.batches.length, 1, 'tried once (a POST is not retried on 500)');
  assert.equal((await show(created.id)).status, 'ACTIVE', 'the change stands');
});

test('without a compute endpoint in the catalog events are dropped quietly', async () => {
  const alone = await createTestNetwork();
  try {
    const messages: { level: string; msg: unknown }[] = [];
    for (const level of ['debug', 'warn'] as const) {
      const original = alone.net.log[level].bind(alone.net.log);
      alone.net.log[level] = ((obj: unknown, msg?: unknown, ...rest: unknown[]) => {
        messages.push({ level, msg });
        original(obj as object, msg as string, ...rest);
      }) as typeof original;
    }
    const net = await alone.create(alone.admin, 'networks', 'network', {});
    const created = await alone.create(alone.admin, 'ports', 'port', { network_id: net.id, device_owner: 'compute:nova', device_id: randomUUID() });
    assert.equal(await portStatusChanged(alone.net, created.id, 'ACTIVE'), true, 'status recorded');
    await alone.settle();
    assert.ok(messages.some((m) => m.level === 'debug' && m.msg === 'no compute endpoint in the catalog; port events dropped'), 'the dropped events are logged at debug');
    assert.ok(!messages.some((m) => m.level === 'warn' && String(m.msg).includes('compute')), `no warning: ${JSON.stringify(messages.filter((m) => m.level === 'warn'))}`);
    const shown = await alone.request('GET', `/v2.0/ports/${created.id}`, { user: alone.admin });
    assert.equal(shown.body.port.status, 'ACTIVE', 'the port is ACTIVE');
  } finally {
    await alone.close();
  }
});
