import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { ConfigError, loadConfig } from '../../core/config.js';
import { builderFile, formatAddress, RebalanceError, RingBuilder, RingBuilderError, type BuilderDevice, type NewDevice } from './builder.js';
import { ringDir } from './defaults.js';
import { decodeRing, ringFile, type RingKind } from './ring.js';

/** Where the CLI writes; tests capture it. */
export interface RingCliIo {
  out(line: string): void;
  /** Reports a failed command (default: to stderr, exit status 1). */
  fail(message: string): void;
}

const defaultIo: RingCliIo = {
  out: (line) => {
    process.stdout.write(`${line}\n`);
  },
  fail: (message) => {
    process.stderr.write(`stratus ring: ${message}\n`);
    process.exitCode = 1;
  },
};

interface CommonOptions {
  data?: string;
  config?: string;
}

/** The `<kind>` argument: account, container or object. */
export function parseKind(text: string): RingKind {
  if (text === 'account' || text === 'container' || text === 'object') return text;
  throw new RingBuilderError(`the ring kind must be account, container or object, not '${text}'`);
}

/**
 * Parses Swift's device syntax `[r<region>]z<zone>-<ip>:<port>/<device>[_<meta>]`
 * (IPv6 addresses in brackets; the region defaults to 1). Replication
 * addresses (`R<ip>:<port>`) are refused: storage servers here replicate on
 * their own port.
 */
export function parseDeviceSpec(spec: string, weight: number): NewDevice {
  const match = /^(?:r(\d+))?z(\d+)-(\[[0-9A-Fa-f:.]+\]|[^:/[\]\s]+):(\d+)(R[^/]*)?\/([^_/\s]+)(?:_(.*))?$/.exec(spec);
  if (!match) throw new RingBuilderError(`invalid device '${spec}' (expected r<region>z<zone>-<ip>:<port>/<device>, e.g. r1z1-127.0.0.1:6200/d1)`);
  if (match[5]) throw new RingBuilderError(`invalid device '${spec}': separate replication addresses (R<ip>:<port>) are not supported`);
  const ip = (match[3] ?? '').replace(/^\[(.*)\]$/, '$1');
  return {
    region: match[1] === undefined ? 1 : Number(match[1]),
    zone: Number(match[2]),
    ip,
    port: Number(match[4]),
    device: match[6] ?? '',
    weight,
    meta: match[7] ?? '',
  };
}

/** `d<id>r<region>z<zone>-<ip>:<port>/<device>[_<meta>]`, as Swift prints a device. */
export function formatDevice(d: BuilderDevice): string {
  return `d${d.id}r${d.region}z${d.zone}-${formatAddress(d.ip, d.port)}/${d.device}${d.meta ? `_${d.meta}` : ''}`;
}

function parseNumber(text: string, what: string): number {
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n)) throw new RingBuilderError(`${what} must be a number, not '${text}'`);
  return n;
}

function parseId(text: string): number {
  const id = Number(text.replace(/^d/, ''));
  if (!/^d?\d+$/.test(text) || !Number.isSafeInteger(id)) throw new RingBuilderError(`a device id must be a whole number (or d<id>), not '${text}'`);
  return id;
}

/** Parses an overload: `0.1` or `10%`. */
function parseOverload(text: string): number {
  return text.endsWith('%') ? parseNumber(text.slice(0, -1), 'the overload') / 100 : parseNumber(text, 'the overload');
}

function directory(opts: CommonOptions): string {
  const config = loadConfig({ ...(opts.config ? { file: opts.config } : {}), overrides: { data_dir: opts.data } });
  return ringDir(config);
}

function hms(seconds: number): string {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  return `${h}:${String(m).padStart(2, '0')}:${String(s).padStart(2, '0')}`;
}

/** The operations behind `stratus ring ...`, on the builder files of one ring directory. */
export class RingCommands {
  constructor(
    private readonly dir: string,
    private readonly io: Pick<RingCliIo, 'out'>,
    private readonly now: () => number = Date.now,
  ) {}

  private load(kind: RingKind): RingBuilder {
    return RingBuilder.load(builderFile(this.dir, kind));
  }

  private save(kind: RingKind, builder: RingBuilder): void {
    builder.save(builderFile(this.dir, kind));
  }

  /** `ring create`: a new builder; refuses to replace one unless `force`. */
  create(kind: RingKind, partPower: number, replicas: number, minPartHours: number, force = false): void {
    const file = builderFile(this.dir, kind);
    if (fs.existsSync(file) && !force) throw new RingBuilderError(`${file} already exists (use --force to start the ${kind} ring over)`);
    // Ring versions go on from the ring file being replaced, so that servers see a newer ring.
    let version = 0;
    try {
      version = decodeRing(fs.readFileSync(ringFile(this.dir, kind))).version;
    } catch {
      version = 0;
    }
    const builder = RingBuilder.create(partPower, replicas, minPartHours, version);
    this.save(kind, builder);
    this.io.out(`Created ${file}: ${2 ** partPower} partitions, ${replicas} replicas, min_part_hours ${minPartHours}`);
  }

  /** `ring add`: devices with their weights. */
  add(kind: RingKind, devices: NewDevice[]): void {
    if (devices.length === 0) throw new RingBuilderError('no device given (r<region>z<zone>-<ip>:<port>/<device> <weight>, or --zone --ip --port --device --weight)');
    const builder = this.load(kind);
    const ids = devices.map((d) => builder.addDevice(d));
    this.save(kind, builder);
    for (const id of ids) {
      const d = builder.device(id);
      if (d) this.io.out(`Device ${formatDevice(d)} with ${d.weight} weight got id ${id}`);
    }
  }

  /** `ring remove`: marks a device for removal at the next rebalance. */
  remove(kind: RingKind, id: number): void {
    const builder = this.load(kind);
    const d = builder.removeDevice(id);
    this.save(kind, builder);
    this.io.out(`${formatDevice(d)} marked for removal and will be removed next rebalance.`);
  }

  /** `ring set-weight`. */
  setWeight(kind: RingKind, id: number, weight: number): void {
    const builder = this.load(kind);
    const d = builder.setWeight(id, weight);
    this.save(kind, builder);
    this.io.out(`${formatDevice(d)} weight set to ${weight}`);
  }

  /** `ring set-overload`. */
  setOverload(kind: RingKind, overload: number): void {
    const builder = this.load(kind);
    builder.setOverload(overload);
    this.save(kind, builder);
    this.io.out(`The overload factor is now ${(overload * 100).toFixed(2)}% (${overload.toFixed(6)})`);
  }

  /** `ring set-min-part-hours`. */
  setMinPartHours(kind: RingKind, hours: number): void {
    const builder = this.load(kind);
    builder.setMinPartHours(hours);
    this.save(kind, builder);
    this.io.out(`The minimum number of hours before a partition can be reassigned is now set to ${hours}`);
  }

  /** `ring pretend-min-part-hours-passed`. */
  pretendMinPartHoursPassed(kind: RingKind): void {
    const builder = this.load(kind);
    builder.pretendMinPartHoursPassed();
    this.save(kind, builder);
    this.io.out('Partitions may be reassigned now, whenever they last moved.');
  }

  /**
   * `ring rebalance`: reassigns partitions and writes the ring file (the
   * previous builder and ring are kept under `backups/`). Writes nothing
   * when nothing moved and no device was removed.
   */
  rebalance(kind: RingKind, seed?: number): void {
    const builder = this.load(kind);
    const report = builder.rebalance({ now: this.now(), ...(seed === undefined ? {} : { seed }) });
    const ring = ringFile(this.dir, kind);
    if (!report.changed) {
      this.io.out('No partitions could be reassigned.');
      const left = builder.minPartSecondsLeft(this.now());
      if (left > 0) this.io.out(`Either none need to be or none can be due to min_part_hours [${builder.minPartHours}] (${hms(left)} remaining).`);
      else this.io.out('There is no need to do so at this time.');
      if (!fs.existsSync(ring)) builder.writeRing(this.dir, kind);
      return;
    }
    this.backup(kind);
    this.save(kind, builder);
    builder.writeRing(this.dir, kind);
    const percent = (100 * report.movedPartitions) / report.parts;
    this.io.out(`Reassigned ${report.movedPartitions} (${percent.toFixed(2)}%) partitions. Balance is now ${report.balance.toFixed(2)}.  Dispersion is now ${report.dispersion.toFixed(2)}`);
    this.io.out(`Wrote ${ring} (version ${report.version})`);
    const rule = '-'.repeat(79);
    if (report.balance > 5) {
      this.io.out(rule);
      this.io.out(`NOTE: Balance of ${report.balance.toFixed(2)} indicates you should push this ring, wait at least ${builder.minPartHours} hours, and rebalance/repush.`);
      this.io.out(rule);
    }
    if (report.dispersion > 0) {
      this.io.out(rule);
      this.io.out(`NOTE: Dispersion of ${report.dispersion.toFixed(2)} indicates some partitions are not optimally dispersed.`);
      this.io.out('You may want to adjust some device weights or increase the overload (ring set-overload).');
      this.io.out(rule);
    }
  }

  /** `ring show`: the builder, its devices, weights, partitions and balance. */
  show(kind: RingKind): void {
    const file = builderFile(this.dir, kind);
    const builder = this.load(kind);
    const stats = builder.stats();
    const live = builder.devices.filter((d) => !d.removed);
    const regions = new Set(live.map((d) => d.region)).size;
    const zones = new Set(live.map((d) => `${d.region}/${d.zone}`)).size;
    this.io.out(`${path.basename(file)}, build version ${builder.version}`);
    this.io.out(
      `${2 ** builder.partPower} partitions, ${builder.replicas.toFixed(6)} replicas, ${regions} regions, ${zones} zones, ${live.length} devices, ` +
        `${stats.balance.toFixed(2)} balance, ${stats.dispersion.toFixed(2)} dispersion`,
    );
    this.io.out(`The minimum number of hours before a partition can be reassigned is ${builder.minPartHours} (${hms(builder.minPartSecondsLeft(this.now()))} remaining)`);
    this.io.out(`The overload factor is ${(builder.overload * 100).toFixed(2)}% (${builder.overload.toFixed(6)})`);
    const ring = ringFile(this.dir, kind);
    let ringVersion: number | null = null;
    try {
      ringVersion = decodeRing(fs.readFileSync(ring)).version;
    } catch {
      ringVersion = null;
    }
    if (ringVersion === null) this.io.out(`Ring file ${ring} not found`);
    else if (ringVersion === builder.version && !builder.dirty) this.io.out(`Ring file ${ring} is up-to-date`);
    else this.io.out(`Ring file ${ring} is obsolete`);
    const rows = builder.devices.map((d) => [
      String(d.id),
      String(d.region),
      String(d.zone),
      formatAddress(d.ip, d.port),
      d.device,
      d.weight.toFixed(2),
      String(stats.parts.get(d.id) ?? 0),
      (stats.deviceBalance.get(d.id) ?? 0).toFixed(2),
      d.removed ? 'DEL' : '',
      d.meta,
    ]);
    const header = ['id', 'region', 'zone', 'ip address:port', 'name', 'weight', 'partitions', 'balance', 'flags', 'meta'];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
    const line = (cells: string[]): string =>
      cells
        .map((c, i) => (i >= 8 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0)))
        .join(' ')
        .trimEnd();
    this.io.out('Devices:');
    this.io.out(`  ${line(header)}`);
    for (const row of rows) this.io.out(`  ${line(row)}`);
  }

  private backup(kind: RingKind): void {
    const backups = path.join(this.dir, 'backups');
    const stamp = Math.floor(this.now() / 1000);
    for (const file of [builderFile(this.dir, kind), ringFile(this.dir, kind)]) {
      if (!fs.existsSync(file)) continue;
      fs.mkdirSync(backups, { recursive: true });
      fs.copyFileSync(file, path.join(backups, `${stamp}.${path.basename(file)}`));
    }
  }
}

/** Runs an action; the builder's refusals become one line and exit status 1. */
function action<A extends unknown[]>(io: RingCliIo, run: (...args: A) => void): (...args: A) => void {
  return (...args: A) => {
    try {
      run(...args);
    } catch (err) {
      if (err instanceof RingBuilderError || err instanceof RebalanceError || err instanceof ConfigError) io.fail(err.message);
      else throw err;
    }
  };
}

interface AddOptions extends CommonOptions {
  region?: string;
  zone?: string;
  ip?: string;
  port?: string;
  device?: string;
  weight?: string;
  meta?: string;
}

/** Devices of `ring add`: `<device> <weight>` pairs, or the flags for one device. */
function devicesToAdd(specs: string[], opts: AddOptions): NewDevice[] {
  const flags = [opts.zone, opts.ip, opts.port, opts.device, opts.weight];
  if (flags.some((f) => f !== undefined)) {
    if (specs.length > 0) throw new RingBuilderError('give a device either as r<region>z<zone>-<ip>:<port>/<device> <weight> or with flags, not both');
    if (flags.some((f) => f === undefined)) throw new RingBuilderError('--zone, --ip, --port, --device and --weight are all needed');
    return [
      {
        region: parseNumber(opts.region ?? '1', 'the region'),
        zone: parseNumber(opts.zone ?? '', 'the zone'),
        ip: opts.ip ?? '',
        port: parseNumber(opts.port ?? '', 'the port'),
        device: opts.device ?? '',
        weight: parseNumber(opts.weight ?? '', 'the weight'),
        meta: opts.meta ?? '',
      },
    ];
  }
  if (specs.length % 2 !== 0) throw new RingBuilderError('each device needs a weight: ring add <kind> <device> <weight> [<device> <weight> ...]');
  const devices: NewDevice[] = [];
  for (let i = 0; i < specs.length; i += 2) devices.push(parseDeviceSpec(specs[i] ?? '', parseNumber(specs[i + 1] ?? '', 'the weight')));
  return devices;
}

/** Registers `stratus ring ...` (Swift's `swift-ring-builder`) on the program. */
export function registerRingCommand(program: Command, io: RingCliIo = defaultIo, now: () => number = Date.now): void {
  const ring = program
    .command('ring')
    .description("object storage rings (Swift's swift-ring-builder): <kind> is account, container or object; files in object.ring_dir (default <data_dir>/object/rings)");
  const commands = (opts: CommonOptions): RingCommands => new RingCommands(directory(opts), io, now);
  const common = (command: Command): Command => command.option('--data <dir>', 'data directory').option('--config <file>', 'configuration file (YAML)');

  common(ring.command('create').description('start a ring builder').argument('<kind>').argument('<part_power>').argument('<replicas>').argument('<min_part_hours>'))
    .option('--force', 'replace an existing builder')
    .action(
      action(io, (kind: string, partPower: string, replicas: string, hours: string, opts: CommonOptions & { force?: boolean }) => {
        commands(opts).create(parseKind(kind), parseNumber(partPower, 'the partition power'), parseNumber(replicas, 'the replica count'), parseNumber(hours, 'min_part_hours'), opts.force === true);
      }),
    );

  common(
    ring
      .command('add')
      .description('add devices: r<region>z<zone>-<ip>:<port>/<device>[_<meta>] <weight> ..., or one with the flags')
      .argument('<kind>')
      .argument('[devices...]'),
  )
    .option('--region <n>', 'region (default 1)')
    .option('--zone <n>', 'zone')
    .option('--ip <ip>', 'address of the storage server')
    .option('--port <port>', 'port of the storage server')
    .option('--device <name>', 'device directory name')
    .option('--weight <weight>', 'weight')
    .option('--meta <text>', 'free text kept with the device')
    .action(
      action(io, (kind: string, specs: string[], opts: AddOptions) => {
        commands(opts).add(parseKind(kind), devicesToAdd(specs, opts));
      }),
    );

  common(ring.command('rebalance').description('reassign partitions and write the ring file').argument('<kind>'))
    .option('--seed <n>', 'seed of the random choices (reproducible rings)')
    .action(
      action(io, (kind: string, opts: CommonOptions & { seed?: string }) => {
        commands(opts).rebalance(parseKind(kind), opts.seed === undefined ? undefined : parseNumber(opts.seed, 'the seed'));
      }),
    );

  common(ring.command('show').description('devices, weights, partitions and balance').argument('<kind>')).action(
    action(io, (kind: string, opts: CommonOptions) => {
      commands(opts).show(parseKind(kind));
    }),
  );

  common(ring.command('remove').description('remove a device at the next rebalance').argument('<kind>').argument('<id>')).action(
    action(io, (kind: string, id: string, opts: CommonOptions) => {
      commands(opts).remove(parseKind(kind), parseId(id));
    }),
  );

  common(ring.command('set-weight').description("set a device's weight (0 drains it)").argument('<kind>').argument('<id>').argument('<weight>')).action(
    action(io, (kind: string, id: string, weight: string, opts: CommonOptions) => {
      commands(opts).setWeight(parseKind(kind), parseId(id), parseNumber(weight, 'the weight'));
    }),
  );

  common(ring.command('set-overload').description('how far a device may go over its weight for wider dispersion (0.1 or 10%)').argument('<kind>').argument('<overload>')).action(
    action(io, (kind: string, overload: string, opts: CommonOptions) => {
      commands(opts).setOverload(parseKind(kind), parseOverload(overload));
    }),
  );

  common(ring.command('set-min-part-hours').description('hours before a moved partition may move again').argument('<kind>').argument('<hours>')).action(
    action(io, (kind: string, hours: string, opts: CommonOptions) => {
      commands(opts).setMinPartHours(parseKind(kind), parseNumber(hours, 'min_part_hours'));
    }),
  );

  common(ring.command('pretend-min-part-hours-passed').description('let the next rebalance move any partition').argument('<kind>')).action(
    action(io, (kind: string, opts: CommonOptions) => {
      commands(opts).pretendMinPartHoursPassed(parseKind(kind));
    }),
  );
}
