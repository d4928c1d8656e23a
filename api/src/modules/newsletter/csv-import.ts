import { parse, type Info } from 'csv-parse/sync';
import { and, eq, sql } from 'drizzle-orm';
import { newsletterContacts, newsletterListMembers, newsletterLists, type Db } from '@pec-partner/db';
import type { Clock } from '../../clock.ts';
import { invalid, ProblemError } from '../../http/problem.ts';
import { newId } from '../../ids.ts';
import { cleanName, normalizeEmail } from './content.ts';
import { unsubscribeToken } from './service.ts';

export const MAX_IMPORT_BYTES = 5 * 1024 * 1024;
export const MAX_IMPORT_ROWS = 20_000;

export interface RowError {
  row: number;
  field: 'email' | 'name' | 'consent' | null;
  code: string;
  detail: string;
}

interface ValidRow {
  row: number;
  email: string;
  name: string | null;
  consent: boolean;
}

/** Header names, English or Italian, any case. */
const COLUMNS: Record<string, 'email' | 'name' | 'consent'> = {
  email: 'email', 'e-mail': 'email', mail: 'email', indirizzo: 'email',
  name: 'name', nome: 'name',
  consent: 'consent', consenso: 'consent',
};
const YES = new Set(['true', 'yes', 'y', '1', 'si', 'sì', 'vero', 'x']);
const NO = new Set(['false', 'no', 'n', '0', 'falso']);

/** Comma, or semicolon when the header uses semicolons (Excel with Italian regional settings). */
function delimiterOf(text: string): string {
  const header = text.split(/\r\n|\n|\r/, 1)[0] ?? '';
  return header.includes(';') && !header.includes(',') ? ';' : ',';
}

interface Record_ {
  line: number;
  fields: string[];
}

/**
 * Records with their line numbers. The whole file is parsed first (quoted fields may span lines); when it is
 * malformed (a stray quote), each line is parsed on its own so one bad line costs one row, not the rest of the file.
 */
function records(text: string, delimiter: string): { records: Record_[]; malformed: RowError[] } {
  const options = { delimiter, bom: true, relax_column_count: true, skip_empty_lines: true, trim: true } as const;
  try {
    const parsed = parse(text, { ...options, info: true }) as unknown as Array<{ record: string[]; info: Info }>;
    return { records: parsed.map((item) => ({ line: item.info.lines, fields: item.record })), malformed: [] };
  } catch {
    const out: Record_[] = [];
    const malformed: RowError[] = [];
    text.split(/\r\n|\n|\r/).forEach((line, index) => {
      if (!line.trim()) return;
      try {
        const [fields] = parse(line, options);
        if (fields) out.push({ line: index + 1, fields });
      } catch (error) {
        malformed.push({ row: index + 1, field: null, code: 'malformed_row', detail: `not valid CSV: ${(error as Error).message.split(':')[0]}` });
      }
    });
    return { records: out, malformed };
  }
}

function readHeader(fields: string[]): Map<'email' | 'name' | 'consent', number> {
  const columns = new Map<'email' | 'name' | 'consent', number>();
  fields.forEach((raw, index) => {
    const column = COLUMNS[raw.trim().toLowerCase()];
    if (column && !columns.has(column)) columns.set(column, index);
  });
  const missing = (['email', 'consent'] as const).filter((name) => !columns.has(name));
  if (missing.length > 0) {
    throw new ProblemError(400, 'invalid_csv_header', 'Invalid request',
      `The first line must be a header naming the columns email, name and consent; ${missing.join(' and ')} ${missing.length > 1 ? 'are' : 'is'} missing.`,
      { missing_columns: missing });
  }
  return columns;
}

function validate(records: Record_[], columns: Map<'email' | 'name' | 'consent', number>): { valid: ValidRow[]; errors: RowError[] } {
  const valid: ValidRow[] = [];
  const errors: RowError[] = [];
  const firstRowOf = new Map<string, number>();
  const cell = (fields: string[], column: 'email' | 'name' | 'consent') => {
    const index = columns.get(column);
    return index === undefined ? '' : (fields[index] ?? '').trim();
  };
  for (const { line, fields } of records) {
    const rowErrors: RowError[] = [];
    const rawEmail = cell(fields, 'email');
    const email = rawEmail ? normalizeEmail(rawEmail) : null;
    if (!rawEmail) rowErrors.push({ row: line, field: 'email', code: 'required', detail: 'the address is empty' });
    else if (!email) rowErrors.push({ row: line, field: 'email', code: 'invalid_format', detail: `'${rawEmail.slice(0, 100)}' is not a plain e-mail address` });
    const name = cell(fields, 'name');
    if (name.length > 200) rowErrors.push({ row: line, field: 'name', code: 'out_of_range', detail: 'at most 200 characters' });
    const rawConsent = cell(fields, 'consent').toLowerCase();
    const consent = YES.has(rawConsent) ? true : NO.has(rawConsent) ? false : null;
    if (!rawConsent) rowErrors.push({ row: line, field: 'consent', code: 'required', detail: 'say yes or no' });
    else if (consent === null) rowErrors.push({ row: line, field: 'consent', code: 'invalid_value', detail: `'${rawConsent.slice(0, 20)}' is not one of yes/no, true/false, 1/0, sì/no` });
    if (email && firstRowOf.has(email)) {
      rowErrors.push({ row: line, field: 'email', code: 'duplicate_row', detail: `the same address is on line ${firstRowOf.get(email)}; that line is the one imported` });
    }
    if (rowErrors.length > 0) {
      errors.push(...rowErrors);
      continue;
    }
    firstRowOf.set(email!, line);
    valid.push({ row: line, email: email!, name: cleanName(name), consent: consent! });
  }
  return { valid, errors };
}

/**
 * Imports a CSV address book (already decoded from UTF-8 by the route's content-type parser): valid rows are created, rows whose address is already there update its name (when
 * given) and consent, invalid rows are reported one error per field and skipped. An unsubscription survives the
 * import: only the contact can opt in again. `listId` also adds every imported row to that list.
 */
export async function importContacts(db: Db, clock: Clock, mailboxId: string, text: string, listId: string | undefined) {
  const { records: all, malformed } = records(text, delimiterOf(text));
  const [header, ...rows] = all;
  if (!header || (malformed[0] && malformed[0].row <= header.line)) {
    throw new ProblemError(400, 'invalid_csv_header', 'Invalid request', 'The first line must be a header naming the columns email, name and consent.', { missing_columns: ['email', 'consent'] });
  }
  const columns = readHeader(header.fields);
  if (rows.length + malformed.length > MAX_IMPORT_ROWS) {
    throw new ProblemError(413, 'too_many_rows', 'Payload too large', `One import takes at most ${MAX_IMPORT_ROWS} rows; split the file.`);
  }
  const { valid, errors } = validate(rows, columns);
  errors.push(...malformed);
  errors.sort((a, b) => a.row - b.row);

  const now = clock.now();
  let created = 0;
  let updated = 0;
  await db.transaction(async (tx) => {
    if (listId !== undefined) {
      const [list] = await tx.select({ id: newsletterLists.id }).from(newsletterLists).where(and(eq(newsletterLists.id, listId), eq(newsletterLists.mailboxId, mailboxId)));
      if (!list) throw invalid([{ pointer: '/list', location: 'query', code: 'resource_missing', detail: `no distribution list with id '${listId}'` }]);
    }
    for (let start = 0; start < valid.length; start += 500) {
      const chunk = valid.slice(start, start + 500);
      const written = await tx.insert(newsletterContacts)
        .values(chunk.map((row) => ({
          id: newId('nlc', now), mailboxId, email: row.email, name: row.name, consent: row.consent,
          unsubscribeToken: unsubscribeToken(), createdAt: now, updatedAt: now,
        })))
        .onConflictDoUpdate({
          target: [newsletterContacts.mailboxId, newsletterContacts.email],
          set: { name: sql`coalesce(excluded.name, ${newsletterContacts.name})`, consent: sql`excluded.consent`, updatedAt: now },
        })
        .returning({ id: newsletterContacts.id, inserted: sql<boolean>`(xmax = 0)` });
      for (const row of written) row.inserted ? created++ : updated++;
      if (listId !== undefined) {
        await tx.insert(newsletterListMembers).values(written.map((row) => ({ listId, contactId: row.id }))).onConflictDoNothing();
      }
    }
  });
  return {
    object: 'newsletter_contact_import' as const,
    rows: rows.length + malformed.length,
    created,
    updated,
    failed: new Set(errors.map((error) => error.row)).size,
    errors,
  };
}
