import fs from 'node:fs';
import path from 'node:path';
import { assertPortsFree, issueToken } from '../../lib/http.js';
import { haveCommand, outputTail, readPidFile, runCommand, sleep, treePids, within, type CommandResult } from '../../lib/proc.js';
import { StratusProcess, stratusEnv } from '../../lib/stratus.js';

/** An image service under test, running. */
export interface ImageServer {
  readonly name: 'stratus' | 'glance';
  /** Base URL of the Image API, e.g. http://127.0.0.1:9371 */
  readonly imageUrl: string;
  /** A project-scoped admin token from the server's own identity service. */
  token(): Promise<string>;
  /** PIDs of the server's processes (root and descendants) now. */
  pids(): number[];
  /** The local file that holds an image's data in the server's store. */
  storedPath(imageId: string): string;
  /** Stops what this object started; safe to call twice. */
  stop(): Promise<void>;
}

async function tokenOf(url: string, password: string): Promise<string> {
  const attempt = await issueToken(url, password, 30000);
  if (!attempt.token) throw new Error(`no token from ${url}: ${attempt.error ?? ''}`);
  return attempt.token;
}

/** `stratus up` (node dist/src/cli/main.js up --data DIR): identity and image in one process. */
export class StratusServer implements ImageServer {
  readonly name = 'stratus' as const;
  readonly imageUrl: string;
  private readonly identityUrl: string;

  private constructor(
    identityPort: number,
    imagePort: number,
    private readonly password: string,
    readonly dataDir: string,
    private readonly proc: StratusProcess,
  ) {
    this.imageUrl = `http://127.0.0.1:${imagePort}`;
    this.identityUrl = `http://127.0.0.1:${identityPort}`;
  }

  /**
   * Starts `node [nodeArgs] --enable-source-maps MAIN up --data DIR` on a new
   * data directory and waits for "Stratus is up" (at most `timeoutS`). Stops
   * it again when the start fails.
   */
  static async start(opts: { main: string; nodeArgs: string[]; identityPort: number; imagePort: number; password: string; dataDir: string; timeoutS: number }): Promise<StratusServer> {
    await assertPortsFree([
      [opts.identityPort, 'STRATUS_PORT'],
      [opts.imagePort, 'STRATUS_IMAGE_PORT'],
    ]);
    const server = new StratusServer(opts.identityPort, opts.imagePort, opts.password, opts.dataDir, new StratusProcess(opts.main, opts.nodeArgs));
    const env = stratusEnv({ identityPort: opts.identityPort, imagePort: opts.imagePort, password: opts.password });
    try {
      await within(server.proc.launch(opts.dataDir, env).ready, opts.timeoutS * 1000, 'stratus up');
    } catch (err) {
      await server.stop();
      throw err;
    }
    return server;
  }

  token(): Promise<string> {
    return tokenOf(this.identityUrl, this.password);
  }

  pids(): number[] {
    const pid = this.proc.pid;
    return pid === undefined ? [] : treePids([pid]);
  }

  storedPath(imageId: string): string {
    // The default file store: <data_dir>/images/file/<image id>.
    return path.join(this.dataDir, 'images', 'file', imageId);
  }

  /** SIGTERM (Stratus stops cleanly, and writes its CPU profile), SIGKILL after 30 s; waits for the exit. */
  stop(): Promise<void> {
    return this.proc.stop();
  }
}

/** Settings of the anchor Keystone and Glance. */
export interface GlanceOptions {
  anchors: string;
  state: string;
  ksPort: number;
  ksMemcachePort: number;
  ksCache: string;
  ksPassword: string;
  glPort: number;
  timeoutS: number;
  /** Where the start scripts' output goes. */
  logDir: string;
}

/** Why Glance cannot be run here, or null when it can be tried. */
export function glanceMissing(o: GlanceOptions): string | null {
  const scripts = ['start-keystone.sh', 'stop-keystone.sh', 'start-glance.sh', 'stop-glance.sh', 'common.sh'].filter((s) => !fs.existsSync(path.join(o.anchors, s)));
  if (scripts.length) return `anchor scripts missing in ${o.anchors}: ${scripts.join(', ')} (set STRATUS_ANCHORS)`;
  const commands = ['keystone-manage', 'glance-api', 'glance-manage', 'uwsgi_python3', 'sqlite3', 'openstack', ...(o.ksCache === '1' ? ['memcached'] : [])].filter((c) => !haveCommand(c));
  if (commands.length) return `not installed: ${commands.join(', ')} (apt-get install -y keystone glance python3-openstackclient memcached uwsgi-plugin-python3 sqlite3)`;
  return null;
}

/**
 * Debian's Keystone (uwsgi) and Glance (glance-api, eventlet, filesystem
 * store) through the anchor scripts, in this benchmark's own state directory
 * and ports. The Glance figures are those of glance-api (parent + workers).
 */
export class GlanceServer implements ImageServer {
  readonly name = 'glance' as const;
  readonly imageUrl: string;
  private readonly ksUrl: string;
  private readonly env: NodeJS.ProcessEnv;
  private stopped = false;

  private constructor(private readonly o: GlanceOptions) {
    this.imageUrl = `http://127.0.0.1:${o.glPort}`;
    this.ksUrl = `http://127.0.0.1:${o.ksPort}`;
    this.env = {
      ...process.env,
      OS_ANCHOR_STATE: o.state,
      KS_PORT: String(o.ksPort),
      KS_CACHE: o.ksCache,
      KS_MEMCACHE_PORT: String(o.ksMemcachePort),
      KS_ADMIN_PASSWORD: o.ksPassword,
      GL_PORT: String(o.glPort),
      // The benchmark needs no metadata definitions; leaving them out makes the first start shorter.
      GL_METADEFS: '0',
    };
  }

  /** The glance-api PID file of the anchor scripts. */
  private get pidFile(): string {
    return path.join(this.o.state, 'glance', 'glance-api.pid');
  }

  private async script(name: string, args: string[], timeoutS: number): Promise<CommandResult> {
    const r = await runCommand('bash', [path.join(this.o.anchors, name), ...args], { env: this.env, cwd: this.o.anchors, timeoutMs: timeoutS * 1000 });
    fs.appendFileSync(path.join(this.o.logDir, 'anchors.log'), `\n$ ${name} ${args.join(' ')} -> ${r.code ?? r.signal}\n${r.stdout}${r.stderr}`);
    return r;
  }

  /**
   * Stops a Keystone/Glance left by an earlier run with the same state
   * directory, then starts Keystone and Glance (fresh when the state was made
   * for other ports) and waits until Glance answers with a token. Stops both
   * again when something fails.
   */
  static async start(o: GlanceOptions): Promise<GlanceServer> {
    // Someone else's anchor state (its Keystone, its images) is never stopped or wiped.
    const marker = path.join(o.state, 'image-bench-ports');
    if (fs.existsSync(o.state) && !fs.existsSync(marker)) {
      throw new Error(`OS_ANCHOR_STATE=${o.state} exists and was not made by this benchmark; choose a directory of its own`);
    }
    const server = new GlanceServer(o);
    try {
      await server.stop();
      server.stopped = false;
      await assertPortsFree([
        [o.ksPort, 'KS_PORT'],
        [o.glPort, 'GL_PORT'],
        ...(o.ksCache === '1' ? [[o.ksMemcachePort, 'KS_MEMCACHE_PORT'] as [number, string]] : []),
      ]);
      // Keystone's endpoints and Glance's registration name the ports: new ports need new state.
      const ports = `${o.ksPort} ${o.glPort}`;
      const fresh = !fs.existsSync(marker) || fs.readFileSync(marker, 'utf8').trim() !== ports ? ['--fresh'] : [];
      // Written first: --fresh wipes the keystone/ and glance/ subdirectories only, and a
      // half-initialised state is finished by the scripts on the next start.
      fs.mkdirSync(o.state, { recursive: true });
      fs.writeFileSync(marker, `${ports}\n`);
      const ks = await server.script('start-keystone.sh', fresh, o.timeoutS);
      if (ks.code !== 0) throw new Error(`start-keystone.sh ${fresh.join(' ')} failed (exit ${ks.code ?? ks.signal}):\n${outputTail(ks, 12)}`);
      const gl = await server.script('start-glance.sh', fresh, o.timeoutS);
      if (gl.code !== 0) throw new Error(`start-glance.sh ${fresh.join(' ')} failed (exit ${gl.code ?? gl.signal}):\n${outputTail(gl, 12)}`);
      // start-glance.sh returns when /healthcheck answers; the API may need a moment longer.
      const token = await server.token();
      for (let i = 0; ; i++) {
        const r = await runCommand('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '10', '-H', `X-Auth-Token: ${token}`, `${server.imageUrl}/v2/images`], { timeoutMs: 15000 });
        if (r.stdout.trim() === '200') break;
        if (i >= 100) throw new Error(`Glance does not list images: HTTP ${r.stdout.trim()}`);
        await sleep(200);
      }
    } catch (err) {
      await server.stop();
      throw err;
    }
    return server;
  }

  token(): Promise<string> {
    return tokenOf(this.ksUrl, this.o.ksPassword);
  }

  pids(): number[] {
    const pid = readPidFile(this.pidFile);
    return pid === null ? [] : treePids([pid]);
  }

  storedPath(imageId: string): string {
    return path.join(this.o.state, 'glance', 'images', imageId);
  }

  /** stop-glance.sh and stop-keystone.sh (both idempotent), with this state directory. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const name of ['stop-glance.sh', 'stop-keystone.sh']) {
      const r = await this.script(name, [], 60).catch((err: unknown) => ({ code: 1, signal: null, stdout: '', stderr: String(err) }) as CommandResult);
      if (r.code !== 0) process.stderr.write(`[bench] warning: ${name} exited with ${r.code ?? r.signal}: ${outputTail(r, 5)}\n`);
    }
  }

  /** Removes image files left in Glance's store (after a failed run, say). */
  removeImages(): void {
    const dir = path.join(this.o.state, 'glance', 'images');
    for (const name of fs.existsSync(dir) ? fs.readdirSync(dir) : []) fs.rmSync(path.join(dir, name), { force: true });
  }
}
