import { sql, type SQL } from 'drizzle-orm';
import type { PgColumn } from 'drizzle-orm/pg-core';
import { testClocks } from '@pec-partner/db';

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
