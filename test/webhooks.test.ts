import { spawn } from 'node:child_process';
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { eq } from 'drizzle-orm';
import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import t, { type Test } from 'tap';
import { loadConfig, ManualClock } from '@pec-partner/api';
import { events, webhookDeliveries, webhookEndpoints } from '@pec-partner/db';
import { recordEvent, toEventView, type EventInput, type RecordedEvent } from '../api/src/events/record.ts';
import { asShown } from './helpers/events.ts';
import { WebhookDispatcher } from '../api/src/webhooks/dispatcher.ts';
import { RETRY_DELAYS_MS } from '../api/src/webhooks/retry.ts';
import { api } from './helpers/fixtures.ts';
import { DAYS, harness, type Harness } from './helpers/harness.ts';
import { serverUrl } from './helpers/database.ts';

const DEV = { APP_ENV: 'development' };

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A real HTTP receiver on loopback; `respond` decides each answer (default 200 "ok"). */
async function receiver(t: Test) {
  const received: Received[] = [];
  const state = {
    respond: (_received: Received, res: ServerResponse): void => void res.end('ok'),
    active: new Map<string, number>(),
    maxActive: new Map<string, number>(),
  };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const item = { path: req.url!, headers: req.headers, body: Buffer.concat(chunks).toString() };
      received.push(item);
      const active = (state.active.get(item.path) ?? 0) + 1;
      state.active.set(item.path, active);
      state.maxActive.set(item.path, Math.max(active, state.maxActive.get(item.path) ?? 0));
      res.on('close', () => state.active.set(item.path, state.active.get(item.path)! - 1));
      state.respond(item, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: (path: string) => `http://127.0.0.1:${port}${path}`,
    received,
    at: (path: string) => received.filter((item) => item.path === path),
    set respond(fn: (received: Received, res: ServerResponse) => void) {
      state.respond = fn;
    },
    maxActive: (path: string) => state.maxActive.get(path) ?? 0,
  };
}

const headersOf = (item: Received): Record<string, string> => item.headers as Record<string, string>;

/** Records an event the way business operations do: inside a transaction, through recordEvent. */
function record(h: Harness, input: EventInput) {
  return h.database.db.transaction((tx) => recordEvent(tx, h.clock, input));
}

async function deliveryOf(h: Harness, eventId: string, endpointId: string) {
  const rows = await h.database.db.select().from(webhookDeliveries).where(eq(webhookDeliveries.eventId, eventId));
  const row = rows.find((item) => item.endpointId === endpointId);
  if (!row) throw new Error(`no delivery of ${eventId} to ${endpointId}`);
  return row;
}

async function endpointRow(h: Harness, id: string) {
  const [row] = await h.database.db.select().from(webhookEndpoints).where(eq(webhookEndpoints.id, id));
  return row!;
}

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

t.test('endpoints: create, read, update, delete, validation, secrets and tenancy', async (t) => {
  const h = await harness(t, { env: DEV });
  const partner = await h.partner();
  const a = api(h, partner);
  const b = api(h, await h.partner('Other partner'));

  const created = await a.post('/v1/webhook-endpoints', {
    url: 'https://billing.example.com/hooks',
    description: 'Billing',
    enabled_events: ['mailbox.*', 'credit.charged', 'mailbox.*'],
    metadata: { team: 'finance' },
  });
  t.equal(created.status, 201);
  t.equal(created.headers.location, `/v1/webhook-endpoints/${created.body.id}`);
  t.match(created.body, {
    id: /^we_[0-9a-z]{26}$/,
    object: 'webhook_endpoint',
    url: 'https://billing.example.com/hooks',
    description: 'Billing',
    enabled_events: ['mailbox.*', 'credit.charged'],
    status: 'enabled',
    disabled_reason: null,
    metadata: { team: 'finance' },
    created_at: '2026-11-22T09:00:00.000Z',
    updated_at: '2026-11-22T09:00:00.000Z',
    secret_rotation_ends_at: null,
  });
  t.same(created.body.enabled_events, ['mailbox.*', 'credit.charged'], 'duplicates dropped, order kept');
  t.match(created.body.secret, /^whsec_[A-Za-z0-9+/]{32}$/);
  t.equal(Buffer.from(created.body.secret.slice(6), 'base64').length, 24, 'the secret is 24 random bytes');
  const id = created.body.id;

  const fetched = await a.get(`/v1/webhook-endpoints/${id}`);
  t.equal(fetched.status, 200);
  const { secret: _secret, ...shown } = created.body;
  t.same(fetched.body, shown, 'the same view without the secret, which only creation and rotation show');

  const plain = (await a.post('/v1/webhook-endpoints', { url: 'http://127.0.0.1:9/hook' })).body;
  t.same(plain.enabled_events, ['*'], 'every (non opt-in) event by default');
  t.equal(plain.description, null);
  const list = await a.get('/v1/webhook-endpoints?limit=1');
  t.same(list.body.data.map((x: { id: string }) => x.id), [plain.id], 'newest first');
  t.equal(list.body.has_more, true);
  t.same((await a.get(`/v1/webhook-endpoints?starting_after=${list.body.next_cursor}`)).body.data.map((x: { id: string }) => x.id), [id]);

  // Validation: unknown types are reported each at its index; URLs must be usable.
  const badEvents = await a.post('/v1/webhook-endpoints', { url: 'https://x.example.com', enabled_events: ['mailbox.*', 'mailbox.exploded', 'test.webhook', 'nothing.*'] });
  t.equal(badEvents.status, 400);
  t.equal(badEvents.body.code, 'validation_error');
  t.same(badEvents.body.errors.map((e: { pointer: string; code: string }) => [e.pointer, e.code]), [
    ['/enabled_events/1', 'unknown_event_type'], ['/enabled_events/2', 'unknown_event_type'], ['/enabled_events/3', 'unknown_event_type'],
  ]);
  t.equal((await a.post('/v1/webhook-endpoints', { url: 'https://x.example.com', enabled_events: [] })).status, 400);
  t.equal((await a.post('/v1/webhook-endpoints', { url: 'https://x.example.com', secret: 'mine' })).status, 400, 'unknown fields are refused');
  for (const [url, code] of [
    ['ftp://files.example.com/in', 'invalid_url'],
    ['/relative/path', 'invalid_url'],
    ['https://user:secret@hooks.example.com/', 'url_credentials'],
  ] as const) {
    const refused = await a.post('/v1/webhook-endpoints', { url });
    t.match(refused.body, { status: 400, code: 'validation_error', errors: [{ pointer: '/url', location: 'body', code }] }, url);
  }

  // PATCH: only what is sent changes; metadata merges; disabling by the partner says so, enabling clears it.
  h.clock.advance(60_000);
  const patched = await a.patch(`/v1/webhook-endpoints/${id}`, {
    description: null, enabled_events: ['customer.created'], metadata: { team: null, owner: 'anna' }, status: 'disabled',
  });
  t.equal(patched.status, 200);
  t.match(patched.body, {
    url: 'https://billing.example.com/hooks', description: null, enabled_events: ['customer.created'], metadata: { owner: 'anna' },
    status: 'disabled', disabled_reason: 'partner', updated_at: '2026-11-22T09:01:00.000Z', created_at: '2026-11-22T09:00:00.000Z',
  });
  t.same(Object.keys(patched.body.metadata), ['owner']);
  t.match((await a.patch(`/v1/webhook-endpoints/${id}`, { status: 'enabled' })).body, { status: 'enabled', disabled_reason: null });
  t.match((await a.patch(`/v1/webhook-endpoints/${id}`, { enabled_events: ['mailbox.*', 'bogus'] })).body, { status: 400, errors: [{ pointer: '/enabled_events/1' }] });
  t.match((await a.patch(`/v1/webhook-endpoints/${id}`, { url: 'https://a:b@x.example.com' })).body, { status: 400, errors: [{ pointer: '/url', code: 'url_credentials' }] });
  t.equal((await a.patch(`/v1/webhook-endpoints/${id}`, { status: 'paused' })).status, 400);

  // Rotation returns the new secret once and says until when the old one signs.
  const rotated = await a.post(`/v1/webhook-endpoints/${id}/rotate-secret`);
  t.equal(rotated.status, 200);
  t.match(rotated.body.secret, /^whsec_/);
  t.not(rotated.body.secret, created.body.secret);
  t.equal(rotated.body.secret_rotation_ends_at, '2026-11-23T09:01:00.000Z');
  t.equal((await a.get(`/v1/webhook-endpoints/${id}`)).body.secret_rotation_ends_at, '2026-11-23T09:01:00.000Z');

  // Another partner sees nothing of it: every route is the same 404 as for a missing endpoint.
  const event = (await a.post(`/v1/webhook-endpoints/${id}/test`)).body;
  for (const response of [
    await b.get(`/v1/webhook-endpoints/${id}`),
    await b.patch(`/v1/webhook-endpoints/${id}`, { description: 'mine' }),
    await b.del(`/v1/webhook-endpoints/${id}`),
    await b.post(`/v1/webhook-endpoints/${id}/rotate-secret`),
    await b.post(`/v1/webhook-endpoints/${id}/test`),
    await b.get(`/v1/webhook-endpoints/${id}/attempts`),
    await b.post(`/v1/events/${event.id}/redeliver`),
    await a.get('/v1/webhook-endpoints/we_00000000000000000000000000'),
  ]) {
    t.match(response, { status: 404, body: { code: 'resource_missing' } });
  }
  t.same((await b.get('/v1/webhook-endpoints')).body.data, []);

  // Delete: gone everywhere, and what was still owed to it is given up.
  t.same((await a.del(`/v1/webhook-endpoints/${id}`)).body, { id, object: 'webhook_endpoint', livemode: true, deleted: true });
  t.equal((await deliveryOf(h, event.id, id)).status, 'failed');
  t.equal(await h.app.webhooks.drain(), 0, 'nothing is sent to a deleted endpoint');
  for (const response of [
    await a.get(`/v1/webhook-endpoints/${id}`),
    await a.patch(`/v1/webhook-endpoints/${id}`, { description: 'x' }),
    await a.del(`/v1/webhook-endpoints/${id}`),
    await a.post(`/v1/webhook-endpoints/${id}/test`),
    await a.get(`/v1/webhook-endpoints/${id}/attempts`),
  ]) {
    t.equal(response.status, 404);
  }
  t.same((await a.get('/v1/webhook-endpoints')).body.data.map((x: { id: string }) => x.id), [plain.id]);
});

t.test('URL safety outside development: https only, no private addresses, also when DNS points inwards', async (t) => {
  const h = await harness(t);
  const a = api(h, await h.partner());
  for (const [url, code] of [
    ['http://hooks.example.com/in', 'https_required'],
    ['https://127.0.0.1/in', 'private_address'],
    ['https://127.1.2.3:8443/in', 'private_address'],
    ['https://2130706433/in', 'private_address'],
    ['https://10.0.0.8/in', 'private_address'],
    ['https://172.20.1.1/in', 'private_address'],
    ['https://192.168.1.10/in', 'private_address'],
    ['https://169.254.169.254/latest/meta-data', 'private_address'],
    ['https://100.64.0.1/in', 'private_address'],
    ['https://0.0.0.0/in', 'private_address'],
    ['https://224.0.0.1/in', 'private_address'],
    ['https://[::1]/in', 'private_address'],
    ['https://[::]/in', 'private_address'],
    ['https://[::ffff:127.0.0.1]/in', 'private_address'],
    ['https://[::ffff:a00:1]/in', 'private_address'],
    ['https://[fd12:3456::1]/in', 'private_address'],
    ['https://[fe80::1]/in', 'private_address'],
    ['https://[ff02::1]/in', 'private_address'],
    ['https://localhost/in', 'private_address'],
    ['https://api.localhost/in', 'private_address'],
  ] as const) {
    const refused = await a.post('/v1/webhook-endpoints', { url });
    t.match(refused.body, { status: 400, code: 'validation_error', errors: [{ pointer: '/url', code }] }, url);
  }
  t.equal((await a.post('/v1/webhook-endpoints', { url: 'https://[::ffff:127.0.0.1]/in' })).body.errors[0].detail,
    'must not point to a private network: ::ffff:7f00:1 is a loopback address (allowed only when the server runs with APP_ENV=development)');
  t.equal((await a.post('/v1/webhook-endpoints', { url: 'https://hooks.example.com/in' })).status, 201);
  t.equal((await a.post('/v1/webhook-endpoints', { url: 'https://8.8.8.8/in' })).status, 201);
  t.equal((await a.post('/v1/webhook-endpoints', { url: 'https://[2001:4860:4860::8888]/in' })).status, 201);
  const endpoint = (await a.post('/v1/webhook-endpoints', { url: 'https://hooks.example.com/in' })).body;
  t.match((await a.patch(`/v1/webhook-endpoints/${endpoint.id}`, { url: 'https://192.168.0.1/' })).body, { status: 400, errors: [{ code: 'private_address' }] });

  // At connect time: a name that resolves to loopback (as a public name rebound to 127.0.0.1 would; `localhost` here)
  // and a literal that got into the database while the server ran in development are both refused.
  const receiving = await receiver(t);
  const byName = (await a.post('/v1/webhook-endpoints', { url: 'https://hooks.example.com/named' })).body;
  const byLiteral = (await a.post('/v1/webhook-endpoints', { url: 'https://hooks.example.com/literal' })).body;
  await h.database.db.update(webhookEndpoints).set({ url: `http://localhost:${receiving.port}/named` }).where(eq(webhookEndpoints.id, byName.id));
  await h.database.db.update(webhookEndpoints).set({ url: receiving.url('/literal') }).where(eq(webhookEndpoints.id, byLiteral.id));
  await a.post(`/v1/webhook-endpoints/${byName.id}/test`);
  await a.post(`/v1/webhook-endpoints/${byLiteral.id}/test`);
  t.equal(await h.app.webhooks.drain(), 2);
  t.equal(receiving.received.length, 0, 'no request left the server');
  const [named] = (await a.get(`/v1/webhook-endpoints/${byName.id}/attempts`)).body.data;
  t.match(named, { succeeded: false, response_status: null, response_body_excerpt: null, url: `http://localhost:${receiving.port}/named` });
  t.match(named.error, /^refused to connect: localhost resolves to (127\.0\.0\.1|::1), a loopback address; private networks are not reachable outside development$/);
  const [literal] = (await a.get(`/v1/webhook-endpoints/${byLiteral.id}/attempts`)).body.data;
  t.equal(literal.error, 'refused to connect: 127.0.0.1 is a loopback address; private networks are not reachable outside development');

  // The same deliveries go through for a dispatcher running in development.
  const development = new WebhookDispatcher({ db: h.database.db, clock: h.clock, config: loadConfig({ LOG_LEVEL: 'silent', APP_ENV: 'development' }) });
  t.teardown(() => development.stop());
  h.clock.advance(10_000);
  t.equal(await development.drain(), 2);
  t.same(receiving.received.map((item) => item.path).sort(), ['/literal', '/named']);
});

t.test('delivery: Standard Webhooks headers verified by the reference library, the event as the API shows it, filters', async (t) => {
  // Real time: the reference verifier refuses timestamps more than 5 minutes from its own clock.
  const h = await harness(t, { env: DEV, clock: new ManualClock(new Date()) });
  const partner = await h.partner();
  const a = api(h, partner);
  const receiving = await receiver(t);
  const endpoint = (await a.post('/v1/webhook-endpoints', { url: receiving.url('/all'), enabled_events: ['*'] })).body;

  const sent = await a.post(`/v1/webhook-endpoints/${endpoint.id}/test`);
  t.equal(sent.status, 201);
  const { secret: _secret, ...endpointWithoutSecret } = endpoint;
  t.match(sent.body, { id: /^evt_/, object: 'event', type: 'test.webhook', api_version: '2026-11-30', data: { object: endpointWithoutSecret }, request: { id: /^req_/, idempotency_key: null } });
  t.notOk('secret' in sent.body.data.object);
  t.equal(await h.app.webhooks.drain(), 1);
  t.equal(receiving.received.length, 1);
  const [request] = receiving.received;
  const headers = headersOf(request!);
  t.equal(headers['content-type'], 'application/json');
  t.match(headers['user-agent'], /^PEC-Partner-Webhooks\//);
  t.equal(headers['webhook-id'], sent.body.id);
  t.equal(headers['webhook-timestamp'], String(Math.floor(h.clock.now().getTime() / 1000)));
  t.match(headers['webhook-signature'], /^v1,[A-Za-z0-9+/]{43}=$/);
  const verified = new Webhook(endpoint.secret).verify(request!.body, headers);
  t.same(verified, sent.body, 'the verified payload is the event');
  t.throws(() => new Webhook(endpoint.secret).verify(request!.body.replace('test.webhook', 'test.webhooK'), headers), WebhookVerificationError);
  const [row] = await h.database.db.select().from(events).where(eq(events.id, sent.body.id));
  t.equal(request!.body, JSON.stringify(asShown(toEventView({ ...row!, data: row!.data as RecordedEvent['data'] }))), 'the body is the stored event, byte for byte');
  t.same(verified, (await a.get(`/v1/events/${sent.body.id}`)).body, 'and GET /v1/events/{id} shows the same');

  const [attempt] = (await a.get(`/v1/webhook-endpoints/${endpoint.id}/attempts`)).body.data;
  t.match(attempt, {
    id: /^wat_/, object: 'webhook_attempt', event: sent.body.id, endpoint: endpoint.id, url: receiving.url('/all'),
    attempted_at: h.clock.now().toISOString(), succeeded: true, response_status: 200, response_body_excerpt: 'ok', error: null,
  });
  t.ok(Number.isInteger(attempt.latency_ms) && attempt.latency_ms >= 0);
  t.match(await deliveryOf(h, sent.body.id, endpoint.id), { status: 'succeeded', attempts: 1, nextAttemptAt: null, lockedUntil: null });

  // The excerpt keeps the first KiB of a long answer, in whole characters.
  receiving.respond = (_item, res) => void res.end('é'.repeat(100_000));
  await a.post(`/v1/webhook-endpoints/${endpoint.id}/test`);
  t.equal(await h.app.webhooks.drain(), 1);
  t.equal((await a.get(`/v1/webhook-endpoints/${endpoint.id}/attempts`)).body.data[0].response_body_excerpt, 'é'.repeat(512));
  receiving.respond = (_item, res) => void res.end('ok');

  // Filters: `*` leaves out the opt-in message.* types; prefixes and exact types; other partners see nothing.
  const mailboxes = (await a.post('/v1/webhook-endpoints', { url: receiving.url('/mailbox'), enabled_events: ['mailbox.*'] })).body;
  await a.post('/v1/webhook-endpoints', { url: receiving.url('/exact'), enabled_events: ['credit.charged', 'message.delivered'] });
  await a.post('/v1/webhook-endpoints', { url: receiving.url('/messages'), enabled_events: ['message.*'] });
  const disabled = (await a.post('/v1/webhook-endpoints', { url: receiving.url('/disabled') })).body;
  await a.patch(`/v1/webhook-endpoints/${disabled.id}`, { status: 'disabled' });
  const other = api(h, await h.partner('Other'));
  await other.post('/v1/webhook-endpoints', { url: receiving.url('/other') });
  receiving.received.length = 0;

  const types = ['mailbox.created', 'credit.charged', 'message.delivered', 'customer.created', 'mailbox_addon.created'] as const;
  for (const type of types) await record(h, { partnerId: partner.id, type, object: { id: `obj_${type}`, object: 'thing' } });
  t.equal(await h.app.webhooks.drain(), 8);
  const typesAt = (path: string) => receiving.at(path).map((item) => JSON.parse(item.body).type).sort();
  t.same(typesAt('/all'), ['credit.charged', 'customer.created', 'mailbox.created', 'mailbox_addon.created']);
  t.same(typesAt('/mailbox'), ['mailbox.created'], '`mailbox.*` is not `mailbox_addon.*`');
  t.same(typesAt('/exact'), ['credit.charged', 'message.delivered']);
  t.same(typesAt('/messages'), ['message.delivered']);
  t.same(typesAt('/disabled'), []);
  t.same(typesAt('/other'), []);
  for (const item of receiving.at('/all')) t.doesNotThrow(() => new Webhook(endpoint.secret).verify(item.body, headersOf(item)));
  // A changed filter applies to the events written after the change.
  await a.patch(`/v1/webhook-endpoints/${mailboxes.id}`, { enabled_events: ['credit.*'] });
  await record(h, { partnerId: partner.id, type: 'mailbox.renewed', object: { id: 'mbx_1', object: 'mailbox' } });
  t.equal(await h.app.webhooks.drain(), 1, 'only `*` takes mailbox.renewed now');
});

t.test('failures: retries on the Standard Webhooks schedule, 410 and 3 days of failures disable, redirects, timeouts', async (t) => {
  const h = await harness(t, { env: { ...DEV, WEBHOOK_TIMEOUT_MS: '400' } });
  const partner = await h.partner();
  const a = api(h, partner);
  const receiving = await receiver(t);
  let flakyCalls = 0;
  const held: ServerResponse[] = [];
  receiving.respond = (item, res) => {
    if (item.path === '/flaky') return void res.writeHead(++flakyCalls === 1 ? 500 : 200).end(flakyCalls === 1 ? 'boom' : 'fine');
    if (item.path === '/fail') return void res.writeHead(503).end('down');
    if (item.path === '/gone') return void res.writeHead(410).end('gone');
    if (item.path === '/redirect') return void res.writeHead(302, { location: '/target' }).end();
    if (item.path === '/hang') return void held.push(res);
    res.end('ok');
  };
  t.teardown(() => held.forEach((res) => res.destroy()));
  // Endpoints that do not listen to webhook_endpoint.disabled, so only the watcher's requests count as notices.
  const create = async (path: string, enabledEvents = ['customer.*']) => (await a.post('/v1/webhook-endpoints', { url: receiving.url(path), enabled_events: enabledEvents })).body;
  const attemptsOf = async (id: string) => (await a.get(`/v1/webhook-endpoints/${id}/attempts?limit=100`)).body.data;
  await create('/watch', ['webhook_endpoint.disabled']);

  // 500 then 200: two attempts, same webhook-id, the retry 5 s ± 20 % later.
  const flaky = await create('/flaky');
  const start = h.clock.now().getTime();
  const first = (await a.post(`/v1/webhook-endpoints/${flaky.id}/test`)).body;
  t.equal(await h.app.webhooks.drain(), 1);
  const pending = await deliveryOf(h, first.id, flaky.id);
  t.match(pending, { status: 'pending', attempts: 1, lockedUntil: null });
  const delay = pending.nextAttemptAt!.getTime() - start;
  t.ok(delay >= 4_000 && delay <= 6_000, `first retry after ${delay} ms`);
  t.ok((await endpointRow(h, flaky.id)).failingSince, 'failing since the first failure');
  h.clock.set(new Date(pending.nextAttemptAt!.getTime() - 1));
  t.equal(await h.app.webhooks.drain(), 0, 'not before its time');
  h.clock.set(pending.nextAttemptAt!);
  t.equal(await h.app.webhooks.drain(), 1);
  t.same(receiving.at('/flaky').map((item) => item.headers['webhook-id']), [first.id, first.id], 'the same webhook-id on the retry');
  t.same(receiving.at('/flaky').map((item) => Number(item.headers['webhook-timestamp'])), [Math.floor(start / 1000), Math.floor(pending.nextAttemptAt!.getTime() / 1000)]);
  t.equal((await attemptsOf(flaky.id)).length, 2);
  t.match(await attemptsOf(flaky.id), [
    { succeeded: true, response_status: 200, response_body_excerpt: 'fine', error: null, attempted_at: pending.nextAttemptAt!.toISOString() },
    { succeeded: false, response_status: 500, response_body_excerpt: 'boom', error: null, attempted_at: new Date(start).toISOString() },
  ]);
  t.match(await deliveryOf(h, first.id, flaky.id), { status: 'succeeded', attempts: 2 });
  t.equal((await endpointRow(h, flaky.id)).failingSince, null, 'a success ends the failing run');

  // Always failing: 8 attempts over about a day, each retry within ±20 % of the schedule, then given up.
  const failing = await create('/fail');
  const t0 = h.clock.now().getTime();
  const failed = (await a.post(`/v1/webhook-endpoints/${failing.id}/test`)).body;
  t.equal(await h.app.webhooks.drain(), 1);
  for (const [index, base] of RETRY_DELAYS_MS.entries()) {
    const delivery = await deliveryOf(h, failed.id, failing.id);
    const wait = delivery.nextAttemptAt!.getTime() - h.clock.now().getTime();
    t.ok(wait >= base * 0.8 && wait <= base * 1.2, `retry ${index + 1} after ${wait} ms (schedule ${base} ms)`);
    h.clock.set(delivery.nextAttemptAt!);
    t.equal(await h.app.webhooks.drain(), 1);
  }
  t.match(await deliveryOf(h, failed.id, failing.id), { status: 'failed', attempts: 8, nextAttemptAt: null, lockedUntil: null });
  t.equal(receiving.at('/fail').length, 8);
  t.equal((await attemptsOf(failing.id)).length, 8);
  t.match(await endpointRow(h, failing.id), { status: 'enabled', failingSince: new Date(t0) }, 'about a day of failures does not disable it');

  // Still failing near the 3-day mark: the first attempt at or after failing_since + 3 days disables it.
  h.clock.set(new Date(t0 + 3 * DAYS - 10 * 60_000));
  const late = (await a.post(`/v1/webhook-endpoints/${failing.id}/test`)).body;
  const times: number[] = [];
  const counts: number[] = [];
  while ((await endpointRow(h, failing.id)).status === 'enabled') {
    times.push(h.clock.now().getTime());
    counts.push(await h.app.webhooks.drain());
    h.clock.set((await deliveryOf(h, late.id, failing.id)).nextAttemptAt!);
  }
  t.ok(times.at(-1)! >= t0 + 3 * DAYS && times.at(-2)! < t0 + 3 * DAYS, 'disabled by the first attempt after 3 days of failures');
  t.same(counts, [...counts.slice(0, -1).map(() => 1), 2], 'one attempt each time; the last one also tells the watcher');
  t.match((await a.get(`/v1/webhook-endpoints/${failing.id}`)).body, { status: 'disabled', disabled_reason: 'failing' });
  const [disabledEvent] = receiving.at('/watch').map((item) => JSON.parse(item.body));
  t.match(disabledEvent, {
    type: 'webhook_endpoint.disabled',
    request: { id: null, idempotency_key: null },
    data: {
      object: { id: failing.id, object: 'webhook_endpoint', status: 'disabled', disabled_reason: 'failing' },
      previous_attributes: { status: 'enabled', disabled_reason: null },
    },
  });
  t.notOk('secret' in disabledEvent.data.object);
  h.clock.advance(DAYS);
  t.equal(await h.app.webhooks.drain(), 0, 'nothing more is sent to a disabled endpoint');
  // Enabling it again is a fresh start: what was owed resumes, and one failure no longer disables it.
  t.match((await a.patch(`/v1/webhook-endpoints/${failing.id}`, { status: 'enabled' })).body, { status: 'enabled', disabled_reason: null });
  t.equal((await endpointRow(h, failing.id)).failingSince, null);
  t.equal(await h.app.webhooks.drain(), 1);
  t.equal((await endpointRow(h, failing.id)).status, 'enabled');

  // 410 Gone disables at once.
  const gone = await create('/gone');
  const goneEvent = (await a.post(`/v1/webhook-endpoints/${gone.id}/test`)).body;
  t.equal(await h.app.webhooks.drain(), 2, 'the attempt and the watcher\'s notice');
  t.match((await a.get(`/v1/webhook-endpoints/${gone.id}`)).body, { status: 'disabled', disabled_reason: 'gone' });
  t.match((await attemptsOf(gone.id))[0], { event: goneEvent.id, succeeded: false, response_status: 410, response_body_excerpt: 'gone' });
  t.match(JSON.parse(receiving.at('/watch')[1]!.body), { type: 'webhook_endpoint.disabled', data: { object: { id: gone.id, disabled_reason: 'gone' } } });
  t.equal((await a.post(`/v1/webhook-endpoints/${gone.id}/test`)).body.code, 'webhook_endpoint_disabled');
  const disabledEvents = await h.database.db.select().from(events).where(eq(events.type, 'webhook_endpoint.disabled'));
  t.same(disabledEvents.map((row) => row.objectId).sort(), [failing.id, gone.id].sort(), 'one event per disabling, none for PATCH');

  // Redirects are answers, not instructions: a 3xx is a failed attempt and the target never hears of it.
  const redirect = await create('/redirect');
  await a.post(`/v1/webhook-endpoints/${redirect.id}/test`);
  t.equal(await h.app.webhooks.drain(), 1);
  t.match((await attemptsOf(redirect.id))[0], { succeeded: false, response_status: 302, error: 'redirects are not followed (Location: /target)' });
  t.equal(receiving.at('/target').length, 0);

  // A receiver that never answers: the attempt ends after WEBHOOK_TIMEOUT_MS.
  const hang = await create('/hang');
  const hangEvent = (await a.post(`/v1/webhook-endpoints/${hang.id}/test`)).body;
  const before = Date.now();
  t.equal(await h.app.webhooks.drain(), 1);
  const elapsed = Date.now() - before;
  t.ok(elapsed >= 400 && elapsed < 3_000, `gave up after ${elapsed} ms`);
  const [timedOut] = await attemptsOf(hang.id);
  t.match(timedOut, { event: hangEvent.id, succeeded: false, response_status: null, response_body_excerpt: null, error: 'timed out: no answer within 400 ms' });
  t.ok(timedOut.latency_ms >= 400, `latency ${timedOut.latency_ms} ms`);
  t.match(await deliveryOf(h, hangEvent.id, hang.id), { status: 'pending', attempts: 1, lockedUntil: null });

  // Unreachable: nothing listens there.
  const closed = (await a.post('/v1/webhook-endpoints', { url: 'http://127.0.0.1:9/nothing' })).body;
  await a.post(`/v1/webhook-endpoints/${closed.id}/test`);
  t.equal(await h.app.webhooks.drain(), 1);
  t.match((await attemptsOf(closed.id))[0], { succeeded: false, response_status: null, error: 'connection refused' });
});

t.test('secret rotation: both secrets sign for 24 hours, then only the new one', async (t) => {
  // The clock is placed so that both deliveries carry timestamps the reference verifier accepts (±5 minutes).
  const realNow = Date.now();
  const h = await harness(t, { env: DEV, clock: new ManualClock(new Date(realNow - 24 * 3_600_000 + 60_000)) });
  const a = api(h, await h.partner());
  const receiving = await receiver(t);
  const endpoint = (await a.post('/v1/webhook-endpoints', { url: receiving.url('/hook') })).body;
  const rotated = (await a.post(`/v1/webhook-endpoints/${endpoint.id}/rotate-secret`)).body;
  t.equal(rotated.secret_rotation_ends_at, new Date(realNow + 60_000).toISOString());

  // One minute before the overlap ends: two signatures, the new secret's first, each verifying on its own.
  h.clock.set(new Date(realNow));
  const during = (await a.post(`/v1/webhook-endpoints/${endpoint.id}/test`)).body;
  t.equal(await h.app.webhooks.drain(), 1);
  const [inWindow] = receiving.received;
  const signatures = headersOf(inWindow!)['webhook-signature']!.split(' ');
  t.equal(signatures.length, 2);
  const at = new Date(Number(inWindow!.headers['webhook-timestamp']) * 1000);
  t.same(signatures, [new Webhook(rotated.secret).sign(during.id, at, inWindow!.body), new Webhook(endpoint.secret).sign(during.id, at, inWindow!.body)]);
  t.same(new Webhook(endpoint.secret).verify(inWindow!.body, headersOf(inWindow!)), during, 'the old secret verifies');
  t.same(new Webhook(rotated.secret).verify(inWindow!.body, headersOf(inWindow!)), during, 'the new secret verifies');
  t.throws(() => new Webhook('whsec_' + Buffer.alloc(24, 7).toString('base64')).verify(inWindow!.body, headersOf(inWindow!)), WebhookVerificationError);

  // Two minutes later the overlap is over: only the new secret signs.
  h.clock.set(new Date(realNow + 120_000));
  t.equal((await a.get(`/v1/webhook-endpoints/${endpoint.id}`)).body.secret_rotation_ends_at, null);
  const after = (await a.post(`/v1/webhook-endpoints/${endpoint.id}/test`)).body;
  t.equal(await h.app.webhooks.drain(), 1);
  const afterWindow = receiving.received[1]!;
  t.equal(headersOf(afterWindow)['webhook-signature']!.split(' ').length, 1);
  t.same(new Webhook(rotated.secret).verify(afterWindow.body, headersOf(afterWindow)), after);
  t.throws(() => new Webhook(endpoint.secret).verify(afterWindow.body, headersOf(afterWindow)), { message: 'No matching signature found' });
});

t.test('redeliver: to one endpoint or to every one that selects the event, later ones included; same webhook-id', async (t) => {
  const h = await harness(t, { env: DEV });
  const partner = await h.partner();
  const a = api(h, partner);
  const b = api(h, await h.partner('Other'));
  const receiving = await receiver(t);
  const early = (await a.post('/v1/webhook-endpoints', { url: receiving.url('/early') })).body;
  const event = await record(h, { partnerId: partner.id, type: 'customer.created', object: { id: 'cus_1', object: 'customer' } });
  t.equal(await h.app.webhooks.drain(), 1);
  const later = (await a.post('/v1/webhook-endpoints', { url: receiving.url('/later'), enabled_events: ['customer.*'] })).body;
  const unrelated = (await a.post('/v1/webhook-endpoints', { url: receiving.url('/unrelated'), enabled_events: ['mailbox.*'] })).body;
  const off = (await a.post('/v1/webhook-endpoints', { url: receiving.url('/off') })).body;
  await a.patch(`/v1/webhook-endpoints/${off.id}`, { status: 'disabled' });

  h.clock.advance(60_000);
  const all = await a.post(`/v1/events/${event.id}/redeliver`);
  t.equal(all.status, 202);
  t.equal(all.body.object, 'list');
  t.same(all.body.data.map((x: { endpoint: string }) => x.endpoint).sort(), [early.id, later.id].sort());
  for (const delivery of all.body.data) {
    t.match(delivery, { id: /^wdl_/, object: 'webhook_delivery', event: event.id, status: 'pending', attempts: 0, next_attempt_at: h.clock.now().toISOString() });
  }
  t.equal(await h.app.webhooks.drain(), 2);
  t.same(receiving.at('/early').map((item) => item.headers['webhook-id']), [event.id, event.id], 'the receiver can de-duplicate');
  t.same(receiving.at('/later').map((item) => item.headers['webhook-id']), [event.id]);
  t.same(JSON.parse(receiving.at('/later')[0]!.body), asShown(structuredClone(event)));

  // Naming an endpoint sends it there, whatever its filter.
  const one = await a.post(`/v1/events/${event.id}/redeliver`, { endpoint: unrelated.id });
  t.same(one.body.data.map((x: { endpoint: string }) => x.endpoint), [unrelated.id]);
  t.equal(await h.app.webhooks.drain(), 1);
  t.equal(receiving.at('/unrelated').length, 1);
  t.match((await a.post(`/v1/events/${event.id}/redeliver`, { endpoint: off.id })).body, { status: 409, code: 'webhook_endpoint_disabled' });
  t.match((await a.post(`/v1/events/${event.id}/redeliver`, { endpoint: 'we_00000000000000000000000000' })).body, { status: 400, errors: [{ pointer: '/endpoint', code: 'resource_missing' }] });
  const foreign = (await b.post('/v1/webhook-endpoints', { url: receiving.url('/foreign') })).body;
  t.match((await a.post(`/v1/events/${event.id}/redeliver`, { endpoint: foreign.id })).body, { status: 400, errors: [{ pointer: '/endpoint' }] });
  t.match((await b.post(`/v1/events/${event.id}/redeliver`)).body, { status: 404, code: 'resource_missing' });
  t.match((await a.post('/v1/events/evt_00000000000000000000000000/redeliver')).body, { status: 404, code: 'resource_missing' });

  // A test event goes again to the endpoint it was for (no filter selects test.webhook).
  const test = (await a.post(`/v1/webhook-endpoints/${later.id}/test`)).body;
  t.equal(await h.app.webhooks.drain(), 1);
  t.same((await a.post(`/v1/events/${test.id}/redeliver`)).body.data.map((x: { endpoint: string }) => x.endpoint), [later.id]);
  t.equal(await h.app.webhooks.drain(), 1);
  t.same(receiving.at('/later').map((item) => JSON.parse(item.body).type), ['customer.created', 'test.webhook', 'test.webhook']);
  t.equal((await a.get(`/v1/webhook-endpoints/${later.id}/attempts`)).body.data.length, 3);
});

/** The environment of a child process: without tap's NODE_OPTIONS and its process-tracking hooks. */
const cleanEnv = (): NodeJS.ProcessEnv =>
  Object.fromEntries(Object.entries(process.env).filter(([name]) => name !== 'NODE_OPTIONS' && !name.startsWith('TAP')));

t.test('restarts: a process killed mid-delivery loses nothing; the next dispatcher sends the same webhook-id at once', async (t) => {
  const h = await harness(t, { env: DEV, clock: new ManualClock(new Date()) });
  const a = api(h, await h.partner());
  const receiving = await receiver(t);
  const held: ServerResponse[] = [];
  // The first request hangs (the process dies while waiting for it); later ones are answered.
  receiving.respond = (_item, res) => (receiving.received.length === 1 ? void held.push(res) : void res.end('ok'));
  t.teardown(() => held.forEach((res) => res.destroy()));
  const endpoint = (await a.post('/v1/webhook-endpoints', { url: receiving.url('/hook') })).body;
  const sent = [];
  for (let i = 0; i < 3; i++) sent.push((await a.post(`/v1/webhook-endpoints/${endpoint.id}/test`)).body);

  // Another process, with its own dispatcher on the same database, starts delivering and is killed (SIGKILL).
  const [current] = await h.database.sql<{ name: string }[]>`select current_database() as name`;
  const url = new URL(serverUrl());
  url.pathname = `/${current!.name}`;
  const script = `
    import { connect } from '@pec-partner/db';
    import { loadConfig, ManualClock } from '@pec-partner/api';
    import { WebhookDispatcher } from ${JSON.stringify(fileURLToPath(new URL('../api/src/webhooks/dispatcher.ts', import.meta.url)))};
    const database = connect(process.env.DATABASE_URL);
    const config = loadConfig({ ...process.env, LOG_LEVEL: 'silent', APP_ENV: 'development', WEBHOOK_TIMEOUT_MS: '60000' });
    new WebhookDispatcher({ db: database.db, clock: new ManualClock(process.env.CLOCK), config }).start(1, 50);`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: fileURLToPath(new URL('.', import.meta.url)),
    env: { ...cleanEnv(), DATABASE_URL: url.toString(), CLOCK: h.clock.now().toISOString() },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const exited = new Promise((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  await until('the other process to send', () => receiving.received.length === 1, 30_000);
  child.kill('SIGKILL');
  t.equal(await exited, 'SIGKILL');
  const inFlight = await deliveryOf(h, sent[0].id, endpoint.id);
  t.match(inFlight, { status: 'pending', attempts: 0 }, 'the attempt was never recorded');
  t.ok(inFlight.lockedUntil! > h.clock.now(), 'its lease outlives the process');

  // The dead process's lease is taken over at once, without waiting for it to expire: its lock session ended with
  // it (as soon as the server has noticed the closed connection).
  let attempts = 0;
  await until('every delivery, the interrupted one again', async () => (attempts += await h.app.webhooks.drain()) >= 3, 10_000);
  t.equal(attempts, 3);
  const ids = receiving.received.map((item) => item.headers['webhook-id']);
  t.equal(ids[0], sent[0].id);
  t.same([...ids].sort(), [sent[0].id, ...sent.map((e) => e.id)].sort(), 'every event arrived; the interrupted one twice, with the same id');
  for (const item of receiving.received.slice(1)) t.doesNotThrow(() => new Webhook(endpoint.secret).verify(item.body, headersOf(item)));
  for (const event of sent) t.equal((await deliveryOf(h, event.id, endpoint.id)).status, 'succeeded');
});

t.test('concurrency: at most WEBHOOK_CONCURRENCY_PER_ENDPOINT requests in flight per endpoint, others unaffected', async (t) => {
  const h = await harness(t, { env: { ...DEV, WEBHOOK_CONCURRENCY_PER_ENDPOINT: '2' } });
  const partner = await h.partner();
  const a = api(h, partner);
  const receiving = await receiver(t);
  receiving.respond = (_item, res) => void setTimeout(() => res.end('ok'), 150);
  const busy = (await a.post('/v1/webhook-endpoints', { url: receiving.url('/busy'), enabled_events: ['customer.*'] })).body;
  const quiet = (await a.post('/v1/webhook-endpoints', { url: receiving.url('/quiet'), enabled_events: ['credit.*'] })).body;
  for (let i = 0; i < 8; i++) await record(h, { partnerId: partner.id, type: 'customer.created', object: { id: `cus_${i}`, object: 'customer' } });
  for (let i = 0; i < 3; i++) await record(h, { partnerId: partner.id, type: 'credit.topped_up', object: { id: `led_${i}`, object: 'ledger_entry' } });

  h.app.webhooks.start(6, 10);
  await until('all deliveries', () => receiving.received.length === 11);
  await h.app.webhooks.stop();
  t.equal(receiving.at('/busy').length, 8);
  t.equal(receiving.at('/quiet').length, 3);
  t.equal(receiving.maxActive('/busy'), 2, 'two at a time, never more');
  t.ok(receiving.maxActive('/quiet') >= 1);
  t.equal((await a.get(`/v1/webhook-endpoints/${busy.id}/attempts?limit=100`)).body.data.length, 8);
  t.equal((await a.get(`/v1/webhook-endpoints/${quiet.id}/attempts?limit=100`)).body.data.length, 3);
});
