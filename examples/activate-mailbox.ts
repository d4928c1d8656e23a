/**
 * Certify a customer's domain and activate a PEC mailbox on it, through the SDK.
 *
 * The customer's DNS is played by a DNS server this script starts on 127.0.0.1:EXAMPLE_DNS_PORT; the API must
 * resolve through it (start the server with DNS_SERVERS=127.0.0.1:<that port>).
 *   DNS_SERVERS=127.0.0.1:39853 npm start
 *   PEC_PARTNER_API_KEY=sk_live_… EXAMPLE_DNS_PORT=39853 npx tsx examples/activate-mailbox.ts
 */
import { randomBytes } from 'node:crypto';
import { PecPartner, responseOf } from '@pec-partner/sdk';
import { startDnsServer } from '../test/helpers/dns-server.ts';
import { creditThroughTransfer } from './support.ts';

const apiKey = process.env.PEC_PARTNER_API_KEY;
if (!apiKey) {
  console.error('Set PEC_PARTNER_API_KEY (npm start prints the demo key).');
  process.exit(2);
}
const client = new PecPartner({ apiKey, baseUrl: process.env.PEC_PARTNER_BASE_URL ?? 'http://127.0.0.1:3000' });
const dns = await startDnsServer({ port: Number(process.env.EXAMPLE_DNS_PORT ?? 39853) });

try {
  // A fresh name each run, so the example can run again against the same server.
  const name = `studio-${randomBytes(3).toString('hex')}.it`;
  const customer = await client.customers.create({
    type: 'professional', first_name: 'Laura', last_name: 'Bianchi', tax_code: 'BNCLRA90E41F205Q', vat_number: '01234567897',
  });
  await client.post('/v1/customers/{id}/identity', {
    path: { id: customer.id },
    body: { document_type: 'identity_card', number: 'CA00000AA', issuer: 'Comune di Milano', expires_on: '2035-01-01' },
  });
  const { certifiable } = await client.post('/v1/domains/check', { body: { name } });
  console.log(`${name} certifiable: ${certifiable}`);

  const domain = await client.post('/v1/domains', { body: { name, customer: customer.id } });
  console.log(`domain ${domain.id} requested; publish:`);
  for (const record of domain.dns_records) console.log(`  ${record.name} ${record.type} ${record.priority ?? ''} ${record.value}`);

  // The customer publishes the records at their DNS provider.
  dns.set(name, 'MX', domain.dns_records.filter((r) => r.type === 'MX').map((r) => ({ exchange: r.value, priority: r.priority ?? 10 })));
  const txt = domain.dns_records.find((r) => r.type === 'TXT')!;
  dns.set(txt.name, 'TXT', [txt.value]);

  const balance = await client.credit.retrieve();
  const needed = 5000 + 2500; // certification + one year of Pro (see GET /v1/prices)
  if (balance.balance < needed) {
    await creditThroughTransfer(client, Math.max(needed - balance.balance, 100));
  }
  const certified = await client.post('/v1/domains/{id}/verify', { path: { id: domain.id } });
  console.log(`domain ${certified.name} is ${certified.status} (request ${responseOf(certified)?.requestId})`);

  const mailbox = await client.post('/v1/mailboxes', {
    body: { local_part: 'studio', domain: name, customer: customer.id, plan: 'pro', term_years: 1, renewal_mode: 'auto' },
  });
  console.log(`mailbox ${mailbox.address} is ${mailbox.status} until ${mailbox.expires_at}; initial password returned once: ${mailbox.password ? 'yes' : 'no'}`);

  const charges = [];
  for await (const entry of client.credit.ledger({ type: 'charge' })) {
    if (entry.item?.id === domain.id || entry.item?.id === mailbox.id) charges.push(`${entry.description}: ${entry.amount}`);
  }
  console.log(`charged: ${charges.join('; ')}`);
} finally {
  await dns.close();
}
