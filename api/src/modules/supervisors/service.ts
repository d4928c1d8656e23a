import { and, desc, eq, inArray, lt, sql } from 'drizzle-orm';
import {
  mailboxes, mailboxMessages, pecTransactions, supervisedMailboxes, supervisors,
  type DbOrTx, type MailboxPlan, type MailboxStatus, type RenewalMode, type SupervisionStatus,
} from '@pec-partner/db';
import { isUniqueViolation } from '../../db-errors.ts';
import type { AppDeps } from '../../deps.ts';
import { conflict, invalid, notFound, ProblemError } from '../../http/problem.ts';
import { newId, randomToken } from '../../ids.ts';
import { hasActiveAddon } from '../addons/service.ts';
import { sha256 } from '../delegations/service.ts';
import type { HolderPrincipal } from '../../access/principals.ts';
import { renewMailbox, setRenewalMode, type MailboxView } from '../mailboxes/service.ts';

type SupervisorRow = typeof supervisors.$inferSelect;
type SupervisionRow = typeof supervisedMailboxes.$inferSelect;

/** Invitations to join a supervisor's console are valid for 7 days. */
export const SUPERVISION_INVITATION_TTL_MS = 7 * 86_400_000;
export const SUPERVISION_TOKEN_PREFIX = 'sinv_';

export function supervisorView(row: SupervisorRow) {
  return {
    id: row.id,
    object: 'supervisor' as const,
    mailbox: row.mailboxId,
    name: row.name,
    email: row.email,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  };
}

const statusAt = (row: SupervisionRow, now: Date): SupervisionStatus | 'expired' =>
  row.status === 'invited' && row.inviteExpiresAt && row.inviteExpiresAt <= now ? 'expired' : row.status;

export function supervisionView(row: SupervisionRow, supervisor: SupervisorRow, mailboxAddress: string, now: Date) {
  return {
    object: 'supervision' as const,
    supervisor: supervisor.id,
    supervisor_name: supervisor.name,
    supervisor_email: supervisor.email,
    mailbox: row.mailboxId,
    mailbox_address: mailboxAddress,
    status: statusAt(row, now),
    invite_expires_at: row.status === 'invited' ? (row.inviteExpiresAt?.toISOString() ?? null) : null,
    added_at: row.addedAt.toISOString(),
    accepted_at: row.acceptedAt?.toISOString() ?? null,
    removed_at: row.removedAt?.toISOString() ?? null,
  };
}

const addonRequired = (mailboxId: string) =>
  conflict('addon_required', `The supervisor console needs the supervisor add-on on mailbox '${mailboxId}' (POST /v1/mailboxes/${mailboxId}/addons with kind supervisor).`, { addon: 'supervisor', mailbox: mailboxId });

async function ownedMailbox(db: DbOrTx, partnerId: string, mailboxId: string) {
  const [row] = await db.select().from(mailboxes).where(and(eq(mailboxes.id, mailboxId), eq(mailboxes.partnerId, partnerId)));
  if (!row) throw notFound('mailbox', mailboxId);
  return row;
}

/** The partner's supervisor; `withAddon` also requires the add-on to be active on the mailbox that pays for it. */
export async function findSupervisor(db: DbOrTx, partnerId: string, id: string, withAddon = false): Promise<SupervisorRow> {
  const [row] = await db.select().from(supervisors).where(and(eq(supervisors.id, id), eq(supervisors.partnerId, partnerId)));
  if (!row) throw notFound('supervisor', id);
  if (withAddon && !(await hasActiveAddon(db, row.mailboxId, 'supervisor'))) throw addonRequired(row.mailboxId);
  return row;
}

export async function createSupervisor(deps: AppDeps, partnerId: string, input: { mailbox: string; name: string; email: string }) {
  const mailbox = await ownedMailbox(deps.db, partnerId, input.mailbox);
  if (!(await hasActiveAddon(deps.db, mailbox.id, 'supervisor'))) throw addonRequired(mailbox.id);
  const now = deps.clock.now();
  const [row] = await deps.db.insert(supervisors).values({
    id: newId('sup', now), partnerId, mailboxId: mailbox.id, name: input.name.trim(), email: input.email.trim().toLowerCase(), createdAt: now, updatedAt: now,
  }).returning();
  return supervisorView(row!);
}

export async function listSupervisors(deps: AppDeps, partnerId: string, query: { limit: number; startingAfter?: string | undefined }) {
  const rows = await deps.db.select().from(supervisors)
    .where(and(eq(supervisors.partnerId, partnerId), query.startingAfter ? lt(supervisors.id, query.startingAfter) : undefined))
    .orderBy(desc(supervisors.id)).limit(query.limit + 1);
  return rows.map(supervisorView);
}

export async function updateSupervisor(deps: AppDeps, partnerId: string, id: string, change: { name?: string | undefined; email?: string | undefined }) {
  const row = await findSupervisor(deps.db, partnerId, id);
  const [updated] = await deps.db.update(supervisors).set({
    name: change.name?.trim() ?? row.name, email: change.email?.trim().toLowerCase() ?? row.email, updatedAt: deps.clock.now(),
  }).where(eq(supervisors.id, id)).returning();
  return supervisorView(updated!);
}

/**
 * Adds a mailbox of the same partner to the console: directly (active at once: the partner answers for its customers'
 * consent) or by invitation (`invite: true`), which the holder accepts or declines with the token. A mailbox that was
 * removed, declined or whose invitation expired can be added again.
 */
export async function addSupervisedMailbox(deps: AppDeps, partnerId: string, supervisorId: string, input: { mailbox: string; invite?: boolean | undefined }) {
  // Two concurrent first additions of the same mailbox: the primary key lets one through.
  return addOnce(deps, partnerId, supervisorId, input).catch((error: unknown) => {
    if (isUniqueViolation(error)) throw conflict('mailbox_already_supervised', `Mailbox '${input.mailbox}' was just added to this console.`);
    throw error;
  });
}

async function addOnce(deps: AppDeps, partnerId: string, supervisorId: string, input: { mailbox: string; invite?: boolean | undefined }) {
  return deps.db.transaction(async (tx) => {
    const supervisor = await findSupervisor(tx, partnerId, supervisorId, true);
    const mailbox = await ownedMailbox(tx, partnerId, input.mailbox);
    if (mailbox.status === 'cancelled') throw conflict('mailbox_cancelled', `Mailbox '${mailbox.id}' is cancelled.`);
    const now = deps.clock.now();
    const [existing] = await tx.select().from(supervisedMailboxes)
      .where(and(eq(supervisedMailboxes.supervisorId, supervisor.id), eq(supervisedMailboxes.mailboxId, mailbox.id))).for('update');
    if (existing) {
      const status = statusAt(existing, now);
      if (status === 'active') throw conflict('mailbox_already_supervised', `Mailbox ${mailbox.address} is already in this supervisor's console.`);
      if (status === 'invited') throw conflict('supervision_invitation_pending', `Mailbox ${mailbox.address} has a pending invitation until ${existing.inviteExpiresAt!.toISOString()}.`);
    }
    const token = input.invite ? SUPERVISION_TOKEN_PREFIX + randomToken(40) : null;
    const expiresAt = token ? new Date(now.getTime() + SUPERVISION_INVITATION_TTL_MS) : null;
    const values = {
      status: (token ? 'invited' : 'active') as SupervisionStatus,
      inviteTokenHash: token ? sha256(token) : null,
      inviteExpiresAt: expiresAt,
      addedAt: now,
      acceptedAt: token ? null : now,
      removedAt: null,
    };
    const [row] = existing
      ? await tx.update(supervisedMailboxes).set(values)
        .where(and(eq(supervisedMailboxes.supervisorId, supervisor.id), eq(supervisedMailboxes.mailboxId, mailbox.id))).returning()
      : await tx.insert(supervisedMailboxes).values({ supervisorId: supervisor.id, mailboxId: mailbox.id, ...values }).returning();
    const view = supervisionView(row!, supervisor, mailbox.address, now);
    return token ? { ...view, invitation: { token, expires_at: expiresAt!.toISOString() } } : view;
  });
}

/** Takes a mailbox out of the console (or withdraws its invitation); its sign-in sessions stop at once. */
export async function removeSupervisedMailbox(deps: AppDeps, partnerId: string, supervisorId: string, mailboxId: string) {
  const supervisor = await findSupervisor(deps.db, partnerId, supervisorId);
  return endSupervision(deps, supervisor, mailboxId);
}

async function endSupervision(deps: AppDeps, supervisor: SupervisorRow, mailboxId: string) {
  const now = deps.clock.now();
  const [row] = await deps.db.update(supervisedMailboxes).set({ status: 'removed', removedAt: now, inviteTokenHash: null })
    .where(and(eq(supervisedMailboxes.supervisorId, supervisor.id), eq(supervisedMailboxes.mailboxId, mailboxId), inArray(supervisedMailboxes.status, ['active', 'invited'])))
    .returning();
  if (!row) throw notFound('supervised mailbox', mailboxId);
  const [mailbox] = await deps.db.select({ address: mailboxes.address }).from(mailboxes).where(eq(mailboxes.id, mailboxId));
  return supervisionView(row, supervisor, mailbox!.address, now);
}

/** The holder answers an invitation with its token: `accept` puts the mailbox in the console, `decline` refuses. */
export async function answerSupervisionInvitation(deps: AppDeps, holder: HolderPrincipal, token: string, answer: 'accept' | 'decline') {
  return deps.db.transaction(async (tx) => {
    const [row] = await tx.select().from(supervisedMailboxes)
      .where(and(eq(supervisedMailboxes.inviteTokenHash, sha256(token.trim())), eq(supervisedMailboxes.mailboxId, holder.mailboxId))).for('update');
    if (!row) throw new ProblemError(404, 'invitation_not_found', 'Resource not found', 'No supervision invitation for this mailbox has this token.');
    const now = deps.clock.now();
    const status = statusAt(row, now);
    if (status === 'expired') throw new ProblemError(410, 'invitation_expired', 'Gone', `The invitation expired on ${row.inviteExpiresAt!.toISOString()}; ask for a new one.`);
    if (status !== 'invited') throw conflict('invitation_already_answered', `This invitation is already ${status === 'active' ? 'accepted' : status}.`, { supervision_status: status });
    const [supervisor] = await tx.select().from(supervisors).where(eq(supervisors.id, row.supervisorId));
    const [updated] = await tx.update(supervisedMailboxes)
      .set(answer === 'accept' ? { status: 'active', acceptedAt: now } : { status: 'declined', removedAt: now })
      .where(and(eq(supervisedMailboxes.supervisorId, row.supervisorId), eq(supervisedMailboxes.mailboxId, row.mailboxId))).returning();
    return supervisionView(updated!, supervisor!, holder.address, now);
  });
}

/** The holder's view: who supervises (or invited) its mailbox. */
export async function listSupervisionsOfMailbox(deps: AppDeps, holder: HolderPrincipal) {
  const now = deps.clock.now();
  const rows = await deps.db.select({ s: supervisedMailboxes, sup: supervisors }).from(supervisedMailboxes)
    .innerJoin(supervisors, eq(supervisors.id, supervisedMailboxes.supervisorId))
    .where(and(eq(supervisedMailboxes.mailboxId, holder.mailboxId), inArray(supervisedMailboxes.status, ['active', 'invited'])))
    .orderBy(supervisors.id);
  return rows.map((r) => supervisionView(r.s, r.sup, holder.address, now)).filter((v) => v.status !== 'expired');
}

/** The holder withdraws its mailbox from a supervisor's console. */
export async function leaveSupervision(deps: AppDeps, holder: HolderPrincipal, supervisorId: string) {
  const [supervisor] = await deps.db.select().from(supervisors).where(and(eq(supervisors.id, supervisorId), eq(supervisors.partnerId, holder.partnerId)));
  if (!supervisor) throw notFound('supervisor', supervisorId);
  return endSupervision(deps, supervisor, holder.mailboxId);
}

export const consoleSorts = ['address', 'expires_at', 'unread', 'last_activity'] as const;
export type ConsoleSort = (typeof consoleSorts)[number];

export interface ConsoleQuery {
  supervisionStatus?: 'active' | 'invited' | undefined;
  status?: MailboxStatus | undefined;
  plan?: MailboxPlan | undefined;
  expiringBefore?: string | undefined;
  sort?: ConsoleSort | undefined;
  order?: 'asc' | 'desc' | undefined;
  limit: number;
  startingAfter?: string | undefined;
}

const iso = (expression: ReturnType<typeof sql>) => sql<string | null>`to_char((${expression}) at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

/**
 * The console: every supervised mailbox with what a supervisor watches: unread messages in the inbox, space used,
 * expiry, status, plan and last activity (the newest message stored in it or sent from it). Pending invitations
 * (`supervision_status=invited`) show no figures until the holder accepts. Sorting is done over the whole console
 * (it holds a supervisor's mailboxes: hundreds, not millions); the cursor is the last mailbox id of the page.
 */
export async function supervisorConsole(deps: AppDeps, partnerId: string, supervisorId: string, query: ConsoleQuery) {
  const supervisor = await findSupervisor(deps.db, partnerId, supervisorId, true);
  const now = deps.clock.now();
  const supervisionStatus = query.supervisionStatus ?? 'active';
  const unread = sql<number>`(select count(*)::int from ${mailboxMessages} where ${mailboxMessages.mailboxId} = ${mailboxes.id} and ${mailboxMessages.folder} = 'inbox' and not ${mailboxMessages.seen})`;
  const lastActivity = iso(sql`greatest(
    (select max(${mailboxMessages.storedAt}) from ${mailboxMessages} where ${mailboxMessages.mailboxId} = ${mailboxes.id}),
    (select max(${pecTransactions.submittedAt}) from ${pecTransactions} where ${pecTransactions.mailboxId} = ${mailboxes.id}))`);
  const rows = await deps.db
    .select({ supervision: supervisedMailboxes, mailbox: mailboxes, unread, lastActivity })
    .from(supervisedMailboxes)
    .innerJoin(mailboxes, eq(mailboxes.id, supervisedMailboxes.mailboxId))
    .where(and(
      eq(supervisedMailboxes.supervisorId, supervisor.id),
      eq(supervisedMailboxes.status, supervisionStatus),
      query.status ? eq(mailboxes.status, query.status) : undefined,
      query.plan ? eq(mailboxes.plan, query.plan) : undefined,
      query.expiringBefore ? lt(mailboxes.expiresAt, new Date(query.expiringBefore)) : undefined,
    ));
  const items = rows
    .filter((r) => statusAt(r.supervision, now) === supervisionStatus)
    .map(({ supervision, mailbox, unread: count, lastActivity: last }) => {
      const figures = supervision.status === 'active';
      return {
        id: mailbox.id,
        object: 'supervised_mailbox' as const,
        address: mailbox.address,
        customer: mailbox.customerId,
        supervision_status: supervision.status as 'active' | 'invited',
        status: mailbox.status,
        plan: mailbox.plan,
        renewal_mode: mailbox.renewalMode,
        expires_at: mailbox.expiresAt?.toISOString() ?? null,
        unread: figures ? count : null,
        inbox: figures ? { used_bytes: mailbox.usedInboxBytes, total_bytes: mailbox.inboxQuotaBytes + mailbox.extraInboxBytes } : null,
        archive: figures ? { used_bytes: mailbox.usedArchiveBytes, total_bytes: mailbox.archiveQuotaBytes + mailbox.extraArchiveBytes } : null,
        last_activity_at: figures ? last : null,
        added_at: supervision.addedAt.toISOString(),
        accepted_at: supervision.acceptedAt?.toISOString() ?? null,
      };
    });
  const sort = query.sort ?? 'address';
  const direction = query.order === 'desc' ? -1 : 1;
  const key = (item: (typeof items)[number]): string | number | null =>
    sort === 'address' ? item.address : sort === 'expires_at' ? item.expires_at : sort === 'unread' ? item.unread : item.last_activity_at;
  items.sort((a, b) => {
    const [x, y] = [key(a), key(b)];
    // Missing values (no expiry, no activity yet) go last in either order; ties by address, then id.
    if (x !== y) {
      if (x === null) return 1;
      if (y === null) return -1;
      return (x < y ? -1 : 1) * direction;
    }
    return a.address < b.address ? -1 : a.address > b.address ? 1 : a.id < b.id ? -1 : 1;
  });
  const start = query.startingAfter ? items.findIndex((item) => item.id === query.startingAfter) + 1 : 0;
  if (query.startingAfter && start === 0) {
    throw invalid([{ pointer: '/starting_after', location: 'query', code: 'invalid_cursor', detail: 'is not a mailbox of this console page' }]);
  }
  return items.slice(start, start + query.limit + 1);
}

export interface BulkInput {
  action: 'renew' | 'set_renewal_mode';
  mailboxes: string[];
  years?: number | undefined;
  renewal_mode?: RenewalMode | undefined;
}

type BulkOutcome =
  | { mailbox: string; outcome: 'succeeded'; status: MailboxStatus; expires_at: string | null; renewal_mode: RenewalMode }
  | { mailbox: string; outcome: 'failed'; error: { status: number; code: string; detail: string } };

/**
 * Runs the action on each mailbox in turn, each in its own transaction through the ordinary mailbox service (a renewal
 * is charged to credit as usual): one failure (e.g. 402 for credit that ran out) does not undo those before it nor
 * stop those after it. Every mailbox gets its outcome.
 */
export async function bulkAction(deps: AppDeps, partnerId: string, supervisorId: string, input: BulkInput, requestId: string | null) {
  if (input.action === 'renew' && input.years === undefined) throw invalid([{ pointer: '/years', location: 'body', code: 'required', detail: "is required for the 'renew' action" }]);
  if (input.action === 'set_renewal_mode' && input.renewal_mode === undefined) {
    throw invalid([{ pointer: '/renewal_mode', location: 'body', code: 'required', detail: "is required for the 'set_renewal_mode' action" }]);
  }
  const supervisor = await findSupervisor(deps.db, partnerId, supervisorId, true);
  const targets = [...new Set(input.mailboxes)];
  const supervised = new Set((await deps.db.select({ id: supervisedMailboxes.mailboxId }).from(supervisedMailboxes)
    .where(and(eq(supervisedMailboxes.supervisorId, supervisor.id), eq(supervisedMailboxes.status, 'active'), inArray(supervisedMailboxes.mailboxId, targets)))).map((r) => r.id));
  const results: BulkOutcome[] = [];
  for (const mailboxId of targets) {
    if (!supervised.has(mailboxId)) {
      results.push({ mailbox: mailboxId, outcome: 'failed', error: { status: 404, code: 'resource_missing', detail: `No mailbox '${mailboxId}' in this supervisor's console.` } });
      continue;
    }
    try {
      const mailbox: MailboxView = input.action === 'renew'
        ? await renewMailbox(deps, partnerId, mailboxId, input.years!, requestId)
        : await setRenewalMode(deps, partnerId, mailboxId, input.renewal_mode!);
      results.push({ mailbox: mailboxId, outcome: 'succeeded', status: mailbox.status, expires_at: mailbox.expires_at, renewal_mode: mailbox.renewal_mode });
    } catch (error) {
      if (!(error instanceof ProblemError)) throw error;
      results.push({ mailbox: mailboxId, outcome: 'failed', error: { status: error.status, code: error.code, detail: error.message } });
    }
  }
  const succeeded = results.filter((r) => r.outcome === 'succeeded').length;
  return { object: 'supervisor_bulk_result' as const, action: input.action, succeeded, failed: results.length - succeeded, results };
}
