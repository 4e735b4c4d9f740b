import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/**
 * Passwords of the service users (`glance`, ...) for an all-in-one cloud:
 * a configured password wins; otherwise one is generated on first start and
 * kept in `service-passwords.json` in the data directory (owner-only), so
 * that restarts keep using it.
 */
export function servicePassword(dataDir: string, user: string, configured: string): string {
  if (configured) return configured;
  const file = path.join(dataDir, 'service-passwords.json');
  const known: Record<string, string> = fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, string>) : {};
  const existing = known[user];
  if (existing) return existing;
  known[user] = randomBytes(18).toString('base64url');
  fs.writeFileSync(`${file}.tmp`, JSON.stringify(known, null, 2), { mode: 0o600 });
  fs.renameSync(`${file}.tmp`, file);
  return known[user];
}
