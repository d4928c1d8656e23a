import Stripe from 'stripe';
import type { StripeConfig } from '../../config.ts';
import { ProblemError } from '../../http/problem.ts';

/** What a card top-up asks Stripe for. */
export interface CheckoutRequest {
  topUpId: string;
  partnerId: string;
  paymentReference: string;
  /** Euro cents to charge: the credit plus VAT, as invoiced. */
  grossCents: number;
  /** The credit, net of VAT, for the line item's description. */
  creditCents: number;
  successUrl: string;
  cancelUrl: string;
}

export interface CheckoutSession {
  id: string;
  url: string;
  /** When Stripe closes the session (24 h by default); null when the answer does not say. */
  expiresAt: Date | null;
}

/**
 * The provider's Stripe account through Stripe's official library: Checkout Sessions for card top-ups and the
 * signature check of Stripe's webhooks. The library does the request signing, retries with the idempotency key,
 * API versioning and the timing-safe HMAC comparison with its timestamp tolerance, which we would otherwise copy.
 */
export class StripeGateway {
  readonly client: Stripe;

  constructor(private readonly config: StripeConfig) {
    this.client = new Stripe(config.secretKey, {
      // One retry on network errors and 5xx answers; the idempotency key makes it safe (the same session comes back).
      maxNetworkRetries: 1,
      timeout: 15_000,
      telemetry: false,
      appInfo: { name: 'pec-partner' },
      ...(config.api ? { host: config.api.host, port: config.api.port, protocol: config.api.protocol } : {}),
    });
  }

  /**
   * One Checkout Session per top-up: the idempotency key is derived from the top-up id, so a retried call (by the
   * library, or by us after a lost answer) gets the same session back from Stripe instead of a second one.
   */
  async createCheckoutSession(request: CheckoutRequest): Promise<CheckoutSession> {
    const metadata = { top_up_id: request.topUpId, partner_id: request.partnerId, payment_reference: request.paymentReference };
    const credit = (request.creditCents / 100).toFixed(2);
    let session: Stripe.Checkout.Session;
    try {
      session = await this.client.checkout.sessions.create(
        {
          mode: 'payment',
          client_reference_id: request.topUpId,
          metadata,
          payment_intent_data: { metadata, description: `PEC Partner credit top-up ${request.paymentReference}` },
          line_items: [
            {
              quantity: 1,
              price_data: {
                currency: 'eur',
                unit_amount: request.grossCents,
                product_data: {
                  name: `Prepaid credit ${request.paymentReference}`,
                  description: `€${credit} of credit plus 22 % VAT`,
                },
              },
            },
          ],
          success_url: request.successUrl,
          cancel_url: request.cancelUrl,
        },
        { idempotencyKey: `pec-partner-top-up-${request.topUpId}` },
      );
    } catch (error) {
      throw providerProblem(error);
    }
    if (!session.id || !session.url) {
      throw new ProblemError(502, 'payment_provider_unavailable', 'Bad gateway', 'Stripe answered without a checkout session URL; no top-up was created. Retry later or pay by bank transfer.');
    }
    return { id: session.id, url: session.url, expiresAt: typeof session.expires_at === 'number' ? new Date(session.expires_at * 1000) : null };
  }

  /** Best effort: closes a session whose top-up could not be stored, so nobody can pay into nothing. */
  async expireCheckoutSession(id: string): Promise<void> {
    await this.client.checkout.sessions.expire(id).catch(() => undefined);
  }

  /**
   * The event of a webhook delivery, verified with the endpoint's signing secret over the exact bytes received.
   * `now` is the server's clock: a signature older than the library's tolerance (300 s) is refused, so a captured
   * delivery cannot be replayed later.
   */
  verifyEvent(payload: Buffer, signature: string | undefined, now: Date): Stripe.Event {
    if (!signature) throw invalidSignature('The Stripe-Signature header is missing.');
    try {
      return this.client.webhooks.constructEvent(payload, signature, this.config.webhookSecret, undefined, undefined, now.getTime());
    } catch (error) {
      if (error instanceof Stripe.errors.StripeSignatureVerificationError) {
        throw invalidSignature(/tolerance/i.test(error.message)
          ? 'The Stripe-Signature timestamp is outside the tolerance (300 s): a stale or replayed delivery.'
          : 'The Stripe-Signature header does not verify with the endpoint\'s signing secret.');
      }
      // A valid signature over a body that is not an event (constructEvent parses the JSON after verifying).
      throw new ProblemError(400, 'invalid_payload', 'Invalid request', 'The webhook body is not a Stripe event.');
    }
  }
}

function invalidSignature(detail: string): ProblemError {
  return new ProblemError(400, 'invalid_signature', 'Invalid request', detail);
}

/** Stripe did not give us a session: unreachable, slow, or refusing (our key, our request). */
function providerProblem(error: unknown): ProblemError {
  const stripeError = error instanceof Stripe.errors.StripeError ? error : null;
  const detail = !stripeError || stripeError instanceof Stripe.errors.StripeConnectionError
    ? 'Stripe could not be reached to open the card checkout; no top-up was created. Retry later or pay by bank transfer.'
    : `Stripe refused to open the card checkout (${stripeError.type}${stripeError.code ? `, ${stripeError.code}` : ''}); no top-up was created. Retry later or pay by bank transfer.`;
  return new ProblemError(502, 'payment_provider_unavailable', 'Bad gateway', detail, stripeError ? { provider_error: stripeError.type } : {});
}

const gateways = new WeakMap<StripeConfig, StripeGateway>();

/** One gateway per configuration (the library keeps connections alive); null when Stripe is not configured. */
export function stripeGateway(config: StripeConfig | null): StripeGateway | null {
  if (!config) return null;
  let gateway = gateways.get(config);
  if (!gateway) gateways.set(config, (gateway = new StripeGateway(config)));
  return gateway;
}
