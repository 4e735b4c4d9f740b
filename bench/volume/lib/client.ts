import fs from 'node:fs';
import http from 'node:http';
import { httpRequest, passwordAuthBody } from '../../lib/http.js';

/** Credentials of the user the benchmark acts as (an admin: it sets quotas and makes volume types). */
export interface Credentials {
  /** Identity base URL without `/v3`. */
  authUrl: string;
  username: string;
  password: string;
  project: string;
  domain: string;
}

/** An answer the benchmark did not expect; the message says which request and what came back. */
export class UnexpectedAnswer extends Error {}

/** A JSON answer. */
export interface Answer {
  status: number;
  body: any;
  /** The body as received (for error messages). */
  text: string;
}

interface CatalogEntry {
  type?: string;
  endpoints?: { interface?: string; url?: string }[];
}

/**
 * A project-scoped session on one cloud: the token, and where the Image and
 * Block Storage APIs are (the catalog's `image` and `volumev3` /
 * `block-storage` services, public interface). Every request has a TCP
 * connection of its own and says `Connection: close` (so that an eventlet
 * server's workers share the load, as in bench/network); nothing is retried.
 */
export class Cloud {
  private constructor(
    readonly token: string,
    readonly projectId: string,
    /** Image API base, without `/v2`. */
    readonly imageUrl: string,
    /** Block Storage API base with the project: `.../v3/<project_id>`. */
    readonly volumeUrl: string,
  ) {}

  /** Issues a token (password, scoped to the project) and reads the endpoints from its catalog. */
  static async login(c: Credentials, timeoutMs = 60_000): Promise<Cloud> {
    const res = await httpRequest(`${c.authUrl}/v3/auth/tokens`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: passwordAuthBody(c.username, c.password, c.project, c.domain),
      timeoutMs,
    });
    const token = res.headers['x-subject-token'];
    if (res.status !== 201 || typeof token !== 'string') throw new UnexpectedAnswer(`POST ${c.authUrl}/v3/auth/tokens: HTTP ${res.status}: ${res.body.slice(0, 300)}`);
    const body = JSON.parse(res.body) as { token?: { project?: { id?: string }; catalog?: CatalogEntry[] } };
    const projectId = body.token?.project?.id;
    if (!projectId) throw new UnexpectedAnswer('the token has no project');
    const catalog = body.token?.catalog ?? [];
    const find = (...types: string[]): string => {
      for (const type of types) {
        const service = catalog.find((s) => s.type === type);
        const url = service?.endpoints?.find((e) => e.interface === 'public')?.url ?? service?.endpoints?.[0]?.url;
        if (url) return url.replace(/\/+$/, '');
      }
      throw new UnexpectedAnswer(`no '${types.join("' or '")}' service in the catalog of ${c.authUrl} (types: ${catalog.map((s) => s.type).join(', ') || 'none'})`);
    };
    const imageUrl = find('image').replace(/\/v2(\.\d+)?$/, '');
    // Keystone fills in the project; a catalog that did not gets it here.
    let volumeUrl = find('volumev3', 'block-storage').replace(/[$%]\((project_id|tenant_id)\)s/g, projectId);
    if (/\/v3$/.test(volumeUrl)) volumeUrl = `${volumeUrl}/${projectId}`;
    return new Cloud(token, projectId, imageUrl, volumeUrl);
  }

  /** One request with a JSON body (or none); the answer parsed when it is JSON. */
  call(method: string, url: string, body?: unknown, timeoutMs = 120_000): Promise<Answer> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const headers: Record<string, string> = { 'X-Auth-Token': this.token, Accept: 'application/json', Connection: 'close' };
      if (payload !== undefined) {
        headers['Content-Type'] = 'application/json';
        headers['Content-Length'] = String(Buffer.byteLength(payload));
      }
      const req = http.request(url, { method, headers, agent: false, timeout: timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = {};
          try {
            parsed = text ? JSON.parse(text) : {};
          } catch {
            parsed = text;
          }
          resolve({ status: res.statusCode ?? 0, body: parsed, text });
        });
      });
      req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs / 1000} s: ${method} ${url}`)));
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** `call`, and throws UnexpectedAnswer unless the status is one of `want`. */
  async expect(want: number[], method: string, url: string, body?: unknown): Promise<any> {
    const res = await this.call(method, url, body);
    if (!want.includes(res.status)) throw new UnexpectedAnswer(`${method} ${url}: HTTP ${res.status}: ${res.text.slice(0, 400)}`);
    return res.body;
  }

  /** Block Storage request on `path` (relative to `.../v3/<project>`). */
  volume(method: string, path: string, body?: unknown): Promise<Answer> {
    return this.call(method, `${this.volumeUrl}${path}`, body);
  }

  /** PUT of a file's bytes as the image's data (streamed, `application/octet-stream`); resolves with the HTTP status. */
  uploadImage(imageId: string, file: string, timeoutMs: number): Promise<{ status: number; text: string }> {
    const size = fs.statSync(file).size;
    return new Promise((resolve, reject) => {
      const req = http.request(`${this.imageUrl}/v2/images/${imageId}/file`, {
        method: 'PUT',
        headers: { 'X-Auth-Token': this.token, 'Content-Type': 'application/octet-stream', 'Content-Length': String(size), Connection: 'close' },
        agent: false,
        timeout: timeoutMs,
      });
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`image upload: no answer within ${timeoutMs / 1000} s`)));
      req.on('error', reject);
      const stream = fs.createReadStream(file);
      stream.on('error', (err) => req.destroy(err));
      stream.pipe(req);
    });
  }
}
