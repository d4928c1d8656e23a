import { sql } from 'drizzle-orm';
import { check, integer, jsonb, pgTable, primaryKey, text, timestamp } from 'drizzle-orm/pg-core';
import { operatorApiKeys } from './operator.ts';
import { partners } from './partners.ts';

/**
 * Idempotency keys, scoped per owner: a partner (its API keys, mailbox holders under a prefix of the key) or an
 * operator key. Exactly one of `partner_id` and `operator_key_id` is set; `owner` is whichever it is (generated),
 * and keys are unique per owner. A row is inserted before the request runs (state in_progress), which
 * is what stops two concurrent duplicates from both executing; the response is stored when it completes.
 * `claimed_by` names the request holding an in_progress claim and `claimed_at` is when it last showed it was
 * alive: a claim left behind by a process that died can be taken over once that is old enough.
 */
export const idempotencyKeys = pgTable(
  'idempotency_keys',
  {
    partnerId: text('partner_id').references(() => partners.id),
    operatorKeyId: text('operator_key_id').references(() => operatorApiKeys.id),
    owner: text('owner').notNull().generatedAlwaysAs(sql`coalesce(partner_id, operator_key_id)`),
    key: text('key').notNull(),
    requestHash: text('request_hash').notNull(),
    method: text('method').notNull(),
    path: text('path').notNull(),
    state: text('state', { enum: ['in_progress', 'completed'] }).notNull(),
    responseStatus: integer('response_status'),
    responseBody: text('response_body'),
    responseHeaders: jsonb('response_headers').$type<Record<string, string>>(),
    claimedBy: text('claimed_by'),
    claimedAt: timestamp('claimed_at', { withTimezone: true, mode: 'date' }).notNull(),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull(),
    expiresAt: timestamp('expires_at', { withTimezone: true, mode: 'date' }).notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.owner, t.key] }),
    check('idempotency_owner_check', sql`(${t.partnerId} is null) <> (${t.operatorKeyId} is null)`),
    check('idempotency_state_check', sql`${t.state} in ('in_progress','completed')`),
  ],
);
