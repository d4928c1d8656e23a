import { createHash } from 'node:crypto';
import { and, eq, lte } from 'drizzle-orm';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { idempotencyKeys, type Db } from '@pec-partner/db';
import type { Clock } from '../clock.ts';
import { ProblemError } from './problem.ts';

const KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;
export const REPLAY_HEADER = 'idempotent-replayed';

/** JSON with sorted keys, so the same body in another key order is the same request. */
function canonical(value: unknown): string {
  // Raw uploads (an .eml) are compared by digest.
  if (Buffer.isBuffer(value)) return `bytes:${createHash('sha256').update(value).digest('hex')}`;
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** What makes a retry the same request as the one that used the key first. */
export function requestFingerprint(method: string, url: string, body: unknown): string {
  return createHash('sha256').update(`${method} ${url}\n${canonical(body ?? null)}`).digest('hex');
}

/** Who a key belongs to: a partner, or an operator key (the `owner` column is whichever is set). */
type KeyOwner = { partnerId: string; operatorKeyId: null } | { partnerId: null; operatorKeyId: string };
const ownerId = (owner: KeyOwner): string => owner.partnerId ?? owner.operatorKeyId!;

/**
 * Keys belong to the partner; a mailbox holder's keys are kept apart from the partner's and other holders'. An
 * operator's keys belong to its operator key: two operators never share (or collide on) a key.
 */
function scopeOf(request: FastifyRequest): { owner: KeyOwner; keyPrefix: string } | null {
  if (request.principal) return { owner: { partnerId: request.principal.partnerId, operatorKeyId: null }, keyPrefix: '' };
  if (request.operator) return { owner: { partnerId: null, operatorKeyId: request.operator.keyId }, keyPrefix: '' };
  if (request.holder) {
    // A collaborator's or supervisor's keys are its own, not the holder's.
    const { actor } = request.holder;
    const who = actor.kind === 'delegate' ? `${actor.delegationId}/` : actor.kind === 'supervisor' ? `${actor.supervisorId}/` : '';
    return { owner: { partnerId: request.holder.partnerId, operatorKeyId: null }, keyPrefix: `${request.holder.mailboxId}/${who}` };
  }
  return null;
}

/** How long an in_progress claim must go unrenewed before another request with the same key may take it over. */
export const CLAIM_RECOVERY_MS = 5 * 60_000;
/** How often a running request renews its claim: well within the recovery window, so a few missed renewals are harmless. */
export const CLAIM_RENEWAL_MS = 60_000;

export interface IdempotencyOptions {
  recoveryWindowMs?: number;
  renewalIntervalMs?: number;
}

/** A claim this process holds; in the row, `claimed_by` is its request's id (a ULID, unique across processes). */
interface HeldClaim {
  owner: string;
  key: string;
  renewal: NodeJS.Timeout;
  renewing: Promise<void> | null;
}

/**
 * `Idempotency-Key` on POST. The key row is claimed (inserted as in_progress) before the handler runs, so a
 * concurrent duplicate finds it and gets a 409 instead of executing twice. The finished response is stored
 * and replayed for 24 h; a 5xx or 429 frees the key instead, so a retry runs the request again.
 *
 * A process that dies mid-request leaves its claim in_progress. The claim names the request holding it
 * (`claimed_by`) and is renewed (`claimed_at`) while that request runs, so a claim unrenewed for the recovery
 * window belongs to a request that no longer exists, and the next retry with the same body takes it over. A
 * renewal, not a deadline, is what tells a slow request from a dead one: nothing in Fastify stops a running
 * handler (`requestTimeout` only bounds receiving the request, before the claim; `handlerTimeout` answers 503
 * but lets the handler go on), so a request that outlived a fixed window could still commit after a takeover.
 * What a takeover cannot know is whether the dead request committed before dying: after a crash between the
 * handler's commit and the storing of its response, the retry runs the operation a second time.
 */
export function installIdempotency(app: FastifyInstance, db: Db, clock: Clock, ttlHours: number, options: IdempotencyOptions = {}): void {
  const recoveryWindowMs = options.recoveryWindowMs ?? CLAIM_RECOVERY_MS;
  const renewalIntervalMs = options.renewalIntervalMs ?? CLAIM_RENEWAL_MS;
  const held = new WeakMap<FastifyRequest, HeldClaim>();
  const keyOf = (owner: string, key: string) => and(eq(idempotencyKeys.owner, owner), eq(idempotencyKeys.key, key));

  const renew = (request: FastifyRequest, claim: HeldClaim): void => {
    if (claim.renewing) return;
    claim.renewing = db
      .update(idempotencyKeys)
      .set({ claimedAt: clock.now() })
      .where(and(keyOf(claim.owner, claim.key), eq(idempotencyKeys.claimedBy, request.id), eq(idempotencyKeys.state, 'in_progress')))
      .returning({ key: idempotencyKeys.key })
      .then((renewed) => {
        // A renewal that lost the race with the response being stored finds the claim completed: nothing lost.
        if (renewed.length > 0 || held.get(request) !== claim) return;
        // Only if renewals failed for the whole window: a retry has taken over and may run the operation again.
        request.log.error('idempotency claim taken over while its request runs: the response will not be stored');
        release(request);
      }, (error: unknown) => request.log.error({ err: error }, 'idempotency claim renewal failed'))
      .finally(() => { claim.renewing = null; });
  };

  const hold = (request: FastifyRequest, owner: string, key: string): void => {
    const claim: HeldClaim = { owner, key, renewing: null, renewal: setInterval(() => renew(request, claim), renewalIntervalMs) };
    // The renewal must not keep a closing process alive.
    claim.renewal.unref();
    held.set(request, claim);
  };

  const release = (request: FastifyRequest): HeldClaim | undefined => {
    const claim = held.get(request);
    if (!claim) return undefined;
    held.delete(request);
    clearInterval(claim.renewal);
    return claim;
  };

  app.addHook('preHandler', async (request, reply) => {
    const scope = scopeOf(request);
    if (request.method !== 'POST' || !scope) return;
    const given = request.headers['idempotency-key'];
    if (given === undefined) return;
    if (typeof given !== 'string' || !KEY_PATTERN.test(given)) {
      throw new ProblemError(400, 'invalid_idempotency_key', 'Invalid request',
        'Idempotency-Key must be 1 to 255 printable ASCII characters.');
    }
    const owner = ownerId(scope.owner);
    const key = scope.keyPrefix + given;
    const requestHash = requestFingerprint(request.method, request.url, request.body);
    const now = clock.now();
    const expiresAt = new Date(now.getTime() + ttlHours * 3_600_000);

    for (let attempt = 0; attempt < 2; attempt++) {
      const claimed = await db
        .insert(idempotencyKeys)
        .values({
          partnerId: scope.owner.partnerId,
          operatorKeyId: scope.owner.operatorKeyId,
          key,
          requestHash,
          method: request.method,
          path: request.url,
          state: 'in_progress',
          claimedBy: request.id,
          claimedAt: now,
          createdAt: now,
          expiresAt,
        })
        .onConflictDoNothing()
        .returning({ key: idempotencyKeys.key });
      if (claimed.length > 0) {
        hold(request, owner, key);
        return;
      }
      const [existing] = await db.select().from(idempotencyKeys).where(keyOf(owner, key));
      if (!existing) continue; // deleted between our insert and select: claim again
      if (existing.expiresAt <= now) {
        await db.delete(idempotencyKeys).where(and(keyOf(owner, key), lte(idempotencyKeys.expiresAt, now)));
        continue;
      }
      if (existing.requestHash !== requestHash) {
        throw new ProblemError(422, 'idempotency_key_reused', 'Idempotency key reused',
          `The Idempotency-Key '${given}' was already used with a different request (${existing.method} ${existing.path}).`);
      }
      if (existing.state === 'in_progress') {
        const recoverableAt = existing.claimedAt.getTime() + recoveryWindowMs;
        if (recoverableAt <= now.getTime()) {
          // One statement decides among retries racing for the same abandoned claim: the first moves
          // claimed_at past the cutoff, so the others' WHERE no longer matches and they get the 409 below.
          const [taken] = await db
            .update(idempotencyKeys)
            .set({ claimedBy: request.id, claimedAt: now, expiresAt })
            .where(and(
              keyOf(owner, key),
              eq(idempotencyKeys.state, 'in_progress'),
              eq(idempotencyKeys.requestHash, requestHash),
              lte(idempotencyKeys.claimedAt, new Date(now.getTime() - recoveryWindowMs)),
            ))
            .returning({ key: idempotencyKeys.key });
          if (taken) {
            request.log.warn({ abandonedBy: existing.claimedBy }, 'idempotency claim taken over from a request that stopped renewing it');
            hold(request, owner, key);
            return;
          }
        }
        // A claim renewed recently is a live request, most likely about to finish; one that has missed
        // renewals was probably left by a dead process and can be taken over only at the end of the window.
        const orphaned = now.getTime() - existing.claimedAt.getTime() > 2 * renewalIntervalMs;
        const retryAfter = orphaned ? Math.max(1, Math.ceil((recoverableAt - now.getTime()) / 1000)) : 1;
        throw new ProblemError(409, 'idempotency_request_in_progress', 'Conflict',
          orphaned
            ? `A request with the Idempotency-Key '${given}' was interrupted; it can be retried with this key in ${retryAfter} s.`
            : `A request with the Idempotency-Key '${given}' is still being processed; retry shortly.`,
          {}, { 'retry-after': String(retryAfter) });
      }
      for (const [name, value] of Object.entries(existing.responseHeaders ?? {})) reply.header(name, value);
      reply.header(REPLAY_HEADER, 'true');
      return reply.code(existing.responseStatus!).send(existing.responseBody ?? '');
    }
    throw new ProblemError(409, 'idempotency_request_in_progress', 'Conflict',
      `The Idempotency-Key '${given}' is contended; retry shortly.`, {}, { 'retry-after': '1' });
  });

  app.addHook('onSend', async (request, reply, payload) => {
    const claim = release(request);
    if (!claim) return payload;
    // Only while the claim is still this request's: one taken over after a stall belongs to the retry now.
    const ours = and(keyOf(claim.owner, claim.key), eq(idempotencyKeys.claimedBy, request.id), eq(idempotencyKeys.state, 'in_progress'));
    // Server faults and throttling are not outcomes of the request: free the key so a retry runs it.
    // The answer stands even when the database cannot take this last write (it went down meanwhile): a hook that
    // throws here would replace it with Fastify's own error body. The key then stays claimed, and a retry gets 409
    // until the claim can be recovered.
    if (reply.statusCode >= 500 || reply.statusCode === 429) {
      await db.delete(idempotencyKeys).where(ours).catch((error: unknown) => request.log.warn({ err: error }, 'idempotency key not freed'));
      return payload;
    }
    const contentType = reply.getHeader('content-type');
    const stored = await db
      .update(idempotencyKeys)
      .set({
        state: 'completed',
        responseStatus: reply.statusCode,
        responseBody: typeof payload === 'string' ? payload : payload == null ? '' : String(payload),
        responseHeaders: contentType ? { 'content-type': String(contentType) } : {},
      })
      .where(ours)
      .returning({ key: idempotencyKeys.key })
      .catch((error: unknown) => {
        request.log.error({ err: error }, 'response not stored for its idempotency key');
        return undefined;
      });
    if (stored?.length === 0) request.log.warn('response not stored: its idempotency claim was taken over');
    return payload;
  });

  // Should a hook before ours fail onSend, the claim stops being renewed and becomes recoverable.
  app.addHook('onResponse', async (request) => {
    release(request);
  });
}
