import { execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { promisify } from 'node:util';
import { ImapFlow } from 'imapflow';
import t, { type Test } from 'tap';
import { sql } from 'drizzle-orm';
import { signInToMailbox } from '../api/src/access/sign-in.ts';
import { startImapServers, type ImapServers } from '../api/src/imap/server.ts';
import { MailboxChanges } from '../api/src/mailstore/changes.ts';
import { storeMessage } from '../api/src/pec/store.ts';
import { loadOrCreateTls } from '../api/src/pec/tls.ts';
import { api } from './helpers/fixtures.ts';
import { serverUrl } from './helpers/database.ts';
import { harness, json, type Harness } from './helpers/harness.ts';

const run = promisify(execFile);

/** A message with what IMAP clients dig into: a text part with accents, an attachment and an embedded message. */
function sampleMessage(n: number, subject = `Fattura ${n}`): Buffer {
  return Buffer.from([
    `From: "Fornitore ${n}" <fornitore${n}@pec.fornitore.it>`,
    'To: alice@pec.example.it',
    `Subject: ${subject}`,
    `Date: Mon, 30 Nov 2026 10:${String(n % 60).padStart(2, '0')}:00 +0100`,
    `Message-ID: <msg-${n}@pec.fornitore.it>`,
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="b1"',
    '',
    '--b1',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: quoted-printable',
    '',
    `Gentile cliente, in allegato la fattura n. ${n}. Perch=C3=A9 no?`,
    '--b1',
    'Content-Type: application/pdf; name="fattura.pdf"',
    'Content-Disposition: attachment; filename="fattura.pdf"',
    'Content-Transfer-Encoding: base64',
    '',
    Buffer.from(`%PDF-1.4 fattura ${n}`).toString('base64'),
    '--b1',
    'Content-Type: message/rfc822',
    '',
    'From: inner@example.it',
    'Subject: Inner',
    '',
    'Inner body',
    '--b1--',
    '',
  ].join('\r\n'));
}

interface Setup {
  h: Harness;
  tls: { key: string; cert: string };
  imap: ImapServers;
  alice: { id: string; address: string; password: string };
  store(folder: string, content: Buffer, seen?: boolean): Promise<void>;
  client(user?: string, password?: string, secure?: boolean): ImapFlow;
  delegate(email: string, mode: string): Promise<{ email: string; password: string }>;
}

async function setup(t: Test): Promise<Setup> {
  const h = await harness(t);
  const p = await h.partner();
  const a = api(h, p);
  await a.topUp(100_000);
  const customer = await a.customer();
  const password = 'alice-password-2026';
  const created = await a.post('/v1/mailboxes', { local_part: 'alice', domain: 'pec.example.it', customer, plan: 'pro', password });
  if (created.status !== 201) throw new Error(JSON.stringify(created.body));
  const alice = { id: created.body.id as string, address: created.body.address as string, password };
  const changes = new MailboxChanges((channel, onNotify) => h.database.sql.listen(channel, onNotify));
  const tls = await loadOrCreateTls({ certificateFile: undefined, privateKeyFile: undefined }, ['localhost']);
  const imap = await startImapServers(h.database.db, {
    host: '127.0.0.1', port: 0, tlsPort: 0, serverName: 'imap.test', tls,
    changes, signIn: (attempt) => signInToMailbox(h.database.db, attempt),
    limits: { maxSessionsPerMailbox: 6 },
    // What the server logs as its own failure shows in the test output.
    log: { info() {}, warn() {}, error: (fields, message) => console.error(message, fields) },
  });
  t.teardown(async () => {
    await imap.close();
    await changes.stop();
  });
  let n = 0;
  // Stored as the engine stores deliveries (usage counted), so quotas and moves see real numbers.
  const store = async (folder: string, content: Buffer, seen = false) => {
    n++;
    await storeMessage(h.database.db, {
      mailboxId: alice.id, folder, kind: 'transport_envelope', content, messageId: `m${n}@x`, pecMessageId: null,
      subject: `Fattura ${n}`, fromAddress: 'x@pec.fornitore.it', dedupeKey: `test:${n}`, now: new Date(),
    });
    if (seen) await h.database.db.execute(sql`update mailbox_messages set seen = true where dedupe_key = ${`test:${n}`}`);
  };
  const client = (user = alice.address, pass = password, secure = true) =>
    new ImapFlow({ host: '127.0.0.1', port: secure ? imap.tlsPort : imap.port, secure, auth: { user, pass }, tls: { rejectUnauthorized: false }, logger: false, disableAutoIdle: true });
  const delegate = async (email: string, mode: string) => {
    const basic = `Basic ${Buffer.from(`${alice.address}:${password}`).toString('base64')}`;
    const invited = await h.app.inject({ method: 'POST', url: `/v1/mailboxes/${alice.id}/delegations`, headers: { authorization: basic }, payload: { email, mode } });
    if (invited.statusCode !== 201) throw new Error(invited.body);
    const secret = `${email.split('@')[0]}-secret-2026`;
    const accepted = await h.app.inject({ method: 'POST', url: '/v1/delegation-invitations/accept', payload: { token: json(invited).invitation.token, password: secret } });
    if (accepted.statusCode !== 200) throw new Error(accepted.body);
    return { email, password: secret };
  };
  return { h, tls, imap, alice, store, client, delegate };
}

async function fetchOne(client: ImapFlow, range: string, query: Parameters<ImapFlow['fetchOne']>[1]) {
  const message = await client.fetchOne(range, query);
  if (!message) throw new Error(`no message ${range}`);
  return message;
}

const rest = async (s: Setup, url: string) => {
  const response = await s.h.app.inject({ method: 'GET', url, headers: { authorization: `Basic ${Buffer.from(`${s.alice.address}:${s.alice.password}`).toString('base64')}` } });
  return json(response);
};

/** A raw TLS line client, for what no library sends: garbage, endless lines, oversized literals. */
async function raw(port: number) {
  const socket: TLSSocket = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false });
  let buffer = '';
  socket.on('data', (d: Buffer) => (buffer += d.toString('latin1')));
  socket.on('error', () => {});
  const until = async (pattern: RegExp, ms = 5000) => {
    const start = Date.now();
    while (!pattern.test(buffer)) {
      if (Date.now() - start > ms) throw new Error(`timeout waiting for ${pattern}; got ${JSON.stringify(buffer.slice(-500))}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    const text = buffer;
    buffer = '';
    return text;
  };
  await until(/^\* OK .*\r\n/);
  return { socket, send: (line: string) => socket.write(line), until, closed: () => new Promise<void>((r) => (socket.destroyed ? r() : socket.once('close', () => r()))) };
}

t.test('imapflow: a whole client session on the PEC store, the REST API seeing the same state', async (t) => {
  const s = await setup(t);
  const messages = [sampleMessage(1), sampleMessage(2, 'Sollecito di pagamento'), sampleMessage(3)];
  for (const m of messages) await s.store('inbox', m);
  const client = s.client();
  await client.connect();
  t.teardown(() => client.logout().catch(() => {}));
  t.ok(client.capabilities.has('IDLE') && client.capabilities.has('MOVE') && client.capabilities.has('UIDPLUS') && client.capabilities.has('QUOTA'));

  const folders = await client.list();
  const byPath = new Map(folders.map((f) => [f.path, f]));
  t.same([...byPath.keys()].sort(), ['Archive', 'Drafts', 'INBOX', 'Receipts', 'Sent', 'Trash']);
  t.equal(byPath.get('Sent')!.specialUse, '\\Sent');
  t.equal(byPath.get('Trash')!.specialUse, '\\Trash');
  t.equal(byPath.get('Archive')!.specialUse, '\\Archive');

  const inbox = await client.mailboxOpen('INBOX');
  t.equal(inbox.exists, 3);
  t.ok(Number(inbox.uidValidity) > 1_700_000_000, 'UIDVALIDITY from the database sequence');

  // Bytes, envelope and structure of every message.
  const fetched = [];
  for await (const m of client.fetch('1:*', { uid: true, flags: true, envelope: true, bodyStructure: true, source: true, internalDate: true, size: true })) fetched.push(m);
  t.equal(fetched.length, 3);
  t.same(fetched.map((m) => m.uid), [1, 2, 3], 'UIDs ascend from 1 in a new folder');
  t.ok(fetched.every((m, i) => Buffer.compare(m.source!, messages[i]!) === 0), 'the bytes are the stored message');
  t.equal(fetched[1]!.envelope!.subject, 'Sollecito di pagamento');
  t.same(fetched[0]!.envelope!.from, [{ name: 'Fornitore 1', address: 'fornitore1@pec.fornitore.it' }]);
  t.equal(fetched[0]!.size, messages[0]!.length);
  const structure = fetched[0]!.bodyStructure!;
  t.equal(structure.type, 'multipart/mixed');
  t.same(structure.childNodes!.map((c) => c.type), ['text/plain', 'application/pdf', 'message/rfc822']);
  t.equal(structure.childNodes![1]!.dispositionParameters?.filename, 'fattura.pdf');
  t.equal(structure.childNodes![2]!.envelope?.subject, 'Inner');

  // Sections and partials; BODY.PEEK leaves \Seen alone, BODY[] sets it.
  const parts = await fetchOne(client, '1', { bodyParts: ['1', '2', '3.TEXT'], headers: ['subject'] });
  t.equal(parts.headers!.toString(), 'Subject: Fattura 1\r\n\r\n');
  t.match(parts.bodyParts!.get('1')!.toString(), /fattura n\. 1\. Perch=C3=A9 no\?/);
  t.equal(parts.bodyParts!.get('2')!.toString(), Buffer.from('%PDF-1.4 fattura 1').toString('base64'));
  t.equal(parts.bodyParts!.get('3.text')?.toString() ?? parts.bodyParts!.get('3.TEXT')?.toString(), 'Inner body');
  const partial = await client.download('1', '1', { maxBytes: 10 }).catch(() => null);
  t.ok(partial, 'a part downloads');
  t.same((await rest(s, `/v1/mailboxes/${s.alice.id}/messages?folder=inbox`)).data.map((m: { seen: boolean }) => m.seen), [false, false, false], 'PEEK did not set \\Seen');

  // Flags: what IMAP sets, REST shows, and the other way round.
  await client.messageFlagsAdd('1', ['\\Flagged', '$Fattura']);
  const listed = (await rest(s, `/v1/mailboxes/${s.alice.id}/messages?folder=inbox`)).data as Array<{ id: string; subject: string; flagged: boolean; keywords: string[]; seen: boolean }>;
  const first = listed.find((m) => m.subject === 'Fattura 1')!;
  t.match(first, { flagged: true, keywords: ['$Fattura'] });
  const patched = await s.h.app.inject({ method: 'PATCH', url: `/v1/mailboxes/${s.alice.id}/messages/${first.id}`, headers: { authorization: `Basic ${Buffer.from(`${s.alice.address}:${s.alice.password}`).toString('base64')}` }, payload: { seen: true } });
  t.equal(patched.statusCode, 200);
  t.ok((await fetchOne(client, '1', { flags: true })).flags!.has('\\Seen'), 'a REST change is seen over IMAP');

  // Search.
  t.same(await client.search({ subject: 'sollecito' }), [2]);
  t.same(await client.search({ from: 'fornitore3' }), [3]);
  t.same(await client.search({ flagged: true }), [1]);
  t.same(await client.search({ body: 'perché' }), [1, 2, 3], 'body search decodes quoted-printable UTF-8');
  t.same(await client.search({ uid: '1:2', seen: true }), [1]);
  t.same(await client.search({ larger: 10_000 }), []);

  // Move into the archive: new UID there, archive quota counts it, REST shows it.
  const before = await rest(s, `/v1/mailboxes/${s.alice.id}`);
  const moved = await client.messageMove('3', 'Archive');
  t.ok(moved && moved.uidMap && moved.uidMap.get(3) === 1, 'COPYUID maps the old UID to the new one');
  t.equal(client.mailbox && client.mailbox.exists, 2, 'EXPUNGE told');
  const archived = await rest(s, `/v1/mailboxes/${s.alice.id}/messages?folder=archive`);
  t.equal(archived.data.length, 1);
  void before;

  // APPEND to Sent stores, never sends.
  const appended = await client.append('Sent', 'From: alice@pec.example.it\r\nTo: x@example.it\r\nSubject: copia\r\n\r\nciao\r\n', ['\\Seen']);
  t.ok(appended && appended.uid === 1);
  const sent = await rest(s, `/v1/mailboxes/${s.alice.id}/messages?folder=sent`);
  t.match(sent.data, [{ kind: 'appended', subject: 'copia', seen: true }]);
  const transactions = await s.h.database.db.execute(sql`select count(*)::int n from pec_transactions`);
  t.equal((transactions as unknown as Array<{ n: number }>)[0]!.n, 0, 'nothing was submitted');

  // A big message goes both ways whole (a synchronising literal of 3 MB, then its bytes back).
  const big = Buffer.concat([Buffer.from('From: alice@pec.example.it\r\nSubject: grande\r\n\r\n'), Buffer.from(`${'x'.repeat(998)}\r\n`.repeat(3000))]);
  const bigAppended = await client.append('Drafts', big);
  t.ok(bigAppended && bigAppended.uid === 1, 'a 3 MB APPEND');
  const draftsBox = await client.getMailboxLock('Drafts');
  try {
    const back = await fetchOne(client, '1', { source: true });
    t.equal(Buffer.compare(back.source!, big), 0, 'and the same bytes back');
  } finally {
    draftsBox.release();
  }
  await client.mailboxOpen('INBOX');

  // User folders: create, rename (UIDs kept), delete.
  await client.mailboxCreate('Clienti/ACME');
  await client.messageCopy('1', 'Clienti/ACME');
  await client.mailboxRename('Clienti/ACME', 'Clienti/Acme S.p.A.');
  const folderList = await rest(s, `/v1/mailboxes/${s.alice.id}/folders`);
  t.ok(folderList.data.some((f: { name: string; total: number }) => f.name === 'Clienti/Acme S.p.A.' && f.total === 1), 'REST lists the user folder with its message');
  const status = await client.status('Clienti/Acme S.p.A.', { messages: true, uidNext: true });
  t.match(status, { messages: 1, uidNext: 2 });
  await client.mailboxDelete('Clienti/Acme S.p.A.');

  // Quota.
  const quota = await client.getQuota('INBOX');
  t.ok(quota && quota.storage && quota.storage.limit! > 0 && quota.storage.usage! > 0, 'QUOTA reports the inbox space');

  // Expunge.
  await client.messageFlagsAdd('2', ['\\Deleted']);
  await client.messageDelete('2');
  t.equal(client.mailbox && client.mailbox.exists, 1);
});

t.test('two processes on one database: one UIDVALIDITY and UID order, IDLE woken within a second by the other process', async (t) => {
  const s = await setup(t);
  await s.store('inbox', sampleMessage(1));
  // A second server process on the same database (its own connections and LISTEN), as a second instance of the product.
  const [{ db: name }] = (await s.h.database.db.execute(sql`select current_database() db`)) as unknown as [{ db: string }];
  const url = new URL(serverUrl());
  url.pathname = `/${name}`;
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./helpers/imap-process.ts', import.meta.url)), url.toString()], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => {
    child.kill('SIGTERM');
  });
  const second = await new Promise<{ tlsPort: number; pid: number }>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve(JSON.parse(out.split('\n')[0]!));
    });
    child.once('exit', (code) => reject(new Error(`the second process exited with ${code}`)));
  });
  t.not(second.pid, process.pid, 'another process');
  const watcher = s.client();
  const other = new ImapFlow({ host: '127.0.0.1', port: second.tlsPort, secure: true, auth: { user: s.alice.address, pass: s.alice.password }, tls: { rejectUnauthorized: false }, logger: false });
  await watcher.connect();
  await other.connect();
  t.teardown(async () => {
    await watcher.logout().catch(() => {});
    await other.logout().catch(() => {});
  });
  await watcher.mailboxOpen('INBOX');
  const otherBox = await other.mailboxOpen('INBOX');
  t.equal(otherBox.uidValidity, watcher.mailbox && watcher.mailbox.uidValidity, 'one UIDVALIDITY for both instances');

  const exists = new Promise<number>((resolve) => watcher.on('exists', (data: { count: number }) => resolve(data.count)));
  const idling = watcher.idle();
  await new Promise((r) => setTimeout(r, 200));
  const started = Date.now();
  await other.append('INBOX', sampleMessage(2));
  t.equal(await exists, 2, 'EXISTS pushed');
  t.ok(Date.now() - started < 1000, `woke in ${Date.now() - started} ms`);

  const flagged = new Promise<{ uid?: number; flags: Set<string> }>((resolve) => watcher.on('flags', (data: { uid?: number; flags: Set<string> }) => resolve(data)));
  await other.messageFlagsAdd('2', ['\\Flagged']);
  const change = await flagged;
  t.ok(change.flags.has('\\Flagged'), 'a flag change is pushed');
  await watcher.noop();
  await idling.catch(() => {});
  const uids = [];
  for await (const m of other.fetch('1:*', { uid: true })) uids.push(m.uid);
  t.same(uids, [1, 2], 'UIDs agree between instances');
});

t.test('delegates get exactly their mode; sign-in rules', async (t) => {
  const s = await setup(t);
  await s.store('inbox', sampleMessage(1));
  const reader = await s.delegate('lettore@studio.example', 'read_only');
  const ro = s.client(reader.email, reader.password);
  await ro.connect();
  t.teardown(() => ro.logout().catch(() => {}));
  const box = await ro.mailboxOpen('INBOX');
  t.equal(box.readOnly, true, 'a read-only delegate opens folders read-only');
  t.equal(await ro.messageFlagsAdd('1', ['\\Deleted']), false, 'no STORE');
  await t.rejects(ro.append('INBOX', sampleMessage(9)), 'no APPEND');
  const moved = await ro.messageMove('1', 'Trash').catch(() => false);
  t.notOk(moved, 'no MOVE out');
  t.equal((await rest(s, `/v1/mailboxes/${s.alice.id}/messages?folder=inbox`)).data.length, 1, 'nothing changed');

  const wrong = s.client(s.alice.address, 'not-the-password');
  await t.rejects(wrong.connect(), 'a wrong password is refused');
  const recorded = await s.h.database.db.execute(sql`select door, outcome from mailbox_sign_ins where door = 'imap' order by at`);
  t.ok((recorded as unknown as Array<{ outcome: string }>).some((r) => r.outcome === 'failed'), 'failed logins are recorded');
});

t.test('bad input: BAD and the session goes on; limits end only the offending session', async (t) => {
  const s = await setup(t);
  await s.store('inbox', sampleMessage(1));
  const c = await raw(s.imap.tlsPort);
  c.send('a1 LOGIN "alice@pec.example.it" "alice-password-2026"\r\n');
  t.match(await c.until(/a1 (OK|NO).*\r\n/), /a1 OK/);
  c.send('bogus\r\n');
  t.match(await c.until(/\r\n/), /BAD/);
  c.send('a2 FETCH 1 (BODY[\r\n');
  t.match(await c.until(/a2 .*\r\n/), /a2 BAD/);
  c.send('a3 SELECT INBOX\r\n');
  t.match(await c.until(/a3 .*\r\n/), /a3 OK \[READ-WRITE\]/);
  c.send('a4 FETCH 1:* (NOSUCHITEM)\r\n');
  t.match(await c.until(/a4 .*\r\n/), /a4 BAD/);
  c.send('a5 SEARCH NOSUCHKEY\r\n');
  t.match(await c.until(/a5 .*\r\n/), /a5 BAD/);
  c.send('a6 STORE 1 +FLAGS (\\Recent)\r\n');
  t.match(await c.until(/a6 .*\r\n/), /a6 BAD/);
  c.send('a7 APPEND INBOX {999999999}\r\n');
  t.match(await c.until(/a7 .*\r\n/), /a7 NO \[TOOBIG\]/);
  c.send('a8 FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\n');
  t.match(await c.until(/a8 .*\r\n/), /Subject: Fattura 1[\s\S]*a8 OK/);
  c.send('a81 FETCH 1 (FLAGS)\r\n');
  t.notMatch(await c.until(/a81 .*\r\n/), /\\Seen/, 'BODY.PEEK left \\Seen alone');
  c.send('a82 FETCH 1 (BODY[TEXT]<0.20>)\r\n');
  t.match(await c.until(/a82 .*\r\n/), /BODY\[TEXT\]<0> \{20\}\r\n[\s\S]{20}[\s\S]*FLAGS \(\\Seen\)[\s\S]*a82 OK/, 'BODY[] sets \\Seen and says so');
  c.send('a83 UID FETCH 1:* (UID BINARY.SIZE[2] BINARY[2])\r\n');
  t.match(await c.until(/a83 .*\r\n/), /BINARY\.SIZE\[2\] 18 BINARY\[2\] \{18\}\r\n%PDF-1\.4 fattura 1/, 'BINARY decodes base64');
  c.send('a9 LOGIN x y\r\n');
  t.match(await c.until(/a9 .*\r\n/), /a9 BAD/);

  // Another client is not disturbed by an endless line.
  const d = await raw(s.imap.tlsPort);
  d.send(`x1 NOOP ${'A'.repeat(200_000)}`);
  await d.until(/BYE/);
  await d.closed();
  c.send('b1 NOOP\r\n');
  t.match(await c.until(/b1 .*\r\n/), /b1 OK/);
  c.send('b2 LOGOUT\r\n');
  t.match(await c.until(/b2 .*\r\n/), /BYE[\s\S]*b2 OK/);

  // No login in clear: the STARTTLS port announces LOGINDISABLED.
  const net = await import('node:net');
  const plain = net.connect(s.imap.port, '127.0.0.1');
  const greeting = await new Promise<string>((resolve) => plain.once('data', (d: Buffer) => resolve(d.toString())));
  t.match(greeting, /STARTTLS LOGINDISABLED/);
  plain.write('p1 LOGIN alice@pec.example.it alice-password-2026\r\n');
  const refused = await new Promise<string>((resolve) => plain.once('data', (d: Buffer) => resolve(d.toString())));
  t.match(refused, /p1 NO \[PRIVACYREQUIRED\]/);
  plain.destroy();

  // Clear text on the TLS port, and garbage in place of a TLS handshake after STARTTLS: those connections end, the server goes on.
  const garbage = net.connect(s.imap.tlsPort, '127.0.0.1');
  garbage.on('error', () => {});
  garbage.write('a1 LOGIN alice@pec.example.it alice-password-2026\r\n\x16\x03\x01\xff\xff garbage');
  await new Promise<void>((resolve) => garbage.once('close', () => resolve()));
  const upgrading = net.connect(s.imap.port, '127.0.0.1');
  upgrading.on('error', () => {});
  await new Promise((resolve) => upgrading.once('data', resolve));
  upgrading.write('s1 STARTTLS\r\n');
  await new Promise((resolve) => upgrading.once('data', resolve));
  upgrading.write('this is not a TLS client hello\r\n');
  await new Promise<void>((resolve) => upgrading.once('close', () => resolve()));
  t.pass('hostile connections closed');

  // STARTTLS then login works (imapflow upgrades by itself).
  const upgraded = s.client(s.alice.address, s.alice.password, false);
  await upgraded.connect();
  t.ok(upgraded.secureConnection || upgraded.usable, 'signed in after STARTTLS');
  await upgraded.logout();
});

t.test("Python's imaplib reads every message byte for byte", async (t) => {
  const s = await setup(t);
  const messages = [sampleMessage(1), sampleMessage(2), sampleMessage(3)];
  for (const m of messages) await s.store('inbox', m);
  const script = `
import imaplib, ssl, sys, hashlib
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
m = imaplib.IMAP4_SSL('127.0.0.1', ${s.imap.tlsPort}, ssl_context=ctx)
m.login('${s.alice.address}', '${s.alice.password}')
typ, data = m.select('INBOX')
typ, data = m.uid('search', None, 'ALL')
for uid in data[0].split():
    typ, msg = m.uid('fetch', uid, '(RFC822)')
    print(uid.decode(), hashlib.sha256(msg[0][1]).hexdigest())
m.logout()
`;
  const { stdout } = await run('python3', ['-c', script]);
  const { createHash } = await import('node:crypto');
  t.same(stdout.trim().split('\n'), messages.map((m, i) => `${i + 1} ${createHash('sha256').update(m).digest('hex')}`));
});

t.test("isync's mbsync syncs the whole mailbox to a Maildir and back", { skip: process.env.SKIP_MBSYNC ? 'SKIP_MBSYNC set' : false }, async (t) => {
  const s = await setup(t);
  const messages = [sampleMessage(1), sampleMessage(2), sampleMessage(3)];
  for (const m of messages) await s.store('inbox', m);
  await s.store('receipts', sampleMessage(4, 'ACCETTAZIONE: Fattura 1'));
  const dir = await mkdtemp(path.join(tmpdir(), 'mbsync-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(path.join(dir, 'server.pem'), s.tls.cert);
  await mkdir(path.join(dir, 'mail'));
  const config = [
    'IMAPAccount pec', 'Host localhost', `Port ${s.imap.tlsPort}`, `User ${s.alice.address}`, `Pass ${s.alice.password}`,
    'SSLType IMAPS', `CertificateFile ${path.join(dir, 'server.pem')}`, '',
    'IMAPStore remote', 'Account pec', '',
    'MaildirStore local', `Path ${dir}/mail/`, `Inbox ${dir}/mail/INBOX`, 'SubFolders Verbatim', '',
    'Channel pec', 'Far :remote:', 'Near :local:', 'Patterns *', 'Create Both', 'Expunge None', 'SyncState *', 'Sync All', '',
  ].join('\n');
  await writeFile(path.join(dir, 'mbsyncrc'), config);
  const sync = () => run('mbsync', ['-c', path.join(dir, 'mbsyncrc'), '-a'], { timeout: 60_000 });
  await sync();
  const files = async (folder: string) => {
    const out: Array<{ name: string; bytes: Buffer }> = [];
    for (const sub of ['cur', 'new']) {
      for (const name of await readdir(path.join(dir, 'mail', folder, sub)).catch(() => [])) out.push({ name: `${sub}/${name}`, bytes: await readFile(path.join(dir, 'mail', folder, sub, name)) });
    }
    return out;
  };
  const inbox = await files('INBOX');
  t.equal(inbox.length, 3, 'every INBOX message in the Maildir');
  // A Maildir keeps LF line ends, and mbsync adds its X-TUID header to what it stores (it finds its copies by it):
  // with those two undone, every message is the stored one byte for byte.
  const asStored = (bytes: Buffer) => bytes.toString('latin1').replace(/^X-TUID: [^\n]*\n/m, '').replace(/\n/g, '\r\n');
  t.same(inbox.map((f) => asStored(f.bytes)).sort(), messages.map((m) => m.toString('latin1')).sort(), 'byte for byte');
  t.equal((await files('Receipts')).length, 1, 'the receipts folder too');
  t.same((await readdir(path.join(dir, 'mail'))).sort(), ['Archive', 'Drafts', 'INBOX', 'Receipts', 'Sent', 'Trash']);

  // Back: a message marked read in the Maildir, and a message put in the local Drafts, reach the server.
  const first = inbox[0]!;
  const [sub, name] = first.name.split('/') as [string, string];
  const base = name.includes(':2,') ? name.slice(0, name.indexOf(':2,')) : name;
  await rename(path.join(dir, 'mail', 'INBOX', sub, name), path.join(dir, 'mail', 'INBOX', 'cur', `${base}:2,FS`));
  const draft = Buffer.from('From: alice@pec.example.it\r\nTo: bob@pec.example.it\r\nSubject: bozza\r\n\r\nDa completare\r\n');
  await writeFile(path.join(dir, 'mail', 'Drafts', 'new', `${Date.now()}.1.test`), draft);
  await sync();
  const listed = await rest(s, `/v1/mailboxes/${s.alice.id}/messages?folder=inbox`);
  t.equal(listed.data.filter((m: { seen: boolean; flagged: boolean }) => m.seen && m.flagged).length, 1, 'the flags set in the Maildir are on the server');
  const drafts = await rest(s, `/v1/mailboxes/${s.alice.id}/messages?folder=drafts`);
  t.match(drafts.data, [{ kind: 'appended', subject: 'bozza' }], 'the local draft was appended');
  const raw = await s.h.app.inject({ method: 'GET', url: `/v1/mailboxes/${s.alice.id}/messages/${drafts.data[0].id}/raw`, headers: { authorization: `Basic ${Buffer.from(`${s.alice.address}:${s.alice.password}`).toString('base64')}` } });
  t.match(raw.body, /Subject: bozza\r\n[\s\S]*Da completare/, 'its bytes');
});
