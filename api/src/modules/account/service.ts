import { eq } from 'drizzle-orm';
import { partnerFiscalData, partners, type DbOrTx, type InvoiceCustomerSnapshot } from '@pec-partner/db';
import type { Clock } from '../../clock.ts';
import { LATIN1_TEXT } from '../../config.ts';
import { changedAttributes, recordEvent } from '../../events/record.ts';
import { conflict, invalid, type FieldError } from '../../http/problem.ts';
import { normalizePartitaIva, normalizeTaxCode, validateCodiceFiscale, validatePartitaIva, validateSdiCode } from '../customers/tax-codes.ts';
import type { Account, AccountUpdate } from './schemas.ts';

type FiscalRow = typeof partnerFiscalData.$inferSelect;
type FiscalFields = Pick<Account, 'legal_name' | 'vat_number' | 'tax_code' | 'address' | 'e_invoicing'>;

const EMPTY: FiscalFields = { legal_name: null, vat_number: null, tax_code: null, address: null, e_invoicing: null };

function fieldsOf(row: FiscalRow | undefined): FiscalFields {
  if (!row) return EMPTY;
  return {
    legal_name: row.legalName,
    vat_number: row.vatNumber,
    tax_code: row.taxCode,
    address: row.address ?? null,
    e_invoicing: row.sdiCode || row.pec ? { sdi_code: row.sdiCode, pec: row.pec } : null,
  };
}

/** What an invoice needs and the partner has not given yet, as field names of the account. */
export function missingForInvoicing(fields: FiscalFields): string[] {
  const missing: string[] = [];
  if (!fields.legal_name) missing.push('legal_name');
  if (!fields.vat_number) missing.push('vat_number');
  if (!fields.address) missing.push('address');
  if (!fields.e_invoicing?.sdi_code && !fields.e_invoicing?.pec) missing.push('e_invoicing');
  return missing;
}

function accountView(partner: { id: string; name: string }, row: FiscalRow | undefined): Account {
  const fields = fieldsOf(row);
  const missing = missingForInvoicing(fields);
  return {
    id: partner.id,
    object: 'account',
    name: partner.name,
    ...fields,
    invoicing_ready: missing.length === 0,
    missing_fields: missing,
    updated_at: row?.updatedAt.toISOString() ?? null,
  };
}

async function load(db: DbOrTx, partnerId: string, forUpdate = false) {
  const [partner] = await db.select({ id: partners.id, name: partners.name }).from(partners).where(eq(partners.id, partnerId));
  if (!partner) throw new Error(`partner ${partnerId} does not exist`);
  const query = db.select().from(partnerFiscalData).where(eq(partnerFiscalData.partnerId, partnerId));
  const [row] = forUpdate ? await query.for('update') : await query;
  return { partner, row };
}

export async function getAccount(db: DbOrTx, partnerId: string): Promise<Account> {
  const { partner, row } = await load(db, partnerId);
  return accountView(partner, row);
}

/**
 * The rules of the FatturaPA schema and of Italian identifiers, checked when the data is given rather than when
 * an invoice is made from it: a partner learns at once what to fix, and an invoice never fails on its data.
 */
function checkRules(input: FiscalFields): FiscalFields {
  const errors: FieldError[] = [];
  const fail = (field: string, code: string, detail: string) => errors.push({ pointer: `/${field}`, location: 'body', code, detail });
  const record: FiscalFields = { ...input };
  const latin = (field: string, value: string | null | undefined, max: number) => {
    if (value === null || value === undefined) return;
    if (value.trim().length === 0) fail(field, 'required', 'cannot be blank');
    else if (value.length > max) fail(field, 'too_long', `at most ${max} characters on an e-invoice`);
    else if (!LATIN1_TEXT.test(value)) fail(field, 'invalid_characters', 'e-invoices accept Latin-1 characters only (letters with accents are fine; emoji and other scripts are not)');
  };

  if (record.legal_name !== null) record.legal_name = record.legal_name.trim();
  latin('legal_name', record.legal_name, 80);

  if (record.vat_number) {
    record.vat_number = normalizePartitaIva(record.vat_number);
    const result = validatePartitaIva(record.vat_number);
    if (!result.ok) fail('vat_number', 'invalid_vat_number', result.reason);
  }
  if (record.tax_code) {
    record.tax_code = normalizeTaxCode(record.tax_code);
    const result = validateCodiceFiscale(record.tax_code);
    if (!result.ok) fail('tax_code', 'invalid_tax_code', result.reason);
  }
  if (record.address) {
    latin('address/street', record.address.street, 60);
    latin('address/town', record.address.town, 60);
    if (record.address.country !== 'IT') {
      fail('address/country', 'unsupported_country', 'invoices are issued to partners established in Italy (country IT)');
    } else {
      if (!/^\d{5}$/.test(record.address.postcode)) fail('address/postcode', 'invalid_format', 'an Italian CAP is five digits');
      const province = record.address.province?.toUpperCase();
      if (!province || !/^[A-Z]{2}$/.test(province)) fail('address/province', 'required', 'an Italian address needs its two-letter province code');
      else record.address = { ...record.address, province };
    }
  }
  if (record.e_invoicing) {
    const sdi = record.e_invoicing.sdi_code?.trim().toUpperCase() || null;
    const pec = record.e_invoicing.pec?.trim().toLowerCase() || null;
    if (sdi) {
      const result = validateSdiCode(sdi);
      if (!result.ok) fail('e_invoicing/sdi_code', 'invalid_sdi_code', result.reason);
      else if (result.kind !== 'private') fail('e_invoicing/sdi_code', 'invalid_sdi_code', 'a partner has a 7-character codice destinatario (6 characters are for public administrations)');
      else if (sdi === '0000000' && !pec) fail('e_invoicing/pec', 'required', "with the codice destinatario '0000000' the SDI delivers to a PEC address: give it");
    }
    if (pec && !LATIN1_TEXT.test(pec)) fail('e_invoicing/pec', 'invalid_characters', 'an e-invoicing PEC address is plain ASCII');
    record.e_invoicing = sdi || pec ? { sdi_code: sdi, pec } : null;
  }
  if (errors.length) throw invalid(errors, 'The fiscal data cannot go on an e-invoice.');
  return record;
}

/** PATCH semantics as for customers: only the fields sent change, null clears one, nested objects are replaced whole. */
export async function updateAccount(db: DbOrTx, clock: Clock, partnerId: string, patch: AccountUpdate): Promise<Account> {
  return db.transaction(async (tx) => {
    const { partner, row } = await load(tx, partnerId, true);
    const before = accountView(partner, row);
    const merged: FiscalFields = { ...fieldsOf(row) };
    for (const [key, value] of Object.entries(patch)) {
      if (value !== undefined) (merged as Record<string, unknown>)[key] = value;
    }
    const fields = checkRules(merged);
    const now = clock.now();
    const columns = {
      legalName: fields.legal_name,
      vatNumber: fields.vat_number,
      taxCode: fields.tax_code,
      address: fields.address,
      sdiCode: fields.e_invoicing?.sdi_code ?? null,
      pec: fields.e_invoicing?.pec ?? null,
      updatedAt: now,
    };
    const [stored] = await tx
      .insert(partnerFiscalData)
      .values({ partnerId, ...columns })
      .onConflictDoUpdate({ target: partnerFiscalData.partnerId, set: columns })
      .returning();
    const after = accountView(partner, stored);
    const { updated_at: _a, ...beforeFields } = before;
    const { updated_at: _b, ...afterFields } = after;
    const previous = changedAttributes(beforeFields, afterFields);
    if (Object.keys(previous).length > 0) {
      await recordEvent(tx, clock, { partnerId, type: 'account.updated', object: after, previousAttributes: previous });
    }
    return after;
  });
}

/**
 * The partner as the customer (cessionario/committente) of an invoice, read in the caller's transaction with its
 * row locked, so the snapshot is what the data was when the invoice was issued. A 409 names what is missing.
 */
export async function invoiceCustomer(tx: DbOrTx, partnerId: string): Promise<InvoiceCustomerSnapshot> {
  const { row } = await load(tx, partnerId, true);
  const fields = fieldsOf(row);
  const missing = missingForInvoicing(fields);
  if (missing.length > 0) {
    throw conflict(
      'fiscal_data_required',
      `Every credit is invoiced, and the invoice needs your fiscal data: set ${missing.join(', ')} with PATCH /v1/account first.`,
      { missing_fields: missing },
    );
  }
  return {
    legal_name: fields.legal_name!,
    vat_number: fields.vat_number!,
    tax_code: fields.tax_code,
    address: fields.address!,
    sdi_code: fields.e_invoicing?.sdi_code ?? null,
    pec: fields.e_invoicing?.pec ?? null,
  };
}
