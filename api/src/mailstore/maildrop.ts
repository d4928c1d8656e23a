import { sql } from 'drizzle-orm';
import type { Db } from '@pec-partner/db';
import { visibleSql, type FolderView } from './messages.ts';

/**
 * A folder read as a list of whole messages, the way POP3 sees a maildrop: the messages and their sizes in one
 * snapshot, and the stored bytes of one message at a time. The bytes of a stored message never change, so a
 * message is read by its row id: what a client listed stays readable (or is gone) whatever folder it moves to.
 */

export interface MaildropEntry {
  /** The row id (`msg_…`): how the bytes are read later. */
  id: string;
  uid: number;
  size: number;
}

export interface FolderSnapshot {
  uidValidity: number;
  messages: MaildropEntry[];
}

/** The folder's UIDVALIDITY and its messages in UID order, read in one snapshot; null when there is no such folder. */
export async function folderSnapshot(db: Db, view: FolderView): Promise<FolderSnapshot | null> {
  return db.transaction(async (tx) => {
    const [folder] = (await tx.execute(sql`select uid_validity from mailbox_folders where mailbox_id = ${view.mailboxId} and name = ${view.folder}`)) as unknown as Array<{ uid_validity: string }>;
    if (!folder) return null;
    const rows = (await tx.execute(sql`select id, uid, size_bytes from mailbox_messages
      where mailbox_id = ${view.mailboxId} and folder = ${view.folder}${visibleSql(view)} order by uid`)) as unknown as Array<{ id: string; uid: number; size_bytes: number }>;
    return { uidValidity: Number(folder.uid_validity), messages: rows.map((r) => ({ id: r.id, uid: r.uid, size: r.size_bytes })) };
  }, { isolationLevel: 'repeatable read', accessMode: 'read only' });
}

/**
 * The stored bytes of one message of the mailbox: all of them, or only the first `prefixBytes` (POP3 TOP needs the
 * header and a few lines, not a 50 MB attachment). `complete` says whether `bytes` is the whole message. Null when
 * the message is no longer in the mailbox.
 */
export async function messageBytes(db: Db, mailboxId: string, id: string, prefixBytes?: number): Promise<{ bytes: Buffer; complete: boolean } | null> {
  const content = prefixBytes === undefined ? sql`content` : sql`substring(content from 1 for ${prefixBytes})`;
  const [row] = (await db.execute(sql`select ${content} as bytes, octet_length(content) as size from mailbox_messages
    where id = ${id} and mailbox_id = ${mailboxId}`)) as unknown as Array<{ bytes: Buffer | Uint8Array; size: number }>;
  if (!row) return null;
  const bytes = Buffer.isBuffer(row.bytes) ? row.bytes : Buffer.from(row.bytes);
  return { bytes, complete: bytes.length >= Number(row.size) };
}
