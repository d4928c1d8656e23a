import { sql } from 'drizzle-orm';
import { bigserial, boolean, check, index, integer, json, jsonb, pgTable, text, timestamp, uniqueIndex } from 'drizzle-orm/pg-core';
import { partners } from './partners.ts';

/**
 * The outbox: every state change and credit movement writes one row here in the transaction that makes the
 * change, so an event exists exactly when its change committed. Kept 30 days (a scheduled task purges older).
 */
export const events = pgTable(
  'events',
  {
    id: text('id').primaryKey(),
    /** Total order of events per database: lists and cursors follow it. */
    seq: bigserial('seq', { mode: 'number' }).notNull(),
    partnerId: text('partner_id').notNull().references(() => partners.id),
    type: text('type').notNull(),
    apiVersion: text('api_version').notNull(),
    /** The resource the event is about (`data.object.id` and its `object`), for filtering. */
    objectType: text('object_type').notNull(),
    objectId: text('object_id').notNull(),
    /**
     * `{ object, previous_attributes? }` exactly as delivered. `json`, not `jsonb`: it keeps the fields in the order
     * the API shows them, so an event reads like the resource's GET.
     */
    data: json('data').$type<{ object: { id: string; object: string; [field: string]: unknown }; previous_attributes?: Record<string, unknown> }>().notNull(),
    requestId: text('request_id'),
    idempotencyKey: text('idempotency_key'),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull(),
  },
  (t) => [
    uniqueIndex('events_seq_key').on(t.seq),
    index('events_partner_seq_idx').on(t.partnerId, t.seq),
    index('events_partner_object_idx').on(t.partnerId, t.objectId, t.seq),
    index('events_partner_type_idx').on(t.partnerId, t.type, t.seq),
    index('events_created_at_idx').on(t.createdAt),
  ],
);

export const webhookEndpointStatuses = ['enabled', 'disabled'] as const;
export type WebhookEndpointStatus = (typeof webhookEndpointStatuses)[number];
export const webhookDisabledReasons = ['partner', 'gone', 'failing'] as const;
export type WebhookDisabledReason = (typeof webhookDisabledReasons)[number];

/** Where a partner wants its events. Secrets are Standard Webhooks `whsec_…`; during a rotation both sign. */
export const webhookEndpoints = pgTable(
  'webhook_endpoints',
  {
    id: text('id').primaryKey(),
    partnerId: text('partner_id').notNull().references(() => partners.id),
    url: text('url').notNull(),
    description: text('description'),
    /** Event types delivered: exact types, `prefix.*`, or `*` (every type except the opt-in `message.*`). */
    enabledEvents: text('enabled_events').array().notNull(),
    status: text('status', { enum: webhookEndpointStatuses }).notNull(),
    /** Why it was disabled: `partner` (PATCH), `gone` (the receiver answered 410), `failing` (3 days of failures). */
    disabledReason: text('disabled_reason', { enum: webhookDisabledReasons }),
    secret: text('secret').notNull(),
    previousSecret: text('previous_secret'),
    previousSecretExpiresAt: timestamp('previous_secret_expires_at', { withTimezone: true, mode: 'date' }),
    /** Start of the current run of failed attempts; null once an attempt succeeds. */
    failingSince: timestamp('failing_since', { withTimezone: true, mode: 'date' }),
    metadata: jsonb('metadata').$type<Record<string, string>>().notNull().default({}),
    deletedAt: timestamp('deleted_at', { withTimezone: true, mode: 'date' }),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull(),
    updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull(),
  },
  (t) => [
    index('webhook_endpoints_partner_idx').on(t.partnerId, t.createdAt),
    check('webhook_endpoints_status_check', sql`${t.status} in ('enabled','disabled')`),
    check('webhook_endpoints_disabled_reason_check', sql`${t.disabledReason} in ('partner','gone','failing')`),
  ],
);

export const webhookDeliveryStatuses = ['pending', 'succeeded', 'failed'] as const;
export type WebhookDeliveryStatus = (typeof webhookDeliveryStatuses)[number];

/**
 * One event owed to one endpoint, written with the event (fan-out in the same transaction), so nothing that
 * committed can be missed. The dispatcher claims due rows with FOR UPDATE SKIP LOCKED and a lease.
 */
export const webhookDeliveries = pgTable(
  'webhook_deliveries',
  {
    id: text('id').primaryKey(),
    eventId: text('event_id').notNull().references(() => events.id, { onDelete: 'cascade' }),
    endpointId: text('endpoint_id').notNull().references(() => webhookEndpoints.id),
    partnerId: text('partner_id').notNull().references(() => partners.id),
    status: text('status', { enum: webhookDeliveryStatuses }).notNull(),
    attempts: integer('attempts').notNull().default(0),
    nextAttemptAt: timestamp('next_attempt_at', { withTimezone: true, mode: 'date' }),
    lockedUntil: timestamp('locked_until', { withTimezone: true, mode: 'date' }),
    /** The worker incarnation holding the lease and when (database time) it claimed it; see WorkerIdentity. */
    lockedBy: integer('locked_by'),
    lockedAt: timestamp('locked_at', { withTimezone: true, mode: 'date' }),
    lastAttemptAt: timestamp('last_attempt_at', { withTimezone: true, mode: 'date' }),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull(),
  },
  (t) => [
    uniqueIndex('webhook_deliveries_event_endpoint_key').on(t.eventId, t.endpointId),
    index('webhook_deliveries_due_idx').on(t.nextAttemptAt).where(sql`${t.status} = 'pending'`),
    index('webhook_deliveries_endpoint_idx').on(t.endpointId, t.createdAt),
    /** The dispatcher counts each endpoint's deliveries in flight (its concurrency bound) on every claim. */
    index('webhook_deliveries_endpoint_pending_idx').on(t.endpointId).where(sql`${t.status} = 'pending'`),
    check('webhook_deliveries_status_check', sql`${t.status} in ('pending','succeeded','failed')`),
  ],
);

/** Every HTTP attempt, successful or not: what the partner sees under the endpoint's attempts. */
export const webhookAttempts = pgTable(
  'webhook_attempts',
  {
    id: text('id').primaryKey(),
    seq: bigserial('seq', { mode: 'number' }).notNull(),
    deliveryId: text('delivery_id').notNull().references(() => webhookDeliveries.id, { onDelete: 'cascade' }),
    eventId: text('event_id').notNull(),
    endpointId: text('endpoint_id').notNull().references(() => webhookEndpoints.id),
    partnerId: text('partner_id').notNull().references(() => partners.id),
    url: text('url').notNull(),
    succeeded: boolean('succeeded').notNull(),
    /** HTTP status, null when no answer came (timeout, refused connection, unsafe address). */
    responseStatus: integer('response_status'),
    /** The first bytes of the answer's body (at most 1 KiB), for the partner's debugging. */
    responseBodyExcerpt: text('response_body_excerpt'),
    error: text('error'),
    latencyMs: integer('latency_ms').notNull(),
    attemptedAt: timestamp('attempted_at', { withTimezone: true, mode: 'date' }).notNull(),
  },
  (t) => [
    uniqueIndex('webhook_attempts_seq_key').on(t.seq),
    index('webhook_attempts_endpoint_seq_idx').on(t.endpointId, t.seq),
    index('webhook_attempts_event_idx').on(t.eventId),
  ],
);
