/**
 * Newsletter: with the `newsletter` add-on a mailbox gets an address book, distribution lists and campaigns sent
 * through the provider's outbound relay. This script plays the relay: an SMTP server on 127.0.0.1:EXAMPLE_RELAY_PORT
 * that the API must use (start the server with NEWSLETTER_SMTP_HOST=127.0.0.1 NEWSLETTER_SMTP_PORT=<that port>).
 * It imports contacts from CSV, sends a test, sends the campaign (the server's sending task runs once a minute; a
 * short JOBS_INTERVAL_SECONDS makes the server notice it is due at once), checks every consenting contact got
 * exactly one message with its own unsubscribe link, and unsubscribes one with the RFC 8058 one-click POST.
 *   NEWSLETTER_SMTP_HOST=127.0.0.1 NEWSLETTER_SMTP_PORT=39925 JOBS_INTERVAL_SECONDS=2 npm start
 *   PEC_PARTNER_API_KEY=sk_live_… EXAMPLE_RELAY_PORT=39925 npx tsx examples/addon-newsletter.ts
 */
import { SMTPServer } from 'smtp-server';
import { baseUrl, check, clientFromEnv, ensureCredit, identifiedCustomer, openMailbox, same, waitFor } from './support.ts';

interface Relayed {
  mailFrom: string;
  rcptTo: string[];
  message: string;
}

/** The relay: accepts every message on loopback and keeps it, as a provider's smart host would queue it. */
async function startRelay(port: number) {
  const received: Relayed[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        received.push({
          mailFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          rcptTo: session.envelope.rcptTo.map((rcpt) => rcpt.address),
          message: Buffer.concat(chunks).toString('utf8'),
        });
        callback(null, `2.0.0 Ok: queued as R${received.length}`);
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return { received, to: (address: string) => received.filter((mail) => mail.rcptTo.includes(address)), close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

/** A header of a raw message, its folded lines joined. */
function header(message: string, name: string): string | undefined {
  const head = message.split(/\r?\n\r?\n/, 1)[0]!.replace(/\r?\n[ \t]+/g, ' ');
  return new RegExp(`^${name}: (.*)$`, 'im').exec(head)?.[1]?.trim();
}

const relay = await startRelay(Number(process.env.EXAMPLE_RELAY_PORT ?? 39925));
try {
  const partner = clientFromEnv();
  await ensureCredit(partner, 10_000);
  const customer = await identifiedCustomer(partner);
  const mailbox = await openMailbox(partner, customer, 'notizie', 'standard');
  const addon = await partner.post('/v1/mailboxes/{id}/addons', { path: { id: mailbox.id }, body: { kind: 'newsletter' } });
  const path = { id: mailbox.id };
  console.log(`newsletter add-on ${addon.id} on ${mailbox.address}`);

  // The address book: one contact by hand, the rest from a CSV export (one bad row, reported and skipped).
  await partner.post('/v1/mailboxes/{id}/newsletter/contacts', { path, body: { email: 'ada@example.com', name: 'Ada Lovelace', consent: true } });
  const list = await partner.post('/v1/mailboxes/{id}/newsletter/lists', { path, body: { name: 'Clienti' } });
  const csv = 'email,name,consent\r\nbea@example.com,Bea,yes\r\ncarlo@example.com,"Verdi, Carlo",sì\r\nnoconsent@example.com,Nino,no\r\nnot-an-address,Nessuno,yes\r\n';
  const imported = await partner.post('/v1/mailboxes/{id}/newsletter/contacts/import', { path, query: { list: list.id }, raw: { contentType: 'text/csv', data: csv } });
  same([imported.rows, imported.created, imported.failed, imported.errors[0]?.row, imported.errors[0]?.code], [4, 3, 1, 5, 'invalid_format'], 'the CSV import report');
  const ada = (await partner.get('/v1/mailboxes/{id}/newsletter/contacts', { path, query: { email: 'ada@example.com' } })).data[0]!;
  const added = await partner.post('/v1/mailboxes/{id}/newsletter/lists/{list}/members', { path: { ...path, list: list.id }, body: { contacts: [ada.id] } });
  same(added.member_count, 4, 'list members');
  console.log(`imported ${imported.created} contacts (${imported.failed} row refused: ${imported.errors[0]?.detail}); list "${list.name}" has ${added.member_count} members`);

  const campaign = await partner.post('/v1/mailboxes/{id}/newsletter/campaigns', {
    path, body: { list: list.id, subject: 'Novembre in studio', html: '<h1>Ciao!</h1><p onclick="x()">Le novità di novembre.</p><script>alert(1)</script>' },
  });
  same([campaign.status, campaign.html], ['draft', '<h1>Ciao!</h1><p>Le novità di novembre.</p>'], 'the campaign, its HTML sanitised');

  // A test send goes out at once through the relay.
  const test = await partner.post('/v1/mailboxes/{id}/newsletter/campaigns/{campaign}/test', { path: { ...path, campaign: campaign.id }, body: { email: 'tester@example.com' } });
  same([test.status, test.smtp_response], ['sent', `250 2.0.0 Ok: queued as R${relay.received.length}`], 'the test send, answered by the relay');
  same(header(relay.to('tester@example.com')[0]!.message, 'Subject'), '[TEST] Novembre in studio', 'the test message subject');
  console.log(`test send: ${test.smtp_response}`);

  // The real send: the scheduled task sends it, throttled, one message per consenting contact.
  const scheduled = await partner.post('/v1/mailboxes/{id}/newsletter/campaigns/{campaign}/send', { path: { ...path, campaign: campaign.id }, body: {} });
  same(scheduled.status, 'scheduled', 'the campaign after send');
  const sent = await waitFor(async () => {
    const current = await partner.get('/v1/mailboxes/{id}/newsletter/campaigns/{campaign}', { path: { ...path, campaign: campaign.id } });
    return current.status === 'sent' ? current : undefined;
  }, 'the campaign to be sent (by the once-a-minute sending task)', 150_000);
  same(sent.stats, { recipients: 3, queued: 0, sent: 3, failed: 0 }, 'campaign stats');
  const deliveries = [];
  for await (const delivery of partner.list('/v1/mailboxes/{id}/newsletter/campaigns/{campaign}/deliveries', { path: { ...path, campaign: campaign.id } })) {
    deliveries.push(delivery);
  }
  same(deliveries.map((delivery) => `${delivery.email}:${delivery.status}`).sort(), ['ada@example.com:sent', 'bea@example.com:sent', 'carlo@example.com:sent'], 'one delivery per consenting contact');
  for (const delivery of deliveries) {
    const copies = relay.to(delivery.email);
    same(copies.length, 1, `messages relayed to ${delivery.email}`);
    check(delivery.smtp_response?.startsWith('250 '), `${delivery.email}: the relay's 250 is recorded, got ${delivery.smtp_response}`);
  }
  same(relay.to('noconsent@example.com').length, 0, 'messages to the contact without consent');
  console.log(`campaign ${campaign.id} sent: ${deliveries.map((delivery) => `${delivery.email} ${delivery.smtp_response}`).join('; ')}`);

  // Each message carries its own one-click unsubscribe link (RFC 8058); Bea uses hers.
  const beaMessage = relay.to('bea@example.com')[0]!.message;
  same(header(beaMessage, 'List-Unsubscribe-Post'), 'List-Unsubscribe=One-Click', 'the one-click header');
  const link = /^<([^>]+)>/.exec(header(beaMessage, 'List-Unsubscribe') ?? '')?.[1];
  check(link, 'a List-Unsubscribe link');
  check(link !== /^<([^>]+)>/.exec(header(relay.to('carlo@example.com')[0]!.message, 'List-Unsubscribe') ?? '')?.[1], 'each recipient has their own link');
  const unsubscribed = await fetch(new URL(new URL(link).pathname, baseUrl()), {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'List-Unsubscribe=One-Click',
  });
  same(unsubscribed.status, 200, 'the one-click unsubscribe');
  const bea = (await partner.get('/v1/mailboxes/{id}/newsletter/contacts', { path, query: { email: 'bea@example.com' } })).data[0]!;
  same([bea.receives_campaigns, bea.unsubscribed_at !== null], [false, true], 'Bea after unsubscribing');
  console.log(`bea@example.com unsubscribed at ${bea.unsubscribed_at}`);
  console.log('newsletter: ok');
} finally {
  await relay.close();
}
