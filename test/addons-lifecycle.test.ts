import { and, asc, eq, gt, max, sql } from 'drizzle-orm';
import t, { type Test } from 'tap';
import { events } from '@pec-partner/db';
import { API_VERSION } from '../api/src/events/catalogue.ts';
import { toEventView, type RecordedEvent } from '../api/src/events/record.ts';
import { asShown } from './helpers/events.ts';
import { api } from './helpers/fixtures.ts';
import { DAYS, harness, type Harness } from './helpers/harness.ts';

const GB = 1024 ** 3;
const TERM_END = '2027-11-22T09:00:00.000Z';

/** The last event written so far (any partner): later events are the ones a step caused. */
async function mark(h: Harness): Promise<number> {
  const [row] = await h.database.db.select({ seq: max(events.seq) }).from(events);
  return row?.seq ?? 0;
}

/** The partner's events written after `since`, oldest first, as the API and webhooks show them. */
async function eventsAfter(h: Harness, partnerId: string, since: number): Promise<RecordedEvent[]> {
  const rows = await h.database.db.select().from(events).where(and(eq(events.partnerId, partnerId), gt(events.seq, since))).orderBy(asc(events.seq));
  return rows.map((row) => asShown(toEventView({ ...row, data: row.data as RecordedEvent['data'] })));
}

/** The whole event, exactly. */
function expectEvent(t: Test, h: Harness, event: RecordedEvent | undefined, expected: { type: string; object: unknown; previous?: unknown; request: string | null }, label: string): void {
  t.strictSame(event, {
    id: event?.id,
    object: 'event', livemode: true,
    type: expected.type,
    api_version: API_VERSION,
    created_at: h.clock.now().toISOString(),
    data: expected.previous ? { object: expected.object, previous_attributes: expected.previous } : { object: expected.object },
    request: { id: expected.request, idempotency_key: null },
  }, label);
}

const quotas = (inbox: [number, number], archive: [number, number], usedInbox = 0) => ({
  inbox: { base_bytes: inbox[0] * GB, extra_bytes: inbox[1] * GB, total_bytes: (inbox[0] + inbox[1]) * GB, used_bytes: usedInbox },
  archive: { base_bytes: archive[0] * GB, extra_bytes: archive[1] * GB, total_bytes: (archive[0] + archive[1]) * GB, used_bytes: 0 },
});

async function setup(t: Test) {
  const h = await harness(t);
  const p = await h.partner();
  const a = api(h, p);
  await a.topUp(100_000);
  const customer = await a.customer();
  const open = async (local: string, extra: Record<string, unknown> = {}, owner = customer) => {
    const created = await a.post('/v1/mailboxes', { local_part: local, domain: 'pec.example.it', customer: owner, plan: 'pro', password: `${local}-password-2026`, ...extra });
    if (created.status !== 201) throw new Error(JSON.stringify(created.body));
    return created.body as { id: string; address: string; expires_at: string | null; status: string };
  };
  const buy = async (mailboxId: string, kind: string, quantity = 1, when = 'now') => {
    const bought = await a.post(`/v1/mailboxes/${mailboxId}/addons`, { kind, quantity, when });
    if (bought.status !== 201) throw new Error(JSON.stringify(bought.body));
    return bought.body as { id: string };
  };
  /** Invites, and with `accept` accepts: returns the delegation id and the collaborator's credentials. */
  const delegate = async (mailboxId: string, email: string, accept: boolean) => {
    const invited = await a.post(`/v1/mailboxes/${mailboxId}/delegations`, { email, mode: 'full_access' });
    if (invited.status !== 201) throw new Error(JSON.stringify(invited.body));
    const password = `${email.split('@')[0]}-secret-2026`;
    if (accept) {
      const accepted = await h.app.inject({ method: 'POST', url: '/v1/delegation-invitations/accept', payload: { token: invited.body.invitation.token, password } });
      if (accepted.statusCode !== 200) throw new Error(accepted.body);
    }
    return { id: invited.body.id as string, email, password };
  };
  const addon = async (mailboxId: string, id: string) =>
    ((await a.get(`/v1/mailboxes/${mailboxId}/addons?limit=100`)).body.data as Array<{ id: string }>).find((x) => x.id === id);
  const delegation = async (mailboxId: string, id: string) => (await a.get(`/v1/mailboxes/${mailboxId}/delegations/${id}`)).body;
  const mailbox = async (id: string) => (await a.get(`/v1/mailboxes/${id}`)).body;
  const signIn = async (mailboxId: string, user: string, password: string) =>
    (await h.app.inject({ method: 'GET', url: `/v1/mailboxes/${mailboxId}/messages`, headers: { authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` } })).statusCode;
  return { h, p, a, customer, open, buy, delegate, addon, delegation, mailbox, signIn };
}

const activeAddonBefore = { status: 'active', renews: true, current_period_end: TERM_END, cancelled_at: null };

t.test('a mailbox that ends takes its add-ons and delegations with it: cancelled now, by the daily job, expired; never-activated ones are refunded in full', async (t) => {
  const { h, p, a, open, buy, delegate, addon, delegation, mailbox, signIn } = await setup(t);
  const studio = await open('studio');
  const archivio = await open('archivio');
  const scaduta = await open('scaduta', { renewal_mode: 'manual' });
  t.equal(studio.expires_at, TERM_END);

  // 73 days in, 80 % of the term is left: 2 GB inbox 480, newsletter 2880, one seat 800, 1 GB archive 120, 1 GB inbox 240.
  h.clock.advance(73 * DAYS);
  const inbox = await buy(studio.id, 'extra_inbox_gb', 2);
  const newsletter = await buy(studio.id, 'newsletter');
  const seat = await buy(studio.id, 'delegation_seat');
  const scheduled = await buy(studio.id, 'extra_archive_gb', 1, 'renewal');
  const giulia = await delegate(studio.id, 'giulia@studio.example', true);
  const marco = await delegate(studio.id, 'marco@studio.example', false);
  const archive = await buy(archivio.id, 'extra_archive_gb');
  const paolo = await delegate(archivio.id, 'paolo@studio.example', true);
  t.equal((await a.post(`/v1/mailboxes/${archivio.id}/cancel`, { when: 'term_end' })).status, 200);
  const space = await buy(scaduta.id, 'extra_inbox_gb');
  const sara = await delegate(scaduta.id, 'sara@studio.example', true);
  t.equal(await a.balance(), 100_000 - 3 * 2500 - 480 - 2880 - 800 - 120 - 240);
  t.equal(await signIn(studio.id, giulia.email, giulia.password), 200, 'the collaborator signs in while the mailbox lives');

  await t.test('cancelled now: add-ons end unrefunded, delegations are revoked, the mailbox event carries the quotas without them', async (t) => {
    h.clock.advance(DAYS);
    const balance = await a.balance();
    const ledgerSize = (await a.ledger()).length;
    const before = await mailbox(studio.id);
    const since = await mark(h);
    const cancelled = await a.post(`/v1/mailboxes/${studio.id}/cancel`, { when: 'now' });
    t.equal(cancelled.status, 200);
    const request = cancelled.headers['request-id'] as string;
    t.equal(await a.balance(), balance, 'cancelling an active mailbox refunds neither its term nor its add-ons');
    t.equal((await a.ledger()).length, ledgerSize);

    const seen = await eventsAfter(h, p.id, since);
    t.same(seen.map((e) => [e.type, e.data.object.id]), [
      ['delegation.revoked', giulia.id], ['delegation.revoked', marco.id],
      ['mailbox_addon.cancelled', inbox.id], ['mailbox_addon.cancelled', newsletter.id], ['mailbox_addon.cancelled', seat.id], ['mailbox_addon.cancelled', scheduled.id],
      ['mailbox.cancelled', studio.id],
    ]);
    expectEvent(t, h, seen[0], { type: 'delegation.revoked', object: await delegation(studio.id, giulia.id), previous: { status: 'active', revoked_at: null, updated_at: '2027-02-03T09:00:00.000Z' }, request }, 'active delegation revoked');
    expectEvent(t, h, seen[1], { type: 'delegation.revoked', object: await delegation(studio.id, marco.id), previous: { status: 'invited', revoked_at: null, updated_at: '2027-02-03T09:00:00.000Z' }, request }, 'invitation revoked');
    t.match(seen[1]!.data.object, { status: 'revoked', revoked_at: '2027-02-04T09:00:00.000Z' });
    for (const [index, id] of [[2, inbox.id], [3, newsletter.id], [4, seat.id]] as const) {
      expectEvent(t, h, seen[index], { type: 'mailbox_addon.cancelled', object: await addon(studio.id, id), previous: activeAddonBefore, request }, `active add-on ${id} ended`);
    }
    expectEvent(t, h, seen[5], { type: 'mailbox_addon.cancelled', object: await addon(studio.id, scheduled.id), previous: { status: 'scheduled', renews: true, cancelled_at: null }, request }, 'scheduled add-on ended');
    t.match(seen[5]!.data.object, { status: 'cancelled', renews: false, starts_at: null, current_period_end: null, cancelled_at: '2027-02-04T09:00:00.000Z' });
    const after = await mailbox(studio.id);
    t.strictSame(after.quotas, quotas([2, 0], [3, 0]));
    expectEvent(t, h, seen[6], {
      type: 'mailbox.cancelled', object: after, request,
      previous: { status: 'active', quotas: quotas([2, 2], [3, 0]), cancelled_at: null, updated_at: before.updated_at },
    }, 'mailbox cancelled');
    t.equal(before.updated_at, '2027-02-03T09:00:00.000Z', 'the space purchase was the last change of the mailbox');

    const listed = (await a.get(`/v1/mailboxes/${studio.id}/addons`)).body.data as Array<{ status: string; renews: boolean }>;
    t.same(listed.map((x) => [x.status, x.renews]), [['cancelled', false], ['cancelled', false], ['cancelled', false], ['cancelled', false]]);
    t.same((await a.get(`/v1/mailboxes/${studio.id}/delegations`)).body.data.map((d: { status: string }) => d.status), ['revoked', 'revoked']);
    t.equal(await signIn(studio.id, giulia.email, giulia.password), 401, 'the collaborator signs in no more');
    const byApi = (await a.get(`/v1/events?object_id=${inbox.id}`)).body.data as RecordedEvent[];
    t.same(byApi.map((e) => e.type), ['mailbox_addon.cancelled', 'mailbox_addon.created']);
    t.strictSame(byApi[0], seen[2]);
  });

  await t.test('never activated: add-ons and delegations cannot exist, so the full refund is the mailbox term alone', async (t) => {
    const waiting = await open('attesa', {}, await a.customer(false));
    t.equal(waiting.status, 'pending_identification');
    const balance = await a.balance();
    t.match((await a.post(`/v1/mailboxes/${waiting.id}/addons`, { kind: 'extra_inbox_gb', quantity: 1 })).body, { status: 409, code: 'mailbox_not_active' });
    t.match((await a.post(`/v1/mailboxes/${waiting.id}/delegations`, { email: 'x@studio.example', mode: 'read_only' })).body, { status: 409, code: 'mailbox_not_active' });
    t.equal(await a.balance(), balance);
    const since = await mark(h);
    const cancelled = await a.post(`/v1/mailboxes/${waiting.id}/cancel`, { when: 'now' });
    t.equal(cancelled.status, 200);
    t.equal(await a.balance(), balance + 2500);
    const seen = await eventsAfter(h, p.id, since);
    t.same(seen.map((e) => e.type), ['credit.refunded', 'mailbox.cancelled']);
    t.match(seen[0]!.data.object, { object: 'ledger_entry', livemode: true, type: 'refund', amount: 2500, item: { type: 'mailbox', id: waiting.id } });
    expectEvent(t, h, seen[1], { type: 'mailbox.cancelled', object: await mailbox(waiting.id), previous: { status: 'pending_identification', cancelled_at: null }, request: cancelled.headers['request-id'] as string }, 'pending mailbox cancelled');
  });

  await t.test('cancelled at the end of the term by the daily job', async (t) => {
    const balance = await a.balance();
    const before = await mailbox(archivio.id);
    h.clock.set(TERM_END);
    const since = await mark(h);
    await h.app.jobs.tick();
    const seen = await eventsAfter(h, p.id, since);
    t.same(seen.map((e) => [e.type, e.data.object.id]), [
      ['delegation.revoked', paolo.id], ['mailbox_addon.cancelled', archive.id], ['mailbox.cancelled', archivio.id],
    ], 'the manual mailbox in its grace period changes nothing yet');
    expectEvent(t, h, seen[0], { type: 'delegation.revoked', object: await delegation(archivio.id, paolo.id), previous: { status: 'active', revoked_at: null, updated_at: '2027-02-03T09:00:00.000Z' }, request: null }, 'revoked by the job');
    expectEvent(t, h, seen[1], { type: 'mailbox_addon.cancelled', object: await addon(archivio.id, archive.id), previous: activeAddonBefore, request: null }, 'ended by the job');
    expectEvent(t, h, seen[2], {
      type: 'mailbox.cancelled', object: await mailbox(archivio.id), request: null,
      previous: { status: 'active', quotas: quotas([2, 0], [3, 1]), cancel_at: TERM_END, cancelled_at: null, updated_at: before.updated_at },
    }, 'cancelled by the job');
    t.equal(await a.balance(), balance);
    t.equal(await signIn(archivio.id, paolo.email, paolo.password), 401);
  });

  await t.test('expired after the grace period', async (t) => {
    const before = await mailbox(scaduta.id);
    t.equal(before.status, 'active');
    h.clock.advance(30 * DAYS);
    const since = await mark(h);
    await h.app.jobs.tick();
    const seen = await eventsAfter(h, p.id, since);
    t.same(seen.map((e) => [e.type, e.data.object.id]), [['delegation.revoked', sara.id], ['mailbox_addon.cancelled', space.id], ['mailbox.expired', scaduta.id]]);
    expectEvent(t, h, seen[0], { type: 'delegation.revoked', object: await delegation(scaduta.id, sara.id), previous: { status: 'active', revoked_at: null, updated_at: '2027-02-03T09:00:00.000Z' }, request: null }, 'revoked at expiry');
    expectEvent(t, h, seen[1], { type: 'mailbox_addon.cancelled', object: await addon(scaduta.id, space.id), previous: activeAddonBefore, request: null }, 'ended at expiry');
    expectEvent(t, h, seen[2], {
      type: 'mailbox.expired', object: await mailbox(scaduta.id), request: null,
      previous: { status: 'active', quotas: quotas([2, 1], [3, 0]), expired_at: null, updated_at: before.updated_at },
    }, 'expired');
    t.equal(await signIn(scaduta.id, sara.email, sara.password), 401);
    // Renewed after expiry, it starts again without the add-ons that ended with it.
    const renewed = await a.post(`/v1/mailboxes/${scaduta.id}/renew`, { years: 1 });
    t.match(renewed.body, { status: 'active', quotas: quotas([2, 0], [3, 0]) });
  });
});

t.test('space add-ons bought or cancelled change the quotas with a mailbox.updated; at the renewal mailbox.renewed carries them', async (t) => {
  const { h, p, a, open, buy, addon, mailbox } = await setup(t);
  const mbx = await open('quote', { renewal_mode: 'manual' });
  h.clock.advance(73 * DAYS);

  let since = await mark(h);
  const bought = await a.post(`/v1/mailboxes/${mbx.id}/addons`, { kind: 'extra_inbox_gb', quantity: 4 });
  let request = bought.headers['request-id'] as string;
  let seen = await eventsAfter(h, p.id, since);
  t.same(seen.map((e) => e.type), ['mailbox_addon.created', 'credit.charged', 'mailbox.updated']);
  t.match(seen[1]!.data.object, { amount: -960, item: { type: 'mailbox_addon', id: bought.body.id } });
  const afterPurchase = await mailbox(mbx.id);
  t.strictSame(afterPurchase.quotas, quotas([2, 4], [3, 0]));
  expectEvent(t, h, seen[2], { type: 'mailbox.updated', object: afterPurchase, previous: { quotas: quotas([2, 0], [3, 0]), updated_at: '2026-11-22T09:00:00.000Z' }, request }, 'space bought');

  since = await mark(h);
  const newsletter = await buy(mbx.id, 'newsletter');
  t.same((await eventsAfter(h, p.id, since)).map((e) => e.type), ['mailbox_addon.created', 'credit.charged'], 'no quota changes: no mailbox event');
  t.strictSame(await mailbox(mbx.id), afterPurchase, 'and the mailbox is untouched');

  h.clock.advance(DAYS);
  since = await mark(h);
  const cancelled = await a.post(`/v1/mailboxes/${mbx.id}/addons/${bought.body.id}/cancel`, { when: 'now' });
  request = cancelled.headers['request-id'] as string;
  seen = await eventsAfter(h, p.id, since);
  t.same(seen.map((e) => e.type), ['mailbox_addon.cancelled', 'credit.refunded', 'mailbox.updated']);
  t.match(seen[1]!.data.object, { amount: 957, item: { type: 'mailbox_addon', id: bought.body.id } }, '1200 × 291/365');
  expectEvent(t, h, seen[0], { type: 'mailbox_addon.cancelled', object: await addon(mbx.id, bought.body.id), previous: activeAddonBefore, request }, 'space cancelled');
  expectEvent(t, h, seen[2], { type: 'mailbox.updated', object: await mailbox(mbx.id), previous: { quotas: quotas([2, 4], [3, 0]), updated_at: '2027-02-03T09:00:00.000Z' }, request }, 'space given back');

  // Bought for the renewal: no quota changes until then.
  since = await mark(h);
  const archive = await buy(mbx.id, 'extra_archive_gb', 2, 'renewal');
  t.same((await eventsAfter(h, p.id, since)).map((e) => e.type), ['mailbox_addon.created']);

  h.clock.advance(3_600_000);
  since = await mark(h);
  const renewal = await a.post(`/v1/mailboxes/${mbx.id}/renew`, { years: 1 });
  t.equal(renewal.status, 200);
  seen = await eventsAfter(h, p.id, since);
  t.same(seen.map((e) => [e.type, e.data.object.id === mbx.id || e.data.object.id === newsletter.id || e.data.object.id === archive.id ? e.data.object.id : e.data.object.object]), [
    ['credit.charged', 'ledger_entry'], ['credit.charged', 'ledger_entry'], ['mailbox_addon.renewed', newsletter.id],
    ['credit.charged', 'ledger_entry'], ['mailbox_addon.activated', archive.id], ['mailbox.renewed', mbx.id],
  ], 'one mailbox event for the renewal, none for its quotas alone');
  const renewed = await mailbox(mbx.id);
  t.strictSame(renewed.quotas, quotas([2, 0], [3, 2]));
  expectEvent(t, h, seen[5], {
    type: 'mailbox.renewed', object: renewed, request: renewal.headers['request-id'] as string,
    previous: { quotas: quotas([2, 0], [3, 0]), expires_at: TERM_END, updated_at: '2027-02-04T09:00:00.000Z' },
  }, 'renewed with the new space');
  t.equal(renewed.expires_at, '2028-11-22T09:00:00.000Z');
});

t.test('seats and space cannot be given back below what is in use, now or at the renewal', async (t) => {
  const { h, p, a, open, buy, delegate, addon } = await setup(t);

  await t.test('delegation seats', async (t) => {
    const alice = await open('alice'); // pro: one seat included
    const pack = await buy(alice.id, 'delegation_seat', 2);
    await delegate(alice.id, 'giulia@studio.example', true);
    await delegate(alice.id, 'marco@studio.example', false);
    const luca = await delegate(alice.id, 'luca@studio.example', false);
    const balance = await a.balance();
    const cancel = (when: string) => a.post(`/v1/mailboxes/${alice.id}/addons/${pack.id}/cancel`, { when });

    let since = await mark(h);
    const refusedNow = await cancel('now');
    t.strictSame(refusedNow.body, {
      type: 'urn:pec-partner:problem:delegations_over_limit', title: 'Conflict', status: 409, code: 'delegations_over_limit',
      detail: `Without add-on '${pack.id}' mailbox alice@pec.example.it has 1 delegate seat, but 3 delegations are live (1 active, 2 invited): revoke 2 delegations first.`,
      request_id: refusedNow.headers['request-id'], seats: 1, delegations: 3, must_revoke: 2,
    });
    t.match((await cancel('renewal')).body, {
      status: 409, code: 'delegations_over_limit', seats: 1, delegations: 3, must_revoke: 2,
      detail: `Without add-on '${pack.id}' mailbox alice@pec.example.it has 1 delegate seat from the renewal on, but 3 delegations are live (1 active, 2 invited): revoke 2 delegations first.`,
    });
    t.match(await addon(alice.id, pack.id), { status: 'active', renews: true });
    t.equal(await a.balance(), balance);
    t.same(await eventsAfter(h, p.id, since), [], 'refusals change and report nothing');

    t.equal((await a.post(`/v1/mailboxes/${alice.id}/delegations/${luca.id}/revoke`)).status, 200);
    t.match((await cancel('renewal')).body, { status: 409, code: 'delegations_over_limit', delegations: 2, must_revoke: 1, detail: /\(1 active, 1 invited\): revoke 1 delegation first\.$/ });

    // Marco's invitation runs out: it holds no seat, and the pack may end at the renewal.
    h.clock.advance(7 * DAYS + 1000);
    since = await mark(h);
    const scheduled = await cancel('renewal');
    t.equal(scheduled.status, 200);
    t.match(scheduled.body, { status: 'active', renews: false });
    t.same((await eventsAfter(h, p.id, since)).map((e) => e.type), ['mailbox_addon.updated']);

    // Until the renewal three seats remain, but a new collaborator would be one too many from then on.
    const refusedInvite = await a.post(`/v1/mailboxes/${alice.id}/delegations`, { email: 'anna@studio.example', mode: 'read_only' });
    t.match(refusedInvite.body, {
      status: 409, code: 'delegate_seats_exhausted', seats: 1, included: 1, purchased: 2, seats_at_renewal: 1, used: 1,
      detail: 'Mailbox alice@pec.example.it has 3 delegate seats now (1 included in the plan, 2 purchased) but 1 from the renewal on ' +
        '(seats cancelled for the renewal, or a smaller plan), and 1 is taken (1 active, 0 invited). ' +
        'Keep the delegation_seat add-ons for the renewal, buy more, or revoke a delegation.',
    });
    t.equal((await a.del(`/v1/mailboxes/${alice.id}/addons/${pack.id}/cancellation`)).status, 200);
    t.equal((await a.post(`/v1/mailboxes/${alice.id}/delegations`, { email: 'anna@studio.example', mode: 'read_only' })).status, 201);

    // A second pack of one: the first may go (1 + 1 seats for 2 delegations), then the second may not.
    const single = await buy(alice.id, 'delegation_seat', 1);
    t.match((await cancel('now')).body, { status: 'cancelled', renews: false });
    t.match((await a.post(`/v1/mailboxes/${alice.id}/addons/${single.id}/cancel`, { when: 'now' })).body, {
      status: 409, code: 'delegations_over_limit', seats: 1, delegations: 2, must_revoke: 1,
    });
  });

  await t.test('space', async (t) => {
    const bob = await open('bob'); // pro: 2 GB of inbox included
    const a3 = await buy(bob.id, 'extra_inbox_gb', 3);
    await h.database.db.execute(sql`update mailboxes set used_inbox_bytes = ${4 * GB} where id = ${bob.id}`);
    const cancel = (id: string, when: string) => a.post(`/v1/mailboxes/${bob.id}/addons/${id}/cancel`, { when });

    t.match((await cancel(a3.id, 'now')).body, {
      status: 409, code: 'quota_below_usage', used_bytes: 4 * GB, total_bytes: 2 * GB,
      detail: 'The mailbox already uses 4294967296 bytes of inbox space, more than the 2 GB it would have.',
    });
    t.match((await cancel(a3.id, 'renewal')).body, {
      status: 409, code: 'quota_below_usage', used_bytes: 4 * GB, total_bytes: 2 * GB,
      detail: 'The mailbox already uses 4294967296 bytes of inbox space, more than the 2 GB it would have from the renewal.',
    });
    // 2 GB bought for the renewal: 2 + 2 GB from then on hold the 4 GB in use exactly.
    const b2 = await buy(bob.id, 'extra_inbox_gb', 2, 'renewal');
    t.match((await cancel(a3.id, 'renewal')).body, { status: 'active', renews: false });
    t.match((await cancel(b2.id, 'now')).body, { status: 409, code: 'quota_below_usage', total_bytes: 2 * GB, detail: /from the renewal\.$/ });
    t.equal((await a.del(`/v1/mailboxes/${bob.id}/addons/${a3.id}/cancellation`)).status, 200);
    const balance = await a.balance();
    t.match((await cancel(b2.id, 'now')).body, { status: 'cancelled' });
    t.equal(await a.balance(), balance, 'a scheduled add-on was never charged: nothing to refund');
    t.match((await a.get(`/v1/mailboxes/${bob.id}`)).body.quotas.inbox, { extra_bytes: 3 * GB, total_bytes: 5 * GB, used_bytes: 4 * GB });
  });
});

t.test('a plan change may not leave the mailbox over the new plan\'s limits, now or from the renewal on; refusals charge and report nothing', async (t) => {
  const { h, p, a, open, buy, delegate, addon, mailbox } = await setup(t);
  const big = await open('grande');
  const full = await open('piena');
  const team = await open('team'); // Pro: one seat included; Standard: none
  const small = await open('piccola', { plan: 'standard' });
  h.clock.advance(73 * DAYS); // 292 of 365 days left: Pro ↔ Standard is 2000 × 0.8, an add-on GB 300 × 0.8
  const changePlan = (id: string, plan: string, when: string) => a.post(`/v1/mailboxes/${id}/change-plan`, { plan, when });

  /** The exact 409, with balance, ledger, mailbox, add-ons and events as they were. */
  const refused = async (t: Test, mailboxId: string, call: () => Promise<{ body: unknown; headers: Record<string, unknown> }>, problem: Record<string, unknown> & { code: string }) => {
    const before = {
      balance: await a.balance(), ledger: await a.ledger(), mailbox: await mailbox(mailboxId),
      addons: (await a.get(`/v1/mailboxes/${mailboxId}/addons?limit=100`)).body.data,
    };
    const since = await mark(h);
    const response = await call();
    t.strictSame(response.body, { type: `urn:pec-partner:problem:${problem.code}`, title: 'Conflict', status: 409, ...problem, request_id: response.headers['request-id'] });
    t.equal(await a.balance(), before.balance, 'nothing charged or refunded');
    t.strictSame(await a.ledger(), before.ledger);
    t.strictSame(await mailbox(mailboxId), before.mailbox, 'the mailbox is unchanged');
    t.strictSame((await a.get(`/v1/mailboxes/${mailboxId}/addons?limit=100`)).body.data, before.addons);
    t.strictSame(await eventsAfter(h, p.id, since), [], 'nothing reported');
  };
  /** An accepted change: its events, in order. */
  const accepted = async (t: Test, call: () => Promise<{ status: number; body: Record<string, unknown> }>) => {
    const since = await mark(h);
    const response = await call();
    t.equal(response.status, 200);
    return { body: response.body, types: (await eventsAfter(h, p.id, since)).map((e) => e.type) };
  };

  await t.test('space add-ons above the new plan\'s maximum: addons_exceed_plan until they are cancelled', async (t) => {
    const eight = await buy(big.id, 'extra_inbox_gb', 8);
    const four = await buy(big.id, 'extra_inbox_gb', 4);
    const exceeds = (subject: string, addons: string[], extraGb: number, renewal: boolean) => ({
      code: 'addons_exceed_plan',
      detail: `${subject}: the standard plan allows at most 9 GB of extra inbox space (10 GB in all, 1 GB included), ` +
        `but extra_inbox_gb add-ons ${addons.join(', ')} give ${extraGb} GB${renewal ? ' from the renewal on' : ''}. Cancel them, or replace them with at most 9 GB, first.`,
      plan: 'standard', kind: 'extra_inbox_gb', addons, extra_gb: extraGb, max_extra_gb: 9, must_remove_gb: extraGb - 9,
    });
    const moveNow = 'Mailbox grande@pec.example.it cannot move to the standard plan';
    const moveAtRenewal = 'Mailbox grande@pec.example.it cannot move to the standard plan at the renewal';

    await refused(t, big.id, () => changePlan(big.id, 'standard', 'now'), exceeds(moveNow, [eight.id, four.id], 12, false));
    await refused(t, big.id, () => changePlan(big.id, 'standard', 'renewal'), exceeds(moveAtRenewal, [eight.id, four.id], 12, true));

    // Four GB end at the renewal: the move may be scheduled for then, but not made now, while they still give space.
    t.equal((await a.post(`/v1/mailboxes/${big.id}/addons/${four.id}/cancel`, { when: 'renewal' })).status, 200);
    await refused(t, big.id, () => changePlan(big.id, 'standard', 'now'), exceeds(moveNow, [eight.id, four.id], 12, false));
    const scheduled = await accepted(t, () => changePlan(big.id, 'standard', 'renewal'));
    t.match(scheduled.body, { plan: 'pro', plan_at_renewal: 'standard', quotas: quotas([2, 12], [3, 0]) });
    t.same(scheduled.types, ['mailbox.updated']);

    // From now on space renews into the Standard plan: 8 GB renew, so at most 1 GB more, bought now or for the renewal.
    const balance = await a.balance();
    const tooMuch = `the standard plan the mailbox renews on allows at most 10 GB of inbox space from the renewal on (1 GB included)`;
    for (const when of ['now', 'renewal']) {
      t.match((await a.post(`/v1/mailboxes/${big.id}/addons`, { kind: 'extra_inbox_gb', quantity: 2, when })).body,
        { status: 400, code: 'validation_error', errors: [{ pointer: '/quantity', code: 'out_of_range', detail: tooMuch }] }, `2 GB bought ${when}`);
    }
    t.match((await a.post(`/v1/mailboxes/${big.id}/addons`, { kind: 'extra_archive_gb', quantity: 51, when: 'renewal' })).body,
      { status: 400, errors: [{ detail: 'the standard plan the mailbox renews on allows at most 50 GB of archive space from the renewal on (0 GB included)' }] });
    t.equal(await a.balance(), balance);
    const one = await buy(big.id, 'extra_inbox_gb', 1, 'renewal');

    // Renewing the 4 GB again would put 13 GB into a plan that takes 9.
    await refused(t, big.id, () => a.del(`/v1/mailboxes/${big.id}/addons/${four.id}/cancellation`),
      exceeds(`Add-on '${four.id}' cannot renew`, [eight.id, four.id, one.id], 13, true));
    t.match(await addon(big.id, four.id), { status: 'active', renews: false });

    // Cancelled now (refunded), the 4 GB leave 8 GB, within Standard: the move is made now, the difference refunded.
    t.equal((await a.post(`/v1/mailboxes/${big.id}/addons/${four.id}/cancel`, { when: 'now' })).status, 200);
    const before = await a.balance();
    const moved = await accepted(t, () => changePlan(big.id, 'standard', 'now'));
    t.match(moved.body, { plan: 'standard', plan_at_renewal: null, quotas: quotas([1, 8], [0, 0]), included_delegates: 0 });
    t.same(moved.types, ['credit.refunded', 'mailbox.plan_changed']);
    t.equal(await a.balance(), before + 1600);
    t.match((await a.ledger())[0], { type: 'refund', amount: 1600, item: { type: 'mailbox', id: big.id } });

    const renewedAt = await a.balance();
    const renewed = await a.post(`/v1/mailboxes/${big.id}/renew`, { years: 1 });
    t.match(renewed.body, { plan: 'standard', quotas: quotas([1, 9], [0, 0]) });
    t.equal(await a.balance(), renewedAt - 500 - 8 * 300 - 300, 'Standard with the 8 GB renewed and the 1 GB started, a full year each');
  });

  await t.test('space in use above the new plan\'s quota with the add-ons that continue: quota_below_usage', async (t) => {
    await buy(full.id, 'extra_inbox_gb', 2);
    await h.database.db.execute(sql`update mailboxes set used_inbox_bytes = ${3 * GB + 1}, used_archive_bytes = ${GB} where id = ${full.id}`);
    const inbox = (renewal: boolean) => ({
      code: 'quota_below_usage', used_bytes: 3 * GB + 1, total_bytes: 3 * GB,
      detail: `The mailbox already uses ${3 * GB + 1} bytes of inbox space, more than the 3 GB it would have on the standard plan${renewal ? ' from the renewal' : ''}.`,
    });
    await refused(t, full.id, () => changePlan(full.id, 'standard', 'now'), inbox(false));
    await refused(t, full.id, () => changePlan(full.id, 'standard', 'renewal'), inbox(true));

    // One GB bought for the renewal counts from then on, not now; then the archive in use is the obstacle.
    await buy(full.id, 'extra_inbox_gb', 1, 'renewal');
    await refused(t, full.id, () => changePlan(full.id, 'standard', 'now'), inbox(false));
    await refused(t, full.id, () => changePlan(full.id, 'standard', 'renewal'), {
      code: 'quota_below_usage', used_bytes: GB, total_bytes: 0,
      detail: `The mailbox already uses ${GB} bytes of archive space, more than the 0 GB it would have on the standard plan from the renewal.`,
    });

    await buy(full.id, 'extra_archive_gb', 1);
    t.same((await accepted(t, () => changePlan(full.id, 'standard', 'renewal'))).types, ['mailbox.updated']);
    await refused(t, full.id, () => changePlan(full.id, 'standard', 'now'), inbox(false));

    await buy(full.id, 'extra_inbox_gb', 1);
    const before = await a.balance();
    const moved = await accepted(t, () => changePlan(full.id, 'standard', 'now'));
    t.same(moved.types, ['credit.refunded', 'mailbox.plan_changed']);
    t.match(moved.body, { plan: 'standard', plan_at_renewal: null, quotas: { inbox: { base_bytes: GB, extra_bytes: 3 * GB }, archive: { base_bytes: 0, extra_bytes: GB, used_bytes: GB } } });
    t.equal(await a.balance(), before + 1600);
  });

  await t.test('live delegations above the new plan\'s seats: delegations_over_limit; invitations then respect the renewal\'s plan', async (t) => {
    const pair = await buy(team.id, 'delegation_seat', 2);
    await delegate(team.id, 'giulia@studio.example', true);
    await delegate(team.id, 'marco@studio.example', false);
    const luca = await delegate(team.id, 'luca@studio.example', false);
    const over = (seats: number, purchased: number, live: [number, number], renewal: boolean) => ({
      code: 'delegations_over_limit', seats, delegations: live[0] + live[1], must_revoke: live[0] + live[1] - seats,
      detail: `On the standard plan mailbox team@pec.example.it would have ${seats} delegate seat${seats === 1 ? '' : 's'}${renewal ? ' from the renewal on' : ''} ` +
        `(0 included in the plan, ${purchased} purchased), but ${live[0] + live[1]} delegations are live (${live[0]} active, ${live[1]} invited): revoke 1 delegation first.`,
    });
    await refused(t, team.id, () => changePlan(team.id, 'standard', 'now'), over(2, 2, [1, 2], false));
    await refused(t, team.id, () => changePlan(team.id, 'standard', 'renewal'), over(2, 2, [1, 2], true));

    t.equal((await a.post(`/v1/mailboxes/${team.id}/delegations/${luca.id}/revoke`)).status, 200);
    // A single seat replaces the pair from the renewal on: a move now would leave one seat then for two delegations.
    const single = await buy(team.id, 'delegation_seat', 1);
    t.equal((await a.post(`/v1/mailboxes/${team.id}/addons/${pair.id}/cancel`, { when: 'renewal' })).status, 200);
    await refused(t, team.id, () => changePlan(team.id, 'standard', 'now'), over(1, 1, [1, 1], true));
    await refused(t, team.id, () => changePlan(team.id, 'standard', 'renewal'), over(1, 1, [1, 1], true));

    t.equal((await a.del(`/v1/mailboxes/${team.id}/addons/${pair.id}/cancellation`)).status, 200);
    t.same((await accepted(t, () => changePlan(team.id, 'standard', 'renewal'))).types, ['mailbox.updated']);

    // Four seats until the renewal, three from then on (Standard includes none): the third collaborator is the last.
    t.equal((await a.post(`/v1/mailboxes/${team.id}/delegations`, { email: 'anna@studio.example', mode: 'read_only' })).status, 201);
    const since = await mark(h);
    const full = await a.post(`/v1/mailboxes/${team.id}/delegations`, { email: 'bruno@studio.example', mode: 'read_only' });
    t.strictSame(full.body, {
      type: 'urn:pec-partner:problem:delegate_seats_exhausted', title: 'Conflict', status: 409, code: 'delegate_seats_exhausted',
      detail: 'Mailbox team@pec.example.it has 4 delegate seats now (1 included in the plan, 3 purchased) but 3 from the renewal on ' +
        '(seats cancelled for the renewal, or a smaller plan), and 3 are taken (1 active, 2 invited). ' +
        'Keep the delegation_seat add-ons for the renewal, buy more, or revoke a delegation.',
      request_id: full.headers['request-id'], seats: 3, included: 1, purchased: 3, seats_at_renewal: 3, used: 3,
    });
    t.same(await eventsAfter(h, p.id, since), []);

    const before = await a.balance();
    const moved = await accepted(t, () => changePlan(team.id, 'standard', 'now'));
    t.same(moved.types, ['credit.refunded', 'mailbox.plan_changed']);
    t.match(moved.body, { plan: 'standard', plan_at_renewal: null, included_delegates: 0 });
    t.equal(await a.balance(), before + 1600);
    t.match(await addon(team.id, single.id), { status: 'active', renews: true });
  });

  await t.test('upgrades are not refused for what the smaller plan already allowed', async (t) => {
    await buy(small.id, 'extra_inbox_gb', 9);
    await h.database.db.execute(sql`update mailboxes set used_inbox_bytes = ${12 * GB} where id = ${small.id}`);
    const before = await a.balance();
    const upgraded = await accepted(t, () => changePlan(small.id, 'pro', 'now'));
    t.same(upgraded.types, ['credit.charged', 'mailbox.plan_changed']);
    t.match(upgraded.body, { plan: 'pro', quotas: quotas([2, 9], [3, 0], 12 * GB), included_delegates: 1 });
    t.equal(await a.balance(), before - 1600);
    t.same((await accepted(t, () => changePlan(small.id, 'premium', 'renewal'))).types, ['mailbox.updated']);
  });
});
