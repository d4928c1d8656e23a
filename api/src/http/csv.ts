/**
 * RFC 4180 text cell: quoted when it holds a quote, comma or line break. A cell beginning with = + - @ (or a tab or
 * carriage return) is prefixed with ' so a spreadsheet shows it instead of running it as a formula (CSV injection).
 */
export function csvText(value: string): string {
  const text = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** Numbers are written as they are (a negative amount is not a formula); text and null go through csvText. */
export const csvCell = (value: string | number | null): string => (typeof value === 'number' ? String(value) : csvText(value ?? ''));

/** A whole document: a header row, then one row per record in the given column order, CRLF line ends. */
export function toCsv<C extends string>(columns: readonly C[], rows: readonly Record<C, string | number | null>[]): string {
  return [columns.join(','), ...rows.map((row) => columns.map((c) => csvCell(row[c])).join(','))].map((line) => `${line}\r\n`).join('');
}
