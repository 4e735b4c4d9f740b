import type { FastifyRequest } from 'fastify';
import type { ApiError } from '../errors.js';

/** What an API writes for an error: its body and any extra headers. */
export interface Fault {
  /** JSON-encoded unless `contentType` says otherwise (then a string). */
  body: unknown;
  headers?: Record<string, string>;
  /** Default `application/json`. */
  contentType?: string;
}

/**
 * Turns a typed error into the body a particular OpenStack API returns; the
 * request is there for APIs whose error format follows `Accept` (Glance's).
 */
export type FaultFormatter = (error: ApiError, req?: FastifyRequest) => Fault;

/** Keystone: `{"error": {"code": 404, "title": "Not Found", "message": "..."}}`. */
export const keystoneFault: FaultFormatter = (error) => ({
  body: { error: { code: error.status, title: error.title, message: error.message } },
});

const NOVA_KEYS: Record<number, string> = {
  400: 'badRequest',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'itemNotFound',
  405: 'badMethod',
  406: 'notAcceptable',
  409: 'conflictingRequest',
  413: 'overLimit',
  415: 'badMediaType',
  429: 'overLimit',
  501: 'notImplemented',
  503: 'serviceUnavailable',
};

/**
 * Nova, Cinder and Placement-style: `{"itemNotFound": {"code": 404, "message": "..."}}`
 * (5xx without a specific key is `computeFault`).
 */
export const novaFault: FaultFormatter = (error) => ({
  body: { [NOVA_KEYS[error.status] ?? 'computeFault']: { code: error.status, message: error.message } },
});

const NEUTRON_TYPES: Record<number, string> = {
  400: 'BadRequest',
  401: 'NotAuthorized',
  403: 'PolicyNotAuthorized',
  404: 'NotFound',
  409: 'Conflict',
  413: 'OverQuota',
  503: 'ServiceUnavailable',
};

/** Neutron: `{"NeutronError": {"type": "...", "message": "...", "detail": ""}}`. */
export const neutronFault: FaultFormatter = (error) => ({
  body: { NeutronError: { type: NEUTRON_TYPES[error.status] ?? 'HTTPInternalServerError', message: error.message, detail: '' } },
});
