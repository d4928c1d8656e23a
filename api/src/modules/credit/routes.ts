import { Type } from 'typebox';
import { ledgerEntryKinds } from '@pec-partner/db';
import type { App, AppDeps } from '../../deps.ts';
import { partnerOf } from '../../http/auth.ts';
import { ListOf, ListQuery, toPage } from '../../http/pagination.ts';
import { invalid, problemResponses } from '../../http/problem.ts';
import { Price, priceObjects } from './prices.ts';
import { getBalance, listLedger, setLowBalanceThreshold, topUp } from './service.ts';

const LedgerEntry = Type.Object(
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
    payment_reference: Type.String({
      minLength: 1,
      maxLength: 200,
      description: 'Your reference of the payment (bank transfer CRO/TRN, card charge id); each can be credited once.',
    }),
    description: Type.Optional(Type.String({ minLength: 1, maxLength: 500 })),
  },
  { title: 'TopUpRequest', additionalProperties: false },
);

export async function creditRoutes(app: App, { db, clock, prices }: AppDeps): Promise<void> {
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
      summary: 'Add prepaid credit',
      description: 'Credits the balance and appends a `top_up` ledger entry, which is returned.',
      body: TopUpRequest,
      response: { 201: LedgerEntry, ...problemResponses(409, 422) },
    },
  }, async (request, reply) => {
    const { partnerId } = partnerOf(request);
    const entry = await topUp(db, clock, {
      partnerId,
      amount: request.body.amount,
      description: request.body.description ?? `Top-up ${request.body.payment_reference}`,
      paymentReference: request.body.payment_reference,
      requestId: request.id,
    });
    return reply.code(201).send(entry);
  });

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

  const published = priceObjects(prices);
  app.get('/v1/prices', {
    schema: {
      operationId: 'listPrices',
      tags: ['Credit'],
      summary: 'The price list',
      description: 'Mailbox plans (with their quotas), add-ons and domain certification, in euro cents excluding VAT.',
      querystring: Type.Object(
        {
          limit: ListQuery.limit,
          starting_after: Type.Optional(Type.String({ description: 'A price id.' })),
        },
        { additionalProperties: false },
      ),
      response: { 200: ListOf(Price, 'PriceList'), ...problemResponses() },
    },
  }, async (request) => {
    const { limit = 10, starting_after } = request.query;
    const start = starting_after ? published.findIndex((price) => price.id === starting_after) + 1 : 0;
    if (starting_after && start === 0) {
      throw invalid([{ pointer: '/starting_after', location: 'query', code: 'invalid_cursor', detail: 'is not a price id' }]);
    }
    return toPage(published.slice(start, start + limit + 1), limit);
  });
}
