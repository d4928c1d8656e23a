import { and, asc, desc, eq, gt, gte, lt, type SQL } from 'drizzle-orm';
import { logRegister, type Db } from '@pec-partner/db';
import { csvText } from '../../http/csv.ts';

type Row = typeof logRegister.$inferSelect;

/** Log entries are addressed as `log_` + the zero-padded sequence number: opaque, sortable, a valid cursor. */
export const logEntryId = (seq: number): string => `log_${String(seq).padStart(26, '0')}`;
export const seqOf = (id: string): number => Number(id.slice(4));

export function logEntryView(row: Row) {
  return {
    id: logEntryId(row.seq),
    object: 'log_entry' as const,
    occurred_at: row.occurredAt.toISOString(),
    event: row.event,
    message_id: row.messageId,
    related_message_ids: row.relatedMessageIds,
    sender: row.sender,
    recipients: row.recipients,
    subject: row.subject,
    provider: row.provider,
    mailbox: row.mailboxId,
    details: row.details as Record<string, unknown>,
    hash: row.hash,
  };
}
export type LogEntryView = ReturnType<typeof logEntryView>;

export interface LogQuery {
  partnerId: string;
  mailboxId?: string | undefined;
  messageId?: string | undefined;
  from?: Date | undefined;
  to?: Date | undefined;
}

function conditions(query: LogQuery): SQL | undefined {
  return and(
    eq(logRegister.partnerId, query.partnerId),
    query.mailboxId ? eq(logRegister.mailboxId, query.mailboxId) : undefined,
    query.messageId ? eq(logRegister.messageId, query.messageId.replace(/^<|>$/g, '')) : undefined,
    query.from ? gte(logRegister.occurredAt, query.from) : undefined,
    query.to ? lt(logRegister.occurredAt, query.to) : undefined,
  );
}

/** Newest first, for browsing. */
export async function listLogEntries(db: Db, query: LogQuery & { limit: number; startingAfter?: string | undefined }): Promise<LogEntryView[]> {
  const rows = await db
    .select()
    .from(logRegister)
    .where(and(conditions(query), query.startingAfter ? lt(logRegister.seq, seqOf(query.startingAfter)) : undefined))
    .orderBy(desc(logRegister.seq))
    .limit(query.limit + 1);
  return rows.map(logEntryView);
}

/** Oldest first in batches, so an export of any length streams in constant memory. */
export async function* exportLogEntries(db: Db, query: LogQuery, batch = 500): AsyncGenerator<LogEntryView> {
  let after = 0;
  for (;;) {
    const rows = await db.select().from(logRegister).where(and(conditions(query), gt(logRegister.seq, after))).orderBy(asc(logRegister.seq)).limit(batch);
    for (const row of rows) yield logEntryView(row);
    if (rows.length < batch) return;
    after = rows.at(-1)!.seq;
  }
}

const CSV_COLUMNS = ['id', 'occurred_at', 'event', 'message_id', 'related_message_ids', 'sender', 'recipients', 'subject', 'provider', 'mailbox', 'details', 'hash'] as const;

/** RFC 4180 field (see csvText: quoted when needed, formulas defused). */
function csvField(value: unknown): string {
  return csvText(Array.isArray(value) ? value.join(' ') : value && typeof value === 'object' ? JSON.stringify(value) : String(value ?? ''));
}

export async function* csvLines(entries: AsyncIterable<LogEntryView>): AsyncGenerator<string> {
  yield `${CSV_COLUMNS.join(',')}\r\n`;
  for await (const entry of entries) yield `${CSV_COLUMNS.map((c) => csvField(entry[c])).join(',')}\r\n`;
}

/** A JSON array written element by element. */
export async function* jsonLines(entries: AsyncIterable<LogEntryView>): AsyncGenerator<string> {
  yield '[';
  let first = true;
  for await (const entry of entries) {
    yield `${first ? '' : ','}\n${JSON.stringify(entry)}`;
    first = false;
  }
  yield '\n]\n';
}
