/**
 * Quick start through the SDK: create a customer, top up credit, read the ledger.
 *   PEC_PARTNER_API_KEY=sk_live_… PEC_PARTNER_BASE_URL=http://127.0.0.1:3000 npx tsx examples/quickstart.ts
 */
import { randomUUID } from 'node:crypto';
import { InvalidRequestError, PecPartner, responseOf } from '@pec-partner/sdk';
import { creditThroughTransfer } from './support.ts';

const apiKey = process.env.PEC_PARTNER_API_KEY;
if (!apiKey) {
  console.error('Set PEC_PARTNER_API_KEY (npm start prints the demo key).');
  process.exit(2);
}
const client = new PecPartner({ apiKey, baseUrl: process.env.PEC_PARTNER_BASE_URL ?? 'http://127.0.0.1:3000' });

const customer = await client.customers.create({
  type: 'company',
  business_name: 'Acme S.r.l.',
  vat_number: '01234567897',
  address: { street: 'Via Roma 1', town: 'Milano', postcode: '20121', province: 'MI', country: 'IT' },
  e_invoicing: { sdi_code: 'M5UXCR1' },
});
console.log(`customer ${customer.id} created (request ${responseOf(customer)?.requestId})`);

// Validation errors arrive as typed errors pointing at each field.
try {
  await client.customers.create({ type: 'company', business_name: 'Broken S.r.l.', vat_number: '01234567890' });
} catch (error) {
  if (!(error instanceof InvalidRequestError)) throw error;
  console.log(`rejected as expected: ${error.errors.map((e) => `${e.pointer} ${e.code}`).join(', ')}`);
}

const before = await client.credit.retrieve();
// Partners cannot credit themselves: the top-up waits for the bank transfer, which the provider's operator confirms.
const { topUp } = await creditThroughTransfer(client, 5_000, `quickstart-${randomUUID()}`);
const after = await client.credit.retrieve();
console.log(`topped up €${(topUp.amount / 100).toFixed(2)}: balance €${(before.balance / 100).toFixed(2)} → €${(after.balance / 100).toFixed(2)}`);
if (after.balance !== before.balance + 5_000) throw new Error('the balance did not grow by the top-up');

console.log('ledger, newest first:');
let shown = 0;
for await (const entry of client.credit.ledger()) {
  console.log(`  ${entry.created_at}  ${entry.type.padEnd(10)} ${String(entry.amount).padStart(8)}  → ${entry.balance_after}  ${entry.description}`);
  if (++shown === 5) break;
}
