import { and, desc, eq } from 'drizzle-orm';
import { customers, identityDocuments, type Db, type IdentityDocumentType } from '@pec-partner/db';
import type { Clock } from '../../clock.ts';
import { invalid, notFound } from '../../http/problem.ts';
import { newId } from '../../ids.ts';
import { recordEvent } from '../../events/record.ts';
import { activatePendingMailboxes } from '../mailboxes/service.ts';

type Row = typeof identityDocuments.$inferSelect;

export function identityView(row: Row) {
  return {
    id: row.id,
    object: 'identity_document' as const,
    customer: row.customerId,
    document_type: row.documentType,
    number: row.number,
    issuer: row.issuer,
    issued_on: row.issuedOn,
    expires_on: row.expiresOn,
    created_at: row.createdAt.toISOString(),
  };
}

export interface IdentityInput {
  document_type: IdentityDocumentType;
  number: string;
  issuer: string;
  issued_on?: string | undefined;
  expires_on: string;
}

/**
 * Files a document for the customer; an expired one is refused. In the same transaction, the customer's
 * mailboxes waiting for identification are activated, so no mailbox stays pending once the holder is known.
 */
export async function addIdentityDocument(db: Db, clock: Clock, partnerId: string, customerId: string, input: IdentityInput) {
  const now = clock.now();
  const today = now.toISOString().slice(0, 10);
  const errors = [];
  if (input.expires_on < today) errors.push({ pointer: '/expires_on', location: 'body' as const, code: 'document_expired', detail: `the document expired on ${input.expires_on}` });
  if (input.issued_on && input.issued_on > today) errors.push({ pointer: '/issued_on', location: 'body' as const, code: 'out_of_range', detail: 'must not be in the future' });
  if (input.issued_on && input.issued_on > input.expires_on) errors.push({ pointer: '/issued_on', location: 'body' as const, code: 'out_of_range', detail: 'must not be after expires_on' });
  if (errors.length) throw invalid(errors, 'The identity document cannot be accepted.');
  return db.transaction(async (tx) => {
    const [customer] = await tx.select({ id: customers.id }).from(customers).where(and(eq(customers.id, customerId), eq(customers.partnerId, partnerId))).for('update');
    if (!customer) throw notFound('customer', customerId);
    const [row] = await tx
      .insert(identityDocuments)
      .values({
        id: newId('idd', now),
        partnerId,
        customerId,
        documentType: input.document_type,
        number: input.number.trim().toUpperCase(),
        issuer: input.issuer.trim(),
        issuedOn: input.issued_on ?? null,
        expiresOn: input.expires_on,
        createdAt: now,
      })
      .returning();
    const document = identityView(row!);
    await recordEvent(tx, clock, { partnerId, type: 'identity_document.created', object: document });
    const activated = await activatePendingMailboxes(tx, clock, partnerId, customerId, now);
    return { ...document, activated_mailboxes: activated };
  });
}

/** The customer's current (newest) document. */
export async function currentIdentityDocument(db: Db, partnerId: string, customerId: string) {
  const [customer] = await db.select({ id: customers.id }).from(customers).where(and(eq(customers.id, customerId), eq(customers.partnerId, partnerId)));
  if (!customer) throw notFound('customer', customerId);
  const [row] = await db.select().from(identityDocuments).where(eq(identityDocuments.customerId, customerId)).orderBy(desc(identityDocuments.id)).limit(1);
  if (!row) throw notFound('identity document of customer', customerId);
  return identityView(row);
}
