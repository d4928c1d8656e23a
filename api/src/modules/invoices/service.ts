import { and, desc, eq, lt, sql } from 'drizzle-orm';
import { invoiceCounters, invoices, type DbOrTx, type InvoiceLine, type InvoicePayment, type InvoiceSupplierSnapshot } from '@pec-partner/db';
import type { Clock } from '../../clock.ts';
import type { InvoicingConfig } from '../../config.ts';
import { recordEvent } from '../../events/record.ts';
import { invalid, notFound } from '../../http/problem.ts';
import { newId } from '../../ids.ts';
import { invoiceCustomer } from '../account/service.ts';
import { buildFatturaPa, latin1 } from './fatturapa.ts';
import { VAT_RATE_PERCENT, vatCents } from './money.ts';
import type { Invoice } from './schemas.ts';

type InvoiceRow = typeof invoices.$inferSelect;

/**
 * Who is asking: a partner sees only its own invoices (another's is a 404 like a missing one); the operator, when
 * its API arrives, passes `{ operator: true }` to the same functions and sees every partner's.
 */
export type InvoiceScope = { partnerId: string } | { operator: true };

const romeDateFormat = new Intl.DateTimeFormat('en-CA', { timeZone: 'Europe/Rome', year: 'numeric', month: '2-digit', day: '2-digit' });

/** The calendar date in Italy at an instant, `YYYY-MM-DD`: invoices are dated, and numbered per year, in Rome. */
export const romeDate = (at: Date): string => romeDateFormat.format(at);

/**
 * The 5-character progressive of the SDI file name (`IT<VAT>_<progressive>.xml`, [0-9A-Z]{1,5}): the year and the
 * number in base 36, unique for every invoice of the years 2000–2060 with up to 999,999 invoices a year.
 */
export function fileProgressive(year: number, sequence: number): string {
  if (year < 2000 || year > 2060 || sequence < 1 || sequence > 999_999) throw new Error(`no SDI progressive for ${year}/${sequence}`);
  return ((year - 2000) * 1_000_000 + sequence).toString(36).toUpperCase().padStart(5, '0');
}

export function invoiceView(row: InvoiceRow): Invoice {
  return {
    id: row.id,
    object: 'invoice',
    number: row.number,
    issue_date: row.issueDate,
    issued_at: row.issuedAt.toISOString(),
    top_up: row.topUpId,
    currency: 'EUR',
    net_amount: row.netCents,
    vat_rate: row.vatRateBasisPoints / 100,
    vat_amount: row.vatCents,
    total_amount: row.totalCents,
    lines: row.lines.map((line) => ({
      description: line.description,
      quantity: line.quantity,
      unit_amount: line.unit_price_cents,
      net_amount: line.net_cents,
      vat_rate: line.vat_rate,
    })),
    customer: {
      legal_name: row.customer.legal_name,
      vat_number: row.customer.vat_number,
      tax_code: row.customer.tax_code,
      address: row.customer.address,
      e_invoicing: { sdi_code: row.customer.sdi_code, pec: row.customer.pec },
    },
    supplier: {
      legal_name: row.supplier.legal_name,
      vat_number: row.supplier.vat_number,
      tax_code: row.supplier.tax_code,
      address: row.supplier.address,
      tax_regime: row.supplier.tax_regime,
    },
    payment: row.payment,
    file_name: row.fileName,
    partner: row.partnerId,
    created_at: row.createdAt.toISOString(),
  };
}

export interface TopUpInvoiceInput {
  partnerId: string;
  /** What was credited: the top-up's id (`top_…`). One invoice per top-up. */
  topUpId: string;
  /** The credit, in euro cents excluding VAT: the taxable amount. */
  amountCents: number;
  creditedAt: Date;
  paymentReference: string;
  paymentMethod?: InvoicePayment['method'];
}

function supplierSnapshot(config: InvoicingConfig): InvoiceSupplierSnapshot {
  return {
    legal_name: config.legalName,
    vat_number: config.vatNumber,
    tax_code: config.taxCode,
    address: { ...config.address },
    tax_regime: config.taxRegime,
    email: config.email ?? null,
    iban: config.iban ?? null,
  };
}

/**
 * Issues the invoice for a credited top-up. Call it inside the transaction that credits the top-up: the number
 * comes from the year's counter row, incremented (and so locked) in that transaction, so concurrent credits are
 * numbered one after the other and a credit that rolls back takes its number back with it: no gaps, no duplicates.
 * Throws a 409 `fiscal_data_required` problem when the partner's fiscal data is incomplete (the credit then
 * rolls back too). The `invoice.created` event is written in the same transaction.
 */
export async function issueTopUpInvoice(tx: DbOrTx, clock: Clock, config: InvoicingConfig, input: TopUpInvoiceInput): Promise<Invoice> {
  const customer = await invoiceCustomer(tx, input.partnerId);
  const netCents = input.amountCents;
  const vat = vatCents(netCents);
  const now = clock.now();
  const issueDate = romeDate(now);
  const year = Number(issueDate.slice(0, 4));

  const [counter] = await tx
    .insert(invoiceCounters)
    .values({ year, lastNumber: 1 })
    .onConflictDoUpdate({ target: invoiceCounters.year, set: { lastNumber: sql`${invoiceCounters.lastNumber} + 1` } })
    .returning();
  const sequence = counter!.lastNumber;
  const number = `${year}/${String(sequence).padStart(6, '0')}`;
  const progressive = fileProgressive(year, sequence);
  const supplier = supplierSnapshot(config);
  const reference = input.paymentReference;
  const lines: InvoiceLine[] = [{
    number: 1,
    description: `Ricarica del credito prepagato per i servizi PEC (riferimento pagamento ${latin1(reference, 200)})`,
    quantity: 1,
    unit_price_cents: netCents,
    net_cents: netCents,
    vat_rate: VAT_RATE_PERCENT,
  }];
  const payment: InvoicePayment = { method: input.paymentMethod ?? 'bank_transfer', reference, paid_at: input.creditedAt.toISOString() };
  const xml = buildFatturaPa({
    progressive,
    number,
    issueDate,
    supplier,
    customer,
    lines,
    netCents,
    vatCents: vat,
    totalCents: netCents + vat,
    vatRate: VAT_RATE_PERCENT,
    payment,
    causale: `Ricarica credito prepagato, pagamento ${reference}`,
  });
  const [row] = await tx
    .insert(invoices)
    .values({
      id: newId('inv', now),
      partnerId: input.partnerId,
      year,
      sequence,
      number,
      issueDate,
      issuedAt: now,
      topUpId: input.topUpId,
      netCents,
      vatRateBasisPoints: VAT_RATE_PERCENT * 100,
      vatCents: vat,
      totalCents: netCents + vat,
      lines,
      customer,
      supplier,
      payment,
      fileName: `IT${supplier.vat_number}_${progressive}.xml`,
      xml,
      createdAt: now,
    })
    .returning();
  const invoice = invoiceView(row!);
  await recordEvent(tx, clock, { partnerId: input.partnerId, type: 'invoice.created', object: invoice });
  return invoice;
}

const scoped = (scope: InvoiceScope) => ('partnerId' in scope ? eq(invoices.partnerId, scope.partnerId) : undefined);

export async function findInvoiceRow(db: DbOrTx, scope: InvoiceScope, id: string): Promise<InvoiceRow> {
  const [row] = await db.select().from(invoices).where(and(eq(invoices.id, id), scoped(scope)));
  if (!row) throw notFound('invoice', id);
  return row;
}

export async function getInvoice(db: DbOrTx, scope: InvoiceScope, id: string): Promise<Invoice> {
  return invoiceView(await findInvoiceRow(db, scope, id));
}

/** The FatturaPA file as issued, with its SDI file name. */
export async function getInvoiceXml(db: DbOrTx, scope: InvoiceScope, id: string): Promise<{ fileName: string; xml: string }> {
  const row = await findInvoiceRow(db, scope, id);
  return { fileName: row.fileName, xml: row.xml };
}

export interface InvoiceQuery {
  limit: number;
  startingAfter?: string | undefined;
  year?: number | undefined;
  partnerId?: string | undefined;
}

/** Newest first (ids sort in creation order, and so in number order within a year). */
export async function listInvoices(db: DbOrTx, scope: InvoiceScope, query: InvoiceQuery): Promise<Invoice[]> {
  if (query.startingAfter) {
    const [cursor] = await db.select({ id: invoices.id }).from(invoices).where(and(eq(invoices.id, query.startingAfter), scoped(scope)));
    if (!cursor) throw invalid([{ pointer: '/starting_after', location: 'query', code: 'invalid_cursor', detail: 'is not an invoice of yours' }]);
  }
  const rows = await db
    .select()
    .from(invoices)
    .where(
      and(
        scoped(scope),
        query.partnerId ? eq(invoices.partnerId, query.partnerId) : undefined,
        query.startingAfter ? lt(invoices.id, query.startingAfter) : undefined,
        query.year ? eq(invoices.year, query.year) : undefined,
      ),
    )
    .orderBy(desc(invoices.id))
    .limit(query.limit + 1);
  return rows.map(invoiceView);
}
