import { inWorldOf } from '../../sandbox/world.ts';
import { inTaskScope, type TaskScope } from '../../sandbox/task-scope.ts';
import { and, desc, eq, gte, inArray, isNotNull, lt, lte, or, sql } from 'drizzle-orm';
import {
  customers, domains, identityDocuments, mailboxes, mailboxNotices, type Db, type DbOrTx, type MailboxPlan,
  type MailboxStatus, type MailboxNoticeKind, type RenewalMode,
} from '@pec-partner/db';
import type { Clock } from '../../clock.ts';
import type { AppConfig } from '../../config.ts';
import { isUniqueViolation } from '../../db-errors.ts';
import { conflict, invalid, notFound, ProblemError } from '../../http/problem.ts';
import type { EventType } from '../../events/catalogue.ts';
import { changedAttributes, recordEvent } from '../../events/record.ts';
import { newId } from '../../ids.ts';
import { DAY_MS } from '../../jobs/scheduler.ts';
import { generatePassword, hashPassword } from '../../passwords.ts';
import { assertTransition, type Transitions } from '../../state-machine.ts';
import { checkPlanChange, endAddonsOfMailbox, renewAddons } from '../addons/service.ts';
import { boundRefund, renewalDescription } from '../credit/pro-rata.ts';
import { charge, formatEuro, paidHistory, refund } from '../credit/service.ts';
import { pricesFor } from '../credit/price-lists.ts';
import { revokeDelegationsOfMailbox } from '../delegations/service.ts';
import { analyzeDomainName, isValidLocalPart } from '../domains/names.ts';
import { validatePassword } from './password-policy.ts';
import { mailboxView, type MailboxView } from './view.ts';

export type { MailboxView };

type Row = typeof mailboxes.$inferSelect;

export interface MailboxDeps {
  db: Db;
  clock: Clock;
  config: AppConfig;
}

export const GB = 1024 ** 3;

type MailboxAction =
  | 'activate' | 'suspend' | 'resume' | 'cancel' | 'schedule_cancellation' | 'undo_cancellation' | 'renew'
  | 'change_plan' | 'change_renewal_mode' | 'reset_password' | 'expire';

const transitions: Transitions<MailboxStatus, MailboxAction> = {
  activate: ['pending_identification'],
  suspend: ['active'],
  resume: ['suspended'],
  cancel: ['pending_identification', 'active', 'suspended', 'expired'],
  schedule_cancellation: ['active', 'suspended'],
  undo_cancellation: ['active', 'suspended'],
  renew: ['active', 'suspended', 'expired'],
  change_plan: ['active', 'suspended'],
  change_renewal_mode: ['pending_identification', 'active', 'suspended'],
  reset_password: ['pending_identification', 'active', 'suspended', 'expired'],
  expire: ['active', 'suspended'],
};

const planNames: Record<MailboxPlan, string> = { standard: 'Standard', pro: 'Pro', premium: 'Premium' };
const years = (n: number) => `${n} year${n === 1 ? '' : 's'}`;

function addYears(date: Date, count: number): Date {
  const next = new Date(date);
  next.setUTCFullYear(next.getUTCFullYear() + count);
  return next;
}

type MailboxEventType = Extract<EventType, `mailbox.${string}`>;

/** Records the events of one change of a mailbox, from the row before it to the row stored now. */
async function recordChange(tx: DbOrTx, clock: Clock, types: MailboxEventType[], before: Row, after: Row): Promise<MailboxView> {
  const object = mailboxView(after);
  const previousAttributes = changedAttributes(mailboxView(before), object);
  for (const type of types) await recordEvent(tx, clock, { partnerId: after.partnerId, type, object, previousAttributes });
  return object;
}

/** A renewal is also a plan change when a change scheduled for it took effect. */
const renewalEvents = (before: Row, after: Row): MailboxEventType[] =>
  before.plan === after.plan ? ['mailbox.renewed'] : ['mailbox.renewed', 'mailbox.plan_changed'];

/** Applies a change to each locked row, one event per mailbox (activations, suspensions and resumptions in bulk). */
async function changeEach(tx: DbOrTx, clock: Clock, type: MailboxEventType, rows: Row[], changes: (row: Row) => Partial<Row>): Promise<MailboxView[]> {
  const views: MailboxView[] = [];
  for (const row of rows) {
    const [updated] = await tx.update(mailboxes).set(changes(row)).where(eq(mailboxes.id, row.id)).returning();
    views.push(await recordChange(tx, clock, [type], row, updated!));
  }
  return views;
}

const fieldError = (pointer: string, code: string, detail: string) => invalid([{ pointer, location: 'body', code, detail }], `${pointer.slice(1)} ${detail}.`);

interface ResolvedAddress {
  localPart: string;
  domainName: string;
  domainId: string | null;
  address: string;
}

/** Why no new mailbox may be created on this custom domain, or null when it may. */
function domainUnusable(domain: { name: string; status: string; cancelAt: Date | null }): { code: string; detail: string } | null {
  if (domain.status !== 'certified') return { code: 'domain_not_certified', detail: `domain '${domain.name}' is ${domain.status}, not certified` };
  if (domain.cancelAt) return { code: 'domain_cancellation_scheduled', detail: `domain '${domain.name}' is scheduled for cancellation at ${domain.cancelAt.toISOString()}` };
  return null;
}

/** Where a new address could live: a provider domain, or a certified domain of this partner. */
async function resolveAddress(deps: MailboxDeps, partnerId: string, localInput: string, domainInput: string): Promise<ResolvedAddress | { problem: string; detail: string; pointer: string }> {
  const localPart = localInput.trim().toLowerCase();
  if (!isValidLocalPart(localPart)) {
    return { problem: 'invalid_local_part', pointer: '/local_part', detail: 'must be 1 to 64 lower-case letters, digits, dots, hyphens or underscores, starting and ending with a letter or digit' };
  }
  const domainName = domainInput.trim().toLowerCase().replace(/\.$/, '');
  if (deps.config.providerDomains.includes(domainName)) {
    return { localPart, domainName, domainId: null, address: `${localPart}@${domainName}` };
  }
  const analyzed = analyzeDomainName(domainName, []);
  const ascii = analyzed.ok ? analyzed.name.ascii : domainName;
  const [domain] = await deps.db
    .select({ id: domains.id, name: domains.name, status: domains.status, cancelAt: domains.cancelAt })
    .from(domains)
    .where(and(eq(domains.partnerId, partnerId), eq(domains.name, ascii)))
    .orderBy(desc(domains.id))
    .limit(1);
  if (!domain) return { problem: 'unknown_domain', pointer: '/domain', detail: `'${domainInput}' is neither a provider domain nor a domain of yours` };
  const unusable = domainUnusable(domain);
  if (unusable) return { problem: unusable.code, pointer: '/domain', detail: unusable.detail };
  return { localPart, domainName: ascii, domainId: domain.id, address: `${localPart}@${ascii}` };
}

export async function checkAvailability(deps: MailboxDeps, partnerId: string, address: string) {
  const at = address.lastIndexOf('@');
  const resolved = at > 0 ? await resolveAddress(deps, partnerId, address.slice(0, at), address.slice(at + 1)) : { problem: 'invalid_address', detail: 'must be local-part@domain', pointer: '/address' };
  if ('problem' in resolved) return { object: 'mailbox_availability' as const, address: address.trim().toLowerCase(), available: false, reason: resolved.problem, detail: resolved.detail };
  const [taken] = await deps.db.select({ id: mailboxes.id }).from(mailboxes).where(and(eq(mailboxes.address, resolved.address), inWorldOf(mailboxes.livemode, partnerId)));
  return taken
    ? { object: 'mailbox_availability' as const, address: resolved.address, available: false, reason: 'taken', detail: `${resolved.address} already exists` }
    : { object: 'mailbox_availability' as const, address: resolved.address, available: true, reason: null, detail: null };
}

/** True when the customer has an identity document that has not expired by `today`. */
async function hasValidIdentity(db: DbOrTx, customerId: string, now: Date): Promise<boolean> {
  const today = now.toISOString().slice(0, 10);
  const [doc] = await db
    .select({ id: identityDocuments.id })
    .from(identityDocuments)
    .where(and(eq(identityDocuments.customerId, customerId), gte(identityDocuments.expiresOn, today)))
    .limit(1);
  return Boolean(doc);
}

export interface CreateMailboxInput {
  local_part: string;
  domain: string;
  customer: string;
  plan: MailboxPlan;
  term_years?: number | undefined;
  renewal_mode?: RenewalMode | undefined;
  password?: string | undefined;
}

/**
 * Creates the mailbox and charges its whole term in one transaction. It is active at once when the customer
 * is identified, otherwise pending_identification until a valid identity document arrives; the term starts
 * at activation.
 */
export async function createMailbox(deps: MailboxDeps, partnerId: string, input: CreateMailboxInput, requestId: string | null) {
  const { db, clock } = deps;
  const termYears = input.term_years ?? 1;
  const [customer] = await db.select({ id: customers.id }).from(customers).where(and(eq(customers.id, input.customer), eq(customers.partnerId, partnerId)));
  if (!customer) throw fieldError('/customer', 'resource_missing', `no customer '${input.customer}'`);
  const resolved = await resolveAddress(deps, partnerId, input.local_part, input.domain);
  if ('problem' in resolved) throw fieldError(resolved.pointer, resolved.problem, resolved.detail);
  if (input.password !== undefined) validatePassword(input.password);
  const password = input.password ?? generatePassword();
  const passwordHash = await hashPassword(password);

  try {
    const row = await db.transaction(async (tx) => {
      const now = clock.now();
      // The partner's price list in force now: its plan's quotas and price.
      const plan = (await pricesFor(tx, partnerId, now)).prices.mailbox_plans[input.plan];
      if (resolved.domainId) {
        // Held until commit, so a cancellation or de-certification of the domain cannot slip in between.
        const [domain] = await tx.select({ id: domains.id, name: domains.name, status: domains.status, cancelAt: domains.cancelAt }).from(domains).where(eq(domains.id, resolved.domainId)).for('share');
        const unusable = domainUnusable(domain!);
        if (unusable) throw fieldError('/domain', unusable.code, unusable.detail);
      }
      const identified = await hasValidIdentity(tx, input.customer, now);
      const id = newId('mbx', now);
      const [inserted] = await tx
        .insert(mailboxes)
        .values({
          id,
          partnerId,
          customerId: input.customer,
          domainId: resolved.domainId,
          domainName: resolved.domainName,
          localPart: resolved.localPart,
          address: resolved.address,
          plan: input.plan,
          termYears,
          renewalMode: input.renewal_mode ?? 'auto',
          status: identified ? 'active' : 'pending_identification',
          passwordHash,
          passwordChangedAt: now,
          inboxQuotaBytes: plan.inbox_gb * GB,
          archiveQuotaBytes: plan.archive_gb * GB,
          includedDelegates: plan.included_delegates,
          requestedAt: now,
          activatedAt: identified ? now : null,
          expiresAt: identified ? addYears(now, termYears) : null,
          updatedAt: now,
        })
        .returning();
      // Never the password: events are the mailbox as GET shows it.
      await recordEvent(tx, clock, { partnerId, type: 'mailbox.created', object: mailboxView(inserted!) });
      await charge(tx, clock, {
        partnerId,
        amount: plan.unit_amount * termYears,
        description: `PEC mailbox ${planNames[input.plan]}, ${years(termYears)}: ${resolved.address}`,
        item: { type: 'mailbox', id },
        requestId,
      });
      return inserted!;
    });
    return { ...mailboxView(row), ...(input.password === undefined ? { password } : {}) };
  } catch (error) {
    if (isUniqueViolation(error, 'mailboxes_address_key')) throw conflict('address_taken', `${resolved.address} already exists.`);
    throw error;
  }
}

async function findRow(db: DbOrTx, partnerId: string, id: string, forUpdate = false): Promise<Row> {
  const query = db.select().from(mailboxes).where(and(eq(mailboxes.id, id), eq(mailboxes.partnerId, partnerId)));
  const [row] = forUpdate ? await query.for('update') : await query;
  if (!row) throw notFound('mailbox', id);
  return row;
}

export async function getMailbox(deps: MailboxDeps, partnerId: string, id: string): Promise<MailboxView> {
  return mailboxView(await findRow(deps.db, partnerId, id));
}

export interface MailboxQuery {
  limit: number;
  startingAfter?: string | undefined;
  customer?: string | undefined;
  domain?: string | undefined;
  plan?: MailboxPlan | undefined;
  status?: MailboxStatus | undefined;
  expiringBefore?: string | undefined;
}

export async function listMailboxes(deps: MailboxDeps, partnerId: string, query: MailboxQuery): Promise<MailboxView[]> {
  const rows = await deps.db
    .select()
    .from(mailboxes)
    .where(
      and(
        eq(mailboxes.partnerId, partnerId),
        query.startingAfter ? lt(mailboxes.id, query.startingAfter) : undefined,
        query.customer ? eq(mailboxes.customerId, query.customer) : undefined,
        query.domain ? eq(mailboxes.domainName, query.domain.toLowerCase()) : undefined,
        query.plan ? eq(mailboxes.plan, query.plan) : undefined,
        query.status ? eq(mailboxes.status, query.status) : undefined,
        query.expiringBefore ? lt(mailboxes.expiresAt, new Date(query.expiringBefore)) : undefined,
      ),
    )
    .orderBy(desc(mailboxes.id))
    .limit(query.limit + 1);
  return rows.map(mailboxView);
}

/**
 * Locks the mailbox, checks the transition, applies the change and records its events; `work` may charge in the
 * same transaction.
 */
async function mutate(
  deps: MailboxDeps,
  partnerId: string,
  id: string,
  action: MailboxAction,
  events: MailboxEventType | ((before: Row, after: Row) => MailboxEventType[]),
  work: (row: Row, now: Date, tx: DbOrTx) => Promise<Partial<Row>> | Partial<Row>,
): Promise<MailboxView> {
  return deps.db.transaction(async (tx) => {
    const row = await findRow(tx, partnerId, id, true);
    assertTransition(transitions, 'mailbox', id, row.status, action);
    const now = deps.clock.now();
    const changes = await work(row, now, tx);
    const [updated] = await tx.update(mailboxes).set({ ...changes, updatedAt: now }).where(eq(mailboxes.id, id)).returning();
    return recordChange(tx, deps.clock, typeof events === 'string' ? [events] : events(row, updated!), row, updated!);
  });
}

export const suspendMailbox = (deps: MailboxDeps, partnerId: string, id: string) =>
  mutate(deps, partnerId, id, 'suspend', 'mailbox.suspended', (_row, now) => ({ status: 'suspended', suspensionReason: 'requested', suspendedAt: now }));

export const resumeMailbox = (deps: MailboxDeps, partnerId: string, id: string) =>
  mutate(deps, partnerId, id, 'resume', 'mailbox.resumed', async (row, now, tx) => {
    if (row.expiresAt && row.expiresAt <= now) {
      throw conflict('mailbox_term_ended', `Mailbox '${id}' reached the end of its term on ${row.expiresAt.toISOString()}; renew it to resume.`);
    }
    if (row.domainId) {
      const [domain] = await tx.select({ status: domains.status }).from(domains).where(eq(domains.id, row.domainId));
      if (domain && domain.status !== 'certified' && domain.status !== 'degraded') {
        throw conflict('domain_not_certified', `The domain of mailbox '${id}' is ${domain.status}; the mailbox can resume once it is certified again.`);
      }
    }
    return { status: 'active', suspensionReason: null, suspendedAt: null };
  });

export type CancelWhen = 'now' | 'term_end' | 'date';

/**
 * A mailbox that ends (cancelled, or expired after its grace period) takes its add-ons and delegations with it, in
 * the transaction that ends it: collaborators sign in no more and nothing renews. Returns the mailbox's quotas
 * without the ended add-ons' space, for the mailbox's own change (and event) to carry. Nothing is refunded here:
 * the unused part of an active term is not given back (see cancelMailbox), and a mailbox never activated has
 * neither add-ons nor delegations, which are bought and granted only while it is active.
 */
async function endDependents(tx: DbOrTx, clock: Clock, row: Row, now: Date): Promise<Partial<Row>> {
  await revokeDelegationsOfMailbox(tx, clock, row, now);
  return endAddonsOfMailbox(tx, clock, row, now);
}

/**
 * `now` cancels at once (a mailbox never activated is refunded in full; an active term is not pro-rated back);
 * `term_end` and `date` schedule it, and the daily job carries it out. Either way its add-ons and delegations end.
 */
export async function cancelMailbox(deps: MailboxDeps, partnerId: string, id: string, when: CancelWhen, date: string | undefined, requestId: string | null) {
  if (when === 'date' && !date) throw fieldError('/date', 'required', "is required when 'when' is 'date'");
  if (when !== 'date' && date) throw fieldError('/date', 'not_allowed', "is only for 'when': 'date'");
  if (when === 'now') {
    return mutate(deps, partnerId, id, 'cancel', 'mailbox.cancelled', async (row, now, tx) => {
      if (row.status === 'pending_identification') {
        // Everything it was charged, as charged (the price list may have changed since).
        const paid = (await paidHistory(tx, partnerId, row)).netPaid({ type: 'mailbox', id });
        if (paid > 0) await refund(tx, deps.clock, { partnerId, amount: paid, description: `Refund: mailbox ${row.address} cancelled before activation`, item: { type: 'mailbox', id }, requestId, at: now });
      }
      return { status: 'cancelled', cancelledAt: now, cancelAt: null, suspensionReason: null, ...(await endDependents(tx, deps.clock, row, now)) };
    });
  }
  return mutate(deps, partnerId, id, 'schedule_cancellation', 'mailbox.updated', (row, now) => {
    if (row.cancelAt) throw conflict('cancellation_already_scheduled', `Mailbox '${id}' is already scheduled for cancellation at ${row.cancelAt.toISOString()}.`);
    const cancelAt = when === 'term_end' ? row.expiresAt! : new Date(date!);
    if (cancelAt <= now) throw fieldError('/date', 'out_of_range', 'must be in the future');
    if (row.expiresAt && cancelAt > row.expiresAt) throw fieldError('/date', 'out_of_range', `must not be after the end of the term (${row.expiresAt.toISOString()})`);
    return { cancelAt };
  });
}

export const undoMailboxCancellation = (deps: MailboxDeps, partnerId: string, id: string) =>
  mutate(deps, partnerId, id, 'undo_cancellation', 'mailbox.updated', (row) => {
    if (!row.cancelAt) throw conflict('no_cancellation_scheduled', `Mailbox '${id}' has no scheduled cancellation to undo.`);
    return { cancelAt: null };
  });

/** Charges the renewal and returns the new term; the scheduled plan change, if any, takes effect. */
async function renewTerm(deps: MailboxDeps, tx: DbOrTx, row: Row, termYears: number, now: Date, requestId: string | null): Promise<Partial<Row>> {
  const plan = row.planAtRenewal ?? row.plan;
  // The prices in force at the renewal (not those of the first purchase): the partner's list as of `now`.
  const prices = (await pricesFor(tx, row.partnerId, now)).prices;
  const spec = prices.mailbox_plans[plan];
  await charge(tx, deps.clock, {
    partnerId: row.partnerId,
    amount: spec.unit_amount * termYears,
    // The description carries the years and the entry the renewal's instant: the paid period is rebuilt from them.
    description: renewalDescription(`PEC mailbox ${planNames[plan]}`, termYears, row.address),
    item: { type: 'mailbox', id: row.id },
    requestId,
    at: now,
  });
  const quotas = await renewAddons(tx, deps.clock, prices, row, termYears, requestId);
  // Renewing late does not bill the time the mailbox could not be used: the new term starts now.
  const from = row.expiresAt && row.expiresAt > now ? row.expiresAt : now;
  return {
    ...quotas,
    plan,
    planAtRenewal: null,
    inboxQuotaBytes: spec.inbox_gb * GB,
    archiveQuotaBytes: spec.archive_gb * GB,
    includedDelegates: spec.included_delegates,
    expiresAt: addYears(from, termYears),
    status: 'active',
    suspensionReason: null,
    suspendedAt: null,
    expiredAt: null,
  };
}

export const renewMailbox = (deps: MailboxDeps, partnerId: string, id: string, termYears: number, requestId: string | null) =>
  mutate(deps, partnerId, id, 'renew', renewalEvents, async (row, now, tx) => {
    if (row.cancelAt) throw conflict('cancellation_scheduled', `Mailbox '${id}' is scheduled for cancellation; undo it before renewing.`);
    if (row.status === 'suspended' && row.suspensionReason !== 'insufficient_credit') {
      throw conflict('mailbox_suspended', `Mailbox '${id}' is suspended (${row.suspensionReason}); resume it first.`);
    }
    return renewTerm(deps, tx, row, termYears, now, requestId);
  });

/**
 * `now`: the new plan applies at once; the new plan's price for the rest of the term (each paid period pro rata by
 * its own length) is set against what was paid for that unused part: the difference is charged (upgrade) or
 * refunded to credit (downgrade, never more than was paid for the unused part); `renewal`: recorded and applied at
 * the next renewal.
 * Either way a plan that would leave the mailbox over its limits is refused first, charging and reporting nothing
 * (see checkPlanChange).
 */
export const changeMailboxPlan = (deps: MailboxDeps, partnerId: string, id: string, plan: MailboxPlan, when: 'now' | 'renewal', requestId: string | null) =>
  mutate(deps, partnerId, id, 'change_plan', when === 'now' ? 'mailbox.plan_changed' : 'mailbox.updated', async (row, now, tx) => {
    if (when === 'now' && plan === row.plan) throw conflict('plan_unchanged', `Mailbox '${id}' is already on the ${plan} plan.`);
    const prices = (await pricesFor(tx, partnerId, now)).prices;
    await checkPlanChange(tx, prices, row, plan, when, now);
    if (when === 'renewal') return { planAtRenewal: plan === row.plan ? null : plan };
    const spec = prices.mailbox_plans[plan];
    const history = await paidHistory(tx, partnerId, row);
    const item = { type: 'mailbox', id };
    const difference = Math.round(spec.unit_amount * history.yearsLeft(now) - history.unusedPaid(item, now));
    const amount = difference > 0 ? difference : boundRefund(-difference, history.netPaid(item));
    const description = `Plan change ${planNames[row.plan]} → ${planNames[plan]} for the rest of the term (${formatEuro(amount)}): ${row.address}`;
    if (difference > 0) await charge(tx, deps.clock, { partnerId, amount, description, item, requestId, at: now });
    if (difference < 0 && amount > 0) await refund(tx, deps.clock, { partnerId, amount, description, item, requestId, at: now });
    return {
      plan,
      planAtRenewal: null,
      inboxQuotaBytes: spec.inbox_gb * GB,
      archiveQuotaBytes: spec.archive_gb * GB,
      includedDelegates: spec.included_delegates,
    };
  });

export const setRenewalMode = (deps: MailboxDeps, partnerId: string, id: string, mode: RenewalMode) =>
  mutate(deps, partnerId, id, 'change_renewal_mode', 'mailbox.updated', () => ({ renewalMode: mode }));

export async function resetPassword(deps: MailboxDeps, partnerId: string, id: string, chosen: string | undefined) {
  if (chosen !== undefined) validatePassword(chosen);
  const password = chosen ?? generatePassword();
  const passwordHash = await hashPassword(password);
  const mailbox = await mutate(deps, partnerId, id, 'reset_password', 'mailbox.updated', (_row, now) => ({ passwordHash, passwordChangedAt: now }));
  return { object: 'mailbox_password' as const, mailbox: id, changed_at: mailbox.password_changed_at, ...(chosen === undefined ? { password } : {}) };
}

/** Called when a customer's identity document arrives: its waiting mailboxes start their term now. */
export async function activatePendingMailboxes(tx: DbOrTx, clock: Clock, partnerId: string, customerId: string, now: Date): Promise<number> {
  const pending = await tx
    .select()
    .from(mailboxes)
    .where(and(eq(mailboxes.partnerId, partnerId), eq(mailboxes.customerId, customerId), eq(mailboxes.status, 'pending_identification')))
    .orderBy(mailboxes.id)
    .for('update');
  const activated = await changeEach(tx, clock, 'mailbox.activated', pending, (row) => ({
    status: 'active', activatedAt: now, expiresAt: addYears(now, row.termYears), updatedAt: now,
  }));
  return activated.length;
}

/** A de-certified domain's active mailboxes are suspended with it. */
export async function suspendMailboxesOfDomain(tx: DbOrTx, clock: Clock, domainId: string, now: Date): Promise<void> {
  const active = await tx.select().from(mailboxes).where(and(eq(mailboxes.domainId, domainId), eq(mailboxes.status, 'active'))).orderBy(mailboxes.id).for('update');
  await changeEach(tx, clock, 'mailbox.suspended', active, () => ({ status: 'suspended', suspensionReason: 'domain_decertified', suspendedAt: now, updatedAt: now }));
}

/** Mailboxes suspended only because their domain lost its certification work again once it is certified. */
export async function resumeMailboxesOfDomain(tx: DbOrTx, clock: Clock, domainId: string, now: Date): Promise<void> {
  const suspended = await tx
    .select()
    .from(mailboxes)
    .where(and(eq(mailboxes.domainId, domainId), eq(mailboxes.status, 'suspended'), eq(mailboxes.suspensionReason, 'domain_decertified')))
    .orderBy(mailboxes.id)
    .for('update');
  await changeEach(tx, clock, 'mailbox.resumed', suspended, () => ({ status: 'active', suspensionReason: null, suspendedAt: null, updatedAt: now }));
}

export const NOTICES: [MailboxNoticeKind, number][] = [['expires_in_30_days', 30], ['expires_in_7_days', 7], ['expires_in_1_day', 1]];

/**
 * The daily job: due scheduled cancellations, automatic renewals (a mailbox whose renewal cannot be paid is
 * suspended and retried daily), expiry after the grace period, and the 30/7/1-day expiry notices. Each mailbox
 * is handled in its own transaction under a row lock, and every step is guarded by the state it changes, so
 * a repeated or concurrent run changes nothing twice.
 */
export async function runMailboxMaintenance(deps: MailboxDeps, now: Date, scope: TaskScope = {}): Promise<void> {
  const { db, config } = deps;
  const graceMs = config.mailboxGraceDays * DAY_MS;
  const candidates = await db
    .select({ id: mailboxes.id })
    .from(mailboxes)
    .where(
      and(
        inArray(mailboxes.status, ['active', 'suspended']),
        inTaskScope(mailboxes.partnerId, scope),
        or(lte(mailboxes.cancelAt, now), and(isNotNull(mailboxes.expiresAt), lte(mailboxes.expiresAt, now))),
      ),
    );
  for (const { id } of candidates) {
    await db.transaction(async (tx) => {
      const [row] = await tx.select().from(mailboxes).where(eq(mailboxes.id, id)).for('update', { skipLocked: true });
      if (!row || (row.status !== 'active' && row.status !== 'suspended')) return;
      const apply = async (on: DbOrTx, events: MailboxEventType[] | ((before: Row, after: Row) => MailboxEventType[]), changes: Partial<Row>) => {
        const [updated] = await on.update(mailboxes).set({ ...changes, updatedAt: now }).where(eq(mailboxes.id, id)).returning();
        await recordChange(on, deps.clock, Array.isArray(events) ? events : events(row, updated!), row, updated!);
      };
      if (row.cancelAt && row.cancelAt <= now) {
        await apply(tx, ['mailbox.cancelled'], { status: 'cancelled', cancelledAt: now, cancelAt: null, suspensionReason: null, ...(await endDependents(tx, deps.clock, row, now)) });
        return;
      }
      if (!row.expiresAt || row.expiresAt > now) return;
      const pastGrace = now.getTime() >= row.expiresAt.getTime() + graceMs;
      const renewable = row.renewalMode === 'auto' && (row.status === 'active' || row.suspensionReason === 'insufficient_credit');
      if (renewable) {
        try {
          // A savepoint: a renewal short of credit leaves no charge and no event behind.
          await tx.transaction(async (inner) => apply(inner, renewalEvents, await renewTerm(deps, inner, row, row.termYears, now, null)));
          return;
        } catch (error) {
          if (!(error instanceof ProblemError && error.code === 'insufficient_credit')) throw error;
        }
        if (!pastGrace && row.status === 'active') {
          await apply(tx, ['mailbox.suspended'], { status: 'suspended', suspensionReason: 'insufficient_credit', suspendedAt: now });
          return;
        }
      }
      if (pastGrace) {
        await apply(tx, ['mailbox.expired'], { status: 'expired', expiredAt: now, suspensionReason: null, ...(await endDependents(tx, deps.clock, row, now)) });
      }
    });
  }

  // Each notice recorded now (once per mailbox, kind and term) is announced by a `mailbox.expiring` event.
  await db.transaction(async (tx) => {
    for (const [kind, days] of NOTICES) {
      const recorded = await tx.execute<{ mailbox_id: string }>(sql`
        insert into ${mailboxNotices} (id, partner_id, mailbox_id, kind, expires_at, created_at)
        select 'ntc_' || substr(md5(${mailboxes.id} || ${kind} || ${mailboxes.expiresAt}::text), 1, 26), ${mailboxes.partnerId}, ${mailboxes.id}, ${kind}, ${mailboxes.expiresAt}, ${now.toISOString()}::timestamptz
        from ${mailboxes}
        where ${mailboxes.status} = 'active' and ${mailboxes.cancelAt} is null and ${inTaskScope(mailboxes.partnerId, scope)}
          and ${mailboxes.expiresAt} > ${now.toISOString()}::timestamptz
          and ${mailboxes.expiresAt} <= ${new Date(now.getTime() + days * DAY_MS).toISOString()}::timestamptz
        on conflict (mailbox_id, kind, expires_at) do nothing
        returning mailbox_id`);
      const ids = [...recorded].map((notice) => notice.mailbox_id);
      if (ids.length === 0) continue;
      const rows = await tx.select().from(mailboxes).where(inArray(mailboxes.id, ids)).orderBy(mailboxes.id);
      for (const row of rows) await recordEvent(tx, deps.clock, { partnerId: row.partnerId, type: 'mailbox.expiring', object: mailboxView(row) });
    }
  });
}

/**
 * The mailbox's expiry notices in the order they were recorded (oldest first, as a history reads), `limit + 1`
 * of them after the cursor notice. A cursor that is not a notice of this mailbox starts nowhere: an empty page.
 */
export async function listNotices(deps: MailboxDeps, partnerId: string, mailboxId: string, page: { limit: number; startingAfter?: string | undefined }) {
  await findRow(deps.db, partnerId, mailboxId);
  const after = page.startingAfter
    ? sql`(${mailboxNotices.createdAt}, ${mailboxNotices.kind}, ${mailboxNotices.id}) > (select created_at, kind, id from ${mailboxNotices} where id = ${page.startingAfter} and mailbox_id = ${mailboxId})`
    : undefined;
  const rows = await deps.db
    .select()
    .from(mailboxNotices)
    .where(and(eq(mailboxNotices.partnerId, partnerId), eq(mailboxNotices.mailboxId, mailboxId), after))
    .orderBy(mailboxNotices.createdAt, mailboxNotices.kind, mailboxNotices.id)
    .limit(page.limit + 1);
  return rows.map((row) => ({
    id: row.id,
    object: 'mailbox_notice' as const,
    mailbox: row.mailboxId,
    kind: row.kind,
    expires_at: row.expiresAt.toISOString(),
    created_at: row.createdAt.toISOString(),
  }));
}
