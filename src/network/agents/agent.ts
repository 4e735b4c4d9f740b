import type { Bus, Consumer, Handler } from '../../core/bus/index.js';
import type { Logger } from '../../core/logging.js';
import { AGENT_TOPICS, PLUGIN_TOPIC, type AgentNotifications, type AgentState, type AgentStatus, type PluginRpc } from './interfaces.js';

/** Who an agent is, as `GET /v2.0/agents` will show it. */
export interface AgentIdentity {
  agentType: string;
  binary: string;
  /** The topic it reports; notifications come to `<serveTopic>.<host>`. */
  topic: string;
  host: string;
  /** The topic it serves when not `topic` (the bridge agent reports `N/A`). Empty: serves nothing. */
  serveTopic?: string;
  availabilityZone?: string;
  configurations?: Record<string, unknown>;
}

export interface AgentOptions {
  /** Seconds between heartbeats (`network.report_interval`). */
  reportInterval: number;
  logger: Logger;
}

/**
 * The typed client of the server's agent endpoints ({@link PluginRpc}) on
 * the `network-plugin` topic. Rejects as `bus.call` does (timeout, remote error).
 */
export class PluginClient {
  constructor(
    private readonly bus: Bus,
    private readonly timeoutMs = 60_000,
  ) {}

  call<M extends keyof PluginRpc>(method: M, args: Parameters<PluginRpc[M]>[0]): Promise<ReturnType<PluginRpc[M]>> {
    return this.bus.call<ReturnType<PluginRpc[M]>>({ topic: PLUGIN_TOPIC }, method, args, { timeoutMs: this.timeoutMs });
  }
}

/**
 * A per-host agent: reports its state to the server every `reportInterval`
 * seconds (`report_state`, the first one after start with `start_flag`) and
 * serves its own topic for the server's notifications. Subclasses give the
 * notification handlers ({@link Agent.handlers}) and do the work.
 *
 * A heartbeat that fails is logged and retried at the next interval; the
 * agent never stops by itself. `start` and `stop` are idempotent.
 */
export class Agent {
  readonly plugin: PluginClient;
  protected readonly log: Logger;
  private timer: NodeJS.Timeout | null = null;
  private consumer: Consumer | null = null;
  private startFlag = true;
  private running = false;
  private reporting: Promise<AgentStatus | null> | null = null;
  /** How the server saw the last heartbeat (null before the first one succeeds). */
  lastStatus: AgentStatus | null = null;

  constructor(
    protected readonly bus: Bus,
    readonly identity: AgentIdentity,
    protected readonly options: AgentOptions,
  ) {
    this.plugin = new PluginClient(bus, Math.max(1, options.reportInterval) * 1000);
    this.log = options.logger.child({ agent: identity.agentType, host: identity.host });
  }

  /** The state a heartbeat carries; subclasses may add to `configurations`. */
  state(): AgentState {
    const { identity } = this;
    return {
      agent_type: identity.agentType,
      binary: identity.binary,
      topic: identity.topic,
      host: identity.host,
      ...(identity.availabilityZone !== undefined ? { availability_zone: identity.availabilityZone } : {}),
      configurations: { ...(identity.configurations ?? {}) },
      ...(this.startFlag ? { start_flag: true } : {}),
    };
  }

  /** The notification methods this agent serves (none by default). */
  protected handlers(): Partial<Record<keyof AgentNotifications, Handler>> {
    return {};
  }

  /** Serves the agent's topic, sends the first heartbeat and schedules the next ones. */
  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    const topic = this.identity.serveTopic ?? (this.identity.topic === AGENT_TOPICS.none ? '' : this.identity.topic);
    if (topic) this.consumer = await this.bus.serve(topic, this.identity.host, this.handlers() as Record<string, Handler>);
    await this.report();
    this.schedule();
  }

  /** Stops the heartbeats and the topic; waits for a heartbeat under way. */
  async stop(): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.reporting;
    await this.consumer?.stop();
    this.consumer = null;
  }

  /** Sends one heartbeat now; resolves with how the server saw it, or null when it failed (logged). */
  report(): Promise<AgentStatus | null> {
    this.reporting ??= this.sendReport().finally(() => {
      this.reporting = null;
    });
    return this.reporting;
  }

  private async sendReport(): Promise<AgentStatus | null> {
    try {
      const status = await this.plugin.call('report_state', { agent_state: this.state(), time: new Date().toISOString() });
      this.startFlag = false;
      if (status === 'revived') this.log.info('the server had thought this agent dead');
      this.lastStatus = status;
      return status;
    } catch (err) {
      this.log.warn({ err }, 'could not report state to the network server');
      return null;
    }
  }

  private schedule(): void {
    if (!this.running) return;
    this.timer = setTimeout(() => {
      void this.report().then(() => this.schedule());
    }, this.options.reportInterval * 1000);
    this.timer.unref();
  }
}
