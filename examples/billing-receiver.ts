/**
 * A small billing system fed by webhooks: an HTTP server that verifies each delivery with the SDK's
 * `webhooks.verify`, de-duplicates by `webhook-id` (retries and redeliveries carry the same one), and books the
 * credit events (`credit.topped_up`, `credit.charged`, `credit.refunded`) into its own totals.
 *
 * Run as a script it also plays the partner: it registers itself as a webhook endpoint, tops up, creates a customer
 * and a mailbox, buys an add-on, renews the mailbox and cancels the add-on (a refund); then it waits (at most
 * 60 s) for every event of `GET /v1/events` and checks its books against the API: the ledger entries since it
 * started (`GET /v1/credit/ledger`, every page) and the balance (`GET /v1/credit`). It exits non-zero on any
 * difference. The endpoint is http://127.0.0.1:<port>, so the API must run with APP_ENV=development.
 *   APP_ENV=development npm start
 *   PEC_PARTNER_API_KEY=sk_live_… PEC_PARTNER_BASE_URL=http://127.0.0.1:3000 npx tsx examples/billing-receiver.ts
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { responseOf, webhooks, WebhookVerificationError, type LedgerEntry, type WebhookEvent } from '@pec-partner/sdk';
import { check, clientFromEnv, creditThroughTransfer, identifiedCustomer, same, unique, waitFor } from './support.ts';

const CREDIT_EVENTS = ['credit.topped_up', 'credit.charged', 'credit.refunded'] as const;
type CreditEventType = (typeof CREDIT_EVENTS)[number];
const isCreditEvent = (type: string): type is CreditEventType => (CREDIT_EVENTS as readonly string[]).includes(type);

interface Booking {
  event: string;
  type: CreditEventType;
  /** Signed cents, as the ledger entry says: positive credits the account, negative debits it. */
  amount: number;
}

/** The billing system: its books, and the webhook handler that fills them. */
class BillingReceiver {
  #secret: string | undefined;
  readonly #handled = new Set<string>();
  /** Every distinct event received, by id. */
  readonly events = new Map<string, WebhookEvent>();
  /** One booking per ledger entry. */
  readonly bookings = new Map<string, Booking>();
  readonly totals = { topped_up: 0, charged: 0, refunded: 0 };
  duplicates = 0;
  rejected = 0;
  readonly problems: string[] = [];
  /** Simulates a crash between booking and answering, once, for the first event of this type. */
  loseAnswerOnce: string | undefined;

  /** The endpoint's secret arrives after the endpoint is created, which needs this server's URL first. */
  useSecret(secret: string): void {
    this.#secret = secret;
  }

  async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    if (request.method !== 'POST' || request.url !== '/webhooks') return answer(response, 404, 'not here');
    // Until the secret is known nothing can be verified: 503 makes the sender retry later.
    if (!this.#secret) return answer(response, 503, 'not ready');

    let event: WebhookEvent;
    try {
      event = webhooks.verify(Buffer.concat(chunks), request.headers, this.#secret);
    } catch (error) {
      if (!(error instanceof WebhookVerificationError)) throw error;
      this.rejected++;
      return answer(response, 400, error.code);
    }
    const webhookId = String(request.headers['webhook-id']);
    // The id is the event's and stays the same across retries and redeliveries: seen once, booked once.
    if (this.#handled.has(webhookId)) {
      this.duplicates++;
      return answer(response, 200, 'already booked');
    }
    this.#book(event);
    this.#handled.add(webhookId);
    if (this.loseAnswerOnce === event.type) {
      this.loseAnswerOnce = undefined;
      return answer(response, 500, 'booked, but the answer is lost');
    }
    answer(response, 200, 'booked');
  }

  #book(event: WebhookEvent): void {
    this.events.set(event.id, event);
    const type = event.type;
    if (!isCreditEvent(type)) return;
    const entry = event.data.object as unknown as LedgerEntry;
    const previous = this.bookings.get(entry.id);
    if (previous) {
      this.problems.push(`ledger entry ${entry.id} arrived in two events, ${previous.event} and ${event.id}`);
      return;
    }
    const expectedSign = type === 'credit.charged' ? -1 : 1;
    if (entry.object !== 'ledger_entry' || Math.sign(entry.amount) !== expectedSign) {
      this.problems.push(`${type} ${event.id} carries ${entry.object} ${entry.id} of ${entry.amount} cents`);
      return;
    }
    this.bookings.set(entry.id, { event: event.id, type, amount: entry.amount });
    if (type === 'credit.topped_up') this.totals.topped_up += entry.amount;
    else if (type === 'credit.charged') this.totals.charged += -entry.amount;
    else this.totals.refunded += entry.amount;
  }

  /** What the booked movements add up to: positive when the account gained credit. */
  get net(): number {
    return this.totals.topped_up - this.totals.charged + this.totals.refunded;
  }
}

function answer(response: ServerResponse, status: number, text: string): void {
  response.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' }).end(text);
}

/** Ledger totals in the receiver's terms, over the given entries. */
function ledgerTotals(entries: LedgerEntry[]) {
  const sum = (type: LedgerEntry['type']) => entries.filter((entry) => entry.type === type).reduce((total, entry) => total + entry.amount, 0);
  return { topped_up: sum('top_up'), charged: -sum('charge'), refunded: sum('refund') };
}

const client = clientFromEnv();
const receiver = new BillingReceiver();
const server = createServer((request, response) => {
  receiver.handle(request, response).catch((error: unknown) => {
    receiver.problems.push(`handler failed: ${String(error)}`);
    if (!response.headersSent) answer(response, 500, 'receiver error');
  });
});
await new Promise<void>((resolve) => server.listen(Number(process.env.EXAMPLE_RECEIVER_PORT ?? 0), '127.0.0.1', resolve));
const receiverUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhooks`;
let endpointId: string | undefined;

try {
  // The books open with the balance and the ledger as they are; from now on, webhooks carry every movement.
  const openingEntries = new Set<string>();
  for await (const entry of client.credit.ledger()) openingEntries.add(entry.id);
  const opening = (await client.credit.retrieve()).balance;

  const endpoint = await client.webhookEndpoints.create({ url: receiverUrl, description: 'billing-receiver example', enabled_events: ['*'] });
  endpointId = endpoint.id;
  receiver.useSecret(endpoint.secret);
  console.log(`receiver on ${receiverUrl}; endpoint ${endpoint.id} (${endpoint.enabled_events.join(', ')}); opening balance ${opening} cents`);

  // A forged delivery is refused and books nothing.
  const forged = await fetch(receiverUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'webhook-id': 'evt_forged', 'webhook-timestamp': String(Math.floor(Date.now() / 1000)), 'webhook-signature': 'v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=' },
    body: JSON.stringify({ id: 'evt_forged', object: 'event', type: 'credit.topped_up', data: { object: { id: 'txn_forged', object: 'ledger_entry', amount: 1_000_000 } } }),
  });
  same([forged.status, await forged.text(), receiver.bookings.size], [400, 'webhook_signature_mismatch', 0], 'a forged delivery');

  // The first charge is booked but its answer is "lost": the dispatcher retries it with the same webhook-id.
  receiver.loseAnswerOnce = 'credit.charged';

  // The scenario: top-up, customer, mailbox, add-on, renewal, add-on cancelled (refund).
  const topUpKey = `billing-${randomUUID()}`;
  const { topUp, confirmRequestId, confirmKey } = await creditThroughTransfer(client, 20_000, topUpKey);
  const customer = await identifiedCustomer(client);
  const mailbox = await client.post('/v1/mailboxes', {
    body: { local_part: `fatture-${unique()}`, domain: 'pec.example.it', customer, plan: 'pro', renewal_mode: 'manual' },
  });
  same(mailbox.status, 'active', 'the mailbox');
  const addon = await client.post('/v1/mailboxes/{id}/addons', { path: { id: mailbox.id }, body: { kind: 'extra_inbox_gb', quantity: 2 } });
  const renewed = await client.post('/v1/mailboxes/{id}/renew', { path: { id: mailbox.id }, body: { years: 1 } });
  await client.post('/v1/mailboxes/{id}/addons/{addon}/cancel', { path: { id: mailbox.id, addon: addon.id }, body: { when: 'now' } });
  console.log(`scenario: topped up ${topUp.amount}, mailbox ${mailbox.address} (pro), add-on ${addon.id}, renewed until ${renewed.expires_at}, add-on cancelled`);

  // The API's own record of what happened since the endpoint exists, which the receiver must have got.
  const listed = async () => {
    const found: WebhookEvent[] = [];
    for await (const event of client.events.list({ created_after: endpoint.created_at })) found.push(event);
    return found;
  };
  const expected = await waitFor(async () => {
    const events = await listed();
    const missing = events.filter((event) => !receiver.events.has(event.id));
    return missing.length === 0 && receiver.duplicates >= 1 ? events : undefined;
  }, 'every event of GET /v1/events, and the retry of the charge whose answer was lost', 60_000);
  same([...receiver.events.keys()].sort(), expected.map((event) => event.id).sort(), 'events received = events listed');
  for (const event of expected) same(receiver.events.get(event.id), event, `event ${event.id} as delivered and as listed`);

  // A redelivery asked through the API arrives with the same webhook-id: de-duplicated, not booked again.
  const topUpEvent = expected.find((event) => event.type === 'credit.topped_up' && event.data.object.id === topUp.ledger_entry);
  check(topUpEvent, `a credit.topped_up event for ${topUp.ledger_entry}`);
  same([topUpEvent.request.id, topUpEvent.request.idempotency_key], [confirmRequestId ?? null, confirmKey], "the request that credited the top-up (the operator's confirmation)");
  const duplicatesBefore = receiver.duplicates;
  await client.events.redeliver(topUpEvent.id, { endpoint: endpoint.id });
  await waitFor(async () => receiver.duplicates > duplicatesBefore, 'the redelivered top-up', 60_000);

  // The books against the API.
  const newEntries: LedgerEntry[] = [];
  for await (const entry of client.credit.ledger()) if (!openingEntries.has(entry.id)) newEntries.push(entry);
  const balance = (await client.credit.retrieve()).balance;
  same(receiver.problems, [], 'problems met while booking');
  same([...receiver.bookings.keys()].sort(), newEntries.map((entry) => entry.id).sort(), 'booked ledger entries = new ledger entries');
  for (const entry of newEntries) same(receiver.bookings.get(entry.id)?.amount, entry.amount, `amount of ${entry.id}`);
  same(receiver.totals, ledgerTotals(newEntries), 'booked totals = ledger totals');
  same(opening + receiver.net, balance, 'opening balance + booked movements = GET /v1/credit');
  same(newEntries[0]?.balance_after, balance, 'the newest ledger entry leaves the current balance');
  same(
    ['credit.topped_up', 'mailbox.created', 'mailbox_addon.created', 'mailbox.renewed', 'mailbox_addon.cancelled', 'credit.charged', 'credit.refunded']
      .filter((type) => !expected.some((event) => event.type === type)),
    [], 'event types the scenario must produce',
  );

  console.log(`received ${receiver.events.size} events (${receiver.duplicates} duplicates ignored, ${receiver.rejected} forged rejected)`);
  console.log(`booked ${receiver.bookings.size} ledger entries: topped up ${receiver.totals.topped_up}, charged ${receiver.totals.charged}, refunded ${receiver.totals.refunded} cents`);
  console.log(`balance ${opening} + ${receiver.net} = ${balance} cents, as GET /v1/credit says`);
  console.log('billing receiver: books match the ledger');
} finally {
  if (endpointId) await client.webhookEndpoints.del(endpointId);
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeAllConnections(); // the dispatcher's kept-alive connections would hold the server open for seconds
  await closed;
}
