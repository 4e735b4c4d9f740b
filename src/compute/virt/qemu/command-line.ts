import type { GuestNic, GuestPaths, GuestRecord, GuestVolume } from './guest-record.js';

/**
 * The `qemu-system-x86_64` command line of a guest, from its record: a pc
 * machine without default devices, serial console appended to
 * `console.log`, two QMP sockets, VNC, every disk and port on a fixed PCI
 * slot (so that a saved state loads into the same devices), daemonized.
 */

/** `kvm` or `tcg`. */
export type Accel = 'kvm' | 'tcg';

/** What the command line needs besides the record. */
export interface CommandLineOptions {
  accel: Accel;
  vncListen: string;
  /** Start from a saved state (`-incoming`). */
  incomingState?: string;
}

/** The marker in a guest's command line that names it (`/proc/<pid>/cmdline`). */
export function guestMarker(uuid: string): string {
  return `guest=${uuid}`;
}

/** Quotes a word for `/bin/sh` (QEMU runs `exec:` migration URIs through it). */
export function shellQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/** QEMU's option syntax escapes a comma in a value by doubling it. */
function optValue(value: string): string {
  return value.replaceAll(',', ',,');
}

function hex(slot: number): string {
  return `0x${slot.toString(16)}`;
}

/** The block node name of a volume (node names are at most 31 characters). */
export function volumeNodeName(volumeId: string): string {
  return `vol-${volumeId.replaceAll('-', '').slice(0, 24)}`;
}

/** The device id of a volume (`device_del` names it). */
export function volumeDeviceId(volumeId: string): string {
  return `volume-${volumeId}`;
}

/** The serial a volume shows to its guest (`/dev/disk/by-id/virtio-<serial>`): its id, cut to virtio-blk's 20 characters. */
export function volumeSerial(volumeId: string): string {
  return volumeId.slice(0, 20);
}

/** The netdev id of a port. */
export function netdevId(portId: string): string {
  return `hostnet-${portId}`;
}

/** The device id of a port's NIC. */
export function nicDeviceId(portId: string): string {
  return `nic-${portId}`;
}

/** The connection info's fields: Cinder hands them out flat, older callers nest them in `data`. */
function connectionData(info: Record<string, unknown>): Record<string, unknown> {
  const data = info.data;
  return typeof data === 'object' && data !== null ? { ...info, ...(data as Record<string, unknown>) } : info;
}

/** The `blockdev-add` arguments of a volume from its connection info (`local` file or `nbd` export). */
export function volumeBlockdev(volumeId: string, connectionInfo: Record<string, unknown>): Record<string, unknown> {
  const data = connectionData(connectionInfo);
  const readOnly = data.access_mode === 'ro';
  const nodeName = volumeNodeName(volumeId);
  switch (connectionInfo.driver_volume_type) {
    case 'local': {
      const file = data.device_path;
      if (typeof file !== 'string' || !file) throw new Error(`volume ${volumeId}: a local connection without device_path`);
      const format = typeof data.format === 'string' && data.format ? data.format : 'raw';
      if (format !== 'raw' && format !== 'qcow2') throw new Error(`volume ${volumeId}: format ${format} is not supported`);
      return { driver: format, 'node-name': nodeName, 'read-only': readOnly, discard: 'unmap', file: { driver: 'file', filename: file, 'read-only': readOnly } };
    }
    case 'nbd': {
      const host = data.host;
      const port = data.port;
      if (typeof host !== 'string' || (typeof port !== 'number' && typeof port !== 'string')) throw new Error(`volume ${volumeId}: an nbd connection without host and port`);
      const exportName = typeof data.export_name === 'string' ? data.export_name : undefined;
      return {
        driver: 'raw',
        'node-name': nodeName,
        'read-only': readOnly,
        file: { driver: 'nbd', server: { type: 'inet', host, port: String(port) }, ...(exportName ? { export: exportName } : {}), 'read-only': readOnly },
      };
    }
    default:
      throw new Error(`volume ${volumeId}: connection type ${String(connectionInfo.driver_volume_type)} is not supported by the qemu driver`);
  }
}

/** The `device_add` arguments of a volume. */
export function volumeDevice(volume: GuestVolume, bootIndex?: number): Record<string, unknown> {
  return {
    driver: 'virtio-blk-pci',
    drive: volumeNodeName(volume.volumeId),
    id: volumeDeviceId(volume.volumeId),
    serial: volumeSerial(volume.volumeId),
    addr: hex(volume.slot),
    ...(bootIndex !== undefined ? { bootindex: bootIndex } : {}),
  };
}

/** The `netdev_add` arguments of a port (a tap the network driver, or this driver, made). */
export function nicNetdev(nic: GuestNic): Record<string, unknown> {
  return { type: 'tap', id: netdevId(nic.portId), ifname: nic.devName, script: 'no', downscript: 'no' };
}

/** The `device_add` arguments of a port's NIC. */
export function nicDevice(nic: GuestNic): Record<string, unknown> {
  return { driver: 'virtio-net-pci', netdev: netdevId(nic.portId), id: nicDeviceId(nic.portId), mac: nic.mac, addr: hex(nic.slot) };
}

/** `-device` takes QAPI arguments as `driver,key=value,...`. */
function deviceOption(args: Record<string, unknown>): string {
  const { driver, ...rest } = args;
  return [String(driver), ...Object.entries(rest).map(([k, v]) => `${k}=${optValue(String(v))}`)].join(',');
}

function fileDisk(nodeName: string, file: string, format: string): string {
  return JSON.stringify({ driver: format, 'node-name': nodeName, discard: 'unmap', file: { driver: 'file', filename: file } });
}

/** The full argument list (without the binary) that starts the guest. */
export function buildCommandLine(record: GuestRecord, paths: GuestPaths, options: CommandLineOptions): string[] {
  const spec = record.spec;
  const vnc = options.vncListen.includes(':') ? `[${options.vncListen}]` : options.vncListen;
  const args = [
    '-name', `guest=${spec.uuid},debug-threads=on`,
    '-uuid', spec.uuid,
    '-machine', 'pc',
    '-accel', options.accel,
    ...(options.accel === 'kvm' ? ['-cpu', 'host'] : []),
    '-m', String(spec.memoryMb),
    '-smp', String(Math.max(1, spec.vcpus)),
    '-nodefaults', '-no-user-config',
    '-smbios', 'type=1,manufacturer=OpenStack Foundation,product=OpenStack Nova,family=Virtual Machine',
    '-rtc', 'base=utc',
    '-daemonize',
    '-pidfile', paths.pid,
    '-qmp', `unix:${optValue(paths.qmp)},server=on,wait=off`,
    '-qmp', `unix:${optValue(paths.monitor)},server=on,wait=off`,
    '-display', 'none',
    '-vnc', `${vnc}:0,to=4000`,
    '-device', 'VGA,addr=0x2',
    '-chardev', `file,id=serial0,path=${optValue(paths.console)},append=on`,
    '-device', 'isa-serial,chardev=serial0',
  ];
  // The boot disks, in the order the guest names them (vda, vdb, ...): a rescue image first.
  let slot = 0x3;
  let bootIndex = 1;
  if (record.rescue) {
    args.push('-blockdev', fileDisk('rescue', paths.rescue, 'qcow2'), '-device', `virtio-blk-pci,drive=rescue,id=disk-rescue,addr=${hex(slot++)},bootindex=${bootIndex++}`);
  }
  if (record.root.kind === 'image') {
    args.push('-blockdev', fileDisk('disk', paths.disk, 'qcow2'), '-device', `virtio-blk-pci,drive=disk,id=disk-root,addr=${hex(slot++)},bootindex=${bootIndex++}`);
  } else {
    const root = { ...record.root.volume, slot: slot++ };
    args.push('-blockdev', JSON.stringify(volumeBlockdev(root.volumeId, root.connectionInfo)), '-device', deviceOption(volumeDevice(root, bootIndex++)));
  }
  if (spec.ephemeralGb > 0) args.push('-blockdev', fileDisk('eph0', paths.ephemeral, 'raw'), '-device', `virtio-blk-pci,drive=eph0,id=disk-eph0,addr=${hex(slot++)}`);
  if (spec.swapMb > 0) args.push('-blockdev', fileDisk('swap', paths.swap, 'raw'), '-device', `virtio-blk-pci,drive=swap,id=disk-swap,addr=${hex(slot++)}`);
  for (const volume of record.volumes) args.push('-blockdev', JSON.stringify(volumeBlockdev(volume.volumeId, volume.connectionInfo)), '-device', deviceOption(volumeDevice(volume)));
  if (record.configDrive) {
    args.push('-blockdev', JSON.stringify({ driver: 'raw', 'node-name': 'config', 'read-only': true, file: { driver: 'file', filename: paths.config, 'read-only': true } }), '-device', 'ide-cd,drive=config,id=disk-config,bus=ide.1,unit=0');
  }
  for (const nic of record.nics) args.push('-netdev', `tap,id=${netdevId(nic.portId)},ifname=${optValue(nic.devName)},script=no,downscript=no`, '-device', deviceOption(nicDevice(nic)));
  if (options.incomingState) args.push('-incoming', `exec:cat ${shellQuote(options.incomingState)}`);
  return args;
}
