import { eq, inArray, sql } from 'drizzle-orm';
import t, { type Test } from 'tap';
import { events, webhookAttempts, webhookDeliveries, webhookEndpoints } from '@pec-partner/db';
import { startDnsServer, type DnsServer } from './helpers/dns-server.ts';
import { api, CF_MARIO } from './helpers/fixtures.ts';
import { DAYS, harness, json, type Harness, type TestPartner } from './helpers/harness.ts';

type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';
/** Response bodies and events as parsed JSON; the assertions check their shape. */
type Json = any;

const MINUTE = 60_000;
const DOCUMENT = { document_type: 'identity_card', number: 'CA12345AB', issuer: 'Comune di Milano', expires_on: '2030-01-01' };

/** Calls the API as the partner, optionally with an Idempotency-Key, keeping the request id the server answered with. */
function client(h: Harness, partner: TestPartner) {
  const a = api(h, partner);
  const call = async (method: Method, url: string, payload?: unknown, idempotencyKey?: string) => {
    const response = await h.app.inject({
      method,
      url,
      headers: { ...partner.headers, ...(idempotencyKey ? { 'idempotency-key': idempotencyKey } : {}) },
      ...(payload === undefined ? {} : { payload: payload as object }),
    });
    return { status: response.statusCode, body: json(response), headers: response.headers, requestId: String(response.headers['request-id']) };
  };
  let newest: string | null = null;
  /** The events written since the previous call, oldest first. */
  const fresh = async (): Promise<Json[]> => {
    const list: Json[] = (await a.get('/v1/events?limit=100')).body.data;
    const seen = newest === null ? -1 : list.findIndex((event) => event.id === newest);
    const added = seen === -1 ? list : list.slice(0, seen);
    if (list.length > 0) newest = list[0].id;
    return added.reverse();
  };
  return { a, call, fresh };
}

interface Expected {
  type: string;
  object: unknown;
  previous?: Record<string, unknown>;
  request?: { id: string | null; idempotency_key: string | null };
  at?: string;
}

/** The whole event, field by field: nothing more, nothing less. */
function expectEvent(t: Test, h: Harness, event: Json, expected: Expected, message?: string) {
  t.match(event?.id, /^evt_[0-9a-z]{26}$/, message ?? expected.type);
  t.same(event, {
    id: event?.id,
    object: 'event', livemode: true,
    type: expected.type,
    api_version: '2026-11-30',
    created_at: expected.at ?? h.clock.now().toISOString(),
    data: expected.previous ? { object: expected.object, previous_attributes: expected.previous } : { object: expected.object },
    request: expected.request ?? { id: null, idempotency_key: null },
  }, message ?? expected.type);
}

const byRequest = (response: { requestId: string }, idempotencyKey: string | null = null) => ({ id: response.requestId, idempotency_key: idempotencyKey });

t.test('customers and identity documents: created, updated, deleted; filing a document activates waiting mailboxes', async (t) => {
  const h = await harness(t);
  const { a, call, fresh } = client(h, await h.partner());
  const mario = { type: 'private_person', first_name: 'Mario', last_name: 'Rossi', tax_code: CF_MARIO };

  const created = await call('POST', '/v1/customers', mario, 'create-mario');
  t.equal(created.status, 201);
  const customerUrl = `/v1/customers/${created.body.id}`;
  const [createdEvent, ...others] = await fresh();
  t.same(others, []);
  expectEvent(t, h, createdEvent, { type: 'customer.created', object: (await a.get(customerUrl)).body, request: byRequest(created, 'create-mario') });
  t.same((await a.get(`/v1/events/${createdEvent.id}`)).body, createdEvent, 'GET /v1/events/{id} shows the listed event');

  const replay = await call('POST', '/v1/customers', mario, 'create-mario');
  t.equal(replay.headers['idempotent-replayed'], 'true');
  t.same(replay.body, created.body);
  t.same(await fresh(), [], 'a replayed request emits nothing again');
  t.equal((await call('POST', '/v1/customers', { ...mario, tax_code: 'RSSMRA85T10A562X' })).status, 400);
  t.same(await fresh(), [], 'a refused request emits nothing');

  h.clock.advance(MINUTE);
  const before = (await a.get(customerUrl)).body;
  const patched = await call('PATCH', customerUrl, { email: 'Mario.Rossi@Example.it', phone: '+39 02 1234567' });
  t.equal(patched.status, 200);
  const [updated, ...more] = await fresh();
  t.same(more, []);
  expectEvent(t, h, updated, {
    type: 'customer.updated',
    object: (await a.get(customerUrl)).body,
    previous: { email: null, phone: null, updated_at: before.updated_at },
    request: byRequest(patched),
  });
  t.equal(updated.data.object.email, 'mario.rossi@example.it');

  // A mailbox waits for the document; filing it activates the mailbox in the same operation.
  await a.topUp(5000);
  await fresh();
  h.clock.advance(MINUTE);
  const waiting = await call('POST', '/v1/mailboxes', { local_part: 'mario.rossi', domain: 'pec.example.it', customer: created.body.id, plan: 'standard' });
  t.equal(waiting.status, 201);
  const mailboxUrl = `/v1/mailboxes/${waiting.body.id}`;
  const pending = (await a.get(mailboxUrl)).body;
  t.equal(pending.status, 'pending_identification');
  t.same((await fresh()).map((e) => e.type), ['mailbox.created', 'credit.charged']);

  h.clock.advance(MINUTE);
  const filed = await call('POST', `${customerUrl}/identity`, DOCUMENT, 'identity-1');
  t.equal(filed.status, 201);
  t.equal(filed.body.activated_mailboxes, 1);
  const [documentEvent, activated, ...rest] = await fresh();
  t.same(rest, []);
  expectEvent(t, h, documentEvent, { type: 'identity_document.created', object: (await a.get(`${customerUrl}/identity`)).body, request: byRequest(filed, 'identity-1') });
  const active = (await a.get(mailboxUrl)).body;
  t.equal(active.status, 'active');
  expectEvent(t, h, activated, {
    type: 'mailbox.activated',
    object: active,
    previous: { status: 'pending_identification', activated_at: null, expires_at: null, updated_at: pending.updated_at },
    request: byRequest(filed, 'identity-1'),
  });

  // Deleting: the event keeps the customer as it was last, which the receiver may no longer have.
  const leaving = await call('POST', '/v1/customers', { type: 'company', business_name: 'Bianchi S.r.l.', vat_number: '01234567897' });
  const last = (await a.get(`/v1/customers/${leaving.body.id}`)).body;
  await fresh();
  h.clock.advance(MINUTE);
  const deleted = await call('DELETE', `/v1/customers/${leaving.body.id}`);
  t.same(deleted.body, { id: leaving.body.id, object: 'customer', livemode: true, deleted: true });
  const [deletedEvent, ...after] = await fresh();
  t.same(after, []);
  expectEvent(t, h, deletedEvent, { type: 'customer.deleted', object: last, request: byRequest(deleted) });
  t.equal((await call('DELETE', customerUrl)).status, 409, 'a customer with services stays');
  t.same(await fresh(), [], 'and its refused deletion emits nothing');
});

t.test('credit: every movement is an event equal to its ledger entry; low balance once per crossing of the threshold', async (t) => {
  const h = await harness(t);
  const partner = await h.partner();
  const { a, call, fresh } = client(h, partner);
  t.same((await a.get('/v1/credit')).body, {
    id: partner.id, object: 'credit_balance', livemode: true, balance: 0, currency: 'EUR', low_balance_threshold: null, updated_at: '2026-11-22T09:00:00.000Z',
  });
  for (const body of [{}, { low_balance_threshold: -1 }, { low_balance_threshold: 10.5 }, { low_balance_threshold: 1000, other: 1 }]) {
    t.equal((await a.patch('/v1/credit', body)).status, 400, JSON.stringify(body));
  }
  const set = await a.patch('/v1/credit', { low_balance_threshold: 1000 });
  t.same(set.body, { id: partner.id, object: 'credit_balance', livemode: true, balance: 0, currency: 'EUR', low_balance_threshold: 1000, updated_at: '2026-11-22T09:00:00.000Z' });
  t.same((await a.get('/v1/credit')).body, set.body);

  const customer = (await a.post('/v1/customers', { type: 'private_person', first_name: 'Anna', last_name: 'Verdi', tax_code: CF_MARIO })).body.id;
  await fresh();
  const topUp = await call('POST', '/v1/credit/top-ups', { amount: 3000, currency: 'EUR', payment_reference: 'TRN-1' }, 'top-up-1');
  const [created, ...none] = await fresh();
  t.same(none, []);
  expectEvent(t, h, created, { type: 'credit.top_up.created', object: topUp.body, request: byRequest(topUp, 'top-up-1') });
  // The money arrives: the operator's confirmation credits it, with both events, in the operator's request.
  const operator = await h.operator('billing');
  const confirmed = await h.app.inject({ method: 'POST', url: `/v1/operator/top-ups/${topUp.body.id}/confirm`, headers: operator.headers, payload: { reason: 'TRN-1 on the account' } });
  const [toppedUp, invoiced, credited, ...none2] = await fresh();
  t.same(none2, []);
  t.match(invoiced, { type: 'invoice.created', data: { object: { object: 'invoice', livemode: true, top_up: topUp.body.id, net_amount: 3000, total_amount: 3660 } } }, 'the credit is invoiced in the same transaction');
  expectEvent(t, h, toppedUp, { type: 'credit.topped_up', object: (await a.ledger())[0], request: { id: String(confirmed.headers['request-id']), idempotency_key: null } });
  expectEvent(t, h, credited, { type: 'credit.top_up.credited', object: json(confirmed), previous: { status: 'pending', credited_at: null, ledger_entry: null }, request: { id: String(confirmed.headers['request-id']), idempotency_key: null } });

  // Mailboxes waiting for identification: cancelling one now refunds it, which moves the balance back up.
  const buy = async (local: string, termYears = 1) => call('POST', '/v1/mailboxes', { local_part: local, domain: 'pec.example.it', customer, plan: 'standard', term_years: termYears });
  const types = async () => (await fresh()).map((e) => e.type);
  t.equal((await buy('uno')).status, 201);
  t.same(await types(), ['mailbox.created', 'credit.charged'], '3000 → 2500');
  t.equal((await buy('due', 3)).status, 201);
  t.same(await types(), ['mailbox.created', 'credit.charged'], '2500 → 1000: at the threshold is not below it');
  const third = await buy('tre');
  const crossing = await fresh();
  t.same(crossing.map((e) => e.type), ['mailbox.created', 'credit.charged', 'credit.balance_low'], '1000 → 500 crosses it');
  expectEvent(t, h, crossing[2], { type: 'credit.balance_low', object: (await a.get('/v1/credit')).body, request: byRequest(third) });
  t.same(crossing[2].data.object, { id: partner.id, object: 'credit_balance', livemode: true, balance: 500, currency: 'EUR', low_balance_threshold: 1000, updated_at: '2026-11-22T09:00:00.000Z' });
  const fourth = await buy('quattro');
  t.same(await types(), ['mailbox.created', 'credit.charged'], '500 → 0: already below, no second warning');

  const refused = await buy('cinque');
  t.equal(refused.status, 402);
  t.same(await fresh(), [], 'a refused purchase leaves no event');

  t.equal((await a.post(`/v1/mailboxes/${third.body.id}/cancel`, { when: 'now' })).status, 200);
  t.same(await types(), ['credit.refunded', 'mailbox.cancelled'], '0 → 500');
  const refunded = await call('POST', `/v1/mailboxes/${fourth.body.id}/cancel`, { when: 'now' }, 'cancel-4');
  const refundEvents = await fresh();
  t.same(refundEvents.map((e) => e.type), ['credit.refunded', 'mailbox.cancelled'], '500 → 1000: back at the threshold');
  expectEvent(t, h, refundEvents[0], { type: 'credit.refunded', object: (await a.ledger())[0], request: byRequest(refunded, 'cancel-4') });
  t.same(refundEvents[0].data.object, { ...refundEvents[0].data.object, type: 'refund', amount: 500, balance_after: 1000, request_id: refunded.requestId });
  t.equal((await buy('sei')).status, 201);
  t.same(await types(), ['mailbox.created', 'credit.charged', 'credit.balance_low'], '1000 → 500 crosses it again');

  t.same((await a.patch('/v1/credit', { low_balance_threshold: null })).body.low_balance_threshold, null);
  await a.topUp(500);
  t.equal((await buy('sette')).status, 201);
  t.same(await types(), ['credit.top_up.created', 'credit.topped_up', 'invoice.created', 'credit.top_up.credited', 'mailbox.created', 'credit.charged'], 'no threshold, no warning');

  // The events are the ledger: one per entry, equal to it, and their amounts add up to the balance.
  const ledger = await a.ledger();
  const credit = (await a.get('/v1/events?type=credit.*&limit=100')).body.data as Json[];
  // The ledger movements; top-up lifecycle events (credit.top_up.*) carry the top-up, not a ledger entry.
  const movements = credit.filter((e) => e.type !== 'credit.balance_low' && !e.type.startsWith('credit.top_up.'));
  t.same(movements.map((e) => e.data.object), ledger);
  t.same(movements.map((e) => e.type), ledger.map((entry) => ({ top_up: 'credit.topped_up', charge: 'credit.charged', refund: 'credit.refunded' })[entry.type as 'top_up']));
  const sum = movements.reduce((total, e) => total + e.data.object.amount, 0);
  t.equal(sum, 3000 - 500 - 1500 - 500 - 500 + 500 + 500 - 500 + 500 - 500);
  t.equal(sum, await a.balance());
  t.equal(credit.filter((e) => e.type === 'credit.balance_low').length, 2);
});

t.test('mailbox changes by API calls: each with its type, the mailbox as GET shows it and what changed', async (t) => {
  const h = await harness(t);
  const { a, call, fresh } = client(h, await h.partner());
  const customer = await a.customer();
  await a.topUp(50_000);
  await fresh();

  const created = await call('POST', '/v1/mailboxes', { local_part: 'studio', domain: 'pec.example.it', customer, plan: 'standard' }, 'mbx-1');
  t.type(created.body.password, 'string');
  const url = `/v1/mailboxes/${created.body.id}`;
  const read = async () => (await a.get(url)).body;
  const [createdEvent, charged, ...none] = await fresh();
  t.same(none, []);
  expectEvent(t, h, createdEvent, { type: 'mailbox.created', object: await read(), request: byRequest(created, 'mbx-1') });
  t.notOk('password' in createdEvent.data.object, 'never the password');
  expectEvent(t, h, charged, { type: 'credit.charged', object: (await a.ledger())[0], request: byRequest(created, 'mbx-1') });

  /** Moves time on, runs the call and returns its events with the mailbox before it. */
  const change = async (method: Method, path: string, payload?: unknown, key?: string) => {
    h.clock.advance(MINUTE);
    const before = await read();
    const response = await call(method, `${url}${path}`, payload, key);
    t.equal(response.status, 200, `${method} ${path}`);
    return { before, response, events: await fresh(), after: await read() };
  };

  const mode = await change('PATCH', '', { renewal_mode: 'manual' });
  t.equal(mode.events.length, 1);
  expectEvent(t, h, mode.events[0], { type: 'mailbox.updated', object: mode.after, previous: { renewal_mode: 'auto', updated_at: mode.before.updated_at }, request: byRequest(mode.response) });

  const suspended = await change('POST', '/suspend', {});
  t.equal(suspended.events.length, 1);
  expectEvent(t, h, suspended.events[0], {
    type: 'mailbox.suspended', object: suspended.after, request: byRequest(suspended.response),
    previous: { status: 'active', suspension_reason: null, suspended_at: null, updated_at: suspended.before.updated_at },
  });
  const resumed = await change('POST', '/resume', {});
  t.equal(resumed.events.length, 1);
  expectEvent(t, h, resumed.events[0], {
    type: 'mailbox.resumed', object: resumed.after, request: byRequest(resumed.response),
    previous: { status: 'suspended', suspension_reason: 'requested', suspended_at: suspended.after.suspended_at, updated_at: resumed.before.updated_at },
  });
  t.equal((await call('POST', `${url}/resume`, {})).status, 409);
  t.same(await fresh(), [], 'a refused transition emits nothing');

  const scheduled = await change('POST', '/change-plan', { plan: 'pro', when: 'renewal' });
  t.equal(scheduled.events.length, 1);
  expectEvent(t, h, scheduled.events[0], {
    type: 'mailbox.updated', object: scheduled.after, request: byRequest(scheduled.response),
    previous: { plan_at_renewal: null, updated_at: scheduled.before.updated_at },
  });

  // The renewal applies the scheduled plan: one change, announced as a renewal and as a plan change.
  const renewed = await change('POST', '/renew', { years: 1 }, 'renew-1');
  t.same(renewed.events.map((e: Json) => e.type), ['credit.charged', 'mailbox.renewed', 'mailbox.plan_changed']);
  t.match(renewed.events[0].data.object, { type: 'charge', amount: -2500, item: { type: 'mailbox', id: created.body.id } });
  const renewal = {
    object: renewed.after,
    request: byRequest(renewed.response, 'renew-1'),
    previous: {
      plan: 'standard', plan_at_renewal: 'pro', quotas: renewed.before.quotas, included_delegates: 0,
      expires_at: '2027-11-22T09:00:00.000Z', updated_at: renewed.before.updated_at,
    },
  };
  expectEvent(t, h, renewed.events[1], { type: 'mailbox.renewed', ...renewal });
  expectEvent(t, h, renewed.events[2], { type: 'mailbox.plan_changed', ...renewal });
  t.match(renewed.after, { plan: 'pro', plan_at_renewal: null, expires_at: '2028-11-22T09:00:00.000Z', included_delegates: 1 });

  const upgraded = await change('POST', '/change-plan', { plan: 'premium', when: 'now' });
  t.same(upgraded.events.map((e: Json) => e.type), ['credit.charged', 'mailbox.plan_changed']);
  t.same(upgraded.events[0].data.object, (await a.ledger())[0]);
  expectEvent(t, h, upgraded.events[1], {
    type: 'mailbox.plan_changed', object: upgraded.after, request: byRequest(upgraded.response),
    previous: { plan: 'pro', quotas: upgraded.before.quotas, included_delegates: 1, updated_at: upgraded.before.updated_at },
  });

  const password = await change('POST', '/password', {});
  t.equal(password.events.length, 1);
  expectEvent(t, h, password.events[0], {
    type: 'mailbox.updated', object: password.after, request: byRequest(password.response),
    previous: { password_changed_at: '2026-11-22T09:00:00.000Z', updated_at: password.before.updated_at },
  });

  const cancelAtEnd = await change('POST', '/cancel', { when: 'term_end' });
  expectEvent(t, h, cancelAtEnd.events[0], {
    type: 'mailbox.updated', object: cancelAtEnd.after, request: byRequest(cancelAtEnd.response),
    previous: { cancel_at: null, updated_at: cancelAtEnd.before.updated_at },
  });
  const undone = await change('DELETE', '/cancellation');
  expectEvent(t, h, undone.events[0], {
    type: 'mailbox.updated', object: undone.after, request: byRequest(undone.response),
    previous: { cancel_at: '2028-11-22T09:00:00.000Z', updated_at: undone.before.updated_at },
  });
  const cancelled = await change('POST', '/cancel', { when: 'now' }, 'cancel-now');
  t.equal(cancelled.events.length, 1);
  expectEvent(t, h, cancelled.events[0], {
    type: 'mailbox.cancelled', object: cancelled.after, request: byRequest(cancelled.response, 'cancel-now'),
    previous: { status: 'active', cancelled_at: null, updated_at: cancelled.before.updated_at },
  });

  const history = (await a.get(`/v1/events?object_id=${created.body.id}&limit=100`)).body;
  t.same(history.data.map((e: Json) => e.type), [
    'mailbox.cancelled', 'mailbox.updated', 'mailbox.updated', 'mailbox.updated', 'mailbox.plan_changed', 'mailbox.plan_changed',
    'mailbox.renewed', 'mailbox.updated', 'mailbox.resumed', 'mailbox.suspended', 'mailbox.updated', 'mailbox.created',
  ], 'object_id lists every event about the mailbox, newest first');

  // A supervisor's bulk renewal goes through the same service: same events, caused by the bulk call.
  const studio = (await a.post('/v1/mailboxes', { local_part: 'console', domain: 'pec.example.it', customer, plan: 'pro' })).body;
  t.equal((await a.post(`/v1/mailboxes/${studio.id}/addons`, { kind: 'supervisor' })).status, 201);
  const supervisor = (await a.post('/v1/supervisors', { mailbox: studio.id, name: 'Studio Bianchi', email: 'console@studiobianchi.example' })).body;
  const anna = (await a.post('/v1/mailboxes', { local_part: 'anna', domain: 'pec.example.it', customer, plan: 'standard' })).body;
  t.equal((await a.post(`/v1/supervisors/${supervisor.id}/mailboxes`, { mailbox: anna.id })).status, 201);
  t.equal(anna.expires_at, '2027-11-22T09:10:00.000Z');
  await fresh();
  h.clock.advance(MINUTE);
  const annaBefore = (await a.get(`/v1/mailboxes/${anna.id}`)).body;
  const bulk = await call('POST', `/v1/supervisors/${supervisor.id}/bulk`, { action: 'renew', years: 1, mailboxes: [anna.id] }, 'bulk-1');
  t.match(bulk.body, { succeeded: 1, failed: 0 });
  const bulkEvents = await fresh();
  t.same(bulkEvents.map((e) => e.type), ['credit.charged', 'mailbox.renewed']);
  expectEvent(t, h, bulkEvents[1], {
    type: 'mailbox.renewed', object: (await a.get(`/v1/mailboxes/${anna.id}`)).body, request: byRequest(bulk, 'bulk-1'),
    previous: { expires_at: annaBefore.expires_at, updated_at: annaBefore.updated_at },
  });
});

t.test('mailbox changes by the daily job: expiring notices, renewal with a scheduled plan, suspension for credit, expiry, cancellation', async (t) => {
  const h = await harness(t);
  const { a, call, fresh } = client(h, await h.partner());
  const customer = await a.customer();
  await a.topUp(1500);
  const open = async (local: string, renewalMode: 'auto' | 'manual') =>
    (await a.post('/v1/mailboxes', { local_part: local, domain: 'pec.example.it', customer, plan: 'standard', renewal_mode: renewalMode })).body;
  const auto = await open('auto', 'auto');
  const manual = await open('manuale', 'manual');
  const leaver = await open('uscente', 'auto');
  t.equal(await a.balance(), 0);
  t.equal((await a.post(`/v1/mailboxes/${leaver.id}/cancel`, { when: 'date', date: '2027-01-10T09:00:00.000Z' })).status, 200);
  const read = async (id: string) => (await a.get(`/v1/mailboxes/${id}`)).body;
  const at = async (time: string) => {
    await fresh();
    h.clock.set(time);
    const before = { auto: await read(auto.id), manual: await read(manual.id), leaver: await read(leaver.id) };
    await h.app.jobs.tick();
    return { before, events: await fresh() };
  };

  const cancellation = await at('2027-01-10T09:00:00Z');
  t.equal(cancellation.events.length, 1);
  expectEvent(t, h, cancellation.events[0], {
    type: 'mailbox.cancelled', object: await read(leaver.id),
    previous: { status: 'active', cancel_at: '2027-01-10T09:00:00.000Z', cancelled_at: null, updated_at: cancellation.before.leaver.updated_at },
  });

  for (const [time, kind] of [['2027-10-23T09:00:00Z', 'expires_in_30_days'], ['2027-11-15T09:00:00Z', 'expires_in_7_days'], ['2027-11-21T09:00:00Z', 'expires_in_1_day']] as const) {
    const notices = await at(time);
    t.equal(notices.events.length, 2, `${kind}: one event per mailbox`);
    expectEvent(t, h, notices.events[0], { type: 'mailbox.expiring', object: await read(auto.id) }, `${kind} of auto`);
    expectEvent(t, h, notices.events[1], { type: 'mailbox.expiring', object: await read(manual.id) }, `${kind} of manuale`);
    // Two events, not four or six: the earlier notices, recorded again by this run's query, are not announced again.
    t.equal((await a.get(`/v1/mailboxes/${manual.id}/notices`)).body.data.at(-1).kind, kind);
  }

  // Expiry day without credit: the automatic renewal fails (no charge, no renewal event) and suspends.
  const expiry = await at('2027-11-22T09:00:00Z');
  t.equal(expiry.events.length, 1);
  expectEvent(t, h, expiry.events[0], {
    type: 'mailbox.suspended', object: await read(auto.id),
    previous: { status: 'active', suspension_reason: null, suspended_at: null, updated_at: expiry.before.auto.updated_at },
  });
  t.equal(expiry.events[0].data.object.suspension_reason, 'insufficient_credit');

  // The partner schedules a plan change and pays; the next run renews on the new plan.
  const planned = await call('POST', `/v1/mailboxes/${auto.id}/change-plan`, { plan: 'pro', when: 'renewal' });
  t.equal(planned.status, 200);
  await a.topUp(2500);
  const renewal = await at('2027-11-23T09:00:00Z');
  t.same(renewal.events.map((e: Json) => e.type), ['credit.charged', 'mailbox.renewed', 'mailbox.plan_changed']);
  const charge = (await a.ledger())[0];
  t.match(charge, { type: 'charge', amount: -2500, request_id: null, item: { type: 'mailbox', id: auto.id } });
  expectEvent(t, h, renewal.events[0], { type: 'credit.charged', object: charge });
  const renewed = {
    object: await read(auto.id),
    previous: {
      plan: 'standard', plan_at_renewal: 'pro', quotas: renewal.before.auto.quotas, included_delegates: 0, status: 'suspended',
      suspension_reason: 'insufficient_credit', suspended_at: '2027-11-22T09:00:00.000Z', expires_at: '2027-11-22T09:00:00.000Z',
      updated_at: renewal.before.auto.updated_at,
    },
  };
  expectEvent(t, h, renewal.events[1], { type: 'mailbox.renewed', ...renewed });
  expectEvent(t, h, renewal.events[2], { type: 'mailbox.plan_changed', ...renewed });
  t.match(renewed.object, { status: 'active', plan: 'pro', expires_at: '2028-11-23T09:00:00.000Z' });

  const grace = await at('2027-12-22T09:00:00Z');
  t.equal(grace.events.length, 1);
  expectEvent(t, h, grace.events[0], {
    type: 'mailbox.expired', object: await read(manual.id),
    previous: { status: 'active', expired_at: null, updated_at: grace.before.manual.updated_at },
  });
});

t.test('domains: created, updated, certified, withdrawn; the daily check degrades, recertifies, decertifies, cancels', async (t) => {
  const dns: DnsServer = await startDnsServer();
  t.teardown(() => dns.close());
  const h = await harness(t, { env: { DNS_SERVERS: dns.address } });
  const { a, call, fresh } = client(h, await h.partner());
  const publish = (domain: Json) => {
    dns.set(domain.name, 'MX', domain.dns_records.filter((r: Json) => r.type === 'MX').map((r: Json) => ({ exchange: r.value, priority: r.priority })));
    const txt = domain.dns_records.find((r: Json) => r.type === 'TXT');
    dns.set(txt.name, 'TXT', [txt.value]);
  };
  const first = await a.customer();
  const second = await a.customer();
  await a.topUp(20_000);
  await fresh();

  const created = await call('POST', '/v1/domains', { name: 'studio-neri.it', customer: first }, 'domain-1');
  const url = `/v1/domains/${created.body.id}`;
  const read = async () => (await a.get(url)).body;
  const [createdEvent, ...none] = await fresh();
  t.same(none, []);
  expectEvent(t, h, createdEvent, { type: 'domain.created', object: await read(), request: byRequest(created, 'domain-1') });

  const step = async (run: () => Promise<{ requestId: string } | void>) => {
    h.clock.advance(DAYS / 24);
    const before = await read();
    const response = await run();
    return { before, response, events: await fresh(), after: await read() };
  };

  const moved = await step(() => call('PATCH', url, { customer: second }));
  t.equal(moved.events.length, 1);
  expectEvent(t, h, moved.events[0], {
    type: 'domain.updated', object: moved.after, request: byRequest(moved.response as { requestId: string }),
    previous: { customer: first, updated_at: moved.before.updated_at },
  });

  publish(created.body);
  const verified = await step(() => call('POST', `${url}/verify`, undefined, 'verify-1'));
  t.same(verified.events.map((e: Json) => e.type), ['domain.certified', 'credit.charged']);
  expectEvent(t, h, verified.events[0], {
    type: 'domain.certified', object: verified.after, request: byRequest(verified.response as { requestId: string }, 'verify-1'),
    previous: { status: 'pending_verification', certified_at: null, last_check: null, updated_at: verified.before.updated_at },
  });
  t.match(verified.events[1].data.object, { type: 'charge', amount: -5000, item: { type: 'domain', id: created.body.id } });

  const other = (await a.post('/v1/domains', { name: 'altro-studio.it', customer: first })).body;
  await fresh();
  h.clock.advance(MINUTE);
  const withdrawn = await call('POST', `/v1/domains/${other.id}/withdraw`);
  const [withdrawnEvent, ...rest] = await fresh();
  t.same(rest, []);
  expectEvent(t, h, withdrawnEvent, {
    type: 'domain.withdrawn', object: (await a.get(`/v1/domains/${other.id}`)).body, request: byRequest(withdrawn),
    previous: { status: 'pending_verification', withdrawn_at: null, updated_at: other.updated_at },
  });

  const mailbox = (await a.post('/v1/mailboxes', { local_part: 'pec', domain: 'studio-neri.it', customer: second, plan: 'standard' })).body;
  const readMailbox = async () => (await a.get(`/v1/mailboxes/${mailbox.id}`)).body;
  await fresh();

  const daily = () => step(async () => {
    h.clock.advance(DAYS - DAYS / 24);
    await h.app.jobs.tick();
  });
  const passing = await daily();
  t.same(passing.events, [], 'a passing check that changes nothing is not an event');
  t.equal(passing.after.last_check.ok, true);

  dns.fail('studio-neri.it', 'servfail');
  const failing = await daily();
  t.equal(failing.events.length, 1);
  expectEvent(t, h, failing.events[0], {
    type: 'domain.degraded', object: failing.after,
    previous: { status: 'certified', degraded_at: null, last_check: failing.before.last_check, updated_at: failing.before.updated_at },
  });

  dns.heal('studio-neri.it');
  const healed = await daily();
  t.equal(healed.events.length, 1);
  expectEvent(t, h, healed.events[0], {
    type: 'domain.recertified', object: healed.after,
    previous: { status: 'degraded', degraded_at: failing.after.degraded_at, last_check: healed.before.last_check, updated_at: healed.before.updated_at },
  });

  dns.clear('_pec-verify.studio-neri.it');
  t.same((await daily()).events.map((e: Json) => e.type), ['domain.degraded']);
  for (let day = 2; day <= 7; day++) t.same((await daily()).events, [], `day ${day} of degradation: nothing new`);
  const mailboxBefore = await readMailbox();
  const decertified = await daily();
  t.same(decertified.events.map((e: Json) => e.type), ['domain.decertified', 'mailbox.suspended']);
  expectEvent(t, h, decertified.events[0], {
    type: 'domain.decertified', object: decertified.after,
    previous: { status: 'degraded', decertified_at: null, last_check: decertified.before.last_check, updated_at: decertified.before.updated_at },
  });
  const suspended = await readMailbox();
  expectEvent(t, h, decertified.events[1], {
    type: 'mailbox.suspended', object: suspended,
    previous: { status: 'active', suspension_reason: null, suspended_at: null, updated_at: mailboxBefore.updated_at },
  });
  t.equal(suspended.suspension_reason, 'domain_decertified');

  publish(created.body);
  const again = await step(() => call('POST', `${url}/verify`));
  t.same(again.events.map((e: Json) => e.type), ['domain.certified', 'mailbox.resumed', 'credit.charged']);
  expectEvent(t, h, again.events[1], {
    type: 'mailbox.resumed', object: await readMailbox(), request: byRequest(again.response as { requestId: string }),
    previous: { status: 'suspended', suspension_reason: 'domain_decertified', suspended_at: suspended.suspended_at, updated_at: suspended.updated_at },
  });

  t.equal((await a.post(`/v1/mailboxes/${mailbox.id}/cancel`, { when: 'now' })).status, 200);
  await fresh();
  const cancelAt = new Date(h.clock.now().getTime() + 2 * DAYS).toISOString();
  const requested = await step(() => call('POST', `${url}/cancellation`, { at: cancelAt }));
  expectEvent(t, h, requested.events[0], {
    type: 'domain.updated', object: requested.after, request: byRequest(requested.response as { requestId: string }),
    previous: { cancel_at: null, updated_at: requested.before.updated_at },
  });
  const undone = await step(() => call('DELETE', `${url}/cancellation`));
  expectEvent(t, h, undone.events[0], {
    type: 'domain.updated', object: undone.after, request: byRequest(undone.response as { requestId: string }),
    previous: { cancel_at: cancelAt, updated_at: undone.before.updated_at },
  });
  // The daily job's next run carries it out.
  const nextRun = (await h.app.jobs.schedule()).find((task) => task.name === 'domains.daily')!.nextRunAt.toISOString();
  t.equal((await call('POST', `${url}/cancellation`, { at: nextRun })).status, 200);
  await fresh();
  const before = await read();
  h.clock.set(nextRun);
  await h.app.jobs.tick();
  const [cancelledEvent, ...after] = await fresh();
  t.same(after, []);
  expectEvent(t, h, cancelledEvent, {
    type: 'domain.cancelled', object: await read(),
    previous: { status: 'certified', cancelled_at: null, updated_at: before.updated_at },
  });
});

t.test('GET /v1/events: filters, pagination, 30 days of visibility, the purge, and tenant isolation', async (t) => {
  const h = await harness(t);
  const partner = await h.partner();
  const { a, call } = client(h, partner);
  // An endpoint of the partner, so each event has a delivery the purge must take along.
  await h.database.db.insert(webhookEndpoints).values({
    id: 'we_00000000000000000000000001', partnerId: partner.id, url: 'https://billing.example.com/hooks', enabledEvents: ['*'],
    status: 'enabled', secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', createdAt: h.clock.now(), updatedAt: h.clock.now(),
  });
  const start = h.clock.now().getTime();
  const anna = (await call('POST', '/v1/customers', { type: 'private_person', first_name: 'Anna', last_name: 'Verdi', tax_code: CF_MARIO })).body;
  h.clock.set(new Date(start + 3_600_000));
  const bruno = (await call('POST', '/v1/customers', { type: 'private_person', first_name: 'Bruno', last_name: 'Neri', tax_code: CF_MARIO })).body;
  h.clock.set(new Date(start + 7_200_000));
  await call('PATCH', `/v1/customers/${anna.id}`, { email: 'anna@example.it' });
  h.clock.set(new Date(start + 10_800_000));
  // One credit event: the operator's adjustment (a top-up would add its own top_up events around the credit).
  const operator = await h.operator('billing');
  await h.app.inject({ method: 'POST', url: `/v1/operator/partners/${partner.id}/credit-adjustments`, headers: operator.headers, payload: { amount: 1000, currency: 'EUR', reason: 'Test credit' } });

  const list = async (query: string) => (await a.get(`/v1/events?limit=100${query}`)).body;
  const all: Json[] = (await list('')).data;
  const summary = (events: Json[]) => events.map((e) => [e.type, e.data.object.id]);
  t.same(all.map((e) => [e.type, e.data.object.id, e.created_at]), [
    ['credit.adjusted', all[0].data.object.id, '2026-11-22T12:00:00.000Z'],
    ['customer.updated', anna.id, '2026-11-22T11:00:00.000Z'],
    ['customer.created', bruno.id, '2026-11-22T10:00:00.000Z'],
    ['customer.created', anna.id, '2026-11-22T09:00:00.000Z'],
  ], 'newest first');
  t.same(summary((await list('&type=customer.created')).data), [['customer.created', bruno.id], ['customer.created', anna.id]]);
  t.same(summary((await list('&type=customer.*')).data), summary(all.slice(1)));
  t.same(summary((await list('&type=credit.*')).data), summary(all.slice(0, 1)));
  t.same((await list('&type=mailbox.*')).data, []);
  t.same(summary((await list(`&object_id=${anna.id}`)).data), [['customer.updated', anna.id], ['customer.created', anna.id]]);
  t.same(summary((await list(`&object_id=${anna.id}&type=customer.created`)).data), [['customer.created', anna.id]]);
  t.same(summary((await list('&created_after=2026-11-22T10:00:00Z')).data), summary(all.slice(0, 3)), 'created_after includes its instant');
  t.same(summary((await list('&created_before=2026-11-22T11:00:00Z')).data), summary(all.slice(2)), 'created_before excludes its instant');
  t.same(summary((await list('&created_after=2026-11-22T10:00:00Z&created_before=2026-11-22T11:00:00Z')).data), [['customer.created', bruno.id]]);
  for (const [query, pointer] of [
    ['&type=customer', '/type'], ['&type=*', '/type'], ['&type=nothing.*', '/type'], ['&type=customer.exploded', '/type'],
    ['&created_after=2026-11-22T11:00:00Z&created_before=2026-11-22T10:00:00Z', '/created_before'], ['&created_after=yesterday', '/created_after'],
  ] as const) {
    const refused = await a.get(`/v1/events?limit=100${query}`);
    t.equal(refused.status, 400, query);
    t.equal(refused.body.errors?.[0]?.pointer, pointer, query);
  }

  const page1 = (await a.get('/v1/events?limit=3')).body;
  t.same({ ...page1, data: summary(page1.data) }, { object: 'list', data: summary(all.slice(0, 3)), has_more: true, next_cursor: all[2].id });
  const page2 = (await a.get(`/v1/events?limit=3&starting_after=${page1.next_cursor}`)).body;
  t.same({ ...page2, data: summary(page2.data) }, { object: 'list', data: summary(all.slice(3)), has_more: false, next_cursor: null });

  // Another partner sees none of it, not even by id: the same 404 as an unknown event.
  const other = client(h, await h.partner('Other'));
  const foreign = await other.a.get(`/v1/events/${all[3].id}`);
  t.equal(foreign.status, 404);
  t.equal(foreign.body.code, 'resource_missing');
  const unknown = await other.a.get('/v1/events/evt_00000000000000000000000000');
  t.same({ ...foreign.body, request_id: null, detail: null }, { ...unknown.body, request_id: null, detail: null });
  t.same((await other.a.get('/v1/events')).body, { object: 'list', data: [], has_more: false, next_cursor: null });
  t.same((await other.a.get(`/v1/events?object_id=${anna.id}`)).body.data, []);
  t.equal((await other.a.get(`/v1/events?starting_after=${all[0].id}`)).body.errors[0].code, 'invalid_cursor');

  // Visible for 30 days to the millisecond, then gone from the API; the daily purge then deletes them.
  const deliveries = await h.database.db.select().from(webhookDeliveries).where(inArray(webhookDeliveries.eventId, all.map((e) => e.id)));
  t.equal(deliveries.length, 4, 'one delivery per event for the endpoint');
  const annaCreated = all[3];
  const delivery = deliveries.find((d) => d.eventId === annaCreated.id)!;
  await h.database.db.insert(webhookAttempts).values({
    id: 'wat_00000000000000000000000001', deliveryId: delivery.id, eventId: annaCreated.id, endpointId: delivery.endpointId, partnerId: partner.id,
    url: 'https://billing.example.com/hooks', succeeded: false, responseStatus: 503, latencyMs: 12, attemptedAt: h.clock.now(),
  });
  h.clock.set(new Date(start + 30 * DAYS));
  t.same((await a.get(`/v1/events/${annaCreated.id}`)).body, annaCreated, 'still there 30 days later');
  h.clock.set(new Date(start + 30 * DAYS + 1));
  t.equal((await a.get(`/v1/events/${annaCreated.id}`)).status, 404, 'not a millisecond more');
  t.same(summary((await list('')).data), summary(all.slice(0, 3)));

  const stored = async () => (await h.database.db.select({ id: events.id }).from(events).where(eq(events.partnerId, partner.id))).map((r) => r.id);
  t.equal((await stored()).length, 4, 'hidden, not yet deleted');
  t.ok((await h.app.jobs.tick()).includes('events.purge'));
  t.same((await stored()).sort(), all.slice(0, 3).map((e) => e.id).sort(), 'the purge deleted the expired event');
  const left = await h.database.db.select({ eventId: webhookDeliveries.eventId }).from(webhookDeliveries).where(eq(webhookDeliveries.partnerId, partner.id));
  t.same(left.map((d) => d.eventId).sort(), all.slice(0, 3).map((e) => e.id).sort(), 'with its delivery');
  const [attempts] = await h.database.db.select({ n: sql<number>`count(*)::int` }).from(webhookAttempts).where(eq(webhookAttempts.deliveryId, delivery.id));
  t.equal(attempts!.n, 0, 'and its attempts');
});
