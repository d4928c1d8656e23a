import { sql } from 'drizzle-orm';
import { bigint, check, date, index, integer, jsonb, pgTable, text, timestamp, uniqueIndex } from 'drizzle-orm/pg-core';
import { partners } from './partners.ts';
import { topUps } from './payments.ts';

/**
 * The partner's own fiscal data: the provider invoices the partner with these. A separate table (one row per
 * partner, created on the first PATCH /v1/account) so the partners table stays the tenant's identity only.
 * Columns are nullable: a partner fills them in over time; crediting a top-up needs them complete.
 */
export const partnerFiscalData = pgTable(
  'partner_fiscal_data',
  {
    partnerId: text('partner_id').primaryKey().references(() => partners.id),
    /** Ragione sociale as it must appear on invoices. */
    legalName: text('legal_name'),
    /** Partita IVA, 11 digits without the IT prefix. */
    vatNumber: text('vat_number'),
    /** Codice fiscale (11 digits or 16 characters); optional when it equals the VAT number. */
    taxCode: text('tax_code'),
    address: jsonb('address').$type<{ street: string; town: string; postcode: string; province: string | null; country: string }>(),
    /** Codice destinatario SDI (7 characters) for e-invoices. */
    sdiCode: text('sdi_code'),
    /** PEC address for e-invoices when there is no SDI code. */
    pec: text('pec'),
    updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull(),
  },
  (t) => [
    check('partner_fiscal_data_vat_check', sql`${t.vatNumber} is null or ${t.vatNumber} ~ '^[0-9]{11}$'`),
    check('partner_fiscal_data_sdi_check', sql`${t.sdiCode} is null or ${t.sdiCode} ~ '^[A-Z0-9]{7}$'`),
  ],
);

/**
 * One row per invoicing year holding the last number issued. Issuing an invoice increments it with
 * INSERT … ON CONFLICT DO UPDATE … RETURNING, which locks the row until the crediting transaction ends:
 * concurrent credits take numbers one after the other, and a rolled-back credit gives its number back
 * (a sequence would not: nextval() is never rolled back, which leaves gaps the law does not allow).
 */
export const invoiceCounters = pgTable(
  'invoice_counters',
  {
    year: integer('year').primaryKey(),
    lastNumber: integer('last_number').notNull(),
  },
  (t) => [check('invoice_counters_last_number_check', sql`${t.lastNumber} >= 1 and ${t.lastNumber} <= 999999`)],
);

export interface InvoicePartySnapshot {
  legal_name: string;
  vat_number: string;
  tax_code: string | null;
  address: { street: string; town: string; postcode: string; province: string | null; country: string };
}

export interface InvoiceCustomerSnapshot extends InvoicePartySnapshot {
  sdi_code: string | null;
  pec: string | null;
}

export interface InvoiceSupplierSnapshot extends InvoicePartySnapshot {
  tax_regime: string;
  email: string | null;
  iban: string | null;
}

export interface InvoiceLine {
  number: number;
  description: string;
  quantity: number;
  unit_price_cents: number;
  net_cents: number;
  vat_rate: number;
}

export interface InvoicePayment {
  method: 'bank_transfer' | 'card';
  reference: string;
  paid_at: string;
}

/**
 * Invoices the provider issues to partners, one per credited top-up. Immutable once written (a trigger in the
 * migration refuses UPDATE and DELETE): the FatturaPA file is stored as issued, with the data it was made from.
 */
export const invoices = pgTable(
  'invoices',
  {
    id: text('id').primaryKey(),
    partnerId: text('partner_id').notNull().references(() => partners.id),
    year: integer('year').notNull(),
    sequence: integer('sequence').notNull(),
    /** `2026/000123`: the year and a progressive number without gaps within the year. */
    number: text('number').notNull(),
    /** The date of issue in Europe/Rome (the year of the numbering is this date's year). */
    issueDate: date('issue_date', { mode: 'string' }).notNull(),
    issuedAt: timestamp('issued_at', { withTimezone: true, mode: 'date' }).notNull(),
    /** What the invoice is for: the credited top-up (one invoice per top-up). */
    topUpId: text('top_up_id').notNull().references(() => topUps.id),
    currency: text('currency').notNull().default('EUR'),
    netCents: bigint('net_cents', { mode: 'number' }).notNull(),
    /** Basis points: 2200 = 22 %. */
    vatRateBasisPoints: integer('vat_rate_basis_points').notNull(),
    vatCents: bigint('vat_cents', { mode: 'number' }).notNull(),
    totalCents: bigint('total_cents', { mode: 'number' }).notNull(),
    lines: jsonb('lines').$type<InvoiceLine[]>().notNull(),
    customer: jsonb('customer').$type<InvoiceCustomerSnapshot>().notNull(),
    supplier: jsonb('supplier').$type<InvoiceSupplierSnapshot>().notNull(),
    payment: jsonb('payment').$type<InvoicePayment>().notNull(),
    /** SDI file name, `IT<VAT>_<progressive>.xml`. */
    fileName: text('file_name').notNull(),
    /** The FatturaPA XML as issued. */
    xml: text('xml').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull(),
  },
  (t) => [
    uniqueIndex('invoices_year_sequence_key').on(t.year, t.sequence),
    uniqueIndex('invoices_number_key').on(t.number),
    uniqueIndex('invoices_file_name_key').on(t.fileName),
    uniqueIndex('invoices_top_up_key').on(t.topUpId),
    index('invoices_partner_idx').on(t.partnerId, t.id),
    check('invoices_sequence_check', sql`${t.sequence} between 1 and 999999`),
    check('invoices_number_check', sql`${t.number} = ${t.year}::text || '/' || lpad(${t.sequence}::text, 6, '0')`),
    check('invoices_year_check', sql`${t.year} = extract(year from ${t.issueDate})::int`),
    check('invoices_amounts_check', sql`${t.netCents} > 0 and ${t.vatCents} >= 0 and ${t.totalCents} = ${t.netCents} + ${t.vatCents}`),
  ],
);
