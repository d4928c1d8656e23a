import { sql } from 'drizzle-orm';
import { bigserial, check, index, jsonb, pgTable, text, timestamp, uniqueIndex } from 'drizzle-orm/pg-core';

/** What an operator key may do: `read_only` reads; `billing` also moves money; `full` also manages partners and keys. */
export const operatorScopes = ['read_only', 'billing', 'full'] as const;
export type OperatorScope = (typeof operatorScopes)[number];

/**
 * The provider's staff (the operator principal), apart from partners: secret keys `sk_op_…`, stored as the
 * SHA-256 of the secret like partners' keys. The first one is made by the CLI, later ones through the API.
 */
export const operatorApiKeys = pgTable(
  'operator_api_keys',
  {
    id: text('id').primaryKey(),
    name: text('name').notNull(),
    scope: text('scope', { enum: operatorScopes }).notNull(),
    secretHash: text('secret_hash').notNull(),
    secretPrefix: text('secret_prefix').notNull(),
    /** The operator key that created this one; null when the CLI did. */
    createdBy: text('created_by'),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull(),
    lastUsedAt: timestamp('last_used_at', { withTimezone: true, mode: 'date' }),
    revokedAt: timestamp('revoked_at', { withTimezone: true, mode: 'date' }),
  },
  (t) => [
    uniqueIndex('operator_api_keys_secret_hash_key').on(t.secretHash),
    check('operator_api_keys_scope_check', sql`${t.scope} in ('read_only','billing','full')`),
  ],
);

export const auditActors = ['operator_key', 'cli', 'system'] as const;
export type AuditActor = (typeof auditActors)[number];

/**
 * Every operator action: who (the operator key, or the CLI / a start-up task), what, on what, why, when and in
 * which request. Append-only: a trigger (hand-written in the migration) refuses UPDATE and DELETE.
 */
export const operatorAuditLog = pgTable(
  'operator_audit_log',
  {
    id: text('id').primaryKey(),
    seq: bigserial('seq', { mode: 'number' }).notNull(),
    actor: text('actor', { enum: auditActors }).notNull(),
    operatorKeyId: text('operator_key_id').references(() => operatorApiKeys.id),
    action: text('action').notNull(),
    targetType: text('target_type').notNull(),
    targetId: text('target_id').notNull(),
    /** The partner the action concerns, when there is one (for filtering). */
    partnerId: text('partner_id'),
    reason: text('reason'),
    requestId: text('request_id'),
    details: jsonb('details').$type<Record<string, unknown>>().notNull().default({}),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull(),
  },
  (t) => [
    uniqueIndex('operator_audit_log_seq_key').on(t.seq),
    index('operator_audit_log_action_idx').on(t.action, t.seq),
    index('operator_audit_log_target_idx').on(t.targetId, t.seq),
    index('operator_audit_log_partner_idx').on(t.partnerId, t.seq),
    index('operator_audit_log_key_idx').on(t.operatorKeyId, t.seq),
    check('operator_audit_log_actor_check', sql`${t.actor} in ('operator_key','cli','system')`),
    check('operator_audit_log_actor_key_check', sql`(${t.actor} = 'operator_key') = (${t.operatorKeyId} is not null)`),
  ],
);
