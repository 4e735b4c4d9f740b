/**
 * AMQP 0-9-1 transport (RabbitMQ) over amqplib. One connection per bus; one
 * confirm channel for publishing; one channel per consumer. Exchanges and
 * queues are declared as oslo.messaging does (non-durable; fanout exchanges
 * auto-delete; private queues exclusive and auto-delete; reply, direct and
 * pool queues expire 30 minutes after their last consumer).
 *
 * Reconnection: when the connection drops (broker restart, network), the
 * transport reconnects with backoff (100 ms doubling to 5 s, forever), then
 * re-creates the channel, queues, bindings and consumer of every live
 * subscription before letting publishes through again. Publishes made while
 * disconnected wait for the connection, bounded by their `waitMs`, then reject
 * with BusUnavailable. Every connection and channel has an 'error' listener,
 * so nothing crashes the process.
 */
import { hostname } from 'node:os';
import * as amqp from 'amqplib';
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage, Options } from 'amqplib';
import type { Logger } from 'pino';
import { BusUnavailable } from './bus.js';
import type { Delivery, ExchangeRef, PublishOptions, QueueSpec, Subscription, Transport } from './transport.js';

/** How long `createAmqpTransport` keeps trying the first connection. */
export const FIRST_CONNECT_MS = 10_000;
const SOCKET_TIMEOUT_MS = 10_000;
const RECONNECT_MIN_MS = 100;
const RECONNECT_MAX_MS = 5_000;
const RESUBSCRIBE_MIN_MS = 1_000;
const RESUBSCRIBE_MAX_MS = 30_000;
const DECLARED_CACHE_MAX = 10_000;
/** AMQP reply codes that retrying will not fix: ACCESS_REFUSED, RESOURCE_LOCKED, PRECONDITION_FAILED. */
const PERMANENT_CODES: ReadonlySet<number> = new Set([403, 405, 406]);

const noop = (): void => undefined;

/** The URL with its password replaced by `***`, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'amqp://(unparsable URL)';
  }
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function replyCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

function exchangeOptions(exchange: ExchangeRef): Options.AssertExchange {
  return { durable: false, autoDelete: exchange.type === 'fanout' };
}

function queueOptions(spec: QueueSpec): Options.AssertQueue {
  if (spec.name === undefined) return { exclusive: true, autoDelete: true, durable: false };
  const options: Options.AssertQueue = { durable: false, autoDelete: false };
  if (spec.expiresMs !== undefined) options.arguments = { 'x-expires': spec.expiresMs };
  return options;
}

/**
 * Connects to the broker at `url` (retrying for {@link FIRST_CONNECT_MS}, then
 * rejecting with BusUnavailable) and returns a transport that reconnects by
 * itself afterwards.
 */
export async function createAmqpTransport(url: string, options: { logger: Logger; name: string }): Promise<Transport> {
  const transport = new AmqpTransport(url, options.logger.child({ broker: redactUrl(url) }), options.name);
  await transport.start();
  return transport;
}

class AmqpTransport implements Transport {
  private model: ChannelModel | undefined;
  private ready = false;
  private closing = false;
  private looping = false;
  private loop: Promise<void> | undefined;
  private sleeper: { timer: NodeJS.Timeout; wake: () => void } | undefined;
  private readonly waiters = new Set<() => void>();
  private pub: { model: ChannelModel; channel: Promise<ConfirmChannel> } | undefined;
  private readonly declared = new Map<string, Promise<void>>();
  /** Live subscriptions, re-attached after every reconnection. */
  readonly subscriptions = new Set<AmqpSubscription>();

  constructor(
    private readonly url: string,
    readonly log: Logger,
    private readonly name: string,
  ) {}

  /** The open connection, if any. */
  currentModel(): ChannelModel | undefined {
    return this.model;
  }

  async start(): Promise<void> {
    this.loop = this.connectLoop(Date.now() + FIRST_CONNECT_MS);
    await this.loop;
  }

  async publish(exchange: ExchangeRef | null, routingKey: string, body: string, options: PublishOptions): Promise<void> {
    const deadline = Date.now() + options.waitMs;
    const content = Buffer.from(body, 'utf8');
    const properties: Options.Publish = { contentType: 'application/json', contentEncoding: 'utf-8', persistent: false };
    if (options.expirationMs !== undefined) properties.expiration = String(Math.max(0, Math.ceil(options.expirationMs)));
    if (options.correlationId !== undefined) properties.correlationId = options.correlationId;
    if (options.replyTo !== undefined) properties.replyTo = options.replyTo;
    let lastError: unknown;
    for (;;) {
      const model = await this.connected(deadline, lastError);
      try {
        const channel = await this.publishChannel(model);
        if (exchange) await this.declareExchange(channel, exchange);
        const declare = options.declare;
        if (declare?.name !== undefined) await this.declareQueue(channel, declare.name, declare);
        await this.confirmPublish(channel, exchange?.name ?? '', routingKey, content, properties, deadline);
        return;
      } catch (err) {
        if (this.closing) throw new BusUnavailable('the message bus is closed', { cause: err });
        const code = replyCode(err);
        if (err instanceof BusUnavailable || (code !== undefined && PERMANENT_CODES.has(code)) || Date.now() >= deadline) {
          throw new BusUnavailable(`could not publish to ${exchange?.name || '(default exchange)'} ${routingKey}: ${message(err)}`, { cause: err });
        }
        lastError = err;
        await new Promise((resolve) => setTimeout(resolve, Math.min(100, Math.max(0, deadline - Date.now()))));
      }
    }
  }

  async subscribe(spec: QueueSpec, prefetch: number, onDelivery: (delivery: Delivery) => void): Promise<Subscription> {
    if (this.closing) throw new BusUnavailable('the message bus is closed');
    const subscription = new AmqpSubscription(this, spec, prefetch, onDelivery);
    this.subscriptions.add(subscription);
    const model = this.model;
    if (model) {
      try {
        await subscription.ensureAttached(model);
      } catch (err) {
        if (this.model === model || this.closing) {
          this.subscriptions.delete(subscription);
          throw err;
        }
        // The connection dropped meanwhile: the reconnection subscribes it.
      }
    }
    return subscription;
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.sleeper?.wake();
    for (const wake of this.waiters) wake();
    await Promise.all([...this.subscriptions].map((s) => s.close()));
    await this.loop?.catch(noop);
    const model = this.model;
    this.model = undefined;
    this.ready = false;
    if (model) await model.close().catch(noop);
  }

  /** Connects, retrying with backoff until connected, closed, or past `deadline`. */
  private async connectLoop(deadline?: number): Promise<void> {
    this.looping = true;
    let delay = RECONNECT_MIN_MS;
    try {
      for (let attempt = 1; ; attempt++) {
        if (this.closing) throw new BusUnavailable('the message bus is closed');
        try {
          await this.connectOnce();
          return;
        } catch (err) {
          if (this.closing) throw new BusUnavailable('the message bus is closed', { cause: err });
          const remaining = (deadline ?? Infinity) - Date.now();
          // Bad credentials or vhost at startup are a configuration error: say so at once.
          const refused = deadline !== undefined && /ACCESS[-_]REFUSED|NOT[-_]ALLOWED/.test(message(err));
          if (remaining <= 0 || refused) throw new BusUnavailable(`cannot connect to the message broker at ${redactUrl(this.url)}: ${message(err)}`, { cause: err });
          if (attempt === 1 || attempt % 10 === 0) this.log.warn({ err, attempt }, 'cannot connect to the message broker; retrying');
          await this.sleep(Math.min(delay, remaining));
          delay = Math.min(delay * 2, RECONNECT_MAX_MS);
        }
      }
    } finally {
      this.looping = false;
    }
  }

  private async connectOnce(): Promise<void> {
    const model = await amqp.connect(this.url, {
      timeout: SOCKET_TIMEOUT_MS,
      // TCP_NODELAY: without it Nagle's algorithm and delayed ACKs hold small frames ~40 ms, which made every RPC call ~80 ms.
      noDelay: true,
      clientProperties: { connection_name: `${this.name}@${hostname()}:${process.pid}` },
    });
    model.on('error', (err: Error) => this.log.warn({ err }, 'AMQP connection error'));
    model.on('close', (err?: Error) => this.onConnectionClosed(model, err));
    model.on('blocked', (reason: string) => this.log.warn({ reason }, 'the message broker blocked the connection'));
    model.on('unblocked', () => this.log.info('the message broker unblocked the connection'));
    if (this.closing) {
      await model.close().catch(noop);
      throw new BusUnavailable('the message bus is closed');
    }
    this.model = model;
    this.pub = undefined;
    this.declared.clear();
    const subscriptions = [...this.subscriptions];
    await Promise.all(
      subscriptions.map((s) =>
        s.ensureAttached(model).catch((err: unknown) => {
          if (this.model !== model) return;
          this.log.error({ err, queue: s.spec.name }, 'could not resubscribe after connecting; retrying');
          s.scheduleRetry();
        }),
      ),
    );
    if (this.model !== model) throw new BusUnavailable('the connection closed while resubscribing');
    this.ready = true;
    for (const wake of this.waiters) wake();
    this.log.info({ subscriptions: subscriptions.length }, 'connected to the message broker');
  }

  private onConnectionClosed(model: ChannelModel, err: Error | undefined): void {
    if (this.model !== model) return;
    this.model = undefined;
    this.ready = false;
    this.pub = undefined;
    for (const s of this.subscriptions) s.detach(model);
    if (this.closing) return;
    this.log.warn({ err }, 'lost the connection to the message broker; reconnecting');
    if (!this.looping) {
      this.loop = this.connectLoop();
      void this.loop.catch((e: unknown) => this.log.debug({ err: e }, 'reconnection stopped'));
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.sleeper = undefined;
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.sleeper = { timer, wake };
    });
  }

  /** The connection once connected and resubscribed; BusUnavailable when closed or still down at `deadline`. */
  private async connected(deadline: number, lastError: unknown): Promise<ChannelModel> {
    for (;;) {
      if (this.closing) throw new BusUnavailable('the message bus is closed');
      if (this.ready && this.model) return this.model;
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        const why = lastError === undefined ? 'not connected' : message(lastError);
        throw new BusUnavailable(`the message broker at ${redactUrl(this.url)} is unavailable (${why})`, { cause: lastError });
      }
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          clearTimeout(timer);
          this.waiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, remaining);
        this.waiters.add(wake);
      });
    }
  }

  private publishChannel(model: ChannelModel): Promise<ConfirmChannel> {
    if (this.pub?.model === model) return this.pub.channel;
    const entry: { model: ChannelModel; channel: Promise<ConfirmChannel> } = {
      model,
      channel: model.createConfirmChannel().then((channel) => {
        channel.on('error', (err: Error) => this.log.warn({ err }, 'the broker closed the publishing channel'));
        channel.on('close', () => {
          if (this.pub !== entry) return;
          this.pub = undefined;
          this.declared.clear();
        });
        return channel;
      }),
    };
    this.pub = entry;
    void entry.channel.catch(() => {
      if (this.pub === entry) this.pub = undefined;
    });
    return entry.channel;
  }

  /** Topic exchanges are declared once per connection; fanout ones (auto-delete) before every use. */
  private declareExchange(channel: ConfirmChannel, exchange: ExchangeRef): Promise<void> {
    const declare = async (): Promise<void> => {
      await channel.assertExchange(exchange.name, exchange.type, exchangeOptions(exchange));
    };
    if (exchange.type === 'fanout') return declare();
    return this.once(`x:${exchange.name}`, declare);
  }

  private declareQueue(channel: ConfirmChannel, name: string, spec: QueueSpec): Promise<void> {
    return this.once(`q:${name}`, async () => {
      for (const b of spec.bindings) await this.declareExchange(channel, b.exchange);
      await channel.assertQueue(name, queueOptions(spec));
      for (const b of spec.bindings) await channel.bindQueue(name, b.exchange.name, b.routingKey);
    });
  }

  private once(key: string, declare: () => Promise<void>): Promise<void> {
    let done = this.declared.get(key);
    if (!done) {
      if (this.declared.size >= DECLARED_CACHE_MAX) this.declared.clear();
      const attempt = declare();
      done = attempt;
      this.declared.set(key, attempt);
      void attempt.catch(() => {
        if (this.declared.get(key) === attempt) this.declared.delete(key);
      });
    }
    return done;
  }

  private confirmPublish(channel: ConfirmChannel, exchange: string, routingKey: string, content: Buffer, properties: Options.Publish, deadline: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new BusUnavailable('the message broker did not confirm the message in time')), Math.max(1, deadline - Date.now()));
      try {
        channel.publish(exchange, routingKey, content, properties, (err: unknown) => {
          clearTimeout(timer);
          if (err) reject(err instanceof Error ? err : new Error('the message broker refused the message'));
          else resolve();
        });
      } catch (err) {
        clearTimeout(timer);
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
  }
}

/** One consumer; survives reconnections by re-creating its channel, queue, bindings and consumer. */
class AmqpSubscription implements Subscription {
  private channel: Channel | undefined;
  private model: ChannelModel | undefined;
  private consumerTag: string | undefined;
  private attaching: Promise<void> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryDelay = RESUBSCRIBE_MIN_MS;
  private cancelled = false;

  constructor(
    private readonly transport: AmqpTransport,
    readonly spec: QueueSpec,
    private readonly prefetch: number,
    private readonly onDelivery: (delivery: Delivery) => void,
  ) {}

  /** Makes sure the consumer runs on `model` (single flight; a no-op when it already does). */
  async ensureAttached(model: ChannelModel): Promise<void> {
    while (this.attaching) await this.attaching.catch(noop);
    if (this.cancelled || (this.model === model && this.channel)) return;
    const attempt = this.attach(model);
    this.attaching = attempt;
    try {
      await attempt;
      this.retryDelay = RESUBSCRIBE_MIN_MS;
    } finally {
      if (this.attaching === attempt) this.attaching = undefined;
    }
  }

  /** Forgets the channel of a connection that closed. */
  detach(model: ChannelModel): void {
    if (this.model !== model) return;
    this.channel = undefined;
    this.model = undefined;
    this.consumerTag = undefined;
  }

  /** Retries attaching later, with backoff, if the connection is still up then. */
  scheduleRetry(): void {
    if (this.retryTimer || this.cancelled) return;
    const delay = this.retryDelay;
    this.retryDelay = Math.min(delay * 2, RESUBSCRIBE_MAX_MS);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      const model = this.transport.currentModel();
      if (!model || this.cancelled) return; // the reconnection will attach
      void this.ensureAttached(model).catch((err: unknown) => {
        this.transport.log.error({ err, queue: this.spec.name }, 'could not resubscribe; retrying');
        if (this.transport.currentModel() === model) this.scheduleRetry();
      });
    }, delay);
    this.retryTimer.unref();
  }

  async cancel(): Promise<void> {
    this.cancelled = true;
    this.clearRetry();
    await this.attaching?.catch(noop);
    const channel = this.channel;
    const tag = this.consumerTag;
    if (channel && tag !== undefined) await channel.cancel(tag).catch(noop);
  }

  async close(): Promise<void> {
    this.cancelled = true;
    this.clearRetry();
    await this.attaching?.catch(noop);
    this.transport.subscriptions.delete(this);
    const channel = this.channel;
    this.channel = undefined;
    this.model = undefined;
    if (channel) await channel.close().catch(noop);
  }

  private clearRetry(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  private async attach(model: ChannelModel): Promise<void> {
    const log = this.transport.log;
    const channel = await model.createChannel();
    channel.on('error', (err: Error) => log.warn({ err, queue: this.spec.name }, 'the broker closed a consumer channel'));
    channel.on('close', () => this.onChannelClosed(channel, model));
    try {
      await channel.prefetch(this.prefetch);
      for (const b of this.spec.bindings) await channel.assertExchange(b.exchange.name, b.exchange.type, exchangeOptions(b.exchange));
      const { queue } = await channel.assertQueue(this.spec.name ?? '', queueOptions(this.spec));
      for (const b of this.spec.bindings) await channel.bindQueue(queue, b.exchange.name, b.routingKey);
      if (this.cancelled) {
        await channel.close().catch(noop);
        return;
      }
      this.channel = channel;
      this.model = model;
      const { consumerTag } = await channel.consume(queue, (msg) => this.deliver(channel, msg), { noAck: false });
      this.consumerTag = consumerTag;
      if (this.cancelled) await channel.cancel(consumerTag);
    } catch (err) {
      if (this.channel === channel) this.detach(model);
      await channel.close().catch(noop);
      throw err;
    }
  }

  private deliver(channel: Channel, msg: ConsumeMessage | null): void {
    if (msg === null) {
      // The broker cancelled the consumer (its queue was deleted): start over.
      this.transport.log.warn({ queue: this.spec.name }, 'the broker cancelled a consumer; resubscribing');
      if (this.channel !== channel) return;
      const model = this.model;
      if (model) this.detach(model);
      void channel.close().catch(noop);
      this.scheduleRetry();
      return;
    }
    const delivery: Delivery = {
      body: msg.content.toString('utf8'),
      ack: () => {
        if (this.channel !== channel) return false;
        try {
          channel.ack(msg);
          return true;
        } catch {
          return false;
        }
      },
    };
    try {
      this.onDelivery(delivery);
    } catch (err) {
      this.transport.log.error({ err }, 'a bus consumer threw');
    }
  }

  private onChannelClosed(channel: Channel, model: ChannelModel): void {
    if (this.channel !== channel) return;
    this.detach(model);
    if (this.cancelled) return;
    // When the whole connection is closing, its 'close' follows the channels'
    // in the same tick: look again on the next one.
    setImmediate(() => {
      if (!this.cancelled && this.transport.currentModel() === model) this.scheduleRetry();
    });
  }
}
