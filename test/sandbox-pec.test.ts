import { once } from 'node:events';
import net from 'node:net';
import { and, eq, isNull } from 'drizzle-orm';
import nodemailer from 'nodemailer';
import { SMTPServer } from 'smtp-server';
import t, { type Test } from 'tap';
import { domains, logRegister, mailboxMessages, pecJobs, pecRecipients, pecTransactions } from '@pec-partner/db';
import { postMovement } from '../api/src/modules/credit/service.ts';
import { SANDBOX_REFUSAL } from '../api/src/pec/engine.ts';
import { MODE_HEADER, SANDBOX_NOTICE } from '../api/src/pec/messages/index.ts';
import { startSmtpServers, type SmtpServers } from '../api/src/pec/smtp-servers.ts';
import { loadOrCreateTls } from '../api/src/pec/tls.ts';
import { api } from './helpers/fixtures.ts';
import { harness, json, type Harness, type TestPartner } from './helpers/harness.ts';
import { opensslVerify, parsePec, validateDaticert } from './helpers/pec.ts';

/**
 * PEC in the sandbox (issue 12): test mailboxes exchange PEC messages among themselves, every message the engine
 * makes for them is marked as test (header, signed text, sandbox signing identity), nothing of theirs leaves the
 * provider, nothing from outside reaches them, and the two worlds never meet, even where one address exists in both.
 */

const smtpTls = loadOrCreateTls({ certificateFile: undefined, privateKeyFile: undefined }, ['localhost']);
const EXTERNAL = 'esterno.example.com';

interface Box {
  id: string;
  address: string;
  password: string;
}

/** Where mail for EXTERNAL would go: an SMTP sink that records every transaction. */
async function sink(t: Test) {
  const arrivals: Array<{ mailFrom: string; rcptTo: string[] }> = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onData(stream, session, callback) {
      stream.resume();
      stream.on('end', () => {
        arrivals.push({ mailFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : '', rcptTo: session.envelope.rcptTo.map((r) => r.address) });
        callback();
      });
    },
  });
  server.listen(0, '127.0.0.1');
  await once(server.server, 'listening');
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { port: (server.server.address() as net.AddressInfo).port, arrivals };
}

async function setup(t: Test) {
  const external = await sink(t);
  const h = await harness(t, { env: { PEC_SMTP_ROUTES: `${EXTERNAL}=127.0.0.1:${external.port}`, PEC_SMTP_VERIFY_TLS: 'false' } });
  const partner = await h.partner();
  const live = api(h, partner);
  await live.topUp(50_000);
  const testPartner: TestPartner = { ...partner, id: partner.test.id, headers: partner.test.headers };
  const test = api(h, testPartner);
  // Test credit, written directly: the sandbox's top-up helper is another change.
  await postMovement(h.database.db, h.clock, 'adjustment_credit', 50_000, { partnerId: partner.test.id, amount: 50_000, description: 'Sandbox credit for tests' });
  const liveCustomer = await live.customer();
  const testCustomer = await test.customer();
  // A custom domain certified in the sandbox only (the test-helper verification is another change).
  const now = h.clock.now();
  await h.database.db.insert(domains).values({
    id: 'dom_sandbox_studio_prova', partnerId: partner.test.id, customerId: testCustomer, name: 'studio-prova.it', unicodeName: 'studio-prova.it', level: 2,
    status: 'certified', verificationToken: 'sandbox-token', certifiedAt: now, createdAt: now, updatedAt: now,
  });
  const open = async (client: typeof live, customer: string, address: string, password: string): Promise<Box> => {
    const [local, domain] = address.split('@');
    const created = await client.post('/v1/mailboxes', { local_part: local, domain, customer, plan: 'pro', password });
    if (created.status !== 201) throw new Error(JSON.stringify(created.body));
    return { id: created.body.id, address, password };
  };
  const boxes = {
    liveInfo: await open(live, liveCustomer, 'info@pec.example.it', 'live-info-password-2026'),
    liveCarlo: await open(live, liveCustomer, 'carlo@pec.example.it', 'live-carlo-password-2026'),
    testInfo: await open(test, testCustomer, 'info@pec.example.it', 'test-info-password-2026'),
    testBob: await open(test, testCustomer, 'bob@pec.example.it', 'test-bob-password-2026'),
    testAnna: await open(test, testCustomer, 'anna@studio-prova.it', 'test-anna-password-2026'),
  };
  const engine = h.app.pec;
  const smtp = await startSmtpServers(h.database.db, {
    submitRaw: (holder, raw, envelope) => engine.submitRaw(holder, raw, envelope),
    receive: (raw, envelope) => engine.receive(raw, envelope),
    acceptsRecipient: (address) => engine.acceptsRecipient(address),
    maxMessageBytes: () => engine.maxMessageBytes(),
  }, { host: '127.0.0.1', submissionPort: 0, submissionTlsPort: 0, inboundPort: 0, serverName: 'mx.pec.example.it', tls: await smtpTls });
  t.teardown(() => smtp.close());
  return {
    h, partner, live, test, boxes, smtp, external,
    liveCa: (await engine.identity(true)).caCertificatePem,
    sandboxCa: (await engine.identity(false)).caCertificatePem,
  };
}

/** HTTP Basic as a holder: `user` is the address (the live mailbox) or the mailbox id (either world). */
function holder(h: Harness, user: string, password: string) {
  const authorization = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
  const call = async (method: 'GET' | 'POST', url: string, payload?: unknown) => {
    const response = await h.app.inject({ method, url, headers: { authorization }, ...(payload === undefined ? {} : { payload: payload as object }) });
    return { status: response.statusCode, body: String(response.headers['content-type'] ?? '').includes('json') ? json(response) : response.body };
  };
  return {
    send: (box: Box, message: { to: string[]; cc?: string[]; subject: string; text: string }) => call('POST', `/v1/mailboxes/${box.id}/messages`, message),
    list: (box: Box, folder: string) => call('GET', `/v1/mailboxes/${box.id}/messages?folder=${folder}&limit=100`),
  };
}

async function stored(h: Harness, box: Box | null, folder?: string) {
  return h.database.db.select().from(mailboxMessages)
    .where(and(box ? eq(mailboxMessages.mailboxId, box.id) : isNull(mailboxMessages.mailboxId), folder ? eq(mailboxMessages.folder, folder as 'inbox') : undefined))
    .orderBy(mailboxMessages.storedAt, mailboxMessages.id);
}

type Setup = Awaited<ReturnType<typeof setup>>;

/** A message of the sandbox: marked by the header and by the signed text, signed by the sandbox only, daticert valid. */
async function assertSandboxMessage(t: Test, s: Setup, raw: Buffer, label: string) {
  const pec = await parsePec(raw);
  t.equal(pec.headers.get(MODE_HEADER.toLowerCase()), 'test', `${label}: ${MODE_HEADER}: test`);
  const verified = await opensslVerify(raw, s.sandboxCa);
  t.ok(verified.ok, `${label}: openssl verifies it against the sandbox CA (${verified.output.trim()})`);
  t.notOk((await opensslVerify(raw, s.liveCa)).ok, `${label}: not verifiable against the live provider's CA`);
  // The marker inside the signed content: the readable text opens with it (HTML and plain).
  t.ok(pec.text.trimStart().startsWith(SANDBOX_NOTICE), `${label}: the signed text opens with the sandbox notice`);
  const signedEntity = raw.toString('latin1');
  t.match(signedEntity, /ATTENZIONE: MESSAGGIO DI PROVA \(SANDBOX\) PRIVO DI VALORE LEGALE/, `${label}: the notice is in the signed body`);
  if (pec.daticert !== null) {
    const validity = await validateDaticert(pec.daticert);
    t.ok(validity.valid, `${label}: daticert.xml valid against the DTD ${validity.errors.join(' ')}`);
    t.match(pec.daticert, '<gestore-emittente>PEC Partner Demo S.p.A. (SANDBOX)</gestore-emittente>', `${label}: certified by the sandbox`);
  }
  return pec;
}

async function assertLiveMessage(t: Test, s: Setup, raw: Buffer, label: string) {
  const pec = await parsePec(raw);
  t.notOk(pec.headers.has(MODE_HEADER.toLowerCase()), `${label}: no test marker`);
  t.notMatch(pec.text, /SANDBOX/, `${label}: no sandbox notice`);
  t.ok((await opensslVerify(raw, s.liveCa)).ok, `${label}: signed by the live provider`);
  t.notOk((await opensslVerify(raw, s.sandboxCa)).ok, `${label}: not by the sandbox`);
  return pec;
}

t.test('PEC in the sandbox', async (t) => {
  const s = await setup(t);
  const { h, boxes } = s;
  const engine = h.app.pec;
  const testBob = holder(h, boxes.testBob.id, boxes.testBob.password);
  const liveCarlo = holder(h, boxes.liveCarlo.address, boxes.liveCarlo.password);

  await t.test('a test mailbox sends to test mailboxes: delivered with receipts, all marked as test and signed by the sandbox', async (t) => {
    const sent = await testBob.send(boxes.testBob, { to: [boxes.testAnna.address], cc: [boxes.testInfo.address], subject: 'Prova sandbox', text: 'Solo un test.' });
    t.equal(sent.status, 201, JSON.stringify(sent.body));
    t.match(sent.body, { status: 'accepted', livemode: false, recipients: [{ address: boxes.testAnna.address, certified: true }, { address: boxes.testInfo.address, certified: true }] });
    await engine.drain();
    const pecId: string = sent.body.pec_message_id;

    const receipts = await stored(h, boxes.testBob, 'receipts');
    t.same(receipts.map((m) => m.kind), ['acceptance', 'delivery', 'delivery']);
    for (const receipt of receipts) {
      const pec = await assertSandboxMessage(t, s, receipt.content, `${receipt.kind} receipt`);
      t.equal(pec.headers.get('from'), 'posta-certificata@pec.example.it');
    }
    for (const box of [boxes.testAnna, boxes.testInfo]) {
      const inbox = await stored(h, box, 'inbox');
      t.equal(inbox.length, 1, `${box.address} (test) got the envelope`);
      const envelope = await assertSandboxMessage(t, s, inbox[0]!.content, `envelope for ${box.address}`);
      t.equal(envelope.headers.get('x-trasporto'), 'posta-certificata');
    }
    t.equal((await stored(h, boxes.liveInfo)).length, 0, 'the live info@pec.example.it got nothing');
    const takeCharge = (await stored(h, null)).filter((m) => m.pecMessageId === pecId && m.kind === 'take_charge');
    t.equal(takeCharge.length, 2, 'one take-charge receipt per local domain');
    for (const receipt of takeCharge) await assertSandboxMessage(t, s, receipt.content, 'take-charge receipt');

    const entries = await h.database.db.select().from(logRegister).where(eq(logRegister.messageId, pecId));
    t.ok(entries.length >= 5);
    t.ok(entries.every((e) => e.provider === 'PEC Partner Demo S.p.A. (SANDBOX)' && (e.details as { sandbox?: boolean }).sandbox === true && e.partnerId === s.partner.test.id),
      'every log entry names the sandbox and the test partner');

    // The verifier of each world: a test key recognises the sandbox's signature, a live key does not.
    const raw = receipts[1]!.content;
    const asTest = json(await h.app.inject({ method: 'POST', url: '/v1/pec/verify', headers: { ...s.partner.test.headers, 'content-type': 'message/rfc822' }, payload: raw }));
    t.match(asTest, { type: 'avvenuta-consegna', consistent: true, signature: { valid: true, provider: { name: 'PEC Partner Demo S.p.A. (SANDBOX)' } } });
    const asLive = json(await h.app.inject({ method: 'POST', url: '/v1/pec/verify', headers: { ...s.partner.headers, 'content-type': 'message/rfc822' }, payload: raw }));
    t.match(asLive, { consistent: false, signature: { valid: true, provider: null } }, 'a test receipt never verifies as a live provider\'s');
  });

  await t.test('one address in both worlds: each world delivers to its own mailbox only', async (t) => {
    const fromTest = await testBob.send(boxes.testBob, { to: [boxes.testInfo.address], subject: 'Dal mondo di test', text: 'test' });
    t.equal(fromTest.status, 201);
    const fromLive = await liveCarlo.send(boxes.liveCarlo, { to: [boxes.liveInfo.address], subject: 'Dal mondo reale', text: 'live' });
    t.equal(fromLive.status, 201);
    t.match(fromLive.body, { status: 'accepted', livemode: true });
    await engine.drain();

    const testInbox = (await stored(h, boxes.testInfo, 'inbox')).map((m) => m.subject);
    const liveInbox = (await stored(h, boxes.liveInfo, 'inbox')).map((m) => m.subject);
    t.ok(testInbox.includes('POSTA CERTIFICATA: Dal mondo di test'), 'the test message reached the test mailbox');
    t.notOk(testInbox.includes('POSTA CERTIFICATA: Dal mondo reale'), 'the live message did not reach the test mailbox');
    t.same(liveInbox, ['POSTA CERTIFICATA: Dal mondo reale'], 'the live mailbox got the live message only');

    const liveReceipts = await stored(h, boxes.liveCarlo, 'receipts');
    t.same(liveReceipts.map((m) => m.kind), ['acceptance', 'delivery']);
    for (const receipt of liveReceipts) {
      const pec = await assertLiveMessage(t, s, receipt.content, `live ${receipt.kind}`);
      t.match(pec.daticert, '<gestore-emittente>PEC Partner Demo S.p.A.</gestore-emittente>');
    }
    await assertLiveMessage(t, s, (await stored(h, boxes.liveInfo, 'inbox'))[0]!.content, 'live envelope');

    // An address that exists only live does not exist for a test sender: no-dest, and the live mailbox gets nothing.
    const carloInbox = (await stored(h, boxes.liveCarlo, 'inbox')).length;
    const toLiveOnly = await testBob.send(boxes.testBob, { to: [boxes.liveCarlo.address], subject: 'Verso una casella solo reale', text: 'test' });
    t.match(toLiveOnly.body, { status: 'accepted' });
    await engine.drain();
    const [recipient] = await h.database.db.select().from(pecRecipients)
      .innerJoin(pecTransactions, eq(pecTransactions.id, pecRecipients.transactionId))
      .where(and(eq(pecRecipients.address, boxes.liveCarlo.address), eq(pecTransactions.pecMessageId, toLiveOnly.body.pec_message_id)));
    t.match(recipient?.pec_recipients, { status: 'failed', errorCode: 'no-dest', errorDetail: '5.1.1 - PEC Partner Demo S.p.A. (SANDBOX) - indirizzo non valido' });
    t.equal((await stored(h, boxes.liveCarlo, 'inbox')).length, carloInbox, 'the live mailbox got nothing');
    const notice = (await stored(h, boxes.testBob, 'receipts')).find((m) => m.pecMessageId === toLiveOnly.body.pec_message_id && m.kind === 'non_delivery');
    t.ok(notice, 'the test sender got a non-delivery notice');
    const pec = await assertSandboxMessage(t, s, notice!.content, 'non-delivery notice');
    t.match(pec.daticert, '<postacert tipo="errore-consegna" errore="no-dest">');
  });

  await t.test('a test message to an address outside the sandbox: refused at the access point, never relayed', async (t) => {
    for (const to of [[`someone@${EXTERNAL}`], [boxes.testInfo.address, `someone@${EXTERNAL}`], ['info@studio-reale.it']]) {
      const subject = `Verso l'esterno ${to.length}${to[0]}`;
      const before = (await stored(h, boxes.testInfo, 'inbox')).length;
      const sent = await testBob.send(boxes.testBob, { to, subject, text: 'non deve uscire' });
      t.equal(sent.status, 201);
      const outside = to.filter((a) => !a.startsWith('info@pec.'));
      t.match(sent.body, { status: 'refused', refusal: `${SANDBOX_REFUSAL}: ${outside.join(', ')}` });
      await engine.drain();
      const [row] = await h.database.db.select().from(pecTransactions).where(eq(pecTransactions.pecMessageId, sent.body.pec_message_id));
      const jobs = await h.database.db.select().from(pecJobs).where(eq(pecJobs.dedupeKey, `send_envelope:${row!.id}:${EXTERNAL}`));
      t.same(jobs, [], 'no SMTP job was ever queued');
      const notice = (await stored(h, boxes.testBob, 'receipts')).find((m) => m.pecMessageId === sent.body.pec_message_id)!;
      t.equal(notice.kind, 'non_acceptance');
      const pec = await assertSandboxMessage(t, s, notice.content, `non-acceptance notice (${to.join(', ')})`);
      t.equal(pec.headers.get('x-ricevuta'), 'non-accettazione');
      t.match(pec.daticert, '<postacert tipo="non-accettazione" errore="altro">');
      t.match(pec.text, 'in modalità test (sandbox) i messaggi possono essere indirizzati solo alle caselle di test di questo gestore');
      t.equal((await stored(h, boxes.testInfo, 'inbox')).length, before, 'not even the test recipient got it: the message was not accepted');
    }
    t.same(s.external.arrivals, [], 'nothing reached the external SMTP server');

    // The sink works: the same address from a live mailbox is relayed to it as ordinary mail.
    const live = await liveCarlo.send(boxes.liveCarlo, { to: [`someone@${EXTERNAL}`], subject: 'Posta ordinaria', text: 'live' });
    t.match(live.body, { status: 'accepted', recipients: [{ certified: false }] });
    await engine.drain();
    t.same(s.external.arrivals, [{ mailFrom: boxes.liveCarlo.address, rcptTo: [`someone@${EXTERNAL}`] }], 'only the live message reached it');
  });

  await t.test('a domain certified only in the sandbox is not ours for live mail or for the outside world', async (t) => {
    t.equal(await engine.isLocalDomain('studio-prova.it', false), true);
    t.equal(await engine.isLocalDomain('studio-prova.it', true), false);
    t.equal(await engine.acceptsRecipient(boxes.testAnna.address), false, 'the inbound server refuses it');
    t.notOk((await engine.ownRecord()).managedDomains.includes('studio-prova.it'), 'the published index record lists live domains only');
  });

  await t.test('inbound mail from outside reaches only the live mailbox', async (t) => {
    const transport = nodemailer.createTransport({ host: '127.0.0.1', port: s.smtp.inboundPort, secure: false, ignoreTLS: true });
    const eml = 'From: mario@example.org\r\nTo: info@pec.example.it\r\nSubject: Dall\'esterno\r\nMessage-ID: <esterno-1@example.org>\r\n\r\nCiao.\r\n';
    await transport.sendMail({ envelope: { from: 'mario@example.org', to: ['info@pec.example.it'] }, raw: eml });
    transport.close();
    await engine.drain();
    const live = (await stored(h, boxes.liveInfo, 'inbox')).filter((m) => m.kind === 'anomaly_envelope');
    t.equal(live.length, 1, 'the live mailbox got it, in an anomaly envelope');
    await assertLiveMessage(t, s, live[0]!.content, 'anomaly envelope');
    t.equal((await stored(h, boxes.testInfo, 'inbox')).filter((m) => m.kind === 'anomaly_envelope').length, 0, 'the test mailbox got nothing');

    // A custom domain certified only in test: refused at RCPT, never stored.
    const refused = nodemailer.createTransport({ host: '127.0.0.1', port: s.smtp.inboundPort, secure: false, ignoreTLS: true });
    await t.rejects(refused.sendMail({ envelope: { from: 'mario@example.org', to: [boxes.testAnna.address] }, raw: eml }), /550|553|554|relay|not/i);
    refused.close();
  });

  await t.test('SMTP AUTH: the address signs in the live mailbox, the mbx_ id the test one', async (t) => {
    const submit = async (user: string, password: string, from: string, subject: string, to: string) => {
      const transport = nodemailer.createTransport({
        host: '127.0.0.1', port: s.smtp.submissionPort, secure: false, requireTLS: true, auth: { user, pass: password }, tls: { rejectUnauthorized: false },
      });
      try {
        return await transport.sendMail({ from, to, subject, text: 'via SMTP' });
      } finally {
        transport.close();
      }
    };
    const live = await submit(boxes.liveInfo.address, boxes.liveInfo.password, boxes.liveInfo.address, 'SMTP live', boxes.liveCarlo.address);
    t.match(live.response, /^250 /);
    const test = await submit(boxes.testInfo.id, boxes.testInfo.password, boxes.testInfo.address, 'SMTP test', boxes.testBob.address);
    t.match(test.response, /^250 /);
    await t.rejects(submit(boxes.testInfo.address, boxes.testInfo.password, boxes.testInfo.address, 'SMTP wrong', boxes.testBob.address), /535|Invalid/, 'the address with the test password is the live mailbox\'s wrong password');
    await engine.drain();
    const [liveTx] = await h.database.db.select().from(pecTransactions).where(eq(pecTransactions.subject, 'SMTP live'));
    const [testTx] = await h.database.db.select().from(pecTransactions).where(eq(pecTransactions.subject, 'SMTP test'));
    t.equal(liveTx?.mailboxId, boxes.liveInfo.id, 'the address sent from the live mailbox');
    t.equal(testTx?.mailboxId, boxes.testInfo.id, 'the id sent from the test mailbox');
    t.ok((await stored(h, boxes.testBob, 'inbox')).some((m) => m.subject === 'POSTA CERTIFICATA: SMTP test'), 'delivered in the sandbox');
    t.ok((await stored(h, boxes.liveCarlo, 'inbox')).some((m) => m.subject === 'POSTA CERTIFICATA: SMTP live'), 'delivered live');
    const testReceipts = (await stored(h, boxes.testInfo, 'receipts')).filter((m) => m.pecMessageId === testTx!.pecMessageId);
    t.same(testReceipts.map((m) => m.kind), ['acceptance', 'delivery']);
    for (const receipt of testReceipts) await assertSandboxMessage(t, s, receipt.content, `SMTP ${receipt.kind}`);
  });

  await t.test('REST holder Basic auth: the address is the live mailbox, the mbx_ id either', async (t) => {
    t.equal((await holder(h, boxes.liveInfo.address, boxes.liveInfo.password).list(boxes.liveInfo, 'inbox')).status, 200);
    t.equal((await holder(h, boxes.testInfo.address, boxes.testInfo.password).list(boxes.testInfo, 'inbox')).status, 401, 'the address does not name the test mailbox');
    t.equal((await holder(h, boxes.liveInfo.address, boxes.liveInfo.password).list(boxes.testInfo, 'inbox')).status, 404, 'the live holder cannot open the test mailbox');
    const byId = await holder(h, boxes.testInfo.id, boxes.testInfo.password).list(boxes.testInfo, 'inbox');
    t.equal(byId.status, 200);
    t.ok(byId.body.data.length > 0 && byId.body.data.every((m: { livemode: boolean }) => m.livemode === false));
    t.equal((await holder(h, boxes.liveInfo.id, boxes.liveInfo.password).list(boxes.liveInfo, 'inbox')).status, 200, 'the id works live too');
  });

  await t.test('the log register: a live export never includes test messages', async (t) => {
    const exportOf = async (headers: Record<string, string>, box: Box) => {
      const response = await h.app.inject({ method: 'GET', url: `/v1/mailboxes/${box.id}/log-export?format=json`, headers });
      t.equal(response.statusCode, 200, response.body.slice(0, 200));
      return json<Array<Record<string, unknown>>>(response);
    };
    const testIds = new Set((await h.database.db.select({ id: pecTransactions.pecMessageId }).from(pecTransactions)
      .where(eq(pecTransactions.partnerId, s.partner.test.id))).map((r) => r.id));
    t.ok(testIds.size > 0);
    for (const box of [boxes.liveInfo, boxes.liveCarlo]) {
      const entries = await exportOf(s.partner.headers, box);
      t.ok(entries.length > 0, `${box.address} (live) has entries`);
      t.notOk(entries.some((e) => testIds.has(String(e.message_id)) || JSON.stringify(e).includes('SANDBOX')), `${box.address} (live): no test entry`);
    }
    const testEntries = await exportOf(s.partner.test.headers, boxes.testInfo);
    t.ok(testEntries.length > 0 && testEntries.every((e) => testIds.has(String(e.message_id))), 'the test mailbox export holds test entries only');
    const partnerLog = json(await h.app.inject({ method: 'GET', url: '/v1/log?limit=100', headers: s.partner.headers }));
    t.notOk(partnerLog.data.some((e: { message_id: string }) => testIds.has(e.message_id)), 'the live partner log holds no test entry');
    // The same live mailbox id with the test key is another world's resource: a 404.
    t.equal((await h.app.inject({ method: 'GET', url: `/v1/mailboxes/${boxes.liveInfo.id}/log-export?format=json`, headers: s.partner.test.headers })).statusCode, 404);
  });

  await t.test('scheduled DNS re-checks leave test domains alone', async (t) => {
    h.clock.advance(25 * 3_600_000);
    await h.app.jobs.tick();
    const [row] = await h.database.db.select().from(domains).where(eq(domains.id, 'dom_sandbox_studio_prova'));
    t.match(row, { status: 'certified', lastCheckedAt: null, lastCheck: null }, 'no DNS check was made for the test domain');
  });
});
