import { and, desc, eq, gt, inArray, lt, or, sql } from 'drizzle-orm';
import { delegations, mailboxAddons, mailboxes, type AddonKind, type DbOrTx } from '@pec-partner/db';
import type { Clock } from '../../clock.ts';
import { recordEvent } from '../../events/record.ts';
import { conflict, invalid, notFound } from '../../http/problem.ts';
import { newId } from '../../ids.ts';
import { charge, formatEuro, refund } from '../credit/service.ts';
import type { PriceListConfig } from '../credit/prices.ts';
import { changedAttributes } from '../events/service.ts';
import { mailboxView } from '../mailboxes/view.ts';

export interface AddonDeps {
  db: import('@pec-partner/db').Db;
  clock: Clock;
  prices: PriceListConfig;
}

type Row = typeof mailboxAddons.$inferSelect;
type MailboxRow = typeof mailboxes.$inferSelect;

export const GB = 1024 ** 3;
const YEAR_MS = 365 * 86_400_000;

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

/** Price of `quantity` units for `ms` of time, pro rata over a 365-day year, in cents. */
export const proRata = (unitAmount: number, quantity: number, ms: number): number => Math.round((unitAmount * quantity * Math.max(0, ms)) / YEAR_MS);

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

/** Checks that space after the purchase stays within the plan's maximum and not below what is already used. */
function checkSpace(mailbox: MailboxRow, prices: PriceListConfig, kind: AddonKind, extraGbAfter: number): void {
  const which = GB_KINDS[kind];
  if (!which) return;
  const plan = prices.mailbox_plans[mailbox.plan];
  const base = which === 'inbox' ? plan.inbox_gb : plan.archive_gb;
  const max = which === 'inbox' ? plan.max_inbox_gb : plan.max_archive_gb;
  if (base + extraGbAfter > max) {
    throw invalid([{ pointer: '/quantity', location: 'body', code: 'out_of_range', detail: `the ${mailbox.plan} plan allows at most ${max} GB of ${which} space (${base} GB included)` }]);
  }
  checkSpaceCoversUsage(mailbox, prices, kind, extraGbAfter, 'now');
}

/**
 * Space given back is refused (409 `quota_below_usage`) when what the mailbox already uses would not fit, now or
 * from the renewal on (on the plan it renews on).
 */
function checkSpaceCoversUsage(mailbox: MailboxRow, prices: PriceListConfig, kind: AddonKind, extraGbAfter: number, from: 'now' | 'renewal'): void {
  const which = GB_KINDS[kind];
  if (!which) return;
  const plan = prices.mailbox_plans[from === 'now' ? mailbox.plan : (mailbox.planAtRenewal ?? mailbox.plan)];
  const total = (which === 'inbox' ? plan.inbox_gb : plan.archive_gb) + extraGbAfter;
  const used = which === 'inbox' ? mailbox.usedInboxBytes : mailbox.usedArchiveBytes;
  if (used > total * GB) {
    throw conflict('quota_below_usage',
      `The mailbox already uses ${used} bytes of ${which} space, more than the ${total} GB it would have${from === 'renewal' ? ' from the renewal' : ''}.`,
      { used_bytes: used, total_bytes: total * GB });
  }
}

async function purchasedUnits(tx: DbOrTx, mailboxId: string, kind: AddonKind, statuses: Array<Row['status']>): Promise<number> {
  const [row] = await tx
    .select({ total: sql<number>`coalesce(sum(${mailboxAddons.quantity}), 0)::int` })
    .from(mailboxAddons)
    .where(and(eq(mailboxAddons.mailboxId, mailboxId), eq(mailboxAddons.kind, kind), inArray(mailboxAddons.status, statuses)));
  return row!.total;
}

type UnitRow = Pick<Row, 'id' | 'quantity' | 'status' | 'cancelAtRenewal'>;

/** The mailbox's add-ons of one kind that count now or from the renewal (active and scheduled). */
async function liveUnitRows(tx: DbOrTx, mailboxId: string, kind: AddonKind): Promise<UnitRow[]> {
  return tx.select({ id: mailboxAddons.id, quantity: mailboxAddons.quantity, status: mailboxAddons.status, cancelAtRenewal: mailboxAddons.cancelAtRenewal })
    .from(mailboxAddons)
    .where(and(eq(mailboxAddons.mailboxId, mailboxId), eq(mailboxAddons.kind, kind), inArray(mailboxAddons.status, ['active', 'scheduled'])));
}

/** Units in use now (active) and in the term after the renewal (active ones that renew, and scheduled ones). */
function unitsOf(rows: UnitRow[]): { now: number; atRenewal: number } {
  const sum = (keep: (row: UnitRow) => boolean) => rows.filter(keep).reduce((total, row) => total + row.quantity, 0);
  return {
    now: sum((row) => row.status === 'active'),
    atRenewal: sum((row) => row.status === 'scheduled' || (row.status === 'active' && !row.cancelAtRenewal)),
  };
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

/**
 * A seat pack cancelled now or at the renewal must leave a seat for every live delegation (an invitation past its
 * 7 days holds none), now and from the renewal on; otherwise 409 `delegations_over_limit` says how many to revoke.
 */
async function checkDelegationsFit(tx: DbOrTx, prices: PriceListConfig, mailbox: MailboxRow, cancelled: Row, when: 'now' | 'renewal', now: Date): Promise<void> {
  const seats = seatsOf(afterCancellation(await liveUnitRows(tx, mailbox.id, 'delegation_seat'), cancelled, when), mailbox, prices);
  const live = await tx.select({ status: delegations.status }).from(delegations)
    .where(and(eq(delegations.mailboxId, mailbox.id), or(eq(delegations.status, 'active'), and(eq(delegations.status, 'invited'), gt(delegations.inviteExpiresAt, now)))));
  const limit = Math.min(seats.now, seats.atRenewal);
  if (live.length <= limit) return;
  const active = live.filter((d) => d.status === 'active').length;
  const excess = live.length - limit;
  throw conflict('delegations_over_limit',
    `Without add-on '${cancelled.id}' mailbox ${mailbox.address} has ${limit} delegate seat${limit === 1 ? '' : 's'}${seats.atRenewal < seats.now ? ' from the renewal on' : ''}, ` +
    `but ${live.length} delegation${live.length === 1 ? ' is' : 's are'} live (${active} active, ${live.length - active} invited): ` +
    `revoke ${excess} delegation${excess === 1 ? '' : 's'} first.`,
    { seats: limit, delegations: live.length, must_revoke: excess });
}

export interface PurchaseInput {
  kind: AddonKind;
  quantity?: number | undefined;
  when?: 'now' | 'renewal' | undefined;
}

/**
 * Buys an add-on. `now`: active at once, charged pro rata for the rest of the mailbox term; `renewal`: scheduled,
 * charged with the renewal. Space above the plan's maximum is refused (400), and so is a single-purchase add-on
 * bought twice (409).
 */
export async function purchaseAddon(deps: AddonDeps, partnerId: string, mailboxId: string, input: PurchaseInput, requestId: string | null): Promise<AddonView> {
  const quantity = input.quantity ?? 1;
  const when = input.when ?? 'now';
  return deps.db.transaction(async (tx) => {
    const mailbox = await lockMailbox(tx, partnerId, mailboxId);
    if (mailbox.status !== 'active') throw conflict('mailbox_not_active', `Add-ons are bought for active mailboxes; mailbox '${mailboxId}' is ${mailbox.status}.`);
    if (SINGLE.includes(input.kind) && quantity !== 1) throw invalid([{ pointer: '/quantity', location: 'body', code: 'out_of_range', detail: `${input.kind} is bought once per mailbox` }]);
    if (SINGLE.includes(input.kind)) {
      const [existing] = await tx.select({ id: mailboxAddons.id }).from(mailboxAddons)
        .where(and(eq(mailboxAddons.mailboxId, mailboxId), eq(mailboxAddons.kind, input.kind), inArray(mailboxAddons.status, ['active', 'scheduled'])));
      if (existing) throw conflict('addon_already_active', `Mailbox '${mailboxId}' already has the ${input.kind} add-on (${existing.id}).`);
    }
    if (GB_KINDS[input.kind]) {
      const planned = await purchasedUnits(tx, mailboxId, input.kind, when === 'now' ? ['active'] : ['active', 'scheduled']);
      checkSpace(mailbox, deps.prices, input.kind, planned + quantity);
    }
    const now = deps.clock.now();
    const id = newId('add', now);
    const unit = deps.prices.addons[input.kind].unit_amount;
    const [row] = await tx.insert(mailboxAddons).values({
      id, partnerId, mailboxId, kind: input.kind, quantity, status: when === 'now' ? 'active' : 'scheduled',
      startsAt: when === 'now' ? now : null, createdAt: now, updatedAt: now,
    }).returning();
    const view = addonView(row!, mailbox);
    await recordEvent(tx, deps.clock, { partnerId, type: 'mailbox_addon.created', object: view });
    if (when === 'now') {
      const amount = proRata(unit, quantity, mailbox.expiresAt!.getTime() - now.getTime());
      if (amount > 0) {
        await charge(tx, deps.clock, {
          partnerId, amount, requestId, item: { type: 'mailbox_addon', id },
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
 * `now`: ends at once, the unused part of the term refunded pro rata; `renewal`: keeps working until the term ends
 * and is not renewed. `DELETE …/cancellation` undoes the latter. Either way space cannot go below what is used
 * (409 `quota_below_usage`) and seats below the live delegations (409 `delegations_over_limit`).
 */
export async function cancelAddon(deps: AddonDeps, partnerId: string, mailboxId: string, addonId: string, when: 'now' | 'renewal', requestId: string | null): Promise<AddonView> {
  return deps.db.transaction(async (tx) => {
    const mailbox = await lockMailbox(tx, partnerId, mailboxId);
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
      if (when === 'now' && row.status === 'active') checkSpaceCoversUsage(mailbox, deps.prices, row.kind, units.now, 'now');
      if (!row.cancelAtRenewal) checkSpaceCoversUsage(mailbox, deps.prices, row.kind, units.atRenewal, 'renewal');
    }
    if (row.kind === 'delegation_seat') await checkDelegationsFit(tx, deps.prices, mailbox, row, when, now);
    if (when === 'renewal') {
      const [updated] = await tx.update(mailboxAddons).set({ cancelAtRenewal: true, updatedAt: now }).where(eq(mailboxAddons.id, addonId)).returning();
      return recordChange(tx, deps.clock, partnerId, 'mailbox_addon.updated', addonView(row, mailbox), addonView(updated!, mailbox));
    }
    const [updated] = await tx.update(mailboxAddons).set({ status: 'cancelled', cancelledAt: now, updatedAt: now }).where(eq(mailboxAddons.id, addonId)).returning();
    const view = await recordChange(tx, deps.clock, partnerId, 'mailbox_addon.cancelled', addonView(row, mailbox), addonView(updated!, mailbox));
    if (row.status === 'active') {
      const amount = proRata(deps.prices.addons[row.kind].unit_amount, row.quantity, mailbox.expiresAt!.getTime() - now.getTime());
      if (amount > 0) {
        await refund(tx, deps.clock, {
          partnerId, amount, requestId, item: { type: 'mailbox_addon', id: addonId },
          description: `Refund: ${addonNames[row.kind]} ×${row.quantity} cancelled (${formatEuro(amount)} unused): ${mailbox.address}`,
        });
      }
      await applyQuotas(tx, deps.clock, mailbox, now);
    }
    return view;
  });
}

export async function undoAddonCancellation(deps: AddonDeps, partnerId: string, mailboxId: string, addonId: string): Promise<AddonView> {
  return deps.db.transaction(async (tx) => {
    const mailbox = await lockMailbox(tx, partnerId, mailboxId);
    const [row] = await tx.select().from(mailboxAddons).where(and(eq(mailboxAddons.id, addonId), eq(mailboxAddons.mailboxId, mailboxId))).for('update');
    if (!row) throw notFound('addon', addonId);
    if (!row.cancelAtRenewal || row.status !== 'active') throw conflict('no_cancellation_scheduled', `Add-on '${addonId}' has no cancellation at renewal to undo.`);
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
      description: `Renewal: ${addonNames[row.kind]} ×${row.quantity}, ${termYears} year${termYears === 1 ? '' : 's'}: ${mailbox.address}`,
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

