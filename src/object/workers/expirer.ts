import { EXPIRER_ACCOUNT, Timestamp } from '../common.js';
import { parseExpirerTask } from '../storage/expirer-queue.js';
import { count, quorumSize, type PassStats, type WorkerContext } from './context.js';
import { accountUpdateHeaders, containerUpdateHeaders, directRequest, isSuccess, iterListing, type ContainerListingRow, type ObjectListingRow } from './direct-client.js';

/**
 * The object expirer (Swift's `object-expirer`). Objects written with
 * `X-Delete-At` are queued by the object servers in the hidden
 * `.expiring_objects` account: one container per period named for its time,
 * one row per object named `<delete_at>-<account>/<container>/<object>`. A
 * pass walks the queue containers whose time has come, deletes each object
 * whose time has come (`X-If-Delete-At` makes the delete a no-op for an
 * object that was overwritten or given another time since), then removes the
 * queue row, and finally the queue containers left empty.
 *
 * It talks to the storage servers through the rings (as Swift's reaper
 * does) rather than through the proxy: it needs only listings and DELETEs,
 * and so works alike in the proxy's process and on a storage-only node.
 * Only the node holding the first replica of a queue container processes
 * it, so that a cluster expires each object once per pass.
 */
export async function expirerPass(ctx: WorkerContext, stats: PassStats): Promise<void> {
  const now = Math.floor(ctx.now());
  const accountPlace = ctx.rings.account.getNodes(EXPIRER_ACCOUNT);
  const containers: string[] = [];
  for await (const row of iterListing<ContainerListingRow>(ctx, accountPlace.nodes, accountPlace.partition, EXPIRER_ACCOUNT, undefined)) {
    const time = Number(row.name);
    if (!Number.isInteger(time)) continue;
    if (time > now) break;
    containers.push(row.name);
  }
  for (const container of containers) {
    if (ctx.signal.aborted) return;
    if (!leadsContainer(ctx, container)) continue;
    count(stats, 'containers');
    await expireContainer(ctx, stats, container, now);
  }
}

/**
 * True when this node serves the first primary of a queue container (Swift's
 * expirer divides the queue between its processes; ours is divided between
 * nodes by the container ring). A single-node cluster serves them all.
 */
function leadsContainer(ctx: WorkerContext, container: string): boolean {
  const first = ctx.rings.container.getNodes(EXPIRER_ACCOUNT, container).nodes[0];
  if (!first) return false;
  const { host, container_port } = ctx.config.storage;
  return first.ip === host && first.port === container_port;
}

async function expireContainer(ctx: WorkerContext, stats: PassStats, container: string, now: number): Promise<void> {
  const place = ctx.rings.container.getNodes(EXPIRER_ACCOUNT, container);
  let remaining = 0;
  const tasks: ObjectListingRow[] = [];
  try {
    for await (const row of iterListing<ObjectListingRow>(ctx, place.nodes, place.partition, EXPIRER_ACCOUNT, container)) tasks.push(row);
  } catch (err) {
    count(stats, 'failed');
    ctx.log.warn({ err, container }, 'cannot list an expirer queue container');
    return;
  }
  for (const task of tasks) {
    if (ctx.signal.aborted) return;
    const parsed = parseExpirerTask(task.name);
    if (!parsed) {
      count(stats, 'invalid');
      ctx.log.warn({ container, task: task.name }, 'an expirer queue row whose name is not <delete_at>-<account>/<container>/<object>; removed');
      await popQueue(ctx, container, task.name);
      continue;
    }
    if (parsed.deleteAt > now) {
      remaining++;
      continue;
    }
    count(stats, 'checked');
    const deleted = await deleteActualObject(ctx, parsed.account, parsed.container, parsed.object, parsed.deleteAt);
    if (!deleted) {
      remaining++;
      count(stats, 'failed');
      ctx.log.warn({ account: parsed.account, container: parsed.container, object: parsed.object, delete_at: parsed.deleteAt }, 'expired object not deleted (no quorum); retried next pass');
      continue;
    }
    if (await popQueue(ctx, container, task.name)) {
      count(stats, 'expired');
    } else {
      remaining++;
      count(stats, 'failed');
    }
  }
  if (remaining === 0) await deleteQueueContainer(ctx, container);
}

/**
 * DELETEs an object on its primaries if its X-Delete-At is still `deleteAt`
 * (`X-If-Delete-At`), with that time as the delete's timestamp, as Swift's
 * expirer does. Each object replica updates its paired container replica.
 * A replica that answers 404 (already gone) or 412 (overwritten, or given
 * another time) is done with too. True when a quorum is done.
 */
async function deleteActualObject(ctx: WorkerContext, account: string, container: string, object: string, deleteAt: number): Promise<boolean> {
  const { partition, nodes } = ctx.rings.object.getNodes(account, container, object);
  const timestamp = new Timestamp(deleteAt * 1e5).normal;
  const results = await Promise.all(
    nodes.map((node, index) =>
      directRequest(ctx, node, {
        method: 'DELETE',
        device: node.device,
        partition,
        account,
        container,
        object,
        headers: {
          'x-timestamp': timestamp,
          'x-if-delete-at': String(deleteAt),
          'x-backend-clean-expiring-object-queue': 'no',
          ...containerUpdateHeaders(ctx, account, container, index),
        },
      }),
    ),
  );
  // 409: the object there is newer than the delete time (written after it expired): nothing to delete either.
  const done = results.filter((res) => isSuccess(res.status) || res.status === 404 || res.status === 412 || res.status === 409).length;
  return done >= quorumSize(nodes.length);
}

/** Removes a row of a queue container from its replicas; true when a quorum did. */
async function popQueue(ctx: WorkerContext, container: string, task: string): Promise<boolean> {
  const { partition, nodes } = ctx.rings.container.getNodes(EXPIRER_ACCOUNT, container);
  const timestamp = Timestamp.now().internal;
  const results = await Promise.all(
    nodes.map((node) =>
      directRequest(ctx, node, { method: 'DELETE', device: node.device, partition, account: EXPIRER_ACCOUNT, container, object: task, headers: { 'x-timestamp': timestamp } }),
    ),
  );
  return results.filter((res) => isSuccess(res.status) || res.status === 404).length >= quorumSize(nodes.length);
}

/** Deletes an emptied queue container (404 and 409, not empty after all, are fine). */
async function deleteQueueContainer(ctx: WorkerContext, container: string): Promise<void> {
  const { partition, nodes } = ctx.rings.container.getNodes(EXPIRER_ACCOUNT, container);
  const timestamp = Timestamp.now().internal;
  await Promise.all(
    nodes.map((node, index) =>
      directRequest(ctx, node, {
        method: 'DELETE',
        device: node.device,
        partition,
        account: EXPIRER_ACCOUNT,
        container,
        headers: { 'x-timestamp': timestamp, ...accountUpdateHeaders(ctx, EXPIRER_ACCOUNT, index) },
      }),
    ),
  );
}
