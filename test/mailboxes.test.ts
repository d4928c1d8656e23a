import t from 'tap';
import { api } from './helpers/fixtures.ts';
import { DAYS, harness } from './helpers/harness.ts';

const GiB = 1024 ** 3;

t.test('activation on a provider domain: charged for the term, quotas from the plan, password shown once', async (t) => {
  const h = await harness(t);
  const a = api(h, await h.partner());
  const customer = await a.customer();
  await a.topUp(10_000);

  const free = await a.post('/v1/mailboxes/availability', { address: 'Mario.Rossi@PEC.example.it' });
  t.same(free.body, { object: 'mailbox_availability', livemode: true, address: 'mario.rossi@pec.example.it', available: true, reason: null, detail: null });

  const created = await a.post('/v1/mailboxes', { local_part: 'Mario.Rossi', domain: 'pec.example.it', customer, plan: 'pro', term_years: 3 });
  t.equal(created.status, 201);
  const mbx = created.body;
  t.match(mbx.password, /^[0-9A-Za-z]{16}$/);
  t.match(mbx, {
    object: 'mailbox', livemode: true, address: 'mario.rossi@pec.example.it', local_part: 'mario.rossi', domain: 'pec.example.it', domain_id: 'pdm_pec.example.it',
    customer, plan: 'pro', plan_at_renewal: null, term_years: 3, renewal_mode: 'auto', status: 'active', suspension_reason: null,
    quotas: { inbox: { base_bytes: 2 * GiB, extra_bytes: 0, total_bytes: 2 * GiB, used_bytes: 0 }, archive: { base_bytes: 3 * GiB, extra_bytes: 0, total_bytes: 3 * GiB, used_bytes: 0 } },
    included_delegates: 1, requested_at: '2026-11-22T09:00:00.000Z', activated_at: '2026-11-22T09:00:00.000Z', expires_at: '2029-11-22T09:00:00.000Z',
  });
  const read = (await a.get(`/v1/mailboxes/${mbx.id}`)).body;
  t.notOk('password' in read, 'the password is never shown again');
  t.same((await a.ledger()).map((e) => [e.type, e.amount, e.description, e.item?.id ?? null])[0], ['charge', -7500, 'PEC mailbox Pro, 3 years: mario.rossi@pec.example.it', mbx.id]);
  t.equal(await a.balance(), 2500);

  const taken = await a.post('/v1/mailboxes/availability', { address: 'mario.rossi@pec.example.it' });
  t.match(taken.body, { available: false, reason: 'taken' });
  const duplicate = await a.post('/v1/mailboxes', { local_part: 'mario.rossi', domain: 'pec.example.it', customer, plan: 'standard' });
  t.equal(duplicate.status, 409);
  t.equal(duplicate.body.code, 'address_taken');

  const chosen = await a.post('/v1/mailboxes', { local_part: 'studio', domain: 'postacert.example.it', customer, plan: 'standard', password: 'correct horse 42', renewal_mode: 'manual' });
  t.equal(chosen.status, 201);
  t.notOk('password' in chosen.body, 'a chosen password is not echoed');
  t.match(chosen.body, { renewal_mode: 'manual', term_years: 1, expires_at: '2027-11-22T09:00:00.000Z', quotas: { inbox: { base_bytes: GiB }, archive: { base_bytes: 0 } } });

  for (const [body, pointer, code] of [
    [{ local_part: '.bad', domain: 'pec.example.it', customer, plan: 'standard' }, '/local_part', 'invalid_local_part'],
    [{ local_part: 'a..b', domain: 'pec.example.it', customer, plan: 'standard' }, '/local_part', 'invalid_local_part'],
    [{ local_part: 'ok', domain: 'gmail.com', customer, plan: 'standard' }, '/domain', 'unknown_domain'],
    [{ local_part: 'ok', domain: 'pec.example.it', customer: 'cus_00000000000000000000000000', plan: 'standard' }, '/customer', 'resource_missing'],
    [{ local_part: 'ok', domain: 'pec.example.it', customer, plan: 'standard', password: 'short1' }, '/password', 'out_of_range'],
    [{ local_part: 'ok', domain: 'pec.example.it', customer, plan: 'standard', password: 'onlyletterslong' }, '/password', 'weak_password'],
    [{ local_part: 'ok', domain: 'pec.example.it', customer, plan: 'gold' }, '/plan', 'invalid_value'],
    [{ local_part: 'ok', domain: 'pec.example.it', customer, plan: 'standard', term_years: 6 }, '/term_years', 'out_of_range'],
  ] as const) {
    const r = await a.post('/v1/mailboxes', body);
    t.equal(r.status, 400, JSON.stringify(body));
    t.match(r.body.errors, [{ pointer, code }], JSON.stringify(body));
  }
  t.equal((await a.get('/v1/mailboxes')).body.data.length, 2, 'no rejected mailbox was written');
});

t.test('insufficient credit: 402, nothing written; the last unit of credit goes to exactly one of many', async (t) => {
  const h = await harness(t);
  const a = api(h, await h.partner());
  const customer = await a.customer();
  await a.topUp(900);
  const poor = await a.post('/v1/mailboxes', { local_part: 'caro', domain: 'pec.example.it', customer, plan: 'pro' });
  t.equal(poor.status, 402);
  t.match(poor.body, { code: 'insufficient_credit', balance: 900, required: 2500, shortfall: 1600 });
  t.equal((await a.get('/v1/mailboxes')).body.data.length, 0);
  t.equal((await a.post('/v1/mailboxes/availability', { address: 'caro@pec.example.it' })).body.available, true);

  await a.topUp(100);
  const racers = await Promise.all(
    Array.from({ length: 8 }, (_, i) => a.post('/v1/mailboxes', { local_part: `racer${i}`, domain: 'pec.example.it', customer, plan: 'standard', term_years: 2 })),
  );
  t.same(racers.map((r) => r.status).sort(), [201, 402, 402, 402, 402, 402, 402, 402]);
  t.equal(await a.balance(), 0);
  t.equal((await a.get('/v1/mailboxes')).body.data.length, 1);
  t.equal((await a.ledger('&type=charge')).length, 1);
});

t.test('identity gate: pending until a valid document arrives; the term starts at activation', async (t) => {
  const h = await harness(t);
  const a = api(h, await h.partner());
  const customer = await a.customer(false);
  await a.topUp(5000);
  const pending = (await a.post('/v1/mailboxes', { local_part: 'attesa', domain: 'pec.example.it', customer, plan: 'standard' })).body;
  t.match(pending, { status: 'pending_identification', activated_at: null, expires_at: null });
  t.equal(await a.balance(), 4500, 'charged at request');
  t.equal((await a.get(`/v1/customers/${customer}/identity`)).status, 404);

  for (const [action, body] of [['suspend', {}], ['resume', {}], ['renew', { years: 1 }], ['change-plan', { plan: 'pro', when: 'now' }]] as const) {
    const r = await a.post(`/v1/mailboxes/${pending.id}/${action}`, body);
    t.equal(r.status, 409, action);
    t.match(r.body, { code: 'invalid_state_transition', current_status: 'pending_identification' });
  }

  const expired = await a.post(`/v1/customers/${customer}/identity`, { document_type: 'passport', number: 'YA1234567', issuer: 'Questura di Roma', expires_on: '2026-11-21' });
  t.equal(expired.status, 400);
  t.match(expired.body.errors, [{ pointer: '/expires_on', code: 'document_expired' }]);
  t.equal((await a.get(`/v1/mailboxes/${pending.id}`)).body.status, 'pending_identification');

  h.clock.advance(2 * DAYS);
  const filed = await a.post(`/v1/customers/${customer}/identity`, { document_type: 'passport', number: 'ya1234567', issuer: 'Questura di Roma', issued_on: '2020-05-01', expires_on: '2030-05-01' });
  t.equal(filed.status, 201);
  t.match(filed.body, { object: 'identity_document', livemode: true, customer, document_type: 'passport', number: 'YA1234567', issued_on: '2020-05-01', expires_on: '2030-05-01', activated_mailboxes: 1 });
  t.match((await a.get(`/v1/mailboxes/${pending.id}`)).body, { status: 'active', activated_at: '2026-11-24T09:00:00.000Z', expires_at: '2027-11-24T09:00:00.000Z' });
  t.equal((await a.get(`/v1/customers/${customer}/identity`)).body.number, 'YA1234567');
  const direct = await a.post('/v1/mailboxes', { local_part: 'subito', domain: 'pec.example.it', customer, plan: 'standard' });
  t.equal(direct.body.status, 'active', 'identified customers get active mailboxes at once');

  // A mailbox never activated is refunded in full when cancelled.
  const other = await a.customer(false);
  await a.topUp(5000);
  const waiting = (await a.post('/v1/mailboxes', { local_part: 'mai', domain: 'pec.example.it', customer: other, plan: 'pro', term_years: 2 })).body;
  const balance = await a.balance();
  const cancelled = await a.post(`/v1/mailboxes/${waiting.id}/cancel`, { when: 'now' });
  t.match(cancelled.body, { status: 'cancelled', cancelled_at: '2026-11-24T09:00:00.000Z' });
  t.equal(await a.balance(), balance + 5000);
  t.match((await a.ledger())[0], { type: 'refund', amount: 5000, item: { type: 'mailbox', id: waiting.id } });
});

t.test('state machine: suspend, resume, cancel now/at term end/on a date and undo, renewal mode, password', async (t) => {
  const h = await harness(t);
  const a = api(h, await h.partner());
  const customer = await a.customer();
  await a.topUp(10_000);
  const mbx = (await a.post('/v1/mailboxes', { local_part: 'ciclo', domain: 'pec.example.it', customer, plan: 'standard' })).body;
  const act = (action: string, body: unknown = {}) => a.post(`/v1/mailboxes/${mbx.id}/${action}`, body);

  t.match((await act('resume')).body, { code: 'invalid_state_transition', current_status: 'active', allowed_from: ['suspended'] });
  t.match((await act('suspend')).body, { status: 'suspended', suspension_reason: 'requested', suspended_at: '2026-11-22T09:00:00.000Z' });
  const twice = await act('suspend');
  t.equal(twice.status, 409);
  t.match(twice.body, { code: 'invalid_state_transition', current_status: 'suspended', detail: /Cannot suspend mailbox '.*' while it is suspended/ });
  t.match((await act('resume')).body, { status: 'active', suspension_reason: null, suspended_at: null });

  t.equal((await act('cancel', { when: 'date' })).body.errors[0].pointer, '/date');
  t.equal((await act('cancel', { when: 'date', date: '2028-01-01T00:00:00Z' })).body.errors[0].code, 'out_of_range', 'not after the term');
  t.equal((await act('cancel', { when: 'term_end' })).body.cancel_at, '2027-11-22T09:00:00.000Z');
  t.equal((await act('cancel', { when: 'term_end' })).body.code, 'cancellation_already_scheduled');
  t.equal((await act('renew', { years: 1 })).body.code, 'cancellation_scheduled');
  t.equal((await a.del(`/v1/mailboxes/${mbx.id}/cancellation`)).body.cancel_at, null);
  t.equal((await a.del(`/v1/mailboxes/${mbx.id}/cancellation`)).body.code, 'no_cancellation_scheduled');
  t.equal((await act('cancel', { when: 'date', date: '2026-12-01T00:00:00Z' })).body.cancel_at, '2026-12-01T00:00:00.000Z');
  h.clock.advance(8 * DAYS);
  await h.app.jobs.tick();
  t.equal((await a.get(`/v1/mailboxes/${mbx.id}`)).body.status, 'active', 'the day before');
  h.clock.advance(1 * DAYS);
  await h.app.jobs.tick();
  // The daily job that first runs on or after the date applies it.
  t.match((await a.get(`/v1/mailboxes/${mbx.id}`)).body, { status: 'cancelled', cancelled_at: '2026-12-01T09:00:00.000Z', cancel_at: null });
  for (const [action, body] of [['suspend', {}], ['resume', {}], ['renew', { years: 1 }], ['cancel', { when: 'now' }], ['password', {}]] as const) {
    t.match((await act(action, body)).body, { code: 'invalid_state_transition', current_status: 'cancelled' }, action);
  }
  t.equal((await a.patch(`/v1/mailboxes/${mbx.id}`, { renewal_mode: 'manual' })).status, 409);

  const live = (await a.post('/v1/mailboxes', { local_part: 'vivo', domain: 'pec.example.it', customer, plan: 'standard' })).body;
  t.equal((await a.patch(`/v1/mailboxes/${live.id}`, { renewal_mode: 'manual' })).body.renewal_mode, 'manual');
  const generated = await a.post(`/v1/mailboxes/${live.id}/password`);
  t.match(generated.body, { object: 'mailbox_password', livemode: true, mailbox: live.id, password: /^[0-9A-Za-z]{16}$/, changed_at: '2026-12-01T09:00:00.000Z' });
  const set = await a.post(`/v1/mailboxes/${live.id}/password`, { password: 'nuova password 2026' });
  t.same(Object.keys(set.body).sort(), ['changed_at', 'livemode', 'mailbox', 'object']);
  t.equal((await a.post(`/v1/mailboxes/${live.id}/password`, { password: 'nodigitshere' })).body.errors[0].code, 'weak_password');
  t.equal((await a.post(`/v1/mailboxes/${live.id}/cancel`, { when: 'now' })).body.status, 'cancelled');
  t.equal(await a.balance(), 9000, 'cancelling an active mailbox refunds nothing');
});

t.test('renewals and plan changes: exact charges and refunds with the mailbox id', async (t) => {
  const h = await harness(t);
  const a = api(h, await h.partner());
  const customer = await a.customer();
  await a.topUp(20_000);
  const mbx = (await a.post('/v1/mailboxes', { local_part: 'piano', domain: 'pec.example.it', customer, plan: 'pro' })).body;
  const act = (action: string, body: unknown = {}) => a.post(`/v1/mailboxes/${mbx.id}/${action}`, body);

  // 73 of 365 days used: 292 days left, i.e. 0.8 of a year.
  h.clock.advance(73 * DAYS);
  t.match((await act('change-plan', { plan: 'premium', when: 'now' })).body, { plan: 'premium', quotas: { archive: { base_bytes: 8 * GiB } }, included_delegates: 3 });
  t.match((await a.ledger())[0], { type: 'charge', amount: -1200, item: { type: 'mailbox', id: mbx.id } });
  t.match((await act('change-plan', { plan: 'standard', when: 'now' })).body, { plan: 'standard', quotas: { inbox: { base_bytes: GiB }, archive: { base_bytes: 0 } } });
  t.match((await a.ledger())[0], { type: 'refund', amount: 2800, description: /Premium → Standard/ });
  t.equal((await act('change-plan', { plan: 'standard', when: 'now' })).body.code, 'plan_unchanged');

  t.equal((await act('change-plan', { plan: 'premium', when: 'renewal' })).body.plan_at_renewal, 'premium');
  const renewed = await act('renew', { years: 2 });
  t.match(renewed.body, { plan: 'premium', plan_at_renewal: null, expires_at: '2029-11-22T09:00:00.000Z', status: 'active' });
  t.match((await a.ledger())[0], { type: 'charge', amount: -8000, description: 'Renewal: PEC mailbox Premium, 2 years: piano@pec.example.it' });
  t.equal((await act('renew', { years: 0 })).status, 400);

  const ledger = await a.ledger(`&item_id=${mbx.id}`);
  t.same(ledger.map((e) => e.amount), [-8000, 2800, -1200, -2500]);
  t.equal(await a.balance(), 20_000 - 2500 - 1200 + 2800 - 8000);
});

t.test('daily job: automatic renewal, suspension when credit is short and recovery, manual expiry after grace, notices', async (t) => {
  const h = await harness(t);
  const a = api(h, await h.partner());
  const customer = await a.customer();
  await a.topUp(1000);
  const auto = (await a.post('/v1/mailboxes', { local_part: 'auto', domain: 'pec.example.it', customer, plan: 'standard' })).body;
  const manual = (await a.post('/v1/mailboxes', { local_part: 'manuale', domain: 'pec.example.it', customer, plan: 'standard', renewal_mode: 'manual' })).body;
  t.equal(await a.balance(), 0);
  const read = async (id: string) => (await a.get(`/v1/mailboxes/${id}`)).body;

  // Notices 30, 7 and 1 days before expiry (2027-11-22), once each however often the job runs.
  for (const day of [334, 335, 336, 358, 364]) {
    h.clock.set(new Date(Date.parse('2026-11-22T09:00:00Z') + day * DAYS));
    await h.app.jobs.tick();
  }
  t.same((await a.get(`/v1/mailboxes/${manual.id}/notices`)).body.data.map((n: { kind: string; created_at: string; expires_at: string }) => [n.kind, n.created_at, n.expires_at]), [
    ['expires_in_30_days', '2027-10-23T09:00:00.000Z', '2027-11-22T09:00:00.000Z'],
    ['expires_in_7_days', '2027-11-15T09:00:00.000Z', '2027-11-22T09:00:00.000Z'],
    ['expires_in_1_day', '2027-11-21T09:00:00.000Z', '2027-11-22T09:00:00.000Z'],
  ]);

  // Expiry day: the auto mailbox cannot be paid, so it is suspended; the manual one keeps its grace period.
  h.clock.set('2027-11-22T09:00:00Z');
  await h.app.jobs.tick();
  t.match(await read(auto.id), { status: 'suspended', suspension_reason: 'insufficient_credit', suspended_at: '2027-11-22T09:00:00.000Z' });
  t.match(await read(manual.id), { status: 'active' });
  t.equal((await a.post(`/v1/mailboxes/${auto.id}/resume`)).body.code, 'mailbox_term_ended');

  await a.topUp(500);
  h.clock.set('2027-11-23T09:00:00Z');
  await h.app.jobs.tick();
  t.match(await read(auto.id), { status: 'active', suspension_reason: null, expires_at: '2028-11-23T09:00:00.000Z' }, 'renewed from the day it was paid');
  t.match((await a.ledger())[0], { type: 'charge', amount: -500, description: 'Renewal: PEC mailbox Standard, 1 year: auto@pec.example.it', item: { id: auto.id } });
  await h.app.jobs.tick();
  t.equal(await a.balance(), 0, 'a second run the same day charges nothing');

  h.clock.set('2027-12-21T09:00:00Z');
  await h.app.jobs.tick();
  t.equal((await read(manual.id)).status, 'active', 'day 29 of grace');
  h.clock.set('2027-12-22T09:00:00Z');
  await h.app.jobs.tick();
  t.match(await read(manual.id), { status: 'expired', expired_at: '2027-12-22T09:00:00.000Z' });
  await a.topUp(500);
  const revived = await a.post(`/v1/mailboxes/${manual.id}/renew`, { years: 1 });
  t.match(revived.body, { status: 'active', expires_at: '2028-12-22T09:00:00.000Z', expired_at: null });

  // An auto mailbox that stays unpaid past the grace period expires.
  h.clock.set('2028-11-23T09:00:00Z');
  await h.app.jobs.tick();
  t.equal((await read(auto.id)).suspension_reason, 'insufficient_credit');
  h.clock.set('2028-12-23T09:00:00Z');
  await h.app.jobs.tick();
  t.match(await read(auto.id), { status: 'expired', suspension_reason: null });
});

t.test('lists filter by customer, domain, plan, status and expiry; other partners see nothing', async (t) => {
  const h = await harness(t);
  const a = api(h, await h.partner());
  const other = api(h, await h.partner('Other'));
  const c1 = await a.customer();
  const c2 = await a.customer();
  await a.topUp(50_000);
  await a.post('/v1/mailboxes', { local_part: 'uno', domain: 'pec.example.it', customer: c1, plan: 'standard' });
  await a.post('/v1/mailboxes', { local_part: 'due', domain: 'postacert.example.it', customer: c1, plan: 'pro', term_years: 2 });
  const three = (await a.post('/v1/mailboxes', { local_part: 'tre', domain: 'pec.example.it', customer: c2, plan: 'premium', term_years: 5 })).body;
  await a.post(`/v1/mailboxes/${three.id}/suspend`);
  const addresses = async (query: string) => (await a.get(`/v1/mailboxes?${query}`)).body.data.map((m: { address: string }) => m.address);
  t.same(await addresses(''), ['tre@pec.example.it', 'due@postacert.example.it', 'uno@pec.example.it']);
  t.same(await addresses(`customer=${c1}`), ['due@postacert.example.it', 'uno@pec.example.it']);
  t.same(await addresses('domain=pec.example.it'), ['tre@pec.example.it', 'uno@pec.example.it']);
  t.same(await addresses('plan=pro'), ['due@postacert.example.it']);
  t.same(await addresses('status=suspended'), ['tre@pec.example.it']);
  t.same(await addresses('expiring_before=2029-01-01T00:00:00Z'), ['due@postacert.example.it', 'uno@pec.example.it']);
  t.same(await addresses('limit=2'), ['tre@pec.example.it', 'due@postacert.example.it']);

  t.equal((await other.get('/v1/mailboxes')).body.data.length, 0);
  t.equal((await other.get(`/v1/mailboxes/${three.id}`)).status, 404);
  t.equal((await other.post(`/v1/mailboxes/${three.id}/resume`)).status, 404);
  const otherCustomer = await other.customer();
  await other.topUp(1000);
  const foreignCustomer = await other.post('/v1/mailboxes', { local_part: 'x', domain: 'pec.example.it', customer: c1, plan: 'standard' });
  t.equal(foreignCustomer.status, 400, "another partner's customer is unknown here");
  t.equal((await other.post('/v1/mailboxes', { local_part: 'x', domain: 'pec.example.it', customer: otherCustomer, plan: 'standard' })).status, 201);
  t.equal((await a.del(`/v1/customers/${c1}`)).body.code, 'customer_has_services');
});
