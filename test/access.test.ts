// The access layer under every door: who signs in to which mailbox (signInToMailbox, as IMAP, POP3 and the webmail
// use it), the door policy on mailbox states, the lock-out shared by all doors and processes (kept in the database),
// the record of every attempt, and the holder's route that reads them.
import { and, asc, eq, type SQL } from 'drizzle-orm';
import nodemailer from 'nodemailer';
import t, { type Test } from 'tap';
import { mailboxSignIns } from '@pec-partner/db';
import { SIGN_IN_WINDOW_MS } from '../api/src/access/login-guard.ts';
import { signInToMailbox, type SignInAttempt } from '../api/src/access/sign-in.ts';
import { TokenService } from '../api/src/modules/partners/tokens.ts';
import { startSmtpServers } from '../api/src/pec/smtp-servers.ts';
import { loadOrCreateTls } from '../api/src/pec/tls.ts';
import { api } from './helpers/fixtures.ts';
import { DAYS, harness, json, type Harness } from './helpers/harness.ts';

type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';

/** A client with one Authorization header (HTTP Basic, or a supervisor's `Bearer mbs_…`). */
function client(h: Harness, authorization: string) {
  return async (method: Method, url: string, payload?: unknown) => {
    const response = await h.app.inject({ method, url, headers: { authorization }, ...(payload === undefined ? {} : { payload: payload as string }) });
    const type = String(response.headers['content-type'] ?? '');
    return { status: response.statusCode, headers: response.headers, body: type.includes('json') ? json(response) : response.body };
  };
}
const basicAuth = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

async function setup(t: Test) {
  const h = await harness(t);
  const a = api(h, await h.partner());
  await a.topUp(100_000);
  const customer = await a.customer();
  const open = async (local: string) => {
    const password = `${local}-password-2026`;
    const created = await a.post('/v1/mailboxes', { local_part: local, domain: 'pec.example.it', customer, plan: 'pro', password });
    if (created.status !== 201) throw new Error(JSON.stringify(created.body));
    const id = created.body.id as string;
    const address = created.body.address as string;
    return { id, address, password, as: client(h, basicAuth(address, password)) };
  };
  type Mailbox = Awaited<ReturnType<typeof open>>;
  /** Invites and accepts: a collaborator with its own password (the same account for every mailbox it is given). */
  const delegate = async (mailbox: Mailbox, email: string, mode: string) => {
    const invited = await mailbox.as('POST', `/v1/mailboxes/${mailbox.id}/delegations`, { email, mode });
    if (invited.status !== 201) throw new Error(JSON.stringify(invited.body));
    const password = `${email.split('@')[0]}-secret-2026`;
    const accepted = await h.app.inject({ method: 'POST', url: '/v1/delegation-invitations/accept', payload: { token: invited.body.invitation.token, password } });
    if (accepted.statusCode !== 200) throw new Error(accepted.body);
    return { email, password };
  };
  /** A supervisor console (paid by a studio mailbox) overseeing `mailbox`, and a mailbox session on it. */
  const supervise = async (mailbox: Mailbox) => {
    const studio = await open('studio');
    if ((await a.post(`/v1/mailboxes/${studio.id}/addons`, { kind: 'supervisor' })).status !== 201) throw new Error('supervisor add-on');
    const supervisor = await a.post('/v1/supervisors', { mailbox: studio.id, name: 'Studio Bianchi', email: 'console@studiobianchi.example' });
    await a.post(`/v1/supervisors/${supervisor.body.id}/mailboxes`, { mailbox: mailbox.id });
    const link = await a.post(`/v1/supervisors/${supervisor.body.id}/mailboxes/${mailbox.id}/sign-in-links`);
    const session = await h.app.inject({ method: 'POST', url: '/v1/mailbox-sessions', payload: { token: link.body.token } });
    if (session.statusCode !== 201) throw new Error(session.body);
    return { supervisor: supervisor.body.id as string, token: json(session).token as string };
  };
  // The app's own token service (same keys, in the database; same issuer): what verifies `mbs_…` sessions.
  const tokens = new TokenService(h.database.db, h.clock, 'http://pec-partner.test', 900);
  /** An IMAP sign-in (or another door's) at the harness's time, from a documentation address unless told. */
  const signIn = (attempt: Partial<SignInAttempt> & { user: string; password: string }, throttle?: { maxFailuresPerUser?: number; maxFailuresPerAddress?: number }) =>
    signInToMailbox(h.database.db, { door: 'imap', remoteAddress: '192.0.2.10', ...attempt }, h.clock.now(), { tokens, throttle });
  const records = (where: SQL | undefined) =>
    h.database.db.select().from(mailboxSignIns).where(where).orderBy(asc(mailboxSignIns.id));
  return { h, a, open, delegate, supervise, signIn, records, tokens };
}

t.test('signInToMailbox: the holder, a collaborator by authzid, by mailbox*e-mail or by its only delegation, a supervisor session', async (t) => {
  const { h, a, open, delegate, supervise, signIn } = await setup(t);
  const alice = await open('alice');
  const bob = await open('bob');
  const carla = await open('carla');
  t.equal((await a.post(`/v1/mailboxes/${alice.id}/addons`, { kind: 'delegation_seat', quantity: 1 })).status, 201, 'a second seat on alice');
  const giulia = await delegate(alice, 'giulia@studio.example', 'read_only');
  await delegate(bob, 'giulia@studio.example', 'full_access');
  const marco = await delegate(alice, 'marco@studio.example', 'send_only');

  // The holder: the address (the live mailbox) or the id, and the mailbox password.
  t.match(await signIn({ user: alice.address, password: alice.password }), { ok: true, principal: { mailboxId: alice.id, address: alice.address, status: 'active', livemode: true, actor: { kind: 'holder' } } });
  t.match(await signIn({ user: ` ${alice.address.toUpperCase()} `, password: alice.password }), { ok: true, principal: { mailboxId: alice.id } }, 'the address in any case');
  t.match(await signIn({ user: alice.id, password: alice.password }), { ok: true, principal: { mailboxId: alice.id, actor: { kind: 'holder' } } }, 'the id');
  t.match(await signIn({ user: alice.address, password: alice.password, authzid: alice.id }), { ok: true, principal: { mailboxId: alice.id, actor: { kind: 'holder' } } }, 'naming its own mailbox by its other name');
  t.same(await signIn({ user: alice.address, password: 'wrong' }), { ok: false, code: 'invalid_credentials', message: 'Invalid user name or password.' });
  t.same(await signIn({ user: 'nobody@pec.example.it', password: 'x' }), { ok: false, code: 'invalid_credentials', message: 'Invalid user name or password.' });
  t.match(await signIn({ user: bob.address, password: alice.password }), { ok: false, code: 'invalid_credentials' }, "another mailbox's password");

  // A collaborator on several mailboxes: the authorization identity, or <mailbox>*<e-mail>, says which.
  t.match(await signIn({ user: giulia.email, password: giulia.password, authzid: alice.address }),
    { ok: true, principal: { mailboxId: alice.id, actor: { kind: 'delegate', email: giulia.email, mode: 'read_only' } } });
  t.match(await signIn({ user: giulia.email, password: giulia.password, authzid: bob.id }),
    { ok: true, principal: { mailboxId: bob.id, actor: { kind: 'delegate', mode: 'full_access' } } }, 'authzid as the mailbox id');
  t.match(await signIn({ user: `${bob.address}*${giulia.email}`, password: giulia.password }),
    { ok: true, principal: { mailboxId: bob.id, actor: { kind: 'delegate', mode: 'full_access' } } }, 'Dovecot style');
  t.match(await signIn({ user: `${alice.address}*${giulia.email}`, password: giulia.password, authzid: bob.address }),
    { ok: true, principal: { mailboxId: bob.id } }, 'authzid wins over the name before *');
  const ambiguous = await signIn({ user: giulia.email, password: giulia.password });
  t.match(ambiguous, { ok: false, code: 'invalid_credentials', message: /several mailboxes: sign in as <mailbox address>\*giulia@studio\.example, or name the mailbox as the authorization identity/ });
  t.match(await signIn({ user: giulia.email, password: giulia.password, authzid: carla.address }), { ok: false, code: 'invalid_credentials', message: 'Invalid user name or password.' }, 'no delegation on carla');
  t.match(await signIn({ user: `${alice.address}*${giulia.email}`, password: 'wrong' }), { ok: false, code: 'invalid_credentials', message: 'Invalid user name or password.' });
  t.match(await signIn({ user: giulia.email, password: 'wrong' }), { ok: false, code: 'invalid_credentials', message: 'Invalid user name or password.' }, 'the several-mailboxes hint only with the right password');
  // One delegation: it is the mailbox.
  t.match(await signIn({ user: marco.email, password: marco.password }),
    { ok: true, principal: { mailboxId: alice.id, actor: { kind: 'delegate', email: marco.email, mode: 'send_only' } } }, 'the only delegation');
  // A revoked delegation opens nothing.
  const delegations = (await alice.as('GET', `/v1/mailboxes/${alice.id}/delegations`)).body.data as Array<{ id: string; email: string }>;
  const marcos = delegations.find((d) => d.email === marco.email)!;
  t.equal((await alice.as('POST', `/v1/mailboxes/${alice.id}/delegations/${marcos.id}/revoke`)).status, 200);
  t.match(await signIn({ user: marco.email, password: marco.password }), { ok: false, code: 'invalid_credentials' }, 'revoked');

  // A supervisor: the mailbox's name and a mailbox session as the password.
  const { supervisor, token } = await supervise(bob);
  t.match(await signIn({ user: bob.address, password: token }),
    { ok: true, principal: { mailboxId: bob.id, actor: { kind: 'supervisor', supervisorId: supervisor, mode: 'read_write' } } });
  t.match(await signIn({ user: bob.id, password: token }), { ok: true, principal: { mailboxId: bob.id, actor: { kind: 'supervisor' } } }, 'by id too');
  t.match(await signIn({ user: alice.address, password: token }), { ok: false, code: 'invalid_credentials' }, 'on its one mailbox only');
  t.match(await signInToMailbox(h.database.db, { door: 'imap', user: bob.address, password: token, remoteAddress: '192.0.2.10' }, h.clock.now()),
    { ok: false, code: 'invalid_credentials' }, 'without the token service, sessions are not checked');
  h.clock.advance(30 * 60_000 + 1000);
  t.match(await signIn({ user: bob.address, password: token }), { ok: false, code: 'invalid_credentials' }, 'an expired session');
});

t.test('door policy: IMAP, POP3 and the webmail open active mailboxes only, said only to the right password; REST still reads', async (t) => {
  const { a, open, delegate, supervise, signIn, records } = await setup(t);
  const alice = await open('alice');
  const giulia = await delegate(alice, 'giulia@studio.example', 'read_write');
  const { token } = await supervise(alice);
  t.equal((await a.post(`/v1/mailboxes/${alice.id}/suspend`)).status, 200);

  for (const door of ['imap', 'pop3', 'webmail'] as const) {
    t.same(await signIn({ door, user: alice.address, password: alice.password }),
      { ok: false, code: 'mailbox_unavailable', message: `The mailbox is suspended; ${door} opens active mailboxes only.` }, `${door}: the holder`);
    t.same(await signIn({ door, user: alice.address, password: 'wrong' }), { ok: false, code: 'invalid_credentials', message: 'Invalid user name or password.' }, `${door}: a wrong password learns nothing`);
  }
  t.match(await signIn({ user: giulia.email, password: giulia.password }), { ok: false, code: 'mailbox_unavailable' }, 'a collaborator');
  t.match(await signIn({ user: `${alice.address}*${giulia.email}`, password: giulia.password }), { ok: false, code: 'mailbox_unavailable' });
  t.match(await signIn({ user: alice.address, password: token }), { ok: false, code: 'mailbox_unavailable' }, 'a supervisor session');
  // REST and SMTP keep their rule: a suspended mailbox is read-only there.
  t.equal((await alice.as('GET', `/v1/mailboxes/${alice.id}/messages`)).status, 200, 'REST reads the suspended mailbox');
  t.match(await signIn({ door: 'rest', user: alice.address, password: alice.password }), { ok: true, principal: { status: 'suspended' } });
  t.match(await signIn({ door: 'smtp', user: alice.address, password: alice.password }), { ok: true, principal: { status: 'suspended' } });

  const unavailable = await records(and(eq(mailboxSignIns.mailboxId, alice.id), eq(mailboxSignIns.outcome, 'unavailable')));
  t.same(unavailable.map((r) => [r.door, r.userName]), [
    ['imap', alice.address], ['pop3', alice.address], ['webmail', alice.address], ['imap', giulia.email], ['imap', giulia.email], ['imap', alice.address],
  ], 'recorded as unavailable, which the lock-out does not count');

  t.equal((await a.post(`/v1/mailboxes/${alice.id}/resume`)).status, 200);
  t.match(await signIn({ door: 'pop3', user: alice.address, password: alice.password }), { ok: true }, 'active again');
});

t.test('the lock-out: failures per user name and per address, shared by the doors, recorded, lifting with its window', async (t) => {
  const { h, open, signIn, records } = await setup(t);
  const alice = await open('alice');
  const bob = await open('bob');
  const carla = await open('carla');
  const small = { maxFailuresPerUser: 3, maxFailuresPerAddress: 5 };

  // Per user name: three wrong passwords for alice, each from another address, lock the name everywhere.
  for (const n of [1, 2, 3]) t.match(await signIn({ user: alice.address, password: `guess-${n}`, remoteAddress: `198.51.100.${n}` }, small), { ok: false, code: 'invalid_credentials' });
  const locked = await signIn({ user: alice.address, password: alice.password, remoteAddress: '198.51.100.9' }, small);
  t.same(locked, { ok: false, code: 'locked_out', message: 'Too many failed sign-ins for this user name or from this address; try again in 900 s.' }, 'the right password, unchecked');
  t.match(await signIn({ door: 'pop3', user: alice.id, password: alice.password, remoteAddress: '198.51.100.9' }, small), { ok: true }, 'the id is another user name');
  t.match(await signIn({ door: 'webmail', user: ` ${alice.address.toUpperCase()}`, password: alice.password, remoteAddress: '198.51.100.9' }, small), { ok: false, code: 'locked_out' }, 'case and blanks make no new name');
  t.match(await signIn({ user: bob.address, password: bob.password, remoteAddress: '198.51.100.1' }, small), { ok: true }, 'another name from the same addresses');

  // Per address: five failures from one address, for invented names, lock the address for everyone.
  for (const n of [1, 2, 3, 4, 5]) await signIn({ door: 'pop3', user: `invented-${n}@pec.example.it`, password: 'x', remoteAddress: '203.0.113.7' }, small);
  t.match(await signIn({ user: bob.address, password: bob.password, remoteAddress: '203.0.113.7' }, small), { ok: false, code: 'locked_out' }, 'bob from the guessing address');
  t.match(await signIn({ user: bob.address, password: bob.password, remoteAddress: '203.0.113.8' }, small), { ok: true }, 'bob from another address');
  t.match(await signIn({ user: bob.address, password: bob.password, remoteAddress: '::ffff:203.0.113.7' }, small), { ok: false, code: 'locked_out' }, 'the same address seen through IPv6');

  // Every attempt is one record; the locked ones say so.
  const alices = await records(eq(mailboxSignIns.userName, alice.address));
  t.same(alices.map((r) => [r.door, r.outcome, r.remoteAddress, r.mailboxId]), [
    ['imap', 'failed', '198.51.100.1', alice.id], ['imap', 'failed', '198.51.100.2', alice.id], ['imap', 'failed', '198.51.100.3', alice.id],
    ['imap', 'locked_out', '198.51.100.9', alice.id], ['webmail', 'locked_out', '198.51.100.9', alice.id],
  ], 'a lock-out names the mailbox too, from the user name alone');
  t.ok(alices.every((r) => r.at.getTime() === h.clock.now().getTime() && /^msi_[0-9a-z]{26}$/.test(r.id)));

  // Shared by the doors: wrong passwords over SMTP submission lock carla's IMAP sign-in, and REST counts them too.
  const smtp = await startSmtpServers(h.database.db, h.app.pec, {
    host: '127.0.0.1', submissionPort: 0, submissionTlsPort: 0, inboundPort: 0, serverName: 'smtp.pec.example.it',
    tls: await loadOrCreateTls({ certificateFile: undefined, privateKeyFile: undefined }, ['localhost']),
    signInThrottle: small,
  });
  t.teardown(() => smtp.close());
  const smtpAuth = async (user: string, pass: string) => {
    const transport = nodemailer.createTransport({ host: '127.0.0.1', port: smtp.submissionTlsPort, secure: true, auth: { user, pass }, tls: { rejectUnauthorized: false } });
    try {
      return await transport.verify().then(() => 235, (error: { responseCode?: number }) => error.responseCode);
    } finally {
      transport.close();
    }
  };
  for (const n of [1, 2, 3]) t.equal(await smtpAuth(carla.address, `guess-${n}`), 535, `SMTP: wrong password ${n}`);
  t.equal(await smtpAuth(carla.address, carla.password), 454, 'SMTP: locked, 454');
  t.match(await signIn({ user: carla.address, password: carla.password, remoteAddress: '192.0.2.50' }, small), { ok: false, code: 'locked_out' }, 'IMAP: locked by the SMTP failures');
  // At the default thresholds (10 per name) carla has room for seven more failures, wherever they come from.
  for (let n = 4; n <= 10; n++) t.match(await signIn({ door: 'pop3', user: carla.address, password: `guess-${n}`, remoteAddress: '192.0.2.50' }), { ok: false, code: 'invalid_credentials' });
  const rest = await client(h, basicAuth(carla.address, carla.password))('GET', `/v1/mailboxes/${carla.id}/messages`);
  t.match(rest, { status: 429, headers: { 'retry-after': '900' }, body: { status: 429, code: 'too_many_sign_in_attempts', detail: /try again in 900 s/ } }, 'REST: 429 with Retry-After');
  t.same((await records(eq(mailboxSignIns.userName, carla.address))).map((r) => `${r.door}:${r.outcome}`), [
    'smtp:failed', 'smtp:failed', 'smtp:failed', 'smtp:locked_out', 'imap:locked_out',
    ...Array.from({ length: 7 }, () => 'pop3:failed'), 'rest:locked_out',
  ]);

  // The lock lifts as the failures age out of the window.
  h.clock.advance(SIGN_IN_WINDOW_MS);
  t.match(await signIn({ user: carla.address, password: carla.password }), { ok: true }, 'IMAP after the window');
  t.equal(await smtpAuth(carla.address, carla.password), 235, 'SMTP after the window');
  t.equal((await client(h, basicAuth(carla.address, carla.password))('GET', `/v1/mailboxes/${carla.id}/messages`)).status, 200, 'REST after the window');
  t.match(await signIn({ user: alice.address, password: alice.password, remoteAddress: '198.51.100.9' }, small), { ok: true });
});

t.test('records: every attempt once, with who and from where; HTTP Basic records a success only when the password was checked', async (t) => {
  const { h, open, delegate, records, signIn } = await setup(t);
  const dora = await open('dora');
  const enzo = await delegate(dora, 'Enzo@Studio.example', 'full_access');
  const before = (await records(eq(mailboxSignIns.mailboxId, dora.id))).length;
  t.equal(before, 1, 'the holder signed in once to invite enzo (then the cache answered)');

  const as = client(h, basicAuth(dora.address.toUpperCase(), dora.password));
  for (let n = 0; n < 3; n++) t.equal((await as('GET', `/v1/mailboxes/${dora.id}/folders`)).status, 200);
  t.equal((await client(h, basicAuth(dora.address, 'wrong'))('GET', `/v1/mailboxes/${dora.id}/folders`)).status, 401);
  t.equal((await client(h, basicAuth(dora.address, 'wrong'))('GET', `/v1/mailboxes/${dora.id}/folders`)).status, 401);
  const enzoAs = client(h, basicAuth('enzo@studio.example', enzo.password));
  t.equal((await enzoAs('GET', `/v1/mailboxes/${dora.id}/folders`)).status, 200, 'the collaborator over REST');
  t.equal((await enzoAs('GET', `/v1/mailboxes/${dora.id}/folders`)).status, 200);
  // Other doors record every success, the cache notwithstanding (each is a session of its own).
  t.match(await signIn({ user: dora.address, password: dora.password }), { ok: true });
  t.match(await signIn({ door: 'webmail', user: dora.address, password: dora.password }), { ok: true });

  const rows = (await records(eq(mailboxSignIns.mailboxId, dora.id))).slice(before);
  t.same(rows.map((r) => ({ door: r.door, user: r.userName, outcome: r.outcome, address: r.remoteAddress, account: r.delegateAccountId !== null })), [
    { door: 'rest', user: dora.address, outcome: 'failed', address: '127.0.0.1', account: false },
    { door: 'rest', user: dora.address, outcome: 'failed', address: '127.0.0.1', account: false },
    { door: 'rest', user: 'enzo@studio.example', outcome: 'succeeded', address: '127.0.0.1', account: true },
    { door: 'imap', user: dora.address, outcome: 'succeeded', address: '192.0.2.10', account: false },
    { door: 'webmail', user: dora.address, outcome: 'succeeded', address: '192.0.2.10', account: false },
  ], 'three cached REST successes of the holder and one of enzo are not recorded again');

  // A name that is nobody's is recorded (the lock-out counts it) without a mailbox; NULs and kilobytes are never looked up.
  t.match(await signIn({ user: 'nobody@pec.example.it', password: 'x' }), { ok: false, code: 'invalid_credentials' });
  t.match(await signIn({ user: `a\0b@pec.example.it`, password: 'x' }), { ok: false, code: 'invalid_credentials' });
  t.match(await signIn({ user: 'x'.repeat(5000), password: 'x' }), { ok: false, code: 'invalid_credentials' });
  const odd = await records(eq(mailboxSignIns.remoteAddress, '192.0.2.10'));
  t.same(odd.slice(-3).map((r) => [r.userName, r.outcome, r.mailboxId]), [
    ['nobody@pec.example.it', 'failed', null], ['ab@pec.example.it', 'failed', null], ['x'.repeat(320), 'failed', null],
  ]);

  // Kept 180 days, then purged by the daily task.
  h.clock.advance(180 * DAYS - 1000);
  await h.app.jobs.tick();
  t.equal((await records(eq(mailboxSignIns.mailboxId, dora.id))).length, before + 5, 'still there after 180 days less a second');
  h.clock.advance(DAYS);
  t.ok((await h.app.jobs.tick()).includes('mailbox_sign_ins.purge'));
  t.same(await records(undefined), [], 'then gone');
});

t.test('GET /v1/mailboxes/{id}/sign-ins: the holder reads its history, newest first, paged; collaborators and supervisors 403, other mailboxes 404', async (t) => {
  const { h, open, delegate, supervise, signIn } = await setup(t);
  const alice = await open('alice');
  const bob = await open('bob');
  const giulia = await delegate(alice, 'giulia@studio.example', 'full_access');
  await signIn({ user: alice.address, password: 'wrong', remoteAddress: '198.51.100.4' });
  await signIn({ door: 'pop3', user: `${alice.address}*${giulia.email}`, password: giulia.password, remoteAddress: '198.51.100.5' });
  await signIn({ door: 'webmail', user: bob.address, password: bob.password });

  const all = await alice.as('GET', `/v1/mailboxes/${alice.id}/sign-ins?limit=100`);
  t.equal(all.status, 200);
  t.match(all.body, { object: 'list', has_more: false, next_cursor: null });
  const at = '2026-11-22T09:00:00.000Z';
  // REST successes the verify cache answered are not listed, so only the other doors' attempts are counted exactly.
  const others = all.body.data.filter((s: { door: string }) => s.door !== 'rest');
  t.match(others, [
    { id: /^msi_/, object: 'mailbox_sign_in', livemode: true, mailbox: alice.id, door: 'pop3', user: giulia.email, remote_address: '198.51.100.5', outcome: 'succeeded', created_at: at },
    { id: /^msi_/, object: 'mailbox_sign_in', livemode: true, mailbox: alice.id, door: 'imap', user: alice.address, remote_address: '198.51.100.4', outcome: 'failed', created_at: at },
  ], 'newest first: the collaborator over POP3, then the wrong password over IMAP');
  t.equal(others.length, 2);
  t.same(Object.keys(others[0]).sort(), ['created_at', 'door', 'id', 'livemode', 'mailbox', 'object', 'outcome', 'remote_address', 'user']);
  t.match(all.body.data.at(-1), { door: 'rest', user: alice.address, remote_address: '127.0.0.1', outcome: 'succeeded' }, 'the first: the holder inviting giulia');
  t.notOk(all.body.data.some((s: { user: string }) => s.user === bob.address), "bob's sign-ins are bob's");

  // Pages of two join up to the whole list, newest first.
  h.clock.advance(1000);
  const ids: string[] = [];
  let cursor: string | null = null;
  do {
    const page = await alice.as('GET', `/v1/mailboxes/${alice.id}/sign-ins?limit=2${cursor ? `&starting_after=${cursor}` : ''}`);
    t.equal(page.status, 200);
    ids.push(...page.body.data.map((s: { id: string }) => s.id));
    cursor = page.body.next_cursor;
  } while (cursor);
  const whole = await alice.as('GET', `/v1/mailboxes/${alice.id}/sign-ins?limit=100`);
  t.same(ids, whole.body.data.map((s: { id: string }) => s.id), 'the pages are the list');
  t.same(whole.body.data.map((s: { created_at: string }) => s.created_at), [...whole.body.data.map((s: { created_at: string }) => s.created_at)].sort().reverse(), 'newest first');
  t.match((await alice.as('GET', `/v1/mailboxes/${alice.id}/sign-ins?outcome=failed`)).body, { data: [{ outcome: 'failed', door: 'imap' }], has_more: false });
  t.match((await alice.as('GET', `/v1/mailboxes/${alice.id}/sign-ins?door=pop3`)).body, { data: [{ door: 'pop3', user: giulia.email }], has_more: false });

  // The holder's alone.
  const collaborator = client(h, basicAuth(giulia.email, giulia.password));
  t.match(await collaborator('GET', `/v1/mailboxes/${alice.id}/sign-ins`),
    { status: 403, body: { code: 'delegation_mode_forbids', mode: 'full_access', operation: 'GET /v1/mailboxes/:id/sign-ins' } });
  const { token } = await supervise(alice);
  t.match(await client(h, `Bearer ${token}`)('GET', `/v1/mailboxes/${alice.id}/sign-ins`), { status: 403, body: { code: 'supervisor_session_forbids' } });
  t.match(await alice.as('GET', `/v1/mailboxes/${bob.id}/sign-ins`), { status: 404, body: { code: 'resource_missing' } }, "another mailbox's history");
  t.match(await alice.as('GET', '/v1/mailboxes/mbx_00000000000000000000000000/sign-ins'), { status: 404 });
  const partner = await h.app.inject({ method: 'GET', url: `/v1/mailboxes/${alice.id}/sign-ins`, headers: { authorization: `Bearer ${(await h.partner('Other')).secret}` } });
  t.equal(partner.statusCode, 401, 'partner keys are not mailbox credentials');
});
