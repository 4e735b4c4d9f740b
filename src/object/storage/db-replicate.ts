import type { DatabaseBroker, DbInfo, DbMetadata, ReplicationInfo, SyncPoint, ContainerRow, ObjectRow, CreateOptions } from './broker.js';
import { errorResponse, type ServerResponse } from './server-util.js';

/**
 * REPLICATE for account and container dbs: `REPLICATE /<device>/<partition>/<hash>`
 * with a JSON body `{op, ...}` (Swift's db replication RPC, in JSON):
 *
 * - `{op: "sync", info}`: `info` is the caller's `ReplicationInfo`. 404 when
 *   this replica has no db. Otherwise this db takes the newest of the
 *   caller's timestamps and metadata, and answers 200 with its own
 *   `ReplicationInfo` plus `point`: how far it has already merged the
 *   caller's rows (its incoming sync point for `info.id`, -1 when never).
 * - `{op: "merge_items", items, source}`: merges rows (from the caller's
 *   `getItemsSince(point, n)`), records `source` (the caller's db id) as
 *   synced up to the highest ROWID sent. 202.
 * - `{op: "merge_syncs", syncs}`: merges the caller's incoming sync points
 *   (so a third replica's progress is shared). 202.
 * - `{op: "create", info}`: creates the db when it is missing, with the
 *   caller's account/container names, timestamps and metadata (then send
 *   every row with merge_items). 201, or 202 when it existed.
 *
 * A replicator pushes: `sync`; on 404 `create`; then `merge_items` of its
 * rows after `point` in batches; then `merge_syncs` of its incoming syncs;
 * and records the peer's id in its outgoing syncs.
 */
export type ReplicateRequest =
  | { op: 'sync'; info: ReplicationInfo }
  | { op: 'merge_items'; items: (ObjectRow | ContainerRow)[]; source?: string }
  | { op: 'merge_syncs'; syncs: SyncPoint[] }
  | { op: 'create'; info: ReplicationInfo };

/** What the server gives the handler for one db. */
export interface DbReplicateTarget<B extends DatabaseBroker> {
  /** The open broker, or null when the db file does not exist. */
  broker(): B | null;
  /** Creates the db (true when created). */
  create(options: CreateOptions): boolean;
  /**
   * Called when the db's account row changed (its put or delete timestamp,
   * counts or storage policy: what a container reports to its account), so
   * the container server reports it; not called when a request changed
   * none of these (a replicator pass over replicas in sync).
   */
  changed(broker: B): void;
}

/** What an account keeps of a container (Swift's container report), to tell whether a REPLICATE changed it. */
function accountRowOf(info: DbInfo): string {
  return `${info.put_timestamp}/${info.delete_timestamp}/${info.object_count}/${info.bytes_used}/${info.storage_policy_index}`;
}

/** Handles one REPLICATE request body for a db. */
export function handleDbReplicate<B extends DatabaseBroker>(body: Buffer, target: DbReplicateTarget<B>): ServerResponse {
  let request: ReplicateRequest;
  try {
    request = JSON.parse(body.toString('utf8')) as ReplicateRequest;
  } catch (err) {
    return errorResponse(400, (err as Error).message);
  }
  if (!request || typeof request !== 'object' || typeof (request as { op?: unknown }).op !== 'string') return errorResponse(400, 'Invalid object type');
  const json = (status: number, value: unknown): ServerResponse => ({ status, headers: { 'content-type': 'application/json' }, body: JSON.stringify(value) });
  switch (request.op) {
    case 'create': {
      const info = request.info;
      const created = target.create({
        account: info.account,
        ...(info.container ? { container: info.container } : {}),
        timestamp: info.created_at,
        putTimestamp: info.put_timestamp,
        deleteTimestamp: info.delete_timestamp,
        storagePolicyIndex: info.storage_policy_index,
        metadata: parseMetadata(info.metadata),
      });
      return json(created ? 201 : 202, {});
    }
    case 'sync': {
      const broker = target.broker();
      if (!broker) return errorResponse(404);
      const remote = request.info;
      const before = accountRowOf(broker.info());
      broker.mergeTimestamps(remote.created_at, remote.put_timestamp, remote.delete_timestamp);
      const metadata = parseMetadata(remote.metadata);
      if (Object.keys(metadata).length) broker.updateMetadata(metadata);
      const info = broker.replicationInfo();
      if (accountRowOf(info) !== before) target.changed(broker);
      return json(200, { ...info, point: broker.getSync(remote.id) });
    }
    case 'merge_items': {
      const broker = target.broker();
      if (!broker) return errorResponse(404);
      if (!Array.isArray(request.items)) return errorResponse(400, 'items must be a list');
      const before = accountRowOf(broker.info());
      broker.mergeItems(request.items, request.source);
      if (accountRowOf(broker.info()) !== before) target.changed(broker);
      return json(202, {});
    }
    case 'merge_syncs': {
      const broker = target.broker();
      if (!broker) return errorResponse(404);
      if (!Array.isArray(request.syncs)) return errorResponse(400, 'syncs must be a list');
      broker.mergeSyncs(request.syncs);
      return json(202, {});
    }
    default:
      return errorResponse(400, 'Unknown op');
  }
}

function parseMetadata(text: string | undefined): DbMetadata {
  if (!text) return {};
  try {
    const value = JSON.parse(text) as unknown;
    return value && typeof value === 'object' ? (value as DbMetadata) : {};
  } catch {
    return {};
  }
}
