/**
 * PEC engine benchmark (`npm run bench`, or `npx tsx test/bench/pec.ts` alone). Not a test: it asserts nothing
 * about speed. Every throughput is printed next to a baseline measured in the same run on the same machine, and the
 * ratio between them is the number to compare across machines and commits.
 *
 *  1. Baseline: raw RSA-2048 PKCS#1 v1.5 signatures per second with node:crypto (`sign('sha256', …)`), synchronous
 *     on one core and asynchronous across libuv's thread pool; also the engine's own `Signer` (CMS S/MIME) on a
 *     typical entity, to separate the cost of the CMS wrapping from the RSA operation. A second yardstick, since the
 *     pipeline is database work as much as signing: PostgreSQL round trips and begin/insert/commit transactions per
 *     second from this process.
 *  2. End to end: N messages from one mailbox (see BENCH_SENDERS) to another of this provider, submitted over HTTP
 *     (a listening server, several keep-alive clients) while `startWorkers(k)` runs the pipeline, until every
 *     delivery receipt is stored.
 *     Each message costs 4 signatures: acceptance, transport envelope, take-charge, delivery receipt.
 *  3. Latency: submission request → 201 (the access point answers before signing), → acceptance receipt stored in
 *     the sender's `receipts` folder, → delivery receipt stored; under the saturating run above, and in a short
 *     open-loop run at about half the measured throughput.
 *
 * "Stored" is observed exactly at commit: the bench installs, in its own throwaway database only, a trigger that
 * NOTIFYs when an acceptance or delivery receipt row is inserted (PostgreSQL delivers notifications on commit).
 * While the saturating run lasts, pg_stat_activity is sampled to show where the app's backends wait (which lock,
 * held by whom), and the machine's and this process's CPU and event-loop use are printed: what limits the run.
 *
 * Environment (all optional):
 *   TEST_DATABASE_URL / DATABASE_URL  server to use (default postgres://postgres@127.0.0.1:5432/test); a fresh
 *                                     database is made from the migrated template, like the tests do, and dropped
 *   BENCH_MESSAGES=300   messages in the saturating run        BENCH_CLIENTS=8    concurrent HTTP clients
 *   BENCH_WORKERS=4      engine workers (startWorkers(k))      BENCH_POOL=20      PostgreSQL connections of the app
 *   BENCH_BASELINE_MS=1000  duration of each baseline measure  BENCH_PACED_SECONDS=4  the half-load run (0: skip)
 *   BENCH_PACED_RATE=0      msg/s of that run (0: half the throughput just measured)
 *   BENCH_ATTACHMENT_KB=0   size of a PDF-like attachment      BENCH_KEEP_DB=1    keep the database for inspection
 *   BENCH_SENDERS=1         sending mailboxes, used in turn (the receipts of one sender all update its mailbox row)
 *   BENCH_LOG=1             show the engine's job errors
 */
import { randomBytes, sign, generateKeyPairSync, type KeyObject } from 'node:crypto';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import postgres from 'postgres';
import { buildApp, createPartner, loadConfig, systemClock, type App } from '@pec-partner/api';
import { connect } from '@pec-partner/db';
import { freshDatabase } from '../helpers/database.ts';
import { CF_MARIO } from '../helpers/fixtures.ts';

const DEFAULT_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/test';

function intEnv(name: string, fallback: number, min = 0): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) throw new Error(`${name} must be an integer >= ${min}; got '${raw}'`);
  return value;
}

const settings = () => ({
  messages: intEnv('BENCH_MESSAGES', 300, 1),
  clients: intEnv('BENCH_CLIENTS', 8, 1),
  senders: intEnv('BENCH_SENDERS', 1, 1),
  workers: intEnv('BENCH_WORKERS', 4, 1),
  pool: intEnv('BENCH_POOL', 20, 2),
  baselineMs: intEnv('BENCH_BASELINE_MS', 1000, 100),
  pacedSeconds: intEnv('BENCH_PACED_SECONDS', 4, 0),
  pacedRate: intEnv('BENCH_PACED_RATE', 0, 0),
  attachmentKb: intEnv('BENCH_ATTACHMENT_KB', 0, 0),
  warmup: 10,
  timeoutMs: 180_000,
});

// ---------------------------------------------------------------------------------------------------------------
// Small measuring tools

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Nearest-rank percentile of an unsorted list (NaN when empty). */
function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}

const fmt = (value: number, digits = 1): string => (Number.isFinite(value) ? value.toFixed(digits) : '–');

function table(title: string, head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('   ').trimEnd();
  return [`\n${title}`, `  ${line(head)}`, `  ${widths.map((w) => '-'.repeat(w)).join('   ')}`, ...rows.map((r) => `  ${line(r)}`)].join('\n');
}

/** Synchronous signatures per second on the calling thread (one core). */
function syncSignRate(key: KeyObject, data: Buffer, ms: number): number {
  let count = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    for (let i = 0; i < 4; i++) sign('sha256', data, key);
    count += 4;
    now = performance.now();
  }
  return (count * 1000) / (now - start);
}

/** Completions per second of an async operation kept `concurrency` deep for `ms`. */
async function asyncRate(operation: () => Promise<unknown>, concurrency: number, ms: number): Promise<number> {
  let count = 0;
  const start = performance.now();
  const deadline = start + ms;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < deadline) {
      await operation();
      count++;
    }
  }));
  return (count * 1000) / (performance.now() - start);
}

const asyncSign = (key: KeyObject, data: Buffer) =>
  new Promise<Buffer>((resolve, reject) => sign('sha256', data, key, (error, signature) => (error ? reject(error) : resolve(signature))));

/** CPU of the whole machine (all processes, PostgreSQL included) between two snapshots, in cores busy. */
function machineCpu(): () => number {
  const snapshot = () => os.cpus().reduce((acc, cpu) => {
    const total = Object.values(cpu.times).reduce((a, b) => a + b, 0);
    return { busy: acc.busy + total - cpu.times.idle, total: acc.total + total };
  }, { busy: 0, total: 0 });
  const before = snapshot();
  return () => {
    const after = snapshot();
    return ((after.busy - before.busy) / Math.max(1, after.total - before.total)) * os.cpus().length;
  };
}

/**
 * Samples pg_stat_activity of the bench database every few ms: what the app's backends are doing (running, waiting
 * for a lock and on which statement, flushing WAL, or idle inside a transaction waiting for the Node process).
 */
function waitSampler(url: string) {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  const counts = new Map<string, number>();
  let samples = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      // A sample that fails (a backend gone mid-query) is skipped: the diagnosis must never stop the bench.
      const rows = await sql<{ state: string; type: string | null; event: string | null; query: string; blocker: string | null }[]>`
        select a.state, a.wait_event_type as type, a.wait_event as event, left(regexp_replace(a.query, '[[:space:]]+', ' ', 'g'), 70) as query,
          case when a.wait_event_type = 'Lock' then (
            select coalesce(b.wait_event_type || ':' || b.wait_event, b.state) || ' after ' || left(regexp_replace(b.query, '[[:space:]]+', ' ', 'g'), 50)
            from pg_stat_activity b where b.pid = (pg_blocking_pids(a.pid))[1] limit 1) end as blocker
        from pg_stat_activity a
        where a.datname = current_database() and a.pid <> pg_backend_pid() and a.backend_type = 'client backend'
          and a.state in ('active', 'idle in transaction') and a.query not like 'LISTEN%'`.catch(() => null);
      if (!rows) {
        await sleep(20);
        continue;
      }
      samples++;
      for (const row of rows) {
        const key = row.state === 'idle in transaction'
          ? `idle in transaction (waiting for the app) after: ${row.query}`
          : row.type === null ? `on CPU: ${row.query}`
            : row.type === 'Lock' ? `Lock:${row.event} on: ${row.query}\n      held by a backend ${row.blocker ?? '?'}`
              : row.type === 'Client' ? `${row.type}:${row.event} (active, waiting for the app to send the rest) on: ${row.query}`
                : `${row.type}:${row.event} on: ${row.query}`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
      await sleep(20);
    }
  })();
  return {
    async stop(): Promise<{ samples: number; top: Array<[string, number]> }> {
      running = false;
      await loop;
      await sql.end({ timeout: 1 });
      return { samples, top: [...counts.entries()].sort((a, b) => b[1] - a[1]) };
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// The provider under test

interface Sample {
  pecId: string;
  /** performance.now() when the request was sent, when its 201 was read. */
  start: number;
  responded: number;
}

interface Mailbox { id: string; address: string; authorization: string }

async function provision(app: App, partnerSecret: string, senders: number): Promise<{ alice: Mailbox[]; bob: Mailbox }> {
  const partner = async (method: 'POST', url: string, payload: object) => {
    const response = await app.inject({ method, url, headers: { authorization: `Bearer ${partnerSecret}` }, payload });
    const body = JSON.parse(response.body) as Record<string, any>;
    if (response.statusCode !== 201) throw new Error(`${method} ${url}: ${response.statusCode} ${response.body}`);
    return body;
  };
  await partner('POST', '/v1/credit/top-ups', { amount: 50_000, currency: 'EUR', payment_reference: `BENCH-${randomBytes(4).toString('hex')}` });
  const customer = await partner('POST', '/v1/customers', { type: 'private_person', first_name: 'Mario', last_name: 'Rossi', tax_code: CF_MARIO });
  await partner('POST', `/v1/customers/${customer.id}/identity`, { document_type: 'identity_card', number: 'CA12345AB', issuer: 'Comune di Milano', expires_on: '2030-01-01' });
  const open = async (local: string): Promise<Mailbox> => {
    const password = `${local}-password-2026`;
    const created = await partner('POST', '/v1/mailboxes', { local_part: local, domain: 'pec.example.it', customer: customer.id, plan: 'pro', password });
    return { id: created.id, address: created.address, authorization: `Basic ${Buffer.from(`${created.address}:${password}`).toString('base64')}` };
  };
  const alice: Mailbox[] = [];
  for (let i = 0; i < senders; i++) alice.push(await open(i === 0 ? 'alice' : `alice${i + 1}`));
  return { alice, bob: await open('bob') };
}

/** Stored acceptance and delivery receipts, by kind and PEC msgid, with the instant their commit was seen. */
class Receipts {
  readonly seen = { acceptance: new Map<string, number>(), delivery: new Map<string, number>() };
  #waiters = new Set<() => void>();

  record(payload: string): void {
    const [kind, pecId] = payload.split(' ') as ['acceptance' | 'delivery', string];
    this.seen[kind]?.set(pecId, performance.now());
    for (const waiter of [...this.#waiters]) waiter();
  }

  /** Resolves when every id has its receipt of this kind; rejects after the timeout with how many are missing. */
  async all(kind: 'acceptance' | 'delivery', ids: string[], timeoutMs: number): Promise<void> {
    const missing = () => ids.filter((id) => !this.seen[kind].has(id)).length;
    if (missing() === 0) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(new Error(`${missing()} of ${ids.length} ${kind} receipts not stored after ${timeoutMs / 1000} s (BENCH_LOG=1 shows job errors)`));
      }, timeoutMs);
      const check = () => {
        if (missing() > 0) return;
        clearTimeout(timer);
        this.#waiters.delete(check);
        resolve();
      };
      this.#waiters.add(check);
    });
  }
}

/** The bench's own database only: a NOTIFY at commit for every acceptance or delivery receipt stored. */
const NOTIFY_TRIGGER = `
  create function bench_receipt_stored() returns trigger language plpgsql as $$
  begin
    perform pg_notify('bench_receipt_stored', new.kind || ' ' || new.pec_message_id);
    return null;
  end $$;
  create trigger bench_receipt_stored after insert on mailbox_messages for each row
    when (new.folder = 'receipts' and new.kind in ('acceptance', 'delivery'))
    execute function bench_receipt_stored();`;

// ---------------------------------------------------------------------------------------------------------------

export async function runPecBench(): Promise<void> {
  const s = settings();
  process.env.TEST_DATABASE_URL ??= process.env.DATABASE_URL ?? DEFAULT_DATABASE_URL;
  const threadPool = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
  const cpus = os.cpus();
  const print = (text: string) => process.stdout.write(`${text}\n`);

  const fresh = await freshDatabase();
  const database = connect(fresh.url, { max: s.pool });
  const listener = postgres(fresh.url, { max: 1, onnotice: () => {} });
  let app: App | undefined;
  try {
    const [{ version }] = (await database.sql`select split_part(version(), ' ', 2) as version`) as unknown as [{ version: string }];
    await database.sql.unsafe(NOTIFY_TRIGGER);
    const receipts = new Receipts();
    await listener.listen('bench_receipt_stored', (payload) => receipts.record(payload));

    const config = loadConfig({
      DATABASE_URL: fresh.url,
      LOG_LEVEL: 'silent',
      PUBLIC_URL: 'http://pec-partner.bench',
      JOBS_INTERVAL_SECONDS: '0',
      DNS_TIMEOUT_MS: '300',
      // One mailbox sends everything: the per-holder limit (600/min by default) would throttle the bench.
      RATE_LIMIT_PER_MINUTE: '1000000',
    });
    app = await buildApp({ db: database.db, config, clock: systemClock, logger: process.env.BENCH_LOG ? { level: 'error' } : false });
    await app.ready();
    const engine = app.pec;
    const { secret } = await createPartner(database.db, systemClock, 'Bench partner');
    const { alice, bob } = await provision(app, secret, s.senders);
    const base = await app.listen({ host: '127.0.0.1', port: 0 });
    await engine.identity();
    const signer = await engine.signer();

    print(`PEC engine benchmark — ${cpus.length} × ${cpus[0]?.model.trim() ?? 'CPU'}, Node ${process.version}, UV_THREADPOOL_SIZE=${threadPool}, PostgreSQL ${version}`);
    print(`N=${s.messages} messages ${alice.length > 1 ? `from ${alice.length} mailboxes (${alice[0]!.address}…)` : alice[0]!.address} → ${bob.address}, ${s.clients} HTTP clients, ${s.workers} workers, pool ${s.pool} connections${s.attachmentKb ? `, ${s.attachmentKb} KB attachment` : ''}`);

    // -- 1. Baseline ------------------------------------------------------------------------------------------
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const signedAttributes = randomBytes(230); // about the size of the CMS signed attributes the engine signs
    const depth = threadPool * 2;
    const entity = Buffer.from(
      `Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${'Testo del messaggio di prova. '.repeat(60)}\r\n--b--\r\n`,
    );
    syncSignRate(privateKey, signedAttributes, 100); // warm-up
    await asyncRate(() => asyncSign(privateKey, signedAttributes), depth, 100);
    const syncRate = syncSignRate(privateKey, signedAttributes, s.baselineMs);
    const asyncBefore = await asyncRate(() => asyncSign(privateKey, signedAttributes), depth, s.baselineMs);
    const signerRate = await asyncRate(() => signer.sign(entity), depth, s.baselineMs);
    // A second yardstick, since the pipeline is database work too: round trips and durable commits from this process.
    await database.sql`create table bench_commits (id bigserial primary key, at timestamptz not null default now())`;
    const roundTrips = await asyncRate(() => database.sql`select 1`, s.workers * 2, s.baselineMs);
    const commits = await asyncRate(() => database.sql.begin((tx) => tx`insert into bench_commits default values`), s.workers * 2, s.baselineMs);

    // -- 2. End to end ----------------------------------------------------------------------------------------
    const attachment = s.attachmentKb > 0
      ? [{ filename: 'documento.pdf', content_type: 'application/pdf', content_base64: randomBytes(s.attachmentKb * 1024).toString('base64') }]
      : undefined;
    const submit = async (tag: string, i: number): Promise<Sample> => {
      const body = JSON.stringify({
        to: [bob.address], subject: `Bench ${tag} n. ${i} — prova`, text: `Buongiorno,\r\nmessaggio ${i} del benchmark.\r\n${'Cordiali saluti. '.repeat(20)}`,
        ...(attachment ? { attachments: attachment } : {}),
      });
      const start = performance.now();
      const sender = alice[i % alice.length]!;
      const response = await fetch(`${base}/v1/mailboxes/${sender.id}/messages`, { method: 'POST', headers: { authorization: sender.authorization, 'content-type': 'application/json' }, body });
      const result = (await response.json()) as { status?: string; pec_message_id?: string };
      const responded = performance.now();
      if (response.status !== 201 || result.status !== 'accepted' || !result.pec_message_id) throw new Error(`submission ${tag} ${i}: ${response.status} ${JSON.stringify(result)}`);
      return { pecId: result.pec_message_id, start, responded };
    };

    engine.startWorkers(s.workers);
    // Warm-up: JIT, the holder's password check (scrypt, then cached), connections; not measured.
    const warm = await Promise.all(Array.from({ length: Math.max(s.warmup, s.senders) }, (_, i) => submit('warm-up', i)));
    await receipts.all('delivery', warm.map((w) => w.pecId), s.timeoutMs);

    const cpu = machineCpu();
    const nodeCpu = process.cpuUsage();
    const elu = performance.eventLoopUtilization();
    const sampler = waitSampler(fresh.url);
    const samples: Sample[] = [];
    let next = 0;
    const runStart = performance.now();
    await Promise.all(Array.from({ length: s.clients }, async () => {
      while (next < s.messages) {
        const i = next++;
        samples[i] = await submit('run', i);
      }
    }));
    const submittedAt = performance.now();
    const ids = samples.map((x) => x.pecId);
    await receipts.all('delivery', ids, s.timeoutMs);
    await receipts.all('acceptance', ids, s.timeoutMs);
    const runEnd = Math.max(...ids.map((id) => receipts.seen.delivery.get(id)!), ...ids.map((id) => receipts.seen.acceptance.get(id)!));
    const waits = await sampler.stop();
    const busyCores = cpu();
    const nodeUsage = process.cpuUsage(nodeCpu);
    const loop = performance.eventLoopUtilization(elu);
    const runSeconds = (runEnd - runStart) / 1000;
    const nodeCores = (nodeUsage.user + nodeUsage.system) / 1e6 / ((performance.now() - runStart) / 1000);

    // -- 3. Latency at about half the measured throughput (open loop: requests leave on schedule) --------------
    const messagesPerSecond = s.messages / runSeconds;
    let paced: Sample[] = [];
    let pacedRate = 0;
    if (s.pacedSeconds > 0) {
      pacedRate = s.pacedRate || messagesPerSecond / 2;
      const count = Math.max(10, Math.min(200, Math.round(pacedRate * s.pacedSeconds)));
      const interval = 1000 / pacedRate;
      const t0 = performance.now();
      const pending: Array<Promise<Sample>> = [];
      for (let i = 0; i < count; i++) {
        const wait = t0 + i * interval - performance.now();
        if (wait > 0) await sleep(wait);
        pending.push(submit('paced', i));
      }
      paced = await Promise.all(pending);
      await receipts.all('delivery', paced.map((x) => x.pecId), s.timeoutMs);
      await receipts.all('acceptance', paced.map((x) => x.pecId), s.timeoutMs);
    }

    const asyncAfter = await asyncRate(() => asyncSign(privateKey, signedAttributes), depth, s.baselineMs);
    const asyncRateMean = (asyncBefore + asyncAfter) / 2;
    const drift = Math.abs(asyncBefore - asyncAfter) / Math.max(asyncBefore, asyncAfter);

    // -- Consistency: what the engine stored and whether any job failed -----------------------------------------
    const total = Math.max(s.warmup, s.senders) + s.messages + paced.length;
    const [stored] = (await database.sql`
      select
        count(*) filter (where mailbox_id = any(${alice.map((m) => m.id)}) and folder = 'receipts' and kind = 'acceptance')::int as acceptance,
        count(*) filter (where mailbox_id = any(${alice.map((m) => m.id)}) and folder = 'receipts' and kind = 'delivery')::int as delivery,
        count(*) filter (where mailbox_id = ${bob.id} and folder = 'inbox' and kind = 'transport_envelope')::int as envelopes,
        count(*) filter (where mailbox_id is null and kind = 'take_charge')::int as take_charge
      from mailbox_messages`) as unknown as [{ acceptance: number; delivery: number; envelopes: number; take_charge: number }];
    const [jobs] = (await database.sql`
      select count(*) filter (where attempts > 1 or last_error is not null)::int as retried,
             count(*) filter (where done_at is null and run_at <= now())::int as due,
             count(*) filter (where done_at is null and run_at > now())::int as future
      from pec_jobs`) as unknown as [{ retried: number; due: number; future: number }];
    const [log] = (await database.sql`select count(*)::int as entries from log_register`) as unknown as [{ entries: number }];

    // -- Report -------------------------------------------------------------------------------------------------
    const engineSignatures = (4 * s.messages) / runSeconds;
    print(table('Baseline: RSA-2048 signatures, node:crypto sign(sha256), this machine, this run', ['', 'signatures/s', 'note'], [
      ['raw, synchronous, 1 core', fmt(syncRate), ''],
      ['raw, async, thread pool', fmt(asyncRateMean), `${depth} in flight; before ${fmt(asyncBefore)}, after ${fmt(asyncAfter)}`],
      ['engine Signer.sign (CMS S/MIME, async)', fmt(signerRate), `${fmt(signerRate / asyncBefore, 2)} × raw async; ${entity.length}-byte entity`],
    ]));
    if (drift > 0.15) print(`  ! the async baseline moved ${fmt(drift * 100, 0)}% between before and after: the machine is shared or throttled; the ratios are noisy`);
    print(table(`End to end: ${s.messages} messages, first request → last receipt stored`, ['', 'value', 'note'], [
      ['wall time', `${fmt(runSeconds, 2)} s`, `all 201s after ${fmt((submittedAt - runStart) / 1000, 2)} s`],
      ['access point (201 responses)', `${fmt(s.messages / ((submittedAt - runStart) / 1000))} msg/s`, 'HTTP + checks + one DB transaction, no signing'],
      ['messages fully processed', `${fmt(messagesPerSecond)} msg/s`, 'until every delivery receipt is stored'],
      ['engine signatures', `${fmt(engineSignatures)} sig/s`, '4 per message'],
      ['ceiling if signing were the only cost', `${fmt(asyncRateMean / 4)} msg/s`, 'raw async baseline / 4'],
      ['machine CPU busy', `${fmt(busyCores, 2)} of ${cpus.length} cores`, `node process ${fmt(nodeCores, 2)} cores (${fmt(nodeUsage.system / Math.max(1, nodeUsage.user + nodeUsage.system) * 100, 0)}% in the kernel), event loop ${fmt(loop.utilization * 100, 0)}% busy`],
    ]));
    print(table(`Baseline: PostgreSQL from this process (postgres.js, ${s.workers * 2} concurrent)`, ['', 'per second'], [
      ['round trips (select 1)', fmt(roundTrips)],
      ['transactions begin / insert / commit (synchronous_commit as configured)', fmt(commits)],
    ]));
    const messageCost = (rate: number) => fmt(rate / messagesPerSecond, 1);
    print(table('Ratios: throughput ÷ baseline (1.00 = as fast as the raw machine) and one message in baseline units', ['', 'ratio', 'one message costs'], [
      ['engine sig/s ÷ raw async signatures (thread pool)', fmt(engineSignatures / asyncRateMean, 3), `${messageCost(asyncRateMean)} raw async signatures (needs 4)`],
      ['engine sig/s ÷ raw sync signatures (1 core)', fmt(engineSignatures / syncRate, 3), `${messageCost(syncRate)} raw sync signatures`],
      ['engine sig/s ÷ engine Signer alone', fmt(engineSignatures / signerRate, 3), `${messageCost(signerRate)} Signer.sign calls`],
      ['messages/s ÷ DB transactions/s', fmt(messagesPerSecond / commits, 3), `${messageCost(commits)} begin/insert/commit transactions`],
      ['messages/s ÷ DB round trips/s', fmt(messagesPerSecond / roundTrips, 4), `${messageCost(roundTrips)} round trips`],
    ]));
    const latency = (label: string, list: Sample[]) => {
      const toResponse = list.map((x) => x.responded - x.start);
      const toAcceptance = list.map((x) => receipts.seen.acceptance.get(x.pecId)! - x.start);
      const toDelivery = list.map((x) => receipts.seen.delivery.get(x.pecId)! - x.start);
      const row = (name: string, values: number[]) => [name, fmt(percentile(values, 0.5)), fmt(percentile(values, 0.99)), fmt(Math.max(...values))];
      print(table(label, ['from the submission request to …', 'p50 ms', 'p99 ms', 'max ms'], [
        row('its 201 response', toResponse),
        row('acceptance receipt stored', toAcceptance),
        row('delivery receipt stored', toDelivery),
      ]));
    };
    latency(`Latency, saturating run (${s.messages} messages from ${s.clients} clients as fast as they are answered)`, samples);
    if (paced.length) latency(`Latency at ${s.pacedRate ? 'a fixed rate' : 'half load'} (${paced.length} messages, open loop at ${fmt(pacedRate)} msg/s)`, paced);
    print(`\nPostgreSQL backends of the app during the saturating run (${waits.samples} samples of pg_stat_activity; average backends in each state)`);
    for (const [key, n] of waits.top.slice(0, 10)) print(`  ${fmt(n / Math.max(1, waits.samples), 2).padStart(5)}  ${key}`);
    const ok = stored.acceptance === total && stored.delivery === total && stored.envelopes === total && stored.take_charge === total && jobs.retried === 0 && jobs.due === 0 && log.entries === 4 * total;
    print(`\nCheck: ${stored.acceptance} acceptance, ${stored.delivery} delivery receipts, ${stored.envelopes} envelopes, ${stored.take_charge} take-charge receipts for ${total} messages; `
      + `${log.entries} log entries; ${jobs.retried} retried jobs, ${jobs.due} due left (${jobs.future} timers pending) — ${ok ? 'OK' : 'INCONSISTENT'}`);
    if (!ok) process.exitCode = 1;
  } finally {
    await app?.close();
    await listener.end({ timeout: 1 });
    await database.close();
    if (process.env.BENCH_KEEP_DB) process.stdout.write(`Database kept: ${fresh.url}\n`);
    else await fresh.drop();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  runPecBench().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  });
}
