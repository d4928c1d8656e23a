/**
 * Sequence sets (RFC 9051 §9 `sequence-set`): "1:*", "2,4:7", "*". Resolved against the session's view of the
 * folder (its UIDs in order), never expanded numerically, so "1:4294967295" costs no more than the folder size.
 */
export class SequenceSetError extends Error {}

type Range = [number, number];

function ranges(text: string, star: number): Range[] {
  if (!/^[0-9*:,]+$/.test(text)) throw new SequenceSetError(`Invalid sequence set: ${text.slice(0, 50)}`);
  return text.split(',').map((item) => {
    const [a, b = a] = item.split(':');
    const value = (v: string | undefined) => {
      if (v === '*') return star;
      if (!v || !/^[1-9][0-9]{0,9}$/.test(v) || Number(v) > 4294967295) throw new SequenceSetError(`Invalid sequence set: ${text.slice(0, 50)}`);
      return Number(v);
    };
    if (item.split(':').length > 2) throw new SequenceSetError(`Invalid sequence set: ${text.slice(0, 50)}`);
    const x = value(a);
    const y = value(b);
    return x <= y ? [x, y] : [y, x];
  });
}

/** Binary search: the index of the first element >= value. */
export function lowerBound(sorted: readonly number[], value: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The UIDs (ascending, no repeats) that a message-number set names in this view. */
export function uidsForSequenceSet(text: string, uids: readonly number[]): number[] {
  const picked = new Set<number>();
  for (const [from, to] of ranges(text, uids.length)) {
    if (from > uids.length) continue;
    for (let seq = from; seq <= Math.min(to, uids.length); seq++) picked.add(uids[seq - 1]!);
  }
  return [...picked].sort((a, b) => a - b);
}

/** The UIDs of this view that a UID set names ("*" is the highest UID; an empty folder names nothing). */
export function uidsForUidSet(text: string, uids: readonly number[]): number[] {
  const last = uids.length ? uids[uids.length - 1]! : 0;
  const picked = new Set<number>();
  for (const [from, to] of ranges(text, last)) {
    for (let i = lowerBound(uids, from); i < uids.length && uids[i]! <= to; i++) picked.add(uids[i]!);
  }
  return [...picked].sort((a, b) => a - b);
}

/** Whether a number lies in a set (for SEARCH UID and message-number keys); `star` is what * stands for. */
export function setContains(text: string, star: number): (n: number) => boolean {
  const parsed = ranges(text, star);
  return (n) => parsed.some(([a, b]) => n >= a && n <= b);
}

/** A compact set for responses: 1:3,5,7:9. */
export function compactSet(numbers: readonly number[]): string {
  const sorted = [...numbers].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; i++) {
    const start = sorted[i]!;
    while (i + 1 < sorted.length && sorted[i + 1] === sorted[i]! + 1) i++;
    parts.push(start === sorted[i] ? String(start) : `${start}:${sorted[i]}`);
  }
  return parts.join(',');
}

/** A list of numbers in the given order (COPYUID's source and destination sets must correspond item by item). */
export const orderedSet = (numbers: readonly number[]): string => numbers.join(',');
