import type { FastifyInstance, FastifyRequest } from 'fastify';
import { authorize, type ImageService } from '../image.js';
import { imageSchema, imagesSchema, memberSchema, membersSchema, taskSchema, tasksSchema } from '../schemas.js';

/**
 * The versions this service speaks. Glance without its image cache stops at
 * 2.15 (2.14 and 2.16 add the cache API); with several stores it also
 * offers 2.8 to 2.13.
 */
const VERSIONS: [string, string][] = [
  ['2.15', 'CURRENT'],
  ['2.13', 'SUPPORTED'],
  ['2.12', 'SUPPORTED'],
  ['2.11', 'SUPPORTED'],
  ['2.10', 'SUPPORTED'],
  ['2.9', 'SUPPORTED'],
  ['2.8', 'SUPPORTED'],
  ['2.7', 'SUPPORTED'],
  ['2.6', 'SUPPORTED'],
  ['2.5', 'SUPPORTED'],
  ['2.4', 'SUPPORTED'],
  ['2.3', 'SUPPORTED'],
  ['2.2', 'SUPPORTED'],
  ['2.1', 'SUPPORTED'],
  ['2.0', 'SUPPORTED'],
];

function versions(images: ImageService, req: FastifyRequest): Record<string, unknown> {
  // Links follow the address the client used, as Glance's do without a configured public endpoint.
  const host = req.headers.host ? `${req.protocol}://${req.headers.host}` : images.publicUrl;
  return { versions: VERSIONS.map(([id, status]) => ({ id: `v${id}`, status, links: [{ rel: 'self', href: `${host}/v2/` }] })) };
}

/** Version discovery, the JSON schemas, and what the service offers (`/v2/info/...`). */
export function registerDiscovery(app: FastifyInstance, images: ImageService): void {
  app.get('/', { config: { public: true } }, async (req, reply) => reply.code(300).send(versions(images, req)));
  app.get('/versions', { config: { public: true } }, async (req) => versions(images, req));
  app.get('/v2', { config: { public: true } }, async (req, reply) => reply.code(300).send(versions(images, req)));

  const schemas: Record<string, () => Record<string, unknown>> = {
    image: imageSchema,
    images: imagesSchema,
    member: memberSchema,
    members: membersSchema,
    task: taskSchema,
    tasks: tasksSchema,
  };
  for (const [name, build] of Object.entries(schemas)) app.get(`/v2/schemas/${name}`, async () => build());

  app.get('/v2/info/import', async () => ({
    'import-methods': { description: 'Import methods available.', type: 'array', value: images.config.image.import_methods },
  }));

  const storeList = (): Record<string, unknown>[] =>
    [...images.stores.all.values()].map((store) => ({
      id: store.id,
      description: store.description,
      ...(store.id === images.stores.defaultId ? { default: 'true' } : {}),
      ...(store.readOnly ? { 'read-only': 'true' } : {}),
    }));
  app.get('/v2/info/stores', async () => ({ stores: storeList() }));
  app.get('/v2/info/stores/detail', async (req) => {
    authorize(images, req, 'stores_info_detail');
    return {
      stores: storeList().map((store) => {
        const configured = images.config.image.stores[store.id as string];
        const backend = images.stores.all.get(store.id as string);
        const properties = backend && 'dir' in backend ? { data_dir: (backend as { dir: string }).dir, chunk_size: 1048576, thin_provisioning: false } : {};
        return { ...store, type: configured?.type ?? 'file', properties };
      }),
    };
  });

  app.get('/v2/info/usage', async (req) => {
    const project = req.ctx.projectId ?? '';
    const [limits, usage] = await Promise.all([images.quotas.limits(project), images.quotas.usage(project)]);
    const mib = (bytes: number): number => Math.ceil(bytes / (1024 * 1024));
    return {
      usage: {
        image_size_total: { limit: limits.image_size_total, usage: mib(usage.image_size_total) },
        image_count_total: { limit: limits.image_count_total, usage: usage.image_count_total },
        image_stage_total: { limit: limits.image_stage_total, usage: mib(usage.image_stage_total) },
        image_count_uploading: { limit: limits.image_count_uploading, usage: usage.image_count_uploading },
      },
    };
  });
}
