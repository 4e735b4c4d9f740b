import http from 'node:http';
import { httpRequest, passwordAuthBody } from '../../lib/http.js';

/** One answer of the Networking API, with its timing. */
export interface ApiResponse {
  status: number;
  body: string;
  /** Bytes of the response body. */
  bytes: number;
  /** From sending the request to the last byte of the body, milliseconds. */
  ms: number;
}

/** An answer the benchmark did not expect; the message says which request and what came back. */
export class UnexpectedAnswer extends Error {}

/** A project-scoped token and where the Networking API is, from POST /v3/auth/tokens. */
export interface Session {
  token: string;
  projectId: string;
  /** Base URL of the Networking API without `/v2.0`, e.g. http://127.0.0.1:9697 */
  networkUrl: string;
  /** Seconds the token request took. */
  issue_s: number;
}

/** Credentials of the user the benchmark acts as (an admin: it sets quotas). */
export interface Credentials {
  /** Identity base URL without `/v3`. */
  authUrl: string;
  username: string;
  password: string;
  project: string;
  domain: string;
}

interface CatalogEntry {
  type?: string;
  endpoints?: { interface?: string; url?: string }[];
}

/**
 * Issues a token (password, scoped to the project) and finds the public
 * `network` endpoint in its catalog. Throws when there is none: the cloud has
 * no Networking service.
 */
export async function openSession(c: Credentials, timeoutMs = 60000): Promise<Session> {
  const t0 = performance.now();
  const res = await httpRequest(`${c.authUrl}/v3/auth/tokens`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: passwordAuthBody(c.username, c.password, c.project, c.domain),
    timeoutMs,
  });
  const issue_s = (performance.now() - t0) / 1000;
  const token = res.headers['x-subject-token'];
  if (res.status !== 201 || typeof token !== 'string') throw new UnexpectedAnswer(`POST ${c.authUrl}/v3/auth/tokens: HTTP ${res.status}: ${res.body.slice(0, 300)}`);
  const body = JSON.parse(res.body) as { token?: { project?: { id?: string }; catalog?: CatalogEntry[] } };
  const projectId = body.token?.project?.id;
  if (!projectId) throw new UnexpectedAnswer('the token has no project');
  const network = (body.token?.catalog ?? []).find((s) => s.type === 'network');
  const url = network?.endpoints?.find((e) => e.interface === 'public')?.url ?? network?.endpoints?.[0]?.url;
  if (!url) throw new UnexpectedAnswer(`no 'network' service in the catalog of ${c.authUrl} (types: ${(body.token?.catalog ?? []).map((s) => s.type).join(', ') || 'none'})`);
  return { token, projectId, networkUrl: url.replace(/\/+$/, '').replace(/\/v2\.0$/, ''), issue_s };
}

/**
 * HTTP/1.1 client of one Networking endpoint, at most `maxSockets`
 * connections at once. With `keepAlive` false (the default of the benchmark)
 * every request has a connection of its own and says `Connection: close`, as
 * Debian's neutron-api uwsgi configuration makes every answer do; with true,
 * a pool of kept-alive connections, as keystoneauth sessions keep them.
 * Never retries: a failed request is counted.
 */
export class NetworkClient {
  private readonly agent: http.Agent;

  constructor(
    readonly baseUrl: string,
    private token: string,
    maxSockets: number,
    keepAlive: boolean,
  ) {
    this.agent = new http.Agent({ keepAlive, maxSockets, maxFreeSockets: maxSockets });
  }

  /** A new token for the following requests (tokens expire after an hour). */
  setToken(token: string): void {
    this.token = token;
  }

  /** One request; `path` starts with /v2.0. Rejects only on a network error or the timeout. */
  request(method: string, path: string, body: unknown, timeoutMs: number): Promise<ApiResponse> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers: Record<string, string> = { 'X-Auth-Token': this.token, Accept: 'application/json' };
    if (payload !== undefined) {
      headers['Content-Type'] = 'application/json';
      headers['Content-Length'] = String(Buffer.byteLength(payload));
    }
    const t0 = performance.now();
    return new Promise((resolve, reject) => {
      const req = http.request(`${this.baseUrl}${path}`, { method, headers, agent: this.agent, timeout: timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        let bytes = 0;
        res.on('data', (c: Buffer) => {
          chunks.push(c);
          bytes += c.length;
        });
        res.on('error', reject);
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), bytes, ms: performance.now() - t0 }));
      });
      req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms: ${method} ${path}`)));
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** A request that must answer `status`; returns the parsed JSON body (null for an empty one). */
  async expect(method: string, path: string, body: unknown, status: number, timeoutMs: number): Promise<{ json: unknown; res: ApiResponse }> {
    const res = await this.request(method, path, body, timeoutMs);
    if (res.status !== status) throw new UnexpectedAnswer(`${method} ${path}: HTTP ${res.status} (expected ${status}): ${res.body.slice(0, 300)}`);
    return { json: res.body ? (JSON.parse(res.body) as unknown) : null, res };
  }

  /** Closes the kept-alive connections. */
  close(): void {
    this.agent.destroy();
  }
}
