import t from 'tap';
import { charge, getBalance, ledgerTotal, refund } from '@pec-partner/api';
import { harness, json } from './helpers/harness.ts';
import { billingOperator, creditPartner } from './helpers/fixtures.ts';

t.test('a top-up is pending until the provider confirms the money; then credited once with the request id on its entry', async (t) => {
  const h = await harness(t);
  const p = await h.partner();
  t.same(json(await h.app.inject({ method: 'GET', url: '/v1/credit', headers: p.headers })), {
    id: p.id, object: 'credit_balance', livemode: true, balance: 0, currency: 'EUR', low_balance_threshold: null, updated_at: '2026-11-22T09:00:00.000Z',
  });
  const response = await h.app.inject({
    method: 'POST', url: '/v1/credit/top-ups', headers: p.headers,
    payload: { amount: 25_000, currency: 'EUR', payment_reference: 'ORDER-0001' },
  });
  t.equal(response.statusCode, 201);
  const topUp = json(response);
  t.match(topUp, { object: 'top_up', livemode: true, status: 'pending', amount: 25_000, partner_reference: 'ORDER-0001', payment_reference: /^PEC-/ });
  t.equal(json(await h.app.inject({ method: 'GET', url: '/v1/credit', headers: p.headers })).balance, 0, 'asking credits nothing');

  // The same note twice is two top-ups: the note is the partner's, the reference ours.
  const again = await h.app.inject({ method: 'POST', url: '/v1/credit/top-ups', headers: p.headers, payload: { amount: 25_000, currency: 'EUR', payment_reference: 'ORDER-0001' } });
  t.not(json(again).payment_reference, topUp.payment_reference);

  const operator = await billingOperator(h);
  const confirmed = await h.app.inject({ method: 'POST', url: `/v1/operator/top-ups/${topUp.id}/confirm`, headers: operator.headers, payload: { reason: 'Seen on the account' } });
  t.equal(confirmed.statusCode, 200);
  const [entry] = json(await h.app.inject({ method: 'GET', url: '/v1/credit/ledger', headers: p.headers })).data;
  t.match(entry.id, /^txn_[0-9a-z]{26}$/);
  t.same({ ...entry, id: null }, {
    id: null, object: 'ledger_entry', livemode: true, type: 'top_up', amount: 25_000, balance_after: 25_000, currency: 'EUR',
    description: `Bank transfer ${topUp.payment_reference}`, item: { type: 'top_up', id: topUp.id }, payment_reference: topUp.payment_reference,
    request_id: confirmed.headers['request-id'], created_at: '2026-11-22T09:00:00.000Z',
  });
  await h.app.inject({ method: 'POST', url: `/v1/operator/top-ups/${topUp.id}/confirm`, headers: operator.headers, payload: { reason: 'Seen again' } });
  t.equal(json(await h.app.inject({ method: 'GET', url: '/v1/credit', headers: p.headers })).balance, 25_000, 'a payment is credited once');

  for (const [payload, pointer] of [
    [{ amount: 99, currency: 'EUR' }, '/amount'],
    [{ amount: 10_000_001, currency: 'EUR' }, '/amount'],
    [{ amount: 1000, currency: 'USD' }, '/currency'],
    [{ amount: 1000, currency: 'EUR', payment_reference: '' }, '/payment_reference'],
    [{ amount: 10.5, currency: 'EUR' }, '/amount'],
  ] as const) {
    const bad = await h.app.inject({ method: 'POST', url: '/v1/credit/top-ups', headers: p.headers, payload });
    t.equal(bad.statusCode, 400, JSON.stringify(payload));
    t.equal(json(bad).errors[0].pointer, pointer);
  }
});

t.test('charges: exact debits, 402 naming the shortfall, no entry for a failed operation', async (t) => {
  const h = await harness(t);
  const p = await h.partner();
  const { db } = h.database;
  await creditPartner(h, p, 1000);

  const entry = await charge(db, h.clock, { partnerId: p.id, amount: 600, description: 'Mailbox Pro, 1 year', item: { type: 'mailbox', id: 'mbx_1' }, requestId: 'req_x' });
  t.match(entry, { type: 'charge', amount: -600, balance_after: 400, item: { type: 'mailbox', id: 'mbx_1' }, request_id: 'req_x' });

  await t.rejects(charge(db, h.clock, { partnerId: p.id, amount: 500, description: 'too much', item: { type: 'mailbox', id: 'mbx_2' } }), {
    status: 402, code: 'insufficient_credit', extensions: { balance: 400, required: 500, shortfall: 100, currency: 'EUR' },
    message: 'This operation costs €5.00 but the credit balance is €4.00: top up at least €1.00.',
  });

  // A charge inside a transaction that later fails is rolled back with it.
  await t.rejects(db.transaction(async (tx) => {
    await charge(tx, h.clock, { partnerId: p.id, amount: 100, description: 'rolled back', item: { type: 'mailbox', id: 'mbx_3' } });
    throw new Error('provisioning failed');
  }), /provisioning failed/);

  const refunded = await refund(db, h.clock, { partnerId: p.id, amount: 200, description: 'Plan downgrade', item: { type: 'mailbox', id: 'mbx_1' } });
  t.match(refunded, { type: 'refund', amount: 200, balance_after: 600 });

  const ledger = json(await h.app.inject({ method: 'GET', url: '/v1/credit/ledger', headers: p.headers }));
  t.same(ledger.data.map((e: { type: string; amount: number; balance_after: number }) => [e.type, e.amount, e.balance_after]), [
    ['refund', 200, 600], ['charge', -600, 400], ['top_up', 1000, 1000],
  ]);
  const forMailbox = json(await h.app.inject({ method: 'GET', url: '/v1/credit/ledger?item_id=mbx_1&type=charge', headers: p.headers }));
  t.same(forMailbox.data.map((e: { id: string }) => e.id), [entry.id]);
  t.equal((await getBalance(db, p.id)).balance, 600);
  t.equal(await ledgerTotal(db, p.id), 600, 'the ledger sums to the balance');
});

t.test('100 concurrent charges never overdraw and every cent is accounted for', async (t) => {
  const h = await harness(t);
  const p = await h.partner();
  const { db } = h.database;
  // 37 charges of €1.00 fit in €37.50; the other 63 must fail with 402, whatever the interleaving.
  await creditPartner(h, p, 3750);
  const results = await Promise.allSettled(
    Array.from({ length: 100 }, (_, i) => charge(db, h.clock, { partnerId: p.id, amount: 100, description: `unit ${i}`, item: { type: 'test', id: `u${i}` } })),
  );
  const ok = results.filter((r) => r.status === 'fulfilled');
  const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  t.equal(ok.length, 37);
  t.equal(refused.length, 63);
  t.ok(refused.every((r) => r.reason.code === 'insufficient_credit'), 'every refusal is a 402 problem, not a database error');
  t.equal((await getBalance(db, p.id)).balance, 50);
  t.equal(await ledgerTotal(db, p.id), 50);
  const balances = (ok as PromiseFulfilledResult<{ balance_after: number }>[]).map((r) => r.value.balance_after).sort((a, b) => a - b);
  t.same(balances, Array.from({ length: 37 }, (_, i) => 50 + i * 100), 'each charge saw the balance the previous one left');

  // Concurrency on the last unit of credit: 10 racers, one wins.
  const last = await Promise.allSettled(Array.from({ length: 10 }, () => charge(db, h.clock, { partnerId: p.id, amount: 50, description: 'last', item: { type: 'test', id: 'last' } })));
  t.equal(last.filter((r) => r.status === 'fulfilled').length, 1);
  t.equal((await getBalance(db, p.id)).balance, 0);
});

t.test('the ledger is append-only and the balance cannot go negative, even bypassing the code', async (t) => {
  const h = await harness(t);
  const p = await h.partner();
  await creditPartner(h, p, 500);
  await t.rejects(h.database.sql`update credit_ledger_entries set amount_cents = 1`, /append-only/);
  await t.rejects(h.database.sql`delete from credit_ledger_entries`, /append-only/);
  await t.rejects(h.database.sql`update credit_accounts set balance_cents = -1`, /credit_accounts_balance_check/);
});

t.test('ledger pagination and isolation', async (t) => {
  const h = await harness(t);
  const p = await h.partner();
  const other = await h.partner('Other');
  for (let i = 1; i <= 5; i++) {
    await creditPartner(h, p, 100 * i);
  }
  await creditPartner(h, other, 999);
  const first = json(await h.app.inject({ method: 'GET', url: '/v1/credit/ledger?limit=3', headers: p.headers }));
  t.same(first.data.map((e: { amount: number }) => e.amount), [500, 400, 300]);
  t.equal(first.has_more, true);
  const second = json(await h.app.inject({ method: 'GET', url: `/v1/credit/ledger?limit=3&starting_after=${first.next_cursor}`, headers: p.headers }));
  t.same(second.data.map((e: { amount: number }) => e.amount), [200, 100]);
  t.same([second.has_more, second.next_cursor], [false, null]);
  const otherLedger = json(await h.app.inject({ method: 'GET', url: '/v1/credit/ledger', headers: other.headers }));
  t.same(otherLedger.data.map((e: { amount: number }) => e.amount), [999]);
  // Another partner's entry is no cursor for you.
  const foreignCursor = await h.app.inject({ method: 'GET', url: `/v1/credit/ledger?starting_after=${otherLedger.data[0].id}`, headers: p.headers });
  t.equal(foreignCursor.statusCode, 400);
  t.equal(json(foreignCursor).errors[0].code, 'invalid_cursor');
});

t.test('the price list is published and configurable', async (t) => {
  const h = await harness(t);
  const p = await h.partner();
  const all = json(await h.app.inject({ method: 'GET', url: '/v1/prices?limit=100', headers: p.headers }));
  t.same(all.data.map((price: { id: string }) => price.id), [
    'mailbox_standard', 'mailbox_pro', 'mailbox_premium', 'addon_extra_inbox_gb', 'addon_extra_archive_gb',
    'addon_delegation_seat', 'addon_supervisor', 'addon_branding', 'addon_newsletter', 'domain_certification',
  ]);
  t.same(all.data[1], {
    id: 'mailbox_pro', object: 'price', livemode: true, product: 'mailbox', name: 'PEC mailbox Pro', unit_amount: 2500, currency: 'EUR',
    billing: 'per_year', unit: 'mailbox', plan: { inbox_gb: 2, archive_gb: 3, included_delegates: 1, max_inbox_gb: 20, max_archive_gb: 100 },
  });
  const page = json(await h.app.inject({ method: 'GET', url: '/v1/prices?limit=4&starting_after=mailbox_premium', headers: p.headers }));
  t.same(page.data.map((price: { id: string }) => price.id), ['addon_extra_inbox_gb', 'addon_extra_archive_gb', 'addon_delegation_seat', 'addon_supervisor']);
  t.equal(page.next_cursor, 'addon_supervisor');
  t.equal((await h.app.inject({ method: 'GET', url: '/v1/prices?starting_after=nope', headers: p.headers })).statusCode, 400);
});
