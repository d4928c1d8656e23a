/**
 * A partner's first hour in the sandbox, through the SDK with a test key: free credit, a customer, a mailbox, and a
 * test clock moved a year ahead so the mailbox renews now instead of next year. Nothing here is charged for real.
 *   PEC_PARTNER_TEST_API_KEY=sk_test_… PEC_PARTNER_BASE_URL=http://127.0.0.1:3000 npx tsx examples/sandbox-onboarding.ts
 */
import { PecPartner } from '@pec-partner/sdk';
import { baseUrl, check, identifiedCustomer, openMailbox, same, unique, waitFor } from './support.ts';

const apiKey = process.env.PEC_PARTNER_TEST_API_KEY;
if (!apiKey?.startsWith('sk_test_')) {
  console.error('Set PEC_PARTNER_TEST_API_KEY to a test key (`sk_test_…`: `npm start` prints the demo partner\'s).');
  process.exit(2);
}
const sandbox = new PecPartner({ apiKey, baseUrl: baseUrl() });

// 1. The sandbox is a world of its own: every answer says so.
const start = await sandbox.credit.retrieve();
same(start.livemode, false, 'the test key reaches the sandbox');

// 2. Freeze the sandbox's time. One clock per test world: a previous run's clock is removed first.
for await (const old of sandbox.testClocks.list()) await sandbox.testClocks.del(old.id);
const clock = await sandbox.testClocks.create({ name: `onboarding ${unique()}` });
check(clock.status === 'ready' && clock.livemode === false, `test clock ${clock.id} is ready`);
console.log(`test clock ${clock.id} frozen at ${clock.frozen_time}`);

// 3. Free credit: a top-up is created as in live, then settled by a test helper instead of a bank.
const topUp = await sandbox.credit.topUp({ amount: 20_000, currency: 'EUR', payment_reference: `sandbox-${unique()}` });
same(topUp.status, 'pending', 'a sandbox top-up starts pending, as a live one');
const credited = await sandbox.testHelpers.creditTopUp(topUp.id);
same(credited.status, 'credited', 'the test helper credits the top-up');
const funded = await sandbox.credit.retrieve();
same(funded.balance, start.balance + 20_000, 'the sandbox balance grew by the top-up');

// 4. A customer and a mailbox that renews itself, dated at the clock's time.
const customer = await identifiedCustomer(sandbox);
const mailbox = await openMailbox(sandbox, customer, 'onboarding', 'standard');
check(mailbox.expires_at !== null, 'an active mailbox has an expiry');
const expiresAt = new Date(mailbox.expires_at);
same(expiresAt.getUTCFullYear(), new Date(clock.frozen_time).getUTCFullYear() + 1, 'the mailbox expires a year after the clock\'s time');
console.log(`mailbox ${mailbox.address} (${mailbox.id}, sign in with the id) expires ${mailbox.expires_at}`);

// 5. A year later in a minute: advance past the expiry and wait for the clock to be ready again.
const target = new Date(expiresAt.getTime() + 86_400_000).toISOString();
const advancing = await sandbox.testClocks.advance(clock.id, target);
check(advancing.status === 'advancing' || advancing.status === 'ready', `the clock moves (${advancing.status})`);
const ready = await waitFor(async () => {
  const now = await sandbox.testClocks.retrieve(clock.id);
  return now.status === 'ready' ? now : null;
}, 'the test clock to be ready');
same(ready.frozen_time, target, 'the clock stands at the target time');

// 6. The renewal happened: a later expiry, a charge in the ledger, the event a billing system would receive.
const renewed = await sandbox.get('/v1/mailboxes/{id}', { path: { id: mailbox.id } });
same(renewed.status, 'active', 'the mailbox is still active');
check(renewed.expires_at !== null && Date.parse(renewed.expires_at) > expiresAt.getTime(), `the mailbox now expires ${renewed.expires_at}`);
const after = await sandbox.credit.retrieve();
check(after.balance < funded.balance, 'the renewal was charged to the sandbox credit');
let renewalEvent: string | undefined;
for await (const event of sandbox.list('/v1/events', { query: { type: 'mailbox.renewed' } })) {
  if ((event.data.object as { id?: string }).id === mailbox.id) { renewalEvent = event.id; break; }
}
check(renewalEvent, 'a mailbox.renewed event names the mailbox');
console.log(`renewed: expires ${renewed.expires_at}, balance €${(after.balance / 100).toFixed(2)}, event ${renewalEvent}`);

// 7. Back to real time for the next run.
await sandbox.testClocks.del(clock.id);
console.log('sandbox onboarding: done');
