import type { FastifyInstance, FastifyRequest } from 'fastify';
import { isUniqueViolation } from '../../core/db/database.js';
import { BadRequest, Conflict, Forbidden, NotFound, OverLimit } from '../../core/errors.js';
import { isoNow, MEMBER_STATUSES } from '../common.js';
import type { MemberRow } from '../db/schema.js';
import { allowed, authorize, isAdmin, type ImageService } from '../image.js';
import { findImage, owns } from '../repository.js';
import { memberView } from '../views.js';

/** Image sharing: the owner adds projects as members; each member accepts or rejects. */
export function registerMembers(app: FastifyInstance, images: ImageService): void {
  /** The image, which must be shared, and the policy target. */
  const sharedImage = async (req: FastifyRequest<{ Params: { id: string } }>) => {
    const found = await findImage(images, req.ctx, req.params.id);
    if (found.image.row.visibility !== 'shared') throw new Forbidden('Only shared images have members.');
    return found;
  };
  /** Members the caller may see: all of them for the owner and admins, only their own for a member. */
  const seen = (req: FastifyRequest, owner: string | null, rows: MemberRow[]): MemberRow[] =>
    isAdmin(images, req.ctx) || (owner !== null && owner === req.ctx.projectId) ? rows : rows.filter((m) => m.member === req.ctx.projectId);

  app.post<{ Params: { id: string } }>('/v2/images/:id/members', async (req) => {
    const body = req.body as Record<string, unknown> | undefined;
    if (body === undefined || body === null) throw new BadRequest('Body expected in request.');
    if (typeof body !== 'object' || Array.isArray(body) || !('member' in body)) throw new BadRequest('Member to be added not specified');
    const member = body.member;
    if (typeof member !== 'string') throw new BadRequest('Expected a member in the form: {"member": "image_id"}');
    if (member.trim() === '') throw new BadRequest("Member can't be empty");
    if (member.length > 255) throw new BadRequest('Member id must be at most 255 characters.');
    const { image, target } = await sharedImage(req);
    if (!owns(req.ctx, image.row) && !isAdmin(images, req.ctx)) throw new Forbidden(`Not allowed to create members for image ${image.row.id}.`);
    authorize(images, req, 'add_member', target);
    const count = await images.db.selectFrom('image_member').select((eb) => eb.fn.countAll<number>().as('n')).where('image_id', '=', image.row.id).executeTakeFirstOrThrow();
    const quota = images.config.image.image_member_quota;
    if (quota >= 0 && Number(count.n) + 1 > quota) throw new OverLimit(`Image member limit exceeded for image ${image.row.id}: Maximum number of image members exceeded. Attempted: ${Number(count.n) + 1}, Maximum: ${quota}:`);
    const now = isoNow();
    const row: MemberRow = { image_id: image.row.id, member, status: 'pending', created_at: now, updated_at: now };
    try {
      await images.db.insertInto('image_member').values(row).execute();
    } catch (err) {
      if (isUniqueViolation(err)) throw new Conflict(`Member ${member} is duplicated for image ${image.row.id}`);
      throw err;
    }
    images.notify('image.member.create', memberView(row));
    return memberView(row);
  });

  app.get<{ Params: { id: string } }>('/v2/images/:id/members', async (req) => {
    const { image, target } = await sharedImage(req);
    if (!allowed(images, req.ctx, 'get_members', target)) throw new Forbidden(`Not allowed to list members for image ${image.row.id}.`);
    const rows = await images.db.selectFrom('image_member').selectAll().where('image_id', '=', image.row.id).orderBy('created_at').orderBy('member').execute();
    return { members: seen(req, image.row.owner, rows).map(memberView), schema: '/v2/schemas/members' };
  });

  app.get<{ Params: { id: string; member: string } }>('/v2/images/:id/members/:member', async (req) => {
    const { image, target } = await sharedImage(req).catch((err: unknown) => {
      throw err instanceof Forbidden ? new NotFound(err.message) : err;
    });
    const row = await images.db.selectFrom('image_member').selectAll().where('image_id', '=', image.row.id).where('member', '=', req.params.member).executeTakeFirst();
    if (!row || !allowed(images, req.ctx, 'get_member', target) || seen(req, image.row.owner, [row]).length === 0) {
      throw new NotFound(`${req.params.member} not found in the member list of the image ${image.row.id}.`);
    }
    return memberView(row);
  });

  app.put<{ Params: { id: string; member: string } }>('/v2/images/:id/members/:member', async (req) => {
    const body = req.body as Record<string, unknown> | undefined;
    if (body === undefined || body === null) throw new BadRequest('Body expected in request.');
    if (typeof body !== 'object' || Array.isArray(body) || !('status' in body)) throw new BadRequest('Status not specified');
    const status = body.status;
    if (typeof status !== 'string') throw new BadRequest('Expected a status in the form: {"status": "status"}');
    const { image, target } = await sharedImage(req);
    const row = await images.db.selectFrom('image_member').selectAll().where('image_id', '=', image.row.id).where('member', '=', req.params.member).executeTakeFirst();
    if (!row || seen(req, image.row.owner, [row]).length === 0) throw new NotFound(`${req.params.member} not found in the member list of the image ${image.row.id}.`);
    // Only the member itself decides (or an administrator); the owner cannot accept for it.
    const memberTarget = { ...target, member_id: row.member };
    if (!allowed(images, req.ctx, 'modify_member', memberTarget)) throw new Forbidden(`Not allowed to update members for image ${image.row.id}.`);
    if (!(MEMBER_STATUSES as readonly string[]).includes(status)) throw new BadRequest(`Incorrect request: Status must be one of ${MEMBER_STATUSES.join(', ')}; got '${status}'.`);
    const now = isoNow();
    await images.db.updateTable('image_member').set({ status, updated_at: now }).where('image_id', '=', image.row.id).where('member', '=', row.member).execute();
    const updated = { ...row, status, updated_at: now };
    images.notify('image.member.update', memberView(updated));
    return memberView(updated);
  });

  app.delete<{ Params: { id: string; member: string } }>('/v2/images/:id/members/:member', async (req, reply) => {
    const { image, target } = await sharedImage(req);
    const row = await images.db.selectFrom('image_member').selectAll().where('image_id', '=', image.row.id).where('member', '=', req.params.member).executeTakeFirst();
    if (!row || seen(req, image.row.owner, [row]).length === 0) throw new NotFound(`${req.params.member} not found in the member list of the image ${image.row.id}.`);
    if (!owns(req.ctx, image.row) && !isAdmin(images, req.ctx)) throw new Forbidden(`Not allowed to delete members for image ${image.row.id}.`);
    authorize(images, req, 'delete_member', target);
    await images.db.deleteFrom('image_member').where('image_id', '=', image.row.id).where('member', '=', row.member).execute();
    images.notify('image.member.delete', memberView(row));
    reply.code(204);
  });
}
