import { NotAcceptable, BadRequest } from '../errors.js';

/** A microversion such as 2.93, compared numerically part by part. */
export interface Microversion {
  major: number;
  minor: number;
}

export function parseMicroversion(text: string): Microversion | null {
  const match = /^(\d+)\.(\d+)$/.exec(text.trim());
  return match ? { major: Number(match[1]), minor: Number(match[2]) } : null;
}

export function compareMicroversions(a: Microversion, b: Microversion): number {
  return a.major - b.major || a.minor - b.minor;
}

export function formatMicroversion(v: Microversion): string {
  return `${v.major}.${v.minor}`;
}

/**
 * Negotiates the microversion of a request from `OpenStack-API-Version:
 * <service> X.Y` (or a legacy header such as `X-OpenStack-Nova-API-Version`).
 * No header: the minimum; `latest`: the maximum; out of range: 406, as the
 * OpenStack APIs answer. Returns the version and the response headers to set.
 */
export function negotiateMicroversion(
  headers: Record<string, string | string[] | undefined>,
  options: { service: string; min: string; max: string; legacyHeader?: string },
): { version: Microversion; responseHeaders: Record<string, string> } {
  const min = parseMicroversion(options.min);
  const max = parseMicroversion(options.max);
  if (!min || !max) throw new Error(`bad microversion range ${options.min}..${options.max}`);
  let requested: string | undefined;
  const standard = headerValue(headers['openstack-api-version']);
  if (standard) {
    for (const part of standard.split(',')) {
      const [service, value] = part.trim().split(/\s+/, 2);
      if (service?.toLowerCase() === options.service && value) requested = value;
    }
  }
  if (requested === undefined && options.legacyHeader) requested = headerValue(headers[options.legacyHeader.toLowerCase()]);
  let version = min;
  if (requested !== undefined) {
    if (requested.trim().toLowerCase() === 'latest') version = max;
    else {
      const parsed = parseMicroversion(requested);
      if (!parsed) throw new BadRequest(`API Version String ${requested} is of invalid format. Must be of format MajorNum.MinorNum.`);
      if (compareMicroversions(parsed, min) < 0 || compareMicroversions(parsed, max) > 0) {
        throw new NotAcceptable(`Version ${requested} is not supported by the API. Minimum is ${options.min} and maximum is ${options.max}.`);
      }
      version = parsed;
    }
  }
  const text = formatMicroversion(version);
  const responseHeaders: Record<string, string> = {
    'OpenStack-API-Version': `${options.service} ${text}`,
    Vary: options.legacyHeader ? `OpenStack-API-Version, ${options.legacyHeader}` : 'OpenStack-API-Version',
  };
  if (options.legacyHeader) responseHeaders[options.legacyHeader] = text;
  return { version, responseHeaders };
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(',') : value;
}
