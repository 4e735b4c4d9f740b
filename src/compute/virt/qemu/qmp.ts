import { EventEmitter } from 'node:events';
import net from 'node:net';

/**
 * A client of the QEMU Machine Protocol on a unix socket: JSON objects, one
 * per line. The server greets, the client enters command mode with
 * `qmp_capabilities`, then each command carries an id that its answer
 * repeats; events (`SHUTDOWN`, `STOP`, `RESUME`, `DEVICE_DELETED`, ...) come
 * in between, unasked.
 */

/** An asynchronous event QEMU sent. */
export interface QmpEvent {
  event: string;
  data: Record<string, unknown>;
  timestamp: { seconds: number; microseconds: number };
}

/** QEMU refused a command (`{"error": {"class", "desc"}}`). */
export class QmpError extends Error {
  constructor(
    readonly command: string,
    readonly errorClass: string,
    desc: string,
  ) {
    super(`QMP ${command} failed: ${desc}`);
    this.name = 'QmpError';
  }
}

/** The connection closed (QEMU exited or the socket went) before the answer came. */
export class QmpClosed extends Error {
  constructor(what: string) {
    super(`QMP connection closed ${what}`);
    this.name = 'QmpClosed';
  }
}

interface Pending {
  command: string;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
}

/**
 * One QMP session. Emits `event` (a {@link QmpEvent}) and `close` (once,
 * when the socket ends for any reason). Commands after the close reject
 * with {@link QmpClosed}.
 */
export class QmpClient extends EventEmitter<{ event: [QmpEvent]; close: [] }> {
  private buffer = '';
  private nextId = 1;
  private readonly pending = new Map<string, Pending>();
  private closedFlag = false;
  /** What QEMU said of itself in its greeting (`version`, `capabilities`). */
  greeting: Record<string, unknown> = {};

  private constructor(private readonly socket: net.Socket) {
    super();
  }

  /**
   * Connects to `path`, reads the greeting and negotiates capabilities.
   * Rejects when nothing listens, or when the greeting does not come within
   * `timeoutMs` (another client holds the monitor: QEMU serves one at a time).
   */
  static async connect(path: string, options: { timeoutMs?: number } = {}): Promise<QmpClient> {
    const timeoutMs = options.timeoutMs ?? 5000;
    const socket = net.createConnection(path);
    const client = new QmpClient(socket);
    const greeting = new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`no QMP greeting on ${path} within ${timeoutMs} ms`));
        socket.destroy();
      }, timeoutMs);
      client.onGreeting = (g) => {
        clearTimeout(timer);
        resolve(g);
      };
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      socket.once('close', () => {
        clearTimeout(timer);
        reject(new QmpClosed(`by ${path} before its greeting`));
      });
    });
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => client.receive(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => client.closed());
    client.greeting = await greeting;
    await client.execute('qmp_capabilities');
    return client;
  }

  private onGreeting: ((g: Record<string, unknown>) => void) | null = null;

  /** True once the connection ended. */
  get isClosed(): boolean {
    return this.closedFlag;
  }

  /** Runs a command; resolves with its `return` value, rejects with {@link QmpError} or {@link QmpClosed}. */
  execute<T = unknown>(command: string, args?: Record<string, unknown>): Promise<T> {
    if (this.closedFlag) return Promise.reject(new QmpClosed(`before ${command}`));
    const id = String(this.nextId++);
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { command, resolve: resolve as (v: unknown) => void, reject });
      this.socket.write(`${JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}), id })}\n`);
    });
  }

  /**
   * Resolves with the first event named `name` for which `match` holds,
   * or null after `timeoutMs` or when the connection closes first.
   */
  waitForEvent(name: string, match: (data: Record<string, unknown>) => boolean, timeoutMs: number): Promise<QmpEvent | null> {
    return new Promise((resolve) => {
      const done = (value: QmpEvent | null): void => {
        clearTimeout(timer);
        this.off('event', onEvent);
        this.off('close', onClose);
        resolve(value);
      };
      const onEvent = (e: QmpEvent): void => {
        if (e.event === name && match(e.data)) done(e);
      };
      const onClose = (): void => done(null);
      const timer = setTimeout(() => done(null), timeoutMs);
      this.on('event', onEvent);
      this.on('close', onClose);
      if (this.closedFlag) done(null);
    });
  }

  /** Resolves when the connection has closed (QEMU exited, or `close` was called). */
  whenClosed(): Promise<void> {
    if (this.closedFlag) return Promise.resolve();
    return new Promise((resolve) => this.once('close', () => resolve()));
  }

  /** Ends the connection (QEMU keeps running). */
  close(): Promise<void> {
    const closed = this.whenClosed();
    this.socket.end();
    this.socket.destroySoon();
    return closed;
  }

  private receive(chunk: string): void {
    this.buffer += chunk;
    let newline: number;
    while ((newline = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, newline).trim();
      this.buffer = this.buffer.slice(newline + 1);
      if (line) this.message(line);
    }
  }

  private message(line: string): void {
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    if ('QMP' in msg) {
      this.onGreeting?.((msg.QMP ?? {}) as Record<string, unknown>);
      this.onGreeting = null;
      return;
    }
    if (typeof msg.event === 'string') {
      this.emit('event', { event: msg.event, data: (msg.data ?? {}) as Record<string, unknown>, timestamp: msg.timestamp as QmpEvent['timestamp'] });
      return;
    }
    const id = typeof msg.id === 'string' ? msg.id : undefined;
    const pending = id === undefined ? undefined : this.pending.get(id);
    if (!pending || id === undefined) return;
    this.pending.delete(id);
    if ('error' in msg) {
      const error = (msg.error ?? {}) as { class?: string; desc?: string };
      pending.reject(new QmpError(pending.command, error.class ?? 'GenericError', error.desc ?? 'unknown error'));
    } else {
      pending.resolve(msg.return);
    }
  }

  private closed(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      p.reject(new QmpClosed(`before the answer to ${p.command}`));
    }
    this.emit('close');
  }
}
