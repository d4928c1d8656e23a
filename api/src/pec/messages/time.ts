/**
 * Italian legal time (Europe/Rome), the only clock PEC texts and daticert.xml speak (spec §5, §6.4). Every form is
 * derived from one instant truncated to the second, so the `Date:` header, the readable text and daticert `data`
 * of a message always agree to the second.
 */

/** Wall-clock reading of an instant in Rome, plus its UTC offset in the `[+|-]hhmm` form of daticert `zona`. */
export interface RomeTime {
  /** `gg/mm/aaaa` (daticert `giorno`). */
  day: string;
  /** `hh:mm:ss`, 24-hour (daticert `ora`). */
  time: string;
  /** `+0100` in winter (CET), `+0200` in summer (CEST). */
  zone: string;
}

interface WallClock {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  offsetMinutes: number;
}

// en-US with numeric parts: locale only affects formatting, which formatToParts lets us ignore.
const romeParts = new Intl.DateTimeFormat('en-US', {
  timeZone: 'Europe/Rome',
  year: 'numeric',
  month: 'numeric',
  day: 'numeric',
  hour: 'numeric',
  minute: 'numeric',
  second: 'numeric',
  hourCycle: 'h23',
});

const WEEKDAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'] as const;
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'] as const;

const pad = (value: number, width = 2): string => String(value).padStart(width, '0');

function wallClock(at: Date): WallClock {
  const seconds = Math.floor(at.getTime() / 1000) * 1000;
  const parts = Object.fromEntries(romeParts.formatToParts(seconds).map((part) => [part.type, part.value]));
  const read = (type: string): number => Number(parts[type]);
  const reading = {
    year: read('year'),
    month: read('month'),
    day: read('day'),
    hour: read('hour'),
    minute: read('minute'),
    second: read('second'),
  };
  // The offset is whatever separates the Rome reading from UTC at that instant, so DST changes need no rules here.
  const asUtc = Date.UTC(reading.year, reading.month - 1, reading.day, reading.hour, reading.minute, reading.second);
  return { ...reading, offsetMinutes: Math.round((asUtc - seconds) / 60_000) };
}

function formatOffset(minutes: number): string {
  const sign = minutes < 0 ? '-' : '+';
  const absolute = Math.abs(minutes);
  return `${sign}${pad(Math.floor(absolute / 60))}${pad(absolute % 60)}`;
}

export function romeTime(at: Date): RomeTime {
  const clock = wallClock(at);
  return {
    day: `${pad(clock.day)}/${pad(clock.month)}/${clock.year}`,
    time: `${pad(clock.hour)}:${pad(clock.minute)}:${pad(clock.second)}`,
    zone: formatOffset(clock.offsetMinutes),
  };
}

/** The form of the readable texts: `06/08/2014 alle ore 12:01:04 (+0200)`, preceded by "Il giorno" in the text. */
export function readableRomeTime(at: Date): string {
  const { day, time, zone } = romeTime(at);
  return `${day} alle ore ${time} (${zone})`;
}

/** RFC 5322 date-time in Rome time, as real providers write it: `Wed, 6 Aug 2014 12:01:04 +0200`. */
export function rfc5322RomeDate(at: Date): string {
  const clock = wallClock(at);
  const weekday = WEEKDAYS[new Date(Date.UTC(clock.year, clock.month - 1, clock.day)).getUTCDay()]!;
  const time = `${pad(clock.hour)}:${pad(clock.minute)}:${pad(clock.second)}`;
  return `${weekday}, ${clock.day} ${MONTHS[clock.month - 1]!} ${clock.year} ${time} ${formatOffset(clock.offsetMinutes)}`;
}

/** `yyyymmddhhmmss` in Rome time, the timestamp field of PEC message identifiers. */
export function romeTimestamp(at: Date): string {
  const clock = wallClock(at);
  return `${clock.year}${pad(clock.month)}${pad(clock.day)}${pad(clock.hour)}${pad(clock.minute)}${pad(clock.second)}`;
}
