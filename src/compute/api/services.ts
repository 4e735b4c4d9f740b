import type { FastifyInstance, FastifyRequest } from 'fastify';
import { atLeast, authorize, contextOf, type ComputeService } from '../compute.js';
import { isUuid } from '../common.js';
import { badRequest, notFound } from '../errors.js';
import { deleteService, getService, listServices, serviceByHostBinary, updateService, type ServiceChanges, type ServiceState } from '../services.js';
import { booleanLike, checkKeys, checkText, checkQueryKeys, queryParam, invalidField, isObject, pyIsoTime, pyRepr, strictBool, type Obj } from './request-checks.js';

/**
 * `/os-services`: list (filter by `host`, `binary`), enable/disable/force
 * down compute services, delete. From 2.53 services are named by uuid and
 * updated with `PUT /os-services/{uuid}`; before, with
 * `PUT /os-services/{enable,disable,disable-log-reason,force-down}` and the
 * host and binary in the body.
 */

function serviceView(req: FastifyRequest, s: ServiceState): Record<string, unknown> {
  return {
    id: atLeast(req, '2.53') ? s.uuid : s.id,
    binary: s.binary,
    host: s.host,
    zone: s.zone,
    status: Number(s.disabled) === 1 ? 'disabled' : 'enabled',
    state: s.up ? 'up' : 'down',
    updated_at: pyIsoTime(s.updated_at),
    disabled_reason: s.disabled_reason,
    ...(atLeast(req, '2.11') ? { forced_down: Number(s.forced_down) === 1 } : {}),
  };
}

function requireCompute(binary: string): void {
  if (binary !== 'nova-compute') throw badRequest(`Updating a ${binary} service is not supported. Only nova-compute services can be updated.`);
}

function body(req: FastifyRequest): Obj {
  if (!isObject(req.body)) throw badRequest(`${pyRepr(req.body ?? null)} is not of type 'object'`);
  return req.body;
}

/** The 2.53 form: `PUT /os-services/{uuid}` with `status`, `disabled_reason` and/or `forced_down`. */
async function updateByUuid(compute: ComputeService, req: FastifyRequest, id: string): Promise<unknown> {
  const b = body(req);
  checkKeys(b, null, ['status', 'disabled_reason', 'forced_down']);
  if (b.status !== undefined && b.status !== 'enabled' && b.status !== 'disabled') throw invalidField('status', b.status, `${pyRepr(b.status)} is not one of ['enabled', 'disabled']`);
  const reason = b.disabled_reason === undefined ? undefined : checkText(b.disabled_reason, 'disabled_reason', 1, 255);
  const forcedDown = b.forced_down === undefined ? undefined : booleanLike(b.forced_down, 'forced_down');
  if (!isUuid(id)) throw badRequest(`Invalid uuid ${id}`);
  authorize(compute, contextOf(req), 'os-services:update');
  const service = await getService(compute.db, compute.config.compute, id);
  requireCompute(service.binary);
  const changes: ServiceChanges = {};
  if (b.status === 'enabled') {
    if (reason) throw badRequest("Specifying 'disabled_reason' with status 'enabled' is invalid.");
    Object.assign(changes, { disabled: false, disabled_reason: null });
  } else if (b.status === 'disabled') {
    Object.assign(changes, { disabled: true, disabled_reason: reason ?? null });
  }
  if (forcedDown !== undefined) changes.forced_down = forcedDown;
  if (Object.keys(changes).length === 0) throw badRequest("No updates were requested. Fields 'status' or 'forced_down' should be specified.");
  await updateService(compute.db, service, changes);
  return { service: serviceView(req, await getService(compute.db, compute.config.compute, service.uuid)) };
}

/** The forms before 2.53: `PUT /os-services/<action>` with `host` and `binary` in the body. */
async function updateByAction(compute: ComputeService, req: FastifyRequest, action: string): Promise<unknown> {
  const b = body(req);
  checkKeys(b, null, ['host', 'binary', 'disabled_reason', ...(atLeast(req, '2.11') ? ['forced_down'] : [])], ['host', 'binary']);
  const host = checkText(b.host, 'host', 1, 255);
  if (!/^[a-zA-Z0-9-._]*$/.test(host)) throw invalidField('host', host, `'${host}' does not match '^[a-zA-Z0-9-._]*$'`);
  const binary = checkText(b.binary, 'binary', 1, 255);
  const reason = b.disabled_reason === undefined ? undefined : checkText(b.disabled_reason, 'disabled_reason', 1, 255);
  if (b.forced_down !== undefined) booleanLike(b.forced_down, 'forced_down');
  authorize(compute, contextOf(req), 'os-services:update');
  const actions = ['enable', 'disable', 'disable-log-reason', ...(atLeast(req, '2.11') ? ['force-down'] : [])];
  if (!actions.includes(action)) throw notFound('Unknown action');
  if (action === 'disable-log-reason' && reason === undefined) throw badRequest('Missing disabled reason field');
  if (action === 'force-down' && b.forced_down === undefined) throw badRequest('Missing forced_down field');
  requireCompute(binary);
  const service = await serviceByHostBinary(compute.db, host, binary);
  switch (action) {
    case 'enable':
      await updateService(compute.db, service, { disabled: false, disabled_reason: null });
      return { service: { host, binary, status: 'enabled' } };
    case 'disable':
      await updateService(compute.db, service, { disabled: true, disabled_reason: null });
      return { service: { host, binary, status: 'disabled' } };
    case 'disable-log-reason':
      await updateService(compute.db, service, { disabled: true, disabled_reason: reason ?? null });
      return { service: { host, binary, status: 'disabled', disabled_reason: reason } };
    default: {
      const forcedDown = strictBool(String(b.forced_down)) ?? false;
      await updateService(compute.db, service, { forced_down: forcedDown });
      return { service: { host, binary, forced_down: forcedDown } };
    }
  }
}

/** Registers `/os-services`. */
export function registerServices(app: FastifyInstance, compute: ComputeService): void {
  app.get('/v2.1/os-services', async (req) => {
    checkQueryKeys(req, ['host', 'binary'], atLeast(req, '2.75'));
    authorize(compute, contextOf(req), 'os-services:list');
    const services = await listServices(compute.db, compute.config.compute, { host: queryParam(req, 'host'), binary: queryParam(req, 'binary') });
    return { services: services.map((s) => serviceView(req, s)) };
  });

  app.put<{ Params: { id: string } }>('/v2.1/os-services/:id', async (req) =>
    atLeast(req, '2.53') ? updateByUuid(compute, req, req.params.id) : updateByAction(compute, req, req.params.id),
  );

  app.delete<{ Params: { id: string } }>('/v2.1/os-services/:id', async (req, reply) => {
    authorize(compute, contextOf(req), 'os-services:delete');
    const id = req.params.id;
    let key: string | number = id;
    if (atLeast(req, '2.53')) {
      if (!isUuid(id)) throw badRequest(`Invalid uuid ${id}`);
    } else {
      if (!/^\s*[-+]?\d+\s*$/.test(id)) throw badRequest('Invalid input received: id must be an integer');
      key = Number(id);
    }
    let service: ServiceState;
    try {
      service = await getService(compute.db, compute.config.compute, key);
    } catch {
      throw notFound(`Service ${id} not found.`);
    }
    const nodes = await deleteService(compute.db, service);
    for (const uuid of nodes) {
      // Nova removes the node's resource provider too; a failure is logged, the service stays deleted.
      await compute.client.request('placement', 'DELETE', `resource_providers/${uuid}`, { requestId: req.requestId }).catch((err: unknown) => {
        compute.log.warn({ err, uuid }, 'could not delete the resource provider of a deleted compute service');
      });
    }
    return reply.code(204).send();
  });
}
