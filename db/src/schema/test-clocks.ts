import { sql } from 'drizzle-orm';
import { check, pgTable, text, timestamp, uniqueIndex } from 'drizzle-orm/pg-core';
import { partners } from './partners.ts';

export const testClockStatuses = ['ready', 'advancing'] as const;
export type TestClockStatus = (typeof testClockStatuses)[number];

/**
 * A test clock freezes the time of one test world (a partner's test twin, `partners.livemode = false`): while it
 * exists, that world's API requests and the scheduled maintenance of its objects happen at `frozen_time`, and the
 * global scheduled runs leave the world alone. At most one per world (the unique index on `partner_id` is also
 * what the per-request lookup uses). While `advancing`, `advancing_to` is the target and `frozen_time` moves to it
 * step by step, each step committed: a walk cut off by a crash resumes from the last step.
 */
export const testClocks = pgTable(
  'test_clocks',
  {
    id: text('id').primaryKey(),
    partnerId: text('partner_id').notNull().references(() => partners.id),
    name: text('name'),
    frozenTime: timestamp('frozen_time', { withTimezone: true, mode: 'date' }).notNull(),
    status: text('status', { enum: testClockStatuses }).notNull().default('ready'),
    advancingTo: timestamp('advancing_to', { withTimezone: true, mode: 'date' }),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull(),
    updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull(),
  },
  (t) => [
    uniqueIndex('test_clocks_partner_key').on(t.partnerId),
    check('test_clocks_status_check', sql`${t.status} in ('ready', 'advancing')`),
    check('test_clocks_advancing_check', sql`(${t.status} = 'advancing') = (${t.advancingTo} is not null)`),
  ],
);
