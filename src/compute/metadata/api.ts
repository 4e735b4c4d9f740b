import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Bus } from '../../core/bus/index.js';
import type { StratusConfig } from '../../core/config.js';
import { ApiError, BadRequest, Conflict, Forbidden, NotFound } from '../../core/errors.js';
import type { FaultFormatter } from '../../core/http/faults.js';
import { createApiServer, listen } from '../../core/http/server.js';
import { roleLogger, type Logger } from '../../core/logging.js';
import type { ComputeService } from '../compute.js';
import type { InstanceRow } from '../db/schema.js';
import { openCompute, type ComputeOptions } from '../service.js';
import { metadataOptions } from './content.js';
import { instanceByFixedIp, instanceByUuid, metadataInfoOf } from './info.js';
import { lookupMetadata, metadataPathTokens, rootListing } from './lookup.js';
import { MAX_PASSWORD_SIZE, readServerPassword, setServerPasswordOnce } from './password.js';
import { metadataSecret, validSignature } from './secret.js';

/** What the metadata API needs of compute: its database, its client for the network API, its log. */
export type MetadataCompute = Pick<ComputeService, 'db' | 'client' | 'log'>;

/** Options of {@link startMetadataApi}. */
export interface MetadataApiOptions {
  /** Compute's service (the compute-api's in `up`): the API reads servers from its database. */
  compute: MetadataCompute;
  /** Default `compute.metadata.port` (8775); 0 takes a free port. */
  port?: number;
  /** Default `bind_host`. */
  host?: string;
  /** The proxy's shared secret (default {@link metadataSecret} of `config`). */
  secret?: string;
  logger?: Logger;
}

/** A running metadata API. */
export interface RunningMetadataApi {
  app: FastifyInstance;
  port: number;
  /** Stops listening (and, for the role, closes its database). */
  stop(): Promise<void>;
}

/** Nova's metadata errors are webob's plain text pages. */
const metadataFault: FaultFormatter = (error) => ({
  body: `${error.status} ${error.title}\n\n${error.message}\n\n   `,
  contentType: 'text/plain; charset=UTF-8',
});

const NOT_FOUND = 'The resource could not be found.';

/** Who is asking: the server and the address it asks from. */
interface Asker {
  row: InstanceRow;
  address: string | null;
}

function header(req: FastifyRequest, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

function firstForwarded(req: FastifyRequest): string | undefined {
  return header(req, 'x-forwarded-for')?.split(',')[0]?.trim() || undefined;
}

function remoteAddress(req: FastifyRequest): string {
  const address = req.socket.remoteAddress ?? '';
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

/**
 * Finds the server asking, as Nova's handler does, by the first of:
 * (a) Neutron's metadata proxy headers `X-Instance-ID`, `X-Tenant-ID` and
 * `X-Instance-ID-Signature` (hex HMAC-SHA256 of the instance id under the
 * shared secret): a missing header is a 400, a wrong signature a 403, a
 * tenant that is not the server's a 404; (b) `X-Forwarded-For` with
 * `X-Neutron-Network-ID` or `X-Neutron-Router-ID` (what Neutron's haproxy
 * sends its agent): the server with that fixed IP on that network (or on a
 * network of that router); (c) no proxy headers: the server whose fixed IP
 * is the connection's address. Unknown: 404.
 */
async function identify(compute: MetadataCompute, secret: string, req: FastifyRequest): Promise<Asker> {
  const instanceId = header(req, 'x-instance-id');
  const tenantId = header(req, 'x-tenant-id');
  const signature = header(req, 'x-instance-id-signature');
  if (instanceId !== undefined || tenantId !== undefined || signature !== undefined) {
    if (instanceId === undefined) throw new BadRequest('X-Instance-ID header is missing from request.');
    if (signature === undefined) throw new BadRequest('X-Instance-ID-Signature header is missing from request.');
    if (tenantId === undefined) throw new BadRequest('X-Tenant-ID header is missing from request.');
    if (instanceId.includes(',')) throw new BadRequest('Multiple X-Instance-ID headers found within request.');
    if (tenantId.includes(',')) throw new BadRequest('Multiple X-Tenant-ID headers found within request.');
    if (!validSignature(secret, instanceId, signature)) {
      req.log.warn({ instance_uuid: instanceId, forwarded_for: firstForwarded(req) }, 'X-Instance-ID-Signature does not match the instance id');
      throw new Forbidden('Invalid proxy request signature.');
    }
    const row = await instanceByUuid(compute, instanceId);
    if (!row) throw new NotFound(NOT_FOUND);
    if (row.project_id !== tenantId) {
      req.log.warn({ instance_uuid: instanceId, tenant_id: tenantId }, 'X-Tenant-ID does not match the tenant of the instance');
      throw new NotFound(NOT_FOUND);
    }
    return { row, address: firstForwarded(req) ?? null };
  }
  const forwarded = firstForwarded(req);
  const networkId = header(req, 'x-neutron-network-id');
  const routerId = header(req, 'x-neutron-router-id');
  if (forwarded !== undefined && (networkId !== undefined || routerId !== undefined)) {
    const networks = networkId !== undefined ? [networkId] : await routerNetworks(compute, routerId ?? '');
    const row = await instanceByFixedIp(compute, forwarded, networks);
    if (!row) throw new NotFound(NOT_FOUND);
    return { row, address: forwarded };
  }
  const address = remoteAddress(req);
  const row = await instanceByFixedIp(compute, address);
  if (!row) {
    req.log.info({ address }, 'no server has the fixed IP of this metadata request');
    throw new NotFound(NOT_FOUND);
  }
  return { row, address };
}

/** The networks a router has interfaces on (its `network:router_interface*` ports), from the network API. */
async function routerNetworks(compute: MetadataCompute, routerId: string): Promise<string[]> {
  if (!/^[0-9a-fA-F-]{1,64}$/.test(routerId)) return [];
  const res = await compute.client.request<{ ports?: { network_id: string; device_owner: string }[] }>('network', 'GET', `/v2.0/ports?device_id=${encodeURIComponent(routerId)}`);
  if (res.status >= 400) throw new ApiError(500, 'Internal Server Error', 'An unknown error has occurred. Please try your request again.');
  return (res.body.ports ?? []).filter((p) => p.device_owner.startsWith('network:router_interface')).map((p) => p.network_id);
}

/**
 * The `password` file: GET answers the stored (encrypted) password, POST
 * stores the body once (409 once set, 400 beyond Nova's 1020 bytes), other
 * methods are refused as Nova refuses them.
 */
async function handlePassword(compute: MetadataCompute, row: InstanceRow, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  reply.type('text/plain; charset=UTF-8');
  if (req.method === 'GET' || req.method === 'HEAD') return reply.send(await readServerPassword(compute.db, row.uuid));
  if (req.method !== 'POST') throw new BadRequest('GET and POST only are supported.');
  if ((await readServerPassword(compute.db, row.uuid)) !== '') throw new Conflict('There was a conflict when trying to complete your request.');
  const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
  if (body.length > MAX_PASSWORD_SIZE) throw new BadRequest('Request is too large.');
  if (!(await setServerPasswordOnce(compute.db, row.uuid, body.toString('utf8')))) throw new Conflict('There was a conflict when trying to complete your request.');
  req.log.info({ instance_uuid: row.uuid }, 'the guest set its password');
  return reply.send('');
}

/**
 * Builds the metadata API (nova-api-metadata) without listening: `GET /`
 * lists the EC2 versions to anyone; every other path is looked up in the
 * metadata of the server asking (see {@link lookupMetadata}), read from
 * compute's database on each request and rendered by the same functions as
 * the config drive. Bodies are text (JSON for `.json` files); errors are
 * Nova's plain-text pages.
 */
export function buildMetadataApp(config: StratusConfig, options: MetadataApiOptions): FastifyInstance {
  const { compute } = options;
  const secret = options.secret ?? metadataSecret(config);
  const mdOptions = metadataOptions(config);
  const app = createApiServer({ role: 'compute-metadata', logger: options.logger ?? compute.log, fault: metadataFault, bodyLimit: 64 * 1024 });
  // Guests post passwords with any content type, or none: the body is taken as bytes.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  app.all('/*', async (req, reply) => {
    const rawPath = safeDecode(req.url.split('?')[0] ?? '/');
    if (metadataPathTokens(rawPath).length === 0) return reply.type('text/plain; charset=UTF-8').send(rootListing());
    const asker = await identify(compute, secret, req);
    const info = await metadataInfoOf(compute, asker.row);
    const answer = lookupMetadata(info, mdOptions, rawPath, asker.address);
    switch (answer.kind) {
      case 'not-found':
        throw new NotFound(NOT_FOUND);
      case 'password':
        return handlePassword(compute, asker.row, req, reply);
      case 'data':
        return reply.type(answer.contentType).send(answer.body);
    }
  });
  return app;
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/**
 * Starts the metadata API on `compute.metadata.port` (or `options.port`) of
 * `bind_host`, over the compute service given (`up` passes the compute-api's).
 * Stopping it leaves that service's database open.
 */
export async function startMetadataApi(config: StratusConfig, options: MetadataApiOptions): Promise<RunningMetadataApi> {
  const app = buildMetadataApp(config, options);
  try {
    const port = await listen(app, options.host ?? config.bind_host, options.port ?? config.compute.metadata.port);
    return { app, port, stop: () => app.close() };
  } catch (err) {
    await app.close();
    throw err;
  }
}

/**
 * The `compute-metadata` role on its own (for `serve`): opens compute's
 * database and its service client as the other compute roles do, and
 * starts the metadata API on it (`compute.metadata.port`); `stop` closes both.
 */
export async function startMetadataRole(config: StratusConfig, bus: Bus, options: ComputeOptions): Promise<RunningMetadataApi> {
  const logger = options.logger ?? roleLogger('compute-metadata');
  const { compute, database } = await openCompute(config, bus, { ...options, logger }, 'compute-metadata');
  try {
    const api = await startMetadataApi(config, { compute, logger });
    return {
      app: api.app,
      port: api.port,
      async stop() {
        await api.stop();
        await database.close();
      },
    };
  } catch (err) {
    await database.close();
    throw err;
  }
}
