/**
 * The metadata proxy of one router or DHCP namespace (what Neutron runs
 * haproxy for): started by {@link MetadataProxies} as
 *
 *   ip netns exec <ns> node ns-metadata-proxy.js --socket <path>
 *     (--router-id <id> | --network-id <id>) --port <p> --pid-file <f>
 *     [--log-file <f>] [--bind <address>] [--daemonize]
 *
 * it listens on `<bind>:<port>` inside the namespace and forwards each HTTP
 * request to the metadata agent's unix socket (unix sockets are files, so
 * they cross network namespaces), with `X-Forwarded-For: <client address>`
 * and `X-Neutron-Router-ID` or `X-Neutron-Network-ID`, overwriting any the
 * guest sent. Bodies stream both ways. 502 when the agent is not there.
 *
 * With `--daemonize` it starts itself again detached, waits until that copy
 * listens and has written its pid file, and exits 0 (1 if it could not
 * start), so that the caller knows the proxy works when the command returns.
 *
 * Only Node's own modules: it starts fast and small, one per namespace.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { forwardable } from './forwarding.js';
import { parseArgs } from 'node:util';

/** How long the agent may take to answer one request. */
const UPSTREAM_TIMEOUT_MS = 60_000;
/** How long `--daemonize` waits for the proxy to listen. */
const START_TIMEOUT_MS = 15_000;

interface Options {
  socket: string;
  port: number;
  bind: string;
  pidFile: string;
  logFile: string | null;
  target: { header: 'x-neutron-router-id' | 'x-neutron-network-id'; id: string };
}

function parse(argv: string[]): Options & { daemonize: boolean } {
  const { values } = parseArgs({
    args: argv,
    options: {
      socket: { type: 'string' },
      'router-id': { type: 'string' },
      'network-id': { type: 'string' },
      port: { type: 'string' },
      bind: { type: 'string' },
      'pid-file': { type: 'string' },
      'log-file': { type: 'string' },
      daemonize: { type: 'boolean' },
    },
    strict: true,
  });
  const routerId = values['router-id'];
  const networkId = values['network-id'];
  const port = Number(values.port);
  if (!values.socket || !values['pid-file'] || !Number.isInteger(port) || port <= 0 || port > 65535 || (routerId === undefined) === (networkId === undefined)) {
    throw new Error('usage: ns-metadata-proxy --socket <path> (--router-id <id> | --network-id <id>) --port <port> --pid-file <file> [--log-file <file>] [--bind <address>] [--daemonize]');
  }
  return {
    socket: values.socket,
    port,
    bind: values.bind ?? '0.0.0.0',
    pidFile: values['pid-file'],
    logFile: values['log-file'] ?? null,
    target: routerId !== undefined ? { header: 'x-neutron-router-id', id: routerId } : { header: 'x-neutron-network-id', id: networkId ?? '' },
    daemonize: values.daemonize ?? false,
  };
}

function log(level: 'info' | 'warn' | 'error', msg: string, fields: Record<string, unknown> = {}): void {
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level, component: 'ns-metadata-proxy', pid: process.pid, ...fields, msg })}\n`);
}


function clientAddress(req: http.IncomingMessage): string {
  const address = req.socket.remoteAddress ?? '';
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

function fail(res: http.ServerResponse, status: number, title: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(status, { 'content-type': 'text/plain; charset=UTF-8', connection: 'close' });
  res.end(`${status} ${title}\n`);
}

function handle(options: Options, req: http.IncomingMessage, res: http.ServerResponse): void {
  const headers = forwardable(req.headers);
  delete headers['x-neutron-router-id'];
  delete headers['x-neutron-network-id'];
  headers['x-forwarded-for'] = clientAddress(req);
  headers[options.target.header] = options.target.id;
  const upstream = http.request({ socketPath: options.socket, method: req.method, path: req.url, headers, timeout: UPSTREAM_TIMEOUT_MS }, (answer) => {
    res.writeHead(answer.statusCode ?? 502, forwardable(answer.headers));
    answer.pipe(res);
    answer.on('error', () => res.destroy());
  });
  upstream.on('timeout', () => upstream.destroy(new Error('the metadata agent did not answer in time')));
  upstream.on('error', (err: NodeJS.ErrnoException) => {
    req.unpipe(upstream);
    req.resume();
    log('warn', 'could not reach the metadata agent', { err: err.message, code: err.code, client: headers['x-forwarded-for'] });
    fail(res, 502, 'Bad Gateway');
  });
  // A guest that goes away mid-request ends the request to the agent too.
  res.on('close', () => {
    if (!res.writableFinished) upstream.destroy();
  });
  req.pipe(upstream);
}

function writePidFile(file: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `${process.pid}\n`);
  fs.renameSync(tmp, file);
}

function serve(options: Options): void {
  const server = http.createServer((req, res) => handle(options, req, res));
  server.on('error', (err) => {
    log('error', 'cannot listen', { err: err.message, port: options.port });
    const exit = (): never => process.exit(1);
    // The parent is told why before this copy exits (a message not flushed yet would be lost).
    if (process.send) process.send({ error: `cannot listen on ${options.bind}:${options.port}: ${err.message}` }, undefined, undefined, exit);
    else exit();
  });
  server.listen(options.port, options.bind, () => {
    writePidFile(options.pidFile);
    log('info', 'listening', { port: options.port, socket: options.socket, [options.target.header]: options.target.id });
    // Detached from the parent once it knows: nothing ties the proxy to who started it.
    if (process.send) process.send({ ready: true }, undefined, undefined, () => process.disconnect());
  });
  const quit = (): void => {
    server.close();
    server.closeAllConnections();
    process.exit(0);
  };
  process.on('SIGTERM', quit);
  process.on('SIGINT', quit);
}

/** Starts the proxy detached and exits once it listens (0) or could not (1). */
function daemonize(options: Options, argv: string[]): void {
  const out = options.logFile ? fs.openSync(options.logFile, 'a') : 'ignore';
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), ...argv.filter((a) => a !== '--daemonize')], { detached: true, stdio: ['ignore', out, out, 'ipc'] });
  const timer = setTimeout(() => {
    process.stderr.write('the metadata proxy did not start in time\n');
    child.kill('SIGKILL');
    process.exit(1);
  }, START_TIMEOUT_MS);
  child.once('message', (message: { ready?: boolean; error?: string }) => {
    clearTimeout(timer);
    if (message.ready) {
      child.unref();
      process.exit(0);
    }
    process.stderr.write(`${message.error ?? 'the metadata proxy failed'}\n`);
    process.exit(1);
  });
  child.once('exit', (code) => {
    clearTimeout(timer);
    process.stderr.write(`the metadata proxy exited (${code ?? 'signal'}) before it listened\n`);
    process.exit(1);
  });
}

function main(): void {
  const argv = process.argv.slice(2);
  let options: Options & { daemonize: boolean };
  try {
    options = parse(argv);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(2);
  }
  if (options.daemonize) daemonize(options, argv);
  else serve(options);
}

main();
