import { ApiError } from '../core/errors.js';
import type { Fault } from '../core/http/faults.js';

/**
 * A Neutron error: the HTTP status, Neutron's exception name (`type`, what
 * clients match on: `NetworkNotFound`, `IpAddressGenerationFailure`, ...) and
 * the message. Written as `{"NeutronError": {"type", "message", "detail"}}`.
 */
export class NeutronError extends ApiError {
  constructor(
    status: number,
    readonly type: string,
    message: string,
  ) {
    super(status, TITLES[status] ?? 'Error', message);
  }
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  413: 'Request Entity Too Large',
  415: 'Unsupported Media Type',
  501: 'Not Implemented',
  503: 'Service Unavailable',
};

/** The `type` Neutron writes for errors raised outside its own exceptions (webob's). */
const WEBOB_TYPES: Record<number, string> = {
  400: 'HTTPBadRequest',
  401: 'HTTPUnauthorized',
  403: 'HTTPForbidden',
  404: 'HTTPNotFound',
  405: 'HTTPMethodNotAllowed',
  406: 'HTTPNotAcceptable',
  409: 'HTTPConflict',
  413: 'HTTPRequestEntityTooLarge',
  415: 'HTTPUnsupportedMediaType',
  501: 'HTTPNotImplemented',
  503: 'HTTPServiceUnavailable',
};

/** Neutron's fault body. A 404 of an unknown URL is webob's plain one. */
export function neutronFault(error: ApiError): Fault {
  const type = error instanceof NeutronError ? error.type : error.status === 403 && error.message.includes('policy') ? 'PolicyNotAuthorized' : (WEBOB_TYPES[error.status] ?? 'HTTPInternalServerError');
  return { body: { NeutronError: { type, message: error.message, detail: '' } } };
}

/** 400 `HTTPBadRequest`: `Invalid input for <attr>. Reason: <reason>.` and the like. */
export function badRequest(message: string, type = 'HTTPBadRequest'): NeutronError {
  return new NeutronError(400, type, message);
}

/** 400 for an attribute value: Neutron's `InvalidInput` wording. */
export function invalidInput(attribute: string, reason: string): NeutronError {
  return new NeutronError(400, 'HTTPBadRequest', `Invalid input for ${attribute}. Reason: ${reason}.`);
}

export function conflict(type: string, message: string): NeutronError {
  return new NeutronError(409, type, message);
}

/** The kinds of resource and how Neutron names them in its not-found errors. */
const NOT_FOUND: Record<string, [string, (id: string) => string]> = {
  network: ['NetworkNotFound', (id) => `Network ${id} could not be found.`],
  subnet: ['SubnetNotFound', (id) => `Subnet ${id} could not be found.`],
  subnetpool: ['SubnetPoolNotFound', (id) => `Subnet pool ${id} could not be found.`],
  port: ['PortNotFound', (id) => `Port ${id} could not be found.`],
  router: ['RouterNotFound', (id) => `Router ${id} could not be found`],
  floatingip: ['FloatingIPNotFound', (id) => `Floating IP ${id} could not be found`],
  security_group: ['SecurityGroupNotFound', (id) => `Security group ${id} does not exist`],
  security_group_rule: ['SecurityGroupRuleNotFound', (id) => `Security group rule ${id} does not exist`],
  agent: ['AgentNotFound', (id) => `Agent ${id} could not be found.`],
};

/** 404 for a resource that does not exist, or that the caller may not see (Neutron never says which). */
export function notFound(kind: string, id: string): NeutronError {
  const entry = NOT_FOUND[kind];
  if (!entry) return new NeutronError(404, 'HTTPNotFound', `The resource could not be found.`);
  return new NeutronError(404, entry[0], entry[1](id));
}

/** 409 `OverQuota`: `Quota exceeded for resources: ['port'].` */
export function overQuota(resource: string): NeutronError {
  return new NeutronError(409, 'OverQuota', `Quota exceeded for resources: ['${resource}'].`);
}
