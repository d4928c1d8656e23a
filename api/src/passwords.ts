import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { randomToken } from './ids.ts';

// scrypt parameters: N=2^15, r=8, p=1 (~32 MiB, tens of ms): OWASP's recommended minimum for scrypt.
const PARAMS = { N: scryptCost(), r: 8, p: 1, maxmem: 64 * 1024 * 1024 } as const;

/**
 * PASSWORD_SCRYPT_COST lowers N for new hashes where speed matters more than resistance to offline guessing: the
 * test suite, which creates and checks thousands of passwords. Stored hashes name their own parameters, so a
 * hash made with one cost verifies under any other. Never lower it in production.
 */
function scryptCost(): number {
  const raw = process.env.PASSWORD_SCRYPT_COST;
  if (raw === undefined || raw === '') return 32_768;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1024 || n > 1_048_576 || (n & (n - 1)) !== 0) {
    throw new Error(`PASSWORD_SCRYPT_COST must be a power of two from 1024 to 1048576; got '${raw}'.`);
  }
  return n;
}
const KEY_LENGTH = 32;

function derive(password: string, salt: Buffer, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(password, salt, KEY_LENGTH, options, (error, key) => (error ? reject(error) : resolve(key))),
  );
}

/** `scrypt$N$r$p$salt$hash` (base64): self-describing, so parameters can be raised later. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(password, salt, PARAMS);
  return `scrypt$${PARAMS.N}$${PARAMS.r}$${PARAMS.p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, n, r, p, salt, hash] = stored.split('$');
  if (scheme !== 'scrypt' || !salt || !hash) return false;
  const expected = Buffer.from(hash, 'base64');
  const key = await derive(password, Buffer.from(salt, 'base64'), { N: Number(n), r: Number(r), p: Number(p), maxmem: PARAMS.maxmem });
  return key.length === expected.length && timingSafeEqual(key, expected);
}

/** A password for a holder who did not choose one: 16 base62 characters (~95 bits). */
export function generatePassword(): string {
  return randomToken(16);
}
