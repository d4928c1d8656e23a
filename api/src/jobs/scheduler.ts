import { and, eq, isNull, lte, or, sql } from 'drizzle-orm';
import type { FastifyBaseLogger } from 'fastify';
import { scheduledTasks, workerIdentity, type Db, type WorkerIdentity } from '@pec-partner/db';
import type { Clock } from '../clock.ts';

export interface Task {
  name: string;
  intervalMs: number;
  /** Must be idempotent: a crash mid-run means the next run repeats part of the work. */
  run(now: Date): Promise<void>;
}

export const DAY_MS = 86_400_000;
const SCOPE = 'scheduled_tasks';

/**
 * Runs periodic tasks on the injectable clock, durably: when each task is next due lives in PostgreSQL, and a
 * process claims a run by moving that time forward in one UPDATE, so several processes never run it twice.
 * The run records its holder (see WorkerIdentity) until it ends: a run cut off by its process's death (or one
 * whose end could not be recorded, the database being down) is claimed again at once rather than at the next
 * interval, and never while its holder lives and runs it. Tests call tick() after moving the clock; servers
 * call start().
 */
export class Scheduler {
  readonly #db: Db;
  readonly #clock: Clock;
  readonly #tasks: Task[];
  readonly #log: FastifyBaseLogger | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** The last tick, settled either way: a tick that failed (the database down) is the caller's to handle, never unhandled. */
  #running: Promise<void> | undefined;
  readonly #identity: WorkerIdentity;

  constructor(db: Db, clock: Clock, tasks: Task[], log?: FastifyBaseLogger) {
    this.#db = db;
    this.#identity = workerIdentity(db);
    this.#clock = clock;
    this.#tasks = tasks;
    this.#log = log;
  }

  /** Runs every due task once; returns the names of those this process ran. */
  tick(): Promise<string[]> {
    // Overlapping ticks in one process would only contend for the same rows: chain them instead.
    const previous = this.#running ?? Promise.resolve();
    const next = previous.then(() => this.#runDue());
    const settled = next.then(() => {}, () => {});
    this.#running = settled;
    void settled.then(() => {
      if (this.#running === settled) this.#running = undefined;
    });
    return next;
  }

  async #runDue(): Promise<string[]> {
    const ran: string[] = [];
    for (const task of this.#tasks) {
      const now = this.#clock.now();
      // First sight of a task: due at once.
      await this.#db.insert(scheduledTasks).values({ name: task.name, nextRunAt: now }).onConflictDoNothing();
      const claimed = await this.#identity.claim(SCOPE, async (lease) => {
        const holderGone = lease.holderGone({ id: scheduledTasks.name, lockedBy: scheduledTasks.lockedBy, lockedAt: scheduledTasks.lockedAt });
        const [row] = await this.#db
          .update(scheduledTasks)
          .set({ nextRunAt: new Date(now.getTime() + task.intervalMs), lastStartedAt: now, lockedBy: lease.holder, lockedAt: sql`now()` })
          .where(and(eq(scheduledTasks.name, task.name), or(and(isNull(scheduledTasks.lockedBy), lte(scheduledTasks.nextRunAt, now)), holderGone)))
          .returning({ id: scheduledTasks.name });
        return row ?? null;
      });
      if (!claimed) continue;
      let error: string | null = null;
      try {
        try {
          await task.run(now);
          ran.push(task.name);
        } catch (failure) {
          error = failure instanceof Error ? failure.message : String(failure);
          this.#log?.error({ err: failure, task: task.name }, 'scheduled task failed');
        }
        await this.#db
          .update(scheduledTasks)
          .set({ lastFinishedAt: this.#clock.now(), lastError: error, lockedBy: null, lockedAt: null })
          .where(and(eq(scheduledTasks.name, task.name), eq(scheduledTasks.lockedBy, claimed.holder)));
      } finally {
        this.#identity.finished(SCOPE, task.name);
      }
    }
    return ran;
  }

  start(intervalMs: number): void {
    if (this.#timer || intervalMs <= 0) return;
    const loop = () => {
      void this.tick().catch((error: unknown) => this.#log?.error({ err: error }, 'scheduler tick failed'));
    };
    loop();
    this.#timer = setInterval(loop, intervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }

  /** When each task runs next (for operators and tests). */
  async schedule(): Promise<{ name: string; nextRunAt: Date; lastError: string | null }[]> {
    return this.#db
      .select({ name: scheduledTasks.name, nextRunAt: scheduledTasks.nextRunAt, lastError: scheduledTasks.lastError })
      .from(scheduledTasks)
      .orderBy(sql`${scheduledTasks.name}`);
  }
}
