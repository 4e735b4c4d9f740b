import { BadRequest } from '../core/errors.js';
import { CONTAINER_FORMATS, DISK_FORMATS } from './common.js';

/** The subset of JSON Schema that Glance's documents use. */
export interface PropertySchema {
  type: string | string[];
  description?: string;
  enum?: (string | null)[];
  maxLength?: number;
  minimum?: number;
  pattern?: string;
  readOnly?: boolean;
  is_base?: boolean;
  items?: PropertySchema | Record<string, unknown>;
  [key: string]: unknown;
}

const UUID = '^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$';

/** The base properties of an image, as `/v2/schemas/image` publishes them. */
export const BASE_PROPERTIES: Record<string, PropertySchema> = {
  id: { type: 'string', description: 'An identifier for the image', pattern: UUID },
  name: { type: ['null', 'string'], description: 'Descriptive name for the image', maxLength: 255 },
  status: {
    type: 'string',
    description: 'Status of the image',
    readOnly: true,
    enum: ['queued', 'saving', 'active', 'killed', 'deleted', 'uploading', 'importing', 'pending_delete', 'deactivated'],
  },
  visibility: { type: 'string', description: 'Scope of image accessibility', enum: ['community', 'public', 'private', 'shared'] },
  protected: { type: 'boolean', description: 'If true, image will not be deletable.' },
  os_hidden: { type: 'boolean', description: 'If true, image will not appear in default image list response.' },
  checksum: { type: ['null', 'string'], description: 'md5 hash of image contents.', readOnly: true, maxLength: 32 },
  os_hash_algo: { type: ['null', 'string'], description: 'Algorithm to calculate the os_hash_value', readOnly: true, maxLength: 64 },
  os_hash_value: { type: ['null', 'string'], description: 'Hexdigest of the image contents using the algorithm specified by the os_hash_algo', readOnly: true, maxLength: 128 },
  owner: { type: ['null', 'string'], description: 'Owner of the image', maxLength: 255 },
  size: { type: ['null', 'integer'], description: 'Size of image file in bytes', readOnly: true },
  virtual_size: { type: ['null', 'integer'], description: 'Virtual size of image in bytes', readOnly: true },
  container_format: { type: ['null', 'string'], description: 'Format of the container', enum: [null, ...CONTAINER_FORMATS] },
  disk_format: { type: ['null', 'string'], description: 'Format of the disk', enum: [null, ...DISK_FORMATS] },
  created_at: { type: 'string', description: 'Date and time of image registration', readOnly: true },
  updated_at: { type: 'string', description: 'Date and time of the last image modification', readOnly: true },
  tags: { type: 'array', description: 'List of strings related to the image', items: { type: 'string', maxLength: 255 } },
  direct_url: { type: 'string', description: 'URL to access the image file kept in external store', readOnly: true },
  min_ram: { type: 'integer', description: 'Amount of ram (in MB) required to boot image.' },
  min_disk: { type: 'integer', description: 'Amount of disk space (in GB) required to boot image.' },
  self: { type: 'string', description: 'An image self url', readOnly: true },
  file: { type: 'string', description: 'An image file url', readOnly: true },
  stores: { type: 'string', description: 'Store in which image data resides. Only present when the operator has enabled multiple stores. May be a comma-separated list of store identifiers.', readOnly: true },
  schema: { type: 'string', description: 'An image schema url', readOnly: true },
  locations: {
    type: 'array',
    description: 'A set of URLs to access the image file kept in external store',
    items: {
      type: 'object',
      properties: { url: { type: 'string', maxLength: 255 }, metadata: { type: 'object' }, validation_data: { type: 'object' } },
      required: ['url', 'metadata'],
    },
  },
};

/** Well-known additional properties that Glance's schema describes (all strings). */
const KNOWN_PROPERTIES: Record<string, PropertySchema> = {
  kernel_id: { type: ['null', 'string'], pattern: UUID, description: 'ID of image stored in Glance that should be used as the kernel when booting an AMI-style image.', is_base: false },
  ramdisk_id: { type: ['null', 'string'], pattern: UUID, description: 'ID of image stored in Glance that should be used as the ramdisk when booting an AMI-style image.', is_base: false },
  instance_uuid: { type: 'string', description: 'Metadata which can be used to record which instance this image is associated with. (Informational only, does not create an instance snapshot.)', is_base: false },
  architecture: { type: 'string', description: 'Operating system architecture', is_base: false },
  os_distro: { type: 'string', description: 'Common name of operating system distribution', is_base: false },
  os_version: { type: 'string', description: 'Operating system version as specified by the distributor', is_base: false },
  description: { type: 'string', description: 'A human-readable string describing this image.', is_base: false },
  cinder_encryption_key_id: { type: 'string', description: 'Identifier in the OpenStack Key Management Service for the encryption key for the Block Storage Service to use when mounting a volume created from this image', is_base: false },
  cinder_encryption_key_deletion_policy: { type: 'string', enum: ['on_image_deletion', 'do_not_delete'], description: 'States the condition under which the Image Service will delete the object associated with the cinder_encryption_key_id image property.', is_base: false },
};

const LINKS = [
  { rel: 'self', href: '{self}' },
  { rel: 'enclosure', href: '{file}' },
  { rel: 'describedby', href: '{schema}' },
];

export function imageSchema(): Record<string, unknown> {
  return { name: 'image', properties: { ...BASE_PROPERTIES, ...KNOWN_PROPERTIES }, additionalProperties: { type: 'string' }, links: LINKS };
}

export function imagesSchema(): Record<string, unknown> {
  return {
    name: 'images',
    properties: {
      images: { type: 'array', items: imageSchema() },
      schema: { type: 'string' },
      first: { type: 'string' },
      next: { type: 'string' },
    },
    links: [
      { rel: 'first', href: '{first}' },
      { rel: 'next', href: '{next}' },
      { rel: 'describedby', href: '{schema}' },
    ],
  };
}

export function memberSchema(): Record<string, unknown> {
  return {
    name: 'member',
    properties: {
      created_at: { type: 'string', description: 'Date and time of image member creation' },
      image_id: { type: 'string', description: 'An identifier for the image', pattern: UUID },
      member_id: { type: 'string', description: 'An identifier for the image member (tenantId)' },
      status: { type: 'string', description: 'The status of this image member', enum: ['pending', 'accepted', 'rejected'] },
      updated_at: { type: 'string', description: 'Date and time of last modification of image member' },
      schema: { type: 'string', readOnly: true },
    },
  };
}

export function membersSchema(): Record<string, unknown> {
  return {
    name: 'members',
    properties: { members: { type: 'array', items: memberSchema() }, schema: { type: 'string' } },
    links: [{ rel: 'describedby', href: '{schema}' }],
  };
}

export function taskSchema(): Record<string, unknown> {
  return {
    name: 'task',
    properties: {
      id: { type: 'string', description: 'An identifier for the task', pattern: UUID },
      type: { type: 'string', description: 'The type of task represented by this content', enum: ['import', 'api_image_import'] },
      status: { type: 'string', description: 'The current status of this task', enum: ['pending', 'processing', 'success', 'failure'] },
      input: { type: ['null', 'object'], description: 'The parameters required by task, JSON blob' },
      result: { type: ['null', 'object'], description: 'The result of current task, JSON blob' },
      owner: { type: 'string', description: 'An identifier for the owner of this task' },
      message: { type: 'string', description: 'Human-readable informative message only included when appropriate (usually on failure)' },
      image_id: { type: 'string', description: 'Image associated with the task', readOnly: true },
      request_id: { type: 'string', description: 'Human-readable informative request-id', readOnly: true },
      user_id: { type: 'string', description: 'User associated with the task', readOnly: true },
      expires_at: { type: ['null', 'string'], description: 'Datetime when this resource would be subject to removal' },
      created_at: { type: 'string', description: 'Datetime when this resource was created' },
      updated_at: { type: 'string', description: 'Datetime when this resource was updated' },
      self: { type: 'string' },
      schema: { type: 'string' },
    },
    required: ['type', 'input'],
    links: [
      { rel: 'self', href: '{self}' },
      { rel: 'describedby', href: '{schema}' },
    ],
  };
}

export function tasksSchema(): Record<string, unknown> {
  return {
    name: 'tasks',
    properties: { tasks: { type: 'array', items: taskSchema() }, schema: { type: 'string' }, first: { type: 'string' }, next: { type: 'string' } },
    links: [
      { rel: 'first', href: '{first}' },
      { rel: 'next', href: '{next}' },
      { rel: 'describedby', href: '{schema}' },
    ],
  };
}

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

/** Checks one value against a property schema; a message naming what is wrong, or null. */
function problem(value: unknown, schema: PropertySchema | Record<string, unknown>): string | null {
  const types = schema.type === undefined ? [] : Array.isArray(schema.type) ? (schema.type as string[]) : [schema.type as string];
  const actual = typeOf(value);
  if (types.length && !types.includes(actual) && !(actual === 'integer' && types.includes('number'))) {
    return `${JSON.stringify(value)} is not of type ${types.map((t) => `'${t}'`).join(', ')}`;
  }
  if (Array.isArray(schema.enum) && !schema.enum.includes(value as string | null)) return `${JSON.stringify(value)} is not one of ${JSON.stringify(schema.enum)}`;
  if (typeof value === 'string') {
    if (typeof schema.maxLength === 'number' && value.length > schema.maxLength) return `${JSON.stringify(value)} is too long`;
    if (typeof schema.pattern === 'string' && !new RegExp(schema.pattern).test(value)) return `${JSON.stringify(value)} does not match ${JSON.stringify(schema.pattern)}`;
  }
  if (typeof value === 'number' && typeof schema.minimum === 'number' && value < schema.minimum) return `${value} is less than the minimum of ${schema.minimum}`;
  if (Array.isArray(value) && schema.items && typeof schema.items === 'object') {
    for (const item of value) {
      const inner = problem(item, schema.items as PropertySchema);
      if (inner) return inner;
    }
  }
  return null;
}

/**
 * Validates image properties as Glance's image schema does: base properties
 * by their types, well-known ones by theirs, every other one must be a
 * string. Throws 400 "Provided object does not match schema 'image'".
 */
export function validateImageProperties(properties: Record<string, unknown>): void {
  for (const [name, value] of Object.entries(properties)) {
    const schema = BASE_PROPERTIES[name] ?? KNOWN_PROPERTIES[name] ?? { type: 'string' };
    let message = problem(value, schema);
    if (!message && (name === 'min_ram' || name === 'min_disk') && typeof value === 'number' && value < 0) message = `${value} is less than the minimum of 0`;
    if (message) throw new BadRequest(`Provided object does not match schema 'image': ${message}\n\nFailed validating '${name}'`);
  }
}
