/**
 * Card top-ups through Stripe Checkout, against a fake of Stripe's API on loopback (no network): the official
 * library creates the sessions there, and the webhook deliveries are signed with the library's own test helper.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import t, { type Test } from 'tap';
import Stripe from 'stripe';
import { loadConfig } from '@pec-partner/api';
import { harness, json, type Harness, type TestPartner } from './helpers/harness.ts';

const SECRET_KEY = 'sk_test_51PecPartnerFakeKey000000';
const WEBHOOK_SECRET = 'whsec_pecPartnerTestSigningSecret0000';
const WEBHOOK = '/v1/payments/stripe/webhook';
const CHECKOUT = { success_url: 'https://partner.example.com/paid?top_up={CHECKOUT_SESSION_ID}', cancel_url: 'https://partner.example.com/cancelled' };
/** Only for its webhook helpers: the signature header of a test delivery. */
const signer = new Stripe(SECRET_KEY);

type Inject = Harness['app']['inject'];

interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  form: URLSearchParams;
}

/**
 * Plays Stripe's API for what the server calls: creating a Checkout Session (the same one again for a repeated
 * idempotency key, as Stripe does) and expiring one. `refuse` answers the next creations with Stripe's 401.
 */
async function fakeStripe(t: Test) {
  const requests: RecordedRequest[] = [];
  const sessions = new Map<string, Record<string, unknown>>();
  let counter = 0;
  const state = { refuse: false };
  const server: Server = createServer((request, response) => {
    let body = '';
    request.setEncoding('utf8');
    request.on('data', (chunk: string) => (body += chunk));
    request.on('end', () => {
      const path = (request.url ?? '').split('?')[0]!;
      requests.push({ method: request.method ?? '', path, headers: request.headers, form: new URLSearchParams(body) });
      const send = (status: number, value: unknown) => {
        response.writeHead(status, { 'content-type': 'application/json', 'request-id': `req_fake_${requests.length}` });
        response.end(JSON.stringify(value));
      };
      if (state.refuse) return send(401, { error: { type: 'invalid_request_error', message: 'Invalid API Key provided: sk_test_***' } });
      if (request.method === 'POST' && path === '/v1/checkout/sessions') {
        const key = String(request.headers['idempotency-key'] ?? `none-${counter}`);
        let session = sessions.get(key);
        if (!session) {
          const form = new URLSearchParams(body);
          const id = `cs_test_fake${String(++counter).padStart(4, '0')}`;
          session = {
            id, object: 'checkout.session', mode: 'payment', status: 'open', payment_status: 'unpaid',
            url: `https://checkout.stripe.com/c/pay/${id}`, client_reference_id: form.get('client_reference_id'),
            amount_total: Number(form.get('line_items[0][price_data][unit_amount]')), currency: form.get('line_items[0][price_data][currency]'),
            // 24 h after the harness clock's start (2026-11-22T09:00:00Z), as Stripe's default.
            expires_at: Date.parse('2026-11-23T09:00:00Z') / 1000,
          };
          sessions.set(key, session);
        }
        return send(200, session);
      }
      const expire = /^\/v1\/checkout\/sessions\/([^/]+)\/expire$/.exec(path);
      if (request.method === 'POST' && expire) return send(200, { id: expire[1], object: 'checkout.session', status: 'expired' });
      send(404, { error: { type: 'invalid_request_error', message: `Unrecognized request URL (${request.method}: ${path})` } });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const created = () => requests.filter((r) => r.method === 'POST' && r.path === '/v1/checkout/sessions');
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests, created, state };
}

async function setup(t: Test) {
  const stripe = await fakeStripe(t);
  const h = await harness(t, { env: { STRIPE_SECRET_KEY: SECRET_KEY, STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET, STRIPE_API_BASE_URL: stripe.url } });
  return { h, stripe };
}

function as(h: Harness, who: { headers: { authorization: string } } | null) {
  return async (method: 'GET' | 'POST', url: string, payload?: unknown, headers: Record<string, string> = {}) => {
    const response = await (h.app.inject as Inject)({
      method, url, headers: { ...(who ? who.headers : {}), ...headers }, ...(payload === undefined ? {} : { payload: payload as object }),
    });
    const type = String(response.headers['content-type'] ?? '');
    return { status: response.statusCode, type, body: type.includes('json') ? json(response) : response.body };
  };
}

async function cardTopUp(h: Harness, p: TestPartner, amount: number, extra: Record<string, unknown> = {}) {
  const created = await as(h, p)('POST', '/v1/credit/top-ups', { amount, currency: 'EUR', method: 'card', checkout: CHECKOUT, ...extra });
  if (created.status !== 201) throw new Error(JSON.stringify(created.body));
  return created.body;
}

let eventCounter = 0;
/** A Stripe event about a top-up's Checkout Session, as Stripe would send it (paid in full unless overridden). */
function sessionEvent(top: any, type = 'checkout.session.completed', session: Record<string, unknown> = {}, id = `evt_test_${String(++eventCounter).padStart(6, '0')}`) {
  return {
    id, object: 'event', api_version: '2026-10-28.endive', created: Date.parse('2026-11-22T09:00:00Z') / 1000, livemode: false, type,
    pending_webhooks: 1, request: { id: null, idempotency_key: null },
    data: {
      object: {
        id: top.card.checkout_session_id, object: 'checkout.session', mode: 'payment', status: 'complete', payment_status: 'paid',
        amount_total: top.card.amount, currency: 'eur', client_reference_id: top.id, payment_intent: `pi_test_${top.id.slice(-8)}`,
        metadata: { top_up_id: top.id, partner_id: top.partner, payment_reference: top.payment_reference },
        ...session,
      },
    },
  };
}

/** Delivers an event as Stripe does: the exact bytes, signed with the endpoint's secret at `timestamp` (default: now). */
async function deliver(h: Harness, event: unknown, options: { secret?: string; timestamp?: number; signature?: string | null; body?: string } = {}) {
  const payload = options.body ?? JSON.stringify(event);
  const timestamp = options.timestamp ?? Math.floor(h.clock.now().getTime() / 1000);
  const signature = options.signature === undefined
    ? signer.webhooks.generateTestHeaderString({ payload, secret: options.secret ?? WEBHOOK_SECRET, timestamp })
    : options.signature;
  const response = await h.app.inject({
    method: 'POST', url: WEBHOOK, payload,
    headers: { 'content-type': 'application/json; charset=utf-8', ...(signature === null ? {} : { 'stripe-signature': signature }) },
  });
  return { status: response.statusCode, type: String(response.headers['content-type'] ?? ''), body: json(response) };
}

const balanceOf = async (h: Harness, p: TestPartner): Promise<number> => (await as(h, p)('GET', '/v1/credit')).body.balance;
const topUpOf = async (h: Harness, p: TestPartner, id: string) => (await as(h, p)('GET', `/v1/credit/top-ups/${id}`)).body;
const ledgerOf = async (h: Harness, p: TestPartner) => (await as(h, p)('GET', '/v1/credit/ledger?limit=100')).body.data as any[];
const invoicesOf = async (h: Harness, p: TestPartner) => (await as(h, p)('GET', '/v1/invoices?limit=100')).body.data as any[];
const eventTypes = async (h: Harness, p: TestPartner, query = '') =>
  ((await as(h, p)('GET', `/v1/events?limit=100${query}`)).body.data as any[]).map((e) => e.type).reverse();
const stripeEventRows = async (h: Harness) =>
  (await h.database.sql`select id, type, outcome, top_up_id, amount_cents from stripe_events order by received_at, id`) as unknown as any[];

t.test('a card top-up is pending with a Stripe Checkout of the gross amount, its top-up id and partner in the session', async (t) => {
  const { h, stripe } = await setup(t);
  const p = await h.partner();
  const top = await cardTopUp(h, p, 12_345, { payment_reference: 'order 77', description: 'November' });
  t.match(top, {
    object: 'top_up', status: 'pending', method: 'card', amount: 12_345, currency: 'EUR', partner: p.id, ledger_entry: null,
    bank_transfer: null, partner_reference: 'order 77', expires_at: '2026-11-23T09:00:00.000Z',
    // 123.45 € + 22 % VAT = 150.61 €: cards pay the gross, as transfers do.
    card: { checkout_url: /^https:\/\/checkout\.stripe\.com\/c\/pay\/cs_test_fake\d{4}$/, checkout_session_id: /^cs_test_fake\d{4}$/, amount: 15_061, currency: 'EUR', payment_intent: null },
  });
  t.equal(await balanceOf(h, p), 0, 'nothing credited by asking');
  t.same((await topUpOf(h, p, top.id)).card, top.card, 'the checkout is kept on the top-up');

  const [request, ...more] = stripe.created();
  t.equal(more.length, 0, 'one session');
  t.equal(request!.headers.authorization, `Bearer ${SECRET_KEY}`, 'with the secret key');
  t.equal(request!.headers['idempotency-key'], `pec-partner-top-up-${top.id}`, 'keyed on the top-up: a retry gets the same session');
  const form = Object.fromEntries(request!.form);
  t.match(form, {
    mode: 'payment', client_reference_id: top.id, success_url: CHECKOUT.success_url, cancel_url: CHECKOUT.cancel_url,
    'line_items[0][quantity]': '1', 'line_items[0][price_data][currency]': 'eur', 'line_items[0][price_data][unit_amount]': '15061',
    'line_items[0][price_data][product_data][name]': `Prepaid credit ${top.payment_reference}`,
    'metadata[top_up_id]': top.id, 'metadata[partner_id]': p.id, 'metadata[payment_reference]': top.payment_reference,
    'payment_intent_data[metadata][top_up_id]': top.id,
  });
  t.same(await eventTypes(h, p, '&type=credit.*'), ['credit.top_up.created']);

  // The partner's own Idempotency-Key replays the answer: no second top-up, no second session.
  const again = async () => as(h, p)('POST', '/v1/credit/top-ups', { amount: 500, currency: 'EUR', method: 'card', checkout: CHECKOUT }, { 'idempotency-key': 'card-1' });
  const first = await again();
  const second = await again();
  t.equal(first.status, 201);
  t.same(second.body, first.body, 'replayed');
  t.equal(stripe.created().length, 2, 'one more session for the keyed request, not two');

  // Bank transfers are unchanged and the default.
  const bank = await as(h, p)('POST', '/v1/credit/top-ups', { amount: 1_000, currency: 'EUR' });
  t.match(bank.body, { method: 'bank_transfer', card: null, bank_transfer: { amount: 1_220 } });
  t.equal(stripe.created().length, 2, 'a bank transfer asks Stripe nothing');

  // The operator sees the method and the checkout.
  const op = await h.operator('read_only');
  const listed = (await as(h, op)('GET', `/v1/operator/top-ups?partner=${p.id}&limit=10`)).body.data as any[];
  t.same(listed.map((x) => x.method), ['bank_transfer', 'card', 'card']);
  t.same((await as(h, op)('GET', `/v1/operator/top-ups/${top.id}`)).body.card, top.card);
});

t.test('request validation: checkout URLs with card only, http(s) only', async (t) => {
  const { h, stripe } = await setup(t);
  const p = await h.partner();
  const post = (body: unknown) => as(h, p)('POST', '/v1/credit/top-ups', body);
  t.match((await post({ amount: 1_000, currency: 'EUR', method: 'card' })).body, { status: 400, code: 'validation_error', errors: [{ pointer: '/checkout', code: 'required' }] });
  t.match((await post({ amount: 1_000, currency: 'EUR', method: 'card', checkout: { success_url: 'javascript:alert(1)', cancel_url: 'not a url' } })).body, {
    status: 400, errors: [{ pointer: '/checkout/success_url', code: 'invalid_url' }, { pointer: '/checkout/cancel_url', code: 'invalid_url' }],
  });
  t.match((await post({ amount: 1_000, currency: 'EUR', method: 'paypal' })).body, { status: 400, code: 'validation_error' });
  t.match((await post({ amount: 1_000, currency: 'EUR', method: 'card', checkout: { ...CHECKOUT, extra: 1 } })).body, { status: 400 });
  t.equal(stripe.created().length, 0, 'Stripe was not asked');
  // A bank transfer ignores checkout URLs (and does not check them).
  t.match((await post({ amount: 1_000, currency: 'EUR', checkout: { success_url: 'x', cancel_url: 'x' } })).body, { method: 'bank_transfer', card: null, bank_transfer: { amount: 1_220 } });
  t.equal(stripe.created().length, 0, 'still not asked');
  // Fiscal data first: no checkout for money that could not be invoiced.
  const bare = await h.partner('No fiscal data', { fiscalData: false });
  t.match((await as(h, bare)('POST', '/v1/credit/top-ups', { amount: 1_000, currency: 'EUR', method: 'card', checkout: CHECKOUT })).body, { status: 409, code: 'fiscal_data_required' });
  t.equal(stripe.created().length, 0, 'not asked for a partner without fiscal data');
});

t.test('a paid checkout credits once: balance, ledger, invoice, events, audit; redeliveries and later events change nothing', async (t) => {
  const { h } = await setup(t);
  const p = await h.partner();
  const top = await cardTopUp(h, p, 12_345);
  const event = sessionEvent(top);
  const delivered = await deliver(h, event);
  t.equal(delivered.status, 200);
  t.same(delivered.body, { received: true, event: event.id, duplicate: false, outcome: 'credited' });

  const credited = await topUpOf(h, p, top.id);
  t.match(credited, { status: 'credited', ledger_entry: /^txn_/, card: { payment_intent: `pi_test_${top.id.slice(-8)}` } });
  t.equal(await balanceOf(h, p), 12_345, 'the credit is the net amount');
  const ledger = await ledgerOf(h, p);
  t.equal(ledger.length, 1);
  t.match(ledger[0], {
    id: credited.ledger_entry, type: 'top_up', amount: 12_345, balance_after: 12_345, description: `Card payment ${top.payment_reference}`,
    item: { type: 'top_up', id: top.id }, payment_reference: top.payment_reference,
  });
  const invoices = await invoicesOf(h, p);
  t.equal(invoices.length, 1, 'invoiced');
  t.match(invoices[0], {
    top_up: top.id, net_amount: 12_345, vat_amount: 2_716, total_amount: 15_061,
    payment: { method: 'card', reference: top.payment_reference, paid_at: '2026-11-22T09:00:00.000Z' },
  });
  const xml = await as(h, p)('GET', `/v1/invoices/${invoices[0].id}/xml`);
  t.match(xml.body, /<ModalitaPagamento>MP08<\/ModalitaPagamento>/, 'FatturaPA: paid by card');
  t.same(await eventTypes(h, p, '&type=credit.*'), ['credit.top_up.created', 'credit.topped_up', 'credit.top_up.credited']);
  t.ok((await eventTypes(h, p)).includes('invoice.created'));
  const op = await h.operator('read_only');
  const audit = (await as(h, op)('GET', `/v1/operator/audit-log?target_id=${top.id}`)).body.data as any[];
  t.match(audit, [{ actor: 'system', action: 'top_up.confirmed', partner: p.id, details: { amount: 12_345, source: { type: 'stripe_event', id: event.id } } }]);

  // The same event again (Stripe retries until it sees a 2xx), and a second event for the same session.
  const again = await deliver(h, event);
  t.same(again.body, { received: true, event: event.id, duplicate: true, outcome: 'credited' });
  const later = sessionEvent(top, 'checkout.session.async_payment_succeeded');
  t.same((await deliver(h, later)).body, { received: true, event: later.id, duplicate: false, outcome: 'already_credited' });
  const expired = sessionEvent(top, 'checkout.session.expired', { status: 'expired', payment_status: 'unpaid' });
  t.match((await deliver(h, expired)).body, { outcome: 'ignored' }, 'a credited top-up does not expire');
  t.equal(await balanceOf(h, p), 12_345, 'credited once');
  t.equal((await ledgerOf(h, p)).length, 1);
  t.equal((await invoicesOf(h, p)).length, 1);
  t.equal((await topUpOf(h, p, top.id)).status, 'credited');
  t.same((await stripeEventRows(h)).map((r) => [r.id, r.outcome]), [[event.id, 'credited'], [later.id, 'already_credited'], [expired.id, 'ignored']]);
});

t.test('concurrent deliveries credit exactly once', async (t) => {
  const { h } = await setup(t);
  const p = await h.partner();
  const a = await cardTopUp(h, p, 10_000);
  const b = await cardTopUp(h, p, 2_000);
  // Five deliveries of one event at once…
  const event = sessionEvent(a);
  const same = await Promise.all(Array.from({ length: 5 }, () => deliver(h, event)));
  t.same(same.map((r) => r.status), [200, 200, 200, 200, 200]);
  t.equal(same.filter((r) => !r.body.duplicate).length, 1, 'one delivery acted');
  t.ok(same.every((r) => r.body.outcome === 'credited'));
  // …and five different events for one session at once.
  const different = await Promise.all(Array.from({ length: 5 }, (_, i) => deliver(h, sessionEvent(b, i % 2 ? 'checkout.session.async_payment_succeeded' : 'checkout.session.completed'))));
  t.same(different.map((r) => r.body.outcome).sort(), ['already_credited', 'already_credited', 'already_credited', 'already_credited', 'credited']);
  t.equal(await balanceOf(h, p), 12_000);
  t.same((await ledgerOf(h, p)).map((e) => e.amount).sort((x, y) => x - y), [2_000, 10_000]);
  t.equal((await invoicesOf(h, p)).length, 2);
});

t.test('bad, missing and stale signatures are refused and change nothing', async (t) => {
  const { h } = await setup(t);
  const p = await h.partner();
  const top = await cardTopUp(h, p, 5_000);
  const event = sessionEvent(top);
  const refused = [
    ['another secret', await deliver(h, event, { secret: 'whsec_notTheEndpointSecret00000' })],
    ['no header', await deliver(h, event, { signature: null })],
    ['garbage header', await deliver(h, event, { signature: 't=1,v1=abc' })],
    // Signed, then the amount changed on the way: the HMAC covers the exact bytes.
    ['tampered body', await deliver(h, event, {
      signature: signer.webhooks.generateTestHeaderString({ payload: JSON.stringify(event), secret: WEBHOOK_SECRET, timestamp: Math.floor(h.clock.now().getTime() / 1000) }),
      body: JSON.stringify(event).replace('"amount_total":6100', '"amount_total":1'),
    })],
    // A genuine delivery captured and replayed 301 s later: outside the library's 300 s tolerance.
    ['stale timestamp', await deliver(h, event, { timestamp: Math.floor(h.clock.now().getTime() / 1000) - 301 })],
  ] as const;
  for (const [label, response] of refused) {
    t.equal(response.status, 400, `${label}: 400`);
    t.match(response.type, /^application\/problem\+json/, `${label}: a problem`);
    t.match(response.body, { status: 400, code: 'invalid_signature' }, `${label}: invalid_signature`);
  }
  t.match(refused[4][1].body.detail, /tolerance/);
  t.equal(await balanceOf(h, p), 0, 'nothing credited');
  t.equal((await topUpOf(h, p, top.id)).status, 'pending');
  t.same(await stripeEventRows(h), [], 'nothing recorded');
  // Within the tolerance it is accepted: the same event, fresh.
  t.match((await deliver(h, event, { timestamp: Math.floor(h.clock.now().getTime() / 1000) - 250 })).body, { outcome: 'credited' });
  t.equal(await balanceOf(h, p), 5_000);
  // A valid signature over a body that is no event.
  t.match((await deliver(h, null, { body: 'not json' })).body, { status: 400, code: 'invalid_payload' });
});

t.test('an expired checkout expires the top-up; a failed delayed payment fails it; both with events', async (t) => {
  const { h } = await setup(t);
  const p = await h.partner();
  const a = await cardTopUp(h, p, 3_000);
  const b = await cardTopUp(h, p, 4_000);
  t.match((await deliver(h, sessionEvent(a, 'checkout.session.expired', { status: 'expired', payment_status: 'unpaid' }))).body, { outcome: 'expired' });
  t.match(await topUpOf(h, p, a.id), { status: 'expired', expired_at: '2026-11-22T09:00:00.000Z' });
  // A delayed method (SEPA debit): completed but unpaid, then failed.
  t.match((await deliver(h, sessionEvent(b, 'checkout.session.completed', { payment_status: 'unpaid' }))).body, { outcome: 'awaiting_payment' });
  t.equal((await topUpOf(h, p, b.id)).status, 'pending', 'not credited while unpaid');
  t.match((await deliver(h, sessionEvent(b, 'checkout.session.async_payment_failed', { payment_status: 'unpaid' }))).body, { outcome: 'failed' });
  t.match(await topUpOf(h, p, b.id), { status: 'failed', failure_reason: /card payment failed/ });
  t.same(await eventTypes(h, p, '&type=credit.*'), ['credit.top_up.created', 'credit.top_up.created', 'credit.top_up.expired', 'credit.top_up.failed']);
  t.equal(await balanceOf(h, p), 0);
  // A payment Stripe still reports for the failed one is money for the operator, not a credit.
  t.match((await deliver(h, sessionEvent(b, 'checkout.session.async_payment_succeeded'))).body, { outcome: 'top_up_not_creditable' });
  t.equal(await balanceOf(h, p), 0);
});

t.test('an amount or currency that differs from the top-up is not credited and is flagged for the operator', async (t) => {
  const { h } = await setup(t);
  const p = await h.partner();
  const top = await cardTopUp(h, p, 10_000);
  const short = await deliver(h, sessionEvent(top, 'checkout.session.completed', { amount_total: 10_000 }));
  t.equal(short.status, 200, 'answered 200: Stripe must not retry what cannot change');
  t.match(short.body, { duplicate: false, outcome: 'amount_mismatch' });
  t.match((await deliver(h, sessionEvent(top, 'checkout.session.completed', { currency: 'usd' }))).body, { outcome: 'amount_mismatch' });
  t.equal((await topUpOf(h, p, top.id)).status, 'pending');
  t.equal(await balanceOf(h, p), 0);
  const op = await h.operator('read_only');
  const flagged = (await as(h, op)('GET', '/v1/operator/audit-log?action=stripe_payment.needs_attention')).body.data as any[];
  t.equal(flagged.length, 2);
  t.match(flagged[1], { actor: 'system', target: { type: 'top_up', id: top.id }, partner: p.id, reason: /reports 10000 eur paid .* expects 12200 eur/, details: { outcome: 'amount_mismatch', amount: 10_000 } });
  // A session that is not ours, and events of other kinds.
  const stranger = sessionEvent({ ...top, id: 'top_unknown', card: { ...top.card, checkout_session_id: 'cs_test_elsewhere' } });
  t.match((await deliver(h, stranger)).body, { outcome: 'unknown_session' });
  t.match((await deliver(h, { id: 'evt_test_other', object: 'event', type: 'customer.created', created: 1, livemode: false, data: { object: { id: 'cus_1' } } })).body, { outcome: 'ignored' });
  // The correct amount still credits.
  t.match((await deliver(h, sessionEvent(top))).body, { outcome: 'credited' });
  t.equal(await balanceOf(h, p), 10_000);
});

t.test('a partner cannot credit itself through the webhook or by the return URL', async (t) => {
  const { h } = await setup(t);
  const p = await h.partner();
  const top = await cardTopUp(h, p, 9_000);
  const event = JSON.stringify(sessionEvent(top));
  // With its own key, without a signature, with one it made up: nothing.
  for (const headers of [{ ...p.headers, 'content-type': 'application/json' }, { ...p.headers, 'content-type': 'application/json', 'stripe-signature': `t=${Math.floor(h.clock.now().getTime() / 1000)},v1=${'0'.repeat(64)}` }]) {
    const response = await h.app.inject({ method: 'POST', url: WEBHOOK, headers, payload: event });
    t.equal(response.statusCode, 400);
    t.equal(json(response).code, 'invalid_signature');
  }
  // Landing on the success page proves nothing: the top-up stays pending until Stripe's signed event.
  t.equal((await topUpOf(h, p, top.id)).status, 'pending');
  // Only operators confirm by hand.
  t.equal((await as(h, p)('POST', `/v1/operator/top-ups/${top.id}/confirm`, { reason: 'I paid, trust me' })).status, 403);
  t.equal(await balanceOf(h, p), 0);
});

t.test('Stripe unreachable or refusing: 502 payment_provider_unavailable and no top-up', async (t) => {
  const { h, stripe } = await setup(t);
  const p = await h.partner();
  stripe.state.refuse = true;
  const refused = await as(h, p)('POST', '/v1/credit/top-ups', { amount: 1_000, currency: 'EUR', method: 'card', checkout: CHECKOUT });
  t.equal(refused.status, 502);
  t.match(refused.body, { status: 502, code: 'payment_provider_unavailable', provider_error: 'StripeAuthenticationError', detail: /no top-up was created/ });
  t.same((await as(h, p)('GET', '/v1/credit/top-ups')).body.data, [], 'nothing half-written');
  t.same(await eventTypes(h, p), [], 'no event');

  // A server whose Stripe does not answer at all (a closed port).
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const port = (closed.address() as AddressInfo).port;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  const h2 = await harness(t, { env: { STRIPE_SECRET_KEY: SECRET_KEY, STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET, STRIPE_API_BASE_URL: `http://127.0.0.1:${port}` } });
  const p2 = await h2.partner();
  const unreachable = await as(h2, p2)('POST', '/v1/credit/top-ups', { amount: 1_000, currency: 'EUR', method: 'card', checkout: CHECKOUT });
  t.match(unreachable, { status: 502, body: { code: 'payment_provider_unavailable', detail: /could not be reached/ } });
  t.same((await as(h2, p2)('GET', '/v1/credit/top-ups')).body.data, []);
  t.equal((await as(h2, p2)('POST', '/v1/credit/top-ups', { amount: 1_000, currency: 'EUR' })).status, 201, 'bank transfers still work');
});

t.test('without Stripe keys only bank transfers: card is a 422 payment_method_unavailable, the webhook a 404', async (t) => {
  const h = await harness(t);
  const p = await h.partner();
  const card = await as(h, p)('POST', '/v1/credit/top-ups', { amount: 1_000, currency: 'EUR', method: 'card', checkout: CHECKOUT });
  t.equal(card.status, 422);
  t.match(card.body, { code: 'payment_method_unavailable', method: 'card', detail: /bank transfer/ });
  t.same((await as(h, p)('GET', '/v1/credit/top-ups')).body.data, []);
  t.match((await as(h, p)('POST', '/v1/credit/top-ups', { amount: 1_000, currency: 'EUR', method: 'bank_transfer' })).body, { status: 'pending', method: 'bank_transfer' });
  const hook = await h.app.inject({ method: 'POST', url: WEBHOOK, headers: { 'content-type': 'application/json', 'stripe-signature': 't=1,v1=0' }, payload: '{}' });
  t.equal(hook.statusCode, 404);
  t.equal(json(hook).code, 'payment_method_unavailable');
});

t.test('configuration: both secrets or neither, real-looking keys, an http(s) origin for the API', async (t) => {
  const base = { LOG_LEVEL: 'silent' };
  t.equal(loadConfig(base).stripe, null);
  t.same(loadConfig({ ...base, STRIPE_SECRET_KEY: SECRET_KEY, STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET }).stripe, { secretKey: SECRET_KEY, webhookSecret: WEBHOOK_SECRET, api: undefined });
  t.same(loadConfig({ ...base, STRIPE_SECRET_KEY: SECRET_KEY, STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET, STRIPE_API_BASE_URL: 'http://127.0.0.1:12111' }).stripe?.api, { host: '127.0.0.1', port: 12111, protocol: 'http' });
  t.throws(() => loadConfig({ ...base, STRIPE_SECRET_KEY: SECRET_KEY }), /STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET go together/);
  t.throws(() => loadConfig({ ...base, STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET }), /go together/);
  t.throws(() => loadConfig({ ...base, STRIPE_SECRET_KEY: 'pk_test_123456789', STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET }), /STRIPE_SECRET_KEY must be a Stripe secret/);
  t.throws(() => loadConfig({ ...base, STRIPE_SECRET_KEY: SECRET_KEY, STRIPE_WEBHOOK_SECRET: 'secret' }), /STRIPE_WEBHOOK_SECRET must be/);
  t.throws(() => loadConfig({ ...base, STRIPE_SECRET_KEY: SECRET_KEY, STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET, STRIPE_API_BASE_URL: 'ftp://x' }), /STRIPE_API_BASE_URL must be an http\(s\) origin/);
  t.throws(() => loadConfig({ ...base, STRIPE_API_BASE_URL: 'http://127.0.0.1:1' }), /STRIPE_API_BASE_URL needs/);
});
