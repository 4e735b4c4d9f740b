import type { FastifyInstance } from 'fastify';
import type { TaskRow } from '../db/schema.js';
import type { ImageService } from '../image.js';
import { imageTasks, startImport } from '../imports.js';
import { taskView } from '../views.js';

/** Interoperable image import (`POST .../import`) and an image's import tasks. */
export function registerImport(app: FastifyInstance, images: ImageService): void {
  app.post<{ Params: { id: string } }>('/v2/images/:id/import', async (req, reply) => {
    await startImport(images, req, req.params.id);
    reply.code(202);
    return reply.send();
  });

  app.get<{ Params: { id: string } }>('/v2/images/:id/tasks', async (req) => {
    const tasks = (await imageTasks(images, req, req.params.id)) as TaskRow[];
    return { tasks: tasks.map(taskView) };
  });
}
