import type { AddressInfo } from 'node:net';
import { and, asc, count, eq, like, sql } from 'drizzle-orm';
import { SMTPServer } from 'smtp-server';
import t, { type Test } from 'tap';
import { events } from '@pec-partner/db';
import { API_VERSION } from '../api/src/events/catalogue.ts';
import { toEventView, type RecordedEvent } from '../api/src/events/record.ts';
import { asShown } from './helpers/events.ts';
import { expireDelegationInvitations } from '../api/src/modules/delegations/service.ts';
import {
  buildDeliveryReceipt, buildNonDeliveryNotice, buildVirusDetectionNotice, newPecMessageId, signAndAssemble, type PecTransaction,
} from '../api/src/pec/messages/index.ts';
import { EICAR_TEST_FILE } from '../api/src/pec/virus-scanner.ts';
import { api } from './helpers/fixtures.ts';
import { DAYS, harness, json, type Harness } from './helpers/harness.ts';
import { unreachableProvider } from './helpers/pec.ts';

const MINUTE = 60_000;
const HOURS = 3_600_000;

type Event = RecordedEvent;

/** The partner's events whose type starts with `<prefix>.`, oldest first, as the API and webhooks show them. */
async function eventsOf(h: Harness, partnerId: string, prefix: string): Promise<Event[]> {
  const rows = await h.database.db.select().from(events)
    .where(and(eq(events.partnerId, partnerId), like(events.type, `${prefix}.%`))).orderBy(asc(events.seq));
  return rows.map((row) => asShown(toEventView({ ...row, data: row.data as Event['data'] })));
}

interface Expected {
  type: string;
  object: unknown;
  previous?: Record<string, unknown>;
  request: string | null;
  idempotencyKey?: string;
  at: Date;
}

/** The whole event, exactly: nothing more, nothing less. */
function assertEvent(t: Test, event: Event | undefined, expected: Expected, label: string): void {
  t.match(event?.id, /^evt_/, `${label}: an event`);
  t.strictSame(event, {
    id: event?.id,
    object: 'event', livemode: true,
    type: expected.type,
    api_version: API_VERSION,
    created_at: expected.at.toISOString(),
    data: expected.previous ? { object: expected.object, previous_attributes: expected.previous } : { object: expected.object },
    request: { id: expected.request, idempotency_key: expected.idempotencyKey ?? null },
  }, label);
}


t.test('add-ons: bought, cancellation scheduled and undone, cancelled now; at the renewal renewed, activated or ended; nothing for refusals', async (t) => {
  const h = await harness(t);
  const p = await h.partner();
  const a = api(h, p);
  await a.topUp(100_000);
  const customer = await a.customer();
  const mbx = (await a.post('/v1/mailboxes', { local_part: 'studio', domain: 'pec.example.it', customer, plan: 'pro', renewal_mode: 'manual' })).body;
  const addonEvents = () => eventsOf(h, p.id, 'mailbox_addon');
  const listed = async (id: string) => ((await a.get(`/v1/mailboxes/${mbx.id}/addons?limit=100`)).body.data as Array<{ id: string }>).find((x) => x.id === id);
  const url = `/v1/mailboxes/${mbx.id}/addons`;

  h.clock.advance(73 * DAYS);
  const buy = () => h.app.inject({ method: 'POST', url, headers: { ...p.headers, 'idempotency-key': 'space-2026' }, payload: { kind: 'extra_inbox_gb', quantity: 4 } });
  const bought = await buy();
  t.equal(bought.statusCode, 201);
  const space = json(bought);
  let seen = await addonEvents();
  t.equal(seen.length, 1);
  assertEvent(t, seen[0], { type: 'mailbox_addon.created', object: await listed(space.id), request: bought.headers['request-id'] as string, idempotencyKey: 'space-2026', at: h.clock.now() }, 'bought now');
  t.match(seen[0]!.data.object, { status: 'active', renews: true, current_period_end: mbx.expires_at });
  t.equal((await buy()).headers['idempotent-replayed'], 'true');
  t.equal((await addonEvents()).length, 1, 'a replayed purchase is no new event');

  // Refused purchases change nothing and report nothing.
  t.equal((await a.post(url, { kind: 'extra_inbox_gb', quantity: 15 })).status, 400);
  const seatsBought = await a.post(url, { kind: 'delegation_seat', quantity: 2, when: 'renewal' });
  const newsletterBought = await a.post(url, { kind: 'newsletter' });
  t.equal((await a.post(url, { kind: 'newsletter' })).status, 409);
  const other = api(h, await h.partner('Other'));
  t.equal((await other.post(url, { kind: 'branding' })).status, 404);
  seen = await addonEvents();
  t.same(seen.map((e) => e.type), ['mailbox_addon.created', 'mailbox_addon.created', 'mailbox_addon.created']);
  assertEvent(t, seen[1], { type: 'mailbox_addon.created', object: await listed(seatsBought.body.id), request: seatsBought.headers['request-id'] as string, at: h.clock.now() }, 'scheduled for the renewal');
  t.match(seen[1]!.data.object, { status: 'scheduled', starts_at: null, current_period_end: null });
  assertEvent(t, seen[2], { type: 'mailbox_addon.created', object: await listed(newsletterBought.body.id), request: newsletterBought.headers['request-id'] as string, at: h.clock.now() }, 'newsletter');
  t.equal((await eventsOf(h, (await h.partner('Third')).id, 'mailbox_addon')).length, 0);

  // A cancellation scheduled for the renewal, asked twice, then undone.
  h.clock.advance(DAYS);
  const scheduled = await a.post(`${url}/${space.id}/cancel`, { when: 'renewal' });
  t.equal((await a.post(`${url}/${space.id}/cancel`, { when: 'renewal' })).status, 200);
  seen = await addonEvents();
  t.equal(seen.length, 4, 'asking again changes nothing');
  assertEvent(t, seen[3], { type: 'mailbox_addon.updated', object: await listed(space.id), previous: { renews: true }, request: scheduled.headers['request-id'] as string, at: h.clock.now() }, 'cancellation scheduled');
  const undone = await a.del(`${url}/${space.id}/cancellation`);
  t.equal((await a.del(`${url}/${space.id}/cancellation`)).status, 409);
  seen = await addonEvents();
  t.equal(seen.length, 5);
  assertEvent(t, seen[4], { type: 'mailbox_addon.updated', object: await listed(space.id), previous: { renews: false }, request: undone.headers['request-id'] as string, at: h.clock.now() }, 'cancellation undone');

  // Cancelled now: refunded, ended at once.
  const cancelled = await a.post(`${url}/${newsletterBought.body.id}/cancel`, { when: 'now' });
  t.equal((await a.post(`${url}/${newsletterBought.body.id}/cancel`, { when: 'now' })).status, 409);
  seen = await addonEvents();
  t.equal(seen.length, 6);
  assertEvent(t, seen[5], {
    type: 'mailbox_addon.cancelled', object: await listed(newsletterBought.body.id), request: cancelled.headers['request-id'] as string, at: h.clock.now(),
    previous: { status: 'active', renews: true, current_period_end: mbx.expires_at, cancelled_at: null },
  }, 'cancelled now');

  const archive = (await a.post(url, { kind: 'extra_archive_gb', quantity: 1 })).body;
  await a.post(`${url}/${archive.id}/cancel`, { when: 'renewal' });
  t.equal((await addonEvents()).length, 8);

  // The renewal: the active add-on renews, the scheduled one starts, the one cancelled for the renewal ends.
  h.clock.advance(DAYS);
  const renewal = await a.post(`/v1/mailboxes/${mbx.id}/renew`, { years: 1 });
  t.equal(renewal.status, 200);
  const newEnd = renewal.body.expires_at;
  t.equal(newEnd, '2028-11-22T09:00:00.000Z');
  const atRenewal = (await addonEvents()).slice(8);
  t.same(atRenewal.map((e) => [e.type, e.data.object.id]), [
    ['mailbox_addon.renewed', space.id], ['mailbox_addon.activated', seatsBought.body.id], ['mailbox_addon.cancelled', archive.id],
  ]);
  const request = renewal.headers['request-id'] as string;
  assertEvent(t, atRenewal[0], { type: 'mailbox_addon.renewed', object: await listed(space.id), previous: { current_period_end: mbx.expires_at }, request, at: h.clock.now() }, 'renewed');
  t.equal(atRenewal[0]!.data.object.current_period_end, newEnd);
  assertEvent(t, atRenewal[1], {
    type: 'mailbox_addon.activated', object: await listed(seatsBought.body.id), previous: { status: 'scheduled', starts_at: null, current_period_end: null }, request, at: h.clock.now(),
  }, 'activated');
  t.match(atRenewal[1]!.data.object, { status: 'active', starts_at: h.clock.now().toISOString(), current_period_end: newEnd });
  assertEvent(t, atRenewal[2], {
    type: 'mailbox_addon.cancelled', object: await listed(archive.id), previous: { status: 'active', current_period_end: mbx.expires_at, cancelled_at: null }, request, at: h.clock.now(),
  }, 'ended at the renewal');
});

t.test('delegations: invited, mode changed, accepted, revoked, and expired by the task or on listing; nothing for refusals', async (t) => {
  const h = await harness(t);
  const p = await h.partner();
  const a = api(h, p);
  await a.topUp(100_000);
  const customer = await a.customer();
  const mbx = (await a.post('/v1/mailboxes', { local_part: 'alice', domain: 'pec.example.it', customer, plan: 'pro', password: 'alice-password-2026' })).body;
  const base = `/v1/mailboxes/${mbx.id}/delegations`;
  const current = async (id: string) => (await a.get(`${base}/${id}`)).body;
  const delegationEvents = () => eventsOf(h, p.id, 'delegation');

  const invited = await a.post(base, { email: 'giulia@studio.example', name: 'Giulia', mode: 'read_only' });
  t.equal(invited.status, 201);
  const id: string = invited.body.id;
  let seen = await delegationEvents();
  t.equal(seen.length, 1);
  assertEvent(t, seen[0], { type: 'delegation.created', object: await current(id), request: invited.headers['request-id'] as string, at: h.clock.now() }, 'invited');
  t.notMatch(JSON.stringify(seen[0]), invited.body.invitation.token, 'the invitation token is never in an event');
  t.equal((await a.post(base, { email: 'marco@studio.example', mode: 'full_access' })).body.code, 'delegate_seats_exhausted');

  h.clock.advance(HOURS);
  const before = await current(id);
  const changed = await a.patch(`${base}/${id}`, { mode: 'full_access' });
  t.equal((await a.patch(`${base}/${id}`, { mode: 'full_access' })).status, 200);
  seen = await delegationEvents();
  t.equal(seen.length, 2, 'the same mode again is no change');
  assertEvent(t, seen[1], { type: 'delegation.updated', object: await current(id), previous: { mode: 'read_only', updated_at: before.updated_at }, request: changed.headers['request-id'] as string, at: h.clock.now() }, 'mode changed');

  h.clock.advance(HOURS);
  const accept = () => h.app.inject({ method: 'POST', url: '/v1/delegation-invitations/accept', payload: { token: invited.body.invitation.token, password: 'giulia-secret-2026' } });
  const accepted = await accept();
  t.equal(accepted.statusCode, 200);
  t.equal((await accept()).statusCode, 409);
  seen = await delegationEvents();
  t.equal(seen.length, 3);
  assertEvent(t, seen[2], {
    type: 'delegation.accepted', object: await current(id), request: accepted.headers['request-id'] as string, at: h.clock.now(),
    previous: { status: 'invited', invite_expires_at: '2026-11-29T09:00:00.000Z', accepted_at: null, updated_at: '2026-11-22T10:00:00.000Z' },
  }, 'accepted');
  t.notOk('account' in seen[2]!.data.object, 'the event shows the delegation, not the collaborator account');

  h.clock.advance(HOURS);
  const revoked = await a.post(`${base}/${id}/revoke`);
  t.equal((await a.post(`${base}/${id}/revoke`)).status, 409);
  seen = await delegationEvents();
  t.equal(seen.length, 4);
  assertEvent(t, seen[3], {
    type: 'delegation.revoked', object: await current(id), request: revoked.headers['request-id'] as string, at: h.clock.now(),
    previous: { status: 'active', revoked_at: null, updated_at: '2026-11-22T11:00:00.000Z' },
  }, 'revoked');

  // An invitation nobody accepts: it reads as expired at once, and the task records and reports it.
  const second = (await a.post(base, { email: 'marco@studio.example', mode: 'send_only' })).body;
  t.equal((await delegationEvents()).length, 5);
  h.clock.advance(7 * DAYS + MINUTE);
  t.equal((await current(second.id)).status, 'expired');
  t.equal((await delegationEvents()).length, 5, 'not recorded yet');
  const deps = { db: h.database.db, clock: h.clock };
  t.equal(await expireDelegationInvitations(deps, h.clock.now()), 1);
  t.equal(await expireDelegationInvitations(deps, h.clock.now()), 0);
  seen = await delegationEvents();
  t.equal(seen.length, 6, 'expired once');
  assertEvent(t, seen[5], { type: 'delegation.expired', object: await current(second.id), previous: { status: 'invited', updated_at: second.updated_at }, request: null, at: h.clock.now() }, 'expired by the task');
  t.match(seen[5]!.data.object, { status: 'expired', updated_at: h.clock.now().toISOString() });

  // Listing the delegations records an expiry the task has not seen yet, within the listing's request.
  const third = (await a.post(base, { email: 'sara@studio.example', mode: 'read_only' })).body;
  h.clock.advance(8 * DAYS);
  const list = await a.get(base);
  seen = await delegationEvents();
  t.equal(seen.length, 8);
  assertEvent(t, seen[7], {
    type: 'delegation.expired', object: list.body.data.find((d: { id: string }) => d.id === third.id), previous: { status: 'invited', updated_at: third.updated_at },
    request: list.headers['request-id'] as string, at: h.clock.now(),
  }, 'expired on listing');
  t.equal(await expireDelegationInvitations(deps, h.clock.now()), 0);
});

/** The newsletter relay: a real SMTP server on loopback that takes everything. */
async function startRelay(t: Test, port = 0) {
  const received: string[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onData(stream, session, callback) {
      stream.resume();
      stream.on('end', () => {
        received.push(...session.envelope.rcptTo.map((r) => r.address));
        callback(null, `2.0.0 Ok: queued as Q${received.length}`);
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const actualPort = (server as unknown as { server: { address(): AddressInfo } }).server.address().port;
  let closed = false;
  const close = () => (closed ? Promise.resolve() : ((closed = true), new Promise<void>((resolve) => server.close(() => resolve()))));
  t.teardown(close);
  return { port: actualPort, received, close };
}

t.test('newsletter campaigns: created, updated, scheduled, cancelled, sending and sent with their counts; nothing for refusals', async (t) => {
  // The relay is down when the campaign starts, so that the start is seen before any message goes out.
  const down = await startRelay(t);
  await down.close();
  const h = await harness(t, {
    env: { NEWSLETTER_SMTP_HOST: '127.0.0.1', NEWSLETTER_SMTP_PORT: String(down.port), NEWSLETTER_RATE_PER_MINUTE: '60', NEWSLETTER_FROM_ADDRESS: 'newsletter@mail.example.it' },
  });
  const p = await h.partner();
  const a = api(h, p);
  await a.topUp(100_000);
  const customer = await a.customer();
  const mbx = (await a.post('/v1/mailboxes', { local_part: 'studio', domain: 'pec.example.it', customer, plan: 'standard' })).body;
  t.equal((await a.post(`/v1/mailboxes/${mbx.id}/addons`, { kind: 'newsletter' })).status, 201);
  const base = `/v1/mailboxes/${mbx.id}/newsletter`;
  const contacts = await Promise.all(['anna@clienti.example', 'bruno@clienti.example'].map(async (email) => (await a.post(`${base}/contacts`, { email, consent: true })).body.id));
  const list = (await a.post(`${base}/lists`, { name: 'Clienti' })).body;
  await a.post(`${base}/lists/${list.id}/members`, { contacts });
  const empty = (await a.post(`${base}/lists`, { name: 'Vuota' })).body;
  const current = async (id: string) => (await a.get(`${base}/campaigns/${id}`)).body;
  const campaignEvents = () => eventsOf(h, p.id, 'newsletter_campaign');

  const created = await a.post(`${base}/campaigns`, { list: list.id, subject: 'Novità di dicembre', html: '<p>Le <b>novità</b> dello studio.</p>' });
  t.equal(created.status, 201);
  const id: string = created.body.id;
  let seen = await campaignEvents();
  t.equal(seen.length, 1);
  assertEvent(t, seen[0], { type: 'newsletter_campaign.created', object: await current(id), request: created.headers['request-id'] as string, at: h.clock.now() }, 'created');
  t.match(seen[0]!.data.object, { status: 'draft', stats: { recipients: 0, queued: 0, sent: 0, failed: 0 } });

  h.clock.advance(MINUTE);
  const edited = await a.patch(`${base}/campaigns/${id}`, { subject: 'Le novità di dicembre' });
  t.equal((await a.patch(`${base}/campaigns/${id}`, { subject: 'Le novità di dicembre' })).status, 200);
  seen = await campaignEvents();
  t.equal(seen.length, 2, 'the same subject again is no change');
  assertEvent(t, seen[1], {
    type: 'newsletter_campaign.updated', object: await current(id), request: edited.headers['request-id'] as string, at: h.clock.now(),
    previous: { subject: 'Novità di dicembre', updated_at: '2026-11-22T09:00:00.000Z' },
  }, 'edited');

  // Refusals: no recipients, cancelling twice, editing a cancelled campaign.
  const other = (await a.post(`${base}/campaigns`, { list: empty.id, subject: 'Prova', html: '<p>Prova</p>' })).body;
  h.clock.advance(MINUTE);
  t.equal((await a.post(`${base}/campaigns/${other.id}/send`, {})).body.code, 'no_recipients');
  const cancelled = await a.post(`${base}/campaigns/${other.id}/cancel`);
  t.equal((await a.post(`${base}/campaigns/${other.id}/cancel`)).status, 409);
  t.equal((await a.patch(`${base}/campaigns/${other.id}`, { subject: 'Altro' })).status, 409);
  seen = await campaignEvents();
  t.same(seen.map((e) => e.type), ['newsletter_campaign.created', 'newsletter_campaign.updated', 'newsletter_campaign.created', 'newsletter_campaign.cancelled']);
  assertEvent(t, seen[3], {
    type: 'newsletter_campaign.cancelled', object: await current(other.id), request: cancelled.headers['request-id'] as string, at: h.clock.now(),
    previous: { status: 'draft', updated_at: other.updated_at },
  }, 'cancelled');

  const scheduledAt = new Date(h.clock.now().getTime() + HOURS).toISOString();
  const scheduled = await a.post(`${base}/campaigns/${id}/send`, { scheduled_at: scheduledAt });
  t.equal((await a.post(`${base}/campaigns/${id}/send`, { scheduled_at: scheduledAt })).status, 200);
  seen = await campaignEvents();
  t.equal(seen.length, 5, 'the same schedule again is no change');
  assertEvent(t, seen[4], {
    type: 'newsletter_campaign.updated', object: await current(id), request: scheduled.headers['request-id'] as string, at: h.clock.now(),
    previous: { status: 'draft', scheduled_at: null, updated_at: '2026-11-22T09:01:00.000Z' },
  }, 'scheduled');
  t.equal(seen[4]!.data.object.updated_at, '2026-11-22T09:02:00.000Z');

  // The task starts it (recipients fixed), the relay being down nothing goes out yet.
  h.clock.advance(HOURS);
  await h.app.jobs.tick();
  seen = await campaignEvents();
  t.equal(seen.length, 6);
  const sending = await current(id);
  t.match(sending, { status: 'sending', started_at: h.clock.now().toISOString(), stats: { recipients: 2, queued: 2, sent: 0, failed: 0 } });
  assertEvent(t, seen[5], {
    type: 'newsletter_campaign.sending', object: sending, request: null, at: h.clock.now(),
    previous: { status: 'scheduled', started_at: null, stats: { recipients: 0, queued: 0, sent: 0, failed: 0 }, updated_at: '2026-11-22T09:02:00.000Z' },
  }, 'sending');

  const relay = await startRelay(t, down.port);
  h.clock.advance(MINUTE);
  await h.app.jobs.tick();
  t.same(relay.received.sort(), ['anna@clienti.example', 'bruno@clienti.example']);
  seen = await campaignEvents();
  t.equal(seen.length, 7);
  const sent = await current(id);
  t.match(sent, { status: 'sent', finished_at: h.clock.now().toISOString(), stats: { recipients: 2, queued: 0, sent: 2, failed: 0 } });
  assertEvent(t, seen[6], {
    type: 'newsletter_campaign.sent', object: sent, request: null, at: h.clock.now(),
    previous: { status: 'sending', finished_at: null, updated_at: sending.updated_at },
  }, 'sent');
  h.clock.advance(MINUTE);
  await h.app.jobs.tick();
  t.equal((await campaignEvents()).length, 7, 'a finished campaign is reported once');
});

t.test('PEC message outcomes: accepted, not accepted, delivered and not delivered per recipient, locally and from another provider; metadata only, once', async (t) => {
  // Another provider in the index, whose server cannot be reached: its receipts are made here and handed in.
  const { provider: remoteProvider, identity, signer: remoteSigner, indexFile, closedPort } = await unreachableProvider(t);
  const h = await harness(t, { env: { PEC_PROVIDER_INDEX_FILE: indexFile, PEC_SMTP_ROUTES: `${remoteProvider.domain}=127.0.0.1:${closedPort}` } });

  const p = await h.partner();
  const a = api(h, p);
  await a.topUp(50_000);
  const customer = await a.customer();
  const open = async (client: ReturnType<typeof api>, owner: string, local: string) => {
    const password = `${local}-password-2026`;
    const created = await client.post('/v1/mailboxes', { local_part: local, domain: 'pec.example.it', customer: owner, plan: 'pro', password });
    if (created.status !== 201) throw new Error(JSON.stringify(created.body));
    const authorization = `Basic ${Buffer.from(`${created.body.address}:${password}`).toString('base64')}`;
    return {
      id: created.body.id as string,
      address: created.body.address as string,
      send: async (body: unknown) => json(await h.app.inject({ method: 'POST', url: `/v1/mailboxes/${created.body.id}/messages`, headers: { authorization }, payload: body as object })),
      sendRaw: async (eml: string) => json(await h.app.inject({ method: 'POST', url: `/v1/mailboxes/${created.body.id}/messages/raw`, headers: { authorization, 'content-type': 'message/rfc822' }, payload: eml })),
    };
  };
  const alice = await open(a, customer, 'alice');
  const bob = await open(a, customer, 'bob');
  const carol = await open(a, customer, 'carol');
  const q = await h.partner('Recipient partner');
  const b = api(h, q);
  await b.topUp(50_000);
  const dario = await open(b, await b.customer(), 'dario');
  t.equal((await a.post(`/v1/mailboxes/${carol.id}/suspend`)).status, 200);
  const messageEvents = () => eventsOf(h, p.id, 'message');
  const pecMessage = (submission: { id: string; pec_message_id: string }, recipients: string[], outcome: { status: string; recipient?: string; error?: string; at: Date }) => ({
    id: submission.id, object: 'pec_message', livemode: true, mailbox: alice.id, sender: alice.address, message_id: submission.pec_message_id, recipients,
    recipient: outcome.recipient ?? null, status: outcome.status, error: outcome.error ?? null, occurred_at: outcome.at.toISOString(),
  });
  const secrets = ['Diffida riservata', 'Testo riservato del messaggio', 'contratto-segreto.pdf', 'Oggetto rifiutato', 'Offerta remota', 'Allegato infetto'];

  // Local: delivered to two mailboxes (one of another partner), refused by a suspended one and an unknown address.
  const local = await alice.send({
    to: [bob.address, dario.address], cc: [carol.address, 'nessuno@pec.example.it'], subject: 'Diffida riservata', text: 'Testo riservato del messaggio',
    attachments: [{ filename: 'contratto-segreto.pdf', content_type: 'application/pdf', content_base64: Buffer.from('%PDF-1.4 segreto').toString('base64') }],
  });
  t.equal(local.status, 'accepted');
  await h.app.pec.drain();
  const at0 = h.clock.now();
  const localRecipients = [bob.address, dario.address, carol.address, 'nessuno@pec.example.it'];
  let seen = await messageEvents();
  t.equal(seen.length, 5);
  assertEvent(t, seen[0], { type: 'message.accepted', object: pecMessage(local, localRecipients, { status: 'accepted', at: at0 }), request: null, at: at0 }, 'accepted');
  const byRecipient = seen.slice(1).sort((x, y) => String(x.data.object.recipient).localeCompare(String(y.data.object.recipient)));
  assertEvent(t, byRecipient[0], { type: 'message.delivered', object: pecMessage(local, localRecipients, { status: 'delivered', recipient: bob.address, at: at0 }), request: null, at: at0 }, 'delivered to bob');
  assertEvent(t, byRecipient[1], { type: 'message.not_delivered', object: pecMessage(local, localRecipients, { status: 'not_delivered', recipient: carol.address, error: 'altro', at: at0 }), request: null, at: at0 }, 'suspended carol');
  assertEvent(t, byRecipient[2], { type: 'message.delivered', object: pecMessage(local, localRecipients, { status: 'delivered', recipient: dario.address, at: at0 }), request: null, at: at0 }, "delivered to another partner's mailbox");
  assertEvent(t, byRecipient[3], { type: 'message.not_delivered', object: pecMessage(local, localRecipients, { status: 'not_delivered', recipient: 'nessuno@pec.example.it', error: 'no-dest', at: at0 }), request: null, at: at0 }, 'unknown address');
  t.equal((await eventsOf(h, q.id, 'message')).length, 0, "the events are the sender's partner's, not the recipient's");

  // Refused by the access point: a formal error and a virus.
  const formal = await alice.sendRaw(`From: ${alice.address}\r\nTo: ${bob.address}\r\nBcc: ${carol.address}\r\nSubject: Oggetto rifiutato\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nTesto riservato del messaggio\r\n`);
  const infected = await alice.send({ to: [bob.address], subject: 'Allegato infetto', text: 'x', attachments: [{ filename: 'eicar.com', content_base64: Buffer.from(EICAR_TEST_FILE).toString('base64') }] });
  t.same([formal.status, infected.status], ['refused', 'refused']);
  await h.app.pec.drain();
  seen = await messageEvents();
  t.equal(seen.length, 7);
  assertEvent(t, seen[5], { type: 'message.not_accepted', object: pecMessage(formal, [bob.address], { status: 'not_accepted', error: 'altro', at: at0 }), request: null, at: at0 }, 'formal error');
  assertEvent(t, seen[6], { type: 'message.not_accepted', object: pecMessage(infected, [bob.address], { status: 'not_accepted', error: 'virus', at: at0 }), request: null, at: at0 }, 'virus');

  // To the other provider: nothing can be handed over, yet its receipts arrive (delivered, unknown user, virus).
  h.clock.advance(HOURS);
  const remoteRecipients = ['anna', 'bruno', 'cesare', 'delia'].map((name) => `${name}@${remoteProvider.domain}`);
  const remote = await alice.send({ to: remoteRecipients, subject: 'Offerta remota', text: 'Testo riservato del messaggio' });
  const at1 = h.clock.now();
  await h.app.pec.drain();
  seen = await messageEvents();
  t.equal(seen.length, 8);
  assertEvent(t, seen[7], { type: 'message.accepted', object: pecMessage(remote, remoteRecipients, { status: 'accepted', at: at1 }), request: null, at: at1 }, 'accepted for another provider');

  h.clock.advance(HOURS);
  const at2 = h.clock.now();
  const remoteTx: PecTransaction = {
    provider: remoteProvider, at: at2, pecMessageId: remote.pec_message_id, originalMessageId: '<offerta@pec.example.it>', sender: alice.address,
    recipients: remoteRecipients.map((address) => ({ address, type: 'certificato' as const, header: 'To' as const })), subject: 'Offerta remota', receiptType: 'sintetica',
  };
  const signed = async (build: Promise<Parameters<typeof signAndAssemble>[0]>) => signAndAssemble(await build, remoteSigner);
  const receiptId = () => newPecMessageId(remoteProvider.domain, at2);
  await h.app.pec.receive(await signed(buildDeliveryReceipt(remoteTx, { messageId: receiptId(), recipient: remoteRecipients[0]!, postacert: Buffer.alloc(0) })), { mailFrom: identity.serviceAddress, rcptTo: [alice.address] });
  await h.app.pec.receive(await signed(buildNonDeliveryNotice(remoteTx, { messageId: receiptId(), recipient: remoteRecipients[1]!, failure: { error: 'no-dest', status: '5.1.1', description: 'utente sconosciuto' } })), { mailFrom: identity.serviceAddress, rcptTo: [alice.address] });
  await h.app.pec.receive(await signed(buildVirusDetectionNotice(remoteTx, { messageId: receiptId(), senderProviderMailbox: 'posta-certificata@pec.example.it', recipient: remoteRecipients[2]!, virus: 'Eicar-Test-Signature' })), { mailFrom: identity.serviceAddress, rcptTo: ['posta-certificata@pec.example.it'] });
  await h.app.pec.drain();
  seen = await messageEvents();
  t.equal(seen.length, 11);
  assertEvent(t, seen[8], { type: 'message.delivered', object: pecMessage(remote, remoteRecipients, { status: 'delivered', recipient: remoteRecipients[0], at: at2 }), request: null, at: at2 }, 'delivery receipt received');
  assertEvent(t, seen[9], { type: 'message.not_delivered', object: pecMessage(remote, remoteRecipients, { status: 'not_delivered', recipient: remoteRecipients[1], error: 'no-dest', at: at2 }), request: null, at: at2 }, 'non-delivery notice received');
  assertEvent(t, seen[10], { type: 'message.not_delivered', object: pecMessage(remote, remoteRecipients, { status: 'not_delivered', recipient: remoteRecipients[2], error: 'virus', at: at2 }), request: null, at: at2 }, 'virus found there');

  // 24 hours after the submission: the 12 h warning is no outcome, the timeout notice is.
  h.clock.set(new Date(at1.getTime() + 24 * HOURS));
  await h.app.pec.drain();
  seen = await messageEvents();
  t.equal(seen.length, 12);
  assertEvent(t, seen[11], { type: 'message.not_delivered', object: pecMessage(remote, remoteRecipients, { status: 'not_delivered', recipient: remoteRecipients[3], error: 'altro', at: h.clock.now() }), request: null, at: h.clock.now() }, 'timeout notice');

  // Metadata only: no subject, body or attachment name anywhere, and the same fields in every event.
  const text = JSON.stringify(seen);
  for (const secret of secrets) t.notOk(text.includes(secret), `"${secret}" is in no event`);
  for (const event of seen) {
    t.same(Object.keys(event.data.object).sort(), ['error', 'id', 'livemode', 'mailbox', 'message_id', 'object', 'occurred_at', 'recipient', 'recipients', 'sender', 'status']);
  }

  // A crash after any step repeats it: rerunning every job reports nothing twice.
  const [total] = await h.database.db.select({ n: count() }).from(events);
  await h.database.db.execute(sql`update pec_jobs set done_at = null, run_at = ${h.clock.now().toISOString()}::timestamptz`);
  t.ok((await h.app.pec.drain()) >= 10, 'every step ran again');
  t.equal((await messageEvents()).length, 12, 'no message event twice');
  t.same(await h.database.db.select({ n: count() }).from(events), [total], 'no event of any kind');
});
