import { and, desc, eq, lt, sql } from 'drizzle-orm';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { domains, delegations, mailboxes, pecJobs, pecTransactions, testClocks, topUps, type Db, type DbOrTx } from '@pec-partner/db';
import { realNow, runAtWorldTime } from '../../clock.ts';
import type { AppDeps } from '../../deps.ts';
import { recordEvent } from '../../events/record.ts';
import { conflict, invalid, notFound } from '../../http/problem.ts';
import { newId } from '../../ids.ts';
import type { Task } from '../../jobs/scheduler.ts';
import type { PecEngine } from '../../pec/engine.ts';
import { expireTopUps } from '../credit/top-ups.ts';
import { expireDelegationInvitations } from '../delegations/service.ts';
import { runDomainMaintenance } from '../domains/service.ts';
import { NOTICES, runMailboxMaintenance } from '../mailboxes/service.ts';

/**
 * Test clocks (Stripe's idea): a test-mode object the developer moves to make a test world's renewals, expiries,
 * grace periods, notices and PEC timers happen now. While a clock exists its world lives at `frozen_time`:
 *
 * - API requests made for the world (its `sk_test_` keys and tokens, its mailboxes' holders) run at that instant:
 *   `installWorldTime` looks the clock up (one indexed query, test mode only) and runs the handler inside
 *   `runAtWorldTime`, so `deps.clock` (a WorldClock) answers the frozen time to every service without a clock
 *   threaded through them. Event dates, webhook deliveries, keys and sign-in links stay on real time.
 * - The scheduled runs of the periodic tasks skip the world (`inTaskScope`); advancing the clock runs them for the
 *   world alone, at every instant something falls due between the old and the new time, in order.
 * - PEC messages and their 12 h / 24 h timers run on real time (the engine knows no world): advancing by Δ brings
 *   the world's pending PEC jobs Δ closer, so the timers that fall within the advance run at once.
 */

type Row = typeof testClocks.$inferSelect;

export type TestClockDeps = AppDeps;

/** The furthest one advance may go: two years past the clock's time (a mailbox term is at most 5 years). */
export const MAX_ADVANCE_YEARS = 2;

export function testClockView(row: Row) {
  return {
    id: row.id,
    object: 'test_clock' as const,
    name: row.name,
    frozen_time: row.frozenTime.toISOString(),
    status: row.status,
    advancing_to: row.advancingTo?.toISOString() ?? null,
    created_at: row.createdAt.toISOString(),
  };
}
export type TestClockView = ReturnType<typeof testClockView>;

/** The frozen time of the partner's world, or null when it has no test clock (or is live). */
export async function frozenTimeOf(db: DbOrTx, partnerId: string): Promise<Date | null> {
  const [row] = await db.select({ frozenTime: testClocks.frozenTime }).from(testClocks).where(eq(testClocks.partnerId, partnerId));
  return row?.frozenTime ?? null;
}

/**
 * Runs every request of a test world that has a test clock at the clock's time. A preHandler like the request
 * context, callback-style for the same reason (the rest of the request's lifecycle runs inside the context).
 * Live requests, and unauthenticated ones, cost nothing.
 */
export function installWorldTime(app: FastifyInstance, db: Db): void {
  app.addHook('preHandler', (request, _reply, done) => {
    const world = request.principal ?? request.holder;
    if (!world || world.livemode) {
      done();
      return;
    }
    frozenTimeOf(db, world.partnerId).then(
      (at) => (at ? runAtWorldTime(at, () => done()) : done()),
      (error: unknown) => done(error as Error),
    );
  });
}

async function findRow(db: DbOrTx, partnerId: string, id: string): Promise<Row> {
  const [row] = await db.select().from(testClocks).where(and(eq(testClocks.partnerId, partnerId), eq(testClocks.id, id)));
  if (!row) throw notFound('test clock', id);
  return row;
}

const exists = () => conflict('test_clock_exists', 'This test world already has a test clock: advance it, or delete it to create another.');

export async function createTestClock(deps: TestClockDeps, partnerId: string, input: { frozen_time?: string | undefined; name?: string | undefined }) {
  const real = realNow(deps.clock);
  const frozenTime = input.frozen_time === undefined ? real : new Date(input.frozen_time);
  return deps.db.transaction(async (tx) => {
    const [row] = await tx.insert(testClocks).values({
      id: newId('clk', real), partnerId, name: input.name?.trim() || null, frozenTime, status: 'ready', createdAt: real, updatedAt: real,
    }).onConflictDoNothing({ target: testClocks.partnerId }).returning();
    if (!row) throw exists();
    const view = testClockView(row);
    await recordEvent(tx, deps.clock, { partnerId, type: 'test_clock.created', object: view });
    return view;
  });
}

export async function listTestClocks(deps: TestClockDeps, partnerId: string, page: { limit: number; startingAfter?: string | undefined }) {
  const rows = await deps.db.select().from(testClocks)
    .where(and(eq(testClocks.partnerId, partnerId), page.startingAfter ? lt(testClocks.id, page.startingAfter) : undefined))
    .orderBy(desc(testClocks.id)).limit(page.limit + 1);
  return rows.map(testClockView);
}

export async function getTestClock(deps: TestClockDeps, partnerId: string, id: string) {
  return testClockView(await findRow(deps.db, partnerId, id));
}

/** The latest instant one advance may reach from `from`. */
export function advanceLimit(from: Date): Date {
  const limit = new Date(from.getTime());
  limit.setUTCFullYear(limit.getUTCFullYear() + MAX_ADVANCE_YEARS);
  return limit;
}

/**
 * Starts moving the clock to `to`: the clock is `advancing` (event `test_clock.advancing`) until the runner has
 * walked the world there (then `ready`, event `test_clock.ready`). Refused while an advance is under way.
 */
export async function advanceTestClock(deps: TestClockDeps, partnerId: string, id: string, to: Date) {
  return deps.db.transaction(async (tx) => {
    const [row] = await tx.select().from(testClocks).where(and(eq(testClocks.partnerId, partnerId), eq(testClocks.id, id))).for('update');
    if (!row) throw notFound('test clock', id);
    if (row.status === 'advancing') {
      throw conflict('test_clock_advancing', `Test clock '${id}' is still advancing to ${row.advancingTo!.toISOString()}; wait until it is ready.`);
    }
    if (to.getTime() <= row.frozenTime.getTime()) {
      throw invalid([{ pointer: '/frozen_time', location: 'body', code: 'not_after_clock', detail: `must be later than the clock's time, ${row.frozenTime.toISOString()}` }], 'A test clock only moves forward.');
    }
    const limit = advanceLimit(row.frozenTime);
    if (to.getTime() > limit.getTime()) {
      throw invalid([{ pointer: '/frozen_time', location: 'body', code: 'out_of_range', detail: `must be at most ${MAX_ADVANCE_YEARS} years after the clock's time, at most ${limit.toISOString()}` }],
        `One advance moves a test clock at most ${MAX_ADVANCE_YEARS} years; advance again for more.`);
    }
    const [updated] = await tx.update(testClocks).set({ status: 'advancing', advancingTo: to, updatedAt: realNow(deps.clock) }).where(eq(testClocks.id, id)).returning();
    const view = testClockView(updated!);
    await recordEvent(tx, deps.clock, { partnerId, type: 'test_clock.advancing', object: view, previousAttributes: { status: 'ready', advancing_to: null } });
    return view;
  });
}

/**
 * Deletes the clock: the world returns to real time at once. Objects dated after the real time (a term that the
 * clock ran ahead) keep their dates and simply fall due later, when real time reaches them; objects whose dates
 * are already past are handled by the next scheduled run, as if it had been late. Allowed while advancing: the
 * runner stops at the next step.
 */
export async function deleteTestClock(deps: TestClockDeps, partnerId: string, id: string) {
  return deps.db.transaction(async (tx) => {
    const [row] = await tx.delete(testClocks).where(and(eq(testClocks.partnerId, partnerId), eq(testClocks.id, id))).returning();
    if (!row) throw notFound('test clock', id);
    await recordEvent(tx, deps.clock, { partnerId, type: 'test_clock.deleted', object: testClockView(row) });
    return { id: row.id, object: 'test_clock' as const, deleted: true as const };
  });
}

const ts = (date: Date) => sql`${date.toISOString()}::timestamptz`;

/**
 * The first instant after `after` at which some periodic task has something to do in the world: a mailbox's notice
 * (30, 7, 1 days before expiry), expiry (renewal or suspension), end of grace or scheduled cancellation; a domain's
 * scheduled cancellation or decertification; a top-up's or an invitation's expiry. Null when nothing is due.
 * Between two such instants the tasks would find nothing (nothing else changes during an advance: no payment
 * arrives, no request is made at those times), so the advance runs them only there.
 */
async function nextDueInstant(deps: TestClockDeps, partnerId: string, after: Date): Promise<Date | null> {
  const grace = `${deps.config.mailboxGraceDays} days`;
  const decertify = `${deps.config.domainDecertifyAfterDays} days`;
  const notices = NOTICES.map(([, days]) => sql`${mailboxes.expiresAt} - ${`${days} days`}::interval`);
  const [row] = await deps.db.execute<{ next: string | null }>(sql`
    select least(
      (select min(t) from ${mailboxes}
         cross join lateral unnest(array[${mailboxes.cancelAt}, ${mailboxes.expiresAt}, ${mailboxes.expiresAt} + ${grace}::interval, ${sql.join(notices, sql`, `)}]) as t
         where ${mailboxes.partnerId} = ${partnerId} and ${mailboxes.status} in ('active', 'suspended') and t > ${ts(after)}),
      (select min(${domains.cancelAt}) from ${domains}
         where ${domains.partnerId} = ${partnerId} and ${domains.status} in ('certified', 'degraded') and ${domains.cancelAt} > ${ts(after)}),
      (select min(${domains.degradedAt} + ${decertify}::interval) from ${domains}
         where ${domains.partnerId} = ${partnerId} and ${domains.status} = 'degraded' and ${domains.degradedAt} + ${decertify}::interval > ${ts(after)}),
      (select min(${topUps.expiresAt}) from ${topUps}
         where ${topUps.partnerId} = ${partnerId} and ${topUps.status} = 'pending' and ${topUps.expiresAt} > ${ts(after)}),
      (select min(${delegations.inviteExpiresAt}) from ${delegations} join ${mailboxes} on ${mailboxes.id} = ${delegations.mailboxId}
         where ${mailboxes.partnerId} = ${partnerId} and ${delegations.status} = 'invited' and ${delegations.inviteExpiresAt} > ${ts(after)})
    ) as next`);
  return row?.next ? new Date(row.next) : null;
}

export interface RunnerDeps extends TestClockDeps {
  engine: PecEngine;
  log?: FastifyBaseLogger;
}

/** How often the scheduler looks for advances no process is running (one cut off by a crash). */
const RESUME_INTERVAL_MS = 60_000;

/**
 * Walks advancing clocks forward. An advance starts at once in the process that accepted it; the scheduled task
 * `test_clocks.resume` picks up any advance left unfinished (its process died). Each step runs the world's
 * periodic tasks at the step's instant, then commits the clock's new time together with the shift of the world's
 * PEC jobs, conditionally on the clock still being where the step started: the tasks are idempotent, so a step
 * repeated after a crash, or by two processes at once, changes nothing twice, and the shift happens once.
 */
export class TestClockRunner {
  readonly #deps: RunnerDeps;
  readonly #running = new Map<string, Promise<void>>();
  #stopping = false;

  constructor(deps: RunnerDeps) {
    this.#deps = deps;
  }

  /** Starts advancing the clock in the background (no-op if this process already does). */
  kick(clockId: string): Promise<void> {
    const running = this.#running.get(clockId);
    if (running) return running;
    const run = this.#advance(clockId)
      .catch((error: unknown) => this.#deps.log?.error({ err: error, test_clock: clockId }, 'test clock advance failed; the scheduler resumes it'))
      .finally(() => this.#running.delete(clockId));
    this.#running.set(clockId, run);
    return run;
  }

  /** Runs every advance under way to its end (tests call this; the scheduled task calls it too). */
  async drain(): Promise<void> {
    const advancing = await this.#deps.db.select({ id: testClocks.id }).from(testClocks).where(eq(testClocks.status, 'advancing'));
    await Promise.all([...advancing.map((row) => this.kick(row.id)), ...this.#running.values()]);
  }

  task(): Task {
    return { name: 'test_clocks.resume', intervalMs: RESUME_INTERVAL_MS, run: () => this.drain() };
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    await Promise.all(this.#running.values());
  }

  async #advance(clockId: string): Promise<void> {
    const { db } = this.#deps;
    while (!this.#stopping) {
      const [clock] = await db.select().from(testClocks).where(eq(testClocks.id, clockId));
      if (!clock || clock.status !== 'advancing' || !clock.advancingTo) return;
      const from = clock.frozenTime;
      const target = clock.advancingTo;
      if (from.getTime() >= target.getTime()) {
        await this.#finish(clock);
        return;
      }
      const due = await nextDueInstant(this.#deps, clock.partnerId, from);
      const step = due && due.getTime() < target.getTime() ? due : target;
      await runAtWorldTime(step, () => maintainWorld(this.#deps, clock.partnerId, step));
      const shifted = await db.transaction(async (tx) => {
        const [moved] = await tx.update(testClocks).set({ frozenTime: step, updatedAt: realNow(this.#deps.clock) })
          .where(and(eq(testClocks.id, clockId), eq(testClocks.status, 'advancing'), eq(testClocks.frozenTime, from)))
          .returning({ id: testClocks.id });
        if (!moved) return 0;
        return shiftPecJobs(tx, clock.partnerId, step.getTime() - from.getTime(), realNow(this.#deps.clock));
      });
      if (shifted > 0) this.#deps.engine.wake();
    }
  }

  async #finish(clock: Row): Promise<void> {
    await this.#deps.db.transaction(async (tx) => {
      const [ready] = await tx.update(testClocks).set({ status: 'ready', advancingTo: null, updatedAt: realNow(this.#deps.clock) })
        .where(and(eq(testClocks.id, clock.id), eq(testClocks.status, 'advancing'), eq(testClocks.frozenTime, clock.frozenTime)))
        .returning();
      if (!ready) return;
      await recordEvent(tx, this.#deps.clock, {
        partnerId: clock.partnerId, type: 'test_clock.ready', object: testClockView(ready),
        previousAttributes: { status: 'advancing', advancing_to: clock.advancingTo!.toISOString() },
      });
    });
  }
}

/** Every periodic task of the product that concerns a world's objects, for that world alone, at `now`. */
export async function maintainWorld(deps: TestClockDeps, partnerId: string, now: Date): Promise<void> {
  const scope = { partnerId };
  await runMailboxMaintenance(deps, now, scope);
  await runDomainMaintenance(deps, now, scope);
  await expireTopUps(deps.db, deps.clock, deps.config.bankAccount, now, scope);
  await expireDelegationInvitations(deps, now, scope);
}

/**
 * Brings the world's pending PEC jobs (those of its messages: the transaction's partner is the sender's) `ms`
 * closer. Jobs already due stay as they are. Returns how many moved.
 */
async function shiftPecJobs(tx: DbOrTx, partnerId: string, ms: number, realTime: Date): Promise<number> {
  const moved = await tx.update(pecJobs)
    .set({ runAt: sql`${pecJobs.runAt} - make_interval(secs => ${ms / 1000})` })
    .where(and(
      sql`${pecJobs.doneAt} is null`,
      sql`${pecJobs.runAt} > ${ts(realTime)}`,
      sql`${pecJobs.payload} ->> 'transaction' in (select ${pecTransactions.id} from ${pecTransactions} where ${pecTransactions.partnerId} = ${partnerId})`,
    ))
    .returning({ id: pecJobs.id });
  return moved.length;
}
