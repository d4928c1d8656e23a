import { isDeepStrictEqual } from 'node:util';
import { and, desc, eq, ilike, lt } from 'drizzle-orm';
import { customers, type CustomerType, type DbOrTx } from '@pec-partner/db';
import type { Clock } from '../../clock.ts';
import { isStillReferenced } from '../../db-errors.ts';
import { newId } from '../../ids.ts';
import { conflict, invalid, notFound, type FieldError } from '../../http/problem.ts';
import { changedAttributes, recordEvent } from '../../events/record.ts';
import type { Customer, CustomerCreate, CustomerUpdate } from './schemas.ts';
import {
  normalizePartitaIva,
  normalizeTaxCode,
  validateCodiceFiscale,
  validatePartitaIva,
  validateSdiCode,
} from './tax-codes.ts';

type Row = typeof customers.$inferSelect;

/** The customer's fields as the business rules see them (API names, nulls for absent values). */
interface CustomerFields {
  type: CustomerType;
  first_name: string | null;
  last_name: string | null;
  business_name: string | null;
  tax_code: string | null;
  vat_number: string | null;
  address: Customer['address'];
  email: string | null;
  phone: string | null;
  e_invoicing: Customer['e_invoicing'];
  public_procurement: Customer['public_procurement'];
  metadata: Record<string, string>;
}

const PERSON_TYPES: ReadonlySet<CustomerType> = new Set(['private_person', 'sole_trader', 'professional']);
const VAT_REQUIRED: ReadonlySet<CustomerType> = new Set(['sole_trader', 'professional', 'company']);

export function customerView(row: Row): Customer {
  return {
    id: row.id,
    object: 'customer',
    type: row.type,
    first_name: row.firstName,
    last_name: row.lastName,
    business_name: row.businessName,
    tax_code: row.taxCode,
    vat_number: row.vatNumber,
    address: (row.address as Customer['address']) ?? null,
    email: row.email,
    phone: row.phone,
    e_invoicing: (row.eInvoicing as Customer['e_invoicing']) ?? null,
    public_procurement: (row.publicProcurement as Customer['public_procurement']) ?? null,
    metadata: row.metadata,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  };
}

const fieldsOf = (view: Customer): CustomerFields => {
  const { id: _id, object: _object, created_at: _c, updated_at: _u, ...fields } = view;
  return fields;
};

/**
 * The rules that depend on the customer type and on Italian identifiers. Returns the normalised record or
 * throws a 400 problem listing every violated rule at once.
 */
function checkRules(input: CustomerFields): CustomerFields {
  const errors: FieldError[] = [];
  const fail = (field: string, code: string, detail: string) => errors.push({ pointer: `/${field}`, location: 'body', code, detail });
  const record: CustomerFields = { ...input };
  const person = PERSON_TYPES.has(record.type);

  if (person) {
    if (!record.first_name) fail('first_name', 'required', `is required for a ${record.type}`);
    if (!record.last_name) fail('last_name', 'required', `is required for a ${record.type}`);
  } else {
    if (!record.business_name) fail('business_name', 'required', `is required for a ${record.type}`);
    if (record.first_name) fail('first_name', 'not_allowed', `is only for people; a ${record.type} has a business_name`);
    if (record.last_name) fail('last_name', 'not_allowed', `is only for people; a ${record.type} has a business_name`);
  }
  if (record.type === 'private_person' && record.business_name) {
    fail('business_name', 'not_allowed', 'a private person has no business name');
  }
  if (record.type === 'private_person' && record.vat_number) {
    fail('vat_number', 'not_allowed', 'a private person has no partita IVA');
  }
  // Sole traders and professionals trade under their own name unless they registered another.
  if ((record.type === 'sole_trader' || record.type === 'professional') && !record.business_name && record.first_name && record.last_name) {
    record.business_name = `${record.first_name} ${record.last_name}`;
  }

  if (record.tax_code) {
    record.tax_code = normalizeTaxCode(record.tax_code);
    const result = validateCodiceFiscale(record.tax_code);
    if (!result.ok) fail('tax_code', 'invalid_tax_code', result.reason);
    else if (person && result.kind !== 'personal') fail('tax_code', 'invalid_tax_code', 'a person has a 16-character codice fiscale');
    else if (!person && record.type !== 'company' && result.kind !== 'numeric') {
      fail('tax_code', 'invalid_tax_code', `a ${record.type} has an 11-digit codice fiscale`);
    }
  } else if (record.type !== 'company') {
    // A company's codice fiscale is normally its partita IVA, so it may be omitted; everyone else needs one.
    fail('tax_code', 'required', `is required for a ${record.type}`);
  }

  if (record.vat_number) {
    record.vat_number = normalizePartitaIva(record.vat_number);
    const result = validatePartitaIva(record.vat_number);
    if (!result.ok) fail('vat_number', 'invalid_vat_number', result.reason);
  } else if (VAT_REQUIRED.has(record.type)) {
    fail('vat_number', 'required', `is required for a ${record.type}`);
  }
  if (record.type === 'company' && !record.tax_code && record.vat_number && validatePartitaIva(record.vat_number).ok) {
    record.tax_code = record.vat_number;
  }

  if (record.address?.country === 'IT') {
    if (!/^\d{5}$/.test(record.address.postcode)) fail('address/postcode', 'invalid_format', 'an Italian CAP is five digits');
    const province = record.address.province?.toUpperCase();
    if (!province || !/^[A-Z]{2}$/.test(province)) fail('address/province', 'required', 'an Italian address needs its two-letter province code');
    else record.address = { ...record.address, province };
  }

  const sdi = record.e_invoicing?.sdi_code;
  if (sdi) {
    const normalized = sdi.trim().toUpperCase();
    const result = validateSdiCode(normalized);
    if (!result.ok) fail('e_invoicing/sdi_code', 'invalid_sdi_code', result.reason);
    else if (record.type === 'public_administration' && result.kind !== 'public_administration') {
      fail('e_invoicing/sdi_code', 'invalid_sdi_code', 'a public administration has a 6-character codice univoco ufficio');
    } else if (record.type !== 'public_administration' && result.kind === 'public_administration') {
      fail('e_invoicing/sdi_code', 'invalid_sdi_code', 'only public administrations have a 6-character code; others have 7 characters');
    }
    record.e_invoicing = { ...record.e_invoicing, sdi_code: normalized };
  }
  if (record.public_procurement && record.type !== 'public_administration') {
    fail('public_procurement', 'not_allowed', 'public procurement data is only for public administrations');
  }
  if (errors.length) throw invalid(errors, 'The customer data breaks the rules for its type.');
  return record;
}

function toColumns(fields: CustomerFields) {
  return {
    type: fields.type,
    firstName: fields.first_name,
    lastName: fields.last_name,
    businessName: fields.business_name,
    taxCode: fields.tax_code,
    vatNumber: fields.vat_number,
    address: fields.address,
    email: fields.email ? fields.email.toLowerCase() : null,
    phone: fields.phone,
    eInvoicing: fields.e_invoicing,
    publicProcurement: fields.public_procurement,
    metadata: fields.metadata,
    searchName: [fields.business_name, fields.first_name, fields.last_name].filter(Boolean).join(' ').toLowerCase(),
  };
}

export async function createCustomer(db: DbOrTx, clock: Clock, partnerId: string, input: CustomerCreate): Promise<Customer> {
  const fields = checkRules({
    type: input.type,
    first_name: input.first_name ?? null,
    last_name: input.last_name ?? null,
    business_name: input.business_name ?? null,
    tax_code: input.tax_code ?? null,
    vat_number: input.vat_number ?? null,
    address: input.address ?? null,
    email: input.email ?? null,
    phone: input.phone ?? null,
    e_invoicing: input.e_invoicing ?? null,
    public_procurement: input.public_procurement ?? null,
    metadata: input.metadata ?? {},
  });
  return db.transaction(async (tx) => {
    const now = clock.now();
    const [row] = await tx
      .insert(customers)
      .values({ id: newId('cus', now), partnerId, ...toColumns(fields), createdAt: now, updatedAt: now })
      .returning();
    const customer = customerView(row!);
    await recordEvent(tx, clock, { partnerId, type: 'customer.created', object: customer });
    return customer;
  });
}

async function findRow(db: DbOrTx, partnerId: string, id: string, forUpdate = false): Promise<Row> {
  const query = db.select().from(customers).where(and(eq(customers.id, id), eq(customers.partnerId, partnerId)));
  const [row] = forUpdate ? await query.for('update') : await query;
  if (!row) throw notFound('customer', id);
  return row;
}

export async function getCustomer(db: DbOrTx, partnerId: string, id: string): Promise<Customer> {
  return customerView(await findRow(db, partnerId, id));
}

export async function updateCustomer(
  db: DbOrTx,
  clock: Clock,
  partnerId: string,
  id: string,
  patch: CustomerUpdate,
): Promise<Customer> {
  return db.transaction(async (tx) => {
    const stored = await findRow(tx, partnerId, id, true);
    const before = customerView(stored);
    const current = fieldsOf(before);
    const { metadata: metadataPatch, ...rest } = patch;
    const merged: CustomerFields = { ...current };
    for (const [key, value] of Object.entries(rest)) {
      if (value !== undefined) (merged as unknown as Record<string, unknown>)[key] = value;
    }
    // A type change drops the name fields the new type cannot have, unless the patch sets them explicitly.
    if (patch.type && patch.type !== current.type) {
      if (patch.type === 'private_person' && patch.business_name === undefined) merged.business_name = null;
      if (!PERSON_TYPES.has(patch.type)) {
        if (patch.first_name === undefined) merged.first_name = null;
        if (patch.last_name === undefined) merged.last_name = null;
      }
    }
    if (metadataPatch) {
      const metadata = { ...current.metadata };
      for (const [key, value] of Object.entries(metadataPatch)) {
        if (value === null) delete metadata[key];
        else metadata[key] = value;
      }
      if (Object.keys(metadata).length > 50) {
        throw invalid([{ pointer: '/metadata', location: 'body', code: 'out_of_range', detail: 'must have at most 50 keys' }]);
      }
      merged.metadata = metadata;
    }
    const fields = checkRules(merged);
    // A PATCH that changes nothing writes nothing: updated_at stays and no customer.updated is emitted.
    if (isDeepStrictEqual(fieldsOf(customerView({ ...stored, ...toColumns(fields) })), current)) return before;
    const [row] = await tx
      .update(customers)
      .set({ ...toColumns(fields), updatedAt: clock.now() })
      .where(and(eq(customers.id, id), eq(customers.partnerId, partnerId)))
      .returning();
    const customer = customerView(row!);
    await recordEvent(tx, clock, { partnerId, type: 'customer.updated', object: customer, previousAttributes: changedAttributes(before, customer) });
    return customer;
  });
}

/**
 * Services (domains, mailboxes) reference customers with ON DELETE RESTRICT: the database refuses, we explain.
 * The `customer.deleted` event carries the customer as it was last shown, which the receiver may no longer have.
 */
export async function deleteCustomer(db: DbOrTx, clock: Clock, partnerId: string, id: string): Promise<{ id: string; object: 'customer'; deleted: true }> {
  try {
    return await db.transaction(async (tx) => {
      const [row] = await tx
        .delete(customers)
        .where(and(eq(customers.id, id), eq(customers.partnerId, partnerId)))
        .returning();
      if (!row) throw notFound('customer', id);
      await recordEvent(tx, clock, { partnerId, type: 'customer.deleted', object: customerView(row) });
      return { id: row.id, object: 'customer' as const, deleted: true as const };
    });
  } catch (error) {
    if (isStillReferenced(error)) {
      throw conflict('customer_has_services', `The customer '${id}' still has services (domains or mailboxes); cancel them first.`);
    }
    throw error;
  }
}

export interface CustomerQuery {
  limit: number;
  startingAfter?: string | undefined;
  type?: CustomerType | undefined;
  taxCode?: string | undefined;
  vatNumber?: string | undefined;
  email?: string | undefined;
  q?: string | undefined;
}

const escapeLike = (text: string): string => text.replace(/[\\%_]/g, (c) => `\\${c}`);

export async function listCustomers(db: DbOrTx, partnerId: string, query: CustomerQuery): Promise<Customer[]> {
  const rows = await db
    .select()
    .from(customers)
    .where(
      and(
        eq(customers.partnerId, partnerId),
        query.startingAfter ? lt(customers.id, query.startingAfter) : undefined,
        query.type ? eq(customers.type, query.type) : undefined,
        query.taxCode ? eq(customers.taxCode, normalizeTaxCode(query.taxCode)) : undefined,
        query.vatNumber ? eq(customers.vatNumber, normalizePartitaIva(query.vatNumber)) : undefined,
        query.email ? eq(customers.email, query.email.toLowerCase()) : undefined,
        query.q ? ilike(customers.searchName, `%${escapeLike(query.q.trim().toLowerCase())}%`) : undefined,
      ),
    )
    .orderBy(desc(customers.id))
    .limit(query.limit + 1);
  return rows.map(customerView);
}
