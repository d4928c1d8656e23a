import { isDeepStrictEqual } from 'node:util';
import { and, eq, isNull } from 'drizzle-orm';
import { events, webhookDeliveries, webhookEndpoints, type DbOrTx } from '@pec-partner/db';
import { realNow, type Clock } from '../clock.ts';
import { newId } from '../ids.ts';
import { API_VERSION, selects, type EventType } from './catalogue.ts';
import { currentRequest } from './request-context.ts';

/** A resource as the API returns it: every one has its `id` and its `object` name. */
export interface ApiObject {
  id: string;
  object: string;
  [field: string]: unknown;
}

export interface EventInput {
  partnerId: string;
  type: EventType;
  object: ApiObject;
  /** For updates: the old values of the fields that changed, as the API showed them. */
  previousAttributes?: Record<string, unknown>;
  /** Only for `test.webhook`: the one endpoint it goes to, whatever its filter. */
  onlyEndpointId?: string;
}

export interface RecordedEvent {
  id: string;
  object: 'event';
  type: EventType;
  api_version: string;
  created_at: string;
  data: { object: ApiObject; previous_attributes?: Record<string, unknown> };
  request: { id: string | null; idempotency_key: string | null };
}

/**
 * Writes an event in the caller's transaction (the outbox) and, in the same statement set, one pending delivery
 * per enabled endpoint whose filter selects it: the event and what is owed to each endpoint exist exactly when
 * the change that caused them commits, and a rolled-back change leaves neither.
 */
export async function recordEvent(tx: DbOrTx, clock: Clock, input: EventInput): Promise<RecordedEvent> {
  // Real time, also for a test world on its test clock: the event is readable for 30 days from when it happened,
  // and its deliveries are due now for the dispatcher, which knows no world.
  const now = realNow(clock);
  const request = currentRequest();
  const data = input.previousAttributes ? { object: input.object, previous_attributes: input.previousAttributes } : { object: input.object };
  const id = newId('evt', now);
  await tx.insert(events).values({
    id,
    partnerId: input.partnerId,
    type: input.type,
    apiVersion: API_VERSION,
    objectType: input.object.object,
    objectId: input.object.id,
    data,
    requestId: request?.id ?? null,
    idempotencyKey: request?.idempotencyKey ?? null,
    createdAt: now,
  });

  const endpoints = await tx
    .select({ id: webhookEndpoints.id, enabledEvents: webhookEndpoints.enabledEvents })
    .from(webhookEndpoints)
    .where(and(eq(webhookEndpoints.partnerId, input.partnerId), eq(webhookEndpoints.status, 'enabled'), isNull(webhookEndpoints.deletedAt)));
  const targets = input.onlyEndpointId
    ? endpoints.filter((endpoint) => endpoint.id === input.onlyEndpointId)
    : endpoints.filter((endpoint) => selects(endpoint.enabledEvents, input.type));
  if (targets.length > 0) {
    await tx.insert(webhookDeliveries).values(targets.map((endpoint) => ({
      id: newId('wdl', now),
      eventId: id,
      endpointId: endpoint.id,
      partnerId: input.partnerId,
      status: 'pending' as const,
      nextAttemptAt: now,
      createdAt: now,
    })));
  }
  return toEventView({ id, type: input.type, apiVersion: API_VERSION, data, requestId: request?.id ?? null, idempotencyKey: request?.idempotencyKey ?? null, createdAt: now });
}

/** The event as the API and the webhook body show it. */
export function toEventView(row: {
  id: string; type: string; apiVersion: string; data: RecordedEvent['data']; requestId: string | null; idempotencyKey: string | null; createdAt: Date;
}): RecordedEvent {
  return {
    id: row.id,
    object: 'event',
    type: row.type as EventType,
    api_version: row.apiVersion,
    created_at: row.createdAt.toISOString(),
    data: row.data,
    request: { id: row.requestId, idempotency_key: row.idempotencyKey },
  };
}

/**
 * What an update event's `previous_attributes` holds: the old value of every top-level field of the API view
 * that differs in the new view (nested objects compared whole, as PATCH replaces them whole).
 */
export function changedAttributes<T extends object>(before: T, after: T): Partial<T> {
  const previous: Partial<T> = {};
  for (const key of Object.keys(before) as (keyof T)[]) {
    if (!isDeepStrictEqual(before[key], after[key])) previous[key] = before[key];
  }
  return previous;
}
