import { eq } from 'drizzle-orm';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import t, { type Test } from 'tap';
import { supervisorSignIns } from '@pec-partner/db';
import { api } from './helpers/fixtures.ts';
import { DAYS, harness, json, type Harness } from './helpers/harness.ts';

type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';

/** A client with one Authorization header (HTTP Basic of a holder, or a supervisor's mailbox session). */
function client(h: Harness, authorization: string) {
  return async (method: Method, url: string, payload?: unknown) => {
    const response = await h.app.inject({ method, url, headers: { authorization }, ...(payload === undefined ? {} : { payload: payload as object }) });
    const type = String(response.headers['content-type'] ?? '');
    return { status: response.statusCode, body: type.includes('json') ? json(response) : response.body };
  };
}
const basicAuth = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

async function setup(t: Test, topUp: number) {
  const h = await harness(t);
  const a = api(h, await h.partner());
  await a.topUp(topUp);
  const customer = await a.customer();
  const open = async (local: string, plan: 'standard' | 'pro' | 'premium', termYears = 1) => {
    const password = `${local}-password-2026`;
    const created = await a.post('/v1/mailboxes', { local_part: local, domain: 'pec.example.it', customer, plan, password, term_years: termYears });
    if (created.status !== 201) throw new Error(JSON.stringify(created.body));
    const id = created.body.id as string;
    const address = created.body.address as string;
    const as = client(h, basicAuth(address, password));
    return {
      id, address, as,
      send: async (to: { address: string }, subject: string) => {
        const sent = await as('POST', `/v1/mailboxes/${id}/messages`, { to: [to.address], subject, text: 'Buongiorno' });
        if (sent.status !== 201) throw new Error(JSON.stringify(sent.body));
      },
    };
  };
  /** A studio mailbox with the supervisor add-on and its supervisor. */
  const console = async () => {
    const studio = await open('studio', 'pro');
    const refused = await a.post('/v1/supervisors', { mailbox: studio.id, name: 'Studio Bianchi', email: 'console@studiobianchi.example' });
    const addon = await a.post(`/v1/mailboxes/${studio.id}/addons`, { kind: 'supervisor' });
    if (addon.status !== 201) throw new Error(JSON.stringify(addon.body));
    const created = await a.post('/v1/supervisors', { mailbox: studio.id, name: 'Studio Bianchi', email: 'Console@StudioBianchi.example' });
    return { studio, refused, addon: addon.body.id as string, supervisor: created };
  };
  return { h, a, open, console };
}

t.test('the console: add-on gate, figures that match the mailboxes after real mail, sorting, filters, invitations', async (t) => {
  const { h, a, open, console } = await setup(t, 100_000);
  const { studio, refused, supervisor: created } = await console();
  t.match(refused, { status: 409, body: { code: 'addon_required', addon: 'supervisor', mailbox: studio.id } });
  t.match(created, { status: 201, body: { id: /^sup_/, object: 'supervisor', mailbox: studio.id, name: 'Studio Bianchi', email: 'console@studiobianchi.example' } });
  const sup = created.body.id as string;
  t.same((await a.get('/v1/supervisors')).body.data.map((s: { id: string }) => s.id), [sup]);

  const anna = await open('anna', 'pro', 1);
  const bruno = await open('bruno', 'standard', 3);
  const carla = await open('carla', 'premium', 2);
  const dario = await open('dario', 'pro', 1);
  for (const m of [anna, bruno, carla]) t.match(await a.post(`/v1/supervisors/${sup}/mailboxes`, { mailbox: m.id }), { status: 201, body: { status: 'active', accepted_at: '2026-11-22T09:00:00.000Z' } });
  t.match(await a.post(`/v1/supervisors/${sup}/mailboxes`, { mailbox: anna.id }), { status: 409, body: { code: 'mailbox_already_supervised' } });

  // Real mail, one step a minute (zeta is outside the console): carla gets two, bruno writes to anna, zeta writes to
  // anna twice; anna reads one message and archives another.
  const zeta = await open('zeta', 'pro');
  await zeta.send(carla, 'Avviso 1');
  await zeta.send(carla, 'Avviso 2');
  await h.app.pec.drain();
  for (const [from, subject] of [[zeta, 'Sollecito'], [bruno, 'Fattura'], [zeta, 'Contratto']] as const) {
    h.clock.advance(60_000);
    await from.send(anna, subject);
    await h.app.pec.drain();
  }
  const annaInbox = (await anna.as('GET', `/v1/mailboxes/${anna.id}/messages?folder=inbox`)).body.data as Array<{ id: string; subject: string }>;
  t.equal(annaInbox.length, 3);
  t.equal((await anna.as('PATCH', `/v1/mailboxes/${anna.id}/messages/${annaInbox[0]!.id}`, { seen: true })).status, 200);
  t.equal((await anna.as('PATCH', `/v1/mailboxes/${anna.id}/messages/${annaInbox[1]!.id}`, { folder: 'archive' })).status, 200);

  const consoleOf = async (query = '') => {
    const response = await a.get(`/v1/supervisors/${sup}/mailboxes${query}`);
    if (response.status !== 200) throw new Error(JSON.stringify(response.body));
    return response.body;
  };
  const rows = (await consoleOf()).data as Array<Record<string, any>>;
  t.same(rows.map((r) => r.address), [anna.address, bruno.address, carla.address], 'sorted by address by default');
  // Every figure agrees with what the holders and the partner see of the same mailboxes.
  for (const [m, row] of [[anna, rows[0]!], [bruno, rows[1]!], [carla, rows[2]!]] as const) {
    const folders = (await m.as('GET', `/v1/mailboxes/${m.id}/folders`)).body.data as Array<{ name: string; unread: number; size_bytes: number }>;
    const mailbox = (await a.get(`/v1/mailboxes/${m.id}`)).body;
    const newest = ((await m.as('GET', `/v1/mailboxes/${m.id}/messages?limit=100`)).body.data as Array<{ stored_at: string }>).map((x) => x.stored_at).sort().at(-1) ?? null;
    t.match(row, {
      id: m.id, object: 'supervised_mailbox', supervision_status: 'active', status: 'active', plan: mailbox.plan, expires_at: mailbox.expires_at,
      unread: folders.find((f) => f.name === 'inbox')!.unread,
      inbox: { used_bytes: mailbox.quotas.inbox.used_bytes, total_bytes: mailbox.quotas.inbox.total_bytes },
      archive: { used_bytes: mailbox.quotas.archive.used_bytes, total_bytes: mailbox.quotas.archive.total_bytes },
      last_activity_at: newest,
    }, `${m.address}: console figures`);
    t.equal(row.inbox.used_bytes, folders.filter((f) => f.name !== 'archive').reduce((sum, f) => sum + f.size_bytes, 0), `${m.address}: inbox space is the stored messages`);
    t.equal(row.archive.used_bytes, folders.find((f) => f.name === 'archive')!.size_bytes);
  }
  t.match(rows[0], { unread: 1, last_activity_at: '2026-11-22T09:03:00.000Z' }, 'anna: 3 received, one read, one archived (not in the inbox)');
  t.ok(rows[0]!.archive.used_bytes > 0);
  t.match(rows[1], { unread: 0, last_activity_at: '2026-11-22T09:02:00.000Z' }, 'bruno: sent one (its copy and receipts)');
  t.match(rows[2], { unread: 2, last_activity_at: '2026-11-22T09:00:00.000Z' }, 'carla: two received');

  // Sorting.
  const order = async (query: string) => ((await consoleOf(query)).data as Array<{ address: string }>).map((r) => r.address.split('@')[0]);
  t.same(await order('?sort=address&order=desc'), ['carla', 'bruno', 'anna']);
  t.same(await order('?sort=expires_at'), ['anna', 'carla', 'bruno']);
  t.same(await order('?sort=expires_at&order=desc'), ['bruno', 'carla', 'anna']);
  t.same(await order('?sort=unread&order=desc'), ['carla', 'anna', 'bruno']);
  t.same(await order('?sort=unread'), ['bruno', 'anna', 'carla']);
  t.same(await order('?sort=last_activity'), ['carla', 'bruno', 'anna']);
  t.same(await order('?sort=last_activity&order=desc'), ['anna', 'bruno', 'carla']);
  // Filters.
  t.same(await order('?plan=standard'), ['bruno']);
  t.same(await order('?expiring_before=2028-12-31T00:00:00Z'), ['anna', 'carla']);
  t.equal((await a.post(`/v1/mailboxes/${carla.id}/suspend`)).status, 200);
  t.same(await order('?status=suspended'), ['carla']);
  t.same(await order('?status=active&sort=expires_at&order=desc'), ['bruno', 'anna']);
  // Cursor pagination over the sorted console.
  const page1 = await consoleOf('?sort=expires_at&limit=2');
  t.match(page1, { has_more: true, next_cursor: carla.id });
  t.match(await consoleOf(`?sort=expires_at&limit=2&starting_after=${page1.next_cursor}`), { has_more: false, next_cursor: null, data: [{ id: bruno.id }] });

  // By invitation: pending without figures, then accepted by the holder with the token.
  const invited = await a.post(`/v1/supervisors/${sup}/mailboxes`, { mailbox: dario.id, invite: true });
  t.match(invited, { status: 201, body: { status: 'invited', accepted_at: null, invite_expires_at: '2026-11-29T09:03:00.000Z', invitation: { token: /^sinv_/ } } });
  t.match(await a.post(`/v1/supervisors/${sup}/mailboxes`, { mailbox: dario.id }), { status: 409, body: { code: 'supervision_invitation_pending' } });
  t.match((await consoleOf('?supervision_status=invited')).data, [{ id: dario.id, supervision_status: 'invited', unread: null, inbox: null, last_activity_at: null }]);
  t.equal((await consoleOf()).data.length, 3, 'not in the console before the holder accepts');
  t.match(await dario.as('GET', `/v1/mailboxes/${dario.id}/supervisions`), { status: 200, body: { data: [{ supervisor: sup, supervisor_name: 'Studio Bianchi', status: 'invited' }] } });
  t.match(await anna.as('POST', `/v1/mailboxes/${anna.id}/supervision-invitations/accept`, { token: invited.body.invitation.token }), { status: 404, body: { code: 'invitation_not_found' } });
  t.match(await dario.as('POST', `/v1/mailboxes/${dario.id}/supervision-invitations/accept`, { token: invited.body.invitation.token }),
    { status: 200, body: { object: 'supervision', supervisor: sup, mailbox: dario.id, status: 'active', accepted_at: '2026-11-22T09:03:00.000Z' } });
  t.match(await dario.as('POST', `/v1/mailboxes/${dario.id}/supervision-invitations/decline`, { token: invited.body.invitation.token }), { status: 409, body: { code: 'invitation_already_answered' } });
  t.equal((await consoleOf()).data.length, 4);

  // Declined, and expired.
  const elena = await open('elena', 'standard');
  const fabio = await open('fabio', 'standard');
  const toElena = await a.post(`/v1/supervisors/${sup}/mailboxes`, { mailbox: elena.id, invite: true });
  t.match(await elena.as('POST', `/v1/mailboxes/${elena.id}/supervision-invitations/decline`, { token: toElena.body.invitation.token }), { status: 200, body: { status: 'declined' } });
  const toFabio = await a.post(`/v1/supervisors/${sup}/mailboxes`, { mailbox: fabio.id, invite: true });
  h.clock.advance(8 * DAYS);
  t.match(await fabio.as('POST', `/v1/mailboxes/${fabio.id}/supervision-invitations/accept`, { token: toFabio.body.invitation.token }), { status: 410, body: { code: 'invitation_expired' } });
  t.same((await consoleOf('?supervision_status=invited')).data, []);
  t.equal((await a.post(`/v1/supervisors/${sup}/mailboxes`, { mailbox: elena.id })).status, 201, 'a declined mailbox can be added again');

  // Leaving and removal.
  t.match(await dario.as('DELETE', `/v1/mailboxes/${dario.id}/supervisions/${sup}`), { status: 200, body: { status: 'removed' } });
  t.match(await a.del(`/v1/supervisors/${sup}/mailboxes/${elena.id}`), { status: 200, body: { status: 'removed', removed_at: '2026-11-30T09:03:00.000Z' } });
  t.equal((await a.del(`/v1/supervisors/${sup}/mailboxes/${elena.id}`)).status, 404);
  t.same(await order(''), ['anna', 'bruno', 'carla']);

  // Tenancy.
  const other = api(h, await h.partner('Other'));
  t.equal((await other.get(`/v1/supervisors/${sup}`)).status, 404);
  t.equal((await other.get(`/v1/supervisors/${sup}/mailboxes`)).status, 404);
  t.equal((await a.post(`/v1/supervisors/${sup}/mailboxes`, { mailbox: 'mbx_00000000000000000000000000' })).status, 404);
});

t.test('bulk renewals are charged like single ones, one failure does not undo the others; renewal mode in bulk', async (t) => {
  // Prices: Pro 25 €, Standard 5 €, Premium 40 € a year; the supervisor add-on 24 € a year (a full year here).
  const setupCost = 2500 + 2500 + 500 + 4000 + 2400;
  const { a, open, console } = await setup(t, setupCost + 4000);
  const { supervisor } = await console();
  const sup = supervisor.body.id as string;
  const anna = await open('anna', 'pro');
  const bruno = await open('bruno', 'standard');
  const carla = await open('carla', 'premium');
  for (const m of [anna, bruno, carla]) await a.post(`/v1/supervisors/${sup}/mailboxes`, { mailbox: m.id });
  t.equal(await a.balance(), 4000);

  t.match(await a.post(`/v1/supervisors/${sup}/bulk`, { action: 'renew', mailboxes: [anna.id] }), { status: 400, body: { errors: [{ pointer: '/years', code: 'required' }] } });
  const renewed = await a.post(`/v1/supervisors/${sup}/bulk`, { action: 'renew', years: 1, mailboxes: [anna.id, carla.id, 'mbx_00000000000000000000000000', bruno.id] });
  t.equal(renewed.status, 200);
  t.same(renewed.body, {
    object: 'supervisor_bulk_result', livemode: true, action: 'renew', succeeded: 2, failed: 2,
    results: [
      { mailbox: anna.id, outcome: 'succeeded', status: 'active', expires_at: '2028-11-22T09:00:00.000Z', renewal_mode: 'auto' },
      { mailbox: carla.id, outcome: 'failed', error: { status: 402, code: 'insufficient_credit', detail: renewed.body.results[1].error.detail } },
      { mailbox: 'mbx_00000000000000000000000000', outcome: 'failed', error: { status: 404, code: 'resource_missing', detail: "No mailbox 'mbx_00000000000000000000000000' in this supervisor's console." } },
      { mailbox: bruno.id, outcome: 'succeeded', status: 'active', expires_at: '2028-11-22T09:00:00.000Z', renewal_mode: 'auto' },
    ],
  });
  t.equal(await a.balance(), 4000 - 2500 - 500);
  const ledger = await a.ledger();
  t.match(ledger.slice(0, 2), [
    { type: 'charge', amount: -500, description: `Renewal: PEC mailbox Standard, 1 year: ${bruno.address}`, item: { type: 'mailbox', id: bruno.id } },
    { type: 'charge', amount: -2500, description: `Renewal: PEC mailbox Pro, 1 year: ${anna.address}`, item: { type: 'mailbox', id: anna.id } },
  ]);
  t.notOk(ledger.some((e) => e.item?.id === carla.id && e.description.startsWith('Renewal')), 'the failed renewal charged nothing');
  t.equal((await a.get(`/v1/mailboxes/${carla.id}`)).body.expires_at, '2027-11-22T09:00:00.000Z');

  const modes = await a.post(`/v1/supervisors/${sup}/bulk`, { action: 'set_renewal_mode', renewal_mode: 'manual', mailboxes: [anna.id, carla.id] });
  t.match(modes.body, { succeeded: 2, failed: 0, results: [{ mailbox: anna.id, renewal_mode: 'manual' }, { mailbox: carla.id, renewal_mode: 'manual' }] });
  t.equal((await a.get(`/v1/mailboxes/${carla.id}`)).body.renewal_mode, 'manual');
  t.equal((await a.get(`/v1/mailboxes/${bruno.id}`)).body.renewal_mode, 'auto');
});

t.test('single-use sign-in links: a read_write mailbox session without sending, that ends with the supervision', async (t) => {
  const { h, a, open, console } = await setup(t, 100_000);
  const { studio, addon, supervisor } = await console();
  const sup = supervisor.body.id as string;
  const anna = await open('anna', 'pro');
  const bruno = await open('bruno', 'pro');
  await a.post(`/v1/supervisors/${sup}/mailboxes`, { mailbox: anna.id });
  await bruno.send(anna, 'Per il supervisore');
  await h.app.pec.drain();

  t.equal((await a.post(`/v1/supervisors/${sup}/mailboxes/${bruno.id}/sign-in-links`)).status, 404, 'only supervised mailboxes');
  const link = await a.post(`/v1/supervisors/${sup}/mailboxes/${anna.id}/sign-in-links`);
  t.match(link, { status: 201, body: { object: 'supervisor_sign_in_link', id: /^ssi_/, supervisor: sup, mailbox: anna.id, expires_at: '2026-11-22T09:05:00.000Z' } });
  // A JWT signed with the app's keys (checked against the published JWKS), of its own type, with the recorded jti.
  const jwks = createLocalJWKSet(json((await h.app.inject({ method: 'GET', url: '/.well-known/jwks.json' }))));
  t.equal(decodeProtectedHeader(link.body.token).typ, 'supervisor-sign-in+jwt');
  const { payload } = await jwtVerify(link.body.token, jwks, { currentDate: h.clock.now() });
  t.match(payload, { sub: sup, mbx: anna.id, jti: link.body.id });
  t.equal((await a.get('/v1/mailboxes')).status, 200);
  t.equal((await client(h, `Bearer ${link.body.token}`)('GET', '/v1/mailboxes')).status, 401, 'not an access token');

  const exchange = (token: string) => h.app.inject({ method: 'POST', url: '/v1/mailbox-sessions', payload: { token } }).then((r) => ({ status: r.statusCode, body: json(r) }));
  const session = await exchange(link.body.token);
  t.match(session, { status: 201, body: { object: 'mailbox_session', token: /^mbs_/, token_type: 'Bearer', supervisor: sup, mailbox: anna.id, address: anna.address, mode: 'read_write', can_send: false, expires_at: '2026-11-22T09:30:00.000Z' } });
  t.match(await exchange(link.body.token), { status: 410, body: { code: 'sign_in_link_used' } });
  const [row] = await h.database.db.select().from(supervisorSignIns).where(eq(supervisorSignIns.jti, link.body.id));
  t.match(row, { supervisorId: sup, mailboxId: anna.id, usedAt: new Date('2026-11-22T09:00:00.000Z') });
  t.match(await exchange(`${link.body.token.slice(0, -4)}AAAA`), { status: 401, body: { code: 'invalid_sign_in_link' } });

  // The session on anna's messages: reads and files, does not send or manage.
  const as = client(h, `Bearer ${session.body.token}`);
  const inbox = await as('GET', `/v1/mailboxes/${anna.id}/messages?folder=inbox`);
  t.match(inbox, { status: 200, body: { data: [{ subject: 'POSTA CERTIFICATA: Per il supervisore', seen: false }] } });
  const message = inbox.body.data[0].id as string;
  t.equal((await as('GET', `/v1/mailboxes/${anna.id}/folders`)).status, 200);
  t.equal((await as('GET', `/v1/mailboxes/${anna.id}/messages/${message}`)).status, 200);
  t.equal((await as('GET', `/v1/mailboxes/${anna.id}/messages/${message}/raw`)).status, 200);
  t.match(await as('PATCH', `/v1/mailboxes/${anna.id}/messages/${message}`, { seen: true }), { status: 200, body: { seen: true } });
  t.equal((await as('GET', `/v1/mailboxes/${anna.id}/log`)).status, 200);
  t.match(await as('POST', `/v1/mailboxes/${anna.id}/messages`, { to: [bruno.address], subject: 'x', text: 'x' }),
    { status: 403, body: { code: 'supervisor_session_forbids', mode: 'read_write', operation: 'send_message' } });
  t.match(await as('GET', `/v1/mailboxes/${anna.id}/delegations`), { status: 403, body: { operation: 'manage_delegations' } });
  t.match(await as('GET', `/v1/mailboxes/${anna.id}/supervisions`), { status: 403, body: { operation: 'manage_supervision' } });
  t.equal((await as('GET', `/v1/mailboxes/${bruno.id}/messages`)).status, 404, 'one mailbox only');
  t.equal((await as('GET', '/v1/mailboxes')).status, 401, 'not a partner credential');

  // A link expires after 5 minutes unused; a session after 30 minutes.
  const late = await a.post(`/v1/supervisors/${sup}/mailboxes/${anna.id}/sign-in-links`);
  h.clock.advance(5 * 60_000 + 1000);
  t.match(await exchange(late.body.token), { status: 401, body: { code: 'invalid_sign_in_link' } });
  t.equal((await as('GET', `/v1/mailboxes/${anna.id}/messages`)).status, 200);
  h.clock.advance(25 * 60_000);
  t.match(await as('GET', `/v1/mailboxes/${anna.id}/messages`), { status: 401, body: { code: 'invalid_mailbox_session' } });

  // A live session ends when the mailbox leaves the console, or when the add-on ends.
  const fresh = client(h, `Bearer ${(await exchange((await a.post(`/v1/supervisors/${sup}/mailboxes/${anna.id}/sign-in-links`)).body.token)).body.token}`);
  t.equal((await fresh('GET', `/v1/mailboxes/${anna.id}/messages`)).status, 200);
  t.equal((await a.del(`/v1/supervisors/${sup}/mailboxes/${anna.id}`)).status, 200);
  t.equal((await fresh('GET', `/v1/mailboxes/${anna.id}/messages`)).status, 401);
  t.equal((await a.post(`/v1/supervisors/${sup}/mailboxes/${anna.id}/sign-in-links`)).status, 404);

  await a.post(`/v1/supervisors/${sup}/mailboxes`, { mailbox: anna.id });
  const again = client(h, `Bearer ${(await exchange((await a.post(`/v1/supervisors/${sup}/mailboxes/${anna.id}/sign-in-links`)).body.token)).body.token}`);
  t.equal((await again('GET', `/v1/mailboxes/${anna.id}/messages`)).status, 200);
  t.equal((await a.post(`/v1/mailboxes/${studio.id}/addons/${addon}/cancel`, { when: 'now' })).status, 200);
  t.equal((await again('GET', `/v1/mailboxes/${anna.id}/messages`)).status, 401);
  t.match(await a.get(`/v1/supervisors/${sup}/mailboxes`), { status: 409, body: { code: 'addon_required' } });
  t.match(await a.post(`/v1/supervisors/${sup}/mailboxes/${anna.id}/sign-in-links`), { status: 409, body: { code: 'addon_required' } });
});
