import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import type { FastifyRequest } from 'fastify';
import { PlacementError, badRequest } from './errors.js';
import { isUuidLike } from './placement.js';

/**
 * Request checks as placement makes them: JSON bodies against JSON schemas
 * (`JSON does not validate: ...`), query strings against the keys each
 * microversion knows (`Invalid query string parameters: ...`), and the media
 * types of bodies and answers.
 */

const ajv = new Ajv({ strict: false, allErrors: false, verbose: true });
ajv.addFormat('uuid', { type: 'string', validate: (value: string) => isUuidLike(value) });

const compiled = new WeakMap<object, ValidateFunction>();

/** A JSON schema, as a plain object (compiled once, on first use). */
export type JsonSchema = Record<string, unknown>;

function validatorFor(schema: JsonSchema): ValidateFunction {
  let validate = compiled.get(schema);
  if (!validate) {
    validate = ajv.compile(schema);
    compiled.set(schema, validate);
  }
  return validate;
}

/** Something close to python-jsonschema's wording of the first error (placement echoes it). */
function describe(error: ErrorObject | undefined): string {
  if (!error) return 'invalid';
  const params = error.params as Record<string, unknown>;
  const where = error.instancePath ? ` at ${error.instancePath}` : '';
  switch (error.keyword) {
    case 'required':
      return `'${String(params.missingProperty)}' is a required property${where}`;
    case 'additionalProperties':
      return `Additional properties are not allowed ('${String(params.additionalProperty)}' was unexpected)${where}`;
    case 'type':
      return `${JSON.stringify(error.data)} is not of type '${String(params.type)}'${where}`;
    case 'enum':
      return `${JSON.stringify(error.data)} is not one of ${JSON.stringify(params.allowedValues)}${where}`;
    case 'pattern':
      return `${JSON.stringify(error.data)} does not match '${String(params.pattern)}'${where}`;
    case 'format':
      return `${JSON.stringify(error.data)} is not a '${String(params.format)}'${where}`;
    default:
      return `${JSON.stringify(error.data)} ${error.message ?? 'is not valid'}${where}`;
  }
}

/** True when the request says its body is JSON (`require_content`): 415 otherwise. */
export function requireJson(req: FastifyRequest): void {
  const type = req.headers['content-type'];
  const media = typeof type === 'string' ? type.split(';')[0]?.trim().toLowerCase() : '';
  if (media !== 'application/json') {
    throw new PlacementError(415, `The media type ${media || 'None'} is not supported, use application/json`);
  }
}

/**
 * The request's JSON body checked against a schema; 415 when it is not JSON,
 * 400 when it is missing or does not validate.
 */
export function jsonBody<T>(req: FastifyRequest, schema: JsonSchema): T {
  requireJson(req);
  const body: unknown = req.body;
  if (body === undefined) throw badRequest('Malformed JSON: the request body is empty.');
  const validate = validatorFor(schema);
  if (!validate(body)) throw badRequest(`JSON does not validate: ${describe(validate.errors?.[0])}`);
  return body as T;
}

/** Checks a value (not a request body) against a schema; true when valid. */
export function matches(value: unknown, schema: JsonSchema): boolean {
  return validatorFor(schema)(value) === true;
}

/** 406 when the caller accepts no JSON (`check_accept`). */
export function requireJsonAccepted(req: FastifyRequest): void {
  const accept = req.headers.accept;
  if (typeof accept !== 'string' || accept.trim() === '') return;
  const ok = accept.split(',').some((part) => {
    const media = part.split(';')[0]?.trim().toLowerCase() ?? '';
    return media === 'application/json' || media === '*/*' || media === 'application/*';
  });
  if (!ok) throw new PlacementError(406, 'Only application/json is provided');
}

/** The query string of a request, keys in order with every repeated value. */
export function queryOf(req: FastifyRequest): URLSearchParams {
  const at = req.url.indexOf('?');
  return new URLSearchParams(at < 0 ? '' : req.url.slice(at + 1));
}

/**
 * Refuses keys the microversion does not know (`allowed` is a key or a
 * pattern), as placement's query schemas with `additionalProperties: false`.
 */
export function checkQueryKeys(query: URLSearchParams, allowed: (string | RegExp)[]): void {
  for (const key of new Set(query.keys())) {
    const ok = allowed.some((a) => (typeof a === 'string' ? a === key : a.test(key)));
    if (!ok) throw badRequest(`Invalid query string parameters: Additional properties are not allowed ('${key}' was unexpected)`);
  }
}

/** The last value of a query key (what placement's schemas see), or undefined. */
export function lastValue(query: URLSearchParams, key: string): string | undefined {
  const all = query.getAll(key);
  return all.length > 0 ? all[all.length - 1] : undefined;
}
