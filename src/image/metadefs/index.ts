import type { FastifyInstance } from 'fastify';
import type { ImageService } from '../image.js';
import { registerNamespaces } from './namespaces.js';
import { registerObjects } from './objects.js';
import { registerProperties } from './properties.js';
import { registerResourceTypes } from './resource-types.js';
import { METADEF_SCHEMAS } from './schemas.js';
import { registerTags } from './tags.js';

/**
 * Glance's metadata definitions API (`/v2/metadefs/...`, since image API
 * 2.2): catalogues of the properties, objects and tags that resources of
 * each type (images, flavors, volumes, ...) may carry, for user interfaces
 * and for checking. Everyone reads public namespaces and their owner's
 * private ones; by default only administrators write. Also serves their
 * schemas under `/v2/schemas/metadefs/`.
 */
export function registerMetadefs(app: FastifyInstance, images: ImageService): void {
  registerNamespaces(app, images);
  registerObjects(app, images);
  registerProperties(app, images);
  registerTags(app, images);
  registerResourceTypes(app, images);
  for (const [name, build] of Object.entries(METADEF_SCHEMAS)) app.get(`/v2/schemas/metadefs/${name}`, async () => build());
}
