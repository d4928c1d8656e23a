import { drizzle, type PostgresJsDatabase } from 'drizzle-orm/postgres-js';
import { migrate } from 'drizzle-orm/postgres-js/migrator';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import type Postgres from 'postgres';
import * as schema from './schema/index.ts';
import { registerWorkerIdentity, WorkerIdentity } from './worker-identity.ts';

export { workerIdentity, WorkerIdentity, WORKER_LOCK_NAMESPACE, type LeaseColumns, type LeaseHolder, type LeaseClaim } from './worker-identity.ts';

export type Schema = typeof schema;
export type Db = PostgresJsDatabase<Schema>;
/** A transaction handle: services take `Db | Tx` so callers can compose them into one transaction. */
export type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];
export type DbOrTx = Db | Tx;

export const migrationsFolder = fileURLToPath(new URL('../migrations', import.meta.url));

export interface Database {
  db: Db;
  /** The raw pool, outside the availability guard (scripts and tests). */
  sql: Postgres.Sql;
  /** This process's incarnation on the database: the holder of its job leases. */
  identity: WorkerIdentity;
  close(): Promise<void>;
}

export interface ConnectOptions {
  max?: number;
  /** Limit for opening a connection; a server that does not answer (down host, full backlog) fails this fast. */
  connectTimeoutSeconds?: number;
  /** Server-side limit per statement: a query stuck behind locks or an overloaded server ends instead of hanging. */
  statementTimeoutMs?: number;
  /** A transaction left open by a stalled client is ended by the server, releasing its locks. */
  idleInTransactionTimeoutMs?: number;
  /** While the database is unreachable, how often one query is let through to find out whether it is back. */
  probeIntervalMs?: number;
}

export const CONNECT_DEFAULTS = {
  connectTimeoutSeconds: 5,
  statementTimeoutMs: 30_000,
  idleInTransactionTimeoutMs: 60_000,
  probeIntervalMs: 500,
} as const;

/** Raised at once, without touching the network, while the database is known to be unreachable. */
export class DatabaseUnavailableError extends Error {
  readonly code = 'DATABASE_UNAVAILABLE';
  constructor(cause?: unknown) {
    super(`the database is unreachable${cause instanceof Error ? `: ${cause.message}` : ''}`, { cause });
    this.name = 'DatabaseUnavailableError';
  }
}

/**
 * Failures to reach the server at all, as opposed to an answer it gave: refused or unroutable connections, a
 * connection attempt that timed out, a server starting up or shutting down (57P03) or out of connection slots.
 */
const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'CONNECT_TIMEOUT', '57P03', '53300',
]);

export function isUnreachableError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && UNREACHABLE_CODES.has(code);
}

/** The connection failed or broke (as opposed to the server answering with an error). */
const CONNECTION_FAILURE_CODES = new Set([
  ...UNREACHABLE_CODES, 'ECONNRESET', 'EPIPE', 'CONNECTION_CLOSED', 'CONNECTION_ENDED', 'CONNECTION_DESTROYED',
]);

/** Connection failures leave the pool as DatabaseUnavailableError (the original as `cause`); answers pass unchanged. */
function asUnavailable(error: unknown): unknown {
  if (error instanceof DatabaseUnavailableError || error instanceof postgres.PostgresError) return error;
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && CONNECTION_FAILURE_CODES.has(code) ? new DatabaseUnavailableError(error) : error;
}

/**
 * A circuit breaker in front of the pool. Without it, while the server is down every query waits in postgres.js's
 * queue for a connection attempt of its own, spaced by a growing back-off (up to 20 s): requests hung for 13–18 s
 * before failing. Once an attempt to reach the server fails, queries fail at once; every `probeIntervalMs` one of
 * them goes through as a probe, and the first that gets any answer from the server closes the breaker again.
 */
export class Availability {
  readonly #probeIntervalMs: number;
  #failedAt: number | undefined;
  #lastError: unknown;
  #probing = false;

  constructor(probeIntervalMs: number) {
    this.#probeIntervalMs = probeIntervalMs;
  }

  /** True while the last attempt to reach the server failed. */
  get unavailable(): boolean {
    return this.#failedAt !== undefined;
  }

  /** Throws DatabaseUnavailableError, or says whether this query is the probe. */
  admit(): { probe: boolean } {
    if (this.#failedAt === undefined) return { probe: false };
    if (!this.#probing && performance.now() - this.#failedAt >= this.#probeIntervalMs) {
      this.#probing = true;
      return { probe: true };
    }
    throw new DatabaseUnavailableError(this.#lastError);
  }

  settled(probe: boolean, error?: unknown): void {
    if (probe) this.#probing = false;
    if (error !== undefined && isUnreachableError(error)) {
      this.#failedAt = performance.now();
      this.#lastError = error;
    } else if (error === undefined || error instanceof postgres.PostgresError) {
      // Any answer from the server, an SQL error included, proves it is reachable. A connection that broke
      // mid-query proves nothing either way: the next attempt to connect decides.
      this.#failedAt = undefined;
      this.#lastError = undefined;
    }
  }

  /** Runs a promise-returning database call under the breaker. */
  async run<T>(call: () => Promise<T>): Promise<T> {
    const { probe } = this.admit();
    try {
      const result = await call();
      this.settled(probe);
      return result;
    } catch (error) {
      this.settled(probe, error);
      throw error;
    }
  }
}

type PendingQuery = ReturnType<Postgres.Sql['unsafe']>;

/**
 * The pool as drizzle sees it: `unsafe()` (every drizzle query) and `begin()` (transactions) pass the breaker.
 * postgres.js queries are lazy (`.values()` must be chained before the first `then`), so the query is wrapped in
 * a thenable that forwards `.values()` and observes the outcome.
 */
function guardedPool(sql: Postgres.Sql, availability: Availability): Postgres.Sql {
  const refused = (error: unknown) => {
    const failed = Promise.reject(error);
    return Object.assign(failed, { values: () => failed, execute: () => failed });
  };
  const observed = (query: PendingQuery, probe: boolean) => {
    let outcome: Promise<unknown> | undefined;
    const settle = () =>
      (outcome ??= query.then(
        (rows) => (availability.settled(probe), rows),
        (error: unknown) => {
          availability.settled(probe, error);
          throw asUnavailable(error);
        },
      ));
    const wrapper = {
      values() {
        query.values();
        return wrapper;
      },
      execute() {
        query.execute();
        return wrapper;
      },
      then(onFulfilled?: (value: unknown) => unknown, onRejected?: (reason: unknown) => unknown) {
        return settle().then(onFulfilled, onRejected);
      },
      catch(onRejected?: (reason: unknown) => unknown) {
        return settle().catch(onRejected);
      },
      finally(onFinally?: () => void) {
        return settle().finally(onFinally);
      },
    };
    return wrapper;
  };
  return new Proxy(sql, {
    get(target, property, receiver) {
      if (property === 'unsafe') {
        return (...args: Parameters<Postgres.Sql['unsafe']>) => {
          let admitted: { probe: boolean };
          try {
            admitted = availability.admit();
          } catch (error) {
            return refused(error);
          }
          return observed(target.unsafe(...args), admitted.probe);
        };
      }
      if (property === 'begin') {
        return (...args: unknown[]) =>
          availability.run(() => (target.begin as (...a: unknown[]) => Promise<unknown>)(...args)).catch((error: unknown) => {
            throw asUnavailable(error);
          });
      }
      return Reflect.get(target, property, receiver);
    },
  });
}

/** Back-off between connection attempts: short, because the breaker already keeps queries away from a dead server. */
const reconnectDelaySeconds = (retries: number): number => Math.min(0.01 * 2 ** retries, 0.2);

export function connect(url: string, options: ConnectOptions = {}): Database {
  const settings = { ...CONNECT_DEFAULTS, ...options };
  const availability = new Availability(settings.probeIntervalMs);
  const sql = postgres(url, {
    max: options.max ?? 10,
    onnotice: () => {},
    connect_timeout: settings.connectTimeoutSeconds,
    // Idle connections are closed after a minute: after an outage the pool does not keep sockets the server dropped.
    idle_timeout: 60,
    backoff: reconnectDelaySeconds,
    connection: {
      statement_timeout: settings.statementTimeoutMs,
      idle_in_transaction_session_timeout: settings.idleInTransactionTimeoutMs,
    },
  });
  const db = drizzle(guardedPool(sql, availability), { schema, casing: 'snake_case' });
  // Its own single connection: the advisory lock lives as long as that session, whatever the pool does.
  const identity = new WorkerIdentity(
    (onclose) =>
      postgres(url, {
        onclose,
        max: 1,
        onnotice: () => {},
        connect_timeout: settings.connectTimeoutSeconds,
        backoff: reconnectDelaySeconds,
        // Never recycled: closing the session would release the lock.
        idle_timeout: 0,
        max_lifetime: null,
        connection: { statement_timeout: settings.statementTimeoutMs },
      }),
    availability,
  );
  registerWorkerIdentity(db, identity);
  return {
    db,
    sql,
    identity,
    close: async () => {
      // The lock session first: a process that is going away gives up its leases at once.
      await identity.close();
      // Queries get 5 s to finish; with the server unreachable none can, and postgres.js would wait the whole
      // time for connections that failed under a query, so they are closed at once.
      await sql.end({ timeout: availability.unavailable ? 0 : 5 });
    },
  };
}

/** Applies the committed drizzle-kit migrations; safe to run from several processes at once. */
export async function runMigrations(url: string): Promise<void> {
  const sql = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: CONNECT_DEFAULTS.connectTimeoutSeconds });
  try {
    // Serialise concurrent starters: drizzle's migrator has no lock of its own.
    await sql`select pg_advisory_lock(7265431)`;
    await migrate(drizzle(sql), { migrationsFolder });
  } finally {
    await sql`select pg_advisory_unlock(7265431)`.catch(() => {});
    await sql.end({ timeout: 5 });
  }
}
