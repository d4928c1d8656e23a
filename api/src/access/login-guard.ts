import { and, desc, eq, gt, lt, sql } from 'drizzle-orm';
import { mailboxSignIns, type DbOrTx, type MailboxStatus, type SignInOutcome } from '@pec-partner/db';
import { newId } from '../ids.ts';
import { identifySignIn, newCredentialTrace, type CredentialTrace } from './credentials.ts';
import type { Door } from './sign-in.ts';

/**
 * The lock-out every door shares. Failed sign-ins are counted in the database, across all doors and all server
 * processes, over a sliding window: a guesser who spreads its tries over SMTP, IMAP and REST, or over processes
 * behind one address, meets one count. A locked name or address is refused without its password being checked,
 * so guessing stops there, and the lock lifts by itself as the failures age out of the window.
 */
export const SIGN_IN_WINDOW_MS = 15 * 60_000;
/**
 * Failures for one user name: a person who mistypes gets there only with a stuck client, while a guesser from a
 * botnet (new addresses for every try) is held to 40 guesses an hour per name.
 */
export const MAX_FAILURES_PER_USER = 10;
/**
 * Failures from one remote address: higher than per name, because an office behind one NAT address has many users
 * with their own typos, but low enough that one address cannot sweep through many names.
 */
export const MAX_FAILURES_PER_ADDRESS = 30;

export interface SignInThrottle {
  windowMs: number;
  maxFailuresPerUser: number;
  maxFailuresPerAddress: number;
}

export const DEFAULT_SIGN_IN_THROTTLE: SignInThrottle = {
  windowMs: SIGN_IN_WINDOW_MS,
  maxFailuresPerUser: MAX_FAILURES_PER_USER,
  maxFailuresPerAddress: MAX_FAILURES_PER_ADDRESS,
};

/** One sign-in attempt as the guard sees it, at any door. */
export interface GuardedAttempt {
  door: Door;
  /** The name whose password is tried (for `mailbox*collaborator`, the collaborator's e-mail). */
  user: string;
  password: string;
  remoteAddress: string;
  /** The mailbox the attempt names besides the user name (`authzid`, `mailbox*…`), for the record of a lock-out. */
  mailbox?: string | undefined;
}

export interface GuardOptions {
  /** The time the attempt is counted and recorded at (the window ends there). Default: now. */
  now?: Date | undefined;
  /** Overrides of DEFAULT_SIGN_IN_THROTTLE (tests use small numbers). */
  throttle?: Partial<SignInThrottle> | undefined;
}

export type Guarded<T> =
  | { outcome: 'succeeded'; principal: T }
  | { outcome: 'failed'; refusal: string | null }
  | { outcome: 'unavailable'; status: MailboxStatus }
  | { outcome: 'locked_out'; retryAfterSeconds: number };

/** How a user name is stored and counted: case does not make a new name, and invented names stay bounded. */
export function signInUserName(user: string): string {
  return user.replaceAll('\0', '').trim().toLowerCase().slice(0, 320);
}

/** An IPv4 client seen through an IPv6 socket (`::ffff:192.0.2.1`) is the same address as over IPv4. */
export function signInRemoteAddress(address: string): string {
  const plain = address.replaceAll('\0', '').trim().toLowerCase();
  return (plain.startsWith('::ffff:') && plain.includes('.') ? plain.slice('::ffff:'.length) : plain).slice(0, 100);
}

/** No holder's credentials hold a NUL (PostgreSQL text cannot) or run to kilobytes: such are wrong without a look-up. */
const plausible = (value: string): boolean => value.length <= 1024 && !value.includes('\0');

/**
 * When the user name or the remote address is locked out at `now`, the time the lock lifts; else null. A key is
 * locked while it has `max` failures in the window: the `max`-th newest failure ageing out lifts it.
 */
export async function lockedOutUntil(db: DbOrTx, attempt: Pick<GuardedAttempt, 'user' | 'remoteAddress'>, now: Date, throttle: Partial<SignInThrottle> = {}): Promise<Date | null> {
  const limits = { ...DEFAULT_SIGN_IN_THROTTLE, ...throttle };
  const since = new Date(now.getTime() - limits.windowMs);
  const nthNewestFailure = async (key: ReturnType<typeof eq>, max: number): Promise<Date | null> => {
    const [row] = await db.select({ at: mailboxSignIns.at }).from(mailboxSignIns)
      .where(and(key, eq(mailboxSignIns.outcome, 'failed'), gt(mailboxSignIns.at, since)))
      .orderBy(desc(mailboxSignIns.at))
      .offset(max - 1)
      .limit(1);
    return row ? new Date(row.at.getTime() + limits.windowMs) : null;
  };
  const [byUser, byAddress] = await Promise.all([
    nthNewestFailure(eq(mailboxSignIns.userName, signInUserName(attempt.user)), limits.maxFailuresPerUser),
    nthNewestFailure(eq(mailboxSignIns.remoteAddress, signInRemoteAddress(attempt.remoteAddress)), limits.maxFailuresPerAddress),
  ]);
  if (!byUser && !byAddress) return null;
  return new Date(Math.max(byUser?.getTime() ?? 0, byAddress?.getTime() ?? 0));
}

export interface SignInRecord {
  door: Door;
  user: string;
  remoteAddress: string;
  outcome: SignInOutcome;
  mailboxId?: string | null | undefined;
  delegateAccountId?: string | null | undefined;
  at: Date;
}

/** Records one attempt (one INSERT); the lock-out counts the `failed` ones. */
export async function recordSignIn(db: DbOrTx, record: SignInRecord): Promise<void> {
  await db.insert(mailboxSignIns).values({
    id: newId('msi', record.at),
    door: record.door,
    userName: signInUserName(record.user),
    mailboxId: record.mailboxId ?? null,
    delegateAccountId: record.delegateAccountId ?? null,
    remoteAddress: signInRemoteAddress(record.remoteAddress),
    outcome: record.outcome,
    at: record.at,
  });
}

/**
 * One sign-in at any door: the lock-out first (a locked name or address is refused before `check` looks at the
 * password), then the door's credential check, then the record. HTTP Basic sends the credentials with every
 * request, so on the `rest` door a success answered by the verify cache is not recorded again: only failures and
 * real password checks are.
 */
export async function guardSignIn<T>(
  db: DbOrTx,
  attempt: GuardedAttempt,
  check: (trace: CredentialTrace) => Promise<T | null>,
  options: GuardOptions = {},
): Promise<Guarded<T>> {
  const now = options.now ?? new Date();
  const record = (outcome: SignInOutcome, who: Pick<CredentialTrace, 'mailboxId' | 'delegateAccountId'>) =>
    recordSignIn(db, { door: attempt.door, user: attempt.user, remoteAddress: attempt.remoteAddress, outcome, mailboxId: who.mailboxId, delegateAccountId: who.delegateAccountId, at: now });

  const lockedUntil = await lockedOutUntil(db, attempt, now, options.throttle);
  if (lockedUntil) {
    // Named from the user name alone (nothing checked), so the holder's history shows the lock-outs too.
    const named = plausible(attempt.user) && (attempt.mailbox === undefined || plausible(attempt.mailbox))
      ? await identifySignIn(db, attempt.user, attempt.mailbox)
      : { mailboxId: null, delegateAccountId: null };
    await record('locked_out', named);
    return { outcome: 'locked_out', retryAfterSeconds: Math.max(1, Math.ceil((lockedUntil.getTime() - now.getTime()) / 1000)) };
  }
  const trace = newCredentialTrace();
  const principal = plausible(attempt.user) && plausible(attempt.password) ? await check(trace) : null;
  if (principal !== null) {
    if (!(attempt.door === 'rest' && trace.cached)) await record('succeeded', trace);
    return { outcome: 'succeeded', principal };
  }
  if (trace.unavailable) {
    await record('unavailable', trace);
    return { outcome: 'unavailable', status: trace.unavailable };
  }
  await record('failed', trace);
  return { outcome: 'failed', refusal: trace.refusal };
}

/**
 * How long sign-in records are kept: the lock-out needs 15 minutes of them, the holder's history some months (as
 * long as the Garante asks access logs of system administrators to be kept); a flood of guesses must not stay for good.
 */
export const SIGN_IN_RETENTION_MS = 180 * 86_400_000;

/** Deletes the records older than SIGN_IN_RETENTION_MS; answers how many. */
export async function purgeSignIns(db: DbOrTx, now: Date): Promise<number> {
  const deleted = await db.delete(mailboxSignIns).where(lt(mailboxSignIns.at, new Date(now.getTime() - SIGN_IN_RETENTION_MS))).returning({ id: mailboxSignIns.id });
  return deleted.length;
}

/** A mailbox's sign-in history, newest first, a page at a time (cursor: the last id of the previous page). */
export async function listMailboxSignIns(db: DbOrTx, mailboxId: string, query: { limit: number; startingAfter?: string | undefined; outcome?: SignInOutcome | undefined; door?: Door | undefined }) {
  const rows = await db.select().from(mailboxSignIns)
    .where(and(
      eq(mailboxSignIns.mailboxId, mailboxId),
      query.outcome ? eq(mailboxSignIns.outcome, query.outcome) : undefined,
      query.door ? eq(mailboxSignIns.door, query.door) : undefined,
      // Ordered by time on the (mailbox, at) index, ties by id; the cursor row says where the page starts.
      query.startingAfter
        ? sql`(${mailboxSignIns.at}, ${mailboxSignIns.id}) < (select c.at, c.id from ${mailboxSignIns} c where c.id = ${query.startingAfter})`
        : undefined,
    ))
    .orderBy(desc(mailboxSignIns.at), desc(mailboxSignIns.id))
    .limit(query.limit + 1);
  return rows.map((row) => ({
    id: row.id,
    object: 'mailbox_sign_in' as const,
    mailbox: mailboxId,
    door: row.door,
    user: row.userName,
    remote_address: row.remoteAddress,
    outcome: row.outcome,
    created_at: row.at.toISOString(),
  }));
}
