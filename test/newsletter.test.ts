import type { AddressInfo } from 'node:net';
import { simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';
import t, { type Test } from 'tap';
import { loadConfig } from '@pec-partner/api';
import { runNewsletterTask } from '../api/src/modules/newsletter/sender.ts';
import { api } from './helpers/fixtures.ts';
import { harness, json, type Harness } from './helpers/harness.ts';

const MINUTE = 60_000;

interface Received {
  mailFrom: string;
  rcptTo: string[];
  raw: Buffer;
}

/**
 * The outbound relay: a real SMTP server on loopback. `nobody…@` is refused with 550 at RCPT, `greylisted…@` gets
 * 451 on the first try and is accepted on the next, `crash…@` loses the connection after the message was
 * transferred (before the relay answers), everything else is queued with a 250.
 */
async function startRelay(t: Test, port = 0) {
  const received: Received[] = [];
  const tries = new Map<string, number>();
  const server: SMTPServer = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onRcptTo(address, _session, callback) {
      const rcpt = address.address.toLowerCase();
      tries.set(rcpt, (tries.get(rcpt) ?? 0) + 1);
      if (rcpt.startsWith('nobody')) {
        return callback(Object.assign(new Error(`5.1.1 <${rcpt}>: Recipient address rejected: User unknown in virtual mailbox table`), { responseCode: 550 }));
      }
      if (rcpt.startsWith('greylisted') && tries.get(rcpt) === 1) {
        return callback(Object.assign(new Error(`4.7.1 <${rcpt}>: Recipient address rejected: Greylisted, try again later`), { responseCode: 451 }));
      }
      callback();
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        const rcptTo = session.envelope.rcptTo.map((r) => r.address);
        received.push({ mailFrom: (session.envelope.mailFrom || { address: '' }).address, rcptTo, raw: Buffer.concat(chunks) });
        if (rcptTo.some((address) => address.startsWith('crash'))) {
          // The relay has the message but the line drops before its answer: the sender cannot know.
          for (const connection of (server as unknown as { connections: Set<{ session: unknown; _socket: { destroy(): void } }> }).connections) {
            if (connection.session === session) connection._socket.destroy();
          }
          return;
        }
        callback(null, `2.0.0 Ok: queued as Q${received.length}`);
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const actualPort = ((server as unknown as { server: { address(): AddressInfo } }).server.address()).port;
  let closed = false;
  const close = () => (closed ? Promise.resolve() : ((closed = true), new Promise<void>((resolve) => server.close(() => resolve()))));
  t.teardown(close);
  return { port: actualPort, received, tries, close, to: (address: string) => received.filter((r) => r.rcptTo.includes(address)) };
}

/** A partner with a mailbox that has the newsletter add-on, the relay configured with the given throttle. */
async function world(t: Test, options: { rate: number; relayPort: number }) {
  const h = await harness(t, {
    env: {
      NEWSLETTER_SMTP_HOST: '127.0.0.1',
      NEWSLETTER_SMTP_PORT: String(options.relayPort),
      NEWSLETTER_RATE_PER_MINUTE: String(options.rate),
      NEWSLETTER_FROM_ADDRESS: 'newsletter@mail.example.it',
    },
  });
  const partner = await h.partner('Newsletter partner');
  const a = api(h, partner);
  await a.topUp(100_000);
  const customer = await a.customer();
  const mbx = (await a.post('/v1/mailboxes', { local_part: 'studio', domain: 'pec.example.it', customer, plan: 'standard' })).body;
  const addon = await a.post(`/v1/mailboxes/${mbx.id}/addons`, { kind: 'newsletter' });
  t.equal(addon.status, 201, 'newsletter add-on bought');
  const base = `/v1/mailboxes/${mbx.id}/newsletter`;
  const contact = async (email: string, consent = true, name: string | null = null): Promise<string> => {
    const r = await a.post(`${base}/contacts`, { email, consent, name });
    if (r.status !== 201) throw new Error(`contact: ${JSON.stringify(r.body)}`);
    return r.body.id;
  };
  return { h, partner, a, mbx, base, contact };
}

const csv = (h: Harness, partner: { headers: { authorization: string } }, url: string, body: string | Buffer, type = 'text/csv') =>
  h.app.inject({ method: 'POST', url, headers: { ...partner.headers, 'content-type': type }, payload: body });

/** The unsubscribe URL of a received message, from its List-Unsubscribe header. */
function unsubscribeLink(raw: Buffer): string {
  const header = /^List-Unsubscribe: <([^>]+)>/m.exec(raw.toString('utf8').replace(/\r\n[ \t]+/g, ' '));
  if (!header) throw new Error('no List-Unsubscribe header');
  return header[1]!;
}

t.test('add-on gate, partner isolation, address book and CSV import with a per-row report', async (t) => {
  const relay = await startRelay(t);
  const { h, a, partner, mbx, base, contact } = await world(t, { rate: 60, relayPort: relay.port });

  // Without the add-on every newsletter endpoint is a 409; another partner's mailbox is a 404.
  const customer = await a.customer();
  const plain = (await a.post('/v1/mailboxes', { local_part: 'senza', domain: 'pec.example.it', customer, plan: 'standard' })).body;
  for (const [method, url] of [['GET', 'contacts'], ['POST', 'lists'], ['GET', 'campaigns']] as const) {
    const r = method === 'GET' ? await a.get(`/v1/mailboxes/${plain.id}/newsletter/${url}`) : await a.post(`/v1/mailboxes/${plain.id}/newsletter/${url}`, { name: 'x' });
    t.equal(r.status, 409, url);
    t.match(r.body, { code: 'addon_required', addon: 'newsletter', type: 'urn:pec-partner:problem:addon_required' });
  }
  const other = api(h, await h.partner('Other partner'));
  await other.topUp(100_000);
  const otherMbx = (await other.post('/v1/mailboxes', { local_part: 'altro', domain: 'pec.example.it', customer: await other.customer(), plan: 'standard' })).body;
  await other.post(`/v1/mailboxes/${otherMbx.id}/addons`, { kind: 'newsletter' });
  t.equal((await other.get(`${base}/contacts`)).status, 404, "another partner's mailbox does not exist for them");

  // Contacts: created lower-cased, duplicates refused, validation, pagination, update, erase.
  const anna = await a.post(`${base}/contacts`, { email: ' Anna.Bianchi@Example.COM ', name: 'Anna Bianchi', consent: true });
  t.equal(anna.status, 201);
  t.match(anna.body, { object: 'newsletter_contact', livemode: true, mailbox: mbx.id, email: 'anna.bianchi@example.com', name: 'Anna Bianchi', consent: true, unsubscribed_at: null, receives_campaigns: true });
  t.match(anna.body.id, /^nlc_/);
  t.match((await a.post(`${base}/contacts`, { email: 'anna.bianchi@example.com', consent: false })).body, { status: 409, code: 'contact_exists', contact: anna.body.id });
  t.match((await a.post(`${base}/contacts`, { email: 'not an address', consent: true })).body, { status: 400, errors: [{ pointer: '/email', code: 'invalid_format' }] });
  t.match((await a.post(`${base}/contacts`, { email: 'x@example.com' })).body, { status: 400, errors: [{ pointer: '/consent', code: 'required' }] });
  const bruno = await contact('bruno@example.com', false, 'Bruno');
  const carla = await contact('carla@example.com', true);
  const page1 = (await a.get(`${base}/contacts?limit=2`)).body;
  t.same(page1.data.map((c: { id: string }) => c.id), [carla, bruno]);
  t.equal(page1.has_more, true);
  const page2 = (await a.get(`${base}/contacts?limit=2&starting_after=${page1.next_cursor}`)).body;
  t.same(page2.data.map((c: { id: string }) => c.id), [anna.body.id]);
  t.equal(page2.has_more, false);
  t.same((await a.get(`${base}/contacts?receives_campaigns=false`)).body.data.map((c: { email: string }) => c.email), ['bruno@example.com']);
  t.match((await a.patch(`${base}/contacts/${bruno}`, { consent: true, name: 'Bruno Verdi' })).body, { consent: true, name: 'Bruno Verdi', receives_campaigns: true });
  t.match((await a.patch(`${base}/contacts/${bruno}`, { email: 'Carla@example.com' })).body, { status: 409, code: 'contact_exists' });
  t.same((await a.del(`${base}/contacts/${carla}`)).body, { id: carla, object: 'newsletter_contact', livemode: true, deleted: true });
  t.equal((await a.get(`${base}/contacts/${carla}`)).status, 404);

  // Lists: members are contacts of the same address book only.
  const list = (await a.post(`${base}/lists`, { name: 'Clienti' })).body;
  t.match(list, { object: 'newsletter_list', livemode: true, name: 'Clienti', member_count: 0 });
  t.equal((await a.post(`${base}/lists`, { name: 'Clienti' })).body.code, 'list_name_taken');
  const otherContact = (await other.post(`/v1/mailboxes/${otherMbx.id}/newsletter/contacts`, { email: 'z@example.com', consent: true })).body.id;
  const foreign = await a.post(`${base}/lists/${list.id}/members`, { contacts: [anna.body.id, otherContact] });
  t.match(foreign.body, { status: 400, errors: [{ pointer: '/contacts/1', code: 'resource_missing' }] });
  t.equal(foreign.body.errors.length, 1);
  t.match((await a.post(`${base}/lists/${list.id}/members`, { contacts: [anna.body.id, bruno] })).body, { added: 2, member_count: 2 });
  t.match((await a.post(`${base}/lists/${list.id}/members`, { contacts: [bruno] })).body, { added: 0, member_count: 2 });
  t.same((await a.del(`${base}/lists/${list.id}/members/${bruno}`)).body, { object: 'newsletter_list_member', livemode: true, list: list.id, contact: bruno, deleted: true });
  t.same((await a.get(`${base}/lists/${list.id}/members`)).body.data.map((c: { id: string }) => c.id), [anna.body.id]);

  // The other partner sees none of it, even through its own mailbox that has the add-on.
  const theirs = `/v1/mailboxes/${otherMbx.id}/newsletter`;
  t.equal((await other.get(`${theirs}/contacts/${anna.body.id}`)).status, 404);
  t.equal((await other.get(`${theirs}/lists/${list.id}`)).status, 404);
  t.equal((await other.post(`${theirs}/lists/${list.id}/members`, { contacts: [otherContact] })).status, 404);
  t.equal((await other.post(`${theirs}/campaigns`, { list: list.id, subject: 'x', html: '<p>x</p>' })).body.errors[0].code, 'resource_missing');
  t.same((await other.get(`${theirs}/contacts`)).body.data.map((c: { email: string }) => c.email), ['z@example.com']);

  // CSV import: a BOM, CRLF, quoted fields; valid rows imported, existing addresses updated, every bad row reported.
  const file = '\uFEFF' + [
    'email,name,consent',
    'mario.rossi@example.com,"Rossi, Mario",yes',
    'ANNA.BIANCHI@example.com,Anna B.,no',
    'not-an-email,Nessuno,yes',
    ',Senza indirizzo,yes',
    'luca@example.com,Luca,forse',
    'giulia@example.com,Giulia,',
    '',
    'mario.rossi@example.com,Mario di nuovo,yes',
    'sara@example.com,"Sara ""la grande""",sì',
    'paolo@example.com,Paolo,0',
  ].join('\r\n') + '\r\n';
  const report = await csv(h, partner, `${base}/contacts/import?list=${list.id}`, file);
  t.equal(report.statusCode, 200, 'the import answers 200 with its report');
  t.same(json(report), {
    object: 'newsletter_contact_import', livemode: true,
    rows: 9,
    created: 3,
    updated: 1,
    failed: 5,
    errors: [
      { row: 4, field: 'email', code: 'invalid_format', detail: "'not-an-email' is not a plain e-mail address" },
      { row: 5, field: 'email', code: 'required', detail: 'the address is empty' },
      { row: 6, field: 'consent', code: 'invalid_value', detail: "'forse' is not one of yes/no, true/false, 1/0, sì/no" },
      { row: 7, field: 'consent', code: 'required', detail: 'say yes or no' },
      { row: 9, field: 'email', code: 'duplicate_row', detail: 'the same address is on line 2; that line is the one imported' },
    ],
  });
  const byEmail = async (email: string) => (await a.get(`${base}/contacts?email=${encodeURIComponent(email)}`)).body.data[0];
  t.match(await byEmail('mario.rossi@example.com'), { name: 'Rossi, Mario', consent: true });
  t.match(await byEmail('anna.bianchi@example.com'), { id: anna.body.id, name: 'Anna B.', consent: false, receives_campaigns: false });
  t.match(await byEmail('sara@example.com'), { name: 'Sara "la grande"', consent: true });
  t.match(await byEmail('paolo@example.com'), { consent: false });
  t.equal(await byEmail('luca@example.com'), undefined, 'invalid rows are not imported');
  t.equal((await a.get(`${base}/lists/${list.id}`)).body.member_count, 4, '?list= adds the imported rows (anna was a member already)');

  // Semicolons and Italian headers (Excel), a stray quote costs only its own line.
  const semicolons = await csv(h, partner, `${base}/contacts/import`,
    'Email;Nome;Consenso\nelena@example.com;Elena;si\nbad@example.com;"Ro"ssi;si\nfranco@example.com;Franco;no\n', 'text/csv; charset=utf-8');
  t.match(json(semicolons), { rows: 3, created: 2, updated: 0, failed: 1, errors: [{ row: 3, field: null, code: 'malformed_row' }] });

  const noHeader = json(await csv(h, partner, `${base}/contacts/import`, 'x@example.com,X,yes\n'));
  t.match(noHeader, { status: 400, code: 'invalid_csv_header', missing_columns: ['email', 'consent'] });
  const latin1 = json(await csv(h, partner, `${base}/contacts/import`, Buffer.from('email,name,consent\nn@example.com,Niccol\xf2,yes\n', 'latin1')));
  t.match(latin1, { status: 400, code: 'invalid_encoding' });
  const noAddon = await csv(h, partner, `/v1/mailboxes/${plain.id}/newsletter/contacts/import`, file);
  t.equal(json(noAddon).code, 'addon_required');
  const asJson = await a.post(`${base}/contacts/import`, { email: 'x' });
  t.equal(asJson.status, 400, 'a JSON body is not a CSV file');
  t.equal((await a.post(`${base}/contacts`, { email: 'eve@example.com', consent: false, name: 'Eve\r\nBcc: victim@example.com' })).body.name, 'Eve Bcc: victim@example.com', 'names stay on one line');
});


t.test('campaigns: sanitised content, test send, throttled sending with per-recipient SMTP outcomes, consent and unsubscribe', async (t) => {
  const relay = await startRelay(t);
  const { h, a, partner, mbx, base, contact } = await world(t, { rate: 2, relayPort: relay.port });

  // Creation order is sending order (oldest contact first).
  const ada = await contact('ada@example.com', true, 'Ada Lovelace');
  const nobody = await contact('nobody@example.com');
  const grey = await contact('greylisted@example.com');
  const noConsent = await contact('noconsent@example.com', false);
  const bea = await contact('bea@example.com');
  const carlo = await contact('carlo@example.com');
  const list = (await a.post(`${base}/lists`, { name: 'Tutti' })).body.id;
  await a.post(`${base}/lists/${list}/members`, { contacts: [ada, nobody, grey, noConsent, bea, carlo] });

  // The HTML is sanitised on the way in; the text is derived from it.
  const created = await a.post(`${base}/campaigns`, {
    list,
    subject: 'Novità di novembre',
    html: '<h1 onclick="steal()">Ciao!</h1><script>alert(1)</script><p style="color: red; background: url(javascript:x)">Leggi ' +
      '<a href="javascript:alert(1)">qui</a> o <a href="https://example.com/news" target="_blank">sul sito</a>.</p>' +
      '<img src="https://example.com/logo.png" onerror="alert(1)" alt="logo"><iframe src="https://evil.example"></iframe>',
  });
  t.equal(created.status, 201);
  const campaign = created.body;
  t.match(campaign, { object: 'newsletter_campaign', livemode: true, mailbox: mbx.id, list, status: 'draft', scheduled_at: null, stats: { recipients: 0, queued: 0, sent: 0, failed: 0 } });
  t.equal(campaign.html, '<h1>Ciao!</h1><p style="color:red">Leggi <a>qui</a> o <a href="https://example.com/news" target="_blank">sul sito</a>.</p><img src="https://example.com/logo.png" alt="logo" />');
  t.equal(campaign.text, 'Ciao!\n\nLeggi qui o sul sito [https://example.com/news].');
  t.match((await a.post(`${base}/campaigns`, { list, subject: 'x', html: '<script>only()</script>' })).body, { status: 400, errors: [{ pointer: '/html', code: 'empty_after_sanitising' }] });
  t.match((await a.post(`${base}/campaigns`, { list, subject: 'a\r\nBcc: x@evil.example', html: '<p>x</p>' })).body, { status: 400, errors: [{ pointer: '/subject' }] });

  // A test send goes out at once, answered by the relay; nothing is recorded as a delivery.
  const test = await a.post(`${base}/campaigns/${campaign.id}/test`, { email: 'Tester@Example.com' });
  t.same(test.body, { object: 'newsletter_test_send', livemode: true, campaign: campaign.id, email: 'tester@example.com', status: 'sent', smtp_response: '250 2.0.0 Ok: queued as Q1' });
  const testMail = await simpleParser(relay.to('tester@example.com')[0]!.raw);
  t.equal(testMail.subject, '[TEST] Novità di novembre');
  t.equal(unsubscribeLink(relay.received[0]!.raw), 'http://pec-partner.test/newsletter/unsubscribe/test');
  t.match((await h.app.inject({ method: 'POST', url: '/newsletter/unsubscribe/test' })).body, /nobody was unsubscribed/);
  t.match((await a.post(`${base}/campaigns/${campaign.id}/test`, { email: 'nobody.else@example.com' })).body, {
    status: 'failed', smtp_response: '550 5.1.1 <nobody.else@example.com>: Recipient address rejected: User unknown in virtual mailbox table',
  });
  t.equal((await a.get(`${base}/campaigns/${campaign.id}`)).body.stats.recipients, 0);

  // Send now: scheduled for now, started by the next run of the task.
  const sending = await a.post(`${base}/campaigns/${campaign.id}/send`, {});
  t.match(sending.body, { status: 'scheduled', scheduled_at: '2026-11-22T09:00:00.000Z' });
  const delivered = () => relay.received.length - 1; // the first message was the test
  const stats = async () => (await a.get(`${base}/campaigns/${campaign.id}`)).body;

  await h.app.jobs.tick();
  let now = await stats();
  t.match(now, { status: 'sending', started_at: '2026-11-22T09:00:00.000Z', stats: { recipients: 5, queued: 3, sent: 1, failed: 1 } }, 'the throttle: 2 messages in the first minute');
  t.equal(delivered(), 1, 'the refused one never reached DATA');
  await h.app.jobs.tick();
  t.equal((await stats()).stats.queued, 3, 'no more before the next minute');

  h.clock.advance(MINUTE);
  await h.app.jobs.tick();
  now = await stats();
  t.match(now.stats, { queued: 2, sent: 2, failed: 1 }, 'greylisted (451, retried later) and bea');
  const greyMid = (await a.get(`${base}/campaigns/${campaign.id}/deliveries?status=queued`)).body.data;
  t.match(greyMid, [
    { contact: carlo, status: 'queued', attempts: 0, smtp_response: null },
    { contact: grey, status: 'queued', attempts: 1, smtp_response: '451 4.7.1 <greylisted@example.com>: Recipient address rejected: Greylisted, try again later' },
  ]);

  h.clock.advance(MINUTE);
  await h.app.jobs.tick();
  now = await stats();
  t.match(now, { status: 'sent', finished_at: '2026-11-22T09:02:00.000Z', stats: { recipients: 5, queued: 0, sent: 4, failed: 1 } });

  const outcomes = (await a.get(`${base}/campaigns/${campaign.id}/deliveries?limit=100`)).body.data;
  t.same(outcomes.map((d: { email: string; status: string; attempts: number }) => [d.email, d.status, d.attempts]), [
    ['carlo@example.com', 'sent', 1],
    ['bea@example.com', 'sent', 1],
    ['greylisted@example.com', 'sent', 2],
    ['nobody@example.com', 'failed', 1],
    ['ada@example.com', 'sent', 1],
  ]);
  t.equal(outcomes.find((d: { contact: string }) => d.contact === nobody).smtp_response, '550 5.1.1 <nobody@example.com>: Recipient address rejected: User unknown in virtual mailbox table');
  t.match(outcomes.find((d: { contact: string }) => d.contact === ada).smtp_response, /^250 2\.0\.0 Ok: queued as Q\d+$/);
  t.same((await a.get(`${base}/campaigns/${campaign.id}/deliveries?status=failed`)).body.data.map((d: { contact: string }) => d.contact), [nobody]);
  const paged = (await a.get(`${base}/campaigns/${campaign.id}/deliveries?limit=2`)).body;
  t.equal(paged.next_cursor, bea);
  t.same((await a.get(`${base}/campaigns/${campaign.id}/deliveries?limit=2&starting_after=${paged.next_cursor}`)).body.data.map((d: { contact: string }) => d.contact), [grey, nobody]);

  // Each consenting recipient got exactly one message; the one without consent none.
  for (const address of ['ada@example.com', 'greylisted@example.com', 'bea@example.com', 'carlo@example.com']) t.equal(relay.to(address).length, 1, address);
  t.equal(relay.to('noconsent@example.com').length, 0);
  t.ok(relay.received.every((r) => r.rcptTo.length === 1 && r.mailFrom === 'newsletter@mail.example.it'), 'one message per recipient, bounces to the From address');

  // The message: text and HTML, the unsubscribe link in both and in List-Unsubscribe (one-click).
  const raw = relay.to('ada@example.com')[0]!.raw;
  const mail = await simpleParser(raw);
  const link = unsubscribeLink(raw);
  t.match(link, /^http:\/\/pec-partner\.test\/newsletter\/unsubscribe\/[0-9A-Za-z]{32}$/);
  t.match(raw.toString(), /^List-Unsubscribe-Post: List-Unsubscribe=One-Click$/m);
  t.equal(mail.subject, 'Novità di novembre');
  t.same(mail.from?.value, [{ address: 'newsletter@mail.example.it', name: 'Mario Rossi' }]);
  t.same(mail.to && !Array.isArray(mail.to) ? mail.to.value : null, [{ address: 'ada@example.com', name: 'Ada Lovelace' }]);
  t.same(mail.replyTo?.value, [{ address: mbx.address, name: '' }]);
  t.equal(mail.messageId, `<${campaign.id}.${ada}@mail.example.it>`);
  t.ok(mail.html && mail.html.startsWith(campaign.html) && mail.html.includes(`<a href="${link}">Unsubscribe</a>`), 'HTML with the footer');
  t.ok(mail.text?.startsWith(campaign.text) && mail.text.includes(link), 'text with the link');
  t.not(unsubscribeLink(relay.to('bea@example.com')[0]!.raw), link, 'each recipient has their own link');

  // The link: GET shows a confirmation (changes nothing), POST unsubscribes; RFC 8058 one-click works too.
  const path = new URL(link).pathname;
  const page = await h.app.inject({ method: 'GET', url: path });
  t.equal(page.statusCode, 200);
  t.match(page.headers['content-type'], /^text\/html/);
  t.match(page.body, /<form method="post" action="http:\/\/pec-partner\.test\/newsletter\/unsubscribe\/[0-9A-Za-z]{32}">/);
  t.match(page.body, /ada@example\.com/);
  t.equal((await a.get(`${base}/contacts/${ada}`)).body.receives_campaigns, true, 'a GET alone unsubscribes nobody');
  const done = await h.app.inject({ method: 'POST', url: path, headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: '' });
  t.equal(done.statusCode, 200);
  t.match(done.body, /will no longer receive the newsletter of Mario Rossi/);
  t.match((await a.get(`${base}/contacts/${ada}`)).body, { receives_campaigns: false, unsubscribed_at: '2026-11-22T09:02:00.000Z' });
  t.equal((await h.app.inject({ method: 'POST', url: path })).statusCode, 200, 'again: nothing changes');
  const oneClick = await h.app.inject({
    method: 'POST', url: new URL(unsubscribeLink(relay.to('bea@example.com')[0]!.raw)).pathname,
    headers: { 'content-type': 'multipart/form-data; boundary=x' }, payload: '--x\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\nOne-Click\r\n--x--\r\n',
  });
  t.equal(oneClick.statusCode, 200);
  t.equal((await h.app.inject({ method: 'GET', url: '/newsletter/unsubscribe/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' })).statusCode, 404);
  // Importing the address again does not subscribe it again.
  t.match(json(await csv(h, partner, `${base}/contacts/import`, 'email,consent\nada@example.com,yes\n')), { updated: 1, failed: 0 });
  t.match((await a.get(`${base}/contacts/${ada}`)).body, { consent: true, receives_campaigns: false });

  // A sent campaign is final.
  t.equal((await a.patch(`${base}/campaigns/${campaign.id}`, { subject: 'x' })).body.code, 'invalid_state_transition');
  t.match((await a.post(`${base}/campaigns/${campaign.id}/cancel`)).body, { code: 'invalid_state_transition', current_status: 'sent' });

  // Scheduled later: nothing before its time; unsubscribed and non-consenting contacts are left out.
  const second = (await a.post(`${base}/campaigns`, { list, subject: 'Dicembre', html: '<p>Auguri</p>', text: 'Auguri!' })).body;
  t.equal(second.text, 'Auguri!');
  t.match((await a.post(`${base}/campaigns/${second.id}/send`, { scheduled_at: '2026-11-22T08:00:00Z' })).body, { status: 400, errors: [{ pointer: '/scheduled_at', code: 'out_of_range' }] });
  t.match((await a.post(`${base}/campaigns/${second.id}/send`, { scheduled_at: '2026-11-22T12:00:00Z' })).body, { status: 'scheduled', scheduled_at: '2026-11-22T12:00:00.000Z' });
  t.match((await a.patch(`${base}/campaigns/${second.id}`, { html: '<p>Buone feste</p>' })).body, { status: 'scheduled', text: 'Buone feste' });
  h.clock.advance(MINUTE);
  await h.app.jobs.tick();
  t.equal((await a.get(`${base}/campaigns/${second.id}`)).body.status, 'scheduled');
  const third = (await a.post(`${base}/campaigns`, { list, subject: 'Annullata', html: '<p>x</p>' })).body;
  await a.post(`${base}/campaigns/${third.id}/send`, { scheduled_at: '2026-11-22T12:00:00Z' });
  t.match((await a.post(`${base}/campaigns/${third.id}/cancel`)).body, { status: 'cancelled' });
  const before = relay.received.length;
  h.clock.set('2026-11-22T12:00:00Z');
  await h.app.jobs.tick();
  h.clock.advance(MINUTE);
  await h.app.jobs.tick();
  t.match((await a.get(`${base}/campaigns/${second.id}`)).body, { status: 'sent', stats: { recipients: 3, sent: 2, failed: 1 } });
  t.same(relay.received.slice(before).map((r) => r.rcptTo[0]).sort(), ['carlo@example.com', 'greylisted@example.com']);
  t.equal((await a.get(`${base}/campaigns/${third.id}`)).body.stats.recipients, 0, 'the cancelled campaign sent nothing');
  t.same((await a.get(`${base}/campaigns?status=sent`)).body.data.map((c: { id: string }) => c.id), [second.id, campaign.id]);

  // Nobody left to send to: 409.
  const lonely = (await a.post(`${base}/lists`, { name: 'Vuota' })).body.id;
  await a.post(`${base}/lists/${lonely}/members`, { contacts: [noConsent, ada] });
  const empty = (await a.post(`${base}/campaigns`, { list: lonely, subject: 'x', html: '<p>x</p>' })).body;
  t.equal((await a.post(`${base}/campaigns/${empty.id}/send`, {})).body.code, 'no_recipients');
  t.equal((await a.del(`${base}/lists/${list}`)).body.code, 'list_in_use');
});

t.test('durable sending: relay outage, broken connection, crashed process and parallel runs never send anyone twice', async (t) => {
  // The relay is down at first: its port is known but nothing listens.
  const first = await startRelay(t);
  const port = first.port;
  await first.close();
  const env = { NEWSLETTER_SMTP_HOST: '127.0.0.1', NEWSLETTER_SMTP_PORT: String(port), NEWSLETTER_RATE_PER_MINUTE: '10', NEWSLETTER_FROM_ADDRESS: 'newsletter@mail.example.it' };
  const { h, a, mbx, base, contact } = await world(t, { rate: 10, relayPort: port });
  const ids = [];
  for (const email of ['uno@example.com', 'crash@example.com', 'due@example.com', 'tre@example.com']) ids.push(await contact(email));
  const [uno, crash, due, tre] = ids as [string, string, string, string];
  const list = (await a.post(`${base}/lists`, { name: 'Tutti' })).body.id;
  await a.post(`${base}/lists/${list}/members`, { contacts: ids });
  const campaign = (await a.post(`${base}/campaigns`, { list, subject: 'Prova', html: '<p>Ciao</p>' })).body.id;
  await a.post(`${base}/campaigns/${campaign}/send`, {});
  const test = await a.post(`${base}/campaigns/${campaign}/test`, { email: 'tester@example.com' });
  t.match(test.body, { status: 503, code: 'relay_unavailable' });

  // Outage: the campaign starts, nothing is lost or counted as an attempt, the run stops at the first refusal to connect.
  await h.app.jobs.tick();
  const deliveries = async () => (await a.get(`${base}/campaigns/${campaign}/deliveries?limit=100`)).body.data as Array<{ contact: string; status: string; attempts: number; smtp_response: string | null }>;
  const outage = await deliveries();
  t.match(outage.find((d) => d.contact === uno), { status: 'queued', attempts: 0, smtp_response: /^not sent yet, relay unavailable: .*ECONNREFUSED/ });
  t.same(outage.filter((d) => d.contact !== uno).map((d) => [d.status, d.attempts, d.smtp_response]), [['queued', 0, null], ['queued', 0, null], ['queued', 0, null]]);
  t.match((await a.get(`${base}/campaigns/${campaign}`)).body, { status: 'sending', stats: { queued: 4 } });

  // A process claimed `tre` (attempt written, no outcome) and died: from outside, the message may have left.
  await h.database.sql`update newsletter_deliveries set attempts = 1, smtp_response = null, updated_at = ${h.clock.now().toISOString()}::timestamptz
    where campaign_id = ${campaign} and contact_id = ${tre}`;

  // The relay is back. `crash` loses the connection after its message was transferred: failed, outcome unknown,
  // not retried; the run reconnects for `due`; `tre` is still in flight and left alone.
  const relay = await startRelay(t, port);
  h.clock.advance(MINUTE);
  await h.app.jobs.tick();
  let now = await deliveries();
  t.match(now.find((d) => d.contact === uno), { status: 'sent', attempts: 1, smtp_response: /^250 / });
  t.match(now.find((d) => d.contact === crash), { status: 'failed', attempts: 1, smtp_response: /^outcome unknown: the connection broke during the transaction .*; not retried so that nobody gets it twice$/ });
  t.match(now.find((d) => d.contact === due), { status: 'sent', attempts: 1 });
  t.match(now.find((d) => d.contact === tre), { status: 'queued', attempts: 1, smtp_response: null });
  t.match((await a.get(`${base}/campaigns/${campaign}`)).body, { status: 'sending', stats: { queued: 1, sent: 2, failed: 1 } });

  // Ten minutes after the claim the dead process's delivery is given up as unknown, and the campaign is over.
  h.clock.advance(10 * MINUTE);
  await h.app.jobs.tick();
  now = await deliveries();
  t.match(now.find((d) => d.contact === tre), { status: 'failed', attempts: 1, smtp_response: /^outcome unknown: sending was interrupted/ });
  t.match((await a.get(`${base}/campaigns/${campaign}`)).body, { status: 'sent', stats: { recipients: 4, queued: 0, sent: 2, failed: 2 } });
  h.clock.advance(MINUTE);
  await h.app.jobs.tick();
  t.same([uno, crash, due, tre].map((id) => relay.received.filter((r) => r.raw.toString().includes(`${campaign}.${id}@`)).length), [1, 1, 1, 0],
    'the crashed one reached the relay once, the in-flight one never, nobody twice');

  // Two runs at once (two processes): the claims split the recipients, each gets one message.
  const many: string[] = [];
  for (let i = 0; i < 12; i++) many.push(await contact(`lettore${i}@example.com`));
  const big = (await a.post(`${base}/lists`, { name: 'Grande' })).body.id;
  await a.post(`${base}/lists/${big}/members`, { contacts: many });
  const parallel = (await a.post(`${base}/campaigns`, { list: big, subject: 'In parallelo', html: '<p>x</p>' })).body.id;
  await a.post(`${base}/campaigns/${parallel}/send`, {});
  const deps = { db: h.database.db, clock: h.clock, config: loadConfig({ ...env, NEWSLETTER_RATE_PER_MINUTE: '100', PUBLIC_URL: 'http://pec-partner.test' }) };
  const before = relay.received.length;
  const runs = await Promise.all([runNewsletterTask(deps, h.clock.now()), runNewsletterTask(deps, h.clock.now())]);
  t.equal(runs[0]!.sent + runs[1]!.sent, 12);
  t.ok(runs.every((run) => run.sent > 0), 'both runs sent some');
  const got = relay.received.slice(before).map((r) => r.rcptTo[0]).sort();
  t.same(got, many.map((_, i) => `lettore${i}@example.com`).sort(), 'each reader exactly once');
  t.match((await a.get(`${base}/campaigns/${parallel}`)).body, { status: 'sent', stats: { sent: 12 } });

  // Without the add-on nothing is sent: a scheduled campaign waits.
  const later = (await a.post(`${base}/campaigns`, { list: big, subject: 'Dopo', html: '<p>x</p>' })).body.id;
  await a.post(`${base}/campaigns/${later}/send`, {});
  const addon = (await a.get(`/v1/mailboxes/${mbx.id}/addons`)).body.data.find((x: { kind: string }) => x.kind === 'newsletter');
  t.equal((await a.post(`/v1/mailboxes/${mbx.id}/addons/${addon.id}/cancel`, { when: 'now' })).status, 200);
  h.clock.advance(MINUTE);
  await h.app.jobs.tick();
  t.equal((await a.get(`${base}/campaigns/${later}`)).body.code, 'addon_required');
  const [row] = await h.database.sql`select status from newsletter_campaigns where id = ${later}`;
  t.equal(row!.status, 'scheduled');

  // The relay settings are validated at start-up.
  t.match(loadConfig({}).newsletter, { smtpHost: '127.0.0.1', smtpPort: 25, ratePerMinute: 60, verifyTls: true, fromAddress: 'newsletter@pec.example.it', smtpUser: undefined });
  t.throws(() => loadConfig({ NEWSLETTER_RATE_PER_MINUTE: '0' }), /NEWSLETTER_RATE_PER_MINUTE must be an integer between 1 and 100000; got '0'/);
  t.throws(() => loadConfig({ NEWSLETTER_SMTP_PORT: '70000' }), /NEWSLETTER_SMTP_PORT must be an integer between 1 and 65535/);
  t.throws(() => loadConfig({ NEWSLETTER_SMTP_HOST: 'relay host' }), /NEWSLETTER_SMTP_HOST must be a host name or IP address/);
  t.throws(() => loadConfig({ NEWSLETTER_SMTP_USER: 'u' }), /NEWSLETTER_SMTP_USER and NEWSLETTER_SMTP_PASSWORD go together/);
  t.throws(() => loadConfig({ NEWSLETTER_FROM_ADDRESS: 'newsletter' }), /NEWSLETTER_FROM_ADDRESS must be an e-mail address/);
  t.throws(() => loadConfig({ NEWSLETTER_SMTP_VERIFY_TLS: 'no' }), /NEWSLETTER_SMTP_VERIFY_TLS must be true or false/);
});
