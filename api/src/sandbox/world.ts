import { sql, type SQL } from 'drizzle-orm';
import type { PgColumn } from 'drizzle-orm/pg-core';
import { partners } from '@pec-partner/db';

/**
 * Live and test mode are two worlds in one deployment (see `partners.livemode`). Partner-scoped queries keep them
 * apart on their own; the few global lookups (an address, a certified domain name) must add this condition:
 * the row's `livemode` column equals the world of the partner asking.
 */
export const inWorldOf = (livemodeColumn: PgColumn, partnerId: string): SQL =>
  sql`${livemodeColumn} = (select ${partners.livemode} from ${partners} where ${partners.id} = ${partnerId})`;
