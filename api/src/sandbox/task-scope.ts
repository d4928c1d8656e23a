import { eq, sql, type SQL } from 'drizzle-orm';
import type { PgColumn } from 'drizzle-orm/pg-core';
import { testClocks, type DbOrTx } from '@pec-partner/db';
import type { Clock } from '../clock.ts';

/**
 * Which partners a run of a periodic task (renewals, expiries, re-checks) works on. The scheduled run passes none:
 * every partner except the test worlds that have a test clock, which live on their clock's time and are maintained
 * only when it advances. A test clock's advance passes its world: that partner only, whatever its clock.
 */
export interface TaskScope {
  partnerId?: string | undefined;
}

/** The condition a task adds on the partner column of the rows it picks. */
export function inTaskScope(partnerColumn: PgColumn | SQL, scope: TaskScope = {}): SQL {
  return scope.partnerId !== undefined
    ? sql`${partnerColumn} = ${scope.partnerId}`
    : sql`${partnerColumn} not in (select ${testClocks.partnerId} from ${testClocks})`;
}

/**
 * The time of a partner's world: its test clock's frozen time, or the clock's. For the doors that learn the world
 * only from what they find (an invitation token), after the request's own time was set.
 */
export async function worldNow(db: DbOrTx, clock: Clock, partnerId: string): Promise<Date> {
  const [row] = await db.select({ frozenTime: testClocks.frozenTime }).from(testClocks).where(eq(testClocks.partnerId, partnerId));
  return row?.frozenTime ?? clock.now();
}
