import { setTimeout as sleep } from 'node:timers/promises';
import { Counter } from 'prom-client';
import type { Logger } from '../logging.js';
import { registry } from '../metrics.js';
import type { CatalogEntry, TokenBody } from './context.js';
import { isConnectionRefused, parseBody, redact, tokenOf } from './http-helpers.js';
import { EndpointNotFound, ServiceAuthFailed, UpstreamUnavailable } from './service-errors.js';

export { EndpointNotFound, ServiceAuthFailed, UpstreamUnavailable };

/** The service user a role authenticates as, and where identity is. */
export interface ServiceCredentials {
  /** Identity's v3 root, e.g. `http://127.0.0.1:5000/v3` (trailing slashes ignored). */
  authUrl: string;
  username: string;
  password: string;
  /** Domain of the user; `Default` when absent. */
  userDomainName?: string;
  projectName: string;
  /** Domain of the project; `Default` when absent. */
  projectDomainName?: string;
  /** Catalog region to use; any region when absent. */
  region?: string;
}

/** Which of a service's catalog endpoints to use. */
export type EndpointInterface = 'public' | 'internal' | 'admin';

/** Tuning of a {@link ServiceClient}; every field has a default. */
export interface ServiceClientOptions {
  logger?: Logger;
  /** Retries after the first attempt for retryable failures (default 3). */
  retries?: number;
  /** Time limit of one attempt, headers and body, in ms (default 30000). */
  timeoutMs?: number;
  /** Delay before the first retry in ms, doubled for each further one, with jitter (default 200). */
  backoffMs?: number;
  /** Longest delay between retries in ms (default 5000). */
  maxBackoffMs?: number;
  /** Renew the service token this long before it expires (default 5 minutes, at most half its lifetime). */
  renewBeforeMs?: number;
  /** The clock, in ms since the epoch (tests inject one). */
  now?: () => number;
  /** `User-Agent` of every request (default `stratus-service-client`). */
  userAgent?: string;
}

/** Per-request options of {@link ServiceClient.request}. */
export interface ServiceRequestOptions {
  /** JSON-encoded unless `raw`; with `raw` it must be a string or bytes and is sent as is. */
  body?: unknown;
  /** Extra headers; they cannot replace the token headers. */
  headers?: Record<string, string>;
  /** Catalog interface (default `internal`). */
  interface?: EndpointInterface;
  /** The global request id, sent as `X-OpenStack-Request-ID`. */
  requestId?: string;
  /** Send `body` untouched and return the response body as a Buffer instead of parsing it. */
  raw?: boolean;
  /**
   * Act for a user: send this as `X-Auth-Token` and the service's own token as
   * `X-Service-Token` (as Nova does when it calls Neutron or Cinder for a user).
   */
  userToken?: string;
}

/** What {@link ServiceClient.request} returns for any status it does not retry. */
export interface ServiceResponse<T> {
  status: number;
  headers: Headers;
  /** Parsed JSON; the text when the body is not JSON; null when empty; a Buffer with `raw`. */
  body: T;
}

const serviceCalls = new Counter({
  name: 'stratus_service_client_requests_total',
  help: 'Requests made by a service to another service, by target service type, method and outcome (status code or error)',
  labelNames: ['service', 'method', 'outcome'] as const,
  registers: [registry],
});

/** Statuses retried for idempotent methods. */
const RETRY_STATUSES = new Set([502, 503, 504]);
const IDEMPOTENT = new Set(['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS']);

interface Session {
  token: string;
  body: TokenBody;
  /** Local time after which the token must not be used. */
  expiresAt: number;
  /** Local time from which a new token is fetched. */
  renewAt: number;
}

interface Exchange {
  serviceType: string;
  method: string;
  url: string;
  body?: string | Uint8Array;
  /** Headers of one attempt, given the service token (undefined when `authenticated` is false). */
  headers: (token: string | undefined) => Headers;
  /** Whether to send the service token (and renew it once on 401). */
  authenticated: boolean;
  /** Whether 502/503/504, timeouts and broken connections may be retried. */
  idempotent: boolean;
}

/**
 * How one service calls the others: it logs in as its service user with a
 * password, keeps that token (renewed before expiry, one login at a time),
 * finds endpoints in the token's catalog, and sends requests with retries.
 */
export class ServiceClient {
  private readonly authUrl: string;
  private readonly retries: number;
  private readonly timeoutMs: number;
  private readonly backoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly renewBeforeMs: number;
  private readonly now: () => number;
  private readonly userAgent: string;
  private readonly logger: Logger | undefined;
  private session: Session | null = null;
  private login: Promise<Session> | null = null;

  constructor(
    private readonly creds: ServiceCredentials,
    options: ServiceClientOptions = {},
  ) {
    this.authUrl = creds.authUrl.replace(/\/+$/, '');
    this.retries = Math.max(0, options.retries ?? 3);
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.backoffMs = options.backoffMs ?? 200;
    this.maxBackoffMs = options.maxBackoffMs ?? 5_000;
    this.renewBeforeMs = options.renewBeforeMs ?? 5 * 60_000;
    this.now = options.now ?? Date.now;
    this.userAgent = options.userAgent ?? 'stratus-service-client';
    this.logger = options.logger;
  }

  /**
   * A valid token of the service user. Cached; renewed from `renewBeforeMs`
   * before expiry (while identity is unreachable the old token keeps being
   * used until it expires); concurrent callers share one login. Throws
   * ServiceAuthFailed when identity refuses the credentials and
   * UpstreamUnavailable when identity cannot be reached.
   */
  async token(): Promise<string> {
    return (await this.currentSession()).token;
  }

  /** The service token's catalog (every region), e.g. to find a service's id or another region's endpoint. */
  async catalog(): Promise<CatalogEntry[]> {
    return (await this.currentSession()).body.catalog ?? [];
  }

  /**
   * The URL (without trailing slash) of a service's endpoint in the service
   * token's catalog: the first of that type and interface (`internal` by
   * default) in the configured region. Throws EndpointNotFound when absent.
   */
  async endpoint(serviceType: string, options: { interface?: EndpointInterface } = {}): Promise<string> {
    const iface = options.interface ?? 'internal';
    const region = this.creds.region ?? null;
    const catalog: CatalogEntry[] = (await this.currentSession()).body.catalog ?? [];
    for (const entry of catalog) {
      if (entry.type !== serviceType) continue;
      for (const ep of entry.endpoints) {
        if (ep.interface !== iface) continue;
        if (region !== null && ep.region_id !== region && ep.region !== region) continue;
        return ep.url.replace(/\/+$/, '');
      }
    }
    throw new EndpointNotFound(serviceType, iface, region);
  }

  /**
   * Sends a request to the service of that type; `path` is relative to its
   * endpoint URL. Adds the token, `X-OpenStack-Request-ID` and JSON encoding.
   * Retries broken connections and 502/503/504 with backoff for idempotent
   * methods (GET, HEAD, PUT, DELETE), refused connections for every method;
   * on 401 renews the service token once and retries. Returns every other
   * answer, 4xx and 5xx included, for the caller to map; throws
   * UpstreamUnavailable when retries are exhausted or a failure is not
   * retryable, EndpointNotFound when the catalog lacks the service.
   */
  async request<T = unknown>(serviceType: string, method: string, path: string, options: ServiceRequestOptions = {}): Promise<ServiceResponse<T>> {
    const verb = method.toUpperCase();
    const base = await this.endpoint(serviceType, { interface: options.interface });
    const url = `${base}/${path.replace(/^\/+/, '')}`;
    let body: string | Uint8Array | undefined;
    let contentType: string | undefined;
    if (options.body !== undefined) {
      if (options.raw) {
        if (typeof options.body !== 'string' && !(options.body instanceof Uint8Array)) throw new TypeError('a raw request body must be a string or bytes');
        body = options.body;
      } else {
        body = JSON.stringify(options.body);
        contentType = 'application/json';
      }
    }
    const { response, data } = await this.exchange({
      serviceType,
      method: verb,
      url,
      body,
      authenticated: true,
      idempotent: IDEMPOTENT.has(verb),
      headers: (token) => {
        const headers = new Headers({ Accept: 'application/json', 'User-Agent': this.userAgent });
        if (contentType) headers.set('Content-Type', contentType);
        for (const [name, value] of Object.entries(options.headers ?? {})) headers.set(name, value);
        if (options.userToken !== undefined) {
          headers.set('X-Auth-Token', options.userToken);
          if (token !== undefined) headers.set('X-Service-Token', token);
        } else if (token !== undefined) {
          headers.set('X-Auth-Token', token);
        }
        if (options.requestId) headers.set('X-OpenStack-Request-ID', options.requestId);
        return headers;
      },
    });
    const parsed = options.raw ? data : parseBody(response.headers, data);
    return { status: response.status, headers: response.headers, body: parsed as T };
  }

  /**
   * Validates a user's token with identity (`GET /v3/auth/tokens?nocatalog`,
   * `allow_expired=1` on request): its `token` object when valid, null when
   * identity answers 404 (unknown, expired or revoked). Throws
   * ServiceAuthFailed when identity keeps refusing the service's own token
   * and UpstreamUnavailable when identity is unreachable or answers oddly.
   */
  async validateToken(subjectToken: string, options: { allowExpired?: boolean } = {}): Promise<TokenBody | null> {
    const url = `${this.authUrl}/auth/tokens?nocatalog${options.allowExpired ? '&allow_expired=1' : ''}`;
    const { response, data } = await this.exchange({
      serviceType: 'identity',
      method: 'GET',
      url,
      authenticated: true,
      idempotent: true,
      headers: (token) =>
        new Headers({ Accept: 'application/json', 'User-Agent': this.userAgent, 'X-Auth-Token': token ?? '', 'X-Subject-Token': subjectToken }),
    });
    if (response.status === 404) return null;
    if (response.status === 401 || response.status === 403) throw new ServiceAuthFailed(response.status);
    const token = response.status === 200 ? tokenOf(parseBody(response.headers, data)) : null;
    if (!token) throw new UpstreamUnavailable('identity', 'GET', url, 1, response.status);
    return token;
  }

  private async currentSession(): Promise<Session> {
    const current = this.session;
    const now = this.now();
    if (current && now < current.renewAt) return current;
    if (!this.login) {
      const login = this.passwordLogin();
      this.login = login;
      const clear = (): void => {
        if (this.login === login) this.login = null;
      };
      void login.then(clear, clear);
    }
    try {
      const fresh = await this.login;
      this.session = fresh;
      return fresh;
    } catch (err) {
      if (current && this.now() < current.expiresAt && !(err instanceof ServiceAuthFailed)) {
        this.logger?.warn({ err }, 'could not renew the service token; using the current one until it expires');
        return current;
      }
      throw err;
    }
  }

  private async passwordLogin(): Promise<Session> {
    const { creds } = this;
    const url = `${this.authUrl}/auth/tokens`;
    const payload = JSON.stringify({
      auth: {
        identity: {
          methods: ['password'],
          password: { user: { name: creds.username, domain: { name: creds.userDomainName ?? 'Default' }, password: creds.password } },
        },
        scope: { project: { name: creds.projectName, domain: { name: creds.projectDomainName ?? 'Default' } } },
      },
    });
    const started = this.now();
    const { response, data } = await this.exchange({
      serviceType: 'identity',
      method: 'POST',
      url,
      body: payload,
      authenticated: false,
      idempotent: true, // issuing a token has no effect worth guarding against
      headers: () => new Headers({ Accept: 'application/json', 'Content-Type': 'application/json', 'User-Agent': this.userAgent }),
    });
    if (response.status === 400 || response.status === 401 || response.status === 403 || response.status === 404) {
      this.logger?.error({ status: response.status, user: creds.username, project: creds.projectName }, 'identity refused the service credentials');
      throw new ServiceAuthFailed(response.status);
    }
    const token = response.headers.get('x-subject-token');
    const body = response.status === 200 || response.status === 201 ? tokenOf(parseBody(response.headers, data)) : null;
    if (!token || !body) throw new UpstreamUnavailable('identity', 'POST', url, 1, response.status);
    const absolute = Date.parse(body.expires_at);
    const lifetime = absolute - Date.parse(body.issued_at);
    // Trust the token's lifetime over identity's clock when they disagree.
    const expiresAt = Number.isFinite(lifetime) ? Math.min(absolute, started + lifetime) : absolute;
    const margin = Math.min(this.renewBeforeMs, Number.isFinite(lifetime) ? lifetime / 2 : this.renewBeforeMs);
    return { token, body, expiresAt, renewAt: expiresAt - margin };
  }

  /** Forgets the service token if it is still `token` (another caller may have renewed it already). */
  private forget(token: string): void {
    if (this.session?.token === token) this.session = null;
  }

  /** One logical call: attempts, retries, the 401 renewal; reads the whole body. */
  private async exchange(call: Exchange): Promise<{ response: Response; data: Buffer }> {
    let attempt = 0;
    let renewed = false;
    for (;;) {
      const token = call.authenticated ? await this.token() : undefined;
      let response: Response;
      let data: Buffer;
      try {
        response = await fetch(call.url, {
          method: call.method,
          headers: call.headers(token),
          body: call.body,
          signal: AbortSignal.timeout(this.timeoutMs),
        });
        data = Buffer.from(await response.arrayBuffer());
      } catch (err) {
        serviceCalls.inc({ service: call.serviceType, method: call.method, outcome: 'error' });
        const retryable = call.idempotent || isConnectionRefused(err);
        if (retryable && attempt < this.retries) {
          attempt += 1;
          await this.backoff(call, attempt, null, err);
          continue;
        }
        throw new UpstreamUnavailable(call.serviceType, call.method, redact(call.url), attempt + 1, null, err);
      }
      serviceCalls.inc({ service: call.serviceType, method: call.method, outcome: String(response.status) });
      if (response.status === 401 && token !== undefined && !renewed) {
        renewed = true;
        this.forget(token);
        this.logger?.info({ service: call.serviceType, method: call.method, url: redact(call.url) }, 'service token refused; renewing it');
        continue;
      }
      if (call.idempotent && RETRY_STATUSES.has(response.status)) {
        if (attempt < this.retries) {
          attempt += 1;
          await this.backoff(call, attempt, response, null);
          continue;
        }
        throw new UpstreamUnavailable(call.serviceType, call.method, redact(call.url), attempt + 1, response.status);
      }
      return { response, data };
    }
  }

  private async backoff(call: Exchange, attempt: number, response: Response | null, err: unknown): Promise<void> {
    let delay = Math.min(this.maxBackoffMs, this.backoffMs * 2 ** (attempt - 1));
    delay = delay / 2 + Math.random() * (delay / 2);
    const retryAfter = Number(response?.headers.get('retry-after'));
    if (Number.isFinite(retryAfter) && retryAfter > 0) delay = Math.min(this.maxBackoffMs, retryAfter * 1000);
    this.logger?.warn(
      { service: call.serviceType, method: call.method, url: redact(call.url), attempt, status: response?.status, err: err ?? undefined, delay_ms: Math.round(delay) },
      'retrying service request',
    );
    await sleep(delay);
  }
}
