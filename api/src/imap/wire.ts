/**
 * IMAP response data as it goes on the wire (RFC 9051 §4). Responses are assembled as binary strings (latin1: one
 * character per byte) so that message bytes, 8-bit header text and protocol syntax concatenate without re-encoding;
 * `Buffer.from(s, 'latin1')` sends them as they are.
 */

/** A JavaScript (UTF-16) string as its UTF-8 bytes in a binary string. */
export const utf8 = (text: string): string => Buffer.from(text, 'utf8').toString('latin1');

/** A binary string as the text it encodes in UTF-8. */
export const fromUtf8 = (binary: string): string => Buffer.from(binary, 'latin1').toString('utf8');

const QUOTABLE = /^[\x01-\x09\x0b\x0c\x0e-\x7f]*$/;

/**
 * A string: quoted when it is short 7-bit text without CR, LF or NUL, a literal otherwise. `value` is binary. NULs
 * cannot travel in a string at all (RFC 9051 §4.3): they are dropped.
 */
export function str(value: string): string {
  if (value.length < 1024 && QUOTABLE.test(value)) return `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
  const bytes = value.includes('\0') ? value.replace(/\0/g, '') : value;
  return `{${bytes.length}}\r\n${bytes}`;
}

/** A literal, whatever the content (message bytes). */
export const literal = (binary: string): string => `{${binary.length}}\r\n${binary}`;

/** An nstring: NIL for null. */
export const nstr = (value: string | null | undefined): string => (value === null || value === undefined ? 'NIL' : str(value));

/** An astring: an atom when the text is one, a string otherwise (used for mailbox names). */
export function astr(value: string): string {
  return value.length > 0 && /^[!#$&'+,\-./0-9:;<=>?@A-Z^_`a-z|}~\]]+$/.test(value) ? value : str(value);
}

/** A parenthesised list of already-encoded items. */
export const list = (items: readonly string[]): string => `(${items.join(' ')})`;

/** An IMAP date-time (INTERNALDATE), in UTC: "02-Dec-2026 16:37:22 +0000". */
export function dateTime(date: Date): string {
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const pad = (n: number) => String(n).padStart(2, '0');
  return `"${pad(date.getUTCDate())}-${months[date.getUTCMonth()]}-${date.getUTCFullYear()} ${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())} +0000"`;
}

const MONTHS: Record<string, number> = { jan: 0, feb: 1, mar: 2, apr: 3, may: 4, jun: 5, jul: 6, aug: 7, sep: 8, oct: 9, nov: 10, dec: 11 };

/** A search date ("1-Feb-2026"): the UTC day it names, or null when it is not one. */
export function parseDate(text: string): Date | null {
  const match = /^"?(\d{1,2})-([A-Za-z]{3})-(\d{4})"?$/.exec(text.trim());
  const month = match ? MONTHS[match[2]!.toLowerCase()] : undefined;
  if (!match || month === undefined) return null;
  const date = new Date(Date.UTC(Number(match[3]), month, Number(match[1])));
  return date.getUTCDate() === Number(match[1]) ? date : null;
}

/** An APPEND date-time ("02-Dec-2026 16:37:22 +0100"), or null when it is not one. */
export function parseDateTime(text: string): Date | null {
  const match = /^\s?(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})$/.exec(text);
  const month = match ? MONTHS[match[2]!.toLowerCase()] : undefined;
  if (!match || month === undefined) return null;
  const offset = (match[7] === '-' ? -1 : 1) * (Number(match[8]) * 60 + Number(match[9])) * 60_000;
  const date = new Date(Date.UTC(Number(match[3]), month, Number(match[1]), Number(match[4]), Number(match[5]), Number(match[6])) - offset);
  return Number.isNaN(date.getTime()) ? null : date;
}
