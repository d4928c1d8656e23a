import { and, eq, sql } from 'drizzle-orm';
import { mailboxes, mailboxMessages, type DbOrTx, type MailboxFolder, type StoredMessageKind } from '@pec-partner/db';
import { newId } from '../ids.ts';

export interface StoreInput {
  /** Null: the provider's service mailbox. */
  mailboxId: string | null;
  folder: MailboxFolder;
  kind: StoredMessageKind;
  content: Buffer;
  messageId: string;
  pecMessageId: string | null;
  subject: string;
  fromAddress: string;
  /** Names the pipeline step that stores it: the same step stores nothing twice. */
  dedupeKey: string;
  now: Date;
}

/** The quota a folder counts against: everything but the archive uses the inbox space. */
export const quotaOf = (folder: MailboxFolder): 'inbox' | 'archive' => (folder === 'archive' ? 'archive' : 'inbox');

/**
 * Stores a message once per mailbox and step, counting its size against the mailbox's quota in the same
 * transaction. Returns false when the step had already stored it. Quota enforcement (refusing delivery to a
 * full mailbox) is the caller's decision: receipts about one's own messages are always stored.
 */
export async function storeMessage(tx: DbOrTx, input: StoreInput): Promise<boolean> {
  const inserted = await tx
    .insert(mailboxMessages)
    .values({
      id: newId('msg', input.now),
      mailboxId: input.mailboxId,
      folder: input.folder,
      kind: input.kind,
      messageId: input.messageId,
      pecMessageId: input.pecMessageId,
      subject: input.subject,
      fromAddress: input.fromAddress,
      sizeBytes: input.content.length,
      content: input.content,
      dedupeKey: input.dedupeKey,
      storedAt: input.now,
    })
    .onConflictDoNothing()
    .returning({ id: mailboxMessages.id });
  if (inserted.length === 0) return false;
  if (input.mailboxId) await adjustUsage(tx, input.mailboxId, quotaOf(input.folder), input.content.length);
  return true;
}

export async function adjustUsage(tx: DbOrTx, mailboxId: string, quota: 'inbox' | 'archive', delta: number): Promise<void> {
  const column = quota === 'inbox' ? mailboxes.usedInboxBytes : mailboxes.usedArchiveBytes;
  await tx
    .update(mailboxes)
    .set(quota === 'inbox' ? { usedInboxBytes: sql`${column} + ${delta}` } : { usedArchiveBytes: sql`${column} + ${delta}` })
    .where(eq(mailboxes.id, mailboxId));
}

/** Whether a message of this size still fits in the mailbox's inbox (base plus purchased space). */
export async function inboxHasRoom(tx: DbOrTx, mailboxId: string, size: number): Promise<boolean> {
  const [row] = await tx
    .select({ ok: sql<boolean>`${mailboxes.usedInboxBytes} + ${size} <= ${mailboxes.inboxQuotaBytes} + ${mailboxes.extraInboxBytes}` })
    .from(mailboxes)
    .where(and(eq(mailboxes.id, mailboxId)));
  return row?.ok ?? false;
}
