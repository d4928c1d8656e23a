import { createHash } from 'node:crypto';
import { and, desc, eq } from 'drizzle-orm';
import { delegateAccounts, delegations, mailboxes, type DbOrTx, type MailboxStatus } from '@pec-partner/db';
import { verifyPassword } from '../passwords.ts';
import { modeMaySend } from './modes.ts';
import type { HolderPrincipal } from './principals.ts';

/**
 * Statuses in which a mailbox may be signed in to over REST and SMTP (a suspended mailbox is read-only, not closed).
 * The mailbox doors (IMAP, POP3, webmail) are stricter: see `doorStatuses` in sign-in.ts.
 */
export const SIGN_IN_STATUSES: MailboxStatus[] = ['active', 'suspended'];

/**
 * What a credential check learned besides its answer, for the sign-in records and the lock-out: filled in as the
 * check goes, read by the login guard afterwards.
 */
export interface CredentialTrace {
  /** The mailbox the credentials named, when one exists (also when the password was wrong). */
  mailboxId: string | null;
  /** The collaborator's account the user name is, when one exists. */
  delegateAccountId: string | null;
  /** True when the 60-second verify cache, not scrypt, accepted the password that signed in. */
  cached: boolean;
  /** The password was right, but the mailbox is in this status, which keeps it closed to this door. */
  unavailable: MailboxStatus | null;
  /** Why right-looking credentials still sign in to nothing, when there is more to say than "wrong". */
  refusal: string | null;
}

export const newCredentialTrace = (): CredentialTrace => ({ mailboxId: null, delegateAccountId: null, cached: false, unavailable: null, refusal: null });

export interface CheckOptions {
  /** The mailbox statuses the door opens; checked only once the password is right. Default SIGN_IN_STATUSES. */
  statuses?: readonly MailboxStatus[] | undefined;
  trace?: CredentialTrace | undefined;
}

/**
 * scrypt makes a password check cost tens of milliseconds on purpose. A client calling the messages API sends
 * the same credentials on every request, so a successful check is remembered for a minute, keyed by a hash of
 * the credentials and bound to the stored password hash: a password change invalidates it at once.
 */
const CACHE_MS = 60_000;
const CACHE_LIMIT = 10_000;
const verified = new Map<string, { passwordHash: string; until: number }>();

/** `verified`: scrypt said yes; `cached`: the cache did (the login records tell the two apart). */
export type PasswordCheck = 'verified' | 'cached' | 'wrong';

/** `identity` names whose password it is (a mailbox id, a delegate account), so entries never mix. */
export async function verifyPasswordCached(identity: string, password: string, passwordHash: string): Promise<PasswordCheck> {
  const key = createHash('sha256').update(identity).update('\0').update(password).digest('hex');
  const cached = verified.get(key);
  const now = Date.now();
  if (cached && cached.until > now && cached.passwordHash === passwordHash) return 'cached';
  if (!(await verifyPassword(password, passwordHash))) return 'wrong';
  if (verified.size >= CACHE_LIMIT) verified.clear();
  verified.set(key, { passwordHash, until: now + CACHE_MS });
  return 'verified';
}

/**
 * Notes what a check found. A later check overwrites an earlier one's ids only when it signs in: `authenticate…`
 * functions try several readings of one user name, and the record names the one that was right, or else the first.
 */
function note(trace: CredentialTrace | undefined, found: { mailboxId?: string; delegateAccountId?: string }, signedIn: boolean): void {
  if (!trace) return;
  if (found.mailboxId !== undefined && (signedIn || trace.mailboxId === null)) trace.mailboxId = found.mailboxId;
  if (found.delegateAccountId !== undefined && (signedIn || trace.delegateAccountId === null)) trace.delegateAccountId = found.delegateAccountId;
}

async function passwordMatches(identity: string, password: string, passwordHash: string, trace: CredentialTrace | undefined): Promise<boolean> {
  const check = await verifyPasswordCached(identity, password, passwordHash);
  if (check === 'wrong') return false;
  if (trace) trace.cached = check === 'cached';
  return true;
}

/** Whether the door opens a mailbox in this status; asked only after the password was right (else it would tell). */
export function statusOpens(status: MailboxStatus, options: CheckOptions): boolean {
  if ((options.statuses ?? SIGN_IN_STATUSES).includes(status)) return true;
  if (options.trace) options.trace.unavailable = status;
  return false;
}

/**
 * The user name a mailbox signs in with at every door: its address names the live mailbox; a sandbox mailbox, whose
 * address may also exist live (each world has its own), signs in with its id (`mbx_…`), which works for both.
 */
export function mailboxLogin(user: string) {
  const name = user.trim();
  return name.startsWith('mbx_') ? eq(mailboxes.id, name) : and(eq(mailboxes.address, name.toLowerCase()), eq(mailboxes.livemode, true));
}

/** The mailbox a user name (an address or an `mbx_` id) names, whatever its status. */
export async function findMailbox(db: DbOrTx, user: string) {
  const [row] = await db
    .select({ id: mailboxes.id, partnerId: mailboxes.partnerId, address: mailboxes.address, status: mailboxes.status, passwordHash: mailboxes.passwordHash, livemode: mailboxes.livemode })
    .from(mailboxes)
    .where(mailboxLogin(user));
  return row ?? null;
}

/**
 * Whom a user name names, with no password checked: the mailbox (or `mailbox`, when the attempt names another one)
 * and the collaborator's account. For the records of attempts refused before any check (a lock-out), so that the
 * holder's history shows them too.
 */
export async function identifySignIn(db: DbOrTx, user: string, mailbox?: string): Promise<{ mailboxId: string | null; delegateAccountId: string | null }> {
  const [named, [account]] = await Promise.all([
    findMailbox(db, mailbox ?? user),
    db.select({ id: delegateAccounts.id }).from(delegateAccounts).where(eq(delegateAccounts.email, user.trim().toLowerCase())),
  ]);
  return { mailboxId: named?.id ?? null, delegateAccountId: account?.id ?? null };
}

/** The holder: the mailbox's address (or id) and its password. */
export async function authenticateHolder(db: DbOrTx, user: string, password: string, options: CheckOptions = {}): Promise<HolderPrincipal | null> {
  const row = await findMailbox(db, user);
  if (!row) return null;
  // The password cache is keyed by the mailbox id: one address names two mailboxes (live and test).
  const right = await passwordMatches(row.id, password, row.passwordHash, options.trace);
  note(options.trace, { mailboxId: row.id }, right);
  if (!right || !statusOpens(row.status, options)) return null;
  return { mailboxId: row.id, partnerId: row.partnerId, address: row.address, status: row.status, actor: { kind: 'holder' }, livemode: row.livemode };
}

/** A collaborator's own account (multiutenza), when the e-mail and password match one. */
export async function authenticateDelegateAccount(db: DbOrTx, email: string, password: string, options: CheckOptions = {}): Promise<{ id: string; email: string } | null> {
  const [account] = await db.select().from(delegateAccounts).where(eq(delegateAccounts.email, email.trim().toLowerCase()));
  if (!account) return null;
  const right = await passwordMatches(`delegate:${account.email}`, password, account.passwordHash, options.trace);
  note(options.trace, { delegateAccountId: account.id }, right);
  return right ? { id: account.id, email: account.email } : null;
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

/** Active delegations (an invitation not accepted, a revoked or expired delegation sign in no more), with their mailboxes. */
const activeDelegations = (db: DbOrTx) => db
  .select(delegationColumns)
  .from(delegations)
  .innerJoin(delegateAccounts, eq(delegateAccounts.id, delegations.accountId))
  .innerJoin(mailboxes, eq(mailboxes.id, delegations.mailboxId))
  .$dynamic();

/**
 * A collaborator signed in as itself on one mailbox: its account's e-mail and password, and an active delegation
 * on that mailbox.
 */
export async function authenticateDelegate(db: DbOrTx, email: string, password: string, mailboxId: string, options: CheckOptions = {}): Promise<HolderPrincipal | null> {
  const [row] = await activeDelegations(db)
    .where(and(eq(delegations.mailboxId, mailboxId), eq(delegateAccounts.email, email.trim().toLowerCase()), eq(delegations.status, 'active')));
  if (!row) return null;
  const right = await passwordMatches(`delegate:${row.email}`, password, row.passwordHash, options.trace);
  note(options.trace, { mailboxId: row.mailboxId, delegateAccountId: row.accountId }, right);
  if (!right || !statusOpens(row.status, options)) return null;
  return delegatePrincipal(row);
}

/**
 * A collaborator that names no mailbox: it opens its only active delegation's. With several it must say which
 * (`trace.refusal` tells how); with none it signs in to nothing.
 */
export async function authenticateSoleDelegate(db: DbOrTx, email: string, password: string, options: CheckOptions = {}): Promise<HolderPrincipal | null> {
  const account = await authenticateDelegateAccount(db, email, password, options);
  if (!account) return null;
  const rows = await activeDelegations(db).where(and(eq(delegations.accountId, account.id), eq(delegations.status, 'active'))).limit(2);
  if (rows.length !== 1) {
    if (rows.length > 1 && options.trace) {
      options.trace.refusal = `${account.email} collaborates on several mailboxes: sign in as <mailbox address>*${account.email}, or name the mailbox as the authorization identity.`;
    }
    return null;
  }
  const row = rows[0]!;
  note(options.trace, { mailboxId: row.mailboxId }, true);
  return statusOpens(row.status, options) ? delegatePrincipal(row) : null;
}

/**
 * HTTP Basic on the holder routes: the mailbox's own address and password, or, on `/v1/mailboxes/{id}/…`, the
 * e-mail and password of a collaborator with an active delegation on that mailbox.
 */
export async function authenticateMailboxUser(db: DbOrTx, user: string, password: string, mailboxId: string | undefined, options: CheckOptions = {}): Promise<HolderPrincipal | null> {
  const holder = await authenticateHolder(db, user, password, options);
  if (holder && (mailboxId === undefined || holder.mailboxId === mailboxId)) return holder;
  const delegate = mailboxId === undefined ? null : await authenticateDelegate(db, user, password, mailboxId, options);
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
export async function authenticateSubmitter(db: DbOrTx, username: string, password: string, options: CheckOptions = {}): Promise<SubmissionLogin | null> {
  const holder = await authenticateHolder(db, username, password, options);
  let account = await authenticateDelegateAccount(db, username, password, options);
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
      const [row] = await activeDelegations(db)
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
