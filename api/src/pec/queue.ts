import { and, eq, sql } from 'drizzle-orm';
import { pecJobs, workerIdentity, type Db, type DbOrTx, type WorkerIdentity } from '@pec-partner/db';
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
  /** The incarnation key the lease was taken under: the job's final write is conditional on still holding it. */
  holder: number;
}

export type JobHandler = (payload: Record<string, unknown>, job: { id: number; attempts: number; dedupeKey: string }) => Promise<void>;

const LEASE_MS = 5 * 60_000;
const MAX_BACKOFF_MS = 60 * 60_000;
const SCOPE = 'pec_jobs';

/**
 * Claims and runs due jobs. A claim takes a lease in one statement with FOR UPDATE SKIP LOCKED, so several workers
 * never take the same job. The lease names its holder (this process's incarnation, see WorkerIdentity): a job
 * whose holder died, or a job of ours that nothing here runs any more (its run ended while the database was
 * down), is taken again at once; otherwise the lease lasts 5 minutes, the longest a job may run. Every handler
 * must be idempotent, since a job cut off mid-way runs again; and a run whose lease was taken over meanwhile
 * records nothing (its final write is conditional on the lease), so it cannot undo the newer run.
 */
export class JobQueue {
  readonly #db: Db;
  readonly #clock: Clock;
  readonly #handlers: Map<string, JobHandler>;
  readonly #onError: (error: unknown, kind: string) => void;
  readonly #identity: WorkerIdentity;

  constructor(db: Db, clock: Clock, handlers: Record<string, JobHandler>, onError: (error: unknown, kind: string) => void) {
    this.#db = db;
    this.#clock = clock;
    this.#handlers = new Map(Object.entries(handlers));
    this.#onError = onError;
    this.#identity = workerIdentity(db);
  }

  /**
   * Claims one due job in one statement. Acceptance receipts go first: the sender is waiting for them, and under
   * a burst they would otherwise queue behind every envelope and receipt of the messages before.
   */
  #claim(): Promise<ClaimedJob | null> {
    return this.#identity.claim(SCOPE, async (lease) => {
      const now = this.#clock.now().toISOString();
      const gone = lease.holderGone({ id: sql`id`, lockedBy: sql`locked_by`, lockedAt: sql`locked_at` });
      const rows = await this.#db.execute<{ id: string | number; kind: string; payload: Record<string, unknown>; attempts: number; dedupe_key: string }>(sql`
        update ${pecJobs}
        set locked_until = ${new Date(this.#clock.now().getTime() + LEASE_MS).toISOString()}::timestamptz, locked_by = ${lease.holder},
          locked_at = now(), attempts = attempts + 1
        where id = (
          select id from ${pecJobs}
          where done_at is null and run_at <= ${now}::timestamptz
            and (locked_until is null or locked_until <= ${now}::timestamptz or ${gone})
          order by (kind = 'acceptance') desc, run_at, id
          limit 1
          for update skip locked
        )
        returning id, kind, payload, attempts, dedupe_key`);
      const row = rows[0];
      return row ? { id: Number(row.id), kind: row.kind, payload: row.payload, attempts: row.attempts, dedupeKey: row.dedupe_key } : null;
    });
  }

  /** Only the run that holds the lease records its outcome. */
  #stillHeld(job: ClaimedJob) {
    return and(eq(pecJobs.id, job.id), eq(pecJobs.lockedBy, job.holder), eq(pecJobs.attempts, job.attempts));
  }

  /** Runs one due job; false when there was none. */
  async runOne(): Promise<boolean> {
    const job = await this.#claim();
    if (!job) return false;
    const handler = this.#handlers.get(job.kind);
    try {
      if (!handler) throw new Error(`no handler for job kind '${job.kind}'`);
      await handler(job.payload, { id: job.id, attempts: job.attempts, dedupeKey: job.dedupeKey });
      await this.#db
        .update(pecJobs)
        .set({ doneAt: this.#clock.now(), lockedUntil: null, lockedBy: null, lockedAt: null, lastError: null })
        .where(this.#stillHeld(job));
    } catch (error) {
      this.#onError(error, job.kind);
      // Exponential backoff: 2 s, 4 s, 8 s… capped at an hour.
      const backoff = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** Math.min(job.attempts, 20));
      await this.#db
        .update(pecJobs)
        .set({
          lockedUntil: null,
          lockedBy: null,
          lockedAt: null,
          runAt: new Date(this.#clock.now().getTime() + backoff),
          lastError: error instanceof Error ? error.message : String(error),
        })
        .where(this.#stillHeld(job));
    } finally {
      // Recorded or not (the database may be down): from now on a lease left on the job is a dead one.
      this.#identity.finished(SCOPE, job.id);
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
