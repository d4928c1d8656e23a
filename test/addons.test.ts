import { sql } from 'drizzle-orm';
import t from 'tap';
import { api } from './helpers/fixtures.ts';
import { DAYS, harness } from './helpers/harness.ts';

const GB = 1024 ** 3;

t.test('buying, listing, cancelling and renewing add-ons: pro-rata charges and refunds, limits, ledger', async (t) => {
  const h = await harness(t);
  const a = api(h, await h.partner());
  await a.topUp(100_000);
  const customer = await a.customer();
  const mbx = (await a.post('/v1/mailboxes', { local_part: 'studio', domain: 'pec.example.it', customer, plan: 'pro', renewal_mode: 'manual' })).body;
  const balance0 = await a.balance();

  // 73 days into the year, 292/365 of the term is left: 4 GB of inbox at €3.00/GB/year cost 1200 × 0.8 = 960.
  h.clock.advance(73 * DAYS);
  const space = await a.post(`/v1/mailboxes/${mbx.id}/addons`, { kind: 'extra_inbox_gb', quantity: 4 });
  t.equal(space.status, 201);
  t.match(space.body, { object: 'mailbox_addon', kind: 'extra_inbox_gb', quantity: 4, status: 'active', renews: true, current_period_end: mbx.expires_at });
  t.equal(await a.balance(), balance0 - 960);
  t.match((await a.ledger())[0], { type: 'charge', amount: -960, item: { type: 'mailbox_addon', id: space.body.id } });
  t.match((await a.get(`/v1/mailboxes/${mbx.id}`)).body.quotas.inbox, { base_bytes: 2 * GB, extra_bytes: 4 * GB, total_bytes: 6 * GB });

  // The Pro plan allows 20 GB of inbox: 2 included + 4 bought + 15 more is too much.
  const tooMuch = await a.post(`/v1/mailboxes/${mbx.id}/addons`, { kind: 'extra_inbox_gb', quantity: 15 });
  t.match(tooMuch.body, { status: 400, errors: [{ pointer: '/quantity', code: 'out_of_range', detail: /at most 20 GB/ }] });
  t.equal(await a.balance(), balance0 - 960, 'a refused purchase charges nothing');

  const newsletter = (await a.post(`/v1/mailboxes/${mbx.id}/addons`, { kind: 'newsletter' })).body;
  t.equal((await a.post(`/v1/mailboxes/${mbx.id}/addons`, { kind: 'newsletter' })).body.code, 'addon_already_active');
  t.match((await a.post(`/v1/mailboxes/${mbx.id}/addons`, { kind: 'branding', quantity: 2 })).body, { status: 400, errors: [{ pointer: '/quantity' }] });
  const seats = (await a.post(`/v1/mailboxes/${mbx.id}/addons`, { kind: 'delegation_seat', quantity: 2, when: 'renewal' })).body;
  t.match(seats, { status: 'scheduled', starts_at: null, current_period_end: null });
  const afterBuying = await a.balance();
  t.equal(afterBuying, balance0 - 960 - 2880, 'the newsletter is pro-rated (3600 × 0.8); the scheduled seats are not charged yet');

  // Cancelling now refunds the unused part; cancelling for the renewal keeps it until then.
  h.clock.advance(146 * DAYS); // 146 of 365 days are left: 40 %
  const cancelled = await a.post(`/v1/mailboxes/${mbx.id}/addons/${newsletter.id}/cancel`, { when: 'now' });
  t.match(cancelled.body, { status: 'cancelled', renews: false });
  t.equal(await a.balance(), afterBuying + 1440);
  t.match((await a.ledger())[0], { type: 'refund', amount: 1440, item: { type: 'mailbox_addon', id: newsletter.id } });
  t.equal((await a.post(`/v1/mailboxes/${mbx.id}/addons/${newsletter.id}/cancel`, { when: 'now' })).body.code, 'invalid_state_transition');
  t.match((await a.post(`/v1/mailboxes/${mbx.id}/addons/${space.body.id}/cancel`, { when: 'renewal' })).body, { status: 'active', renews: false });
  t.match((await a.del(`/v1/mailboxes/${mbx.id}/addons/${space.body.id}/cancellation`)).body, { renews: true });
  t.equal((await a.del(`/v1/mailboxes/${mbx.id}/addons/${space.body.id}/cancellation`)).body.code, 'no_cancellation_scheduled');
  const small = (await a.post(`/v1/mailboxes/${mbx.id}/addons`, { kind: 'extra_archive_gb', quantity: 1 })).body;
  await a.post(`/v1/mailboxes/${mbx.id}/addons/${small.id}/cancel`, { when: 'renewal' });

  // The renewal charges every add-on that continues for the new term and starts the scheduled ones.
  const beforeRenewal = await a.balance();
  t.equal((await a.post(`/v1/mailboxes/${mbx.id}/renew`, { years: 1 })).status, 200);
  t.equal(await a.balance(), beforeRenewal - 2500 - 1200 - 2000, 'plan + 4 GB inbox + 2 seats');
  const listed = (await a.get(`/v1/mailboxes/${mbx.id}/addons`)).body.data;
  t.same(listed.map((x: { kind: string; status: string }) => [x.kind, x.status]), [
    ['extra_archive_gb', 'cancelled'], ['delegation_seat', 'active'], ['newsletter', 'cancelled'], ['extra_inbox_gb', 'active'],
  ]);
  t.match((await a.get(`/v1/mailboxes/${mbx.id}`)).body.quotas.archive, { extra_bytes: 0 });

  const other = api(h, await h.partner('Other'));
  t.equal((await other.get(`/v1/mailboxes/${mbx.id}/addons`)).status, 404);
  t.equal((await other.post(`/v1/mailboxes/${mbx.id}/addons`, { kind: 'newsletter' })).status, 404);
});

t.test('extra space works in the engine: a full mailbox accepts mail again; space below usage cannot be given back', async (t) => {
  const h = await harness(t);
  const a = api(h, await h.partner());
  await a.topUp(100_000);
  const customer = await a.customer();
  const open = async (local: string, plan: string) => (await a.post('/v1/mailboxes', { local_part: local, domain: 'pec.example.it', customer, plan, password: `${local}-password-2026` })).body;
  const sender = await open('mittente', 'pro');
  const full = await open('piena', 'standard');
  const send = async (subject: string) => {
    const response = await h.app.inject({
      method: 'POST', url: `/v1/mailboxes/${sender.id}/messages`,
      headers: { authorization: `Basic ${Buffer.from(`${sender.address}:mittente-password-2026`).toString('base64')}` },
      payload: { to: [full.address], subject, text: 'x' },
    });
    await h.app.pec.drain();
    return response.json().pec_message_id as string;
  };
  const outcome = async (pecId: string) => {
    const rows = await h.database.db.execute<{ status: string }>(sql`select r.status from pec_recipients r join pec_transactions t on t.id = r.transaction_id where t.pec_message_id = ${pecId}`);
    return rows[0]!.status;
  };

  await h.database.db.execute(sql`update mailboxes set used_inbox_bytes = ${GB - 100} where id = ${full.id}`);
  t.equal(await outcome(await send('Troppo')), 'failed', 'a full Standard mailbox (1 GB) refuses delivery');

  const extra = (await a.post(`/v1/mailboxes/${full.id}/addons`, { kind: 'extra_inbox_gb', quantity: 1 })).body;
  t.equal(await outcome(await send('Adesso sì')), 'delivered', 'one more GB and the same mailbox takes mail again');

  // Using more than the base quota now, the extra space cannot be cancelled.
  await h.database.db.execute(sql`update mailboxes set used_inbox_bytes = ${GB + 10} where id = ${full.id}`);
  const refused = await a.post(`/v1/mailboxes/${full.id}/addons/${extra.id}/cancel`, { when: 'now' });
  t.match(refused.body, { status: 409, code: 'quota_below_usage' });
  t.equal((await a.get(`/v1/mailboxes/${full.id}/addons`)).body.data[0].status, 'active');
  t.match((await a.post(`/v1/mailboxes/${full.id}/addons`, { kind: 'extra_archive_gb', quantity: 51 })).body, { status: 400, errors: [{ detail: /at most 50 GB of archive/ }] });
});
