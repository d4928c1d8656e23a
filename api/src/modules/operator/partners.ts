import { and, desc, eq, ilike, lt, or } from 'drizzle-orm';
import { creditAccounts, DEFAULT_PRICE_LIST_ID, partners, type DbOrTx, type PartnerStatus } from '@pec-partner/db';
import type { Clock } from '../../clock.ts';
import { notFound, ProblemError } from '../../http/problem.ts';
import { assertTransition, type Transitions } from '../../state-machine.ts';
import { recordEvent } from '../../events/record.ts';
import { currentRequest } from '../../events/request-context.ts';
import { postMovement, type LedgerEntryView } from '../credit/service.ts';
import { createPartner, type ApiKeyView } from '../partners/service.ts';
import { recordAudit, type AuditActorRef } from './audit.ts';

export type PartnerView = {
  id: string;
  object: 'partner';
  name: string;
  status: PartnerStatus;
  suspended_at: string | null;
  suspension_reason: string | null;
  price_list: string;
  balance: number;
  currency: 'EUR';
  created_at: string;
};

type Row = typeof partners.$inferSelect;

function partnerView(row: Row, balance: number): PartnerView {
  return {
    id: row.id,
    object: 'partner',
    name: row.name,
    status: row.status,
    suspended_at: row.suspendedAt?.toISOString() ?? null,
    suspension_reason: row.suspensionReason,
    price_list: row.priceListId ?? DEFAULT_PRICE_LIST_ID,
    balance,
    currency: 'EUR',
    created_at: row.createdAt.toISOString(),
  };
}

const selectPartners = (db: DbOrTx) =>
  db.select({ partner: partners, balance: creditAccounts.balanceCents }).from(partners).innerJoin(creditAccounts, eq(creditAccounts.partnerId, partners.id));

/** The operator works on live partners; their sandboxes (test twins) are the partners' own and invisible here. */
const livePartner = (id: string) => and(eq(partners.id, id), eq(partners.livemode, true));

export async function getPartner(db: DbOrTx, id: string): Promise<PartnerView> {
  const [row] = await selectPartners(db).where(livePartner(id));
  if (!row) throw notFound('partner', id);
  return partnerView(row.partner, row.balance);
}

export interface PartnerQuery {
  limit: number;
  startingAfter?: string | undefined;
  q?: string | undefined;
  status?: PartnerStatus | undefined;
}

/** Newest first; `q` finds a partner by id or by a part of its name, case-insensitively. */
export async function listPartners(db: DbOrTx, query: PartnerQuery): Promise<PartnerView[]> {
  const pattern = query.q ? `%${query.q.replace(/[\\%_]/g, (c) => `\\${c}`)}%` : undefined;
  const rows = await selectPartners(db)
    .where(
      and(
        eq(partners.livemode, true),
        pattern ? or(ilike(partners.name, pattern), eq(partners.id, query.q!)) : undefined,
        query.status ? eq(partners.status, query.status) : undefined,
        query.startingAfter ? lt(partners.id, query.startingAfter) : undefined,
      ),
    )
    .orderBy(desc(partners.id))
    .limit(query.limit + 1);
  return rows.map((row) => partnerView(row.partner, row.balance));
}

/** A partner with its first API key; the secret is returned only here. */
export async function createPartnerAsOperator(
  db: DbOrTx, clock: Clock, by: AuditActorRef, name: string,
): Promise<{ partner: PartnerView; key: ApiKeyView; secret: string; testKey: ApiKeyView; testSecret: string }> {
  return db.transaction(async (tx) => {
    const created = await createPartner(tx, clock, name);
    await recordAudit(tx, clock, by, { action: 'partner.created', targetType: 'partner', targetId: created.partner.id, partnerId: created.partner.id, details: { name, api_key: created.key.id } });
    return { partner: await getPartner(tx, created.partner.id), key: created.key, secret: created.secret, testKey: created.testKey, testSecret: created.testSecret };
  });
}

type PartnerAction = 'suspend' | 'reactivate';
const transitions: Transitions<PartnerStatus, PartnerAction> = { suspend: ['active'], reactivate: ['suspended'] };

/** Suspends or reactivates; the partner hears of it through `partner.suspended` / `partner.reactivated`. */
export async function setPartnerSuspended(
  db: DbOrTx, clock: Clock, by: AuditActorRef, id: string, suspend: boolean, reason: string,
): Promise<PartnerView> {
  return db.transaction(async (tx) => {
    const [current] = await tx.select().from(partners).where(livePartner(id)).for('update');
    if (!current) throw notFound('partner', id);
    assertTransition(transitions, 'partner', id, current.status, suspend ? 'suspend' : 'reactivate');
    const before = await getPartner(tx, id);
    await tx
      .update(partners)
      .set(suspend ? { status: 'suspended', suspendedAt: clock.now(), suspensionReason: reason } : { status: 'active', suspendedAt: null, suspensionReason: null })
      .where(eq(partners.id, id));
    const after = await getPartner(tx, id);
    await recordEvent(tx, clock, {
      partnerId: id,
      type: suspend ? 'partner.suspended' : 'partner.reactivated',
      object: after,
      previousAttributes: { status: before.status, suspended_at: before.suspended_at, suspension_reason: before.suspension_reason },
    });
    await recordAudit(tx, clock, by, { action: suspend ? 'partner.suspended' : 'partner.reactivated', targetType: 'partner', targetId: id, partnerId: id, reason });
    return after;
  });
}

/**
 * A correction of a partner's credit with a reason: an `adjustment_credit` or `adjustment_debit` ledger entry,
 * never an edit. A debit larger than the balance is refused like any charge (402), so the balance stays >= 0.
 */
export async function adjustCredit(
  db: DbOrTx, clock: Clock, by: AuditActorRef, partnerId: string, input: { amount: number; reason: string },
): Promise<LedgerEntryView> {
  if (!Number.isSafeInteger(input.amount) || input.amount === 0) {
    throw new ProblemError(400, 'validation_error', 'Invalid request', 'The amount must be a non-zero integer of euro cents.');
  }
  return db.transaction(async (tx) => {
    const [exists] = await tx.select({ id: partners.id }).from(partners).where(livePartner(partnerId));
    if (!exists) throw notFound('partner', partnerId);
    const kind = input.amount > 0 ? 'adjustment_credit' : 'adjustment_debit';
    const entry = await postMovement(tx, clock, kind, input.amount, {
      partnerId, amount: Math.abs(input.amount), description: `Adjustment: ${input.reason}`, requestId: currentRequest()?.id ?? null,
    });
    await recordAudit(tx, clock, by, { action: 'credit.adjusted', targetType: 'ledger_entry', targetId: entry.id, partnerId, reason: input.reason, details: { amount: input.amount, balance_after: entry.balance_after } });
    return entry;
  });
}
