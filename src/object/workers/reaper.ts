import { createHash } from 'node:crypto';
import { Timestamp } from '../common.js';
import { AccountBroker, type ContainerRow } from '../storage/broker.js';
import { count, localDevices, quorumSize, type PassStats, type WorkerContext } from './context.js';
import { iterDbFiles } from './db-files.js';
import { containerUpdateHeaders, directRequest, isSuccess, iterListing, type ObjectListingRow } from './direct-client.js';

/**
 * The account reaper (Swift's `account-reaper`). An account DELETEd by a
 * reseller admin is only marked deleted; the reaper removes what it held:
 * for each account db marked deleted on a local device that is one of the
 * account's primaries, every object of every container (on all object
 * replicas, each telling its container replica), then every container (on
 * all container replicas, each telling the account even though it is
 * deleted: `X-Account-Override-Deleted`). The containers are divided
 * between the account's primaries as Swift divides them (by the MD5 of the
 * container name modulo the replica count), so each is reaped once while
 * every primary runs. A container that cannot be emptied (a node down) is
 * retried on the next pass. The emptied, deleted account db is removed by
 * the account replicator once the reclaim age has passed.
 */
export async function reaperPass(ctx: WorkerContext, stats: PassStats): Promise<void> {
  for (const dev of localDevices(ctx, 'account')) {
    for await (const db of iterDbFiles(dev.dir, 'account')) {
      if (ctx.signal.aborted) return;
      const primaries = ctx.rings.account.getPartNodes(db.partition);
      const shard = primaries.findIndex((n) => n.id === dev.device.id);
      if (shard < 0) continue;
      let broker: AccountBroker;
      try {
        broker = AccountBroker.open(db.file);
      } catch (err) {
        count(stats, 'errors');
        ctx.log.warn({ err, file: db.file }, 'cannot open an account db');
        continue;
      }
      try {
        const info = broker.info();
        if (!broker.isStatusDeleted(info)) continue;
        count(stats, 'accounts');
        const before = { containers: stats.containers_deleted ?? 0, objects: stats.objects_deleted ?? 0 };
        const complete = await reapAccount(ctx, stats, broker, info.account, shard, primaries.length);
        ctx.log.info(
          { account: info.account, device: dev.device.device, complete, containers_deleted: (stats.containers_deleted ?? 0) - before.containers, objects_deleted: (stats.objects_deleted ?? 0) - before.objects },
          complete ? 'account reaped' : 'account partly reaped (retried next pass)',
        );
        if (complete) count(stats, 'accounts_reaped');
      } catch (err) {
        count(stats, 'errors');
        ctx.log.error({ err, file: db.file }, 'account reap failed');
      } finally {
        broker.close();
      }
    }
  }
}

/** Which primary of an account reaps a container (Swift's container shard). */
export function containerShard(container: string, replicas: number): number {
  return Number(BigInt(`0x${createHash('md5').update(container).digest('hex')}`) % BigInt(Math.max(1, replicas)));
}

/** Reaps this primary's share of the account's containers; true when all of them are gone. */
async function reapAccount(ctx: WorkerContext, stats: PassStats, broker: AccountBroker, account: string, shard: number, replicas: number): Promise<boolean> {
  let marker = '';
  let complete = true;
  for (;;) {
    const rows = broker.listContainers({ limit: 1000, marker, endMarker: '', prefix: null, delimiter: null, path: null, reverse: false }) as ContainerRow[];
    const last = rows.at(-1);
    for (const row of rows) {
      if (ctx.signal.aborted) return false;
      if (containerShard(row.name, replicas) !== shard) continue;
      if (!(await reapContainer(ctx, stats, account, row.name))) complete = false;
    }
    if (!last || rows.length < 1000) return complete;
    marker = last.name;
  }
}

/** Deletes every object of a container, then the container; true when it is gone. */
async function reapContainer(ctx: WorkerContext, stats: PassStats, account: string, container: string): Promise<boolean> {
  const place = ctx.rings.container.getNodes(account, container);
  let allObjects = true;
  try {
    for await (const row of iterListing<ObjectListingRow>(ctx, place.nodes, place.partition, account, container)) {
      if (ctx.signal.aborted) return false;
      if (await reapObject(ctx, account, container, row.name)) count(stats, 'objects_deleted');
      else {
        allObjects = false;
        count(stats, 'objects_failed');
      }
    }
  } catch (err) {
    count(stats, 'containers_failed');
    ctx.log.warn({ err, account, container }, 'cannot list a container of a deleted account');
    return false;
  }
  if (!allObjects) {
    count(stats, 'containers_failed');
    return false;
  }
  const timestamp = Timestamp.now().internal;
  const accountPlace = ctx.rings.account.getNodes(account);
  const results = await Promise.all(
    place.nodes.map((node, index) => {
      const accountNode = accountPlace.nodes[index % Math.max(1, accountPlace.nodes.length)];
      return directRequest(ctx, node, {
        method: 'DELETE',
        device: node.device,
        partition: place.partition,
        account,
        container,
        headers: {
          'x-timestamp': timestamp,
          'x-account-override-deleted': 'yes',
          ...(accountNode ? { 'x-account-host': `${accountNode.ip}:${accountNode.port}`, 'x-account-partition': String(accountPlace.partition), 'x-account-device': accountNode.device } : {}),
        },
      });
    }),
  );
  const done = results.filter((r) => isSuccess(r.status) || r.status === 404).length;
  if (done >= quorumSize(place.nodes.length)) {
    count(stats, 'containers_deleted');
    return true;
  }
  count(stats, 'containers_failed');
  ctx.log.warn({ account, container, statuses: results.map((r) => r.status) }, 'container of a deleted account not deleted');
  return false;
}

/** Deletes an object on all its replicas (each updating its paired container replica); true on a quorum of 2xx/404. */
async function reapObject(ctx: WorkerContext, account: string, container: string, object: string): Promise<boolean> {
  const { partition, nodes } = ctx.rings.object.getNodes(account, container, object);
  const timestamp = Timestamp.now().internal;
  const results = await Promise.all(
    nodes.map((node, index) =>
      directRequest(ctx, node, {
        method: 'DELETE',
        device: node.device,
        partition,
        account,
        container,
        object,
        headers: { 'x-timestamp': timestamp, ...containerUpdateHeaders(ctx, account, container, index) },
      }),
    ),
  );
  return results.filter((r) => isSuccess(r.status) || r.status === 404).length >= quorumSize(nodes.length);
}
