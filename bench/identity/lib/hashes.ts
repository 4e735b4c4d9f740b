import { Algorithm, hash, verify } from '@node-rs/argon2';
import fs from 'node:fs';
import { runCommand } from '../../lib/proc.js';

/** Hash parameters read back from a stored password hash. */
export interface StoredHash {
  /** The hash with its salt and digest cut off (`$2b$12$…`, `$argon2id$v=19$m=…$…`). */
  prefix: string;
  algorithm: string;
  params: Record<string, number>;
}

async function readOne(dbPath: string, sql: string): Promise<string | null> {
  if (!fs.existsSync(dbPath)) return null;
  const { default: Database } = await import('better-sqlite3');
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  try {
    const row = db.prepare(sql).get() as Record<string, unknown> | undefined;
    const value = row ? Object.values(row)[0] : undefined;
    return typeof value === 'string' ? value : null;
  } finally {
    db.close();
  }
}

/** Parses a bcrypt (`$2b$12$...`) or argon2 PHC (`$argon2id$v=19$m=..,t=..,p=..$...`) hash. */
export function parseHash(stored: string): StoredHash | null {
  const bcrypt = /^\$(2[abxy]?)\$(\d+)\$/.exec(stored);
  if (bcrypt) return { prefix: bcrypt[0], algorithm: `bcrypt (${bcrypt[1] ?? ''})`, params: { cost: Number(bcrypt[2]) } };
  const argon = /^\$(argon2(?:id|i|d))\$v=(\d+)\$m=(\d+),t=(\d+),p=(\d+)\$/.exec(stored);
  if (argon) return { prefix: argon[0], algorithm: argon[1] ?? 'argon2', params: { version: Number(argon[2]), m_kib: Number(argon[3]), t: Number(argon[4]), p: Number(argon[5]) } };
  return null;
}

/** The admin password hash stored in Keystone's SQLite database (table `password`). */
export async function keystoneStoredHash(dbPath: string): Promise<StoredHash | null> {
  const value = await readOne(dbPath, "SELECT p.password_hash FROM password p JOIN local_user lu ON lu.id = p.local_user_id WHERE lu.name = 'admin' LIMIT 1");
  return value ? parseHash(value) : null;
}

/** The admin password hash stored in Stratus' identity database (table `user`). */
export async function stratusStoredHash(dbPath: string): Promise<StoredHash | null> {
  const value = await readOne(dbPath, `SELECT password_hash FROM "user" WHERE name = 'admin' LIMIT 1`);
  return value ? parseHash(value) : null;
}

const BCRYPT_TIMER = `
import sys, time
from passlib.hash import bcrypt
h = bcrypt.using(rounds=int(sys.argv[1])).hash("secret")
out = []
for _ in range(int(sys.argv[2])):
    t = time.perf_counter()
    assert bcrypt.verify("secret", h)
    out.append((time.perf_counter() - t) * 1000)
print(" ".join("%.3f" % x for x in out))
`;

/**
 * Wall time (ms) of single bcrypt verifications with passlib, as Keystone
 * checks a password, run `n` times with Keystone's Python.
 */
export async function bcryptVerifyMs(python: string, rounds: number, n: number): Promise<number[]> {
  const r = await runCommand(python, ['-c', BCRYPT_TIMER, String(rounds), String(n)], { timeoutMs: 120000 });
  if (r.code !== 0) throw new Error(`bcrypt timing with ${python} failed: ${r.stderr}`);
  return r.stdout.trim().split(/\s+/).map(Number);
}

/** Wall time (ms) of single argon2id verifications with Stratus' library and parameters, `n` times. */
export async function argon2VerifyMs(params: { memory_kib: number; iterations: number; parallelism: number }, n: number): Promise<number[]> {
  const stored = await hash('secret', { algorithm: Algorithm.Argon2id, memoryCost: params.memory_kib, timeCost: params.iterations, parallelism: params.parallelism });
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    if (!(await verify(stored, 'secret'))) throw new Error('argon2 verify failed');
    out.push(performance.now() - t);
  }
  return out;
}
