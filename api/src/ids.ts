import { randomBytes } from 'node:crypto';

const CROCKFORD = '0123456789abcdefghjkmnpqrstvwxyz';
const RANDOM_BITS = 80n;

function encode(value: bigint, length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) {
    out = CROCKFORD[Number(value & 31n)] + out;
    value >>= 5n;
  }
  return out;
}

let lastTime = -1;
let lastRandom = 0n;

/**
 * Opaque prefixed identifiers (`cus_…`). The body is a monotonic ULID (48-bit time, then 80 bits that are
 * random for a new millisecond and incremented within the same one), so ids sort in creation order: lists
 * order by id and cursors are plain ids, even for rows created in the same millisecond or on a frozen test clock.
 */
export function newId(prefix: string, at: Date = new Date()): string {
  let time = at.getTime();
  if (time <= lastTime) {
    time = lastTime;
    lastRandom = (lastRandom + 1n) & ((1n << RANDOM_BITS) - 1n);
  } else {
    lastTime = time;
    // Top bit clear leaves room to increment within a millisecond without overflowing.
    lastRandom = BigInt(`0x${randomBytes(10).toString('hex')}`) >> 1n;
  }
  return `${prefix}_${encode(BigInt(time), 10)}${encode(lastRandom, 16)}`;
}

/** Random secret material in base62 (keeps keys double-click selectable). */
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
