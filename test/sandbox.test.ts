/**
 * Test mode (the sandbox): a partner's `sk_test_` key works on a world of its own in the same deployment. Proved here
 * over every operation of the committed OpenAPI document, as the tenant-isolation test does between partners: the
 * test world addresses each operation with the live world's ids and the reverse, each answer being exactly a missing
 * id's; every answer says the caller's `livemode` and shows nothing of the other world. Then the sandbox's own
 * rules: keys and tokens, suspension, global names per world, webhooks, free credit through test helpers (no invoice),
 * domains certified by a call, and the operator's views blind to it.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFile } from 'node:fs/promises';
import t from 'tap';
import { harness, json, TEST_BANK, TEST_FISCAL_DATA, type Harness } from './helpers/harness.ts';
import { api, creditPartner } from './helpers/fixtures.ts';
import { checkAnswer, crossWalk, headersFor, operations, send, testModeOnly, urlFor } from './helpers/openapi-walk.ts';
import { buildWorld, type World } from './helpers/world.ts';

type Inject = Harness['app']['inject'];

// Two whole worlds and two walks over every operation: longer than the default budget of a file.
t.setTimeout(900_000);

/** Every resource in an answer (objects that name their kind), with where it sits. */
function resources(body: unknown, at = ''): { at: string; value: Record<string, unknown> }[] {
  const found: { at: string; value: Record<string, unknown> }[] = [];
  const visit = (node: unknown, path: string) => {
    if (Array.isArray(node)) node.forEach((item, index) => visit(item, `${path}/${index}`));
    else if (typeof node === 'object' && node !== null) {
      const value = node as Record<string, unknown>;
      if (typeof value.object === 'string' && value.object !== 'list') found.push({ at: path, value });
      for (const [key, child] of Object.entries(value)) visit(child, `${path}/${key}`);
    }
  };
  visit(body, at);
  return found;
}

/** Every id a world made, for finding them where they must not be. */
const idsOf = (world: World): string[] => [...Object.values(world.ids), world.partner.id].filter((id) => /^[a-z]+_[0-9a-z]{26}$/.test(id) && !id.startsWith('inv_01mdx00000'));

/**
 * Every GET a world's callers can make on their own objects: each answer is valid for the document, every resource in
 * it says `livemode` as the world is, and none of the other world's ids appears in it.
 */
async function ownReads(h: Harness, world: World, livemode: boolean, other: World): Promise<{ checked: number; failures: string[] }> {
  const failures: string[] = [];
  const foreign = idsOf(other);
  let checked = 0;
  for (const operation of operations) {
    if (operation.method !== 'GET' || (operation.caller !== 'partner' && operation.caller !== 'holder')) continue;
    if (operation.path.startsWith('/v1/invoices/') && !livemode) continue; // the sandbox has no invoice to read
    const sent = await send(h, operation, urlFor(world, operation), headersFor(world, operation));
    const where = `${operation.method} ${operation.path} (${livemode ? 'live' : 'test'})`;
    const problem = checkAnswer(operation, livemode ? 'live' : 'test', sent);
    if (problem) failures.push(problem);
    if (sent.status !== 200 || !String(sent.headers['content-type']).startsWith('application/json')) continue;
    checked++;
    for (const { at, value } of resources(JSON.parse(sent.body))) {
      if (value.livemode !== livemode) failures.push(`${where}: ${at || '/'} (${String(value.object)}) has livemode ${String(value.livemode)}`);
    }
    for (const id of foreign) if (sent.body.includes(id)) failures.push(`${where}: shows the other world's ${id}`);
  }
  return { checked, failures };
}

t.test('test and live never see each other: every operation, both ways, answers as for a missing id; every answer is of its world', async (t) => {
  const h = await harness(t);
  const live = await buildWorld(h, 'Studio');
  const sandbox = await buildWorld(h, 'Studio sandbox', { sandboxOf: live.partner });
  t.equal(sandbox.partner.id, live.partner.test.id, 'the sandbox is the partner\'s test twin');

  // The test key on the live world's ids, and the live key on the test world's.
  const testOnLive = await crossWalk(h, sandbox, live);
  t.ok(testOnLive.compared > 150, `${testOnLive.compared} live ids addressed with the test key`);
  t.same(testOnLive.failures, [], 'with the test key, a live id is a missing id');
  // Test helpers and test clocks answer the live key 403 whatever the id (checked below).
  const liveOnTest = await crossWalk(h, live, sandbox, { skip: (operation) => testModeOnly(operation.path) });
  t.ok(liveOnTest.compared > 150, `${liveOnTest.compared} test ids addressed with the live key`);
  t.same(liveOnTest.failures, [], 'with the live key, a test id is a missing id');

  // Each world reads its own objects: valid answers, its own livemode on every resource, nothing of the other world.
  const testReads = await ownReads(h, sandbox, false, live);
  t.ok(testReads.checked > 40, `${testReads.checked} test-mode reads`);
  t.same(testReads.failures, [], 'test answers: livemode false everywhere, no live object in any list');
  const liveReads = await ownReads(h, live, true, sandbox);
  t.ok(liveReads.checked > 40, `${liveReads.checked} live reads`);
  t.same(liveReads.failures, [], 'live answers: livemode true everywhere, no test object in any list');

  // A live key on a test helper or a test clock: 403 test_mode_only, for its own objects as for any.
  for (const operation of operations.filter((op) => testModeOnly(op.path))) {
    // Test clocks exist in the sandbox only: the live key is shown its own sandbox's clock, and refused all the same.
    const ids = operation.path.startsWith('/v1/test_clocks') ? sandbox : live;
    const sent = await send(h, operation, urlFor(ids, operation), live.partner.headers);
    t.match({ status: sent.status, body: JSON.parse(sent.body) }, { status: 403, body: { code: 'test_mode_only' } }, `${operation.path} refuses the live key`);
  }
});

t.test('keys and tokens: a test key makes test keys only; its tokens are test; a suspended partner\'s sandbox is refused too', async (t) => {
  const h = await harness(t);
  const p = await h.partner('Keys');
  const inject = h.app.inject as Inject;
  const call = async (headers: Record<string, string>, method: 'GET' | 'POST', url: string, payload?: object) => {
    const response = await inject({ method, url, headers, ...(payload ? { payload } : {}) });
    return { status: response.statusCode, body: json(response) };
  };

  t.match(await call(p.test.headers, 'POST', '/v1/api-keys', { name: 'escape', livemode: true }), { status: 403, body: { code: 'livemode_forbidden' } });
  const testKey = await call(p.test.headers, 'POST', '/v1/api-keys', { name: 'ci' });
  t.match(testKey, { status: 201, body: { object: 'api_key', livemode: false, secret: /^sk_test_/ } }, 'a test key makes a test key');
  const fromLive = await call(p.headers, 'POST', '/v1/api-keys', { name: 'sandbox', livemode: false });
  t.match(fromLive, { status: 201, body: { livemode: false, secret: /^sk_test_/ } }, 'a live key makes a test key on request');
  t.match(await call({ authorization: `Bearer ${fromLive.body.secret}` }, 'GET', '/v1/credit'), { status: 200, body: { id: p.test.id, livemode: false } });
  t.match(await call(p.headers, 'GET', '/v1/credit'), { status: 200, body: { id: p.id, livemode: true } });
  const liveKeys = await call(p.headers, 'GET', '/v1/api-keys?limit=100');
  t.notOk(liveKeys.body.data.some((key: { id: string }) => key.id === fromLive.body.id || key.id === testKey.body.id), 'test keys are listed in the sandbox, not live');

  const token = await inject({ method: 'POST', url: '/oauth/token', payload: { grant_type: 'client_credentials', client_secret: p.test.secret } });
  t.equal(token.statusCode, 200, token.body);
  const bearer = { authorization: `Bearer ${json(token).access_token}` };
  t.match(await call(bearer, 'GET', '/v1/credit'), { status: 200, body: { id: p.test.id, livemode: false } }, 'a token of a test key is test');
  t.match(await call(bearer, 'POST', '/v1/api-keys', { name: 'escape', livemode: true }), { status: 403, body: { code: 'livemode_forbidden' } });

  const operator = await h.operator('full');
  t.equal((await call(operator.headers, 'POST', `/v1/operator/partners/${p.id}/suspend`, { reason: 'Unpaid invoices' })).status, 200);
  for (const headers of [p.headers, p.test.headers, bearer, { authorization: `Bearer ${fromLive.body.secret}` }]) {
    t.match(await call(headers, 'GET', '/v1/credit'), { status: 403, body: { code: 'partner_suspended' } });
  }
  t.equal((await call(operator.headers, 'POST', `/v1/operator/partners/${p.id}/reactivate`, { reason: 'Paid' })).status, 200);
  t.match(await call(p.test.headers, 'GET', '/v1/credit'), { status: 200, body: { livemode: false } }, 'back with its live partner');
});

t.test('free test credit: top-ups without fiscal data, credited, failed or expired by test helpers with their events, never invoiced', async (t) => {
  const h = await harness(t);
  const p = await h.partner('No fiscal data yet', { fiscalData: false });
  const live = api(h, p);
  const test = api(h, { ...p, id: p.test.id, headers: p.test.headers });
  t.match(await live.post('/v1/credit/top-ups', { amount: 10_000, currency: 'EUR' }), { status: 409, body: { code: 'fiscal_data_required' } }, 'live credit is invoiced');

  const created = await test.post('/v1/credit/top-ups', { amount: 10_000, currency: 'EUR', payment_reference: 'ORDER-1' });
  t.match(created, { status: 201, body: { object: 'top_up', livemode: false, status: 'pending', partner: p.test.id, partner_reference: 'ORDER-1' } }, 'test credit needs no fiscal data');
  const top = created.body;
  const credited = await test.post(`/v1/test_helpers/top-ups/${top.id}/credit`);
  t.match(credited, { status: 200, body: { id: top.id, livemode: false, status: 'credited', ledger_entry: /^txn_/ } });
  t.same((await test.post(`/v1/test_helpers/top-ups/${top.id}/credit`)).body, credited.body, 'crediting again changes nothing');
  t.equal(await test.balance(), 10_000);
  t.equal(await live.balance(), 0, 'the live balance is untouched');
  t.match(await test.ledger(), [{ type: 'top_up', amount: 10_000, item: { type: 'top_up', id: top.id } }]);

  const failing = (await test.post('/v1/credit/top-ups', { amount: 2_000, currency: 'EUR' })).body;
  t.match(await test.post(`/v1/test_helpers/top-ups/${failing.id}/fail`, { reason: 'Card declined' }), { status: 200, body: { status: 'failed', failure_reason: 'Card declined', livemode: false } });
  const defaulted = (await test.post('/v1/credit/top-ups', { amount: 2_000, currency: 'EUR' })).body;
  t.match(await test.post(`/v1/test_helpers/top-ups/${defaulted.id}/fail`), { status: 200, body: { status: 'failed', failure_reason: 'Simulated payment failure (test mode)' } });
  const expiring = (await test.post('/v1/credit/top-ups', { amount: 3_000, currency: 'EUR' })).body;
  t.match(await test.post(`/v1/test_helpers/top-ups/${expiring.id}/expire`), { status: 200, body: { status: 'expired', expired_at: h.clock.now().toISOString() } });
  t.match(await test.post(`/v1/test_helpers/top-ups/${failing.id}/credit`), { status: 409, body: { code: 'invalid_state_transition' } }, 'a failed top-up cannot be credited, as live');
  t.equal(await test.balance(), 10_000);

  const events = (await test.get('/v1/events?limit=100')).body.data as { type: string; livemode: boolean; data: { object: { id: string; livemode: boolean } } }[];
  t.same(events.filter((e) => e.type.startsWith('credit.top_up.')).map((e) => [e.type, e.data.object.id]).reverse(), [
    ['credit.top_up.created', top.id], ['credit.top_up.credited', top.id],
    ['credit.top_up.created', failing.id], ['credit.top_up.failed', failing.id],
    ['credit.top_up.created', defaulted.id], ['credit.top_up.failed', defaulted.id],
    ['credit.top_up.created', expiring.id], ['credit.top_up.expired', expiring.id],
  ]);
  t.ok(events.every((e) => e.livemode === false && e.data.object.livemode === false), 'test events and their objects say livemode false');
  t.same((await live.get('/v1/events?limit=100')).body.data, [], 'the live world saw none of it');

  t.same((await test.get('/v1/invoices')).body.data, [], 'no invoice in the sandbox');
  t.same(await h.database.sql`select id from invoices`, [], 'no invoice at all');
  t.same(await h.database.sql`select year from invoice_counters`, [], 'and no number of the yearly sequence was taken');

  // The live key cannot drive the sandbox's top-ups, nor the test key live ones.
  t.match(await live.post(`/v1/test_helpers/top-ups/${expiring.id}/credit`), { status: 403, body: { code: 'test_mode_only' } });
  t.equal((await live.patch('/v1/account', TEST_FISCAL_DATA)).status, 200);
  const liveTop = (await live.post('/v1/credit/top-ups', { amount: 1_000, currency: 'EUR' })).body;
  t.match(await test.post(`/v1/test_helpers/top-ups/${liveTop.id}/credit`), { status: 404, body: { code: 'resource_missing' } });
  t.match(await test.get(`/v1/credit/top-ups/${liveTop.id}`), { status: 404 });
});

async function statement(values: Record<string, string>): Promise<string> {
  let xml = await readFile(new URL('./fixtures/camt053/statement.xml', import.meta.url), 'utf8');
  for (const [name, value] of Object.entries(values)) xml = xml.replaceAll(`{{${name}}}`, value);
  return xml;
}

t.test('the operator sees live partners only: no test twin, no test top-up, no CAMT match, no test helper in the audit log', async (t) => {
  const h = await harness(t);
  const p = await h.partner('Operator view');
  const operator = await h.operator('full');
  const inject = h.app.inject as Inject;
  const as = async (method: 'GET' | 'POST', url: string, payload?: string | object, type?: string) => {
    const response = await inject({ method, url, headers: { ...operator.headers, ...(type ? { 'content-type': type } : {}) }, ...(payload ? { payload } : {}) });
    return { status: response.statusCode, body: json(response) };
  };
  const test = api(h, { ...p, id: p.test.id, headers: p.test.headers });
  const testTop = (await test.post('/v1/credit/top-ups', { amount: 20_492, currency: 'EUR' })).body; // would pay 250.00 €
  const credited = (await test.post('/v1/credit/top-ups', { amount: 1_000, currency: 'EUR' })).body;
  t.equal((await test.post(`/v1/test_helpers/top-ups/${credited.id}/credit`)).status, 200);
  const liveTop = await creditPartner(h, p, 5_000);

  const partners = (await as('GET', '/v1/operator/partners?limit=100')).body.data.map((partner: { id: string }) => partner.id);
  t.ok(partners.includes(p.id));
  t.notOk(partners.includes(p.test.id), 'no test twin among the partners');
  t.match(await as('GET', `/v1/operator/partners/${p.test.id}`), { status: 404 });
  t.match(await as('POST', `/v1/operator/partners/${p.test.id}/credit-adjustments`, { amount: 100, currency: 'EUR', reason: 'Goodwill credit' }), { status: 404 });

  const topUps = (await as('GET', '/v1/operator/top-ups?limit=100')).body.data.map((top: { id: string }) => top.id);
  t.same(topUps, [liveTop.id], 'only the live top-up');
  t.same((await as('GET', `/v1/operator/top-ups?partner=${p.test.id}`)).body.data, [], 'not even asked by the twin\'s id');
  t.same((await as('GET', `/v1/operator/top-ups?payment_reference=${testTop.payment_reference}`)).body.data, [], 'nor by its reference');
  for (const [method, url, payload] of [
    ['GET', `/v1/operator/top-ups/${testTop.id}`, undefined],
    ['POST', `/v1/operator/top-ups/${testTop.id}/confirm`, { reason: 'Seen on the account' }],
    ['POST', `/v1/operator/top-ups/${testTop.id}/fail`, { reason: 'Returned' }],
    ['POST', `/v1/operator/top-ups/${credited.id}/refund`, { reason: 'Asked back' }],
  ] as const) {
    t.match(await as(method, url, payload), { status: 404, body: { code: 'resource_missing' } }, `${method} ${url}: a test top-up is a missing one`);
  }

  // A real transfer quoting a test top-up's reference with its exact gross: never credits it.
  const xml = await statement({ ACCOUNT_IBAN: TEST_BANK.iban, REF_EXACT: testTop.payment_reference, REF_PARTIAL: 'PEC-AAAA-AAAA-AAAA', REF_BATCH_COMPACT: 'PECBBBBBBBBBBBB' });
  const imported = await as('POST', '/v1/operator/bank-statements', xml, 'application/xml');
  t.equal(imported.status, 201);
  const line = imported.body.lines.find((l: { remittance_information: string | null }) => l.remittance_information?.includes(testTop.payment_reference));
  t.match(line, { status: 'unmatched', mismatch_reason: 'unknown_reference', top_up: null }, 'the test reference is unknown to the bank matching');
  t.match((await test.get(`/v1/credit/top-ups/${testTop.id}`)).body, { status: 'pending', livemode: false });
  t.equal(await test.balance(), 1_000);

  const audit = (await as('GET', '/v1/operator/audit-log?limit=100')).body.data as { partner: string | null; target: { id: string } }[];
  t.ok(audit.some((entry) => entry.target.id === liveTop.id), 'the live confirmation is audited');
  t.notOk(audit.some((entry) => entry.partner === p.test.id || entry.target.id === credited.id), 'the test helper\'s credit is not the operator\'s business');
});

t.test('domains by a call in test mode: certified, degraded, decertified and certified again without DNS; the same name in both worlds', async (t) => {
  const h = await harness(t);
  const p = await h.partner('Domains');
  const live = api(h, p);
  const test = api(h, { ...p, id: p.test.id, headers: p.test.headers });
  const top = (await test.post('/v1/credit/top-ups', { amount: 100_000, currency: 'EUR' })).body;
  await test.post(`/v1/test_helpers/top-ups/${top.id}/credit`);
  const customer = await test.customer();

  const domain = (await test.post('/v1/domains', { name: 'studio-doppio.it', customer })).body;
  t.match(domain, { livemode: false, status: 'pending_verification' });
  t.match(await live.post(`/v1/test_helpers/domains/${domain.id}/verify`), { status: 403, body: { code: 'test_mode_only' } });
  const dns = await test.post(`/v1/domains/${domain.id}/verify`);
  t.match(dns, { status: 422, body: { code: 'domain_verification_failed', detail: new RegExp(`POST /v1/test_helpers/domains/${domain.id}/verify`) } }, 'the DNS check is real, and points to the helper');

  const balance = await test.balance();
  const verified = await test.post(`/v1/test_helpers/domains/${domain.id}/verify`);
  t.match(verified, { status: 200, body: { id: domain.id, livemode: false, status: 'certified', last_check: { ok: true, records: [{ status: 'ok' }, { status: 'ok' }] } } });
  const fee = balance - await test.balance();
  t.ok(fee > 0, 'the certification fee is charged to the test credit');
  t.match(await test.ledger(), [{ type: 'charge', amount: -fee, item: { type: 'domain', id: domain.id } }]);
  t.match(await test.post(`/v1/test_helpers/domains/${domain.id}/verify`), { status: 409, body: { code: 'invalid_state_transition' } });

  const mailbox = (await test.post('/v1/mailboxes', { local_part: 'info', domain: 'studio-doppio.it', customer, plan: 'standard', password: 'Doppio-password-2026' })).body;
  t.match(mailbox, { livemode: false, status: 'active', address: 'info@studio-doppio.it' });
  t.match(await test.post(`/v1/test_helpers/domains/${domain.id}/degrade`), { status: 200, body: { status: 'degraded', last_check: { ok: false } } });
  t.match(await test.post(`/v1/test_helpers/domains/${domain.id}/degrade`), { status: 409 });
  t.match(await test.post(`/v1/test_helpers/domains/${domain.id}/decertify`), { status: 200, body: { status: 'decertified' } });
  t.match((await test.get(`/v1/mailboxes/${mailbox.id}`)).body, { status: 'suspended' }, 'its mailboxes are suspended, as live');
  t.match(await test.post(`/v1/test_helpers/domains/${domain.id}/verify`), { status: 200, body: { status: 'certified' } }, 'and it can be certified again');
  t.match((await test.get(`/v1/mailboxes/${mailbox.id}`)).body, { status: 'active' });

  const events = ((await test.get('/v1/events?limit=100&type=domain.*')).body.data as { type: string; livemode: boolean }[]).map((e) => e.type).reverse();
  t.same(events, ['domain.created', 'domain.certified', 'domain.degraded', 'domain.decertified', 'domain.certified']);

  // The daily DNS re-check leaves test domains alone (they are not in DNS).
  h.clock.advance(2 * 86_400_000);
  await h.app.jobs.tick();
  t.match((await test.get(`/v1/domains/${domain.id}`)).body, { status: 'certified' });

  // The same name certified live at the same time, and the same mailbox address in both worlds.
  const liveCustomer = await live.customer();
  await live.topUp(100_000);
  const liveDomain = (await live.post('/v1/domains', { name: 'studio-doppio.it', customer: liveCustomer }));
  t.match(liveDomain, { status: 201, body: { livemode: true, status: 'pending_verification' } }, 'the name is free in the live world');
  // (Live domains are certified by their DNS; the DNS test suite covers it. Here its outcome is written directly.)
  await h.database.sql`update domains set status = 'certified', certified_at = now() where id = ${liveDomain.body.id}`;
  t.match((await live.get(`/v1/domains/${liveDomain.body.id}`)).body, { status: 'certified', livemode: true });
  t.match((await test.get(`/v1/domains/${domain.id}`)).body, { status: 'certified', livemode: false }, 'both certified at once');
  const liveMailbox = await live.post('/v1/mailboxes', { local_part: 'info', domain: 'studio-doppio.it', customer: liveCustomer, plan: 'standard', password: 'Doppio-live-2026' });
  t.match(liveMailbox, { status: 201, body: { address: 'info@studio-doppio.it', livemode: true } }, 'the same address lives in both worlds');
  const shared = await live.post('/v1/mailboxes', { local_part: 'shared', domain: 'pec.example.it', customer: liveCustomer, plan: 'standard', password: 'Shared-live-2026' });
  const sharedTest = await test.post('/v1/mailboxes', { local_part: 'shared', domain: 'pec.example.it', customer, plan: 'standard', password: 'Shared-test-2026' });
  t.match([shared, sharedTest], [{ status: 201, body: { livemode: true } }, { status: 201, body: { livemode: false } }], "also on the provider's domains");
  t.match(await test.post('/v1/mailboxes', { local_part: 'shared', domain: 'pec.example.it', customer, plan: 'standard', password: 'Shared-test-2026' }), { status: 409 }, 'and each world keeps it unique');
});

t.test('webhooks of test events carry livemode false, on the event and its object', async (t) => {
  const h = await harness(t, { env: { APP_ENV: 'development' } });
  const p = await h.partner('Hooks');
  const received: { path: string; body: string }[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      received.push({ path: req.url!, body: Buffer.concat(chunks).toString() });
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const live = api(h, p);
  const test = api(h, { ...p, id: p.test.id, headers: p.test.headers });
  t.equal((await test.post('/v1/webhook-endpoints', { url: `${base}/test`, enabled_events: ['*'] })).status, 201);
  t.equal((await live.post('/v1/webhook-endpoints', { url: `${base}/live`, enabled_events: ['*'] })).status, 201);
  await test.post('/v1/customers', { type: 'private_person', first_name: 'Mario', last_name: 'Rossi', tax_code: 'RSSMRA85T10A562S' });
  await live.post('/v1/customers', { type: 'private_person', first_name: 'Mario', last_name: 'Rossi', tax_code: 'RSSMRA85T10A562S' });
  t.equal(await h.app.webhooks.drain(), 2);
  const at = (path: string) => received.filter((r) => r.path === path).map((r) => JSON.parse(r.body));
  t.match(at('/test'), [{ type: 'customer.created', livemode: false, data: { object: { object: 'customer', livemode: false } } }]);
  t.match(at('/live'), [{ type: 'customer.created', livemode: true, data: { object: { object: 'customer', livemode: true } } }]);
});

