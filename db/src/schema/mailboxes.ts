import { sql } from 'drizzle-orm';
import { bigint, boolean, check, index, integer, pgTable, text, timestamp, uniqueIndex } from 'drizzle-orm/pg-core';
import { customers } from './customers.ts';
import { domains } from './domains.ts';
import { partners } from './partners.ts';

export const mailboxPlans = ['standard', 'pro', 'premium'] as const;
export type MailboxPlan = (typeof mailboxPlans)[number];
export const mailboxStatuses = ['pending_identification', 'active', 'suspended', 'expired', 'cancelled'] as const;
export type MailboxStatus = (typeof mailboxStatuses)[number];
export const suspensionReasons = ['requested', 'insufficient_credit', 'domain_decertified'] as const;
export type SuspensionReason = (typeof suspensionReasons)[number];
export const renewalModes = ['auto', 'manual'] as const;
export type RenewalMode = (typeof renewalModes)[number];

export const mailboxes = pgTable(
  'mailboxes',
  {
    id: text('id').primaryKey(),
    partnerId: text('partner_id').notNull().references(() => partners.id),
    /** The partner's world (false: the sandbox), copied from it by a trigger at insert: global names are unique per world. */
    livemode: boolean('livemode').notNull().default(true),
    customerId: text('customer_id').notNull().references(() => customers.id, { onDelete: 'restrict' }),
    /** Null on the provider's own domains. */
    domainId: text('domain_id').references(() => domains.id, { onDelete: 'restrict' }),
    domainName: text('domain_name').notNull(),
    localPart: text('local_part').notNull(),
    /** Addresses are never reassigned: a PEC address names one holder for good. */
    address: text('address').notNull(),
    plan: text('plan', { enum: mailboxPlans }).notNull(),
    /** The plan that takes over at the next renewal, when a change was scheduled. */
    planAtRenewal: text('plan_at_renewal', { enum: mailboxPlans }),
    termYears: integer('term_years').notNull(),
    renewalMode: text('renewal_mode', { enum: renewalModes }).notNull(),
    status: text('status', { enum: mailboxStatuses }).notNull(),
    suspensionReason: text('suspension_reason', { enum: suspensionReasons }),
    passwordHash: text('password_hash').notNull(),
    passwordChangedAt: timestamp('password_changed_at', { withTimezone: true, mode: 'date' }).notNull(),
    inboxQuotaBytes: bigint('inbox_quota_bytes', { mode: 'number' }).notNull(),
    archiveQuotaBytes: bigint('archive_quota_bytes', { mode: 'number' }).notNull(),
    extraInboxBytes: bigint('extra_inbox_bytes', { mode: 'number' }).notNull().default(0),
    extraArchiveBytes: bigint('extra_archive_bytes', { mode: 'number' }).notNull().default(0),
    usedInboxBytes: bigint('used_inbox_bytes', { mode: 'number' }).notNull().default(0),
    usedArchiveBytes: bigint('used_archive_bytes', { mode: 'number' }).notNull().default(0),
    includedDelegates: integer('included_delegates').notNull(),
    requestedAt: timestamp('requested_at', { withTimezone: true, mode: 'date' }).notNull(),
    activatedAt: timestamp('activated_at', { withTimezone: true, mode: 'date' }),
    expiresAt: timestamp('expires_at', { withTimezone: true, mode: 'date' }),
    suspendedAt: timestamp('suspended_at', { withTimezone: true, mode: 'date' }),
    expiredAt: timestamp('expired_at', { withTimezone: true, mode: 'date' }),
    cancelAt: timestamp('cancel_at', { withTimezone: true, mode: 'date' }),
    cancelledAt: timestamp('cancelled_at', { withTimezone: true, mode: 'date' }),
    updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull(),
  },
  (t) => [
    uniqueIndex('mailboxes_address_key').on(t.address, t.livemode),
    index('mailboxes_partner_idx').on(t.partnerId, t.id),
    index('mailboxes_customer_idx').on(t.customerId),
    index('mailboxes_domain_idx').on(t.domainId),
    index('mailboxes_expires_idx').on(t.expiresAt),
    check('mailboxes_term_check', sql`${t.termYears} between 1 and 5`),
    check('mailboxes_address_check', sql`${t.address} = ${t.localPart} || '@' || ${t.domainName}`),
    check('mailboxes_active_dates_check', sql`${t.status} in ('pending_identification', 'cancelled') or (${t.activatedAt} is not null and ${t.expiresAt} is not null)`),
    check('mailboxes_suspension_check', sql`(${t.status} = 'suspended') = (${t.suspensionReason} is not null)`),
    check('mailboxes_usage_check', sql`${t.usedInboxBytes} >= 0 and ${t.usedArchiveBytes} >= 0`),
  ],
);

export const mailboxNoticeKinds = ['expires_in_30_days', 'expires_in_7_days', 'expires_in_1_day'] as const;
export type MailboxNoticeKind = (typeof mailboxNoticeKinds)[number];

/** Expiry notices, recorded once per mailbox, kind and expiry date (a renewal starts a new series). */
export const mailboxNotices = pgTable(
  'mailbox_notices',
  {
    id: text('id').primaryKey(),
    partnerId: text('partner_id').notNull().references(() => partners.id),
    mailboxId: text('mailbox_id').notNull().references(() => mailboxes.id),
    kind: text('kind', { enum: mailboxNoticeKinds }).notNull(),
    expiresAt: timestamp('expires_at', { withTimezone: true, mode: 'date' }).notNull(),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull(),
  },
  (t) => [uniqueIndex('mailbox_notices_once_key').on(t.mailboxId, t.kind, t.expiresAt)],
);
