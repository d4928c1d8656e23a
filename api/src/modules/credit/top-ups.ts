import { inTaskScope, type TaskScope } from '../../sandbox/task-scope.ts';
import { randomBytes } from 'node:crypto';
import { and, asc, desc, eq, inArray, lt, lte, sql } from 'drizzle-orm';
import { topUps, type DbOrTx, type TopUpMethod, type TopUpStatus } from '@pec-partner/db';
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
import type { StripeGateway } from '../payments/stripe.ts';
import { isLivePartner, ofLivePartner } from '../../sandbox/test-mode.ts';

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
  method: TopUpMethod;
  status: TopUpStatus;
  payment_reference: string;
  partner_reference: string | null;
  description: string | null;
  bank_transfer: { iban: string; bic: string; beneficiary: string; amount: number; currency: 'EUR'; reference: string } | null;
  card: { checkout_url: string; checkout_session_id: string; amount: number; currency: 'EUR'; payment_intent: string | null } | null;
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
    bank_transfer: bank && row.method === 'bank_transfer'
      ? { iban: bank.iban, bic: bank.bic, beneficiary: bank.beneficiary, amount: grossCents(row.amountCents), currency: 'EUR', reference: row.paymentReference }
      : null,
    card: row.method === 'card' && row.stripeCheckoutSessionId
      ? {
        checkout_url: row.stripeCheckoutUrl ?? '',
        checkout_session_id: row.stripeCheckoutSessionId,
        amount: grossCents(row.amountCents),
        currency: 'EUR',
        payment_intent: row.stripePaymentIntentId,
      }
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

type TopUpAction = 'confirm' | 'fail' | 'refund' | 'expire';
const transitions: Transitions<TopUpStatus, TopUpAction> = {
  // Money that arrives after the 30 days is still money: an operator may credit an expired top-up by hand.
  confirm: ['pending', 'expired', 'credited'],
  fail: ['pending', 'expired'],
  refund: ['credited'],
  expire: ['pending', 'expired'],
};

export interface CreateTopUp {
  partnerId: string;
  amount: number;
  partnerReference?: string | undefined;
  description?: string | undefined;
  requestId?: string | null;
  /** Default `bank_transfer`. */
  method?: TopUpMethod | undefined;
  /** Card top-ups: where Stripe's checkout page sends the payer back. */
  checkout?: { successUrl: string; cancelUrl: string } | undefined;
}

/** A card checkout that is not paid within this time is closed by Stripe (its default), and so is the top-up. */
const CARD_CHECKOUT_HOURS = 24;

/**
 * A pending top-up with a fresh reference; nothing is credited until the provider sees the money. Every credited
 * top-up is invoiced, so a partner whose fiscal data is incomplete is refused here (409 `fiscal_data_required`),
 * before it can send money that could not be invoiced. In test mode (a test twin) nothing is ever invoiced, so no
 * fiscal data is asked for.
 *
 * A card top-up opens its Stripe Checkout Session first, then stores the top-up with it in one transaction: when
 * Stripe fails, nothing is written (502 `payment_provider_unavailable`); when storing fails, the session is closed.
 * The sandbox takes no cards: real money never enters a test world, whose top-ups the test helpers settle.
 */
export async function createTopUp(
  db: DbOrTx, clock: Clock, bank: BankAccountConfig | null, input: CreateTopUp, stripe: StripeGateway | null = null,
): Promise<TopUpView> {
  const method = input.method ?? 'bank_transfer';
  if (method === 'bank_transfer' && !bank) {
    throw new ProblemError(503, 'payment_method_unavailable', 'Service unavailable',
      'Bank transfer top-ups are not configured on this server (PROVIDER_IBAN, PROVIDER_BENEFICIARY, PROVIDER_BIC).');
  }
  if (method === 'card' && !stripe) {
    throw new ProblemError(422, 'payment_method_unavailable', 'Unprocessable request',
      'Card top-ups are not offered by this server (no payment provider is configured); ask for a bank transfer (`method: "bank_transfer"`).',
      { method: 'card' });
  }
  if (method === 'card' && !(await isLivePartner(db, input.partnerId))) {
    throw new ProblemError(422, 'payment_method_unavailable', 'Unprocessable request',
      'The sandbox takes no card payments: create a bank transfer top-up and settle it with `POST /v1/test_helpers/top-ups/{id}/credit` (or `/fail`, `/expire`).',
      { method: 'card' });
  }
  if (method === 'card' && !input.checkout) throw new Error('a card top-up needs its checkout URLs');
  for (let attempt = 0; ; attempt++) {
    const now = clock.now();
    const id = newId('top', now);
    const paymentReference = newPaymentReference();
    let session: Awaited<ReturnType<StripeGateway['createCheckoutSession']>> | null = null;
    try {
      if (method === 'card') {
        // Refused before Stripe is asked: no checkout for money that could not be invoiced.
        await invoiceCustomer(db, input.partnerId);
        session = await stripe!.createCheckoutSession({
          topUpId: id, partnerId: input.partnerId, paymentReference, grossCents: grossCents(input.amount), creditCents: input.amount,
          successUrl: input.checkout!.successUrl, cancelUrl: input.checkout!.cancelUrl,
        });
      }
      return await db.transaction(async (tx) => {
        if (await isLivePartner(tx, input.partnerId)) await invoiceCustomer(tx, input.partnerId);
        const expiresAt = session
          ? (session.expiresAt ?? new Date(now.getTime() + CARD_CHECKOUT_HOURS * 3_600_000))
          : new Date(now.getTime() + TOP_UP_EXPIRES_AFTER_DAYS * DAY_MS);
        const [row] = await tx
          .insert(topUps)
          .values({
            id,
            partnerId: input.partnerId,
            amountCents: input.amount,
            method,
            status: 'pending',
            paymentReference,
            partnerReference: input.partnerReference ?? null,
            description: input.description ?? null,
            expiresAt,
            requestId: input.requestId ?? null,
            stripeCheckoutSessionId: session?.id ?? null,
            stripeCheckoutUrl: session?.url ?? null,
            createdAt: now,
            updatedAt: now,
          })
          .returning();
        const view = topUpView(row!, bank);
        await recordEvent(tx, clock, { partnerId: input.partnerId, type: 'credit.top_up.created', object: view });
        return view;
      });
    } catch (error) {
      // A session was opened for a top-up that was not stored: close it, so nobody can pay into nothing.
      if (session) await stripe!.expireCheckoutSession(session.id);
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
  /** The operator's query: live partners' top-ups only (the sandbox's are its partner's own business). */
  liveOnly?: boolean | undefined;
}

/** Newest first. A partner's query always carries its id (tenancy); the operator's may not, and is `liveOnly`. */
export async function listTopUps(db: DbOrTx, bank: BankAccountConfig | null, query: TopUpQuery): Promise<TopUpView[]> {
  const rows = await db
    .select()
    .from(topUps)
    .where(
      and(
        query.partnerId ? eq(topUps.partnerId, query.partnerId) : undefined,
        query.liveOnly ? ofLivePartner(topUps.partnerId) : undefined,
        query.status ? eq(topUps.status, query.status) : undefined,
        query.paymentReference ? eq(topUps.paymentReference, query.paymentReference) : undefined,
        query.startingAfter ? lt(topUps.id, query.startingAfter) : undefined,
      ),
    )
    .orderBy(desc(topUps.id))
    .limit(query.limit + 1);
  return rows.map((row) => topUpView(row, bank));
}

/**
 * With a partner id, another partner's top-up is a 404 like a missing one; without (the operator), a test-mode
 * top-up is: the operator checks with this before it acts on a top-up by id.
 */
export async function getTopUp(db: DbOrTx, bank: BankAccountConfig | null, id: string, partnerId?: string): Promise<TopUpView> {
  const [row] = await db.select().from(topUps).where(and(eq(topUps.id, id), partnerId ? eq(topUps.partnerId, partnerId) : ofLivePartner(topUps.partnerId)));
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
  /** What proved the payment: the bank statement line that matched, or Stripe's verified webhook event. */
  source?: { type: 'bank_statement_line' | 'stripe_event'; id: string };
  /** Card payments: the PaymentIntent that paid the checkout, kept on the top-up. */
  stripePaymentIntentId?: string | null;
}

const methodNames: Record<TopUpMethod, string> = { bank_transfer: 'Bank transfer', card: 'Card payment' };

/**
 * Credits a top-up exactly once. The top-up row is locked first, so of concurrent confirmations (operators,
 * statement imports) one credits and the others find it `credited` and return it unchanged; the status change,
 * the ledger entry, the invoice (live only), the events and the audit entry are one transaction.
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
      description: `${methodNames[row.method]} ${row.paymentReference}`,
      item: { type: 'top_up', id: row.id },
      requestId: currentRequest()?.id ?? null,
    }, row.paymentReference);
    // The invoice for the money received, in this transaction: no credit without its invoice, and the reverse.
    // A test-mode top-up received no money: it gets no legal invoice and takes no number of the year's sequence.
    if (await isLivePartner(tx, row.partnerId)) await issueTopUpInvoice(tx, clock, invoicing, {
      partnerId: row.partnerId,
      topUpId: row.id,
      amountCents: row.amountCents,
      creditedAt: new Date(entry.created_at),
      paymentReference: row.paymentReference,
      paymentMethod: row.method,
    });
    const now = clock.now();
    const [updated] = await tx
      .update(topUps)
      .set({
        status: 'credited', creditedAt: now, ledgerEntryId: entry.id, updatedAt: now,
        ...(confirmation.stripePaymentIntentId ? { stripePaymentIntentId: confirmation.stripePaymentIntentId } : {}),
      })
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
      partnerId: row.partnerId, amount, description: `Refund of ${methodNames[row.method].toLowerCase()} ${row.paymentReference}: ${input.reason}`, item: { type: 'top_up', id },
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

/**
 * One pending top-up whose payment window closed before its date (Stripe expired its checkout): `expired`, with
 * its event; an already expired one is returned unchanged. A payment that still arrives may credit it (see confirm).
 */
export async function expireTopUp(db: DbOrTx, clock: Clock, bank: BankAccountConfig | null, id: string): Promise<{ topUp: TopUpView; expired: boolean }> {
  return db.transaction(async (tx) => {
    const row = await lockTopUp(tx, id);
    assertTransition(transitions, 'top-up', id, row.status, 'expire');
    if (row.status === 'expired') return { topUp: topUpView(row, bank), expired: false };
    const now = clock.now();
    const [updated] = await tx
      .update(topUps)
      .set({ status: 'expired', expiredAt: now, updatedAt: now })
      .where(eq(topUps.id, id))
      .returning();
    const view = topUpView(updated!, bank);
    await emit(tx, clock, 'credit.top_up.expired', view, { status: 'pending', expired_at: null });
    return { topUp: view, expired: true };
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

/**
 * For the import: the top-ups a statement line may pay, by their references. Live ones only: a test-mode top-up is
 * credited by its test helper, never by money (a transfer quoting its reference stays an unknown reference).
 */
export async function topUpsByReference(tx: DbOrTx, references: string[]): Promise<Row[]> {
  if (references.length === 0) return [];
  return tx.select().from(topUps).where(and(inArray(topUps.paymentReference, references), ofLivePartner(topUps.partnerId))).orderBy(sql`${topUps.id}`);
}
