import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { format } from 'node:util';
import { and, count, eq, isNull, sql } from 'drizzle-orm';
import nodemailer from 'nodemailer';
import t, { type Test } from 'tap';
import { ManualClock } from '@pec-partner/api';
import { logRegister, mailboxMessages, pecInboundMessages, pecJobs, pecRecipients, pecTransactions, type MailboxFolder, type StoredMessageKind } from '@pec-partner/db';
import { createProviderIdentity } from '../api/src/pec/identity.ts';
import { inspectPecMessage } from '../api/src/pec/inspect.ts';
import { verifyLogChain } from '../api/src/pec/log-register.ts';
import { buildTransportEnvelope, newPecMessageId, signAndAssemble, toPostacert } from '../api/src/pec/messages/index.ts';
import { toLdif } from '../api/src/pec/provider-index.ts';
import { createSigner } from '../api/src/pec/smime.ts';
import { startSmtpServers, type SmtpServers } from '../api/src/pec/smtp-servers.ts';
import { loadOrCreateTls } from '../api/src/pec/tls.ts';
import { EICAR_TEST_FILE, type VirusScanner } from '../api/src/pec/virus-scanner.ts';
import { api } from './helpers/fixtures.ts';
import { harness, type Harness } from './helpers/harness.ts';
import { opensslVerify, parsePec, validateDaticert } from './helpers/pec.ts';

const HOURS = 3_600_000;

/** One self-signed certificate for every SMTP server of the file: peers do not verify it (PEC_SMTP_VERIFY_TLS=false). */
const smtpTls = loadOrCreateTls({ certificateFile: undefined, privateKeyFile: undefined }, ['localhost']);

interface Mailbox {
  id: string;
  address: string;
  password: string;
}

/** What reached a provider's inbound SMTP server, and whether the channel was encrypted. */
interface Arrival {
  mailFrom: string;
  rcptTo: string[];
  secure: boolean;
}

interface Provider {
  name: string;
  domain: string;
  h: Harness;
  smtp: SmtpServers;
  /** The CA of the provider's signing certificate: what openssl checks its signatures against. */
  ca: string;
  arrivals: Arrival[];
  open(address: string): Promise<Mailbox>;
  suspend(mailbox: Mailbox): Promise<void>;
}

/** Loopback ports nothing listens on, held together while they are picked so that they differ. */
async function freePorts(n: number): Promise<number[]> {
  const servers = Array.from({ length: n }, () => net.createServer().listen(0, '127.0.0.1'));
  await Promise.all(servers.map((server) => once(server, 'listening')));
  const ports = servers.map((server) => (server.address() as net.AddressInfo).port);
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}

/**
 * Two providers, Alfa and Beta, each with its own database, domains, signing identity and SMTP servers, on one
 * clock. Each lists the other in its provider index and routes two of the other's domains (`pec.` and
 * `postacert.`) to the other's inbound port. The third domain (`guasto.`), seen from the other provider, points
 * to a closed port: mail for it is certified (the index lists the domain) but cannot be handed over.
 */
async function providers(t: Test, options: { alfaScanner?: VirusScanner } = {}): Promise<{ alfa: Provider; beta: Provider; clock: ManualClock }> {
  const clock = new ManualClock('2026-11-22T09:00:00Z');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pec-smtp-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  // The configuration (routes) is read when an app is built, before either server listens.
  const [alfaPort, betaPort, closedPort] = (await freePorts(3)) as [number, number, number];
  const domains = (name: string) => [`pec.${name}.it`, `postacert.${name}.it`, `guasto.${name}.it`];
  const routes = (peer: string, port: number) => {
    const [main, second, broken] = domains(peer);
    return `${main}=127.0.0.1:${port},${second}=127.0.0.1:${port},${broken}=127.0.0.1:${closedPort}`;
  };
  const specs = [
    { name: 'Alfa PEC S.p.A.', domains: domains('alfa'), port: alfaPort, routes: routes('beta', betaPort), scanner: options.alfaScanner },
    { name: 'Beta PEC S.p.A.', domains: domains('beta'), port: betaPort, routes: routes('alfa', alfaPort), scanner: undefined },
  ];
  const built = await Promise.all(specs.map(async (spec) => {
    const index = path.join(dir, `${spec.domains[0]}.ldif`);
    const h = await harness(t, {
      clock,
      scanner: spec.scanner,
      env: {
        PROVIDER_DOMAINS: spec.domains.join(','),
        PEC_PROVIDER_NAME: spec.name,
        PEC_PROVIDER_INDEX_FILE: index,
        PEC_SMTP_ROUTES: spec.routes,
        PEC_SMTP_VERIFY_TLS: 'false',
      },
    });
    return { spec, h, index };
  }));
  // The index is read on first use: written now, it holds the peer's identity as the peer generated it.
  for (const [mine, peer] of [[built[0]!, built[1]!], [built[1]!, built[0]!]] as const) {
    await writeFile(mine.index, toLdif(await peer.h.app.pec.ownRecord()));
  }
  const [alfa, beta] = await Promise.all(built.map(async ({ spec, h }): Promise<Provider> => {
    const engine = h.app.pec;
    const arrivals: Arrival[] = [];
    // The engine itself, observed on the way in: the channel of each arrival is not kept anywhere else.
    const smtp = await startSmtpServers(h.database.db, {
      submitRaw: (holder, raw, envelope) => engine.submitRaw(holder, raw, envelope),
      receive: (raw, envelope, transport) => {
        arrivals.push({ ...envelope, secure: transport.secure });
        return engine.receive(raw, envelope);
      },
      acceptsRecipient: (address) => engine.acceptsRecipient(address),
      maxMessageBytes: () => engine.maxMessageBytes(),
    }, {
      host: '127.0.0.1', submissionPort: 0, submissionTlsPort: 0, inboundPort: spec.port, serverName: `mx.${spec.domains[0]}`,
      tls: await smtpTls,
    });
    t.teardown(() => smtp.close());
    const a = api(h, await h.partner());
    await a.topUp(50_000);
    const customer = await a.customer();
    return {
      name: spec.name,
      domain: spec.domains[0]!,
      h,
      smtp,
      ca: (await engine.identity()).caCertificatePem,
      arrivals,
      open: async (address) => {
        const [local, domain] = address.split('@');
        const password = `${local}-password-2026`;
        const created = await a.post('/v1/mailboxes', { local_part: local, domain, customer, plan: 'pro', password });
        if (created.status !== 201) throw new Error(JSON.stringify(created.body));
        return { id: created.body.id, address, password };
      },
      suspend: async (mailbox) => {
        const suspended = await a.post(`/v1/mailboxes/${mailbox.id}/suspend`);
        if (suspended.status !== 200) throw new Error(JSON.stringify(suspended.body));
      },
    };
  }));
  return { alfa: alfa!, beta: beta!, clock };
}

/** Runs both queues until neither has due work: a job on one side often gives the other side work over SMTP. */
async function settle(...all: Provider[]): Promise<void> {
  for (let round = 0; round < 20; round++) {
    let ran = 0;
    for (const provider of all) ran += await provider.h.app.pec.drain();
    if (ran === 0) return;
  }
  throw new Error('the queues never settled');
}

/** A mailbox's messages (null: the provider's service mailbox), optionally of one folder and kind, oldest first. */
async function stored(p: Provider, mailbox: Mailbox | null, filter: { folder?: MailboxFolder; kind?: StoredMessageKind } = {}) {
  return p.h.database.db.select().from(mailboxMessages)
    .where(and(
      mailbox ? eq(mailboxMessages.mailboxId, mailbox.id) : isNull(mailboxMessages.mailboxId),
      filter.folder ? eq(mailboxMessages.folder, filter.folder) : undefined,
      filter.kind ? eq(mailboxMessages.kind, filter.kind) : undefined,
    ))
    .orderBy(mailboxMessages.storedAt, mailboxMessages.id);
}

async function transactionOf(p: Provider, sender: Mailbox, subject: string) {
  const [row] = await p.h.database.db.select().from(pecTransactions).where(and(eq(pecTransactions.sender, sender.address), eq(pecTransactions.subject, subject)));
  if (!row) throw new Error(`no transaction '${subject}' from ${sender.address}`);
  const recipients = await p.h.database.db.select().from(pecRecipients).where(eq(pecRecipients.transactionId, row.id)).orderBy(pecRecipients.address);
  return { ...row, recipients };
}

async function logOf(p: Provider, pecMessageId: string): Promise<string[]> {
  const rows = await p.h.database.db.select({ event: logRegister.event }).from(logRegister).where(eq(logRegister.messageId, pecMessageId)).orderBy(logRegister.seq);
  return rows.map((r) => r.event);
}

async function totals(p: Provider): Promise<{ messages: number; log: number }> {
  const [messages] = await p.h.database.db.select({ n: count() }).from(mailboxMessages);
  const [log] = await p.h.database.db.select({ n: count() }).from(logRegister);
  return { messages: messages!.n, log: log!.n };
}

/** A system message: signed by the expected provider (openssl, against its CA only), daticert valid against the DTD. */
async function assertSignedBy(t: Test, raw: Buffer, signer: Provider, other: Provider, label: string) {
  const verified = await opensslVerify(raw, signer.ca);
  t.ok(verified.ok, `${label}: signed by ${signer.name} (${verified.output.trim()})`);
  t.notOk((await opensslVerify(raw, other.ca)).ok, `${label}: not verifiable against ${other.name}'s CA`);
  const pec = await parsePec(raw);
  if (pec.daticert !== null) {
    const validity = await validateDaticert(pec.daticert);
    t.ok(validity.valid, `${label}: daticert.xml valid against the DTD ${validity.errors.join(' ')}`);
  }
  return pec;
}

/** The delivery receipt about one recipient, told apart by its daticert `consegna`. */
async function deliveryReceiptFor<M extends { kind: string; content: Buffer }>(messages: M[], recipient: Mailbox): Promise<M> {
  for (const message of messages) {
    if (message.kind === 'delivery' && (await parsePec(message.content)).daticert?.includes(`<consegna>${recipient.address}</consegna>`)) return message;
  }
  throw new Error(`no delivery receipt for ${recipient.address}`);
}

/** A holder's mail client: STARTTLS with AUTH PLAIN, or implicit TLS with AUTH LOGIN. Lines it sends are kept. */
function mailClient(p: Provider, mailbox: Pick<Mailbox, 'address' | 'password'>, mode: 'starttls' | 'tls' = 'starttls') {
  const sent: string[] = [];
  const keep = (entry: { tnx?: string }, message: string, ...args: unknown[]) => {
    if (entry.tnx === 'client') sent.push(format(message, ...args));
  };
  const ignore = () => undefined;
  const transport = nodemailer.createTransport({
    host: '127.0.0.1',
    port: mode === 'tls' ? p.smtp.submissionTlsPort : p.smtp.submissionPort,
    secure: mode === 'tls',
    requireTLS: mode === 'starttls',
    auth: { user: mailbox.address, pass: mailbox.password },
    authMethod: mode === 'tls' ? 'LOGIN' : 'PLAIN',
    // The servers' certificate is self-signed.
    tls: { rejectUnauthorized: false },
    debug: true,
    logger: { level: ignore, trace: ignore, debug: keep, info: keep, warn: ignore, error: ignore, fatal: ignore },
  });
  return {
    sent,
    send: async (message: nodemailer.SendMailOptions) => {
      try {
        return await transport.sendMail(message);
      } finally {
        transport.close();
      }
    },
  };
}

/** Sends a message to a provider's inbound port as another server would: in clear or with STARTTLS. */
async function deliverInbound(p: Provider, message: { from: string; to: string[]; raw: Buffer | string }, tls: boolean) {
  const transport = nodemailer.createTransport({
    host: '127.0.0.1', port: p.smtp.inboundPort, secure: false, ignoreTLS: !tls, requireTLS: tls, tls: { rejectUnauthorized: false },
  });
  try {
    return await transport.sendMail({ envelope: { from: message.from, to: message.to }, raw: message.raw });
  } finally {
    transport.close();
  }
}

/** A bare SMTP session, for replies nodemailer does not show: each command resolves with the server's whole reply. */
async function smtpSession(port: number) {
  const socket = net.connect(port, '127.0.0.1');
  socket.setEncoding('latin1');
  let buffer = '';
  const waiting: Array<(reply: string) => void> = [];
  socket.on('data', (chunk: string) => {
    buffer += chunk;
    // A reply is complete at its "NNN text" line; the lines before it are "NNN-text".
    for (let match; (match = /^(?:\d{3}-[^\r\n]*\r\n)*\d{3}(?: [^\r\n]*)?\r\n/.exec(buffer)); ) {
      buffer = buffer.slice(match[0].length);
      waiting.shift()?.(match[0]);
    }
  });
  const reply = () => new Promise<string>((resolve) => waiting.push(resolve));
  const greeting = await reply();
  return {
    greeting,
    command(line: string): Promise<string> {
      const answer = reply();
      socket.write(`${line}\r\n`);
      return answer;
    },
    close: () => socket.destroy(),
  };
}

t.test('two providers over SMTP: envelopes, take-charge and delivery receipts cross in both directions', async (t) => {
  const { alfa, beta } = await providers(t);
  const alice = await alfa.open('alice@pec.alfa.it');
  const bob = await beta.open('bob@pec.beta.it');
  const carol = await beta.open('carol@pec.beta.it');
  const frank = await beta.open('frank@postacert.beta.it');

  // Two of Beta's domains: Alfa hands the envelope over in two SMTP transactions, one per domain.
  const toBeta = await mailClient(alfa, alice).send({
    from: alice.address, to: [bob.address, frank.address], cc: carol.address, subject: 'Contratto di fornitura — firma', text: 'Buongiorno,\nin allegato il contratto.',
    attachments: [{ filename: 'contratto.pdf', content: Buffer.from('%PDF-1.4 contratto\n'), contentType: 'application/pdf' }],
  });
  t.match(toBeta.response, /^250 /, 'Alfa accepted the submission');
  const toAlfa = await mailClient(beta, bob).send({ from: bob.address, to: alice.address, subject: 'Risposta', text: 'Ricevuto, grazie.' });
  t.match(toAlfa.response, /^250 /);
  await settle(alfa, beta);

  for (const [sender, box, receiver, subject, addressees] of [
    [alfa, alice, beta, 'Contratto di fornitura — firma', [bob, carol, frank]],
    [beta, bob, alfa, 'Risposta', [alice]],
  ] as const) {
    const label = `${sender.domain} → ${receiver.domain}`;
    const tx = await transactionOf(sender, box, subject);
    t.same(tx.recipients.map((r) => [r.address, r.certified, r.status]), addressees.map((r) => [r.address, true, 'delivered']).sort(), `${label}: every recipient delivered`);

    // The sender: acceptance from its own provider, then one delivery receipt per recipient from the other.
    const receipts = await stored(sender, box, { folder: 'receipts' });
    t.same(receipts.map((m) => m.kind), ['acceptance', ...addressees.map(() => 'delivery')], `${label}: receipts stored once each`);
    const acceptance = await assertSignedBy(t, receipts[0]!.content, sender, receiver, `${label} acceptance`);
    t.match(acceptance.daticert, /<postacert tipo="accettazione" errore="nessuno">/);
    for (const recipient of addressees) {
      const receipt = await deliveryReceiptFor(receipts, recipient);
      const pec = await assertSignedBy(t, receipt.content, receiver, sender, `${label} delivery receipt for ${recipient.address}`);
      t.equal(pec.headers.get('x-ricevuta'), 'avvenuta-consegna');
      t.equal(pec.headers.get('from'), `posta-certificata@${receiver.domain}`);
      t.equal(pec.headers.get('to'), box.address);
      t.match(pec.daticert, `<identificativo>${tx.pecMessageId}</identificativo>`);
      t.match(pec.daticert, `<gestore-emittente>${receiver.name}</gestore-emittente>`);
      t.equal(receipt.subject, `CONSEGNA: ${subject}`);
      // Handed over unmodified: byte for byte what the receiving provider signed and kept.
      const [copy] = (await stored(receiver, null, { folder: 'sent', kind: 'delivery' })).filter((m) => m.messageId === receipt.messageId);
      t.ok(copy?.content.equals(receipt.content), `${label}: the receipt arrived as ${receiver.name} sent it`);
    }

    // The sending provider's service mailbox: a take-charge receipt per SMTP transaction (spec §4.6), together
    // covering every recipient.
    const transactions = new Set(addressees.map((r) => r.address.split('@')[1])).size;
    const takeCharge = (await stored(sender, null, { folder: 'inbox', kind: 'take_charge' })).filter((m) => m.pecMessageId === tx.pecMessageId);
    t.equal(takeCharge.length, transactions, `${label}: ${transactions} take-charge receipt(s)`);
    const covered: string[] = [];
    for (const receipt of takeCharge) {
      const presa = await assertSignedBy(t, receipt.content, receiver, sender, `${label} take-charge`);
      t.equal(presa.headers.get('x-ricevuta'), 'presa-in-carico');
      t.equal(presa.headers.get('to'), `posta-certificata@${sender.domain}`);
      covered.push(...[...presa.daticert!.matchAll(/<ricezione>([^<]+)<\/ricezione>/g)].map((m) => m[1]!));
    }
    t.same(covered.sort(), addressees.map((r) => r.address).sort(), `${label}: every recipient covered once`);
    t.ok(tx.recipients.every((r) => r.takenInChargeAt !== null), `${label}: take-charge recorded`);

    // The recipients: the envelope as the sending provider signed it, nothing else.
    const outbound = (await stored(sender, null, { folder: 'sent', kind: 'transport_envelope' })).filter((m) => m.pecMessageId === tx.pecMessageId);
    t.equal(outbound.length, transactions, `${label}: the provider keeps what it handed over`);
    for (const recipient of addressees) {
      const inbox = await stored(receiver, recipient, { folder: 'inbox' });
      t.same(inbox.map((m) => m.kind), ['transport_envelope'], `${label}: ${recipient.address} got the envelope once`);
      const envelope = await assertSignedBy(t, inbox[0]!.content, sender, receiver, `${label} envelope for ${recipient.address}`);
      t.equal(envelope.headers.get('x-trasporto'), 'posta-certificata');
      t.equal(envelope.headers.get('from'), `"Per conto di: ${box.address}" <posta-certificata@${sender.domain}>`);
      t.equal(envelope.headers.get('message-id'), `<${tx.pecMessageId}>`);
      t.equal(inbox[0]!.subject, `POSTA CERTIFICATA: ${subject}`);
      t.ok(outbound.some((m) => m.content.equals(inbox[0]!.content)), `${label}: delivered unmodified`);
    }

    // Both log registers, each for its own part of the transaction (receipts may arrive in any order).
    const times = (event: string, n: number) => Array<string>(n).fill(event);
    const senderLog = await logOf(sender, tx.pecMessageId);
    t.equal(senderLog[0], 'Accettazione');
    t.same(senderLog.sort(), ['Accettazione', ...times('BustaTrasporto', transactions), ...times('PresaInCarico', transactions), ...times('Consegna', addressees.length)].sort(), `${label}: sender's log`);
    t.same((await logOf(receiver, tx.pecMessageId)).sort(), [...times('PresaInCarico', transactions), ...times('Consegna', addressees.length)].sort(), `${label}: receiver's log`);
  }
  const aliceReceipts = await stored(alfa, alice, { kind: 'delivery' });
  t.equal((await parsePec((await deliveryReceiptFor(aliceReceipts, carol)).content)).postacert, null, 'carol was in Cc: a summary receipt');
  t.match((await parsePec((await deliveryReceiptFor(aliceReceipts, bob)).content)).postacert?.toString('latin1'), /contratto\.pdf/, 'bob was in To: a full receipt');

  // Every hop between the providers was encrypted: three envelopes, three take-charge and four delivery receipts.
  t.equal(alfa.arrivals.length + beta.arrivals.length, 10);
  t.ok([...alfa.arrivals, ...beta.arrivals].every((a) => a.secure), 'STARTTLS on every provider-to-provider connection');
  t.match(beta.arrivals, [{ mailFrom: alice.address, rcptTo: [bob.address, carol.address] }], 'routing unchanged: reverse-path is the original sender');
  for (const p of [alfa, beta]) t.same(await verifyLogChain(p.h.database.db), { ok: true, entries: (await totals(p)).log }, `${p.name}: log chain intact`);

  // A crash after any step repeats it, on either side: rerunning every job stores, sends and logs nothing twice.
  const before = await Promise.all([alfa, beta].map(totals));
  for (const p of [alfa, beta]) await p.h.database.db.execute(sql`update pec_jobs set done_at = null, run_at = ${p.h.clock.now().toISOString()}::timestamptz`);
  await settle(alfa, beta);
  t.same(await Promise.all([alfa, beta].map(totals)), before, 'nothing stored or logged twice');
  for (const p of [alfa, beta]) {
    const [open] = await p.h.database.db.select({ n: count() }).from(pecJobs).where(isNull(pecJobs.doneAt));
    t.equal(open!.n, 0, `${p.name}: every job done`);
  }
});

t.test('submission over SMTP: TLS and authentication required, access point checks answered with notices, suspended mailbox refused', async (t) => {
  const { alfa, beta } = await providers(t);
  const alice = await alfa.open('alice@pec.alfa.it');
  const dave = await alfa.open('dave@pec.alfa.it');
  const erin = await alfa.open('erin@pec.alfa.it');

  // STARTTLS then AUTH PLAIN, and implicit TLS with AUTH LOGIN: both reach the access point.
  const starttls = mailClient(alfa, alice, 'starttls');
  t.match((await starttls.send({ from: alice.address, to: dave.address, subject: 'Via STARTTLS', text: 'Uno.' })).response, /^250 /);
  t.ok(starttls.sent.includes('STARTTLS') && starttls.sent.some((line) => line.startsWith('AUTH PLAIN')), 'STARTTLS, then AUTH PLAIN');
  t.ok(starttls.sent.indexOf('STARTTLS') < starttls.sent.findIndex((line) => line.startsWith('AUTH')), 'no credentials before TLS');
  const implicit = mailClient(alfa, alice, 'tls');
  t.match((await implicit.send({ from: alice.address, to: dave.address, subject: 'Via TLS', text: 'Due.' })).response, /^250 /);
  t.ok(implicit.sent.some((line) => line.startsWith('AUTH LOGIN')) && !implicit.sent.includes('STARTTLS'), 'AUTH LOGIN on the TLS port');
  await settle(alfa, beta);
  t.same((await stored(alfa, dave, { folder: 'inbox' })).map((m) => m.subject), ['POSTA CERTIFICATA: Via STARTTLS', 'POSTA CERTIFICATA: Via TLS']);
  t.same((await stored(alfa, alice, { folder: 'receipts' })).map((m) => m.subject).sort(), ['ACCETTAZIONE: Via STARTTLS', 'ACCETTAZIONE: Via TLS', 'CONSEGNA: Via STARTTLS', 'CONSEGNA: Via TLS']);

  // In clear, AUTH is neither offered nor accepted, and without it there is no MAIL.
  const clear = await smtpSession(alfa.smtp.submissionPort);
  t.match(clear.greeting, /^220 /);
  const ehlo = await clear.command('EHLO client.example');
  t.match(ehlo, /STARTTLS/);
  t.notMatch(ehlo, /AUTH/, 'AUTH not announced before TLS');
  t.match(await clear.command(`AUTH PLAIN ${Buffer.from(`\0${alice.address}\0${alice.password}`).toString('base64')}`), /^5\d\d /, 'AUTH refused before TLS');
  t.match(await clear.command(`MAIL FROM:<${alice.address}>`), /^530 /, 'no mail without authentication');
  clear.close();

  const wrong = await mailClient(alfa, { address: alice.address, password: 'not-the-password' }).send({ from: alice.address, to: dave.address, subject: 'x', text: 'y' })
    .then(() => null, (error: { responseCode?: number }) => error);
  t.equal(wrong?.responseCode, 535, 'wrong password: 535');

  // What the access point checks (spec §4.1) is accepted by SMTP and answered with a non-acceptance notice.
  const eml = (headers: string) => `${headers}\r\nSubject: Controlli\r\nMessage-ID: <${Math.random().toString(36).slice(2)}@client>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nTesto.\r\n`;
  const otherFrom = await mailClient(alfa, alice).send({ envelope: { from: dave.address, to: [dave.address] }, raw: eml(`From: ${alice.address}\r\nTo: ${dave.address}`) });
  t.match(otherFrom.response, /^250 /, 'MAIL FROM other than From: accepted by SMTP');
  const withBcc = await mailClient(alfa, alice).send({ envelope: { from: alice.address, to: [dave.address, erin.address] }, raw: eml(`From: ${alice.address}\r\nTo: ${dave.address}\r\nBcc: ${erin.address}`) });
  t.match(withBcc.response, /^250 /, 'Bcc: accepted by SMTP');
  await settle(alfa, beta);
  const notices = (await stored(alfa, alice, { folder: 'receipts' })).slice(4);
  t.same(notices.map((m) => [m.kind, m.subject]), [['non_acceptance', 'AVVISO DI NON ACCETTAZIONE: Controlli'], ['non_acceptance', 'AVVISO DI NON ACCETTAZIONE: Controlli']]);
  for (const notice of notices) {
    const pec = await assertSignedBy(t, notice.content, alfa, beta, 'non-acceptance');
    t.equal(pec.headers.get('x-ricevuta'), 'non-accettazione');
    t.match(pec.daticert, /tipo="non-accettazione" errore="altro"/);
  }
  t.match((await parsePec(notices[0]!.content)).daticert, /<errore-esteso>[^<]*\(MAIL FROM\) non coincide con il campo From/);
  t.match((await parsePec(notices[1]!.content)).daticert, /<errore-esteso>[^<]*Bcc/);
  t.equal((await stored(alfa, dave, { folder: 'inbox' })).length, 2, 'nothing refused was delivered');
  t.equal((await stored(alfa, erin, { folder: 'inbox' })).length, 0);

  // A suspended mailbox may sign in (to read) but not send: a permanent SMTP refusal, nothing recorded.
  await alfa.suspend(erin);
  const suspended = await mailClient(alfa, erin).send({ from: erin.address, to: dave.address, subject: 'Sospesa', text: 'z' })
    .then(() => null, (error: { responseCode?: number; response?: string }) => error);
  t.equal(suspended?.responseCode, 550, 'suspended mailbox: 550');
  t.match(suspended?.response, /suspended/);
  t.equal((await alfa.h.database.db.select({ n: count() }).from(pecTransactions).where(eq(pecTransactions.sender, erin.address)))[0]!.n, 0);
});

t.test('receiving point: ordinary mail and envelopes from unlisted providers arrive in anomaly envelopes; no relay', async (t) => {
  const { alfa, beta } = await providers(t);
  const bob = await beta.open('bob@pec.beta.it');

  // Ordinary Internet mail, in clear (the receiving point must accept it, spec §9).
  const ordinary = 'From: Mario Rossi <mario.rossi@posta.example>\r\nTo: bob@pec.beta.it\r\nSubject: Saluti\r\nMessage-ID: <saluti-1@posta.example>\r\n' +
    'Date: Sun, 22 Nov 2026 10:00:00 +0100\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nCiao Bob, ti scrivo da una casella ordinaria.\r\n';
  t.match((await deliverInbound(beta, { from: 'mario.rossi@posta.example', to: [bob.address], raw: ordinary }, false)).response, /^250 /);

  // A well-formed transport envelope, signed by a provider that is not in the index.
  const at = new Date('2026-11-22T09:00:00Z');
  const gamma = { name: 'Gamma PEC S.p.A.', domain: 'pec.gamma.it' };
  const original = Buffer.from('From: gianni@pec.gamma.it\r\nTo: bob@pec.beta.it\r\nSubject: Offerta\r\nMessage-ID: <offerta-1@pec.gamma.it>\r\n' +
    'Date: Sun, 22 Nov 2026 10:00:00 +0100\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nLa nostra offerta.\r\n');
  const pecMessageId = newPecMessageId(gamma.domain, at);
  const envelope = await buildTransportEnvelope(
    { provider: gamma, at, pecMessageId, originalMessageId: '<offerta-1@pec.gamma.it>', sender: 'gianni@pec.gamma.it', recipients: [{ address: bob.address, type: 'certificato', header: 'To' }], subject: 'Offerta', receiptType: 'completa' },
    { original: toPostacert(original, { pecMessageId, originalMessageId: '<offerta-1@pec.gamma.it>' }) },
  );
  const gammaSigner = await createSigner(await createProviderIdentity({ providerName: gamma.name, domain: gamma.domain, now: at }));
  t.match((await deliverInbound(beta, { from: 'gianni@pec.gamma.it', to: [bob.address], raw: await signAndAssemble(envelope, gammaSigner) }, true)).response, /^250 /);

  // One transaction may name as many recipients as an access point allows (500 by default).
  const crowd = [bob.address, ...Array.from({ length: 499 }, (_, i) => `destinatario.${i}.${randomBytes(4).toString('hex')}@pec.beta.it`)];
  const circular = 'From: ufficio@posta.example\r\nTo: undisclosed-recipients:;\r\nSubject: Circolare\r\nMessage-ID: <circolare-1@posta.example>\r\n\r\nA tutti.\r\n';
  t.match((await deliverInbound(beta, { from: 'ufficio@posta.example', to: crowd, raw: circular }, true)).response, /^250 /, '500 recipients in one transaction');
  t.same(beta.arrivals.map((a) => a.secure), [false, true, true]);
  await settle(alfa, beta);

  const inbox = await stored(beta, bob, { folder: 'inbox' });
  t.same(inbox.map((m) => [m.kind, m.subject]), [
    ['anomaly_envelope', 'ANOMALIA MESSAGGIO: Saluti'], ['anomaly_envelope', 'ANOMALIA MESSAGGIO: POSTA CERTIFICATA: Offerta'], ['anomaly_envelope', 'ANOMALIA MESSAGGIO: Circolare'],
  ]);
  for (const [i, [message, received]] of ([[inbox[0]!, 'ti scrivo da una casella ordinaria'], [inbox[1]!, 'La nostra offerta.']] as const).entries()) {
    const pec = await assertSignedBy(t, message.content, beta, alfa, `anomaly ${i}`);
    t.equal(pec.headers.get('x-trasporto'), 'errore');
    t.equal(pec.headers.get('x-ricevuta'), undefined);
    // Its own parts are the text and the received message (which, for an envelope, has its own daticert.xml).
    const inspection = await inspectPecMessage(message.content);
    t.match(inspection, { classification: { kind: 'anomaly-envelope' }, daticert: { status: 'absent' } }, 'no daticert.xml in an anomaly envelope');
    t.match(inspection.postacert?.toString('utf8'), received, 'the received message is inside');
  }
  t.equal((await parsePec(inbox[0]!.content)).headers.get('from'), '"Per conto di: mario.rossi@posta.example" <posta-certificata@pec.beta.it>');
  t.match((await parsePec(inbox[0]!.content)).text, /seguente errore:\s+il messaggio non è un messaggio di posta certificata/);
  t.match((await parsePec(inbox[1]!.content)).text, /seguente errore:\s+la firma non è di un gestore presente nell'indice/);
  t.same(await stored(beta, null), [], 'no take-charge receipt for what is not a valid envelope');
  t.same(alfa.arrivals, [], 'nothing sent back to anyone');
  t.same((await beta.h.database.db.select({ event: logRegister.event }).from(logRegister)).map((r) => r.event), ['BustaAnomalia', 'BustaAnomalia', 'BustaAnomalia'], 'logged for existing mailboxes only');

  // Mail for domains that are not Beta's is refused at RCPT: no open relay, even for another PEC provider.
  const session = await smtpSession(beta.smtp.inboundPort);
  await session.command('EHLO mx.posta.example');
  t.match(await session.command('MAIL FROM:<mario.rossi@posta.example>'), /^250 /);
  t.match(await session.command('RCPT TO:<someone@elsewhere.example>'), /^550 /, 'relay to a foreign domain refused');
  t.match(await session.command('RCPT TO:<alice@pec.alfa.it>'), /^550 /, 'relay to another provider refused');
  t.match(await session.command(`RCPT TO:<${bob.address}>`), /^250 /, 'own recipients accepted');
  session.close();
});

t.test('delivery timers (spec §4.5): a provider that cannot be reached, and one that takes charge but never confirms delivery', async (t) => {
  const { alfa, beta, clock } = await providers(t);
  const alice = await alfa.open('alice@pec.alfa.it');
  // Beta cannot reach guasto.alfa.it: the delivery receipt for dave's message never leaves Beta.
  const dave = await alfa.open('dave@guasto.alfa.it');
  const bob = await beta.open('bob@pec.beta.it');

  // Alfa cannot reach guasto.beta.it, which the index lists as Beta's.
  await mailClient(alfa, alice).send({ from: alice.address, to: 'zoe@guasto.beta.it', subject: 'Irraggiungibile', text: 'Uno.' });
  await mailClient(alfa, dave).send({ from: dave.address, to: bob.address, subject: 'Solo presa in carico', text: 'Due.' });
  await settle(alfa, beta);
  const unreachable = await transactionOf(alfa, alice, 'Irraggiungibile');
  t.match(unreachable.recipients, [{ address: 'zoe@guasto.beta.it', certified: true, status: 'pending' }]);
  const [sendJob] = await alfa.h.database.db.select().from(pecJobs).where(eq(pecJobs.dedupeKey, `send_envelope:${unreachable.id}:guasto.beta.it`));
  t.match(sendJob, { doneAt: null, lastError: /ECONNREFUSED/ }, 'the envelope waits in the queue after a transient failure');
  t.match((await transactionOf(alfa, dave, 'Solo presa in carico')).recipients, [{ address: bob.address, status: 'taken_in_charge' }]);
  t.equal((await stored(beta, bob, { folder: 'inbox' })).length, 1, 'bob has the envelope');

  /** What each sender got after its acceptance receipt. */
  const after = async (box: Mailbox) => (await stored(alfa, box, { folder: 'receipts' })).slice(1);
  const notices = async () => ({ alice: await after(alice), dave: await after(dave) });
  clock.advance(12 * HOURS - 60_000);
  await settle(alfa, beta);
  t.match(await notices(), { alice: [], dave: [] }, 'nothing before 12 hours');

  clock.advance(60_000);
  await settle(alfa, beta);
  const at12 = await notices();
  t.same(at12.alice.map((m) => [m.kind, m.subject]), [['delay_warning', 'AVVISO DI MANCATA CONSEGNA PER SUP. TEMPO MASSIMO: Irraggiungibile']], '12 h: a delay warning where nothing arrived');
  t.same(at12.dave, [], '12 h: nothing where the take-charge receipt arrived');
  const warning = await assertSignedBy(t, at12.alice[0]!.content, alfa, beta, 'delay warning');
  t.equal(warning.headers.get('x-ricevuta'), 'preavviso-errore-consegna');
  t.equal(warning.headers.get('to'), alice.address);
  t.match(warning.daticert, /tipo="preavviso-errore-consegna"[\s\S]*<consegna>zoe@guasto\.beta\.it<\/consegna>[\s\S]*4\.4\.1/);
  t.match(warning.text, /12 ore/);

  clock.advance(12 * HOURS);
  await settle(alfa, beta);
  const at24 = await notices();
  t.same(at24.alice.map((m) => m.kind), ['delay_warning', 'timeout'], '24 h: the final notice');
  t.same(at24.dave.map((m) => [m.kind, m.subject]), [['timeout', 'AVVISO DI MANCATA CONSEGNA PER SUP. TEMPO MASSIMO: Solo presa in carico']], '24 h: only the final notice after a take-charge');
  for (const [notice, recipient] of [[at24.alice[1]!, 'zoe@guasto.beta.it'], [at24.dave[0]!, bob.address]] as const) {
    const pec = await assertSignedBy(t, notice.content, alfa, beta, `timeout for ${recipient}`);
    t.equal(pec.headers.get('x-ricevuta'), 'preavviso-errore-consegna');
    t.match(pec.daticert, new RegExp(`<consegna>${recipient.replace(/\./g, '\\.')}</consegna>[\\s\\S]*5\\.4\\.1`));
    t.match(pec.text, /24 ore/);
  }
  t.same(await logOf(alfa, unreachable.pecMessageId), ['Accettazione', 'MancataConsegna12h', 'MancataConsegna24h']);

  // After 24 hours the transaction is over (spec §4.5) and nothing stays queued longer (RFC 6109 §2.2.2): even
  // with both unreachable domains back, neither the envelope nor the stuck delivery receipt is sent any more.
  alfa.h.app.pec.config.pec.smtp.routes.set('guasto.beta.it', { host: '127.0.0.1', port: beta.smtp.inboundPort });
  beta.h.app.pec.config.pec.smtp.routes.set('guasto.alfa.it', { host: '127.0.0.1', port: alfa.smtp.inboundPort });
  const arrivals = alfa.arrivals.length + beta.arrivals.length;
  clock.advance(3 * 24 * HOURS);
  await settle(alfa, beta);
  t.same(await notices(), at24, 'nothing more afterwards');
  t.equal(alfa.arrivals.length + beta.arrivals.length, arrivals, 'nothing sent after the 24 hours');
  for (const p of [alfa, beta]) {
    const [open] = await p.h.database.db.select({ n: count() }).from(pecJobs).where(isNull(pecJobs.doneAt));
    t.equal(open!.n, 0, `${p.name}: nothing left in the queue`);
  }
});

t.test('a virus inside an envelope from another provider: detection notice to the sending provider, non-delivery for virus to the sender', async (t) => {
  // Alfa's access point misses the virus (spec §4.8: "the sending provider MUST then review its own antivirus").
  const { alfa, beta, clock } = await providers(t, { alfaScanner: { scan: async () => null } });
  const alice = await alfa.open('alice@pec.alfa.it');
  const bob = await beta.open('bob@pec.beta.it');

  await mailClient(alfa, alice).send({
    from: alice.address, to: bob.address, subject: 'Fattura', text: 'In allegato la fattura.',
    attachments: [{ filename: 'fattura.com', content: Buffer.from(EICAR_TEST_FILE), contentType: 'application/octet-stream' }],
  });
  await settle(alfa, beta);
  const tx = await transactionOf(alfa, alice, 'Fattura');
  t.equal(tx.status, 'accepted');

  // Beta took the valid envelope in charge, found the virus, kept the envelope aside and did not deliver it.
  t.same(await stored(beta, bob), [], 'not delivered');
  t.same((await stored(beta, null, { folder: 'archive' })).map((m) => [m.kind, m.pecMessageId]), [['transport_envelope', tx.pecMessageId]], 'the infected envelope is kept');
  t.same((await stored(beta, null, { folder: 'sent' })).map((m) => m.kind).sort(), ['take_charge', 'virus_detection']);
  t.same(await logOf(beta, tx.pecMessageId), ['PresaInCarico', 'RilevazioneVirus']);

  // Alfa's service mailbox got the detection notice, signed by Beta.
  const service = await stored(alfa, null, { folder: 'inbox' });
  t.same(service.map((m) => m.kind), ['take_charge', 'virus_detection']);
  const detection = await assertSignedBy(t, service[1]!.content, beta, alfa, 'virus detection');
  t.equal(detection.headers.get('x-ricevuta'), 'rilevazione-virus');
  t.equal(detection.headers.get('x-mittente'), alice.address);
  t.equal(detection.headers.get('to'), 'posta-certificata@pec.alfa.it');
  t.equal(service[1]!.subject, 'PROBLEMA DI SICUREZZA: Fattura');
  t.match(detection.daticert, /tipo="rilevazione-virus" errore="virus"[\s\S]*<consegna>bob@pec\.beta\.it<\/consegna>/);
  t.equal(detection.postacert, null, 'the original must not be included');

  // Alfa told alice: non-delivery for virus, signed by Alfa.
  const receipts = await stored(alfa, alice, { folder: 'receipts' });
  t.same(receipts.map((m) => [m.kind, m.subject]), [['acceptance', 'ACCETTAZIONE: Fattura'], ['non_delivery_virus', 'AVVISO DI MANCATA CONSEGNA PER VIRUS: Fattura']]);
  const notice = await assertSignedBy(t, receipts[1]!.content, alfa, beta, 'non-delivery for virus');
  t.equal(notice.headers.get('x-ricevuta'), 'errore-consegna');
  t.equal(notice.headers.get('x-verificasicurezza'), 'errore');
  t.equal(notice.headers.get('to'), alice.address);
  t.match(notice.daticert, /tipo="errore-consegna" errore="virus"[\s\S]*<consegna>bob@pec\.beta\.it<\/consegna>/);
  t.match(tx.recipients, [{ address: bob.address, status: 'failed', errorCode: 'virus' }]);
  t.same(await logOf(alfa, tx.pecMessageId), ['Accettazione', 'BustaTrasporto', 'PresaInCarico', 'RilevazioneVirus', 'MancataConsegnaVirus']);

  // The outcome is final: no timer notice follows.
  clock.advance(25 * HOURS);
  await settle(alfa, beta);
  t.equal((await stored(alfa, alice, { folder: 'receipts' })).length, 2, 'no delivery timer notice after a virus');
});

t.test('receiving point: a message is kept once, as bytes, beside a job that only names it; processed ones are purged after 7 days, unprocessed ones never', async (t) => {
  const { beta, clock } = await providers(t);
  const bob = await beta.open('bob@pec.beta.it');
  const carol = await beta.open('carol@pec.beta.it');
  const db = beta.h.database.db;
  const sha256 = (bytes: Buffer | string) => createHash('sha256').update(bytes).digest('hex');
  const inboundJobs = () => db.select().from(pecJobs).where(eq(pecJobs.kind, 'inbound')).orderBy(pecJobs.id);
  const kept = () => db.select({
    id: pecInboundMessages.id, sizeBytes: pecInboundMessages.sizeBytes, sha256: pecInboundMessages.sha256, mailFrom: pecInboundMessages.mailFrom,
    rcptTo: pecInboundMessages.rcptTo, receivedAt: pecInboundMessages.receivedAt, processedAt: pecInboundMessages.processedAt,
    // Computed by PostgreSQL over the stored bytes, not copied from the column above.
    storedSha256: sql<string>`encode(sha256(${pecInboundMessages.raw}), 'hex')`,
  }).from(pecInboundMessages).orderBy(pecInboundMessages.id);

  // About 300 kB, with a line that SMTP dot-stuffing must carry through untouched.
  const attachment = randomBytes(225_000).toString('base64').replace(/.{76}/g, '$&\r\n');
  const raw = Buffer.from('From: Mario Rossi <mario.rossi@posta.example>\r\nTo: bob@pec.beta.it\r\nSubject: Preventivo\r\nMessage-ID: <preventivo-1@posta.example>\r\n' +
    'Date: Sun, 22 Nov 2026 10:00:00 +0100\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b1"\r\n\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n' +
    'Il preventivo è in allegato.\r\n.\r\n..punti\r\n--b1\r\nContent-Type: application/pdf; name="preventivo.pdf"\r\nContent-Transfer-Encoding: base64\r\n\r\n' +
    `${attachment}\r\n--b1--\r\n`);
  const at = clock.now();
  for (const tls of [false, true]) {
    t.match((await deliverInbound(beta, { from: 'mario.rossi@posta.example', to: [bob.address], raw }, tls)).response, /^250 /, 'delivered, then delivered again (250 both times)');
  }
  const [message, ...more] = await kept();
  t.same(more, [], 'the repeated delivery stored nothing more');
  t.same(message, {
    id: message!.id, sizeBytes: raw.length, sha256: sha256(raw), mailFrom: 'mario.rossi@posta.example', rcptTo: [bob.address], receivedAt: at, processedAt: null,
    storedSha256: sha256(raw),
  }, 'kept as received, byte for byte, with its envelope');
  const [job, ...moreJobs] = await inboundJobs();
  t.same(moreJobs, [], 'the repeated delivery queued nothing more');
  t.same(job!.payload, { message: message!.id }, 'the job names the message and carries none of its bytes');
  t.equal(job!.dedupeKey, `inbound:${sha256(raw)}:${sha256(bob.address)}`);

  // The same bytes to other recipients are another delivery.
  t.match((await deliverInbound(beta, { from: 'mario.rossi@posta.example', to: [bob.address, carol.address], raw }, true)).response, /^250 /);
  t.equal((await kept()).length, 2);
  t.equal((await inboundJobs()).length, 2);

  await settle(beta);
  t.same((await kept()).map((m) => m.processedAt), [at, at], 'both processed');
  const inbox = [...await stored(beta, bob, { folder: 'inbox' }), ...await stored(beta, carol, { folder: 'inbox' })];
  t.same(inbox.map((m) => m.subject), ['ANOMALIA MESSAGGIO: Preventivo', 'ANOMALIA MESSAGGIO: Preventivo'], 'bob once, carol once');
  for (const envelope of inbox) t.ok((await inspectPecMessage(envelope.content)).postacert?.equals(raw), 'the anomaly envelope holds the message unmodified');

  // Another message arrives, and its job is not run: it must outlive every retention.
  const pending = Buffer.from('From: ufficio@posta.example\r\nTo: bob@pec.beta.it\r\nSubject: In coda\r\nMessage-ID: <in-coda-1@posta.example>\r\n\r\nAttende.\r\n');
  t.match((await deliverInbound(beta, { from: 'ufficio@posta.example', to: [bob.address], raw: pending }, true)).response, /^250 /);

  clock.advance(7 * 24 * HOURS);
  t.ok((await beta.h.app.jobs.tick()).includes('pec_inbound.purge'));
  t.equal((await kept()).length, 3, 'processed exactly 7 days ago: still kept');
  clock.advance(24 * HOURS);
  t.ok((await beta.h.app.jobs.tick()).includes('pec_inbound.purge'));
  t.same((await kept()).map((m) => [m.sha256, m.processedAt]), [[sha256(pending), null]], 'processed ones purged after 7 days; the unprocessed one kept, 8 days old');

  await settle(beta);
  t.same((await stored(beta, bob, { folder: 'inbox' })).map((m) => m.subject), ['ANOMALIA MESSAGGIO: Preventivo', 'ANOMALIA MESSAGGIO: In coda'], 'processed late, from what was kept');
  t.same((await kept()).map((m) => m.processedAt), [clock.now()]);

  // A job that ran long ago, run again after its message was purged: nothing to do, nothing stored, no error.
  const before = await totals(beta);
  await db.update(pecJobs).set({ doneAt: null, runAt: clock.now() }).where(eq(pecJobs.id, job!.id));
  await settle(beta);
  const [rerun] = await db.select().from(pecJobs).where(eq(pecJobs.id, job!.id));
  t.match(rerun, { doneAt: clock.now(), lastError: null, attempts: 2 });
  t.same(await totals(beta), before);
});
