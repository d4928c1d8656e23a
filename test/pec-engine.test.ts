import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import t, { type Test } from 'tap';
import { certificateSha1Hex } from '../api/src/pec/identity.ts';
import { buildDeliveryReceipt, newPecMessageId, signAndAssemble, type PecTransaction } from '../api/src/pec/messages/index.ts';
import { inspectPecMessage } from '../api/src/pec/inspect.ts';
import { verifyLogChain } from '../api/src/pec/log-register.ts';
import { toLdif } from '../api/src/pec/provider-index.ts';
import { verifySignedEntity } from '../api/src/pec/smime.ts';
import { EICAR_TEST_FILE } from '../api/src/pec/virus-scanner.ts';
import { api } from './helpers/fixtures.ts';
import { DAYS, harness, json, type Harness } from './helpers/harness.ts';
import { opensslVerify, parsePec, unreachableProvider, validateDaticert } from './helpers/pec.ts';

/** A partner with identified customers and three mailboxes on the provider's domain, and their holders' clients. */
async function setup(t: Test, env: Record<string, string> = {}) {
  const h = await harness(t, { env });
  const p = await h.partner();
  const a = api(h, p);
  await a.topUp(50_000);
  const customer = await a.customer();
  const open = async (local: string) => {
    const created = await a.post('/v1/mailboxes', { local_part: local, domain: 'pec.example.it', customer, plan: 'pro', password: `${local}-password-2026` });
    if (created.status !== 201) throw new Error(JSON.stringify(created.body));
    return holder(h, created.body.id, created.body.address, `${local}-password-2026`);
  };
  return { h, a, alice: await open('alice'), bob: await open('bob'), carol: await open('carol') };
}

type Holder = ReturnType<typeof holder>;

function holder(h: Harness, id: string, address: string, password: string) {
  const authorization = `Basic ${Buffer.from(`${address}:${password}`).toString('base64')}`;
  const call = async (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: unknown, headers: Record<string, string> = {}) => {
    const response = await h.app.inject({ method, url, headers: { authorization, ...headers }, ...(payload === undefined ? {} : { payload: payload as string }) });
    const type = String(response.headers['content-type'] ?? '');
    return { status: response.statusCode, body: type.includes('json') ? json(response) : response.body, raw: response.rawPayload, headers: response.headers };
  };
  return {
    id, address,
    get: (path: string) => call('GET', `/v1/mailboxes/${id}${path}`),
    post: (path: string, body?: unknown) => call('POST', `/v1/mailboxes/${id}${path}`, body ?? {}),
    patch: (path: string, body: unknown) => call('PATCH', `/v1/mailboxes/${id}${path}`, body),
    del: (path: string) => call('DELETE', `/v1/mailboxes/${id}${path}`),
    sendRaw: (eml: string) => call('POST', `/v1/mailboxes/${id}/messages/raw`, eml, { 'content-type': 'message/rfc822' }),
    /** The messages of a folder, oldest first, each with its raw bytes. */
    folder: async (name: string) => {
      const list = await call('GET', `/v1/mailboxes/${id}/messages?folder=${name}&limit=100`);
      const items = [...list.body.data].reverse() as Array<{ id: string; kind: string; subject: string; seen: boolean; size_bytes: number }>;
      return Promise.all(items.map(async (m) => ({ ...m, raw: (await call('GET', `/v1/mailboxes/${id}/messages/${m.id}/raw`)).raw })));
    },
  };
}

async function caOf(h: Harness): Promise<string> {
  const response = await h.app.inject({ method: 'GET', url: '/v1/pec/ca-certificate' });
  return response.body;
}

/** Every system message: signature verified by openssl against the provider CA, daticert valid against the DTD. */
async function assertCertified(t: Test, raw: Buffer, ca: string, label: string) {
  const verified = await opensslVerify(raw, ca);
  t.ok(verified.ok, `${label}: openssl smime -verify (${verified.output.trim()})`);
  const pec = await parsePec(raw);
  if (pec.daticert !== null) {
    const validity = await validateDaticert(pec.daticert);
    t.ok(validity.valid, `${label}: daticert.xml valid against the DTD ${validity.errors.join(' ')}`);
  }
  return pec;
}

t.test('a message between mailboxes of this provider: acceptance, envelope, take-charge, one delivery receipt per recipient, log', async (t) => {
  const { h, alice, bob, carol } = await setup(t);
  const ca = await caOf(h);
  t.match(ca, /^-----BEGIN CERTIFICATE-----/);

  const attachment = Buffer.from('%PDF-1.4 fattura di prova\n');
  const sent = await alice.post('/messages', {
    to: [bob.address], cc: [carol.address], subject: 'Diffida n. 7 — è urgente', text: 'Buongiorno,\nin allegato la diffida.',
    attachments: [{ filename: 'diffida.pdf', content_type: 'application/pdf', content_base64: attachment.toString('base64') }],
  });
  t.equal(sent.status, 201);
  t.match(sent.body, {
    object: 'pec_submission', status: 'accepted', refusal: null, submitted_at: '2026-11-22T09:00:00.000Z', pec_message_id: /^opec\d+\.20261122100000\.[\d.]+@pec\.example\.it$/,
    recipients: [{ address: bob.address, role: 'to', certified: true }, { address: carol.address, role: 'cc', certified: true }],
  });
  const pecId: string = sent.body.pec_message_id;
  t.ok((await h.app.pec.drain()) >= 2, 'the pipeline ran');

  // The sender: its copy in sent, then acceptance and one receipt per recipient.
  const [original] = await alice.folder('sent');
  t.match(original, { kind: 'original', subject: 'Diffida n. 7 — è urgente' });
  t.match(original!.raw.toString('latin1'), new RegExp(`Message-ID: <${pecId.replace(/\./g, '\\.')}>`));
  const receipts = await alice.folder('receipts');
  t.same(receipts.map((m) => m.kind), ['acceptance', 'delivery', 'delivery']);

  const acceptance = await assertCertified(t, receipts[0]!.raw, ca, 'acceptance');
  t.equal(acceptance.headers.get('x-ricevuta'), 'accettazione');
  t.equal(acceptance.headers.get('from'), 'posta-certificata@pec.example.it');
  t.equal(acceptance.headers.get('to'), alice.address);
  t.match(receipts[0]!.subject, 'ACCETTAZIONE: Diffida n. 7 — è urgente');
  t.match(acceptance.daticert, /<postacert tipo="accettazione" errore="nessuno">/);
  t.match(acceptance.daticert, `<identificativo>${pecId}</identificativo>`);
  t.match(acceptance.daticert, `<destinatari tipo="certificato">${carol.address}</destinatari>`);
  t.match(acceptance.daticert, /<giorno>22\/11\/2026<\/giorno>\s*<ora>10:00:00<\/ora>/);
  t.equal(acceptance.postacert, null, 'an acceptance receipt does not carry the message');

  const toBob = await assertCertified(t, receipts[1]!.raw, ca, 'delivery to bob');
  t.equal(toBob.headers.get('x-ricevuta'), 'avvenuta-consegna');
  t.match(toBob.daticert, `<consegna>${bob.address}</consegna>`);
  t.match(toBob.daticert, '<ricevuta tipo="completa" />');
  t.ok(toBob.postacert, 'bob was in To: a full receipt with the message');
  t.match(toBob.postacert!.toString('latin1'), new RegExp(`^Message-ID: <${pecId.replace(/\./g, '\\.')}>\r$`, 'm'), 'the full receipt attaches the original with the PEC id inside');
  const toCarol = await assertCertified(t, receipts[2]!.raw, ca, 'delivery to carol');
  t.match(toCarol.daticert, `<consegna>${carol.address}</consegna>`);
  t.equal(toCarol.postacert, null, 'carol was in Cc: a summary receipt');

  // The recipients: the signed envelope, with the original inside.
  for (const recipient of [bob, carol]) {
    const inbox = await recipient.folder('inbox');
    t.equal(inbox.length, 1);
    const envelope = await assertCertified(t, inbox[0]!.raw, ca, `envelope for ${recipient.address}`);
    t.equal(envelope.headers.get('x-trasporto'), 'posta-certificata');
    t.equal(envelope.headers.get('from'), `"Per conto di: ${alice.address}" <posta-certificata@pec.example.it>`);
    t.equal(envelope.headers.get('message-id'), `<${pecId}>`);
    t.match(envelope.daticert, '<postacert tipo="posta-certificata" errore="nessuno">');
    t.match(envelope.postacert!.toString('latin1'), /diffida\.pdf/);
    // As real providers' envelopes show (spec §4.4): inside, the PEC id is the Message-ID, the client's the reference.
    const inside = envelope.postacert!.toString('latin1').split('\r\n\r\n')[0]!;
    t.same(inside.match(/^Message-ID: .*$/gim), [`Message-ID: <${pecId}>`], `postacert.eml for ${recipient.address} carries the PEC id as its Message-ID`);
    t.match(inside, /^X-Riferimento-Message-ID: <[^>]+@[^>]+>$/m, 'and the original id as X-Riferimento-Message-ID');
    t.notMatch(inside, new RegExp(`X-Riferimento-Message-ID: <${pecId.replace(/\./g, '\\.')}>`), 'which is not the PEC id');
    t.match(inbox[0], { kind: 'transport_envelope', seen: false, subject: 'POSTA CERTIFICATA: Diffida n. 7 — è urgente' });
  }
  const folders = (await bob.get('/folders')).body.data;
  t.match(folders.find((f: { name: string }) => f.name === 'inbox'), { total: 1, unread: 1 });

  // The independent verifier recognises our envelope as signed by a provider of the index.
  const verify = await h.app.inject({ method: 'POST', url: '/v1/pec/verify', headers: { authorization: `Basic ${Buffer.from(`${bob.address}:bob-password-2026`).toString('base64')}`, 'content-type': 'message/rfc822' }, payload: (await bob.folder('inbox'))[0]!.raw });
  t.equal(verify.statusCode, 200);
  t.match(json(verify), { object: 'pec_verification', claimed: 'posta-certificata', type: 'posta-certificata', consistent: true, signature: { valid: true, provider: { name: 'PEC Partner Demo S.p.A.' } }, daticert: { identificativo: pecId, mittente: alice.address } });

  // The log register: every event of the transaction, chained.
  const log = (await alice.get('/log?limit=100')).body.data.reverse();
  t.same(log.map((e: { event: string }) => e.event), ['Accettazione', 'BustaTrasporto', 'PresaInCarico', 'Consegna', 'Consegna']);
  t.match(log[3], { message_id: pecId, sender: alice.address, subject: 'Diffida n. 7 — è urgente', provider: 'PEC Partner Demo S.p.A.', details: { consegna: bob.address, tipo_ricevuta: 'completa' } });
  t.match(log[4].details, { consegna: carol.address, tipo_ricevuta: 'sintetica' });
  t.same(await verifyLogChain(h.database.db), { ok: true, entries: 5 });

  // A crash after any step repeats it: rerunning every job changes nothing.
  await h.database.db.execute(sql`update pec_jobs set done_at = null, run_at = ${h.clock.now().toISOString()}::timestamptz`);
  t.ok((await h.app.pec.drain()) >= 2, 'every step ran again');
  t.equal((await alice.folder('receipts')).length, 3, 'no receipt twice');
  t.equal((await bob.folder('inbox')).length, 1, 'no envelope twice');
  t.same(await verifyLogChain(h.database.db), { ok: true, entries: 5 }, 'no log entry twice');
});

t.test('refusals and failures: formal errors, virus, unknown, suspended and full mailboxes, a sender that may not send', async (t) => {
  const { h, a, alice, bob, carol } = await setup(t);
  const ca = await caOf(h);
  const eml = (headers: string, body = 'Testo.') => `${headers}\r\nSubject: Prova\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${body}\r\n`;

  const withBcc = await alice.sendRaw(eml(`From: ${alice.address}\r\nTo: ${bob.address}\r\nBcc: ${carol.address}`));
  t.match(withBcc.body, { status: 'refused', refusal: /Bcc/ });
  const otherFrom = await alice.sendRaw(eml(`From: ${bob.address}\r\nTo: ${carol.address}`));
  t.match(otherFrom.body, { status: 'refused', refusal: /casella autenticata/ });
  const virus = await alice.post('/messages', { to: [bob.address], subject: 'Allegato', text: 'Vedi allegato', attachments: [{ filename: 'eicar.com', content_base64: Buffer.from(EICAR_TEST_FILE).toString('base64') }] });
  t.match(virus.body, { status: 'refused', refusal: /virus/ });
  await h.app.pec.drain();

  const notices = await alice.folder('receipts');
  t.same(notices.map((m) => m.kind), ['non_acceptance', 'non_acceptance', 'non_acceptance']);
  const formal = await assertCertified(t, notices[0]!.raw, ca, 'non-acceptance');
  t.equal(formal.headers.get('x-ricevuta'), 'non-accettazione');
  t.match(notices[0]!.subject, /^AVVISO DI NON ACCETTAZIONE: Prova$/);
  t.match(formal.daticert, /tipo="non-accettazione" errore="altro"/);
  t.match(formal.daticert, /<errore-esteso>[^<]*Bcc/);
  t.equal(formal.postacert, null, 'the original must not be included');
  const infected = await assertCertified(t, notices[2]!.raw, ca, 'virus non-acceptance');
  t.equal(infected.headers.get('x-verificasicurezza'), 'errore');
  t.match(notices[2]!.subject, /^AVVISO DI NON ACCETTAZIONE PER VIRUS: Allegato$/);
  t.match(infected.daticert, /tipo="non-accettazione" errore="virus"/);
  t.equal((await bob.folder('inbox')).length, 0, 'nothing refused was delivered');

  // Delivery failures: an address nobody has, a suspended mailbox, a full one.
  t.equal((await a.post(`/v1/mailboxes/${carol.id}/suspend`)).status, 200);
  await h.database.db.execute(sql`update mailboxes set used_inbox_bytes = inbox_quota_bytes - 10 where id = ${bob.id}`);
  const failing = await alice.post('/messages', { to: ['nessuno@pec.example.it', carol.address, bob.address], subject: 'Tre destinatari', text: 'Ciao' });
  t.equal(failing.body.status, 'accepted');
  await h.app.pec.drain();
  const after = (await alice.folder('receipts')).slice(3);
  t.same(after.map((m) => m.kind), ['acceptance', 'non_delivery', 'non_delivery', 'non_delivery']);
  const details = await Promise.all(after.slice(1).map((m) => assertCertified(t, m.raw, ca, 'non-delivery')));
  t.match(details[0]!.daticert, /tipo="errore-consegna" errore="no-dest"/);
  t.match(details[0]!.daticert, /<errore-esteso>5\.1\.1 - PEC Partner Demo S\.p\.A\. - indirizzo non valido<\/errore-esteso>/);
  t.match(details[1]!.daticert, /errore="altro"[\s\S]*5\.2\.1/);
  t.match(details[2]!.daticert, /errore="altro"[\s\S]*5\.2\.2 - PEC Partner Demo S\.p\.A\. - casella piena/);
  t.match(after[1]!.subject, /^AVVISO DI MANCATA CONSEGNA: Tre destinatari$/);
  t.equal((await bob.folder('inbox')).length, 0, 'the full mailbox got nothing');
  const events = (await alice.get('/log?limit=100')).body.data.map((e: { event: string }) => e.event).reverse();
  t.same(events, ['NonAccettazione', 'NonAccettazione', 'NonAccettazioneVirus', 'Accettazione', 'BustaTrasporto', 'PresaInCarico', 'MancataConsegna', 'MancataConsegna', 'MancataConsegna']);

  // A suspended mailbox reads but cannot send.
  const suspendedSend = await holder(h, carol.id, carol.address, 'carol-password-2026').post('/messages', { to: [alice.address], subject: 'x', text: 'y' });
  t.equal(suspendedSend.status, 409);
  t.match(suspendedSend.body, { code: 'mailbox_cannot_send' });
  t.equal((await carol.get('/folders')).status, 200);
});

t.test('holder messages API: credentials, folders, read parsed and raw, seen, archive within quota, delete, idempotent send', async (t) => {
  const { h, a, alice, bob } = await setup(t);
  const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
  const anonymous = await h.app.inject({ method: 'GET', url: `/v1/mailboxes/${bob.id}/folders` });
  t.equal(anonymous.statusCode, 401);
  t.match(anonymous.headers['www-authenticate'], /^Basic realm=/);
  const wrong = await h.app.inject({ method: 'GET', url: `/v1/mailboxes/${bob.id}/folders`, headers: { authorization: basic(bob.address, 'not-the-password-1') } });
  t.match(json(wrong), { status: 401, code: 'invalid_mailbox_credentials' });
  const someoneElses = await h.app.inject({ method: 'GET', url: `/v1/mailboxes/${alice.id}/folders`, headers: { authorization: basic(bob.address, 'bob-password-2026') } });
  t.match(json(someoneElses), { status: 404, code: 'resource_missing' }, "another holder's mailbox does not exist for bob");
  const partnerKey = await a.get(`/v1/mailboxes/${bob.id}/messages`);
  t.equal(partnerKey.status, 401, 'a partner key does not open a mailbox: the content is the holder\'s');
  t.equal((await alice.post('/messages', { to: ['non un indirizzo'], subject: 'x' })).status, 400);

  const send = (key: string) => h.app.inject({
    method: 'POST', url: `/v1/mailboxes/${alice.id}/messages`, headers: { authorization: basic(alice.address, 'alice-password-2026'), 'idempotency-key': key },
    payload: { to: [bob.address], subject: 'Verbale', html: '<p>Il <b>verbale</b> firmato.</p>', attachments: [{ filename: 'verbale.txt', content_base64: Buffer.from('verbale').toString('base64') }] },
  });
  const first = await send('verbale-1');
  const replay = await send('verbale-1');
  t.equal(replay.statusCode, 201);
  t.equal(replay.headers['idempotent-replayed'], 'true');
  t.equal(json(replay).pec_message_id, json(first).pec_message_id, 'a retried send is the same transaction');
  await h.app.pec.drain();
  t.equal((await alice.folder('sent')).length, 1, 'sent once');

  const [listed] = (await bob.get('/messages?folder=inbox')).body.data;
  const read = await bob.get(`/messages/${listed.id}`);
  t.match(read.body, {
    object: 'mailbox_message', kind: 'transport_envelope', subject: 'POSTA CERTIFICATA: Verbale', to: [bob.address],
    pec_headers: { x_trasporto: 'posta-certificata', x_riferimento_message_id: /^<.+>$/, x_ricevuta: null },
  });
  t.match(read.body.attachments.map((x: { filename: string }) => x.filename), ['daticert.xml']);
  const raw = await bob.get(`/messages/${listed.id}/raw`);
  t.equal(raw.headers['content-type'], 'message/rfc822');
  t.equal(raw.raw.length, listed.size_bytes, 'the raw download is the stored message, byte for byte');

  t.equal((await bob.patch(`/messages/${listed.id}`, { seen: true })).body.seen, true);
  const unread = (await bob.get('/folders')).body.data.find((f: { name: string }) => f.name === 'inbox');
  t.match(unread, { total: 1, unread: 0, size_bytes: listed.size_bytes });
  t.equal((await bob.get('/messages?seen=false')).body.data.length, 0);

  const before = (await a.get(`/v1/mailboxes/${bob.id}`)).body.quotas;
  const archived = await bob.patch(`/messages/${listed.id}`, { folder: 'archive' });
  t.equal(archived.body.folder, 'archive');
  const after = (await a.get(`/v1/mailboxes/${bob.id}`)).body.quotas;
  t.equal(after.inbox.used_bytes, before.inbox.used_bytes - listed.size_bytes, 'the inbox space is freed');
  t.equal(after.archive.used_bytes, before.archive.used_bytes + listed.size_bytes, 'and counted in the archive');

  // A short receipt, when asked for: the original with each attachment replaced by its SHA-1.
  await alice.post('/messages', { to: [bob.address], subject: 'Breve', text: 'Allegato', receipt_type: 'breve', attachments: [{ filename: 'contratto.txt', content_base64: Buffer.from('contratto firmato').toString('base64') }] });
  await h.app.pec.drain();
  const short = (await alice.folder('receipts')).at(-1)!;
  const parsedShort = await parsePec(short.raw);
  t.match(parsedShort.daticert, '<ricevuta tipo="breve" />');
  t.match(parsedShort.postacert!.toString('latin1'), /contratto\.txt\.hash/);
  t.notMatch(parsedShort.postacert!.toString('latin1'), Buffer.from('contratto firmato').toString('base64'), 'the attachment itself is not in a short receipt');

  // A Standard mailbox has no archive space.
  const customer = await a.customer();
  const small = (await a.post('/v1/mailboxes', { local_part: 'dario', domain: 'pec.example.it', customer, plan: 'standard', password: 'dario-password-2026' })).body;
  const dario = holder(h, small.id, small.address, 'dario-password-2026');
  await alice.post('/messages', { to: [dario.address], subject: 'Per Dario', text: 'ciao' });
  await h.app.pec.drain();
  const [darioMessage] = (await dario.get('/messages')).body.data;
  t.match((await dario.patch(`/messages/${darioMessage.id}`, { folder: 'archive' })).body, { status: 409, code: 'quota_exceeded' });

  t.match((await bob.del(`/messages/${listed.id}`)).body, { id: listed.id, deleted: true });
  t.equal((await bob.get(`/messages/${listed.id}`)).status, 404);
  t.equal((await a.get(`/v1/mailboxes/${bob.id}`)).body.quotas.archive.used_bytes, before.archive.used_bytes, 'deleting frees the space');
  t.equal((await bob.del(`/messages/${listed.id}`)).status, 404);
});

t.test('log register: queries for partner and holder, CSV and JSON export, tamper evidence, 30-month retention', async (t) => {
  const { h, a, alice, bob } = await setup(t);
  const first = (await alice.post('/messages', { to: [bob.address], subject: 'Primo, "con" virgole', text: 'uno' })).body;
  await h.app.pec.drain();
  h.clock.advance(DAYS);
  await alice.post('/messages', { to: [bob.address], subject: 'Secondo', text: 'due' });
  await h.app.pec.drain();

  const all = (await a.get('/v1/log?limit=100')).body.data;
  t.equal(all.length, 8, 'four events per message to one recipient');
  const one = (await a.get(`/v1/log?message_id=<${first.pec_message_id}>&limit=100`)).body.data;
  t.same(one.map((e: { event: string }) => e.event).sort(), ['Accettazione', 'BustaTrasporto', 'Consegna', 'PresaInCarico']);
  t.equal(one.length, 4, 'angle brackets are optional in the filter');
  const dayTwo = (await a.get(`/v1/mailboxes/${alice.id}/log?from=2026-11-23T00:00:00Z`)).body.data;
  t.ok(dayTwo.length > 0 && dayTwo.every((e: { occurred_at: string }) => e.occurred_at >= '2026-11-23'), 'period filter');
  t.match((await a.get(`/v1/mailboxes/${alice.id}/log?from=2026-11-24T00:00:00Z&to=2026-11-23T00:00:00Z`)).body, { status: 400, errors: [{ pointer: '/to' }] });
  t.equal((await bob.get(`/log`)).status, 200, 'the holder reads its own mailbox log');
  const other = api(h, await h.partner('Other'));
  t.equal((await other.get(`/v1/mailboxes/${alice.id}/log`)).status, 404, "another partner's mailbox");

  const csv = await h.app.inject({ method: 'GET', url: `/v1/mailboxes/${alice.id}/log-export`, headers: { authorization: `Basic ${Buffer.from(`${alice.address}:alice-password-2026`).toString('base64')}` } });
  t.equal(csv.headers['content-type'], 'text/csv; charset=utf-8');
  const lines = csv.body.trim().split('\r\n');
  t.equal(lines[0], 'id,occurred_at,event,message_id,related_message_ids,sender,recipients,subject,provider,mailbox,details,hash');
  t.equal(lines.length, 9);
  t.ok(lines.some((line) => line.includes('"Primo, ""con"" virgole"')), 'RFC 4180 quoting');
  const exported = await a.get(`/v1/mailboxes/${alice.id}/log-export?format=json&to=2026-11-23T00:00:00Z`);
  t.equal(exported.status, 200);
  t.equal(exported.body.length, 4);
  t.equal(exported.body[0].event, 'Accettazione', 'oldest first');

  // The register is append-only, and the chain shows any change made behind the application's back.
  const db = h.database.db;
  const refusal = (query: Promise<unknown>) => query.then(() => 'allowed', (error: { cause?: Error }) => error.cause?.message ?? String(error));
  t.match(await refusal(db.execute(sql`update log_register set subject = 'altro' where seq = 3`)), /log_register is append-only \(UPDATE refused\)/);
  t.match(await refusal(db.execute(sql`delete from log_register where seq = 3`)), /log_register is append-only \(DELETE refused\)/);
  t.same(await verifyLogChain(db), { ok: true, entries: 8 });
  await db.execute(sql`alter table log_register disable trigger log_register_guard`);
  await db.execute(sql`update log_register set subject = 'ritoccato' where seq = 3`);
  t.match(await verifyLogChain(db), { ok: false, brokenAtSeq: 3, reason: /altered/ });
  await db.execute(sql`update log_register set subject = (select subject from log_register where seq = 2) where seq = 3`);
  await db.execute(sql`delete from log_register where seq = 4`);
  t.match(await verifyLogChain(db), { ok: false, brokenAtSeq: 5, reason: /removed/ });
  await db.execute(sql`alter table log_register enable trigger log_register_guard`);

  // Retention: 30 months, then the purge job lets go; what is kept still verifies from the new anchor.
  const fresh = await setup(t);
  await fresh.alice.post('/messages', { to: [fresh.bob.address], subject: 'Vecchio', text: 'x' });
  await fresh.h.app.pec.drain();
  fresh.h.clock.advance(30 * 31 * DAYS);
  await fresh.alice.post('/messages', { to: [fresh.bob.address], subject: 'Nuovo', text: 'y' });
  await fresh.h.app.pec.drain();
  await fresh.h.app.jobs.tick();
  const kept = (await fresh.a.get('/v1/log?limit=100')).body.data;
  t.same([...new Set(kept.map((e: { subject: string }) => e.subject))], ['Nuovo'], 'entries older than 30 months are purged');
  t.same(await verifyLogChain(fresh.h.database.db), { ok: true, entries: 4 });
});

t.test("POST /v1/pec/verify on real providers' messages: type, daticert, signature, provider from the index", async (t) => {
  const fixture = (name: string) => readFile(new URL(`./fixtures/pec/${name}`, import.meta.url));
  // An index listing Aruba with the certificate that signed its 2018 receipt, as the national index would.
  const aruba = await fixture('aruba-2018-accettazione.eml');
  const inspected = await inspectPecMessage(aruba);
  const signer = await verifySignedEntity({ contentType: inspected.signed!.contentType, body: inspected.signed!.body });
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pec-index-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const ldif = toLdif({
    dn: 'providerName=ARUBA PEC S.p.A.,o=postacert', providerName: 'ARUBA PEC S.p.A.', managedDomains: ['pec.aruba.it', 'pec.it'], mailReceipt: 'posta-certificata@pec.aruba.it',
    certificates: [signer.signerCertificateDer!], certificateHashes: [certificateSha1Hex(signer.signerCertificateDer!)],
  });
  await writeFile(path.join(dir, 'index.ldif'), ldif);
  const { h } = await setup(t, { PEC_PROVIDER_INDEX_FILE: path.join(dir, 'index.ldif') });
  const p = await h.partner('Verifier');
  const verify = async (eml: Buffer) => json(await h.app.inject({ method: 'POST', url: '/v1/pec/verify', headers: { ...p.headers, 'content-type': 'message/rfc822' }, payload: eml }));

  t.match(await verify(aruba), {
    object: 'pec_verification', claimed: 'accettazione', type: 'accettazione', consistent: true, problems: [],
    signature: { present: true, valid: true, digest_algorithm: 'sha-1', signer: { email: 'posta-certificata@pec.aruba.it' }, provider: { name: 'ARUBA PEC S.p.A.' } },
    daticert: { tipo: 'accettazione', errore: 'nessuno', gestoreEmittente: 'ARUBA PEC S.p.A.', data: { zona: '+0100' } },
  });
  const envelope2014 = await verify(await fixture('aruba-2014-posta-certificata.eml'));
  t.match(envelope2014, { claimed: 'posta-certificata', type: 'posta-certificata', consistent: false, signature: { valid: true, provider: null } });
  t.match(envelope2014.problems, [/not listed in the provider index/], 'a valid signature by a certificate the index does not list is not trusted');
  const synthetic = await verify(await fixture('fakepec-2024-errore-consegna.eml'));
  t.match(synthetic, { claimed: 'errore-consegna', type: 'errore-consegna', consistent: false, daticert: { errore: 'no-dest' } });
  t.match(await verify(await fixture('ordinary-mail.eml')), { claimed: 'not-pec', type: null, consistent: false, signature: { present: false } });

  // Altering one byte of the signed content breaks the signature.
  const tampered = Buffer.from(aruba);
  const at = tampered.indexOf('IT03339130126_00009.xml', tampered.indexOf('Content-Type: multipart/mixed'));
  tampered[at] = 'X'.charCodeAt(0);
  t.match(await verify(tampered), { consistent: false, signature: { valid: false } });
  const empty = await h.app.inject({ method: 'POST', url: '/v1/pec/verify', headers: { ...p.headers, 'content-type': 'application/json' }, payload: {} });
  t.equal(empty.statusCode, 415);
});

t.test("a receipt signed by a provider that does not manage the recipient's domain is an anomaly, never a delivery", async (t) => {
  // Another provider in the index (its server unreachable: its receipts are made here and handed in).
  const { provider: remote, identity, signer: remoteSigner, indexFile, closedPort } = await unreachableProvider(t);
  const { h, alice } = await setup(t, { PEC_PROVIDER_INDEX_FILE: indexFile, PEC_SMTP_ROUTES: `${remote.domain}=127.0.0.1:${closedPort}` });

  const anna = `anna@${remote.domain}`;
  const nobody = 'nessuno@pec.example.it';
  const sent = (await alice.post('/messages', { to: [anna, nobody], subject: 'Offerta', text: 'Testo' })).body;
  await h.app.pec.drain();
  const statuses = async () => Object.fromEntries((await h.database.db.execute<{ address: string; status: string }>(
    sql`select r.address, r.status from pec_recipients r join pec_transactions x on x.id = r.transaction_id where x.pec_message_id = ${sent.pec_message_id} order by r.address`,
  )).map((r) => [r.address, r.status]));
  t.same(await statuses(), { [anna]: 'pending', [nobody]: 'failed' }, 'the unknown local address failed here');

  const tx: PecTransaction = {
    provider: remote, at: h.clock.now(), pecMessageId: sent.pec_message_id, originalMessageId: '<offerta@pec.example.it>', sender: alice.address,
    recipients: [anna, nobody].map((address) => ({ address, type: 'certificato' as const, header: 'To' as const })), subject: 'Offerta', receiptType: 'sintetica',
  };
  const receipt = async (recipient: string) => signAndAssemble(
    await buildDeliveryReceipt(tx, { messageId: newPecMessageId(remote.domain, h.clock.now()), recipient, postacert: Buffer.alloc(0) }), remoteSigner);
  const before = { receipts: (await alice.folder('receipts')).length, inbox: (await alice.folder('inbox')).length };

  // The remote provider certifies a delivery to a mailbox on OUR domain: a forgery, whatever its valid signature.
  await h.app.pec.receive(await receipt(nobody), { mailFrom: identity.serviceAddress, rcptTo: [alice.address] });
  await h.app.pec.drain();
  t.same(await statuses(), { [anna]: 'pending', [nobody]: 'failed' }, 'the forged delivery changes nothing');
  t.equal((await alice.folder('receipts')).length, before.receipts, 'it is not filed as a receipt');
  const inbox = await alice.folder('inbox');
  t.equal(inbox.length, before.inbox + 1);
  t.equal(inbox.at(-1)!.kind, 'anomaly_envelope', 'the holder gets it inside an anomaly envelope');
  t.match((await parsePec(inbox.at(-1)!.raw)).text, /non gestisce il dominio del destinatario/);

  // The same provider's receipt for its own recipient is a delivery (the check refuses only what it may not certify).
  await h.app.pec.receive(await receipt(anna), { mailFrom: identity.serviceAddress, rcptTo: [alice.address] });
  await h.app.pec.drain();
  t.same(await statuses(), { [anna]: 'delivered', [nobody]: 'failed' });
  t.equal((await alice.folder('receipts')).length, before.receipts + 1);
});

t.test('delivery timers (spec §4.5) only for PEC recipients handed to another provider', async (t) => {
  // Both other servers unreachable: envelopes wait in the queue and no receipt ever comes back.
  const { provider: remote, indexFile, closedPort } = await unreachableProvider(t);
  const { h, alice, bob } = await setup(t, {
    PEC_PROVIDER_INDEX_FILE: indexFile,
    PEC_SMTP_ROUTES: `${remote.domain}=127.0.0.1:${closedPort},posta.example=127.0.0.1:${closedPort}`,
  });
  const anna = `anna@${remote.domain}`;

  const send = async (to: string[], subject: string) => {
    const sent = await alice.post('/messages', { to, subject, text: 'Testo' });
    t.equal(sent.status, 201, subject);
    return sent.body.id as string;
  };
  const local = await send([bob.address], 'Solo locale');
  const mixed = await send([bob.address, anna], 'Anche remota');
  const ordinary = await send(['mario.rossi@posta.example'], 'Posta ordinaria');
  await h.app.pec.drain();
  /** Timer jobs per transaction, as hours after the submission. */
  const timers = async () => Object.fromEntries((await h.database.db.execute<{ dedupe_key: string; hours: number }>(sql`
    select j.dedupe_key, extract(epoch from j.run_at - x.submitted_at)::int / 3600 as hours
    from pec_jobs j join pec_transactions x on x.id = j.payload->>'transaction'
    where j.kind = 'timer' order by j.dedupe_key`)).map((r) => [r.dedupe_key, Number(r.hours)]));
  t.same(await timers(), { [`timer12:${mixed}`]: 12, [`timer24:${mixed}`]: 24 }, `none for the local-only ${local} or the ordinary-mail ${ordinary} message`);

  // Dispatch repeated after a crash queues the same two timers.
  await h.database.db.execute(sql`update pec_jobs set done_at = null, run_at = ${h.clock.now().toISOString()}::timestamptz where kind = 'dispatch'`);
  await h.app.pec.drain();
  t.same(Object.keys(await timers()), [`timer12:${mixed}`, `timer24:${mixed}`]);

  const notices = async () => (await alice.folder('receipts')).filter((m) => m.kind === 'delay_warning' || m.kind === 'timeout').map((m) => [m.kind, m.subject]);
  h.clock.advance(12 * 3_600_000);
  await h.app.pec.drain();
  t.same(await notices(), [['delay_warning', 'AVVISO DI MANCATA CONSEGNA PER SUP. TEMPO MASSIMO: Anche remota']], '12 h: a warning for the remote recipient');
  h.clock.advance(12 * 3_600_000);
  await h.app.pec.drain();
  t.same(await notices(), [
    ['delay_warning', 'AVVISO DI MANCATA CONSEGNA PER SUP. TEMPO MASSIMO: Anche remota'],
    ['timeout', 'AVVISO DI MANCATA CONSEGNA PER SUP. TEMPO MASSIMO: Anche remota'],
  ], '24 h: the final notice');
  const [open] = await h.database.db.execute<{ n: number }>(sql`select count(*)::int as n from pec_jobs where kind = 'timer' and done_at is null`);
  t.equal(Number(open!.n), 0, 'both timers ran');
});
