import type { Db, DbOrTx, MailboxStatus } from '@pec-partner/db';
import type { TokenService } from '../modules/partners/tokens.ts';
import {
  authenticateDelegate, authenticateHolder, authenticateMailboxUser, authenticateSoleDelegate, authenticateSubmitter, findMailbox, SIGN_IN_STATUSES,
  statusOpens, type CheckOptions, type SubmissionLogin,
} from './credentials.ts';
import { guardSignIn, type Guarded, type SignInThrottle } from './login-guard.ts';
import type { HolderPrincipal } from './principals.ts';
import { authenticateMailboxSession, MAILBOX_SESSION_PREFIX } from './supervisor-sessions.ts';

export type Door = 'rest' | 'smtp' | 'imap' | 'pop3' | 'webmail';

export interface SignInAttempt {
  door: Door;
  /** What the client typed as user name. */
  user: string;
  password: string;
  /** SASL authorization identity (AUTHENTICATE PLAIN's authzid): the mailbox a collaborator wants to open. */
  authzid?: string | undefined;
  remoteAddress: string;
}

export type SignInResult =
  | { ok: true; principal: HolderPrincipal }
  | { ok: false; code: 'invalid_credentials' | 'locked_out' | 'mailbox_unavailable'; message: string };

/**
 * The mailbox statuses each door opens, in one place. REST and SMTP submission keep their rule: a suspended mailbox
 * stays readable there (the engine refuses to send from it), so its holder can still read and export its messages
 * and see why through the API. The mailbox doors (IMAP, POP3, webmail) are what mail clients keep open all day: a
 * suspension (unpaid, a decertified domain, the partner's decision) closes them until the mailbox is active again.
 * A status a door does not open is told only to whoever gave the right password; anyone else hears "wrong".
 */
export const doorStatuses: Record<Door, readonly MailboxStatus[]> = {
  rest: SIGN_IN_STATUSES,
  smtp: SIGN_IN_STATUSES,
  imap: ['active'],
  pop3: ['active'],
  webmail: ['active'],
};

export interface SignInDeps {
  /** Verifies supervisors' mailbox sessions (`mbs_…` given as the password); without it none signs in. */
  tokens?: TokenService | undefined;
  /** Overrides of the lock-out's thresholds (tests use small numbers). */
  throttle?: Partial<SignInThrottle> | undefined;
}

/**
 * Who signs in, and which mailbox it opens: `mailbox*collaborator` (Dovecot's master-user form) or the SASL
 * authorization identity names the mailbox, the rest is whose password it is. A name that names itself (clients
 * that send authzid = authcid) names no other mailbox.
 */
function readUser(attempt: SignInAttempt): { login: string; mailbox: string | undefined } {
  const user = attempt.user.trim();
  const star = user.indexOf('*');
  const login = star >= 0 ? user.slice(star + 1).trim() : user;
  const mailbox = attempt.authzid?.trim() || (star >= 0 ? user.slice(0, star).trim() : '');
  return { login, mailbox: mailbox && mailbox.toLowerCase() !== login.toLowerCase() ? mailbox : undefined };
}

/** Whether a user name (an address for a live mailbox, or an id) names this principal's mailbox. */
const namesMailbox = (login: string, mailbox: { id: string; address: string; livemode: boolean }): boolean =>
  login === mailbox.id || (mailbox.livemode && login.toLowerCase() === mailbox.address);

async function mailboxPrincipal(db: DbOrTx, login: string, password: string, mailbox: string | undefined, options: CheckOptions & { trace: NonNullable<CheckOptions['trace']> }, tokens: TokenService | undefined): Promise<HolderPrincipal | null> {
  if (mailbox !== undefined) {
    // A collaborator opening the mailbox it named, or the holder naming its own mailbox by its other name.
    const target = await findMailbox(db, mailbox);
    if (!target) return null;
    if (namesMailbox(login, target)) return authenticateHolder(db, login, password, options);
    options.trace.mailboxId = target.id;
    return authenticateDelegate(db, login, password, target.id, options);
  }
  if (tokens && password.startsWith(MAILBOX_SESSION_PREFIX)) {
    // A supervisor: the mailbox's name and a session from a sign-in link. Not one: maybe a password that looks so.
    const session = await authenticateMailboxSession(db, tokens, password);
    if (session && namesMailbox(login, { id: session.mailboxId, address: session.address, livemode: session.livemode })) {
      options.trace.mailboxId = session.mailboxId;
      return statusOpens(session.status, options) ? session : null;
    }
  }
  const holder = await authenticateHolder(db, login, password, options);
  // The holder's password was right for a mailbox this door does not open: that is the answer, not a collaborator.
  if (holder || options.trace.unavailable) return holder;
  return authenticateSoleDelegate(db, login, password, options);
}

const lockedOutMessage = (seconds: number) => `Too many failed sign-ins for this user name or from this address; try again in ${seconds} s.`;

/**
 * One mailbox session (IMAP, POP3, webmail): the holder, a collaborator on one mailbox, or a supervisor session.
 *
 * - The holder: the mailbox's address (live) or id (`mbx_…`, sandbox mailboxes) and its password.
 * - A collaborator: its own e-mail and password; the mailbox it opens is `authzid`, or the part before `*` in the
 *   user name (`<mailbox>*<e-mail>`), or, naming none, its one active delegation (with several it must name one).
 * - A supervisor: the mailbox's address or id, and a mailbox session (`mbs_…`) as the password (needs `deps.tokens`).
 *
 * Every attempt goes through the shared lock-out and is recorded (see login-guard.ts). `now` is the time it is
 * counted at (default: now).
 */
export async function signInToMailbox(db: Db, attempt: SignInAttempt, now?: Date, deps: SignInDeps = {}): Promise<SignInResult> {
  const { login, mailbox } = readUser(attempt);
  const guarded = await guardSignIn(db, { door: attempt.door, user: login, password: attempt.password, remoteAddress: attempt.remoteAddress, mailbox },
    (trace) => mailboxPrincipal(db, login, attempt.password, mailbox, { statuses: doorStatuses[attempt.door], trace }, deps.tokens),
    { now, throttle: deps.throttle });
  switch (guarded.outcome) {
    case 'succeeded':
      return { ok: true, principal: guarded.principal };
    case 'locked_out':
      return { ok: false, code: 'locked_out', message: lockedOutMessage(guarded.retryAfterSeconds) };
    case 'unavailable':
      return { ok: false, code: 'mailbox_unavailable', message: `The mailbox is ${guarded.status}; ${attempt.door} opens ${doorStatuses[attempt.door].join(' or ')} mailboxes only.` };
    case 'failed':
      return { ok: false, code: 'invalid_credentials', message: guarded.refusal ?? 'Invalid user name or password.' };
  }
}

/** A sign-in at a door that keeps its own protocol's answers (REST, SMTP): the guard's outcome as it is. */
export interface DoorAttempt {
  user: string;
  password: string;
  remoteAddress: string;
}

/**
 * HTTP Basic on a holder route (`/v1/mailboxes/{id}/…` names `routeMailbox`): the holder, or a collaborator on that
 * mailbox. Guarded and recorded like every door; a success the verify cache answered is not recorded again.
 */
export function signInToRestRoute(db: DbOrTx, attempt: DoorAttempt, routeMailbox: string | undefined, now?: Date, deps: Pick<SignInDeps, 'throttle'> = {}): Promise<Guarded<HolderPrincipal>> {
  return guardSignIn(db, { door: 'rest', ...attempt },
    (trace) => authenticateMailboxUser(db, attempt.user, attempt.password, routeMailbox, { statuses: doorStatuses.rest, trace }),
    { now, throttle: deps.throttle });
}

/**
 * SMTP AUTH on the submission ports: the holder, or a collaborator whose mailbox MAIL FROM will name (see
 * `authenticateSubmitter`). Guarded and recorded like every door.
 */
export function signInForSubmission(db: DbOrTx, attempt: DoorAttempt, now?: Date, deps: Pick<SignInDeps, 'throttle'> = {}): Promise<Guarded<SubmissionLogin>> {
  return guardSignIn(db, { door: 'smtp', ...attempt },
    (trace) => authenticateSubmitter(db, attempt.user, attempt.password, { statuses: doorStatuses.smtp, trace }),
    { now, throttle: deps.throttle });
}
