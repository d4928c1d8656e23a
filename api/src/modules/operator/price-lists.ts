import { and, eq } from 'drizzle-orm';
import { DEFAULT_PRICE_LIST_ID, partners, type DbOrTx } from '@pec-partner/db';
import type { Clock } from '../../clock.ts';
import { notFound } from '../../http/problem.ts';
import { recordEvent } from '../../events/record.ts';
import { assertPriceListExists, getPriceList, insertPriceList, insertPriceListVersion, type PriceListVersionView, type PriceListView } from '../credit/price-lists.ts';
import type { PriceListConfig } from '../credit/prices.ts';
import { recordAudit, type AuditActorRef } from './audit.ts';
import { getPartner, type PartnerView } from './partners.ts';

const authorOf = (by: AuditActorRef) => ({ operatorKeyId: by.actor === 'operator_key' ? by.operatorKeyId : null });

/** A new list with its version 1 in force from now; audited. */
export async function createPriceList(
  db: DbOrTx, clock: Clock, by: AuditActorRef, input: { name: string; prices: PriceListConfig; reason: string },
): Promise<PriceListView> {
  return db.transaction(async (tx) => {
    const { id } = await insertPriceList(tx, clock, authorOf(by), input.name, input.prices);
    await recordAudit(tx, clock, by, { action: 'price_list.created', targetType: 'price_list', targetId: id, reason: input.reason, details: { name: input.name, version: 1 } });
    return getPriceList(tx, clock.now(), id);
  });
}

/** Appends a version (now or later, never in the past); audited. Charges from `effective_from` on use it. */
export async function addPriceListVersion(
  db: DbOrTx, clock: Clock, by: AuditActorRef, listId: string, input: { prices: PriceListConfig; effectiveFrom?: Date | undefined; reason: string },
): Promise<PriceListVersionView> {
  return db.transaction(async (tx) => {
    const version = await insertPriceListVersion(tx, clock, authorOf(by), listId, input.prices, input.effectiveFrom);
    await recordAudit(tx, clock, by, {
      action: 'price_list.version_created', targetType: 'price_list', targetId: listId, reason: input.reason,
      details: { version: version.version, effective_from: version.effective_from },
    });
    return version;
  });
}

/**
 * Assigns a list to a partner (null or `pl_default`: back to the default list). Its next charges use the new
 * list's version in force at each charge; nothing charged before changes. Emits `partner.price_list_assigned`
 * and is audited; assigning the list the partner already has changes and records nothing.
 */
export async function assignPriceList(
  db: DbOrTx, clock: Clock, by: AuditActorRef, partnerId: string, listId: string | null, reason: string,
): Promise<PartnerView> {
  return db.transaction(async (tx) => {
    const [current] = await tx.select({ priceListId: partners.priceListId }).from(partners).where(and(eq(partners.id, partnerId), eq(partners.livemode, true))).for('update');
    if (!current) throw notFound('partner', partnerId);
    const stored = listId === DEFAULT_PRICE_LIST_ID ? null : listId;
    if (stored) await assertPriceListExists(tx, stored);
    if (current.priceListId === stored) return getPartner(tx, partnerId);
    const before = await getPartner(tx, partnerId);
    await tx.update(partners).set({ priceListId: stored }).where(eq(partners.id, partnerId));
    const after = await getPartner(tx, partnerId);
    await recordEvent(tx, clock, { partnerId, type: 'partner.price_list_assigned', object: after, previousAttributes: { price_list: before.price_list } });
    await recordAudit(tx, clock, by, {
      action: 'partner.price_list_assigned', targetType: 'partner', targetId: partnerId, partnerId, reason,
      details: { price_list: after.price_list, previous_price_list: before.price_list },
    });
    return after;
  });
}
