import { sql } from 'drizzle-orm';
import { boolean, check, index, jsonb, pgTable, text, timestamp, uniqueIndex, type AnyPgColumn } from 'drizzle-orm/pg-core';
import { priceLists } from './prices.ts';

export const partnerStatuses = ['active', 'suspended'] as const;
export type PartnerStatus = (typeof partnerStatuses)[number];

/**
 * A partner (reseller) is the tenant: every other partner-owned row points here. An operator may suspend it:
 * its API keys and tokens are then refused (403 `partner_suspended`), its customers' mailboxes keep working.
 *
 * Test mode (the sandbox) is a world of its own: each live partner may have one test twin, a partner row with
 * `livemode = false` pointing at it. `sk_test_` keys belong to the twin, so every partner-scoped query (and the
 * tenancy rules every route already follows) keeps the two worlds apart without a second filter.
 */
export const partners = pgTable(
  'partners',
  {
    id: text('id').primaryKey(),
    name: text('name').notNull(),
    status: text('status', { enum: partnerStatuses }).notNull().default('active'),
    livemode: boolean('livemode').notNull().default(true),
    /** On a test twin: the live partner whose sandbox it is (who suspends the live partner suspends this too). */
    livePartnerId: text('live_partner_id').references((): AnyPgColumn => partners.id),
    suspendedAt: timestamp('suspended_at', { withTimezone: true, mode: 'date' }),
    suspensionReason: text('suspension_reason'),
    /** The price list this partner pays (an operator assigns it); null: the default list (`pl_default`). */
    priceListId: text('price_list_id').references(() => priceLists.id),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull(),
  },
  (t) => [
    check('partners_status_check', sql`${t.status} in ('active','suspended')`),
    check('partners_suspension_check', sql`(${t.status} = 'suspended') = (${t.suspendedAt} is not null)`),
    index('partners_price_list_idx').on(t.priceListId),
    check('partners_test_twin_check', sql`${t.livemode} = (${t.livePartnerId} is null)`),
    uniqueIndex('partners_test_twin_key').on(t.livePartnerId),
  ],
);

/**
 * Secret API keys. Only the SHA-256 of the secret is stored: keys are 190 bits of randomness, so a fast hash
 * is enough and lets every request authenticate with one indexed lookup.
 */
export const apiKeys = pgTable(
  'api_keys',
  {
    id: text('id').primaryKey(),
    partnerId: text('partner_id').notNull().references(() => partners.id),
    name: text('name').notNull(),
    secretHash: text('secret_hash').notNull(),
    /** The first characters of the secret, safe to show so a human can tell keys apart. */
    secretPrefix: text('secret_prefix').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull(),
    lastUsedAt: timestamp('last_used_at', { withTimezone: true, mode: 'date' }),
    revokedAt: timestamp('revoked_at', { withTimezone: true, mode: 'date' }),
  },
  (t) => [uniqueIndex('api_keys_secret_hash_key').on(t.secretHash), index('api_keys_partner_idx').on(t.partnerId, t.id)],
);

/** Asymmetric keys that sign OAuth access tokens; persisted so tokens survive restarts and work across processes. */
export const jwtSigningKeys = pgTable('jwt_signing_keys', {
  kid: text('kid').primaryKey(),
  alg: text('alg').notNull(),
  privateJwk: jsonb('private_jwk').notNull(),
  publicJwk: jsonb('public_jwk').notNull(),
  createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull().default(sql`now()`),
});
