import { sql } from 'drizzle-orm';
import { boolean, check, index, integer, jsonb, pgTable, primaryKey, text, timestamp, uniqueIndex } from 'drizzle-orm/pg-core';
import { customers } from './customers.ts';
import { mailboxes } from './mailboxes.ts';
import { partners } from './partners.ts';
import { bytea } from './pec.ts';

const at = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });

export const addonKinds = ['extra_inbox_gb', 'extra_archive_gb', 'delegation_seat', 'supervisor', 'branding', 'newsletter'] as const;
export type AddonKind = (typeof addonKinds)[number];
export const addonStatuses = ['scheduled', 'active', 'cancelled'] as const;
export type AddonStatus = (typeof addonStatuses)[number];

/**
 * An add-on bought for a mailbox: charged from credit pro rata to the mailbox term, renewed with it, cancellable
 * now or at renewal. `quantity` counts GB for space, seats for delegation, 1 otherwise. A purchase effective at
 * renewal is `scheduled` until the mailbox renews.
 */
export const mailboxAddons = pgTable(
  'mailbox_addons',
  {
    id: text('id').primaryKey(),
    partnerId: text('partner_id').notNull().references(() => partners.id),
    mailboxId: text('mailbox_id').notNull().references(() => mailboxes.id),
    kind: text('kind', { enum: addonKinds }).notNull(),
    quantity: integer('quantity').notNull(),
    status: text('status', { enum: addonStatuses }).notNull(),
    /** Renewed with the mailbox unless cancelled for the renewal. */
    cancelAtRenewal: boolean('cancel_at_renewal').notNull().default(false),
    startsAt: at('starts_at'),
    cancelledAt: at('cancelled_at'),
    createdAt: at('created_at').notNull(),
    updatedAt: at('updated_at').notNull(),
  },
  (t) => [
    index('mailbox_addons_mailbox_idx').on(t.mailboxId, t.id),
    index('mailbox_addons_partner_idx').on(t.partnerId, t.id),
    check('mailbox_addons_quantity_check', sql`${t.quantity} >= 1`),
  ],
);

export const delegationModes = ['send_only', 'read_only', 'read_write', 'full_access'] as const;
export type DelegationMode = (typeof delegationModes)[number];
export const delegationStatuses = ['invited', 'active', 'revoked', 'expired'] as const;
export type DelegationStatus = (typeof delegationStatuses)[number];

/** A collaborator's own sign-in: one e-mail address and password, whatever mailboxes it was delegated. */
export const delegateAccounts = pgTable(
  'delegate_accounts',
  {
    id: text('id').primaryKey(),
    email: text('email').notNull(),
    passwordHash: text('password_hash').notNull(),
    createdAt: at('created_at').notNull(),
    updatedAt: at('updated_at').notNull(),
  },
  (t) => [uniqueIndex('delegate_accounts_email_key').on(t.email)],
);

/** Access of one collaborator to one mailbox, in one mode; starts as an invitation accepted with a token. */
export const delegations = pgTable(
  'delegations',
  {
    id: text('id').primaryKey(),
    partnerId: text('partner_id').notNull().references(() => partners.id),
    mailboxId: text('mailbox_id').notNull().references(() => mailboxes.id),
    email: text('email').notNull(),
    name: text('name'),
    mode: text('mode', { enum: delegationModes }).notNull(),
    status: text('status', { enum: delegationStatuses }).notNull(),
    /** SHA-256 of the invitation token (the token itself is shown once). */
    inviteTokenHash: text('invite_token_hash'),
    inviteExpiresAt: at('invite_expires_at').notNull(),
    accountId: text('account_id').references(() => delegateAccounts.id),
    acceptedAt: at('accepted_at'),
    revokedAt: at('revoked_at'),
    createdAt: at('created_at').notNull(),
    updatedAt: at('updated_at').notNull(),
  },
  (t) => [
    index('delegations_mailbox_idx').on(t.mailboxId, t.id),
    // One live delegation per collaborator and mailbox.
    uniqueIndex('delegations_live_key').on(t.mailboxId, t.email).where(sql`${t.status} in ('invited', 'active')`),
    uniqueIndex('delegations_token_key').on(t.inviteTokenHash),
  ],
);

/** A supervisor (e.g. an accountancy firm) that manages several mailboxes of the partner's customers. */
export const supervisors = pgTable(
  'supervisors',
  {
    id: text('id').primaryKey(),
    partnerId: text('partner_id').notNull().references(() => partners.id),
    /** The mailbox whose supervisor add-on pays for the console. */
    mailboxId: text('mailbox_id').notNull().references(() => mailboxes.id),
    name: text('name').notNull(),
    email: text('email').notNull(),
    createdAt: at('created_at').notNull(),
    updatedAt: at('updated_at').notNull(),
  },
  (t) => [index('supervisors_partner_idx').on(t.partnerId, t.id)],
);

export const supervisionStatuses = ['invited', 'active', 'removed', 'declined'] as const;
export type SupervisionStatus = (typeof supervisionStatuses)[number];

/** A mailbox in a supervisor's console: added directly by the partner, or by an invitation its holder accepts. */
export const supervisedMailboxes = pgTable(
  'supervised_mailboxes',
  {
    supervisorId: text('supervisor_id').notNull().references(() => supervisors.id),
    mailboxId: text('mailbox_id').notNull().references(() => mailboxes.id),
    status: text('status', { enum: supervisionStatuses }).notNull(),
    inviteTokenHash: text('invite_token_hash'),
    inviteExpiresAt: at('invite_expires_at'),
    addedAt: at('added_at').notNull(),
    acceptedAt: at('accepted_at'),
    removedAt: at('removed_at'),
  },
  (t) => [primaryKey({ columns: [t.supervisorId, t.mailboxId] }), uniqueIndex('supervised_mailboxes_token_key').on(t.inviteTokenHash)],
);

/** Single-use sign-in links of a supervisor into one supervised mailbox (the JWT's `jti`). */
export const supervisorSignIns = pgTable('supervisor_sign_ins', {
  jti: text('jti').primaryKey(),
  supervisorId: text('supervisor_id').notNull().references(() => supervisors.id),
  mailboxId: text('mailbox_id').notNull().references(() => mailboxes.id),
  expiresAt: at('expires_at').notNull(),
  usedAt: at('used_at'),
});

/** Small Business branding of one customer's login page and private area. */
export const brandings = pgTable(
  'brandings',
  {
    customerId: text('customer_id').primaryKey().references(() => customers.id),
    partnerId: text('partner_id').notNull().references(() => partners.id),
    /** Public name in `/brand/{slug}/login`. */
    slug: text('slug').notNull(),
    colors: jsonb('colors').notNull(),
    texts: jsonb('texts').notNull(),
    logo: bytea('logo'),
    logoContentType: text('logo_content_type'),
    updatedAt: at('updated_at').notNull(),
  },
  (t) => [uniqueIndex('brandings_slug_key').on(t.slug)],
);

/** Newsletter address book of a mailbox with the newsletter add-on. */
export const newsletterContacts = pgTable(
  'newsletter_contacts',
  {
    id: text('id').primaryKey(),
    mailboxId: text('mailbox_id').notNull().references(() => mailboxes.id),
    email: text('email').notNull(),
    name: text('name'),
    consent: boolean('consent').notNull(),
    /** Random token in the contact's unsubscribe link. */
    unsubscribeToken: text('unsubscribe_token').notNull(),
    unsubscribedAt: at('unsubscribed_at'),
    createdAt: at('created_at').notNull(),
    updatedAt: at('updated_at').notNull(),
  },
  (t) => [
    uniqueIndex('newsletter_contacts_email_key').on(t.mailboxId, t.email),
    uniqueIndex('newsletter_contacts_unsubscribe_key').on(t.unsubscribeToken),
  ],
);

export const newsletterLists = pgTable(
  'newsletter_lists',
  {
    id: text('id').primaryKey(),
    mailboxId: text('mailbox_id').notNull().references(() => mailboxes.id),
    name: text('name').notNull(),
    createdAt: at('created_at').notNull(),
  },
  (t) => [uniqueIndex('newsletter_lists_name_key').on(t.mailboxId, t.name)],
);

export const newsletterListMembers = pgTable(
  'newsletter_list_members',
  {
    listId: text('list_id').notNull().references(() => newsletterLists.id, { onDelete: 'cascade' }),
    contactId: text('contact_id').notNull().references(() => newsletterContacts.id, { onDelete: 'cascade' }),
  },
  (t) => [primaryKey({ columns: [t.listId, t.contactId] })],
);

export const campaignStatuses = ['draft', 'scheduled', 'sending', 'sent', 'cancelled'] as const;
export type CampaignStatus = (typeof campaignStatuses)[number];

export const newsletterCampaigns = pgTable(
  'newsletter_campaigns',
  {
    id: text('id').primaryKey(),
    mailboxId: text('mailbox_id').notNull().references(() => mailboxes.id),
    listId: text('list_id').notNull().references(() => newsletterLists.id),
    subject: text('subject').notNull(),
    html: text('html').notNull(),
    text: text('text').notNull(),
    status: text('status', { enum: campaignStatuses }).notNull(),
    scheduledAt: at('scheduled_at'),
    startedAt: at('started_at'),
    finishedAt: at('finished_at'),
    createdAt: at('created_at').notNull(),
    updatedAt: at('updated_at').notNull(),
  },
  (t) => [index('newsletter_campaigns_mailbox_idx').on(t.mailboxId, t.id)],
);

export const campaignDeliveryStatuses = ['queued', 'sent', 'failed'] as const;

/** One recipient of a campaign: its outcome and the SMTP server's answer. */
export const newsletterDeliveries = pgTable(
  'newsletter_deliveries',
  {
    campaignId: text('campaign_id').notNull().references(() => newsletterCampaigns.id),
    contactId: text('contact_id').notNull().references(() => newsletterContacts.id),
    email: text('email').notNull(),
    status: text('status', { enum: campaignDeliveryStatuses }).notNull(),
    smtpResponse: text('smtp_response'),
    attempts: integer('attempts').notNull().default(0),
    updatedAt: at('updated_at').notNull(),
  },
  (t) => [primaryKey({ columns: [t.campaignId, t.contactId] }), index('newsletter_deliveries_status_idx').on(t.campaignId, t.status)],
);
