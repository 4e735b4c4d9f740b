/**
 * The message bus shared by every Stratus service, modelled on oslo.messaging:
 * RPC `call` (request/reply), `cast` (one server), `fanout` (every server of a
 * topic) and notifications, over an in-process transport (`memory://`) or
 * RabbitMQ (`amqp://`). Everything that crosses the bus is JSON, whatever the
 * transport, so code tested against `memory://` behaves the same on AMQP.
 */
import type { Logger } from 'pino';
import { ApiError } from '../errors.js';

/**
 * Request context carried with every RPC message (oslo's `_context_*` fields):
 * request ids and the caller's identity. Any extra key is carried too; every
 * value must survive a JSON round trip.
 */
export interface BusContext {
  request_id?: string;
  global_request_id?: string;
  user_id?: string;
  project_id?: string;
  [k: string]: unknown;
}

/**
 * An RPC endpoint method. It receives the JSON-parsed arguments and context;
 * what it returns (or resolves to) is sent back to a `call` as JSON; what it
 * throws comes back to the caller as a {@link RemoteError}.
 */
export type Handler = (args: any, ctx: BusContext) => unknown | Promise<unknown>;

/** The notification priorities of OpenStack, upper case on the wire. */
export type Priority = 'INFO' | 'WARN' | 'ERROR' | 'DEBUG' | 'AUDIT' | 'CRITICAL' | 'SAMPLE';

/**
 * A notification as OpenStack sends it: `message_id` is a UUID, `timestamp` is
 * UTC formatted `YYYY-MM-DD HH:MM:SS.ffffff` (Python's `str(datetime)`).
 */
export interface Notification {
  message_id: string;
  publisher_id: string;
  event_type: string;
  priority: Priority;
  payload: unknown;
  timestamp: string;
}

/** RPC target: the shared topic, or one server of it when `server` is given. */
export interface Target {
  topic: string;
  server?: string;
}

/** What `serve` and `onNotification` return: `stop()` stops consuming. */
export interface Consumer {
  /**
   * Stops taking new messages, lets the handlers already running finish (their
   * replies are still sent), then releases the consumer. Idempotent.
   */
  stop(): Promise<void>;
}

/** The message bus: one per process (or per role), shared by its services. */
export interface Bus {
  /**
   * Request/reply to one server of `target.topic` (or to `target.server`).
   * Resolves with the handler's JSON-round-tripped result; rejects with
   * {@link BusTimeout} when no reply came within `timeoutMs` (default 60000),
   * with {@link RemoteError} when the handler threw, with a `TypeError` when
   * `args` or `context` is not JSON-serialisable, with {@link BusUnavailable}
   * when the bus is closed or the broker stayed unreachable.
   */
  call<T = unknown>(target: Target, method: string, args: unknown, options?: { timeoutMs?: number; context?: BusContext }): Promise<T>;
  /**
   * Fire and forget to one server of the topic (or the named server). Resolves
   * once the transport accepted the message (for AMQP: the broker confirmed
   * it); while the broker is unreachable it waits a few seconds then rejects
   * with {@link BusUnavailable}. Messages to a topic wait in its queue until a
   * server takes them.
   */
  cast(target: Target, method: string, args: unknown, options?: { context?: BusContext }): Promise<void>;
  /** Fire and forget to every server currently serving `topic`. Same delivery guarantees as `cast`. */
  fanout(topic: string, method: string, args: unknown, options?: { context?: BusContext }): Promise<void>;
  /**
   * Publishes a notification on `notifications.<priority lowercase>` (oslo's
   * topic `notifications`). `priority` defaults to INFO.
   */
  notify(publisherId: string, eventType: string, payload: unknown, priority?: Priority): Promise<void>;
  /**
   * Starts serving `topic` as `server`: takes messages of the shared queue
   * `topic` (each message goes to one server, round robin), of the direct
   * queue `topic.server`, and of the topic's fanout. Methods not in `handlers`
   * answer with a RemoteError `NoSuchMethod`. Up to 64 handlers run at once.
   */
  serve(topic: string, server: string, handlers: Record<string, Handler>): Promise<Consumer>;
  /**
   * Listens to every notification published after this resolves whose
   * `event_type` starts with `filter` (a trailing `*` is ignored; `'*'` alone
   * takes all). Without `pool` this listener gets every notification; the
   * listeners sharing a `pool` (in any process) share the notifications, each
   * going to one of them, and the pool's queue keeps them while no member is
   * listening (for 30 minutes). Listener errors are logged, never retried.
   */
  onNotification(filter: string, listener: (n: Notification) => void | Promise<void>, options?: { pool?: string }): Promise<Consumer>;
  /** Stops every consumer, rejects pending calls with BusUnavailable, and disconnects. Idempotent. */
  close(): Promise<void>;
}

/** A `call` got no reply in time (no server, server too slow, or the message was lost). */
export class BusTimeout extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BusTimeout';
  }
}

/** The bus is closed, or the broker could not be reached within the allowed wait. */
export class BusUnavailable extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BusUnavailable';
  }
}

/** Details of a remote failure, as carried in an RPC reply. */
export interface RemoteErrorDetails {
  /** HTTP status of a remote ApiError (or any error with a numeric `status`). */
  status?: number;
  /** Title of a remote ApiError (e.g. `Not Found`). */
  title?: string;
  /** Response headers of a remote ApiError (e.g. `Retry-After`). */
  headers?: Record<string, string>;
  /** The remote stack trace, for logs. */
  remoteStack?: string;
}

/**
 * The handler of a `call` threw. `message` is the remote error's message,
 * `excType` its class name (`NotFound`, `TypeError`, `NoSuchMethod`...). When
 * the remote error had a numeric `status` (an ApiError), `status`, `title` and
 * `headers` are kept and {@link RemoteError.toApiError} rebuilds an equivalent
 * ApiError for the caller to rethrow.
 */
export class RemoteError extends Error {
  readonly excType: string;
  readonly status?: number;
  readonly title?: string;
  readonly headers?: Record<string, string>;
  readonly remoteStack?: string;

  constructor(excType: string, message: string, details: RemoteErrorDetails = {}) {
    super(message);
    this.name = 'RemoteError';
    this.excType = excType;
    if (details.status !== undefined) this.status = details.status;
    if (details.title !== undefined) this.title = details.title;
    if (details.headers !== undefined) this.headers = details.headers;
    if (details.remoteStack !== undefined) this.remoteStack = details.remoteStack;
  }

  /** An ApiError with the remote status, title, message and headers; undefined when the remote error had no status. */
  toApiError(): ApiError | undefined {
    if (this.status === undefined) return undefined;
    const err = new ApiError(this.status, this.title ?? this.excType, this.message);
    if (this.headers) err.headers = { ...this.headers };
    return err;
  }
}

/** Options of {@link createBus}. */
export interface BusOptions {
  /** Logger for transport events and handler failures (default: the root logger's `bus` child). */
  logger?: Logger;
  /** Name of this process or role, shown as the AMQP connection name (default `stratus`). */
  name?: string;
}

/**
 * Opens a bus. `memory://` (or `memory://<name>` for a separate in-process
 * broker) is the in-process transport shared by every bus of the process with
 * the same URL; `amqp://user:pass@host:port/vhost` (or `amqps://`) connects to
 * RabbitMQ, retrying for up to 10 seconds before rejecting with
 * {@link BusUnavailable}, then reconnects by itself whenever the connection
 * drops. Rejects with a TypeError on any other scheme.
 */
export async function createBus(url: string, options: BusOptions = {}): Promise<Bus> {
  const scheme = url.slice(0, url.indexOf(':') + 1).toLowerCase();
  const logger = options.logger ?? (await import('../logging.js')).rootLogger().child({ component: 'bus' });
  const name = options.name ?? 'stratus';
  const { TransportBus } = await import('./engine.js');
  if (scheme === 'memory:') {
    const { createMemoryTransport } = await import('./memory.js');
    return new TransportBus(createMemoryTransport(url), logger);
  }
  if (scheme === 'amqp:' || scheme === 'amqps:') {
    const { createAmqpTransport } = await import('./amqp.js');
    return new TransportBus(await createAmqpTransport(url, { logger, name }), logger);
  }
  throw new TypeError(`unsupported message bus URL ${JSON.stringify(scheme || url)}: expected memory:// or amqp://`);
}
