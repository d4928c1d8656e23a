import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t from 'tap';
import {
  AuthenticationError, ConflictError, ConnectionError, InvalidRequestError, NotFoundError, PecOperator, PecPartner, PecPartnerError,
  RateLimitError, responseOf, WebhookVerificationError, webhooks,
} from '@pec-partner/sdk';
import { Webhook } from 'standardwebhooks';
import { startDnsServer } from './helpers/dns-server.ts';
import { harness } from './helpers/harness.ts';
import { creditPartner } from './helpers/fixtures.ts';

const root = fileURLToPath(new URL('..', import.meta.url));

/** A reverse proxy in front of the real server that fails chosen attempts, recording what each attempt sent. */
async function faultyProxy(target: string, fail: (attempt: number, req: IncomingMessage) => 'drop' | 503 | 429 | null) {
  const seen: { method: string; url: string; idempotencyKey: string | undefined }[] = [];
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    seen.push({ method: req.method!, url: req.url!, idempotencyKey: req.headers['idempotency-key'] as string | undefined });
    const fault = fail(seen.length, req);
    if (fault === 'drop') return req.socket.destroy();
    if (fault) {
      res.writeHead(fault, { 'content-type': 'application/problem+json', 'retry-after': '0' });
      return res.end(JSON.stringify({ type: 'urn:x', title: 'Injected', status: fault, detail: 'injected', code: 'injected', request_id: 'req_proxy' }));
    }
    const upstream = await fetch(`${target}${req.url}`, {
      method: req.method!,
      headers: Object.fromEntries(Object.entries(req.headers).filter(([k]) => !['host', 'connection', 'content-length'].includes(k))) as Record<string, string>,
      body: ['GET', 'HEAD'].includes(req.method!) ? undefined : Buffer.concat(chunks),
    });
    res.writeHead(upstream.status, Object.fromEntries(upstream.headers));
    res.end(Buffer.from(await upstream.arrayBuffer()));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, close: () => new Promise((r) => server.close(r)) };
}

t.test('SDK against a listening server: resources, auto-pagination, typed errors, response metadata', async (t) => {
  const h = await harness(t);
  const base = await h.listen();
  const p = await h.partner();
  const client = new PecPartner({ apiKey: p.secret, baseUrl: base });

  const created = await client.customers.create({ type: 'private_person', first_name: 'Mario', last_name: 'Rossi', tax_code: 'RSSMRA85T10A562S' });
  t.equal(created.object, 'customer');
  t.match(responseOf(created), { status: 201, requestId: /^req_/, idempotentReplayed: false });
  t.same(await client.customers.retrieve(created.id), created);
  const updated = await client.customers.update(created.id, { email: 'mario@example.it', metadata: { crm: '7' } });
  t.match(updated, { email: 'mario@example.it', metadata: { crm: '7' } });

  for (let i = 0; i < 104; i++) {
    await client.customers.create({ type: 'company', business_name: `Company ${String(i).padStart(3, '0')}`, vat_number: '01234567897' });
  }
  const names: string[] = [];
  for await (const customer of client.customers.list({ type: 'company' })) names.push(customer.business_name!);
  t.equal(names.length, 104, 'iterates across two pages of 100');
  t.equal(new Set(names).size, 104);
  t.equal(names[0], 'Company 103');
  const page = await client.customers.page({ limit: 3, q: 'company 00' });
  t.equal(page.data.length, 3);
  t.equal(page.has_more, true);

  const error = await client.customers.create({ type: 'company', business_name: 'X', vat_number: '01234567890' }).catch((e: unknown) => e);
  t.ok(error instanceof InvalidRequestError);
  t.match(error, { status: 400, code: 'validation_error', requestId: /^req_/, errors: [{ pointer: '/vat_number', code: 'invalid_vat_number' }] });
  t.ok(error instanceof PecPartnerError);

  const missing = await client.customers.retrieve('cus_00000000000000000000000000').catch((e: unknown) => e);
  t.ok(missing instanceof NotFoundError);
  t.equal((missing as NotFoundError).code, 'resource_missing');

  // A top-up is pending until the provider's operator confirms the transfer (PecOperator, its own client).
  const entry = await client.credit.topUp({ amount: 2500, currency: 'EUR', payment_reference: 'SDK-1' });
  t.match(entry, { status: 'pending', partner_reference: 'SDK-1', payment_reference: /^PEC-/ });
  const operator = await h.operator('billing');
  const pecOperator = new PecOperator({ apiKey: operator.secret, baseUrl: base });
  t.match(await pecOperator.topUps.confirm(entry.id, 'SDK test transfer'), { id: entry.id, status: 'credited' });
  const wrongSide = await new PecOperator({ apiKey: operator.secret, baseUrl: base }).get('/v1/credit').catch((e: unknown) => e);
  t.match(wrongSide, { status: 403, code: 'partner_credentials_required' });
  t.throws(() => new PecOperator({ apiKey: p.secret, baseUrl: base }), TypeError);
  const conflict = await pecOperator.topUps.fail(entry.id, 'too late').catch((e: unknown) => e);
  t.ok(conflict instanceof ConflictError);

  const replayed = await client.credit.topUp({ amount: 700, currency: 'EUR', payment_reference: 'SDK-2' }, { idempotencyKey: 'sdk-fixed' });
  const again = await client.credit.topUp({ amount: 700, currency: 'EUR', payment_reference: 'SDK-2' }, { idempotencyKey: 'sdk-fixed' });
  t.equal(again.id, replayed.id);
  t.equal(responseOf(again)?.idempotentReplayed, true);
  await pecOperator.topUps.confirm(replayed.id, 'SDK test transfer 2');
  t.equal((await client.credit.retrieve()).balance, 3200);

  const ledger = [];
  for await (const item of client.credit.ledger()) ledger.push(item.amount);
  t.same(ledger, [700, 2500]);
  const prices = [];
  for await (const price of client.prices.list()) prices.push(price.id);
  t.equal(prices.length, 10);

  const bad = new PecPartner({ apiKey: 'sk_live_wrong', baseUrl: base });
  t.ok((await bad.credit.retrieve().catch((e: unknown) => e)) instanceof AuthenticationError);
});

t.test('retries reuse the idempotency key, so a retried top-up is booked once', async (t) => {
  const h = await harness(t);
  const base = await h.listen();
  const p = await h.partner();

  // First attempt: the connection drops after the server saw nothing; second: 503; third goes through.
  const proxy = await faultyProxy(base, (attempt) => (attempt === 1 ? 'drop' : attempt === 2 ? 503 : null));
  t.teardown(proxy.close);
  const client = new PecPartner({ apiKey: p.secret, baseUrl: proxy.url, maxRetries: 3 });
  const entry = await client.credit.topUp({ amount: 1000, currency: 'EUR', payment_reference: 'RETRY-1' });
  t.equal(proxy.seen.length, 3);
  const keys = new Set(proxy.seen.map((s) => s.idempotencyKey));
  t.equal(keys.size, 1, 'one key across all attempts');
  t.match([...keys][0], /^[0-9a-f-]{36}$/);
  t.equal(entry.amount, 1000);
  const requested = [];
  for await (const item of new PecPartner({ apiKey: p.secret, baseUrl: base }).credit.topUps()) requested.push(item.id);
  t.same(requested, [entry.id], 'one top-up for three attempts');

  // A response lost after the server executed it: the client's next attempt carries the same key, so the
  // server replays the stored response instead of booking the payment twice.
  const first = new PecPartner({ apiKey: p.secret, baseUrl: base });
  const key = 'lost-response-key';
  const executed = await first.credit.topUp({ amount: 400, currency: 'EUR', payment_reference: 'LOST-1' }, { idempotencyKey: key });
  const retried = await first.credit.topUp({ amount: 400, currency: 'EUR', payment_reference: 'LOST-1' }, { idempotencyKey: key });
  t.equal(retried.id, executed.id);
  t.equal(responseOf(retried)?.idempotentReplayed, true);
  const all = [];
  for await (const item of first.credit.topUps()) all.push(item.amount);
  t.same(all, [400, 1000], 'the lost response was not booked twice');

  // Retries stop after maxRetries; 4xx other than 409-in-progress and 429 are never retried.
  const always = await faultyProxy(base, () => 503);
  t.teardown(always.close);
  const gaveUp = await new PecPartner({ apiKey: p.secret, baseUrl: always.url, maxRetries: 2 }).credit.retrieve().catch((e: unknown) => e);
  t.equal(always.seen.length, 3);
  t.match(gaveUp, { status: 503, code: 'injected' });
  const limited = await faultyProxy(base, () => 429);
  t.teardown(limited.close);
  const rate = await new PecPartner({ apiKey: p.secret, baseUrl: limited.url, maxRetries: 1 }).credit.retrieve().catch((e: unknown) => e);
  t.ok(rate instanceof RateLimitError);
  t.equal((rate as RateLimitError).retryAfter, 0);
  const passthrough = await faultyProxy(base, () => null);
  t.teardown(passthrough.close);
  await new PecPartner({ apiKey: p.secret, baseUrl: passthrough.url }).customers.create({ type: 'company', business_name: 'X', vat_number: '0' }).catch(() => {});
  t.equal(passthrough.seen.length, 1, 'a 400 is not retried');

  const down = await new PecPartner({ apiKey: p.secret, baseUrl: 'http://127.0.0.1:1', maxRetries: 1 }).credit.retrieve().catch((e: unknown) => e);
  t.ok(down instanceof ConnectionError);
});

t.test('examples/quickstart.ts runs against the server', async (t) => {
  const h = await harness(t);
  const base = await h.listen();
  const p = await h.partner();
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'examples/quickstart.ts'], {
    cwd: root,
    env: { ...process.env, PEC_PARTNER_API_KEY: p.secret, PEC_OPERATOR_API_KEY: (await h.operator('billing')).secret, PEC_PARTNER_BASE_URL: base },
  });
  t.match(stdout, /customer cus_\w+ created \(request req_\w+\)/);
  t.match(stdout, /rejected as expected: \/vat_number invalid_vat_number/);
  t.match(stdout, /topped up €50\.00: balance €0\.00 → €50\.00/);
  t.match(stdout, /top_up\s+5000\s+→ 5000/);
});

t.test('examples/activate-mailbox.ts certifies a domain against its own DNS server and activates a mailbox', async (t) => {
  // A port free for both UDP and TCP: the example's DNS server binds it, the API resolves through it.
  const probe = await startDnsServer();
  const dnsPort = probe.port;
  await probe.close();
  const h = await harness(t, { env: { DNS_SERVERS: `127.0.0.1:${dnsPort}` } });
  const base = await h.listen();
  const p = await h.partner();
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'examples/activate-mailbox.ts'], {
    cwd: root,
    env: { ...process.env, PEC_PARTNER_API_KEY: p.secret, PEC_OPERATOR_API_KEY: (await h.operator('billing')).secret, PEC_PARTNER_BASE_URL: base, EXAMPLE_DNS_PORT: String(dnsPort) },
  });
  t.match(stdout, /studio-[0-9a-f]{6}\.it certifiable: true/);
  t.match(stdout, /_pec-verify\.studio-[0-9a-f]{6}\.it TXT\s+pec-verify=/);
  t.match(stdout, /domain studio-[0-9a-f]{6}\.it is certified/);
  t.match(stdout, /mailbox studio@studio-[0-9a-f]{6}\.it is active until 2027-11-22T09:00:00\.000Z; initial password returned once: yes/);
  t.match(stdout, /charged: .*: -2500; .*: -5000/);
});

t.test('a mailbox holder uses the SDK with its own credentials: send, read receipts, typed errors', async (t) => {
  const h = await harness(t);
  const base = await h.listen();
  const p = await h.partner();
  const partner = new PecPartner({ apiKey: p.secret, baseUrl: base });
  await creditPartner(h, p, 10_000);
  const customer = await partner.customers.create({ type: 'private_person', first_name: 'Mario', last_name: 'Rossi', tax_code: 'RSSMRA85T10A562S' });
  await partner.post('/v1/customers/{id}/identity', { path: { id: customer.id }, body: { document_type: 'identity_card', number: 'CA00000AA', issuer: 'Comune di Roma', expires_on: '2035-01-01' } });
  const open = (local_part: string) => partner.post('/v1/mailboxes', { body: { local_part, domain: 'pec.example.it', customer: customer.id, plan: 'standard', password: `${local_part}-password-1` } });
  const sender = await open('mittente');
  const recipient = await open('destinatario');

  t.throws(() => new PecPartner({ baseUrl: base }), /either apiKey or mailbox/);
  const holder = new PecPartner({ mailbox: { address: sender.address, password: 'mittente-password-1' }, baseUrl: base });
  const sent = await holder.post('/v1/mailboxes/{id}/messages', { path: { id: sender.id }, body: { to: [recipient.address], subject: 'Dal SDK', text: 'Ciao' } });
  t.match(sent, { object: 'pec_submission', status: 'accepted' });
  await h.app.pec.drain();
  const receipts = await holder.get('/v1/mailboxes/{id}/messages', { path: { id: sender.id }, query: { folder: 'receipts' } });
  t.same(receipts.data.map((m) => m.kind).sort(), ['acceptance', 'delivery']);
  const wrong = await new PecPartner({ mailbox: { address: sender.address, password: 'sbagliata-123' }, baseUrl: base, maxRetries: 0 })
    .get('/v1/mailboxes/{id}/folders', { path: { id: sender.id } }).catch((e: unknown) => e);
  t.ok(wrong instanceof AuthenticationError);
});

t.test('webhooks.verify accepts what the standardwebhooks library signs, and nothing else', async (t) => {
  const secret = `whsec_${randomBytes(24).toString('base64')}`;
  const otherSecret = `whsec_${randomBytes(24).toString('base64')}`;
  const event = {
    id: 'evt_01JD0000000000000000000000', object: 'event', type: 'credit.topped_up', api_version: '2026-11-30',
    created_at: '2026-11-30T10:00:00.000Z',
    data: { object: { id: 'led_01JD0000000000000000000000', object: 'ledger_entry', amount: 5000, description: 'Ricarica Società' } },
    request: { id: 'req_1', idempotency_key: 'topup-1' },
  };
  const body = JSON.stringify(event);
  const now = new Date('2026-11-30T10:00:05.000Z');
  const signed = (payload: string, at = now, key = secret, msgId = 'msg_1') => ({
    'webhook-id': msgId,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': new Webhook(key).sign(msgId, at, payload),
  });
  const failure = (fn: () => unknown) => {
    try {
      fn();
    } catch (error) {
      return error;
    }
    return t.fail('verified') as never;
  };
  const headers = signed(body);

  t.same(webhooks.verify(body, headers, secret, { now }), event, 'string body');
  t.same(webhooks.verify(Buffer.from(body), headers, secret, { now }), event, 'Buffer body (non-ASCII text signed as UTF-8)');
  t.same(webhooks.verify(new TextEncoder().encode(body), new Headers(headers), secret, { now }), event, 'Uint8Array body, Fetch Headers');
  const shouted = { 'Webhook-Id': headers['webhook-id'], 'WEBHOOK-TIMESTAMP': headers['webhook-timestamp'], 'Webhook-Signature': [headers['webhook-signature']], other: undefined };
  t.same(webhooks.verify(body, shouted, secret, { now }), event, 'header names in any case, array values');
  t.same(new PecPartner({ apiKey: 'sk_live_x' }).webhooks.verify(body, headers, secret, { now }), event, 'reachable from the client too');
  const current = signed(body, new Date());
  t.same(new Webhook(secret).verify(body, current), webhooks.verify(body, current, secret), 'the reference library agrees on the same input');

  const tampered = failure(() => webhooks.verify(body.replace('5000', '50000'), headers, secret, { now }));
  t.ok(tampered instanceof WebhookVerificationError);
  t.ok(tampered instanceof PecPartnerError);
  t.match(tampered, { name: 'WebhookVerificationError', code: 'webhook_signature_mismatch', message: 'no v1 signature in webhook-signature matches this body and secret' });
  t.match(failure(() => webhooks.verify(body, headers, otherSecret, { now })), { code: 'webhook_signature_mismatch' }, 'wrong secret');
  t.match(failure(() => webhooks.verify(body, { ...headers, 'webhook-id': 'msg_2' }, secret, { now })), { code: 'webhook_signature_mismatch' }, 'the id is signed');
  const later = String(Number(headers['webhook-timestamp']) + 1);
  t.match(failure(() => webhooks.verify(body, { ...headers, 'webhook-timestamp': later }, secret, { now })), { code: 'webhook_signature_mismatch' }, 'the timestamp is signed');

  // Rotation sends one signature per secret; unknown versions and garbage entries are skipped, not fatal.
  const valid = headers['webhook-signature'];
  const foreign = signed(body, now, otherSecret)['webhook-signature'];
  const several = { ...headers, 'webhook-signature': `v1a,${valid.slice(3)} ${foreign} v2,${valid.slice(3)} nonsense ${valid}` };
  t.same(webhooks.verify(body, several, secret, { now }), event, 'one valid among several');
  t.same(webhooks.verify(body, several, otherSecret, { now }), event, 'the other secret of a rotation');
  t.same(webhooks.verify(body, { ...headers, 'webhook-signature': `${foreign}, ${valid}` }, secret, { now }), event, 'repeated headers joined by Node');
  t.same(webhooks.verify(body, { ...headers, 'webhook-signature': [foreign, valid] }, secret, { now }), event, 'repeated headers as an array');
  t.match(failure(() => webhooks.verify(body, { ...headers, 'webhook-signature': `${foreign} v2,${valid.slice(3)}` }, secret, { now })), { code: 'webhook_signature_mismatch' });
  t.match(failure(() => webhooks.verify(body, { ...headers, 'webhook-signature': valid.slice(0, -4) }, secret, { now })), { code: 'webhook_signature_mismatch' }, 'truncated signature');

  const at = (seconds: number) => new Date(now.getTime() + seconds * 1000);
  t.same(webhooks.verify(body, signed(body, at(-300)), secret, { now }), event, '300 s old is within the default tolerance');
  t.same(webhooks.verify(body, signed(body, at(300)), secret, { now }), event, '300 s ahead likewise');
  t.match(failure(() => webhooks.verify(body, signed(body, at(-301)), secret, { now })), { code: 'webhook_timestamp_too_old', message: 'webhook-timestamp is 301 s old, more than the 300 s allowed' });
  t.match(failure(() => webhooks.verify(body, signed(body, at(301)), secret, { now })), { code: 'webhook_timestamp_too_new', message: 'webhook-timestamp is 301 s in the future, more than the 300 s allowed' });
  t.match(failure(() => webhooks.verify(body, signed(body, at(-61)), secret, { now, toleranceSeconds: 60 })), { code: 'webhook_timestamp_too_old' });
  t.match(failure(() => webhooks.verify(body, signed(body, new Date(Date.now() - 3_600_000)), secret)), { code: 'webhook_timestamp_too_old' }, 'defaults to the current time');
  t.same(webhooks.verify(body, signed(body, new Date()), secret), event);
  t.match(failure(() => webhooks.verify(body, { ...headers, 'webhook-timestamp': '2026-11-30T10:00:00Z' }, secret, { now })), { code: 'webhook_timestamp_invalid' });

  for (const name of ['webhook-id', 'webhook-timestamp', 'webhook-signature'] as const) {
    const without: Record<string, string> = { ...headers };
    delete without[name];
    t.match(failure(() => webhooks.verify(body, without, secret, { now })), { code: 'webhook_headers_missing', message: `missing header: ${name}` });
  }
  t.match(failure(() => webhooks.verify(body, {}, secret, { now })), { code: 'webhook_headers_missing', message: 'missing headers: webhook-id, webhook-timestamp, webhook-signature' });
  t.match(failure(() => webhooks.verify(body, new Headers(), secret, { now })), { code: 'webhook_headers_missing' });
  t.match(failure(() => webhooks.verify(body, { ...headers, 'webhook-id': ['msg_1', 'msg_9'] }, secret, { now })), { code: 'webhook_headers_invalid' });

  const notJson = 'not json';
  t.match(failure(() => webhooks.verify(notJson, signed(notJson), secret, { now })), { code: 'webhook_payload_invalid', message: 'the signed body is not JSON' });
  const notEvent = '{"object":"customer"}';
  t.match(failure(() => webhooks.verify(notEvent, signed(notEvent), secret, { now })), { code: 'webhook_payload_invalid', message: 'the signed body is not an event' });
  t.throws(() => webhooks.verify(body, headers, 'whsec_not base64!', { now }), TypeError, 'a mistyped secret is a programming error, not a bad request');
  t.throws(() => webhooks.verify(event as never, headers, secret, { now }), TypeError, 'a parsed body cannot be verified');
});

t.test('a real delivery verifies with webhooks.verify; endpoint, event and redelivery helpers; rotation; raw bodies with put', async (t) => {
  const h = await harness(t, { env: { APP_ENV: 'development' } });
  const base = await h.listen();
  const p = await h.partner();
  const client = new PecPartner({ apiKey: p.secret, baseUrl: base });

  const received: { body: Buffer; headers: IncomingHttpHeaders }[] = [];
  const receiver = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    received.push({ body: Buffer.concat(chunks), headers: req.headers });
    res.writeHead(204).end();
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise((resolve) => receiver.close(resolve)));
  const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;

  const endpoint = await client.webhookEndpoints.create({ url, enabled_events: ['credit.topped_up'] });
  t.match(endpoint, { object: 'webhook_endpoint', url, enabled_events: ['credit.topped_up'], status: 'enabled', secret: /^whsec_[A-Za-z0-9+/]{32}$/ });
  // The credit comes from the operator's confirmation of the transfer: that request is the event's.
  const pending = await client.credit.topUp({ amount: 1234, currency: 'EUR', payment_reference: 'WH-1' });
  const operator = new PecOperator({ apiKey: (await h.operator('billing')).secret, baseUrl: base });
  const confirmed = await operator.topUps.confirm(pending.id, 'WH-1 received', { idempotencyKey: 'wh-key' });
  const entry = { id: confirmed.ledger_entry!, requestId: responseOf(confirmed)!.requestId };
  const test = await client.webhookEndpoints.sendTest(endpoint.id);
  await h.app.webhooks.drain();
  t.equal(received.length, 2, 'the top-up and the test event');
  const now = h.clock.now();
  const events = received.map((r) => webhooks.verify(r.body, r.headers, endpoint.secret, { now }));
  const topped = events.find((event) => event.type === 'credit.topped_up')!;
  t.match(topped, { object: 'event', data: { object: { object: 'ledger_entry', id: entry.id, amount: 1234, balance_after: 1234 } }, request: { id: entry.requestId, idempotency_key: 'wh-key' } });
  t.equal(received.find((r) => r.headers['webhook-id'] === topped.id)?.headers['content-type'], 'application/json');
  t.same(events.find((event) => event.type === 'test.webhook'), test, 'the test event as sent and as answered');
  t.same(await client.events.retrieve(topped.id), topped, 'the delivered event is the stored one');
  const listed = [];
  for await (const event of client.events.list({ type: 'credit.topped_up' })) listed.push(event.id);
  t.same(listed, [topped.id]);
  t.equal((await client.events.page({ type: 'test.webhook' })).data[0]?.id, test.id);
  const tampered = received[0]!.body.toString().replace('1234', '9999');
  t.throws(() => webhooks.verify(tampered, received[0]!.headers, endpoint.secret, { now }), { code: 'webhook_signature_mismatch' });

  // After a rotation both secrets sign; a redelivery keeps the webhook-id, so receivers can drop it.
  const rotated = await client.webhookEndpoints.rotateSecret(endpoint.id);
  t.not(rotated.secret, endpoint.secret);
  t.ok(rotated.secret_rotation_ends_at);
  await client.events.redeliver(topped.id, { endpoint: endpoint.id });
  await h.app.webhooks.drain();
  const redelivered = received[2]!;
  t.equal(redelivered.headers['webhook-id'], topped.id);
  t.equal(String(redelivered.headers['webhook-signature']).split(' ').length, 2);
  t.same(webhooks.verify(redelivered.body, redelivered.headers, rotated.secret, { now }), topped, 'verified with the new secret');
  t.same(webhooks.verify(redelivered.body, redelivered.headers, endpoint.secret, { now }), topped, 'and with the previous one');
  const attempts = [];
  for await (const attempt of client.webhookEndpoints.attempts(endpoint.id)) attempts.push([attempt.event, attempt.succeeded, attempt.response_status]);
  t.same(attempts.sort(), [[test.id, true, 204], [topped.id, true, 204], [topped.id, true, 204]].sort());
  t.match(await client.webhookEndpoints.update(endpoint.id, { status: 'disabled' }), { status: 'disabled', disabled_reason: 'partner' });
  await client.webhookEndpoints.del(endpoint.id);
  t.ok((await client.webhookEndpoints.retrieve(endpoint.id).catch((e: unknown) => e)) instanceof NotFoundError);

  // put() and raw bodies: a logo upload is bytes with their own content type, not JSON.
  await creditPartner(h, p, 10_000);
  const customer = await client.customers.create({ type: 'private_person', first_name: 'Mario', last_name: 'Rossi', tax_code: 'RSSMRA85T10A562S' });
  await client.post('/v1/customers/{id}/identity', { path: { id: customer.id }, body: { document_type: 'identity_card', number: 'CA00000AA', issuer: 'Comune di Roma', expires_on: '2035-01-01' } });
  const mailbox = await client.post('/v1/mailboxes', { body: { local_part: 'logo', domain: 'pec.example.it', customer: customer.id, plan: 'standard' } });
  await client.post('/v1/mailboxes/{id}/addons', { path: { id: mailbox.id }, body: { kind: 'branding' } });
  const colors = { primary: '#0055aa', secondary: '#223344', background: '#fafafa', text: '#111111' };
  const branding = await client.put('/v1/customers/{id}/branding', { path: { id: customer.id }, body: { slug: 'sdk-logo', colors, texts: { company_name: 'Studio' } } });
  t.equal(responseOf(branding)?.status, 201);
  const svg = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><rect width="10" height="10"/></svg>';
  const logo = await client.put('/v1/customers/{id}/branding/logo', { path: { id: customer.id }, raw: { contentType: 'image/svg+xml', data: Buffer.from(svg) } });
  t.match(logo, { object: 'branding_logo', content_type: 'image/svg+xml', size_bytes: svg.length, removed: [] });
  await t.rejects(
    client.put('/v1/customers/{id}/branding', { path: { id: customer.id }, body: { slug: 'x', colors, texts: { company_name: 'x' } }, raw: { contentType: 'text/plain', data: 'x' } }),
    new TypeError('give either body (JSON) or raw, not both'),
  );
  t.equal((await client.get('/v1/customers/{id}/branding', { path: { id: customer.id } })).slug, 'sdk-logo', 'nothing was sent');
});
