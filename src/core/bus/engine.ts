/**
 * The bus itself, over any {@link Transport}: the oslo.messaging topology
 * (exchange `openstack` of type topic, queues `topic` and `topic.server`,
 * fanout exchange `topic_fanout` with private queues, a reply queue
 * `reply_<id>` per bus, notifications routed as `notifications.<priority>`),
 * JSON encoding, call correlation and timeouts, handler dispatch and metrics.
 */
import type { Logger } from 'pino';
import { busDuration, busErrors } from '../metrics.js';
import {
  BusTimeout,
  BusUnavailable,
  RemoteError,
  type Bus,
  type BusContext,
  type Consumer,
  type Handler,
  type Notification,
  type Priority,
  type Target,
} from './bus.js';
import { decodeNotification, decodeReply, decodeRequest, encodeFailure, encodeNotification, encodeRequest, encodeResult, hexId, type Request } from './envelope.js';
import type { Delivery, ExchangeRef, PublishOptions, QueueSpec, Subscription, Transport } from './transport.js';

/** oslo.messaging's default `control_exchange`. */
export const RPC_EXCHANGE: ExchangeRef = { name: 'openstack', type: 'topic' };
/** oslo.messaging's notification topic. */
export const NOTIFICATION_TOPIC = 'notifications';
/** Default timeout of `call`. */
export const DEFAULT_CALL_TIMEOUT_MS = 60_000;
/** How long casts, fanouts, notifications and replies wait for an unreachable broker. */
export const PUBLISH_WAIT_MS = 5_000;
/** Expiry of reply, direct and pool queues left without consumers (oslo's `rabbit_transient_queues_ttl`). */
export const TRANSIENT_QUEUE_TTL_MS = 30 * 60_000;
/** Handlers running at once per `serve` (oslo's `executor_thread_pool_size`). */
export const RPC_CONCURRENCY = 64;
/** Notifications being handled at once per listener. */
export const NOTIFICATION_PREFETCH = 16;

const PRIORITIES: ReadonlySet<string> = new Set(['INFO', 'WARN', 'ERROR', 'DEBUG', 'AUDIT', 'CRITICAL', 'SAMPLE']);

type Kind = 'call' | 'cast' | 'fanout' | 'notify';

interface PendingCall {
  resolve(result: unknown): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

function checkName(what: string, value: unknown): asserts value is string {
  if (typeof value !== 'string' || value === '' || /[#*\s]/.test(value) || Buffer.byteLength(value) > 200) {
    throw new TypeError(`invalid bus ${what} ${JSON.stringify(value)}: a non-empty name without spaces, '#' or '*'`);
  }
}

function sharedQueue(topic: string): QueueSpec {
  return { name: topic, bindings: [{ exchange: RPC_EXCHANGE, routingKey: topic }] };
}

function directQueue(topic: string, server: string): QueueSpec {
  const name = `${topic}.${server}`;
  return { name, expiresMs: TRANSIENT_QUEUE_TTL_MS, bindings: [{ exchange: RPC_EXCHANGE, routingKey: name }] };
}

function fanoutExchange(topic: string): ExchangeRef {
  return { name: `${topic}_fanout`, type: 'fanout' };
}

function replyQueue(name: string): QueueSpec {
  return { name, expiresMs: TRANSIENT_QUEUE_TTL_MS, bindings: [] };
}

function reason(err: unknown): string {
  if (err instanceof BusTimeout) return 'timeout';
  if (err instanceof RemoteError) return 'remote';
  if (err instanceof BusUnavailable) return 'unavailable';
  if (err instanceof TypeError) return 'serialization';
  return 'transport';
}

/** A {@link Bus} over a transport. Built by `createBus`. */
export class TransportBus implements Bus {
  private readonly pending = new Map<string, PendingCall>();
  private readonly replyQueueName = `reply_${hexId()}`;
  private replySubscription: Promise<Subscription> | undefined;
  private readonly consumers = new Set<Consumer>();
  private closed = false;

  constructor(
    private readonly transport: Transport,
    private readonly log: Logger,
  ) {}

  /** See {@link Bus.call}. */
  async call<T = unknown>(target: Target, method: string, args: unknown, options: { timeoutMs?: number; context?: BusContext } = {}): Promise<T> {
    return (await this.measure('call', target.topic, method, async () => {
      this.checkOpen();
      const timeoutMs = options.timeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
      if (!(timeoutMs > 0)) throw new TypeError(`invalid call timeout ${timeoutMs}`);
      const { routingKey, spec } = this.route(target);
      const msgId = hexId();
      const body = encodeRequest({ method, args, context: options.context ?? {}, msgId, replyQueue: this.replyQueueName, timeoutMs });
      const deadline = Date.now() + timeoutMs;
      return new Promise<unknown>((resolve, reject) => {
        const timer = setTimeout(() => {
          this.pending.delete(msgId);
          const where = target.server === undefined ? target.topic : `${target.topic}.${target.server}`;
          reject(new BusTimeout(`Timed out waiting for a reply to ${where}.${method} (message ID ${msgId}) after ${timeoutMs} ms`));
        }, timeoutMs);
        this.pending.set(msgId, { resolve, reject, timer });
        const fail = (err: unknown): void => {
          const call = this.pending.get(msgId);
          if (!call) return;
          clearTimeout(call.timer);
          this.pending.delete(msgId);
          call.reject(err instanceof Error ? err : new Error(String(err)));
        };
        void this.ensureReplyQueue()
          .then(() => {
            const waitMs = deadline - Date.now();
            if (!this.pending.has(msgId) || waitMs <= 0) return undefined;
            return this.transport.publish(RPC_EXCHANGE, routingKey, body, {
              waitMs,
              expirationMs: timeoutMs,
              declare: spec,
              correlationId: msgId,
              replyTo: this.replyQueueName,
            });
          })
          .catch(fail);
      });
    })) as T;
  }

  /** See {@link Bus.cast}. */
  async cast(target: Target, method: string, args: unknown, options: { context?: BusContext } = {}): Promise<void> {
    await this.measure('cast', target.topic, method, async () => {
      this.checkOpen();
      const { routingKey, spec } = this.route(target);
      const body = encodeRequest({ method, args, context: options.context ?? {} });
      await this.transport.publish(RPC_EXCHANGE, routingKey, body, { waitMs: PUBLISH_WAIT_MS, declare: spec });
    });
  }

  /** See {@link Bus.fanout}. */
  async fanout(topic: string, method: string, args: unknown, options: { context?: BusContext } = {}): Promise<void> {
    await this.measure('fanout', topic, method, async () => {
      this.checkOpen();
      checkName('topic', topic);
      const body = encodeRequest({ method, args, context: options.context ?? {} });
      await this.transport.publish(fanoutExchange(topic), topic, body, { waitMs: PUBLISH_WAIT_MS });
    });
  }

  /** See {@link Bus.notify}. */
  async notify(publisherId: string, eventType: string, payload: unknown, priority: Priority = 'INFO'): Promise<void> {
    await this.measure('notify', NOTIFICATION_TOPIC, eventType, async () => {
      this.checkOpen();
      if (!PRIORITIES.has(priority)) throw new TypeError(`invalid notification priority ${JSON.stringify(priority)}`);
      if (typeof eventType !== 'string' || eventType === '') throw new TypeError('a notification needs an event_type');
      const { body } = encodeNotification(publisherId, eventType, payload, priority);
      await this.transport.publish(RPC_EXCHANGE, `${NOTIFICATION_TOPIC}.${priority.toLowerCase()}`, body, { waitMs: PUBLISH_WAIT_MS });
    });
  }

  /** See {@link Bus.serve}. */
  async serve(topic: string, server: string, handlers: Record<string, Handler>): Promise<Consumer> {
    this.checkOpen();
    checkName('topic', topic);
    checkName('server', server);
    const dispatcher = new RpcDispatcher(this.transport, this.log.child({ topic, server }), handlers);
    const push = (delivery: Delivery): void => dispatcher.push(delivery);
    const specs: QueueSpec[] = [sharedQueue(topic), directQueue(topic, server), { bindings: [{ exchange: fanoutExchange(topic), routingKey: topic }] }];
    const settled = await Promise.allSettled(specs.map((spec) => this.transport.subscribe(spec, RPC_CONCURRENCY, push)));
    const subscriptions = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    const failure = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failure) {
      await Promise.all(subscriptions.map((s) => s.close().catch(() => undefined)));
      throw failure.reason;
    }
    return this.track(subscriptions, () => dispatcher.stop());
  }

  /** See {@link Bus.onNotification}. */
  async onNotification(filter: string, listener: (n: Notification) => void | Promise<void>, options: { pool?: string } = {}): Promise<Consumer> {
    this.checkOpen();
    if (typeof filter !== 'string' || filter === '') throw new TypeError("a notification filter is an event_type prefix or '*'");
    const prefix = filter.endsWith('*') ? filter.slice(0, -1) : filter;
    const spec: QueueSpec = { bindings: [{ exchange: RPC_EXCHANGE, routingKey: `${NOTIFICATION_TOPIC}.*` }] };
    if (options.pool !== undefined) {
      checkName('pool', options.pool);
      spec.name = `${NOTIFICATION_TOPIC}_pool_${options.pool}`;
      spec.expiresMs = TRANSIENT_QUEUE_TTL_MS;
    }
    const inFlight = new Set<Promise<void>>();
    const log = this.log;
    const handle = async (delivery: Delivery): Promise<void> => {
      let notification: Notification;
      try {
        notification = decodeNotification(delivery.body);
      } catch (err) {
        log.warn({ err }, 'dropping a malformed notification');
        delivery.ack();
        return;
      }
      if (notification.event_type.startsWith(prefix)) {
        try {
          await listener(notification);
        } catch (err) {
          log.error({ err, event_type: notification.event_type }, 'notification listener failed');
        }
      }
      delivery.ack();
    };
    const subscription = await this.transport.subscribe(spec, NOTIFICATION_PREFETCH, (delivery) => {
      const p = handle(delivery);
      inFlight.add(p);
      void p.finally(() => inFlight.delete(p));
    });
    return this.track([subscription], async () => {
      await Promise.all([...inFlight]);
    });
  }

  /** See {@link Bus.close}. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.consumers].map((c) => c.stop()));
    for (const [msgId, call] of this.pending) {
      clearTimeout(call.timer);
      this.pending.delete(msgId);
      call.reject(new BusUnavailable('the message bus was closed before the reply came'));
    }
    const reply = this.replySubscription;
    if (reply) await reply.then((s) => s.close()).catch(() => undefined);
    await this.transport.close();
  }

  private checkOpen(): void {
    if (this.closed) throw new BusUnavailable('the message bus is closed');
  }

  private route(target: Target): { routingKey: string; spec: QueueSpec } {
    checkName('topic', target.topic);
    if (target.server === undefined) return { routingKey: target.topic, spec: sharedQueue(target.topic) };
    checkName('server', target.server);
    const spec = directQueue(target.topic, target.server);
    return { routingKey: `${target.topic}.${target.server}`, spec };
  }

  /** Cancels the subscriptions, waits for `drain` (handlers in progress), then closes them. */
  private track(subscriptions: Subscription[], drain: () => Promise<void>): Consumer {
    let stopping: Promise<void> | undefined;
    const consumer: Consumer = {
      stop: () => {
        stopping ??= (async () => {
          await Promise.all(subscriptions.map((s) => s.cancel().catch(() => undefined)));
          await drain();
          await Promise.all(subscriptions.map((s) => s.close().catch(() => undefined)));
          this.consumers.delete(consumer);
        })();
        return stopping;
      },
    };
    this.consumers.add(consumer);
    return consumer;
  }

  private ensureReplyQueue(): Promise<Subscription> {
    if (!this.replySubscription) {
      const subscription = this.transport.subscribe(replyQueue(this.replyQueueName), 1000, (delivery) => this.onReply(delivery));
      this.replySubscription = subscription;
      void subscription.catch(() => {
        if (this.replySubscription === subscription) this.replySubscription = undefined;
      });
    }
    return this.replySubscription;
  }

  private onReply(delivery: Delivery): void {
    delivery.ack();
    let reply;
    try {
      reply = decodeReply(delivery.body);
    } catch (err) {
      this.log.warn({ err }, 'dropping a malformed RPC reply');
      return;
    }
    const call = this.pending.get(reply.msgId);
    if (!call) return; // timed out already, or a duplicate
    clearTimeout(call.timer);
    this.pending.delete(reply.msgId);
    if (reply.ok) call.resolve(reply.result);
    else call.reject(reply.error);
  }

  private async measure<T>(kind: Kind, topic: unknown, method: string, fn: () => Promise<T>): Promise<T> {
    const labels = { kind, topic: typeof topic === 'string' ? topic : '', method: String(method) };
    const end = busDuration.startTimer(labels);
    try {
      return await fn();
    } catch (err) {
      busErrors.inc({ kind, topic: labels.topic, reason: reason(err) });
      throw err;
    } finally {
      end();
    }
  }
}

/**
 * Runs the handlers of one `serve`: at most {@link RPC_CONCURRENCY} at once.
 * A message is acknowledged when its handler starts (at-most-once, as oslo),
 * so the ones waiting here stay unacknowledged and go back to the queue, for
 * another server, if the connection or the server goes.
 */
class RpcDispatcher {
  private running = 0;
  private waiting: Delivery[] = [];
  private stopped = false;
  private idle: (() => void)[] = [];

  constructor(
    private readonly transport: Transport,
    private readonly log: Logger,
    private readonly handlers: Record<string, Handler>,
  ) {}

  push(delivery: Delivery): void {
    if (this.stopped) return;
    if (this.running < RPC_CONCURRENCY) this.start(delivery);
    else this.waiting.push(delivery);
  }

  /** Drops the messages not started yet and resolves when the running handlers are done. */
  stop(): Promise<void> {
    this.stopped = true;
    this.waiting = [];
    if (this.running === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  private start(delivery: Delivery): void {
    if (!delivery.ack()) return; // redelivered elsewhere
    this.running++;
    void this.handle(delivery.body)
      .catch((err: unknown) => this.log.error({ err }, 'RPC dispatch failed'))
      .then(() => this.done());
  }

  private done(): void {
    this.running--;
    for (;;) {
      if (this.stopped || this.running >= RPC_CONCURRENCY) break;
      const next = this.waiting.shift();
      if (!next) break;
      this.start(next);
    }
    if (this.running === 0) for (const resolve of this.idle.splice(0)) resolve();
  }

  private async handle(body: string): Promise<void> {
    let request: Request;
    try {
      request = decodeRequest(body);
    } catch (err) {
      this.log.warn({ err }, 'dropping a malformed RPC message');
      return;
    }
    const { method, msgId, replyQueue: replyTo } = request;
    let reply: string | undefined;
    const handler = Object.hasOwn(this.handlers, method) || !(method in Object.prototype) ? this.handlers[method] : undefined;
    if (typeof handler !== 'function') {
      this.log.warn({ method }, 'RPC method not supported');
      if (msgId !== undefined) reply = encodeFailure(msgId, Object.assign(new Error(`Endpoint does not support RPC method ${method}`), { name: 'NoSuchMethod' }));
    } else {
      try {
        const result: unknown = await handler.call(this.handlers, request.args, request.context);
        if (msgId !== undefined) reply = encodeResult(msgId, method, result);
      } catch (err) {
        const status = (err as { status?: unknown } | null)?.status;
        const level = typeof status === 'number' && status < 500 ? 'debug' : 'error';
        this.log[level]({ err, method, request_id: request.context.request_id }, 'RPC handler failed');
        if (msgId !== undefined) reply = encodeFailure(msgId, err);
      }
    }
    if (reply === undefined || msgId === undefined || replyTo === undefined) return;
    const waitMs = Math.min(request.timeoutMs ?? PUBLISH_WAIT_MS, PUBLISH_WAIT_MS);
    try {
      const options: PublishOptions = { waitMs, declare: replyQueue(replyTo), correlationId: msgId };
      if (request.timeoutMs !== undefined) options.expirationMs = request.timeoutMs;
      await this.transport.publish(null, replyTo, reply, options);
    } catch (err) {
      this.log.warn({ err, method, reply_q: replyTo }, 'could not send an RPC reply');
    }
  }
}
