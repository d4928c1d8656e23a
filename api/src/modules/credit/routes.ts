import { Type, type TSchema } from 'typebox';
import { ledgerEntryKinds } from '@pec-partner/db';
import type { App, AppDeps } from '../../deps.ts';
import { partnerOf } from '../../http/auth.ts';
import { ListOf, ListQuery, toPage } from '../../http/pagination.ts';
import { invalid, problemResponses, type FieldError } from '../../http/problem.ts';
import { Price, priceObjects } from './prices.ts';
import { priceScheduleFor } from './price-lists.ts';
import { getBalance, listLedger, setLowBalanceThreshold } from './service.ts';
import { topUpMethods, topUpStatuses } from '@pec-partner/db';
import { stripeGateway } from '../payments/stripe.ts';
import { createTopUp, getTopUp, listTopUps, TOP_UP_EXPIRES_AFTER_DAYS } from './top-ups.ts';

export const LedgerEntry = Type.Object(
  {
    id: Type.String({ description: 'Prefixed `txn_`.' }),
    object: Type.Literal('ledger_entry'),
    type: Type.Enum(ledgerEntryKinds),
    amount: Type.Integer({ description: 'Signed euro cents: positive credits the balance, negative debits it.' }),
    balance_after: Type.Integer({ description: 'Balance in euro cents right after this entry.' }),
    currency: Type.Literal('EUR'),
    description: Type.String(),
    item: Type.Union([
      Type.Object({ type: Type.String(), id: Type.String() }, { title: 'LedgerItem', description: 'What the entry paid for.' }),
      Type.Null(),
    ]),
    payment_reference: Type.Union([Type.String(), Type.Null()]),
    request_id: Type.Union([Type.String(), Type.Null()], { description: 'The API request that caused the entry.' }),
    created_at: Type.String({ format: 'date-time' }),
  },
  { title: 'LedgerEntry' },
);

const CreditBalance = Type.Object(
  {
    id: Type.String({ description: "The partner's id: each partner has one credit account." }),
    object: Type.Literal('credit_balance'),
    balance: Type.Integer({ description: 'Euro cents available.' }),
    currency: Type.Literal('EUR'),
    low_balance_threshold: Type.Union([Type.Integer(), Type.Null()], {
      description: 'Euro cents: a movement that takes the balance from at or above this to below it emits `credit.balance_low`; null: off.',
    }),
    updated_at: Type.String({ format: 'date-time' }),
  },
  { title: 'CreditBalance' },
);

const CreditSettingsUpdate = Type.Object(
  {
    low_balance_threshold: Type.Union([Type.Integer({ minimum: 0, maximum: 100_000_000 }), Type.Null()], {
      description: 'Euro cents; null turns the `credit.balance_low` event off.',
    }),
  },
  { title: 'CreditSettingsUpdate', additionalProperties: false },
);

const TopUpRequest = Type.Object(
  {
    amount: Type.Integer({ minimum: 100, maximum: 10_000_000, description: 'Euro cents, from €1.00 to €100,000.00.' }),
    currency: Type.Literal('EUR'),
    payment_reference: Type.Optional(Type.String({
      minLength: 1,
      maxLength: 200,
      description:
        'Optional: your own reference for this top-up (an order or invoice number), kept as `partner_reference`. ' +
        'It is not what the bank transfer quotes: quote the `payment_reference` of the answer.',
    })),
    description: Type.Optional(Type.String({ minLength: 1, maxLength: 500 })),
    method: Type.Optional(Type.Enum(topUpMethods, {
      description:
        'How you will pay: `bank_transfer` (default: the answer\'s `bank_transfer` instructions) or `card` (the answer\'s ' +
        '`card.checkout_url`, a Stripe Checkout page; needs `checkout`). Card payments are offered only when the provider has configured them.',
    })),
    checkout: Type.Optional(Type.Object(
      {
        success_url: Type.String({ minLength: 1, maxLength: 2000, description: 'An http(s) URL: where the payer lands after paying.' }),
        cancel_url: Type.String({ minLength: 1, maxLength: 2000, description: 'An http(s) URL: where the payer lands after giving up.' }),
      },
      { title: 'TopUpCheckoutUrls', additionalProperties: false, description: 'Card top-ups: required with `method: card`, ignored for bank transfers.' },
    )),
  },
  { title: 'TopUpRequest', additionalProperties: false },
);

/** An absolute http(s) URL (Stripe refuses others); any problem is a field error at `pointer`. */
function checkoutUrl(value: string, pointer: string): FieldError | null {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return { pointer, location: 'body', code: 'invalid_url', detail: 'must be an absolute http(s) URL' };
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return { pointer, location: 'body', code: 'invalid_url', detail: 'must be an http or https URL' };
  return null;
}

const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

export const TopUp = Type.Object(
  {
    id: Type.String({ description: 'Prefixed `top_`.' }),
    object: Type.Literal('top_up'),
    partner: Type.String({ description: 'The partner that asked for it.' }),
    amount: Type.Integer({ description: 'Euro cents of credit, net of VAT (the invoice adds 22 % VAT; `bank_transfer.amount` or `card.amount` is the gross to pay).' }),
    currency: Type.Literal('EUR'),
    method: Type.Enum(topUpMethods, { description: '`bank_transfer` or `card` (Stripe Checkout).' }),
    status: Type.Enum(topUpStatuses, {
      description:
        '`pending` until the money arrives; `credited` (once, with its ledger entry), `failed`, or `expired` (bank transfers after ' +
        '30 days, card top-ups when their checkout expires, 24 h).',
    }),
    payment_reference: Type.String({ description: 'Quote it in the transfer\'s remittance information (causale): it is how the payment is matched.' }),
    partner_reference: Nullable(Type.String({ description: 'Your own reference, as sent.' })),
    description: Nullable(Type.String()),
    bank_transfer: Nullable(Type.Object(
      {
        iban: Type.String(),
        bic: Type.String(),
        beneficiary: Type.String(),
        amount: Type.Integer({ description: 'Euro cents to transfer, exactly: the credit plus 22 % VAT (rounded half up to the cent, as on the invoice).' }),
        currency: Type.Literal('EUR'),
        reference: Type.String({ description: 'The remittance information to quote (the `payment_reference`).' }),
      },
      { title: 'BankTransferInstructions', description: "How to pay: the provider's account, the exact amount and the reference." },
    )),
    card: Nullable(Type.Object(
      {
        checkout_url: Type.String({ description: "Stripe's hosted checkout page: send the payer there." }),
        checkout_session_id: Type.String({ description: 'The Stripe Checkout Session (`cs_…`).' }),
        amount: Type.Integer({ description: 'Euro cents charged to the card: the credit plus 22 % VAT, as invoiced.' }),
        currency: Type.Literal('EUR'),
        payment_intent: Nullable(Type.String({ description: "Stripe's PaymentIntent (`pi_…`) that paid it, once credited." })),
      },
      { title: 'CardCheckout', description: 'Card top-ups: the Stripe Checkout that collects the payment; null for bank transfers.' },
    )),
    expires_at: Type.String({ format: 'date-time', description: `A pending top-up expires ${TOP_UP_EXPIRES_AFTER_DAYS} days after it was created.` }),
    credited_at: Nullable(Type.String({ format: 'date-time' })),
    ledger_entry: Nullable(Type.String({ description: 'The `top_up` ledger entry, once credited.' })),
    failed_at: Nullable(Type.String({ format: 'date-time' })),
    failure_reason: Nullable(Type.String()),
    expired_at: Nullable(Type.String({ format: 'date-time' })),
    refunded_amount: Type.Integer({ description: 'Euro cents paid back by the provider (`top_up_refund` ledger entries).' }),
    created_at: Type.String({ format: 'date-time' }),
  },
  { title: 'TopUp' },
);

export async function creditRoutes(app: App, { db, clock, config }: AppDeps): Promise<void> {
  app.get('/v1/credit', {
    schema: {
      operationId: 'getCreditBalance',
      tags: ['Credit'],
      summary: 'Get the prepaid credit balance',
      response: { 200: CreditBalance, ...problemResponses() },
    },
  }, async (request) => getBalance(db, partnerOf(request).partnerId));

  app.patch('/v1/credit', {
    schema: {
      operationId: 'updateCreditSettings',
      tags: ['Credit'],
      summary: 'Set the low-balance threshold',
      description:
        'When a charge takes the balance from at or above the threshold to below it, a `credit.balance_low` event is ' +
        'emitted once; it is emitted again only after the balance has risen to the threshold and falls below it anew.',
      body: CreditSettingsUpdate,
      response: { 200: CreditBalance, ...problemResponses() },
    },
  }, async (request) => setLowBalanceThreshold(db, clock, partnerOf(request).partnerId, request.body.low_balance_threshold));

  app.post('/v1/credit/top-ups', {
    schema: {
      operationId: 'createTopUp',
      tags: ['Credit'],
      summary: 'Ask to add prepaid credit (pay by bank transfer or card)',
      description:
        'Creates a `pending` top-up and answers how to pay it: the provider\'s IBAN, BIC and beneficiary, the exact ' +
        'amount and a unique `payment_reference` to quote in the transfer. `amount` is the credit, net of VAT; the ' +
        'transfer carries the gross (`bank_transfer.amount`: the credit plus 22 % VAT, as invoiced). Nothing is ' +
        'credited now: the credit comes when the provider sees the money (an operator confirms it or the bank ' +
        'statement matches it), with a `credit.top_up.credited` event and its invoice (`invoice.created`, ' +
        'GET /v1/invoices) in the same transaction. Every credit is invoiced, so your fiscal data must be complete ' +
        'first (PATCH /v1/account), otherwise a 409 `fiscal_data_required` names what is missing. Unpaid top-ups ' +
        'expire after 30 days.\n\n' +
        'With `method: card` (when the provider offers it) the answer carries `card.checkout_url` instead: a Stripe Checkout ' +
        'page that charges the gross amount, after which the payer returns to your `checkout.success_url` or `cancel_url`. ' +
        'The top-up is credited only when Stripe confirms the payment to the provider (never by the return to your page); ' +
        'an unpaid checkout expires after 24 h. Without card payments configured: 422 `payment_method_unavailable`; when ' +
        'Stripe cannot be reached or refuses: 502 `payment_provider_unavailable` and no top-up is created.',
      body: TopUpRequest,
      response: { 201: TopUp, ...problemResponses(409, 422, 502, 503) },
    },
  }, async (request, reply) => {
    const { partnerId } = partnerOf(request);
    const { method = 'bank_transfer', checkout } = request.body;
    if (method === 'card' && !checkout) {
      throw invalid([{ pointer: '/checkout', location: 'body', code: 'required', detail: 'is required with method card (success_url and cancel_url)' }]);
    }
    // `checkout` is for card top-ups only; a bank transfer ignores it (a client may always send the same shape).
    if (method === 'card' && checkout) {
      const errors = [checkoutUrl(checkout.success_url, '/checkout/success_url'), checkoutUrl(checkout.cancel_url, '/checkout/cancel_url')].filter((e) => e !== null);
      if (errors.length > 0) throw invalid(errors);
    }
    const topUp = await createTopUp(db, clock, config.bankAccount, {
      partnerId,
      amount: request.body.amount,
      partnerReference: request.body.payment_reference,
      description: request.body.description,
      requestId: request.id,
      method,
      checkout: method === 'card' && checkout ? { successUrl: checkout.success_url, cancelUrl: checkout.cancel_url } : undefined,
    }, stripeGateway(config.stripe));
    return reply.code(201).send(topUp);
  });

  app.get('/v1/credit/top-ups', {
    schema: {
      operationId: 'listTopUps',
      tags: ['Credit'],
      summary: 'List top-ups, newest first',
      querystring: Type.Object({ ...ListQuery, status: Type.Optional(Type.Enum(topUpStatuses)) }, { additionalProperties: false }),
      response: { 200: ListOf(TopUp, 'TopUpList'), ...problemResponses() },
    },
  }, async (request) => {
    const { limit = 10, starting_after, status } = request.query;
    return toPage(await listTopUps(db, config.bankAccount, { partnerId: partnerOf(request).partnerId, limit, startingAfter: starting_after, status }), limit);
  });

  app.get('/v1/credit/top-ups/:id', {
    schema: {
      operationId: 'getTopUp',
      tags: ['Credit'],
      summary: 'Get a top-up and its payment instructions',
      params: Type.Object({ id: Type.String({ description: 'A top-up id (`top_…`).' }) }, { additionalProperties: false }),
      response: { 200: TopUp, ...problemResponses(404) },
    },
  }, async (request) => getTopUp(db, config.bankAccount, request.params.id, partnerOf(request).partnerId));

  app.get('/v1/credit/ledger', {
    schema: {
      operationId: 'listLedgerEntries',
      tags: ['Credit'],
      summary: 'List credit ledger entries, newest first',
      querystring: Type.Object(
        {
          ...ListQuery,
          type: Type.Optional(Type.Enum(ledgerEntryKinds)),
          item_id: Type.Optional(Type.String({ description: 'Only entries that paid for this object.' })),
        },
        { additionalProperties: false },
      ),
      response: { 200: ListOf(LedgerEntry, 'LedgerEntryList'), ...problemResponses() },
    },
  }, async (request) => {
    const { limit = 10, starting_after, type, item_id } = request.query;
    const rows = await listLedger(db, partnerOf(request).partnerId, { limit, startingAfter: starting_after, type, itemId: item_id });
    return toPage(rows, limit);
  });

  const PriceListPage = Type.Object(
    {
      ...ListOf(Price, 'PriceList').properties,
      price_list: Type.Object(
        {
          id: Type.String({ description: 'The price list you pay (`pl_default` unless the provider assigned you another).' }),
          version: Type.Integer({ description: 'The version in force now.' }),
          effective_from: Type.String({ format: 'date-time', description: 'When that version took effect.' }),
        },
        { title: 'PriceListInForce' },
      ),
      upcoming: Nullable(Type.Object(
        {
          version: Type.Integer(),
          effective_from: Type.String({ format: 'date-time', description: 'From this instant, charges use the new version.' }),
        },
        { title: 'PriceListUpcoming', description: 'A version of your list scheduled for later; null: none.' },
      )),
    },
    { title: 'PriceList' },
  );
  app.get('/v1/prices', {
    schema: {
      operationId: 'listPrices',
      tags: ['Credit'],
      summary: 'Your price list',
      description:
        'The prices you pay now: mailbox plans (with their quotas), add-ons and domain certification, in euro cents ' +
        'excluding VAT, from the price list the provider assigned to you (`price_list`) in its version in force. ' +
        'Every charge uses the version in force at that moment, renewals included; `upcoming` announces a scheduled version.',
      querystring: Type.Object(
        {
          limit: ListQuery.limit,
          starting_after: Type.Optional(Type.String({ description: 'A price id.' })),
        },
        { additionalProperties: false },
      ),
      response: { 200: PriceListPage, ...problemResponses() },
    },
  }, async (request) => {
    const { limit = 10, starting_after } = request.query;
    const { current, upcoming } = await priceScheduleFor(db, partnerOf(request).partnerId, clock.now());
    const published = priceObjects(current.prices);
    const start = starting_after ? published.findIndex((price) => price.id === starting_after) + 1 : 0;
    if (starting_after && start === 0) {
      throw invalid([{ pointer: '/starting_after', location: 'query', code: 'invalid_cursor', detail: 'is not a price id' }]);
    }
    return {
      ...toPage(published.slice(start, start + limit + 1), limit),
      price_list: { id: current.listId, version: current.version, effective_from: current.effectiveFrom.toISOString() },
      upcoming: upcoming ? { version: upcoming.version, effective_from: upcoming.effectiveFrom.toISOString() } : null,
    };
  });
}
