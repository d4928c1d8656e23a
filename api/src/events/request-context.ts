import { AsyncLocalStorage } from 'node:async_hooks';
import type { FastifyInstance } from 'fastify';

/** The API call on whose behalf code runs: what an event's `request` field names. Jobs run outside any. */
export interface RequestContext {
  id: string;
  idempotencyKey: string | null;
}

const storage = new AsyncLocalStorage<RequestContext>();

/**
 * Makes the current request visible to services without threading it through every call. The hook is
 * callback-style on purpose: `storage.run(…, done)` keeps the rest of the request's lifecycle inside the context,
 * which an async hook cannot do. It runs at preHandler, after the body is read: the body's stream events would
 * otherwise run outside the context.
 */
export function installRequestContext(app: FastifyInstance): void {
  app.addHook('preHandler', (request, _reply, done) => {
    const key = request.headers['idempotency-key'];
    storage.run({ id: request.id, idempotencyKey: typeof key === 'string' && key.length > 0 ? key : null }, done);
  });
}

export function currentRequest(): RequestContext | null {
  return storage.getStore() ?? null;
}
