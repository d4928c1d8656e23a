import { sql } from 'drizzle-orm';
import { check, index, integer, jsonb, pgTable, primaryKey, text, timestamp } from 'drizzle-orm/pg-core';
import { operatorApiKeys } from './operator.ts';

/** The list every partner without an assignment pays: seeded at start-up from PRICES_FILE (or the defaults). */
export const DEFAULT_PRICE_LIST_ID = 'pl_default';

/**
 * A named price list. Its prices live in versions; a partner is assigned one list (`partners.price_list_id`,
 * null = the default list).
 */
export const priceLists = pgTable('price_lists', {
  id: text('id').primaryKey(),
  name: text('name').notNull(),
  /** The operator key that created it; null: the system (the default list) or the CLI. */
  createdBy: text('created_by').references(() => operatorApiKeys.id),
  createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull(),
});

/**
 * One immutable version of a list: the whole price document (the `PriceListConfig` shape, validated by the API)
 * and the instant it takes effect. What applies to a charge is the list's version with the latest
 * `effective_from` at or before the charge (ties: the higher version). Append-only: a trigger (hand-written in the
 * migration) refuses UPDATE, DELETE and TRUNCATE.
 */
export const priceListVersions = pgTable(
  'price_list_versions',
  {
    priceListId: text('price_list_id').notNull().references(() => priceLists.id),
    version: integer('version').notNull(),
    prices: jsonb('prices').$type<Record<string, unknown>>().notNull(),
    effectiveFrom: timestamp('effective_from', { withTimezone: true, mode: 'date' }).notNull(),
    /** The operator key that recorded it; null: the system (PRICES_FILE at start-up) or the CLI. */
    createdBy: text('created_by').references(() => operatorApiKeys.id),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.priceListId, t.version] }),
    index('price_list_versions_effective_idx').on(t.priceListId, t.effectiveFrom),
    check('price_list_versions_version_check', sql`${t.version} >= 1`),
    check('price_list_versions_prices_check', sql`jsonb_typeof(${t.prices}) = 'object'`),
  ],
);
