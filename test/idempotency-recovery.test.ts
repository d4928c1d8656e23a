import { and, eq, sql } from 'drizzle-orm';
import Fastify from 'fastify';
import t from 'tap';
import { idempotencyKeys } from '@pec-partner/db';
import type { ManualClock } from '@pec-partner/api';
import { installErrorHandling } from '../api/src/http/errors.ts';
import { CLAIM_RECOVERY_MS, installIdempotency, requestFingerprint, type IdempotencyOptions } from '../api/src/http/idempotency.ts';
import { newId } from '../api/src/ids.ts';
import { api } from './helpers/fixtures.ts';
import { harness, json, type Harness, type TestPartner } from './helpers/harness.ts';

const MINUTES = 60_000;
const TOP_UPS = '/v1/credit/top-ups';

/** The row a process leaves when it dies while running the request: claimed, never renewed, never completed. */
async function abandonedClaim(h: Harness, partner: TestPartner, key: string, body: object, claimedAt = h.clock.now()) {
  await h.database.db.insert(idempotencyKeys).values({
    partnerId: partner.id, key, requestHash: requestFingerprint('POST', TOP_UPS, body), method: 'POST', path: TOP_UPS,
    state: 'in_progress', claimedBy: 'req_01dead', claimedAt, createdAt: claimedAt, expiresAt: new Date(claimedAt.getTime() + 24 * 3_600_000),
  });
}

const keyRow = async (h: Harness, partner: TestPartner, key: string) =>
  (await h.database.db.select().from(idempotencyKeys).where(and(eq(idempotencyKeys.partnerId, partner.id), eq(idempotencyKeys.key, key))))[0];

t.test('a key left in_progress by a dead process: 409 until the recovery window ends, then the retry runs once', async (t) => {
  const h = await harness(t);
  const p = await h.partner();
  const a = api(h, p);
  const topUp = (key: string, payload: object) =>
    h.app.inject({ method: 'POST', url: TOP_UPS, headers: { ...p.headers, 'idempotency-key': key }, payload });

  const body = { amount: 2500, currency: 'EUR', payment_reference: 'crash-1' };
  await abandonedClaim(h, p, 'crash-1', body);
  const early = await topUp('crash-1', body);
  t.equal(early.statusCode, 409);
  t.equal(json(early).code, 'idempotency_request_in_progress');
  t.equal(early.headers['retry-after'], '1', 'a fresh claim may be a live request about to finish');

  h.clock.advance(3 * MINUTES);
  const stale = await topUp('crash-1', body);
  t.equal(stale.statusCode, 409);
  t.equal(stale.headers['retry-after'], '120', 'a claim that missed its renewals: retry when the window ends');
  t.match(json(stale).detail, /was interrupted; it can be retried with this key in 120 s/);

  h.clock.advance(2 * MINUTES);
  const otherBody = await topUp('crash-1', { ...body, amount: 2600 });
  t.equal(otherBody.statusCode, 422, 'only the same request may take the claim over');
  t.equal(json(otherBody).code, 'idempotency_key_reused');
  const taken = await topUp('crash-1', body);
  t.equal(taken.statusCode, 201);
  t.notOk(taken.headers['idempotent-replayed']);
  t.match(await keyRow(h, p, 'crash-1'), {
    state: 'completed', responseStatus: 201, claimedBy: taken.headers['request-id'], claimedAt: h.clock.now(),
    expiresAt: new Date(h.clock.now().getTime() + 24 * 3_600_000),
  }, 'stored, and kept 24 h from the retry that ran it');
  const replay = await topUp('crash-1', body);
  t.equal(replay.headers['idempotent-replayed'], 'true');
  t.equal(replay.body, taken.body);
  t.same((await a.get('/v1/credit/top-ups?limit=100')).body.data.map((x: { amount: number }) => x.amount), [2500], 'one top-up requested');

  // Ten retries racing for one abandoned claim: one takes it over and runs, the others wait or replay. The row is
  // held locked until all ten have seen it abandoned and are waiting in their takeover UPDATE.
  const raced = { amount: 3000, currency: 'EUR', payment_reference: 'crash-2' };
  await abandonedClaim(h, p, 'crash-2', raced, new Date(h.clock.now().getTime() - CLAIM_RECOVERY_MS - 1000));
  let racing: Promise<Awaited<ReturnType<typeof topUp>>[]> | undefined;
  await h.database.db.transaction(async (tx) => {
    await tx.execute(sql`select 1 from idempotency_keys where partner_id = ${p.id} and key = 'crash-2' for update`);
    racing = Promise.all(Array.from({ length: 10 }, () => topUp('crash-2', raced)));
    let waiting = 0;
    for (let i = 0; i < 400 && waiting < 10; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      const [row] = await h.database.db.execute<{ n: number }>(sql`select count(*)::int as n from pg_stat_activity
        where datname = current_database() and wait_event_type = 'Lock' and query like 'update "idempotency_keys"%'`);
      waiting = Number(row!.n);
    }
    t.equal(waiting, 10, 'ten takeovers wait on the same row');
  });
  const results = await racing!;
  const executed = results.filter((r) => r.statusCode === 201 && !r.headers['idempotent-replayed']);
  t.equal(executed.length, 1, `one execution (statuses: ${results.map((r) => r.statusCode).join(',')})`);
  t.ok(results.every((r) => (r.statusCode === 201 && (r === executed[0] || r.body === executed[0]!.body))
    || (r.statusCode === 409 && json(r).code === 'idempotency_request_in_progress' && r.headers['retry-after'] === '1')), 'the others got the replay or a 409 to retry at once');
  t.equal((await a.get('/v1/credit/top-ups?limit=100')).body.data.length, 2, 'one more top-up, not ten');
});

t.test('a request that fails with a 500 frees its key at once', async (t) => {
  const h = await harness(t);
  const p = await h.partner();
  const a = api(h, p);
  const body = { amount: 700, currency: 'EUR', payment_reference: 'fails-once' };
  const topUp = () => h.app.inject({ method: 'POST', url: TOP_UPS, headers: { ...p.headers, 'idempotency-key': 'fails-once' }, payload: body });

  // A real fault inside the handler's transaction.
  await h.database.db.execute(sql`create function test_ledger_down() returns trigger language plpgsql as $$ begin raise exception 'ledger unavailable'; end $$`);
  await h.database.db.execute(sql`create trigger test_ledger_down before insert on top_ups for each row execute function test_ledger_down()`);
  const failed = await topUp();
  t.equal(failed.statusCode, 500);
  t.equal(json(failed).code, 'internal_error');
  t.equal(await keyRow(h, p, 'fails-once'), undefined, 'no claim left behind');
  t.equal((await topUp()).statusCode, 500, 'the retry runs again (no 409)');

  await h.database.db.execute(sql`drop trigger test_ledger_down on top_ups`);
  const retried = await topUp();
  t.equal(retried.statusCode, 201);
  t.notOk(retried.headers['idempotent-replayed']);
  t.same((await a.get('/v1/credit/top-ups')).body.data.map((x: { amount: number }) => x.amount), [700]);
});

t.test('claims are renewed while their request runs; a request that stopped renewing loses its claim and cannot overwrite the retry', async (t) => {
  const h = await harness(t);
  const p = await h.partner();

  /** A server like the API (same idempotency hooks) whose handler waits until the test lets it finish. */
  const server = async (name: string, clock: ManualClock, options: IdempotencyOptions) => {
    const waiting: Array<() => void> = [];
    const app = Fastify({ logger: false, genReqId: () => newId('req') });
    app.decorateRequest('principal', null);
    app.decorateRequest('holder', null);
    installErrorHandling(app);
    app.addHook('onRequest', async (request) => {
      request.principal = { partnerId: p.id, apiKeyId: p.apiKeyId, livemode: true };
    });
    installIdempotency(app, h.database.db, clock, 24, options);
    app.post('/orders', async (_request, reply) => {
      await new Promise<void>((resolve) => waiting.push(resolve));
      return reply.code(201).send({ made_by: name });
    });
    await app.ready();
    t.teardown(() => app.close());
    let runs = 0;
    return {
      order: (key: string) => app.inject({ method: 'POST', url: '/orders', headers: { 'idempotency-key': key }, payload: { item: 'x' } }),
      /** Waits until a handler is running, then lets it finish. */
      finishOne: async () => {
        while (waiting.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
        runs++;
        waiting.shift()!();
      },
      runs: () => runs + waiting.length,
    };
  };
  const waitFor = async (what: string, condition: () => Promise<boolean>) => {
    for (let i = 0; i < 400 && !(await condition()); i++) await new Promise((resolve) => setTimeout(resolve, 5));
    t.ok(await condition(), what);
  };

  // A slow request keeps its claim, however far the window is passed.
  const live = await server('live', h.clock, { renewalIntervalMs: 20 });
  const slow = live.order('slow');
  await waitFor('the handler runs', async () => live.runs() === 1);
  h.clock.advance(2 * CLAIM_RECOVERY_MS);
  await waitFor('the claim is renewed', async () => (await keyRow(h, p, 'slow'))?.claimedAt.getTime() === h.clock.now().getTime());
  const duplicate = await live.order('slow');
  t.equal(duplicate.statusCode, 409);
  t.equal(duplicate.headers['retry-after'], '1');
  await live.finishOne();
  t.equal((await slow).statusCode, 201);
  const replay = await live.order('slow');
  t.equal(replay.headers['idempotent-replayed'], 'true');
  t.same(json(replay), { made_by: 'live' });
  t.equal(live.runs(), 1);

  // A process that stopped renewing (frozen, or dead) is taken over by another one after the window.
  const frozen = await server('frozen', h.clock, {});
  const restarted = await server('restarted', h.clock, {});
  const first = frozen.order('frozen');
  await waitFor('the first handler runs', async () => frozen.runs() === 1);
  h.clock.advance(CLAIM_RECOVERY_MS);
  const retry = restarted.order('frozen');
  await restarted.finishOne();
  t.equal((await retry).statusCode, 201);
  const stored = await keyRow(h, p, 'frozen');
  t.match(stored, { state: 'completed', responseStatus: 201, responseBody: '{"made_by":"restarted"}' });
  // The first request wakes up and answers its own client, but the key is no longer its own.
  await frozen.finishOne();
  t.equal((await first).statusCode, 201);
  t.same(await keyRow(h, p, 'frozen'), stored, 'the stored response is the retry\'s');
  t.same(json(await frozen.order('frozen')), { made_by: 'restarted' });
});
