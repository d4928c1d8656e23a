import { readFile } from 'node:fs/promises';
import t, { type Test } from 'tap';
import { sql } from 'drizzle-orm';
import { json, harness, DAYS, TEST_BANK, type Harness, type TestOperator, type TestPartner } from './helpers/harness.ts';
import { api, creditPartner } from './helpers/fixtures.ts';

type Inject = Harness['app']['inject'];

/** JSON calls with any credentials. */
function as(h: Harness, who: { headers: { authorization: string } } | null) {
  return async (method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE', url: string, payload?: unknown, headers: Record<string, string> = {}) => {
    const response = await (h.app.inject as Inject)({
      method, url, headers: { ...(who ? who.headers : {}), ...headers }, ...(payload === undefined ? {} : { payload: payload as object }),
    });
    const type = String(response.headers['content-type'] ?? '');
    return { status: response.statusCode, type, body: type.includes('json') ? json(response) : response.body };
  };
}

async function pendingTopUp(h: Harness, p: TestPartner, amount: number) {
  const created = await as(h, p)('POST', '/v1/credit/top-ups', { amount, currency: 'EUR' });
  if (created.status !== 201) throw new Error(JSON.stringify(created.body));
  return created.body;
}

const balanceOf = async (h: Harness, p: TestPartner): Promise<number> => (await as(h, p)('GET', '/v1/credit')).body.balance;

async function audit(h: Harness, op: TestOperator, query: string) {
  return (await as(h, op)('GET', `/v1/operator/audit-log?limit=100&${query}`)).body.data as any[];
}

async function eventTypes(h: Harness, p: TestPartner, query = ''): Promise<string[]> {
  return ((await as(h, p)('GET', `/v1/events?limit=100${query}`)).body.data as any[]).map((e) => e.type).reverse();
}

t.test('a top-up is pending with bank transfer instructions; only an operator credits it', async (t) => {
  const h = await harness(t);
  const p = await h.partner();
  const op = await h.operator('billing');
  const top = await pendingTopUp(h, p, 12_345);
  t.match(top, {
    object: 'top_up', status: 'pending', amount: 12_345, currency: 'EUR', method: 'bank_transfer', partner: p.id, ledger_entry: null,
    // `amount` is the credit (net of VAT); the transfer carries the gross: 123.45 € + 22 % VAT (27.159 → 27.16 €).
    bank_transfer: { iban: TEST_BANK.iban, bic: TEST_BANK.bic, beneficiary: TEST_BANK.beneficiary, amount: 15_061, currency: 'EUR', reference: top.payment_reference },
  });
  t.match(top.id, /^top_[0-9a-z]{26}$/);
  t.match(top.payment_reference, /^PEC-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$/);
  t.equal(Date.parse(top.expires_at) - Date.parse(top.created_at), 30 * DAYS, 'expires after 30 days');
  t.equal(await balanceOf(h, p), 0, 'nothing credited by asking');
  t.equal((await pendingTopUp(h, p, 12_345)).payment_reference === top.payment_reference, false, 'every top-up has its own reference');

  // The partner reads its own top-ups; another partner's is a 404.
  t.equal((await as(h, p)('GET', `/v1/credit/top-ups/${top.id}`)).body.id, top.id);
  t.same((await as(h, p)('GET', '/v1/credit/top-ups?status=pending')).body.data.map((x: any) => x.amount), [12_345, 12_345]);
  const other = await h.partner('Other');
  t.equal((await as(h, other)('GET', `/v1/credit/top-ups/${top.id}`)).status, 404);

  const confirmed = await as(h, op)('POST', `/v1/operator/top-ups/${top.id}/confirm`, { reason: 'Transfer seen on the account, CRO 1234' });
  t.equal(confirmed.status, 200);
  t.match(confirmed.body, { status: 'credited', ledger_entry: /^txn_/ });
  t.equal(await balanceOf(h, p), 12_345);
  const [entry] = (await as(h, p)('GET', '/v1/credit/ledger')).body.data;
  t.match(entry, { id: confirmed.body.ledger_entry, type: 'top_up', amount: 12_345, payment_reference: top.payment_reference, item: { type: 'top_up', id: top.id } });
  // A credited top-up cannot fail afterwards; a failed one cannot be credited.
  t.match((await as(h, op)('POST', `/v1/operator/top-ups/${top.id}/fail`, { reason: 'Bounced' })).body, { status: 409, code: 'invalid_state_transition', current_status: 'credited' });
  const second = (await as(h, p)('GET', '/v1/credit/top-ups?status=pending')).body.data[0];
  const failed = await as(h, op)('POST', `/v1/operator/top-ups/${second.id}/fail`, { reason: 'The partner cancelled the order' });
  t.match(failed.body, { status: 'failed', failure_reason: 'The partner cancelled the order' });
  t.match((await as(h, op)('POST', `/v1/operator/top-ups/${second.id}/confirm`, { reason: 'late' })).body, { status: 409, code: 'invalid_state_transition' });
  t.match((await as(h, op)('POST', `/v1/operator/top-ups/${top.id}/confirm`, {})).body, { status: 400, code: 'validation_error' }, 'a reason is required');
  t.equal(await balanceOf(h, p), 12_345);
  t.same(await eventTypes(h, p, '&type=credit.*'), ['credit.top_up.created', 'credit.top_up.created', 'credit.topped_up', 'credit.top_up.credited', 'credit.top_up.failed']);
});

t.test('no partner call can increase its own live credit: every partner operation of the OpenAPI document', async (t) => {
  const h = await harness(t);
  const p = await h.partner();
  await creditPartner(h, p, 50_000);
  const a = api(h, p);
  const customer = await a.customer();
  const mailbox = await a.post('/v1/mailboxes', { local_part: 'walk', domain: 'pec.example.it', customer, plan: 'standard', password: 'walk-password-2026' });
  t.equal(mailbox.status, 201);
  const before = await balanceOf(h, p);
  const doc = JSON.parse(await readFile(new URL('../openapi/openapi.json', import.meta.url), 'utf8'));
  const schemas = doc.components.schemas;

  /** A value that passes the schema's obvious constraints: a request the handler really runs, not a 400. */
  const sample = (schema: any, depth = 0): unknown => {
    if (schema.$ref) return sample(schemas[schema.$ref.split('/').pop()], depth);
    if (depth > 6) return undefined;
    if ('const' in schema) return schema.const;
    if (schema.enum) return schema.enum[0];
    const variant = schema.anyOf ?? schema.oneOf;
    if (variant) return sample(variant.find((s: any) => s.type !== 'null') ?? variant[0], depth + 1);
    switch (Array.isArray(schema.type) ? schema.type[0] : schema.type) {
      case 'object': {
        const out: Record<string, unknown> = {};
        for (const [name, prop] of Object.entries(schema.properties ?? {})) out[name] = sample(prop, depth + 1);
        return out;
      }
      case 'array': return schema.items ? [sample(schema.items, depth + 1)] : [];
      case 'integer': case 'number': return Math.max(schema.minimum ?? 0, Math.min(schema.maximum ?? 5_000, 5_000));
      case 'boolean': return true;
      case 'string':
        if (schema.format === 'date-time') return '2026-12-01T00:00:00Z';
        if (schema.format === 'date') return '2027-01-01';
        if (schema.format === 'email') return 'walk@example.com';
        if (schema.format === 'uri') return 'https://billing.example.com/hook';
        return 'x'.repeat(Math.max(schema.minLength ?? 1, 1)).slice(0, schema.maxLength ?? 100);
      default: return {};
    }
  };
  const ids: Record<string, string> = { mbx: mailbox.body.id, cus: customer };
  let walked = 0;
  const statuses: string[] = [];
  for (const [path, methods] of Object.entries(doc.paths as Record<string, Record<string, any>>)) {
    for (const [method, op] of Object.entries(methods)) {
      if (op.tags?.includes('Operator')) continue;
      const url = path.replace(/\{(\w+)\}/g, () => (path.startsWith('/v1/mailboxes') ? ids.mbx! : path.startsWith('/v1/customers') ? ids.cus! : 'xxx_01jd0000000000000000000000'));
      const body = op.requestBody?.content?.['application/json']?.schema;
      const response = await (h.app.inject as Inject)({
        method: method.toUpperCase() as 'GET', url, headers: p.headers,
        ...(body ? { payload: sample(body) as object } : method === 'post' ? { payload: {} } : {}),
      });
      walked++;
      statuses.push(`${method.toUpperCase()} ${path} ${response.statusCode}`);
      const balance = await balanceOf(h, p);
      t.ok(balance <= before, `${method.toUpperCase()} ${path} (${response.statusCode}) does not raise the balance (${balance} <= ${before})`);
    }
  }
  t.ok(walked > 50, `walked ${walked} partner operations`);
  t.ok(statuses.includes('POST /v1/credit/top-ups 201'), 'the top-up request itself ran (and left a pending top-up)');
  const entries = (await as(h, p)('GET', '/v1/credit/ledger?limit=100&type=top_up')).body.data;
  t.equal(entries.length, 1, 'the only top_up entry is the operator-confirmed one');
});

t.test('operator keys and scopes: partner keys never pass operator routes, operator keys never pass partner routes', async (t) => {
  const h = await harness(t);
  const p = await h.partner();
  const full = await h.operator('full');
  const reader = await h.operator('read_only');
  const billing = await h.operator('billing');
  const top = await pendingTopUp(h, p, 1_000);

  const denied = await as(h, reader)('POST', `/v1/operator/top-ups/${top.id}/confirm`, { reason: 'read-only tries' });
  t.equal(denied.status, 403);
  t.equal(denied.type, 'application/problem+json; charset=utf-8');
  t.match(denied.body, { code: 'insufficient_scope', required_scope: 'billing', scope: 'read_only', type: 'urn:pec-partner:problem:insufficient_scope' });
  t.equal((await as(h, reader)('GET', `/v1/operator/top-ups/${top.id}`)).status, 200, 'read_only reads');
  t.match((await as(h, billing)('POST', '/v1/operator/partners', { name: 'Nope' })).body, { status: 403, code: 'insufficient_scope', required_scope: 'full' });
  t.match((await as(h, billing)('POST', `/v1/operator/partners/${p.id}/suspend`, { reason: 'billing may not' })).body, { status: 403, code: 'insufficient_scope' });
  t.equal(await balanceOf(h, p), 0, 'the refused confirmation credited nothing');

  const partnerOnOperator = await as(h, p)('GET', '/v1/operator/partners');
  t.match(partnerOnOperator.body, { status: 403, code: 'operator_credentials_required' });
  const token = await (h.app.inject as Inject)({ method: 'POST', url: '/oauth/token', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: `grant_type=client_credentials&client_secret=${p.secret}` });
  const bearer = { headers: { authorization: `Bearer ${json(token).access_token}` } };
  t.match((await as(h, bearer)('POST', `/v1/operator/top-ups/${top.id}/confirm`, { reason: 'token tries' })).body, { status: 403, code: 'operator_credentials_required' });
  t.match((await as(h, full)('GET', '/v1/credit')).body, { status: 403, code: 'partner_credentials_required' });
  t.match((await as(h, full)('POST', '/v1/credit/top-ups', { amount: 1000, currency: 'EUR' })).body, { status: 403, code: 'partner_credentials_required' });
  t.match((await as(h, { headers: { authorization: 'Bearer sk_op_doesnotexist' } })('GET', '/v1/operator/partners')).body, { status: 401, code: 'invalid_api_key' });
  t.match((await as(h, null)('GET', '/v1/operator/partners')).body, { status: 401, code: 'authentication_required' });

  // Keys through the API: the secret once, its scope enforced, revocation at once; every step audited.
  const created = await as(h, full)('POST', '/v1/operator/api-keys', { name: 'Alice (billing)', scope: 'billing' });
  t.equal(created.status, 201);
  t.match(created.body, { object: 'operator_api_key', scope: 'billing', created_by: full.id, secret: /^sk_op_[0-9A-Za-z]{32}$/ });
  const alice = { headers: { authorization: `Bearer ${created.body.secret}` } };
  t.equal((await as(h, alice)('GET', '/v1/operator/partners')).status, 200);
  const listed = (await as(h, full)('GET', '/v1/operator/api-keys?limit=100')).body.data;
  t.notOk(JSON.stringify(listed).includes(created.body.secret), 'secrets are never listed');
  t.equal((await as(h, full)('POST', `/v1/operator/api-keys/${created.body.id}/revoke`)).body.revoked_at !== null, true);
  t.match((await as(h, alice)('GET', '/v1/operator/partners')).body, { status: 401, code: 'invalid_api_key' });
  t.same((await audit(h, full, `target_id=${created.body.id}`)).map((e) => [e.action, e.operator_key, e.actor]), [
    ['operator_api_key.revoked', full.id, 'operator_key'],
    ['operator_api_key.created', full.id, 'operator_key'],
  ]);

  // Partners through the API: the first key's secret once, and it works.
  const partner = await as(h, full)('POST', '/v1/operator/partners', { name: 'Acme Reseller' });
  t.equal(partner.status, 201);
  t.match(partner.body, { partner: { object: 'partner', name: 'Acme Reseller', status: 'active', balance: 0 }, api_key: { secret: /^sk_live_/ } });
  t.equal((await as(h, { headers: { authorization: `Bearer ${partner.body.api_key.secret}` } })('GET', '/v1/credit')).status, 200);
  t.same((await as(h, reader)('GET', '/v1/operator/partners?q=acme')).body.data.map((x: any) => x.id), [partner.body.partner.id], 'search by name');
  t.same((await as(h, reader)('GET', `/v1/operator/partners?q=${p.id}`)).body.data.map((x: any) => x.id), [p.id], 'search by id');
});

t.test('suspension: 403 for keys and tokens, mailboxes keep sending; reactivation; events and audit', async (t) => {
  const h = await harness(t);
  const p = await h.partner();
  const op = await h.operator('full');
  const a = api(h, p);
  await a.topUp(20_000);
  const customer = await a.customer();
  const mailbox = (await a.post('/v1/mailboxes', { local_part: 'studio', domain: 'pec.example.it', customer, plan: 'pro', password: 'studio-password-2026' })).body;
  const holder = { headers: { authorization: `Basic ${Buffer.from(`${mailbox.address}:studio-password-2026`).toString('base64')}` } };
  const tokenResponse = await (h.app.inject as Inject)({ method: 'POST', url: '/oauth/token', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: `grant_type=client_credentials&client_secret=${p.secret}` });
  const token = { headers: { authorization: `Bearer ${json(tokenResponse).access_token}` } };

  t.match((await as(h, op)('POST', `/v1/operator/partners/${p.id}/suspend`, {})).body, { status: 400, code: 'validation_error' }, 'a reason is required');
  const suspended = await as(h, op)('POST', `/v1/operator/partners/${p.id}/suspend`, { reason: 'Unpaid invoices since September' });
  t.match(suspended.body, { status: 'suspended', suspension_reason: 'Unpaid invoices since September' });
  t.match((await as(h, op)('POST', `/v1/operator/partners/${p.id}/suspend`, { reason: 'again' })).body, { status: 409, code: 'invalid_state_transition' });

  for (const [who, credentials] of [['key', p], ['token', token]] as const) {
    const refused = await as(h, credentials)('GET', '/v1/customers');
    t.equal(refused.status, 403, `the ${who} is refused`);
    t.match(refused.body, { code: 'partner_suspended', type: 'urn:pec-partner:problem:partner_suspended' });
    t.match((await as(h, credentials)('POST', '/v1/credit/top-ups', { amount: 1000, currency: 'EUR' })).body, { code: 'partner_suspended' });
  }
  const exchange = await (h.app.inject as Inject)({ method: 'POST', url: '/oauth/token', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: `grant_type=client_credentials&client_secret=${p.secret}` });
  t.match(json(exchange), { status: 403, code: 'partner_suspended' }, 'no new tokens');

  // The customers' mailboxes keep working: the holder sends and reads.
  const sent = await as(h, holder)('POST', `/v1/mailboxes/${mailbox.id}/messages`, { to: [mailbox.address], subject: 'Ancora attiva', text: 'La casella funziona.' });
  t.equal(sent.status, 201, JSON.stringify(sent.body));
  await h.app.pec.drain();
  const receipts = await as(h, holder)('GET', `/v1/mailboxes/${mailbox.id}/messages?folder=receipts`);
  t.ok(receipts.body.data.length >= 1, 'receipts arrive');

  const reactivated = await as(h, op)('POST', `/v1/operator/partners/${p.id}/reactivate`, { reason: 'Invoices paid' });
  t.match(reactivated.body, { status: 'active', suspended_at: null, suspension_reason: null });
  t.equal((await as(h, p)('GET', '/v1/customers')).status, 200, 'the key works again');
  t.equal((await as(h, token)('GET', '/v1/customers')).status, 200, 'and the token');

  const events = (await as(h, p)('GET', '/v1/events?type=partner.*')).body.data;
  t.same(events.map((e: any) => [e.type, e.data.object.status, e.data.previous_attributes.status]), [['partner.reactivated', 'active', 'suspended'], ['partner.suspended', 'suspended', 'active']]);
  t.same((await audit(h, op, `partner=${p.id}&action=partner.suspended`)).map((e) => [e.reason, e.target.id, e.operator_key]), [['Unpaid invoices since September', p.id, op.id]]);
  t.match((await audit(h, op, `partner=${p.id}&action=partner.suspended`))[0].request_id, /^req_/);
});

t.test('confirm exactly once under concurrent confirmations', async (t) => {
  const h = await harness(t);
  const p = await h.partner();
  const ops = await Promise.all([h.operator('billing'), h.operator('billing'), h.operator('full')]);
  const top = await pendingTopUp(h, p, 7_777);
  const results = await Promise.all(Array.from({ length: 12 }, (_, i) =>
    as(h, ops[i % ops.length]!)('POST', `/v1/operator/top-ups/${top.id}/confirm`, { reason: `Seen on the account (${i})` })));
  t.same([...new Set(results.map((r) => r.status))], [200], 'every confirmation answers 200');
  t.equal(new Set(results.map((r) => r.body.ledger_entry)).size, 1, 'all name the same ledger entry');
  t.equal(await balanceOf(h, p), 7_777, 'credited once');
  t.equal((await as(h, p)('GET', '/v1/credit/ledger?type=top_up')).body.data.length, 1);
  t.equal((await audit(h, ops[2]!, `target_id=${top.id}&action=top_up.confirmed`)).length, 1, 'one audit entry');
  t.same(await eventTypes(h, p, '&type=credit.top_up.credited'), ['credit.top_up.credited'], 'one event');
  const [{ n }] = await h.database.db.execute(sql`select count(*)::int as n from credit_ledger_entries where item_id = ${top.id}`) as unknown as [{ n: number }];
  t.equal(n, 1);
});

t.test('credit adjustments and refunds: reasons, ledger entries, never below zero', async (t) => {
  const h = await harness(t);
  const p = await h.partner();
  const op = await h.operator('billing');
  const call = as(h, op);
  const up = await call('POST', `/v1/operator/partners/${p.id}/credit-adjustments`, { amount: 2_500, currency: 'EUR', reason: 'Goodwill for the outage of 20 November' });
  t.equal(up.status, 201);
  t.match(up.body, { type: 'adjustment_credit', amount: 2_500, balance_after: 2_500, description: 'Adjustment: Goodwill for the outage of 20 November' });
  const down = await call('POST', `/v1/operator/partners/${p.id}/credit-adjustments`, { amount: -500, currency: 'EUR', reason: 'Duplicate goodwill' });
  t.match(down.body, { type: 'adjustment_debit', amount: -500, balance_after: 2_000 });
  const over = await call('POST', `/v1/operator/partners/${p.id}/credit-adjustments`, { amount: -2_001, currency: 'EUR', reason: 'Too much' });
  t.match(over.body, { status: 402, code: 'insufficient_credit', balance: 2_000, shortfall: 1 });
  t.match((await call('POST', `/v1/operator/partners/${p.id}/credit-adjustments`, { amount: 100, currency: 'EUR' })).body, { status: 400 }, 'the reason is required');
  t.match((await call('POST', `/v1/operator/partners/${p.id}/credit-adjustments`, { amount: 0, currency: 'EUR', reason: 'zero' })).body, { status: 400 });
  t.match((await call('POST', '/v1/operator/partners/ptn_01jd0000000000000000000000/credit-adjustments', { amount: 100, currency: 'EUR', reason: 'nobody' })).body, { status: 404 });

  const credited = await creditPartner(h, p, 3_000);
  const partial = await call('POST', `/v1/operator/top-ups/${credited.id}/refund`, { amount: 1_000, reason: 'Partner asked for part back' });
  t.equal(partial.status, 200);
  t.match(partial.body, { top_up: { refunded_amount: 1_000, status: 'credited' }, ledger_entry: /^txn_/ });
  t.match((await call('POST', `/v1/operator/top-ups/${credited.id}/refund`, { amount: 2_001, reason: 'more than left' })).body, { status: 409, code: 'refund_exceeds_top_up', refundable: 2_000 });
  t.equal(await balanceOf(h, p), 4_000);
  const ledger = (await as(h, p)('GET', '/v1/credit/ledger?limit=100')).body.data.map((e: any) => [e.type, e.amount, e.balance_after]);
  t.same(ledger, [['top_up_refund', -1_000, 4_000], ['top_up', 3_000, 5_000], ['adjustment_debit', -500, 2_000], ['adjustment_credit', 2_500, 2_500]]);
  t.same(await eventTypes(h, p, '&type=credit.*'), [
    'credit.adjusted', 'credit.adjusted', 'credit.top_up.created', 'credit.topped_up', 'credit.top_up.credited', 'credit.paid_out', 'credit.top_up.refunded',
  ]);
  t.same((await audit(h, op, `partner=${p.id}`)).map((e) => [e.action, e.reason]).reverse(), [
    ['credit.adjusted', 'Goodwill for the outage of 20 November'],
    ['credit.adjusted', 'Duplicate goodwill'],
    ['top_up.confirmed', 'Test transfer received'],
    ['top_up.refunded', 'Partner asked for part back'],
  ], 'every money action with its reason, and nothing for refused ones');
});

t.test('pending top-ups expire after 30 days (daily task) with an event', async (t) => {
  const h = await harness(t);
  const p = await h.partner();
  const top = await pendingTopUp(h, p, 1_500);
  h.clock.advance(29 * DAYS);
  await h.app.jobs.tick();
  t.equal((await as(h, p)('GET', `/v1/credit/top-ups/${top.id}`)).body.status, 'pending');
  h.clock.advance(1 * DAYS + 1000);
  await h.app.jobs.tick();
  const expired = (await as(h, p)('GET', `/v1/credit/top-ups/${top.id}`)).body;
  t.match(expired, { status: 'expired', expired_at: h.clock.now().toISOString() });
  // (The `created` event is 30 days old now: past the events' visibility window.)
  t.same(await eventTypes(h, p, '&type=credit.top_up.*'), ['credit.top_up.expired']);
  // Money that arrives late is still money: an operator may credit it by hand.
  const op = await h.operator('billing');
  t.match((await as(h, op)('POST', `/v1/operator/top-ups/${top.id}/confirm`, { reason: 'Late transfer, seen 2 days after expiry' })).body, { status: 'credited' });
  t.equal(await balanceOf(h, p), 1_500);
});

async function statement(values: Record<string, string>): Promise<string> {
  let xml = await readFile(new URL('./fixtures/camt053/statement.xml', import.meta.url), 'utf8');
  for (const [name, value] of Object.entries(values)) xml = xml.replaceAll(`{{${name}}}`, value);
  return xml;
}

t.test('CAMT.053 import: matching, partial and unknown references, debits, batches; a re-import credits nothing twice', async (t) => {
  const h = await harness(t);
  const p = await h.partner();
  const q = await h.partner('Second partner');
  const op = await h.operator('billing');
  // Credits net of VAT; the statement carries what is paid, the gross (net + 22 % VAT, rounded half up to the cent).
  const exact = await pendingTopUp(h, p, 20_492); // pays 250.00 €
  const partial = await pendingTopUp(h, p, 30_000); // should pay 366.00 €, pays 100.00 €
  const batch = await pendingTopUp(h, q, 30_820); // pays 376.00 €
  const untouched = await pendingTopUp(h, q, 3_443); // would pay 42.00 €
  t.same([exact, partial, batch, untouched].map((top) => top.bank_transfer.amount), [25_000, 36_600, 37_600, 4_200]);
  const xml = await statement({
    ACCOUNT_IBAN: TEST_BANK.iban,
    REF_EXACT: exact.payment_reference,
    REF_PARTIAL: partial.payment_reference,
    REF_BATCH_COMPACT: batch.payment_reference.replaceAll('-', '').toLowerCase(),
  });
  const post = (body: string, type = 'application/xml') => (h.app.inject as Inject)({ method: 'POST', url: '/v1/operator/bank-statements', headers: { ...op.headers, 'content-type': type }, payload: body });

  const first = await post(xml);
  t.equal(first.statusCode, 201, first.body);
  const result = json(first);
  t.match(result, { object: 'bank_statement_import', message_id: 'STMT-20261123-0001', account_iban: TEST_BANK.iban, entries: 6, matched: 2, unmatched: 3, ignored: 1, already_imported: 0 });
  const byRef = Object.fromEntries(result.lines.map((l: any) => [l.entry_reference, l]));
  t.match(byRef['2026112200012345'], { status: 'matched', top_up: exact.id, amount: 25_000, debtor_name: 'ROSSI SERVIZI SRL', debtor_iban: 'IT02L1234512345123456789012', booking_date: '2026-11-22' });
  t.match(byRef['2026112200012346'], { status: 'unmatched', mismatch_reason: 'amount_mismatch', amount: 10_000, top_up: null });
  t.match(byRef['2026112200012347'], { status: 'unmatched', mismatch_reason: 'unknown_reference', amount: 7_550 });
  t.match(byRef['2026112200012348'], { status: 'ignored', mismatch_reason: 'debit', credit_debit: 'debit', amount: 1_250 });
  t.match(byRef['2026112200012350-1'], { status: 'matched', top_up: batch.id, amount: 37_600, debtor_name: 'NERI & FIGLI SNC' });
  t.match(byRef['2026112200012350-2'], { status: 'unmatched', mismatch_reason: 'no_reference', amount: 4_200 });
  t.notOk(result.lines.some((l: any) => l.entry_reference === '2026112300000001'), 'the pending (PDNG) entry is not imported');

  t.equal(await balanceOf(h, p), 20_492, 'only the exact match credited p, net of VAT');
  t.equal(await balanceOf(h, q), 30_820, 'the batch transfer credited q');
  const [invoice] = (await as(h, p)('GET', '/v1/invoices')).body.data;
  t.match(invoice, { top_up: exact.id, net_amount: 20_492, vat_amount: 4_508, total_amount: 25_000, payment: { reference: exact.payment_reference } }, 'the matched transfer is invoiced for what was paid');
  t.equal((await as(h, p)('GET', `/v1/credit/top-ups/${partial.id}`)).body.status, 'pending', 'a partial payment credits nothing');
  t.equal((await as(h, q)('GET', `/v1/credit/top-ups/${untouched.id}`)).body.status, 'pending', 'same amount but no reference: not guessed');

  const again = json(await post(xml));
  t.match(again, { entries: 6, matched: 0, unmatched: 0, ignored: 0, already_imported: 6, lines: [] }, 're-import: every entry already known');
  t.equal(await balanceOf(h, p), 20_492);
  t.equal(await balanceOf(h, q), 30_820);
  t.equal((await as(h, p)('GET', '/v1/credit/ledger?type=top_up')).body.data.length, 1);

  const unmatched = (await as(h, op)('GET', '/v1/operator/bank-statement-lines?status=unmatched&limit=100')).body.data;
  t.same(unmatched.map((l: any) => l.mismatch_reason).sort(), ['amount_mismatch', 'no_reference', 'unknown_reference']);

  const confirmations = await audit(h, op, 'action=top_up.confirmed');
  t.equal(confirmations.length, 2);
  t.match(confirmations.find((e) => e.target.id === exact.id), { reason: 'Bank transfer matched on statement STMT-20261123-0001, entry 2026112200012345', details: { source: { type: 'bank_statement_line', id: byRef['2026112200012345'].id } } });
  t.same((await audit(h, op, 'action=bank_statement.imported')).map((e) => [e.details.matched, e.details.already_imported]), [[0, 6], [2, 0]]);
  t.same(await eventTypes(h, p, '&type=credit.top_up.*'), ['credit.top_up.created', 'credit.top_up.created', 'credit.top_up.credited']);

  // Another account's statement, broken XML, a DTD, the wrong content type and a read-only key are refused.
  t.match(json(await post(await statement({ ACCOUNT_IBAN: 'IT02L1234512345123456789012', REF_EXACT: '', REF_PARTIAL: '', REF_BATCH_COMPACT: '' }))), { status: 422, code: 'statement_account_mismatch' });
  t.match(json(await post('<Document><BkToCstmrStmt>')), { status: 422, code: 'invalid_bank_statement' });
  t.match(json(await post('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><Document/>')), { status: 422, code: 'invalid_bank_statement' });
  t.match(json(await post('<Document><Other/></Document>')), { status: 422, code: 'invalid_bank_statement' });
  const asJson = await (h.app.inject as Inject)({ method: 'POST', url: '/v1/operator/bank-statements', headers: op.headers, payload: { xml } });
  t.match(json(asJson), { status: 415 });
  const reader = await h.operator('read_only');
  const readOnly = await (h.app.inject as Inject)({ method: 'POST', url: '/v1/operator/bank-statements', headers: { ...reader.headers, 'content-type': 'application/xml' }, payload: xml });
  t.match(json(readOnly), { status: 403, code: 'insufficient_scope' });
});

t.test('the audit trail: filters, pagination, and a trigger that refuses UPDATE and DELETE', async (t) => {
  const h = await harness(t);
  const p = await h.partner();
  const op = await h.operator('full');
  for (let i = 1; i <= 5; i++) {
    await as(h, op)('POST', `/v1/operator/partners/${p.id}/credit-adjustments`, { amount: i * 100, currency: 'EUR', reason: `Correction ${i}` });
  }
  const first = (await as(h, op)('GET', '/v1/operator/audit-log?limit=2&action=credit.adjusted')).body;
  t.match(first, { object: 'list', has_more: true });
  t.same(first.data.map((e: any) => e.reason), ['Correction 5', 'Correction 4']);
  const second = (await as(h, op)('GET', `/v1/operator/audit-log?limit=10&action=credit.adjusted&starting_after=${first.next_cursor}`)).body;
  t.same(second.data.map((e: any) => e.reason), ['Correction 3', 'Correction 2', 'Correction 1']);
  t.equal(second.has_more, false);
  t.match(first.data[0], { object: 'audit_entry', actor: 'operator_key', operator_key: op.id, partner: p.id, target: { type: 'ledger_entry', id: /^txn_/ }, details: { amount: 500, balance_after: 1_500 } });
  t.equal((await as(h, op)('GET', `/v1/operator/audit-log?operator_key=${op.id}&limit=100`)).body.data.length, 5);
  t.equal((await as(h, op)(`GET`, `/v1/operator/audit-log?created_after=${encodeURIComponent(new Date(h.clock.now().getTime() + 1000).toISOString())}`)).body.data.length, 0);
  t.match((await as(h, op)('GET', '/v1/operator/audit-log?starting_after=aud_01jd0000000000000000000000')).body, { status: 400, code: 'validation_error' });

  const db = h.database.db;
  const refusal = (query: Promise<unknown>) => query.then(() => 'accepted', (error: any) => String(error.cause?.message ?? error.message));
  t.match(await refusal(db.execute(sql`update operator_audit_log set reason = 'rewritten'`)), /append-only \(UPDATE refused\)/);
  t.match(await refusal(db.execute(sql`delete from operator_audit_log`)), /append-only \(DELETE refused\)/);
  t.match(await refusal(db.execute(sql`truncate operator_audit_log`)), /append-only \(TRUNCATE refused\)/);
  const [{ n }] = await db.execute(sql`select count(*)::int as n from operator_audit_log where reason like 'Correction %'`) as unknown as [{ n: number }];
  t.equal(n, 5, 'every entry still there, unchanged');
  // A credited top-up is final in the database too.
  const credited = await creditPartner(h, p, 1_000);
  t.match(await refusal(db.execute(sql`update top_ups set status = 'pending', ledger_entry_id = null, credited_at = null where id = ${credited.id}`)), /final/);
});
