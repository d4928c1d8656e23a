import { inTaskScope, worldNow, type TaskScope } from '../../sandbox/task-scope.ts';
import { createHash } from 'node:crypto';
import { and, desc, eq, inArray, lt, lte } from 'drizzle-orm';
import { delegateAccounts, delegations, mailboxes, type Db, type DbOrTx, type DelegationMode, type DelegationStatus } from '@pec-partner/db';
import type { Clock } from '../../clock.ts';
import { isUniqueViolation } from '../../db-errors.ts';
import { changedAttributes, recordEvent } from '../../events/record.ts';
import { conflict, invalid, notFound, ProblemError } from '../../http/problem.ts';
import { newId, randomToken } from '../../ids.ts';
import { hashPassword, verifyPassword } from '../../passwords.ts';
import { delegateSeats } from '../addons/service.ts';
import { pricesFor } from '../credit/price-lists.ts';
import { validatePassword } from '../mailboxes/password-policy.ts';

type Row = typeof delegations.$inferSelect;
type MailboxRow = typeof mailboxes.$inferSelect;

export interface DelegationDeps {
  db: Db;
  clock: Clock;
}

/** Invitations are valid for 7 days. */
export const INVITATION_TTL_MS = 7 * 86_400_000;
export const INVITATION_TOKEN_PREFIX = 'dinv_';

export const sha256 = (value: string): string => createHash('sha256').update(value).digest('hex');

/**
 * An invitation past its expiry reads as `expired` at once; the sweep below records it (and reports it) on the
 * next invitation or listing of the mailbox, or at the latest on the next run of the expiry task.
 */
const statusAt = (row: Row, now: Date): DelegationStatus => (row.status === 'invited' && row.inviteExpiresAt <= now ? 'expired' : row.status);

export function delegationView(row: Row, mailboxAddress: string, now: Date) {
  return {
    id: row.id,
    object: 'delegation' as const,
    mailbox: row.mailboxId,
    mailbox_address: mailboxAddress,
    email: row.email,
    name: row.name,
    mode: row.mode,
    status: statusAt(row, now),
    invite_expires_at: row.acceptedAt ? null : row.inviteExpiresAt.toISOString(),
    accepted_at: row.acceptedAt?.toISOString() ?? null,
    revoked_at: row.revokedAt?.toISOString() ?? null,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  };
}
export type DelegationView = ReturnType<typeof delegationView>;

/** The mailbox as its partner, or its holder, reaches it: anything else is missing. */
async function findMailbox(tx: DbOrTx, scope: { partnerId: string; mailboxId: string }, lock = false): Promise<MailboxRow> {
  const query = tx.select().from(mailboxes).where(and(eq(mailboxes.id, scope.mailboxId), eq(mailboxes.partnerId, scope.partnerId)));
  const [row] = lock ? await query.for('update') : await query;
  if (!row) throw notFound('mailbox', scope.mailboxId);
  return row;
}

type DelegationEventType = 'delegation.created' | 'delegation.accepted' | 'delegation.updated' | 'delegation.revoked' | 'delegation.expired';

/** Writes the event of a change to a delegation (the old values of what changed, for changes); returns the new view. */
async function recordDelegationEvent(tx: DbOrTx, clock: Clock, partnerId: string, type: DelegationEventType, after: DelegationView, before?: DelegationView): Promise<DelegationView> {
  await recordEvent(tx, clock, { partnerId, type, object: after, ...(before ? { previousAttributes: changedAttributes(before, after) } : {}) });
  return after;
}

const EXPIRY_BATCH = 500;

/**
 * Records up to EXPIRY_BATCH invitations that ran out, of one mailbox or of all: each frees its seat and gets its
 * `delegation.expired` event. The view already read them as expired, so the previous attributes are the stored
 * ones. Returns how many it recorded.
 */
async function expireBatch(tx: DbOrTx, clock: Clock, now: Date, mailboxId: string | null, scope: TaskScope = {}): Promise<number> {
  const due = await tx.select({ delegation: delegations, address: mailboxes.address, partnerId: mailboxes.partnerId })
    .from(delegations).innerJoin(mailboxes, eq(mailboxes.id, delegations.mailboxId))
    .where(and(mailboxId ? eq(delegations.mailboxId, mailboxId) : inTaskScope(mailboxes.partnerId, scope), eq(delegations.status, 'invited'), lte(delegations.inviteExpiresAt, now)))
    .orderBy(delegations.id).limit(EXPIRY_BATCH).for('update', { of: delegations });
  if (due.length === 0) return 0;
  const expired = await tx.update(delegations).set({ status: 'expired', updatedAt: now })
    .where(inArray(delegations.id, due.map((d) => d.delegation.id))).returning();
  for (const row of expired) {
    const { delegation: before, address, partnerId } = due.find((d) => d.delegation.id === row.id)!;
    await recordEvent(tx, clock, {
      partnerId, type: 'delegation.expired', object: delegationView(row, address, now),
      previousAttributes: { status: before.status, updated_at: before.updatedAt.toISOString() },
    });
  }
  return expired.length;
}

/** Records every invitation of the mailbox that ran out (they free their seat). */
async function expireInvitations(tx: DbOrTx, clock: Clock, now: Date, mailboxId: string): Promise<void> {
  while ((await expireBatch(tx, clock, now, mailboxId)) === EXPIRY_BATCH) {
    // More than a batch ran out at once: the next batch.
  }
}

/**
 * The periodic task: records every invitation that ran out, a batch per transaction, so that each expiry is
 * reported even if nobody looks at the mailbox's delegations again. Returns how many expired.
 */
export async function expireDelegationInvitations(deps: DelegationDeps, now: Date, scope: TaskScope = {}): Promise<number> {
  let total = 0;
  for (;;) {
    const expired = await deps.db.transaction((tx) => expireBatch(tx, deps.clock, now, null, scope));
    total += expired;
    if (expired < EXPIRY_BATCH) return total;
  }
}

export interface InviteInput {
  email: string;
  name?: string | undefined;
  mode: DelegationMode;
}

/**
 * Invites a collaborator: the token is returned here once (only its SHA-256 is kept) and is valid 7 days. Live
 * delegations (invited or active) are bounded by the mailbox's delegate seats: the plan's included seats plus the
 * purchased `delegation_seat` add-ons, now and from the renewal on. The mailbox row is locked, so concurrent
 * invitations cannot overbook.
 */
export async function inviteDelegate(deps: DelegationDeps, scope: { partnerId: string; mailboxId: string }, input: InviteInput) {
  const email = input.email.trim().toLowerCase();
  const now = deps.clock.now();
  const token = INVITATION_TOKEN_PREFIX + randomToken(40);
  const expiresAt = new Date(now.getTime() + INVITATION_TTL_MS);
  try {
    return await deps.db.transaction(async (tx) => {
      const mailbox = await findMailbox(tx, scope, true);
      if (mailbox.status !== 'active') throw conflict('mailbox_not_active', `Delegations are granted on active mailboxes; mailbox '${mailbox.id}' is ${mailbox.status}.`);
      if (email === mailbox.address) {
        throw invalid([{ pointer: '/email', location: 'body', code: 'not_allowed', detail: 'is the mailbox itself; the holder needs no delegation' }]);
      }
      await expireInvitations(tx, deps.clock, now, mailbox.id);
      const live = await tx.select({ id: delegations.id, email: delegations.email, status: delegations.status }).from(delegations)
        .where(and(eq(delegations.mailboxId, mailbox.id), inArray(delegations.status, ['invited', 'active'])));
      const existing = live.find((d) => d.email === email);
      if (existing) throw conflict('delegation_exists', `${email} already has a ${existing.status} delegation on this mailbox (${existing.id}); change its mode or revoke it.`, { delegation: existing.id });
      const seats = await delegateSeats(tx, (await pricesFor(tx, scope.partnerId, now)).prices, mailbox);
      const limit = Math.min(seats.now, seats.atRenewal);
      if (live.length >= limit) {
        const active = live.filter((d) => d.status === 'active').length;
        const taken = `(${active} active, ${live.length - active} invited)`;
        const plural = (n: number) => `${n} delegate seat${n === 1 ? '' : 's'}`;
        throw conflict('delegate_seats_exhausted',
          seats.atRenewal < seats.now
            ? `Mailbox ${mailbox.address} has ${plural(seats.now)} now (${seats.included} included in the plan, ${seats.purchased} purchased) but ` +
              `${seats.atRenewal} from the renewal on (seats cancelled for the renewal, or a smaller plan), and ${live.length} ${live.length === 1 ? 'is' : 'are'} taken ${taken}. ` +
              'Keep the delegation_seat add-ons for the renewal, buy more, or revoke a delegation.'
            : `Mailbox ${mailbox.address} has ${plural(seats.now)} (${seats.included} included in the plan, ${seats.purchased} purchased) and all are taken ${taken}. ` +
              'Buy a delegation_seat add-on or revoke a delegation.',
          { seats: limit, included: seats.included, purchased: seats.purchased, seats_at_renewal: seats.atRenewal, used: live.length });
      }
      const [row] = await tx.insert(delegations).values({
        id: newId('dlg', now), partnerId: mailbox.partnerId, mailboxId: mailbox.id, email, name: input.name ?? null, mode: input.mode,
        status: 'invited', inviteTokenHash: sha256(token), inviteExpiresAt: expiresAt, createdAt: now, updatedAt: now,
      }).returning();
      // The event carries the delegation as GET shows it: never the token.
      const view = await recordDelegationEvent(tx, deps.clock, mailbox.partnerId, 'delegation.created', delegationView(row!, mailbox.address, now));
      return { ...view, invitation: { token, expires_at: expiresAt.toISOString() } };
    });
  } catch (error) {
    // Two concurrent invitations of the same e-mail: the partial unique index lets one through.
    if (isUniqueViolation(error)) throw conflict('delegation_exists', `${email} already has a live delegation on this mailbox.`);
    throw error;
  }
}

export async function listDelegations(deps: DelegationDeps, scope: { partnerId: string; mailboxId: string }, query: { status?: DelegationStatus | undefined; limit: number; startingAfter?: string | undefined }) {
  const mailbox = await findMailbox(deps.db, scope);
  const now = deps.clock.now();
  // Recorded first, so that a status filter does not see a stale `invited`.
  await deps.db.transaction((tx) => expireInvitations(tx, deps.clock, now, mailbox.id));
  const rows = await deps.db.select().from(delegations)
    .where(and(
      eq(delegations.mailboxId, mailbox.id),
      query.status ? eq(delegations.status, query.status) : undefined,
      query.startingAfter ? lt(delegations.id, query.startingAfter) : undefined,
    ))
    .orderBy(desc(delegations.id))
    .limit(query.limit + 1);
  return rows.map((row) => delegationView(row, mailbox.address, now));
}

async function findDelegation(tx: DbOrTx, mailboxId: string, id: string, lock = false): Promise<Row> {
  const query = tx.select().from(delegations).where(and(eq(delegations.id, id), eq(delegations.mailboxId, mailboxId)));
  const [row] = lock ? await query.for('update') : await query;
  if (!row) throw notFound('delegation', id);
  return row;
}

export async function getDelegation(deps: DelegationDeps, scope: { partnerId: string; mailboxId: string }, id: string) {
  const mailbox = await findMailbox(deps.db, scope);
  return delegationView(await findDelegation(deps.db, mailbox.id, id), mailbox.address, deps.clock.now());
}

const notLive = (row: Row, now: Date) =>
  conflict('delegation_not_live', `Delegation '${row.id}' is ${statusAt(row, now)}; invite the collaborator again.`, { delegation_status: statusAt(row, now) });

/** The delegation, locked, if it can still change (invited or active); 409 `delegation_not_live` otherwise. */
async function lockLiveDelegation(tx: DbOrTx, clock: Clock, scope: { partnerId: string; mailboxId: string }, id: string) {
  const mailbox = await findMailbox(tx, scope);
  const now = clock.now();
  const row = await findDelegation(tx, mailbox.id, id, true);
  const status = statusAt(row, now);
  if (status !== 'invited' && status !== 'active') throw notLive(row, now);
  return { mailbox, now, row };
}

/** Changes the mode (or the display name); it applies to the collaborator's very next request. */
export async function updateDelegation(deps: DelegationDeps, scope: { partnerId: string; mailboxId: string }, id: string, change: { mode?: DelegationMode | undefined; name?: string | null | undefined }) {
  return deps.db.transaction(async (tx) => {
    const { mailbox, now, row } = await lockLiveDelegation(tx, deps.clock, scope, id);
    const mode = change.mode ?? row.mode;
    const name = change.name === undefined ? row.name : change.name;
    // The same values again: nothing changes and nothing is reported.
    if (mode === row.mode && name === row.name) return delegationView(row, mailbox.address, now);
    const [updated] = await tx.update(delegations)
      .set({ mode, name, updatedAt: now })
      .where(eq(delegations.id, id)).returning();
    return recordDelegationEvent(tx, deps.clock, mailbox.partnerId, 'delegation.updated', delegationView(updated!, mailbox.address, now), delegationView(row, mailbox.address, now));
  });
}

/** Ends the delegation: the collaborator signs in no more, on the API and on SMTP; its seat is free again. */
export async function revokeDelegation(deps: DelegationDeps, scope: { partnerId: string; mailboxId: string }, id: string) {
  return deps.db.transaction(async (tx) => {
    const { mailbox, now, row } = await lockLiveDelegation(tx, deps.clock, scope, id);
    const [updated] = await tx.update(delegations).set({ status: 'revoked', revokedAt: now, updatedAt: now }).where(eq(delegations.id, id)).returning();
    return recordDelegationEvent(tx, deps.clock, mailbox.partnerId, 'delegation.revoked', delegationView(updated!, mailbox.address, now), delegationView(row, mailbox.address, now));
  });
}

/**
 * Part of ending a mailbox, in its transaction: invitations past their 7 days are recorded as expired, and every
 * live delegation is revoked (`delegation.revoked` each), so no collaborator signs in to it again and no seat
 * outlives it.
 */
export async function revokeDelegationsOfMailbox(tx: DbOrTx, clock: Clock, mailbox: Pick<MailboxRow, 'id' | 'address' | 'partnerId'>, now: Date): Promise<void> {
  await expireInvitations(tx, clock, now, mailbox.id);
  const live = await tx.select().from(delegations)
    .where(and(eq(delegations.mailboxId, mailbox.id), inArray(delegations.status, ['invited', 'active'])))
    .orderBy(delegations.id).for('update');
  for (const row of live) {
    const [revoked] = await tx.update(delegations).set({ status: 'revoked', revokedAt: now, updatedAt: now }).where(eq(delegations.id, row.id)).returning();
    await recordDelegationEvent(tx, clock, mailbox.partnerId, 'delegation.revoked', delegationView(revoked!, mailbox.address, now), delegationView(row, mailbox.address, now));
  }
}

const invitationProblem = (status: number, code: string, detail: string) => new ProblemError(status, code, status === 410 ? 'Gone' : 'Conflict', detail);

/**
 * The collaborator accepts with the token and a password. Its account is created with that password, or, when it
 * already has one (delegations on other mailboxes), the password must be the account's. Expired: 410
 * `invitation_expired`; revoked: 410 `invitation_revoked`; already used: 409 `invitation_already_accepted`.
 */
export async function acceptInvitation(deps: DelegationDeps, token: string, password: string) {
  const hash = sha256(token.trim());
  const [invitation] = await deps.db.select().from(delegations).where(eq(delegations.inviteTokenHash, hash));
  if (!invitation) throw new ProblemError(404, 'invitation_not_found', 'Resource not found', 'No invitation has this token.');
  // The token names the world: a test world on its test clock accepts at the clock's time.
  const now = await worldNow(deps.db, deps.clock, invitation.partnerId);
  if (invitation.status === 'active') throw invitationProblem(409, 'invitation_already_accepted', `This invitation was accepted on ${invitation.acceptedAt!.toISOString()}.`);
  if (invitation.status === 'revoked') throw invitationProblem(410, 'invitation_revoked', 'The invitation was revoked; ask the mailbox holder for a new one.');
  if (statusAt(invitation, now) === 'expired') {
    throw invitationProblem(410, 'invitation_expired', `The invitation expired on ${invitation.inviteExpiresAt.toISOString()}; ask the mailbox holder for a new one.`);
  }
  // The password work (scrypt) happens outside the transaction.
  const [account] = await deps.db.select().from(delegateAccounts).where(eq(delegateAccounts.email, invitation.email));
  let newHash: string | null = null;
  if (account) {
    if (!(await verifyPassword(password, account.passwordHash))) {
      throw new ProblemError(401, 'invalid_delegate_credentials', 'Authentication required',
        `${invitation.email} already has a delegate account: give its password to add this mailbox to it.`);
    }
  } else {
    validatePassword(password);
    newHash = await hashPassword(password);
  }
  return deps.db.transaction(async (tx) => {
    const [row] = await tx.select().from(delegations).where(eq(delegations.id, invitation.id)).for('update');
    if (row!.status !== 'invited') throw invitationProblem(409, 'invitation_already_accepted', 'This invitation was used or revoked meanwhile.');
    const [mailbox] = await tx.select().from(mailboxes).where(eq(mailboxes.id, row!.mailboxId));
    if (!mailbox || (mailbox.status !== 'active' && mailbox.status !== 'suspended')) {
      throw conflict('mailbox_not_active', `Mailbox ${mailbox?.address ?? row!.mailboxId} is ${mailbox?.status ?? 'gone'}.`);
    }
    let accountId = account?.id;
    let created = false;
    if (!accountId) {
      const [inserted] = await tx.insert(delegateAccounts).values({ id: newId('dac', now), email: row!.email, passwordHash: newHash!, createdAt: now, updatedAt: now })
        .onConflictDoNothing().returning({ id: delegateAccounts.id });
      // An account created meanwhile by another acceptance: its password was not checked, so stop here.
      if (!inserted) throw conflict('delegate_account_created_meanwhile', 'A delegate account for this e-mail was just created; accept again with its password.');
      accountId = inserted.id;
      created = true;
    }
    const [updated] = await tx.update(delegations).set({ status: 'active', accountId, acceptedAt: now, updatedAt: now }).where(eq(delegations.id, row!.id)).returning();
    const view = await recordDelegationEvent(tx, deps.clock, mailbox.partnerId, 'delegation.accepted', delegationView(updated!, mailbox.address, now), delegationView(row!, mailbox.address, now));
    return { ...view, account: { id: accountId, email: row!.email, created } };
  });
}
