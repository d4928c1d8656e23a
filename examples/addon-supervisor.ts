/**
 * Supervisor console: a studio buys the add-on, creates its supervisor, adds its clients' mailboxes, reads their
 * figures (which match what the holders see after real mail), renews in bulk, and opens a mailbox through a
 * single-use sign-in link exchanged for a 30-minute session that reads but does not send.
 *   PEC_PARTNER_API_KEY=sk_live_… PEC_PARTNER_BASE_URL=http://127.0.0.1:3000 npx tsx examples/addon-supervisor.ts
 */
import { ConflictError, PecPartner, PecPartnerError, PermissionError } from '@pec-partner/sdk';
import { baseUrl, clientFromEnv, ensureCredit, identifiedCustomer, latestLedgerEntries, openMailbox, refused, same, unique, waitFor } from './support.ts';

const partner = clientFromEnv();
await ensureCredit(partner, 15_000);
const customer = await identifiedCustomer(partner);
const studio = await openMailbox(partner, customer, 'studio', 'pro');
const run = unique();
const supervisorBody = { mailbox: studio.id, name: 'Studio Bianchi', email: `console-${run}@studiobianchi.example` };

// No console without the add-on on the studio's mailbox.
const gate = await refused(partner.post('/v1/supervisors', { body: supervisorBody }), ConflictError, 'addon_required', 'a supervisor without the add-on');
console.log(`refused as expected: ${gate.detail}`);
const addon = await partner.post('/v1/mailboxes/{id}/addons', { path: { id: studio.id }, body: { kind: 'supervisor' } });
const supervisor = await partner.post('/v1/supervisors', { body: supervisorBody });
console.log(`supervisor ${supervisor.id} for ${studio.address} (add-on ${addon.id})`);

const anna = await openMailbox(partner, customer, 'anna', 'pro');
const bruno = await openMailbox(partner, customer, 'bruno', 'standard');
for (const mailbox of [anna, bruno]) {
  const added = await partner.post('/v1/supervisors/{id}/mailboxes', { path: { id: supervisor.id }, body: { mailbox: mailbox.id } });
  same(added.status, 'active', `${mailbox.address} in the console`);
}

// Real mail: bruno writes to anna twice; the console's unread count follows anna's inbox.
const holder = (mailbox: { address: string; password: string }) => new PecPartner({ mailbox, baseUrl: baseUrl(), maxRetries: 0 });
for (const subject of [`Fattura ${run}`, `Sollecito ${run}`]) {
  await holder(bruno).post('/v1/mailboxes/{id}/messages', { path: { id: bruno.id }, body: { to: [anna.address], subject, text: 'Buongiorno' } });
}
const row = await waitFor(async () => {
  const page = await partner.get('/v1/supervisors/{id}/mailboxes', { path: { id: supervisor.id }, query: { sort: 'unread', order: 'desc' } });
  const first = page.data[0];
  return first?.id === anna.id && first.unread === 2 ? first : undefined;
}, "anna's two unread messages in the console");
const folders = await holder(anna).get('/v1/mailboxes/{id}/folders', { path: { id: anna.id } });
const annaMailbox = await partner.get('/v1/mailboxes/{id}', { path: { id: anna.id } });
same(row.unread, folders.data.find((folder) => folder.name === 'inbox')?.unread, "the console's unread count is the holder's");
same([row.plan, row.expires_at, row.inbox?.total_bytes], [annaMailbox.plan, annaMailbox.expires_at, annaMailbox.quotas.inbox.total_bytes], "the console's figures are the mailbox's");
console.log(`console: ${row.address} ${row.plan}, ${row.unread} unread, inbox ${row.inbox?.used_bytes} of ${row.inbox?.total_bytes} bytes, expires ${row.expires_at}`);

// Renewals in bulk, each charged like a single renewal.
const renewed = await partner.post('/v1/supervisors/{id}/bulk', { path: { id: supervisor.id }, body: { action: 'renew', years: 1, mailboxes: [anna.id, bruno.id] } });
same([renewed.succeeded, renewed.failed], [2, 0], 'the bulk renewal');
const oneYearLater = (iso: string) => { const date = new Date(iso); date.setUTCFullYear(date.getUTCFullYear() + 1); return date.toISOString(); };
same(renewed.results.map((result) => result.expires_at), [oneYearLater(anna.expires_at!), oneYearLater(bruno.expires_at!)], 'each mailbox a year longer');
const charges = (await latestLedgerEntries(partner, 2)).map((entry) => [entry.item?.id, entry.amount]);
same(charges, [[bruno.id, -500], [anna.id, -2500]], 'one renewal charge per mailbox at its plan price');
console.log(`bulk renewal: ${renewed.results.map((result) => `${result.mailbox} → ${result.expires_at}`).join(', ')}`);

// A single-use sign-in link, exchanged for a session on anna's mailbox.
const link = await partner.post('/v1/supervisors/{id}/mailboxes/{mailbox}/sign-in-links', { path: { id: supervisor.id, mailbox: anna.id } });
const session = await partner.post('/v1/mailbox-sessions', { body: { token: link.token } });
same([session.mailbox, session.mode, session.can_send], [anna.id, 'read_write', false], 'the mailbox session');
await refused(partner.post('/v1/mailbox-sessions', { body: { token: link.token } }), PecPartnerError, 'sign_in_link_used', 'the link used twice');
const asSupervisor = new PecPartner({ apiKey: session.token, baseUrl: baseUrl(), maxRetries: 0 });
const inbox = await asSupervisor.get('/v1/mailboxes/{id}/messages', { path: { id: anna.id }, query: { folder: 'inbox' } });
same(inbox.data.map((message) => message.subject).sort(), [`POSTA CERTIFICATA: Fattura ${run}`, `POSTA CERTIFICATA: Sollecito ${run}`], 'what the session reads');
const marked = await asSupervisor.patch('/v1/mailboxes/{id}/messages/{message}', { path: { id: anna.id, message: inbox.data[0]!.id }, body: { seen: true } });
same(marked.seen, true, 'the session marks a message read');
const forbidden = await refused(
  asSupervisor.post('/v1/mailboxes/{id}/messages', { path: { id: anna.id }, body: { to: [bruno.address], subject: 'x', text: 'x' } }),
  PermissionError, 'supervisor_session_forbids', 'a supervisor session sending',
);
console.log(`session until ${session.expires_at}: read ${inbox.data.length} messages, marked one read; sending: ${forbidden.detail}`);
await waitFor(async () => {
  const page = await partner.get('/v1/supervisors/{id}/mailboxes', { path: { id: supervisor.id } });
  return page.data.find((mailbox) => mailbox.id === anna.id)?.unread === 1;
}, 'the console to show one unread after the session read one');
console.log('supervisor: ok');
