import { Algorithm, hash, verify } from '@node-rs/argon2';

/** argon2id parameters. */
export interface HashParameters {
  memory_kib: number;
  iterations: number;
  parallelism: number;
}

/**
 * Password hashing with argon2id (memory-hard). The parameters are kept in
 * each hash (PHC string), so changing them affects new passwords only and
 * old hashes still verify. Hashing runs on libuv's thread pool, off the event
 * loop, so several logins use several cores.
 */
export class PasswordHasher {
  constructor(private readonly params: HashParameters) {}

  hash(password: string): Promise<string> {
    return hash(password, {
      algorithm: Algorithm.Argon2id,
      memoryCost: this.params.memory_kib,
      timeCost: this.params.iterations,
      parallelism: this.params.parallelism,
    });
  }

  /** False for a wrong password and for a hash this hasher cannot read. */
  async verify(stored: string | null, password: string): Promise<boolean> {
    if (!stored) return false;
    try {
      return await verify(stored, password);
    } catch {
      return false;
    }
  }
}
