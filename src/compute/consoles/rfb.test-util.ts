import net from 'node:net';
import { WebSocket, type RawData } from 'ws';

/**
 * Test helpers for consoles: a tiny RFB (VNC) server that speaks the 3.8
 * handshake with security type None and a ServerInit, and a websocket client
 * that reads the proxied bytes as a stream (frames may split or join the
 * server's writes).
 */

/** A running tiny RFB server. */
export interface TinyRfbServer {
  port: number;
  /** Connections accepted so far. */
  connections: number;
  /** Connections whose client side has ended (the proxy closed towards the guest). */
  ended: number;
  /** Closes every open connection from the server side (the guest's console going away). */
  dropAll(): void;
  close(): Promise<void>;
}

/** The desktop name the tiny server announces. */
export const RFB_DESKTOP_NAME = 'stratus-test-guest';

/** Starts a tiny RFB server on a free loopback port. */
export async function startTinyRfbServer(): Promise<TinyRfbServer> {
  const sockets = new Set<net.Socket>();
  const state = { connections: 0, ended: 0 };
  const server = net.createServer((socket) => {
    state.connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.on('end', () => {
      state.ended++;
      socket.end();
    });
    let stage: 'version' | 'security' | 'init' | 'session' = 'version';
    let buffered = Buffer.alloc(0);
    socket.write('RFB 003.008\n');
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      for (;;) {
        if (stage === 'version' && buffered.length >= 12) {
          buffered = buffered.subarray(12);
          socket.write(Buffer.from([1, 1])); // one security type: None
          stage = 'security';
        } else if (stage === 'security' && buffered.length >= 1) {
          const chosen = buffered[0];
          buffered = buffered.subarray(1);
          socket.write(Buffer.from([0, 0, 0, chosen === 1 ? 0 : 1]));
          stage = 'init';
        } else if (stage === 'init' && buffered.length >= 1) {
          buffered = buffered.subarray(1);
          const name = Buffer.from(RFB_DESKTOP_NAME);
          const init = Buffer.alloc(24);
          init.writeUInt16BE(640, 0);
          init.writeUInt16BE(480, 2);
          // pixel format: 32 bpp, depth 24, little endian, true colour, 8 bits each, shifts 16/8/0
          Buffer.from([32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0]).copy(init, 4);
          init.writeUInt32BE(name.length, 20);
          socket.write(Buffer.concat([init, name]));
          stage = 'session';
        } else {
          break;
        }
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    port,
    get connections() {
      return state.connections;
    },
    get ended() {
      return state.ended;
    },
    dropAll() {
      for (const s of sockets) s.end();
    },
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** A connected websocket read as a byte stream. */
export interface ConsoleClient {
  ws: WebSocket;
  /** The next `n` bytes (waits for them); rejects when the connection closes first. */
  read(n: number): Promise<Buffer>;
  send(bytes: Buffer | number[]): void;
  /** Resolves with the close code once the connection is closed. */
  closed: Promise<number>;
}

/** What a refused websocket request got instead of an upgrade. */
export class RefusedUpgrade extends Error {
  constructor(readonly status: number) {
    super(`the proxy refused the websocket: HTTP ${status}`);
  }
}

/**
 * Opens a websocket to `url` (offering subprotocol `binary`); rejects with
 * {@link RefusedUpgrade} when the proxy answers with an HTTP status instead.
 */
export function openConsole(url: string, options: { headers?: Record<string, string>; origin?: string; protocols?: string[] } = {}): Promise<ConsoleClient> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, options.protocols ?? ['binary'], { headers: options.headers ?? {}, ...(options.origin ? { origin: options.origin } : {}) });
    let buffered = Buffer.alloc(0);
    let waiter: (() => void) | null = null;
    let isClosed = false;
    const closed = new Promise<number>((done) => ws.on('close', (code) => {
      isClosed = true;
      waiter?.();
      done(code);
    }));
    ws.on('message', (data: RawData) => {
      buffered = Buffer.concat([buffered, Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer)]);
      waiter?.();
    });
    ws.on('unexpected-response', (_req, res) => {
      res.resume();
      reject(new RefusedUpgrade(res.statusCode ?? 0));
    });
    ws.on('error', (err) => reject(err));
    ws.on('open', () =>
      resolve({
        ws,
        closed,
        send: (bytes) => ws.send(Buffer.from(bytes), { binary: true }),
        async read(n) {
          while (buffered.length < n) {
            if (isClosed) throw new Error(`the console closed after ${buffered.length} of ${n} bytes`);
            await new Promise<void>((wake) => (waiter = wake));
            waiter = null;
          }
          const out = buffered.subarray(0, n);
          buffered = buffered.subarray(n);
          return out;
        },
      }),
    );
  });
}

/**
 * Runs the client half of the RFB 3.8 handshake (as Tempest's test_novnc
 * does): version, security type None, result, ClientInit, ServerInit.
 * Returns the server's version line and desktop name.
 */
export async function rfbHandshake(client: ConsoleClient): Promise<{ version: string; name: string }> {
  const version = (await client.read(12)).toString('latin1');
  client.send(Buffer.from(version, 'latin1'));
  const count = (await client.read(1))[0] ?? 0;
  const types = [...(await client.read(count))];
  if (!types.includes(1)) throw new Error(`security type None not offered: ${types.join(',')}`);
  client.send([1]);
  const result = await client.read(4);
  if (result.readUInt32BE(0) !== 0) throw new Error('security handshake failed');
  client.send([1]); // shared desktop
  const init = await client.read(24);
  const name = (await client.read(init.readUInt32BE(20))).toString('utf8');
  return { version, name };
}
