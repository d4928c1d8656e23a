import { sql } from 'drizzle-orm';
import { check, index, pgTable, text, timestamp } from 'drizzle-orm/pg-core';
import { delegateAccounts } from './addons.ts';
import { mailboxes } from './mailboxes.ts';

/** The doors into a mailbox; each is a thin adapter over the access layer (api/src/access). */
export const signInDoors = ['rest', 'smtp', 'imap', 'pop3', 'webmail'] as const;
export type SignInDoor = (typeof signInDoors)[number];

/**
 * `failed`: wrong credentials (only these count towards a lock-out); `locked_out`: refused without checking the
 * password; `unavailable`: right credentials, but the mailbox's state keeps this door closed.
 */
export const signInOutcomes = ['succeeded', 'failed', 'locked_out', 'unavailable'] as const;
export type SignInOutcome = (typeof signInOutcomes)[number];

/**
 * One sign-in attempt at any door, from any process: what the lock-out counts (failures per user name and per
 * remote address in a sliding window) and what a holder reads as its mailbox's sign-in history. Kept in the
 * database, not in a process, because several server processes share the doors.
 */
export const mailboxSignIns = pgTable(
  'mailbox_sign_ins',
  {
    id: text('id').primaryKey(),
    door: text('door', { enum: signInDoors }).notNull(),
    /** The name whose password was tried, lowercased and cut to 320 characters (an e-mail address's maximum). */
    userName: text('user_name').notNull(),
    /** The mailbox the attempt named, when one exists (also for a failure: its holder sees who tried). */
    mailboxId: text('mailbox_id').references(() => mailboxes.id),
    /** The collaborator's account, when the user name is one. */
    delegateAccountId: text('delegate_account_id').references(() => delegateAccounts.id),
    remoteAddress: text('remote_address').notNull(),
    outcome: text('outcome', { enum: signInOutcomes }).notNull(),
    at: timestamp('at', { withTimezone: true, mode: 'date' }).notNull(),
  },
  (t) => [
    // The throttle's two counts, each over a window of recent attempts; and a mailbox's history, newest first.
    index('mailbox_sign_ins_user_idx').on(t.userName, t.at),
    index('mailbox_sign_ins_address_idx').on(t.remoteAddress, t.at),
    index('mailbox_sign_ins_mailbox_idx').on(t.mailboxId, t.at),
    check('mailbox_sign_ins_door_check', sql`${t.door} in ('rest','smtp','imap','pop3','webmail')`),
    check('mailbox_sign_ins_outcome_check', sql`${t.outcome} in ('succeeded','failed','locked_out','unavailable')`),
    check('mailbox_sign_ins_user_name_check', sql`length(${t.userName}) <= 320`),
  ],
);
