import { Type } from 'typebox';
import { stripeEventOutcomes } from '@pec-partner/db';
import type { App, AppDeps } from '../../deps.ts';
import { problemResponses, ProblemError } from '../../http/problem.ts';
import { stripeGateway } from './stripe.ts';
import { handleStripeEvent } from './stripe-webhooks.ts';

const StripeWebhookReceipt = Type.Object(
  {
    received: Type.Literal(true),
    event: Type.String({ description: "Stripe's event id." }),
    duplicate: Type.Boolean({ description: 'The event had been received before: nothing was done again.' }),
    outcome: Type.Enum(stripeEventOutcomes, {
      description:
        'What the event did: `credited`, `already_credited`, `failed`, `expired`, `awaiting_payment` (a delayed payment method), ' +
        '`ignored`; `amount_mismatch`, `unknown_session` and `top_up_not_creditable` credit nothing and are flagged for the operator.',
    }),
  },
  { title: 'StripeWebhookReceipt' },
);

/** Stripe's deliveries are small; a larger body is not one of them. */
const MAX_EVENT_BYTES = 512 * 1024;

/**
 * The receiving end of Stripe's webhooks. Public (Stripe has no API key of ours): the proof is the
 * `Stripe-Signature` header, an HMAC over the exact bytes received, so the body is kept raw, never parsed and
 * re-serialised before it is verified.
 */
export async function paymentRoutes(app: App, { db, clock, config }: AppDeps): Promise<void> {
  await app.register(async (scope: App) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: MAX_EVENT_BYTES }, (_request, body, done) => done(null, body));

    scope.post('/v1/payments/stripe/webhook', {
      config: { public: true },
      schema: {
        operationId: 'receiveStripeWebhook',
        tags: ['Credit'],
        summary: "Stripe's webhook endpoint (card top-ups)",
        description:
          "For Stripe only: configure this URL in Stripe's dashboard with the events `checkout.session.completed`, " +
          '`checkout.session.async_payment_succeeded`, `checkout.session.async_payment_failed` and `checkout.session.expired`. ' +
          'Body: the event as Stripe sends it; it must verify with the endpoint\'s signing secret (`Stripe-Signature`, at most ' +
          '300 s old), otherwise 400 `invalid_signature` and nothing changes. A paid session credits its top-up exactly once, ' +
          'however often the event is delivered; other events are answered 200 and ignored. 404 `payment_method_unavailable` ' +
          'when card payments are not configured.',
        security: [],
        response: { 200: StripeWebhookReceipt, ...problemResponses(404) },
      },
    }, async (request) => {
      const stripe = stripeGateway(config.stripe);
      if (!stripe) {
        throw new ProblemError(404, 'payment_method_unavailable', 'Resource not found', 'Card payments are not configured on this server.');
      }
      const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
      const header = request.headers['stripe-signature'];
      const event = stripe.verifyEvent(body, Array.isArray(header) ? header[0] : header, clock.now());
      const receipt = await handleStripeEvent(
        { db, clock, bank: config.bankAccount, invoicing: config.invoicing, warn: (fields, message) => request.log.warn(fields, message) },
        event,
      );
      request.log.info({ stripe_event: event.id, type: event.type, outcome: receipt.outcome, duplicate: receipt.duplicate }, 'stripe webhook');
      return receipt;
    });
  });
}
