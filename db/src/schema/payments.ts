import { sql } from 'drizzle-orm';
import { bigint, boolean, check, date, index, pgTable, text, timestamp, uniqueIndex } from 'drizzle-orm/pg-core';
import { partners } from './partners.ts';
import { creditLedgerEntries } from './credit.ts';
import { operatorApiKeys } from './operator.ts';

export const topUpStatuses = ['pending', 'credited', 'failed', 'expired'] as const;
export type TopUpStatus = (typeof topUpStatuses)[number];
export const topUpMethods = ['bank_transfer', 'card'] as const;
export type TopUpMethod = (typeof topUpMethods)[number];

/**
 * Money a partner means to send. Created `pending` by the partner with a payment reference to quote; only the
 * provider's side (an operator's confirmation, a matched bank statement line or, for cards, Stripe's verified
 * webhook) makes it `credited`, in the transaction that appends the ledger entry, exactly once.
 */
export const topUps = pgTable(
  'top_ups',
  {
    id: text('id').primaryKey(),
    partnerId: text('partner_id').notNull().references(() => partners.id),
    amountCents: bigint('amount_cents', { mode: 'number' }).notNull(),
    currency: text('currency').notNull().default('EUR'),
    method: text('method', { enum: topUpMethods }).notNull(),
    status: text('status', { enum: topUpStatuses }).notNull(),
    /** What the partner quotes in the transfer's remittance information; unique across partners. */
    paymentReference: text('payment_reference').notNull(),
    /** The partner's own reference or note, free text, never used for matching. */
    partnerReference: text('partner_reference'),
    description: text('description'),
    expiresAt: timestamp('expires_at', { withTimezone: true, mode: 'date' }).notNull(),
    creditedAt: timestamp('credited_at', { withTimezone: true, mode: 'date' }),
    ledgerEntryId: text('ledger_entry_id').references(() => creditLedgerEntries.id),
    failedAt: timestamp('failed_at', { withTimezone: true, mode: 'date' }),
    failureReason: text('failure_reason'),
    expiredAt: timestamp('expired_at', { withTimezone: true, mode: 'date' }),
    /** Paid back to the partner by operators (`top_up_refund` ledger entries), never more than the amount. */
    refundedCents: bigint('refunded_cents', { mode: 'number' }).notNull().default(0),
    requestId: text('request_id'),
    /** Card top-ups: the Stripe Checkout Session that collects the gross amount (one per top-up), and its page. */
    stripeCheckoutSessionId: text('stripe_checkout_session_id'),
    stripeCheckoutUrl: text('stripe_checkout_url'),
    /** The PaymentIntent that paid the session, from the webhook that credited it (what a Stripe refund names). */
    stripePaymentIntentId: text('stripe_payment_intent_id'),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull(),
    updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull(),
  },
  (t) => [
    uniqueIndex('top_ups_payment_reference_key').on(t.paymentReference),
    uniqueIndex('top_ups_stripe_checkout_session_key').on(t.stripeCheckoutSessionId),
    uniqueIndex('top_ups_ledger_entry_key').on(t.ledgerEntryId),
    index('top_ups_partner_idx').on(t.partnerId, t.id),
    index('top_ups_status_idx').on(t.status, t.expiresAt),
    check('top_ups_amount_check', sql`${t.amountCents} > 0`),
    check('top_ups_status_check', sql`${t.status} in ('pending','credited','failed','expired')`),
    check('top_ups_method_check', sql`${t.method} in ('bank_transfer','card')`),
    check('top_ups_card_session_check', sql`(${t.method} = 'card') = (${t.stripeCheckoutSessionId} is not null)`),
    check('top_ups_credited_check', sql`(${t.status} = 'credited') = (${t.ledgerEntryId} is not null and ${t.creditedAt} is not null)`),
    check('top_ups_refunded_check', sql`${t.refundedCents} >= 0 and ${t.refundedCents} <= ${t.amountCents} and (${t.refundedCents} = 0 or ${t.status} = 'credited')`),
  ],
);

/** One imported CAMT.053 document (its group header), kept with the SHA-256 of the file. */
export const bankStatements = pgTable(
  'bank_statements',
  {
    id: text('id').primaryKey(),
    messageId: text('message_id').notNull(),
    /** The statement ids (`Stmt/Id`) in the document. */
    statementIds: text('statement_ids').array().notNull(),
    accountIban: text('account_iban'),
    sha256: text('sha256').notNull(),
    entries: bigint('entries', { mode: 'number' }).notNull(),
    importedBy: text('imported_by').references(() => operatorApiKeys.id),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull(),
  },
  (t) => [index('bank_statements_created_idx').on(t.createdAt)],
);

export const bankStatementLineStatuses = ['matched', 'unmatched', 'ignored'] as const;
export type BankStatementLineStatus = (typeof bankStatementLineStatuses)[number];

/**
 * One booked entry of a statement. `entry_reference` (AcctSvcrRef, else NtryRef) is unique per account, so
 * importing the same statement again adds nothing and credits nothing twice. Credit entries that match a pending
 * top-up by reference and exact amount are `matched`; other credits are `unmatched` with a reason for the
 * operator; debits are `ignored`.
 */
export const bankStatementLines = pgTable(
  'bank_statement_lines',
  {
    id: text('id').primaryKey(),
    statementId: text('statement_id').notNull().references(() => bankStatements.id),
    accountIban: text('account_iban').notNull(),
    entryReference: text('entry_reference').notNull(),
    creditDebit: text('credit_debit', { enum: ['credit', 'debit'] }).notNull(),
    amountCents: bigint('amount_cents', { mode: 'number' }).notNull(),
    currency: text('currency').notNull(),
    bookingDate: date('booking_date'),
    valueDate: date('value_date'),
    remittanceInformation: text('remittance_information'),
    debtorName: text('debtor_name'),
    debtorIban: text('debtor_iban'),
    status: text('status', { enum: bankStatementLineStatuses }).notNull(),
    /** Why an unmatched line did not match: `unknown_reference`, `amount_mismatch`, `top_up_not_pending`, `currency`. */
    mismatchReason: text('mismatch_reason'),
    topUpId: text('top_up_id').references(() => topUps.id),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull(),
  },
  (t) => [
    uniqueIndex('bank_statement_lines_entry_key').on(t.accountIban, t.entryReference),
    uniqueIndex('bank_statement_lines_top_up_key').on(t.topUpId).where(sql`${t.status} = 'matched'`),
    index('bank_statement_lines_status_idx').on(t.status, t.id),
    check('bank_statement_lines_status_check', sql`${t.status} in ('matched','unmatched','ignored')`),
    check('bank_statement_lines_cd_check', sql`${t.creditDebit} in ('credit','debit')`),
    check('bank_statement_lines_amount_check', sql`${t.amountCents} > 0`),
    check('bank_statement_lines_matched_check', sql`(${t.status} = 'matched') = (${t.topUpId} is not null and ${t.mismatchReason} is null)`),
  ],
);

export const stripeEventOutcomes = [
  'credited', 'already_credited', 'failed', 'expired', 'awaiting_payment', 'amount_mismatch', 'unknown_session', 'top_up_not_creditable', 'ignored',
] as const;
export type StripeEventOutcome = (typeof stripeEventOutcomes)[number];

/**
 * Every verified Stripe webhook event, once: the primary key is Stripe's event id, so a redelivered or replayed
 * event finds its row and changes nothing. Written in the transaction that acts on it (credits, fails, expires the
 * top-up), so an event whose handling failed is not recorded and Stripe's next delivery tries again. Outcomes
 * `amount_mismatch`, `unknown_session` and `top_up_not_creditable` are money that needs an operator.
 */
export const stripeEvents = pgTable(
  'stripe_events',
  {
    id: text('id').primaryKey(),
    type: text('type').notNull(),
    livemode: boolean('livemode').notNull(),
    checkoutSessionId: text('checkout_session_id'),
    topUpId: text('top_up_id').references(() => topUps.id),
    outcome: text('outcome', { enum: stripeEventOutcomes }).notNull(),
    /** The session's `amount_total` and `currency`, as Stripe sent them. */
    amountCents: bigint('amount_cents', { mode: 'number' }),
    currency: text('currency'),
    detail: text('detail'),
    stripeCreatedAt: timestamp('stripe_created_at', { withTimezone: true, mode: 'date' }).notNull(),
    receivedAt: timestamp('received_at', { withTimezone: true, mode: 'date' }).notNull(),
  },
  (t) => [
    index('stripe_events_top_up_idx').on(t.topUpId),
    index('stripe_events_outcome_idx').on(t.outcome, t.receivedAt),
    check('stripe_events_outcome_check', sql`${t.outcome} in ('credited','already_credited','failed','expired','awaiting_payment','amount_mismatch','unknown_session','top_up_not_creditable','ignored')`),
  ],
);
