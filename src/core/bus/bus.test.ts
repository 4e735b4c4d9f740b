/**
 * Conformance suite of the bus, run against both transports: the in-process
 * one and RabbitMQ (STRATUS_TEST_AMQP_URL, required: the AMQP tests fail
 * without it).
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { ApiError, NotFound } from '../errors.js';
import { BusTimeout, BusUnavailable, RemoteError, createBus, type Bus, type BusContext, type Notification } from './index.js';
import { amqpTestUrl, brokerLock, testLogger } from './test-support.js';

/** Two buses on the same broker: `a` serves, `b` calls (separate connections on AMQP). */
interface Env {
  a: Bus;
  b: Bus;
  url: string;
}

const logger = testLogger();
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const uniq = (prefix: string): string => `test-${prefix}-${randomUUID().slice(0, 8)}`;

/** Waits until `check()` is true, polling, failing after `ms`. */
async function until(check: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

function conformance(name: string, open: () => Promise<Env & { release?: () => Promise<void> }>): void {
  describe(`bus conformance: ${name}`, () => {
    let env: ReturnType<typeof open> | undefined;
    const get = (): ReturnType<typeof open> => (env ??= open());
    /** Timeout for calls expected to succeed (generous: a broker may be busy). */
    const T = 15_000;

    after(async () => {
      const e = await env?.catch(() => undefined);
      if (!e) return;
      await e.a.close();
      await e.b.close();
      await e.release?.();
    });

    test('call returns the reply and carries the context', async () => {
      const { a, b } = await get();
      const topic = uniq('call');
      const server = await a.serve(topic, 's1', { echo: (args: unknown, ctx: BusContext) => ({ args, ctx }) });
      const context = { request_id: 'req-1', global_request_id: 'greq-1', user_id: 'u1', project_id: 'p1', roles: ['member'] };
      const reply = await b.call({ topic }, 'echo', { x: 1, list: [1, 'two'] }, { context, timeoutMs: T });
      assert.deepEqual(reply, { args: { x: 1, list: [1, 'two'] }, ctx: context });
      assert.deepEqual(await b.call({ topic, server: 's1' }, 'echo', null, { timeoutMs: T }), { args: null, ctx: {} });
      await server.stop();
    });

    test('handler errors come back as RemoteError with message and status', async () => {
      const { a, b } = await get();
      const topic = uniq('err');
      const server = await a.serve(topic, 's1', {
        missing: () => {
          throw new NotFound('Instance abc could not be found.');
        },
        busy: async () => {
          const err = new ApiError(503, 'Service Unavailable', 'try later');
          err.headers['Retry-After'] = '5';
          throw err;
        },
        broken: async () => {
          await sleep(1);
          throw new TypeError('cannot read x of undefined');
        },
        weird: () => {
          throw 'a string';
        },
      });
      const notFound = await b.call({ topic }, 'missing', {}, { timeoutMs: T }).then(
        () => assert.fail('should have thrown'),
        (e: unknown) => e,
      );
      assert.ok(notFound instanceof RemoteError);
      assert.equal(notFound.message, 'Instance abc could not be found.');
      assert.equal(notFound.excType, 'NotFound');
      assert.equal(notFound.status, 404);
      assert.equal(notFound.title, 'Not Found');
      const api = notFound.toApiError();
      assert.ok(api instanceof ApiError);
      assert.equal(api.status, 404);
      assert.equal(api.message, 'Instance abc could not be found.');

      await assert.rejects(b.call({ topic }, 'busy', {}, { timeoutMs: T }), (e: unknown) => {
        assert.ok(e instanceof RemoteError);
        assert.equal(e.status, 503);
        assert.deepEqual(e.toApiError()?.headers, { 'Retry-After': '5' });
        return true;
      });
      await assert.rejects(b.call({ topic }, 'broken', {}, { timeoutMs: T }), (e: unknown) => {
        assert.ok(e instanceof RemoteError);
        assert.equal(e.excType, 'TypeError');
        assert.equal(e.message, 'cannot read x of undefined');
        assert.equal(e.status, undefined);
        assert.equal(e.toApiError(), undefined);
        return true;
      });
      await assert.rejects(b.call({ topic }, 'weird', {}, { timeoutMs: T }), { name: 'RemoteError', message: 'a string' });
      await assert.rejects(b.call({ topic }, 'nope', {}, { timeoutMs: T }), (e: unknown) => e instanceof RemoteError && e.excType === 'NoSuchMethod');
      await assert.rejects(b.call({ topic }, 'toString', {}, { timeoutMs: T }), (e: unknown) => e instanceof RemoteError && e.excType === 'NoSuchMethod');
      await server.stop();
    });

    test('a call with no server, or a slow one, times out', async () => {
      const { a, b } = await get();
      let started = Date.now();
      await assert.rejects(b.call({ topic: uniq('nobody') }, 'x', {}, { timeoutMs: 300 }), BusTimeout);
      const elapsed = Date.now() - started;
      assert.ok(elapsed >= 290 && elapsed < 3000, `timed out after ${elapsed} ms`);

      const topic = uniq('slow');
      const server = await a.serve(topic, 's1', { slow: () => sleep(1500).then(() => 'late') });
      started = Date.now();
      await assert.rejects(b.call({ topic }, 'slow', {}, { timeoutMs: 300 }), BusTimeout);
      assert.ok(Date.now() - started < 1400);
      await server.stop();
    });

    test('cast reaches exactly one server of several', async () => {
      const { a, b } = await get();
      const topic = uniq('cast');
      const seen = new Map<string, number[]>();
      const servers = await Promise.all(
        ['s1', 's2', 's3'].map((s) => {
          seen.set(s, []);
          return a.serve(topic, s, { take: ({ n }: { n: number }) => void seen.get(s)?.push(n) });
        }),
      );
      for (let n = 0; n < 30; n++) await b.cast({ topic }, 'take', { n });
      const all = (): number[] => [...seen.values()].flat();
      await until(() => all().length >= 30, T, '30 casts');
      await sleep(200);
      assert.deepEqual(
        all().sort((x, y) => x - y),
        Array.from({ length: 30 }, (_, i) => i),
      );
      for (const [s, got] of seen) assert.ok(got.length > 0, `server ${s} got no cast (round robin)`);
      await Promise.all(servers.map((s) => s.stop()));
    });

    test('a direct target (topic.server) reaches only that server', async () => {
      const { a, b } = await get();
      const topic = uniq('direct');
      const seen: string[] = [];
      const servers = await Promise.all(['s1', 's2', 's3'].map((s) => a.serve(topic, s, { who: () => s, mark: () => void seen.push(s) })));
      for (let i = 0; i < 6; i++) assert.equal(await b.call({ topic, server: 's3' }, 'who', {}, { timeoutMs: T }), 's3');
      for (let i = 0; i < 5; i++) await b.cast({ topic, server: 's2' }, 'mark', {});
      await until(() => seen.length >= 5, T, 'direct casts');
      await sleep(100);
      assert.deepEqual(seen, ['s2', 's2', 's2', 's2', 's2']);
      await Promise.all(servers.map((s) => s.stop()));
    });

    test('fanout reaches every server once', async () => {
      const { a, b } = await get();
      const topic = uniq('fanout');
      const seen: string[] = [];
      const servers = await Promise.all(['s1', 's2', 's3'].map((s) => a.serve(topic, s, { hello: ({ v }: { v: number }) => void seen.push(`${s}:${v}`) })));
      await b.fanout(topic, 'hello', { v: 7 });
      await until(() => seen.length >= 3, T, 'fanout');
      await sleep(100);
      assert.deepEqual(seen.sort(), ['s1:7', 's2:7', 's3:7']);
      await b.fanout(uniq('fanout-nobody'), 'hello', {}); // no server: dropped, no error
      await Promise.all(servers.map((s) => s.stop()));
    });

    test('notifications reach listeners with the OpenStack fields', async () => {
      const { a, b } = await get();
      const prefix = uniq('evt');
      const mine: Notification[] = [];
      const all: Notification[] = [];
      const l1 = await b.onNotification(`${prefix}.instance.`, (n) => void mine.push(n));
      const l2 = await a.onNotification('*', (n) => void all.push(n));
      await a.notify('compute.host1', `${prefix}.instance.create.end`, { instance_id: 'i-1', at: new Date(0) });
      await a.notify('compute.host1', `${prefix}.volume.attach`, { volume_id: 'v-1' }, 'ERROR');
      await until(() => mine.length >= 1 && all.filter((n) => n.event_type.startsWith(prefix)).length >= 2, T, 'notifications');
      await sleep(100);
      assert.equal(mine.length, 1);
      const n = mine[0];
      assert.ok(n);
      assert.match(n.message_id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      assert.equal(n.publisher_id, 'compute.host1');
      assert.equal(n.event_type, `${prefix}.instance.create.end`);
      assert.equal(n.priority, 'INFO');
      assert.deepEqual(n.payload, { instance_id: 'i-1', at: '1970-01-01T00:00:00.000Z' });
      assert.match(n.timestamp, /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}$/);
      assert.ok(Math.abs(Date.parse(`${n.timestamp.slice(0, 23).replace(' ', 'T')}Z`) - Date.now()) < 60_000);
      const error = all.find((x) => x.event_type === `${prefix}.volume.attach`);
      assert.equal(error?.priority, 'ERROR');
      await l1.stop();
      await l2.stop();
    });

    test('listeners of one pool share the notifications', async () => {
      const { a, b } = await get();
      const prefix = uniq('pool');
      const pool = uniq('p');
      const got: string[][] = [[], []];
      const listeners = await Promise.all(got.map((list, i) => (i === 0 ? a : b).onNotification(prefix, (n) => void list.push(n.event_type), { pool })));
      for (let i = 0; i < 10; i++) await b.notify('test', `${prefix}.${i}`, {});
      await until(() => got.flat().length >= 10, T, 'pool notifications');
      await sleep(100);
      assert.equal(got.flat().length, 10);
      assert.equal(new Set(got.flat()).size, 10);
      await Promise.all(listeners.map((l) => l.stop()));
    });

    test('everything crosses the bus as JSON', async () => {
      const { a, b } = await get();
      const topic = uniq('json');
      class Point {
        constructor(readonly x: number) {}
        norm(): number {
          return Math.abs(this.x);
        }
      }
      const server = await a.serve(topic, 's1', {
        inspect: (args: Record<string, unknown>) => ({
          args,
          dateType: typeof args.d,
          hasUndefined: 'u' in args,
          plainPoint: Object.getPrototypeOf(args.point) === Object.prototype,
        }),
        date: () => new Date(Date.UTC(2020, 0, 2, 3, 4, 5)),
        bigint: () => ({ n: 10n }),
        fn: () => ({ f: () => 1 }),
        nothing: () => undefined,
      });
      const input = { d: new Date(Date.UTC(2021, 5, 6)), u: undefined, arr: [undefined, 1], point: new Point(-3), nan: Number.NaN, map: new Map([[1, 2]]) };
      const reply = await b.call<Record<string, unknown>>({ topic }, 'inspect', input, { timeoutMs: T });
      assert.deepEqual(reply.args, JSON.parse(JSON.stringify(input)));
      assert.deepEqual(reply.args, { d: '2021-06-06T00:00:00.000Z', arr: [null, 1], point: { x: -3 }, nan: null, map: {} });
      assert.equal(reply.dateType, 'string');
      assert.equal(reply.hasUndefined, false);
      assert.equal(reply.plainPoint, true);
      assert.equal(await b.call({ topic }, 'date', {}, { timeoutMs: T }), '2020-01-02T03:04:05.000Z');
      assert.equal(await b.call({ topic }, 'nothing', {}, { timeoutMs: T }), undefined);
      await assert.rejects(b.call({ topic }, 'bigint', {}, { timeoutMs: T }), (e: unknown) => e instanceof RemoteError && e.excType === 'TypeError');
      await assert.rejects(b.call({ topic }, 'fn', {}, { timeoutMs: T }), (e: unknown) => e instanceof RemoteError && e.excType === 'TypeError');
      // What JSON cannot carry makes the sender reject, not the message vanish.
      await assert.rejects(b.call({ topic }, 'inspect', { f: () => 1 }, { timeoutMs: T }), TypeError);
      await assert.rejects(b.call({ topic }, 'inspect', { n: 1n }, { timeoutMs: T }), TypeError);
      await assert.rejects(b.call({ topic }, 'inspect', {}, { timeoutMs: T, context: { user_id: 'u', n: 1n } }), TypeError);
      await assert.rejects(b.cast({ topic }, 'inspect', [() => 1]), TypeError);
      await assert.rejects(b.cast({ topic }, 'inspect', { s: Symbol('x') }), TypeError);
      await assert.rejects(b.fanout(topic, 'inspect', 1n), TypeError);
      await assert.rejects(b.notify('test', `${topic}.x`, { f: () => 1 }), TypeError);
      const cyclic: Record<string, unknown> = {};
      cyclic.self = cyclic;
      await assert.rejects(b.cast({ topic }, 'inspect', cyclic), TypeError);
      await server.stop();
    });

    test('200 concurrent calls each get their own reply', async () => {
      const { a, b } = await get();
      const topic = uniq('many');
      const servers = await Promise.all(
        ['s1', 's2'].map((s) =>
          a.serve(topic, s, {
            double: async ({ n }: { n: number }) => {
              await sleep(n % 7);
              return { n: n * 2, by: s };
            },
          }),
        ),
      );
      const replies = await Promise.all(Array.from({ length: 200 }, (_, n) => b.call<{ n: number; by: string }>({ topic }, 'double', { n }, { timeoutMs: 30_000 })));
      replies.forEach((r, n) => assert.equal(r.n, n * 2));
      assert.equal(new Set(replies.map((r) => r.by)).size, 2);
      await Promise.all(servers.map((s) => s.stop()));
    });

    test('stop() stops consuming; close() rejects what is pending', async () => {
      const { a, b, url } = await get();
      const topic = uniq('stop');
      let calls = 0;
      const server = await a.serve(topic, 's1', {
        hit: () => ++calls,
        slow: () => sleep(2000),
      });
      assert.equal(await b.call({ topic }, 'hit', {}, { timeoutMs: T }), 1);
      await server.stop();
      await server.stop();
      await assert.rejects(b.call({ topic }, 'hit', {}, { timeoutMs: 300 }), BusTimeout);
      assert.equal(calls, 1);

      const c = await createBus(url, { name: 'conformance-close', logger });
      const other = await a.serve(topic, 's2', { slow: () => sleep(2000) });
      const pending = c.call({ topic, server: 's2' }, 'slow', {}, { timeoutMs: T }).then(
        () => assert.fail('a call pending at close() must reject'),
        (e: unknown) => e,
      );
      await sleep(200);
      await c.close();
      assert.ok((await pending) instanceof BusUnavailable);
      await assert.rejects(c.cast({ topic }, 'hit', {}), BusUnavailable);
      await other.stop();
    });
  });
}

conformance('memory://', async () => {
  const url = `memory://conformance-${randomUUID()}`;
  return { a: await createBus(url, { name: 'conformance-a', logger }), b: await createBus(url, { name: 'conformance-b', logger }), url };
});

conformance('amqp:// (RabbitMQ, STRATUS_TEST_AMQP_URL)', async () => {
  const url = amqpTestUrl();
  const release = await brokerLock('shared');
  try {
    return { a: await createBus(url, { name: 'conformance-a', logger }), b: await createBus(url, { name: 'conformance-b', logger }), url, release };
  } catch (err) {
    await release();
    throw err;
  }
});
