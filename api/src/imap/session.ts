/// <reference path="../types/mail-libs.d.ts" />
import { TLSSocket, type SecureContext } from 'node:tls';
import type { Socket } from 'node:net';
import { sql } from 'drizzle-orm';
import type { Db } from '@pec-partner/db';
import { parseCommand } from './command-parser.ts';
import type { ImapAttribute, ImapAttributeList, ImapResponse } from 'imapflow/lib/handler/types.js';
import { imap as utf7 } from 'utf7';
import type { HolderPrincipal } from '../access/principals.ts';
import { mayPerform, ownTransactionsOnly, type MailboxOperation } from '../access/modes.ts';
import type { SignInAttempt, SignInResult } from '../access/sign-in.ts';
import type { MailboxChanges } from '../mailstore/changes.ts';
import {
  createFolder, deleteFolder, folderNamed, FolderError, HIERARCHY_DELIMITER, imapNameOf, isSystemFolder, listFolderRows, renameFolder, setSubscribed, SYSTEM_FOLDERS,
} from '../mailstore/folders.ts';
import {
  appendMessage, changeFlags, changesSince, copyMessages, expungeDeleted, folderCounts, moveMessages, openFolder, quotaUse, statesOf, StoreError,
  type FlagChange, type FolderView, type MessageState,
} from '../mailstore/messages.ts';
import { envelopeOf, FetchSyntaxError, flagList, needsOf, parseFetchItems, renderFetch, summarize, type FetchedMessage, type FetchResponse, type ImapSummary } from './fetch.ts';
import { CommandFramer, type FramedCommand, type FramerLimits } from './framer.ts';
import { BadCharsetError, compileSearch, LazyMessage, searchPrologue, SearchSyntaxError } from './search.ts';
import { compactSet, lowerBound, orderedSet, SequenceSetError, uidsForSequenceSet, uidsForUidSet } from './sequence.ts';
import { astr, parseDateTime, str } from './wire.ts';

export interface ImapLimits extends FramerLimits {
  /** Before login: RFC 9051 §5.4 lets the server close an idle unauthenticated session. */
  preAuthIdleMs: number;
  /** After login, IDLE included: at least 30 minutes (RFC 9051 §5.4). */
  idleMs: number;
  /** Failed logins in one session before it is closed. */
  authFailuresPerSession: number;
}

export interface SessionDeps {
  db: Db;
  changes: MailboxChanges;
  signIn(attempt: SignInAttempt): Promise<SignInResult>;
  /** Counts the session against its mailbox's share; false: too many sessions for this account. */
  acquireAccount(mailboxId: string): boolean;
  releaseAccount(mailboxId: string): void;
  tls: SecureContext;
  limits: ImapLimits;
  serverName: string;
  log?: { info(o: object, m: string): void; warn(o: object, m: string): void; error(o: object, m: string): void } | undefined;
}

interface Selected {
  view: FolderView;
  imapName: string;
  readOnly: boolean;
  uidValidity: number;
  /** The session's view: UIDs in sequence-number order. */
  uids: number[];
  /** Flag changes and new messages up to here have been told to the client. */
  modseq: number;
  /** Expunges up to here have been told. */
  expungeModseq: number;
  /** This session's own flag changes (uid → modseq), not to be echoed by the next sync. */
  own: Map<number, number>;
}

type SessionState = 'not_authenticated' | 'authenticated' | 'selected' | 'logout';

class Bad extends Error {}
class No extends Error {
  constructor(message: string, readonly code?: string) {
    super(message);
  }
}

const FLAGS = '(\\Answered \\Flagged \\Deleted \\Seen \\Draft)';
const SYSTEM_FLAG = /^\\(seen|answered|flagged|draft|deleted)$/i;
const KEYWORD = /^[!#$&'+,\-.0-9:;<=>?@A-Z^_`a-z|}~]+$/;

const atomOf = (node: ImapAttribute | undefined): string => (node && !Array.isArray(node) && node.value !== null && node.value !== undefined ? (Buffer.isBuffer(node.value) ? node.value.toString('utf8') : String(node.value)) : '');

/** Messages per FETCH batch when their bytes are sent: about this many bytes of them (memory stays flat). */
const CONTENT_BATCH_BYTES = 1024 * 1024;

/**
 * The summaries a FETCH computed, stored one batch after the other while the FETCH goes on. done() waits for the
 * last and throws the first failure, so the command fails as it did when each batch waited for its write.
 */
class SummaryWrites {
  #chain: Promise<void> = Promise.resolve();
  #failure: unknown = null;

  add(write: () => Promise<void>): void {
    this.#chain = this.#chain.then(() => (this.#failure ? undefined : write())).catch((error: unknown) => {
      this.#failure ??= error;
    });
  }

  async done(): Promise<void> {
    await this.#chain;
    if (this.#failure) throw this.#failure;
  }
}

/** One client connection: the protocol states of RFC 9051 §3 and the commands of each. */
export class ImapSession {
  #socket: Socket;
  #secure: boolean;
  #state: SessionState = 'not_authenticated';
  #principal: HolderPrincipal | null = null;
  #selected: Selected | null = null;
  #enabled = new Set<string>();
  #queue: FramedCommand[] = [];
  #busy = false;
  #framer: CommandFramer;
  #idle: { tag: string; stop: () => void; timer: NodeJS.Timeout | null } | null = null;
  #continuation: ((line: string) => Promise<void>) | null = null;
  #authFailures = 0;
  #timer: NodeJS.Timeout | null = null;
  #closed = false;
  #syncing: Promise<void> | null = null;
  #resync = false;

  constructor(socket: Socket, secure: boolean, private readonly deps: SessionDeps) {
    this.#socket = socket;
    this.#secure = secure;
    // A reply is several writes (untagged lines, then the tagged one): with Nagle's algorithm the last small one waits
    // for the client's delayed ACK, 40 ms on Linux, on every command. Through TLS this reaches the TCP socket.
    socket.setNoDelay(true);
    this.#framer = this.#newFramer();
    this.#attach(socket);
    this.#send(`* OK [CAPABILITY ${this.#capabilities()}] ${deps.serverName} IMAP ready\r\n`);
    this.#touch();
  }

  #newFramer(): CommandFramer {
    return new CommandFramer(this.deps.limits, {
      command: (command) => {
        // A client that pipelines without reading the answers is not queued for without end.
        if (this.#queue.length >= 1000) return this.#bye('Too many commands waiting; read the responses');
        this.#queue.push(command);
        void this.#drain();
      },
      continueLiteral: () => this.#send('+ Ready for literal data\r\n'),
      refuseLiteral: (tag, size, limit) => this.#send(`${tag} NO [TOOBIG] Literal of ${size} bytes exceeds the limit of ${limit}\r\n`),
      fatal: (reason) => this.#bye(reason),
    });
  }

  #attach(socket: Socket): void {
    socket.on('data', (chunk: Buffer) => {
      this.#touch();
      this.#framer.push(chunk);
    });
    socket.on('error', (error) => this.deps.log?.info({ door: 'imap', reason: error.message }, 'IMAP connection ended by an error'));
    socket.on('close', () => this.#cleanup());
  }

  #touch(): void {
    if (this.#timer) clearTimeout(this.#timer);
    const ms = this.#state === 'not_authenticated' ? this.deps.limits.preAuthIdleMs : this.deps.limits.idleMs;
    this.#timer = setTimeout(() => this.#bye('Autologout; idle for too long'), ms);
    this.#timer.unref();
  }

  #cleanup(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#idle?.stop();
    if (this.#principal) this.deps.releaseAccount(this.#principal.mailboxId);
  }

  #send(data: string | Buffer): boolean {
    if (this.#closed || this.#socket.destroyed) return true;
    return this.#socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
  }

  /** Waits for the socket to take what it has before more is written (a FETCH of a whole mailbox stays flat in memory). */
  async #write(data: string | Buffer): Promise<void> {
    if (!this.#send(data) && !this.#closed) {
      await new Promise<void>((resolve) => {
        const done = () => {
          this.#socket.off('drain', done);
          this.#socket.off('close', done);
          resolve();
        };
        this.#socket.on('drain', done);
        this.#socket.on('close', done);
      });
    }
  }

  #bye(reason: string): void {
    if (this.#closed) return;
    this.#send(`* BYE ${reason}\r\n`);
    this.#state = 'logout';
    this.#socket.end();
    setTimeout(() => this.#socket.destroy(), 2000).unref();
  }

  #capabilities(): string {
    const caps = ['IMAP4rev1', 'IMAP4rev2', 'LITERAL+', 'SASL-IR', 'ID', 'ENABLE'];
    if (this.#state === 'not_authenticated') {
      if (this.#secure) caps.push('AUTH=PLAIN');
      else caps.push('STARTTLS', 'LOGINDISABLED');
      return caps.join(' ');
    }
    caps.push('IDLE', 'NAMESPACE', 'UIDPLUS', 'MOVE', 'SPECIAL-USE', 'CHILDREN', 'LIST-EXTENDED', 'LIST-STATUS', 'CONDSTORE', 'QRESYNC',
      'QUOTA', 'QUOTA=RES-STORAGE', 'UNSELECT', 'ESEARCH', 'BINARY', 'STATUS=SIZE', `APPENDLIMIT=${this.deps.limits.maxAppendBytes}`);
    return caps.join(' ');
  }

  async #drain(): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    try {
      while (this.#queue.length && !this.#closed) {
        const command = this.#queue.shift()!;
        await this.#handle(command);
      }
    } finally {
      this.#busy = false;
    }
  }

  async #handle(framed: FramedCommand): Promise<void> {
    if (this.#continuation) {
      const next = this.#continuation;
      this.#continuation = null;
      return next(framed.payload.toString('latin1'));
    }
    if (this.#idle) {
      if (framed.payload.toString('latin1').trim().toUpperCase() === 'DONE') return this.#endIdle();
      return void this.#send('* BAD Expected DONE to end IDLE\r\n');
    }
    let parsed: ImapResponse;
    const tagOfLine = /^([^\s(){%*"\\\]]+)\s/.exec(framed.firstLine)?.[1];
    try {
      parsed = await parseCommand(framed.payload, { literals: framed.literals });
    } catch (error) {
      const reason = (error as Error).message.replace(/[\r\n]/g, ' ').slice(0, 200);
      return void this.#send(`${tagOfLine ?? '*'} BAD Could not parse the command: ${reason}\r\n`);
    }
    const tag = parsed.tag ?? '*';
    const command = (parsed.command ?? '').toUpperCase();
    if (!tag || tag === '*' || tag === '+' || !command) return void this.#send(`${tag && tag !== '+' ? tag : '*'} BAD Missing tag or command\r\n`);
    const args = parsed.attributes ?? [];
    try {
      await this.#dispatch(tag, command, args);
    } catch (error) {
      if (error instanceof Bad || error instanceof SequenceSetError || error instanceof FetchSyntaxError || error instanceof SearchSyntaxError) {
        this.#send(`${tag} BAD ${error.message}\r\n`);
      } else if (error instanceof BadCharsetError) {
        this.#send(`${tag} NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset\r\n`);
      } else if (error instanceof No) {
        this.#send(`${tag} NO ${error.code ? `[${error.code}] ` : ''}${error.message}\r\n`);
      } else if (error instanceof StoreError) {
        const code = error.code === 'over_quota' ? 'OVERQUOTA' : 'NONEXISTENT';
        this.#send(`${tag} NO [${code}] ${error.message}\r\n`);
      } else if (error instanceof FolderError) {
        const code = { not_found: 'NONEXISTENT', exists: 'ALREADYEXISTS', invalid_name: 'CANNOT', system_folder: 'CANNOT', has_children: 'INUSE' }[error.code];
        this.#send(`${tag} NO [${code}] ${error.message}\r\n`);
      } else {
        this.deps.log?.error({ err: error, door: 'imap', command }, 'IMAP command failed');
        this.#send(`${tag} NO [SERVERBUG] Temporary failure, try again\r\n`);
      }
    }
  }

  #need(states: SessionState[], command: string): void {
    if (!states.includes(this.#state)) {
      const where = this.#state === 'not_authenticated' ? 'before login' : this.#state === 'authenticated' ? 'without a selected folder' : 'in this state';
      throw new Bad(`${command} is not allowed ${where}`);
    }
  }

  #may(operation: MailboxOperation, what: string): void {
    if (!mayPerform(this.#principal!.actor, operation)) throw new No(`This session may not ${what} (delegation mode).`, 'NOPERM');
  }

  async #dispatch(tag: string, command: string, args: ImapAttributeList): Promise<void> {
    const isUid = command.startsWith('UID ');
    const name = isUid ? command.slice(4) : command;
    switch (name) {
      case 'CAPABILITY':
        this.#send(`* CAPABILITY ${this.#capabilities()}\r\n`);
        return this.#ok(tag, 'CAPABILITY completed');
      case 'NOOP':
      case 'CHECK':
        if (name === 'CHECK') this.#need(['selected'], name);
        await this.#sync(true);
        return this.#ok(tag, `${name} completed`);
      case 'LOGOUT':
        this.#send('* BYE Logging out\r\n');
        this.#ok(tag, 'LOGOUT completed');
        this.#state = 'logout';
        this.#socket.end();
        return;
      case 'ID':
        this.#send(`* ID ("name" "PEC Partner" "vendor" "PEC Partner")\r\n`);
        return this.#ok(tag, 'ID completed');
      case 'STARTTLS':
        return this.#startTls(tag);
      case 'LOGIN':
        this.#need(['not_authenticated'], name);
        if (!this.#secure) throw new No('Log in over TLS: use STARTTLS first, or the implicit-TLS port.', 'PRIVACYREQUIRED');
        if (args.length !== 2) throw new Bad('LOGIN takes a user name and a password');
        return this.#login(tag, atomOf(args[0]), atomOf(args[1]), undefined);
      case 'AUTHENTICATE':
      case 'AUTHENTICATE PLAIN':
        return this.#authenticate(tag, name === 'AUTHENTICATE' ? atomOf(args[0]).toUpperCase() : 'PLAIN', name === 'AUTHENTICATE' ? args[1] : args[0]);
      case 'ENABLE':
        this.#need(['authenticated', 'selected'], name);
        return this.#enable(tag, args);
      case 'SELECT':
      case 'EXAMINE':
        this.#need(['authenticated', 'selected'], name);
        return this.#select(tag, name === 'EXAMINE', args);
      case 'CREATE':
        this.#need(['authenticated', 'selected'], name);
        this.#may('manage_folders', 'create folders');
        await createFolder(this.deps.db, this.#principal!.mailboxId, this.#folderArg(args[0]));
        return this.#ok(tag, 'CREATE completed');
      case 'DELETE':
        this.#need(['authenticated', 'selected'], name);
        this.#may('manage_folders', 'delete folders');
        await deleteFolder(this.deps.db, this.#principal!.mailboxId, this.#folderArg(args[0]));
        return this.#ok(tag, 'DELETE completed');
      case 'RENAME':
        this.#need(['authenticated', 'selected'], name);
        this.#may('manage_folders', 'rename folders');
        await renameFolder(this.deps.db, this.#principal!.mailboxId, this.#folderArg(args[0]), this.#folderArg(args[1]));
        return this.#ok(tag, 'RENAME completed');
      case 'SUBSCRIBE':
      case 'UNSUBSCRIBE':
        this.#need(['authenticated', 'selected'], name);
        if (!(await setSubscribed(this.deps.db, this.#principal!.mailboxId, this.#folderArg(args[0]), name === 'SUBSCRIBE')) && name === 'SUBSCRIBE') {
          throw new No('No such folder', 'NONEXISTENT');
        }
        return this.#ok(tag, `${name} completed`);
      case 'LIST':
      case 'LSUB':
        this.#need(['authenticated', 'selected'], name);
        return this.#list(tag, name === 'LSUB', args);
      case 'NAMESPACE':
        this.#need(['authenticated', 'selected'], name);
        this.#send(`* NAMESPACE (("" "${HIERARCHY_DELIMITER}")) NIL NIL\r\n`);
        return this.#ok(tag, 'NAMESPACE completed');
      case 'STATUS':
        this.#need(['authenticated', 'selected'], name);
        return this.#status(tag, args);
      case 'APPEND':
        this.#need(['authenticated', 'selected'], name);
        return this.#append(tag, args);
      case 'GETQUOTA':
      case 'GETQUOTAROOT':
        this.#need(['authenticated', 'selected'], name);
        return this.#quota(tag, name, atomOf(args[0]));
      case 'SETQUOTA':
        throw new No('Quotas are set by the plan and add-ons of the mailbox.', 'NOPERM');
      case 'IDLE':
        this.#need(['authenticated', 'selected'], name);
        return this.#startIdle(tag);
      case 'CLOSE':
      case 'UNSELECT':
        this.#need(['selected'], name);
        if (name === 'CLOSE' && !this.#selected!.readOnly && mayPerform(this.#principal!.actor, 'delete_message')) await expungeDeleted(this.deps.db, this.#selected!.view);
        this.#selected = null;
        this.#state = 'authenticated';
        return this.#ok(tag, `${name} completed`);
      case 'EXPUNGE':
        this.#need(['selected'], command);
        return this.#expunge(tag, isUid ? atomOf(args[0]) : null);
      case 'FETCH':
        this.#need(['selected'], command);
        return this.#fetch(tag, isUid, args);
      case 'STORE':
        this.#need(['selected'], command);
        return this.#store(tag, isUid, args);
      case 'SEARCH':
        this.#need(['selected'], command);
        return this.#search(tag, isUid, args);
      case 'COPY':
      case 'MOVE':
        this.#need(['selected'], command);
        return this.#copy(tag, isUid, name === 'MOVE', args);
      default:
        throw new Bad(`Unknown command ${command.slice(0, 30)}`);
    }
  }

  #ok(tag: string, text: string, code?: string): void {
    this.#send(`${tag} OK ${code ? `[${code}] ` : ''}${text}\r\n`);
  }

  async #startTls(tag: string): Promise<void> {
    this.#need(['not_authenticated'], 'STARTTLS');
    if (this.#secure) throw new Bad('TLS is already active');
    // Anything the client pipelined after STARTTLS was sent in clear: it is dropped (RFC 9051 §6.2.1).
    this.#queue = [];
    this.#ok(tag, 'Begin TLS negotiation now');
    const plain = this.#socket;
    plain.removeAllListeners('data');
    const secure = new TLSSocket(plain, { isServer: true, secureContext: this.deps.tls });
    secure.on('secure', () => {
      this.#secure = true;
      this.#socket = secure;
      this.#framer = this.#newFramer();
    });
    this.#socket = secure;
    plain.removeAllListeners('close');
    plain.removeAllListeners('error');
    plain.on('error', () => {});
    this.#attach(secure);
  }

  async #authenticate(tag: string, mechanism: string, initial: ImapAttribute | undefined): Promise<void> {
    this.#need(['not_authenticated'], 'AUTHENTICATE');
    if (mechanism !== 'PLAIN') throw new No(`Mechanism ${mechanism.slice(0, 20)} is not supported; use PLAIN.`, 'CANNOT');
    if (!this.#secure) throw new No('Authenticate over TLS: use STARTTLS first, or the implicit-TLS port.', 'PRIVACYREQUIRED');
    const finish = async (response: string) => {
      if (response.trim() === '*') return void this.#send(`${tag} BAD Authentication cancelled\r\n`);
      const decoded = Buffer.from(response.trim() === '=' ? '' : response.trim(), 'base64').toString('utf8').split('\0');
      if (decoded.length !== 3) return void this.#send(`${tag} BAD Malformed PLAIN response\r\n`);
      await this.#login(tag, decoded[1]!, decoded[2]!, decoded[0] || undefined);
    };
    const ir = atomOf(initial);
    if (initial) return finish(ir);
    this.#continuation = async (line) => {
      try {
        await finish(line);
      } catch (error) {
        this.deps.log?.error({ err: error }, 'IMAP AUTHENTICATE failed');
        this.#send(`${tag} NO [SERVERBUG] Temporary failure\r\n`);
      }
    };
    this.#send('+ \r\n');
  }

  async #login(tag: string, user: string, password: string, authzid: string | undefined): Promise<void> {
    const plausible = [user, password, authzid ?? ''].every((v) => v.length <= 1024 && !v.includes('\0'));
    const result = plausible
      ? await this.deps.signIn({ door: 'imap', user, password, authzid, remoteAddress: this.#socket.remoteAddress ?? '' })
      : { ok: false as const, code: 'invalid_credentials' as const, message: 'Invalid credentials' };
    if (!result.ok) {
      this.#authFailures++;
      const code = result.code === 'locked_out' ? 'UNAVAILABLE' : result.code === 'mailbox_unavailable' ? 'CONTACTADMIN' : 'AUTHENTICATIONFAILED';
      this.#send(`${tag} NO [${code}] ${result.message.replace(/[\r\n]/g, ' ')}\r\n`);
      if (this.#authFailures >= this.deps.limits.authFailuresPerSession) this.#bye('Too many failed logins');
      return;
    }
    if (!this.deps.acquireAccount(result.principal.mailboxId)) {
      return void this.#send(`${tag} NO [LIMIT] Too many open sessions for this mailbox; close some and try again\r\n`);
    }
    this.#principal = result.principal;
    this.#state = 'authenticated';
    this.#touch();
    this.#ok(tag, 'Logged in', `CAPABILITY ${this.#capabilities()}`);
  }

  #enable(tag: string, args: ImapAttributeList): void {
    const enabled: string[] = [];
    for (const arg of args) {
      const cap = atomOf(arg).toUpperCase();
      if (['CONDSTORE', 'QRESYNC', 'IMAP4REV2'].includes(cap) && !this.#enabled.has(cap)) {
        this.#enabled.add(cap);
        enabled.push(cap === 'IMAP4REV2' ? 'IMAP4rev2' : cap);
        if (cap === 'QRESYNC') this.#enabled.add('CONDSTORE');
      }
    }
    this.#send(`* ENABLED${enabled.map((c) => ` ${c}`).join('')}\r\n`);
    this.#ok(tag, 'ENABLE completed');
  }

  /** A mailbox name argument as a folder of the store (modified UTF-7 decoded). */
  #folderArg(node: ImapAttribute | undefined): string {
    const raw = atomOf(node);
    if (!raw) throw new Bad('Expected a folder name');
    const decoded = /&[A-Za-z0-9+,]*-/.test(raw) ? utf7.decode(raw) : raw;
    return folderNamed(decoded.replace(/\/+$/, ''));
  }

  #wireName(folder: string): string {
    const name = imapNameOf(folder);
    return astr(/[^\x20-\x7e]|&/.test(name) ? utf7.encode(name) : name);
  }

  async #select(tag: string, examine: boolean, args: ImapAttributeList): Promise<void> {
    if (this.#selected && (this.#enabled.has('QRESYNC') || this.#enabled.has('IMAP4REV2'))) this.#send('* OK [CLOSED] Previous folder closed\r\n');
    this.#selected = null;
    this.#state = 'authenticated';
    const folder = this.#folderArg(args[0]);
    const params = Array.isArray(args[1]) ? args[1] : [];
    let qresync: ImapAttributeList | null = null;
    for (let i = 0; i < params.length; i++) {
      const p = atomOf(params[i]).toUpperCase();
      if (p === 'CONDSTORE') this.#enabled.add('CONDSTORE');
      else if (p === 'QRESYNC' && Array.isArray(params[i + 1])) {
        if (!this.#enabled.has('QRESYNC')) throw new Bad('ENABLE QRESYNC first');
        qresync = params[++i] as ImapAttributeList;
      }
    }
    const principal = this.#principal!;
    const view: FolderView = { mailboxId: principal.mailboxId, folder, visibility: ownTransactionsOnly(principal.actor) };
    const opened = await openFolder(this.deps.db, view);
    if (!opened) throw new No(`There is no folder ${imapNameOf(folder)}`, 'NONEXISTENT');
    const readOnly = examine || !mayPerform(principal.actor, 'update_message');
    const selected: Selected = {
      view, imapName: imapNameOf(folder), readOnly, uidValidity: opened.uidValidity, uids: opened.uids,
      modseq: opened.highestModseq, expungeModseq: opened.highestModseq, own: new Map(),
    };
    // SELECT names the first unseen message (UNSEEN), it does not count them: counting the folder is not needed. The UID
    // check below still leaves out a message this session may not see, as the count of visible unseen ones did.
    const [firstUnseen] = (await this.deps.db.execute(sql`select uid from mailbox_messages where mailbox_id = ${view.mailboxId} and folder = ${folder} and not seen order by uid limit 1`)) as unknown as Array<{ uid: number }>;
    this.#send(`* FLAGS ${FLAGS}\r\n`);
    this.#send(`* OK [PERMANENTFLAGS ${readOnly ? '()' : '(\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)'}] Flags permitted\r\n`);
    this.#send(`* ${opened.uids.length} EXISTS\r\n`);
    if (!this.#enabled.has('IMAP4REV2')) this.#send('* 0 RECENT\r\n');
    if (firstUnseen) {
      const seq = lowerBound(opened.uids, firstUnseen.uid) + 1;
      if (opened.uids[seq - 1] === firstUnseen.uid && !this.#enabled.has('IMAP4REV2')) this.#send(`* OK [UNSEEN ${seq}] First unseen\r\n`);
    }
    this.#send(`* OK [UIDVALIDITY ${opened.uidValidity}] UIDs valid\r\n`);
    this.#send(`* OK [UIDNEXT ${opened.uidNext}] Predicted next UID\r\n`);
    if (this.#enabled.has('CONDSTORE')) this.#send(`* OK [HIGHESTMODSEQ ${opened.highestModseq}] Highest\r\n`);
    if (this.#enabled.has('IMAP4REV2')) this.#send(`* LIST () "${HIERARCHY_DELIMITER}" ${this.#wireName(folder)}\r\n`);
    this.#selected = selected;
    this.#state = 'selected';
    if (qresync) await this.#qresyncReport(qresync);
    this.#ok(tag, `${examine ? 'EXAMINE' : 'SELECT'} completed`, readOnly ? 'READ-ONLY' : 'READ-WRITE');
  }

  /** SELECT … (QRESYNC (uidvalidity modseq [uids])): what changed and vanished since the client's last visit (RFC 7162 §3.2.5). */
  async #qresyncReport(params: ImapAttributeList): Promise<void> {
    const selected = this.#selected!;
    const validity = Number(atomOf(params[0]));
    const since = Number(atomOf(params[1]));
    if (validity !== selected.uidValidity || !Number.isSafeInteger(since)) return;
    const changes = await changesSince(this.deps.db, selected.view, since, since);
    if (!changes) return;
    if (changes.expunged.length) this.#send(`* VANISHED (EARLIER) ${compactSet(changes.expunged)}\r\n`);
    for (const state of changes.changed) {
      const seq = lowerBound(selected.uids, state.uid) + 1;
      if (selected.uids[seq - 1] !== state.uid) continue;
      this.#send(`* ${seq} FETCH (UID ${state.uid} FLAGS ${flagList(state)} MODSEQ (${state.modseq}))\r\n`);
    }
  }

  async #list(tag: string, lsub: boolean, args: ImapAttributeList): Promise<void> {
    let at = 0;
    const selection = new Set<string>();
    if (Array.isArray(args[0])) {
      for (const option of args[0]) selection.add(atomOf(option).toUpperCase());
      at = 1;
    }
    const reference = atomOf(args[at]);
    const patternNode = args[at + 1];
    const patterns = (Array.isArray(patternNode) ? patternNode.map(atomOf) : [atomOf(patternNode)]).map((p) => (/&[A-Za-z0-9+,]*-/.test(p) ? utf7.decode(p) : p));
    const returns = new Set<string>();
    let statusItems: string[] = [];
    if (atomOf(args[at + 2]).toUpperCase() === 'RETURN' && Array.isArray(args[at + 3])) {
      const options = args[at + 3] as ImapAttributeList;
      for (let i = 0; i < options.length; i++) {
        const option = atomOf(options[i]).toUpperCase();
        returns.add(option);
        if (option === 'STATUS' && Array.isArray(options[i + 1])) statusItems = (options[++i] as ImapAttributeList).map((n) => atomOf(n).toUpperCase());
      }
    }
    if (patterns.length === 1 && patterns[0] === '' && !lsub) {
      this.#send(`* LIST (\\Noselect) "${HIERARCHY_DELIMITER}" ""\r\n`);
      return this.#ok(tag, 'LIST completed');
    }
    const rows = await listFolderRows(this.deps.db, this.#principal!.mailboxId);
    const names = rows.map((r) => imapNameOf(r.name));
    const matchers = patterns.map((p) => patternRegex(reference + p));
    const specialOnly = selection.has('SPECIAL-USE');
    const subscribedOnly = lsub || selection.has('SUBSCRIBED');
    const order = Object.keys(SYSTEM_FOLDERS);
    const sorted = [...rows].sort((a, b) => (isSystemFolder(a.name) ? order.indexOf(a.name) : order.length) - (isSystemFolder(b.name) ? order.indexOf(b.name) : order.length) || a.name.localeCompare(b.name));
    for (const row of sorted) {
      const name = imapNameOf(row.name);
      if (!matchers.some((m) => m.test(name))) continue;
      const special = isSystemFolder(row.name) ? SYSTEM_FOLDERS[row.name].specialUse : null;
      if (specialOnly && !special) continue;
      if (subscribedOnly && !row.subscribed) continue;
      const attributes: string[] = [];
      attributes.push(names.some((n) => n.startsWith(`${name}${HIERARCHY_DELIMITER}`)) ? '\\HasChildren' : '\\HasNoChildren');
      if (special && (!lsub)) attributes.push(special);
      if (row.subscribed && (returns.has('SUBSCRIBED') || selection.has('SUBSCRIBED'))) attributes.push('\\Subscribed');
      this.#send(`* ${lsub ? 'LSUB' : 'LIST'} (${attributes.join(' ')}) "${HIERARCHY_DELIMITER}" ${this.#wireName(row.name)}\r\n`);
      if (statusItems.length) this.#send(await this.#statusLine(row.name, statusItems));
    }
    this.#ok(tag, `${lsub ? 'LSUB' : 'LIST'} completed`);
  }

  async #statusLine(folder: string, items: string[]): Promise<string> {
    const principal = this.#principal!;
    const view: FolderView = { mailboxId: principal.mailboxId, folder, visibility: ownTransactionsOnly(principal.actor) };
    const opened = await openFolder(this.deps.db, view);
    if (!opened) throw new No(`There is no folder ${imapNameOf(folder)}`, 'NONEXISTENT');
    const counts = await folderCounts(this.deps.db, view);
    const out: string[] = [];
    for (const item of items) {
      switch (item) {
        case 'MESSAGES': out.push(`MESSAGES ${counts.messages}`); break;
        case 'UIDNEXT': out.push(`UIDNEXT ${opened.uidNext}`); break;
        case 'UIDVALIDITY': out.push(`UIDVALIDITY ${opened.uidValidity}`); break;
        case 'UNSEEN': out.push(`UNSEEN ${counts.unseen}`); break;
        case 'DELETED': out.push(`DELETED ${counts.deleted}`); break;
        case 'SIZE': out.push(`SIZE ${counts.size}`); break;
        case 'RECENT': out.push('RECENT 0'); break;
        case 'HIGHESTMODSEQ': out.push(`HIGHESTMODSEQ ${opened.highestModseq}`); break;
        default: throw new Bad(`Unknown STATUS item ${item.slice(0, 20)}`);
      }
    }
    return `* STATUS ${this.#wireName(folder)} (${out.join(' ')})\r\n`;
  }

  async #status(tag: string, args: ImapAttributeList): Promise<void> {
    const folder = this.#folderArg(args[0]);
    if (!Array.isArray(args[1]) || args[1].length === 0) throw new Bad('STATUS needs a list of items');
    this.#send(await this.#statusLine(folder, args[1].map((n) => atomOf(n).toUpperCase())));
    this.#ok(tag, 'STATUS completed');
  }

  #parseFlags(nodes: ImapAttributeList): { system: FlagChange['system']; keywords: string[] } {
    const system: FlagChange['system'] = {};
    const keywords: string[] = [];
    for (const node of nodes) {
      const flag = atomOf(node);
      const match = SYSTEM_FLAG.exec(flag);
      if (match) system[match[1]!.toLowerCase() as 'seen'] = true;
      else if (flag.startsWith('\\')) {
        if (flag.toLowerCase() === '\\recent') throw new Bad('\\Recent cannot be stored');
        throw new Bad(`Unknown system flag ${flag.slice(0, 20)}`);
      } else if (KEYWORD.test(flag) && flag.length <= 100) keywords.push(flag);
      else throw new Bad('Invalid keyword');
    }
    if (keywords.length > 50) throw new No('Too many keywords', 'LIMIT');
    return { system, keywords };
  }

  async #append(tag: string, args: ImapAttributeList): Promise<void> {
    this.#may('store_message', 'store messages');
    const folder = this.#folderArg(args[0]);
    let at = 1;
    let flags = { system: {} as FlagChange['system'], keywords: [] as string[] };
    if (Array.isArray(args[at])) flags = this.#parseFlags(args[at++] as ImapAttributeList);
    let date = new Date();
    const maybeDate = args[at];
    if (maybeDate && !Array.isArray(maybeDate) && maybeDate.type === 'STRING') {
      const parsed = parseDateTime(atomOf(maybeDate));
      if (!parsed) throw new Bad('Invalid APPEND date-time');
      date = parsed;
      at++;
    }
    const message = args[at];
    if (!message || Array.isArray(message) || message.type !== 'LITERAL' || args.length > at + 1) throw new Bad('APPEND takes a folder, optional flags and date, and the message as a literal');
    const bytes = Buffer.isBuffer(message.value) ? message.value : Buffer.from(String(message.value ?? ''), 'latin1');
    if (bytes.length === 0) throw new No('An empty message cannot be stored', 'CANNOT');
    if (flags.system.deleted && !mayPerform(this.#principal!.actor, 'delete_message')) throw new No('This session may not store \\Deleted', 'NOPERM');
    const stored = await appendMessage(this.deps.db, this.#principal!.mailboxId, folder, bytes, {
      seen: !!flags.system.seen, answered: !!flags.system.answered, flagged: !!flags.system.flagged, draft: !!flags.system.draft, deleted: !!flags.system.deleted, keywords: flags.keywords,
    }, date);
    if (this.#selected?.view.folder === folder) await this.#sync(false);
    this.#ok(tag, 'APPEND completed', `APPENDUID ${stored.uidValidity} ${stored.uid}`);
  }

  async #quota(tag: string, command: string, root: string): Promise<void> {
    const use = await quotaUse(this.deps.db, this.#principal!.mailboxId);
    if (!use) throw new No('No quota', 'NONEXISTENT');
    const line = (name: 'inbox' | 'archive') => `* QUOTA ${str(name)} (STORAGE ${Math.ceil(use[name].used / 1024)} ${Math.floor(use[name].limit / 1024)})\r\n`;
    if (command === 'GETQUOTAROOT') {
      const folder = folderNamed(/&[A-Za-z0-9+,]*-/.test(root) ? utf7.decode(root) : root);
      const quota = folder === 'archive' ? 'archive' : 'inbox';
      this.#send(`* QUOTAROOT ${this.#wireName(folder)} ${str(quota)}\r\n`);
      this.#send(line(quota));
      return this.#ok(tag, 'GETQUOTAROOT completed');
    }
    if (root !== 'inbox' && root !== 'archive') throw new No('The quota roots are "inbox" and "archive"', 'NONEXISTENT');
    this.#send(line(root));
    this.#ok(tag, 'GETQUOTA completed');
  }

  async #startIdle(tag: string): Promise<void> {
    await this.#sync(true);
    const principal = this.#principal!;
    const wake = () => void this.#sync(true).catch((error: unknown) => this.deps.log?.warn({ err: error }, 'IMAP IDLE sync failed'));
    const unwatch = this.deps.changes.watch(principal.mailboxId, wake);
    // A safety net should a notification ever be lost (a LISTEN connection that reconnects, say).
    const timer = setInterval(wake, 60_000);
    timer.unref();
    this.#idle = { tag, stop: () => { unwatch(); clearInterval(timer); }, timer };
    this.#send('+ idling\r\n');
  }

  #endIdle(): void {
    const idle = this.#idle!;
    idle.stop();
    this.#idle = null;
    this.#ok(idle.tag, 'IDLE terminated');
  }

  /**
   * Tells the client what changed in the selected folder since it last heard: new messages (EXISTS), flag changes
   * of others (FETCH) and, when `expunges` is allowed, messages gone (EXPUNGE, or VANISHED under QRESYNC). Runs
   * one at a time; a wake-up during a sync runs another after it.
   */
  async #sync(expunges: boolean): Promise<void> {
    if (this.#syncing) {
      this.#resync = true;
      return this.#syncing;
    }
    this.#syncing = (async () => {
      do {
        this.#resync = false;
        await this.#syncOnce(expunges);
      } while (this.#resync && !this.#closed);
    })().finally(() => {
      this.#syncing = null;
    });
    return this.#syncing;
  }

  async #syncOnce(expunges: boolean): Promise<void> {
    const selected = this.#selected;
    if (!selected || this.#closed) return;
    const changes = await changesSince(this.deps.db, selected.view, selected.modseq, expunges ? selected.expungeModseq : Number.MAX_SAFE_INTEGER);
    if (!changes || this.#selected !== selected) return;
    const out: string[] = [];
    if (expunges && changes.expunged.length) {
      const gone = changes.expunged.filter((uid) => selected.uids[lowerBound(selected.uids, uid)] === uid);
      if (gone.length && this.#enabled.has('QRESYNC')) {
        out.push(`* VANISHED ${compactSet(gone)}\r\n`);
        const drop = new Set(gone);
        selected.uids = selected.uids.filter((uid) => !drop.has(uid));
      } else {
        for (const uid of [...gone].sort((a, b) => b - a)) {
          const index = lowerBound(selected.uids, uid);
          selected.uids.splice(index, 1);
          out.push(`* ${index + 1} EXPUNGE\r\n`);
        }
      }
    }
    if (expunges) selected.expungeModseq = changes.highestModseq;
    const last = selected.uids.length ? selected.uids[selected.uids.length - 1]! : 0;
    const added = changes.changed.filter((s) => s.uid > last);
    const condstore = this.#enabled.has('CONDSTORE');
    for (const state of changes.changed) {
      if (state.uid > last) continue;
      if (selected.own.get(state.uid) === state.modseq) continue;
      const index = lowerBound(selected.uids, state.uid);
      if (selected.uids[index] !== state.uid) continue;
      out.push(`* ${index + 1} FETCH (UID ${state.uid} FLAGS ${flagList(state)}${condstore ? ` MODSEQ (${state.modseq})` : ''})\r\n`);
    }
    selected.own.clear();
    if (added.length) {
      selected.uids.push(...added.map((s) => s.uid));
      out.push(`* ${selected.uids.length} EXISTS\r\n`);
      if (!this.#enabled.has('IMAP4REV2')) out.push('* 0 RECENT\r\n');
    }
    selected.modseq = Math.max(selected.modseq, changes.highestModseq);
    if (out.length) await this.#write(out.join(''));
  }

  #uidsOf(isUid: boolean, set: string): number[] {
    const selected = this.#selected!;
    if (set === '$') throw new Bad('SEARCHRES is not supported');
    return isUid ? uidsForUidSet(set, selected.uids) : uidsForSequenceSet(set, selected.uids);
  }

  async #fetch(tag: string, isUid: boolean, args: ImapAttributeList): Promise<void> {
    const selected = this.#selected!;
    const uids = this.#uidsOf(isUid, atomOf(args[0]));
    const items = parseFetchItems(args[1]);
    let changedSince: number | undefined;
    let vanished = false;
    if (Array.isArray(args[2])) {
      const modifiers = args[2];
      for (let i = 0; i < modifiers.length; i++) {
        const m = atomOf(modifiers[i]).toUpperCase();
        if (m === 'CHANGEDSINCE') {
          changedSince = Number(atomOf(modifiers[++i]));
          if (!Number.isSafeInteger(changedSince)) throw new Bad('CHANGEDSINCE needs a number');
          this.#enabled.add('CONDSTORE');
        } else if (m === 'VANISHED') {
          if (!isUid || !this.#enabled.has('QRESYNC')) throw new Bad('VANISHED needs UID FETCH and QRESYNC');
          vanished = true;
        } else throw new Bad(`Unknown FETCH modifier ${m.slice(0, 20)}`);
      }
    }
    if (vanished && changedSince !== undefined) {
      const changes = await changesSince(this.deps.db, selected.view, Number.MAX_SAFE_INTEGER, changedSince);
      const asked = new Set(uidsForUidSet(atomOf(args[0]), changes?.expunged ?? []));
      if (asked.size) await this.#write(`* VANISHED (EARLIER) ${compactSet([...asked])}\r\n`);
    }
    const needs = needsOf(items);
    const condstore = this.#enabled.has('CONDSTORE') && (changedSince !== undefined || items.some((i) => i.kind === 'MODSEQ') || this.#enabled.has('CONDSTORE'));
    if (needs.setsSeen && !selected.readOnly && uids.length) {
      const { updated } = await changeFlags(this.deps.db, selected.view, uids, { mode: 'add', system: { seen: true }, keywords: [] });
      for (const state of updated) selected.own.set(state.uid, state.modseq);
    }
    // A FETCH that sets \Seen also tells the new flags (RFC 9051 §6.4.5: the server includes FLAGS when they change).
    const rendered = needs.setsSeen && !selected.readOnly && !items.some((i) => i.kind === 'FLAGS') ? [...items, { kind: 'FLAGS' as const }] : items;
    // Responses are gathered into writes of about 256 KB (one copy of the bytes, one TLS write), then backpressure.
    let pieces: FetchResponse = [];
    let pending = 0;
    const flush = async () => {
      const data = Buffer.allocUnsafe(pending);
      let at = 0;
      for (const piece of pieces) at += typeof piece === 'string' ? data.write(piece, at, 'latin1') : piece.copy(data, at);
      pieces = [];
      pending = 0;
      await this.#write(data);
    };
    const saving = new SummaryWrites();
    for await (const rows of this.#fetchBatches(uids, needs, changedSince, saving)) {
      if (this.#closed) break;
      for (const row of rows) {
        row.seq = lowerBound(selected.uids, row.state.uid) + 1;
        for (const piece of renderFetch(rendered, row, { condstore: condstore && this.#enabled.has('CONDSTORE'), uid: isUid })) {
          // A big message goes out as the bytes read from the store, not copied once more.
          if (typeof piece !== 'string' && piece.length >= 64 * 1024) {
            if (pending) await flush();
            await this.#write(piece);
            continue;
          }
          pieces.push(piece);
          pending += piece.length;
        }
        if (pending > 256 * 1024) await flush();
      }
    }
    if (pending) await flush();
    await saving.done();
    await this.#sync(isUid);
    this.#ok(tag, `${isUid ? 'UID ' : ''}FETCH completed`);
  }

  /**
   * The messages of a FETCH, in UID order and in batches: 500 without their bytes, about 1 MB of messages with them.
   * The next batch is read while the current one is written (two round trips never add up), so at most two batches
   * are in memory whatever the size of the folder.
   */
  async *#fetchBatches(uids: number[], needs: ReturnType<typeof needsOf>, changedSince: number | undefined, saving: SummaryWrites) {
    const batches = needs.content ? this.#contentBatches(uids) : (function* () {
      for (let i = 0; i < uids.length; i += 500) yield uids.slice(i, i + 500);
    })();
    const load = async () => {
      const next = await batches.next();
      return next.done ? null : this.#loadForFetch(next.value, needs, changedSince, saving);
    };
    let loading = load();
    try {
      for (;;) {
        const rows = await loading;
        if (!rows) return;
        loading = load();
        yield rows;
      }
    } finally {
      // When the FETCH stops early (the client went away), the batch read ahead is dropped, its failure with it.
      loading.catch(() => {});
    }
  }

  /** UIDs in batches of about CONTENT_BATCH_BYTES of stored messages (one message alone when it is bigger). */
  async *#contentBatches(uids: number[]) {
    const { view } = this.#selected!;
    for (let i = 0; i < uids.length; i += 2000) {
      const chunk = uids.slice(i, i + 2000);
      const sizes = new Map(((await this.deps.db.execute(sql`select uid, size_bytes from mailbox_messages
        where mailbox_id = ${view.mailboxId} and folder = ${view.folder} and uid = any(${sql.param(chunk)}::int[])`)) as unknown as Array<{ uid: number; size_bytes: number }>)
        .map((r) => [r.uid, r.size_bytes]));
      let batch: number[] = [];
      let bytes = 0;
      for (const uid of chunk) {
        const size = sizes.get(uid) ?? 0;
        if (batch.length && (bytes + size > CONTENT_BATCH_BYTES || batch.length >= 500)) {
          yield batch;
          batch = [];
          bytes = 0;
        }
        batch.push(uid);
        bytes += size;
      }
      if (batch.length) yield batch;
    }
  }

  async #loadForFetch(uids: number[], needs: ReturnType<typeof needsOf>, changedSince: number | undefined, saving: SummaryWrites) {
    const selected = this.#selected!;
    const { view } = selected;
    const since = changedSince === undefined ? sql`` : sql` and modseq > ${changedSince}`;
    // Only the parts of the summary asked for travel (an ENVELOPE is a fraction of the whole summary). A message whose
    // summary lacks them comes with what computing it needs, in the same round trip: the whole message for
    // BODYSTRUCTURE or BODY, only the header (up to the empty line, read from its first 64 KB) for ENVELOPE.
    const lacksStructure = sql`(imap_summary->'bodystructure' is null or imap_summary->'body' is null)`;
    const lacksEnvelope = sql`imap_summary->'envelope' is null`;
    const header = sql`(select case when at > 0 then substring(head for at + 3) else content end
      from (select head, position(decode('0d0a0d0a', 'hex') in head) at from (select substring(content for 65536) head) h) p)`;
    const bytes = needs.content ? sql`content`
      : needs.structure ? sql`case when ${lacksStructure}${needs.envelope ? sql` or ${lacksEnvelope}` : sql``} then content end`
        : needs.envelope ? sql`case when ${lacksEnvelope} then ${header} end` : sql`null::bytea`;
    const rows = (await this.deps.db.execute(sql`select uid, modseq, seen, answered, flagged, draft, deleted, keywords, size_bytes, stored_at,
        ${needs.envelope ? sql`imap_summary->>'envelope'` : sql`null::text`} envelope,
        ${needs.structure ? sql`imap_summary->>'bodystructure'` : sql`null::text`} bodystructure,
        ${needs.structure ? sql`imap_summary->>'body'` : sql`null::text`} body,
        ${bytes} content
      from mailbox_messages where mailbox_id = ${view.mailboxId} and folder = ${view.folder}
        and uid = any(${sql.param(uids)}::int[])${since} order by uid`)) as unknown as Array<{
      uid: number; modseq: string; seen: boolean; answered: boolean; flagged: boolean; draft: boolean; deleted: boolean; keywords: string[];
      size_bytes: number; stored_at: Date | string; envelope: string | null; bodystructure: string | null; body: string | null; content: Buffer | null;
    }>;
    const found: Array<{ uid: number; summary: Partial<ImapSummary> }> = [];
    for (const row of rows) {
      if (!((needs.envelope && row.envelope === null) || (needs.structure && (row.bodystructure === null || row.body === null))) || !row.content) continue;
      // The first FETCH that needs them computes them; they are kept with the message.
      const text = row.content.toString('latin1');
      const summary: Partial<ImapSummary> = needs.structure ? summarize(text) : { envelope: envelopeOf(text) };
      Object.assign(row, summary);
      found.push({ uid: row.uid, summary });
    }
    if (found.length) {
      // Stored while the responses go out; the FETCH completes once it is (and fails as before if it cannot be).
      saving.add(async () => {
        const foundUids = sql.param(found.map((f) => f.uid));
        await this.deps.db.execute(sql`update mailbox_messages m set imap_summary = coalesce(m.imap_summary, '{}'::jsonb) || v.summary::jsonb
          from (select unnest(${foundUids}::int[]) uid, unnest(${sql.param(found.map((f) => JSON.stringify(f.summary)))}::text[]) summary) v
          where m.mailbox_id = ${view.mailboxId} and m.folder = ${view.folder} and m.uid = any(${foundUids}::int[]) and m.uid = v.uid`);
      });
    }
    return rows.map((r): FetchedMessage => {
      let summary: Partial<ImapSummary> | null = null;
      if (needs.envelope || needs.structure) {
        summary = {};
        if (r.envelope !== null) summary.envelope = r.envelope;
        if (r.bodystructure !== null) summary.bodystructure = r.bodystructure;
        if (r.body !== null) summary.body = r.body;
      }
      return {
        seq: 0, // set when the response is written, from the session's view
        state: { uid: r.uid, modseq: Number(r.modseq), seen: r.seen, answered: r.answered, flagged: r.flagged, draft: r.draft, deleted: r.deleted, keywords: r.keywords },
        size: r.size_bytes,
        storedAt: new Date(r.stored_at),
        summary,
        content: needs.content ? r.content : null,
      };
    });
  }

  async #store(tag: string, isUid: boolean, args: ImapAttributeList): Promise<void> {
    const selected = this.#selected!;
    if (selected.readOnly) throw new No('The folder is open read-only', 'READ-ONLY');
    const uids = this.#uidsOf(isUid, atomOf(args[0]));
    let at = 1;
    let unchangedSince: number | undefined;
    if (Array.isArray(args[1])) {
      const modifiers = args[1];
      if (atomOf(modifiers[0]).toUpperCase() !== 'UNCHANGEDSINCE') throw new Bad('Unknown STORE modifier');
      unchangedSince = Number(atomOf(modifiers[1]));
      if (!Number.isSafeInteger(unchangedSince)) throw new Bad('UNCHANGEDSINCE needs a number');
      this.#enabled.add('CONDSTORE');
      at = 2;
    }
    const action = atomOf(args[at]).toUpperCase();
    const match = /^([+-]?)FLAGS(\.SILENT)?$/.exec(action);
    if (!match) throw new Bad('STORE takes FLAGS, +FLAGS or -FLAGS');
    const flagNodes = Array.isArray(args[at + 1]) ? (args[at + 1] as ImapAttributeList) : args.slice(at + 1);
    const flags = this.#parseFlags(flagNodes);
    const mode: FlagChange['mode'] = match[1] === '+' ? 'add' : match[1] === '-' ? 'remove' : 'replace';
    if ((flags.system.deleted || mode === 'replace') && !mayPerform(this.#principal!.actor, 'delete_message')) {
      if (flags.system.deleted) throw new No('This session may not mark messages \\Deleted', 'NOPERM');
    }
    this.#may('update_message', 'change flags');
    const { updated, conflicts } = await changeFlags(this.deps.db, selected.view, uids, { mode, ...flags }, unchangedSince);
    const silent = !!match[2];
    const condstore = this.#enabled.has('CONDSTORE');
    let out = '';
    for (const state of updated) {
      selected.own.set(state.uid, state.modseq);
      const index = lowerBound(selected.uids, state.uid);
      if (selected.uids[index] !== state.uid) continue;
      // Under CONDSTORE the new MODSEQ is sent even with .SILENT (RFC 7162 §3.1.3).
      if (!silent || condstore) out += `* ${index + 1} FETCH (${silent ? '' : `FLAGS ${flagList(state)} `}${isUid ? `UID ${state.uid} ` : ''}${condstore ? `MODSEQ (${state.modseq})` : ''})\r\n`.replace(' )', ')');
    }
    if (out) await this.#write(out);
    await this.#sync(isUid);
    const modified = conflicts.length ? `MODIFIED ${isUid ? compactSet(conflicts) : compactSet(conflicts.map((uid) => lowerBound(selected.uids, uid) + 1))}` : undefined;
    this.#ok(tag, `${isUid ? 'UID ' : ''}STORE completed`, modified);
  }

  async #expunge(tag: string, uidSet: string | null): Promise<void> {
    const selected = this.#selected!;
    if (selected.readOnly) throw new No('The folder is open read-only', 'READ-ONLY');
    this.#may('delete_message', 'expunge messages');
    await expungeDeleted(this.deps.db, selected.view, uidSet === null ? undefined : uidsForUidSet(uidSet, selected.uids));
    await this.#sync(true);
    this.#ok(tag, `${uidSet === null ? '' : 'UID '}EXPUNGE completed`);
  }

  async #search(tag: string, isUid: boolean, args: ImapAttributeList): Promise<void> {
    const selected = this.#selected!;
    const { criteria, returns } = searchPrologue(args);
    const last = selected.uids.length ? selected.uids[selected.uids.length - 1]! : 0;
    const compiled = compileSearch(criteria, selected.uids.length, last);
    const matches: number[] = [];
    let highest = 0;
    const batchSize = compiled.needsContent ? 50 : 2000;
    for (let i = 0; i < selected.uids.length; i += batchSize) {
      const batch = selected.uids.slice(i, i + batchSize);
      const rows = (await this.deps.db.execute(sql`select uid, modseq, seen, answered, flagged, draft, deleted, keywords, size_bytes, stored_at,
          ${compiled.needsContent ? sql`content` : sql`null::bytea`} content
        from mailbox_messages where mailbox_id = ${selected.view.mailboxId} and folder = ${selected.view.folder} and uid = any(${sql.param(batch)}::int[]) order by uid`)) as unknown as Array<{
        uid: number; modseq: string; seen: boolean; answered: boolean; flagged: boolean; draft: boolean; deleted: boolean; keywords: string[]; size_bytes: number; stored_at: Date | string; content: Buffer | null;
      }>;
      for (const row of rows) {
        const seq = lowerBound(selected.uids, row.uid) + 1;
        const state: MessageState = { uid: row.uid, modseq: Number(row.modseq), seen: row.seen, answered: row.answered, flagged: row.flagged, draft: row.draft, deleted: row.deleted, keywords: row.keywords };
        const content = row.content ? row.content.toString('latin1') : null;
        const facts = { seq, state, size: row.size_bytes, storedAt: new Date(row.stored_at), content };
        if (compiled.predicate(facts, new LazyMessage(content ?? ''))) {
          matches.push(isUid ? row.uid : seq);
          highest = Math.max(highest, state.modseq);
        }
      }
    }
    if (returns !== null || this.#enabled.has('IMAP4REV2')) {
      const wanted = returns && returns.length ? returns : ['ALL'];
      const parts = [`(TAG ${str(tag)})`];
      if (isUid) parts.push('UID');
      if (matches.length) {
        if (wanted.includes('MIN')) parts.push(`MIN ${Math.min(...matches)}`);
        if (wanted.includes('MAX')) parts.push(`MAX ${Math.max(...matches)}`);
        if (wanted.includes('ALL')) parts.push(`ALL ${compactSet(matches)}`);
      }
      if (wanted.includes('COUNT')) parts.push(`COUNT ${matches.length}`);
      if (compiled.usesModseq && matches.length) parts.push(`MODSEQ ${highest}`);
      await this.#write(`* ESEARCH ${parts.join(' ')}\r\n`);
    } else {
      await this.#write(`* SEARCH${matches.map((n) => ` ${n}`).join('')}${compiled.usesModseq && matches.length ? ` (MODSEQ ${highest})` : ''}\r\n`);
    }
    await this.#sync(isUid);
    this.#ok(tag, `${isUid ? 'UID ' : ''}SEARCH completed`);
  }

  async #copy(tag: string, isUid: boolean, move: boolean, args: ImapAttributeList): Promise<void> {
    const selected = this.#selected!;
    const uids = this.#uidsOf(isUid, atomOf(args[0]));
    const target = this.#folderArg(args[1]);
    if (move) {
      if (selected.readOnly) throw new No('The folder is open read-only', 'READ-ONLY');
      this.#may('update_message', 'move messages');
    } else {
      this.#may('store_message', 'copy messages');
    }
    const targetState = await openFolderState(this.deps.db, selected.view.mailboxId, target);
    if (!targetState) throw new No(`There is no folder ${imapNameOf(target)}`, 'TRYCREATE');
    if (uids.length === 0) return this.#ok(tag, `${move ? 'MOVE' : 'COPY'} completed (nothing to ${move ? 'move' : 'copy'})`);
    const pairs = move ? await moveMessages(this.deps.db, selected.view, uids, target) : await copyMessages(this.deps.db, selected.view, uids, target);
    const copyUid = pairs.length ? `COPYUID ${targetState.uidValidity} ${orderedSet(pairs.map((p) => p[0]))} ${orderedSet(pairs.map((p) => p[1]))}` : undefined;
    if (move) {
      if (copyUid) this.#send(`* OK [${copyUid}] Moved\r\n`);
      await this.#sync(true);
      return this.#ok(tag, `${isUid ? 'UID ' : ''}MOVE completed`);
    }
    if (target === selected.view.folder) await this.#sync(isUid);
    this.#ok(tag, `${isUid ? 'UID ' : ''}COPY completed`, copyUid);
  }
}

async function openFolderState(db: Db, mailboxId: string, folder: string) {
  const [row] = (await db.execute(sql`select uid_validity from mailbox_folders where mailbox_id = ${mailboxId} and name = ${folder}`)) as unknown as Array<{ uid_validity: string }>;
  return row ? { uidValidity: Number(row.uid_validity) } : null;
}

/** An IMAP LIST pattern (RFC 9051 §6.3.9): * matches anything, % anything but the hierarchy delimiter. INBOX in any case. */
function patternRegex(pattern: string): RegExp {
  const body = pattern.split('').map((c) => (c === '*' ? '.*' : c === '%' ? `[^${HIERARCHY_DELIMITER}]*` : c.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))).join('');
  return /^inbox$/i.test(pattern) ? /^INBOX$/ : new RegExp(`^${body}$`);
}
