import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import { AGENT_TYPES, PLUGIN_TOPIC, type AgentState, type AgentStatus } from '../agents/interfaces.js';
import { createTestNetwork, expectNeutronError, TEST_AGENT_HOST, type TestNetwork } from '../testing.js';

// Facts from neutron-lib's api-ref (agents.inc, dhcp-agent-scheduler.inc,
// l3-agent-scheduler.inc), Neutron's agents_db and agentschedulers_db, and
// Tempest's test_agent_management_negative / test_dhcp_agent_scheduler.

let t: TestNetwork;

before(async () => {
  t = await createTestNetwork({}, { agents: true });
});

after(async () => {
  await t?.close();
});

async function agents(query = ''): Promise<Record<string, any>[]> {
  const res = await t.request('GET', `/v2.0/agents${query}`, { user: t.admin });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body.agents as Record<string, any>[];
}

async function agentOf(type: string, host = TEST_AGENT_HOST): Promise<Record<string, any>> {
  const found = (await agents()).find((a) => a.agent_type === type && a.host === host);
  assert.ok(found, `${type} on ${host} listed`);
  return found;
}

/** How many notifications the fake agent of that type on the test host has heard so far. */
function heardSoFar(agentType: string): number {
  return t.agents.find((a) => a.identity.agentType === agentType)?.calls.length ?? 0;
}

/**
 * Waits (up to a second) until the fake agent of that type on the test host
 * heard `method` with `about` in its arguments (after its first `since` notifications).
 */
async function heard(agentType: string, method: string, about = '', since = 0): Promise<boolean> {
  const fake = t.agents.find((a) => a.identity.agentType === agentType);
  const match = (): boolean => fake?.calls.slice(since).some((c) => c.method === method && JSON.stringify(c.args).includes(about)) ?? false;
  for (let i = 0; i < 50 && !match(); i++) await sleep(20);
  return match();
}

function report(state: Partial<AgentState> & { agent_type: string; host: string }): Promise<AgentStatus> {
  return t.net.bus.call<AgentStatus>({ topic: PLUGIN_TOPIC }, 'report_state', { agent_state: { binary: 'test-agent', topic: 'N/A', configurations: {}, ...state }, time: new Date().toISOString() }, { timeoutMs: 5000 });
}

test('the fake agents heartbeat over the bus and are listed alive, with their attributes', async () => {
  const list = await agents();
  const types = list.filter((a) => a.host === TEST_AGENT_HOST).map((a) => a.agent_type as string);
  assert.deepEqual(types.sort(), [AGENT_TYPES.dhcp, AGENT_TYPES.l3, AGENT_TYPES.bridge, AGENT_TYPES.metadata].sort(), 'one agent of each type on the host');
  const dhcp = await agentOf(AGENT_TYPES.dhcp);
  assert.equal(dhcp.alive, true, 'a fresh heartbeat is alive');
  assert.equal(dhcp.admin_state_up, true, 'new agents are enabled');
  assert.equal(dhcp.topic, 'dhcp_agent', 'DHCP topic');
  assert.equal(dhcp.binary, 'stratus-dhcp-agent', 'binary');
  assert.equal(dhcp.availability_zone, 'nova', 'DHCP agents report the zone');
  assert.equal(dhcp.description, null, 'no description yet');
  assert.equal(dhcp.resources_synced, null, 'not a placement reporter');
  assert.equal(typeof dhcp.configurations, 'object', 'configurations is a mapping');
  assert.match(dhcp.heartbeat_timestamp, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/, 'agent times are Neutron\'s "YYYY-MM-DD HH:MM:SS"');
  assert.match(dhcp.created_at, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/, 'created_at format');
  const bridge = await agentOf(AGENT_TYPES.bridge);
  assert.equal(bridge.topic, 'N/A', 'the bridge agent reports no topic');
  assert.equal(bridge.availability_zone, null, 'only DHCP and L3 agents have a zone');
});

test('an agent whose last heartbeat is older than agent_down_time is shown dead, and a heartbeat revives it', async () => {
  const host = 'stale-host';
  assert.equal(await report({ agent_type: AGENT_TYPES.bridge, host }), 'new', 'first heartbeat registers');
  const old = new Date(Date.now() - (t.config.network.agent_down_time + 5) * 1000).toISOString();
  await t.net.db.updateTable('agent').set({ heartbeat_timestamp: old }).where('host', '=', host).execute();
  const stale = await agentOf(AGENT_TYPES.bridge, host);
  assert.equal(stale.alive, false, 'heartbeat too old: dead');
  const dead = await agents('?alive=false');
  assert.deepEqual(
    dead.map((a) => a.host),
    [host],
    'alive=false filters the dead ones',
  );
  assert.equal(await report({ agent_type: AGENT_TYPES.bridge, host }), 'revived', 'the server saw it come back');
  assert.equal((await agentOf(AGENT_TYPES.bridge, host)).alive, true, 'alive again');
});

test('heartbeats update one row per (type, host); started_at moves only when the agent restarted', async () => {
  const host = 'restart-host';
  await report({ agent_type: AGENT_TYPES.l3, host, start_flag: true, configurations: { routers: 0 } });
  const first = await agentOf(AGENT_TYPES.l3, host);
  await sleep(1100);
  await report({ agent_type: AGENT_TYPES.l3, host, configurations: { routers: 3 } });
  const second = await agentOf(AGENT_TYPES.l3, host);
  assert.equal(second.id, first.id, 'same agent');
  assert.equal(second.started_at, first.started_at, 'no restart, same started_at');
  assert.notEqual(second.heartbeat_timestamp, first.heartbeat_timestamp, 'heartbeat moved');
  assert.deepEqual(second.configurations, { routers: 3 }, 'configurations replaced');
  await report({ agent_type: AGENT_TYPES.l3, host, start_flag: true });
  const third = await agentOf(AGENT_TYPES.l3, host);
  assert.notEqual(third.started_at, first.started_at, 'start_flag moves started_at');
  assert.equal((await agents(`?host=${host}`)).length, 1, 'still one row');
  await assert.rejects(
    t.net.bus.call({ topic: PLUGIN_TOPIC }, 'report_state', { agent_state: { host } }, { timeoutMs: 5000 }),
    (err: Error) => err.name === 'RemoteError',
    'a malformed heartbeat is refused',
  );
});

test('non-admins see no agents (empty list, 404 on one) and may not schedule (403)', async () => {
  const listed = await t.request('GET', '/v2.0/agents', { user: t.alpha });
  assert.equal(listed.status, 200, JSON.stringify(listed.body));
  assert.deepEqual(listed.body.agents, [], 'Neutron lists nothing to non-admins');
  const dhcp = await agentOf(AGENT_TYPES.dhcp);
  for (const method of ['GET', 'PUT', 'DELETE'] as const) {
    const res = await t.request(method, `/v2.0/agents/${dhcp.id}`, { user: t.alpha, ...(method === 'PUT' ? { payload: { agent: { description: 'x' } } } : {}) });
    expectNeutronError(res, 404, 'HTTPNotFound');
  }
  expectNeutronError(await t.request('GET', `/v2.0/agents/${dhcp.id}/dhcp-networks`, { user: t.alpha }), 403, 'PolicyNotAuthorized');
  expectNeutronError(await t.request('GET', `/v2.0/networks/${randomUUID()}/dhcp-agents`, { user: t.alphaReader }), 403, 'PolicyNotAuthorized');
  expectNeutronError(await t.request('POST', `/v2.0/agents/${dhcp.id}/l3-routers`, { user: t.alpha, payload: { router_id: randomUUID() } }), 403, 'PolicyNotAuthorized');
  assert.equal((await agentOf(AGENT_TYPES.dhcp)).description, null, 'the refused PUT changed nothing');
});

test('show with fields, filters, unknown filter and unknown agent', async () => {
  const l3 = await agentOf(AGENT_TYPES.l3);
  const shown = await t.request('GET', `/v2.0/agents/${l3.id}?fields=id&fields=alive`, { user: t.admin });
  assert.equal(shown.status, 200, JSON.stringify(shown.body));
  assert.deepEqual(shown.body.agent, { id: l3.id, alive: true }, 'only the fields asked');
  const filtered = await agents(`?agent_type=${encodeURIComponent(AGENT_TYPES.l3)}&host=${TEST_AGENT_HOST}`);
  assert.deepEqual(
    filtered.map((a) => a.id),
    [l3.id],
    'filter by type and host',
  );
  expectNeutronError(await t.request('GET', '/v2.0/agents?colour=blue', { user: t.admin }), 400, 'HTTPBadRequest');
  const missing = randomUUID();
  const res = await t.request('GET', `/v2.0/agents/${missing}`, { user: t.admin });
  assert.equal(res.status, 404, JSON.stringify(res.body));
  assert.deepEqual(res.body.NeutronError, { type: 'AgentNotFound', message: `Agent ${missing} could not be found.`, detail: '' }, 'Neutron fault');
});

test('PUT changes admin_state_up and description, tells the agent, and refuses other attributes', async () => {
  const dhcp = await agentOf(AGENT_TYPES.dhcp);
  const res = await t.request('PUT', `/v2.0/agents/${dhcp.id}`, { user: t.admin, payload: { agent: { admin_state_up: false, description: 'rack 7' } } });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.equal(res.body.agent.admin_state_up, false, 'disabled');
  assert.equal(res.body.agent.description, 'rack 7', 'described');
  const fake = t.agents.find((a) => a.identity.agentType === AGENT_TYPES.dhcp);
  await heard(AGENT_TYPES.dhcp, 'agent_updated');
  assert.deepEqual(
    fake?.calls.find((c) => c.method === 'agent_updated')?.args,
    { admin_state_up: false },
    'the agent heard it was disabled',
  );
  const back = await t.request('PUT', `/v2.0/agents/${dhcp.id}`, { user: t.admin, payload: { agent: { admin_state_up: 'true', description: null } } });
  assert.equal(back.status, 200, JSON.stringify(back.body));
  assert.equal(back.body.agent.admin_state_up, true, 'enabled again ("true" converts)');
  assert.equal(back.body.agent.description, null, 'description cleared');
  for (const [agent, why] of [
    [{ host: 'elsewhere' }, 'read-only attribute'],
    [{ admin_state_up: 'maybe' }, 'not a boolean'],
    [{ colour: 'red' }, 'unknown attribute'],
    [{ description: 'x'.repeat(256) }, 'too long'],
  ] as const) {
    const refused = await t.request('PUT', `/v2.0/agents/${dhcp.id}`, { user: t.admin, payload: { agent } });
    assert.equal(refused.status, 400, `${why}: ${JSON.stringify(refused.body)}`);
    assert.equal(refused.body.NeutronError?.type, 'HTTPBadRequest', why);
  }
  assert.deepEqual([(await agentOf(AGENT_TYPES.dhcp)).admin_state_up, (await agentOf(AGENT_TYPES.dhcp)).description], [true, null], 'refused PUTs changed nothing');
  expectNeutronError(await t.request('PUT', `/v2.0/agents/${randomUUID()}`, { user: t.admin, payload: { agent: { admin_state_up: true } } }), 404, 'AgentNotFound');
});

test('DELETE removes an agent and what it hosted; its next heartbeat registers it anew', async () => {
  const host = 'doomed-host';
  await report({ agent_type: AGENT_TYPES.dhcp, host, topic: 'dhcp_agent' });
  const doomed = await agentOf(AGENT_TYPES.dhcp, host);
  const network = await t.create(t.alpha, 'networks', 'network', { name: 'doomed-net' });
  assert.equal((await t.request('POST', `/v2.0/agents/${doomed.id}/dhcp-networks`, { user: t.admin, payload: { network_id: network.id } })).status, 201, 'hosts a network');
  const res = await t.request('DELETE', `/v2.0/agents/${doomed.id}`, { user: t.admin });
  assert.equal(res.status, 204, JSON.stringify(res.body));
  assert.deepEqual(await t.net.db.selectFrom('network_dhcp_agent').selectAll().where('agent_id', '=', doomed.id).execute(), [], 'its network is no longer hosted');
  expectNeutronError(await t.request('GET', `/v2.0/agents/${doomed.id}`, { user: t.admin }), 404, 'AgentNotFound');
  expectNeutronError(await t.request('DELETE', `/v2.0/agents/${doomed.id}`, { user: t.admin }), 404, 'AgentNotFound');
  assert.equal(await report({ agent_type: AGENT_TYPES.dhcp, host, topic: 'dhcp_agent' }), 'new', 'a new agent');
  const reborn = await agentOf(AGENT_TYPES.dhcp, host);
  assert.notEqual(reborn.id, doomed.id, 'with a new id');
  // Out of the way of the scheduling tests below.
  assert.equal((await t.request('DELETE', `/v2.0/agents/${reborn.id}`, { user: t.admin })).status, 204, 'removed again');
});

test('a network with a DHCP subnet is scheduled to the DHCP agent; admins move it by hand', async () => {
  const network = await t.create(t.alpha, 'networks', 'network', { name: 'dhcp-net' });
  // Creating its DHCP subnet schedules it.
  await t.create(t.alpha, 'subnets', 'subnet', { network_id: network.id, ip_version: 4, cidr: '10.0.5.0/24' });
  const dhcp = await agentOf(AGENT_TYPES.dhcp);
  const hosting = await t.request('GET', `/v2.0/networks/${network.id}/dhcp-agents`, { user: t.admin });
  assert.equal(hosting.status, 200, JSON.stringify(hosting.body));
  assert.deepEqual(
    (hosting.body.agents as { id: string }[]).map((a) => a.id),
    [dhcp.id],
    'scheduled to the one DHCP agent',
  );
  const hosted = await t.request('GET', `/v2.0/agents/${dhcp.id}/dhcp-networks`, { user: t.admin });
  assert.equal(hosted.status, 200, JSON.stringify(hosted.body));
  assert.ok(
    (hosted.body.networks as { id: string }[]).some((n) => n.id === network.id && (n as Record<string, unknown>).name === 'dhcp-net'),
    'the agent lists the network (full view)',
  );
  assert.ok(await heard(AGENT_TYPES.dhcp, 'network_create_end', network.id), 'the agent was told');
  const seen = heardSoFar(AGENT_TYPES.dhcp);
  assert.equal((await t.request('PUT', `/v2.0/networks/${network.id}`, { user: t.alpha, payload: { network: { name: 'dhcp-net-2' } } })).status, 200, 'renamed');
  assert.ok(await heard(AGENT_TYPES.dhcp, 'network_update_end', network.id, seen), 'the hosting agent heard it changed');

  const path = `/v2.0/agents/${dhcp.id}/dhcp-networks`;
  assert.equal((await t.request('DELETE', `${path}/${network.id}`, { user: t.admin })).status, 204, 'removed');
  expectNeutronError(await t.request('DELETE', `${path}/${network.id}`, { user: t.admin }), 409, 'NetworkNotHostedByDhcpAgent');
  const added = await t.request('POST', path, { user: t.admin, payload: { network_id: network.id } });
  assert.equal(added.status, 201, JSON.stringify(added.body));
  assert.equal(added.raw.length, 0, 'empty body');
  expectNeutronError(await t.request('POST', path, { user: t.admin, payload: { network_id: network.id } }), 409, 'NetworkHostedByDHCPAgent');
  const l3 = await agentOf(AGENT_TYPES.l3);
  expectNeutronError(await t.request('POST', `/v2.0/agents/${l3.id}/dhcp-networks`, { user: t.admin, payload: { network_id: network.id } }), 404, 'InvalidDHCPAgent');
  expectNeutronError(await t.request('POST', path, { user: t.admin, payload: { network_id: randomUUID() } }), 404, 'NetworkNotFound');
  expectNeutronError(await t.request('POST', path, { user: t.admin, payload: { network_id: 'nope' } }), 400, 'HTTPBadRequest', "Invalid input for network_id. Reason: 'nope' is not a valid UUID.");
  expectNeutronError(await t.request('POST', path, { user: t.admin, payload: {} }), 400, 'HTTPBadRequest', "Failed to parse request. Required attribute 'network_id' not specified");
  assert.deepEqual(
    ((await t.request('GET', `/v2.0/networks/${network.id}/dhcp-agents`, { user: t.admin })).body.agents as { id: string }[]).map((a) => a.id),
    [dhcp.id],
    'refused requests changed nothing',
  );

  const port = await t.create(t.alpha, 'ports', 'port', { network_id: network.id, fixed_ips: [] });
  await t.request('DELETE', `/v2.0/ports/${port.id}`, { user: t.alpha });
  assert.ok(await heard(AGENT_TYPES.dhcp, 'port_update_end', port.id), 'the DHCP agent heard of the new port');
  assert.ok(await heard(AGENT_TYPES.dhcp, 'port_delete_end', port.id), 'and of its deletion');
});

test('routers are hosted by an L3 agent: add, list both ways, conflict with another agent, remove', async () => {
  const router = await t.create(t.alpha, 'routers', 'router', { name: 'r1' });
  const l3 = await agentOf(AGENT_TYPES.l3);
  const path = `/v2.0/agents/${l3.id}/l3-routers`;
  // A router that changed is scheduled at once (to the least loaded L3 agent): move it by hand.
  const before = await t.request('GET', `/v2.0/routers/${router.id}/l3-agents`, { user: t.admin });
  for (const agent of before.body.agents as { id: string }[]) assert.equal((await t.request('DELETE', `/v2.0/agents/${agent.id}/l3-routers/${router.id}`, { user: t.admin })).status, 204, 'unscheduled');
  const added = await t.request('POST', path, { user: t.admin, payload: { router_id: router.id } });
  assert.equal(added.status, 201, JSON.stringify(added.body));
  assert.equal((await t.request('POST', path, { user: t.admin, payload: { router_id: router.id } })).status, 201, 'adding again changes nothing');
  const listed = await t.request('GET', path, { user: t.admin });
  assert.equal(listed.status, 200, JSON.stringify(listed.body));
  assert.deepEqual(
    (listed.body.routers as { id: string; name: string }[]).map((r) => [r.id, r.name]),
    [[router.id, 'r1']],
    'the agent hosts the router',
  );
  const hosting = await t.request('GET', `/v2.0/routers/${router.id}/l3-agents`, { user: t.admin });
  assert.equal(hosting.status, 200, JSON.stringify(hosting.body));
  assert.deepEqual(
    (hosting.body.agents as { id: string }[]).map((a) => a.id),
    [l3.id],
    'hosted by that agent',
  );
  const seen = heardSoFar(AGENT_TYPES.l3);
  assert.equal((await t.request('PUT', `/v2.0/routers/${router.id}`, { user: t.alpha, payload: { router: { name: 'r1' } } })).status, 200, 'updated');
  assert.ok(await heard(AGENT_TYPES.l3, 'routers_updated', router.id, seen), 'the hosting agent heard it changed');
  await report({ agent_type: AGENT_TYPES.l3, host: 'second-l3', topic: 'l3_agent' });
  const other = await agentOf(AGENT_TYPES.l3, 'second-l3');
  expectNeutronError(await t.request('POST', `/v2.0/agents/${other.id}/l3-routers`, { user: t.admin, payload: { router_id: router.id } }), 409, 'RouterHostedByL3Agent');
  const dhcp = await agentOf(AGENT_TYPES.dhcp);
  expectNeutronError(await t.request('POST', `/v2.0/agents/${dhcp.id}/l3-routers`, { user: t.admin, payload: { router_id: router.id } }), 404, 'InvalidL3Agent');
  expectNeutronError(await t.request('POST', path, { user: t.admin, payload: { router_id: randomUUID() } }), 404, 'RouterNotFound');
  assert.deepEqual(
    ((await t.request('GET', `/v2.0/routers/${router.id}/l3-agents`, { user: t.admin })).body.agents as { id: string }[]).map((a) => a.id),
    [l3.id],
    'refused requests changed nothing',
  );
  assert.equal((await t.request('DELETE', `${path}/${router.id}`, { user: t.admin })).status, 204, 'removed');
  const after = await t.request('GET', `/v2.0/routers/${router.id}/l3-agents`, { user: t.admin });
  assert.deepEqual(after.body.agents, [], 'no longer hosted');
  assert.ok(await heard(AGENT_TYPES.l3, 'router_added_to_agent', router.id), 'the agent heard of the router');
  assert.ok(await heard(AGENT_TYPES.l3, 'router_removed_from_agent', router.id), 'and of its removal');
});
