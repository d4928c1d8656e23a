import { eq, sql, type SQL } from 'drizzle-orm';
import type { PgColumn } from 'drizzle-orm/pg-core';
import { partners, type DbOrTx } from '@pec-partner/db';
import { ProblemError } from '../http/problem.ts';

/**
 * Whether a partner row is of the live world. False for a test twin (the sandbox of `sk_test_` keys): its credit is
 * free and simulated, so nothing it does is invoiced and the provider's staff never see it.
 */
export async function isLivePartner(db: DbOrTx, partnerId: string): Promise<boolean> {
  const [row] = await db.select({ livemode: partners.livemode }).from(partners).where(eq(partners.id, partnerId));
  return row?.livemode !== false;
}

/** A condition on a `partner_id` column: the row belongs to a live partner (the operator's views and matching). */
export const ofLivePartner = (partnerIdColumn: PgColumn): SQL =>
  sql`${partnerIdColumn} in (select ${partners.id} from ${partners} where ${partners.livemode})`;

/** The answer of a sandbox-only route (test helpers, test clocks) to a live key or token. */
export const testModeOnly = (): ProblemError =>
  new ProblemError(403, 'test_mode_only', 'Forbidden',
    'This operation exists in test mode (the sandbox) only: call it with a test key (`sk_test_…`) or its token. Live objects change only as real events happen.');
