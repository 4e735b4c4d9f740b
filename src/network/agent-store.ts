import type { Kysely } from 'kysely';
import type { AgentState, AgentStatus } from './agents/interfaces.js';
import { isoNow, json, newUuid } from './common.js';
import type { AgentRow, NetworkSchema } from './db/schema.js';
import { notFound } from './errors.js';
import { retryOnConflict } from './ipam/allocator.js';
import type { NetworkService } from './network.js';

/**
 * The `agent` table: rows are created and refreshed by heartbeats
 * (`report_state`), shown by `GET /v2.0/agents`. An agent is alive while its
 * last heartbeat is younger than `network.agent_down_time` seconds.
 */

/** True when the heartbeat is younger than `agent_down_time` seconds. */
export function isAlive(net: NetworkService, heartbeat: string, now = Date.now()): boolean {
  const at = Date.parse(heartbeat);
  return Number.isFinite(at) && now - at <= net.config.network.agent_down_time * 1000;
}

/** Agents show times as `2017-09-12 19:40:38` (Neutron's, unlike other resources). */
function agentTime(stored: string): string {
  return stored.replace('T', ' ').replace(/(\.\d+)?Z$/, '');
}

/** The API view of an agent row. */
export function agentView(net: NetworkService, row: AgentRow, now = Date.now()): Record<string, unknown> {
  return {
    id: row.id,
    agent_type: row.agent_type,
    binary: row.binary,
    topic: row.topic,
    host: row.host,
    admin_state_up: Boolean(row.admin_state_up),
    availability_zone: row.availability_zone,
    alive: isAlive(net, row.heartbeat_timestamp, now),
    configurations: json<Record<string, unknown>>(row.configurations, {}),
    resources_synced: row.resources_synced === null ? null : Boolean(row.resources_synced),
    description: row.description === '' ? null : row.description,
    created_at: agentTime(row.created_at),
    started_at: agentTime(row.started_at),
    heartbeat_timestamp: agentTime(row.heartbeat_timestamp),
  };
}

/** The agent row, or 404 `AgentNotFound`. */
export async function findAgent(db: Kysely<NetworkSchema>, id: string): Promise<AgentRow> {
  const row = await db.selectFrom('agent').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw notFound('agent', id);
  return row;
}

/** The agent of that type on that host, if it ever reported. */
export async function agentOnHost(db: Kysely<NetworkSchema>, agentType: string, host: string): Promise<AgentRow | undefined> {
  return db.selectFrom('agent').selectAll().where('agent_type', '=', agentType).where('host', '=', host).executeTakeFirst();
}

/**
 * Records a heartbeat: creates the agent's row (admin state up) or refreshes
 * its heartbeat, configurations and availability zone; `started_at` moves
 * when the agent says it (re)started. Safe under concurrent heartbeats of a
 * new agent (the (agent_type, host) key decides, the loser updates).
 * Answers `new`, `alive`, or `revived` (it had been dead).
 */
export async function recordHeartbeat(net: NetworkService, state: AgentState): Promise<{ status: AgentStatus; row: AgentRow }> {
  return retryOnConflict(async () => {
    const now = isoNow();
    const existing = await agentOnHost(net.db, state.agent_type, state.host);
    const changes = {
      binary: state.binary,
      topic: state.topic,
      configurations: JSON.stringify(state.configurations ?? {}),
      ...(state.availability_zone !== undefined ? { availability_zone: state.availability_zone } : {}),
      ...(state.resources_synced !== undefined ? { resources_synced: state.resources_synced === null ? null : Number(state.resources_synced) } : {}),
      heartbeat_timestamp: now,
    };
    if (existing) {
      const status: AgentStatus = isAlive(net, existing.heartbeat_timestamp) ? 'alive' : 'revived';
      const update = { ...changes, ...(state.start_flag ? { started_at: now } : {}) };
      await net.db.updateTable('agent').set(update).where('id', '=', existing.id).execute();
      return { status, row: { ...existing, ...update } };
    }
    const row: AgentRow = {
      id: newUuid(),
      agent_type: state.agent_type,
      host: state.host,
      availability_zone: state.availability_zone ?? null,
      admin_state_up: 1,
      resources_synced: null,
      description: '',
      started_at: now,
      created_at: now,
      ...changes,
    };
    await net.db.insertInto('agent').values(row).execute();
    return { status: 'new' as AgentStatus, row };
  }, 3);
}
