import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { CatalogEntry, TokenBody } from './context.js';

/** A token the stub issued or was told about. */
export interface StubToken {
  body: TokenBody;
  revoked: boolean;
}

/** What a stub service route gets: the request, its body, and whether its token is valid. */
export interface StubCall {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  tokenValid: boolean;
}

/** An answer of a stub service route. */
export interface StubAnswer {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

/**
 * Test helper (not production code): a small HTTP server on 127.0.0.1 that
 * plays Keystone's token API under `/v3` (password login on POST, validation
 * on GET with `X-Subject-Token`, 404 for unknown/expired/revoked subjects,
 * 401 for a bad caller token) and, under `/svc/...`, any service the test
 * routes with `onService`. Its clock can be injected; it counts its calls.
 */
export class KeystoneStub {
  readonly tokens = new Map<string, StubToken>();
  /** Password logins received. */
  logins = 0;
  /** Last password-login request body. */
  lastLogin: unknown = null;
  /** Validations received, by subject token. */
  readonly validations = new Map<string, number>();
  /** Query strings of validations received. */
  readonly validationQueries: string[] = [];
  /** Delay of each validation answer, in ms. */
  validationDelayMs = 0;
  /** Answer every identity call with this status instead (e.g. 503). */
  failWith: number | null = null;
  /** Token lifetime in ms. */
  tokenLifetimeMs = 60 * 60_000;
  /** Handler of `/svc/...` requests. */
  onService: (call: StubCall) => StubAnswer = () => ({ status: 404, body: { error: 'no route' } });
  readonly passwords = new Map<string, string>([['nova', 'secret']]);
  private next = 0;
  private server: http.Server | null = null;
  url = '';

  constructor(readonly now: () => number = Date.now) {}

  async start(): Promise<this> {
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        void this.handle(req, Buffer.concat(chunks).toString('utf8')).then(
          (answer) => {
            res.writeHead(answer.status, { 'Content-Type': 'application/json', ...answer.headers });
            res.end(answer.body === undefined ? '' : JSON.stringify(answer.body));
          },
          (err: unknown) => res.writeHead(500).end(String(err)),
        );
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.server = server;
    this.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    this.server = null;
  }

  /** Issues a token for a user directly (as if it logged in), with optional overrides. */
  issue(overrides: Partial<TokenBody> = {}, lifetimeMs = this.tokenLifetimeMs): string {
    this.next += 1;
    const id = `tok-${this.next}-${'x'.repeat(40)}`;
    const issued = this.now();
    const body: TokenBody = {
      methods: ['password'],
      user: { id: 'u-alice', name: 'alice', domain: { id: 'default', name: 'Default' }, password_expires_at: null },
      audit_ids: [`audit-${this.next}`],
      issued_at: new Date(issued).toISOString(),
      expires_at: new Date(issued + lifetimeMs).toISOString(),
      project: { id: 'p-demo', name: 'demo', domain: { id: 'default', name: 'Default' } },
      roles: [{ id: 'r-member', name: 'member' }, { id: 'r-reader', name: 'reader' }],
      ...overrides,
    };
    this.tokens.set(id, { body, revoked: false });
    return id;
  }

  /** The catalog put in password-login answers: compute in two regions and three interfaces. */
  catalog(): CatalogEntry[] {
    const ep = (id: string, iface: string, region: string, path: string) => ({ id, interface: iface, region, region_id: region, url: `${this.url}${path}` });
    return [
      {
        id: 's-identity',
        type: 'identity',
        name: 'keystone',
        endpoints: [ep('e-id', 'internal', 'RegionOne', '/v3')],
      },
      {
        id: 's-compute',
        type: 'compute',
        name: 'nova',
        endpoints: [
          ep('e1', 'public', 'RegionOne', '/svc/compute-public/'),
          ep('e2', 'internal', 'RegionTwo', '/svc/compute-internal-r2'),
          ep('e3', 'internal', 'RegionOne', '/svc/compute-internal-r1/'),
          ep('e4', 'admin', 'RegionOne', '/svc/compute-admin'),
        ],
      },
    ];
  }

  private valid(token: string | undefined, allowExpired = false): StubToken | null {
    const found = token === undefined ? undefined : this.tokens.get(token);
    if (!found || found.revoked) return null;
    if (!allowExpired && Date.parse(found.body.expires_at) <= this.now()) return null;
    return found;
  }

  private async handle(req: http.IncomingMessage, body: string): Promise<StubAnswer> {
    const url = new URL(req.url ?? '/', 'http://stub');
    const header = (name: string): string | undefined => {
      const value = req.headers[name];
      return Array.isArray(value) ? value[0] : value;
    };
    if (url.pathname.startsWith('/svc/')) {
      return this.onService({ method: req.method ?? 'GET', path: url.pathname + url.search, headers: req.headers, body, tokenValid: this.valid(header('x-auth-token')) !== null });
    }
    if (url.pathname !== '/v3/auth/tokens') return { status: 404, body: { error: { code: 404, title: 'Not Found', message: 'no route' } } };
    if (this.failWith !== null) return { status: this.failWith, body: { error: { code: this.failWith, title: 'Failure', message: 'told to fail' } } };

    if (req.method === 'POST') {
      this.logins += 1;
      const parsed = JSON.parse(body) as { auth: { identity: { password: { user: { name: string; password: string } } } } };
      this.lastLogin = parsed;
      const user = parsed.auth.identity.password.user;
      if (this.passwords.get(user.name) !== user.password) return { status: 401, body: { error: { code: 401, title: 'Unauthorized', message: 'The request you have made requires authentication.' } } };
      const id = this.issue({
        user: { id: `u-${user.name}`, name: user.name, domain: { id: 'default', name: 'Default' }, password_expires_at: null },
        project: { id: 'p-service', name: 'service', domain: { id: 'default', name: 'Default' } },
        roles: [{ id: 'r-service', name: 'service' }, { id: 'r-admin', name: 'admin' }],
      });
      const token = this.tokens.get(id);
      return { status: 201, headers: { 'X-Subject-Token': id }, body: { token: { ...token?.body, catalog: this.catalog() } } };
    }

    if (req.method === 'GET') {
      const subject = header('x-subject-token') ?? '';
      this.validations.set(subject, (this.validations.get(subject) ?? 0) + 1);
      this.validationQueries.push(url.search);
      if (this.validationDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.validationDelayMs));
      if (!this.valid(header('x-auth-token'))) return { status: 401, body: { error: { code: 401, title: 'Unauthorized', message: 'The request you have made requires authentication.' } } };
      const allowExpired = url.searchParams.get('allow_expired') === '1';
      const found = this.valid(subject, allowExpired);
      if (!found) return { status: 404, body: { error: { code: 404, title: 'Not Found', message: `Could not find token: ${subject}.` } } };
      return { status: 200, headers: { 'X-Subject-Token': subject }, body: { token: found.body } };
    }
    return { status: 405, body: { error: { code: 405, title: 'Method Not Allowed', message: 'no' } } };
  }
}

/** A URL on 127.0.0.1 where nothing listens (a port bound then released). */
export async function deadUrl(): Promise<string> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}
