/**
 * What the benchmarks with real guests share (bench/boot,
 * bench/network-dataplane): a small client of the cloud's APIs as its
 * admin, loopback ports, bounded polling, and the guest's serial marker.
 */
import fs from 'node:fs';
import net from 'node:net';
import { now, sleep } from './proc.js';

/** The admin's client of a `stratus up` whose services listen on `ports` (by service name) of 127.0.0.1. */
export class CloudApi {
  token = '';
  projectId = '';

  constructor(
    readonly ports: Record<string, number>,
    private readonly password: string,
  ) {}

  async login(): Promise<void> {
    const res = await fetch(`http://127.0.0.1:${this.ports.identity}/v3/auth/tokens`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ auth: { identity: { methods: ['password'], password: { user: { name: 'admin', domain: { id: 'default' }, password: this.password } } }, scope: { project: { name: 'admin', domain: { id: 'default' } } } } }),
    });
    const text = await res.text();
    if (res.status !== 201) throw new Error(`login: ${res.status} ${text}`);
    this.token = res.headers.get('x-subject-token') ?? '';
    this.projectId = (JSON.parse(text) as { token: { project: { id: string } } }).token.project.id;
  }

  async call(service: string, method: string, url: string, body?: unknown): Promise<{ status: number; json: any }> {
    const res = await fetch(`http://127.0.0.1:${this.ports[service]}${url}`, {
      method,
      headers: { 'X-Auth-Token': this.token, Accept: 'application/json', ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(60_000),
    });
    const text = await res.text();
    let json: any = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = text;
    }
    return { status: res.status, json };
  }

  /** `call` that must answer one of `expected`; its JSON. */
  async must(service: string, method: string, url: string, expected: number[], body?: unknown): Promise<any> {
    const r = await this.call(service, method, url, body);
    if (!expected.includes(r.status)) throw new Error(`${method} ${url}: ${r.status} ${JSON.stringify(r.json)}`);
    return r.json;
  }
}

/** A free port of 127.0.0.1 (taken again at once by the caller). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/**
 * Polls `check` every `everyMs` until it gives a value (not null); throws
 * after `timeoutS` seconds, or at once when `signal` is aborted.
 */
export async function pollUntil<T>(what: string, check: () => Promise<T | null> | T | null, options: { timeoutS: number; everyMs?: number; signal?: AbortSignal }): Promise<T> {
  const deadline = now() + options.timeoutS;
  for (;;) {
    if (options.signal?.aborted) throw new Error(`${what}: stopped`);
    const value = await check();
    if (value !== null) return value;
    if (now() > deadline) throw new Error(`${what}: not within ${options.timeoutS} s`);
    await sleep(options.everyMs ?? 20);
  }
}

/** The test guest's marker on its serial console once it has booted. */
export const READY_MARKER = 'stratus-guest: ready';

/** True when the serial log `file` holds the ready marker. */
export function hasReadyMarker(file: string): boolean {
  try {
    return fs.readFileSync(file, 'latin1').includes(READY_MARKER);
  } catch {
    return false;
  }
}
