/**
 * What the add-on examples share: the client from the environment, a customer who may hold mailboxes, a mailbox on
 * the provider's domain, enough credit, and a check that stops the script with a clear message.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { isDeepStrictEqual } from 'node:util';
import { PecOperator, PecPartner, PecPartnerError, responseOf, type LedgerEntry, type TopUp } from '@pec-partner/sdk';

export function clientFromEnv(): PecPartner {
  const apiKey = process.env.PEC_PARTNER_API_KEY;
  if (!apiKey) {
    console.error('Set PEC_PARTNER_API_KEY (npm start prints the demo key).');
    process.exit(2);
  }
  return new PecPartner({ apiKey, baseUrl: baseUrl() });
}

export function baseUrl(): string {
  return process.env.PEC_PARTNER_BASE_URL ?? 'http://127.0.0.1:3000';
}

/** Stops the example: CI fails on the non-zero exit status. */
export function check(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(`check failed: ${message}`);
}

/** Deep equality, whatever the order of object keys. */
export function same<T>(actual: T, expected: T, what: string): void {
  check(isDeepStrictEqual(actual, expected), `${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
}

/** Runs a call that must fail with this error class and code; returns the error for closer checks. */
export async function refused<E extends PecPartnerError>(call: Promise<unknown>, kind: abstract new (...args: never[]) => E, code: string, what: string): Promise<E> {
  const outcome = await call.then(() => undefined, (error: unknown) => error);
  check(outcome !== undefined, `${what}: succeeded, but it should fail with ${code}`);
  if (!(outcome instanceof kind) || outcome.code !== code) throw new Error(`check failed: ${what}: expected ${kind.name} ${code}`, { cause: outcome });
  return outcome;
}

/** Polls until `probe` returns something, for work the server does in the background (PEC delivery, jobs). */
export async function waitFor<T>(probe: () => Promise<T | undefined | null | false>, what: string, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`check failed: gave up after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(250);
  }
}

/** A fresh suffix per run, so an example can run again against the same server. */
export const unique = (): string => randomBytes(4).toString('hex');

/**
 * The provider's operator, from PEC_OPERATOR_API_KEY (`npm start` with APP_ENV=development prints one on the first
 * start; otherwise `npm run operator:create-key -- --name "Examples" --scope billing`).
 */
export function operatorFromEnv(): PecOperator {
  const apiKey = process.env.PEC_OPERATOR_API_KEY;
  if (!apiKey) {
    console.error('Set PEC_OPERATOR_API_KEY: partners cannot credit themselves; the provider confirms their bank transfers.');
    process.exit(2);
  }
  return new PecOperator({ apiKey, baseUrl: baseUrl() });
}

/**
 * Credit as it really arrives: the partner asks for a top-up (pending, with bank transfer instructions), the money
 * "arrives", and the provider's operator confirms it. Returns the top-up as credited and the confirmation's request.
 */
export async function creditThroughTransfer(client: PecPartner, cents: number, idempotencyKey?: string): Promise<{ topUp: TopUp; confirmRequestId: string | undefined; confirmKey: string }> {
  const pending = await client.credit.topUp({ amount: cents, currency: 'EUR', payment_reference: `example-${unique()}` }, idempotencyKey ? { idempotencyKey } : {});
  check(pending.status === 'pending' && pending.bank_transfer !== null, `top-up ${pending.id} is pending with payment instructions`);
  const confirmKey = `confirm-${unique()}`;
  const confirmed = await operatorFromEnv().topUps.confirm(pending.id, `Example: transfer ${pending.payment_reference} seen on the account`, { idempotencyKey: confirmKey });
  check(confirmed.status === 'credited', `top-up ${pending.id} is credited`);
  return { topUp: confirmed, confirmRequestId: responseOf(confirmed)?.requestId, confirmKey };
}

/** Tops the balance up to at least `cents`, through a bank transfer the operator confirms. */
export async function ensureCredit(client: PecPartner, cents: number): Promise<void> {
  const { balance } = await client.credit.retrieve();
  if (balance < cents) await creditThroughTransfer(client, Math.max(cents - balance, 100));
}

/** A private customer with an identity document on file, so their mailboxes are active at once. */
export async function identifiedCustomer(client: PecPartner): Promise<string> {
  const customer = await client.customers.create({ type: 'private_person', first_name: 'Mario', last_name: 'Rossi', tax_code: 'RSSMRA85T10A562S' });
  await client.post('/v1/customers/{id}/identity', {
    path: { id: customer.id },
    body: { document_type: 'identity_card', number: 'CA00000AA', issuer: 'Comune di Roma', expires_on: '2035-01-01' },
  });
  return customer.id;
}

/** A mailbox on the provider's own domain (no DNS needed) with a known password. */
export async function openMailbox(client: PecPartner, customer: string, localPart: string, plan: 'standard' | 'pro' | 'premium') {
  const password = `${localPart}-Password-2026`;
  const mailbox = await client.post('/v1/mailboxes', {
    body: { local_part: `${localPart}-${unique()}`, domain: 'pec.example.it', customer, plan, password },
  });
  check(mailbox.status === 'active', `mailbox ${mailbox.address} is ${mailbox.status}, not active`);
  return { ...mailbox, password };
}

/** The newest ledger entries, newest first (one page is enough right after an operation). */
export async function latestLedgerEntries(client: PecPartner, count: number): Promise<LedgerEntry[]> {
  return (await client.credit.ledgerPage({ limit: count })).data;
}

const YEAR_MS = 365 * 86_400_000;

/**
 * Checks an add-on charge (or refund) the way the API computes it: the yearly price × quantity × what is left of
 * the mailbox term, in cents. The request ran between `before` and `after`, so the exact amount lies between.
 */
export function checkProRata(amount: number, unitAmount: number, quantity: number, expiresAt: string, before: Date, after: Date, what: string): void {
  const left = (at: Date) => Math.max(0, Date.parse(expiresAt) - at.getTime());
  const highest = Math.round((unitAmount * quantity * left(before)) / YEAR_MS);
  const lowest = Math.round((unitAmount * quantity * left(after)) / YEAR_MS);
  check(amount >= lowest && amount <= highest, `${what}: ${amount} cents is not ${unitAmount} × ${quantity} pro rata (between ${lowest} and ${highest})`);
}

export async function unitAmount(client: PecPartner, priceId: string): Promise<number> {
  for await (const price of client.prices.list()) if (price.id === priceId) return price.unit_amount;
  throw new Error(`no price ${priceId} in GET /v1/prices`);
}
