import { RemoteError, type Consumer } from '../../core/bus/index.js';
import { zoneOfHost } from '../aggregates.js';
import type { ComputeService } from '../compute.js';
import { isoNow, newUuid, parseJson } from '../common.js';
import { finishActionEvent, startActionEvent } from '../instances.js';
import type { ComputePlacement } from '../placement.js';
import { AgentRpc, COMPUTE_TOPIC, CONDUCTOR_TOPIC, type AgentInstance, SCHEDULER_TOPIC, type BuildRequest, type InstanceValues, type MigrationValues, type MoveRequest, type RequestSpec, type Selection } from '../rpc.js';
import type { BlockDeviceMappingRow } from '../db/schema.js';
import { MoveConductor } from './moves.js';
import { agentInstance, instanceColumns } from './instance-view.js';
import { registerHost, type HostReport } from './hosts.js';

/**
 * The compute-conductor: the only role besides compute-api that touches
 * compute's database. It turns recorded servers into builds (scheduler,
 * then the chosen agent), reschedules failed builds on the alternates, and
 * records what agents report (state changes, faults, action events,
 * heartbeats), since agents hold no database credentials.
 */
export class Conductor {
  private readonly agents: AgentRpc;
  private readonly moves: MoveConductor;

  constructor(
    private readonly compute: ComputeService,
    private readonly placement: ComputePlacement,
  ) {
    this.agents = new AgentRpc(compute.bus);
    this.moves = new MoveConductor(compute, placement);
  }

  /** Serves the conductor's topic as `server` (one per process). */
  serve(server: string): Promise<Consumer> {
    return this.compute.bus.serve(CONDUCTOR_TOPIC, server, {
      build_instances: (args: { instance_uuids: string[]; action_ids: Record<string, string>; user_token?: string }) => this.buildInstances(args.instance_uuids, args.action_ids, args.user_token),
      get_instance: (args: { uuid: string }) => this.getInstance(args.uuid),
      instances_on_host: (args: { host: string }) => this.instancesOnHost(args.host),
      update_instance: (args: { uuid: string; values: InstanceValues; expected_task_state?: (string | null)[] }) => this.updateInstance(args.uuid, args.values, args.expected_task_state),
      instance_fault: (args: { uuid: string; code: number; message: string; details: string; host: string | null }) => this.recordFault(args),
      action_event_start: (args: { action_id: string; event: string; host: string }) => startActionEvent(this.compute.db, args.action_id, args.event, args.host),
      action_event_finish: (args: { event_id: string; error?: { message: string; traceback?: string } }) => finishActionEvent(this.compute.db, args.event_id, args.error),
      build_failed: (args: { request: BuildRequest; message: string; details: string; reschedule: boolean }) => this.buildFailed(args.request, args.message, args.details, args.reschedule),
      instance_destroyed: (args: { uuid: string }) => this.instanceDestroyed(args.uuid),
      host_report: (args: HostReport) => registerHost(this.compute, args),
      notify: (args: { event_type: string; payload: unknown }) => this.compute.notify(args.event_type, args.payload),
      move_instance: (args: MoveRequest) => this.moves.move(args),
      move_instance_sync: (args: MoveRequest) => this.moves.move(args, true),
      get_migration: (args: { uuid: string }) => this.moves.getMigration(args.uuid),
      update_migration: (args: { uuid: string; values: MigrationValues }) => this.moves.updateMigration(args.uuid, args.values),
      set_system_metadata: (args: { uuid: string; values: Record<string, string | null> }) => this.moves.setSystemMetadata(args.uuid, args.values),
      get_bdm: (args: { id: string }) => this.compute.db.selectFrom('block_device_mapping').selectAll().where('id', '=', args.id).executeTakeFirst().then((r) => r ?? null),
      get_bdms: (args: { instance_uuid: string }) => this.blockDevices(args.instance_uuid),
      update_bdm: (args: { id: string; values: Partial<Pick<BlockDeviceMappingRow, 'volume_id' | 'attachment_id' | 'connection_info' | 'device_name'>> }) => this.compute.db.updateTable('block_device_mapping').set(args.values).where('id', '=', args.id).execute().then(() => undefined),
      delete_bdm: (args: { id: string }) => this.compute.db.deleteFrom('block_device_mapping').where('id', '=', args.id).execute().then(() => undefined),
    });
  }

  private async metadataOf(uuid: string): Promise<Record<string, string>> {
    const rows = await this.compute.db.selectFrom('instance_metadata').select(['key', 'value']).where('instance_uuid', '=', uuid).execute();
    return Object.fromEntries(rows.map((r) => [r.key, r.value]));
  }

  /** A server's block device mappings, the root first, then by boot index and age. */
  async blockDevices(uuid: string): Promise<BlockDeviceMappingRow[]> {
    const rows = await this.compute.db.selectFrom('block_device_mapping').selectAll().where('instance_uuid', '=', uuid).orderBy('created_at').orderBy('id').execute();
    return rows.sort((a, b) => (a.boot_index ?? Infinity) - (b.boot_index ?? Infinity));
  }

  async getInstance(uuid: string): Promise<AgentInstance | null> {
    const row = await this.compute.db.selectFrom('instance').selectAll().where('uuid', '=', uuid).executeTakeFirst();
    return row ? { ...agentInstance(row, await this.metadataOf(uuid)), system_metadata: await this.moves.systemMetadata(uuid), block_devices: await this.blockDevices(uuid) } : null;
  }

  private async instancesOnHost(host: string): Promise<AgentInstance[]> {
    const rows = await this.compute.db.selectFrom('instance').selectAll().where('host', '=', host).where('deleted', '=', 0).execute();
    // The mappings of every server in one query (most servers have none).
    const mappings = new Map<string, BlockDeviceMappingRow[]>();
    if (rows.length > 0) {
      const onHost = this.compute.db.selectFrom('instance').select('uuid').where('host', '=', host).where('deleted', '=', 0);
      const all = await this.compute.db.selectFrom('block_device_mapping').selectAll().where('instance_uuid', 'in', onHost).orderBy('created_at').orderBy('id').execute();
      for (const bdm of all.sort((a, b) => (a.boot_index ?? Infinity) - (b.boot_index ?? Infinity))) mappings.set(bdm.instance_uuid, [...(mappings.get(bdm.instance_uuid) ?? []), bdm]);
    }
    return Promise.all(rows.map(async (row) => ({ ...agentInstance(row, await this.metadataOf(row.uuid)), system_metadata: await this.moves.systemMetadata(row.uuid), block_devices: mappings.get(row.uuid) ?? [] })));
  }

  /**
   * Records an agent's changes. With `expected` the update happens only while
   * the task state is one of those (Nova's `expected_task_state`): a server
   * deleted or reset meanwhile is left alone and the answer says so.
   */
  async updateInstance(uuid: string, values: InstanceValues, expected?: (string | null)[]): Promise<{ updated: boolean; deleted: boolean }> {
    const row = await this.compute.db.selectFrom('instance').select(['task_state', 'deleted']).where('uuid', '=', uuid).executeTakeFirst();
    if (!row || row.deleted) return { updated: false, deleted: true };
    if (expected && !expected.includes(row.task_state)) return { updated: false, deleted: false };
    let query = this.compute.db
      .updateTable('instance')
      .set({ ...instanceColumns(values), updated_at: isoNow() })
      .where('uuid', '=', uuid)
      .where('deleted', '=', 0);
    if (expected) {
      const states = expected.filter((s): s is string => s !== null);
      query = query.where((eb) => (expected.includes(null) ? eb.or([eb('task_state', 'is', null), ...(states.length ? [eb('task_state', 'in', states)] : [])]) : eb('task_state', 'in', states)));
    }
    const result = await query.executeTakeFirst();
    return { updated: Number(result.numUpdatedRows) > 0, deleted: false };
  }

  private async recordFault(args: { uuid: string; code: number; message: string; details: string; host: string | null }): Promise<void> {
    await this.compute.db
      .insertInto('instance_fault')
      .values({ id: newUuid(), instance_uuid: args.uuid, code: args.code, message: args.message.slice(0, 255), details: args.details, host: args.host, created_at: isoNow() })
      .execute();
  }

  /** Schedules servers recorded together (one request) and sends each to its host. */
  async buildInstances(uuids: string[], actionIds: Record<string, string>, userToken?: string): Promise<void> {
    // Every server's event starts before its row is read, so that once the event of a server
    // deleted meanwhile has finished, nothing of this build can claim for it any more.
    const events = new Map<string, string>();
    for (const uuid of uuids) {
      const actionId = actionIds[uuid];
      if (actionId) events.set(uuid, await startActionEvent(this.compute.db, actionId, 'conductor_schedule_and_build_instances', null));
    }
    const rows = await this.compute.db.selectFrom('instance').selectAll().where('uuid', 'in', uuids).where('deleted', '=', 0).execute();
    const ordered = uuids.filter((u) => rows.some((r) => r.uuid === u));
    for (const uuid of uuids) {
      const event = events.get(uuid);
      if (event && !ordered.includes(uuid)) await finishActionEvent(this.compute.db, event);
    }
    if (rows.length === 0) return;
    const spec = parseJson<RequestSpec>(rows[0]?.request_spec, {} as RequestSpec);
    let selections: Selection[];
    try {
      selections = await this.compute.bus.call<Selection[]>({ topic: SCHEDULER_TOPIC }, 'select_destinations', { spec, instance_uuids: ordered });
    } catch (err) {
      const message = err instanceof RemoteError && err.excType === 'NoValidHost' ? err.message : `Build of instance failed: ${err instanceof Error ? err.message : String(err)}`;
      for (const uuid of ordered) {
        await this.placement.deleteAllocations(uuid).catch((e: unknown) => this.compute.log.warn({ err: e, instance_uuid: uuid }, 'could not free a claim'));
        // The action's error first: a client that sees the server in ERROR sees why in its actions.
        const event = events.get(uuid);
        if (event) await finishActionEvent(this.compute.db, event, { message });
        await this.failBuild(uuid, message, '', null);
      }
      return;
    }
    for (const [i, uuid] of ordered.entries()) {
      const [destination, ...alternates] = selections[i] ?? [];
      const event = events.get(uuid);
      // The event ends once the server is on its host, or its claim is freed (deleted meanwhile).
      const sent = destination ? await this.sendToHost({ instance_uuid: uuid, spec, destination, alternates, attempts: [destination.host], action_id: actionIds[uuid] ?? '', ...(userToken ? { user_token: userToken } : {}) }) : false;
      if (destination && !sent) await this.placement.deleteAllocations(uuid);
      if (event) await finishActionEvent(this.compute.db, event);
    }
  }

  /** Records the chosen host on the server and casts the build to it; false when the server went meanwhile. */
  private async sendToHost(request: BuildRequest): Promise<boolean> {
    const zone = await zoneOfHost(this.compute, request.destination.host);
    const result = await this.compute.db
      .updateTable('instance')
      .set({ host: request.destination.host, node: request.destination.node, availability_zone: zone, task_state: 'scheduling', updated_at: isoNow() })
      .where('uuid', '=', request.instance_uuid)
      .where('deleted', '=', 0)
      // A delete that began meanwhile wins: the server gets no host after its delete read that it had none.
      .where((eb) => eb.or([eb('task_state', 'is', null), eb('task_state', '!=', 'deleting')]))
      .executeTakeFirst();
    if (Number(result.numUpdatedRows) === 0) return false;
    await this.agents.buildAndRun(request.destination.host, request);
    return true;
  }



  /**
   * An agent could not build a server (it already undid what it did on the
   * host). Its claim is freed; the next alternate that still has room is
   * claimed and tried, up to `max_attempts` hosts; otherwise the server goes
   * to ERROR with the fault.
   */
  async buildFailed(request: BuildRequest, message: string, details: string, reschedule: boolean): Promise<void> {
    await this.placement.deleteAllocations(request.instance_uuid);
    if (reschedule && request.attempts.length < this.compute.config.compute.max_attempts) {
      const alternates = [...request.alternates];
      while (alternates.length > 0) {
        const next = alternates.shift();
        if (!next || request.attempts.includes(next.host)) continue;
        if (await this.placement.claim(request.instance_uuid, next.allocation, request.spec.project_id, request.spec.user_id)) {
          this.compute.log.info({ instance_uuid: request.instance_uuid, from: request.destination.host, to: next.host }, 'rescheduling a failed build');
          const sent = await this.sendToHost({ ...request, destination: next, alternates, attempts: [...request.attempts, next.host] });
          if (!sent) await this.placement.deleteAllocations(request.instance_uuid);
          return;
        }
      }
    }
    await this.failBuild(request.instance_uuid, message, details, request.destination.host);
  }

  /** A build that cannot go on: ERROR with the fault, no host (Nova keeps the server, counted in quota, until deleted). */
  private async failBuild(uuid: string, message: string, details: string, host: string | null): Promise<void> {
    // The fault first: whoever sees ERROR must also see why.
    await this.recordFault({ uuid, code: 500, message, details, host });
    await this.compute.db.updateTable('instance').set({ vm_state: 'error', task_state: null, power_state: 0, host: null, node: null, updated_at: isoNow() }).where('uuid', '=', uuid).execute();
    this.compute.notify('compute.instance.create.error', { instance_id: uuid, message });
  }

  /** An agent destroyed a server: it is deleted, its claim and records go. */
  async instanceDestroyed(uuid: string): Promise<void> {
    await this.markDeleted(uuid);
    await this.placement.deleteAllocations(uuid);
    await this.dropOpenMigrations(uuid);
  }

  /**
   * A server deleted in the middle of a move (or in VERIFY_RESIZE): what the
   * migration held in placement is freed, the guest left on the other host
   * removed, the migration closed (Nova confirms it on delete).
   */
  private async dropOpenMigrations(uuid: string): Promise<void> {
    const open = await this.compute.db.selectFrom('migration').selectAll().where('instance_uuid', '=', uuid).where('status', 'in', ['accepted', 'pre-migrating', 'migrating', 'post-migrating', 'finished', 'confirming', 'reverting', 'queued', 'preparing', 'running']).execute();
    for (const migration of open) {
      await this.placement.deleteAllocations(migration.uuid).catch((err: unknown) => this.compute.log.warn({ err, migration_uuid: migration.uuid }, 'could not free a migration claim'));
      for (const host of new Set([migration.source_compute, migration.dest_compute])) {
        if (host) await this.compute.bus.cast({ topic: COMPUTE_TOPIC, server: host }, 'destroy_guest', { instance_uuid: uuid }).catch(() => undefined);
      }
      await this.compute.db.updateTable('migration').set({ status: migration.status === 'finished' || migration.status === 'confirming' ? 'confirmed' : 'error', updated_at: isoNow() }).where('uuid', '=', migration.uuid).execute();
    }
  }

  /** Marks a server deleted and removes what belongs to it only. */
  async markDeleted(uuid: string): Promise<void> {
    const now = isoNow();
    await this.compute.db.transaction().execute(async (trx) => {
      await trx.updateTable('instance').set({ deleted: 1, deleted_at: now, terminated_at: now, updated_at: now, vm_state: 'deleted', task_state: null, power_state: 0 }).where('uuid', '=', uuid).execute();
      await trx.deleteFrom('virtual_interface').where('instance_uuid', '=', uuid).execute();
      await trx.deleteFrom('instance_group_member').where('instance_uuid', '=', uuid).execute();
      await trx.deleteFrom('instance_tag').where('instance_uuid', '=', uuid).execute();
      await trx.deleteFrom('instance_system_metadata').where('instance_uuid', '=', uuid).execute();
      // The volumes were detached (and deleted when marked so) by whoever destroyed the server.
      await trx.deleteFrom('block_device_mapping').where('instance_uuid', '=', uuid).execute();
    });
    this.compute.notify('compute.instance.delete.end', { instance_id: uuid });
  }
}
