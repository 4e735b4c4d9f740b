import { badRequest } from '../errors.js';
import { strictBool } from './request-checks.js';

/**
 * The flavor extra specs Nova knows (validated from microversion 2.86): a
 * known key must have a value of its type; an unknown key in a namespace
 * Nova owns (`hw:`, `hw_rng:`, `quota:`, ...) is refused; anything else
 * (custom namespaces such as `foo:bar`) is taken as it is.
 */

type Rule = { type: 'bool' } | { type: 'int'; min?: number; max?: number } | { type: 'str'; enum?: readonly string[]; pattern?: RegExp };

const bool: Rule = { type: 'bool' };
const int = (min?: number, max?: number): Rule => ({ type: 'int', ...(min === undefined ? {} : { min }), ...(max === undefined ? {} : { max }) });
const oneOf = (...values: string[]): Rule => ({ type: 'str', enum: values });
const matching = (pattern: RegExp): Rule => ({ type: 'str', pattern });
const anyText: Rule = { type: 'str' };

const CPU_MASK = /\^?\d+((-\d+)?(,\^?\d+(-\d+)?)?)*/;

/** Keys without parameters. */
const KEYS: Record<string, Rule> = {
  'hw:cpu_realtime': bool,
  'hw:cpu_realtime_mask': matching(CPU_MASK),
  'hw:hide_hypervisor_id': bool,
  'hw:cpu_policy': oneOf('dedicated', 'shared', 'mixed'),
  'hw:cpu_thread_policy': oneOf('prefer', 'isolate', 'require'),
  'hw:emulator_threads_policy': oneOf('isolate', 'share'),
  'hw:cpu_dedicated_mask': matching(CPU_MASK),
  'hw:mem_page_size': matching(/(large|small|any|\d+([kKMGT]i?)?(b|bit|B)?)/),
  'hw:locked_memory': bool,
  'hw:numa_nodes': int(1),
  'hw:pci_numa_affinity_policy': oneOf('required', 'preferred', 'legacy', 'socket'),
  'hw:cpu_sockets': int(1),
  'hw:cpu_cores': int(1),
  'hw:cpu_threads': int(1),
  'hw:cpu_max_sockets': int(1),
  'hw:cpu_max_cores': int(1),
  'hw:cpu_max_threads': int(1),
  'hw:boot_menu': bool,
  'hw:vif_multiqueue_enabled': bool,
  'hw:mem_encryption': bool,
  'hw:mem_encryption_model': oneOf('amd-sev', 'amd-sev-es', 'amd-sev-snp'),
  'hw:pmem': matching(/([a-zA-Z0-9_]+(,)?)+/),
  'hw:pmu': bool,
  'hw:serial_port_count': int(0),
  'hw:tpm_model': oneOf('tpm-tis', 'tpm-crb'),
  'hw:tpm_version': oneOf('1.2', '2.0'),
  'hw:tpm_secret_security': oneOf('user', 'host', 'deployment'),
  'hw:watchdog_action': oneOf('none', 'pause', 'poweroff', 'reset', 'disabled'),
  'hw:viommu_model': oneOf('intel', 'smmuv3', 'virtio', 'auto'),
  'hw:virtio_packed_ring': bool,
  'hw:sound_model': anyText,
  'hw:usb_model': anyText,
  'hw:redirected_usb_ports': int(0, 15),
  'hw:ephemeral_encryption': bool,
  'hw:ephemeral_encryption_format': anyText,
  'hw_rng:allowed': bool,
  'hw_rng:rate_bytes': int(0),
  'hw_rng:rate_period': int(0),
  'hw_video:ram_max_mb': int(0),
  'os:secure_boot': oneOf('disabled', 'required'),
  'accel:device_profile': anyText,
  'pci_passthrough:alias': matching(/[^:]+:\d+(?:\s*,\s*[^:]+:\d+)*/),
  'vmware:hw_version': anyText,
  'vmware:storage_policy': anyText,
  'quota:cpu_shares': int(0),
  'quota:cpu_period': int(0),
  'quota:cpu_quota': int(),
  hide_hypervisor_id: bool,
  group_policy: oneOf('isolate', 'none'),
};

for (const resource of ['cpu', 'memory', 'disk_io', 'vif']) {
  KEYS[`quota:${resource}_limit`] = int(0);
  KEYS[`quota:${resource}_reservation`] = int(0);
  KEYS[`quota:${resource}_shares_level`] = oneOf('custom', 'high', 'normal', 'low');
  KEYS[`quota:${resource}_shares_share`] = int(0);
}
for (const stat of ['read', 'write', 'total']) for (const metric of ['bytes', 'iops']) KEYS[`quota:disk_${stat}_${metric}_sec`] = int(0);
for (const stat of ['inbound', 'outbound']) for (const metric of ['average', 'peak', 'burst']) KEYS[`quota:vif_${stat}_${metric}`] = int(0);

/** Keys with parameters (`hw:numa_cpus.0`, `resources1:VCPU`, `trait:HW_CPU_X86_AVX2`). */
const PATTERNS: [RegExp, Rule][] = [
  [/^hw:numa_cpus\.\d+$/, matching(CPU_MASK)],
  [/^hw:numa_mem\.\d+$/, int(1)],
  [/^resources([a-zA-Z0-9_-]{1,64})?:[A-Z0-9_]+$/, int()],
  [/^trait([a-zA-Z0-9_-]{1,64})?:[A-Z0-9_]+$/, oneOf('required', 'forbidden')],
  [/^aggregate_instance_extra_specs:.+$/, anyText],
  [/^capabilities:.+$/, anyText],
];

/** Namespaces Nova owns: an unknown key in one of them is an error. */
const NAMESPACES = /^(hw|hw_rng|hw_video|os|accel|pci_passthrough|vmware|quota|resources([a-zA-Z0-9_-]{1,64})?|trait([a-zA-Z0-9_-]{1,64})?|aggregate_instance_extra_specs|capabilities)$/;

function checkValue(rule: Rule, value: string): void {
  switch (rule.type) {
    case 'bool':
      if (strictBool(value) === undefined) throw badRequest(`Validation failed; '${value}' is not a valid boolean-like value.`);
      return;
    case 'int': {
      if (!/^\s*[-+]?\d+\s*$/.test(value)) throw badRequest(`Validation failed; '${value}' is not a valid integer value.`);
      const n = Number(value.trim());
      if (rule.max !== undefined && n > rule.max) throw badRequest(`Validation failed; '${value}' is greater than the max value of '${rule.max}'.`);
      if (rule.min !== undefined && n < rule.min) throw badRequest(`Validation failed; '${value}' is less than the min value of '${rule.min}'.`);
      return;
    }
    case 'str':
      if (rule.pattern && !new RegExp(`^(?:${rule.pattern.source})$`).test(value)) {
        throw badRequest(`Validation failed; '${value}' is not of the format '${rule.pattern.source}'.`);
      }
      if (rule.enum && !rule.enum.includes(value)) throw badRequest(`Validation failed; '${value}' is not one of: ${rule.enum.join(', ')}.`);
      return;
    default: {
      const never: never = rule;
      throw new Error(`unknown rule ${JSON.stringify(never)}`);
    }
  }
}

/** Validates one extra spec as Nova does from 2.86; 400 `Validation failed; ...` when it is wrong. */
export function validateExtraSpec(name: string, value: string): void {
  const rule = KEYS[name] ?? PATTERNS.find(([pattern]) => pattern.test(name))?.[1];
  if (rule) {
    checkValue(rule, value);
    return;
  }
  const colon = name.indexOf(':');
  if (colon < 0) return;
  if (NAMESPACES.test(name.slice(0, colon))) throw badRequest(`Validation failed; extra spec '${name}' does not appear to be a valid extra spec.`);
}
