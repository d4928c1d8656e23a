/**
 * Multi-user (delegation): the holder invites collaborators, who sign in as themselves with what their mode allows.
 * A Pro mailbox includes one seat; a purchased `delegation_seat` add-on makes room for a second collaborator.
 *   PEC_PARTNER_API_KEY=sk_live_… PEC_PARTNER_BASE_URL=http://127.0.0.1:3000 npx tsx examples/addon-delegation.ts
 */
import { AuthenticationError, ConflictError, PecPartner, PermissionError } from '@pec-partner/sdk';
import { baseUrl, clientFromEnv, ensureCredit, identifiedCustomer, latestLedgerEntries, openMailbox, refused, same, unique, waitFor } from './support.ts';

const partner = clientFromEnv();
await ensureCredit(partner, 10_000);
const customer = await identifiedCustomer(partner);
const studio = await openMailbox(partner, customer, 'studio', 'pro');
const client = await openMailbox(partner, customer, 'cliente', 'standard');
const signIn = (address: string, password: string) => new PecPartner({ mailbox: { address, password }, baseUrl: baseUrl(), maxRetries: 0 });
const holder = signIn(studio.address, studio.password);

// The holder invites its secretary (read only); the token is shown once, for the collaborator.
const run = unique();
const secretaryEmail = `segreteria-${run}@studio.example`;
const invited = await holder.post('/v1/mailboxes/{id}/delegations', { path: { id: studio.id }, body: { email: secretaryEmail, name: 'Giulia', mode: 'read_only' } });
same([invited.status, invited.mode], ['invited', 'read_only'], 'the invitation');
console.log(`invited ${invited.email} (${invited.mode}); the invitation expires ${invited.invitation.expires_at}`);

// The plan's one seat is taken: a second collaborator needs a purchased seat.
const associateEmail = `socio-${run}@studio.example`;
const full = await refused(
  partner.post('/v1/mailboxes/{id}/delegations', { path: { id: studio.id }, body: { email: associateEmail, mode: 'send_only' } }),
  ConflictError, 'delegate_seats_exhausted', 'a second invitation without a seat',
);
console.log(`second invitation refused: ${full.detail}`);
const seat = await partner.post('/v1/mailboxes/{id}/addons', { path: { id: studio.id }, body: { kind: 'delegation_seat', quantity: 1 } });
const [seatCharge] = await latestLedgerEntries(partner, 1);
same([seatCharge?.type, seatCharge?.item?.id], ['charge', seat.id], 'the seat is charged');
const second = await partner.post('/v1/mailboxes/{id}/delegations', { path: { id: studio.id }, body: { email: associateEmail, mode: 'send_only' } });
console.log(`bought a seat (${-seatCharge!.amount} cents) and invited ${second.email} (${second.mode})`);

// The collaborator accepts with a password of its own (no credentials needed: the token is the proof).
const secretaryPassword = `Giulia-${run}-2026`;
const accepted = await partner.post('/v1/delegation-invitations/accept', { body: { token: invited.invitation.token, password: secretaryPassword } });
same([accepted.status, accepted.account.created], ['active', true], 'the accepted delegation');
const secretary = signIn(secretaryEmail, secretaryPassword);

// Real mail arrives; the read-only collaborator reads it, and may neither send nor manage collaborators.
await signIn(client.address, client.password).post('/v1/mailboxes/{id}/messages', {
  path: { id: client.id }, body: { to: [studio.address], subject: `Preventivo ${run}`, text: 'Buongiorno, allego il preventivo.' },
});
const received = await waitFor(async () => {
  const inbox = await secretary.get('/v1/mailboxes/{id}/messages', { path: { id: studio.id }, query: { folder: 'inbox' } });
  return inbox.data.find((message) => message.subject === `POSTA CERTIFICATA: Preventivo ${run}`);
}, 'the certified message in the inbox');
const read = await secretary.get('/v1/mailboxes/{id}/messages/{message}', { path: { id: studio.id, message: received.id } });
same(read.id, received.id, 'the message the collaborator reads');
console.log(`${secretaryEmail} reads "${received.subject}"`);

const noSend = await refused(
  secretary.post('/v1/mailboxes/{id}/messages', { path: { id: studio.id }, body: { to: [client.address], subject: 'Risposta', text: 'x' } }),
  PermissionError, 'delegation_mode_forbids', 'a read_only collaborator sending',
);
same([noSend.status, noSend.problem?.mode, noSend.problem?.operation], [403, 'read_only', 'send_message'], 'the 403 names the mode and the operation');
await refused(secretary.get('/v1/mailboxes/{id}/delegations', { path: { id: studio.id } }), PermissionError, 'delegation_mode_forbids', 'a collaborator managing delegations');
console.log(`403 as expected: ${noSend.detail}`);

// The partner widens the mode: the same collaborator now sends, and the holder's log names who did.
await partner.patch('/v1/mailboxes/{id}/delegations/{delegation}', { path: { id: studio.id, delegation: invited.id }, body: { mode: 'full_access' } });
const sent = await secretary.post('/v1/mailboxes/{id}/messages', { path: { id: studio.id }, body: { to: [client.address], subject: `Risposta ${run}`, text: 'Grazie.' } });
same(sent.status, 'accepted', 'the collaborator\'s submission');
const logged = await waitFor(async () => {
  const log = await holder.get('/v1/mailboxes/{id}/log', { path: { id: studio.id }, query: { limit: 100 } });
  return log.data.find((entry) => entry.subject === `Risposta ${run}` && entry.event === 'Accettazione');
}, 'the acceptance in the log register');
same(logged.details?.delegato, secretaryEmail, 'the log register names the collaborator');
console.log(`after the change to full_access ${secretaryEmail} sent "Risposta ${run}" (log: delegato ${String(logged.details?.delegato)})`);

// Revoked: the collaborator's credentials no longer open this mailbox.
const revoked = await holder.post('/v1/mailboxes/{id}/delegations/{delegation}/revoke', { path: { id: studio.id, delegation: invited.id } });
same(revoked.status, 'revoked', 'the revoked delegation');
await refused(secretary.get('/v1/mailboxes/{id}/messages', { path: { id: studio.id } }), AuthenticationError, 'invalid_mailbox_credentials', 'a revoked collaborator signing in');
const statuses = [];
for await (const delegation of partner.list('/v1/mailboxes/{id}/delegations', { path: { id: studio.id } })) statuses.push(`${delegation.email}:${delegation.status}`);
same(statuses, [`${associateEmail}:invited`, `${secretaryEmail}:revoked`], 'the delegations, newest first');
console.log('delegation: ok');
