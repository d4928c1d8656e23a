import { randomBytes } from 'node:crypto';
import { romeTimestamp } from './time.ts';

/**
 * PEC message identifiers in the shape every observed provider uses (spec §4.4):
 * `opec<n>.<yyyymmddhhmmss>.<n>.<n>.<n>@<domain>`, e.g. `opec275.20140806120104.16138.09.3.17@pec.aruba.it`.
 * Keeping the shape lets tools that recognise PEC ids by it (log analysers, support desks) read ours. The numeric
 * fields, which real providers fill with server, process and counter numbers, carry 80 random bits here, so ids
 * are unique without coordination between processes. Returned without angle brackets, as daticert
 * `identificativo` and the readable texts write it.
 */
export function newPecMessageId(domain: string, now: Date, random: (size: number) => Uint8Array = randomBytes): string {
  const bytes = Buffer.from(random(10));
  const fields = [bytes.readUInt16BE(0), bytes.readUInt32BE(2), bytes.readUInt16BE(6), bytes.readUInt16BE(8)];
  return `opec${fields[0]}.${romeTimestamp(now)}.${fields.slice(1).join('.')}@${domain.toLowerCase()}`;
}
