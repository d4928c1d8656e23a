import { and, asc, eq, gt, max } from 'drizzle-orm';
import t, { type Test } from 'tap';
import { events, pecJobs, pecTransactions } from '@pec-partner/db';
import { postMovement } from '../api/src/modules/credit/service.ts';
import { api } from './helpers/fixtures.ts';
import { DAYS, harness, type Harness, type TestPartner } from './helpers/harness.ts';

const HOURS = 3_600_000;

/** The partner's sandbox as a client: its test key. */
const sandbox = (p: TestPartner): TestPartner => ({ ...p, id: p.test.id, secret: p.test.secret, headers: p.test.headers });

/** Test credit: an operator-style adjustment on the test twin's ledger (test top-ups come from the test helpers). */
async function testCredit(h: Harness, p: TestPartner, amount: number): Promise<void> {
  await postMovement(h.database.db, h.clock, 'adjustment_credit', amount, { partnerId: p.test.id, amount, description: 'Test credit' });
}

async function mark(h: Harness): Promise<number> {
  const [row] = await h.database.db.select({ seq: max(events.seq) }).from(events);
  return row?.seq ?? 0;
}

async function eventTypesAfter(h: Harness, partnerId: string, since: number): Promise<string[]> {
  const rows = await h.database.db.select({ type: events.type }).from(events).where(and(eq(events.partnerId, partnerId), gt(events.seq, since))).orderBy(asc(events.seq));
  return rows.map((row) => row.type);
}

async function setup(t: Test) {
  const h = await harness(t);
  const p = await h.partner();
  const live = api(h, p);
  const test = api(h, sandbox(p));
  const advance = async (id: string, to: string) => {
    const answer = await test.post(`/v1/test_clocks/${id}/advance`, { frozen_time: to });
    if (answer.status !== 200) throw new Error(JSON.stringify(answer.body));
    await h.app.testClocks.drain();
    return answer.body;
  };
  const mailbox = async (client: typeof test, local: string, customer: string, extra: Record<string, unknown> = {}) => {
    const created = await client.post('/v1/mailboxes', { local_part: local, domain: 'pec.example.it', customer, plan: 'standard', ...extra });
    if (created.status !== 201) throw new Error(JSON.stringify(created.body));
    return created.body as { id: string; status: string; created_at: string; expires_at: string; livemode: boolean };
  };
  return { h, p, live, test, advance, mailbox };
}

t.test('a clock freezes its test world: requests happen at frozen_time; one clock per world; test mode only', async (t) => {
  const { h, p, live, test, mailbox } = await setup(t);

  const refused = await live.post('/v1/test_clocks', { frozen_time: '2030-01-01T00:00:00Z' });
  t.equal(refused.status, 403);
  t.equal(refused.body.code, 'test_mode_only');
  t.equal((await live.get('/v1/test_clocks')).body.code, 'test_mode_only');

  const since = await mark(h);
  const created = await test.post('/v1/test_clocks', { frozen_time: '2030-01-01T00:00:00Z', name: 'Renewals' });
  t.equal(created.status, 201);
  t.strictSame(created.body, {
    id: created.body.id, object: 'test_clock', livemode: false, name: 'Renewals', frozen_time: '2030-01-01T00:00:00.000Z', status: 'ready',
    advancing_to: null, created_at: h.clock.now().toISOString(),
  });
  t.match(created.body.id, /^clk_[0-9a-z]{26}$/);
  t.equal(created.headers.location, `/v1/test_clocks/${created.body.id}`);
  t.same(await eventTypesAfter(h, p.test.id, since), ['test_clock.created']);

  const second = await test.post('/v1/test_clocks', {});
  t.equal(second.status, 409);
  t.equal(second.body.code, 'test_clock_exists');
  t.same((await test.get('/v1/test_clocks')).body.data.map((c: { id: string }) => c.id), [created.body.id]);
  t.equal((await test.get(`/v1/test_clocks/${created.body.id}`)).body.frozen_time, '2030-01-01T00:00:00.000Z');
  t.equal((await live.get(`/v1/test_clocks/${created.body.id}`)).status, 403);

  await testCredit(h, p, 1000);
  const customer = await test.customer();
  const box = await mailbox(test, 'tempo', customer);
  t.match(box, { livemode: false, status: 'active', created_at: '2030-01-01T00:00:00.000Z', expires_at: '2031-01-01T00:00:00.000Z' });
  t.equal((await test.ledger())[0]!.amount, -500);

  // The live world keeps real time.
  await live.topUp(1000);
  const liveBox = await mailbox(live, 'tempo', await live.customer());
  t.match(liveBox, { livemode: true, created_at: '2026-11-22T09:00:00.000Z', expires_at: '2027-11-22T09:00:00.000Z' });

  // Deleting the clock returns the world to real time; its objects keep their dates.
  const deleted = await test.del(`/v1/test_clocks/${created.body.id}`);
  t.strictSame(deleted.body, { id: created.body.id, object: 'test_clock', livemode: false, deleted: true });
  t.equal((await test.get(`/v1/test_clocks/${created.body.id}`)).status, 404);
  const after = await mailbox(test, 'dopo', customer);
  t.equal(after.created_at, '2026-11-22T09:00:00.000Z');
  t.equal((await test.get(`/v1/mailboxes/${box.id}`)).body.expires_at, '2031-01-01T00:00:00.000Z');
  t.equal((await test.post('/v1/test_clocks', {})).status, 201, 'a new clock once the old one is gone');
});

t.test('advancing runs renewals, notices and add-on renewals for the world, charged from test credit; live objects untouched', async (t) => {
  const { h, p, live, test, mailbox } = await setup(t);
  const clock = (await test.post('/v1/test_clocks', { frozen_time: '2030-01-01T00:00:00Z' })).body;
  await testCredit(h, p, 2000);
  const box = await mailbox(test, 'rinnovo', await test.customer());
  const addon = await test.post(`/v1/mailboxes/${box.id}/addons`, { kind: 'extra_inbox_gb', quantity: 1 });
  t.equal(addon.status, 201);
  const balance = await test.balance();

  // A live mailbox of the same partner that expires on the same (real) date as the test one.
  h.clock.set('2030-01-01T00:00:00Z');
  await live.topUp(1000);
  const liveBox = await mailbox(live, 'rinnovo', await live.customer());
  t.equal(liveBox.expires_at, '2031-01-01T00:00:00.000Z');

  // Backwards, still, or more than two years: refused.
  for (const to of ['2029-12-31T00:00:00Z', '2030-01-01T00:00:00Z', '2032-01-01T00:00:00.001Z']) {
    const refused = await test.post(`/v1/test_clocks/${clock.id}/advance`, { frozen_time: to });
    t.equal(refused.status, 400, to);
    t.equal(refused.body.errors[0].pointer, '/frozen_time');
  }

  const since = await mark(h);
  const started = await test.post(`/v1/test_clocks/${clock.id}/advance`, { frozen_time: '2031-01-02T00:00:00Z' });
  t.match(started.body, { status: 'advancing', frozen_time: '2030-01-01T00:00:00.000Z', advancing_to: '2031-01-02T00:00:00.000Z', livemode: false });
  const busy = await test.post(`/v1/test_clocks/${clock.id}/advance`, { frozen_time: '2031-02-01T00:00:00Z' });
  t.equal(busy.status, 409);
  t.equal(busy.body.code, 'test_clock_advancing');
  await h.app.testClocks.drain();
  t.strictSame((await test.get(`/v1/test_clocks/${clock.id}`)).body, {
    ...clock, status: 'ready', frozen_time: '2031-01-02T00:00:00.000Z', advancing_to: null,
  });

  const renewed = (await test.get(`/v1/mailboxes/${box.id}`)).body;
  t.match(renewed, { status: 'active', expires_at: '2032-01-01T00:00:00.000Z' });
  t.same((await test.get(`/v1/mailboxes/${box.id}/notices`)).body.data.map((n: { kind: string; created_at: string }) => [n.kind, n.created_at]), [
    ['expires_in_30_days', '2030-12-02T00:00:00.000Z'],
    ['expires_in_7_days', '2030-12-25T00:00:00.000Z'],
    ['expires_in_1_day', '2030-12-31T00:00:00.000Z'],
  ], 'each notice at its own instant');
  const charges = (await test.ledger()).filter((e) => e.type === 'charge').slice(0, 2);
  t.same(charges.map((e) => e.item?.id).sort(), [addon.body.id, box.id].sort(), 'the mailbox and its add-on renewed');
  t.ok(await test.balance() < balance);
  t.same(await eventTypesAfter(h, p.test.id, since), [
    'test_clock.advancing',
    'mailbox.expiring', 'mailbox.expiring', 'mailbox.expiring',
    'credit.charged', 'credit.charged', 'mailbox_addon.renewed', 'mailbox.renewed',
    'test_clock.ready',
  ]);
  t.same(await eventTypesAfter(h, p.id, since), [], 'nothing in the live world');
  t.match((await live.get(`/v1/mailboxes/${liveBox.id}`)).body, { status: 'active', expires_at: '2031-01-01T00:00:00.000Z' });
  t.same((await live.get(`/v1/mailboxes/${liveBox.id}/notices`)).body.data, []);
});

t.test('without test credit: suspended at expiry, expired after the grace period', async (t) => {
  const { h, p, test, advance, mailbox } = await setup(t);
  const clock = (await test.post('/v1/test_clocks', { frozen_time: '2030-01-01T00:00:00Z' })).body;
  await testCredit(h, p, 500);
  const box = await mailbox(test, 'povero', await test.customer());
  t.equal(await test.balance(), 0);

  await advance(clock.id, '2031-01-05T00:00:00Z');
  t.match((await test.get(`/v1/mailboxes/${box.id}`)).body, {
    status: 'suspended', suspension_reason: 'insufficient_credit', suspended_at: '2031-01-01T00:00:00.000Z', expires_at: '2031-01-01T00:00:00.000Z',
  });
  await advance(clock.id, '2031-03-01T00:00:00Z');
  t.match((await test.get(`/v1/mailboxes/${box.id}`)).body, { status: 'expired', expired_at: '2031-01-31T00:00:00.000Z', suspension_reason: null });
});

t.test('the scheduled run leaves a clocked world alone; the advance does its work', async (t) => {
  const { h, p, live, test, advance, mailbox } = await setup(t);
  const clock = (await test.post('/v1/test_clocks', {})).body;
  t.equal(clock.frozen_time, '2026-11-22T09:00:00.000Z', 'default: now');
  await testCredit(h, p, 1500);
  await live.topUp(1000);
  const testBox = await mailbox(test, 'ferma', await test.customer());
  const liveBox = await mailbox(live, 'ferma', await live.customer());
  t.equal(testBox.expires_at, liveBox.expires_at);

  h.clock.set('2027-11-23T09:00:00Z');
  await h.app.jobs.tick();
  // The scheduled run is a day late for the live mailbox: renewed from the day it ran.
  t.equal((await live.get(`/v1/mailboxes/${liveBox.id}`)).body.expires_at, '2028-11-23T09:00:00.000Z', 'live renewed by the scheduled run');
  t.equal((await test.get(`/v1/mailboxes/${testBox.id}`)).body.expires_at, '2027-11-22T09:00:00.000Z', 'the clocked world is not');
  t.same((await test.get(`/v1/mailboxes/${testBox.id}/notices`)).body.data, []);

  // The advance runs the renewal at the instant of expiry.
  await advance(clock.id, '2027-11-23T09:00:00Z');
  t.equal((await test.get(`/v1/mailboxes/${testBox.id}`)).body.expires_at, '2028-11-22T09:00:00.000Z');

  // Without a clock the world is maintained by the scheduled run again.
  await test.del(`/v1/test_clocks/${clock.id}`);
  h.clock.set('2028-11-23T09:00:00Z');
  await h.app.jobs.tick();
  t.equal((await test.get(`/v1/mailboxes/${testBox.id}`)).body.expires_at, '2029-11-23T09:00:00.000Z');
});

t.test("advancing brings the world's pending PEC timers closer by as much; other worlds' stay", async (t) => {
  const { h, p, live, test, advance, mailbox } = await setup(t);
  const clock = (await test.post('/v1/test_clocks', {})).body;
  await testCredit(h, p, 1000);
  await live.topUp(1000);
  const testBox = await mailbox(test, 'timer', await test.customer());
  const liveBox = await mailbox(live, 'timer', await live.customer());
  const now = h.clock.now();
  // Fixtures: one accepted message per world with its 12 h and 24 h timers, as dispatch queues them.
  for (const [partnerId, box, tag] of [[p.test.id, testBox, 'test'], [p.id, liveBox, 'live']] as const) {
    await h.database.db.insert(pecTransactions).values({
      id: `ptx_${tag}`, partnerId, mailboxId: box.id, pecMessageId: `opec.${tag}@pec.example.it`, sender: 'timer@pec.example.it', subject: 'x',
      receiptType: 'completa', status: 'accepted', sizeBytes: 1, submittedAt: now,
    });
    await h.database.db.insert(pecJobs).values([
      { kind: 'timer', payload: { transaction: `ptx_${tag}`, stage: '12h' }, dedupeKey: `timer12:ptx_${tag}`, runAt: new Date(now.getTime() + 12 * HOURS), createdAt: now },
      { kind: 'timer', payload: { transaction: `ptx_${tag}`, stage: '24h' }, dedupeKey: `timer24:ptx_${tag}`, runAt: new Date(now.getTime() + 24 * HOURS), createdAt: now },
    ]);
  }
  const runAt = async (key: string) => (await h.database.db.select({ runAt: pecJobs.runAt }).from(pecJobs).where(eq(pecJobs.dedupeKey, key)))[0]!.runAt.toISOString();

  await advance(clock.id, new Date(now.getTime() + 13 * HOURS).toISOString());
  t.equal(await runAt('timer12:ptx_test'), new Date(now.getTime() - 1 * HOURS).toISOString(), 'the 12 h timer is due');
  t.equal(await runAt('timer24:ptx_test'), new Date(now.getTime() + 11 * HOURS).toISOString(), 'the 24 h timer 13 h closer');
  t.equal(await runAt('timer12:ptx_live'), new Date(now.getTime() + 12 * HOURS).toISOString());
  t.equal(await runAt('timer24:ptx_live'), new Date(now.getTime() + 24 * HOURS).toISOString());

  await advance(clock.id, new Date(now.getTime() + 2 * DAYS).toISOString());
  t.equal(await runAt('timer12:ptx_test'), new Date(now.getTime() - 1 * HOURS).toISOString(), 'a due job is not moved again');
  t.equal(await runAt('timer24:ptx_test'), new Date(now.getTime() - 24 * HOURS).toISOString());
});

t.test('an advance cut off mid-way resumes from its last step', async (t) => {
  const { h, p, test, mailbox } = await setup(t);
  const clock = (await test.post('/v1/test_clocks', { frozen_time: '2030-01-01T00:00:00Z' })).body;
  await testCredit(h, p, 1000);
  const box = await mailbox(test, 'ripresa', await test.customer());
  // The process that accepted the advance "died" before it ran anything: the clock is left advancing.
  const { testClocks } = await import('@pec-partner/db');
  await h.database.db.update(testClocks).set({ status: 'advancing', advancingTo: new Date('2031-01-02T00:00:00Z') }).where(eq(testClocks.id, clock.id));
  h.clock.advance(2 * 60_000);
  await h.app.jobs.tick();
  await h.app.testClocks.drain();
  t.match((await test.get(`/v1/test_clocks/${clock.id}`)).body, { status: 'ready', frozen_time: '2031-01-02T00:00:00.000Z' });
  t.equal((await test.get(`/v1/mailboxes/${box.id}`)).body.expires_at, '2032-01-01T00:00:00.000Z');
});

t.test("invitations live on the world's clock: accepted at its time, expired by its advance", async (t) => {
  const { h, p, test, advance, mailbox } = await setup(t);
  // A clock behind real time: by real time these invitations would have run out already.
  const clock = (await test.post('/v1/test_clocks', { frozen_time: '2026-01-01T00:00:00Z' })).body;
  await testCredit(h, p, 5000);
  const box = await mailbox(test, 'delega', await test.customer(), { plan: 'pro' });
  t.equal((await test.post(`/v1/mailboxes/${box.id}/addons`, { kind: 'delegation_seat', quantity: 1 })).status, 201);
  const invite = async (email: string) => {
    const invited = await test.post(`/v1/mailboxes/${box.id}/delegations`, { email, mode: 'read_only' });
    if (invited.status !== 201) throw new Error(JSON.stringify(invited.body));
    return invited.body as { id: string; invitation: { token: string; expires_at: string } };
  };
  const first = await invite('anna@example.com');
  const second = await invite('bruno@example.com');
  t.equal(first.invitation.expires_at, '2026-01-08T00:00:00.000Z');
  const accepted = await h.app.inject({ method: 'POST', url: '/v1/delegation-invitations/accept', payload: { token: first.invitation.token, password: 'anna-secret-2026' } });
  t.equal(accepted.statusCode, 200, accepted.body);
  t.equal(JSON.parse(accepted.body).accepted_at, '2026-01-01T00:00:00.000Z');

  await advance(clock.id, '2026-01-09T00:00:00Z');
  t.match((await test.get(`/v1/mailboxes/${box.id}/delegations/${second.id}`)).body, { status: 'expired', updated_at: '2026-01-08T00:00:00.000Z' });
  t.equal((await test.get(`/v1/mailboxes/${box.id}/delegations/${first.id}`)).body.status, 'active');
});
