import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { StratusConfig } from '../core/config.js';
import type { HashPathSalt } from './common.js';

/**
 * The cluster's path-hash salt: from the configuration when set (every node
 * of a multi-host cluster must be given the same), else generated once and
 * kept in `<data_dir>/object/hash-path.json`. Changing it moves every name to
 * another partition, so it is never regenerated.
 */
export function loadHashPathSalt(config: StratusConfig): HashPathSalt {
  const { hash_path_prefix: prefix, hash_path_suffix: suffix } = config.object;
  if (prefix || suffix) return { prefix, suffix };
  const file = path.join(config.data_dir, 'object', 'hash-path.json');
  if (fs.existsSync(file)) return JSON.parse(fs.readFileSync(file, 'utf8')) as HashPathSalt;
  const salt: HashPathSalt = { prefix: '', suffix: randomBytes(16).toString('hex') };
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  fs.writeFileSync(`${file}.tmp`, JSON.stringify(salt), { mode: 0o600, flush: true });
  fs.renameSync(`${file}.tmp`, file);
  return salt;
}
