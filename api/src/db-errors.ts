/** postgres.js surfaces server errors with the SQLSTATE in `code` and the violated constraint's name. */
interface PgError {
  code?: string;
  constraint_name?: string;
  cause?: unknown;
}

function pgError(error: unknown): PgError | undefined {
  // drizzle wraps driver errors; the server error is the cause.
  for (let e = error as PgError | undefined, depth = 0; e && depth < 4; e = e.cause as PgError | undefined, depth++) {
    if (typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code)) return e;
  }
  return undefined;
}

export function isUniqueViolation(error: unknown, constraint?: string): boolean {
  const e = pgError(error);
  return e?.code === '23505' && (!constraint || e.constraint_name === constraint);
}

/**
 * A row is still referenced: foreign_key_violation (23503), or restrict_violation (23001), which PostgreSQL 18
 * raises for ON DELETE RESTRICT where earlier versions raised 23503.
 */
export function isStillReferenced(error: unknown): boolean {
  const code = pgError(error)?.code;
  return code === '23503' || code === '23001';
}

/**
 * Codes that mean "the database cannot be reached or cannot serve us now", as opposed to an answer about the
 * request: the client should retry later (503), nothing about its input was wrong.
 */
const UNAVAILABLE_CODES = new Set([
  // @pec-partner/db: the connection failed (refused, reset, timed out, ended under the query), or the breaker
  // refused without trying while the server is known to be down.
  'DATABASE_UNAVAILABLE',
  // postgres.js's own names, should one arrive unwrapped.
  'CONNECT_TIMEOUT', 'CONNECTION_CLOSED', 'CONNECTION_ENDED', 'CONNECTION_DESTROYED',
  // SQLSTATE: too many connections; statement_timeout (an overloaded server or a lock held too long).
  '53300', '57014',
]);

/** Socket failures count only when the driver reported them: a route's own network call is another matter. */
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

function isUnavailableCode(code: unknown): boolean {
  if (typeof code !== 'string') return false;
  // SQLSTATE class 08 (connection exception) and 57P01–57P05 (admin or crash shutdown, cannot connect now…).
  return UNAVAILABLE_CODES.has(code) || (/^[0-9A-Z]{5}$/.test(code) && (code.startsWith('08') || code.startsWith('57P')));
}

/** True when `error`, or an error it wraps (drizzle wraps driver errors in `cause`), says the database is unavailable. */
export function isDatabaseUnavailable(error: unknown): boolean {
  let fromDriver = false;
  for (let current = error, depth = 0; current && typeof current === 'object' && depth < 5; current = (current as { cause?: unknown }).cause, depth++) {
    const code = (current as { code?: unknown }).code;
    if (isUnavailableCode(code) || (fromDriver && SOCKET_CODES.has(code as string))) return true;
    if ((current as { name?: unknown }).name === 'DrizzleQueryError') fromDriver = true;
  }
  return false;
}

/** Seconds a client should wait before retrying; the server itself probes the database twice a second. */
export const DATABASE_RETRY_AFTER_SECONDS = 5;
