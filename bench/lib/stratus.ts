import type { ChildProcess } from 'node:child_process';
import { track } from './proc.js';

/** A started server: `ready` settles when it says it is up (or failed). */
export interface Launch {
  ready: Promise<void>;
  /** Set when the start failed (the process exited, say); polling stops then. */
  failure(): Error | null;
}

/**
 * The environment of a benchmarked `stratus up`: only the services whose
 * ports are given, on those ports; the admin password; metrics off.
 */
export function stratusEnv(o: {
  identityPort: number;
  imagePort?: number;
  networkPort?: number;
  placementPort?: number;
  computePort?: number;
  volumePort?: number;
  /** The object-proxy's port; with it, `storagePorts` for the node's object, container and account servers. */
  objectPort?: number;
  storagePorts?: { object: number; container: number; account: number };
  password: string;
}): NodeJS.ProcessEnv {
  // Only the services measured run: the others would take ports and memory.
  const ports: [service: string, port: number | undefined][] = [['image', o.imagePort], ['network', o.networkPort], ['placement', o.placementPort], ['compute', o.computePort], ['volume', o.volumePort], ['object', o.objectPort]];
  const storage = o.storagePorts;
  const services = ['identity', ...ports.filter(([, port]) => port !== undefined).map(([service]) => service)];
  return {
    ...process.env,
    STRATUS_SERVICES: services.join(','),
    STRATUS_IDENTITY__PORT: String(o.identityPort),
    ...Object.fromEntries(ports.filter(([, port]) => port !== undefined).map(([service, port]) => [`STRATUS_${service.toUpperCase()}__PORT`, String(port)])),
    ...(storage
      ? {
          STRATUS_OBJECT__STORAGE__OBJECT_PORT: String(storage.object),
          STRATUS_OBJECT__STORAGE__CONTAINER_PORT: String(storage.container),
          STRATUS_OBJECT__STORAGE__ACCOUNT_PORT: String(storage.account),
        }
      : {}),
    STRATUS_ADMIN_PASSWORD: o.password,
    STRATUS_METRICS__ENABLED: 'false',
    // The control plane is measured; a bench that wants packets to move (bench/network-dataplane) says so.
    STRATUS_NETWORK__DRIVER: 'fake',
  };
}

/**
 * `node [nodeArgs] --enable-source-maps MAIN up --data DIR` (what ./stratus up
 * runs): one child process at a time, started, watched for "Stratus is up",
 * and stopped.
 */
export class StratusProcess {
  private child: ChildProcess | null = null;
  /** The last output of the process (for error messages). */
  output = '';

  /** @param main path of the build's src/cli/main.js */
  constructor(
    private readonly main: string,
    private readonly nodeArgs: string[] = [],
  ) {}

  /** Starts `stratus up --data dataDir [upArgs]` with `env`; ready on "Stratus is up", failed when it exits first. */
  launch(dataDir: string, env: NodeJS.ProcessEnv, upArgs: string[] = []): Launch {
    let failure: Error | null = null;
    this.output = '';
    const child = track(process.execPath, [...this.nodeArgs, '--enable-source-maps', this.main, 'up', '--data', dataDir, ...upArgs], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    const ready = new Promise<void>((resolve, reject) => {
      const onData = (chunk: Buffer): void => {
        this.output = (this.output + chunk.toString()).slice(-20000);
        if (this.output.includes('Stratus is up')) resolve();
      };
      child.stdout?.on('data', onData);
      child.stderr?.on('data', onData);
      child.once('error', (err) => {
        failure = err;
        reject(err);
      });
      child.once('exit', (code, signal) => {
        failure = new Error(`stratus up exited with ${code ?? signal}:\n${this.output.trim()}`);
        reject(failure);
      });
    });
    return { ready, failure: () => failure };
  }

  /** The PID of the process while it runs. */
  get pid(): number | undefined {
    const child = this.child;
    return child && child.exitCode === null && child.signalCode === null ? child.pid : undefined;
  }

  /** SIGTERM (Stratus stops cleanly, and writes a CPU profile it was asked for), SIGKILL after 30 s; waits for the exit. Safe to call twice. */
  async stop(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 30000);
    await exited;
    clearTimeout(timer);
  }
}
