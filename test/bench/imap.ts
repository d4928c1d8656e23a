/**
 * IMAP benchmark (`npm run bench -- imap`, or `npx tsx test/bench/imap.ts` alone). Not a test: it asserts nothing
 * about speed. The question it answers: how long does a mail client take to open and sync a big PEC mailbox on our
 * IMAP server (PostgreSQL store, api/src/imap) compared with Dovecot on the same machine, in the same run, with the
 * same messages?
 *
 *  - N deterministic PEC transport envelopes (multipart/signed around a text part, daticert.xml and the original
 *    message with a small PDF, 5–9 KB each, varied senders and subjects) are stored in one mailbox of ours as
 *    storeMessage() stores the engine's deliveries (the rows it writes, 100 to a multi-row INSERT: the triggers
 *    allocate UIDs in order, quota usage is counted; one call per message is 3–4 times slower), and the same bytes
 *    are written into a Maildir served by a private Dovecot (`/usr/sbin/dovecot -F` with a config of its own in
 *    a temporary directory, its implicit-TLS port only). A second mailbox holds the first N/10 of them, for the
 *    memory comparison.
 *  - Both servers present the same self-signed certificate on an implicit-TLS port and are driven by the same
 *    client: a minimal raw IMAP client in this process (literal-aware, it only counts responses and hashes bodies),
 *    so the time measured is the servers', not a client library's parsing. One session is: TLS connect and LOGIN,
 *    SELECT INBOX, `FETCH 1:* (UID FLAGS ENVELOPE)` (time A), `FETCH 1:* (BODY.PEEK[])` (time B), LOGOUT.
 *  - Cold: the first sync. Dovecot scans the Maildir and builds its uidlist, index and cache; we compute ENVELOPE
 *    (and BODYSTRUCTURE) and keep them with the messages. Repeated by clearing those caches (our imap_summary
 *    column; Dovecot's index files) between runs. Warm: the caches exist. Each server alternately goes first;
 *    medians are printed. Between phases the table is VACUUMed (what autovacuum would do after the cold run's
 *    updates), so a random autovacuum does not land inside one measurement.
 *  - Memory: our server runs in a child process (like a real deployment) that samples its heap and RSS; a sync of
 *    the N/10 mailbox is compared with one of the N mailbox. The live heap (sampled right after a forced GC, in a run
 *    of its own since that slows it) is what a sync keeps; flat means its growth does not scale with N. Dovecot's
 *    per-session `imap` process peak RSS (VmHWM, its memory-mapped index included) is shown beside it.
 *  - A real client's view: one warm sync per server with imapflow (what the tests use), which also checks that
 *    both servers give the same envelopes. Bodies are checked byte for byte on every run (same SHA-256 of all
 *    BODY[] literals in sequence order).
 *
 * Needs Dovecot (Debian: `apt-get install dovecot-imapd`; the system service may stay stopped) and, like the tests,
 * a PostgreSQL server. As root the mail processes run as the `dovecot` user; as another user Dovecot runs
 * unprivileged as that user.
 *
 * Environment (all optional):
 *   TEST_DATABASE_URL / DATABASE_URL   default postgres://postgres@127.0.0.1:5432/test (a fresh database, dropped)
 *   IMAP_BENCH_MESSAGES=10000   messages in the mailbox (the memory comparison also uses a tenth of it)
 *   IMAP_BENCH_RUNS=3           warm runs per server        IMAP_BENCH_COLD_RUNS=3   cold runs per server
 *   IMAP_BENCH_IMAPFLOW=1       the imapflow pass (0: skip) IMAP_BENCH_DOVECOT=/usr/sbin/dovecot
 *   IMAP_BENCH_PROFILE=<dir>    our server runs with --cpu-prof, the profile written there at the end
 *   IMAP_BENCH_KEEP=1           keep the database and the Dovecot directory for inspection
 *   BENCH_LOG=1                 show the API's errors while the mailboxes are made
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, chownSync, chmodSync } from 'node:fs';
import { createServer, connect as netConnect } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { sql } from 'drizzle-orm';
import { ImapFlow } from 'imapflow';
import { buildApp, createOperatorKey, createPartner, ensureDefaultPriceList, loadConfig, loadPriceList, systemClock } from '@pec-partner/api';
import { connect, mailboxMessages } from '@pec-partner/db';
import { signInToMailbox } from '../../api/src/access/sign-in.ts';
import { startImapServers } from '../../api/src/imap/server.ts';
import { MailboxChanges } from '../../api/src/mailstore/changes.ts';
import { newId } from '../../api/src/ids.ts';
import { adjustUsage } from '../../api/src/pec/store.ts';
import { loadOrCreateTls } from '../../api/src/pec/tls.ts';
import { freshDatabase } from '../helpers/database.ts';
import { CF_MARIO } from '../helpers/fixtures.ts';
import { TEST_FISCAL_DATA } from '../helpers/harness.ts';

const DEFAULT_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/test';
const PASSWORD = 'bench-password-2026';
const DOMAIN = 'pec.example.it';

function intEnv(name: string, fallback: number, min = 0): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) throw new Error(`${name} must be an integer >= ${min}; got '${raw}'`);
  return value;
}

const settings = () => ({
  messages: intEnv('IMAP_BENCH_MESSAGES', 10_000, 10),
  runs: intEnv('IMAP_BENCH_RUNS', 3, 1),
  coldRuns: intEnv('IMAP_BENCH_COLD_RUNS', 3, 1),
  imapflow: intEnv('IMAP_BENCH_IMAPFLOW', 1, 0) > 0,
  dovecot: process.env.IMAP_BENCH_DOVECOT || '/usr/sbin/dovecot',
  profileDir: process.env.IMAP_BENCH_PROFILE ? path.resolve(process.env.IMAP_BENCH_PROFILE) : null,
  keep: !!process.env.IMAP_BENCH_KEEP,
});

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const fmt = (value: number, digits = 1): string => (Number.isFinite(value) ? value.toFixed(digits) : '–');
const mb = (bytes: number): string => `${fmt(bytes / 1024 / 1024, 1)} MB`;
const signedMb = (bytes: number): string => `${bytes >= 0 ? '+' : ''}${mb(bytes)}`;

function median(values: number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function table(title: string, head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('   ').trimEnd();
  return [`\n${title}`, `  ${line(head)}`, `  ${widths.map((w) => '-'.repeat(w)).join('   ')}`, ...rows.map((r) => `  ${line(r)}`)].join('\n');
}

// ---------------------------------------------------------------------------------------------------------------
// The messages: deterministic PEC transport envelopes

/** mulberry32: a small seeded generator, so every run (and both servers) gets the same messages. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (min: number, max: number) => min + Math.floor(next() * (max - min + 1)),
    pick: <T>(list: readonly T[]): T => list[Math.floor(next() * list.length)]!,
    bytes: (n: number) => {
      const out = Buffer.alloc(n);
      for (let i = 0; i < n; i++) out[i] = Math.floor(next() * 256);
      return out;
    },
  };
}

const SUBJECTS = [
  'Fattura elettronica n. {n}/2026', 'Sollecito di pagamento – fattura {n}', 'Verbale di accertamento n. {n}', 'Avviso di pagamento TARI {n}',
  'Comunicazione dell\'Agenzia delle Entrate prot. {n}', 'Convocazione assemblea condominiale', 'Notifica atto giudiziario RG {n}/2026',
  'Esito della pratica SUAP n. {n}', 'Richiesta documentazione integrativa – pratica {n}', 'Perché la pratica {n} è sospesa',
  'Contratto di fornitura: firma digitale', 'Decreto ingiuntivo n. {n}', 'Diffida ad adempiere', 'Rinnovo polizza n. {n}',
  'Cartella esattoriale n. {n}', 'Offerta gara d\'appalto CIG {n}', 'Ordine di acquisto n. {n}', 'Certificazione Unica 2026',
];
const FIRST = ['Mario', 'Giulia', 'Luca', 'Francesca', 'Andrea', 'Chiara', 'Marco', 'Sara', 'Giuseppe', 'Elena', 'Nicolò', 'Lucía'];
const LAST = ['Rossi', 'Bianchi', 'Esposito', 'Romano', 'Colombo', 'Ricci', 'Marino', 'Greco', 'Bruno', 'Gallo', 'Conti', 'De Luca'];
const SENDER_DOMAINS = ['pec.studiolegale.it', 'legalmail.it', 'pec.comune.milano.it', 'pec.agenziaentrate.it', 'pec.fornitore.it', 'cert.ordineavvocati.it', 'pec.condominio.it'];
const PROVIDERS = ['pec.aruba.it', 'legalmail.it', 'postacert.it', 'pec.it'];
const FILES = ['fattura', 'verbale', 'ricevuta', 'contratto', 'avviso', 'documento', 'preventivo'];
const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** RFC 2047 Q-encoded UTF-8 when the text is not plain ASCII (as mail clients write accented subjects). */
function encodedWord(text: string): string {
  if (/^[\x20-\x7e]*$/.test(text)) return text;
  const q = [...Buffer.from(text, 'utf8')].map((b) => (b === 0x20 ? '_' : /[A-Za-z0-9]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `=${b.toString(16).toUpperCase().padStart(2, '0')}`)).join('');
  return `=?UTF-8?Q?${q}?=`;
}

/** Quoted-printable of UTF-8 text (soft line breaks at 76). */
function quotedPrintable(text: string): string {
  return text.split('\n').map((line) => {
    let out = '';
    let width = 0;
    for (const b of Buffer.from(line, 'utf8')) {
      const piece = (b >= 33 && b <= 126 && b !== 61) || b === 32 ? String.fromCharCode(b) : `=${b.toString(16).toUpperCase().padStart(2, '0')}`;
      if (width + piece.length > 75) {
        out += '=\r\n';
        width = 0;
      }
      out += piece;
      width += piece.length;
    }
    return out;
  }).join('\r\n');
}

const base64Lines = (bytes: Buffer): string => bytes.toString('base64').match(/.{1,76}/g)!.join('\r\n');

function rfc822Date(date: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${DAYS[date.getUTCDay()]}, ${date.getUTCDate()} ${MONTHS[date.getUTCMonth()]} ${date.getUTCFullYear()} ${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())} +0000`;
}

interface BenchMessage {
  content: Buffer;
  messageId: string;
  subject: string;
  from: string;
}

/** Message i of the bench: what a provider delivers for a PEC sent to the bench mailbox. */
function pecMessage(i: number, to: string): BenchMessage {
  const r = prng(0x9e3779b9 ^ i);
  const first = r.pick(FIRST);
  const last = r.pick(LAST);
  const sender = `${first.normalize('NFD').replace(/[^A-Za-z]/g, '').toLowerCase()}.${last.replace(/ /g, '').toLowerCase()}@${r.pick(SENDER_DOMAINS)}`;
  const provider = r.pick(PROVIDERS);
  const subject = r.pick(SUBJECTS).replace('{n}', String(r.int(1, 99_999)));
  const date = new Date(Date.UTC(2026, 0, 1) + i * 3_600_000 + r.int(0, 3_599) * 1000);
  const id = `${(1_000_000 + i).toString(36)}.${r.bytes(6).toString('hex')}`;
  const original = `${id}@${sender.split('@')[1]}`;
  const transport = `opec21010.${date.toISOString().replace(/\D/g, '').slice(0, 14)}.${id}@${provider}`;
  const when = `${String(date.getUTCDate()).padStart(2, '0')}/${String(date.getUTCMonth() + 1).padStart(2, '0')}/${date.getUTCFullYear()}`;
  const time = date.toISOString().slice(11, 19);
  const intro = [
    'Messaggio di posta certificata',
    '',
    `Il giorno ${when} alle ore ${time} (+0000) il messaggio`,
    `"${subject}" è stato inviato da "${sender}"`,
    'indirizzato a:',
    to,
    'Il messaggio originale è incluso in allegato.',
    `Identificativo messaggio: ${transport}`,
  ].join('\n');
  const daticert = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<postacert tipo="posta-certificata" errore="nessuno">',
    '  <intestazione>',
    `    <mittente>${sender}</mittente>`,
    `    <destinatari tipo="certificato">${to}</destinatari>`,
    `    <risposte>${sender}</risposte>`,
    `    <oggetto>${subject.replace(/&/g, '&amp;').replace(/</g, '&lt;')}</oggetto>`,
    '  </intestazione>',
    `  <dati><gestore-emittente>${provider}</gestore-emittente><data zona="+0000"><giorno>${when}</giorno><ora>${time}</ora></data>`,
    `    <identificativo>${transport}</identificativo><msgid>&lt;${original}&gt;</msgid></dati>`,
    '</postacert>',
  ].join('\n');
  const body = [
    `Buongiorno,`,
    '',
    `in allegato trasmettiamo quanto in oggetto (${subject}).`,
    ...Array.from({ length: r.int(1, 8) }, (_, k) => `Punto ${k + 1}: si prega di verificare la documentazione e di rispondere entro ${r.int(5, 60)} giorni, perché la scadenza è vincolante.`),
    '',
    'Cordiali saluti,',
    `${first} ${last}`,
  ].join('\n');
  const file = `${r.pick(FILES)}_${r.int(1, 9999)}.pdf`;
  const pdf = Buffer.concat([Buffer.from(`%PDF-1.4\n% ${subject}\n`), r.bytes(r.int(500, 2000))]);
  const signature = r.bytes(r.int(1000, 1600));
  const sb = `----=_Signed_${id}`;
  const mb2 = `----=_Mixed_${id}`;
  const ob = `----=_Original_${id}`;
  const postacert = [
    `Date: ${rfc822Date(new Date(date.getTime() - 2000))}`,
    `From: ${encodedWord(`${first} ${last}`)} <${sender}>`,
    `To: ${to}`,
    `Subject: ${encodedWord(subject)}`,
    `Message-ID: <${original}>`,
    'MIME-Version: 1.0',
    `Content-Type: multipart/mixed; boundary="${ob}"`,
    '',
    `--${ob}`,
    'Content-Type: text/plain; charset=UTF-8',
    'Content-Transfer-Encoding: quoted-printable',
    '',
    quotedPrintable(body),
    `--${ob}`,
    `Content-Type: application/pdf; name="${file}"`,
    `Content-Disposition: attachment; filename="${file}"`,
    'Content-Transfer-Encoding: base64',
    '',
    base64Lines(pdf),
    `--${ob}--`,
  ];
  const text = [
    `Return-Path: <posta-certificata@${provider}>`,
    `Received: from smtp.${provider} (smtp.${provider} [192.0.2.${r.int(1, 254)}])\r\n\tby mx.${DOMAIN} with ESMTPS id ${id}\r\n\tfor <${to}>; ${rfc822Date(date)}`,
    `Date: ${rfc822Date(date)}`,
    `X-Riferimento-Message-ID: <${original}>`,
    'X-Trasporto: posta-certificata',
    `Message-ID: <${transport}>`,
    `Reply-To: ${sender}`,
    `From: "Per conto di: ${sender}" <posta-certificata@${provider}>`,
    `To: ${to}`,
    `Subject: ${encodedWord(`POSTA CERTIFICATA: ${subject}`)}`,
    'MIME-Version: 1.0',
    `Content-Type: multipart/signed; protocol="application/pkcs7-signature"; micalg="sha-256"; boundary="${sb}"`,
    '',
    `--${sb}`,
    `Content-Type: multipart/mixed; boundary="${mb2}"`,
    '',
    `--${mb2}`,
    'Content-Type: text/plain; charset=UTF-8',
    'Content-Transfer-Encoding: quoted-printable',
    '',
    quotedPrintable(intro),
    `--${mb2}`,
    'Content-Type: application/xml; name="daticert.xml"',
    'Content-Disposition: inline; filename="daticert.xml"',
    'Content-Transfer-Encoding: base64',
    '',
    base64Lines(Buffer.from(daticert, 'utf8')),
    `--${mb2}`,
    'Content-Type: message/rfc822; name="postacert.eml"',
    'Content-Disposition: inline; filename="postacert.eml"',
    '',
    ...postacert,
    `--${mb2}--`,
    '',
    `--${sb}`,
    'Content-Type: application/pkcs7-signature; name="smime.p7s"',
    'Content-Transfer-Encoding: base64',
    'Content-Disposition: attachment; filename="smime.p7s"',
    '',
    base64Lines(signature),
    `--${sb}--`,
    '',
  ].join('\r\n');
  return { content: Buffer.from(text, 'utf8'), messageId: transport, subject: `POSTA CERTIFICATA: ${subject}`, from: `posta-certificata@${provider}` };
}

// ---------------------------------------------------------------------------------------------------------------
// A minimal IMAP client: the servers' time, not a client library's

interface CommandResult {
  ms: number;
  /** Untagged `* n FETCH` responses. */
  fetches: number;
  /** Bytes read for this command, and bytes of literals among them. */
  bytes: number;
  literalBytes: number;
  /** SHA-256 of every literal's bytes, in order (the bodies, for FETCH BODY[]). */
  literalHash: string;
  status: string;
}

/**
 * Reads responses line by line, skipping literals by their announced size (so nothing inside a message can pass for
 * a tagged response), and only counts: a FETCH of the whole mailbox costs this client close to nothing.
 */
class RawImap {
  #socket: TLSSocket;
  #lineParts: Buffer[] = [];
  #literalLeft = 0;
  #responseHead: string | null = null;
  #pending: { tag: string; start: number; result: CommandResult; hash: ReturnType<typeof createHash>; resolve(r: CommandResult): void; reject(e: Error): void } | null = null;
  #greeting: { resolve(): void; reject(e: Error): void } | null = null;
  #counter = 0;
  #error: Error | null = null;

  private constructor(socket: TLSSocket) {
    this.#socket = socket;
    socket.on('data', (chunk: Buffer) => this.#data(chunk));
    const fail = (error: Error) => {
      this.#error ??= error;
      this.#pending?.reject(error);
      this.#pending = null;
      this.#greeting?.reject(error);
      this.#greeting = null;
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('connection closed')));
  }

  static async open(port: number): Promise<RawImap> {
    const socket = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', rejectUnauthorized: false });
    const client = new RawImap(socket);
    await new Promise<void>((resolve, reject) => (client.#greeting = { resolve, reject }));
    return client;
  }

  command(text: string): Promise<CommandResult> {
    if (this.#error) return Promise.reject(this.#error);
    const tag = `B${++this.#counter}`;
    return new Promise<CommandResult>((resolve, reject) => {
      this.#pending = {
        tag, start: performance.now(), hash: createHash('sha256'), resolve, reject,
        result: { ms: 0, fetches: 0, bytes: 0, literalBytes: 0, literalHash: '', status: '' },
      };
      this.#socket.write(`${tag} ${text}\r\n`);
    });
  }

  async ok(text: string): Promise<CommandResult> {
    const result = await this.command(text);
    if (!/^\S+ OK/.test(result.status)) throw new Error(`${text.split(' ')[0]}: ${result.status}`);
    return result;
  }

  async logout(): Promise<void> {
    await this.command('LOGOUT').catch(() => {});
    this.#socket.destroy();
  }

  #data(chunk: Buffer): void {
    if (this.#pending) this.#pending.result.bytes += chunk.length;
    let at = 0;
    while (at < chunk.length) {
      if (this.#literalLeft > 0) {
        const take = Math.min(this.#literalLeft, chunk.length - at);
        if (this.#pending) {
          this.#pending.hash.update(chunk.subarray(at, at + take));
          this.#pending.result.literalBytes += take;
        }
        this.#literalLeft -= take;
        at += take;
        continue;
      }
      const newline = chunk.indexOf(10, at);
      if (newline < 0) {
        this.#lineParts.push(chunk.subarray(at));
        break;
      }
      this.#lineParts.push(chunk.subarray(at, newline + 1));
      at = newline + 1;
      const line = this.#lineParts.length === 1 ? this.#lineParts[0]! : Buffer.concat(this.#lineParts);
      this.#lineParts = [];
      this.#responseHead ??= line.subarray(0, Math.min(line.length, 200)).toString('latin1');
      // A line ending in {n} (or {n+}, ~{n}) announces n bytes of literal, after which the same response goes on.
      const literal = /\{(\d+)\+?\}\r\n$/.exec(line.subarray(Math.max(0, line.length - 24)).toString('latin1'));
      if (literal) {
        this.#literalLeft = Number(literal[1]);
        continue;
      }
      this.#response(this.#responseHead);
      this.#responseHead = null;
    }
  }

  #response(head: string): void {
    if (this.#greeting) {
      // Dovecot may say "* OK Waiting for authentication process to respond.." before its greeting.
      if (head.startsWith('* OK') && !/Waiting for authentication/.test(head)) {
        this.#greeting.resolve();
        this.#greeting = null;
      } else if (head.startsWith('* BYE')) {
        this.#greeting.reject(new Error(head.trim()));
        this.#greeting = null;
      }
      return;
    }
    const pending = this.#pending;
    if (!pending) return;
    if (head.startsWith('* ')) {
      if (/^\* \d+ FETCH /.test(head)) pending.result.fetches++;
      return;
    }
    if (head.startsWith(`${pending.tag} `)) {
      this.#pending = null;
      pending.result.ms = performance.now() - pending.start;
      pending.result.literalHash = pending.hash.digest('hex');
      pending.result.status = head.trim();
      pending.resolve(pending.result);
    }
  }
}

const quoted = (s: string) => `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;

interface SyncTimes {
  login: number;
  select: number;
  envelopes: number;
  bodies: number;
  total: number;
  envelopeBytes: number;
  bodyBytes: number;
  bodyHash: string;
}

/** One client's session: connect and log in, SELECT INBOX, FETCH envelopes, FETCH bodies, log out. */
async function syncOnce(port: number, user: string, expected: number, beforeLogout?: () => Promise<void> | void): Promise<SyncTimes> {
  const start = performance.now();
  const client = await RawImap.open(port);
  try {
    await client.ok(`LOGIN ${quoted(user)} ${quoted(PASSWORD)}`);
    const loggedIn = performance.now();
    const select = await client.ok('SELECT INBOX');
    const envelopes = await client.ok('FETCH 1:* (UID FLAGS ENVELOPE)');
    const bodies = await client.ok('FETCH 1:* (BODY.PEEK[])');
    const end = performance.now();
    if (envelopes.fetches !== expected || bodies.fetches !== expected) {
      throw new Error(`${user} on port ${port}: ${envelopes.fetches} envelopes and ${bodies.fetches} bodies for ${expected} messages`);
    }
    await beforeLogout?.();
    return {
      login: loggedIn - start, select: select.ms, envelopes: envelopes.ms, bodies: bodies.ms, total: end - start,
      envelopeBytes: envelopes.bytes, bodyBytes: bodies.literalBytes, bodyHash: bodies.literalHash,
    };
  } finally {
    await client.logout();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Our server, in a child process of its own (this same file, IMAP_BENCH_ROLE=server)

interface MemoryReport {
  heapBefore: number;
  /** heapUsed as sampled (garbage not yet collected included). */
  heapPeak: number;
  /** The live heap: heapUsed right after a forced full GC, every 100 ms (only in `live` runs, which it slows). */
  liveHeapPeak: number;
  heapAfter: number;
  rssBefore: number;
  rssPeak: number;
  rssAfter: number;
}

type ToServer = { type: 'mark'; live: boolean } | { type: 'report' } | { type: 'stop' };
type FromServer = { type: 'ready'; tlsPort: number } | { type: 'marked' } | { type: 'report'; memory: MemoryReport } | { type: 'error'; message: string };

async function serverRole(): Promise<void> {
  const url = process.env.IMAP_BENCH_DATABASE_URL!;
  const dir = process.env.IMAP_BENCH_DIR!;
  const database = connect(url);
  const changes = new MailboxChanges((channel, onNotify) => database.sql.listen(channel, onNotify));
  const imap = await startImapServers(database.db, {
    host: '127.0.0.1', port: 0, tlsPort: 0, serverName: 'imap.bench',
    tls: { key: readFileSync(path.join(dir, 'key.pem'), 'utf8'), cert: readFileSync(path.join(dir, 'cert.pem'), 'utf8') },
    changes, signIn: (attempt) => signInToMailbox(database.db, attempt),
    log: { info() {}, warn: (fields, message) => console.error(message, fields), error: (fields, message) => console.error(message, fields) },
  });
  const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
  let memory: MemoryReport = { heapBefore: 0, heapPeak: 0, liveHeapPeak: 0, heapAfter: 0, rssBefore: 0, rssPeak: 0, rssAfter: 0 };
  let sampler: NodeJS.Timeout | null = null;
  let liveSampler: NodeJS.Timeout | null = null;
  // Sampled every 10 ms while a measured session runs: the peaks between samples are missed, not invented.
  const sample = () => {
    const usage = process.memoryUsage();
    memory.heapPeak = Math.max(memory.heapPeak, usage.heapUsed);
    memory.rssPeak = Math.max(memory.rssPeak, usage.rss);
  };
  const send = (message: FromServer) => process.send!(message);
  process.on('message', (message: ToServer) => {
    if (message.type === 'mark') {
      gc();
      gc();
      const usage = process.memoryUsage();
      memory = { heapBefore: usage.heapUsed, heapPeak: usage.heapUsed, liveHeapPeak: message.live ? usage.heapUsed : 0, heapAfter: 0, rssBefore: usage.rss, rssPeak: usage.rss, rssAfter: 0 };
      sampler = setInterval(sample, 10);
      if (message.live) {
        liveSampler = setInterval(() => {
          gc();
          memory.liveHeapPeak = Math.max(memory.liveHeapPeak, process.memoryUsage().heapUsed);
        }, 100);
      }
      send({ type: 'marked' });
    } else if (message.type === 'report') {
      if (sampler) clearInterval(sampler);
      if (liveSampler) clearInterval(liveSampler);
      sampler = liveSampler = null;
      sample();
      gc();
      gc();
      const after = process.memoryUsage();
      memory.heapAfter = after.heapUsed;
      memory.rssAfter = after.rss;
      send({ type: 'report', memory });
    } else if (message.type === 'stop') {
      if (sampler) clearInterval(sampler);
      if (liveSampler) clearInterval(liveSampler);
      void (async () => {
        await imap.close();
        await changes.stop();
        await database.close();
        process.exit(0);
      })();
    }
  });
  send({ type: 'ready', tlsPort: imap.tlsPort });
}

class ServerChild {
  #child: ChildProcess;
  #waiters: Array<(message: FromServer) => void> = [];
  #exited: Promise<number | null>;

  private constructor(child: ChildProcess) {
    this.#child = child;
    child.on('message', (message: FromServer) => {
      if (message.type === 'error') process.stderr.write(`our server: ${message.message}\n`);
      this.#waiters.shift()?.(message);
    });
    this.#exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  }

  get pid(): number {
    return this.#child.pid!;
  }

  static async start(databaseUrl: string, dir: string, profileDir: string | null): Promise<{ child: ServerChild; tlsPort: number }> {
    const self = fileURLToPath(import.meta.url);
    // tsx's loader flags as this process got them, or tsx's loader when run by plain node (as run.ts does).
    const loader = process.execArgv.filter((a) => !a.startsWith('--cpu-prof')).length > 0 ? process.execArgv.filter((a) => !a.startsWith('--cpu-prof')) : ['--import', 'tsx'];
    const execArgv = [...loader, '--expose-gc', ...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [])];
    const child = fork(self, [], {
      execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env, IMAP_BENCH_ROLE: 'server', IMAP_BENCH_DATABASE_URL: databaseUrl, IMAP_BENCH_DIR: dir },
    });
    const server = new ServerChild(child);
    const ready = await Promise.race([
      server.#next(),
      server.#exited.then((code) => { throw new Error(`our IMAP server exited (${code}) before it was ready`); }),
    ]);
    if (ready.type !== 'ready') throw new Error(`our IMAP server said ${JSON.stringify(ready)}`);
    return { child: server, tlsPort: ready.tlsPort };
  }

  #next(): Promise<FromServer> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  async mark(live = false): Promise<void> {
    const reply = this.#next();
    this.#child.send({ type: 'mark', live } satisfies ToServer);
    await reply;
  }

  async report(): Promise<MemoryReport> {
    const reply = this.#next();
    this.#child.send({ type: 'report' } satisfies ToServer);
    const message = await reply;
    if (message.type !== 'report') throw new Error(`our IMAP server said ${JSON.stringify(message)}`);
    return message.memory;
  }

  async stop(): Promise<void> {
    if (this.#child.exitCode !== null) return;
    this.#child.send({ type: 'stop' } satisfies ToServer);
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 10_000);
    await this.#exited;
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Dovecot: a private instance in a temporary directory

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** uid and gid of a system user, from /etc/passwd (Node has no getpwnam). */
function systemUser(name: string): { uid: number; gid: number } | null {
  const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith(`${name}:`));
  if (!line) return null;
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

/** The name of a group, from /etc/group. */
function groupName(gid: number): string {
  const line = readFileSync('/etc/group', 'utf8').split('\n').find((l) => l.split(':')[2] === String(gid));
  return line?.split(':')[0] ?? String(gid);
}

/** Writes a Maildir whose cur/ holds these messages, unseen, in this order (Dovecot assigns UIDs by the file names' time). */
function writeMaildir(root: string, messages: readonly BenchMessage[], owner: { uid: number; gid: number } | null): void {
  for (const sub of ['cur', 'new', 'tmp']) mkdirSync(path.join(root, sub), { recursive: true });
  messages.forEach((message, i) => {
    // <time>.M<usecs>P<pid>.<host>,S=<size>:2,<flags>: how Dovecot itself names delivered mail (the size saves a stat).
    const file = path.join(root, 'cur', `${1_767_225_600 + i}.M${i}P1.bench,S=${message.content.length}:2,`);
    writeFileSync(file, message.content);
    if (owner) chownSync(file, owner.uid, owner.gid);
  });
  if (owner) for (const dir of [root, ...['cur', 'new', 'tmp'].map((s) => path.join(root, s))]) chownSync(dir, owner.uid, owner.gid);
}

class Dovecot {
  #child: ChildProcess;
  #exited: Promise<void>;

  private constructor(child: ChildProcess, readonly dir: string, readonly port: number, readonly homes: string) {
    this.#child = child;
    this.#exited = new Promise((resolve) => child.on('exit', () => resolve()));
  }

  static async start(binary: string, dir: string, homes: string, owner: { uid: number; gid: number; name: string } | null): Promise<Dovecot> {
    const port = await freePort();
    const unprivileged = process.getuid?.() !== 0;
    const user = os.userInfo().username;
    const conf = path.join(dir, 'dovecot.conf');
    writeFileSync(conf, [
      `base_dir = ${dir}/run`,
      `state_dir = ${dir}/state`,
      `log_path = ${dir}/dovecot.log`,
      'protocols = imap',
      'listen = 127.0.0.1',
      'ssl = required',
      `ssl_cert = <${dir}/cert.pem`,
      `ssl_key = <${dir}/key.pem`,
      'auth_mechanisms = plain',
      // As root, mail processes run as the dovecot user (uid below the default first_valid_uid of 500).
      'first_valid_uid = 1',
      // As another user, everything runs as that user and group, without chroot (Dovecot's "rootless" set-up).
      ...(unprivileged ? [`default_internal_user = ${user}`, `default_login_user = ${user}`, `default_internal_group = ${groupName(process.getgid?.() ?? 0)}`, 'service anvil {\n  chroot =\n}'] : []),
      'passdb {\n  driver = static\n  args = password=' + PASSWORD + '\n}',
      `userdb {\n  driver = static\n  args = uid=${owner ? owner.uid : process.getuid?.()} gid=${owner ? owner.gid : process.getgid?.()} home=${homes}/%n\n}`,
      'mail_location = maildir:~/Maildir',
      `service imap-login {\n  inet_listener imap {\n    port = 0\n  }\n  inet_listener imaps {\n    port = ${port}\n    ssl = yes\n  }\n${unprivileged ? '  chroot =\n' : ''}}`,
      '',
    ].join('\n'));
    const child = spawn(binary, ['-F', '-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    const dovecot = new Dovecot(child, dir, port, homes);
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`Dovecot exited (${child.exitCode}): ${output}${readLog(dir)}`);
      const up = await new Promise<boolean>((resolve) => {
        const socket = netConnect(port, '127.0.0.1', () => {
          socket.destroy();
          resolve(true);
        });
        socket.on('error', () => resolve(false));
      });
      if (up) return dovecot;
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`Dovecot did not listen on ${port}: ${output}${readLog(dir)}`);
      }
      await sleep(50);
    }
  }

  get pid(): number {
    return this.#child.pid!;
  }

  /** The per-session `imap` processes under this master (children of its children do not exist for imap). */
  imapProcesses(): number[] {
    const pids: number[] = [];
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
        const match = /^\d+ \((.*)\) \S (\d+)/.exec(stat);
        if (match && match[1] === 'imap' && Number(match[2]) === this.pid) pids.push(Number(entry));
      } catch {
        // gone meanwhile
      }
    }
    return pids;
  }

  /** Peak RSS of the running imap session process(es), from /proc. */
  imapPeakRss(): number {
    return Math.max(0, ...this.imapProcesses().map((pid) => {
      try {
        const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
        return match ? Number(match[1]) * 1024 : 0;
      } catch {
        return 0;
      }
    }));
  }

  /** Forgets the index, cache and uidlist of a user's Maildir: the next session syncs from the bare files. */
  async dropIndexes(user: string): Promise<void> {
    for (let i = 0; i < 100 && this.imapProcesses().length; i++) await sleep(20);
    const maildir = path.join(this.homes, user, 'Maildir');
    for (const file of readdirSync(maildir)) {
      if (file.startsWith('dovecot')) rmSync(path.join(maildir, file), { force: true, recursive: true });
    }
  }

  async stop(): Promise<void> {
    if (this.#child.exitCode !== null) return;
    this.#child.kill('SIGTERM');
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 5000);
    await this.#exited;
    clearTimeout(timer);
  }
}

const readLog = (dir: string) => (existsSync(path.join(dir, 'dovecot.log')) ? `\n${readFileSync(path.join(dir, 'dovecot.log'), 'utf8').slice(-2000)}` : '');

// ---------------------------------------------------------------------------------------------------------------
// The bench

export async function runImapBench(): Promise<void> {
  const s = settings();
  process.env.TEST_DATABASE_URL ??= process.env.DATABASE_URL ?? DEFAULT_DATABASE_URL;
  const print = (text: string) => process.stdout.write(`${text}\n`);
  const small = Math.max(1, Math.round(s.messages / 10));
  if (!existsSync(s.dovecot)) throw new Error(`No Dovecot at ${s.dovecot}: install it (Debian: apt-get install dovecot-imapd) or set IMAP_BENCH_DOVECOT.`);
  const benchStart = performance.now();

  const fresh = await freshDatabase();
  const database = connect(fresh.url, { max: 4 });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'imap-bench-'));
  // As root Dovecot's processes run as other users, who must traverse it (mkdtemp makes it 0700).
  chmodSync(dir, 0o755);
  let ours: ServerChild | null = null;
  let dovecot: Dovecot | null = null;
  try {
    const [{ version }] = (await database.sql`select split_part(version(), ' ', 2) as version`) as unknown as [{ version: string }];
    const dovecotVersion = await new Promise<string>((resolve) => {
      const child = spawn(s.dovecot, ['--version']);
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.on('close', () => resolve(out.trim().split(' ')[0] ?? '?'));
      child.on('error', () => resolve('?'));
    });

    // -- Setup: the mailboxes through the partner API, the messages in both stores ---------------------------------
    const config = loadConfig({
      DATABASE_URL: fresh.url, LOG_LEVEL: 'silent', PUBLIC_URL: 'http://pec-partner.bench', JOBS_INTERVAL_SECONDS: '0', DNS_TIMEOUT_MS: '300',
      // Credit arrives as in production: a bank-transfer top-up that the provider's operator confirms.
      PROVIDER_IBAN: 'IT60X0542811101000000123456', PROVIDER_BENEFICIARY: 'PEC Partner Bench S.p.A.', PROVIDER_BIC: 'BPMOIT22XXX',
    });
    // As main.ts does at start-up: plans are priced from the default price list.
    await ensureDefaultPriceList(database.db, systemClock, loadPriceList(config.pricesFile));
    const app = await buildApp({ db: database.db, config, clock: systemClock, logger: process.env.BENCH_LOG ? { level: 'error' } : false });
    await app.ready();
    const { secret } = await createPartner(database.db, systemClock, 'IMAP bench partner');
    const operator = await createOperatorKey(database.db, systemClock, { actor: 'cli' }, { name: 'IMAP bench operator', scope: 'billing' });
    const post = async (key: string, url: string, payload: object, status = 201) => {
      const response = await app.inject({ method: 'POST', url, headers: { authorization: `Bearer ${key}` }, payload });
      if (response.statusCode !== status) throw new Error(`POST ${url}: ${response.statusCode} ${response.body}`);
      return JSON.parse(response.body) as Record<string, any>;
    };
    const partner = (url: string, payload: object) => post(secret, url, payload);
    const account = await app.inject({ method: 'PATCH', url: '/v1/account', headers: { authorization: `Bearer ${secret}` }, payload: TEST_FISCAL_DATA });
    if (account.statusCode !== 200) throw new Error(`PATCH /v1/account: ${account.statusCode} ${account.body}`);
    const topUp = await partner('/v1/credit/top-ups', { amount: 50_000, currency: 'EUR', payment_reference: `IMAP-BENCH-${randomBytes(4).toString('hex')}` });
    await post(operator.secret, `/v1/operator/top-ups/${topUp.id}/confirm`, { reason: 'Bench transfer received' }, 200);
    const customer = await partner('/v1/customers', { type: 'private_person', first_name: 'Mario', last_name: 'Rossi', tax_code: CF_MARIO });
    await partner(`/v1/customers/${customer.id}/identity`, { document_type: 'identity_card', number: 'CA12345AB', issuer: 'Comune di Milano', expires_on: '2030-01-01' });
    const mailbox = async (local: string) => {
      const created = await partner('/v1/mailboxes', { local_part: local, domain: DOMAIN, customer: customer.id, plan: 'pro', password: PASSWORD });
      return { id: created.id as string, address: created.address as string, local };
    };
    const big = await mailbox('bench');
    const little = await mailbox('benchsmall');
    await app.close();

    const setupStart = performance.now();
    const messages = Array.from({ length: s.messages }, (_, i) => pecMessage(i, big.address));
    const totalBytes = messages.reduce((sum, m) => sum + m.content.length, 0);
    const storeAll = async (box: { id: string }, list: readonly BenchMessage[]) => {
      // What storeMessage() does for one message (the engine's way: UIDs from the triggers, usage counted), for 100 at
      // a time: one multi-row INSERT, whose rows take their UIDs in order, and the usage of those inserted.
      for (let at = 0; at < list.length; at += 100) {
        await database.db.transaction(async (tx) => {
          const now = new Date();
          const inserted = await tx.insert(mailboxMessages).values(list.slice(at, at + 100).map((m, k) => ({
            id: newId('msg', now), mailboxId: box.id, folder: 'inbox' as const, kind: 'transport_envelope' as const, messageId: m.messageId, pecMessageId: null,
            subject: m.subject, fromAddress: m.from, sizeBytes: m.content.length, content: m.content, dedupeKey: `bench:${at + k}`, storedAt: now,
          }))).onConflictDoNothing().returning({ size: mailboxMessages.sizeBytes });
          await adjustUsage(tx, box.id, 'inbox', inserted.reduce((sum, r) => sum + r.size, 0));
        });
      }
    };
    await storeAll(big, messages);
    // The small mailbox gets copies of the first messages, made by the database (the same bytes; faster than storing again).
    await database.db.transaction(async (tx) => {
      await tx.execute(sql`insert into mailbox_messages (id, mailbox_id, folder, kind, message_id, pec_message_id, subject, from_address, size_bytes, content, dedupe_key, stored_at)
        select 'msg_small_' || uid, ${little.id}, folder, kind, message_id, pec_message_id, subject, from_address, size_bytes, content, 'bench-small:' || uid, stored_at
        from mailbox_messages where mailbox_id = ${big.id} and uid <= ${small} order by uid`);
      await adjustUsage(tx, little.id, 'inbox', messages.slice(0, small).reduce((sum, m) => sum + m.content.length, 0));
    });
    await database.sql`vacuum (analyze) mailbox_messages`;
    const stored = performance.now();

    const owner = process.getuid?.() === 0 ? systemUser('dovecot') ?? systemUser('nobody') : null;
    const homes = path.join(dir, 'home');
    writeMaildir(path.join(homes, big.local, 'Maildir'), messages, owner);
    writeMaildir(path.join(homes, little.local, 'Maildir'), messages.slice(0, small), owner);
    if (owner) for (const d of [homes, path.join(homes, big.local), path.join(homes, little.local)]) chownSync(d, owner.uid, owner.gid);
    const written = performance.now();

    // The same certificate for both servers: the same TLS work on both sides.
    const tls = await loadOrCreateTls({ certificateFile: undefined, privateKeyFile: undefined }, ['localhost']);
    writeFileSync(path.join(dir, 'cert.pem'), tls.cert);
    writeFileSync(path.join(dir, 'key.pem'), tls.key, { mode: 0o600 });

    const started = await ServerChild.start(fresh.url, dir, s.profileDir);
    ours = started.child;
    const ourPort = started.tlsPort;
    dovecot = await Dovecot.start(s.dovecot, dir, homes, owner ? { ...owner, name: 'dovecot' } : null);
    const dovecotPort = dovecot.port;
    const dovecotRef = dovecot;

    print(`IMAP benchmark — ${os.cpus().length} × ${os.cpus()[0]?.model.trim() ?? 'CPU'}, Node ${process.version}, PostgreSQL ${version}, Dovecot ${dovecotVersion}`);
    print(`N=${s.messages} messages (${mb(totalBytes)}, ${fmt(totalBytes / s.messages / 1024, 1)} KB on average) in ${big.address}; ${small} in ${little.address}`);
    print(`Both servers on implicit TLS (same self-signed RSA-2048 certificate), one raw IMAP client in the bench process; our server in a child process (pool of 10 connections, as in production).`);
    print(`Setup: stored as storeMessage() does, 100 to an INSERT, in ${fmt((stored - setupStart) / 1000, 1)} s (the small mailbox copied in SQL, VACUUM ANALYZE included); Maildirs written in ${fmt((written - stored) / 1000, 1)} s`);

    // Warm-up: Dovecot's auth process, our JIT and connection pool; the small mailboxes become warm too.
    for (const port of [ourPort, dovecotPort]) {
      await syncOnce(port, little.address, small);
      await syncOnce(port, little.address, small);
    }

    type Side = 'ours' | 'dovecot';
    const portOf = (side: Side) => (side === 'ours' ? ourPort : dovecotPort);
    const hashes = new Set<string>();
    const record = (t: SyncTimes) => {
      hashes.add(t.bodyHash);
      return t;
    };

    // -- Cold: first sync (no ENVELOPE cache for us; no index, cache or uidlist for Dovecot) ------------------------
    const cold: Record<Side, SyncTimes[]> = { ours: [], dovecot: [] };
    let coldMemory: MemoryReport | null = null;
    for (let run = 0; run < s.coldRuns; run++) {
      for (const side of (run % 2 === 0 ? ['ours', 'dovecot'] : ['dovecot', 'ours']) as Side[]) {
        if (side === 'ours') {
          await database.sql`update mailbox_messages set imap_summary = null where mailbox_id = ${big.id}`;
          await database.sql`vacuum (analyze) mailbox_messages`;
          if (run === 0) await ours.mark();
          cold.ours.push(record(await syncOnce(ourPort, big.address, s.messages)));
          if (run === 0) coldMemory = await ours.report();
        } else {
          await dovecot.dropIndexes(big.local);
          cold.dovecot.push(record(await syncOnce(dovecotPort, big.address, s.messages)));
        }
      }
    }
    await database.sql`vacuum (analyze) mailbox_messages`;

    // -- Warm: the caches exist -------------------------------------------------------------------------------------
    const warm: Record<Side, SyncTimes[]> = { ours: [], dovecot: [] };
    for (let run = 0; run < s.runs; run++) {
      for (const side of (run % 2 === 0 ? ['ours', 'dovecot'] : ['dovecot', 'ours']) as Side[]) warm[side].push(record(await syncOnce(portOf(side), big.address, s.messages)));
    }

    // -- Memory: N/10 against N, warm; a run as measured above, and a run with the live heap sampled ------------------
    const memory: Array<{ label: string; count: number; ours: MemoryReport; dovecotRss: number }> = [];
    for (const [label, box, count] of [[`N/10 = ${small}`, little, small], [`N = ${s.messages}`, big, s.messages]] as const) {
      await ours.mark(true);
      await syncOnce(ourPort, box.address, count);
      const { liveHeapPeak } = await ours.report();
      await ours.mark();
      await syncOnce(ourPort, box.address, count);
      const report = { ...(await ours.report()), liveHeapPeak };
      let dovecotRss = 0;
      await syncOnce(dovecotPort, box.address, count, () => {
        dovecotRss = dovecotRef.imapPeakRss();
      });
      memory.push({ label, count, ours: report, dovecotRss });
    }

    // -- A real client: imapflow, one warm sync per server; the envelopes must agree --------------------------------
    const flow: Record<Side, { envelopes: number; bodies: number; summary: string[] }> = { ours: { envelopes: 0, bodies: 0, summary: [] }, dovecot: { envelopes: 0, bodies: 0, summary: [] } };
    if (s.imapflow) {
      for (const side of ['ours', 'dovecot'] as Side[]) {
        const client = new ImapFlow({
          host: '127.0.0.1', port: portOf(side), secure: true, auth: { user: big.address, pass: PASSWORD },
          tls: { rejectUnauthorized: false, servername: 'localhost' }, logger: false, disableAutoIdle: true,
        });
        await client.connect();
        try {
          await client.mailboxOpen('INBOX');
          let start = performance.now();
          for await (const m of client.fetch('1:*', { uid: true, flags: true, envelope: true })) {
            const e = m.envelope!;
            flow[side].summary.push([m.uid, e.subject, e.date ? new Date(e.date).toISOString() : '', e.messageId, e.from?.map((a) => `${a.name}|${a.address}`).join(','), e.replyTo?.map((a) => a.address).join(','), e.to?.map((a) => a.address).join(',')].join('\t'));
          }
          flow[side].envelopes = performance.now() - start;
          start = performance.now();
          let bytes = 0;
          for await (const m of client.fetch('1:*', { source: true })) bytes += m.source?.length ?? 0;
          flow[side].bodies = performance.now() - start;
          if (bytes !== totalBytes) throw new Error(`imapflow read ${bytes} bytes of bodies from ${side}, expected ${totalBytes}`);
        } finally {
          await client.logout().catch(() => {});
        }
      }
    }

    // -- Report -------------------------------------------------------------------------------------------------------
    const pick = (list: SyncTimes[], key: keyof SyncTimes) => median(list.map((t) => t[key] as number));
    const row = (label: string, a: number, b: number, unit = 'ms') => [label, `${fmt(a, 0)} ${unit}`, `${fmt(b, 0)} ${unit}`, `${fmt(a / b, 2)} ×`];
    const rows: string[][] = [];
    for (const [phase, list, count] of [['cold', cold, s.coldRuns], ['warm', warm, s.runs]] as const) {
      rows.push([`${phase} (median of ${count})`, '', '', '']);
      rows.push(row('  connect + TLS + LOGIN', pick(list.ours, 'login'), pick(list.dovecot, 'login')));
      rows.push(row('  SELECT INBOX', pick(list.ours, 'select'), pick(list.dovecot, 'select')));
      rows.push(row('  A: FETCH 1:* (UID FLAGS ENVELOPE)', pick(list.ours, 'envelopes'), pick(list.dovecot, 'envelopes')));
      rows.push(row('  B: FETCH 1:* (BODY.PEEK[])', pick(list.ours, 'bodies'), pick(list.dovecot, 'bodies')));
      rows.push(row('  open + sync, in all', pick(list.ours, 'total'), pick(list.dovecot, 'total')));
    }
    if (s.imapflow) {
      rows.push(['imapflow, warm (1 run)', '', '', '']);
      rows.push(row('  A: fetch envelopes', flow.ours.envelopes, flow.dovecot.envelopes));
      rows.push(row('  B: fetch sources', flow.ours.bodies, flow.dovecot.bodies));
    }
    print(table(`Open and sync INBOX of ${s.messages} messages: time (ratio > 1: we are slower)`, ['measurement', 'product', 'Dovecot', 'ratio'], rows));
    const all = (list: SyncTimes[]) => list.map((t) => fmt(t.total, 0)).join(', ');
    print(`  every run, open + sync ms: cold ours ${all(cold.ours)}; Dovecot ${all(cold.dovecot)} — warm ours ${all(warm.ours)}; Dovecot ${all(warm.dovecot)}`);
    print(`  responses: A ${mb(warm.ours[0]!.envelopeBytes)} from us, ${mb(warm.dovecot[0]!.envelopeBytes)} from Dovecot; B ${mb(warm.ours[0]!.bodyBytes)} of message bytes from each`);

    const memoryRow = (label: string, m: MemoryReport, dovecotRss: string) => [
      label, mb(m.heapBefore), m.liveHeapPeak ? signedMb(m.liveHeapPeak - m.heapBefore) : '–', signedMb(m.heapPeak - m.heapBefore), signedMb(m.heapAfter - m.heapBefore),
      signedMb(m.rssPeak - m.rssBefore), mb(m.rssPeak), dovecotRss,
    ];
    const memoryRows = memory.map((m) => memoryRow(`${m.label}, warm`, m.ours, mb(m.dovecotRss)));
    if (coldMemory) memoryRows.push(memoryRow(`N = ${s.messages}, cold`, coldMemory, ''));
    print(table('Memory of one session\'s sync: our server process (heap after GC before it; growth: live heap at its peak, heap used at its peak, retained after GC; RSS), Dovecot\'s imap process', [
      'mailbox', 'heap before', 'live heap', 'heap used', 'retained', 'RSS growth', 'RSS peak', 'Dovecot imap RSS peak',
    ], memoryRows));
    const [tenth, full] = memory;
    if (tenth && full) {
      const extra = full.count - tenth.count;
      const live = (m: MemoryReport) => m.liveHeapPeak - m.heapBefore;
      const perMessage = (bytes: number) => `${fmt(bytes / extra, 0)} bytes a message`;
      print(`  from N/10 to N (${extra} messages more): our live heap ${signedMb(live(full.ours) - live(tenth.ours))} (${perMessage(live(full.ours) - live(tenth.ours))}; the session keeps the folder's UID list),`
        + ` heap used ${signedMb(full.ours.heapPeak - tenth.ours.heapPeak)}; Dovecot's imap process ${signedMb(full.dovecotRss - tenth.dovecotRss)} RSS (${perMessage(full.dovecotRss - tenth.dovecotRss)}).`);
      print('  Live heap: heapUsed right after a forced GC, sampled every 100 ms in a run of its own; heap used: as sampled every 10 ms, garbage V8 has not collected yet included (it grows with the length of the sync, not with what is kept).');
    }

    const bodiesAgree = hashes.size === 1;
    const envelopesAgree = !s.imapflow || flow.ours.summary.join('\n') === flow.dovecot.summary.join('\n');
    print(`\nCheck: every run returned ${s.messages} envelopes and ${s.messages} bodies; bodies byte-identical on both servers in every run: ${bodiesAgree ? 'yes' : `NO (${hashes.size} different digests)`}`
      + (s.imapflow ? `; envelopes (imapflow-parsed) identical: ${envelopesAgree ? 'yes' : 'NO'}` : ''));
    if (!envelopesAgree) {
      const diff = flow.ours.summary.findIndex((line, i) => line !== flow.dovecot.summary[i]);
      print(`  first difference at message ${diff + 1}:\n    ours    ${flow.ours.summary[diff]}\n    Dovecot ${flow.dovecot.summary[diff]}`);
    }
    print(`Bench time ${fmt((performance.now() - benchStart) / 1000, 0)} s.`);
    if (!bodiesAgree || !envelopesAgree) process.exitCode = 1;
  } finally {
    await ours?.stop().catch(() => {});
    await dovecot?.stop().catch(() => {});
    if (ours && s.profileDir) process.stdout.write(`CPU profile of our server (its whole life, setup excluded): ${s.profileDir} (open it in Chrome DevTools, Performance)\n`);
    await database.close();
    if (s.keep) process.stdout.write(`Kept: database ${fresh.url}, Dovecot directory ${dir}\n`);
    else {
      await fresh.drop();
      rmSync(dir, { recursive: true, force: true });
    }
  }
}

if (process.env.IMAP_BENCH_ROLE === 'server') {
  serverRole().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  });
} else if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  runImapBench().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  });
}
