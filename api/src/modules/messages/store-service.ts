import { and, desc, eq, inArray, lt, sql, type SQL } from 'drizzle-orm';
import { simpleParser } from 'mailparser';
import { mailboxes, mailboxFolders, mailboxMessages, pecTransactions, type Db, type MailboxFolder } from '@pec-partner/db';
import { conflict, notFound } from '../../http/problem.ts';
import { adjustUsage, quotaOf } from '../../pec/store.ts';

type Row = typeof mailboxMessages.$inferSelect;

export function messageView(row: Omit<Row, 'content' | 'dedupeKey'>) {
  return {
    id: row.id,
    object: 'mailbox_message' as const,
    folder: row.folder,
    kind: row.kind,
    message_id: row.messageId,
    pec_message_id: row.pecMessageId,
    subject: row.subject,
    from: row.fromAddress,
    size_bytes: row.sizeBytes,
    seen: row.seen,
    stored_at: row.storedAt.toISOString(),
  };
}
export type MessageView = ReturnType<typeof messageView>;

const summaryColumns = {
  id: mailboxMessages.id, mailboxId: mailboxMessages.mailboxId, folder: mailboxMessages.folder, kind: mailboxMessages.kind,
  messageId: mailboxMessages.messageId, pecMessageId: mailboxMessages.pecMessageId, subject: mailboxMessages.subject,
  fromAddress: mailboxMessages.fromAddress, sizeBytes: mailboxMessages.sizeBytes, seen: mailboxMessages.seen, storedAt: mailboxMessages.storedAt,
};

/**
 * Narrows what a caller sees: `{ delegationId }` (a `send_only` collaborator) keeps only the messages of the
 * transactions that delegation submitted (the sent copies and their receipts); null keeps everything.
 */
export type Visibility = { delegationId: string } | null;

function visible(db: Db, mailboxId: string, visibility: Visibility | undefined): SQL | undefined {
  if (!visibility) return undefined;
  return inArray(mailboxMessages.pecMessageId, db.select({ id: pecTransactions.pecMessageId }).from(pecTransactions)
    .where(and(eq(pecTransactions.mailboxId, mailboxId), eq(pecTransactions.delegationId, visibility.delegationId))));
}

export async function folderSummaries(db: Db, mailboxId: string, visibility?: Visibility) {
  const rows = await db
    .select({
      folder: mailboxMessages.folder,
      total: sql<number>`count(*)::int`,
      unread: sql<number>`(count(*) filter (where not ${mailboxMessages.seen}))::int`,
      size: sql<number>`coalesce(sum(${mailboxMessages.sizeBytes}), 0)::bigint`,
    })
    .from(mailboxMessages)
    .where(and(eq(mailboxMessages.mailboxId, mailboxId), visible(db, mailboxId, visibility)))
    .groupBy(mailboxMessages.folder);
  const byFolder = new Map(rows.map((r) => [r.folder, r]));
  return mailboxFolders.map((name) => {
    const r = byFolder.get(name);
    return { object: 'mailbox_folder' as const, name, total: r?.total ?? 0, unread: r?.unread ?? 0, size_bytes: Number(r?.size ?? 0) };
  });
}

export async function listMessages(db: Db, mailboxId: string, query: { folder?: MailboxFolder | undefined; seen?: boolean | undefined; pecMessageId?: string | undefined; limit: number; startingAfter?: string | undefined }, visibility?: Visibility) {
  const rows = await db
    .select(summaryColumns)
    .from(mailboxMessages)
    .where(and(
      eq(mailboxMessages.mailboxId, mailboxId),
      query.folder ? eq(mailboxMessages.folder, query.folder) : undefined,
      query.seen === undefined ? undefined : eq(mailboxMessages.seen, query.seen),
      query.pecMessageId ? eq(mailboxMessages.pecMessageId, query.pecMessageId) : undefined,
      query.startingAfter ? lt(mailboxMessages.id, query.startingAfter) : undefined,
      visible(db, mailboxId, visibility),
    ))
    .orderBy(desc(mailboxMessages.id))
    .limit(query.limit + 1);
  return rows.map(messageView);
}

async function findMessage(db: Db, mailboxId: string, id: string, visibility?: Visibility): Promise<Row> {
  const [row] = await db.select().from(mailboxMessages).where(and(eq(mailboxMessages.id, id), eq(mailboxMessages.mailboxId, mailboxId), visible(db, mailboxId, visibility)));
  if (!row) throw notFound('message', id);
  return row;
}

export async function rawMessage(db: Db, mailboxId: string, id: string, visibility?: Visibility): Promise<Buffer> {
  return (await findMessage(db, mailboxId, id, visibility)).content;
}

/** The message parsed for display: headers that matter, text, HTML and the attachments' metadata. */
export async function readMessage(db: Db, mailboxId: string, id: string, visibility?: Visibility) {
  const row = await findMessage(db, mailboxId, id, visibility);
  const parsed = await simpleParser(row.content, { skipHtmlToText: true, skipTextToHtml: true, skipImageLinks: true });
  const header = (name: string) => {
    const value = parsed.headers.get(name);
    return typeof value === 'string' ? value : null;
  };
  return {
    ...messageView(row),
    date: parsed.date?.toISOString() ?? null,
    to: parsed.to ? (Array.isArray(parsed.to) ? parsed.to : [parsed.to]).flatMap((a) => a.value.map((v) => v.address ?? '')) : [],
    cc: parsed.cc ? (Array.isArray(parsed.cc) ? parsed.cc : [parsed.cc]).flatMap((a) => a.value.map((v) => v.address ?? '')) : [],
    pec_headers: {
      x_ricevuta: header('x-ricevuta'),
      x_trasporto: header('x-trasporto'),
      x_riferimento_message_id: header('x-riferimento-message-id'),
      x_tipo_ricevuta: header('x-tiporicevuta'),
    },
    text: parsed.text ?? null,
    html: typeof parsed.html === 'string' ? parsed.html : null,
    attachments: parsed.attachments.map((a) => ({ filename: a.filename ?? null, content_type: a.contentType, size_bytes: a.size })),
  };
}

/** Marks seen/unseen and moves between folders; a move into the archive needs room in the archive quota. */
export async function updateMessage(db: Db, mailboxId: string, id: string, change: { seen?: boolean | undefined; folder?: MailboxFolder | undefined }) {
  return db.transaction(async (tx) => {
    const [row] = await tx.select(summaryColumns).from(mailboxMessages).where(and(eq(mailboxMessages.id, id), eq(mailboxMessages.mailboxId, mailboxId))).for('update');
    if (!row) throw notFound('message', id);
    const target = change.folder ?? row.folder;
    if (quotaOf(target) !== quotaOf(row.folder)) {
      const [mailbox] = await tx.select().from(mailboxes).where(eq(mailboxes.id, mailboxId)).for('update');
      const [used, total] = quotaOf(target) === 'archive'
        ? [mailbox!.usedArchiveBytes, mailbox!.archiveQuotaBytes + mailbox!.extraArchiveBytes]
        : [mailbox!.usedInboxBytes, mailbox!.inboxQuotaBytes + mailbox!.extraInboxBytes];
      if (used + row.sizeBytes > total) {
        throw conflict('quota_exceeded', `The ${quotaOf(target)} space of this mailbox (${total} bytes, ${used} used) has no room for ${row.sizeBytes} more bytes.`);
      }
      await adjustUsage(tx, mailboxId, quotaOf(row.folder), -row.sizeBytes);
      await adjustUsage(tx, mailboxId, quotaOf(target), row.sizeBytes);
    }
    const [updated] = await tx
      .update(mailboxMessages)
      .set({ folder: target, seen: change.seen ?? row.seen })
      .where(eq(mailboxMessages.id, id))
      .returning(summaryColumns);
    return messageView(updated!);
  });
}

export async function deleteMessage(db: Db, mailboxId: string, id: string) {
  return db.transaction(async (tx) => {
    const [row] = await tx.delete(mailboxMessages).where(and(eq(mailboxMessages.id, id), eq(mailboxMessages.mailboxId, mailboxId))).returning(summaryColumns);
    if (!row) throw notFound('message', id);
    await adjustUsage(tx, mailboxId, quotaOf(row.folder), -row.sizeBytes);
    return { id, object: 'mailbox_message' as const, deleted: true as const };
  });
}
