import t, { type Test } from 'tap';
import { startDnsServer, type DnsServer } from './helpers/dns-server.ts';
import { api } from './helpers/fixtures.ts';
import { DAYS, harness } from './helpers/harness.ts';

const MX = ['mx1.pec.example.it', 'mx2.pec.example.it'];

async function setup(t: Test) {
  const dns: DnsServer = await startDnsServer();
  t.teardown(() => dns.close());
  const h = await harness(t, { env: { DNS_SERVERS: dns.address } });
  const p = await h.partner();
  const a = api(h, p);
  /** Publishes what the API asked for. */
  const publish = (domain: { name: string; dns_records: { type: string; name: string; value: string; priority: number | null }[] }) => {
    dns.set(domain.name, 'MX', domain.dns_records.filter((r) => r.type === 'MX').map((r) => ({ exchange: r.value, priority: r.priority! })));
    const txt = domain.dns_records.find((r) => r.type === 'TXT')!;
    dns.set(txt.name, 'TXT', [txt.value]);
  };
  return { dns, h, p, a, publish };
}

t.test('name rules: check answers without creating, create enforces the same rules', async (t) => {
  const { h, a, publish } = await setup(t);
  const verdict = async (name: string) => {
    const r = await a.post('/v1/domains/check', { name });
    t.equal(r.status, 200);
    return r.body.certifiable ? 'ok' : r.body.reason;
  };
  t.equal(await verdict('studio-rossi.it'), 'ok');
  t.equal(await verdict('pec.studio-rossi.it'), 'ok');
  t.same((await a.post('/v1/domains/check', { name: 'Perché.IT.' })).body, {
    object: 'domain_check', livemode: true, name: 'xn--perch-fsa.it', unicode_name: 'perché.it', certifiable: true, reason: null, detail: null,
  });
  t.equal(await verdict('a.pec.studio-rossi.it'), 'too_deep');
  t.equal(await verdict('co.uk'), 'public_suffix');
  t.equal(await verdict('it'), 'public_suffix');
  t.equal(await verdict('pec.example.it'), 'provider_domain');
  t.equal(await verdict('clienti.pec.example.it'), 'provider_domain');
  t.equal(await verdict('192.168.1.1'), 'ip_address');
  t.equal(await verdict('not a domain'), 'invalid_domain_name');
  t.equal((await a.get('/v1/domains')).body.data.length, 0, 'check created nothing');

  const customer = await a.customer();
  const bad = await a.post('/v1/domains', { name: 'a.b.studio-rossi.it', customer });
  t.equal(bad.status, 400);
  t.match(bad.body.errors, [{ pointer: '/name', code: 'too_deep' }]);
  const provider = await a.post('/v1/domains', { name: 'pec.example.it', customer });
  t.equal(provider.status, 409);
  t.equal(provider.body.code, 'domain_provider_domain');
  const unknownCustomer = await a.post('/v1/domains', { name: 'studio-rossi.it', customer: 'cus_00000000000000000000000000' });
  t.equal(unknownCustomer.status, 400);
  t.match(unknownCustomer.body.errors, [{ pointer: '/customer', code: 'resource_missing' }]);

  const created = await a.post('/v1/domains', { name: 'Studio-Rossi.it', customer });
  t.equal(created.status, 201);
  t.equal(created.headers.location, `/v1/domains/${created.body.id}`);
  t.match(created.body, { object: 'domain', livemode: true, kind: 'custom', name: 'studio-rossi.it', level: 2, status: 'pending_verification', customer, last_check: null });
  const token = created.body.dns_records[2].value;
  t.match(token, /^pec-verify=[0-9A-Za-z]{32}$/);
  t.same(created.body.dns_records, [
    { type: 'MX', name: 'studio-rossi.it', value: MX[0], priority: 10 },
    { type: 'MX', name: 'studio-rossi.it', value: MX[1], priority: 20 },
    { type: 'TXT', name: '_pec-verify.studio-rossi.it', value: token, priority: null },
  ]);
  const again = await a.post('/v1/domains', { name: 'studio-rossi.it', customer });
  t.equal(again.status, 409);
  t.equal(again.body.code, 'domain_already_requested');
  t.equal(await verdict('studio-rossi.it'), 'already_requested');

  // Another partner may request the same name (ownership is proven by DNS) until someone is certified.
  const other = api(h, await h.partner('Other'));
  const otherCustomer = await other.customer();
  const competing = await other.post('/v1/domains', { name: 'studio-rossi.it', customer: otherCustomer });
  t.equal(competing.status, 201);
  await a.topUp(10_000);
  publish(created.body);
  t.equal((await a.post(`/v1/domains/${created.body.id}/verify`)).status, 200);
  t.equal(await verdict('studio-rossi.it'), 'already_certified');
  // The competitor publishes its own token too late: the name is taken.
  await other.topUp(10_000);
  publish(competing.body);
  const late = await other.post(`/v1/domains/${competing.body.id}/verify`);
  t.equal(late.status, 409);
  t.equal(late.body.code, 'domain_already_certified');
  t.equal(await other.balance(), 10_000, 'nothing charged for the refused certification');

  const providerList = await a.get('/v1/domains?kind=provider');
  t.same(providerList.body.data.map((d: { id: string; name: string; kind: string; status: string }) => [d.id, d.name, d.kind, d.status]), [
    ['pdm_pec.example.it', 'pec.example.it', 'provider', 'certified'],
    ['pdm_postacert.example.it', 'postacert.example.it', 'provider', 'certified'],
  ]);
  t.equal((await a.get('/v1/domains/pdm_pec.example.it')).body.kind, 'provider');
  t.equal((await other.get(`/v1/domains/${created.body.id}`)).status, 404, "another partner's domain is invisible");
});

t.test('verification: each DNS failure is reported per record; success certifies and charges', async (t) => {
  const { dns, a, publish } = await setup(t);
  const customer = await a.customer();
  const domain = (await a.post('/v1/domains', { name: 'pec.studio-bianchi.it', customer })).body;
  const verify = () => a.post(`/v1/domains/${domain.id}/verify`);
  const statuses = (body: { records: { type: string; status: string }[] }) => Object.fromEntries(body.records.map((r) => [r.type, r.status]));

  const nothing = await verify();
  t.equal(nothing.status, 422);
  t.equal(nothing.body.code, 'domain_verification_failed');
  t.same(statuses(nothing.body), { MX: 'missing', TXT: 'missing' });

  dns.set('pec.studio-bianchi.it', 'MX', [{ exchange: MX[0]!, priority: 10 }, { exchange: 'mail.elsewhere.net', priority: 20 }]);
  dns.set('_pec-verify.pec.studio-bianchi.it', 'TXT', ['pec-verify=wrong']);
  const wrong = await verify();
  t.same(statuses(wrong.body), { MX: 'mismatch', TXT: 'mismatch' });
  t.match(wrong.body.detail, /mail\.elsewhere\.net/);
  t.match(wrong.body.records.find((r: { type: string }) => r.type === 'TXT'), { found: ['pec-verify=wrong'] });

  dns.fail('pec.studio-bianchi.it', 'servfail');
  const broken = await verify();
  t.equal(statuses(broken.body).MX, 'error');
  dns.heal('pec.studio-bianchi.it');

  const stored = (await a.get(`/v1/domains/${domain.id}`)).body;
  t.match(stored, { status: 'pending_verification', last_check: { ok: false, checked_at: '2026-11-22T09:00:00.000Z' } });

  publish(domain);
  const poor = await verify();
  t.equal(poor.status, 402, 'records fine, but no credit for the fee');
  t.match(poor.body, { code: 'insufficient_credit', required: 5000, shortfall: 5000 });
  t.equal((await a.get(`/v1/domains/${domain.id}`)).body.status, 'pending_verification');

  await a.topUp(6000);
  const ok = await verify();
  t.equal(ok.status, 200);
  t.match(ok.body, { status: 'certified', certified_at: '2026-11-22T09:00:00.000Z', last_check: { ok: true } });
  const ledger = await a.ledger();
  t.same(ledger.map((e) => [e.type, e.amount]), [['charge', -5000], ['top_up', 6000]]);
  t.match(ledger[0], { description: 'Domain certification: pec.studio-bianchi.it', item: { type: 'domain', id: domain.id } });
  const twice = await verify();
  t.equal(twice.status, 409);
  t.match(twice.body, { code: 'invalid_state_transition', current_status: 'certified' });
  t.equal(await a.balance(), 1000, 'charged once');
});

t.test('lifecycle: withdraw, change customer, cancellation and its undo, every refused transition', async (t) => {
  const { h, a, publish } = await setup(t);
  const customer = await a.customer();
  await a.topUp(20_000);

  const abandoned = (await a.post('/v1/domains', { name: 'ripensamento.it', customer })).body;
  const withdrawn = await a.post(`/v1/domains/${abandoned.id}/withdraw`);
  t.match(withdrawn.body, { status: 'withdrawn', withdrawn_at: '2026-11-22T09:00:00.000Z' });
  for (const action of ['withdraw', 'verify', 'cancellation']) {
    const r = await a.post(`/v1/domains/${abandoned.id}/${action}`);
    t.equal(r.status, 409, action);
    t.match(r.body, { code: 'invalid_state_transition', current_status: 'withdrawn' }, action);
  }
  t.equal((await a.post('/v1/domains', { name: 'ripensamento.it', customer })).status, 201, 'a withdrawn name can be requested again');

  const domain = (await a.post('/v1/domains', { name: 'studio-verdi.it', customer })).body;
  t.match((await a.post(`/v1/domains/${domain.id}/cancellation`)).body, { code: 'invalid_state_transition', current_status: 'pending_verification', allowed_from: ['certified', 'degraded'] });
  publish(domain);
  t.equal((await a.post(`/v1/domains/${domain.id}/verify`)).status, 200);
  t.match((await a.post(`/v1/domains/${domain.id}/withdraw`)).body, { code: 'invalid_state_transition', current_status: 'certified', allowed_from: ['pending_verification'] });

  const heir = await a.customer();
  const moved = await a.patch(`/v1/domains/${domain.id}`, { customer: heir });
  t.equal(moved.status, 200);
  t.equal(moved.body.customer, heir);
  t.match((await a.patch(`/v1/domains/${domain.id}`, { customer: 'cus_00000000000000000000000000' })).body, { status: 400, errors: [{ pointer: '/customer', code: 'resource_missing' }] });
  t.equal((await a.get(`/v1/domains/${domain.id}`)).body.customer, heir, 'unchanged by the refused update');

  // Live mailboxes block the cancellation; a scheduled cancellation blocks new mailboxes.
  const mailbox = (await a.post('/v1/mailboxes', { local_part: 'info', domain: 'studio-verdi.it', customer: heir, plan: 'standard' })).body;
  t.equal(mailbox.status, 'active');
  t.match((await a.post(`/v1/domains/${domain.id}/cancellation`)).body, { status: 409, code: 'domain_has_mailboxes' });
  t.equal((await a.post(`/v1/mailboxes/${mailbox.id}/cancel`, { when: 'now' })).body.status, 'cancelled');
  t.match((await a.post(`/v1/domains/${domain.id}/cancellation`, { at: '2026-11-01T00:00:00Z' })).body, { status: 400, errors: [{ pointer: '/at', code: 'out_of_range' }] });
  const scheduled = await a.post(`/v1/domains/${domain.id}/cancellation`);
  t.equal(scheduled.body.cancel_at, '2026-12-22T09:00:00.000Z', '30 days of notice by default');
  t.equal((await a.post(`/v1/domains/${domain.id}/cancellation`)).body.code, 'cancellation_already_requested');
  const blocked = await a.post('/v1/mailboxes', { local_part: 'altro', domain: 'studio-verdi.it', customer: heir, plan: 'standard' });
  t.match(blocked.body, { status: 400, errors: [{ pointer: '/domain', code: 'domain_cancellation_scheduled' }] });
  t.equal((await a.del(`/v1/domains/${domain.id}/cancellation`)).body.cancel_at, null);
  t.equal((await a.del(`/v1/domains/${domain.id}/cancellation`)).body.code, 'no_cancellation_requested');

  t.equal((await a.post(`/v1/domains/${domain.id}/cancellation`, { at: '2026-11-25T00:00:00Z' })).body.cancel_at, '2026-11-25T00:00:00.000Z');
  h.clock.advance(3 * DAYS);
  await h.app.jobs.tick();
  t.match((await a.get(`/v1/domains/${domain.id}`)).body, { status: 'cancelled', cancelled_at: '2026-11-25T09:00:00.000Z' });
  t.match((await a.patch(`/v1/domains/${domain.id}`, { customer })).body, { code: 'invalid_state_transition', current_status: 'cancelled' });
  t.equal((await a.post('/v1/domains/check', { name: 'studio-verdi.it' })).body.certifiable, true, 'the name is free again');
  t.same((await a.get('/v1/domains?status=cancelled')).body.data.map((d: { id: string }) => d.id), [domain.id]);
});

t.test('daily re-check: degraded on failure, recovered, decertified after 7 days with mailboxes suspended, certified again', async (t) => {
  const { dns, h, a, publish } = await setup(t);
  const customer = await a.customer();
  await a.topUp(20_000);
  const domain = (await a.post('/v1/domains', { name: 'studio-neri.it', customer })).body;
  publish(domain);
  t.equal((await a.post(`/v1/domains/${domain.id}/verify`)).status, 200);
  const mailbox = (await a.post('/v1/mailboxes', { local_part: 'pec', domain: 'studio-neri.it', customer, plan: 'standard' })).body;
  const status = async () => (await a.get(`/v1/domains/${domain.id}`)).body;

  h.clock.advance(1 * DAYS);
  await h.app.jobs.tick();
  t.match(await status(), { status: 'certified', last_check: { ok: true, checked_at: '2026-11-23T09:00:00.000Z' } });

  dns.fail('studio-neri.it', 'servfail');
  h.clock.advance(1 * DAYS);
  await h.app.jobs.tick();
  t.match(await status(), { status: 'degraded', degraded_at: '2026-11-24T09:00:00.000Z', last_check: { ok: false } });
  t.equal((await a.get(`/v1/mailboxes/${mailbox.id}`)).body.status, 'active', 'a degraded domain keeps its mailboxes working');
  const refused = await a.post('/v1/mailboxes', { local_part: 'nuova', domain: 'studio-neri.it', customer, plan: 'standard' });
  t.match(refused.body, { status: 400, errors: [{ pointer: '/domain', code: 'domain_not_certified' }] });

  dns.heal('studio-neri.it');
  h.clock.advance(1 * DAYS);
  await h.app.jobs.tick();
  t.match(await status(), { status: 'certified', degraded_at: null }, 'recovered');

  dns.clear('_pec-verify.studio-neri.it');
  for (let day = 1; day <= 7; day++) {
    h.clock.advance(1 * DAYS);
    await h.app.jobs.tick();
    t.equal((await status()).status, 'degraded', `day ${day} without the TXT record`);
  }
  h.clock.advance(1 * DAYS);
  await h.app.jobs.tick();
  t.match(await status(), { status: 'decertified', degraded_at: '2026-11-26T09:00:00.000Z', decertified_at: '2026-12-03T09:00:00.000Z' });
  t.match((await a.get(`/v1/mailboxes/${mailbox.id}`)).body, { status: 'suspended', suspension_reason: 'domain_decertified', suspended_at: '2026-12-03T09:00:00.000Z' });
  t.match((await a.post(`/v1/mailboxes/${mailbox.id}/resume`)).body, { status: 409, code: 'domain_not_certified' });

  const balance = await a.balance();
  publish(domain);
  const again = await a.post(`/v1/domains/${domain.id}/verify`);
  t.match(again.body, { status: 'certified', certified_at: '2026-12-03T09:00:00.000Z', degraded_at: null, decertified_at: null });
  t.equal(await a.balance(), balance - 5000, 'certifying again is charged again');
  t.match((await a.get(`/v1/mailboxes/${mailbox.id}`)).body, { status: 'active', suspension_reason: null }, 'its mailboxes work again');
});

t.test('isolation: another partner can neither see nor touch a domain', async (t) => {
  const { h, a } = await setup(t);
  const customer = await a.customer();
  const domain = (await a.post('/v1/domains', { name: 'riservato.it', customer })).body;
  const other = api(h, await h.partner('Other'));
  const otherCustomer = await other.customer();
  const attempts = [
    await other.get(`/v1/domains/${domain.id}`),
    await other.patch(`/v1/domains/${domain.id}`, { customer: otherCustomer }),
    await other.post(`/v1/domains/${domain.id}/verify`),
    await other.post(`/v1/domains/${domain.id}/withdraw`),
    await other.post(`/v1/domains/${domain.id}/cancellation`),
    await other.del(`/v1/domains/${domain.id}/cancellation`),
  ];
  t.same(attempts.map((r) => [r.status, r.body.code]), Array(6).fill([404, 'resource_missing']));
  t.equal((await other.get('/v1/domains')).body.data.length, 0);
  // A partner cannot hand its domain to another partner's customer either.
  t.match((await a.patch(`/v1/domains/${domain.id}`, { customer: otherCustomer })).body, { status: 400, errors: [{ pointer: '/customer', code: 'resource_missing' }] });
  t.equal((await a.get(`/v1/domains/${domain.id}`)).body.status, 'pending_verification');
});
