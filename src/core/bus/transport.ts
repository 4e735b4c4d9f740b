/**
 * What the bus engine (engine.ts) needs from a transport: AMQP 0-9-1 concepts
 * reduced to the few the bus uses. Bodies are strings (JSON); the transport
 * never looks inside them.
 */

/** An exchange: `topic` routes on routing-key patterns, `fanout` to every bound queue. */
export interface ExchangeRef {
  name: string;
  type: 'topic' | 'fanout';
}

/** A queue binding: messages published to `exchange` with a matching routing key land in the queue. */
export interface Binding {
  exchange: ExchangeRef;
  routingKey: string;
}

/** A queue the bus consumes from, or makes sure exists before publishing to it. */
export interface QueueSpec {
  /**
   * The queue's name. Undefined means a private queue: exclusive to this
   * connection, deleted when its consumer goes, and given a new name (and new
   * bindings) after a reconnect.
   */
  name?: string;
  /** For a named queue: delete it after this long without consumers (AMQP `x-expires`). */
  expiresMs?: number;
  /** Bindings to (re)create. Every queue is also reachable by name through the default exchange. */
  bindings: Binding[];
}

/** One message handed to a consumer. */
export interface Delivery {
  readonly body: string;
  /**
   * Acknowledges the message. Returns false when it can no longer be
   * acknowledged because its channel or consumer is gone: the broker will
   * deliver it again (to this or another consumer), so the caller must drop it.
   */
  ack(): boolean;
}

/** Options of {@link Transport.publish}. */
export interface PublishOptions {
  /** How long to wait for the broker (connection, declarations, confirm) before rejecting with BusUnavailable. */
  waitMs: number;
  /** Message TTL: the broker drops the message if no consumer took it by then. */
  expirationMs?: number;
  /** A named queue to declare and bind (once per connection) before publishing, so the message waits in it. */
  declare?: QueueSpec;
  /** AMQP `correlation_id` property (informational: the bus correlates on the body). */
  correlationId?: string;
  /** AMQP `reply_to` property (informational). */
  replyTo?: string;
}

/** A consumer of one queue, in two steps so that handlers in progress can still acknowledge. */
export interface Subscription {
  /** Stops deliveries; messages delivered and not yet acknowledged can still be. */
  cancel(): Promise<void>;
  /** Releases the consumer; unacknowledged messages go back to the queue. Implies cancel. */
  close(): Promise<void>;
}

/** A message transport. Implementations: memory.ts, amqp.ts. */
export interface Transport {
  /**
   * Publishes `body` to `exchange` (null: the default exchange, where the
   * routing key is a queue name). Resolves once the message was accepted;
   * rejects with BusUnavailable when that could not happen within `waitMs`.
   */
  publish(exchange: ExchangeRef | null, routingKey: string, body: string, options: PublishOptions): Promise<void>;
  /**
   * Declares the queue and its bindings and consumes from it, at most
   * `prefetch` unacknowledged messages at a time. `onDelivery` is called
   * asynchronously (never in a publisher's stack) and must not throw. The
   * consumer survives reconnections until closed.
   */
  subscribe(spec: QueueSpec, prefetch: number, onDelivery: (delivery: Delivery) => void): Promise<Subscription>;
  /** Closes every subscription and the connection; later publishes reject with BusUnavailable. */
  close(): Promise<void>;
}
