import type { FastifyInstance } from 'fastify';
import { BadRequest, NotFound, OverLimit } from '../../core/errors.js';
import { isoNow } from '../common.js';
import { authorize, type ImageService } from '../image.js';
import { findImage, loadImage } from '../repository.js';
import { notifyImage } from './images.js';

/** Image tags one at a time: `PUT` adds (idempotent), `DELETE` removes. */
export function registerTags(app: FastifyInstance, images: ImageService): void {
  app.put<{ Params: { id: string; tag: string } }>('/v2/images/:id/tags/:tag', async (req, reply) => {
    const { image, target } = await findImage(images, req.ctx, req.params.id);
    authorize(images, req, 'modify_image', target);
    const tag = req.params.tag;
    if (tag.length > 255) throw new BadRequest(`Could not update image: the tag '${tag.slice(0, 32)}...' is longer than 255 characters.`);
    if (!image.tags.includes(tag)) {
      const quota = images.config.image.image_tag_quota;
      if (quota >= 0 && image.tags.length + 1 > quota) throw new OverLimit(`Image tag limit exceeded for image ${image.row.id}: Maximum number of tags exceeded. Attempted: ${image.tags.length + 1}, Maximum: ${quota}:`);
      await images.db.transaction().execute(async (trx) => {
        const exists = await trx.selectFrom('image_tag').select('value').where('image_id', '=', image.row.id).where('value', '=', tag).executeTakeFirst();
        if (!exists) await trx.insertInto('image_tag').values({ image_id: image.row.id, value: tag }).execute();
        await trx.updateTable('image').set({ updated_at: isoNow() }).where('id', '=', image.row.id).execute();
      });
      const updated = await loadImage(images.db, image.row.id);
      if (updated) notifyImage(images, 'image.update', updated);
    }
    reply.code(204);
  });

  app.delete<{ Params: { id: string; tag: string } }>('/v2/images/:id/tags/:tag', async (req, reply) => {
    const { image, target } = await findImage(images, req.ctx, req.params.id);
    authorize(images, req, 'modify_image', target);
    const done = await images.db.deleteFrom('image_tag').where('image_id', '=', image.row.id).where('value', '=', req.params.tag).executeTakeFirst();
    if (Number(done.numDeletedRows) === 0) throw new NotFound(`Tag ${req.params.tag} not found.`);
    await images.db.updateTable('image').set({ updated_at: isoNow() }).where('id', '=', image.row.id).execute();
    const updated = await loadImage(images.db, image.row.id);
    if (updated) notifyImage(images, 'image.update', updated);
    reply.code(204);
  });
}
