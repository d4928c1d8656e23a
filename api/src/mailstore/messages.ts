import { sql, type SQL } from 'drizzle-orm';
import type { Db, DbOrTx } from '@pec-partner/db';
import { newId } from '../ids.ts';
import { decodeHeaderText, fieldsNamed, fieldValue, parseEntity, toBinary } from '../pec/messages/raw-entity.ts';
import { adjustUsage, quotaOf } from '../pec/store.ts';

/**
 * The mailbox store as the holders' doors see it: messages by folder and UID, their flags, and the changes since
 * a MODSEQ. UIDs and MODSEQs come from the database triggers (migration 0021), so every door and every process
 * sees one order. Nothing here knows a protocol.
 */

export interface Flags {
  seen: boolean;
  answered: boolean;
  flagged: boolean;
  draft: boolean;
  deleted: boolean;
  keywords: string[];
}

export interface MessageState extends Flags {
  uid: number;
  modseq: number;
}

/** Narrows a view to the transactions one delegation submitted (a `send_only` collaborator); null: everything. */
export type Visibility = { delegationId: string } | null;

export interface FolderView {
  mailboxId: string;
  folder: string;
  visibility: Visibility;
}

/** The condition that narrows a query of mailbox_messages to what the view may see. */
export const visibleSql = (view: FolderView): SQL =>
  view.visibility
    ? sql` and pec_message_id in (select pec_message_id from pec_transactions where mailbox_id = ${view.mailboxId} and delegation_id = ${view.visibility.delegationId})`
    : sql``;

const stateColumns = sql`uid, modseq, seen, answered, flagged, draft, deleted, keywords`;

interface StateRow { uid: number; modseq: string | number; seen: boolean; answered: boolean; flagged: boolean; draft: boolean; deleted: boolean; keywords: string[] }
const toState = (row: StateRow): MessageState => ({ ...row, modseq: Number(row.modseq) });

const rows = async <T>(db: DbOrTx, query: SQL): Promise<T[]> => (await db.execute(query)) as unknown as T[];

export class StoreError extends Error {
  constructor(readonly code: 'over_quota' | 'folder_not_found' | 'not_found', message: string) {
    super(message);
  }
}

/** The folder's state and its UIDs in order, read in one snapshot. */
export async function openFolder(db: Db, view: FolderView) {
  return db.transaction(async (tx) => {
    const [folder] = await rows<{ uid_validity: string; uid_next: number; highest_modseq: string }>(tx,
      sql`select uid_validity, uid_next, highest_modseq from mailbox_folders where mailbox_id = ${view.mailboxId} and name = ${view.folder}`);
    if (!folder) return null;
    const uids = await rows<{ uid: number }>(tx, sql`select uid from mailbox_messages where mailbox_id = ${view.mailboxId} and folder = ${view.folder}${visibleSql(view)} order by uid`);
    return { uidValidity: Number(folder.uid_validity), uidNext: folder.uid_next, highestModseq: Number(folder.highest_modseq), uids: uids.map((r) => r.uid) };
  }, { isolationLevel: 'repeatable read', accessMode: 'read only' });
}

/** Messages changed (or added) after `modseq`, the expunges after `expungedAfter`, and the folder's highest MODSEQ, in one snapshot. */
export async function changesSince(db: Db, view: FolderView, modseq: number, expungedAfter: number) {
  return db.transaction(async (tx) => {
    const [folder] = await rows<{ highest_modseq: string; uid_next: number }>(tx, sql`select highest_modseq, uid_next from mailbox_folders where mailbox_id = ${view.mailboxId} and name = ${view.folder}`);
    if (!folder) return null;
    const highest = Number(folder.highest_modseq);
    if (highest <= modseq && highest <= expungedAfter) return { highestModseq: highest, uidNext: folder.uid_next, changed: [], expunged: [] };
    const changed = await rows<StateRow>(tx, sql`select ${stateColumns} from mailbox_messages
      where mailbox_id = ${view.mailboxId} and folder = ${view.folder} and modseq > ${modseq}${visibleSql(view)} order by uid`);
    const expunged = await rows<{ uid: number }>(tx, sql`select uid from mailbox_expunges
      where mailbox_id = ${view.mailboxId} and folder = ${view.folder} and modseq > ${expungedAfter} order by uid`);
    return { highestModseq: highest, uidNext: folder.uid_next, changed: changed.map(toState), expunged: expunged.map((r) => r.uid) };
  }, { isolationLevel: 'repeatable read', accessMode: 'read only' });
}

/** The states of these UIDs, in UID order. */
export async function statesOf(db: DbOrTx, view: FolderView, uids: readonly number[]): Promise<MessageState[]> {
  if (uids.length === 0) return [];
  return (await rows<StateRow>(db, sql`select ${stateColumns} from mailbox_messages
    where mailbox_id = ${view.mailboxId} and folder = ${view.folder} and uid = any(${sql.param(uids)}::int[]) order by uid`)).map(toState);
}

export interface FlagChange {
  mode: 'add' | 'remove' | 'replace';
  system: Partial<Record<'seen' | 'answered' | 'flagged' | 'draft' | 'deleted', boolean>>;
  keywords: string[];
}

/**
 * Sets, adds or removes flags (IMAP STORE, a REST PATCH). With `unchangedSince` (CONDSTORE), messages changed after
 * that MODSEQ are left alone and returned as `conflicts`.
 */
export async function changeFlags(db: DbOrTx, view: FolderView, uids: readonly number[], change: FlagChange, unchangedSince?: number) {
  if (uids.length === 0) return { updated: [] as MessageState[], conflicts: [] as number[] };
  const sets: SQL[] = [];
  for (const name of ['seen', 'answered', 'flagged', 'draft', 'deleted'] as const) {
    const named = change.system[name] === true;
    if (change.mode === 'replace') sets.push(sql`${sql.identifier(name)} = ${named}`);
    else if (named) sets.push(sql`${sql.identifier(name)} = ${change.mode === 'add'}`);
  }
  const keywords = sql.param([...new Set(change.keywords)]);
  if (change.mode === 'replace') sets.push(sql`keywords = ${keywords}::text[]`);
  else if (change.keywords.length && change.mode === 'add') sets.push(sql`keywords = array(select distinct k from unnest(keywords || ${keywords}::text[]) k order by k)`);
  else if (change.keywords.length) sets.push(sql`keywords = array(select k from unnest(keywords) k where not (lower(k) = any(select lower(x) from unnest(${keywords}::text[]) x)))`);
  const condition = unchangedSince === undefined ? sql`` : sql` and modseq <= ${unchangedSince}`;
  const updated = sets.length
    ? (await rows<StateRow>(db, sql`update mailbox_messages set ${sql.join(sets, sql`, `)}
        where mailbox_id = ${view.mailboxId} and folder = ${view.folder} and uid = any(${sql.param(uids)}::int[])${condition}${visibleSql(view)}
        returning ${stateColumns}`)).map(toState).sort((a, b) => a.uid - b.uid)
    : await statesOf(db, view, uids);
  const done = new Set(updated.map((s) => s.uid));
  const conflicts = unchangedSince === undefined ? [] : (await statesOf(db, view, uids.filter((uid) => !done.has(uid)))).map((s) => s.uid);
  return { updated, conflicts };
}

/** Removes the messages marked \Deleted (of `uids` only, when given: UID EXPUNGE); frees their space. */
export async function expungeDeleted(db: Db, view: FolderView, uids?: readonly number[]): Promise<number[]> {
  return db.transaction(async (tx) => {
    const only = uids ? sql` and uid = any(${sql.param(uids)}::int[])` : sql``;
    const removed = await rows<{ uid: number; size_bytes: number }>(tx, sql`delete from mailbox_messages
      where mailbox_id = ${view.mailboxId} and folder = ${view.folder} and deleted${only}${visibleSql(view)} returning uid, size_bytes`);
    const freed = removed.reduce((sum, r) => sum + r.size_bytes, 0);
    if (freed) await adjustUsage(tx, view.mailboxId, quotaOf(view.folder), -freed);
    return removed.map((r) => r.uid).sort((a, b) => a - b);
  });
}

export interface QuotaUse {
  inbox: { used: number; limit: number };
  archive: { used: number; limit: number };
}

export async function quotaUse(db: DbOrTx, mailboxId: string): Promise<QuotaUse | null> {
  const [row] = await rows<{ ui: string; ua: string; li: string; la: string }>(db, sql`select used_inbox_bytes ui, used_archive_bytes ua,
    inbox_quota_bytes + extra_inbox_bytes li, archive_quota_bytes + extra_archive_bytes la from mailboxes where id = ${mailboxId}`);
  return row ? { inbox: { used: Number(row.ui), limit: Number(row.li) }, archive: { used: Number(row.ua), limit: Number(row.la) } } : null;
}

/** Counts `bytes` more against the quota `folder` uses, under the mailbox row's lock; refuses what does not fit. */
async function reserve(tx: DbOrTx, mailboxId: string, folder: string, bytes: number): Promise<void> {
  if (bytes <= 0) return;
  const quota = quotaOf(folder);
  const [row] = await rows<{ used: string; total: string }>(tx, sql`select ${quota === 'archive' ? sql`used_archive_bytes` : sql`used_inbox_bytes`} used,
    ${quota === 'archive' ? sql`archive_quota_bytes + extra_archive_bytes` : sql`inbox_quota_bytes + extra_inbox_bytes`} total
    from mailboxes where id = ${mailboxId} for update`);
  if (!row) throw new StoreError('not_found', 'The mailbox does not exist.');
  if (Number(row.used) + bytes > Number(row.total)) {
    throw new StoreError('over_quota', `The ${quota} space of this mailbox (${row.total} bytes, ${row.used} used) has no room for ${bytes} more bytes.`);
  }
  await adjustUsage(tx, mailboxId, quota, bytes);
}

async function assertFolder(tx: DbOrTx, mailboxId: string, folder: string): Promise<void> {
  const [row] = await rows<{ name: string }>(tx, sql`select name from mailbox_folders where mailbox_id = ${mailboxId} and name = ${folder} for share`);
  if (!row) throw new StoreError('folder_not_found', `There is no folder ${folder}.`);
}

/** Copies messages into another folder (IMAP COPY): same bytes, flags and internal date; new UIDs, in source order. */
export async function copyMessages(db: Db, view: FolderView, uids: readonly number[], target: string): Promise<Array<[number, number]>> {
  return db.transaction(async (tx) => {
    await assertFolder(tx, view.mailboxId, target);
    const sources = await rows<{ uid: number; size_bytes: number }>(tx, sql`select uid, size_bytes from mailbox_messages
      where mailbox_id = ${view.mailboxId} and folder = ${view.folder} and uid = any(${sql.param(uids)}::int[])${visibleSql(view)} order by uid`);
    await reserve(tx, view.mailboxId, target, sources.reduce((sum, r) => sum + r.size_bytes, 0));
    const pairs: Array<[number, number]> = [];
    for (const source of sources) {
      const id = newId('msg');
      const [copy] = await rows<{ uid: number }>(tx, sql`insert into mailbox_messages
        (id, mailbox_id, folder, kind, message_id, pec_message_id, subject, from_address, size_bytes, seen, answered, flagged, draft, deleted, keywords, imap_summary, content, dedupe_key, stored_at)
        select ${id}, mailbox_id, ${target}, kind, message_id, pec_message_id, subject, from_address, size_bytes, seen, answered, flagged, draft, deleted, keywords, imap_summary, content, ${`copy:${id}`}, stored_at
        from mailbox_messages where mailbox_id = ${view.mailboxId} and folder = ${view.folder} and uid = ${source.uid} returning uid`);
      pairs.push([source.uid, copy!.uid]);
    }
    return pairs;
  });
}

/**
 * Moves messages into another folder (IMAP MOVE, a REST folder change): each takes the next UID there and leaves an
 * expunge behind. Moving between the inbox space and the archive space moves the bytes between the two quotas.
 */
export async function moveMessages(db: Db, view: FolderView, uids: readonly number[], target: string): Promise<Array<[number, number]>> {
  if (target === view.folder) return [];
  return db.transaction(async (tx) => {
    await assertFolder(tx, view.mailboxId, target);
    const sources = await rows<{ uid: number; size_bytes: number }>(tx, sql`select uid, size_bytes from mailbox_messages
      where mailbox_id = ${view.mailboxId} and folder = ${view.folder} and uid = any(${sql.param(uids)}::int[])${visibleSql(view)} order by uid for update`);
    const bytes = sources.reduce((sum, r) => sum + r.size_bytes, 0);
    if (quotaOf(target) !== quotaOf(view.folder)) {
      await reserve(tx, view.mailboxId, target, bytes);
      await adjustUsage(tx, view.mailboxId, quotaOf(view.folder), -bytes);
    }
    const pairs: Array<[number, number]> = [];
    for (const source of sources) {
      const [moved] = await rows<{ uid: number }>(tx, sql`update mailbox_messages set folder = ${target}
        where mailbox_id = ${view.mailboxId} and folder = ${view.folder} and uid = ${source.uid} returning uid`);
      pairs.push([source.uid, moved!.uid]);
    }
    return pairs;
  });
}

/**
 * Stores a message the holder's client put in a folder (IMAP APPEND): a copy of a message sent elsewhere, a draft.
 * It is stored, never sent, and never certified: its kind says so. Bare LF line ends become CRLF (RFC 5322 §2.1).
 */
export async function appendMessage(db: Db, mailboxId: string, folder: string, raw: Buffer, flags: Flags, internalDate: Date) {
  const content = Buffer.from(toBinary(raw).replace(/\r?\n/g, '\r\n'), 'latin1');
  const entity = parseEntity(toBinary(content.subarray(0, Math.min(content.length, 256 * 1024))));
  const value = (name: string) => {
    const [field] = fieldsNamed(entity, name);
    return field ? fieldValue(field) : '';
  };
  const id = newId('msg');
  return db.transaction(async (tx) => {
    await assertFolder(tx, mailboxId, folder);
    await reserve(tx, mailboxId, folder, content.length);
    const [row] = await rows<{ uid: number; uid_validity: string }>(tx, sql`insert into mailbox_messages
      (id, mailbox_id, folder, kind, message_id, subject, from_address, size_bytes, seen, answered, flagged, draft, deleted, keywords, content, dedupe_key, stored_at)
      values (${id}, ${mailboxId}, ${folder}, 'appended', ${value('message-id').replace(/^<|>$/g, '').slice(0, 998) || `${id}@imap.append`},
        ${decodeHeaderText(value('subject')).slice(0, 998)}, ${decodeHeaderText(value('from')).slice(0, 998)}, ${content.length},
        ${flags.seen}, ${flags.answered}, ${flags.flagged}, ${flags.draft}, ${flags.deleted}, ${sql.param(flags.keywords)}::text[], ${content}, ${`append:${id}`}, ${internalDate.toISOString()}::timestamptz)
      returning uid, (select uid_validity from mailbox_folders where mailbox_id = ${mailboxId} and name = ${folder}) uid_validity`);
    return { id, uid: row!.uid, uidValidity: Number(row!.uid_validity) };
  });
}

/** Per-folder counts for STATUS and LIST-STATUS. */
export async function folderCounts(db: DbOrTx, view: FolderView) {
  const [row] = await rows<{ messages: number; unseen: number; deleted: number; size: string }>(db, sql`select count(*)::int messages,
    (count(*) filter (where not seen))::int unseen, (count(*) filter (where deleted))::int deleted, coalesce(sum(size_bytes), 0)::bigint size
    from mailbox_messages where mailbox_id = ${view.mailboxId} and folder = ${view.folder}${visibleSql(view)}`);
  return { messages: row!.messages, unseen: row!.unseen, deleted: row!.deleted, size: Number(row!.size) };
}
