import { inTaskScope, type TaskScope } from '../../sandbox/task-scope.ts';
import { randomBytes } from 'node:crypto';
import { and, asc, desc, eq, inArray, lt, lte, sql } from 'drizzle-orm';
import { topUps, type DbOrTx, type TopUpStatus } from '@pec-partner/db';
import type { Clock } from '../../clock.ts';
import type { BankAccountConfig, InvoicingConfig } from '../../config.ts';
import { newId } from '../../ids.ts';
import { conflict, notFound, ProblemError } from '../../http/problem.ts';
import { isUniqueViolation } from '../../db-errors.ts';
import { assertTransition, type Transitions } from '../../state-machine.ts';
import { recordEvent } from '../../events/record.ts';
import { currentRequest } from '../../events/request-context.ts';
import type { EventType } from '../../events/catalogue.ts';
import { recordAudit, type AuditActorRef } from '../operator/audit.ts';
import { postMovement, formatEuro } from './service.ts';
import { invoiceCustomer } from '../account/service.ts';
import { issueTopUpInvoice } from '../invoices/service.ts';
import { grossCents } from '../invoices/money.ts';

/** A pending top-up waits this long for its money, then the daily task marks it `expired`. */
export const TOP_UP_EXPIRES_AFTER_DAYS = 30;
const DAY_MS = 86_400_000;

/** Crockford base 32 in upper case: no I, L, O, U, so a reference read aloud or retyped survives. */
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const REFERENCE_BODY = 12;

/** `PEC-7K2M-9QXD-4TRA`: 60 random bits, grouped for humans; matching ignores the dashes, spaces and case. */
export function newPaymentReference(): string {
  const bytes = randomBytes(REFERENCE_BODY);
  let body = '';
  for (const byte of bytes) body += ALPHABET[byte & 31];
  return `PEC-${body.slice(0, 4)}-${body.slice(4, 8)}-${body.slice(8, 12)}`;
}

/** Every payment reference a remittance text may carry, in the form stored (`PEC-XXXX-XXXX-XXXX`). */
export function referencesIn(remittance: string): string[] {
  const compact = remittance.toUpperCase().replace(/[^0-9A-Z]/g, '');
  const found = new Set<string>();
  // A lookahead, so matches may overlap: in `…CREDITO PEC PEC-7K2M-…` the first `PEC` must not swallow the second.
  for (const match of compact.matchAll(new RegExp(`(?=PEC([${ALPHABET}]{${REFERENCE_BODY}}))`, 'g'))) {
    const body = match[1]!;
    found.add(`PEC-${body.slice(0, 4)}-${body.slice(4, 8)}-${body.slice(8, 12)}`);
  }
  return [...found];
}

export type TopUpView = {
  id: string;
  object: 'top_up';
  partner: string;
  /** The credit, net of VAT. */
  amount: number;
  currency: 'EUR';
  method: 'bank_transfer';
  status: TopUpStatus;
  payment_reference: string;
  partner_reference: string | null;
  description: string | null;
  bank_transfer: { iban: string; bic: string; beneficiary: string; amount: number; currency: 'EUR'; reference: string } | null;
  expires_at: string;
  credited_at: string | null;
  ledger_entry: string | null;
  failed_at: string | null;
  failure_reason: string | null;
  expired_at: string | null;
  refunded_amount: number;
  created_at: string;
};

type Row = typeof topUps.$inferSelect;

export function topUpView(row: Row, bank: BankAccountConfig | null): TopUpView {
  return {
    id: row.id,
    object: 'top_up',
    partner: row.partnerId,
    amount: row.amountCents,
    currency: 'EUR',
    method: row.method,
    status: row.status,
    payment_reference: row.paymentReference,
    partner_reference: row.partnerReference,
    description: row.description,
    bank_transfer: bank
      ? { iban: bank.iban, bic: bank.bic, beneficiary: bank.beneficiary, amount: grossCents(row.amountCents), currency: 'EUR', reference: row.paymentReference }
      : null,
    expires_at: row.expiresAt.toISOString(),
    credited_at: row.creditedAt?.toISOString() ?? null,
    ledger_entry: row.ledgerEntryId,
    failed_at: row.failedAt?.toISOString() ?? null,
    failure_reason: row.failureReason,
    expired_at: row.expiredAt?.toISOString() ?? null,
    refunded_amount: row.refundedCents,
    created_at: row.createdAt.toISOString(),
  };
}

type TopUpAction = 'confirm' | 'fail' | 'refund';
const transitions: Transitions<TopUpStatus, TopUpAction> = {
  // Money that arrives after the 30 days is still money: an operator may credit an expired top-up by hand.
  confirm: ['pending', 'expired', 'credited'],
  fail: ['pending', 'expired'],
  refund: ['credited'],
};

export interface CreateTopUp {
  partnerId: string;
  amount: number;
  partnerReference?: string | undefined;
  description?: string | undefined;
  requestId?: string | null;
}

/**
 * A pending top-up with a fresh reference; nothing is credited until the provider sees the money. Every credited
 * top-up is invoiced, so a partner whose fiscal data is incomplete is refused here (409 `fiscal_data_required`),
 * before it can send money that could not be invoiced.
 */
export async function createTopUp(db: DbOrTx, clock: Clock, bank: BankAccountConfig | null, input: CreateTopUp): Promise<TopUpView> {
  if (!bank) {
    throw new ProblemError(503, 'payment_method_unavailable', 'Service unavailable',
      'Bank transfer top-ups are not configured on this server (PROVIDER_IBAN, PROVIDER_BENEFICIARY, PROVIDER_BIC).');
  }
  for (let attempt = 0; ; attempt++) {
    try {
      return await db.transaction(async (tx) => {
        await invoiceCustomer(tx, input.partnerId);
        const now = clock.now();
        const [row] = await tx
          .insert(topUps)
          .values({
            id: newId('top', now),
            partnerId: input.partnerId,
            amountCents: input.amount,
            method: 'bank_transfer',
            status: 'pending',
            paymentReference: newPaymentReference(),
            partnerReference: input.partnerReference ?? null,
            description: input.description ?? null,
            expiresAt: new Date(now.getTime() + TOP_UP_EXPIRES_AFTER_DAYS * DAY_MS),
            requestId: input.requestId ?? null,
            createdAt: now,
            updatedAt: now,
          })
          .returning();
        const view = topUpView(row!, bank);
        await recordEvent(tx, clock, { partnerId: input.partnerId, type: 'credit.top_up.created', object: view });
        return view;
      });
    } catch (error) {
      // 60 random bits make a clash very unlikely; a clash is retried with a new reference, never reused.
      if (attempt < 3 && isUniqueViolation(error, 'top_ups_payment_reference_key')) continue;
      throw error;
    }
  }
}

export interface TopUpQuery {
  limit: number;
  startingAfter?: string | undefined;
  partnerId?: string | undefined;
  status?: TopUpStatus | undefined;
  paymentReference?: string | undefined;
}

/** Newest first. A partner's query always carries its id (tenancy); the operator's may not. */
export async function listTopUps(db: DbOrTx, bank: BankAccountConfig | null, query: TopUpQuery): Promise<TopUpView[]> {
  const rows = await db
    .select()
    .from(topUps)
    .where(
      and(
        query.partnerId ? eq(topUps.partnerId, query.partnerId) : undefined,
        query.status ? eq(topUps.status, query.status) : undefined,
        query.paymentReference ? eq(topUps.paymentReference, query.paymentReference) : undefined,
        query.startingAfter ? lt(topUps.id, query.startingAfter) : undefined,
      ),
    )
    .orderBy(desc(topUps.id))
    .limit(query.limit + 1);
  return rows.map((row) => topUpView(row, bank));
}

/** With a partner id, another partner's top-up is a 404 like a missing one. */
export async function getTopUp(db: DbOrTx, bank: BankAccountConfig | null, id: string, partnerId?: string): Promise<TopUpView> {
  const [row] = await db.select().from(topUps).where(and(eq(topUps.id, id), partnerId ? eq(topUps.partnerId, partnerId) : undefined));
  if (!row) throw notFound('top-up', id);
  return topUpView(row, bank);
}

async function lockTopUp(tx: DbOrTx, id: string): Promise<Row> {
  const [row] = await tx.select().from(topUps).where(eq(topUps.id, id)).for('update');
  if (!row) throw notFound('top-up', id);
  return row;
}

async function emit(tx: DbOrTx, clock: Clock, type: EventType, view: TopUpView, previous?: Partial<TopUpView>) {
  await recordEvent(tx, clock, { partnerId: view.partner, type, object: view, ...(previous ? { previousAttributes: previous } : {}) });
}

export interface Confirmation {
  reason: string;
  /** What proved the payment: the bank statement line that matched, when it was one. */
  source?: { type: 'bank_statement_line'; id: string };
}

/**
 * Credits a top-up exactly once. The top-up row is locked first, so of concurrent confirmations (operators,
 * statement imports) one credits and the others find it `credited` and return it unchanged; the status change,
 * the ledger entry, the invoice, the events and the audit entry are one transaction.
 */
export async function confirmTopUp(
  db: DbOrTx, clock: Clock, bank: BankAccountConfig | null, invoicing: InvoicingConfig, by: AuditActorRef, id: string, confirmation: Confirmation,
): Promise<{ topUp: TopUpView; credited: boolean }> {
  return db.transaction(async (tx) => {
    const row = await lockTopUp(tx, id);
    assertTransition(transitions, 'top-up', id, row.status, 'confirm');
    if (row.status === 'credited') return { topUp: topUpView(row, bank), credited: false };
    const before = topUpView(row, bank);
    const entry = await postMovement(tx, clock, 'top_up', row.amountCents, {
      partnerId: row.partnerId,
      amount: row.amountCents,
      description: `Bank transfer ${row.paymentReference}`,
      item: { type: 'top_up', id: row.id },
      requestId: currentRequest()?.id ?? null,
    }, row.paymentReference);
    // The invoice for the money received, in this transaction: no credit without its invoice, and the reverse.
    await issueTopUpInvoice(tx, clock, invoicing, {
      partnerId: row.partnerId,
      topUpId: row.id,
      amountCents: row.amountCents,
      creditedAt: new Date(entry.created_at),
      paymentReference: row.paymentReference,
      paymentMethod: 'bank_transfer',
    });
    const now = clock.now();
    const [updated] = await tx
      .update(topUps)
      .set({ status: 'credited', creditedAt: now, ledgerEntryId: entry.id, updatedAt: now })
      .where(eq(topUps.id, id))
      .returning();
    const view = topUpView(updated!, bank);
    await emit(tx, clock, 'credit.top_up.credited', view, { status: before.status, credited_at: null, ledger_entry: null });
    await recordAudit(tx, clock, by, {
      action: 'top_up.confirmed', targetType: 'top_up', targetId: id, partnerId: row.partnerId, reason: confirmation.reason,
      details: { amount: row.amountCents, ledger_entry: entry.id, payment_reference: row.paymentReference, ...(confirmation.source ? { source: confirmation.source } : {}) },
    });
    return { topUp: view, credited: true };
  });
}

/** The money will not come (or came back): the top-up ends `failed`; nothing was credited, so nothing moves. */
export async function failTopUp(db: DbOrTx, clock: Clock, bank: BankAccountConfig | null, by: AuditActorRef, id: string, reason: string): Promise<TopUpView> {
  return db.transaction(async (tx) => {
    const row = await lockTopUp(tx, id);
    assertTransition(transitions, 'top-up', id, row.status, 'fail');
    const now = clock.now();
    const [updated] = await tx
      .update(topUps)
      .set({ status: 'failed', failedAt: now, failureReason: reason, updatedAt: now })
      .where(eq(topUps.id, id))
      .returning();
    const view = topUpView(updated!, bank);
    await emit(tx, clock, 'credit.top_up.failed', view, { status: row.status, failed_at: null, failure_reason: null });
    await recordAudit(tx, clock, by, { action: 'top_up.failed', targetType: 'top_up', targetId: id, partnerId: row.partnerId, reason, details: { amount: row.amountCents } });
    return view;
  });
}

/**
 * Pays part or all of a credited top-up back to the partner (outside the system, by the provider's bank): a
 * `top_up_refund` ledger entry debits the credit. Never more than the top-up nor than the balance.
 */
export async function refundTopUp(
  db: DbOrTx, clock: Clock, bank: BankAccountConfig | null, by: AuditActorRef, id: string, input: { amount?: number | undefined; reason: string },
): Promise<{ topUp: TopUpView; ledgerEntry: string }> {
  return db.transaction(async (tx) => {
    const row = await lockTopUp(tx, id);
    assertTransition(transitions, 'top-up', id, row.status, 'refund');
    const left = row.amountCents - row.refundedCents;
    if (left <= 0) throw conflict('top_up_fully_refunded', `Top-up '${id}' has been refunded in full already.`, { refundable: 0 });
    const amount = input.amount ?? left;
    if (amount > left) {
      throw conflict('refund_exceeds_top_up', `At most ${formatEuro(left)} of top-up '${id}' is left to refund; asked for ${formatEuro(amount)}.`, { refundable: left });
    }
    const entry = await postMovement(tx, clock, 'top_up_refund', -amount, {
      partnerId: row.partnerId, amount, description: `Refund of bank transfer ${row.paymentReference}: ${input.reason}`, item: { type: 'top_up', id },
      requestId: currentRequest()?.id ?? null,
    });
    const [updated] = await tx
      .update(topUps)
      .set({ refundedCents: row.refundedCents + amount, updatedAt: clock.now() })
      .where(eq(topUps.id, id))
      .returning();
    const view = topUpView(updated!, bank);
    await emit(tx, clock, 'credit.top_up.refunded', view, { refunded_amount: row.refundedCents });
    await recordAudit(tx, clock, by, { action: 'top_up.refunded', targetType: 'top_up', targetId: id, partnerId: row.partnerId, reason: input.reason, details: { amount, ledger_entry: entry.id } });
    return { topUp: view, ledgerEntry: entry.id };
  });
}

const EXPIRY_BATCH = 100;

/** The daily task: pending top-ups past their date become `expired`, each with its event; safe in several processes. */
export async function expireTopUps(db: DbOrTx, clock: Clock, bank: BankAccountConfig | null, now: Date, scope: TaskScope = {}): Promise<number> {
  let total = 0;
  for (;;) {
    const expired = await db.transaction(async (tx) => {
      const due = await tx
        .select({ id: topUps.id })
        .from(topUps)
        .where(and(eq(topUps.status, 'pending'), lte(topUps.expiresAt, now), inTaskScope(topUps.partnerId, scope)))
        .orderBy(asc(topUps.expiresAt))
        .limit(EXPIRY_BATCH)
        .for('update', { skipLocked: true });
      if (due.length === 0) return 0;
      const rows = await tx
        .update(topUps)
        .set({ status: 'expired', expiredAt: now, updatedAt: now })
        .where(and(inArray(topUps.id, due.map((d) => d.id)), eq(topUps.status, 'pending')))
        .returning();
      for (const row of rows) await emit(tx, clock, 'credit.top_up.expired', topUpView(row, bank), { status: 'pending', expired_at: null });
      return rows.length;
    });
    total += expired;
    if (expired < EXPIRY_BATCH) return total;
  }
}

/** For the import: the top-ups a statement line may pay, by their references. */
export async function topUpsByReference(tx: DbOrTx, references: string[]): Promise<Row[]> {
  if (references.length === 0) return [];
  return tx.select().from(topUps).where(inArray(topUps.paymentReference, references)).orderBy(sql`${topUps.id}`);
}
