import { integer, pgTable, text, timestamp } from 'drizzle-orm/pg-core';

/**
 * Periodic work (daily renewals, DNS re-checks…). A process claims a due task by moving its next_run_at
 * forward in the same statement that finds it, so with several processes each run happens once. A run records
 * its holder (locked_by, locked_at) until it ends: a run cut off by its process's death is started again at once
 * by another process instead of waiting for the next interval.
 */
export const scheduledTasks = pgTable('scheduled_tasks', {
  name: text('name').primaryKey(),
  nextRunAt: timestamp('next_run_at', { withTimezone: true, mode: 'date' }).notNull(),
  lastStartedAt: timestamp('last_started_at', { withTimezone: true, mode: 'date' }),
  lastFinishedAt: timestamp('last_finished_at', { withTimezone: true, mode: 'date' }),
  lastError: text('last_error'),
  /** The worker incarnation running the task now and when (database time) it started; see WorkerIdentity. */
  lockedBy: integer('locked_by'),
  lockedAt: timestamp('locked_at', { withTimezone: true, mode: 'date' }),
});
