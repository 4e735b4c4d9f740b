import http from 'node:http';
import net from 'node:net';

/** A complete HTTP response. */
export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/**
 * One HTTP request on a new connection (no keep-alive agent, so a server that
 * closes connections, as Keystone under uwsgi does, is treated the same way).
 */
export function httpRequest(url: string, init: { method?: string; headers?: Record<string, string>; body?: string; timeoutMs?: number } = {}): Promise<HttpResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: init.method ?? 'GET', headers: init.headers ?? {}, agent: false, timeout: init.timeoutMs ?? 30000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('timeout', () => req.destroy(new Error(`timeout after ${init.timeoutMs ?? 30000} ms: ${url}`)));
    req.on('error', reject);
    req.end(init.body);
  });
}

/** The JSON body of a password authentication scoped to a project (Keystone v3). */
export function passwordAuthBody(user: string, password: string, project: string, domain = 'Default'): string {
  return JSON.stringify({
    auth: {
      identity: { methods: ['password'], password: { user: { name: user, domain: { name: domain }, password } } },
      scope: { project: { name: project, domain: { name: domain } } },
    },
  });
}

/** Result of one token request: the token, or why there is none. */
export interface TokenAttempt {
  token: string | null;
  status: number;
  error: string | null;
}

/** POST /v3/auth/tokens as `admin` in project `admin`; never rejects. */
export async function issueToken(baseUrl: string, password: string, timeoutMs = 30000): Promise<TokenAttempt> {
  try {
    const res = await httpRequest(`${baseUrl}/v3/auth/tokens`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: passwordAuthBody('admin', password, 'admin'),
      timeoutMs,
    });
    const header = res.headers['x-subject-token'];
    const token = typeof header === 'string' && res.status === 201 ? header : null;
    return { token, status: res.status, error: token ? null : `HTTP ${res.status}: ${res.body.slice(0, 200)}` };
  } catch (err) {
    return { token: null, status: 0, error: err instanceof Error ? err.message : String(err) };
  }
}

/** True when something accepts TCP connections on host:port. */
export function portOpen(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host });
    socket.setTimeout(1000);
    const done = (open: boolean): void => {
      socket.destroy();
      resolve(open);
    };
    socket.once('connect', () => done(true));
    socket.once('timeout', () => done(false));
    socket.once('error', () => done(false));
  });
}

/** Throws, naming the setting that changes the port, when something listens on one of `ports` already. */
export async function assertPortsFree(ports: [port: number, setting: string][]): Promise<void> {
  for (const [port, setting] of ports) {
    if (await portOpen(port)) throw new Error(`port ${port} is in use by another process; choose another one with ${setting}=...`);
  }
}

/** Answer of a timed request; the body is counted, not kept. */
export interface TimedResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** Bytes of the response body. */
  bytes: number;
  /** From the call to the last byte of the body, milliseconds. */
  ms: number;
}

/**
 * One request through `agent` (give it `keepAlive: true` to reuse
 * connections, as a load generator does), body read and discarded.
 * Rejects on a connection error or after `timeoutMs` without progress.
 */
export function timedRequest(agent: http.Agent, target: { host: string; port: number; path: string }, init: { method: string; headers: Record<string, string>; body?: Buffer; timeoutMs: number }): Promise<TimedResponse> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.request({ host: target.host, port: target.port, path: target.path, method: init.method, headers: init.headers, agent, timeout: init.timeoutMs }, (res) => {
      let bytes = 0;
      res.on('data', (c: Buffer) => (bytes += c.length));
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, bytes, ms: performance.now() - t0 }));
    });
    req.on('timeout', () => req.destroy(new Error(`${init.method} ${target.path}: no answer within ${init.timeoutMs} ms`)));
    req.on('error', reject);
    req.end(init.body);
  });
}
