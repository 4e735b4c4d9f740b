/**
 * In-process transport (`memory://`): a small AMQP-like broker with queues,
 * topic and fanout exchanges, bindings, per-consumer prefetch, round-robin
 * delivery, message TTLs and queue expiry, so that the bus behaves as it does
 * on RabbitMQ. Bodies are the strings the engine encoded (JSON): nothing but
 * JSON ever crosses it. Deliveries happen on a later turn of the event loop,
 * never in the publisher's stack.
 */
import { randomUUID } from 'node:crypto';
import { BusUnavailable } from './bus.js';
import type { Binding, Delivery, ExchangeRef, PublishOptions, QueueSpec, Subscription, Transport } from './transport.js';

interface Stored {
  body: string;
  expiresAt?: number;
}

interface MemoryConsumer {
  prefetch: number;
  active: boolean;
  unacked: Map<number, Stored>;
  onDelivery: (delivery: Delivery) => void;
}

interface MemoryQueue {
  name: string;
  private: boolean;
  expiresMs?: number;
  expiryTimer?: NodeJS.Timeout;
  messages: Stored[];
  consumers: MemoryConsumer[];
  next: number;
  scheduled: boolean;
  deleted: boolean;
}

/** Matches an AMQP topic pattern (`*` one word, `#` zero or more words) against a routing key. */
export function topicMatches(pattern: string, routingKey: string): boolean {
  const p = pattern.split('.');
  const k = routingKey.split('.');
  const match = (i: number, j: number): boolean => {
    if (i === p.length) return j === k.length;
    if (p[i] === '#') {
      for (let n = j; n <= k.length; n++) if (match(i + 1, n)) return true;
      return false;
    }
    return j < k.length && (p[i] === '*' || p[i] === k[j]) && match(i + 1, j + 1);
  };
  return match(0, 0);
}

/** One in-process broker; every memory transport opened with the same URL shares it. */
class MemoryBroker {
  private readonly queues = new Map<string, MemoryQueue>();
  private readonly exchanges = new Map<string, { type: ExchangeRef['type']; bindings: { queue: string; routingKey: string }[] }>();
  private tag = 0;

  /** Declares a queue (a private one gets a fresh name) and its bindings; re-declaring resets its expiry. */
  declare(spec: QueueSpec): MemoryQueue {
    const name = spec.name ?? `amq.gen-${randomUUID()}`;
    let queue = this.queues.get(name);
    if (!queue) {
      queue = { name, private: spec.name === undefined, messages: [], consumers: [], next: 0, scheduled: false, deleted: false };
      if (spec.expiresMs !== undefined) queue.expiresMs = spec.expiresMs;
      this.queues.set(name, queue);
    }
    for (const binding of spec.bindings) this.bind(queue.name, binding);
    this.armExpiry(queue);
    return queue;
  }

  private bind(queue: string, binding: Binding): void {
    let exchange = this.exchanges.get(binding.exchange.name);
    if (!exchange) {
      exchange = { type: binding.exchange.type, bindings: [] };
      this.exchanges.set(binding.exchange.name, exchange);
    }
    if (!exchange.bindings.some((b) => b.queue === queue && b.routingKey === binding.routingKey)) {
      exchange.bindings.push({ queue, routingKey: binding.routingKey });
    }
  }

  /** Routes a message to the matching queues (none: dropped, as AMQP does). */
  publish(exchange: ExchangeRef | null, routingKey: string, body: string, expirationMs?: number): void {
    const stored: Stored = { body };
    if (expirationMs !== undefined) stored.expiresAt = Date.now() + expirationMs;
    const targets = new Set<string>();
    if (exchange === null) {
      targets.add(routingKey);
    } else {
      const ex = this.exchanges.get(exchange.name);
      for (const b of ex?.bindings ?? []) {
        if (ex?.type === 'fanout' || topicMatches(b.routingKey, routingKey)) targets.add(b.queue);
      }
    }
    for (const name of targets) {
      const queue = this.queues.get(name);
      if (!queue) continue;
      this.dropExpired(queue);
      queue.messages.push(stored);
      this.schedule(queue);
    }
  }

  /** Adds a consumer to the queue and starts delivering to it. */
  consume(queue: MemoryQueue, prefetch: number, onDelivery: (delivery: Delivery) => void): MemoryConsumer {
    const consumer: MemoryConsumer = { prefetch: Math.max(1, prefetch), active: true, unacked: new Map(), onDelivery };
    queue.consumers.push(consumer);
    if (queue.expiryTimer) clearTimeout(queue.expiryTimer);
    this.schedule(queue);
    return consumer;
  }

  /** Stops deliveries to the consumer; its unacknowledged messages stay acknowledgeable. */
  cancel(consumer: MemoryConsumer): void {
    consumer.active = false;
  }

  /** Removes the consumer, requeues what it had not acknowledged, deletes a private queue. */
  remove(queue: MemoryQueue, consumer: MemoryConsumer): void {
    consumer.active = false;
    queue.consumers = queue.consumers.filter((c) => c !== consumer);
    const unacked = [...consumer.unacked.values()];
    consumer.unacked.clear();
    if (queue.private) {
      this.delete(queue);
      return;
    }
    queue.messages.unshift(...unacked);
    this.armExpiry(queue);
    this.schedule(queue);
  }

  private armExpiry(queue: MemoryQueue): void {
    if (queue.expiresMs === undefined || queue.consumers.length > 0) return;
    if (queue.expiryTimer) clearTimeout(queue.expiryTimer);
    queue.expiryTimer = setTimeout(() => {
      if (queue.consumers.length === 0) this.delete(queue);
    }, queue.expiresMs);
    queue.expiryTimer.unref();
  }

  private delete(queue: MemoryQueue): void {
    if (queue.expiryTimer) clearTimeout(queue.expiryTimer);
    queue.deleted = true;
    queue.messages = [];
    this.queues.delete(queue.name);
    for (const [name, exchange] of this.exchanges) {
      exchange.bindings = exchange.bindings.filter((b) => b.queue !== queue.name);
      if (exchange.bindings.length === 0) this.exchanges.delete(name);
    }
  }

  private dropExpired(queue: MemoryQueue): void {
    const now = Date.now();
    while (queue.messages.length > 0) {
      const head = queue.messages[0];
      if (head?.expiresAt === undefined || head.expiresAt > now) break;
      queue.messages.shift();
    }
  }

  private schedule(queue: MemoryQueue): void {
    if (queue.scheduled || queue.deleted) return;
    queue.scheduled = true;
    setImmediate(() => {
      queue.scheduled = false;
      this.drain(queue);
    });
  }

  private drain(queue: MemoryQueue): void {
    for (;;) {
      if (queue.deleted) return;
      this.dropExpired(queue);
      const message = queue.messages[0];
      if (!message) return;
      const consumer = this.pick(queue);
      if (!consumer) return;
      queue.messages.shift();
      const tag = ++this.tag;
      consumer.unacked.set(tag, message);
      const ack = (): boolean => {
        if (!consumer.unacked.delete(tag)) return false;
        this.schedule(queue);
        return true;
      };
      try {
        consumer.onDelivery({ body: message.body, ack });
      } catch {
        // onDelivery must not throw; if it does, the message stays unacknowledged until the consumer goes.
      }
    }
  }

  private pick(queue: MemoryQueue): MemoryConsumer | undefined {
    const n = queue.consumers.length;
    for (let i = 0; i < n; i++) {
      const index = (queue.next + i) % n;
      const consumer = queue.consumers[index];
      if (consumer?.active && consumer.unacked.size < consumer.prefetch) {
        queue.next = (index + 1) % n;
        return consumer;
      }
    }
    return undefined;
  }
}

const brokers = new Map<string, MemoryBroker>();

/** The transport over the process's in-memory broker for `url` (`memory://` or `memory://<name>`). */
export function createMemoryTransport(url: string): Transport {
  const key = url.replace(/\/+$/, '').toLowerCase();
  let broker = brokers.get(key);
  if (!broker) {
    broker = new MemoryBroker();
    brokers.set(key, broker);
  }
  return new MemoryTransport(broker);
}

class MemoryTransport implements Transport {
  private closed = false;
  private readonly subscriptions = new Set<Subscription>();

  constructor(private readonly broker: MemoryBroker) {}

  async publish(exchange: ExchangeRef | null, routingKey: string, body: string, options: PublishOptions): Promise<void> {
    if (this.closed) throw new BusUnavailable('the message bus is closed');
    if (options.declare?.name !== undefined) this.broker.declare(options.declare);
    this.broker.publish(exchange, routingKey, body, options.expirationMs);
  }

  async subscribe(spec: QueueSpec, prefetch: number, onDelivery: (delivery: Delivery) => void): Promise<Subscription> {
    if (this.closed) throw new BusUnavailable('the message bus is closed');
    const broker = this.broker;
    const queue = broker.declare(spec);
    const consumer = broker.consume(queue, prefetch, onDelivery);
    let closed = false;
    const subscription: Subscription = {
      cancel: async () => broker.cancel(consumer),
      close: async () => {
        if (closed) return;
        closed = true;
        this.subscriptions.delete(subscription);
        broker.remove(queue, consumer);
      },
    };
    this.subscriptions.add(subscription);
    return subscription;
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.subscriptions].map((s) => s.close()));
  }
}
