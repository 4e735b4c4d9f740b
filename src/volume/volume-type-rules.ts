import { badRequest } from './errors.js';

/**
 * What a volume type's extra specs mean for its volumes: multiattach,
 * the zones it is limited to, and the sizes it allows.
 */

/** The part of a type these rules read. */
export interface TypeSpecs {
  name: string;
  extra_specs: Record<string, string>;
}

/** True when the type's extra specs ask for multiattach volumes (`multiattach='<is> True'`). */
export function isMultiattachType(type: { extra_specs: Record<string, string> } | null): boolean {
  return type?.extra_specs.multiattach === '<is> True';
}

/** The zones a type is limited to (`RESKEY:availability_zones`, comma-separated), or null. */
export function typeZones(type: TypeSpecs): string[] | null {
  const spec = type.extra_specs['RESKEY:availability_zones'];
  if (!spec) return null;
  const zones = spec
    .split(',')
    .map((z) => z.trim())
    .filter((z) => z !== '');
  return zones.length > 0 ? zones : null;
}

/**
 * Cinder's `provision_filter_on_size`: a type's `provisioning:min_vol_size`
 * and `provisioning:max_vol_size` bound the size of its volumes (400
 * `Invalid input received: Specified volume size of ...`).
 */
export function checkTypeSize(type: TypeSpecs, size: number): void {
  const min = type.extra_specs['provisioning:min_vol_size'];
  if (min && size < Number(min)) {
    throw badRequest(`Invalid input received: Specified volume size of '${size}' is less than the minimum required size of '${min}' for volume type '${type.name}'.`);
  }
  const max = type.extra_specs['provisioning:max_vol_size'];
  if (max && size > Number(max)) {
    throw badRequest(`Invalid input received: Specified volume size of '${size}' is greater than the maximum allowable size of '${max}' for volume type '${type.name}'.`);
  }
}

/** Cinder's `matching_backend_name`: two types that name the same backend (or none). */
export function sameBackendName(a: TypeSpecs | null, b: TypeSpecs | null): boolean {
  return (a?.extra_specs.volume_backend_name ?? null) === (b?.extra_specs.volume_backend_name ?? null);
}
