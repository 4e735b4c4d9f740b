import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import { createBus, type Bus } from '../../core/bus/index.js';
import { configureLogging } from '../../core/logging.js';
import { FakeAgent, startFakeAgents } from './fake-agents.js';
import { AGENT_TYPES, PLUGIN_TOPIC, type ReportStateArgs } from './interfaces.js';

// The agent side alone: a bus and a stand-in for the server's report_state.

let bus: Bus;
const log = configureLogging({ level: process.env.STRATUS_TEST_LOG_LEVEL ?? 'silent' });

before(async () => {
  bus = await createBus(`memory://agent-${randomUUID()}`);
});

after(async () => {
  await bus.close();
});

async function fakeServer(answer: (args: ReportStateArgs) => unknown): Promise<{ reports: ReportStateArgs[]; stop(): Promise<void> }> {
  const reports: ReportStateArgs[] = [];
  const consumer = await bus.serve(PLUGIN_TOPIC, 'server-1', {
    report_state: (args: ReportStateArgs) => {
      reports.push(args);
      return answer(args);
    },
  });
  return { reports, stop: () => consumer.stop() };
}

test('an agent reports at once with start_flag, then every interval without it', async () => {
  const server = await fakeServer(() => 'alive');
  const agent = new FakeAgent(bus, { agentType: AGENT_TYPES.l3, binary: 'test-l3', topic: 'l3_agent', host: 'h1', availabilityZone: 'az9', configurations: { routers: 0 } }, { reportInterval: 0.05, logger: log });
  try {
    await agent.start();
    assert.equal(server.reports.length, 1, 'first heartbeat sent by start');
    await sleep(200);
    await agent.stop();
    const count = server.reports.length;
    assert.ok(count >= 3, `heartbeats keep coming (${count})`);
    const [first, second] = server.reports;
    assert.deepEqual(
      first?.agent_state,
      { agent_type: 'L3 agent', binary: 'test-l3', topic: 'l3_agent', host: 'h1', availability_zone: 'az9', configurations: { routers: 0 }, start_flag: true },
      'the first heartbeat says the agent started',
    );
    assert.equal(second?.agent_state.start_flag, undefined, 'later ones do not');
    assert.ok(!Number.isNaN(Date.parse(first?.time ?? '')), 'time is the agent clock');
    await sleep(150);
    assert.equal(server.reports.length, count, 'stop ends the heartbeats');
  } finally {
    await agent.stop();
    await server.stop();
  }
});

test('a failed heartbeat is retried; start_flag stays until one succeeds', async () => {
  let fail = true;
  const server = await fakeServer(() => {
    if (fail) throw new Error('database down');
    return 'new';
  });
  const agent = new FakeAgent(bus, { agentType: AGENT_TYPES.dhcp, binary: 'test-dhcp', topic: 'dhcp_agent', host: 'h2' }, { reportInterval: 0.05, logger: log });
  try {
    await agent.start();
    assert.equal(agent.lastStatus, null, 'the first heartbeat failed, quietly');
    fail = false;
    for (let i = 0; i < 40 && agent.lastStatus === null; i++) await sleep(20);
    assert.equal(agent.lastStatus, 'new', 'a later heartbeat got through');
    const succeeded = server.reports.findIndex((r, i) => i > 0 && r.agent_state.start_flag === true);
    assert.ok(succeeded > 0, 'the retried heartbeat still said the agent started');
  } finally {
    await agent.stop();
    await server.stop();
  }
});

test('an agent serves <topic>.<host> and records what the server tells it', async () => {
  const server = await fakeServer(() => 'new');
  const started = await startFakeAgents(bus, { host: 'h3', availabilityZone: 'nova', reportInterval: 60, logger: log });
  try {
    assert.deepEqual(
      server.reports.map((r) => r.agent_state.agent_type).sort(),
      [AGENT_TYPES.bridge, AGENT_TYPES.dhcp, AGENT_TYPES.l3, AGENT_TYPES.metadata].sort(),
      'the four agents of a host reported',
    );
    await bus.cast({ topic: 'dhcp_agent', server: 'h3' }, 'network_create_end', { network: { id: 'n1' } });
    await bus.cast({ topic: 'dhcp_agent', server: 'other-host' }, 'network_create_end', { network: { id: 'n2' } });
    await bus.cast({ topic: 'q-agent-notifier', server: 'h3' }, 'agent_updated', { admin_state_up: false });
    const dhcp = started.agents.find((a) => a.identity.agentType === AGENT_TYPES.dhcp);
    const bridge = started.agents.find((a) => a.identity.agentType === AGENT_TYPES.bridge);
    for (let i = 0; i < 50 && ((dhcp?.calls.length ?? 0) === 0 || (bridge?.calls.length ?? 0) === 0); i++) await sleep(20);
    assert.deepEqual(dhcp?.calls, [{ method: 'network_create_end', args: { network: { id: 'n1' } } }], 'only its own host');
    assert.deepEqual(bridge?.calls, [{ method: 'agent_updated', args: { admin_state_up: false } }], 'the bridge agent listens on the notifier topic');
  } finally {
    await started.stop();
    await server.stop();
  }
});
