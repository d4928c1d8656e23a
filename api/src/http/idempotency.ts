import { createHash } from 'node:crypto';
import { and, eq } from 'drizzle-orm';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { idempotencyKeys, type Db } from '@pec-partner/db';
import type { Clock } from '../clock.ts';
import { ProblemError } from './problem.ts';

declare module 'fastify' {
  interface FastifyRequest {
    idempotencyKey: string | null;
  }
}

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

/**
 * `Idempotency-Key` on POST. The key row is claimed (inserted as in_progress) before the handler runs, so a
 * concurrent duplicate finds it and gets a 409 instead of executing twice. The finished response is stored
 * and replayed for 24 h. A process that dies mid-request leaves the key in_progress until it expires: the
 * operation may have committed, so running it again could charge twice; clients should retry with the same
 * key (409) and after expiry use a new one.
 */
/** Keys belong to the partner; a mailbox holder's keys are kept apart from the partner's and other holders'. */
function scopeOf(request: FastifyRequest): { partnerId: string; keyPrefix: string } | null {
  if (request.principal) return { partnerId: request.principal.partnerId, keyPrefix: '' };
  if (request.holder) {
    // A collaborator's or supervisor's keys are its own, not the holder's.
    const { actor } = request.holder;
    const who = actor.kind === 'delegate' ? `${actor.delegationId}/` : actor.kind === 'supervisor' ? `${actor.supervisorId}/` : '';
    return { partnerId: request.holder.partnerId, keyPrefix: `${request.holder.mailboxId}/${who}` };
  }
  return null;
}

export function installIdempotency(app: FastifyInstance, db: Db, clock: Clock, ttlHours: number): void {
  app.decorateRequest('idempotencyKey', null);

  app.addHook('preHandler', async (request, reply) => {
    const scope = scopeOf(request);
    if (request.method !== 'POST' || !scope) return;
    const given = request.headers['idempotency-key'];
    if (given === undefined) return;
    if (typeof given !== 'string' || !KEY_PATTERN.test(given)) {
      throw new ProblemError(400, 'invalid_idempotency_key', 'Invalid request',
        'Idempotency-Key must be 1 to 255 printable ASCII characters.');
    }
    const { partnerId } = scope;
    const key = scope.keyPrefix + given;
    const requestHash = createHash('sha256')
      .update(`${request.method} ${request.url}\n${canonical(request.body ?? null)}`)
      .digest('hex');
    const now = clock.now();

    for (let attempt = 0; attempt < 2; attempt++) {
      const claimed = await db
        .insert(idempotencyKeys)
        .values({
          partnerId,
          key,
          requestHash,
          method: request.method,
          path: request.url,
          state: 'in_progress',
          createdAt: now,
          expiresAt: new Date(now.getTime() + ttlHours * 3_600_000),
        })
        .onConflictDoNothing()
        .returning({ key: idempotencyKeys.key });
      if (claimed.length > 0) {
        request.idempotencyKey = key;
        return;
      }
      const [existing] = await db
        .select()
        .from(idempotencyKeys)
        .where(and(eq(idempotencyKeys.partnerId, partnerId), eq(idempotencyKeys.key, key)));
      if (!existing) continue; // deleted between our insert and select: claim again
      if (existing.expiresAt <= now) {
        await db
          .delete(idempotencyKeys)
          .where(and(eq(idempotencyKeys.partnerId, partnerId), eq(idempotencyKeys.key, key), eq(idempotencyKeys.createdAt, existing.createdAt)));
        continue;
      }
      if (existing.requestHash !== requestHash) {
        throw new ProblemError(422, 'idempotency_key_reused', 'Idempotency key reused',
          `The Idempotency-Key '${given}' was already used with a different request (${existing.method} ${existing.path}).`);
      }
      if (existing.state === 'in_progress') {
        throw new ProblemError(409, 'idempotency_request_in_progress', 'Conflict',
          `A request with the Idempotency-Key '${given}' is still being processed; retry shortly.`, {}, { 'retry-after': '1' });
      }
      for (const [name, value] of Object.entries(existing.responseHeaders ?? {})) reply.header(name, value);
      reply.header(REPLAY_HEADER, 'true');
      return reply.code(existing.responseStatus!).send(existing.responseBody ?? '');
    }
    throw new ProblemError(409, 'idempotency_request_in_progress', 'Conflict',
      `The Idempotency-Key '${given}' is contended; retry shortly.`, {}, { 'retry-after': '1' });
  });

  app.addHook('onSend', async (request, reply, payload) => {
    const key = request.idempotencyKey;
    const scope = scopeOf(request);
    if (!key || !scope) return payload;
    request.idempotencyKey = null;
    const where = and(eq(idempotencyKeys.partnerId, scope.partnerId), eq(idempotencyKeys.key, key));
    // Server faults and throttling are not outcomes of the request: free the key so a retry runs it.
    if (reply.statusCode >= 500 || reply.statusCode === 429) {
      await db.delete(idempotencyKeys).where(where);
      return payload;
    }
    const contentType = reply.getHeader('content-type');
    await db
      .update(idempotencyKeys)
      .set({
        state: 'completed',
        responseStatus: reply.statusCode,
        responseBody: typeof payload === 'string' ? payload : payload == null ? '' : String(payload),
        responseHeaders: contentType ? { 'content-type': String(contentType) } : {},
      })
      .where(where);
    return payload;
  });
}
