// What any network peer may do to the provider's listening ports: port scans, resets, half TLS handshakes, bytes
// that are not the protocol, floods, endless lines, NUL bytes, password guessing, and messages no parser can take.
// None of it may end the process (tap fails the file on an uncaught exception, which is what an unhandled 'error'
// event of a server becomes), each server must still answer a proper session afterwards, and a refused message
// leaves nothing behind.
import { once } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import { count, eq } from 'drizzle-orm';
import nodemailer from 'nodemailer';
import t, { type Test } from 'tap';
import { logRegister, mailboxMessages, pecInboundMessages, pecJobs, pecTransactions } from '@pec-partner/db';
import { buildTransportEnvelope, newPecMessageId, signAndAssemble, toPostacert } from '../api/src/pec/messages/index.ts';
import { assertProcessableMessage, INBOUND_MIME_LIMITS, SUBMISSION_MIME_LIMITS } from '../api/src/pec/mime-limits.ts';
import { SIGN_IN_WINDOW_MS } from '../api/src/access/login-guard.ts';
import { startSmtpServers, type SmtpServers } from '../api/src/pec/smtp-servers.ts';
import { loadOrCreateTls } from '../api/src/pec/tls.ts';
import { api } from './helpers/fixtures.ts';
import { harness, type Harness } from './helpers/harness.ts';

const DOMAIN = 'pec.example.it';
/** Small enough for a test to reach each limit with a handful of loopback connections. */
const LIMITS = { maxClients: 12, maxClientsPerAddress: 5, idleTimeoutMs: 1500, authFailuresPerSession: 3 };
/** The lock-out all doors share, at 7 failures per address and per user name on these SMTP servers. */
const SIGN_IN_THROTTLE = { maxFailuresPerUser: 7, maxFailuresPerAddress: 7 };

interface Mailbox {
  id: string;
  address: string;
  password: string;
}

interface LogEntry {
  level: 'info' | 'warn' | 'error';
  fields: Record<string, unknown>;
  message: string;
}

interface Setup {
  h: Harness;
  http: string;
  smtp: SmtpServers;
  alice: Mailbox;
  bob: Mailbox;
  logged: LogEntry[];
}

async function setup(t: Test): Promise<Setup> {
  const h = await harness(t, { env: { PROVIDER_DOMAINS: DOMAIN, PEC_MAX_RECIPIENTS: '50' } });
  const http = await h.listen();
  const a = api(h, await h.partner());
  await a.topUp(50_000);
  const customer = await a.customer();
  const open = async (local: string): Promise<Mailbox> => {
    const password = `${local}-password-2026`;
    const created = await a.post('/v1/mailboxes', { local_part: local, domain: DOMAIN, customer, plan: 'pro', password });
    if (created.status !== 201) throw new Error(JSON.stringify(created.body));
    return { id: created.body.id, address: `${local}@${DOMAIN}`, password };
  };
  const logged: LogEntry[] = [];
  const keep = (level: LogEntry['level']) => (fields: object, message: string) => void logged.push({ level, fields: fields as Record<string, unknown>, message });
  const smtp = await startSmtpServers(h.database.db, h.app.pec, {
    host: '127.0.0.1', submissionPort: 0, submissionTlsPort: 0, inboundPort: 0, serverName: `mx.${DOMAIN}`,
    tls: await loadOrCreateTls({ certificateFile: undefined, privateKeyFile: undefined }, ['localhost']),
    limits: LIMITS,
    signInThrottle: SIGN_IN_THROTTLE,
    log: { info: keep('info'), warn: keep('warn'), error: keep('error') },
  });
  t.teardown(() => smtp.close());
  return { h, http, smtp, alice: await open('alice'), bob: await open('bob'), logged };
}

// ---------------------------------------------------------------------------------------------------------------
// A bare client: raw bytes, replies as the server sends them, TLS when asked.

class Wire {
  #socket: net.Socket;
  #buffer = '';
  #waiting: Array<(reply: string | null) => void> = [];
  readonly closed: Promise<void>;

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    this.#listen(socket);
  }

  /** Connects; with `greeting` (the default) waits for the server's first reply. */
  static async open(port: number, options: { tls?: boolean; localAddress?: string; greeting?: boolean } = {}): Promise<{ wire: Wire; greeting: string | null }> {
    const socket = options.tls
      ? tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false, ...(options.localAddress ? { localAddress: options.localAddress } : {}) })
      : net.connect({ port, host: '127.0.0.1', ...(options.localAddress ? { localAddress: options.localAddress } : {}) });
    socket.on('error', () => undefined);
    const opened = await first(socket, [options.tls ? 'secureConnect' : 'connect', 'error', 'close']);
    if (opened === 'error' || opened === 'close' || opened === 'timeout') throw new Error(`connection ${opened}`);
    const wire = new Wire(socket);
    return { wire, greeting: options.greeting === false ? null : await wire.reply() };
  }

  #listen(socket: net.Socket): void {
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      this.#buffer += chunk;
      this.#deliver();
    });
    socket.once('close', () => {
      for (const waiter of this.#waiting.splice(0)) waiter(null);
    });
  }

  #deliver(): void {
    // A reply is complete at its "NNN text" line; the lines before it are "NNN-text".
    for (let match; this.#waiting.length > 0 && (match = /^(?:\d{3}-[^\r\n]*\r\n)*\d{3}(?: [^\r\n]*)?\r\n/.exec(this.#buffer)); ) {
      this.#buffer = this.#buffer.slice(match[0].length);
      this.#waiting.shift()!(match[0]);
    }
  }

  /** The next whole reply, or null when the server closed the connection first. */
  reply(): Promise<string | null> {
    if (this.#socket.destroyed && !/\r\n/.test(this.#buffer)) return Promise.resolve(null);
    const next = new Promise<string | null>((resolve) => this.#waiting.push(resolve));
    this.#deliver();
    return next;
  }

  /** Whatever the server sent and no reply took, e.g. an HTTP response. */
  get unread(): string {
    return this.#buffer;
  }

  write(bytes: string | Buffer): void {
    this.#socket.write(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes);
  }

  command(line: string): Promise<string | null> {
    this.write(`${line}\r\n`);
    return this.reply();
  }

  /** STARTTLS, then the rest of the session inside TLS. */
  async starttls(): Promise<void> {
    const ready = await this.command('STARTTLS');
    if (!ready?.startsWith('220')) throw new Error(`STARTTLS refused: ${ready}`);
    const plain = this.#socket;
    plain.removeAllListeners('data');
    const secure = tls.connect({ socket: plain, rejectUnauthorized: false });
    secure.on('error', () => undefined);
    if ((await first(secure, ['secureConnect', 'error', 'close'])) !== 'secureConnect') throw new Error('TLS handshake failed');
    this.#socket = secure;
    this.#listen(secure);
  }

  end(): void {
    this.#socket.end();
  }

  destroy(): void {
    this.#socket.destroy();
  }
}

const plainAuth = (user: string, password: string) => `AUTH PLAIN ${Buffer.from(`\0${user}\0${password}`).toString('base64')}`;

/** Retries `check` while the server releases what the previous probe held (a closed session's count goes a tick later). */
async function eventually<T>(check: () => Promise<T>, ok: (value: T) => boolean): Promise<T> {
  let value = await check();
  for (let attempt = 0; attempt < 30 && !ok(value); attempt++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    value = await check();
  }
  return value;
}

interface Door {
  name: string;
  port: number;
  kind: 'http' | 'smtp' | 'smtp-tls';
  starttls: boolean;
}

const doors = (s: Setup): Door[] => [
  { name: 'HTTP', port: Number(new URL(s.http).port), kind: 'http', starttls: false },
  { name: 'submission (STARTTLS)', port: s.smtp.submissionPort, kind: 'smtp', starttls: true },
  { name: 'submission (implicit TLS)', port: s.smtp.submissionTlsPort, kind: 'smtp-tls', starttls: false },
  { name: 'inbound', port: s.smtp.inboundPort, kind: 'smtp', starttls: true },
];

/** One provider for the whole file: each test uses its own source addresses and user names where limits could meet. */
const s = await setup(t);

/** A proper session still works: GET /healthz → 200; greeting 220, EHLO → 250. */
async function answers(s: Setup, door: Door): Promise<string> {
  if (door.kind === 'http') {
    const response = await fetch(`${s.http}/healthz`).catch((error: Error) => ({ status: error.message }));
    return String(response.status);
  }
  const opened = await Wire.open(door.port, { tls: door.kind === 'smtp-tls' }).catch((error: Error) => ({ wire: null, greeting: error.message }));
  if (!opened.wire) return `connection failed: ${opened.greeting}`;
  const ehlo = opened.greeting?.startsWith('220') ? await opened.wire.command('EHLO client.example') : opened.greeting;
  opened.wire.destroy();
  return (ehlo ?? 'closed').split('\r\n')[0]!.slice(0, 3);
}

async function assertAnswers(t: Test, s: Setup, door: Door, after: string): Promise<void> {
  const expected = door.kind === 'http' ? '200' : '250';
  t.equal(await eventually(() => answers(s, door), (status) => status === expected), expected, `${door.name} still answers after ${after}`);
}

/** Which of `events` the emitter emits first (an 'error' included), or 'timeout': never a rejection. */
function first(emitter: NodeJS.EventEmitter, events: string[], timeoutMs = 5000): Promise<string> {
  return new Promise((resolve) => {
    const done = (event: string) => () => {
      clearTimeout(timer);
      for (const [name, listener] of listeners) emitter.off(name, listener);
      resolve(event);
    };
    const listeners = events.map((event) => [event, done(event)] as const);
    for (const [name, listener] of listeners) emitter.once(name, listener);
    const timer = setTimeout(done('timeout'), timeoutMs);
  });
}

/** Raw TCP, whatever the port speaks: `act` gets the socket once connected; resolves when the socket is gone. */
async function rawProbe(port: number, act: (socket: net.Socket) => void, options: { localAddress?: string } = {}): Promise<string> {
  const socket = net.connect({ port, host: '127.0.0.1', ...options });
  let received = '';
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => (received += chunk));
  socket.on('error', () => undefined);
  if ((await first(socket, ['connect', 'close'])) !== 'connect') return received;
  const closed = new Promise((resolve) => socket.once('close', resolve));
  act(socket);
  await closed;
  return received;
}

/** The first bytes of a TLS ClientHello (record header, handshake header, version, part of the random). */
const PARTIAL_CLIENT_HELLO = Buffer.from('160301020001000200030304aabbccddeeff00112233', 'hex');

t.test('no peer can stop a door: every port survives scans, resets, half handshakes, garbage, floods and endless lines', async (t) => {
  for (const door of doors(s)) {
    t.test(door.name, async (t) => {
      // A port scanner or a load balancer's health check: connect, close.
      await rawProbe(door.port, (socket) => socket.end());
      await assertAnswers(t, s, door, 'connect and close');

      await rawProbe(door.port, (socket) => socket.resetAndDestroy());
      await assertAnswers(t, s, door, 'connect and reset');

      await rawProbe(door.port, (socket) => socket.end(PARTIAL_CLIENT_HELLO));
      await assertAnswers(t, s, door, 'half a ClientHello, then close');

      await rawProbe(door.port, (socket) => {
        socket.write(PARTIAL_CLIENT_HELLO);
        setTimeout(() => socket.resetAndDestroy(), 20);
      });
      await assertAnswers(t, s, door, 'half a ClientHello, then reset');

      // A whole ClientHello, and the connection dropped before the handshake can finish.
      const halfHandshake = tls.connect({ port: door.port, host: '127.0.0.1', rejectUnauthorized: false });
      halfHandshake.on('error', () => undefined);
      if ((await first(halfHandshake, ['connect', 'close'])) === 'connect') {
        await new Promise((resolve) => setTimeout(resolve, 2));
        halfHandshake.destroy();
      }
      await assertAnswers(t, s, door, 'a TLS handshake dropped half way');

      const httpReply = await rawProbe(door.port, (socket) => {
        const request = `GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`;
        // After the greeting, like a browser made to post to an SMTP port (before it, any bytes are "too soon").
        if (door.kind === 'smtp') socket.once('data', () => socket.write(request));
        else socket.write(request);
        // The TLS port answers nothing readable: let it close, or close after a moment.
        setTimeout(() => socket.destroy(), 1000);
      });
      if (door.kind === 'smtp') t.match(httpReply, /421 .*HTTP requests not allowed/, `${door.name}: an HTTP request is answered 421`);
      await assertAnswers(t, s, door, 'an HTTP request');

      // An endless line: the server closes the connection (SMTP with 421, HTTP with 431), never buffers without end.
      const endless = await rawProbe(door.port, (socket) => {
        const chunk = Buffer.alloc(64 * 1024, 'A');
        let sent = 0;
        const pump = (): void => {
          while (sent < 64 && !socket.destroyed) {
            sent++;
            if (!socket.write(chunk)) return void socket.once('drain', pump);
          }
        };
        if (door.kind === 'smtp') socket.once('data', pump);
        else pump();
      });
      if (door.kind === 'smtp') t.match(endless, /421 /, `${door.name}: an endless line is answered 421`);
      if (door.kind === 'http') t.match(endless, /^HTTP\/1\.1 4\d\d /, `${door.name}: an endless request line is a 4xx`);
      await assertAnswers(t, s, door, 'an endless line');

      // NUL bytes where the protocol has text.
      if (door.kind === 'http') {
        const nul = await rawProbe(door.port, (socket) => socket.write('GET /heal\0thz HTTP/1.1\r\nHost: a\0b\r\n\r\n'));
        t.match(nul, /^HTTP\/1\.1 4\d\d /, 'HTTP: NUL bytes in the request are a 4xx');
      } else {
        const { wire, greeting } = await Wire.open(door.port, { tls: door.kind === 'smtp-tls' });
        t.match(greeting, /^220 /);
        t.match(await wire.command('EHLO cli\0ent.example'), /^5\d\d /, `${door.name}: NUL in EHLO is refused`);
        t.match(await wire.command('EHLO client.example'), /^250[ -]/);
        t.match(await wire.command('MAIL FROM:<a\0b@example.com>'), /^5\d\d /, `${door.name}: NUL in MAIL FROM is refused`);
        t.match(await wire.command('\0\0\0'), /^5\d\d /, `${door.name}: a command of NUL bytes is refused`);
        wire.destroy();
      }
      await assertAnswers(t, s, door, 'NUL bytes');

      if (door.starttls) {
        // Bytes that are not TLS after STARTTLS (the server's handshake fails: "wrong version number").
        const { wire } = await Wire.open(door.port);
        await wire.command('EHLO client.example');
        t.match(await wire.command('STARTTLS'), /^220 /);
        wire.write('this is not a TLS record\r\nEHLO after.example\r\n');
        await wire.closed;
        await assertAnswers(t, s, door, 'garbage after STARTTLS');

        const { wire: http } = await Wire.open(door.port);
        await http.command('EHLO client.example');
        await http.command('STARTTLS');
        http.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
        await http.closed;
        await assertAnswers(t, s, door, 'an HTTP request after STARTTLS');

        // STARTTLS and then nothing more: the handshake waits at most the idle timeout.
        const { wire: silent } = await Wire.open(door.port);
        await silent.command('EHLO client.example');
        await silent.command('STARTTLS');
        await silent.closed;
        t.pass(`${door.name}: a client silent after STARTTLS is disconnected`);
      }

      if (door.kind !== 'http') {
        // A slow client: idle after the greeting, it is told so (421) and disconnected.
        const { wire } = await Wire.open(door.port, { tls: door.kind === 'smtp-tls' });
        t.match(await wire.reply(), /^421 .*Timeout/, `${door.name}: an idle client gets 421`);
        await wire.closed;
        // No TLS handshake at all on the TLS port: closed at the idle timeout too.
        if (door.kind === 'smtp-tls') await rawProbe(door.port, () => undefined);

        // Pipelining abuse: a thousand commands in one write, replies not read until the end. Where AUTH is offered
        // (the TLS port), a client that does not authenticate is cut off after ten commands.
        const { wire: pipelined } = await Wire.open(door.port, { tls: door.kind === 'smtp-tls' });
        pipelined.write(`EHLO client.example\r\n${'NOOP\r\n'.repeat(1000)}QUIT\r\n`);
        const replies: string[] = [];
        for (let reply = await pipelined.reply(); reply !== null; reply = await pipelined.reply()) replies.push(reply);
        if (door.kind === 'smtp-tls') {
          t.match(replies.at(-1), /^421 .*too many unauthenticated commands/, `${door.name}: unauthenticated pipelining is cut off with 421`);
          t.ok(replies.length <= 11, `${door.name}: after at most ten replies`);
        } else {
          t.equal(replies.filter((reply) => reply.startsWith('250 ')).length, 1000, `${door.name}: every pipelined NOOP answered`);
          t.match(replies.at(-1), /^221 /, `${door.name}: QUIT after the pipeline`);
        }

        // Unknown commands in a loop: disconnected after ten.
        const { wire: unknown } = await Wire.open(door.port, { tls: door.kind === 'smtp-tls' });
        unknown.write('XYZZY\r\n'.repeat(20));
        const unknownReplies: string[] = [];
        for (let reply = await unknown.reply(); reply !== null; reply = await unknown.reply()) unknownReplies.push(reply);
        t.match(unknownReplies.at(-1), /^421 /, `${door.name}: ten unknown commands end the session`);
        await assertAnswers(t, s, door, 'slow clients and pipelining abuse');
      }

      // A flood: each connection gets a greeting or a clear 421; none hangs, and the limits hold.
      if (door.kind === 'http') {
        const statuses = await Promise.all(Array.from({ length: 40 }, () => fetch(`${s.http}/healthz`).then((r) => r.status, () => 0)));
        t.ok(statuses.every((status) => status === 200), 'HTTP: 40 parallel requests all answered');
      } else {
        const flood = (sources: string[], each: number) => Promise.all(sources.flatMap((localAddress) => Array.from({ length: each }, async () => {
          const opened = await Wire.open(door.port, { tls: door.kind === 'smtp-tls', localAddress }).catch(() => ({ wire: null, greeting: null }));
          return { localAddress, wire: opened.wire, greeting: opened.greeting ?? 'dropped' };
        })));
        // First one address alone, over its share; then three more at once, over what the server takes in all.
        const alone = await flood(['127.0.0.11'], LIMITS.maxClientsPerAddress + 2);
        t.equal(alone.filter((a) => a.greeting.startsWith('220 ')).length, LIMITS.maxClientsPerAddress, `${door.name}: ${LIMITS.maxClientsPerAddress} sessions from one address`);
        t.equal(alone.filter((a) => /^421 .*from your address/.test(a.greeting)).length, 2, `${door.name}: the next ones from it are answered 421`);
        const crowd = await flood(['127.0.0.12', '127.0.0.13', '127.0.0.14'], LIMITS.maxClientsPerAddress + 2);
        const attempts = [...alone, ...crowd];
        const greeted = attempts.filter((a) => a.greeting.startsWith('220 '));
        t.ok(attempts.every((a) => /^(220|421) |^dropped$/.test(a.greeting)), `${door.name}: every flooding connection got 220 or 421 or was dropped before TLS (${[...new Set(attempts.map((a) => a.greeting.slice(0, 60)))].join(' | ')})`);
        t.ok(greeted.length <= LIMITS.maxClients, `${door.name}: at most ${LIMITS.maxClients} sessions at once (${greeted.length})`);
        for (const source of ['127.0.0.12', '127.0.0.13', '127.0.0.14']) {
          t.ok(greeted.filter((a) => a.localAddress === source).length <= LIMITS.maxClientsPerAddress, `${door.name}: at most ${LIMITS.maxClientsPerAddress} sessions from ${source}`);
        }
        t.ok(crowd.some((a) => /^421 .*Too many connected clients/.test(a.greeting)), `${door.name}: the per-server cap answers 421`);
        for (const attempt of attempts) attempt.wire?.destroy();
      }
      await assertAnswers(t, s, door, 'a flood of connections');
    });
  }
  t.test('what was survived was logged, as a peer\'s doing', async (t) => {
    const doorsLogged = new Set(s.logged.filter((entry) => entry.message === 'SMTP connection ended by an error').map((entry) => entry.fields.door));
    t.ok(doorsLogged.has('submission-tls'), 'failed TLS handshakes on the TLS port are logged');
    t.ok(doorsLogged.has('submission') && doorsLogged.has('inbound'), 'failed STARTTLS upgrades are logged');
    t.same(s.logged.filter((entry) => entry.level === 'error'), [], 'nothing a peer did was an error of the server');
  });
});

t.test('password guessing: three failures end a session, then the address and the user name are locked out for a while', async (t) => {
  for (const door of [{ name: 'submission (STARTTLS)', port: s.smtp.submissionPort, tls: false }, { name: 'submission (implicit TLS)', port: s.smtp.submissionTlsPort, tls: true }]) {
    const { wire } = await Wire.open(door.port, { tls: door.tls, localAddress: '127.0.0.21' });
    await wire.command('EHLO client.example');
    if (!door.tls) await wire.starttls(), await wire.command('EHLO client.example');
    t.match(await wire.command(plainAuth('nobody@pec.example.it', 'guess-1')), /^535 /, `${door.name}: wrong password, 535`);
    t.match(await wire.command(plainAuth('nobody@pec.example.it', 'guess-2')), /^535 /);
    t.match(await wire.command(plainAuth('nobody@pec.example.it', 'guess-3')), /^421 /, `${door.name}: the third failure ends the session`);
    await wire.closed;
  }
  // Six failures from 127.0.0.21 so far (the two doors share the count); the seventh, for bob, locks the address.
  {
    const { wire } = await Wire.open(s.smtp.submissionTlsPort, { tls: true, localAddress: '127.0.0.21' });
    await wire.command('EHLO client.example');
    t.match(await wire.command(plainAuth(s.bob.address, 'not-bobs-password')), /^535 /);
    t.match(await wire.command(plainAuth(s.alice.address, s.alice.password)), /^454 /, 'the locked address: even a right password is not checked (454)');
    wire.destroy();
  }
  for (let attempt = 0; attempt < 6; attempt++) {
    // Guessing bob's password from other addresses: counted against the user name too.
    const { wire } = await Wire.open(s.smtp.submissionTlsPort, { tls: true, localAddress: `127.0.0.${30 + attempt}` });
    await wire.command('EHLO client.example');
    t.match(await wire.command(plainAuth(s.bob.address, `guess-${attempt}`)), /^535 /);
    wire.destroy();
  }
  {
    const { wire } = await Wire.open(s.smtp.submissionTlsPort, { tls: true, localAddress: '127.0.0.40' });
    await wire.command('EHLO client.example');
    t.match(await wire.command(plainAuth(s.bob.address, s.bob.password)), /^454 /, 'the locked user name: 454 from a fresh address');
    t.match(await wire.command(plainAuth(s.alice.address, s.alice.password)), /^235 /, 'another user from a fresh address signs in');
    wire.destroy();
  }
  t.ok(s.logged.some((entry) => entry.level === 'warn' && /locked out/.test(entry.message)), 'the lock-out is logged');

  // Holder Basic auth over HTTP, wrong in a loop: 401, then 429 once the user name is locked out; the server keeps answering.
  const statuses: number[] = [];
  for (let attempt = 0; attempt < 20; attempt++) {
    const response = await fetch(`${s.http}/v1/mailboxes/${s.alice.id}/messages`, { headers: { authorization: `Basic ${Buffer.from(`${s.alice.address}:wrong-${attempt}`).toString('base64')}` } });
    if (response.status !== 401 && response.status !== 429) t.fail(`HTTP: a wrong password answered ${response.status}`);
    if (response.status === 429 && !(Number(response.headers.get('retry-after')) > 0)) t.fail('HTTP: a lock-out without Retry-After');
    statuses.push(response.status);
  }
  t.match([statuses[0], statuses.at(-1)], [401, 429], 'wrong, then locked out');
  t.equal((await fetch(`${s.http}/healthz`)).status, 200, 'HTTP answers after the guessing');
  // The lock-out is shared by every door and lifts as the failures age out of its window: the tests below sign in
  // as alice from this address.
  s.h.clock.advance(SIGN_IN_WINDOW_MS);

  // The inbound door has no AUTH: asking for it in a loop ends the session like any unknown command.
  const { wire } = await Wire.open(s.smtp.inboundPort);
  await wire.command('EHLO client.example');
  const replies: string[] = [];
  wire.write(`${plainAuth(s.alice.address, 'x')}\r\n`.repeat(12));
  for (let reply = await wire.reply(); reply !== null; reply = await wire.reply()) replies.push(reply);
  t.ok(replies.slice(0, -1).every((reply) => /^5\d\d /.test(reply)) && /^421 /.test(replies.at(-1) ?? ''), 'inbound: AUTH is refused, then the session ends');
});

// ---------------------------------------------------------------------------------------------------------------
// Messages no parser can take

const HEAD = (from: string, to: string, subject: string) =>
  `From: ${from}\r\nTo: ${to}\r\nSubject: ${subject}\r\nMessage-ID: <${Math.random().toString(36).slice(2)}@client.example>\r\nMIME-Version: 1.0\r\n`;

const hostileMessages = (from: string, to: string) => ({
  /** About 2 000 MIME parts: mailparser's EMAXLEN "Max allowed child nodes exceeded". */
  'two thousand parts': {
    eml: `${HEAD(from, to, 'Parti')}Content-Type: multipart/mixed; boundary="b"\r\n\r\n${Array.from({ length: 2000 }, (_, i) => `--b\r\nContent-Type: text/plain\r\n\r\nparte ${i}\r\n`).join('')}--b--\r\n`,
    status: 422, code: 'message_too_complex', detail: /more than 500 MIME parts; the limit is 500/,
  },
  /** A malformed boundary ("--", so that every "----" line opens another part). */
  'a malformed boundary': {
    eml: `${HEAD(from, to, 'Confine')}Content-Type: multipart/mixed; boundary=--\r\n\r\n${'----\r\n\r\nx\r\n'.repeat(1200)}`,
    status: 422, code: 'message_too_complex', detail: /limit is 500/,
  },
  'thirty levels of nesting': {
    eml: `${HEAD(from, to, 'Annidato')}Content-Type: multipart/mixed; boundary="b0"\r\n\r\n${Array.from({ length: 30 }, (_, i) => `--b${i}\r\nContent-Type: multipart/mixed; boundary="b${i + 1}"\r\n\r\n`).join('')}--b30\r\nContent-Type: text/plain\r\n\r\nfondo\r\n`,
    status: 422, code: 'message_too_complex', detail: /more than 20 levels deep; the limit is 20/,
  },
  'a NUL in the subject': {
    eml: `${HEAD(from, to, 'a\0b')}Content-Type: text/plain\r\n\r\nTesto.\r\n`,
    status: 400, code: 'invalid_message', detail: /'Subject' contains a NUL character/,
  },
  'a NUL in an encoded word': {
    eml: `${HEAD(from, to, '=?utf-8?B?YQBi?=')}Content-Type: text/plain\r\n\r\nTesto.\r\n`,
    status: 400, code: 'invalid_message', detail: /'Subject' contains a NUL character/,
  },
});

async function tables(h: Harness) {
  const { db } = h.database;
  const n = (rows: Array<{ n: number }>) => rows[0]!.n;
  return {
    transactions: n(await db.select({ n: count() }).from(pecTransactions)),
    messages: n(await db.select({ n: count() }).from(mailboxMessages)),
    log: n(await db.select({ n: count() }).from(logRegister)),
    jobs: n(await db.select({ n: count() }).from(pecJobs)),
    inbound: n(await db.select({ n: count() }).from(pecInboundMessages)),
  };
}

t.test('a message too complex (or malformed) is a clear 4xx over HTTP, a 554 over SMTP, and leaves nothing stored', async (t) => {
  const { alice, bob } = s;
  const before = await tables(s.h);
  const authorization = `Basic ${Buffer.from(`${alice.address}:${alice.password}`).toString('base64')}`;

  for (const [name, message] of Object.entries(hostileMessages(alice.address, bob.address))) {
    const response = await fetch(`${s.http}/v1/mailboxes/${alice.id}/messages/raw`, {
      method: 'POST', headers: { authorization, 'content-type': 'message/rfc822' }, body: Buffer.from(message.eml, 'latin1'),
    });
    t.equal(response.status, message.status, `HTTP, ${name}: ${message.status}`);
    t.match(response.headers.get('content-type'), /^application\/problem\+json/);
    const problem = await response.json() as { code: string; detail: string };
    t.match(problem, { code: message.code, detail: message.detail }, `HTTP, ${name}: ${message.code}, the detail names the limit`);

    for (const mode of ['starttls', 'tls'] as const) {
      const transport = nodemailer.createTransport({
        host: '127.0.0.1', port: mode === 'tls' ? s.smtp.submissionTlsPort : s.smtp.submissionPort, secure: mode === 'tls', requireTLS: mode === 'starttls',
        auth: { user: alice.address, pass: alice.password }, tls: { rejectUnauthorized: false },
      });
      const refused = await transport.sendMail({ envelope: { from: alice.address, to: [bob.address] }, raw: Buffer.from(message.eml, 'latin1') })
        .then(() => null, (error: { responseCode?: number; response?: string }) => error);
      transport.close();
      t.equal(refused?.responseCode, 554, `SMTP submission (${mode}), ${name}: 554`);
      t.match(refused?.response, message.detail, `SMTP submission (${mode}), ${name}: the reply names the limit`);
    }

    // The receiving point: another provider's message nobody could read is refused for good, never queued.
    const inbound = nodemailer.createTransport({ host: '127.0.0.1', port: s.smtp.inboundPort, secure: false, ignoreTLS: true });
    const refused = await inbound.sendMail({ envelope: { from: 'someone@elsewhere.example', to: [alice.address] }, raw: Buffer.from(message.eml, 'latin1') })
      .then(() => null, (error: { responseCode?: number }) => error);
    inbound.close();
    t.equal(refused?.responseCode, 554, `SMTP inbound, ${name}: 554`);
  }
  await s.h.app.pec.drain();
  t.same(await tables(s.h), before, 'no transaction, stored message, log entry, job or inbound message for any refused message');

  // The doors still take a proper message, a hundred parts included, from both.
  const fine = `${HEAD(alice.address, bob.address, 'Cento parti')}Content-Type: multipart/mixed; boundary="b"\r\n\r\n${Array.from({ length: 100 }, (_, i) => `--b\r\nContent-Type: text/plain\r\n\r\nparte ${i}\r\n`).join('')}--b--\r\n`;
  const accepted = await fetch(`${s.http}/v1/mailboxes/${alice.id}/messages/raw`, { method: 'POST', headers: { authorization, 'content-type': 'message/rfc822' }, body: fine });
  t.equal(accepted.status, 201, 'HTTP: a hundred parts are fine');
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: s.smtp.submissionTlsPort, secure: true, auth: { user: alice.address, pass: alice.password }, tls: { rejectUnauthorized: false } });
  t.match((await transport.sendMail({ envelope: { from: alice.address, to: [bob.address] }, raw: fine })).response, /^250 /, 'SMTP: a hundred parts are fine');
  transport.close();
  const [stored] = await s.h.database.db.select({ n: count() }).from(pecTransactions).where(eq(pecTransactions.subject, 'Cento parti'));
  t.equal(stored!.n, 2);
});

t.test('the limits: what the access point takes, at its very limits, passes the receiving point once wrapped in a signed envelope', async (t) => {
  const { maxParts, maxDepth } = SUBMISSION_MIME_LIMITS;
  // A chain of multiparts to the deepest level allowed, then plain parts beside it up to the number allowed.
  const chain = maxDepth - 1;
  const message = (leaves: number) => Buffer.from(
    `${HEAD(s.alice.address, 'gianni@pec.gamma.it', 'Al limite')}Content-Type: multipart/mixed; boundary="b0"\r\n\r\n` +
    Array.from({ length: chain - 1 }, (_, i) => `--b${i}\r\nContent-Type: multipart/mixed; boundary="b${i + 1}"\r\n\r\n`).join('') +
    `--b${chain - 1}\r\nContent-Type: text/plain\r\n\r\nin fondo\r\n` +
    Array.from({ length: chain - 1 }, (_, i) => `--b${chain - 1 - i}--\r\n`).join('') +
    Array.from({ length: leaves }, (_, i) => `--b0\r\nContent-Type: text/plain\r\n\r\nparte ${i}\r\n`).join('') + '--b0--\r\n',
  );
  const leaves = maxParts - chain - 1;
  await t.resolves(assertProcessableMessage(message(leaves), SUBMISSION_MIME_LIMITS), `${maxParts} parts, ${maxDepth} levels: accepted`);
  await t.rejects(assertProcessableMessage(message(leaves + 1), SUBMISSION_MIME_LIMITS), { code: 'message_too_complex', status: 422 }, 'one part more: refused');

  const at = s.h.clock.now();
  const provider = { name: 'Gamma PEC S.p.A.', domain: 'pec.gamma.it' };
  const pecMessageId = newPecMessageId(provider.domain, at);
  const envelope = await buildTransportEnvelope(
    { provider, at, pecMessageId, originalMessageId: '<limite@client.example>', sender: s.alice.address, recipients: [{ address: 'gianni@pec.gamma.it', type: 'certificato', header: 'To' }], subject: 'Al limite', receiptType: 'completa' },
    { original: toPostacert(message(leaves), { pecMessageId, originalMessageId: '<limite@client.example>' }) },
  );
  const signed = await signAndAssemble(envelope, await s.h.app.pec.signer());
  await t.resolves(assertProcessableMessage(signed, INBOUND_MIME_LIMITS), 'its transport envelope passes the receiving point');
});

t.test('SMTP transactions: too many recipients get 452, an oversized DATA 552, a client gone mid-DATA leaves nothing', async (t) => {
  const before = await tables(s.h);
  const { wire } = await Wire.open(s.smtp.inboundPort);
  await wire.command('EHLO client.example');
  wire.write(`MAIL FROM:<someone@elsewhere.example>\r\n${Array.from({ length: 60 }, (_, i) => `RCPT TO:<r${i}@${DOMAIN}>\r\n`).join('')}`);
  const replies: string[] = [];
  for (let i = 0; i < 61; i++) replies.push((await wire.reply()) ?? 'closed');
  t.equal(replies.filter((reply) => reply.startsWith('250 ')).length, 51, 'MAIL and 50 recipients (PEC_MAX_RECIPIENTS)');
  t.equal(replies.filter((reply) => reply.startsWith('452 ')).length, 10, 'the ten more are answered 452');

  // More than PEC_MAX_TOTAL_BYTES (30 MiB at the least) of DATA: read, not kept, answered 552.
  t.match(await wire.command('DATA'), /^354 /);
  const line = `${'x'.repeat(998)}\r\n`;
  const block = Buffer.from(line.repeat(1024));
  const limit = s.h.app.pec.maxMessageBytes();
  for (let sent = 0; sent <= limit; sent += block.length) {
    wire.write(block);
  }
  t.match(await wire.command('.'), /^552 /, 'an oversized message: 552');
  t.match(await wire.command('RSET'), /^250 /, 'and the session goes on');

  // A client that disconnects in the middle of DATA.
  t.match(await wire.command('MAIL FROM:<someone@elsewhere.example>'), /^250 /);
  t.match(await wire.command(`RCPT TO:<${s.alice.address}>`), /^250 /);
  t.match(await wire.command('DATA'), /^354 /);
  wire.write(`${HEAD('someone@elsewhere.example', s.alice.address, 'Interrotto')}\r\nmeta`);
  wire.destroy();
  await wire.closed;
  await assertAnswers(t, s, doors(s)[3]!, 'a client gone mid-DATA');
  t.same(await tables(s.h), before, 'nothing stored');
});
