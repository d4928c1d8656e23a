// The POP3 doors (RFC 1939, CAPA RFC 2449, STLS RFC 2595, AUTH RFC 5034) on the mailbox store: sign-in only over
// TLS, the maildrop snapshot, byte-exact RETR and TOP, DELE as a move to Trash at QUIT, delegates, pipelining,
// hostile input, timeouts and limits; then two independent clients (Python's poplib, fetchmail) fetch everything.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { promisify } from 'node:util';
import { and, eq, sql } from 'drizzle-orm';
import t from 'tap';
import { mailboxes, mailboxMessages } from '@pec-partner/db';
import { storeMessage } from '../api/src/pec/store.ts';
import { loadOrCreateTls } from '../api/src/pec/tls.ts';
import { dotStuffed, topExtent } from '../api/src/pop3/octets.ts';
import { startPop3Servers, type Pop3Servers } from '../api/src/pop3/server.ts';
import { refusalLine } from '../api/src/pop3/session.ts';
import { api } from './helpers/fixtures.ts';
import { harness, json, type Harness } from './helpers/harness.ts';

const run = promisify(execFile);
const DOMAIN = 'pec.example.it';
const SERVER_NAME = `pop.${DOMAIN}`;
/** Short enough for the timeout tests to wait it out; sessions per mailbox low enough to reach. */
const LIMITS = { idleTimeoutMs: 1500, maxSessionsPerMailbox: 4 };

// ---------------------------------------------------------------------------------------------------------------
// A bare POP3 client: bytes as the server sends them, TLS when asked.

class Pop3Client {
  #socket: net.Socket;
  #buffer = Buffer.alloc(0);
  #wake: (() => void) | null = null;
  #closed = false;
  /** The plain connection under TLS, after STLS. */
  #beneath: net.Socket | undefined;

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    this.#attach(socket);
  }

  static async connect(port: number, options: { tls?: boolean; localAddress?: string } = {}): Promise<{ client: Pop3Client; greeting: string | null }> {
    const local = options.localAddress ? { localAddress: options.localAddress } : {};
    const socket = options.tls
      ? tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false, ...local })
      : net.connect({ port, host: '127.0.0.1', ...local });
    socket.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      socket.once(options.tls ? 'secureConnect' : 'connect', () => resolve());
      socket.once('close', () => reject(new Error('connection closed before it was open')));
    });
    const client = new Pop3Client(socket);
    return { client, greeting: await client.line() };
  }

  #attach(socket: net.Socket): void {
    socket.on('data', (chunk: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk]);
      this.#wake?.();
    });
    socket.once('close', () => {
      this.#closed = true;
      this.#wake?.();
    });
  }

  /** Waits for more bytes (or the close), at most 10 s: a test that hangs says where. */
  async #more(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve, reject) => {
      this.#wake = resolve;
      timer = setTimeout(() => reject(new Error(`no answer from the server; unread: ${JSON.stringify(this.#buffer.toString('latin1').slice(0, 200))}`)), 10_000);
    }).finally(() => {
      clearTimeout(timer);
      this.#wake = null;
    });
  }

  /** The next line without its CRLF, or null when the server closed the connection first. */
  async line(): Promise<string | null> {
    for (;;) {
      const end = this.#buffer.indexOf('\r\n');
      if (end !== -1) {
        const line = this.#buffer.subarray(0, end).toString('latin1');
        this.#buffer = this.#buffer.subarray(end + 2);
        return line;
      }
      if (this.#closed) return null;
      await this.#more();
    }
  }

  /** A multi-line response: the status line and, after +OK, the raw body up to the terminating "." (still dot-stuffed). */
  async multi(): Promise<{ status: string; body: Buffer | null }> {
    const status = await this.line();
    if (status === null) return { status: 'closed', body: null };
    if (!status.startsWith('+OK')) return { status, body: null };
    for (;;) {
      if (this.#buffer.subarray(0, 3).equals(Buffer.from('.\r\n'))) {
        this.#buffer = this.#buffer.subarray(3);
        return { status, body: Buffer.alloc(0) };
      }
      const end = this.#buffer.indexOf('\r\n.\r\n');
      if (end !== -1) {
        const body = this.#buffer.subarray(0, end + 2);
        this.#buffer = this.#buffer.subarray(end + 5);
        return { status, body };
      }
      if (this.#closed) return { status: 'closed', body: null };
      await this.#more();
    }
  }

  write(bytes: string | Buffer): void {
    this.#socket.write(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes);
  }

  command(line: string): Promise<string | null> {
    this.write(`${line}\r\n`);
    return this.line();
  }

  async multiCommand(line: string): Promise<{ status: string; body: Buffer | null }> {
    this.write(`${line}\r\n`);
    return this.multi();
  }

  /** The lines of a multi-line response such as CAPA or LIST. */
  async list(line: string): Promise<string[] | string> {
    const { status, body } = await this.multiCommand(line);
    return body === null ? status : body.toString('latin1').split('\r\n').slice(0, -1);
  }

  async starttls(): Promise<void> {
    const ready = await this.command('STLS');
    if (ready !== '+OK Begin TLS negotiation') throw new Error(`STLS refused: ${ready}`);
    await this.handshake();
  }

  /** The client's TLS handshake on the connection (after the server's +OK to STLS). */
  async handshake(): Promise<void> {
    this.#beneath = this.#socket;
    this.#socket.removeAllListeners('data');
    this.#socket.removeAllListeners('close');
    const secure = tls.connect({ socket: this.#socket, rejectUnauthorized: false });
    secure.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', () => resolve());
      secure.once('close', () => reject(new Error('TLS handshake failed')));
    });
    this.#socket = secure;
    this.#attach(secure);
  }

  /** Bytes on the TCP connection under TLS (after STLS): no TLS record, garbage to the server's TLS layer. */
  writeBeneathTls(bytes: Buffer): void {
    this.#beneath!.write(bytes);
  }

  /** Stops reading (a client that reads nothing), and starts again. */
  pause(): void {
    this.#socket.pause();
  }

  resume(): void {
    this.#socket.resume();
  }

  /** Waits until the server closes the connection; true if it did within `ms`. */
  async closedWithin(ms: number): Promise<boolean> {
    const until = Date.now() + ms;
    while (!this.#closed && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 20));
    return this.#closed;
  }

  get closed(): boolean {
    return this.#closed;
  }

  destroy(): void {
    this.#socket.destroy();
  }
}

const plain = (authzid: string, user: string, password: string) => Buffer.from(`${authzid}\0${user}\0${password}`, 'utf8').toString('base64');

/** Removes one "." from lines that start with one (the client's half of dot-stuffing). */
function unstuff(body: Buffer): Buffer {
  const parts: Buffer[] = [];
  for (let start = 0; start < body.length; ) {
    const lf = body.indexOf('\r\n', start);
    const end = lf === -1 ? body.length : lf + 2;
    parts.push(body[start] === 0x2e ? body.subarray(start + 1, end) : body.subarray(start, end));
    start = end;
  }
  return Buffer.concat(parts);
}

/** What RETR must give back for stored bytes: the same bytes, with a bare LF sent as CRLF and a last line end added. */
function onTheWire(stored: Buffer): Buffer {
  const text = stored.toString('latin1').replace(/\r?\n/g, '\r\n');
  return Buffer.from(text.endsWith('\r\n') ? text : `${text}\r\n`, 'latin1');
}

const crlf = (text: string) => Buffer.from(text.replace(/\r?\n/g, '\r\n'), 'utf8');

// ---------------------------------------------------------------------------------------------------------------
// One provider for the file: mailboxes, a holder's messages, the POP3 servers.

interface Box {
  id: string;
  address: string;
  password: string;
}

interface LogEntry {
  level: 'info' | 'warn' | 'error';
  fields: Record<string, unknown>;
  message: string;
}

const h: Harness = await harness(t);
const partner = await h.partner();
const a = api(h, partner);
await a.topUp(200_000);
const customer = await a.customer();
const db = h.database.db;

async function open(local: string): Promise<Box> {
  const password = `${local}-password-2026`;
  const created = await a.post('/v1/mailboxes', { local_part: local, domain: DOMAIN, customer, plan: 'pro', password });
  if (created.status !== 201) throw new Error(JSON.stringify(created.body));
  return { id: created.body.id, address: created.body.address, password };
}

/** HTTP Basic on the holder routes, as a mail client of the REST door would. */
async function rest(user: string, password: string, method: 'GET' | 'POST' | 'PATCH', url: string, payload?: unknown) {
  const response = await h.app.inject({
    method, url, headers: { authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` },
    ...(payload === undefined ? {} : { payload: payload as object }),
  });
  return { status: response.statusCode, body: json(response) };
}

/** Puts a message in a mailbox's inbox as the engine stores one (the triggers give it its UID). */
async function deliver(box: Box, content: Buffer, folder: 'inbox' | 'archive' = 'inbox'): Promise<{ id: string; uid: number }> {
  const dedupeKey = `test:${randomBytes(8).toString('hex')}`;
  await db.transaction((tx) => storeMessage(tx, {
    mailboxId: box.id, folder, kind: 'original', content, messageId: `${dedupeKey}@test`, pecMessageId: null,
    subject: 'test', fromAddress: 'mario@example.it', dedupeKey, now: h.clock.now(),
  }));
  const [row] = await db.select({ id: mailboxMessages.id, uid: mailboxMessages.uid }).from(mailboxMessages)
    .where(and(eq(mailboxMessages.mailboxId, box.id), eq(mailboxMessages.dedupeKey, dedupeKey)));
  return { id: row!.id, uid: row!.uid! };
}

async function uidValidity(box: Box, folder = 'inbox'): Promise<number> {
  const [row] = (await db.execute(sql`select uid_validity from mailbox_folders where mailbox_id = ${box.id} and name = ${folder}`)) as unknown as Array<{ uid_validity: string }>;
  return Number(row!.uid_validity);
}

/** The folder's messages as the store has them: row id, UID, flags and bytes, in UID order. */
async function stored(box: Box, folder = 'inbox') {
  return db.select({ id: mailboxMessages.id, uid: mailboxMessages.uid, seen: mailboxMessages.seen, content: mailboxMessages.content })
    .from(mailboxMessages).where(and(eq(mailboxMessages.mailboxId, box.id), eq(mailboxMessages.folder, folder))).orderBy(mailboxMessages.uid);
}

const tlsMaterial = await loadOrCreateTls({ certificateFile: undefined, privateKeyFile: undefined }, ['localhost']);
const logged: LogEntry[] = [];
const keep = (level: LogEntry['level']) => (fields: object, message: string) => void logged.push({ level, fields: fields as Record<string, unknown>, message });
const log = { info: keep('info'), warn: keep('warn'), error: keep('error') };
const pop3: Pop3Servers = await startPop3Servers(db, { host: '127.0.0.1', port: 0, tlsPort: 0, tls: tlsMaterial, serverName: SERVER_NAME, limits: LIMITS, log });
t.teardown(() => pop3.close());

// The independent clients run only where they are installed; a missing one is reported as a skip with the reason.
// (Found before the first test is declared: the file's test must not end while this is awaited.)
const python = await run('python3', ['-c', 'import poplib']).then(() => true, () => false);
const fetchmail = await run('which', ['fetchmail']).then(({ stdout }) => stdout.trim(), () => '');
if (!python) t.comment('python3 (with poplib) is not installed: the poplib test is skipped');
if (!fetchmail) t.comment('fetchmail is not installed (apt-get install -y fetchmail): the fetchmail test is skipped');

/** A signed-in session over POP3S. */
async function signedIn(box: { address: string; password: string }, options: { localAddress?: string } = {}): Promise<Pop3Client> {
  const { client, greeting } = await Pop3Client.connect(pop3.tlsPort, { tls: true, ...options });
  if (!greeting?.startsWith('+OK')) throw new Error(`greeting: ${greeting}`);
  const user = await client.command(`USER ${box.address}`);
  const pass = await client.command(`PASS ${box.password}`);
  if (user !== '+OK Send PASS' || !pass?.startsWith('+OK Signed in')) throw new Error(`sign-in: ${user} / ${pass}`);
  return client;
}

/** Waits until the server has dealt with a closed session (it releases its place a moment later). */
const settle = () => new Promise((resolve) => setTimeout(resolve, 150));

// ---------------------------------------------------------------------------------------------------------------

t.test('the wire format: dot-stuffing, line ends, TOP extents, refusal codes', async (t) => {
  const stuffed = (content: string, chunk?: number) => Buffer.concat([...dotStuffed(Buffer.from(content, 'latin1'), chunk)]).toString('latin1');
  t.equal(stuffed('a\r\n.b\r\n.\r\n..\r\nc\r\n'), 'a\r\n..b\r\n..\r\n...\r\nc\r\n.\r\n', 'a line that starts with "." gets another');
  t.equal(stuffed('a\r\n.b\r\n', 1), 'a\r\n..b\r\n.\r\n', 'the same in one-byte chunks');
  t.equal(stuffed('a\n.b\nc'), 'a\r\n..b\r\nc\r\n.\r\n', 'bare LF sent as CRLF; the last line gets its line end');
  t.equal(stuffed(''), '.\r\n', 'an empty message is the terminator alone');
  t.equal(stuffed('x\ry\r\n'), 'x\ry\r\n.\r\n', 'a bare CR inside a line is left alone');

  const message = Buffer.from('A: 1\r\nB: 2\r\n\r\nl1\r\nl2\r\nl3\r\n');
  t.equal(topExtent(message, 0, true), 'A: 1\r\nB: 2\r\n\r\n'.length, 'TOP 0: header and blank line');
  t.equal(topExtent(message, 2, true), 'A: 1\r\nB: 2\r\n\r\nl1\r\nl2\r\n'.length);
  t.equal(topExtent(message, 99, true), message.length, 'more lines than the body has: all of it');
  t.equal(topExtent(Buffer.from('A: 1\r\nB: 2\r\n'), 5, true), 'A: 1\r\nB: 2\r\n'.length, 'a message without a body is all header');
  t.equal(topExtent(message.subarray(0, 10), 0, false), null, 'a prefix without the whole header: read more');
  t.equal(topExtent(message.subarray(0, 20), 1, false), null, 'a prefix that ends inside the needed line: read more');
  t.equal(topExtent(message.subarray(0, 22), 1, false), 'A: 1\r\nB: 2\r\n\r\nl1\r\n'.length, 'a prefix with the needed lines is enough');

  t.equal(refusalLine('invalid_credentials', 'whatever'), '-ERR [AUTH] Invalid credentials');
  t.equal(refusalLine('locked_out', 'Too many failed logins; try again in 15 minutes'), '-ERR [SYS/TEMP] Too many failed logins; try again in 15 minutes');
  t.equal(refusalLine('mailbox_unavailable', 'This mailbox is expired.\r\nInjected: yes'), '-ERR [AUTH] This mailbox is expired. Injected: yes', 'no line breaks get through');
  t.equal(refusalLine('in_use', 'busy'), '-ERR [IN-USE] busy');
});

t.test('CAPA before and after STLS; no sign-in before TLS; USER/PASS and AUTH PLAIN; refusals', async (t) => {
  const alice = await open('alice');
  const only = crlf('Subject: uno\n\nciao\n');
  await deliver(alice, only);
  const signedInLine = `+OK Signed in: 1 messages (${only.length} octets)`;

  // The STLS port, in clear: STLS offered, no way to sign in offered or accepted.
  const { client, greeting } = await Pop3Client.connect(pop3.port);
  t.equal(greeting, `+OK ${SERVER_NAME} POP3 server ready`);
  t.same(await client.list('CAPA'), ['TOP', 'UIDL', 'RESP-CODES', 'AUTH-RESP-CODE', 'PIPELINING', 'STLS', 'IMPLEMENTATION PEC-Partner']);
  const inClear = '-ERR [AUTH] Plaintext sign-in is not allowed: send STLS first, or use the POP3S port';
  t.equal(await client.command(`USER ${alice.address}`), inClear);
  t.equal(await client.command(`PASS ${alice.password}`), inClear);
  t.equal(await client.command(`AUTH PLAIN ${plain('', alice.address, alice.password)}`), inClear);
  t.equal(await client.command('AUTH PLAIN'), inClear, 'no continuation is offered either');
  t.equal(await client.command('STAT'), '-ERR Sign in first');
  // STLS with a command pipelined behind it: sent in clear, so dropped unread (RFC 2595 §4; the CVE-2011-0411 kind).
  client.write(`STLS\r\nUSER ${alice.address}\r\n`);
  t.equal(await client.line(), '+OK Begin TLS negotiation');
  await client.handshake();
  t.same(await client.list('CAPA'), ['TOP', 'UIDL', 'RESP-CODES', 'AUTH-RESP-CODE', 'PIPELINING', 'USER', 'SASL PLAIN', 'IMPLEMENTATION PEC-Partner'],
    'after TLS: USER and SASL PLAIN, no more STLS');
  t.equal(await client.command(`PASS ${alice.password}`), '-ERR Send USER first', 'the USER pipelined before TLS was dropped');
  t.equal(await client.command('STLS'), '-ERR Already using TLS');
  t.equal(await client.command(`USER ${alice.address}`), '+OK Send PASS');
  t.equal(await client.command(`PASS ${alice.password}`), signedInLine);
  t.same(await client.list('CAPA'), ['TOP', 'UIDL', 'RESP-CODES', 'AUTH-RESP-CODE', 'PIPELINING', 'IMPLEMENTATION PEC-Partner'], 'signed in: nothing left to sign in with');
  t.equal(await client.command(`USER ${alice.address}`), '-ERR Already signed in');
  t.equal(await client.command('QUIT'), `+OK ${SERVER_NAME} POP3 server signing off`);
  t.ok(await client.closedWithin(2000), 'QUIT closes the connection');
  await settle();

  // POP3S: AUTH PLAIN with an initial response, with a continuation, cancelled, and an unknown mechanism.
  const s1 = (await Pop3Client.connect(pop3.tlsPort, { tls: true })).client;
  t.same(await s1.list('CAPA'), ['TOP', 'UIDL', 'RESP-CODES', 'AUTH-RESP-CODE', 'PIPELINING', 'USER', 'SASL PLAIN', 'IMPLEMENTATION PEC-Partner']);
  t.same(await s1.list('AUTH'), ['PLAIN'], 'bare AUTH lists the mechanisms');
  t.equal(await s1.command('AUTH CRAM-MD5'), '-ERR Unsupported SASL mechanism: PLAIN is offered');
  t.equal(await s1.command('AUTH PLAIN'), '+ ');
  t.equal(await s1.command('*'), '-ERR Authentication cancelled');
  t.equal(await s1.command(`AUTH PLAIN ${plain('', alice.address, alice.password)}`), signedInLine);
  t.equal(await s1.command('QUIT'), `+OK ${SERVER_NAME} POP3 server signing off`);
  await settle();

  const s2 = (await Pop3Client.connect(pop3.tlsPort, { tls: true })).client;
  t.equal(await s2.command('auth plain'), '+ ', 'commands are case-insensitive');
  // The holder may name its own mailbox as the authorization identity.
  t.equal(await s2.command(plain(alice.address, alice.address, alice.password)), signedInLine);
  t.equal(await s2.command('QUIT'), `+OK ${SERVER_NAME} POP3 server signing off`);
  await settle();

  // Wrong credentials: [AUTH]; the third failure in a session closes it.
  const s3 = (await Pop3Client.connect(pop3.tlsPort, { tls: true })).client;
  t.equal(await s3.command(`AUTH PLAIN ${plain('', alice.address, 'wrong-password')}`), '-ERR [AUTH] Invalid credentials');
  const bob = await open('bob');
  t.equal(await s3.command(`AUTH PLAIN ${plain(bob.address, alice.address, alice.password)}`), '-ERR [AUTH] Invalid credentials', 'a holder acts for no other mailbox');
  t.equal(await s3.command(`USER ${alice.address}`), '+OK Send PASS');
  t.equal(await s3.command('PASS wrong again'), '-ERR [AUTH] Invalid credentials');
  t.ok(await s3.closedWithin(2000), 'closed after the third failed login');
  const closedAfterFailures = logged.filter((e) => e.message === 'POP3 session closed after failed logins');
  t.equal(closedAfterFailures.length, 1);
  t.match(closedAfterFailures[0], { level: 'warn', fields: { door: 'pop3s', failures: 3 } });
  t.notOk(JSON.stringify(logged).includes('wrong again'), 'passwords are never logged');

  // A mailbox that may not be signed in to (expired): [AUTH] with the access layer's reason, once the password is right.
  await db.update(mailboxes).set({ status: 'expired' }).where(eq(mailboxes.id, bob.id));
  const s4 = (await Pop3Client.connect(pop3.tlsPort, { tls: true })).client;
  t.equal(await s4.command(`USER ${bob.address}`), '+OK Send PASS');
  // The reason is the access layer's own text; the door's part is the [AUTH] code in front of it.
  const unavailable = await s4.command(`PASS ${bob.password}`);
  t.match(unavailable, /^-ERR \[AUTH\] \S/);
  t.not(unavailable, '-ERR [AUTH] Invalid credentials', 'not taken for a wrong password');
  t.equal(await s4.command(`USER ${bob.address}`), '+OK Send PASS');
  t.equal(await s4.command('PASS not-even-the-password'), '-ERR [AUTH] Invalid credentials', 'with a wrong password it says nothing about the mailbox');
  t.equal(await s4.command('QUIT'), `+OK ${SERVER_NAME} POP3 server signing off`);
  await db.update(mailboxes).set({ status: 'active' }).where(eq(mailboxes.id, bob.id));
});

t.test('STAT, LIST, UIDL, RETR and TOP give the stored bytes exactly; RETR marks \\Seen, TOP does not; a snapshot per session', async (t) => {
  const carol = await open('carol');
  const dots = crlf('From: mario@example.it\nTo: carol@pec.example.it\nSubject: Punti\nMessage-ID: <dots@example.it>\n\nPrima riga\n.riga con punto\n.\n..\n...tre\nfine\n');
  // A header over 64 KiB, so that TOP reads the message in growing pieces; a body of 2 MiB in 76-character lines.
  const bigHeader = Array.from({ length: 1200 }, (_, i) => `X-Trace-${i}: ${'t'.repeat(60)}\r\n`).join('');
  const bigBody = Array.from({ length: 28_000 }, (_, i) => `${i % 50 === 0 ? '.' : ''}${randomBytes(36).toString('hex').slice(0, 70)}\r\n`).join('');
  const big = Buffer.from(`Subject: grande\r\n${bigHeader}\r\n${bigBody}`, 'latin1');
  const bareLf = Buffer.from('Subject: lf\n\nriga\n.punto\n', 'latin1');
  const noFinalLineEnd = Buffer.from('Subject: fine\r\n\r\nsenza a capo', 'latin1');
  const headerOnly = Buffer.from('Subject: solo intestazione\r\nX-Empty: yes\r\n', 'latin1');
  const eightBit = Buffer.concat([Buffer.from('Subject: =?utf-8?q?citt=C3=A0?=\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n', 'latin1'), Buffer.from([0xe0, 0xe8, 0xec, 0x0d, 0x0a, 0x00, 0x7f, 0xff, 0x0d, 0x0a])]);
  const contents = [dots, big, bareLf, noFinalLineEnd, headerOnly, eightBit];
  for (const content of contents) await deliver(carol, content);
  const rows = await stored(carol);
  const validity = await uidValidity(carol);
  const total = contents.reduce((sum, c) => sum + c.length, 0);

  const client = await signedIn(carol);
  t.equal(await client.command('STAT'), `+OK ${contents.length} ${total}`);
  t.same(await client.list('LIST'), contents.map((c, i) => `${i + 1} ${c.length}`));
  t.equal(await client.command('LIST 2'), `+OK 2 ${big.length}`);
  t.same(await client.list('UIDL'), rows.map((r, i) => `${i + 1} ${validity}.${r.uid}`), 'UIDL is <UIDVALIDITY>.<UID>');
  t.equal(await client.command('UIDL 3'), `+OK 3 ${validity}.${rows[2]!.uid}`);
  for (const bad of ['LIST 0', 'LIST 7', 'UIDL 99999999999', 'RETR x', 'RETR', 'TOP 1', 'TOP 1 -1', 'TOP 1 a', 'DELE', 'LIST 1 2', 'STAT 1']) {
    t.match(await client.command(bad), /^-ERR /, `${bad}: -ERR`);
  }

  // RETR: the stored bytes, dot-stuffed on the wire.
  const first = await client.multiCommand('RETR 1');
  t.equal(first.status, `+OK ${dots.length} octets`);
  t.ok(first.body!.toString('latin1').includes('\r\n..riga con punto\r\n..\r\n...\r\n....tre\r\n'), 'lines starting with "." are stuffed on the wire');
  t.ok(unstuff(first.body!).equals(dots), 'message 1: byte-exact');
  for (const [index, content] of contents.entries()) {
    const retr = await client.multiCommand(`RETR ${index + 1}`);
    t.equal(retr.status, `+OK ${content.length} octets`);
    t.ok(unstuff(retr.body!).equals(onTheWire(content)), `message ${index + 1}: the stored bytes${content.equals(onTheWire(content)) ? ' exactly' : ', with CRLF line ends'}`);
  }
  t.ok(unstuff((await client.multiCommand('RETR 2')).body!).equals(big), 'a 2 MiB message, byte-exact');
  t.ok(unstuff((await client.multiCommand('RETR 6')).body!).equals(eightBit), '8-bit and NUL bytes pass unchanged');

  // TOP: the header, the blank line and n body lines.
  t.ok(unstuff((await client.multiCommand('TOP 1 0')).body!).equals(dots.subarray(0, dots.indexOf('\r\n\r\n') + 4)), 'TOP 1 0: the header');
  const top2 = await client.multiCommand('TOP 1 2');
  t.equal(top2.status, '+OK Top of message follows');
  t.ok(top2.body!.toString('latin1').endsWith('\r\n\r\nPrima riga\r\n..riga con punto\r\n'), 'TOP 1 2 is dot-stuffed too');
  t.ok(unstuff(top2.body!).equals(dots.subarray(0, dots.indexOf('.riga con punto') + '.riga con punto\r\n'.length)));
  const bigTop = await client.multiCommand('TOP 2 3');
  let bigEnd = big.indexOf('\r\n\r\n') + 4;
  for (let line = 0; line < 3; line++) bigEnd = big.indexOf('\r\n', bigEnd) + 2;
  t.ok(unstuff(bigTop.body!).equals(big.subarray(0, bigEnd)), 'TOP on a header larger than the first read');
  t.ok(unstuff((await client.multiCommand('TOP 5 10')).body!).equals(headerOnly), 'a message without a body: all of it');
  t.ok(unstuff((await client.multiCommand('TOP 3 1')).body!).equals(Buffer.from('Subject: lf\r\n\r\nriga\r\n')));

  // Messages arriving after sign-in belong to the next session (RFC 1939 §8: the maildrop is what it was at login).
  const later = crlf('Subject: dopo\n\narrivato dopo\n');
  await deliver(carol, later);
  t.equal(await client.command('STAT'), `+OK ${contents.length} ${total}`, 'not in this session');
  t.equal(await client.command('NOOP'), '+OK');
  t.equal(await client.command('QUIT'), `+OK ${SERVER_NAME} POP3 server signing off`);
  await settle();
  t.same((await stored(carol)).map((r) => r.seen), [true, true, true, true, true, true, false], 'RETR marked each message it sent \\Seen; the new one is unseen');
  await db.update(mailboxMessages).set({ seen: false }).where(eq(mailboxMessages.mailboxId, carol.id));

  const again = await signedIn(carol);
  t.equal(await again.command('STAT'), `+OK ${contents.length + 1} ${total + later.length}`, 'the next session sees it');
  t.same(await again.list('UIDL'), [...rows.map((r, i) => `${i + 1} ${validity}.${r.uid}`), `7 ${validity}.${rows[5]!.uid! + 1}`], 'the UIDLs of the old messages are unchanged');
  await again.multiCommand('TOP 7 0');
  t.equal(await again.command('QUIT'), `+OK ${SERVER_NAME} POP3 server signing off`);
  await settle();
  t.same((await stored(carol)).map((r) => r.seen), [false, false, false, false, false, false, false], 'TOP does not mark \\Seen');
});

t.test('DELE + QUIT moves messages to Trash; a dropped connection changes nothing; RSET; messages moved meanwhile are skipped', async (t) => {
  const dave = await open('dave');
  const contents = [crlf('Subject: d1\n\nuno\n'), crlf('Subject: d2\n\ndue\n'), crlf('Subject: d3\n\ntre\n')];
  for (const content of contents) await deliver(dave, content);
  const before = await stored(dave);
  const validity = await uidValidity(dave);

  // Marks, RSET, and a connection that drops without QUIT.
  const a1 = await signedIn(dave);
  t.equal(await a1.command('DELE 1'), '+OK Message 1 deleted: it moves to Trash when the session ends with QUIT');
  t.equal(await a1.command('STAT'), `+OK 2 ${contents[1]!.length + contents[2]!.length}`, 'a deleted message no longer counts');
  t.equal(await a1.command('LIST 1'), '-ERR Message 1 is deleted');
  t.equal(await a1.command('RETR 1'), '-ERR Message 1 is deleted');
  t.equal(await a1.command('DELE 1'), '-ERR Message 1 is deleted');
  t.same(await a1.list('LIST'), [`2 ${contents[1]!.length}`, `3 ${contents[2]!.length}`]);
  t.equal(await a1.command('RSET'), `+OK 3 messages (${contents.reduce((s, c) => s + c.length, 0)} octets)`);
  t.equal(await a1.command('LIST 1'), `+OK 1 ${contents[0]!.length}`, 'RSET takes the marks back');
  t.equal(await a1.command('DELE 1'), '+OK Message 1 deleted: it moves to Trash when the session ends with QUIT');
  t.equal(await a1.command('DELE 2'), '+OK Message 2 deleted: it moves to Trash when the session ends with QUIT');
  a1.destroy();
  await settle();
  t.same((await stored(dave)).map((r) => r.uid), before.map((r) => r.uid), 'no QUIT, no UPDATE: the inbox is as it was');
  t.same(await stored(dave, 'trash'), []);

  // Another door moves message 2 to the archive while a POP3 session has it marked: QUIT moves what is still there.
  const a2 = await signedIn(dave);
  t.equal(await a2.command('DELE 1'), '+OK Message 1 deleted: it moves to Trash when the session ends with QUIT');
  t.equal(await a2.command('DELE 2'), '+OK Message 2 deleted: it moves to Trash when the session ends with QUIT');
  const moved = await rest(dave.address, dave.password, 'PATCH', `/v1/mailboxes/${dave.id}/messages/${before[1]!.id}`, { folder: 'archive' });
  t.equal(moved.status, 200);
  t.equal(await a2.command('QUIT'), `+OK ${SERVER_NAME} POP3 server signing off (1 message moved to Trash)`);
  t.ok(await a2.closedWithin(2000));

  // Every other door sees it at once: the REST API lists message 1 in Trash, message 2 in the archive.
  const trash = await rest(dave.address, dave.password, 'GET', `/v1/mailboxes/${dave.id}/messages?folder=trash`);
  t.equal(trash.status, 200);
  t.same(trash.body.data.map((m: { id: string }) => m.id), [before[0]!.id], 'DELE moved message 1 to Trash');
  t.same((await rest(dave.address, dave.password, 'GET', `/v1/mailboxes/${dave.id}/messages?folder=archive`)).body.data.map((m: { id: string }) => m.id), [before[1]!.id]);
  t.same((await rest(dave.address, dave.password, 'GET', `/v1/mailboxes/${dave.id}/messages?folder=inbox`)).body.data.map((m: { id: string }) => m.id), [before[2]!.id]);
  const [inTrash] = await stored(dave, 'trash');
  t.ok(inTrash!.content.equals(contents[0]!), 'the bytes in Trash are the message unchanged');

  // The next session sees what is left, with its UIDL unchanged.
  const a3 = await signedIn(dave);
  t.equal(await a3.command('STAT'), `+OK 1 ${contents[2]!.length}`);
  t.equal(await a3.command('UIDL 1'), `+OK 1 ${validity}.${before[2]!.uid}`);
  t.equal(await a3.command('QUIT'), `+OK ${SERVER_NAME} POP3 server signing off`);
});

t.test('delegates: a read-only one may read but not DELE or mark \\Seen; a send-only one sees only its own transactions', async (t) => {
  const erin = await open('erin');
  const frank = await open('frank');
  // A real PEC message: frank writes to erin, the engine delivers a signed transport envelope to erin's inbox.
  const sent = await rest(frank.address, frank.password, 'POST', `/v1/mailboxes/${frank.id}/messages`, { to: [erin.address], subject: 'Per il POP3', text: 'ciao\r\n.punto\r\n' });
  t.equal(sent.status, 201);
  await h.app.pec.drain();
  const inbox = await stored(erin);
  t.equal(inbox.length, 1, 'the transport envelope is in the inbox');

  const invite = async (box: Box, email: string, mode: string) => {
    const invited = await rest(box.address, box.password, 'POST', `/v1/mailboxes/${box.id}/delegations`, { email, mode });
    if (invited.status !== 201) throw new Error(JSON.stringify(invited.body));
    const password = `${email.split('@')[0]}-secret-2026`;
    const accepted = await h.app.inject({ method: 'POST', url: '/v1/delegation-invitations/accept', payload: { token: invited.body.invitation.token, password } });
    if (accepted.statusCode !== 200) throw new Error(accepted.body);
    return { address: email, password };
  };
  const reader = await invite(erin, 'lettore@studio.example', 'read_only');
  const sender = await invite(frank, 'mittente@studio.example', 'send_only');

  const r = await signedIn(reader);
  t.equal(await r.command('STAT'), `+OK 1 ${inbox[0]!.content.length}`);
  const retr = await r.multiCommand('RETR 1');
  t.ok(unstuff(retr.body!).equals(inbox[0]!.content), 'the signed envelope, byte-exact');
  t.equal(await r.command('DELE 1'), '-ERR Deleting messages is not allowed for this sign-in (delegation mode read_only)');
  t.equal(await r.command('QUIT'), `+OK ${SERVER_NAME} POP3 server signing off`);
  await settle();
  t.same((await stored(erin)).map((m) => m.seen), [false], 'a read-only sign-in marks nothing \\Seen');

  // AUTH PLAIN with the mailbox as authorization identity: the collaborator signs in to that mailbox.
  const r2 = (await Pop3Client.connect(pop3.tlsPort, { tls: true })).client;
  t.equal(await r2.command(`AUTH PLAIN ${plain(erin.address, reader.address, reader.password)}`), `+OK Signed in: 1 messages (${inbox[0]!.content.length} octets)`);
  t.equal(await r2.command('QUIT'), `+OK ${SERVER_NAME} POP3 server signing off`);
  await settle();

  // What frank received is not the send-only collaborator's to see (it sees its own transactions, in Receipts and Sent).
  await deliver(frank, crlf('Subject: per frank\n\nnon per il delegato\n'));
  const s = await signedIn(sender);
  t.equal(await s.command('STAT'), '+OK 0 0', 'a send-only collaborator sees none of what the holder received');
  t.equal(await s.command('QUIT'), `+OK ${SERVER_NAME} POP3 server signing off`);
  const holder = await signedIn(frank);
  t.match(await holder.command('STAT'), /^\+OK 1 \d+$/, 'the holder does');
  t.equal(await holder.command('QUIT'), `+OK ${SERVER_NAME} POP3 server signing off`);
});

t.test('pipelining: commands sent together are answered in order', async (t) => {
  const gina = await open('gina');
  const m1 = crlf('Subject: p1\n\n.uno\n');
  const m2 = crlf('Subject: p2\n\ndue\n');
  await deliver(gina, m1);
  await deliver(gina, m2);
  const validity = await uidValidity(gina);
  const [first] = await stored(gina);

  // Sign-in and a whole session in one write.
  const { client } = await Pop3Client.connect(pop3.tlsPort, { tls: true });
  client.write(`USER ${gina.address}\r\nPASS ${gina.password}\r\nSTAT\r\nLIST\r\nUIDL 1\r\nRETR 1\r\nTOP 2 0\r\nBOGUS\r\nDELE 2\r\nLIST 2\r\nRSET\r\nNOOP\r\n`);
  t.equal(await client.line(), '+OK Send PASS');
  t.equal(await client.line(), `+OK Signed in: 2 messages (${m1.length + m2.length} octets)`);
  t.equal(await client.line(), `+OK 2 ${m1.length + m2.length}`);
  t.same((await client.multi()).body!.toString('latin1'), `1 ${m1.length}\r\n2 ${m2.length}\r\n`);
  t.equal(await client.line(), `+OK 1 ${validity}.${first!.uid}`);
  t.ok(unstuff((await client.multi()).body!).equals(m1));
  t.same((await client.multi()).body!.toString('latin1'), 'Subject: p2\r\n\r\n');
  t.equal(await client.line(), '-ERR Unknown command');
  t.match(await client.line(), /^\+OK Message 2 deleted/);
  t.equal(await client.line(), '-ERR Message 2 is deleted');
  t.equal(await client.line(), `+OK 2 messages (${m1.length + m2.length} octets)`);
  t.equal(await client.line(), '+OK');

  // Hundreds at once (the server stops reading while its queue is long, and goes on).
  client.write('NOOP\r\n'.repeat(500));
  const answers: Array<string | null> = [];
  for (let i = 0; i < 500; i++) answers.push(await client.line());
  t.ok(answers.every((line) => line === '+OK'), '500 pipelined NOOPs, 500 +OK');
  t.equal(await client.command('QUIT'), `+OK ${SERVER_NAME} POP3 server signing off`);
});

t.test('malformed and oversized input is answered and the session goes on; TLS garbage ends only its connection', async (t) => {
  const hugo = await open('hugo');
  await deliver(hugo, crlf('Subject: h\n\nhugo\n'));
  const { client } = await Pop3Client.connect(pop3.tlsPort, { tls: true });
  t.equal(await client.command(`NOOP ${'x'.repeat(300)}`), '-ERR Line too long', 'over 255 octets for a command');
  t.equal(await client.command(`STAT ${'x'.repeat(247)}`), '-ERR Sign in first', '255 octets with the CRLF is still a command');
  t.equal(await client.command('A'.repeat(10_000)), '-ERR Line too long');
  // An endless line: dropped as it comes, answered once when it ends.
  for (let i = 0; i < 20; i++) client.write('B'.repeat(10_000));
  t.equal(await client.line(), '-ERR Line too long', 'answered as soon as it is too long');
  client.write('B'.repeat(10_000));
  client.write('\r\nCAPA\r\n');
  t.equal((await client.multi()).status, '+OK Capability list follows', 'the rest of the endless line is dropped; the next command is answered');
  t.equal(await client.command(''), '-ERR Unknown command');
  client.write(Buffer.from([0x00, 0x01, 0xff, 0xfe, 0x0d, 0x0a]));
  t.equal(await client.line(), '-ERR Unknown command', 'binary garbage');
  t.equal(await client.command('APOP user 0123456789abcdef0123456789abcdef'), '-ERR APOP is not offered: sign in with USER and PASS or AUTH PLAIN, over TLS');
  t.equal(await client.command(`USER ${'u'.repeat(300)}@${DOMAIN}`), '+OK Send PASS', 'a login line may be longer than a command');
  t.equal(await client.command(`PASS ${'p'.repeat(3000)}`), '-ERR [AUTH] Invalid credentials', 'a 3000-character password is checked (and wrong)');
  t.equal(await client.command('AUTH PLAIN not*base64'), '-ERR [AUTH] Malformed SASL PLAIN response');
  client.write('USER a\nPASS b\n');
  t.equal(await client.line(), '+OK Send PASS', 'a bare LF ends a line too');
  t.equal(await client.line(), '-ERR [AUTH] Invalid credentials');
  t.ok(await client.closedWithin(2000), 'the third failure (the malformed response counts) closes the session');

  // The session limit's bookkeeping is right after all that: a proper session works.
  await settle();
  const after = await signedIn(hugo);
  t.equal(await after.command(`RETR ${'9'.repeat(20)}`), '-ERR Invalid message number');
  t.equal(await after.command('DELE 0'), '-ERR There is no message 0');
  t.equal(await after.command('QUIT'), `+OK ${SERVER_NAME} POP3 server signing off`);

  // Not TLS on the POP3S port; garbage after STLS; garbage under TLS; a handshake cut in the middle; a reset mid-session.
  const raw = net.connect({ port: pop3.tlsPort, host: '127.0.0.1' });
  raw.on('error', () => undefined);
  raw.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  t.ok(await new Promise<boolean>((resolve) => { raw.once('close', () => resolve(true)); setTimeout(() => resolve(false), 3000); }), 'plain text on the POP3S port: closed');
  const upgraded = (await Pop3Client.connect(pop3.port)).client;
  t.equal(await upgraded.command('STLS'), '+OK Begin TLS negotiation');
  upgraded.write(`${'\x16\x03\x01\x00\x05hello'}${randomBytes(500).toString('latin1')}\r\n`);
  t.ok(await upgraded.closedWithin(3000), 'garbage instead of a TLS hello after STLS: closed');
  const underneath = (await Pop3Client.connect(pop3.port)).client;
  await underneath.starttls();
  t.equal(await underneath.command('NOOP'), '-ERR Sign in first');
  underneath.writeBeneathTls(Buffer.from('NOOP\r\n'.repeat(10)));
  t.ok(await underneath.closedWithin(3000), 'plain text under an established TLS session: closed');
  const cut = net.connect({ port: pop3.tlsPort, host: '127.0.0.1' });
  cut.on('error', () => undefined);
  cut.write(Buffer.from('160301020001', 'hex'));
  await settle();
  cut.destroy();
  const reset = await signedIn(hugo);
  reset.write('RETR 1\r\n');
  reset.destroy();
  await settle();

  const proper = await signedIn(hugo);
  t.equal(await proper.command('STAT'), `+OK 1 ${crlf('Subject: h\n\nhugo\n').length}`, 'the servers still answer a proper session');
  t.equal(await proper.command('QUIT'), `+OK ${SERVER_NAME} POP3 server signing off`);
  t.ok(logged.some((e) => e.message === 'POP3 connection ended by an error' && e.level === 'info'), 'TLS failures are logged as the peer\'s doing');
  t.same(logged.filter((e) => e.level === 'error'), [], 'nothing went wrong on our side');
});

t.test('idle sessions are closed without a response and without the UPDATE state', async (t) => {
  const ivy = await open('ivy');
  await deliver(ivy, crlf('Subject: i\n\nivy\n'));
  const client = await signedIn(ivy);
  t.match(await client.command('DELE 1'), /^\+OK/);
  const started = Date.now();
  t.equal(await client.line(), null, 'closed, nothing said (RFC 1939 §3 autologout)');
  t.ok(Date.now() - started >= LIMITS.idleTimeoutMs - 200, 'after the idle timeout');
  t.equal((await stored(ivy)).length, 1, 'the DELE of a timed-out session is not applied');

  // Before sign-in, and a TLS handshake that never starts.
  const waiting = (await Pop3Client.connect(pop3.port)).client;
  t.ok(await waiting.closedWithin(LIMITS.idleTimeoutMs + 1500), 'an idle session before sign-in');
  const silent = net.connect({ port: pop3.tlsPort, host: '127.0.0.1' });
  silent.on('error', () => undefined);
  t.ok(await new Promise<boolean>((resolve) => { silent.once('close', () => resolve(true)); setTimeout(() => resolve(false), LIMITS.idleTimeoutMs + 1500); }), 'a TLS client that never says hello');
});

t.test('a client that asks for a large message and reads none of it is closed after the idle timeout', { skip: python ? false : 'python3 is not installed' }, async (t) => {
  // Waiting for the client to read counts as idle too. Its receive buffer is kept small (SO_RCVBUF, which Node's
  // sockets cannot set, hence Python), so that the kernel's buffers cannot take the whole message.
  const una = await open('una');
  const big = Buffer.from(`Subject: big\r\n\r\n${`${'z'.repeat(78)}\r\n`.repeat(100_000)}`, 'latin1');
  await deliver(una, big);
  const script = `
import socket, ssl, sys, time
port, user, password, wait = int(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4])
raw = socket.socket()
raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
raw.connect(('127.0.0.1', port))
conn = ssl._create_unverified_context().wrap_socket(raw)
lines = conn.makefile('rb')
lines.readline()
conn.sendall(('USER %s\\r\\nPASS %s\\r\\n' % (user, password)).encode())
lines.readline()
signed_in = lines.readline().decode().strip()
conn.sendall(b'RETR 1\\r\\n')
time.sleep(wait)
received = 0
try:
    while True:
        chunk = lines.read1(65536)
        if not chunk:
            break
        received += len(chunk)
except (ssl.SSLError, OSError):
    pass
print(signed_in)
print(received)
`;
  const idleClosures = () => logged.filter((e) => e.message === 'POP3 session closed: idle timeout').length;
  const before = idleClosures();
  const { stdout } = await run('python3', ['-c', script, String(pop3.tlsPort), una.address, una.password, String((LIMITS.idleTimeoutMs + 1500) / 1000)], { timeout: 60_000 });
  const [signedInLine, received] = stdout.trim().split('\n');
  t.match(signedInLine, /^\+OK Signed in: 1 messages/);
  t.equal(idleClosures(), before + 1, 'the session was closed while the client did not read');
  // How much reached the client depends on the kernel's socket buffers, which loopback autotuning may grow past the
  // message: when the whole message got out, RETR completed and \Seen is right; when it did not, it must stay unseen.
  const seen = (await stored(una)).map((m) => m.seen);
  if (Number(received) < big.length) t.same(seen, [false], `the client got ${received} of ${big.length} bytes: what it did not read is not \\Seen`);
  else t.same(seen, [true], 'the kernel took the whole message: the RETR was complete, the message is \\Seen');
});

t.test('limits: sessions per mailbox (-ERR [IN-USE]), per remote address and in all', async (t) => {
  const jo = await open('jo');
  await deliver(jo, crlf('Subject: j\n\njo\n'));
  const small = await startPop3Servers(db, {
    host: '127.0.0.1', port: 0, tlsPort: 0, tls: tlsMaterial, serverName: SERVER_NAME, log,
    limits: { maxClients: 4, maxClientsPerAddress: 2, maxSessionsPerMailbox: 2, idleTimeoutMs: 5000 },
  });
  t.teardown(() => small.close());
  const connect = async (address: string, secure = true) => Pop3Client.connect(secure ? small.tlsPort : small.port, { tls: secure, localAddress: address });
  const login = async (client: Pop3Client) => {
    await client.command(`USER ${jo.address}`);
    return client.command(`PASS ${jo.password}`);
  };

  // Two sessions on the mailbox; the third login is refused [IN-USE] and may try again once one has ended.
  const c1 = (await connect('127.0.0.1')).client;
  const c2 = (await connect('127.0.0.2')).client;
  const c3 = (await connect('127.0.0.3')).client;
  t.match(await login(c1), /^\+OK Signed in/);
  t.match(await login(c2), /^\+OK Signed in/);
  t.equal(await login(c3), '-ERR [IN-USE] This mailbox already has 2 POP3 sessions open; close one and try again');
  t.equal(await login(c3), '-ERR [IN-USE] This mailbox already has 2 POP3 sessions open; close one and try again', 'a busy mailbox is no failed login: the session stays');
  t.equal(await c1.command('QUIT'), `+OK ${SERVER_NAME} POP3 server signing off`);
  await settle();
  t.match(await login(c3), /^\+OK Signed in/, 'a place came free');
  c2.destroy();
  await settle();
  const c4 = (await connect('127.0.0.4', false)).client;
  await c4.starttls();
  t.match(await login(c4), /^\+OK Signed in/, 'a dropped connection frees its place too; the count spans both doors');

  // Per remote address, on the POP3S port: the refusal comes over TLS.
  const d1 = await connect('127.0.0.5');
  const d2 = await connect('127.0.0.5');
  t.match(d1.greeting, /^\+OK/);
  t.match(d2.greeting, /^\+OK/);
  const d3 = await connect('127.0.0.5');
  t.equal(d3.greeting, '-ERR [SYS/TEMP] Too many connections from your address, try again later');
  t.ok(await d3.client.closedWithin(2000));
  // In all: c3, d1 and d2 are open on this door; one more fits, the next does not.
  const e1 = await connect('127.0.0.6');
  t.match(e1.greeting, /^\+OK/);
  const e2 = await connect('127.0.0.7');
  t.equal(e2.greeting, '-ERR [SYS/TEMP] Too many connections, try again later');
  // The STLS door counts its own.
  const f1 = await connect('127.0.0.7', false);
  t.match(f1.greeting, /^\+OK/);

  // Closing the servers: an idle session is told and closed.
  const closing = small.close();
  t.equal(await e1.client.line(), '-ERR [SYS/TEMP] The server is shutting down, try again later');
  await closing;
  t.ok(c3.closed || (await c3.closedWithin(1000)), 'every session is closed');
  t.equal((await stored(jo)).length, 1, 'and nothing was moved');
});

t.test('Python poplib fetches every message byte-exact, over POP3S and over STLS', { skip: python ? false : 'python3 is not installed' }, async (t) => {
  const kim = await open('kim');
  const lia = await open('lia');
  t.equal((await rest(lia.address, lia.password, 'POST', `/v1/mailboxes/${lia.id}/messages`, { to: [kim.address], subject: 'Per poplib', text: 'riga\r\n.con punto\r\n' })).status, 201);
  await h.app.pec.drain();
  await deliver(kim, crlf('Subject: punti\n\n.\n..\n.a\n'));
  await deliver(kim, Buffer.from(`Subject: lungo\r\n\r\n${`${'q'.repeat(998)}\r\n`.repeat(2000)}`, 'latin1'));
  const inbox = await stored(kim);
  const validity = await uidValidity(kim);

  const script = `
import base64, json, poplib, ssl, sys
port, tls_port, user, password = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
context = ssl._create_unverified_context()
out = {}
p = poplib.POP3_SSL('127.0.0.1', int(tls_port), context=context, timeout=30)
out['welcome'] = p.getwelcome().decode()
out['capa'] = sorted(p.capa().keys())
p.user(user)
p.pass_(password)
out['stat'] = list(p.stat())
out['uidl'] = [u.decode() for u in p.uidl()[1]]
out['messages'] = []
for i in range(1, out['stat'][0] + 1):
    response, lines, octets = p.retr(i)
    out['messages'].append(base64.b64encode(b'\\r\\n'.join(lines) + b'\\r\\n').decode())
out['quit'] = p.quit().decode()
q = poplib.POP3('127.0.0.1', int(port), timeout=30)
out['capa_clear'] = sorted(q.capa().keys())
q.stls(context=context)
out['capa_tls'] = sorted(q.capa().keys())
q.user(user)
q.pass_(password)
response, lines, octets = q.top(1, 0)
out['top'] = base64.b64encode(b'\\r\\n'.join(lines) + b'\\r\\n').decode()
q.quit()
print(json.dumps(out))
`;
  const { stdout } = await run('python3', ['-c', script, String(pop3.port), String(pop3.tlsPort), kim.address, kim.password], { timeout: 60_000, maxBuffer: 64 * 1024 * 1024 });
  const out = JSON.parse(stdout) as { welcome: string; capa: string[]; capa_clear: string[]; capa_tls: string[]; stat: number[]; uidl: string[]; messages: string[]; quit: string; top: string };
  t.equal(out.welcome, `+OK ${SERVER_NAME} POP3 server ready`);
  t.same(out.capa, ['AUTH-RESP-CODE', 'IMPLEMENTATION', 'PIPELINING', 'RESP-CODES', 'SASL', 'TOP', 'UIDL', 'USER']);
  t.same(out.capa_clear, ['AUTH-RESP-CODE', 'IMPLEMENTATION', 'PIPELINING', 'RESP-CODES', 'STLS', 'TOP', 'UIDL']);
  t.same(out.capa_tls, out.capa);
  t.same(out.stat, [inbox.length, inbox.reduce((s, m) => s + m.content.length, 0)]);
  t.same(out.uidl, inbox.map((m, i) => `${i + 1} ${validity}.${m.uid}`));
  t.equal(out.messages.length, 3);
  out.messages.forEach((message, i) => t.ok(Buffer.from(message, 'base64').equals(inbox[i]!.content), `message ${i + 1} (${inbox[i]!.content.length} bytes) byte-exact`));
  const envelope = inbox[0]!.content;
  t.ok(Buffer.from(out.top, 'base64').equals(envelope.subarray(0, envelope.indexOf('\r\n\r\n') + 4)), 'TOP 1 0 over STLS: the header of the transport envelope');
  t.equal(out.quit, `+OK ${SERVER_NAME} POP3 server signing off`);
  t.equal((await stored(kim)).length, 3, 'poplib deleted nothing');
});

t.test('fetchmail over POP3S delivers every message to an MDA; keep mode deletes nothing', { skip: fetchmail ? false : 'fetchmail is not installed' }, async (t) => {
  const max = await open('max');
  const ned = await open('ned');
  t.equal((await rest(ned.address, ned.password, 'POST', `/v1/mailboxes/${ned.id}/messages`, { to: [max.address], subject: 'Per fetchmail', text: 'riga\r\n.con punto\r\n' })).status, 201);
  await h.app.pec.drain();
  await deliver(max, crlf('From: mario@example.it\nTo: max@pec.example.it\nSubject: punti\nMessage-ID: <fm@example.it>\n\n.\n..\n.a\nfine\n'));
  const inbox = await stored(max);

  const dir = await mkdtemp(path.join(os.tmpdir(), 'pop3-fetchmail-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const mda = path.join(dir, 'deliver.sh');
  await writeFile(mda, `#!/bin/sh\ncat > "$(mktemp ${dir}/out/message.XXXXXX)"\n`);
  await chmod(mda, 0o700);
  await run('mkdir', [path.join(dir, 'out')]);
  const rc = path.join(dir, 'fetchmailrc');
  // keep: nothing deleted; fetchall: RETR every message; no stripcr, no rewrite: the bytes as the server sent them.
  await writeFile(rc, [
    `poll 127.0.0.1 service ${pop3.tlsPort} protocol pop3 auth password timeout 30`,
    `  user "${max.address}" password "${max.password}"`,
    `  ssl no sslcertck keep fetchall no rewrite no stripcr mda "${mda}"`,
    '',
  ].join('\n'), { mode: 0o600 });
  const result = await run(fetchmail, ['-f', rc, '--nosyslog', '-v', '--idfile', path.join(dir, 'fetchids'), '--pidfile', path.join(dir, 'pid')], {
    timeout: 120_000, env: { ...process.env, HOME: dir, FETCHMAILHOME: dir },
  }).then((r) => ({ code: 0, output: r.stdout + r.stderr }), (error: { code?: number; stdout?: string; stderr?: string }) => ({ code: error.code ?? -1, output: `${error.stdout ?? ''}${error.stderr ?? ''}` }));
  t.equal(result.code, 0, 'fetchmail retrieved mail (exit 0)');
  if (result.code !== 0) t.comment(result.output);
  t.notOk(result.output.includes(max.password), 'the password appears nowhere in fetchmail\'s verbose log');

  const files = (await readdir(path.join(dir, 'out'))).sort();
  const delivered = await Promise.all(files.map((file) => readFile(path.join(dir, 'out', file))));
  t.equal(delivered.length, inbox.length, 'one delivery per message');
  // fetchmail puts one header field of its own at the top, folded over three lines:
  //   Received: from 127.0.0.1 [127.0.0.1]\r\n\tby <host> with POP3 (fetchmail-6.4.37)\r\n\tfor <local user> (single-drop); <date>\r\n
  // With `no rewrite` and `no stripcr` it changes nothing else: after that field comes the message as the server sent it.
  const received = /^Received: from 127\.0\.0\.1[^\r\n]*\r?\n(?:[ \t][^\r\n]*\r?\n)*/;
  const withoutReceived = delivered.map((bytes) => {
    const text = bytes.toString('latin1');
    t.match(text, received, 'fetchmail added its Received field');
    return Buffer.from(text.replace(received, ''), 'latin1');
  });
  for (const [i, message] of inbox.entries()) {
    t.ok(withoutReceived.some((bytes) => bytes.equals(message.content)), `message ${i + 1} (${message.content.length} bytes) delivered byte-exact after fetchmail's Received field`);
  }
  t.equal((await stored(max)).length, inbox.length, 'keep: nothing deleted or moved');
  t.same(await stored(max, 'trash'), []);
});
