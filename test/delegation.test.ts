import { eq } from 'drizzle-orm';
import nodemailer from 'nodemailer';
import t, { type Test } from 'tap';
import { pecTransactions } from '@pec-partner/db';
import { startSmtpServers } from '../api/src/pec/smtp-servers.ts';
import { loadOrCreateTls } from '../api/src/pec/tls.ts';
import { api } from './helpers/fixtures.ts';
import { DAYS, harness, json, type Harness } from './helpers/harness.ts';

type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';

/** A client signed in with HTTP Basic as `user` (a mailbox address, or a collaborator's e-mail). */
function basic(h: Harness, user: string, password: string) {
  const authorization = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
  return async (method: Method, url: string, payload?: unknown, headers: Record<string, string> = {}) => {
    const response = await h.app.inject({ method, url, headers: { authorization, ...headers }, ...(payload === undefined ? {} : { payload: payload as string }) });
    const type = String(response.headers['content-type'] ?? '');
    return { status: response.statusCode, body: type.includes('json') ? json(response) : response.body };
  };
}
type Client = ReturnType<typeof basic>;

async function setup(t: Test) {
  const h = await harness(t);
  const p = await h.partner();
  const a = api(h, p);
  await a.topUp(100_000);
  const customer = await a.customer();
  const open = async (local: string, plan: 'standard' | 'pro' | 'premium' = 'pro') => {
    const password = `${local}-password-2026`;
    const created = await a.post('/v1/mailboxes', { local_part: local, domain: 'pec.example.it', customer, plan, password });
    if (created.status !== 201) throw new Error(JSON.stringify(created.body));
    return { id: created.body.id as string, address: created.body.address as string, password, as: basic(h, created.body.address, password) };
  };
  /** Invites and accepts: a collaborator signed in as itself. */
  const delegate = async (mailbox: { id: string; as: Client }, email: string, mode: string) => {
    const invited = await mailbox.as('POST', `/v1/mailboxes/${mailbox.id}/delegations`, { email, mode });
    if (invited.status !== 201) throw new Error(JSON.stringify(invited.body));
    const password = `${email.split('@')[0]}-secret-2026`;
    const accepted = await h.app.inject({ method: 'POST', url: '/v1/delegation-invitations/accept', payload: { token: invited.body.invitation.token, password } });
    if (accepted.statusCode !== 200) throw new Error(accepted.body);
    return { id: invited.body.id as string, email, password, as: basic(h, email, password) };
  };
  return { h, a, p, customer, open, delegate };
}

const publicPost = async (h: Harness, url: string, payload: unknown) => {
  const response = await h.app.inject({ method: 'POST', url, payload: payload as object });
  return { status: response.statusCode, body: json(response) };
};

t.test('invitations: seats, acceptance, expiry, shared accounts, revocation, who may manage', async (t) => {
  const { h, a, p, open } = await setup(t);
  const alice = await open('alice'); // pro: one delegate seat included
  const bob = await open('bob');

  // The holder invites: the token is shown once and valid 7 days.
  const first = await alice.as('POST', `/v1/mailboxes/${alice.id}/delegations`, { email: 'Giulia.Segretaria@Studio.example', name: 'Giulia', mode: 'read_only' });
  t.equal(first.status, 201);
  t.match(first.body, {
    id: /^dlg_/, object: 'delegation', mailbox: alice.id, mailbox_address: alice.address, email: 'giulia.segretaria@studio.example', name: 'Giulia',
    mode: 'read_only', status: 'invited', invite_expires_at: '2026-11-29T09:00:00.000Z', accepted_at: null,
    invitation: { token: /^dinv_[A-Za-z0-9]{40}$/, expires_at: '2026-11-29T09:00:00.000Z' },
  });
  const stored = await h.app.inject({ method: 'GET', url: `/v1/mailboxes/${alice.id}/delegations/${first.body.id}`, headers: p.headers });
  t.notOk('invitation' in json(stored), 'the token is not shown again');

  // The partner invites a second collaborator: no seat left.
  const full = await a.post(`/v1/mailboxes/${alice.id}/delegations`, { email: 'marco@studio.example', mode: 'full_access' });
  t.equal(full.status, 409);
  t.match(full.body, { code: 'delegate_seats_exhausted', seats: 1, included: 1, purchased: 0, used: 1 });
  t.match(full.body.detail, /1 delegate seat \(1 included in the plan, 0 purchased\) and all are taken \(0 active, 1 invited\)/);
  t.equal((await a.post(`/v1/mailboxes/${alice.id}/delegations`, { email: 'giulia.segretaria@studio.example', mode: 'full_access' })).body.code, 'delegation_exists');

  // A purchased seat makes room.
  const seat = await a.post(`/v1/mailboxes/${alice.id}/addons`, { kind: 'delegation_seat', quantity: 1 });
  t.equal(seat.status, 201);
  const second = await a.post(`/v1/mailboxes/${alice.id}/delegations`, { email: 'marco@studio.example', mode: 'full_access' });
  t.equal(second.status, 201);
  t.match((await a.post(`/v1/mailboxes/${alice.id}/delegations`, { email: 'third@studio.example', mode: 'send_only' })).body, { code: 'delegate_seats_exhausted', seats: 2, purchased: 1, used: 2 });

  // Acceptance creates the collaborator's account; the token works once.
  t.match(await publicPost(h, '/v1/delegation-invitations/accept', { token: first.body.invitation.token, password: 'short' }), { status: 400, body: { code: 'validation_error' } });
  const accepted = await publicPost(h, '/v1/delegation-invitations/accept', { token: first.body.invitation.token, password: 'giulia-secret-2026' });
  t.equal(accepted.status, 200);
  t.match(accepted.body, { id: first.body.id, status: 'active', accepted_at: '2026-11-22T09:00:00.000Z', invite_expires_at: null, account: { id: /^dac_/, email: 'giulia.segretaria@studio.example', created: true } });
  t.match(await publicPost(h, '/v1/delegation-invitations/accept', { token: first.body.invitation.token, password: 'giulia-secret-2026' }), { status: 409, body: { code: 'invitation_already_accepted' } });
  t.match(await publicPost(h, '/v1/delegation-invitations/accept', { token: 'dinv_nonsense', password: 'giulia-secret-2026' }), { status: 404, body: { code: 'invitation_not_found' } });

  // The collaborator signs in as itself, on the delegated mailbox only.
  const giulia = basic(h, 'giulia.segretaria@studio.example', 'giulia-secret-2026');
  t.equal((await giulia('GET', `/v1/mailboxes/${alice.id}/messages`)).status, 200);
  t.match(await giulia('GET', `/v1/mailboxes/${bob.id}/messages`), { status: 401, body: { code: 'invalid_mailbox_credentials' } });
  t.equal((await basic(h, 'giulia.segretaria@studio.example', 'wrong-password-1')('GET', `/v1/mailboxes/${alice.id}/messages`)).status, 401);
  // Managing delegations stays with the holder and the partner.
  t.match(await giulia('GET', `/v1/mailboxes/${alice.id}/delegations`), { status: 403, body: { code: 'delegation_mode_forbids', mode: 'read_only', operation: 'manage_delegations' } });
  t.match(await giulia('POST', `/v1/mailboxes/${alice.id}/delegations`, { email: 'friend@studio.example', mode: 'full_access' }), { status: 403, body: { code: 'delegation_mode_forbids' } });

  // Marco does not accept in time: 410, and the seat is free again.
  h.clock.advance(7 * DAYS + 1000);
  t.match(await publicPost(h, '/v1/delegation-invitations/accept', { token: second.body.invitation.token, password: 'marco-secret-2026' }), { status: 410, body: { code: 'invitation_expired' } });
  const listed = await a.get(`/v1/mailboxes/${alice.id}/delegations`);
  t.same(listed.body.data.map((d: { email: string; status: string }) => [d.email, d.status]), [['marco@studio.example', 'expired'], ['giulia.segretaria@studio.example', 'active']]);
  t.same((await a.get(`/v1/mailboxes/${alice.id}/delegations?status=active`)).body.data.map((d: { id: string }) => d.id), [first.body.id]);
  const again = await a.post(`/v1/mailboxes/${alice.id}/delegations`, { email: 'marco@studio.example', mode: 'send_only' });
  t.equal(again.status, 201, 'an expired invitation frees its seat');

  // The same collaborator on a second mailbox: one account, its password proves it is the same person.
  const onBob = await bob.as('POST', `/v1/mailboxes/${bob.id}/delegations`, { email: 'giulia.segretaria@studio.example', mode: 'read_write' });
  t.match(await publicPost(h, '/v1/delegation-invitations/accept', { token: onBob.body.invitation.token, password: 'another-password-9' }), { status: 401, body: { code: 'invalid_delegate_credentials' } });
  t.match(await publicPost(h, '/v1/delegation-invitations/accept', { token: onBob.body.invitation.token, password: 'giulia-secret-2026' }), { status: 200, body: { account: { id: accepted.body.account.id, created: false } } });
  t.equal((await giulia('GET', `/v1/mailboxes/${bob.id}/messages`)).status, 200);

  // Mode changes apply at once.
  t.match(await giulia('PATCH', `/v1/mailboxes/${alice.id}/messages/msg_00000000000000000000000000`, { seen: true }), { status: 403, body: { code: 'delegation_mode_forbids', mode: 'read_only', operation: 'update_message' } });
  t.match(await a.patch(`/v1/mailboxes/${alice.id}/delegations/${first.body.id}`, { mode: 'read_write' }), { status: 200, body: { mode: 'read_write' } });
  t.match(await giulia('PATCH', `/v1/mailboxes/${alice.id}/messages/msg_00000000000000000000000000`, { seen: true }), { status: 404 });

  // Another partner sees nothing.
  const other = api(h, await h.partner('Other'));
  t.equal((await other.get(`/v1/mailboxes/${alice.id}/delegations`)).status, 404);
  t.equal((await other.post(`/v1/mailboxes/${alice.id}/delegations/${first.body.id}/revoke`)).status, 404);
  t.equal((await bob.as('GET', `/v1/mailboxes/${alice.id}/delegations`)).status, 404, "a holder reaches only its own mailbox's delegations");

  // Revoked: the collaborator signs in no more there, still on bob's.
  const revoked = await alice.as('POST', `/v1/mailboxes/${alice.id}/delegations/${first.body.id}/revoke`);
  t.match(revoked, { status: 200, body: { status: 'revoked', revoked_at: '2026-11-29T09:00:01.000Z' } });
  t.match(await giulia('GET', `/v1/mailboxes/${alice.id}/messages`), { status: 401 });
  t.equal((await giulia('GET', `/v1/mailboxes/${bob.id}/messages`)).status, 200);
  t.match(await a.post(`/v1/mailboxes/${alice.id}/delegations/${first.body.id}/revoke`), { status: 409, body: { code: 'delegation_not_live', delegation_status: 'revoked' } });
  t.match(await a.patch(`/v1/mailboxes/${alice.id}/delegations/${first.body.id}`, { mode: 'full_access' }), { status: 409 });
  t.match(await publicPost(h, '/v1/delegation-invitations/accept', { token: again.body.invitation.token, password: 'marco-secret-2026' }), { status: 200 });
});

t.test('every mode against every mailbox operation', async (t) => {
  const { h, a, open, delegate } = await setup(t);
  const alice = await open('alice', 'premium'); // three seats included
  const bob = await open('bob');
  t.equal((await a.post(`/v1/mailboxes/${alice.id}/addons`, { kind: 'delegation_seat', quantity: 1 })).status, 201);
  const modes = ['send_only', 'read_only', 'read_write', 'full_access'] as const;
  const delegates = Object.fromEntries(await Promise.all(modes.map(async (mode) => [mode, await delegate(alice, `${mode.replace('_', '-')}@studio.example`, mode)] as const)));

  // The mailbox has mail: one received per mode (each mode files or deletes its own), and one the holder sent.
  for (const mode of modes) {
    t.equal((await bob.as('POST', `/v1/mailboxes/${bob.id}/messages`, { to: [alice.address], subject: `Per ${mode}`, text: 'ciao' })).status, 201);
  }
  t.equal((await alice.as('POST', `/v1/mailboxes/${alice.id}/messages`, { to: [bob.address], subject: 'Dal titolare', text: 'ciao' })).status, 201);
  await h.app.pec.drain();
  const inbox = (await alice.as('GET', `/v1/mailboxes/${alice.id}/messages?folder=inbox&limit=100`)).body.data as Array<{ id: string; subject: string }>;
  const received = (mode: string) => inbox.find((m) => m.subject === `POSTA CERTIFICATA: Per ${mode}`)!.id;
  t.equal(inbox.length, 4);

  const eml = (subject: string) => `From: ${alice.address}\r\nTo: ${bob.address}\r\nSubject: ${subject}\r\nMessage-ID: <${subject.replace(/\W/g, '')}@studio.example>\r\n\r\nTesto\r\n`;
  const operations: Array<{ name: string; run: (as: Client, mode: string) => Promise<{ status: number; body: any }>; ok: number }> = [
    { name: 'send_message', ok: 201, run: (as, mode) => as('POST', `/v1/mailboxes/${alice.id}/messages`, { to: [bob.address], subject: `Invio ${mode}`, text: 'x' }) },
    { name: 'send_message', ok: 201, run: (as, mode) => as('POST', `/v1/mailboxes/${alice.id}/messages/raw`, eml(`Raw ${mode}`), { 'content-type': 'message/rfc822' }) },
    { name: 'list_folders', ok: 200, run: (as) => as('GET', `/v1/mailboxes/${alice.id}/folders`) },
    { name: 'list_messages', ok: 200, run: (as) => as('GET', `/v1/mailboxes/${alice.id}/messages`) },
    { name: 'read_message', ok: 200, run: (as, mode) => as('GET', `/v1/mailboxes/${alice.id}/messages/${received(mode)}`) },
    { name: 'download_message', ok: 200, run: (as, mode) => as('GET', `/v1/mailboxes/${alice.id}/messages/${received(mode)}/raw`) },
    { name: 'update_message', ok: 200, run: (as, mode) => as('PATCH', `/v1/mailboxes/${alice.id}/messages/${received(mode)}`, { seen: true, folder: 'archive' }) },
    { name: 'delete_message', ok: 200, run: (as, mode) => as('DELETE', `/v1/mailboxes/${alice.id}/messages/${received(mode)}`) },
    { name: 'read_log', ok: 200, run: (as) => as('GET', `/v1/mailboxes/${alice.id}/log`) },
  ];
  // 'own': allowed, but a send_only collaborator does not see mail it did not send (404, as for a missing message).
  const allowed: Record<(typeof modes)[number], Record<string, true | false | 'own'>> = {
    send_only: { send_message: true, list_folders: true, list_messages: true, read_message: 'own', download_message: 'own', update_message: false, delete_message: false, read_log: false },
    read_only: { send_message: false, list_folders: true, list_messages: true, read_message: true, download_message: true, update_message: false, delete_message: false, read_log: true },
    read_write: { send_message: false, list_folders: true, list_messages: true, read_message: true, download_message: true, update_message: true, delete_message: true, read_log: true },
    full_access: { send_message: true, list_folders: true, list_messages: true, read_message: true, download_message: true, update_message: true, delete_message: true, read_log: true },
  };
  for (const mode of modes) {
    for (const operation of operations) {
      const result = await operation.run(delegates[mode]!.as, mode);
      const expected = allowed[mode][operation.name];
      const label = `${mode} × ${operation.name}`;
      if (expected === true) t.equal(result.status, operation.ok, `${label}: allowed`);
      else if (expected === 'own') t.equal(result.status, 404, `${label}: not its own transaction`);
      else t.match(result, { status: 403, body: { code: 'delegation_mode_forbids', mode, operation: operation.name, detail: `Delegation mode ${mode} does not allow ${operation.name}.` } }, `${label}: forbidden`);
    }
  }
  // What the modes that could file and delete did.
  const after = (await alice.as('GET', `/v1/mailboxes/${alice.id}/messages?limit=100`)).body.data as Array<{ id: string; folder: string }>;
  for (const mode of modes) {
    const expected = allowed[mode].delete_message ? undefined : 'inbox';
    t.equal(after.find((m) => m.id === received(mode))?.folder, expected, `${mode}: message ${expected ? 'untouched' : 'moved then deleted'}`);
  }

  // send_only sees its own transactions (sent copies and their receipts), nothing else; and reads them.
  await h.app.pec.drain();
  const own = (await delegates.send_only!.as('GET', `/v1/mailboxes/${alice.id}/messages?limit=100`)).body.data as Array<{ id: string; subject: string; kind: string; folder: string }>;
  t.same(own.map((m) => `${m.folder}:${m.kind}:${m.subject}`).sort(), [
    'receipts:acceptance:ACCETTAZIONE: Invio send_only', 'receipts:acceptance:ACCETTAZIONE: Raw send_only',
    'receipts:delivery:CONSEGNA: Invio send_only', 'receipts:delivery:CONSEGNA: Raw send_only',
    'sent:original:Invio send_only', 'sent:original:Raw send_only',
  ]);
  t.equal((await delegates.send_only!.as('GET', `/v1/mailboxes/${alice.id}/messages/${own[0]!.id}`)).status, 200);
  const folders = (await delegates.send_only!.as('GET', `/v1/mailboxes/${alice.id}/folders`)).body.data as Array<{ name: string; total: number }>;
  t.same(Object.fromEntries(folders.map((f) => [f.name, f.total])), { inbox: 0, sent: 2, receipts: 4, archive: 0, drafts: 0, trash: 0 });
  t.ok(((await alice.as('GET', `/v1/mailboxes/${alice.id}/messages?limit=100`)).body.data as unknown[]).length > own.length, 'the holder sees everything');

  // A suspended mailbox: read modes still read; nobody sends.
  t.equal((await a.post(`/v1/mailboxes/${alice.id}/suspend`)).status, 200);
  t.equal((await delegates.read_only!.as('GET', `/v1/mailboxes/${alice.id}/messages`)).status, 200);
  t.match(await delegates.full_access!.as('POST', `/v1/mailboxes/${alice.id}/messages`, { to: [bob.address], subject: 'x', text: 'x' }), { status: 409, body: { code: 'mailbox_cannot_send' } });
  // A cancelled mailbox: no delegate signs in.
  t.equal((await a.post(`/v1/mailboxes/${alice.id}/cancel`, { when: 'now' })).status, 200);
  t.equal((await delegates.full_access!.as('GET', `/v1/mailboxes/${alice.id}/messages`)).status, 401);
});

t.test("a collaborator's sends are in the log register with its e-mail, over HTTP and over SMTP submission", async (t) => {
  const { h, open, delegate } = await setup(t);
  const alice = await open('alice', 'premium');
  const bob = await open('bob');
  const marco = await delegate(alice, 'marco@studio.example', 'full_access');
  const reader = await delegate(alice, 'lettore@studio.example', 'read_only');

  const sent = await marco.as('POST', `/v1/mailboxes/${alice.id}/messages`, { to: [bob.address], subject: 'Inviata da Marco', text: 'x' }, { 'idempotency-key': 'k-1' });
  t.match(sent, { status: 201, body: { status: 'accepted' } });
  // Idempotency keys of a collaborator are its own: the holder's same key is a different request.
  t.match(await alice.as('POST', `/v1/mailboxes/${alice.id}/messages`, { to: [bob.address], subject: 'Inviata dal titolare', text: 'x' }, { 'idempotency-key': 'k-1' }), { status: 201 });
  await h.app.pec.drain();
  const [row] = await h.database.db.select().from(pecTransactions).where(eq(pecTransactions.id, sent.body.id));
  t.equal(row!.delegationId, marco.id);
  const log = (await alice.as('GET', `/v1/mailboxes/${alice.id}/log?limit=100`)).body.data as Array<{ event: string; subject: string; sender: string; details: Record<string, unknown> }>;
  const accettazioni = log.filter((e) => e.event === 'Accettazione');
  t.same(accettazioni.map((e) => [e.subject, e.sender, e.details]).sort(), [
    ['Inviata da Marco', alice.address, { tipo: 'accettazione', delegato: 'marco@studio.example' }],
    ['Inviata dal titolare', alice.address, { tipo: 'accettazione' }],
  ]);
  t.equal((await reader.as('GET', `/v1/mailboxes/${alice.id}/log?limit=100`)).status, 200, 'read_only reads the log');

  // SMTP submission: the collaborator's e-mail as user name, the mailbox in MAIL FROM and From.
  const smtp = await startSmtpServers(h.database.db, h.app.pec, {
    host: '127.0.0.1', submissionPort: 0, submissionTlsPort: 0, inboundPort: 0, serverName: 'smtp.pec.example.it',
    tls: await loadOrCreateTls({ certificateFile: undefined, privateKeyFile: undefined }, ['localhost']),
  });
  t.teardown(() => smtp.close());
  const submit = async (user: string, pass: string, from: string, subject: string) => {
    const transport = nodemailer.createTransport({ host: '127.0.0.1', port: smtp.submissionTlsPort, secure: true, auth: { user, pass }, tls: { rejectUnauthorized: false } });
    try {
      return await transport.sendMail({ from, to: bob.address, subject, text: 'via SMTP' });
    } finally {
      transport.close();
    }
  };
  /** The SMTP error of a submission the server refuses. */
  const refusal = (sending: Promise<unknown>) => sending.then(() => ({ responseCode: 250, response: 'accepted' }), (error: { responseCode?: number; response?: string }) => ({ responseCode: error.responseCode, response: error.response }));
  const info = await submit(marco.email, marco.password, alice.address, 'SMTP da Marco');
  t.match(info.response, /^250/);
  await h.app.pec.drain();
  const [smtpRow] = await h.database.db.select().from(pecTransactions).where(eq(pecTransactions.subject, 'SMTP da Marco'));
  t.match(smtpRow, { delegationId: marco.id, sender: alice.address, status: 'accepted' });
  const smtpLog = (await alice.as('GET', `/v1/mailboxes/${alice.id}/log?message_id=${smtpRow!.pecMessageId}`)).body.data as Array<{ event: string; details: Record<string, unknown> }>;
  t.same(smtpLog.find((e) => e.event === 'Accettazione')!.details, { tipo: 'accettazione', delegato: 'marco@studio.example' });

  // The holder still submits as before; a read-only collaborator and a foreign sender are refused at MAIL FROM.
  t.match((await submit(alice.address, alice.password, alice.address, 'SMTP dal titolare')).response, /^250/);
  t.match(await refusal(submit(reader.email, reader.password, alice.address, 'Non posso')), { responseCode: 553, response: /Delegation mode read_only does not allow sending/ });
  t.match(await refusal(submit(marco.email, marco.password, bob.address, 'Non mia')), { responseCode: 553, response: /has no delegation to send from/ });
  t.match(await refusal(submit(marco.email, 'wrong-password-1', alice.address, 'x')), { responseCode: 535 });
  // Revoked: its only delegation gone, the account signs in no more.
  t.equal((await alice.as('POST', `/v1/mailboxes/${alice.id}/delegations/${marco.id}/revoke`)).status, 200);
  t.match(await refusal(submit(marco.email, marco.password, alice.address, 'Dopo la revoca')), { responseCode: 535 });
  t.equal((await marco.as('GET', `/v1/mailboxes/${alice.id}/messages`)).status, 401);
});
