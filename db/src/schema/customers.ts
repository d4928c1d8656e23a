import { sql } from 'drizzle-orm';
import { check, index, jsonb, pgTable, text, timestamp } from 'drizzle-orm/pg-core';
import { partners } from './partners.ts';

export const customerTypes = [
  'private_person',
  'sole_trader',
  'professional',
  'company',
  'non_profit',
  'public_administration',
] as const;
export type CustomerType = (typeof customerTypes)[number];

/** The partner's own clients (anagrafiche). Later services reference them with ON DELETE RESTRICT. */
export const customers = pgTable(
  'customers',
  {
    id: text('id').primaryKey(),
    partnerId: text('partner_id').notNull().references(() => partners.id),
    type: text('type', { enum: customerTypes }).notNull(),
    firstName: text('first_name'),
    lastName: text('last_name'),
    businessName: text('business_name'),
    taxCode: text('tax_code'),
    vatNumber: text('vat_number'),
    address: jsonb('address').$type<Record<string, string | null>>(),
    email: text('email'),
    phone: text('phone'),
    eInvoicing: jsonb('e_invoicing').$type<Record<string, string | null>>(),
    publicProcurement: jsonb('public_procurement').$type<Record<string, string | null>>(),
    metadata: jsonb('metadata').$type<Record<string, string>>().notNull().default({}),
    /** Lower-cased concatenation of the names, for free-text search. */
    searchName: text('search_name').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull(),
    updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull(),
  },
  (t) => [
    index('customers_partner_idx').on(t.partnerId, t.id),
    index('customers_partner_tax_code_idx').on(t.partnerId, t.taxCode),
    index('customers_partner_vat_idx').on(t.partnerId, t.vatNumber),
    check('customers_type_check', sql`${t.type} in ('private_person','sole_trader','professional','company','non_profit','public_administration')`),
    check(
      'customers_names_check',
      sql`(${t.type} in ('private_person') and ${t.firstName} is not null and ${t.lastName} is not null)
          or (${t.type} <> 'private_person' and ${t.businessName} is not null)`,
    ),
    check(
      'customers_vat_required_check',
      sql`${t.type} not in ('company','sole_trader','professional') or ${t.vatNumber} is not null`,
    ),
  ],
);
