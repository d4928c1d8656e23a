import { randomBytes } from 'node:crypto';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/**
 * Opaque prefixed identifiers (`cus_…`). The body is a ULID (48-bit time + 80 random bits, Crockford base32),
 * so identifiers sort by creation time: lists order by id and cursors are plain ids.
 */
export function newId(prefix: string, at: Date = new Date()): string {
  let time = at.getTime();
  let timePart = '';
  for (let i = 0; i < 10; i++) {
    timePart = CROCKFORD[time % 32] + timePart;
    time = Math.floor(time / 32);
  }
  const random = randomBytes(10);
  let randomPart = '';
  // 80 bits → 16 base32 characters, 5 bits each.
  let buffer = 0;
  let bits = 0;
  for (const byte of random) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      randomPart += CROCKFORD[(buffer >> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return `${prefix}_${timePart}${randomPart}`.toLowerCase();
}

/** Random URL-safe secret material (base62 keeps keys double-click selectable). */
export function randomToken(length: number): string {
  const alphabet = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
  let out = '';
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      // Rejection sampling keeps the distribution uniform (248 = 4 × 62).
      if (byte < 248 && out.length < length) out += alphabet[byte % 62];
    }
  }
  return out;
}
