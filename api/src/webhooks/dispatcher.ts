import { stampLivemode } from '../http/livemode.ts';
import { performance } from 'node:perf_hooks';
import { eq, sql } from 'drizzle-orm';
import type { FastifyBaseLogger } from 'fastify';
import { Agent, request, type Dispatcher } from 'undici';
import { events, webhookAttempts, webhookDeliveries, webhookEndpoints, workerIdentity, type Db, type LeaseClaim, type WebhookDeliveryStatus, type WorkerIdentity } from '@pec-partner/db';
import type { Clock } from '../clock.ts';
import type { AppConfig } from '../config.ts';
import { API_VERSION } from '../events/catalogue.ts';
import { changedAttributes, recordEvent, toEventView, type RecordedEvent } from '../events/record.ts';
import { newId } from '../ids.ts';
import { DAY_MS } from '../jobs/scheduler.ts';
import { endpointView } from '../modules/webhooks/service.ts';
import { retryDelayMs } from './retry.ts';
import { signatureHeader } from './signing.ts';
import { describeUnsafe, safeLookup, unsafeIpLiteral, UnsafeAddressError } from './url-safety.ts';

/** An endpoint failing without a single success for this long is disabled (the issue's 3 days). */
export const DISABLE_AFTER_FAILING_MS = 3 * DAY_MS;
/** What an attempt keeps of the answer: enough to debug a receiver, never a stored download. */
export const EXCERPT_BYTES = 1024;
const USER_AGENT = `PEC-Partner-Webhooks/${API_VERSION}`;

/**
 * Connect, headers and each read of the body are limited to WEBHOOK_TIMEOUT_MS by undici (whose coarse timers may
 * fire up to a second late); this overall limit stops a receiver that trickles its answer byte by byte.
 */
const attemptDeadlineMs = (timeoutMs: number): number => 3 * timeoutMs + 1_000;

interface ClaimedDelivery {
  /** The delivery's id. */
  id: string;
  /** The incarnation key the lease was taken under (see WorkerIdentity). */
  holder: number;
  endpointId: string;
  partnerId: string;
  url: string;
  secrets: string[];
  event: RecordedEvent;
}

interface AttemptOutcome {
  attemptedAt: Date;
  succeeded: boolean;
  responseStatus: number | null;
  responseBodyExcerpt: string | null;
  error: string | null;
  latencyMs: number;
}

/** A claim that lost the race for an endpoint's last free slot to another worker: try again at once. */
const CONTENDED = Symbol('contended');
const SCOPE = 'webhook_deliveries';

/** A delivery's lease still protects an attempt: not expired, and its holder alive and running it. */
const leaseLive = (lease: LeaseClaim, alias: string, now: string, alsoInFlight: string[] = []) =>
  sql`(${sql.raw(alias)}.locked_until is not null and ${sql.raw(alias)}.locked_until > ${now}::timestamptz
    and not ${lease.holderGone(columnsOf(alias), alsoInFlight)})`;
const columnsOf = (alias: string) => ({ id: sql.raw(`${alias}.id`), lockedBy: sql.raw(`${alias}.locked_by`), lockedAt: sql.raw(`${alias}.locked_at`) });

/**
 * Delivers what the outbox owes to partners' endpoints. Deliveries are claimed in PostgreSQL with a lease, so
 * any number of workers in any number of processes share the work. The lease names its holder (see
 * WorkerIdentity): when a process is killed mid-attempt, its leases are taken over at once and the delivery is
 * attempted again, with the same `webhook-id`; a lease whose holder lives expires after the slowest possible
 * attempt. At-least-once, never lost.
 */
export class WebhookDispatcher {
  readonly #db: Db;
  readonly #clock: Clock;
  readonly #config: AppConfig;
  readonly #log: FastifyBaseLogger | undefined;
  #agent: Agent;
  /** Covers the slowest possible attempt plus the writes after it; only then may another worker take over. */
  readonly #leaseMs: number;
  #workers: Promise<void>[] = [];
  #stopping = false;
  readonly #wakers = new Set<() => void>();
  readonly #identity: WorkerIdentity;

  constructor(options: { db: Db; clock: Clock; config: AppConfig; log?: FastifyBaseLogger }) {
    this.#db = options.db;
    this.#identity = workerIdentity(options.db);
    this.#clock = options.clock;
    this.#config = options.config;
    this.#log = options.log;
    const { timeoutMs } = options.config.webhooks;
    this.#leaseMs = attemptDeadlineMs(timeoutMs) + 60_000;
    this.#agent = this.#newAgent();
  }

  #newAgent(): Agent {
    const { timeoutMs } = this.#config.webhooks;
    return new Agent({
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      connect: {
        timeout: timeoutMs,
        // Checked on the addresses the socket really uses, so DNS cannot point an accepted name inwards later.
        ...(this.#config.appEnv === 'development' ? {} : { lookup: safeLookup }),
      },
    });
  }

  /**
   * Takes one due delivery: pending, due, not leased (or its lease expired, or its holder gone), its endpoint
   * enabled and not deleted, and fewer than the endpoint's concurrency bound of its deliveries in flight. One
   * statement with SKIP LOCKED claims it; the endpoint row is locked too, so claims for one endpoint run one at a
   * time, and the recount after it (a fresh snapshot, every earlier claim of this endpoint committed) makes the
   * bound exact across workers and processes.
   */
  async #claim(): Promise<ClaimedDelivery | typeof CONTENDED | null> {
    const now = this.#clock.now();
    const at = now.toISOString();
    const bound = this.#config.webhooks.concurrencyPerEndpoint;
    try {
      return await this.#identity.claim(SCOPE, (lease) => this.#db.transaction(async (tx) => {
        const rows = await tx.execute<{
          delivery_id: string; endpoint_id: string; partner_id: string; url: string; secret: string;
          previous_secret: string | null; previous_secret_expires_at: string | null;
          event_id: string; type: string; api_version: string; data: RecordedEvent['data'];
          request_id: string | null; idempotency_key: string | null; created_at: string; livemode: boolean;
        }>(sql`
          with candidate as (
            select d.id, e.id as endpoint_id
            from ${webhookDeliveries} d
            join ${webhookEndpoints} e on e.id = d.endpoint_id
            where d.status = 'pending'
              and d.next_attempt_at <= ${at}::timestamptz
              and not ${leaseLive(lease, 'd', at)}
              and e.status = 'enabled' and e.deleted_at is null
              and (select count(*) from ${webhookDeliveries} busy
                   where busy.endpoint_id = d.endpoint_id and busy.status = 'pending'
                     and ${leaseLive(lease, 'busy', at)}) < ${bound}
            order by d.next_attempt_at, d.id
            limit 1
            for update of d skip locked
            for no key update of e skip locked
          )
          update ${webhookDeliveries} d
          set locked_until = ${new Date(now.getTime() + this.#leaseMs).toISOString()}::timestamptz, locked_by = ${lease.holder}, locked_at = now()
          from candidate, ${webhookEndpoints} e, ${events} ev
          where d.id = candidate.id and e.id = candidate.endpoint_id and ev.id = d.event_id
          returning d.id as delivery_id, e.id as endpoint_id, d.partner_id, e.url, e.secret, e.previous_secret,
            e.previous_secret_expires_at, ev.id as event_id, ev.type, ev.api_version, ev.data, ev.request_id,
            ev.idempotency_key, ev.created_at, (select p.livemode from partners p where p.id = d.partner_id) as livemode`);
        const row = rows[0];
        if (!row) return null;
        const [inFlight] = await tx.execute<{ n: number }>(sql`
          select count(*)::int as n from ${webhookDeliveries} busy
          where busy.endpoint_id = ${row.endpoint_id} and busy.status = 'pending' and ${leaseLive(lease, 'busy', at, [row.delivery_id])}`);
        if (inFlight!.n > bound) throw CONTENDED;
        const previousLive = row.previous_secret && row.previous_secret_expires_at && new Date(row.previous_secret_expires_at) > now;
        return {
          id: row.delivery_id,
          endpointId: row.endpoint_id,
          partnerId: row.partner_id,
          url: row.url,
          // The new secret first: a receiver that checks only the first signature has switched already.
          secrets: previousLive ? [row.secret, row.previous_secret!] : [row.secret],
          event: withWorld(toEventView({
            id: row.event_id,
            type: row.type,
            apiVersion: row.api_version,
            data: row.data,
            requestId: row.request_id,
            idempotencyKey: row.idempotency_key,
            createdAt: new Date(row.created_at),
          }), row.livemode !== false),
        };
      }));
    } catch (error) {
      if (error === CONTENDED) return CONTENDED;
      throw error;
    }
  }

  /** One HTTP attempt; never throws: every way it can go wrong is an outcome to record. */
  async #send(delivery: ClaimedDelivery): Promise<AttemptOutcome> {
    const { timeoutMs } = this.#config.webhooks;
    const attemptedAt = this.#clock.now();
    const started = performance.now();
    const outcome = (fields: Omit<AttemptOutcome, 'attemptedAt' | 'latencyMs'>): AttemptOutcome => ({
      attemptedAt, latencyMs: Math.round(performance.now() - started), ...fields,
    });
    const failure = (error: string): AttemptOutcome => outcome({ succeeded: false, responseStatus: null, responseBodyExcerpt: null, error });

    // These exact bytes are signed and sent.
    const body = JSON.stringify(delivery.event);
    const timestamp = Math.floor(attemptedAt.getTime() / 1000);
    try {
      if (this.#config.appEnv !== 'development') {
        // The lookup never runs for an IP literal, so literals are checked here.
        const unsafe = unsafeIpLiteral(new URL(delivery.url).hostname);
        if (unsafe) return failure(`refused to connect: ${describeUnsafe(unsafe)}; private networks are not reachable outside development`);
      }
      const response = await request(delivery.url, {
        method: 'POST',
        dispatcher: this.#agent,
        headers: {
          'content-type': 'application/json',
          'user-agent': USER_AGENT,
          'webhook-id': delivery.event.id,
          'webhook-timestamp': String(timestamp),
          'webhook-signature': signatureHeader(delivery.secrets, delivery.event.id, timestamp, body),
        },
        body,
        signal: AbortSignal.timeout(attemptDeadlineMs(timeoutMs)),
      });
      const status = response.statusCode;
      const excerpt = await readExcerpt(response.body);
      const succeeded = status >= 200 && status < 300;
      const location = response.headers.location;
      const error = status >= 300 && status < 400
        ? `redirects are not followed${typeof location === 'string' ? ` (Location: ${location.slice(0, 200)})` : ''}`
        : null;
      return outcome({ succeeded, responseStatus: status, responseBodyExcerpt: excerpt, error });
    } catch (error) {
      return failure(describeFailure(error, timeoutMs));
    }
  }

  /**
   * Records the attempt and moves the delivery on, in one transaction: succeeded; or scheduled again, or given
   * up after the last retry. The endpoint is disabled when it answered 410 Gone or has failed for 3 days.
   */
  async #record(delivery: ClaimedDelivery, result: AttemptOutcome): Promise<void> {
    await this.#db.transaction(async (tx) => {
      const now = this.#clock.now();
      // Endpoint first, then delivery: the order deleting an endpoint locks them in, so the two never deadlock.
      const [endpoint] = await tx.select().from(webhookEndpoints).where(eq(webhookEndpoints.id, delivery.endpointId)).for('no key update');
      const [current] = await tx.select().from(webhookDeliveries).where(eq(webhookDeliveries.id, delivery.id)).for('update');
      // The event was purged (30 days) while its request was in flight: its deliveries and attempts went with it.
      if (!current || !endpoint) return;
      await tx.insert(webhookAttempts).values({
        id: newId('wat', now),
        deliveryId: delivery.id,
        eventId: delivery.event.id,
        endpointId: delivery.endpointId,
        partnerId: delivery.partnerId,
        url: delivery.url,
        succeeded: result.succeeded,
        responseStatus: result.responseStatus,
        responseBodyExcerpt: result.responseBodyExcerpt,
        error: result.error,
        latencyMs: result.latencyMs,
        attemptedAt: result.attemptedAt,
      });
      // Settled meanwhile (the endpoint was deleted), or no longer ours: this attempt outlived its lease, or this
      // process was taken for dead, and another worker took the delivery over.
      if (current.status !== 'pending' || current.lockedBy !== delivery.holder) return;
      const attempts = current.attempts + 1;

      if (result.succeeded) {
        await tx
          .update(webhookDeliveries)
          .set({ status: 'succeeded', attempts, lastAttemptAt: result.attemptedAt, nextAttemptAt: null, lockedUntil: null, lockedBy: null, lockedAt: null })
          .where(eq(webhookDeliveries.id, current.id));
        if (endpoint.failingSince) await tx.update(webhookEndpoints).set({ failingSince: null }).where(eq(webhookEndpoints.id, endpoint.id));
        return;
      }

      const delay = retryDelayMs(attempts);
      const status: WebhookDeliveryStatus = delay === null ? 'failed' : 'pending';
      await tx
        .update(webhookDeliveries)
        .set({ status, attempts, lastAttemptAt: result.attemptedAt, nextAttemptAt: delay === null ? null : new Date(now.getTime() + delay), lockedUntil: null, lockedBy: null, lockedAt: null })
        .where(eq(webhookDeliveries.id, current.id));
      const failingSince = endpoint.failingSince ?? result.attemptedAt;
      const reason = endpoint.status !== 'enabled' || endpoint.deletedAt
        ? null
        : result.responseStatus === 410
          ? 'gone'
          : failingSince.getTime() <= now.getTime() - DISABLE_AFTER_FAILING_MS ? 'failing' : null;
      if (!reason) {
        if (!endpoint.failingSince) await tx.update(webhookEndpoints).set({ failingSince }).where(eq(webhookEndpoints.id, endpoint.id));
        return;
      }
      const [disabled] = await tx
        .update(webhookEndpoints)
        .set({ status: 'disabled', disabledReason: reason, failingSince, updatedAt: now })
        .where(eq(webhookEndpoints.id, endpoint.id))
        .returning();
      const before = endpointView(endpoint, now);
      const after = endpointView(disabled!, now);
      await recordEvent(tx, this.#clock, {
        partnerId: endpoint.partnerId,
        type: 'webhook_endpoint.disabled',
        object: after,
        previousAttributes: changedAttributes(before, after),
      });
      this.#log?.warn({ endpoint: endpoint.id, partner: endpoint.partnerId, reason }, 'webhook endpoint disabled');
    });
  }

  /** Claims, sends and records one delivery; false when nothing was due. */
  async #runOne(): Promise<boolean | typeof CONTENDED> {
    const delivery = await this.#claim();
    if (delivery === null || delivery === CONTENDED) return delivery === CONTENDED ? CONTENDED : false;
    try {
      const result = await this.#send(delivery);
      await this.#record(delivery, result);
    } finally {
      // Recorded or not (the database may be down): from now on a lease left on the delivery is a dead one.
      this.#identity.finished(SCOPE, delivery.id);
    }
    return true;
  }

  /** Runs due deliveries one after the other until none is due; returns how many attempts were made. */
  async drain(limit = 10_000): Promise<number> {
    let attempts = 0;
    while (attempts < limit) {
      const ran = await this.#runOne();
      if (ran === false) break;
      if (ran === true) attempts++;
    }
    return attempts;
  }

  /** Starts `workers` loops that poll every `pollMs` when idle. */
  start(workers: number = this.#config.webhooks.workers, pollMs = 500): void {
    this.#stopping = false;
    for (let i = 0; i < workers; i++) {
      this.#workers.push((async () => {
        while (!this.#stopping) {
          const ran = await this.#runOne().catch((error: unknown) => {
            this.#log?.error({ err: error }, 'webhook worker failed; retrying after the poll interval');
            return false;
          });
          if (ran === false && !this.#stopping) await this.#sleep(pollMs);
        }
      })());
    }
  }

  /** Lets idle workers look for work now instead of at their next poll (e.g. after a test event was recorded). */
  wake(): void {
    for (const wake of [...this.#wakers]) wake();
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.#wakers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.#wakers.add(wake);
    });
  }

  /** Stops the workers after their attempts in flight are recorded, then closes the connections. */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.wake();
    await Promise.all(this.#workers);
    this.#workers = [];
    const agent = this.#agent;
    // A fresh (still unconnected) agent, so drain() or start() after a stop keep working.
    this.#agent = this.#newAgent();
    await agent.close();
  }
}

/** The answer's first bytes as text (an incomplete trailing character dropped); the rest is never read. */
async function readExcerpt(body: Dispatcher.ResponseData['body']): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      size += chunk.length;
      // Leaving the loop destroys the stream: the rest of a large answer is not downloaded.
      if (size >= EXCERPT_BYTES) break;
    }
  } catch {
    // A body that stalls or breaks after the status arrived: the status decides, the excerpt is what came.
  }
  const bytes = Buffer.concat(chunks).subarray(0, EXCERPT_BYTES);
  // PostgreSQL text cannot hold NUL.
  return new TextDecoder('utf-8').decode(bytes, { stream: true }).replaceAll('\u0000', '');
}

/** A failed attempt's `error`, for the partner: what happened, without stack or internals. */
function describeFailure(error: unknown, timeoutMs: number): string {
  for (let e = error, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    if (e instanceof UnsafeAddressError || (e as { code?: string }).code === UnsafeAddressError.code) return e.message;
  }
  const e = error as { name?: string; code?: string; message?: string };
  switch (e.code) {
    case 'UND_ERR_CONNECT_TIMEOUT': return `timed out: no connection within ${timeoutMs} ms`;
    case 'UND_ERR_HEADERS_TIMEOUT': return `timed out: no answer within ${timeoutMs} ms`;
    case 'UND_ERR_BODY_TIMEOUT': return `timed out: the answer stalled for ${timeoutMs} ms`;
    case 'ECONNREFUSED': return 'connection refused';
    case 'ENOTFOUND': return 'host not found (DNS)';
    case 'ECONNRESET':
    case 'UND_ERR_SOCKET': return 'connection closed before a complete answer';
    default:
  }
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return `timed out: the attempt took longer than ${attemptDeadlineMs(timeoutMs)} ms`;
  if ((typeof e.code === 'string' && e.code.startsWith('ERR_TLS')) || /certificate/i.test(e.message ?? '')) return `TLS error: ${e.message}`;
  return e.message ? e.message.slice(0, 500) : 'request failed';
}

/** A webhook's event says its world as the API's does: on the event and on every resource inside it. */
function withWorld<T extends object>(event: T, livemode: boolean): T {
  stampLivemode(event, livemode);
  return event;
}
