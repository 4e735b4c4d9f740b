import { RemoteError } from '../../core/bus/index.js';
import { zoneOfHost } from '../aggregates.js';
import type { ComputeService } from '../compute.js';
import { isoNow, newUuid, parseJson } from '../common.js';
import type { InstanceRow, MigrationRow } from '../db/schema.js';
import { finishActionEvent, startActionEvent } from '../instances.js';
import type { ComputePlacement } from '../placement.js';
import { AgentRpc, SCHEDULER_TOPIC, type AgentMigration, type Destination, type EmbeddedFlavor, type MigrationValues, type MoveRequest, type RequestSpec, type Selection } from '../rpc.js';
import { resourcesOf } from '../scheduler/scheduler.js';

/**
 * The conductor's half of moving a server (Nova's MigrationTask,
 * LiveMigrationTask and unshelve): it holds the source's placement usage
 * under the migration's consumer, asks the scheduler for a destination
 * (which claims there), records it, and hands the work to the agents. When
 * no host is found, the claim is put back and the server returns to where
 * it was with its task cleared.
 */
export class MoveConductor {
  private readonly agents: AgentRpc;

  constructor(
    private readonly compute: ComputeService,
    private readonly placement: ComputePlacement,
  ) {
    this.agents = new AgentRpc(compute.bus);
  }

  /** Runs a move; with `wait` a failure to find a destination is thrown (after the server is put back). */
  async move(req: MoveRequest, wait = false): Promise<void> {
    try {
      switch (req.kind) {
        case 'resize':
        case 'migrate':
          return await this.coldMigrate(req);
        case 'live_migrate':
          return await this.liveMigrate(req);
        case 'unshelve':
          return await this.unshelve(req);
      }
    } catch (err) {
      if (wait) throw err;
      this.compute.log.warn({ err, instance_uuid: req.instance_uuid, kind: req.kind }, 'could not move the server');
    }
  }

  private async instance(uuid: string): Promise<InstanceRow | undefined> {
    return this.compute.db.selectFrom('instance').selectAll().where('uuid', '=', uuid).where('deleted', '=', 0).executeTakeFirst();
  }

  private async migration(uuid: string | undefined): Promise<MigrationRow | undefined> {
    if (!uuid) return undefined;
    return this.compute.db.selectFrom('migration').selectAll().where('uuid', '=', uuid).executeTakeFirst();
  }

  /** Asks the scheduler for one host for the server; it claims `spec`'s resources there for the server. */
  private async schedule(spec: RequestSpec, uuid: string): Promise<Destination> {
    const selections = await this.compute.bus.call<Selection[]>({ topic: SCHEDULER_TOPIC }, 'select_destinations', { spec, instance_uuids: [uuid] });
    const chosen = selections[0]?.[0];
    if (!chosen) throw new Error('No valid host was found. There are not enough hosts available.');
    return chosen;
  }

  /** The spec for scheduling a move: forced hosts of the boot forgotten (Nova's `reset_forced_destinations`). */
  private moveSpec(row: InstanceRow, changes: Partial<RequestSpec>): RequestSpec {
    const spec = parseJson<RequestSpec>(row.request_spec, {} as RequestSpec);
    return { ...spec, force_host: null, force_node: null, requested_host: null, requested_node: null, ignore_hosts: [], ...changes };
  }

  /** A reason a move failed, as the user reads it. */
  private static reason(err: unknown): string {
    if (err instanceof RemoteError && err.excType === 'NoValidHost') return err.message;
    return err instanceof Error ? err.message : String(err);
  }

  /**
   * Resize and cold migration (Nova's `migrate_server`): the source's usage
   * moves to the migration, the scheduler claims the new flavor on another
   * host (or this one for a resize when allowed), then the source host is asked
   * to power the server off and hand it over (`resize_instance`).
   */
  private async coldMigrate(req: MoveRequest): Promise<void> {
    const row = await this.instance(req.instance_uuid);
    const migration = await this.migration(req.migration_uuid);
    if (!row || !migration || row.task_state !== 'resize_prep') return;
    const event = await startActionEvent(this.compute.db, req.action_id, 'conductor_migrate_server', null);
    const flavor = req.new_flavor ?? parseJson<EmbeddedFlavor>(row.flavor, {} as EmbeddedFlavor);
    const sameHostAllowed = req.kind === 'resize' && this.compute.config.compute.allow_resize_to_same_host;
    const spec = this.moveSpec(row, { flavor, ignore_hosts: sameHostAllowed || !row.host ? [] : [row.host], requested_host: req.host ?? null });
    const held = await this.holdSourceUsage(row, migration.uuid);
    let destination: Destination;
    try {
      destination = await this.schedule(spec, row.uuid);
    } catch (err) {
      const message = MoveConductor.reason(err);
      // The action's error first: a client that sees the server settle sees why.
      await finishActionEvent(this.compute.db, event, { message });
      await this.putBack(row, migration.uuid, held, message, 'error');
      this.compute.notify('compute_task.migrate_server', { instance_id: row.uuid, state: row.vm_state, message });
      throw err;
    }
    await this.compute.db.updateTable('migration').set({ dest_compute: destination.host, dest_node: destination.node, dest_host: await this.hostIp(destination.host), updated_at: isoNow() }).where('uuid', '=', migration.uuid).execute();
    const oldVmState = (await this.systemMetadata(row.uuid)).old_vm_state ?? row.vm_state;
    await finishActionEvent(this.compute.db, event);
    await this.agents.runAction(row.host ?? destination.host, {
      instance_uuid: row.uuid,
      action: { kind: 'resize', migration_uuid: migration.uuid, new_flavor: flavor, destination, same_host: destination.host === row.host, old_vm_state: oldVmState },
      action_id: req.action_id,
    });
  }

  /**
   * Live migration (Nova's LiveMigrationTask): the destination is the
   * admin's forced host (claimed here, no filters), or the scheduler's
   * choice among the others (restricted to `host` when given); then the
   * source host runs it.
   */
  private async liveMigrate(req: MoveRequest): Promise<void> {
    const row = await this.instance(req.instance_uuid);
    const migration = await this.migration(req.migration_uuid);
    if (!row || !migration || row.task_state !== 'migrating' || !row.host) return;
    const event = await startActionEvent(this.compute.db, req.action_id, 'conductor_live_migrate_instance', null);
    if (req.host && req.host === row.host) {
      const message = `Unable to migrate instance (${row.uuid}) to current host (${row.host}).`;
      await finishActionEvent(this.compute.db, event, { message });
      await this.putBack(row, migration.uuid, false, message, 'error', false);
      throw new MoveError(message);
    }
    const held = await this.holdSourceUsage(row, migration.uuid);
    let destination: Destination;
    try {
      destination = req.force && req.host ? await this.claimForced(row, req.host) : await this.schedule(this.moveSpec(row, { ignore_hosts: [row.host], requested_host: req.host ?? null }), row.uuid);
    } catch (err) {
      const message = MoveConductor.reason(err);
      await finishActionEvent(this.compute.db, event, { message });
      await this.putBack(row, migration.uuid, held, message, 'error', false);
      throw err;
    }
    await this.compute.db.updateTable('migration').set({ dest_compute: destination.host, dest_node: destination.node, dest_host: await this.hostIp(destination.host), status: 'queued', updated_at: isoNow() }).where('uuid', '=', migration.uuid).execute();
    await finishActionEvent(this.compute.db, event);
    await this.agents.runAction(row.host, { instance_uuid: row.uuid, action: { kind: 'live_migrate', migration_uuid: migration.uuid, destination }, action_id: req.action_id });
  }

  /** A forced live migration's destination: claimed on that host's node as is, no filters (Nova skips the scheduler). */
  private async claimForced(row: InstanceRow, host: string): Promise<Destination> {
    const node = await this.compute.db.selectFrom('compute_node').select(['uuid', 'hypervisor_hostname']).where('host', '=', host).executeTakeFirst();
    if (!node) throw new MoveError(`Compute host ${host} could not be found.`);
    const spec = parseJson<RequestSpec>(row.request_spec, {} as RequestSpec);
    const resources = resourcesOf({ ...spec, flavor: parseJson<EmbeddedFlavor>(row.flavor, spec.flavor) });
    const allocation = { [node.uuid]: resources };
    if (!(await this.placement.claim(row.uuid, allocation, row.project_id, row.user_id))) {
      throw new MoveError(`Migration pre-check error: Unable to migrate ${row.uuid} to ${host}: Lack of resources`);
    }
    return { host, node: node.hypervisor_hostname, node_uuid: node.uuid, allocation };
  }

  /**
   * Unshelve (Nova's conductor `unshelve_instance`): a SHELVED server
   * starts again on its host; a SHELVED_OFFLOADED one is scheduled (its
   * request spec has the zone and host asked for) and built from its
   * snapshot on the chosen host. No host: the server stays offloaded, its
   * task cleared.
   */
  private async unshelve(req: MoveRequest): Promise<void> {
    const row = await this.instance(req.instance_uuid);
    if (!row || row.task_state !== 'unshelving') return;
    if (row.vm_state === 'shelved' && row.host) {
      await this.agents.runAction(row.host, { instance_uuid: row.uuid, action: { kind: 'unshelve', destination: null }, action_id: req.action_id });
      return;
    }
    const event = await startActionEvent(this.compute.db, req.action_id, 'schedule_instances', null);
    const spec = parseJson<RequestSpec>(row.request_spec, {} as RequestSpec);
    let destination: Destination;
    try {
      destination = await this.schedule({ ...spec, force_host: null, force_node: null, ignore_hosts: [] }, row.uuid);
    } catch (err) {
      const message = MoveConductor.reason(err);
      await finishActionEvent(this.compute.db, event, { message });
      await this.compute.db.updateTable('instance').set({ task_state: null, updated_at: isoNow() }).where('uuid', '=', row.uuid).where('task_state', '=', 'unshelving').execute();
      this.compute.log.warn({ instance_uuid: row.uuid, message }, 'no valid host found for unshelve');
      throw err;
    }
    await finishActionEvent(this.compute.db, event);
    const zone = await zoneOfHost(this.compute, destination.host);
    const result = await this.compute.db
      .updateTable('instance')
      .set({ host: destination.host, node: destination.node, availability_zone: zone, updated_at: isoNow() })
      .where('uuid', '=', row.uuid)
      .where('deleted', '=', 0)
      .where('task_state', '=', 'unshelving')
      .executeTakeFirst();
    if (Number(result.numUpdatedRows) === 0) {
      await this.placement.deleteAllocations(row.uuid);
      return;
    }
    await this.agents.runAction(destination.host, { instance_uuid: row.uuid, action: { kind: 'unshelve', destination }, action_id: req.action_id });
  }

  /** The IP address a host's hypervisor reports (the migration's `dest_host`, as Nova records it). */
  private async hostIp(host: string): Promise<string | null> {
    const node = await this.compute.db.selectFrom('compute_node').select('host_ip').where('host', '=', host).executeTakeFirst();
    return node?.host_ip ?? null;
  }

  /** Moves the server's allocations to the migration's consumer; false when it had none. */
  private async holdSourceUsage(row: InstanceRow, migrationUuid: string): Promise<boolean> {
    const current = await this.placement.allocations(row.uuid);
    if (Object.keys(current).length === 0) return false;
    await this.placement.moveAllocations(row.uuid, migrationUuid, row.project_id, row.user_id);
    return true;
  }

  /**
   * Undoes a move that found no destination: the usage goes back to the
   * server, the migration is marked, the task cleared (the vm_state is kept)
   * and, for a cold move, a fault says why (Nova's `_set_vm_state_and_notify`).
   */
  private async putBack(row: InstanceRow, migrationUuid: string, held: boolean, message: string, status: string, fault = true): Promise<void> {
    if (held) await this.placement.moveAllocations(migrationUuid, row.uuid, row.project_id, row.user_id);
    await this.compute.db.updateTable('migration').set({ status, updated_at: isoNow() }).where('uuid', '=', migrationUuid).execute();
    if (fault) {
      await this.compute.db.insertInto('instance_fault').values({ id: newUuid(), instance_uuid: row.uuid, code: 400, message: message.slice(0, 255), details: '', host: null, created_at: isoNow() }).execute();
    }
    await this.compute.db.updateTable('instance').set({ task_state: null, updated_at: isoNow() }).where('uuid', '=', row.uuid).execute();
    await this.compute.db.deleteFrom('instance_system_metadata').where('instance_uuid', '=', row.uuid).where('key', '=', 'old_vm_state').execute();
  }

  async systemMetadata(uuid: string): Promise<Record<string, string>> {
    const rows = await this.compute.db.selectFrom('instance_system_metadata').select(['key', 'value']).where('instance_uuid', '=', uuid).execute();
    return Object.fromEntries(rows.map((r) => [r.key, r.value]));
  }

  /** Sets (string) and removes (null) keys of a server's system metadata. */
  async setSystemMetadata(uuid: string, values: Record<string, string | null>): Promise<void> {
    await this.compute.db.transaction().execute(async (trx) => {
      for (const [key, value] of Object.entries(values)) {
        await trx.deleteFrom('instance_system_metadata').where('instance_uuid', '=', uuid).where('key', '=', key).execute();
        if (value !== null) await trx.insertInto('instance_system_metadata').values({ instance_uuid: uuid, key, value }).execute();
      }
    });
  }

  async getMigration(uuid: string): Promise<AgentMigration | null> {
    const row = await this.migration(uuid);
    if (!row) return null;
    return { uuid: row.uuid, instance_uuid: row.instance_uuid, migration_type: row.migration_type, status: row.status, source_compute: row.source_compute, source_node: row.source_node, dest_compute: row.dest_compute, dest_node: row.dest_node };
  }

  async updateMigration(uuid: string, values: MigrationValues): Promise<void> {
    await this.compute.db.updateTable('migration').set({ ...values, updated_at: isoNow() }).where('uuid', '=', uuid).execute();
  }
}

/** A move refused for a reason the user is told (Nova's `UnableToMigrateToSelf`, `MigrationPreCheckError`). */
export class MoveError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MoveError';
  }
}
