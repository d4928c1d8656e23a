import { and, eq, lte, sql } from 'drizzle-orm';
import type { FastifyBaseLogger } from 'fastify';
import { scheduledTasks, type Db } from '@pec-partner/db';
import type { Clock } from '../clock.ts';

export interface Task {
  name: string;
  intervalMs: number;
  /** Must be idempotent: a crash mid-run means the next run repeats part of the work. */
  run(now: Date): Promise<void>;
}

export const DAY_MS = 86_400_000;

/**
 * Runs periodic tasks on the injectable clock, durably: when each task is next due lives in PostgreSQL, and a
 * process claims a run by moving that time forward in one UPDATE, so several processes never run it twice.
 * Tests call tick() after moving the clock; servers call start().
 */
export class Scheduler {
  readonly #db: Db;
  readonly #clock: Clock;
  readonly #tasks: Task[];
  readonly #log: FastifyBaseLogger | undefined;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<string[]> | undefined;

  constructor(db: Db, clock: Clock, tasks: Task[], log?: FastifyBaseLogger) {
    this.#db = db;
    this.#clock = clock;
    this.#tasks = tasks;
    this.#log = log;
  }

  /** Runs every due task once; returns the names of those this process ran. */
  tick(): Promise<string[]> {
    // Overlapping ticks in one process would only contend for the same rows: chain them instead.
    const previous = this.#running ?? Promise.resolve([]);
    const next = previous.then(() => this.#runDue());
    this.#running = next.finally(() => {
      if (this.#running === next) this.#running = undefined;
    }) as Promise<string[]>;
    return next;
  }

  async #runDue(): Promise<string[]> {
    const ran: string[] = [];
    for (const task of this.#tasks) {
      const now = this.#clock.now();
      // First sight of a task: due at once.
      await this.#db.insert(scheduledTasks).values({ name: task.name, nextRunAt: now }).onConflictDoNothing();
      const claimed = await this.#db
        .update(scheduledTasks)
        .set({ nextRunAt: new Date(now.getTime() + task.intervalMs), lastStartedAt: now })
        .where(and(eq(scheduledTasks.name, task.name), lte(scheduledTasks.nextRunAt, now)))
        .returning({ name: scheduledTasks.name });
      if (claimed.length === 0) continue;
      let error: string | null = null;
      try {
        await task.run(now);
        ran.push(task.name);
      } catch (failure) {
        error = failure instanceof Error ? failure.message : String(failure);
        this.#log?.error({ err: failure, task: task.name }, 'scheduled task failed');
      }
      await this.#db
        .update(scheduledTasks)
        .set({ lastFinishedAt: this.#clock.now(), lastError: error })
        .where(eq(scheduledTasks.name, task.name));
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
    await this.#running?.catch(() => {});
  }

  /** When each task runs next (for operators and tests). */
  async schedule(): Promise<{ name: string; nextRunAt: Date; lastError: string | null }[]> {
    return this.#db
      .select({ name: scheduledTasks.name, nextRunAt: scheduledTasks.nextRunAt, lastError: scheduledTasks.lastError })
      .from(scheduledTasks)
      .orderBy(sql`${scheduledTasks.name}`);
  }
}
