import { and, desc, eq, inArray, isNull, lt, sql } from 'drizzle-orm';
import { webhookAttempts, webhookDeliveries, webhookEndpoints, type Db, type DbOrTx, type WebhookEndpointStatus } from '@pec-partner/db';
import type { Clock } from '../../clock.ts';
import type { AppConfig } from '../../config.ts';
import { isValidPattern, selects } from '../../events/catalogue.ts';
import { recordEvent, type RecordedEvent } from '../../events/record.ts';
import { conflict, invalid, notFound, type FieldError } from '../../http/problem.ts';
import { newId } from '../../ids.ts';
import { generateSecret } from '../../webhooks/signing.ts';
import { webhookUrlProblem } from '../../webhooks/url-safety.ts';
import { getEvent } from '../events/service.ts';

type EndpointRow = typeof webhookEndpoints.$inferSelect;
type DeliveryRow = typeof webhookDeliveries.$inferSelect;
type AttemptRow = typeof webhookAttempts.$inferSelect;

export interface WebhookDeps {
  db: Db;
  clock: Clock;
  config: AppConfig;
}

/** After a rotation the previous secret keeps signing this long, so receivers can switch without losing events. */
export const SECRET_OVERLAP_MS = 24 * 3_600_000;

/** The endpoint as the API shows it: never the secret, which only the create and rotate answers carry. */
export function endpointView(row: EndpointRow, now: Date) {
  const rotationEnds = row.previousSecret && row.previousSecretExpiresAt && row.previousSecretExpiresAt > now ? row.previousSecretExpiresAt : null;
  return {
    id: row.id,
    object: 'webhook_endpoint' as const,
    url: row.url,
    description: row.description,
    enabled_events: row.enabledEvents,
    status: row.status,
    disabled_reason: row.disabledReason,
    metadata: row.metadata,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
    secret_rotation_ends_at: rotationEnds?.toISOString() ?? null,
  };
}
export type EndpointView = ReturnType<typeof endpointView>;

export function deliveryView(row: DeliveryRow) {
  return {
    id: row.id,
    object: 'webhook_delivery' as const,
    event: row.eventId,
    endpoint: row.endpointId,
    status: row.status,
    attempts: row.attempts,
    next_attempt_at: row.nextAttemptAt?.toISOString() ?? null,
    last_attempt_at: row.lastAttemptAt?.toISOString() ?? null,
    created_at: row.createdAt.toISOString(),
  };
}

export function attemptView(row: AttemptRow) {
  return {
    id: row.id,
    object: 'webhook_attempt' as const,
    event: row.eventId,
    endpoint: row.endpointId,
    url: row.url,
    attempted_at: row.attemptedAt.toISOString(),
    succeeded: row.succeeded,
    response_status: row.responseStatus,
    response_body_excerpt: row.responseBodyExcerpt,
    error: row.error,
    latency_ms: row.latencyMs,
  };
}

function checkUrl(config: AppConfig, url: string): string {
  const problem = webhookUrlProblem(url, config.appEnv);
  if (problem) throw invalid([{ pointer: '/url', location: 'body', code: problem.code, detail: problem.detail }], `url ${problem.detail}.`);
  return url;
}

/** Every entry checked, each invalid one reported at its own index; duplicates dropped, order kept. */
function checkEnabledEvents(patterns: string[]): string[] {
  const errors: FieldError[] = patterns.flatMap((pattern, index) => isValidPattern(pattern) ? [] : [{
    pointer: `/enabled_events/${index}`,
    location: 'body' as const,
    code: 'unknown_event_type',
    detail: `'${pattern}' is not an event type, '<prefix>.*' or '*'`,
  }]);
  if (errors.length > 0) throw invalid(errors, 'enabled_events lists unknown event types.');
  return [...new Set(patterns)];
}

export interface EndpointCreate {
  url: string;
  description?: string | undefined;
  enabled_events?: string[] | undefined;
  metadata?: Record<string, string> | undefined;
}

export async function createEndpoint(deps: WebhookDeps, partnerId: string, input: EndpointCreate) {
  const url = checkUrl(deps.config, input.url);
  const enabledEvents = checkEnabledEvents(input.enabled_events ?? ['*']);
  const now = deps.clock.now();
  const secret = generateSecret();
  const [row] = await deps.db
    .insert(webhookEndpoints)
    .values({
      id: newId('we', now),
      partnerId,
      url,
      description: input.description ?? null,
      enabledEvents,
      status: 'enabled',
      secret,
      metadata: input.metadata ?? {},
      createdAt: now,
      updatedAt: now,
    })
    .returning();
  return { ...endpointView(row!, now), secret };
}

async function findEndpoint(db: DbOrTx, partnerId: string, id: string, lock = false): Promise<EndpointRow> {
  const query = db
    .select()
    .from(webhookEndpoints)
    .where(and(eq(webhookEndpoints.id, id), eq(webhookEndpoints.partnerId, partnerId), isNull(webhookEndpoints.deletedAt)));
  // NO KEY UPDATE: deliveries inserted meanwhile (their foreign key takes KEY SHARE) need not wait for us.
  const [row] = lock ? await query.for('no key update') : await query;
  if (!row) throw notFound('webhook endpoint', id);
  return row;
}

export async function getEndpoint(deps: WebhookDeps, partnerId: string, id: string): Promise<EndpointView> {
  return endpointView(await findEndpoint(deps.db, partnerId, id), deps.clock.now());
}

export async function listEndpoints(deps: WebhookDeps, partnerId: string, query: { limit: number; startingAfter?: string | undefined }): Promise<EndpointView[]> {
  const rows = await deps.db
    .select()
    .from(webhookEndpoints)
    .where(and(
      eq(webhookEndpoints.partnerId, partnerId),
      isNull(webhookEndpoints.deletedAt),
      query.startingAfter ? lt(webhookEndpoints.id, query.startingAfter) : undefined,
    ))
    .orderBy(desc(webhookEndpoints.id))
    .limit(query.limit + 1);
  const now = deps.clock.now();
  return rows.map((row) => endpointView(row, now));
}

export interface EndpointUpdate {
  url?: string | undefined;
  description?: string | null | undefined;
  enabled_events?: string[] | undefined;
  metadata?: Record<string, string | null> | undefined;
  status?: WebhookEndpointStatus | undefined;
}

export async function updateEndpoint(deps: WebhookDeps, partnerId: string, id: string, patch: EndpointUpdate): Promise<EndpointView> {
  const url = patch.url === undefined ? undefined : checkUrl(deps.config, patch.url);
  const enabledEvents = patch.enabled_events === undefined ? undefined : checkEnabledEvents(patch.enabled_events);
  return deps.db.transaction(async (tx) => {
    const row = await findEndpoint(tx, partnerId, id, true);
    const now = deps.clock.now();
    const changes: Partial<EndpointRow> = { updatedAt: now };
    if (url !== undefined && url !== row.url) {
      changes.url = url;
      // Failures of the old receiver say nothing about the new one.
      changes.failingSince = null;
    }
    if (patch.description !== undefined) changes.description = patch.description;
    if (enabledEvents !== undefined) changes.enabledEvents = enabledEvents;
    if (patch.metadata) {
      const metadata = { ...row.metadata };
      for (const [key, value] of Object.entries(patch.metadata)) {
        if (value === null) delete metadata[key];
        else metadata[key] = value;
      }
      if (Object.keys(metadata).length > 50) {
        throw invalid([{ pointer: '/metadata', location: 'body', code: 'out_of_range', detail: 'must have at most 50 keys' }]);
      }
      changes.metadata = metadata;
    }
    if (patch.status === 'disabled' && row.status === 'enabled') {
      changes.status = 'disabled';
      changes.disabledReason = 'partner';
    } else if (patch.status === 'enabled' && row.status === 'disabled') {
      // A fresh start: the failure run that disabled it must not disable it again at the next failed attempt.
      changes.status = 'enabled';
      changes.disabledReason = null;
      changes.failingSince = null;
    }
    const [updated] = await tx.update(webhookEndpoints).set(changes).where(eq(webhookEndpoints.id, row.id)).returning();
    return endpointView(updated!, now);
  });
}

/** Soft delete: attempts keep naming the endpoint; what was still owed to it is given up in the same transaction. */
export async function deleteEndpoint(deps: WebhookDeps, partnerId: string, id: string) {
  return deps.db.transaction(async (tx) => {
    const row = await findEndpoint(tx, partnerId, id, true);
    const now = deps.clock.now();
    await tx.update(webhookEndpoints).set({ deletedAt: now, updatedAt: now }).where(eq(webhookEndpoints.id, row.id));
    await tx
      .update(webhookDeliveries)
      .set({ status: 'failed', nextAttemptAt: null })
      .where(and(eq(webhookDeliveries.endpointId, row.id), eq(webhookDeliveries.status, 'pending')));
    return { id: row.id, object: 'webhook_endpoint' as const, deleted: true as const };
  });
}

/** A new secret; the current one becomes the previous one and keeps signing for 24 h (a previous one is dropped). */
export async function rotateSecret(deps: WebhookDeps, partnerId: string, id: string) {
  return deps.db.transaction(async (tx) => {
    const row = await findEndpoint(tx, partnerId, id, true);
    const now = deps.clock.now();
    const secret = generateSecret();
    const [updated] = await tx
      .update(webhookEndpoints)
      .set({ secret, previousSecret: row.secret, previousSecretExpiresAt: new Date(now.getTime() + SECRET_OVERLAP_MS), updatedAt: now })
      .where(eq(webhookEndpoints.id, row.id))
      .returning();
    return { ...endpointView(updated!, now), secret };
  });
}

/** A `test.webhook` event for this endpoint alone, whatever its filter; `data.object` is the endpoint. */
export async function sendTestEvent(deps: WebhookDeps, partnerId: string, id: string): Promise<RecordedEvent> {
  return deps.db.transaction(async (tx) => {
    const row = await findEndpoint(tx, partnerId, id);
    if (row.status !== 'enabled') throw conflict('webhook_endpoint_disabled', `The webhook endpoint '${id}' is disabled; enable it first.`);
    return recordEvent(tx, deps.clock, { partnerId, type: 'test.webhook', object: endpointView(row, deps.clock.now()), onlyEndpointId: row.id });
  });
}

export async function listAttempts(deps: WebhookDeps, partnerId: string, id: string, query: { limit: number; startingAfter?: string | undefined }) {
  const endpoint = await findEndpoint(deps.db, partnerId, id);
  const rows = await deps.db
    .select()
    .from(webhookAttempts)
    .where(and(
      eq(webhookAttempts.endpointId, endpoint.id),
      eq(webhookAttempts.partnerId, partnerId),
      query.startingAfter ? lt(webhookAttempts.id, query.startingAfter) : undefined,
    ))
    .orderBy(desc(webhookAttempts.id))
    .limit(query.limit + 1);
  return rows.map(attemptView);
}

/**
 * Queues the event again, now, with a fresh retry schedule: for one endpoint (any enabled one of the partner,
 * whatever its filter, since the partner names it), or for every enabled endpoint that selects the event today
 * or already had it (the only way a `test.webhook` is selected), endpoints created after the event included.
 * The event keeps its id, so receivers de-duplicate a redelivery like a retry.
 */
export async function redeliverEvent(deps: WebhookDeps, partnerId: string, eventId: string, endpointId: string | undefined) {
  const now = deps.clock.now();
  const event = await getEvent(deps.db, now, partnerId, eventId);
  return deps.db.transaction(async (tx) => {
    let targets: string[];
    if (endpointId !== undefined) {
      const [endpoint] = await tx
        .select({ id: webhookEndpoints.id, status: webhookEndpoints.status })
        .from(webhookEndpoints)
        .where(and(eq(webhookEndpoints.id, endpointId), eq(webhookEndpoints.partnerId, partnerId), isNull(webhookEndpoints.deletedAt)));
      if (!endpoint) {
        throw invalid([{ pointer: '/endpoint', location: 'body', code: 'resource_missing', detail: `no webhook endpoint '${endpointId}'` }], `No webhook endpoint '${endpointId}'.`);
      }
      if (endpoint.status !== 'enabled') throw conflict('webhook_endpoint_disabled', `The webhook endpoint '${endpointId}' is disabled; enable it first.`);
      targets = [endpoint.id];
    } else {
      const alreadyOwed = tx.select({ id: webhookDeliveries.endpointId }).from(webhookDeliveries).where(eq(webhookDeliveries.eventId, event.id));
      const candidates = await tx
        .select({ id: webhookEndpoints.id, enabledEvents: webhookEndpoints.enabledEvents, owed: sql<boolean>`${inArray(webhookEndpoints.id, alreadyOwed)}` })
        .from(webhookEndpoints)
        .where(and(eq(webhookEndpoints.partnerId, partnerId), eq(webhookEndpoints.status, 'enabled'), isNull(webhookEndpoints.deletedAt)))
        .orderBy(webhookEndpoints.id);
      targets = candidates.filter((endpoint) => endpoint.owed || selects(endpoint.enabledEvents, event.type)).map((endpoint) => endpoint.id);
    }
    if (targets.length === 0) return [];
    const rows = await tx
      .insert(webhookDeliveries)
      .values(targets.map((target) => ({
        id: newId('wdl', now),
        eventId: event.id,
        endpointId: target,
        partnerId,
        status: 'pending' as const,
        nextAttemptAt: now,
        createdAt: now,
      })))
      .onConflictDoUpdate({
        target: [webhookDeliveries.eventId, webhookDeliveries.endpointId],
        set: { status: 'pending', attempts: 0, nextAttemptAt: now },
      })
      .returning();
    return rows.map(deliveryView);
  });
}
