import { and, desc, eq, inArray, lt, sql, type SQL } from 'drizzle-orm';
import { simpleParser } from 'mailparser';
import { mailboxMessages, pecTransactions, type Db, type MailboxFolder } from '@pec-partner/db';
import { conflict, notFound } from '../../http/problem.ts';
import { adjustUsage, quotaOf } from '../../pec/store.ts';
import { folderNamed, isSystemFolder, listFolderRows, SYSTEM_FOLDERS } from '../../mailstore/folders.ts';
import { changeFlags, moveMessages, StoreError } from '../../mailstore/messages.ts';

type Row = typeof mailboxMessages.$inferSelect;

export function messageView(row: Pick<Row, 'id' | 'folder' | 'kind' | 'messageId' | 'pecMessageId' | 'subject' | 'fromAddress' | 'sizeBytes' | 'seen' | 'flagged' | 'answered' | 'keywords' | 'storedAt'>) {
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
    flagged: row.flagged,
    answered: row.answered,
    keywords: row.keywords,
    stored_at: row.storedAt.toISOString(),
  };
}
export type MessageView = ReturnType<typeof messageView>;

const summaryColumns = {
  id: mailboxMessages.id, mailboxId: mailboxMessages.mailboxId, folder: mailboxMessages.folder, kind: mailboxMessages.kind,
  messageId: mailboxMessages.messageId, pecMessageId: mailboxMessages.pecMessageId, subject: mailboxMessages.subject,
  fromAddress: mailboxMessages.fromAddress, sizeBytes: mailboxMessages.sizeBytes, seen: mailboxMessages.seen, storedAt: mailboxMessages.storedAt,
  flagged: mailboxMessages.flagged, answered: mailboxMessages.answered, keywords: mailboxMessages.keywords, uid: mailboxMessages.uid,
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

/** Every folder of the mailbox, the system ones first, with counts; user folders are named by their path. */
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
  const folders = (await listFolderRows(db, mailboxId)).map((f) => f.name);
  const order = Object.keys(SYSTEM_FOLDERS);
  folders.sort((a, b) => (isSystemFolder(a) ? order.indexOf(a) : order.length) - (isSystemFolder(b) ? order.indexOf(b) : order.length) || a.localeCompare(b));
  return folders.map((name) => {
    const r = byFolder.get(name);
    return { object: 'mailbox_folder' as const, name, system: isSystemFolder(name), total: r?.total ?? 0, unread: r?.unread ?? 0, size_bytes: Number(r?.size ?? 0) };
  });
}

export async function listMessages(db: Db, mailboxId: string, query: { folder?: MailboxFolder | undefined; seen?: boolean | undefined; pecMessageId?: string | undefined; limit: number; startingAfter?: string | undefined }, visibility?: Visibility) {
  const rows = await db
    .select(summaryColumns)
    .from(mailboxMessages)
    .where(and(
      eq(mailboxMessages.mailboxId, mailboxId),
      query.folder ? eq(mailboxMessages.folder, folderNamed(query.folder)) : undefined,
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

/**
 * Marks seen or flagged and moves between folders, through the same store as IMAP: a move gives the message a new
 * UID in its new folder, and a move into the archive needs room in the archive space.
 */
export async function updateMessage(db: Db, mailboxId: string, id: string, change: { seen?: boolean | undefined; flagged?: boolean | undefined; folder?: MailboxFolder | undefined }) {
  const [row] = await db.select(summaryColumns).from(mailboxMessages).where(and(eq(mailboxMessages.id, id), eq(mailboxMessages.mailboxId, mailboxId)));
  if (!row || row.uid === null) throw notFound('message', id);
  const view = { mailboxId, folder: row.folder, visibility: null };
  for (const name of ['seen', 'flagged'] as const) {
    if (change[name] === undefined || change[name] === row[name]) continue;
    await changeFlags(db, view, [row.uid], { mode: change[name] ? 'add' : 'remove', system: { [name]: true }, keywords: [] });
  }
  const target = change.folder === undefined ? row.folder : folderNamed(change.folder);
  if (target !== row.folder) {
    try {
      await moveMessages(db, view, [row.uid], target);
    } catch (error) {
      if (error instanceof StoreError && error.code === 'over_quota') throw conflict('quota_exceeded', error.message);
      if (error instanceof StoreError && error.code === 'folder_not_found') throw notFound('folder', change.folder!);
      throw error;
    }
  }
  const [updated] = await db.select(summaryColumns).from(mailboxMessages).where(eq(mailboxMessages.id, id));
  return messageView(updated!);
}

export async function deleteMessage(db: Db, mailboxId: string, id: string) {
  return db.transaction(async (tx) => {
    const [row] = await tx.delete(mailboxMessages).where(and(eq(mailboxMessages.id, id), eq(mailboxMessages.mailboxId, mailboxId))).returning(summaryColumns);
    if (!row) throw notFound('message', id);
    await adjustUsage(tx, mailboxId, quotaOf(row.folder), -row.sizeBytes);
    return { id, object: 'mailbox_message' as const, deleted: true as const };
  });
}
