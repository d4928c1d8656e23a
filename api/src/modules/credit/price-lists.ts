import { and, asc, desc, eq, gt, lt, sql } from 'drizzle-orm';
import { DEFAULT_PRICE_LIST_ID, partners, priceLists, priceListVersions, type DbOrTx } from '@pec-partner/db';
import type { Clock } from '../../clock.ts';
import { newId } from '../../ids.ts';
import { invalid, notFound } from '../../http/problem.ts';
import type { PriceListConfig } from './prices.ts';

/** The prices that apply to one partner at one instant, and where they come from. */
export interface ResolvedPrices {
  listId: string;
  version: number;
  effectiveFrom: Date;
  prices: PriceListConfig;
}

/** Who recorded a list or a version: an operator key, or the system (PRICES_FILE at start-up). */
export type PriceListAuthor = { operatorKeyId: string | null };

/**
 * The partner's list: its assignment, or the default list. A sandbox (test twin) pays its live partner's prices,
 * so what a developer tries in test mode costs what it will cost live. One scalar subquery, usable in any query.
 */
const listOfPartner = (partnerId: string) =>
  sql`coalesce((select live.price_list_id from ${partners} world join ${partners} live on live.id = coalesce(world.live_partner_id, world.id) where world.id = ${partnerId}), ${DEFAULT_PRICE_LIST_ID})`;

/**
 * The price list in force for a partner at `at`: its assigned list (or the default one), that list's version with
 * the latest `effective_from` at or before `at` (on a tie, the higher version). One query; inside a transaction,
 * pass the transaction, so a charge reads the prices with the rest of its work.
 */
export async function pricesFor(db: DbOrTx, partnerId: string, at: Date): Promise<ResolvedPrices> {
  const [row] = await db
    .select({
      listId: priceListVersions.priceListId,
      version: priceListVersions.version,
      effectiveFrom: priceListVersions.effectiveFrom,
      prices: priceListVersions.prices,
    })
    .from(priceListVersions)
    .where(eq(priceListVersions.priceListId, listOfPartner(partnerId)))
    // The version in force at `at`; before the list's first version took effect (a sandbox's test clock may stand in
    // the past), the first version: a partner pays its own list at any date, never another's.
    .orderBy(
      sql`(${priceListVersions.effectiveFrom} <= ${at.toISOString()}::timestamptz) desc`,
      sql`case when ${priceListVersions.effectiveFrom} <= ${at.toISOString()}::timestamptz then ${priceListVersions.effectiveFrom} end desc nulls last`,
      asc(priceListVersions.effectiveFrom),
      desc(priceListVersions.version),
    )
    .limit(1);
  // Only a default list never seeded (the start-up seeds it) leaves a partner without a version.
  if (!row) throw new Error(`No price list version exists for partner '${partnerId}'.`);
  return { ...row, prices: row.prices as unknown as PriceListConfig };
}

/** What GET /v1/prices shows: the version in force and, when one is scheduled, the next one's date. */
export async function priceScheduleFor(db: DbOrTx, partnerId: string, at: Date): Promise<{ current: ResolvedPrices; upcoming: { version: number; effectiveFrom: Date } | null }> {
  const current = await pricesFor(db, partnerId, at);
  const [next] = await db
    .select({ version: priceListVersions.version, effectiveFrom: priceListVersions.effectiveFrom })
    .from(priceListVersions)
    .where(and(eq(priceListVersions.priceListId, current.listId), gt(priceListVersions.effectiveFrom, at)))
    .orderBy(asc(priceListVersions.effectiveFrom), desc(priceListVersions.version))
    .limit(1);
  return { current, upcoming: next ?? null };
}

/** Start-ups of several processes seed the default list one at a time. */
const SEED_LOCK = 7_265_434;

/**
 * The default list is a real row (`pl_default`) holding the deployment's PRICES_FILE (or the built-in defaults).
 * Idempotent: the first start records version 1, in force since the epoch (so every clock sees prices); a later
 * start with a different file records a new version in force from now. Versions an operator added to the default
 * list through the API are not compared: only a change of the file makes a version.
 */
export async function ensureDefaultPriceList(db: DbOrTx, clock: Clock, prices: PriceListConfig): Promise<{ version: number; created: boolean }> {
  return db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(${SEED_LOCK})`);
    const now = clock.now();
    await tx.insert(priceLists).values({ id: DEFAULT_PRICE_LIST_ID, name: 'Default', createdBy: null, createdAt: now }).onConflictDoNothing();
    const [fromConfig] = await tx
      .select({ version: priceListVersions.version, same: sql<boolean>`${priceListVersions.prices} = ${JSON.stringify(prices)}::jsonb` })
      .from(priceListVersions)
      .where(and(eq(priceListVersions.priceListId, DEFAULT_PRICE_LIST_ID), sql`${priceListVersions.createdBy} is null`))
      .orderBy(desc(priceListVersions.version))
      .limit(1);
    if (fromConfig?.same) return { version: fromConfig.version, created: false };
    const version = await nextVersion(tx, DEFAULT_PRICE_LIST_ID);
    await tx.insert(priceListVersions).values({
      priceListId: DEFAULT_PRICE_LIST_ID,
      version,
      prices: prices as unknown as Record<string, unknown>,
      effectiveFrom: fromConfig ? now : new Date(0),
      createdBy: null,
      createdAt: now,
    });
    return { version, created: true };
  });
}

async function nextVersion(tx: DbOrTx, listId: string): Promise<number> {
  const [row] = await tx
    .select({ max: sql<number>`coalesce(max(${priceListVersions.version}), 0)::int` })
    .from(priceListVersions)
    .where(eq(priceListVersions.priceListId, listId));
  return row!.max + 1;
}

export interface PriceListVersionView {
  object: 'price_list_version';
  price_list: string;
  version: number;
  prices: PriceListConfig;
  effective_from: string;
  created_by: string | null;
  created_at: string;
}

export interface PriceListView {
  id: string;
  object: 'price_list';
  name: string;
  default: boolean;
  current_version: number | null;
  latest_version: number;
  created_by: string | null;
  created_at: string;
  versions?: PriceListVersionView[];
}

type VersionRow = typeof priceListVersions.$inferSelect;

const versionView = (row: VersionRow): PriceListVersionView => ({
  object: 'price_list_version',
  price_list: row.priceListId,
  version: row.version,
  prices: row.prices as unknown as PriceListConfig,
  effective_from: row.effectiveFrom.toISOString(),
  created_by: row.createdBy,
  created_at: row.createdAt.toISOString(),
});

/** A plan's included space must fit under its maximum: what the API refuses beyond the document's own schema. */
export function checkPriceDocument(prices: PriceListConfig, pointer = '/prices'): void {
  const errors = Object.entries(prices.mailbox_plans).flatMap(([plan, spec]) => [
    ...(spec.inbox_gb > spec.max_inbox_gb ? [{ pointer: `${pointer}/mailbox_plans/${plan}/inbox_gb`, detail: 'must not exceed max_inbox_gb' }] : []),
    ...(spec.archive_gb > spec.max_archive_gb ? [{ pointer: `${pointer}/mailbox_plans/${plan}/archive_gb`, detail: 'must not exceed max_archive_gb' }] : []),
  ]);
  if (errors.length > 0) throw invalid(errors.map((e) => ({ ...e, location: 'body', code: 'out_of_range' })));
}

/** Lists with the version in force at `at` and the latest version; newest first, the default list among them. */
export async function listPriceLists(db: DbOrTx, at: Date, query: { limit: number; startingAfter?: string | undefined }): Promise<PriceListView[]> {
  const rows = await db
    .select({
      list: priceLists,
      current: sql<number | null>`(select v.version from ${priceListVersions} v where v.price_list_id = ${priceLists.id} and v.effective_from <= ${at.toISOString()}::timestamptz order by v.effective_from desc, v.version desc limit 1)`,
      latest: sql<number>`(select max(v.version)::int from ${priceListVersions} v where v.price_list_id = ${priceLists.id})`,
    })
    .from(priceLists)
    .where(query.startingAfter ? lt(priceLists.id, query.startingAfter) : undefined)
    .orderBy(desc(priceLists.id))
    .limit(query.limit + 1);
  return rows.map(({ list, current, latest }) => ({
    id: list.id, object: 'price_list', name: list.name, default: list.id === DEFAULT_PRICE_LIST_ID,
    current_version: current, latest_version: latest ?? 0, created_by: list.createdBy, created_at: list.createdAt.toISOString(),
  }));
}

/** A list with all its versions, oldest first. */
export async function getPriceList(db: DbOrTx, at: Date, id: string): Promise<PriceListView> {
  const [list] = await db.select().from(priceLists).where(eq(priceLists.id, id));
  if (!list) throw notFound('price list', id);
  const versions = await db.select().from(priceListVersions).where(eq(priceListVersions.priceListId, id)).orderBy(asc(priceListVersions.version));
  const inForce = versions.filter((v) => v.effectiveFrom <= at).sort((a, b) => b.effectiveFrom.getTime() - a.effectiveFrom.getTime() || b.version - a.version)[0];
  return {
    id: list.id, object: 'price_list', name: list.name, default: list.id === DEFAULT_PRICE_LIST_ID,
    current_version: inForce?.version ?? null, latest_version: versions.at(-1)?.version ?? 0,
    created_by: list.createdBy, created_at: list.createdAt.toISOString(), versions: versions.map(versionView),
  };
}

/** A new list; its version 1 is in force from now. */
export async function insertPriceList(tx: DbOrTx, clock: Clock, by: PriceListAuthor, name: string, prices: PriceListConfig): Promise<{ id: string; version: PriceListVersionView }> {
  checkPriceDocument(prices);
  const now = clock.now();
  const id = newId('pl', now);
  await tx.insert(priceLists).values({ id, name, createdBy: by.operatorKeyId, createdAt: now });
  const [row] = await tx
    .insert(priceListVersions)
    .values({ priceListId: id, version: 1, prices: prices as unknown as Record<string, unknown>, effectiveFrom: now, createdBy: by.operatorKeyId, createdAt: now })
    .returning();
  return { id, version: versionView(row!) };
}

/** How far in the past an effective date may lie (the request's own transit, clocks a little apart). */
export const EFFECTIVE_FROM_TOLERANCE_MS = 5 * 60_000;

/**
 * Appends a version, in force from `effectiveFrom` (default: now). Never in the past beyond the tolerance: a price
 * already charged is never re-priced. The list row is locked, so concurrent additions number 2, 3, … without gaps.
 */
export async function insertPriceListVersion(
  tx: DbOrTx, clock: Clock, by: PriceListAuthor, listId: string, prices: PriceListConfig, effectiveFrom: Date | undefined,
): Promise<PriceListVersionView> {
  const now = clock.now();
  const [list] = await tx.select({ id: priceLists.id }).from(priceLists).where(eq(priceLists.id, listId)).for('update');
  if (!list) throw notFound('price list', listId);
  checkPriceDocument(prices);
  const from = effectiveFrom ?? now;
  if (from.getTime() < now.getTime() - EFFECTIVE_FROM_TOLERANCE_MS) {
    throw invalid([{ pointer: '/effective_from', location: 'body', code: 'out_of_range', detail: `must not be in the past (now: ${now.toISOString()})` }]);
  }
  const [row] = await tx
    .insert(priceListVersions)
    .values({ priceListId: listId, version: await nextVersion(tx, listId), prices: prices as unknown as Record<string, unknown>, effectiveFrom: from, createdBy: by.operatorKeyId, createdAt: now })
    .returning();
  return versionView(row!);
}

/** Fails with 404 when the list does not exist. */
export async function assertPriceListExists(tx: DbOrTx, listId: string): Promise<void> {
  const [list] = await tx.select({ id: priceLists.id }).from(priceLists).where(eq(priceLists.id, listId));
  if (!list) throw notFound('price list', listId);
}
