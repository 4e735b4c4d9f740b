import type { Readable } from 'node:stream';
import type { RingDevice } from '../ring/ring.js';

/**
 * How the proxy and the workers talk to the account, container and object
 * servers: Swift's internal HTTP API, one request per device. The path is
 * `/<device>/<partition>/<account>[/<container>[/<object>]]`, each name
 * percent-encoded (an object name's `/` kept), and the headers are Swift's
 * (`X-Timestamp`, `X-Backend-*`, `X-Container-Host`, `X-Size`, ...).
 */
export interface StorageRequest {
  method: string;
  device: string;
  partition: number;
  account: string;
  container?: string;
  object?: string;
  /** Header names lower-case. */
  headers: Record<string, string>;
  /** Undecoded query string without `?` (listings: `format=json&prefix=...`). */
  query?: string;
  body?: Readable | Buffer | null;
}

export interface StorageResponse {
  status: number;
  /** Header names lower-case. */
  headers: Record<string, string>;
  /** Must be consumed or destroyed. */
  body: Readable;
}

export interface StorageClient {
  /**
   * Sends one request to the device's server. Rejects when the server cannot
   * be reached or does not answer within the timeouts (the caller counts it
   * as a failed replica and may try a handoff); any HTTP status resolves.
   */
  request(node: RingDevice, req: StorageRequest, options?: { connectTimeoutMs?: number; timeoutMs?: number }): Promise<StorageResponse>;
  close(): void;
}
