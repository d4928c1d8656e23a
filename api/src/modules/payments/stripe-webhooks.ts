import { eq } from 'drizzle-orm';
import type Stripe from 'stripe';
import { stripeEvents, topUps, type DbOrTx, type StripeEventOutcome } from '@pec-partner/db';
import type { Clock } from '../../clock.ts';
import type { BankAccountConfig, InvoicingConfig } from '../../config.ts';
import { confirmTopUp, expireTopUp, failTopUp } from '../credit/top-ups.ts';
import { grossCents } from '../invoices/money.ts';
import { recordAudit, type AuditActorRef } from '../operator/audit.ts';

/** Stripe's webhook acts as the system: its credits and failures are in the audit trail with the event id. */
const STRIPE: AuditActorRef = { actor: 'system' };

export interface StripeReceipt {
  received: true;
  /** Stripe's event id, as recorded. */
  event: string;
  /** True when this event had been received before: nothing was done again. */
  duplicate: boolean;
  outcome: StripeEventOutcome;
}

/** The fields of a Checkout Session this handler reads (an event's `data.object`). */
interface SessionFields {
  id?: unknown;
  object?: unknown;
  amount_total?: unknown;
  currency?: unknown;
  payment_status?: unknown;
  payment_intent?: unknown;
  client_reference_id?: unknown;
  metadata?: unknown;
}

const CHECKOUT_EVENTS = new Set([
  'checkout.session.completed', 'checkout.session.async_payment_succeeded', 'checkout.session.async_payment_failed', 'checkout.session.expired',
]);

/** Outcomes that are money or a payment an operator must look at: logged as warnings and kept in the audit trail. */
export const ATTENTION_OUTCOMES: ReadonlySet<StripeEventOutcome> = new Set(['amount_mismatch', 'unknown_session', 'top_up_not_creditable']);

export interface HandlerDeps {
  db: DbOrTx;
  clock: Clock;
  bank: BankAccountConfig | null;
  invoicing: InvoicingConfig;
  warn: (fields: Record<string, unknown>, message: string) => void;
}

/**
 * Acts on one verified Stripe event exactly once. The event's row (primary key: Stripe's event id) is inserted
 * first in the transaction that acts on it: a concurrent delivery of the same event waits on that key and then
 * finds it taken; a later redelivery finds it at once. Either way nothing happens twice. Two different events for
 * one session (completed, then async_payment_succeeded) are kept apart by the top-up's row lock in confirmTopUp:
 * the second finds it credited.
 */
export async function handleStripeEvent(deps: HandlerDeps, event: Stripe.Event): Promise<StripeReceipt> {
  const { db, clock } = deps;
  return db.transaction(async (tx) => {
    const now = clock.now();
    const session = (CHECKOUT_EVENTS.has(event.type) ? (event.data?.object as SessionFields) : null) ?? null;
    const sessionId = typeof session?.id === 'string' ? session.id : null;
    const amount = typeof session?.amount_total === 'number' ? session.amount_total : null;
    const currency = typeof session?.currency === 'string' ? session.currency : null;
    const [claimed] = await tx
      .insert(stripeEvents)
      .values({
        id: event.id,
        type: event.type,
        livemode: event.livemode === true,
        checkoutSessionId: sessionId,
        outcome: 'ignored',
        amountCents: amount,
        currency,
        stripeCreatedAt: new Date((typeof event.created === 'number' ? event.created : Math.floor(now.getTime() / 1000)) * 1000),
        receivedAt: now,
      })
      .onConflictDoNothing({ target: stripeEvents.id })
      .returning({ id: stripeEvents.id });
    if (!claimed) {
      const [seen] = await tx.select({ outcome: stripeEvents.outcome }).from(stripeEvents).where(eq(stripeEvents.id, event.id));
      return { received: true, event: event.id, duplicate: true, outcome: seen?.outcome ?? 'ignored' };
    }
    const settle = async (outcome: StripeEventOutcome, topUp: { id: string; partnerId: string } | null, detail: string | null = null): Promise<StripeReceipt> => {
      const topUpId = topUp?.id ?? null;
      await tx.update(stripeEvents).set({ outcome, topUpId, detail }).where(eq(stripeEvents.id, event.id));
      if (ATTENTION_OUTCOMES.has(outcome)) {
        deps.warn({ stripe_event: event.id, type: event.type, checkout_session: sessionId, top_up: topUpId, outcome }, `Stripe payment needs attention: ${detail}`);
        await recordAudit(tx, clock, STRIPE, {
          action: 'stripe_payment.needs_attention', targetType: topUpId ? 'top_up' : 'stripe_event', targetId: topUpId ?? event.id,
          partnerId: topUp?.partnerId ?? null, reason: detail,
          details: { stripe_event: event.id, type: event.type, outcome, checkout_session: sessionId, amount, currency },
        });
      }
      return { received: true, event: event.id, duplicate: false, outcome };
    };

    if (!session || !sessionId) return settle('ignored', null);
    const [topUp] = await tx.select().from(topUps).where(eq(topUps.stripeCheckoutSessionId, sessionId)).for('update');
    if (!topUp) return settle('unknown_session', null, `Checkout Session ${sessionId} belongs to no top-up (client_reference_id ${String(session.client_reference_id ?? 'none')}).`);
    // Also the metadata we sent must name this top-up: a session id of ours with another top-up in it is not trusted.
    const metadata = (session.metadata ?? {}) as Record<string, unknown>;
    if ((metadata.top_up_id !== undefined && metadata.top_up_id !== topUp.id) || (metadata.partner_id !== undefined && metadata.partner_id !== topUp.partnerId)) {
      return settle('unknown_session', topUp, `Checkout Session ${sessionId} carries metadata of another top-up or partner.`);
    }

    switch (event.type) {
      case 'checkout.session.completed':
      case 'checkout.session.async_payment_succeeded': {
        // A completed session paid by a delayed method (SEPA debit…) is `unpaid` until async_payment_succeeded.
        if (session.payment_status !== 'paid') return settle('awaiting_payment', topUp);
        const expected = grossCents(topUp.amountCents);
        if (amount !== expected || currency?.toLowerCase() !== 'eur') {
          return settle('amount_mismatch', topUp,
            `Stripe reports ${amount ?? '?'} ${currency ?? '?'} paid for top-up ${topUp.id}, which expects ${expected} eur: not credited.`);
        }
        if (topUp.status === 'credited') return settle('already_credited', topUp);
        if (topUp.status === 'failed') {
          return settle('top_up_not_creditable', topUp, `Stripe reports top-up ${topUp.id} paid, but it is failed: not credited; refund or credit by hand.`);
        }
        const paymentIntent = typeof session.payment_intent === 'string' ? session.payment_intent : null;
        const { credited } = await confirmTopUp(tx, clock, deps.bank, deps.invoicing, STRIPE, topUp.id, {
          reason: `Card payment through Stripe Checkout (event ${event.id})`,
          source: { type: 'stripe_event', id: event.id },
          stripePaymentIntentId: paymentIntent,
        });
        return settle(credited ? 'credited' : 'already_credited', topUp);
      }
      case 'checkout.session.async_payment_failed': {
        if (topUp.status !== 'pending' && topUp.status !== 'expired') return settle('ignored', topUp, `top-up is ${topUp.status}`);
        await failTopUp(tx, clock, deps.bank, STRIPE, topUp.id, 'The card payment failed (Stripe: checkout.session.async_payment_failed).');
        return settle('failed', topUp);
      }
      case 'checkout.session.expired': {
        if (topUp.status !== 'pending') return settle('ignored', topUp, `top-up is ${topUp.status}`);
        await expireTopUp(tx, clock, deps.bank, topUp.id);
        return settle('expired', topUp);
      }
      default:
        return settle('ignored', topUp);
    }
  });
}
