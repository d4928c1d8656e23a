import { and, desc, eq, lt, sql } from 'drizzle-orm';
import { creditAccounts, creditLedgerEntries, type DbOrTx, type LedgerEntryKind } from '@pec-partner/db';
import type { Clock } from '../../clock.ts';
import { newId } from '../../ids.ts';
import { conflict, invalid, ProblemError } from '../../http/problem.ts';
import { isUniqueViolation } from '../../db-errors.ts';

export interface LedgerEntryView {
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
}

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

export interface Movement {
  partnerId: string;
  /** Positive euro cents; the kind decides the sign. */
  amount: number;
  description: string;
  item?: { type: string; id: string };
  requestId?: string | null;
}

/**
 * Moves credit and appends the ledger entry in one transaction. The partner's account row is locked first
 * (SELECT … FOR UPDATE), so concurrent movements serialise and each sees the balance the previous one left.
 */
async function post(
  db: DbOrTx,
  clock: Clock,
  kind: LedgerEntryKind,
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
    const now = clock.now();
    await tx
      .update(creditAccounts)
      .set({ balanceCents: balanceAfter, updatedAt: now })
      .where(eq(creditAccounts.partnerId, movement.partnerId));
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
    return ledgerEntryView(row!);
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
  return post(db, clock, 'charge', -movement.amount, movement);
}

export function refund(db: DbOrTx, clock: Clock, movement: Movement & { item: { type: string; id: string } }) {
  return post(db, clock, 'refund', movement.amount, movement);
}

export async function topUp(
  db: DbOrTx,
  clock: Clock,
  movement: Movement & { paymentReference: string },
): Promise<LedgerEntryView> {
  try {
    return await post(db, clock, 'top_up', movement.amount, movement, movement.paymentReference);
  } catch (error) {
    if (isUniqueViolation(error, 'credit_ledger_payment_reference_key')) {
      const [existing] = await db
        .select({ id: creditLedgerEntries.id })
        .from(creditLedgerEntries)
        .where(
          and(
            eq(creditLedgerEntries.partnerId, movement.partnerId),
            eq(creditLedgerEntries.paymentReference, movement.paymentReference),
            eq(creditLedgerEntries.kind, 'top_up'),
          ),
        );
      throw conflict(
        'duplicate_payment_reference',
        `The payment reference '${movement.paymentReference}' was already credited (ledger entry ${existing?.id}).`,
        { ledger_entry: existing?.id ?? null },
      );
    }
    throw error;
  }
}

export async function getBalance(db: DbOrTx, partnerId: string) {
  const [account] = await db.select().from(creditAccounts).where(eq(creditAccounts.partnerId, partnerId));
  if (!account) throw new Error(`partner ${partnerId} has no credit account`);
  return {
    object: 'credit_balance' as const,
    balance: account.balanceCents,
    currency: 'EUR' as const,
    updated_at: account.updatedAt.toISOString(),
  };
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
