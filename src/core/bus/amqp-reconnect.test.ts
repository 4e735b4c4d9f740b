/**
 * The AMQP transport survives a broker restart (`rabbitmqctl stop_app` then
 * `start_app`): consumers come back by themselves, calls in flight settle
 * within their timeout, publishes while the broker is down neither hang nor
 * crash. Needs STRATUS_TEST_AMQP_URL and a local `rabbitmqctl` able to manage
 * the broker (see `rabbitmqctl` in test-support.ts for how the node is found).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { BusTimeout, BusUnavailable, createBus, type Bus, type Notification } from './index.js';
import { amqpTestUrl, brokerLock, rabbitmqctl, testLogger } from './test-support.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function until(check: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Settles `p` into a value or an error, and how long that took from `since`. */
async function settle<T>(p: Promise<T>, since: number): Promise<{ value?: T; error?: unknown; ms: number }> {
  try {
    const value = await p;
    return { value, ms: Date.now() - since };
  } catch (error) {
    return { error, ms: Date.now() - since };
  }
}

test('an existing serve() keeps working after the broker restarts', { timeout: 240_000 }, async () => {
  const url = amqpTestUrl();
  const release = await brokerLock('exclusive');
  const buses: Bus[] = [];
  let brokerStopped = false;
  try {
    const logger = testLogger();
    const server = await createBus(url, { name: 'reconnect-server', logger });
    buses.push(server);
    const client = await createBus(url, { name: 'reconnect-client', logger });
    buses.push(client);

    const topic = `test-reconnect-${randomUUID().slice(0, 8)}`;
    const hellos: number[] = [];
    await server.serve(topic, 'r1', {
      ping: (n: number) => ({ pong: n }),
      slow: () => sleep(1500).then(() => 'late'),
      hello: (n: number) => void hellos.push(n),
    });
    const notes: Notification[] = [];
    await client.onNotification(topic, (n) => void notes.push(n));
    assert.deepEqual(await client.call({ topic }, 'ping', 1, { timeoutMs: 10_000 }), { pong: 1 });

    // A call in flight when the broker goes away settles (reply or error) within its timeout.
    const inFlightStart = Date.now();
    const inFlight = settle(client.call({ topic }, 'slow', null, { timeoutMs: 4_000 }), inFlightStart);
    await sleep(100);

    await rabbitmqctl(['stop_app']);
    brokerStopped = true;

    // While the broker is down, a cast neither hangs nor crashes: it waits a few seconds, then rejects.
    const castStart = Date.now();
    const cast = await settle(client.cast({ topic }, 'ping', 2), castStart);
    assert.ok(cast.ms < 8_000, `cast settled after ${cast.ms} ms`);
    if (cast.error !== undefined) assert.ok(cast.error instanceof BusUnavailable, `cast failed with ${String(cast.error)}`);

    await rabbitmqctl(['start_app']);
    await rabbitmqctl(['await_startup']);
    brokerStopped = false;

    const settled = await inFlight;
    assert.ok(settled.ms < 4_000 + 1_000, `the call in flight settled after ${settled.ms} ms`);
    if (settled.error !== undefined) {
      assert.ok(settled.error instanceof BusTimeout || settled.error instanceof BusUnavailable, `in-flight call failed with ${String(settled.error)}`);
    } else {
      assert.equal(settled.value, 'late');
    }

    // The same serve() answers calls made after the restart: shared and direct queues, fanout, notifications.
    assert.deepEqual(await client.call({ topic }, 'ping', 3, { timeoutMs: 30_000 }), { pong: 3 });
    assert.deepEqual(await client.call({ topic, server: 'r1' }, 'ping', 4, { timeoutMs: 30_000 }), { pong: 4 });
    await client.fanout(topic, 'hello', 5);
    await until(() => hellos.includes(5), 10_000, 'the fanout after the restart');
    await server.notify('test', `${topic}.after.restart`, { ok: true });
    await until(() => notes.some((n) => n.event_type === `${topic}.after.restart`), 10_000, 'the notification after the restart');
  } finally {
    if (brokerStopped) await rabbitmqctl(['start_app']).catch(() => undefined);
    for (const bus of buses) await bus.close();
    await release();
  }
});
