import { sql } from 'drizzle-orm';
import { check, date, index, pgTable, text, timestamp } from 'drizzle-orm/pg-core';
import { customers } from './customers.ts';
import { partners } from './partners.ts';

export const identityDocumentTypes = ['identity_card', 'passport', 'driving_licence', 'residence_permit'] as const;
export type IdentityDocumentType = (typeof identityDocumentTypes)[number];

/**
 * Identity documents on file for a customer. A PEC mailbox may only be activated for an identified holder;
 * the newest document is the current one, older ones stay as history.
 */
export const identityDocuments = pgTable(
  'identity_documents',
  {
    id: text('id').primaryKey(),
    partnerId: text('partner_id').notNull().references(() => partners.id),
    customerId: text('customer_id').notNull().references(() => customers.id, { onDelete: 'cascade' }),
    documentType: text('document_type', { enum: identityDocumentTypes }).notNull(),
    number: text('number').notNull(),
    issuer: text('issuer').notNull(),
    issuedOn: date('issued_on', { mode: 'string' }),
    expiresOn: date('expires_on', { mode: 'string' }).notNull(),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull(),
  },
  (t) => [
    index('identity_documents_customer_idx').on(t.customerId, t.id),
    check('identity_documents_dates_check', sql`${t.issuedOn} is null or ${t.issuedOn} <= ${t.expiresOn}`),
  ],
);
