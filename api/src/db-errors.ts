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
