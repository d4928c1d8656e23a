import { and, asc, eq, like, or, sql } from 'drizzle-orm';
import { mailboxExpunges, mailboxFolderRows, mailboxMessages, mailboxFolders, type Db, type DbOrTx, type SystemFolder } from '@pec-partner/db';
import { adjustUsage, quotaOf } from '../pec/store.ts';

/**
 * The folders of a mailbox as every door names them. System folders have a fixed id (what the REST API and the
 * engine use) and an IMAP name; a holder's own folders are paths with `/` between levels, the same at every door.
 */
export const SYSTEM_FOLDERS: Record<SystemFolder, { imapName: string; specialUse: string | null }> = {
  inbox: { imapName: 'INBOX', specialUse: null },
  sent: { imapName: 'Sent', specialUse: '\\Sent' },
  receipts: { imapName: 'Receipts', specialUse: null },
  archive: { imapName: 'Archive', specialUse: '\\Archive' },
  drafts: { imapName: 'Drafts', specialUse: '\\Drafts' },
  trash: { imapName: 'Trash', specialUse: '\\Trash' },
};

export const HIERARCHY_DELIMITER = '/';

export const isSystemFolder = (name: string): name is SystemFolder => (mailboxFolders as readonly string[]).includes(name);

/** The folder a door's name refers to: a system folder in any letter case (INBOX, Sent, sent…), else the path itself. */
export function folderNamed(name: string): string {
  const lower = name.toLowerCase();
  for (const [id, folder] of Object.entries(SYSTEM_FOLDERS)) if (lower === id || lower === folder.imapName.toLowerCase()) return id;
  return name;
}

export const imapNameOf = (folder: string): string => (isSystemFolder(folder) ? SYSTEM_FOLDERS[folder].imapName : folder);

export class FolderError extends Error {
  constructor(readonly code: 'not_found' | 'exists' | 'invalid_name' | 'system_folder' | 'has_children', message: string) {
    super(message);
  }
}

/** A user folder's path: levels of 1–100 printable characters, at most 10 levels and 255 characters in all. */
export function validFolderPath(path: string): string | null {
  if (path.length === 0 || path.length > 255) return 'A folder name has 1 to 255 characters.';
  if (/[\x00-\x1f\x7f%*]/.test(path)) return 'A folder name has no control characters, % or *.';
  const levels = path.split(HIERARCHY_DELIMITER);
  if (levels.length > 10) return 'Folders nest at most 10 levels deep.';
  if (levels.some((level) => level.length === 0 || level.trim() !== level)) return 'No level of a folder name is empty or starts or ends with a space.';
  return null;
}

export interface FolderRow {
  name: string;
  uidValidity: number;
  uidNext: number;
  highestModseq: number;
  subscribed: boolean;
}

export async function listFolderRows(db: DbOrTx, mailboxId: string): Promise<FolderRow[]> {
  return db
    .select({ name: mailboxFolderRows.name, uidValidity: mailboxFolderRows.uidValidity, uidNext: mailboxFolderRows.uidNext, highestModseq: mailboxFolderRows.highestModseq, subscribed: mailboxFolderRows.subscribed })
    .from(mailboxFolderRows)
    .where(eq(mailboxFolderRows.mailboxId, mailboxId))
    .orderBy(asc(mailboxFolderRows.name));
}

export async function folderRow(db: DbOrTx, mailboxId: string, folder: string): Promise<FolderRow | null> {
  const [row] = await db
    .select({ name: mailboxFolderRows.name, uidValidity: mailboxFolderRows.uidValidity, uidNext: mailboxFolderRows.uidNext, highestModseq: mailboxFolderRows.highestModseq, subscribed: mailboxFolderRows.subscribed })
    .from(mailboxFolderRows)
    .where(and(eq(mailboxFolderRows.mailboxId, mailboxId), eq(mailboxFolderRows.name, folder)));
  return row ?? null;
}

/** Creates a user folder and the levels above it that are missing (RFC 9051 §6.3.4). */
export async function createFolder(db: Db, mailboxId: string, path: string): Promise<void> {
  const folder = folderNamed(path.endsWith(HIERARCHY_DELIMITER) ? path.slice(0, -1) : path);
  if (isSystemFolder(folder)) throw new FolderError('exists', `${imapNameOf(folder)} already exists.`);
  const invalid = validFolderPath(folder);
  if (invalid) throw new FolderError('invalid_name', invalid);
  const levels = folder.split(HIERARCHY_DELIMITER);
  await db.transaction(async (tx) => {
    const inserted = await tx.insert(mailboxFolderRows).values({ mailboxId, name: folder }).onConflictDoNothing().returning({ name: mailboxFolderRows.name });
    if (inserted.length === 0) throw new FolderError('exists', `${folder} already exists.`);
    for (let depth = 1; depth < levels.length; depth++) {
      const parent = levels.slice(0, depth).join(HIERARCHY_DELIMITER);
      if (!isSystemFolder(folderNamed(parent))) await tx.insert(mailboxFolderRows).values({ mailboxId, name: parent }).onConflictDoNothing();
    }
  });
}

/**
 * Renames a user folder and its children; their messages keep their UIDs and the folders their UIDVALIDITY (the
 * foreign key carries the messages along).
 */
export async function renameFolder(db: Db, mailboxId: string, from: string, to: string): Promise<void> {
  const source = folderNamed(from);
  const target = folderNamed(to);
  if (isSystemFolder(source)) throw new FolderError('system_folder', `${imapNameOf(source)} is a system folder: it cannot be renamed.`);
  if (isSystemFolder(target)) throw new FolderError('exists', `${imapNameOf(target)} already exists.`);
  const invalid = validFolderPath(target);
  if (invalid) throw new FolderError('invalid_name', invalid);
  if (target.startsWith(`${source}${HIERARCHY_DELIMITER}`)) throw new FolderError('invalid_name', 'A folder cannot move inside itself.');
  await db.transaction(async (tx) => {
    const moved = await tx
      .update(mailboxFolderRows)
      .set({ name: sql`${target} || substr(${mailboxFolderRows.name}, ${source.length + 1})` })
      .where(and(eq(mailboxFolderRows.mailboxId, mailboxId), or(eq(mailboxFolderRows.name, source), like(mailboxFolderRows.name, `${escapeLike(source)}${HIERARCHY_DELIMITER}%`))))
      .returning({ name: mailboxFolderRows.name })
      .catch((error: unknown) => {
        if ((error as { code?: string }).code === '23505') throw new FolderError('exists', `${target} already exists.`);
        throw error;
      });
    if (moved.length === 0) throw new FolderError('not_found', `There is no folder ${source}.`);
    const levels = target.split(HIERARCHY_DELIMITER);
    for (let depth = 1; depth < levels.length; depth++) {
      const parent = levels.slice(0, depth).join(HIERARCHY_DELIMITER);
      if (!isSystemFolder(folderNamed(parent))) await tx.insert(mailboxFolderRows).values({ mailboxId, name: parent }).onConflictDoNothing();
    }
  });
}

const escapeLike = (value: string): string => value.replace(/[\\%_]/g, (c) => `\\${c}`);

/**
 * Deletes a user folder with the messages in it (their space is freed). A folder with subfolders is refused, as
 * Dovecot does (RFC 9051 §6.3.5 allows either), so that no message is deleted that the holder did not see.
 */
export async function deleteFolder(db: Db, mailboxId: string, name: string): Promise<void> {
  const folder = folderNamed(name);
  if (isSystemFolder(folder)) throw new FolderError('system_folder', `${imapNameOf(folder)} is a system folder: it cannot be deleted.`);
  await db.transaction(async (tx) => {
    const [row] = await tx.select({ name: mailboxFolderRows.name }).from(mailboxFolderRows)
      .where(and(eq(mailboxFolderRows.mailboxId, mailboxId), eq(mailboxFolderRows.name, folder))).for('update');
    if (!row) throw new FolderError('not_found', `There is no folder ${folder}.`);
    const [child] = await tx.select({ name: mailboxFolderRows.name }).from(mailboxFolderRows)
      .where(and(eq(mailboxFolderRows.mailboxId, mailboxId), like(mailboxFolderRows.name, `${escapeLike(folder)}${HIERARCHY_DELIMITER}%`))).limit(1);
    if (child) throw new FolderError('has_children', `${folder} has subfolders: delete them first.`);
    const removed = await tx.delete(mailboxMessages).where(and(eq(mailboxMessages.mailboxId, mailboxId), eq(mailboxMessages.folder, folder)))
      .returning({ size: mailboxMessages.sizeBytes });
    const freed = removed.reduce((sum, r) => sum + r.size, 0);
    if (freed) await adjustUsage(tx, mailboxId, quotaOf(folder), -freed);
    await tx.delete(mailboxExpunges).where(and(eq(mailboxExpunges.mailboxId, mailboxId), eq(mailboxExpunges.folder, folder)));
    await tx.delete(mailboxFolderRows).where(and(eq(mailboxFolderRows.mailboxId, mailboxId), eq(mailboxFolderRows.name, folder)));
  });
}

export async function setSubscribed(db: DbOrTx, mailboxId: string, name: string, subscribed: boolean): Promise<boolean> {
  const updated = await db.update(mailboxFolderRows).set({ subscribed })
    .where(and(eq(mailboxFolderRows.mailboxId, mailboxId), eq(mailboxFolderRows.name, folderNamed(name)))).returning({ name: mailboxFolderRows.name });
  return updated.length > 0;
}
