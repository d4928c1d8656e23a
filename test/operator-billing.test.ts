import { readFile } from 'node:fs/promises';
import t from 'tap';
import { defaultPriceList, ensureDefaultPriceList, pricesFor } from '@pec-partner/api';
import { json, harness, DAYS, TEST_BANK, type Harness } from './helpers/harness.ts';
import { api, creditPartner } from './helpers/fixtures.ts';

type Inject = Harness['app']['inject'];
type Who = { headers: { authorization: string } };

/** Any call with any credentials; JSON answers parsed, others kept as text. */
function as(h: Harness, who: Who) {
  return async (method: 'GET' | 'POST', url: string, payload?: unknown, headers: Record<string, string> = {}) => {
    const response = await (h.app.inject as Inject)({ method, url, headers: { ...who.headers, ...headers }, ...(payload === undefined ? {} : { payload: payload as object }) });
    const type = String(response.headers['content-type'] ?? '');
    return { status: response.statusCode, headers: response.headers, body: type.includes('json') ? json(response) : response.body };
  };
}

/** The default prices with some changes: a deep copy, so the shared default is never touched. */
function pricesWith(change: (p: typeof defaultPriceList) => void) {
  const copy = structuredClone(defaultPriceList);
  change(copy);
  return copy;
}

const mailboxCharges = async (a: ReturnType<typeof api>) => (await a.ledger('&type=charge')).filter((e) => e.item?.type === 'mailbox').map((e) => e.amount);

t.test('price lists: versions are immutable in the database; scopes; validation', async (t) => {
  const h = await harness(t);
  const billing = await h.operator('billing');
  const reader = await h.operator('read_only');
  const op = as(h, billing);
  const body = { name: 'Big resellers', prices: pricesWith((p) => (p.mailbox_plans.pro.unit_amount = 1_900)), reason: 'Volume agreement 2026' };

  t.match((await as(h, reader)('POST', '/v1/operator/price-lists', body)).body, { status: 403, code: 'insufficient_scope' }, 'read_only cannot create a list');
  const created = await op('POST', '/v1/operator/price-lists', body);
  t.equal(created.status, 201);
  t.match(created.body, { object: 'price_list', name: 'Big resellers', default: false, current_version: 1, latest_version: 1, created_by: billing.id });
  t.match(created.body.id, /^pl_[0-9a-z]{26}$/);
  t.match(created.body.versions, [{ object: 'price_list_version', version: 1, effective_from: h.clock.now().toISOString(), created_by: billing.id }]);
  t.equal(created.body.versions[0].prices.mailbox_plans.pro.unit_amount, 1_900);

  // The database itself refuses to change or remove a version: prices charged are evidence.
  await t.rejects(h.database.sql`update price_list_versions set prices = '{}'::jsonb where price_list_id = ${created.body.id}`, /price_list_versions is append-only \(UPDATE refused\)/);
  await t.rejects(h.database.sql`delete from price_list_versions where price_list_id = ${created.body.id}`, /append-only \(DELETE refused\)/);
  await t.rejects(h.database.sql`update price_list_versions set effective_from = now() where price_list_id = 'pl_default'`, /append-only/);

  // The default list is a real row, seeded from the built-in prices (no PRICES_FILE), in force since the epoch.
  const lists = (await as(h, reader)('GET', '/v1/operator/price-lists')).body;
  t.same(lists.data.map((l: any) => [l.id, l.default, l.current_version]), [['pl_default', true, 1], [created.body.id, false, 1]]);
  const def = (await as(h, reader)('GET', '/v1/operator/price-lists/pl_default')).body;
  t.match(def.versions, [{ version: 1, effective_from: '1970-01-01T00:00:00.000Z', created_by: null }]);
  t.same(def.versions[0].prices, defaultPriceList);
  t.equal((await as(h, reader)('GET', '/v1/operator/price-lists/pl_nope')).status, 404);

  // New versions: never in the past (beyond the tolerance), plans must fit their maximum, a reason is required.
  const url = `/v1/operator/price-lists/${created.body.id}/versions`;
  const past = new Date(h.clock.now().getTime() - DAYS).toISOString();
  t.match((await op('POST', url, { prices: body.prices, effective_from: past, reason: 'Backdated' })).body, { status: 400, errors: [{ pointer: '/effective_from', code: 'out_of_range' }] });
  const tooBig = pricesWith((p) => (p.mailbox_plans.standard.inbox_gb = 11));
  t.match((await op('POST', url, { prices: tooBig, reason: 'Bigger' })).body, { status: 400, errors: [{ pointer: '/prices/mailbox_plans/standard/inbox_gb' }] });
  t.match((await op('POST', url, { prices: { currency: 'EUR' }, reason: 'Partial' })).body, { status: 400, code: 'validation_error' }, 'the whole document is required');
  t.match((await op('POST', url, { prices: body.prices })).body, { status: 400, code: 'validation_error' }, 'a reason is required');
  t.match((await as(h, reader)('POST', url, { prices: body.prices, reason: 'Nope' })).body, { status: 403 });
  const v2 = await op('POST', url, { prices: body.prices, reason: 'Same prices, new version' });
  t.match(v2, { status: 201, body: { object: 'price_list_version', version: 2, effective_from: h.clock.now().toISOString() } });
  t.same((await as(h, reader)('GET', `/v1/operator/audit-log?target_id=${created.body.id}`)).body.data.map((e: any) => [e.action, e.reason, e.operator_key]),
    [['price_list.version_created', 'Same prices, new version', billing.id], ['price_list.created', 'Volume agreement 2026', billing.id]]);
});

t.test('a partner pays its own list, the version in force at each charge, renewals included; GET /v1/prices shows only its own', async (t) => {
  const h = await harness(t);
  const op = as(h, await h.operator('billing'));
  const reader = as(h, await h.operator('read_only'));
  const big = await h.partner('Big reseller');
  const small = await h.partner('Small reseller');
  await creditPartner(h, big, 100_000);
  await creditPartner(h, small, 100_000);
  const b = api(h, big);
  const s = api(h, small);
  const listB = (await op('POST', '/v1/operator/price-lists', { name: 'B', prices: pricesWith((p) => (p.mailbox_plans.pro.unit_amount = 1_900)), reason: 'Volume deal' })).body;

  t.match((await reader('POST', `/v1/operator/partners/${big.id}/price-list`, { price_list: listB.id, reason: 'x1x' })).body, { status: 403 });
  t.match((await op('POST', `/v1/operator/partners/${big.id}/price-list`, { price_list: 'pl_missing', reason: 'Typo' })).body, { status: 404 });
  const assigned = await op('POST', `/v1/operator/partners/${big.id}/price-list`, { price_list: listB.id, reason: 'Volume deal signed' });
  t.match(assigned, { status: 200, body: { id: big.id, price_list: listB.id } });
  t.equal((await reader('GET', `/v1/operator/partners/${small.id}`)).body.price_list, 'pl_default');
  const [event] = (await b.get('/v1/events?type=partner.*')).body.data;
  t.match(event, { type: 'partner.price_list_assigned', data: { object: { price_list: listB.id }, previous_attributes: { price_list: 'pl_default' } } });
  t.match((await reader('GET', `/v1/operator/audit-log?action=partner.price_list_assigned`)).body.data, [{ target: { id: big.id }, reason: 'Volume deal signed', details: { price_list: listB.id, previous_price_list: 'pl_default' } }]);
  t.same((await s.get('/v1/events?type=partner.*')).body.data, [], 'the other partner hears nothing');

  const mailbox = async (a: ReturnType<typeof api>, local: string) => {
    const created = await a.post('/v1/mailboxes', { local_part: local, domain: 'pec.example.it', customer: await a.customer(), plan: 'pro' });
    if (created.status !== 201) throw new Error(JSON.stringify(created.body));
    return created.body;
  };
  const first = await mailbox(b, 'big-one');
  await mailbox(s, 'small-one');
  t.same(await mailboxCharges(b), [-1_900], 'list B: the pro plan at 19.00');
  // Before list B's first version took effect (a sandbox's test clock may stand in the past), B's first version
  // still applies, to the partner and to its sandbox: never the default list, never a 500.
  for (const id of [big.id, big.test.id]) {
    t.match(await pricesFor(h.database.db, id, new Date('2001-01-01T00:00:00Z')), { listId: listB.id, version: 1 }, `${id === big.id ? 'live' : 'sandbox'}: list B's first version before it took effect`);
  }
  t.match(await pricesFor(h.database.db, big.test.id, h.clock.now()), { listId: listB.id }, 'the sandbox pays its live partner\'s list');
  t.same(await mailboxCharges(s), [-2_500], 'the default list: 25.00');

  // A version scheduled 10 days ahead: announced to the partner, applied only once the clock passes it.
  const from = new Date(h.clock.now().getTime() + 10 * DAYS).toISOString();
  const v2 = await op('POST', `/v1/operator/price-lists/${listB.id}/versions`, { prices: pricesWith((p) => (p.mailbox_plans.pro.unit_amount = 2_100)), effective_from: from, reason: 'Yearly update' });
  t.match(v2.body, { version: 2, effective_from: from });
  const pricesB = (await b.get('/v1/prices?limit=100')).body;
  t.match(pricesB, { price_list: { id: listB.id, version: 1 }, upcoming: { version: 2, effective_from: from } });
  t.equal(pricesB.data.find((p: any) => p.id === 'mailbox_pro').unit_amount, 1_900);
  const pricesS = (await s.get('/v1/prices?limit=100')).body;
  t.match(pricesS, { price_list: { id: 'pl_default', version: 1, effective_from: '1970-01-01T00:00:00.000Z' }, upcoming: null });
  t.equal(pricesS.data.find((p: any) => p.id === 'mailbox_pro').unit_amount, 2_500, 'a partner never sees another list');
  t.equal((await b.get('/v1/operator/price-lists')).status, 403, 'partners cannot read the operator lists');

  h.clock.advance(10 * DAYS - 1_000);
  await mailbox(b, 'big-two');
  t.same(await mailboxCharges(b), [-1_900, -1_900], 'one second before: still version 1');
  h.clock.advance(1_000);
  await mailbox(b, 'big-three');
  t.same(await mailboxCharges(b), [-2_100, -1_900, -1_900], 'from effective_from on: version 2');
  t.match((await b.get('/v1/prices')).body, { price_list: { id: listB.id, version: 2, effective_from: from }, upcoming: null });

  // The first mailbox renews at the price in force at the renewal, not at the price it was bought for.
  const renewed = await b.post(`/v1/mailboxes/${first.id}/renew`, { years: 1 });
  t.equal(renewed.status, 200, JSON.stringify(renewed.body));
  t.same(await mailboxCharges(b), [-2_100, -2_100, -1_900, -1_900]);

  // Back to the default list: the next charge is the default price; nothing charged before changes.
  t.match((await op('POST', `/v1/operator/partners/${big.id}/price-list`, { price_list: null, reason: 'Deal ended' })).body, { price_list: 'pl_default' });
  await mailbox(b, 'big-four');
  t.same(await mailboxCharges(b), [-2_500, -2_100, -2_100, -1_900, -1_900]);
});

t.test('reports: exact figures as JSON and byte-exact CSV, formula injection defused', async (t) => {
  const h = await harness(t);
  const reader = as(h, await h.operator('read_only'));
  const billing = as(h, await h.operator('billing'));
  const alpha = await h.partner('=SUM(1,2)');
  const beta = await h.partner('Beta "Reseller", S.r.l.');
  const idle = await h.partner('-Idle');
  const a = api(h, alpha);
  const b = api(h, beta);
  const mailbox = async (x: ReturnType<typeof api>, local: string, plan: string, identified = true) =>
    (await x.post('/v1/mailboxes', { local_part: local, domain: 'pec.example.it', customer: await x.customer(identified), plan })).body;

  // November 2026 (the clock starts on the 22nd).
  await creditPartner(h, alpha, 10_000); // invoiced 100.00 + 22.00 VAT
  await creditPartner(h, beta, 5_000); // invoiced 50.00 + 11.00 VAT
  await mailbox(a, 'alpha-1', 'standard'); // 5.00
  await mailbox(b, 'beta-1', 'pro'); // 25.00
  const pending = await mailbox(b, 'beta-2', 'standard', false); // 5.00, waits for identification
  t.equal((await b.post(`/v1/mailboxes/${pending.id}/cancel`, { when: 'now' })).status, 200); // refunded 5.00
  t.equal((await billing('POST', `/v1/operator/partners/${alpha.id}/credit-adjustments`, { amount: 1_000, currency: 'EUR', reason: 'Goodwill' })).status, 201, 'not revenue');
  // December.
  h.clock.set('2026-12-05T10:00:00Z');
  await mailbox(a, 'alpha-2', 'standard');

  const balances = (await reader('GET', '/v1/operator/reports/credit-balances')).body;
  // Every partner here has its sandbox (a test twin with a credit account): the exact rows prove reports leave them out.
  t.same(balances, {
    object: 'credit_balances_report', livemode: true, generated_at: '2026-12-05T10:00:00.000Z', currency: 'EUR', total_balance: 12_500,
    data: [
      { partner: alpha.id, partner_name: '=SUM(1,2)', status: 'active', balance: 10_000, currency: 'EUR' },
      { partner: beta.id, partner_name: 'Beta "Reseller", S.r.l.', status: 'active', balance: 2_500, currency: 'EUR' },
      { partner: idle.id, partner_name: '-Idle', status: 'active', balance: 0, currency: 'EUR' },
    ],
  });
  const balancesCsv = await reader('GET', '/v1/operator/reports/credit-balances?format=csv');
  t.equal(balancesCsv.headers['content-type'], 'text/csv; charset=utf-8');
  t.equal(balancesCsv.headers['content-disposition'], 'attachment; filename="credit-balances.csv"');
  t.equal(balancesCsv.body,
    'partner,partner_name,status,balance,currency\r\n' +
    `${alpha.id},"'=SUM(1,2)",active,10000,EUR\r\n` +
    `${beta.id},"Beta ""Reseller"", S.r.l.",active,2500,EUR\r\n` +
    `${idle.id},'-Idle,active,0,EUR\r\n`);

  const zero = { charged: 0, refunded: 0, net_spent: 0, topped_up: 0, invoiced_net: 0, invoiced_vat: 0, invoiced_gross: 0 };
  const revenue = (await reader('GET', '/v1/operator/reports/revenue?from=2026-10&to=2026-12')).body;
  t.same(revenue, {
    object: 'revenue_report', livemode: true, from: '2026-10', to: '2026-12', currency: 'EUR',
    months: [
      { month: '2026-10', ...zero },
      { month: '2026-11', charged: 3_500, refunded: 500, net_spent: 3_000, topped_up: 15_000, invoiced_net: 15_000, invoiced_vat: 3_300, invoiced_gross: 18_300 },
      { month: '2026-12', ...zero, charged: 500, net_spent: 500 },
    ],
    data: [
      { month: '2026-11', partner: alpha.id, partner_name: '=SUM(1,2)', charged: 500, refunded: 0, net_spent: 500, topped_up: 10_000, invoiced_net: 10_000, invoiced_vat: 2_200, invoiced_gross: 12_200 },
      { month: '2026-11', partner: beta.id, partner_name: 'Beta "Reseller", S.r.l.', charged: 3_000, refunded: 500, net_spent: 2_500, topped_up: 5_000, invoiced_net: 5_000, invoiced_vat: 1_100, invoiced_gross: 6_100 },
      { month: '2026-12', partner: alpha.id, partner_name: '=SUM(1,2)', ...zero, charged: 500, net_spent: 500 },
    ],
  });
  const revenueCsv = await reader('GET', '/v1/operator/reports/revenue?from=2026-10&to=2026-12&format=csv');
  t.equal(revenueCsv.headers['content-disposition'], 'attachment; filename="revenue-2026-10-2026-12.csv"');
  t.equal(revenueCsv.body,
    'month,partner,partner_name,charged,refunded,net_spent,topped_up,invoiced_net,invoiced_vat,invoiced_gross\r\n' +
    `2026-11,${alpha.id},"'=SUM(1,2)",500,0,500,10000,10000,2200,12200\r\n` +
    `2026-11,${beta.id},"Beta ""Reseller"", S.r.l.",3000,500,2500,5000,5000,1100,6100\r\n` +
    `2026-12,${alpha.id},"'=SUM(1,2)",500,0,500,0,0,0,0\r\n`);
  t.same((await reader('GET', '/v1/operator/reports/revenue?from=2026-12&to=2026-12')).body.data.map((r: any) => r.month), ['2026-12'], 'the range bounds the rows');
  t.match((await reader('GET', '/v1/operator/reports/revenue?from=2026-12&to=2026-11')).body, { status: 400, errors: [{ pointer: '/to' }] });
  t.match((await reader('GET', '/v1/operator/reports/revenue?from=2026-13&to=2027-01')).body, { status: 400 });
  t.match((await reader('GET', '/v1/operator/reports/revenue')).body, { status: 400 }, 'from and to are required');

  const active = (await reader('GET', '/v1/operator/reports/active-mailboxes')).body;
  t.same(active, {
    object: 'active_mailboxes_report', livemode: true, generated_at: '2026-12-05T10:00:00.000Z',
    plans: [{ plan: 'standard', active_mailboxes: 2 }, { plan: 'pro', active_mailboxes: 1 }, { plan: 'premium', active_mailboxes: 0 }],
    data: [
      { partner: alpha.id, partner_name: '=SUM(1,2)', plan: 'standard', active_mailboxes: 2 },
      { partner: beta.id, partner_name: 'Beta "Reseller", S.r.l.', plan: 'pro', active_mailboxes: 1 },
    ],
  });
  t.equal((await reader('GET', '/v1/operator/reports/active-mailboxes?format=csv')).body,
    'partner,partner_name,plan,active_mailboxes\r\n' +
    `${alpha.id},"'=SUM(1,2)",standard,2\r\n` +
    `${beta.id},"Beta ""Reseller"", S.r.l.",pro,1\r\n`);
  t.equal((await a.get('/v1/operator/reports/credit-balances')).status, 403, 'partners cannot read reports');
});

t.test("operator invoices: the partner's own documents, byte for byte", async (t) => {
  const h = await harness(t);
  const reader = as(h, await h.operator('read_only'));
  const p = await h.partner('Rossi');
  const q = await h.partner('Verdi');
  await creditPartner(h, p, 2_000);
  await creditPartner(h, q, 3_000);
  const partner = as(h, p);
  const [invoice] = (await partner('GET', '/v1/invoices')).body.data;

  const all = (await reader('GET', '/v1/operator/invoices?limit=100')).body;
  t.equal(all.data.length, 2);
  t.same((await reader('GET', `/v1/operator/invoices?partner=${p.id}&year=2026`)).body.data.map((i: any) => i.id), [invoice.id]);
  t.same((await reader('GET', `/v1/operator/invoices?partner=${p.id}&year=2025`)).body.data, []);
  t.same((await reader('GET', `/v1/operator/invoices/${invoice.id}`)).body, invoice);
  for (const kind of ['xml', 'html']) {
    const mine = await partner('GET', `/v1/invoices/${invoice.id}/${kind}`);
    const theirs = await reader('GET', `/v1/operator/invoices/${invoice.id}/${kind}`);
    t.equal(theirs.status, 200);
    t.equal(theirs.body, mine.body, `${kind}: the same document`);
    for (const header of ['content-type', 'content-disposition', 'content-security-policy']) t.equal(theirs.headers[header], mine.headers[header], `${kind}: ${header}`);
  }
  t.equal((await reader('GET', '/v1/operator/invoices/inv_01kaaaaaaaaaaaaaaaaaaaaaaa/xml')).status, 404);
  t.equal((await partner('GET', `/v1/operator/invoices/${invoice.id}`)).status, 403);
});

t.test('unmatched bank statement lines: resolved to a top-up (credited once) or ignored, with reasons; state conflicts', async (t) => {
  const h = await harness(t);
  const p = await h.partner();
  const q = await h.partner('Second partner');
  const billing = await h.operator('billing');
  const op = as(h, billing);
  const topUp = async (who: Who, amount: number) => (await as(h, who)('POST', '/v1/credit/top-ups', { amount, currency: 'EUR' })).body;
  const exact = await topUp(p, 20_492);
  const partial = await topUp(p, 30_000);
  const batch = await topUp(q, 30_820);
  const untouched = await topUp(q, 3_443); // its transfer arrives without a reference
  let xml = await readFile(new URL('./fixtures/camt053/statement.xml', import.meta.url), 'utf8');
  const values = { ACCOUNT_IBAN: TEST_BANK.iban, REF_EXACT: exact.payment_reference, REF_PARTIAL: partial.payment_reference, REF_BATCH_COMPACT: batch.payment_reference.replaceAll('-', '').toLowerCase() };
  for (const [name, value] of Object.entries(values)) xml = xml.replaceAll(`{{${name}}}`, value);
  const imported = json(await (h.app.inject as Inject)({ method: 'POST', url: '/v1/operator/bank-statements', headers: { ...billing.headers, 'content-type': 'application/xml' }, payload: xml }));
  const byRef = Object.fromEntries(imported.lines.map((l: any) => [l.entry_reference, l]));
  const noReference = byRef['2026112200012350-2'];
  const unknown = byRef['2026112200012347'];
  const matched = byRef['2026112200012345'];
  t.match(noReference, { status: 'unmatched', mismatch_reason: 'no_reference', amount: 4_200 });
  const balance = async (who: Who) => (await as(h, who)('GET', '/v1/credit')).body.balance;
  t.equal(await balance(q), 30_820);

  t.match((await as(h, await h.operator('read_only'))('POST', `/v1/operator/bank-statement-lines/${noReference.id}/resolve`, { top_up: untouched.id, reason: 'x1x' })).body, { status: 403 });
  t.match((await op('POST', `/v1/operator/bank-statement-lines/${noReference.id}/resolve`, { top_up: exact.id, reason: 'Wrong one' })).body,
    { status: 409, code: 'top_up_not_payable', current_status: 'credited' }, 'a credited top-up cannot be paid twice');
  t.match((await op('POST', `/v1/operator/bank-statement-lines/${noReference.id}/resolve`, { top_up: 'top_01kaaaaaaaaaaaaaaaaaaaaaaa', reason: 'Typo' })).body, { status: 404 });
  const resolved = await op('POST', `/v1/operator/bank-statement-lines/${noReference.id}/resolve`, { top_up: untouched.id, reason: 'Debtor phoned: the 42.00 transfer is for this top-up' });
  t.match(resolved, { status: 200, body: { id: noReference.id, status: 'matched', top_up: untouched.id, mismatch_reason: null } });
  t.equal(await balance(q), 30_820 + 3_443, 'credited, net of VAT');
  t.match((await as(h, q)('GET', `/v1/credit/top-ups/${untouched.id}`)).body, { status: 'credited' });
  t.equal((await as(h, q)('GET', '/v1/invoices')).body.data.length, 2, 'and invoiced, as any confirmation');
  t.match((await op('POST', `/v1/operator/bank-statement-lines/${noReference.id}/resolve`, { top_up: partial.id, reason: 'Again' })).body,
    { status: 409, code: 'invalid_state_transition', current_status: 'matched' });
  t.equal(await balance(q), 30_820 + 3_443, 'nothing credited twice');
  t.match((await op('POST', `/v1/operator/bank-statement-lines/${matched.id}/ignore`, { reason: 'Not a top-up' })).body, { status: 409, current_status: 'matched' });

  const ignored = await op('POST', `/v1/operator/bank-statement-lines/${unknown.id}/ignore`, { reason: 'A supplier refund, not a top-up' });
  t.match(ignored.body, { status: 'ignored', mismatch_reason: 'ignored_by_operator', top_up: null });
  t.match((await op('POST', `/v1/operator/bank-statement-lines/${unknown.id}/ignore`, { reason: 'Again' })).body, { status: 409, current_status: 'ignored' });
  t.match((await op('POST', `/v1/operator/bank-statement-lines/${unknown.id}/resolve`, { top_up: partial.id, reason: 'Changed my mind' })).body, { status: 409, current_status: 'ignored' });
  t.equal((await op('POST', '/v1/operator/bank-statement-lines/bsl_01kaaaaaaaaaaaaaaaaaaaaaaa/ignore', { reason: 'Missing' })).status, 404);

  t.same((await op('GET', '/v1/operator/bank-statement-lines?status=unmatched')).body.data.map((l: any) => l.mismatch_reason), ['amount_mismatch']);
  const trail = (await op('GET', '/v1/operator/audit-log?limit=100')).body.data.filter((e: any) => e.action.startsWith('bank_statement_line.'));
  t.match(trail, [
    { action: 'bank_statement_line.ignored', target: { id: unknown.id }, reason: 'A supplier refund, not a top-up', operator_key: billing.id, details: { previous_mismatch_reason: 'unknown_reference' } },
    { action: 'bank_statement_line.resolved', target: { id: noReference.id }, partner: q.id, details: { top_up: untouched.id, line_amount: 4_200, top_up_gross: 4_200, previous_mismatch_reason: 'no_reference' } },
  ]);
  t.match((await op('GET', `/v1/operator/audit-log?action=top_up.confirmed&target_id=${untouched.id}`)).body.data, [{ details: { source: { type: 'bank_statement_line', id: noReference.id } } }]);
});

t.test('operator POSTs accept Idempotency-Key: replay, 422 on another body, keys per operator key', async (t) => {
  const h = await harness(t);
  const first = await h.operator('billing');
  const second = await h.operator('billing');
  const p = await h.partner();
  const adjust = (who: Who, key: string, amount: number) =>
    as(h, who)('POST', `/v1/operator/partners/${p.id}/credit-adjustments`, { amount, currency: 'EUR', reason: 'Goodwill credit' }, { 'idempotency-key': key });
  const balance = async () => (await as(h, p)('GET', '/v1/credit')).body.balance;

  const original = await adjust(first, 'adj-1', 700);
  t.equal(original.status, 201);
  const replay = await adjust(first, 'adj-1', 700);
  t.equal(replay.status, 201);
  t.equal(replay.headers['idempotent-replayed'], 'true');
  t.same(replay.body, original.body, 'the stored answer');
  t.equal(await balance(), 700, 'credited once');
  t.match((await adjust(first, 'adj-1', 900)).body, { status: 422, code: 'idempotency_key_reused' });
  t.equal(await balance(), 700);

  // Another operator's key with the same value is its own request.
  const other = await adjust(second, 'adj-1', 700);
  t.equal(other.status, 201);
  t.notOk(other.headers['idempotent-replayed']);
  t.equal(await balance(), 1_400);
  // A partner's key of the same value is another owner too.
  t.equal((await as(h, p)('POST', '/v1/credit/top-ups', { amount: 1_000, currency: 'EUR' }, { 'idempotency-key': 'adj-1' })).status, 201);

  const list = { name: 'Idempotent list', prices: defaultPriceList, reason: 'Created once' };
  const created = await as(h, first)('POST', '/v1/operator/price-lists', list, { 'idempotency-key': 'pl-1' });
  const again = await as(h, first)('POST', '/v1/operator/price-lists', list, { 'idempotency-key': 'pl-1' });
  t.equal(again.body.id, created.body.id);
  t.equal((await as(h, first)('GET', '/v1/operator/price-lists')).body.data.length, 2, 'the default list and one new list');
  const rows = await h.database.sql`select owner, partner_id, operator_key_id from idempotency_keys order by created_at, owner`;
  t.same(rows.map((r) => [r.owner, r.partner_id, r.operator_key_id]).sort(), [
    [first.id, null, first.id], [first.id, null, first.id], [second.id, null, second.id], [p.id, p.id, null],
  ].sort());
  await t.rejects(h.database.sql`insert into idempotency_keys (partner_id, operator_key_id, key, request_hash, method, path, state, claimed_at, created_at, expires_at)
    values (${p.id}, ${first.id}, 'both', 'h', 'POST', '/', 'in_progress', now(), now(), now())`, /idempotency_owner_check/, 'exactly one owner');
});

t.test('the default list follows PRICES_FILE: a changed file is a new version from the start-up, an unchanged one nothing', async (t) => {
  const h = await harness(t);
  const reader = as(h, await h.operator('read_only'));
  const billing = as(h, await h.operator('billing'));
  const versions = async () => (await reader('GET', '/v1/operator/price-lists/pl_default')).body.versions.map((v: any) => [v.version, v.effective_from, v.created_by]);
  t.same(await ensureDefaultPriceList(h.database.db, h.clock, defaultPriceList), { version: 1, created: false }, 'a restart with the same prices');
  t.same(await versions(), [[1, '1970-01-01T00:00:00.000Z', null]]);
  // An operator's own version of the default list is kept across restarts: only a change of the file counts.
  const cheaper = pricesWith((p) => (p.domain_certification.unit_amount = 4_000));
  const byOperator = (await billing('POST', '/v1/operator/price-lists/pl_default/versions', { prices: cheaper, reason: 'Promotion' })).body;
  t.same(await ensureDefaultPriceList(h.database.db, h.clock, defaultPriceList), { version: 1, created: false });
  h.clock.advance(DAYS);
  const file = pricesWith((p) => (p.domain_certification.unit_amount = 6_000));
  t.same(await ensureDefaultPriceList(h.database.db, h.clock, file), { version: 3, created: true }, 'the file changed');
  t.same(await versions(), [[1, '1970-01-01T00:00:00.000Z', null], [2, byOperator.effective_from, byOperator.created_by], [3, h.clock.now().toISOString(), null]]);
  t.same(await ensureDefaultPriceList(h.database.db, h.clock, file), { version: 3, created: false });
  const p = await h.partner();
  t.equal((await as(h, p)('GET', '/v1/prices?limit=100')).body.data.find((x: any) => x.id === 'domain_certification').unit_amount, 6_000);
});
