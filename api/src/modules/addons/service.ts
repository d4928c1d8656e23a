import { and, desc, eq, inArray, lt, sql } from 'drizzle-orm';
import { mailboxAddons, mailboxes, type AddonKind, type DbOrTx } from '@pec-partner/db';
import type { Clock } from '../../clock.ts';
import { recordEvent } from '../../events/record.ts';
import { conflict, invalid, notFound } from '../../http/problem.ts';
import { newId } from '../../ids.ts';
import { charge, formatEuro, refund } from '../credit/service.ts';
import type { PriceListConfig } from '../credit/prices.ts';
import { changedAttributes } from '../events/service.ts';

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

/** Recomputes the purchased space and seats from the active add-ons: the quotas the engine enforces. */
async function applyQuantities(tx: DbOrTx, mailboxId: string, now: Date): Promise<void> {
  const rows = await tx
    .select({ kind: mailboxAddons.kind, total: sql<number>`sum(${mailboxAddons.quantity})::int` })
    .from(mailboxAddons)
    .where(and(eq(mailboxAddons.mailboxId, mailboxId), eq(mailboxAddons.status, 'active')))
    .groupBy(mailboxAddons.kind);
  const total = (kind: AddonKind) => rows.find((r) => r.kind === kind)?.total ?? 0;
  await tx
    .update(mailboxes)
    .set({ extraInboxBytes: total('extra_inbox_gb') * GB, extraArchiveBytes: total('extra_archive_gb') * GB, updatedAt: now })
    .where(eq(mailboxes.id, mailboxId));
}

/** Checks that space after the change stays within the plan's maximum and not below what is already used. */
function checkSpace(mailbox: MailboxRow, prices: PriceListConfig, kind: AddonKind, extraGbAfter: number): void {
  const which = GB_KINDS[kind];
  if (!which) return;
  const plan = prices.mailbox_plans[mailbox.plan];
  const base = which === 'inbox' ? plan.inbox_gb : plan.archive_gb;
  const max = which === 'inbox' ? plan.max_inbox_gb : plan.max_archive_gb;
  if (base + extraGbAfter > max) {
    throw invalid([{ pointer: '/quantity', location: 'body', code: 'out_of_range', detail: `the ${mailbox.plan} plan allows at most ${max} GB of ${which} space (${base} GB included)` }]);
  }
  const used = which === 'inbox' ? mailbox.usedInboxBytes : mailbox.usedArchiveBytes;
  if (used > (base + extraGbAfter) * GB) {
    throw conflict('quota_below_usage', `The mailbox already uses ${used} bytes of ${which} space, more than ${base + extraGbAfter} GB.`);
  }
}

async function purchasedUnits(tx: DbOrTx, mailboxId: string, kind: AddonKind, statuses: Array<Row['status']>): Promise<number> {
  const [row] = await tx
    .select({ total: sql<number>`coalesce(sum(${mailboxAddons.quantity}), 0)::int` })
    .from(mailboxAddons)
    .where(and(eq(mailboxAddons.mailboxId, mailboxId), eq(mailboxAddons.kind, kind), inArray(mailboxAddons.status, statuses)));
  return row!.total;
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
      await applyQuantities(tx, mailboxId, now);
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
 * `now`: ends at once, the unused part of the term refunded pro rata (space cannot go below what is used);
 * `renewal`: keeps working until the term ends and is not renewed. `DELETE …/cancellation` undoes the latter.
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
      const [updated] = await tx.update(mailboxAddons).set({ cancelAtRenewal: true, updatedAt: now }).where(eq(mailboxAddons.id, addonId)).returning();
      return recordChange(tx, deps.clock, partnerId, 'mailbox_addon.updated', addonView(row, mailbox), addonView(updated!, mailbox));
    }
    if (row.status === 'active' && GB_KINDS[row.kind]) {
      checkSpace(mailbox, deps.prices, row.kind, (await purchasedUnits(tx, mailboxId, row.kind, ['active'])) - row.quantity);
    }
    const [updated] = await tx.update(mailboxAddons).set({ status: 'cancelled', cancelledAt: now, updatedAt: now }).where(eq(mailboxAddons.id, addonId)).returning();
    if (row.status === 'active') {
      const amount = proRata(deps.prices.addons[row.kind].unit_amount, row.quantity, mailbox.expiresAt!.getTime() - now.getTime());
      if (amount > 0) {
        await refund(tx, deps.clock, {
          partnerId, amount, requestId, item: { type: 'mailbox_addon', id: addonId },
          description: `Refund: ${addonNames[row.kind]} ×${row.quantity} cancelled (${formatEuro(amount)} unused): ${mailbox.address}`,
        });
      }
      await applyQuantities(tx, mailboxId, now);
    }
    return recordChange(tx, deps.clock, partnerId, 'mailbox_addon.cancelled', addonView(row, mailbox), addonView(updated!, mailbox));
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
 * that start) for the new term, ends those cancelled for the renewal, and applies the resulting quotas. Short
 * credit fails the whole renewal. Each add-on's event shows it in the new term, as the API shows it once the
 * renewal commits.
 */
export async function renewAddons(tx: DbOrTx, clock: Clock, prices: PriceListConfig, mailbox: MailboxRow, termYears: number, requestId: string | null): Promise<void> {
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
  await applyQuantities(tx, mailbox.id, now);
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

/** Delegate seats: the plan's included ones plus the purchased packs. */
export async function delegateSeats(db: DbOrTx, mailbox: Pick<MailboxRow, 'id' | 'includedDelegates'>): Promise<number> {
  return mailbox.includedDelegates + (await purchasedUnits(db, mailbox.id, 'delegation_seat', ['active']));
}
