import { and, asc, desc, eq, inArray, lt, or, sql } from 'drizzle-orm';
import { creditAccounts, creditLedgerEntries, mailboxAddons, type DbOrTx, type LedgerEntryKind } from '@pec-partner/db';
import type { Clock } from '../../clock.ts';
import { newId } from '../../ids.ts';
import { invalid, ProblemError } from '../../http/problem.ts';
import type { EventType } from '../../events/catalogue.ts';
import { recordEvent } from '../../events/record.ts';
import { PaidHistory, type MailboxTerm } from './pro-rata.ts';

export type LedgerEntryView = {
  id: string;
  object: 'ledger_entry';
  type: LedgerEntryKind;
  amount: number;
  balance_after: number;
  currency: 'EUR';
  description: string;
  item: { type: string; id: string } | null;
  payment_reference: string | null;
  request_id: string | null;
  created_at: string;
};

type LedgerRow = typeof creditLedgerEntries.$inferSelect;

export function ledgerEntryView(row: LedgerRow): LedgerEntryView {
  return {
    id: row.id,
    object: 'ledger_entry',
    type: row.kind,
    amount: row.amountCents,
    balance_after: row.balanceAfterCents,
    currency: 'EUR',
    description: row.description,
    item: row.itemType && row.itemId ? { type: row.itemType, id: row.itemId } : null,
    payment_reference: row.paymentReference,
    request_id: row.requestId,
    created_at: row.createdAt.toISOString(),
  };
}

type AccountRow = typeof creditAccounts.$inferSelect;

/** The balance as GET /v1/credit shows it; the account is the partner's own, so it carries the partner's id. */
export function balanceView(account: AccountRow) {
  return {
    id: account.partnerId,
    object: 'credit_balance' as const,
    balance: account.balanceCents,
    currency: 'EUR' as const,
    low_balance_threshold: account.lowBalanceThresholdCents,
    updated_at: account.updatedAt.toISOString(),
  };
}
export type BalanceView = ReturnType<typeof balanceView>;

export type MovementKind = Exclude<LedgerEntryKind, 'adjustment'>;
const movementEvents: Record<MovementKind, EventType> = {
  top_up: 'credit.topped_up',
  charge: 'credit.charged',
  refund: 'credit.refunded',
  adjustment_credit: 'credit.adjusted',
  adjustment_debit: 'credit.adjusted',
  top_up_refund: 'credit.paid_out',
};

export interface Movement {
  partnerId: string;
  /** Positive euro cents; the kind decides the sign. */
  amount: number;
  description: string;
  item?: { type: string; id: string };
  requestId?: string | null;
  /**
   * The instant of the operation the entry belongs to, when the caller priced it at that instant (the default is
   * the clock at writing): the refund rules rebuild paid periods from entry times (see pro-rata.ts).
   */
  at?: Date;
}

/**
 * Moves credit and appends the ledger entry in one transaction. The partner's account row is locked first
 * (SELECT … FOR UPDATE), so concurrent movements serialise and each sees the balance the previous one left.
 * The movement's event, and `credit.balance_low` when it crosses the partner's threshold downwards, are written
 * in the same transaction: every module's charges and refunds get their events here, once.
 */
export async function postMovement(
  db: DbOrTx,
  clock: Clock,
  kind: MovementKind,
  signedAmount: number,
  movement: Movement,
  paymentReference: string | null = null,
): Promise<LedgerEntryView> {
  if (!Number.isSafeInteger(signedAmount) || signedAmount === 0) {
    throw new Error(`credit movement needs a non-zero integer amount of cents, got ${signedAmount}`);
  }
  return db.transaction(async (tx) => {
    const [account] = await tx
      .select()
      .from(creditAccounts)
      .where(eq(creditAccounts.partnerId, movement.partnerId))
      .for('update');
    if (!account) throw new Error(`partner ${movement.partnerId} has no credit account`);
    const balanceAfter = account.balanceCents + signedAmount;
    if (balanceAfter < 0) {
      const required = -signedAmount;
      throw new ProblemError(
        402,
        'insufficient_credit',
        'Insufficient credit',
        `This operation costs ${formatEuro(required)} but the credit balance is ${formatEuro(account.balanceCents)}: ` +
          `top up at least ${formatEuro(required - account.balanceCents)}.`,
        { balance: account.balanceCents, required, shortfall: required - account.balanceCents, currency: 'EUR' },
      );
    }
    const now = movement.at ?? clock.now();
    const [updatedAccount] = await tx
      .update(creditAccounts)
      .set({ balanceCents: balanceAfter, updatedAt: now })
      .where(eq(creditAccounts.partnerId, movement.partnerId))
      .returning();
    const [row] = await tx
      .insert(creditLedgerEntries)
      .values({
        id: newId('txn', now),
        partnerId: movement.partnerId,
        kind,
        amountCents: signedAmount,
        balanceAfterCents: balanceAfter,
        description: movement.description,
        itemType: movement.item?.type ?? null,
        itemId: movement.item?.id ?? null,
        paymentReference,
        requestId: movement.requestId ?? null,
        createdAt: now,
      })
      .returning();
    const entry = ledgerEntryView(row!);
    await recordEvent(tx, clock, { partnerId: movement.partnerId, type: movementEvents[kind], object: entry });
    const threshold = account.lowBalanceThresholdCents;
    // Only the movement that crosses the threshold warns; later ones below it stay silent until the balance is back at or above it.
    if (threshold !== null && account.balanceCents >= threshold && balanceAfter < threshold) {
      await recordEvent(tx, clock, { partnerId: movement.partnerId, type: 'credit.balance_low', object: balanceView(updatedAccount!) });
    }
    return entry;
  });
}

export function formatEuro(cents: number): string {
  return `€${(cents / 100).toFixed(2)}`;
}

/**
 * Debits the partner for something it bought. Call it inside the transaction that creates the thing, so a
 * failed operation leaves no charge; throws a 402 problem naming the shortfall when credit is short.
 */
export function charge(db: DbOrTx, clock: Clock, movement: Movement & { item: { type: string; id: string } }) {
  return postMovement(db, clock, 'charge', -movement.amount, movement);
}

export function refund(db: DbOrTx, clock: Clock, movement: Movement & { item: { type: string; id: string } }) {
  return postMovement(db, clock, 'refund', movement.amount, movement);
}

export async function getBalance(db: DbOrTx, partnerId: string): Promise<BalanceView> {
  const [account] = await db.select().from(creditAccounts).where(eq(creditAccounts.partnerId, partnerId));
  if (!account) throw new Error(`partner ${partnerId} has no credit account`);
  return balanceView(account);
}

/** Sets (or with null turns off) the balance below which a movement emits `credit.balance_low`. */
export async function setLowBalanceThreshold(db: DbOrTx, clock: Clock, partnerId: string, thresholdCents: number | null): Promise<BalanceView> {
  const [account] = await db
    .update(creditAccounts)
    .set({ lowBalanceThresholdCents: thresholdCents, updatedAt: clock.now() })
    .where(eq(creditAccounts.partnerId, partnerId))
    .returning();
  if (!account) throw new Error(`partner ${partnerId} has no credit account`);
  return balanceView(account);
}

export interface LedgerQuery {
  limit: number;
  startingAfter?: string | undefined;
  type?: LedgerEntryKind | undefined;
  itemId?: string | undefined;
}

/** Newest first, in the order the entries were written. */
export async function listLedger(db: DbOrTx, partnerId: string, query: LedgerQuery): Promise<LedgerEntryView[]> {
  let cursorSeq: number | undefined;
  if (query.startingAfter) {
    const [cursor] = await db
      .select({ seq: creditLedgerEntries.seq })
      .from(creditLedgerEntries)
      .where(and(eq(creditLedgerEntries.partnerId, partnerId), eq(creditLedgerEntries.id, query.startingAfter)));
    if (!cursor) {
      throw invalid([{ pointer: '/starting_after', location: 'query', code: 'invalid_cursor', detail: 'is not a ledger entry of yours' }]);
    }
    cursorSeq = cursor.seq;
  }
  const rows = await db
    .select()
    .from(creditLedgerEntries)
    .where(
      and(
        eq(creditLedgerEntries.partnerId, partnerId),
        cursorSeq !== undefined ? lt(creditLedgerEntries.seq, cursorSeq) : undefined,
        query.type ? eq(creditLedgerEntries.kind, query.type) : undefined,
        query.itemId ? eq(creditLedgerEntries.itemId, query.itemId) : undefined,
      ),
    )
    .orderBy(desc(creditLedgerEntries.seq))
    .limit(query.limit + 1);
  return rows.map(ledgerEntryView);
}

/** Sum of the ledger: must always equal the account balance (a test checks it). */
export async function ledgerTotal(db: DbOrTx, partnerId: string): Promise<number> {
  const [row] = await db
    .select({ total: sql<string>`coalesce(sum(${creditLedgerEntries.amountCents}), 0)` })
    .from(creditLedgerEntries)
    .where(eq(creditLedgerEntries.partnerId, partnerId));
  return Number(row?.total ?? 0);
}

/**
 * What a mailbox and its add-ons were charged and refunded, oldest first, as periods and payments (see
 * pro-rata.ts). Read inside the transaction that holds the mailbox's row lock, so no entry of theirs can be
 * written in between.
 */
export async function paidHistory(db: DbOrTx, partnerId: string, mailbox: MailboxTerm): Promise<PaidHistory> {
  const addonIds = db.select({ id: mailboxAddons.id }).from(mailboxAddons).where(eq(mailboxAddons.mailboxId, mailbox.id));
  const rows = await db
    .select({
      kind: creditLedgerEntries.kind,
      amountCents: creditLedgerEntries.amountCents,
      description: creditLedgerEntries.description,
      itemType: creditLedgerEntries.itemType,
      itemId: creditLedgerEntries.itemId,
      createdAt: creditLedgerEntries.createdAt,
    })
    .from(creditLedgerEntries)
    .where(
      and(
        eq(creditLedgerEntries.partnerId, partnerId),
        or(
          and(eq(creditLedgerEntries.itemType, 'mailbox'), eq(creditLedgerEntries.itemId, mailbox.id)),
          and(eq(creditLedgerEntries.itemType, 'mailbox_addon'), inArray(creditLedgerEntries.itemId, addonIds)),
        ),
      ),
    )
    .orderBy(asc(creditLedgerEntries.seq));
  return new PaidHistory(mailbox, rows);
}
