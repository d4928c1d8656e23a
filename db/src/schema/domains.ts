import { sql } from 'drizzle-orm';
import { boolean, check, index, integer, jsonb, pgTable, text, timestamp, uniqueIndex } from 'drizzle-orm/pg-core';
import { customers } from './customers.ts';
import { partners } from './partners.ts';

export const domainStatuses = ['pending_verification', 'certified', 'degraded', 'decertified', 'withdrawn', 'cancelled'] as const;
export type DomainStatus = (typeof domainStatuses)[number];

/** A customer's own domain certified for PEC (the provider's own domains come from configuration). */
export const domains = pgTable(
  'domains',
  {
    id: text('id').primaryKey(),
    partnerId: text('partner_id').notNull().references(() => partners.id),
    /** The partner's world (false: the sandbox), copied from it by a trigger at insert: global names are unique per world. */
    livemode: boolean('livemode').notNull().default(true),
    customerId: text('customer_id').notNull().references(() => customers.id, { onDelete: 'restrict' }),
    /** ASCII (punycode) form, lower case: what DNS and uniqueness use. */
    name: text('name').notNull(),
    unicodeName: text('unicode_name').notNull(),
    level: integer('level').notNull(),
    status: text('status', { enum: domainStatuses }).notNull(),
    verificationToken: text('verification_token').notNull(),
    /** The last DNS check: per-record results as the API shows them. */
    lastCheck: jsonb('last_check'),
    lastCheckedAt: timestamp('last_checked_at', { withTimezone: true, mode: 'date' }),
    certifiedAt: timestamp('certified_at', { withTimezone: true, mode: 'date' }),
    degradedAt: timestamp('degraded_at', { withTimezone: true, mode: 'date' }),
    decertifiedAt: timestamp('decertified_at', { withTimezone: true, mode: 'date' }),
    withdrawnAt: timestamp('withdrawn_at', { withTimezone: true, mode: 'date' }),
    cancelAt: timestamp('cancel_at', { withTimezone: true, mode: 'date' }),
    cancelledAt: timestamp('cancelled_at', { withTimezone: true, mode: 'date' }),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull(),
    updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull(),
  },
  (t) => [
    index('domains_partner_idx').on(t.partnerId, t.id),
    // One live certification per name, across all partners.
    uniqueIndex('domains_certified_name_key').on(t.name, t.livemode).where(sql`${t.status} in ('certified', 'degraded')`),
    // One open request per name and partner.
    uniqueIndex('domains_pending_name_key').on(t.partnerId, t.name).where(sql`${t.status} = 'pending_verification'`),
    check('domains_level_check', sql`${t.level} in (2, 3)`),
    check('domains_status_check', sql`${t.status} in ('pending_verification','certified','degraded','decertified','withdrawn','cancelled')`),
  ],
);
