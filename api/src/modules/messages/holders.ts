import { createHash } from 'node:crypto';
import { and, desc, eq } from 'drizzle-orm';
import { delegateAccounts, delegations, mailboxes, type DbOrTx, type MailboxStatus } from '@pec-partner/db';
import { verifyPassword } from '../../passwords.ts';
import { modeMaySend, type MailboxActor } from '../delegations/modes.ts';

export type { MailboxActor } from '../delegations/modes.ts';

/**
 * Whoever is signed in to one mailbox on the holder routes and on SMTP submission. `actor` says who acts: the holder
 * itself, a delegation's collaborator (its own credentials, bound to a mode), or a supervisor's session.
 */
export interface HolderPrincipal {
  mailboxId: string;
  partnerId: string;
  address: string;
  status: MailboxStatus;
  actor: MailboxActor;
  /** False for a sandbox mailbox. */
  livemode: boolean;
}

/** Statuses in which the holder may sign in (a suspended mailbox is read-only, not closed). */
export const SIGN_IN_STATUSES: MailboxStatus[] = ['active', 'suspended'];

/**
 * scrypt makes a password check cost tens of milliseconds on purpose. A client calling the messages API sends
 * the same credentials on every request, so a successful check is remembered for a minute, keyed by a hash of
 * the credentials and bound to the stored password hash: a password change invalidates it at once.
 */
const CACHE_MS = 60_000;
const CACHE_LIMIT = 10_000;
const verified = new Map<string, { passwordHash: string; until: number }>();

/** `identity` names whose password it is (a mailbox address, a delegate account), so entries never mix. */
async function verifyPasswordCached(identity: string, password: string, passwordHash: string): Promise<boolean> {
  const key = createHash('sha256').update(identity).update('\0').update(password).digest('hex');
  const cached = verified.get(key);
  const now = Date.now();
  if (cached && cached.until > now && cached.passwordHash === passwordHash) return true;
  if (!(await verifyPassword(password, passwordHash))) return false;
  if (verified.size >= CACHE_LIMIT) verified.clear();
  verified.set(key, { passwordHash, until: now + CACHE_MS });
  return true;
}

/**
 * The user name a mailbox signs in with at every door: its address names the live mailbox; a sandbox mailbox, whose
 * address may also exist live (each world has its own), signs in with its id (`mbx_…`), which works for both.
 */
export function mailboxLogin(user: string) {
  const name = user.trim();
  return name.startsWith('mbx_') ? eq(mailboxes.id, name) : and(eq(mailboxes.address, name.toLowerCase()), eq(mailboxes.livemode, true));
}

export async function authenticateHolder(db: DbOrTx, user: string, password: string): Promise<HolderPrincipal | null> {
  const [row] = await db
    .select({ id: mailboxes.id, partnerId: mailboxes.partnerId, address: mailboxes.address, status: mailboxes.status, passwordHash: mailboxes.passwordHash, livemode: mailboxes.livemode })
    .from(mailboxes)
    .where(mailboxLogin(user));
  if (!row || !SIGN_IN_STATUSES.includes(row.status)) return null;
  // The password cache is keyed by the mailbox id: one address names two mailboxes (live and test).
  if (!(await verifyPasswordCached(row.id, password, row.passwordHash))) return null;
  return { mailboxId: row.id, partnerId: row.partnerId, address: row.address, status: row.status, actor: { kind: 'holder' }, livemode: row.livemode };
}

/** A collaborator's own account (multiutenza), when the e-mail and password match one. */
export async function authenticateDelegateAccount(db: DbOrTx, email: string, password: string): Promise<{ id: string; email: string } | null> {
  const [account] = await db.select().from(delegateAccounts).where(eq(delegateAccounts.email, email.trim().toLowerCase()));
  if (!account || !(await verifyPasswordCached(`delegate:${account.email}`, password, account.passwordHash))) return null;
  return { id: account.id, email: account.email };
}

const delegationColumns = {
  delegationId: delegations.id, mode: delegations.mode, accountId: delegateAccounts.id, email: delegateAccounts.email, passwordHash: delegateAccounts.passwordHash,
  mailboxId: mailboxes.id, partnerId: mailboxes.partnerId, address: mailboxes.address, status: mailboxes.status, livemode: mailboxes.livemode,
};
type DelegationRow = { [K in keyof typeof delegationColumns]: (typeof delegationColumns)[K]['_']['data'] };

const delegatePrincipal = (row: DelegationRow): HolderPrincipal => ({
  mailboxId: row.mailboxId, partnerId: row.partnerId, address: row.address, status: row.status, livemode: row.livemode,
  actor: { kind: 'delegate', delegationId: row.delegationId, accountId: row.accountId, email: row.email, mode: row.mode },
});

/**
 * A collaborator signed in as itself on one mailbox: its account's e-mail and password, and an active delegation
 * on that mailbox (an invitation not accepted, a revoked or expired delegation sign in no more).
 */
export async function authenticateDelegate(db: DbOrTx, email: string, password: string, mailboxId: string): Promise<HolderPrincipal | null> {
  const [row] = await db
    .select(delegationColumns)
    .from(delegations)
    .innerJoin(delegateAccounts, eq(delegateAccounts.id, delegations.accountId))
    .innerJoin(mailboxes, eq(mailboxes.id, delegations.mailboxId))
    .where(and(eq(delegations.mailboxId, mailboxId), eq(delegateAccounts.email, email.trim().toLowerCase()), eq(delegations.status, 'active')));
  if (!row || !SIGN_IN_STATUSES.includes(row.status)) return null;
  if (!(await verifyPasswordCached(`delegate:${row.email}`, password, row.passwordHash))) return null;
  return delegatePrincipal(row);
}

/**
 * HTTP Basic on the holder routes: the mailbox's own address and password, or, on `/v1/mailboxes/{id}/…`, the
 * e-mail and password of a collaborator with an active delegation on that mailbox.
 */
export async function authenticateMailboxUser(db: DbOrTx, user: string, password: string, mailboxId: string | undefined): Promise<HolderPrincipal | null> {
  const holder = await authenticateHolder(db, user, password);
  if (holder && (mailboxId === undefined || holder.mailboxId === mailboxId)) return holder;
  const delegate = mailboxId === undefined ? null : await authenticateDelegate(db, user, password, mailboxId);
  // A holder signed in on another mailbox's URL gets that route's 404.
  return delegate ?? holder;
}

/** An SMTP submission login: the mailbox it sends from is known only at MAIL FROM. */
export interface SubmissionLogin {
  /** What smtp-server records as the session's user. */
  user: string;
  /** The principal that sends with this MAIL FROM, or why it may not. */
  senderFor(mailFrom: string): Promise<HolderPrincipal | { refusal: string }>;
}

/**
 * SMTP AUTH: the holder (mailbox address and password) or a collaborator (its e-mail and password). A collaborator
 * sends from the mailbox named in MAIL FROM, which needs an active delegation of a mode that may send.
 */
export async function authenticateSubmitter(db: DbOrTx, username: string, password: string): Promise<SubmissionLogin | null> {
  const holder = await authenticateHolder(db, username, password);
  let account = await authenticateDelegateAccount(db, username, password);
  // An account whose delegations were all revoked (or never accepted) signs in no more.
  if (account) {
    const [live] = await db.select({ id: delegations.id }).from(delegations).where(and(eq(delegations.accountId, account.id), eq(delegations.status, 'active'))).limit(1);
    if (!live) account = null;
  }
  if (!holder && !account) return null;
  return {
    user: holder?.mailboxId ?? account!.id,
    async senderFor(mailFrom) {
      // The holder keeps the engine's own checks (a MAIL FROM that is not its address gets a non-acceptance notice).
      if (holder && (!account || holder.address === mailFrom)) return holder;
      const [row] = await db
        .select(delegationColumns)
        .from(delegations)
        .innerJoin(delegateAccounts, eq(delegateAccounts.id, delegations.accountId))
        .innerJoin(mailboxes, eq(mailboxes.id, delegations.mailboxId))
        .where(and(eq(delegations.accountId, account!.id), eq(mailboxes.address, mailFrom), eq(delegations.status, 'active')))
        // One address may name a live and a test mailbox: the live one, as an address always does at sign-in.
        .orderBy(desc(mailboxes.livemode))
        .limit(1);
      if (row && SIGN_IN_STATUSES.includes(row.status)) {
        if (modeMaySend(row.mode)) return delegatePrincipal(row);
        if (!holder) return { refusal: `Delegation mode ${row.mode} does not allow sending from ${mailFrom}` };
      }
      return holder ?? { refusal: `${account!.email} has no delegation to send from ${mailFrom || 'this sender'}` };
    },
  };
}
