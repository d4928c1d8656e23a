import type net from 'node:net';
import tls from 'node:tls';
import type { Pop3Limits } from './limits.ts';
import { dotStuffed, topExtent } from './octets.ts';

/**
 * One POP3 connection (RFC 1939, with CAPA from RFC 2449, STLS from RFC 2595, AUTH from RFC 5034 and the response
 * codes of RFC 2449 and RFC 3206) as an object with explicit states: AUTHORIZATION, TRANSACTION, UPDATE. It knows
 * nothing of tables or of who may sign in: a Pop3Backend answers logins with a Maildrop, and the Maildrop reads and
 * changes the mailbox store.
 *
 * DELE. PEC messages are legal evidence, and the mailbox is also read over IMAP, REST and the webmail, so a POP3 DELE
 * never destroys a message: DELE only marks it in this session; QUIT (the UPDATE state) moves the marked messages
 * from the inbox to Trash, where the other doors still show them and the holder empties Trash deliberately. RSET
 * takes the marks back; a connection that drops without QUIT (or times out) changes nothing. A message another
 * client moved out of the inbox meanwhile is skipped at QUIT without complaint. A sign-in that may not modify the
 * mailbox (a read-only delegate) gets -ERR for DELE, and RETR does not mark messages \Seen for it.
 */

export interface Pop3Log {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

/** The maildrop of a signed-in session: a snapshot of the inbox taken at login (RFC 1939 §8, messages are 1…n). */
export interface Maildrop {
  readonly messages: ReadonlyArray<{ size: number; uidl: string }>;
  /** Whether RETR marks messages \Seen (a sign-in that may modify the mailbox). */
  readonly maySetSeen: boolean;
  /** Null when DELE is allowed; else why not, for the -ERR. */
  readonly deleteRefusal: string | null;
  /** For the logs. */
  readonly mailboxId: string;
  /** The stored bytes of message `index` (0-based), at least the first `prefixBytes` of them; null once it is gone. */
  read(index: number, prefixBytes?: number): Promise<{ bytes: Buffer; complete: boolean } | null>;
  markSeen(index: number): Promise<void>;
  /** The UPDATE state: moves these messages out of the inbox (to Trash); answers how many were still there. */
  removeMarked(indexes: readonly number[]): Promise<number>;
  /** The session ended: its place among the mailbox's sessions is free. Called once. */
  release(): void;
}

export type LoginRefusal = 'invalid_credentials' | 'locked_out' | 'mailbox_unavailable' | 'in_use' | 'not_permitted';

export interface Pop3Backend {
  signIn(attempt: { user: string; password: string; authzid: string | undefined; remoteAddress: string }): Promise<
    { ok: true; maildrop: Maildrop } | { ok: false; refusal: LoginRefusal; message: string }
  >;
}

/** A refusal as the client reads it, with the response code of RFC 2449 §8 and RFC 3206 that tells it what to do. */
export function refusalLine(refusal: LoginRefusal, message: string): string {
  const text = message.replace(/[\x00-\x1f\x7f]+/g, ' ').trim().slice(0, 400);
  switch (refusal) {
    // The user must change what was typed: [AUTH] (RFC 3206 §4).
    case 'invalid_credentials':
      return '-ERR [AUTH] Invalid credentials';
    case 'mailbox_unavailable':
    case 'not_permitted':
      return `-ERR [AUTH] ${text}`;
    // The credentials may be right and later work: a temporary refusal, not one to ask the user about (RFC 3206 §5).
    case 'locked_out':
      return `-ERR [SYS/TEMP] ${text}`;
    // The maildrop is busy (RFC 2449 §8.1.1).
    case 'in_use':
      return `-ERR [IN-USE] ${text}`;
  }
}

const TOO_LONG = Symbol('line too long');
type Line = Buffer | typeof TOO_LONG;

/** The session's socket is gone: whatever was under way stops quietly. */
class SessionEnded extends Error {}

const SASL_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const TLS_FIRST = '-ERR [AUTH] Plaintext sign-in is not allowed: send STLS first, or use the POP3S port';
/** Lines queued by a pipelining client before its socket is paused; it resumes when the queue is short again. */
const QUEUE_HIGH = 64;
const QUEUE_LOW = 8;
/** Bytes per write while sending a list. */
const LIST_CHUNK = 16 * 1024;

export interface SessionOptions {
  socket: net.Socket;
  /** POP3S (implicit TLS, RFC 8314): the handshake comes first. Otherwise the client may ask for STLS. */
  implicitTls: boolean;
  secureContext: tls.SecureContext;
  serverName: string;
  limits: Pop3Limits;
  backend: Pop3Backend;
  log: Pop3Log | undefined;
  /** 'pop3' or 'pop3s', for the logs. */
  door: string;
  /** Answered instead of the greeting (a server over its connection limits), then the connection closes. */
  refusal?: string | undefined;
}

export class Pop3Session {
  /** Resolves when the connection is closed, whichever side closed it. */
  readonly closed: Promise<void>;
  readonly #options: SessionOptions;
  readonly #raw: net.Socket;
  readonly #remoteAddress: string;
  #socket: net.Socket;
  #secure = false;
  #state: 'authorization' | 'transaction' | 'update' = 'authorization';
  /** True once the session decided to end or its socket closed: nothing more is read or written. */
  #over = false;
  #closedOnce = false;
  #resolveClosed!: () => void;
  #shuttingDown = false;
  #timer: NodeJS.Timeout | undefined;

  // Input: complete lines waiting for the command loop, and the line being received.
  #queue: Line[] = [];
  #partial: Buffer[] = [];
  #partialLength = 0;
  #discarding = false;
  #paused = false;
  #waiter: ((line: Line | null) => void) | null = null;

  // AUTHORIZATION and TRANSACTION state.
  #user: string | null = null;
  #failures = 0;
  #maildrop: Maildrop | null = null;
  #marked = new Set<number>();

  constructor(options: SessionOptions) {
    this.#options = options;
    this.#raw = this.#socket = options.socket;
    this.#remoteAddress = options.socket.remoteAddress ?? 'unknown';
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
    // A peer's reset or garbage must never become an unhandled 'error' event, which would end the process.
    this.#raw.on('error', this.#onError);
    this.#raw.once('close', this.#onClose);
    this.#raw.setNoDelay(true);
    void this.#run();
  }

  /** Closing the servers: an idle session is told so and closed; a busy one after its command. */
  shutdown(): void {
    this.#shuttingDown = true;
    this.#waiter?.(null);
  }

  /** Cuts the connection off (a shutdown that took too long). */
  destroy(): void {
    this.#over = true;
    this.#socket.destroy();
    this.#raw.destroy();
  }

  // ------------------------------------------------------------------------------------------------------------
  // The command loop

  async #run(): Promise<void> {
    try {
      if (this.#options.implicitTls && !(await this.#handshake())) return;
      if (this.#options.refusal !== undefined) {
        await this.#reply(this.#options.refusal);
        return this.#end();
      }
      this.#listen();
      await this.#reply(`+OK ${this.#options.serverName} POP3 server ready`);
      while (!this.#over && !this.#shuttingDown) {
        const line = await this.#nextLine();
        if (line === null) break;
        await this.#command(line);
      }
      if (this.#shuttingDown && !this.#over) {
        await this.#reply('-ERR [SYS/TEMP] The server is shutting down, try again later');
        this.#end();
      }
    } catch (error) {
      if (error instanceof SessionEnded) return;
      this.#options.log?.error({ err: error, door: this.#options.door, remoteAddress: this.#remoteAddress }, 'POP3 session failed');
      if (!this.#over) this.#socket.write('-ERR [SYS/TEMP] Internal error, try again later\r\n');
      this.#end();
    }
  }

  async #command(line: Line): Promise<void> {
    if (line === TOO_LONG) return this.#reply('-ERR Line too long');
    const space = line.indexOf(0x20);
    const keyword = line.subarray(0, space === -1 ? line.length : space).toString('latin1').toUpperCase();
    const rest = space === -1 ? null : line.subarray(space + 1);
    const loginLine = keyword === 'USER' || keyword === 'PASS' || keyword === 'AUTH';
    if (!loginLine && line.length + 2 > this.#options.limits.maxCommandLength) return this.#reply('-ERR Line too long');
    const args = rest === null ? [] : rest.toString('latin1').split(' ').filter((arg) => arg !== '');
    if (keyword === 'CAPA') return this.#capa();
    if (this.#state === 'authorization') {
      switch (keyword) {
        case 'STLS':
          return this.#stls();
        case 'USER':
          if (!this.#secure) return this.#reply(TLS_FIRST);
          this.#user = rest?.toString('utf8').trim() || null;
          return this.#reply(this.#user === null ? '-ERR USER needs a user name' : '+OK Send PASS');
        case 'PASS': {
          if (!this.#secure) return this.#reply(TLS_FIRST);
          if (this.#user === null) return this.#reply('-ERR Send USER first');
          const user = this.#user;
          this.#user = null;
          // The whole rest of the line is the password: it may hold spaces (RFC 1939 §7).
          return this.#signIn(user, rest?.toString('utf8') ?? '', undefined);
        }
        case 'AUTH':
          if (!this.#secure) return this.#reply(TLS_FIRST);
          return this.#auth(args);
        case 'APOP':
          return this.#reply('-ERR APOP is not offered: sign in with USER and PASS or AUTH PLAIN, over TLS');
        case 'QUIT':
          await this.#reply(`+OK ${this.#options.serverName} POP3 server signing off`);
          return this.#end();
        case 'STAT': case 'LIST': case 'UIDL': case 'RETR': case 'TOP': case 'DELE': case 'NOOP': case 'RSET':
          return this.#reply('-ERR Sign in first');
        default:
          return this.#reply('-ERR Unknown command');
      }
    }
    const maildrop = this.#maildrop!;
    switch (keyword) {
      case 'STAT': {
        if (args.length > 0) return this.#reply('-ERR STAT takes no arguments');
        const { count, octets } = this.#totals();
        return this.#reply(`+OK ${count} ${octets}`);
      }
      case 'LIST':
      case 'UIDL': {
        const show = (index: number) => `${index + 1} ${keyword === 'LIST' ? maildrop.messages[index]!.size : maildrop.messages[index]!.uidl}`;
        if (args.length > 1) return this.#reply(`-ERR Usage: ${keyword} [message number]`);
        if (args.length === 1) {
          const index = this.#message(args[0]!);
          return this.#reply(typeof index === 'string' ? index : `+OK ${show(index)}`);
        }
        const { count, octets } = this.#totals();
        return this.#multiline(`+OK ${count} messages (${octets} octets)`, this.#live(show));
      }
      case 'RETR': {
        if (args.length !== 1) return this.#reply('-ERR Usage: RETR message-number');
        const index = this.#message(args[0]!);
        if (typeof index === 'string') return this.#reply(index);
        const read = await maildrop.read(index);
        if (!read) return this.#reply(`-ERR Message ${index + 1} is no longer in the mailbox`);
        await this.#reply(`+OK ${maildrop.messages[index]!.size} octets`);
        for (const chunk of dotStuffed(read.bytes)) await this.#write(chunk);
        if (maildrop.maySetSeen) {
          await maildrop.markSeen(index).catch((error: unknown) => {
            this.#options.log?.error({ err: error, door: this.#options.door, mailboxId: maildrop.mailboxId }, 'POP3 RETR could not mark the message seen');
          });
        }
        return;
      }
      case 'TOP': {
        if (args.length !== 2 || !/^\d{1,9}$/.test(args[1]!)) return this.#reply('-ERR Usage: TOP message-number lines');
        const index = this.#message(args[0]!);
        if (typeof index === 'string') return this.#reply(index);
        const lines = Number(args[1]);
        // The header and a few lines are usually in the first kilobytes: read no more of a large message than needed.
        for (let prefix = 64 * 1024; ; prefix *= 4) {
          const read = await maildrop.read(index, prefix);
          if (!read) return this.#reply(`-ERR Message ${index + 1} is no longer in the mailbox`);
          const end = topExtent(read.bytes, lines, read.complete);
          if (end === null) continue;
          await this.#reply('+OK Top of message follows');
          for (const chunk of dotStuffed(read.bytes.subarray(0, end))) await this.#write(chunk);
          return;
        }
      }
      case 'DELE': {
        if (args.length !== 1) return this.#reply('-ERR Usage: DELE message-number');
        const index = this.#message(args[0]!);
        if (typeof index === 'string') return this.#reply(index);
        if (maildrop.deleteRefusal !== null) return this.#reply(`-ERR ${maildrop.deleteRefusal}`);
        this.#marked.add(index);
        return this.#reply(`+OK Message ${index + 1} deleted: it moves to Trash when the session ends with QUIT`);
      }
      case 'NOOP':
        return this.#reply('+OK');
      case 'RSET': {
        this.#marked.clear();
        const { count, octets } = this.#totals();
        return this.#reply(`+OK ${count} messages (${octets} octets)`);
      }
      case 'QUIT':
        return this.#update();
      case 'USER': case 'PASS': case 'AUTH': case 'APOP': case 'STLS':
        return this.#reply('-ERR Already signed in');
      default:
        return this.#reply('-ERR Unknown command');
    }
  }

  #capa(): Promise<void> {
    const capabilities = ['TOP', 'UIDL', 'RESP-CODES', 'AUTH-RESP-CODE', 'PIPELINING'];
    if (this.#state === 'authorization') {
      // Before TLS no way to sign in is offered, so that no client sends a password in clear (RFC 2595 §4).
      if (this.#secure) capabilities.push('USER', 'SASL PLAIN');
      else capabilities.push('STLS');
    }
    capabilities.push('IMPLEMENTATION PEC-Partner');
    return this.#multiline('+OK Capability list follows', capabilities);
  }

  /** The message a number names (RFC 1939: 1…n, not marked deleted): its index, or the -ERR to answer. */
  #message(argument: string): number | string {
    if (!/^\d{1,10}$/.test(argument)) return '-ERR Invalid message number';
    const number = Number(argument);
    if (number < 1 || number > this.#maildrop!.messages.length) return `-ERR There is no message ${number}`;
    if (this.#marked.has(number - 1)) return `-ERR Message ${number} is deleted`;
    return number - 1;
  }

  *#live<T>(map: (index: number) => T): Generator<T> {
    const { messages } = this.#maildrop!;
    for (let index = 0; index < messages.length; index++) if (!this.#marked.has(index)) yield map(index);
  }

  #totals(): { count: number; octets: number } {
    let count = 0;
    let octets = 0;
    for (const size of this.#live((index) => this.#maildrop!.messages[index]!.size)) {
      count++;
      octets += size;
    }
    return { count, octets };
  }

  // ------------------------------------------------------------------------------------------------------------
  // Signing in

  /** AUTH PLAIN (RFC 5034 with RFC 4616): with an initial response, or after a "+ " continuation. */
  async #auth(args: string[]): Promise<void> {
    if (args.length === 0) return this.#multiline('+OK SASL mechanisms follow', ['PLAIN']);
    if (args[0]!.toUpperCase() !== 'PLAIN') return this.#reply('-ERR Unsupported SASL mechanism: PLAIN is offered');
    if (args.length > 2) return this.#reply('-ERR Usage: AUTH PLAIN [initial-response]');
    let response = args[1];
    if (response === undefined) {
      await this.#write('+ \r\n');
      const line = await this.#nextLine();
      if (line === null) return;
      if (line === TOO_LONG) return this.#failed('-ERR [AUTH] SASL response too long');
      response = line.toString('latin1');
    } else if (response === '=') {
      response = ''; // a zero-length initial response (RFC 5034 §4)
    }
    if (response === '*') return this.#reply('-ERR Authentication cancelled');
    const decoded = response !== '' && SASL_BASE64.test(response) ? Buffer.from(response, 'base64').toString('utf8').split('\0') : [];
    if (decoded.length !== 3) return this.#failed('-ERR [AUTH] Malformed SASL PLAIN response');
    const [authzid, user, password] = decoded as [string, string, string];
    return this.#signIn(user, password, authzid === '' ? undefined : authzid);
  }

  async #signIn(user: string, password: string, authzid: string | undefined): Promise<void> {
    let outcome: Awaited<ReturnType<Pop3Backend['signIn']>>;
    try {
      outcome = await this.#options.backend.signIn({ user, password, authzid, remoteAddress: this.#remoteAddress });
    } catch (error) {
      this.#options.log?.error({ err: error, door: this.#options.door, remoteAddress: this.#remoteAddress }, 'POP3 sign-in failed');
      return this.#reply('-ERR [SYS/TEMP] Signing in is not possible right now, try again later');
    }
    if (outcome.ok) {
      // The client left while its password was checked: its place is free at once.
      if (this.#over) return outcome.maildrop.release();
      this.#maildrop = outcome.maildrop;
      this.#state = 'transaction';
      this.#options.log?.info({ door: this.#options.door, remoteAddress: this.#remoteAddress, mailboxId: outcome.maildrop.mailboxId }, 'POP3 sign-in');
      const { count, octets } = this.#totals();
      return this.#reply(`+OK Signed in: ${count} messages (${octets} octets)`);
    }
    this.#options.log?.info({ door: this.#options.door, remoteAddress: this.#remoteAddress, refusal: outcome.refusal }, 'POP3 sign-in refused');
    const line = refusalLine(outcome.refusal, outcome.message);
    // A busy mailbox is no wrong guess.
    if (outcome.refusal === 'in_use') return this.#reply(line);
    return this.#failed(line);
  }

  /** A failed login: answered; the session's last allowed one also closes it. */
  async #failed(line: string): Promise<void> {
    this.#failures++;
    await this.#reply(line);
    if (this.#failures >= this.#options.limits.authFailuresPerSession) {
      this.#options.log?.warn({ door: this.#options.door, remoteAddress: this.#remoteAddress, failures: this.#failures }, 'POP3 session closed after failed logins');
      this.#end();
    }
  }

  // ------------------------------------------------------------------------------------------------------------
  // UPDATE state

  async #update(): Promise<void> {
    this.#state = 'update';
    const maildrop = this.#maildrop!;
    const marked = [...this.#marked].sort((a, b) => a - b);
    let line = `+OK ${this.#options.serverName} POP3 server signing off`;
    if (marked.length > 0) {
      try {
        const moved = await maildrop.removeMarked(marked);
        line += ` (${moved} ${moved === 1 ? 'message' : 'messages'} moved to Trash)`;
      } catch (error) {
        this.#options.log?.error({ err: error, door: this.#options.door, mailboxId: maildrop.mailboxId }, 'POP3 UPDATE could not move the deleted messages');
        line = '-ERR [SYS/TEMP] The deleted messages could not be moved to Trash: they are still in the inbox';
      }
    }
    this.#marked.clear();
    await this.#reply(line);
    this.#end();
  }

  // ------------------------------------------------------------------------------------------------------------
  // TLS

  /**
   * STLS (RFC 2595 §4). Whatever the client sent after the command is dropped unread (it was sent in clear and
   * could have been injected by a man in the middle), and so is anything learnt before TLS.
   */
  async #stls(): Promise<void> {
    if (this.#secure) return this.#reply('-ERR Already using TLS');
    // Paused first: the client's TLS hello stays in the socket for the TLS layer to read.
    this.#socket.pause();
    this.#socket.off('data', this.#onData);
    this.#queue = [];
    this.#partial = [];
    this.#partialLength = 0;
    this.#discarding = false;
    this.#paused = false;
    this.#user = null;
    this.#socket.write('+OK Begin TLS negotiation\r\n');
    if (await this.#handshake()) this.#listen();
  }

  /** The TLS handshake over the current socket, within the idle timeout; false (and the connection closed) if it fails. */
  async #handshake(): Promise<boolean> {
    const secure = new tls.TLSSocket(this.#socket, { isServer: true, secureContext: this.#options.secureContext });
    secure.on('error', this.#onError);
    secure.once('close', this.#onClose);
    this.#socket = secure;
    this.#arm();
    const ok = await new Promise<boolean>((resolve) => {
      secure.once('secure', () => resolve(true));
      secure.once('error', () => resolve(false));
      secure.once('close', () => resolve(false));
    });
    this.#disarm();
    if (!ok || this.#over) {
      this.destroy();
      return false;
    }
    this.#secure = true;
    return true;
  }

  // ------------------------------------------------------------------------------------------------------------
  // Input

  #listen(): void {
    this.#socket.on('data', this.#onData);
  }

  /**
   * Splits the input into lines (CRLF, or a bare LF), queued in order for the command loop: a pipelining client's
   * commands are answered one by one (RFC 2449 §6.6). A line longer than the login limit is dropped as it arrives
   * (never held whole) and answered -ERR when its turn comes.
   */
  readonly #onData = (chunk: Buffer): void => {
    if (this.#over) return;
    const max = this.#options.limits.maxAuthLineLength;
    for (let start = 0; start < chunk.length; ) {
      const lf = chunk.indexOf(0x0a, start);
      if (lf === -1) {
        if (!this.#discarding) {
          this.#partial.push(chunk.subarray(start));
          this.#partialLength += chunk.length - start;
          if (this.#partialLength > max) {
            this.#partial = [];
            this.#partialLength = 0;
            this.#discarding = true;
            this.#push(TOO_LONG);
          }
        }
        return;
      }
      if (this.#discarding) {
        this.#discarding = false;
      } else {
        this.#partial.push(chunk.subarray(start, lf));
        let line = Buffer.concat(this.#partial);
        this.#partial = [];
        this.#partialLength = 0;
        if (line.length > 0 && line[line.length - 1] === 0x0d) line = line.subarray(0, -1);
        this.#push(line.length > max ? TOO_LONG : line);
      }
      start = lf + 1;
    }
  };

  #push(line: Line): void {
    if (this.#waiter) return this.#waiter(line);
    this.#queue.push(line);
    if (this.#queue.length >= QUEUE_HIGH && !this.#paused) {
      this.#paused = true;
      this.#socket.pause();
    }
  }

  /** The next line, waiting for it within the idle timeout; null once the session is over or shutting down. */
  #nextLine(): Promise<Line | null> {
    const queued = this.#queue.shift();
    if (queued !== undefined) {
      if (this.#paused && this.#queue.length <= QUEUE_LOW) {
        this.#paused = false;
        this.#socket.resume();
      }
      return Promise.resolve(queued);
    }
    if (this.#over || this.#shuttingDown) return Promise.resolve(null);
    return new Promise((resolve) => {
      this.#arm();
      this.#waiter = (line) => {
        this.#waiter = null;
        this.#disarm();
        resolve(line);
      };
    });
  }

  // ------------------------------------------------------------------------------------------------------------
  // Output

  #reply(line: string): Promise<void> {
    return this.#write(`${line}\r\n`);
  }

  async #multiline(first: string, lines: Iterable<string>): Promise<void> {
    let batch = `${first}\r\n`;
    for (const line of lines) {
      batch += `${line}\r\n`;
      if (batch.length >= LIST_CHUNK) {
        await this.#write(batch);
        batch = '';
      }
    }
    await this.#write(`${batch}.\r\n`);
  }

  /** Writes, and waits while the client does not read (within the idle timeout: a client that reads nothing is idle). */
  #write(data: string | Buffer): Promise<void> {
    if (this.#over) return Promise.reject(new SessionEnded());
    const socket = this.#socket;
    if (socket.write(data)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.#arm();
      const settle = (error: boolean) => {
        socket.off('drain', onDrain);
        socket.off('close', onClose);
        this.#disarm();
        if (error) reject(new SessionEnded());
        else resolve();
      };
      const onDrain = () => settle(false);
      const onClose = () => settle(true);
      socket.on('drain', onDrain);
      socket.on('close', onClose);
    });
  }

  // ------------------------------------------------------------------------------------------------------------
  // Ending

  /** Ends the session after what was written: the client gets its last response, then the connection closes. */
  #end(): void {
    if (this.#over) return;
    this.#over = true;
    this.#socket.end();
    // A client that never closes its side is not waited for.
    setTimeout(() => this.destroy(), Math.min(this.#options.limits.idleTimeoutMs, 5_000)).unref();
  }

  #arm(): void {
    clearTimeout(this.#timer);
    // RFC 1939 §3: an autologout closes the connection without a response, and without the UPDATE state.
    this.#timer = setTimeout(() => {
      this.#options.log?.info({ door: this.#options.door, remoteAddress: this.#remoteAddress }, 'POP3 session closed: idle timeout');
      this.destroy();
    }, this.#options.limits.idleTimeoutMs);
  }

  #disarm(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  readonly #onError = (error: Error & { code?: string }): void => {
    this.#options.log?.info({ door: this.#options.door, remoteAddress: this.#remoteAddress, code: error.code, reason: error.message }, 'POP3 connection ended by an error');
  };

  /** The connection is gone (from either socket, TLS or not): nothing of the session's marks is applied. */
  readonly #onClose = (): void => {
    this.#over = true;
    if (this.#closedOnce) return;
    this.#closedOnce = true;
    this.#disarm();
    this.#socket.destroy();
    this.#raw.destroy();
    this.#waiter?.(null);
    this.#marked.clear();
    this.#maildrop?.release();
    this.#resolveClosed();
  };
}
