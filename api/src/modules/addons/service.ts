import { and, desc, eq, gt, inArray, lt, or, sql } from 'drizzle-orm';
import { delegations, mailboxAddons, mailboxes, type AddonKind, type DbOrTx, type MailboxPlan } from '@pec-partner/db';
import type { Clock } from '../../clock.ts';
import { changedAttributes, recordEvent } from '../../events/record.ts';
import { conflict, invalid, notFound } from '../../http/problem.ts';
import { newId } from '../../ids.ts';
import { charge, formatEuro, paidHistory, refund } from '../credit/service.ts';
import { renewalDescription } from '../credit/pro-rata.ts';
import type { PriceListConfig } from '../credit/prices.ts';
import { pricesFor } from '../credit/price-lists.ts';
import { mailboxView } from '../mailboxes/view.ts';

export interface AddonDeps {
  db: import('@pec-partner/db').Db;
  clock: Clock;
}

type Row = typeof mailboxAddons.$inferSelect;
type MailboxRow = typeof mailboxes.$inferSelect;

export const GB = 1024 ** 3;

export const addonNames: Record<AddonKind, string> = {
  extra_inbox_gb: 'Extra inbox space',
  extra_archive_gb: 'Extra archive space',
  delegation_seat: 'Delegation seats (Multiutenza)',
  supervisor: 'Supervisor console',
  branding: 'Small Business branding',
  newsletter: 'Newsletter',
};

/** Add-ons sold once per mailbox (a second purchase of these is a conflict); space and seats add up. */
const SINGLE: AddonKind[] = ['supervisor', 'branding', 'newsletter'];

export function addonView(row: Row, mailbox: Pick<MailboxRow, 'expiresAt'>) {
  return {
    id: row.id,
    object: 'mailbox_addon' as const,
    mailbox: row.mailboxId,
    kind: row.kind,
    quantity: row.quantity,
    status: row.status,
    renews: row.status !== 'cancelled' && !row.cancelAtRenewal,
    starts_at: row.startsAt?.toISOString() ?? null,
    /** Add-ons end with the mailbox term and renew with it. */
    current_period_end: row.status === 'active' ? (mailbox.expiresAt?.toISOString() ?? null) : null,
    cancelled_at: row.cancelledAt?.toISOString() ?? null,
    created_at: row.createdAt.toISOString(),
  };
}
export type AddonView = ReturnType<typeof addonView>;

/**
 * When a mailbox term renewed now for `termYears` ends: a late renewal does not bill the time the mailbox could
 * not be used, so the new term starts now; otherwise it follows the old one. The add-ons' new period ends then.
 */
export function termEndAfterRenewal(expiresAt: Date | null, termYears: number, now: Date): Date {
  const end = new Date(expiresAt && expiresAt > now ? expiresAt : now);
  end.setUTCFullYear(end.getUTCFullYear() + termYears);
  return end;
}

async function lockMailbox(tx: DbOrTx, partnerId: string, mailboxId: string): Promise<MailboxRow> {
  const [row] = await tx.select().from(mailboxes).where(and(eq(mailboxes.id, mailboxId), eq(mailboxes.partnerId, partnerId))).for('update');
  if (!row) throw notFound('mailbox', mailboxId);
  return row;
}

const GB_KINDS: Partial<Record<AddonKind, 'inbox' | 'archive'>> = { extra_inbox_gb: 'inbox', extra_archive_gb: 'archive' };

type Quotas = Pick<MailboxRow, 'extraInboxBytes' | 'extraArchiveBytes'>;

/** The purchased space the active add-ons give: the quotas the engine enforces. */
async function quotasFromAddons(tx: DbOrTx, mailboxId: string): Promise<Quotas> {
  const rows = await tx
    .select({ kind: mailboxAddons.kind, total: sql<number>`sum(${mailboxAddons.quantity})::int` })
    .from(mailboxAddons)
    .where(and(eq(mailboxAddons.mailboxId, mailboxId), eq(mailboxAddons.status, 'active')))
    .groupBy(mailboxAddons.kind);
  const total = (kind: AddonKind) => rows.find((r) => r.kind === kind)?.total ?? 0;
  return { extraInboxBytes: total('extra_inbox_gb') * GB, extraArchiveBytes: total('extra_archive_gb') * GB };
}

/**
 * After a space add-on starts or ends on its own (bought or cancelled now), stores the mailbox's new quotas and
 * reports them: GET /v1/mailboxes/{id} shows them, so the change is a `mailbox.updated`. Other kinds change no
 * quota, and leave the mailbox (and its `updated_at`) alone.
 */
async function applyQuotas(tx: DbOrTx, clock: Clock, mailbox: MailboxRow, now: Date): Promise<void> {
  const quotas = await quotasFromAddons(tx, mailbox.id);
  if (quotas.extraInboxBytes === mailbox.extraInboxBytes && quotas.extraArchiveBytes === mailbox.extraArchiveBytes) return;
  const [updated] = await tx.update(mailboxes).set({ ...quotas, updatedAt: now }).where(eq(mailboxes.id, mailbox.id)).returning();
  const object = mailboxView(updated!);
  await recordEvent(tx, clock, { partnerId: mailbox.partnerId, type: 'mailbox.updated', object, previousAttributes: changedAttributes(mailboxView(mailbox), object) });
}

/** The current term, or the one after the next renewal. */
type Term = 'now' | 'renewal';
type PlanSpec = PriceListConfig['mailbox_plans'][MailboxPlan];

/** The plan in force in a term: the current one now, the one the mailbox renews on from the renewal. */
const planIn = (mailbox: MailboxRow, term: Term): MailboxPlan => (term === 'now' ? mailbox.plan : (mailbox.planAtRenewal ?? mailbox.plan));

/** A plan's space of one kind: the GB it includes and the most it allows with add-ons. */
const spaceOf = (spec: PlanSpec, which: 'inbox' | 'archive') =>
  which === 'inbox' ? { base: spec.inbox_gb, max: spec.max_inbox_gb } : { base: spec.archive_gb, max: spec.max_archive_gb };

const fromRenewal = (term: Term) => (term === 'renewal' ? ' from the renewal on' : '');

/**
 * Space bought must stay within the maximum of the plan in force in every term the add-on gives space to: the
 * current plan (bought now) and the plan the mailbox renews on (it renews either way), so a purchase made after a
 * downgrade was scheduled cannot exceed the smaller plan once the renewal comes.
 */
function checkSpaceMaximum(mailbox: MailboxRow, prices: PriceListConfig, kind: AddonKind, extraGbAfter: number, term: Term): void {
  const which = GB_KINDS[kind];
  if (!which) return;
  const plan = planIn(mailbox, term);
  const { base, max } = spaceOf(prices.mailbox_plans[plan], which);
  if (base + extraGbAfter <= max) return;
  const detail = term === 'renewal' && plan !== mailbox.plan
    ? `the ${plan} plan the mailbox renews on allows at most ${max} GB of ${which} space from the renewal on (${base} GB included)`
    : `the ${plan} plan allows at most ${max} GB of ${which} space (${base} GB included)`;
  throw invalid([{ pointer: '/quantity', location: 'body', code: 'out_of_range', detail }]);
}

function refuseBelowUsage(mailbox: MailboxRow, which: 'inbox' | 'archive', totalGb: number, context: string): void {
  const used = which === 'inbox' ? mailbox.usedInboxBytes : mailbox.usedArchiveBytes;
  if (used > totalGb * GB) {
    throw conflict('quota_below_usage', `The mailbox already uses ${used} bytes of ${which} space, more than the ${totalGb} GB it would have${context}.`,
      { used_bytes: used, total_bytes: totalGb * GB });
  }
}

/**
 * Space given back is refused (409 `quota_below_usage`) when what the mailbox already uses would not fit, now or
 * from the renewal on (on the plan it renews on).
 */
function checkSpaceCoversUsage(mailbox: MailboxRow, prices: PriceListConfig, kind: AddonKind, extraGbAfter: number, from: Term): void {
  const which = GB_KINDS[kind];
  if (!which) return;
  refuseBelowUsage(mailbox, which, spaceOf(prices.mailbox_plans[planIn(mailbox, from)], which).base + extraGbAfter, from === 'renewal' ? ' from the renewal' : '');
}

/**
 * 409 `addons_exceed_plan` when the space add-ons counted in a term give more than `plan` allows: they must be
 * cancelled, or replaced with smaller ones, first. `subject` says what was refused.
 */
function refuseAddonsOverMaximum(subject: string, plan: MailboxPlan, spec: PlanSpec, kind: AddonKind, counted: UnitRow[], term: Term): void {
  const which = GB_KINDS[kind]!;
  const { base, max } = spaceOf(spec, which);
  const extraGb = sumUnits(counted);
  const maxExtraGb = Math.max(0, max - base);
  if (extraGb <= maxExtraGb) return;
  const ids = counted.map((row) => row.id);
  throw conflict('addons_exceed_plan',
    `${subject}: the ${plan} plan allows at most ${maxExtraGb} GB of extra ${which} space (${max} GB in all, ${base} GB included), ` +
    `but ${kind} add-on${ids.length === 1 ? '' : 's'} ${ids.join(', ')} give${ids.length === 1 ? 's' : ''} ${extraGb} GB${fromRenewal(term)}. ` +
    (maxExtraGb > 0 ? `Cancel ${ids.length === 1 ? 'it' : 'them'}, or replace ${ids.length === 1 ? 'it' : 'them'} with at most ${maxExtraGb} GB, first.` : `Cancel ${ids.length === 1 ? 'it' : 'them'} first.`),
    { plan, kind, addons: ids, extra_gb: extraGb, max_extra_gb: maxExtraGb, must_remove_gb: extraGb - maxExtraGb });
}

type UnitRow = Pick<Row, 'id' | 'quantity' | 'status' | 'cancelAtRenewal'>;

/** The mailbox's add-ons of one kind that count now or from the renewal (active and scheduled), oldest first. */
async function liveUnitRows(tx: DbOrTx, mailboxId: string, kind: AddonKind): Promise<UnitRow[]> {
  return tx.select({ id: mailboxAddons.id, quantity: mailboxAddons.quantity, status: mailboxAddons.status, cancelAtRenewal: mailboxAddons.cancelAtRenewal })
    .from(mailboxAddons)
    .where(and(eq(mailboxAddons.mailboxId, mailboxId), eq(mailboxAddons.kind, kind), inArray(mailboxAddons.status, ['active', 'scheduled'])))
    .orderBy(mailboxAddons.id);
}

/** Whether an add-on gives its units in a term: now if active; from the renewal on if it renews, or starts then. */
const countsIn = (term: Term) => (row: UnitRow): boolean =>
  term === 'now' ? row.status === 'active' : row.status === 'scheduled' || (row.status === 'active' && !row.cancelAtRenewal);

const sumUnits = (rows: UnitRow[]) => rows.reduce((total, row) => total + row.quantity, 0);

/** Units in use now (active) and in the term after the renewal (active ones that renew, and scheduled ones). */
function unitsOf(rows: UnitRow[]): { now: number; atRenewal: number } {
  return { now: sumUnits(rows.filter(countsIn('now'))), atRenewal: sumUnits(rows.filter(countsIn('renewal'))) };
}

/** The rows as they will be once `cancelled` is cancelled now (gone) or at the renewal (not renewing). */
const afterCancellation = (rows: UnitRow[], cancelled: Row, when: 'now' | 'renewal'): UnitRow[] =>
  rows.flatMap((row) => (row.id !== cancelled.id ? [row] : when === 'now' ? [] : [{ ...row, cancelAtRenewal: true }]));

export interface DelegateSeats {
  /** Seats in the current term: the plan's included ones plus the active seat packs. */
  now: number;
  included: number;
  purchased: number;
  /** Seats from the renewal on: the included ones of the plan it renews on, plus the packs that renew or start then. */
  atRenewal: number;
}

function seatsOf(rows: UnitRow[], mailbox: MailboxRow, prices: PriceListConfig): DelegateSeats {
  const units = unitsOf(rows);
  return {
    now: mailbox.includedDelegates + units.now,
    included: mailbox.includedDelegates,
    purchased: units.now,
    atRenewal: prices.mailbox_plans[mailbox.planAtRenewal ?? mailbox.plan].included_delegates + units.atRenewal,
  };
}

/**
 * Delegate seats now and from the renewal on. Live delegations (invited or active) must fit both: a seat that ends
 * at the renewal is not given to a new collaborator, who would otherwise be one too many once the renewal comes.
 */
export async function delegateSeats(db: DbOrTx, prices: PriceListConfig, mailbox: MailboxRow): Promise<DelegateSeats> {
  return seatsOf(await liveUnitRows(db, mailbox.id, 'delegation_seat'), mailbox, prices);
}

/** Delegations that hold a seat: active ones and invitations within their 7 days. */
async function liveDelegations(tx: DbOrTx, mailboxId: string, now: Date): Promise<Array<{ status: string }>> {
  return tx.select({ status: delegations.status }).from(delegations)
    .where(and(eq(delegations.mailboxId, mailboxId), or(eq(delegations.status, 'active'), and(eq(delegations.status, 'invited'), gt(delegations.inviteExpiresAt, now)))));
}

/** 409 `delegations_over_limit` when the live delegations outnumber `seats`; `situation` leads the detail up to the seats. */
function refuseDelegationsOverSeats(live: Array<{ status: string }>, seats: number, situation: string): void {
  if (live.length <= seats) return;
  const active = live.filter((d) => d.status === 'active').length;
  const excess = live.length - seats;
  throw conflict('delegations_over_limit',
    `${situation}, but ${live.length} delegation${live.length === 1 ? ' is' : 's are'} live (${active} active, ${live.length - active} invited): ` +
    `revoke ${excess} delegation${excess === 1 ? '' : 's'} first.`,
    { seats, delegations: live.length, must_revoke: excess });
}

const seatCount = (n: number) => `${n} delegate seat${n === 1 ? '' : 's'}`;

/**
 * A seat pack cancelled now or at the renewal must leave a seat for every live delegation (an invitation past its
 * 7 days holds none), now and from the renewal on; otherwise 409 `delegations_over_limit` says how many to revoke.
 */
async function checkDelegationsFit(tx: DbOrTx, prices: PriceListConfig, mailbox: MailboxRow, cancelled: Row, when: 'now' | 'renewal', now: Date): Promise<void> {
  const seats = seatsOf(afterCancellation(await liveUnitRows(tx, mailbox.id, 'delegation_seat'), cancelled, when), mailbox, prices);
  const limit = Math.min(seats.now, seats.atRenewal);
  refuseDelegationsOverSeats(await liveDelegations(tx, mailbox.id, now), limit,
    `Without add-on '${cancelled.id}' mailbox ${mailbox.address} has ${seatCount(limit)}${seats.atRenewal < seats.now ? ' from the renewal on' : ''}`);
}

/**
 * A plan change must not leave the mailbox over the new plan's limits in any term it applies to (`now`: the rest
 * of the term and, the plan at renewal being replaced too, from the renewal on; `renewal`: from the renewal on),
 * counting the add-ons of that term: the active ones now, those that renew or start at the renewal from then on.
 * In this order, each a 409: space add-ons above the plan's maximum (`addons_exceed_plan`), space in use above the
 * plan's quota (`quota_below_usage`), live delegations above its seats (`delegations_over_limit`). Only the limits
 * the new plan lowers are checked: a change to a plan as large or larger never fails for what is already so.
 * Every plan allows every add-on kind (the price list has no per-plan rule), so no kind is refused as such.
 */
export async function checkPlanChange(tx: DbOrTx, prices: PriceListConfig, mailbox: MailboxRow, plan: MailboxPlan, when: Term, now: Date): Promise<void> {
  const target = prices.mailbox_plans[plan];
  const terms: Term[] = when === 'now' ? ['now', 'renewal'] : ['renewal'];
  const subject = `Mailbox ${mailbox.address} cannot move to the ${plan} plan${when === 'renewal' ? ' at the renewal' : ''}`;
  const space: Array<{ kind: AddonKind; which: 'inbox' | 'archive'; rows: UnitRow[] }> = [];
  for (const kind of ['extra_inbox_gb', 'extra_archive_gb'] as const) space.push({ kind, which: GB_KINDS[kind]!, rows: await liveUnitRows(tx, mailbox.id, kind) });
  for (const { kind, which, rows } of space) {
    for (const term of terms) {
      const next = spaceOf(target, which);
      const previous = spaceOf(prices.mailbox_plans[planIn(mailbox, term)], which);
      if (next.max - next.base < previous.max - previous.base) refuseAddonsOverMaximum(subject, plan, target, kind, rows.filter(countsIn(term)), term);
    }
  }
  for (const { which, rows } of space) {
    for (const term of terms) {
      const base = spaceOf(target, which).base;
      if (base < spaceOf(prices.mailbox_plans[planIn(mailbox, term)], which).base) {
        refuseBelowUsage(mailbox, which, base + sumUnits(rows.filter(countsIn(term))), ` on the ${plan} plan${term === 'renewal' ? ' from the renewal' : ''}`);
      }
    }
  }
  const seatRows = await liveUnitRows(tx, mailbox.id, 'delegation_seat');
  const lowered = terms
    .filter((term) => target.included_delegates < (term === 'now' ? mailbox.includedDelegates : prices.mailbox_plans[planIn(mailbox, term)].included_delegates))
    .map((term) => ({ term, purchased: sumUnits(seatRows.filter(countsIn(term))) }));
  if (lowered.length === 0) return;
  const fewest = lowered.reduce((a, b) => (b.purchased < a.purchased ? b : a));
  const seats = target.included_delegates + fewest.purchased;
  refuseDelegationsOverSeats(await liveDelegations(tx, mailbox.id, now), seats,
    `On the ${plan} plan mailbox ${mailbox.address} would have ${seatCount(seats)}${fromRenewal(fewest.term)} ` +
    `(${target.included_delegates} included in the plan, ${fewest.purchased} purchased)`);
}

export interface PurchaseInput {
  kind: AddonKind;
  quantity?: number | undefined;
  when?: 'now' | 'renewal' | undefined;
}

/**
 * Buys an add-on. `now`: active at once, charged pro rata for the rest of the mailbox term; `renewal`: scheduled,
 * charged with the renewal. Space above the plan's maximum is refused (400), now and from the renewal on (on the
 * plan the mailbox renews on), and so is a single-purchase add-on bought twice (409).
 */
export async function purchaseAddon(deps: AddonDeps, partnerId: string, mailboxId: string, input: PurchaseInput, requestId: string | null): Promise<AddonView> {
  const quantity = input.quantity ?? 1;
  const when = input.when ?? 'now';
  return deps.db.transaction(async (tx) => {
    const mailbox = await lockMailbox(tx, partnerId, mailboxId);
    // The partner's price list in force now: add-on prices and the plans' space limits.
    const { prices } = await pricesFor(tx, partnerId, deps.clock.now());
    if (mailbox.status !== 'active') throw conflict('mailbox_not_active', `Add-ons are bought for active mailboxes; mailbox '${mailboxId}' is ${mailbox.status}.`);
    if (SINGLE.includes(input.kind) && quantity !== 1) throw invalid([{ pointer: '/quantity', location: 'body', code: 'out_of_range', detail: `${input.kind} is bought once per mailbox` }]);
    if (SINGLE.includes(input.kind)) {
      const [existing] = await tx.select({ id: mailboxAddons.id }).from(mailboxAddons)
        .where(and(eq(mailboxAddons.mailboxId, mailboxId), eq(mailboxAddons.kind, input.kind), inArray(mailboxAddons.status, ['active', 'scheduled'])));
      if (existing) throw conflict('addon_already_active', `Mailbox '${mailboxId}' already has the ${input.kind} add-on (${existing.id}).`);
    }
    if (GB_KINDS[input.kind]) {
      const units = unitsOf(await liveUnitRows(tx, mailboxId, input.kind));
      if (when === 'now') {
        checkSpaceMaximum(mailbox, prices, input.kind, units.now + quantity, 'now');
        checkSpaceCoversUsage(mailbox, prices, input.kind, units.now + quantity, 'now');
      }
      checkSpaceMaximum(mailbox, prices, input.kind, units.atRenewal + quantity, 'renewal');
    }
    const now = deps.clock.now();
    const id = newId('add', now);
    const unit = prices.addons[input.kind].unit_amount;
    const [row] = await tx.insert(mailboxAddons).values({
      id, partnerId, mailboxId, kind: input.kind, quantity, status: when === 'now' ? 'active' : 'scheduled',
      startsAt: when === 'now' ? now : null, createdAt: now, updatedAt: now,
    }).returning();
    const view = addonView(row!, mailbox);
    await recordEvent(tx, deps.clock, { partnerId, type: 'mailbox_addon.created', object: view });
    if (when === 'now') {
      // The rest of the term at the yearly price, each paid period of the term by its own length.
      const amount = (await paidHistory(tx, partnerId, mailbox)).priceForRest(unit * quantity, now);
      if (amount > 0) {
        await charge(tx, deps.clock, {
          partnerId, amount, requestId, item: { type: 'mailbox_addon', id }, at: now,
          description: `${addonNames[input.kind]} ×${quantity} until ${mailbox.expiresAt!.toISOString().slice(0, 10)}: ${mailbox.address}`,
        });
      }
      await applyQuotas(tx, deps.clock, mailbox, now);
    }
    return view;
  });
}

export async function listAddons(db: DbOrTx, partnerId: string, mailboxId: string, query: { limit: number; startingAfter?: string | undefined }) {
  const [mailbox] = await db.select().from(mailboxes).where(and(eq(mailboxes.id, mailboxId), eq(mailboxes.partnerId, partnerId)));
  if (!mailbox) throw notFound('mailbox', mailboxId);
  const rows = await db.select().from(mailboxAddons)
    .where(and(eq(mailboxAddons.mailboxId, mailboxId), query.startingAfter ? lt(mailboxAddons.id, query.startingAfter) : undefined))
    .orderBy(desc(mailboxAddons.id)).limit(query.limit + 1);
  return rows.map((row) => addonView(row, mailbox));
}

/**
 * `now`: ends at once, refunding what was paid for the unused part of the term (each paid period pro rata by its
 * own length, never more than was charged and not yet refunded); `renewal`: keeps working until the term ends
 * and is not renewed. `DELETE …/cancellation` undoes the latter. Either way space cannot go below what is used
 * (409 `quota_below_usage`) and seats below the live delegations (409 `delegations_over_limit`).
 */
export async function cancelAddon(deps: AddonDeps, partnerId: string, mailboxId: string, addonId: string, when: 'now' | 'renewal', requestId: string | null): Promise<AddonView> {
  return deps.db.transaction(async (tx) => {
    const mailbox = await lockMailbox(tx, partnerId, mailboxId);
    // The partner's price list in force now: add-on prices and the plans' space limits.
    const { prices } = await pricesFor(tx, partnerId, deps.clock.now());
    const [row] = await tx.select().from(mailboxAddons).where(and(eq(mailboxAddons.id, addonId), eq(mailboxAddons.mailboxId, mailboxId))).for('update');
    if (!row) throw notFound('addon', addonId);
    if (row.status === 'cancelled') throw conflict('invalid_state_transition', `Add-on '${addonId}' is already cancelled.`, { current_status: 'cancelled', allowed_from: ['scheduled', 'active'] });
    const now = deps.clock.now();
    if (when === 'renewal') {
      if (row.status === 'scheduled') throw conflict('addon_not_started', `Add-on '${addonId}' starts at the renewal; cancel it now instead.`);
      // Asked again: already so, nothing changes and nothing is reported.
      if (row.cancelAtRenewal) return addonView(row, mailbox);
    }
    if (GB_KINDS[row.kind]) {
      // Checked in each term the add-on would still have given space to: now if active, from the renewal on if it renews or starts then.
      const units = unitsOf(afterCancellation(await liveUnitRows(tx, mailboxId, row.kind), row, when));
      if (when === 'now' && row.status === 'active') checkSpaceCoversUsage(mailbox, prices, row.kind, units.now, 'now');
      if (!row.cancelAtRenewal) checkSpaceCoversUsage(mailbox, prices, row.kind, units.atRenewal, 'renewal');
    }
    if (row.kind === 'delegation_seat') await checkDelegationsFit(tx, prices, mailbox, row, when, now);
    if (when === 'renewal') {
      const [updated] = await tx.update(mailboxAddons).set({ cancelAtRenewal: true, updatedAt: now }).where(eq(mailboxAddons.id, addonId)).returning();
      return recordChange(tx, deps.clock, partnerId, 'mailbox_addon.updated', addonView(row, mailbox), addonView(updated!, mailbox));
    }
    const [updated] = await tx.update(mailboxAddons).set({ status: 'cancelled', cancelledAt: now, updatedAt: now }).where(eq(mailboxAddons.id, addonId)).returning();
    const view = await recordChange(tx, deps.clock, partnerId, 'mailbox_addon.cancelled', addonView(row, mailbox), addonView(updated!, mailbox));
    if (row.status === 'active') {
      // What was paid for the unused part, not today's price for it: never more than was paid.
      const amount = (await paidHistory(tx, partnerId, mailbox)).refundableAt({ type: 'mailbox_addon', id: addonId }, now);
      if (amount > 0) {
        await refund(tx, deps.clock, {
          partnerId, amount, requestId, item: { type: 'mailbox_addon', id: addonId }, at: now,
          description: `Refund: ${addonNames[row.kind]} ×${row.quantity} cancelled (${formatEuro(amount)} unused): ${mailbox.address}`,
        });
      }
      await applyQuotas(tx, deps.clock, mailbox, now);
    }
    return view;
  });
}

/**
 * The add-on renews again. A space add-on is refused (409 `addons_exceed_plan`) when, with it, the renewing space
 * would exceed the maximum of the plan the mailbox renews on (a downgrade scheduled after it was cancelled).
 */
export async function undoAddonCancellation(deps: AddonDeps, partnerId: string, mailboxId: string, addonId: string): Promise<AddonView> {
  return deps.db.transaction(async (tx) => {
    const mailbox = await lockMailbox(tx, partnerId, mailboxId);
    // The partner's price list in force now: add-on prices and the plans' space limits.
    const { prices } = await pricesFor(tx, partnerId, deps.clock.now());
    const [row] = await tx.select().from(mailboxAddons).where(and(eq(mailboxAddons.id, addonId), eq(mailboxAddons.mailboxId, mailboxId))).for('update');
    if (!row) throw notFound('addon', addonId);
    if (!row.cancelAtRenewal || row.status !== 'active') throw conflict('no_cancellation_scheduled', `Add-on '${addonId}' has no cancellation at renewal to undo.`);
    if (GB_KINDS[row.kind]) {
      // Renewing again, it counts against the plan the mailbox renews on, which may be smaller since it was cancelled.
      const plan = planIn(mailbox, 'renewal');
      const renewing = (await liveUnitRows(tx, mailboxId, row.kind)).map((unit) => (unit.id === row.id ? { ...unit, cancelAtRenewal: false } : unit));
      refuseAddonsOverMaximum(`Add-on '${addonId}' cannot renew`, plan, prices.mailbox_plans[plan], row.kind, renewing.filter(countsIn('renewal')), 'renewal');
    }
    const [updated] = await tx.update(mailboxAddons).set({ cancelAtRenewal: false, updatedAt: deps.clock.now() }).where(eq(mailboxAddons.id, addonId)).returning();
    return recordChange(tx, deps.clock, partnerId, 'mailbox_addon.updated', addonView(row, mailbox), addonView(updated!, mailbox));
  });
}

/**
 * Part of a mailbox renewal, in its transaction: charges every add-on that continues (and the scheduled ones
 * that start) for the new term, ends those cancelled for the renewal, and returns the resulting quotas. Short
 * credit fails the whole renewal. Each add-on's event shows it in the new term, as the API shows it once the
 * renewal commits.
 *
 * The quotas are returned, not stored with a `mailbox.updated` of their own: the renewal stores them in its own
 * change of the mailbox row, so its `mailbox.renewed` event carries them (old values in `previous_attributes`).
 * A separate event would show an intermediate mailbox, new quotas with the old term, which GET never returns.
 */
export async function renewAddons(tx: DbOrTx, clock: Clock, prices: PriceListConfig, mailbox: MailboxRow, termYears: number, requestId: string | null): Promise<Quotas> {
  const now = clock.now();
  const renewed = { expiresAt: termEndAfterRenewal(mailbox.expiresAt, termYears, now) };
  const rows = await tx.select().from(mailboxAddons).where(and(eq(mailboxAddons.mailboxId, mailbox.id), inArray(mailboxAddons.status, ['active', 'scheduled'])))
    .orderBy(mailboxAddons.id).for('update');
  for (const row of rows) {
    const before = addonView(row, mailbox);
    if (row.cancelAtRenewal) {
      const [ended] = await tx.update(mailboxAddons).set({ status: 'cancelled', cancelledAt: now, updatedAt: now }).where(eq(mailboxAddons.id, row.id)).returning();
      await recordChange(tx, clock, mailbox.partnerId, 'mailbox_addon.cancelled', before, addonView(ended!, renewed));
      continue;
    }
    await charge(tx, clock, {
      partnerId: mailbox.partnerId,
      amount: prices.addons[row.kind].unit_amount * row.quantity * termYears,
      description: renewalDescription(`${addonNames[row.kind]} ×${row.quantity}`, termYears, mailbox.address),
      item: { type: 'mailbox_addon', id: row.id },
      requestId,
    });
    if (row.status === 'scheduled') {
      const [started] = await tx.update(mailboxAddons).set({ status: 'active', startsAt: now, updatedAt: now }).where(eq(mailboxAddons.id, row.id)).returning();
      await recordChange(tx, clock, mailbox.partnerId, 'mailbox_addon.activated', before, addonView(started!, renewed));
    } else {
      await recordChange(tx, clock, mailbox.partnerId, 'mailbox_addon.renewed', before, addonView(row, renewed));
    }
  }
  return quotasFromAddons(tx, mailbox.id);
}

/**
 * Part of ending a mailbox (cancelled, or expired after its grace period), in its transaction: its active and
 * scheduled add-ons end with it, unrefunded like the mailbox's own term, each with its `mailbox_addon.cancelled`.
 * Returns the quotas without them, for the mailbox's own change (and event) to carry, as at the renewal.
 */
export async function endAddonsOfMailbox(tx: DbOrTx, clock: Clock, mailbox: MailboxRow, now: Date): Promise<Quotas> {
  const rows = await tx.select().from(mailboxAddons).where(and(eq(mailboxAddons.mailboxId, mailbox.id), inArray(mailboxAddons.status, ['active', 'scheduled'])))
    .orderBy(mailboxAddons.id).for('update');
  for (const row of rows) {
    const [ended] = await tx.update(mailboxAddons).set({ status: 'cancelled', cancelledAt: now, updatedAt: now }).where(eq(mailboxAddons.id, row.id)).returning();
    await recordChange(tx, clock, mailbox.partnerId, 'mailbox_addon.cancelled', addonView(row, mailbox), addonView(ended!, mailbox));
  }
  return quotasFromAddons(tx, mailbox.id);
}

/** Writes the event of a change to an add-on, with the old values of what changed; returns the new view. */
async function recordChange(
  tx: DbOrTx, clock: Clock, partnerId: string,
  type: 'mailbox_addon.activated' | 'mailbox_addon.renewed' | 'mailbox_addon.updated' | 'mailbox_addon.cancelled',
  before: AddonView, after: AddonView,
): Promise<AddonView> {
  await recordEvent(tx, clock, { partnerId, type, object: after, previousAttributes: changedAttributes(before, after) });
  return after;
}

/** Whether the mailbox has an active add-on of this kind (the gate of the add-ons' features). */
export async function hasActiveAddon(db: DbOrTx, mailboxId: string, kind: AddonKind): Promise<boolean> {
  const [row] = await db.select({ id: mailboxAddons.id }).from(mailboxAddons)
    .where(and(eq(mailboxAddons.mailboxId, mailboxId), eq(mailboxAddons.kind, kind), eq(mailboxAddons.status, 'active'))).limit(1);
  return row !== undefined;
}

