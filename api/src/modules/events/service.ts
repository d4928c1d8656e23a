import { and, desc, eq, gte, inArray, like, lt } from 'drizzle-orm';
import { events, type Db, type DbOrTx } from '@pec-partner/db';
import { deleteInBatches } from '../../jobs/batches.ts';
import { isTypeOrPrefix } from '../../events/catalogue.ts';
import { toEventView, type RecordedEvent } from '../../events/record.ts';
import { invalid, notFound } from '../../http/problem.ts';
import { DAY_MS } from '../../jobs/scheduler.ts';

/** Events are kept, listed and retrievable for 30 days; the `events.purge` task deletes older ones. */
export const EVENT_RETENTION_MS = 30 * DAY_MS;

/** `data` is only ever written by recordEvent, whose object always carries its `id` and `object`. */
const view = (row: typeof events.$inferSelect): RecordedEvent => toEventView(row);

const visibleSince = (now: Date): Date => new Date(now.getTime() - EVENT_RETENTION_MS);

const escapeLike = (text: string): string => text.replace(/[\\%_]/g, (c) => `\\${c}`);

export interface EventQuery {
  limit: number;
  startingAfter?: string | undefined;
  type?: string | undefined;
  objectId?: string | undefined;
  createdAfter?: Date | undefined;
  createdBefore?: Date | undefined;
}

/** Newest first, in the order the events were written; only the last 30 days. */
export async function listEvents(db: DbOrTx, now: Date, partnerId: string, query: EventQuery): Promise<RecordedEvent[]> {
  if (query.type !== undefined && !isTypeOrPrefix(query.type)) {
    throw invalid([{ pointer: '/type', location: 'query', code: 'invalid_event_type', detail: 'must be an event type or `<prefix>.*`, e.g. `mailbox.*`' }]);
  }
  if (query.createdAfter && query.createdBefore && query.createdAfter >= query.createdBefore) {
    throw invalid([{ pointer: '/created_before', location: 'query', code: 'out_of_range', detail: "must be after 'created_after'" }]);
  }
  let cursorSeq: number | undefined;
  if (query.startingAfter) {
    const [cursor] = await db
      .select({ seq: events.seq })
      .from(events)
      .where(and(eq(events.partnerId, partnerId), eq(events.id, query.startingAfter)));
    if (!cursor) {
      throw invalid([{ pointer: '/starting_after', location: 'query', code: 'invalid_cursor', detail: 'is not an event of yours' }]);
    }
    cursorSeq = cursor.seq;
  }
  const since = visibleSince(now);
  const from = query.createdAfter && query.createdAfter > since ? query.createdAfter : since;
  const rows = await db
    .select()
    .from(events)
    .where(
      and(
        eq(events.partnerId, partnerId),
        gte(events.createdAt, from),
        query.createdBefore ? lt(events.createdAt, query.createdBefore) : undefined,
        cursorSeq !== undefined ? lt(events.seq, cursorSeq) : undefined,
        query.type === undefined
          ? undefined
          : query.type.endsWith('.*')
            ? like(events.type, `${escapeLike(query.type.slice(0, -1))}%`)
            : eq(events.type, query.type),
        query.objectId ? eq(events.objectId, query.objectId) : undefined,
      ),
    )
    .orderBy(desc(events.seq))
    .limit(query.limit + 1);
  return rows.map(view);
}

/** One of the partner's events of the last 30 days; older, foreign or unknown ones are the same 404. */
export async function getEvent(db: DbOrTx, now: Date, partnerId: string, id: string): Promise<RecordedEvent> {
  const [row] = await db
    .select()
    .from(events)
    .where(and(eq(events.id, id), eq(events.partnerId, partnerId), gte(events.createdAt, visibleSince(now))));
  if (!row) throw notFound('event', id);
  return view(row);
}

const PURGE_BATCH = 5_000;

/**
 * Deletes events older than 30 days (their deliveries and attempts go with them by cascade), in batches so no
 * single transaction holds many locks. Returns how many were deleted.
 */
export async function purgeExpiredEvents(db: Db, now: Date): Promise<number> {
  const cutoff = visibleSince(now);
  return deleteInBatches(PURGE_BATCH, async (limit) => {
    const batch = db.select({ id: events.id }).from(events).where(lt(events.createdAt, cutoff)).limit(limit);
    return (await db.delete(events).where(inArray(events.id, batch)).returning({ id: events.id })).length;
  });
}
