import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { BadRequest, Forbidden } from '../../core/errors.js';

/**
 * The JSON schemas of the metadata definitions API, as `/v2/schemas/metadefs/*`
 * publishes them, and the request validation that uses the same documents
 * (so that what a client reads is what the server enforces).
 */
type Json = Record<string, unknown>;

/** JSON types a property definition may declare (`null` included, as in Glance). */
const PROPERTY_TYPES = ['array', 'boolean', 'integer', 'number', 'object', 'string', null];

const positiveInteger: Json = { type: 'integer', minimum: 0 };
const positiveIntegerDefault0: Json = { allOf: [{ $ref: '#/definitions/positiveInteger' }, { default: 0 }] };
const stringArray = (minItems?: number): Json => ({ type: 'array', items: { type: 'string' }, uniqueItems: true, ...(minItems ? { minItems } : {}) });
const readOnlyTime = (what: string): Json => ({ type: 'string', readOnly: true, format: 'date-time', description: what });
const readOnlyString: Json = { type: 'string', readOnly: true };

/** The keywords of one property definition (a subset of JSON Schema's). */
function propertyFields(): Json {
  return {
    name: { type: 'string', maxLength: 80 },
    title: { type: 'string' },
    description: { type: 'string' },
    operators: { type: 'array', items: { type: 'string' } },
    type: { type: 'string', enum: PROPERTY_TYPES },
    required: { $ref: '#/definitions/stringArray' },
    minimum: { type: 'number' },
    maximum: { type: 'number' },
    maxLength: { $ref: '#/definitions/positiveInteger' },
    minLength: { $ref: '#/definitions/positiveIntegerDefault0' },
    pattern: { type: 'string', format: 'regex' },
    enum: { type: 'array' },
    readonly: { type: 'boolean' },
    default: {},
    items: { type: 'object', properties: { type: { type: 'string', enum: PROPERTY_TYPES }, enum: { type: 'array' } } },
    maxItems: { $ref: '#/definitions/positiveInteger' },
    minItems: { $ref: '#/definitions/positiveIntegerDefault0' },
    uniqueItems: { type: 'boolean', default: false },
    additionalItems: { type: 'boolean' },
  };
}

/** Definitions shared by the namespace and object documents. */
function namespaceDefinitions(): Json {
  return {
    positiveInteger,
    positiveIntegerDefault0,
    stringArray: stringArray(),
    property: { type: 'object', additionalProperties: { type: 'object', required: ['title', 'type'], properties: propertyFields() } },
  };
}

function namespaceProperties(): Json {
  return {
    namespace: { type: 'string', maxLength: 80, description: 'The name of the namespace, unique in the cloud.' },
    display_name: { type: 'string', maxLength: 80, description: 'A friendly name for the namespace, for user interfaces.' },
    description: { type: 'string', maxLength: 500, description: 'What the namespace describes, for users.' },
    visibility: { type: 'string', enum: ['public', 'private'], description: 'Who can see the namespace: everyone (public) or its owner only (private).' },
    protected: { type: 'boolean', description: 'When true, the namespace and what it holds cannot be deleted.' },
    owner: { type: 'string', maxLength: 255, description: 'The project that owns the namespace.' },
    created_at: readOnlyTime('When the namespace was created'),
    updated_at: readOnlyTime('When the namespace was last changed'),
    schema: readOnlyString,
    self: readOnlyString,
    resource_type_associations: {
      type: 'array',
      items: { type: 'object', properties: { name: { type: 'string' }, prefix: { type: 'string' }, properties_target: { type: 'string' } } },
    },
    properties: { $ref: '#/definitions/property' },
    objects: {
      type: 'array',
      items: {
        type: 'object',
        properties: { name: { type: 'string' }, description: { type: 'string' }, required: { $ref: '#/definitions/stringArray' }, properties: { $ref: '#/definitions/property' } },
      },
    },
    tags: { type: 'array', items: { type: 'object', properties: { name: { type: 'string' } } } },
  };
}

/** A single-entity document: Glance's `Schema.raw()` shape. */
function entity(name: string, properties: Json, required: string[], definitions?: Json): Json {
  return { name, properties, additionalProperties: false, ...(definitions ? { definitions } : {}), required };
}

const LINKS = [
  { rel: 'first', href: '{first}' },
  { rel: 'next', href: '{next}' },
  { rel: 'describedby', href: '{schema}' },
];

/** A collection document: the items' schema inlined, its definitions hoisted to the top. */
function collection(name: string, item: Json, shape: 'array' | 'dict'): Json {
  const { definitions, ...inner } = item;
  const members = shape === 'array' ? { type: 'array', items: inner } : { type: 'object', additionalProperties: inner };
  return {
    name,
    properties: { [name]: members, first: { type: 'string' }, next: { type: 'string' }, schema: { type: 'string' } },
    links: LINKS,
    ...(definitions ? { definitions } : {}),
  };
}

export function namespaceSchema(): Json {
  return entity('namespace', namespaceProperties(), ['namespace'], namespaceDefinitions());
}

export function objectSchema(): Json {
  return entity(
    'object',
    {
      name: { type: 'string', maxLength: 80 },
      description: { type: 'string' },
      required: { $ref: '#/definitions/stringArray' },
      properties: { $ref: '#/definitions/property' },
      schema: readOnlyString,
      self: readOnlyString,
      created_at: readOnlyTime('When the object was created'),
      updated_at: readOnlyTime('When the object was last changed'),
    },
    ['name'],
    namespaceDefinitions(),
  );
}

/** `withName`: a property on its own names itself; inside a collection the name is the key. */
export function propertySchema(withName = true): Json {
  return entity('property', propertyFields(), withName ? ['type', 'title', 'name'] : ['type', 'title'], { positiveInteger, positiveIntegerDefault0, stringArray: stringArray(1) });
}

export function tagSchema(): Json {
  return entity('tag', { name: { type: 'string', maxLength: 80 }, created_at: readOnlyTime('When the tag was created'), updated_at: readOnlyTime('When the tag was last changed') }, ['name']);
}

export function resourceTypeSchema(): Json {
  return entity(
    'resource_type_association',
    {
      name: { type: 'string', maxLength: 80, description: 'The resource type, named as in Heat where there is such a name (OS::Glance::Image, OS::Nova::Flavor, ...).' },
      prefix: { type: 'string', maxLength: 80, description: 'What the namespace\'s property names take in front on this resource type, separator included (hw_, hw:, ...).' },
      properties_target: {
        type: 'string',
        maxLength: 80,
        description: 'Which of the resource\'s key/value sets the properties go to when it has several (a volume has metadata and image metadata: image).',
      },
      created_at: readOnlyTime('When the association was made'),
      updated_at: readOnlyTime('When the association was last changed'),
    },
    ['name'],
  );
}

/** The documents served under `/v2/schemas/metadefs/`, by name. */
export const METADEF_SCHEMAS: Record<string, () => Json> = {
  namespace: namespaceSchema,
  namespaces: () => collection('namespaces', namespaceSchema(), 'array'),
  resource_type: resourceTypeSchema,
  resource_types: () => collection('resource_type_associations', resourceTypeSchema(), 'array'),
  object: objectSchema,
  objects: () => collection('objects', objectSchema(), 'array'),
  property: propertySchema,
  properties: () => collection('properties', propertySchema(false), 'dict'),
  tag: tagSchema,
  tags: () => collection('tags', tagSchema(), 'array'),
};

// ---------------------------------------------------------------- validation

/** The body of `POST .../tags`: a list of tags, each a name only. */
function tagListSchema(): Json {
  return {
    name: 'tags',
    type: 'object',
    properties: { tags: { type: 'array', items: { type: 'object', properties: { name: { type: 'string', maxLength: 80 } }, required: ['name'], additionalProperties: false } } },
    required: ['tags'],
    additionalProperties: false,
  };
}

const ajv = new Ajv({ strict: false, allErrors: false, verbose: true, validateFormats: false });

/** What a body is checked against: the schema, and the attributes that only the server sets (403). */
interface BodyCheck {
  name: string;
  validate: ValidateFunction;
  readOnly: string[];
}

const check = (name: string, schema: Json, readOnly: string[]): BodyCheck => ({ name, validate: ajv.compile({ type: 'object', ...schema }), readOnly });

export const BODIES = {
  namespace: check('namespace', namespaceSchema(), ['self', 'schema', 'created_at', 'updated_at']),
  object: check('object', objectSchema(), ['self', 'schema', 'created_at', 'updated_at']),
  property: check('property', propertySchema(), ['created_at', 'updated_at']),
  /** A property inside an object, named by its key. */
  objectProperty: check('property', propertySchema(false), []),
  tag: check('tag', tagSchema(), ['created_at', 'updated_at']),
  tags: check('tags', tagListSchema(), ['created_at', 'updated_at']),
  resourceType: check('resource_type_association', resourceTypeSchema(), ['created_at', 'updated_at']),
};

/** Says what is wrong in the words of Python's jsonschema, which Glance's clients have seen for years. */
function reason(error: ErrorObject): string {
  const params = error.params as Record<string, unknown>;
  const data = JSON.stringify(error.data);
  switch (error.keyword) {
    case 'required':
      return `'${String(params.missingProperty)}' is a required property`;
    case 'additionalProperties':
      return `Additional properties are not allowed ('${String(params.additionalProperty)}' was unexpected)`;
    case 'type':
      return `${data} is not of type '${String(params.type)}'`;
    case 'enum':
      return `${data} is not one of ${JSON.stringify(params.allowedValues)}`;
    case 'maxLength':
      return `${data} is too long`;
    case 'minItems':
      return `${data} is too short`;
    case 'uniqueItems':
      return `${data} has non-unique elements`;
    case 'minimum':
      return `${data} is less than the minimum of ${String(params.limit)}`;
    default:
      return error.message ?? 'is not valid';
  }
}

/**
 * Checks a request body: present (400), no server-set attributes (403, as
 * Glance), then the schema (400 naming the field and the reason). Returns
 * the body as an object.
 */
export function validateBody(body: unknown, what: BodyCheck): Json {
  if (body === undefined || body === null) throw new BadRequest('Body expected in request.');
  if (typeof body === 'object' && !Array.isArray(body)) {
    for (const key of what.readOnly) if (key in body) throw new Forbidden(`Attribute '${key}' is read-only.`);
  }
  if (!what.validate(body)) {
    const error = what.validate.errors?.[0];
    const where = error?.instancePath ? ` (at '${error.instancePath.slice(1).replaceAll('/', '.')}')` : '';
    throw new BadRequest(`Provided object does not match schema '${what.name}': ${error ? reason(error) : 'invalid'}${where}`);
  }
  return body as Json;
}
