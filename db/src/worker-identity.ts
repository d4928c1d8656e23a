import { randomInt } from 'node:crypto';
import { sql, type AnyColumn, type SQL } from 'drizzle-orm';
import type postgres from 'postgres';
import type { Availability } from './connect.ts';

/**
 * The first half of the advisory lock key (pg_locks.classid) that marks a live worker incarnation; the second
 * half (objid) is the incarnation's key, the value leases record in `locked_by`.
 */
export const WORKER_LOCK_NAMESPACE = 7265440;
/**
 * After the database restarts it has forgotten every lock. Holders that survived get this long (counted from
 * when this process got its own lock back) to take theirs again before their leases are treated as dead.
 */
export const RESTART_GRACE_SECONDS = 10;
const HEARTBEAT_MS = 1_000;
const HEARTBEAT_TIMEOUT_MS = 5_000;

export interface LeaseHolder {
  /** The incarnation's key: what `locked_by` records. */
  key: number;
  /** Database time at which the current lock session took the lock. */
  since: Date;
}

/** The lease columns of a row, as SQL (a column, or `alias.column` inside hand-written SQL). */
export interface LeaseColumns {
  id: AnyColumn | SQL;
  lockedBy: AnyColumn | SQL;
  lockedAt: AnyColumn | SQL;
}

/** Handed to a claim: who claims, and the condition under which a lease no longer protects anyone. */
export interface LeaseClaim {
  holder: number;
  /**
   * True for a lease (`locked_by` set) whose holder is gone: this process's own lease that nothing here runs (its
   * run ended without recording so, e.g. while the database was down), or another incarnation's whose lock no
   * session holds: that process died, or lost its session and did not take its lock back in time.
   * `alsoInFlight` names rows claimed within the current statement or transaction.
   */
  holderGone(columns: LeaseColumns, alsoInFlight?: (string | number)[]): SQL;
}

const newKey = (): number => randomInt(1, 2 ** 31 - 1);

/** A PostgreSQL text[] literal; ids are ours (digits, prefixes and base32) but are quoted anyway. */
const textArray = (values: string[]): string => `{${values.map((value) => JSON.stringify(value)).join(',')}}`;

/**
 * This process's incarnation on one database. It holds a session-level advisory lock (WORKER_LOCK_NAMESPACE, key)
 * on a connection of its own for as long as it lives; every lease it takes records the key. The lock is the
 * proof of life: when the process dies its session ends and the lock with it, so any worker may take its leases
 * over at once instead of waiting for them to expire. When the session is lost while the process lives (the
 * database restarted, the connection was cut), the identity takes the same key back as soon as the server
 * answers, and other workers give it RESTART_GRACE_SECONDS to do so after a restart.
 *
 * Leases this process holds are also known here, by scope (table), while their work runs: a lease of ours that
 * nothing runs is dead too and is claimed again at once, by this process or any other.
 */
export class WorkerIdentity {
  readonly #newClient: (onclose: () => void) => postgres.Sql;
  readonly #availability: Availability;
  #client: postgres.Sql | undefined;
  /** The lock as taken on the current session; cleared the moment that session closes. */
  #held: { key: number; pid: number; since: Date } | undefined;
  /** The key held now or last: taken back first, so leases survive a lost session. */
  #key: number | undefined;
  #sessionsClosed = 0;
  #acquiring: Promise<LeaseHolder> | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  #beating = false;
  #closed = false;
  readonly #inFlight = new Map<string, Set<string>>();
  readonly #claims = new Map<string, Promise<unknown>>();

  constructor(newClient: (onclose: () => void) => postgres.Sql, availability: Availability) {
    this.#newClient = newClient;
    this.#availability = availability;
  }

  /** The key this process holds, taking its lock (back) first when needed. */
  holder(): Promise<LeaseHolder> {
    if (this.#closed) return Promise.reject(new Error('the database connection is closed'));
    if (this.#held) return Promise.resolve({ key: this.#held.key, since: this.#held.since });
    this.#acquiring ??= this.#acquire().finally(() => {
      this.#acquiring = undefined;
    });
    return this.#acquiring;
  }

  /** True while this process holds its lock (as far as it knows). */
  get holding(): boolean {
    return this.#held !== undefined;
  }

  async #acquire(): Promise<LeaseHolder> {
    this.#startHeartbeat();
    const client = (this.#client ??= this.#newClient(() => {
      this.#sessionsClosed++;
      this.#held = undefined;
    }));
    for (let attempt = 0; attempt < 5; attempt++) {
      const key = this.#key ?? newKey();
      const closedBefore = this.#sessionsClosed;
      const [row] = await this.#availability.run(
        () => client<{ locked: boolean; pid: number; since: Date }[]>`
          select pg_try_advisory_lock(${WORKER_LOCK_NAMESPACE}, ${key}) as locked, pg_backend_pid() as pid, now() as since`,
      );
      if (this.#closed) throw new Error('the database connection is closed');
      // The session closed right after answering: the lock went with it.
      if (this.#sessionsClosed !== closedBefore) continue;
      if (row!.locked) {
        this.#key = key;
        this.#held = { key, pid: row!.pid, since: new Date(row!.since) };
        return { key, since: this.#held.since };
      }
      // Another session holds this key (a random collision): leases recorded under it are not ours.
      this.#key = undefined;
    }
    throw new Error('could not take a worker lock');
  }

  /**
   * Checks every second that the lock session is still the one that took the lock (postgres.js reconnects behind
   * our back) and takes the lock back after a loss, without waiting for a worker to ask.
   */
  #startHeartbeat(): void {
    if (this.#heartbeat || this.#closed) return;
    this.#heartbeat = setInterval(() => void this.#beat(), HEARTBEAT_MS);
    this.#heartbeat.unref();
  }

  async #beat(): Promise<void> {
    if (this.#beating || this.#closed) return;
    this.#beating = true;
    try {
      const held = this.#held;
      const client = this.#client;
      if (!held || !client) {
        await this.holder();
        return;
      }
      let timer: NodeJS.Timeout | undefined;
      const check = client<{ pid: number }[]>`select pg_backend_pid() as pid`;
      const answer = await Promise.race([
        check,
        new Promise<'timeout'>((resolve) => {
          timer = setTimeout(() => resolve('timeout'), HEARTBEAT_TIMEOUT_MS);
        }),
      ]).finally(() => clearTimeout(timer));
      if (answer === 'timeout') {
        // A connection the network swallowed: drop it and start over on a new one.
        check.catch(() => {});
        if (this.#client === client) this.#client = undefined;
        if (this.#held === held) this.#held = undefined;
        await client.end({ timeout: 0 });
      } else if (answer[0]!.pid !== held.pid && this.#held === held) {
        this.#held = undefined;
      }
    } catch {
      // The database is unreachable: the next beat tries again.
    } finally {
      this.#beating = false;
    }
  }

  /**
   * Runs one claim for `scope` (a table), never two at once in this process, and records what it claimed as in
   * flight until finished() is called. Serialising matters: a claim that ran beside another could see that one's
   * fresh lease (ours, not yet listed as in flight) as a dead lease of ours and take the same row again.
   */
  claim<T extends { id: string | number }>(scope: string, run: (lease: LeaseClaim) => Promise<T | null>): Promise<(T & { holder: number }) | null> {
    const previous = this.#claims.get(scope) ?? Promise.resolve();
    const current = previous.then(async () => {
      const holder = await this.holder();
      const inFlight = this.#inFlightOf(scope);
      const claimed = await run(this.#leaseClaim(holder, [...inFlight]));
      if (!claimed) return null;
      inFlight.add(String(claimed.id));
      return { ...claimed, holder: holder.key };
    });
    const settled = current.then(() => {}, () => {});
    this.#claims.set(scope, settled);
    void settled.then(() => {
      if (this.#claims.get(scope) === settled) this.#claims.delete(scope);
    });
    return current;
  }

  /** The work on a claimed row ended (recorded or not): from now on its lease, if still set, is a dead one. */
  finished(scope: string, id: string | number): void {
    this.#inFlight.get(scope)?.delete(String(id));
  }

  /** Ids of `scope` whose work runs in this process now. */
  inFlight(scope: string): string[] {
    return [...(this.#inFlight.get(scope) ?? [])];
  }

  #inFlightOf(scope: string): Set<string> {
    let set = this.#inFlight.get(scope);
    if (!set) this.#inFlight.set(scope, (set = new Set()));
    return set;
  }

  #leaseClaim(holder: LeaseHolder, inFlight: string[]): LeaseClaim {
    return {
      holder: holder.key,
      holderGone: (columns, alsoInFlight = []) => {
        const running = textArray([...inFlight, ...alsoInFlight.map(String)]);
        return sql`(${columns.lockedBy} is not null and (
          (${columns.lockedBy} = ${holder.key} and not (${columns.id}::text = any(${running}::text[])))
          or (${columns.lockedBy} <> ${holder.key}
            and not exists (
              select 1 from pg_locks l
              where l.locktype = 'advisory' and l.classid = ${WORKER_LOCK_NAMESPACE}::oid and l.objid = ${columns.lockedBy}::oid
                and l.objsubid = 2 and l.database = (select oid from pg_database where datname = current_database()))
            and (coalesce(${columns.lockedAt}, '-infinity') >= pg_postmaster_start_time()
              or now() >= greatest(pg_postmaster_start_time(), ${holder.since.toISOString()}::timestamptz)
                + make_interval(secs => ${RESTART_GRACE_SECONDS})))))`;
      },
    };
  }

  /** Ends the lock session: the process is going away, its leases are free for others at once. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#heartbeat);
    this.#heartbeat = undefined;
    this.#held = undefined;
    const client = this.#client;
    this.#client = undefined;
    await client?.end({ timeout: 0 });
  }
}

const identities = new WeakMap<object, WorkerIdentity>();

export function registerWorkerIdentity(db: object, identity: WorkerIdentity): void {
  identities.set(db, identity);
}

/** The incarnation of the process that opened `db` with connect(). */
export function workerIdentity(db: object): WorkerIdentity {
  const identity = identities.get(db);
  if (!identity) throw new Error('workerIdentity: this database handle was not opened with connect()');
  return identity;
}
