import type { Db } from '@pec-partner/db';
import { mayPerform, ownTransactionsOnly } from '../access/modes.ts';
import { signInToMailbox, type SignInDeps, type SignInResult } from '../access/sign-in.ts';
import { folderSnapshot, messageBytes } from '../mailstore/maildrop.ts';
import { changeFlags, moveMessages, type FolderView } from '../mailstore/messages.ts';
import { ConnectionCounter } from '../pec/smtp-limits.ts';
import type { Maildrop, Pop3Backend } from './session.ts';

type Principal = Extract<SignInResult, { ok: true }>['principal'];

/** POP3 shows the inbox only (RFC 1939 knows one maildrop); the other folders are for IMAP, REST and the webmail. */
const MAILDROP_FOLDER = 'inbox';
/** Where DELE sends a message (see session.ts): the holder's deliberate emptying of Trash is the only real deletion. */
const DELETED_FOLDER = 'trash';

const invalid = { ok: false as const, refusal: 'invalid_credentials' as const, message: 'Invalid credentials' };

/** Who is signed in, for the -ERR a refused DELE gets. */
const actorName = (principal: Principal): string =>
  principal.actor.kind === 'delegate' ? `delegation mode ${principal.actor.mode}` : principal.actor.kind;

/** A maildrop over the mailbox store: the inbox as it was at login, read one message at a time. */
function storeMaildrop(db: Db, principal: Principal, view: FolderView, snapshot: { uidValidity: number; messages: Array<{ id: string; uid: number; size: number }> }, release: () => void): Maildrop {
  let released = false;
  const mayModify = mayPerform(principal.actor, 'update_message');
  return {
    mailboxId: principal.mailboxId,
    // UIDVALIDITY and UID: stable across sessions, processes and doors (IMAP shows the same pair), and never reused.
    messages: snapshot.messages.map((m) => ({ size: m.size, uidl: `${snapshot.uidValidity}.${m.uid}` })),
    maySetSeen: mayModify,
    deleteRefusal: mayPerform(principal.actor, 'delete_message') ? null : `Deleting messages is not allowed for this sign-in (${actorName(principal)})`,
    read: (index, prefixBytes) => messageBytes(db, principal.mailboxId, snapshot.messages[index]!.id, prefixBytes),
    markSeen: async (index) => {
      await changeFlags(db, view, [snapshot.messages[index]!.uid], { mode: 'add', system: { seen: true }, keywords: [] });
    },
    // moveMessages moves what is still in the inbox and passes over the rest (moved or deleted by another door).
    removeMarked: async (indexes) => (await moveMessages(db, view, indexes.map((index) => snapshot.messages[index]!.uid), DELETED_FOLDER)).length,
    release: () => {
      if (released) return;
      released = true;
      release();
    },
  };
}

/**
 * The POP3 doors' backend: sign-in through the access layer, the same for every door, then a snapshot of the inbox
 * as the signed-in actor may see it. Sessions per mailbox are counted here, in this process, over both POP3 doors.
 */
export function storeBackend(db: Db, maxSessionsPerMailbox: number, signInDeps: SignInDeps = {}): Pop3Backend {
  const sessions = new ConnectionCounter(maxSessionsPerMailbox);
  return {
    async signIn({ user, password, authzid, remoteAddress }) {
      // No credentials hold a NUL (PostgreSQL text cannot) or run to kilobytes: refused like wrong ones, unchecked.
      if (![user, password, authzid ?? ''].every((value) => value.length <= 1024 && !value.includes('\0'))) return invalid;
      const result = await signInToMailbox(db, { door: 'pop3', user, password, authzid, remoteAddress }, undefined, signInDeps);
      if (!result.ok) return { ok: false, refusal: result.code, message: result.message };
      const { principal } = result;
      if (!mayPerform(principal.actor, 'read_message')) {
        return { ok: false, refusal: 'not_permitted', message: `Reading messages is not allowed for this sign-in (${actorName(principal)})` };
      }
      if (!sessions.acquire(principal.mailboxId)) {
        return { ok: false, refusal: 'in_use', message: `This mailbox already has ${maxSessionsPerMailbox} POP3 sessions open; close one and try again` };
      }
      const release = () => sessions.release(principal.mailboxId);
      try {
        const view: FolderView = { mailboxId: principal.mailboxId, folder: MAILDROP_FOLDER, visibility: ownTransactionsOnly(principal.actor) };
        const snapshot = await folderSnapshot(db, view);
        if (!snapshot) throw new Error(`mailbox ${principal.mailboxId} has no ${MAILDROP_FOLDER} folder`);
        return { ok: true, maildrop: storeMaildrop(db, principal, view, snapshot, release) };
      } catch (error) {
        release();
        throw error;
      }
    },
  };
}
