import { eq, sql } from 'drizzle-orm';
import { pecJobs, type Db, type DbOrTx } from '@pec-partner/db';
import type { Clock } from '../clock.ts';

export interface QueuedJob {
  kind: string;
  payload: Record<string, unknown>;
  /** Identifies the step: queueing the same step twice keeps one job. */
  dedupeKey: string;
  runAt: Date;
}

/**
 * Queues jobs in the caller's transaction: the step is due exactly when the state that needs it commits. Returns
 * the dedupe keys of the jobs it queued; the others were queued before.
 */
export async function enqueue(tx: DbOrTx, clock: Clock, jobs: QueuedJob[]): Promise<string[]> {
  if (jobs.length === 0) return [];
  const now = clock.now();
  const queued = await tx
    .insert(pecJobs)
    .values(jobs.map((job) => ({ ...job, createdAt: now })))
    .onConflictDoNothing({ target: pecJobs.dedupeKey })
    .returning({ dedupeKey: pecJobs.dedupeKey });
  return queued.map((job) => job.dedupeKey);
}

interface ClaimedJob {
  id: number;
  kind: string;
  payload: Record<string, unknown>;
  attempts: number;
  dedupeKey: string;
}

export type JobHandler = (payload: Record<string, unknown>, job: { id: number; attempts: number; dedupeKey: string }) => Promise<void>;

const LEASE_MS = 5 * 60_000;
const MAX_BACKOFF_MS = 60 * 60_000;

/**
 * Claims and runs due jobs. A claim takes a lease (locked_until) in one statement with FOR UPDATE SKIP LOCKED,
 * so several workers never take the same job; a worker that dies leaves a lease that expires and the job runs
 * again, which is why every handler must be idempotent.
 */
export class JobQueue {
  readonly #db: Db;
  readonly #clock: Clock;
  readonly #handlers: Map<string, JobHandler>;
  readonly #onError: (error: unknown, kind: string) => void;

  constructor(db: Db, clock: Clock, handlers: Record<string, JobHandler>, onError: (error: unknown, kind: string) => void) {
    this.#db = db;
    this.#clock = clock;
    this.#handlers = new Map(Object.entries(handlers));
    this.#onError = onError;
  }

  /**
   * Claims one due job in one statement. Acceptance receipts go first: the sender is waiting for them, and under
   * a burst they would otherwise queue behind every envelope and receipt of the messages before.
   */
  async #claim(): Promise<ClaimedJob | null> {
    const now = this.#clock.now();
    const rows = await this.#db.execute<{ id: string | number; kind: string; payload: Record<string, unknown>; attempts: number; dedupe_key: string }>(sql`
      update ${pecJobs} set locked_until = ${new Date(now.getTime() + LEASE_MS).toISOString()}::timestamptz, attempts = attempts + 1
      where id = (
        select id from ${pecJobs}
        where done_at is null and run_at <= ${now.toISOString()}::timestamptz and (locked_until is null or locked_until <= ${now.toISOString()}::timestamptz)
        order by (kind = 'acceptance') desc, run_at, id
        limit 1
        for update skip locked
      )
      returning id, kind, payload, attempts, dedupe_key`);
    const row = rows[0];
    return row ? { id: Number(row.id), kind: row.kind, payload: row.payload, attempts: row.attempts, dedupeKey: row.dedupe_key } : null;
  }

  /** Runs one due job; false when there was none. */
  async runOne(): Promise<boolean> {
    const job = await this.#claim();
    if (!job) return false;
    const handler = this.#handlers.get(job.kind);
    try {
      if (!handler) throw new Error(`no handler for job kind '${job.kind}'`);
      await handler(job.payload, { id: job.id, attempts: job.attempts, dedupeKey: job.dedupeKey });
      await this.#db.update(pecJobs).set({ doneAt: this.#clock.now(), lockedUntil: null, lastError: null }).where(eq(pecJobs.id, job.id));
    } catch (error) {
      this.#onError(error, job.kind);
      // Exponential backoff: 2 s, 4 s, 8 s… capped at an hour.
      const backoff = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** Math.min(job.attempts, 20));
      await this.#db
        .update(pecJobs)
        .set({ lockedUntil: null, runAt: new Date(this.#clock.now().getTime() + backoff), lastError: error instanceof Error ? error.message : String(error) })
        .where(eq(pecJobs.id, job.id));
    }
    return true;
  }

  /** Runs due jobs until none is left (jobs queued by jobs included); returns how many ran. */
  async drain(limit = 10_000): Promise<number> {
    let ran = 0;
    while (ran < limit && (await this.runOne())) ran++;
    return ran;
  }
}
