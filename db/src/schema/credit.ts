import { sql } from 'drizzle-orm';
import { bigint, bigserial, check, index, pgTable, text, timestamp, uniqueIndex } from 'drizzle-orm/pg-core';
import { partners } from './partners.ts';

/**
 * One row per partner holding the running balance. Charges lock this row (SELECT … FOR UPDATE) so concurrent
 * debits serialise; the CHECK makes a negative balance impossible even if code were wrong.
 */
export const creditAccounts = pgTable(
  'credit_accounts',
  {
    partnerId: text('partner_id').primaryKey().references(() => partners.id),
    currency: text('currency').notNull().default('EUR'),
    balanceCents: bigint('balance_cents', { mode: 'number' }).notNull().default(0),
    /** A movement that takes the balance from at or above this to below it emits `credit.balance_low`; null: off. */
    lowBalanceThresholdCents: bigint('low_balance_threshold_cents', { mode: 'number' }),
    updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull(),
  },
  (t) => [check('credit_accounts_balance_check', sql`${t.balanceCents} >= 0`)],
);

/**
 * `adjustment_credit` / `adjustment_debit`: an operator's correction with a reason; `top_up_refund`: money of a
 * credited top-up paid back to the partner by the provider. `adjustment` is kept for old rows and never written.
 */
export const ledgerEntryKinds = ['top_up', 'charge', 'refund', 'adjustment', 'adjustment_credit', 'adjustment_debit', 'top_up_refund'] as const;
export type LedgerEntryKind = (typeof ledgerEntryKinds)[number];

/** Append-only: the application never updates or deletes entries (a trigger in the migration enforces it). */
export const creditLedgerEntries = pgTable(
  'credit_ledger_entries',
  {
    id: text('id').primaryKey(),
    /** Total order of entries per database: the ledger is read in this order. */
    seq: bigserial('seq', { mode: 'number' }).notNull(),
    partnerId: text('partner_id').notNull().references(() => creditAccounts.partnerId),
    kind: text('kind', { enum: ledgerEntryKinds }).notNull(),
    /** Signed: positive credits the account, negative debits it. */
    amountCents: bigint('amount_cents', { mode: 'number' }).notNull(),
    balanceAfterCents: bigint('balance_after_cents', { mode: 'number' }).notNull(),
    currency: text('currency').notNull().default('EUR'),
    description: text('description').notNull(),
    /** What the money paid for, e.g. ('mailbox', 'mbx_…'); null for top-ups. */
    itemType: text('item_type'),
    itemId: text('item_id'),
    paymentReference: text('payment_reference'),
    requestId: text('request_id'),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull(),
  },
  (t) => [
    uniqueIndex('credit_ledger_seq_key').on(t.seq),
    index('credit_ledger_partner_seq_idx').on(t.partnerId, t.seq),
    uniqueIndex('credit_ledger_payment_reference_key')
      .on(t.partnerId, t.paymentReference)
      .where(sql`${t.kind} = 'top_up'`),
    check(
      'credit_ledger_kind_check',
      sql`${t.kind} in ('top_up','charge','refund','adjustment','adjustment_credit','adjustment_debit','top_up_refund')`,
    ),
    check('credit_ledger_balance_check', sql`${t.balanceAfterCents} >= 0`),
    check('credit_ledger_amount_check', sql`${t.amountCents} <> 0`),
    check(
      'credit_ledger_sign_check',
      sql`(${t.kind} in ('top_up','refund','adjustment_credit') and ${t.amountCents} > 0) or (${t.kind} in ('charge','adjustment_debit','top_up_refund') and ${t.amountCents} < 0) or ${t.kind} = 'adjustment'`,
    ),
  ],
);
