/**
 * The bounds every SMTP door of the provider keeps, whatever a network peer does: how many sessions, how long an
 * idle one may stay, how long a command line may be, and how many wrong passwords a session, an address or a user
 * name may try. smtp-server enforces what it has options for; the counters below do the rest.
 */
export interface SmtpLimits {
  /** Sessions per server (door); the next one is answered 421. */
  maxClients: number;
  /** Sessions per server from one remote address; the next one is answered 421. */
  maxClientsPerAddress: number;
  /** A session (or a TLS handshake) waiting for its client this long is closed with 421. */
  idleTimeoutMs: number;
  /** Longest command line; a longer one (or an endless line) ends the session with 421. */
  maxCommandLength: number;
  /** Failed AUTH attempts in one session; the last is answered 421 and the session ends. */
  authFailuresPerSession: number;
  /** Failed AUTH attempts per remote address, and per user name, before a temporary lock-out (454). */
  authFailuresBeforeLockout: number;
  /** How long those failures are counted, and how long the lock-out lasts. */
  authLockoutMs: number;
  /** How long closing the servers waits for sessions in progress before answering them 421. */
  closeTimeoutMs: number;
}

export const DEFAULT_SMTP_LIMITS: SmtpLimits = {
  maxClients: 100,
  maxClientsPerAddress: 10,
  idleTimeoutMs: 60_000,
  // RFC 5321 §4.5.3.1.4 asks for 512 octets; AUTH PLAIN with a long password and authorization identity needs more.
  maxCommandLength: 4096,
  authFailuresPerSession: 3,
  authFailuresBeforeLockout: 10,
  authLockoutMs: 15 * 60_000,
  closeTimeoutMs: 5_000,
};

/** Sessions per remote address, for the per-address cap. */
export class ConnectionCounter {
  readonly #open = new Map<string, number>();

  constructor(private readonly max: number) {}

  /** Counts one more session from `address`, or answers false (and counts nothing) when it has its share. */
  acquire(address: string): boolean {
    const open = this.#open.get(address) ?? 0;
    if (open >= this.max) return false;
    this.#open.set(address, open + 1);
    return true;
  }

  release(address: string): void {
    const open = (this.#open.get(address) ?? 0) - 1;
    if (open > 0) this.#open.set(address, open);
    else this.#open.delete(address);
  }
}

interface FailureWindow {
  failures: number;
  endsAt: number;
}

/**
 * Failed logins per key (a remote address, a user name) in a fixed window: at `limit` failures the key is locked
 * until the window ends, and a locked key's password is not even checked, so guessing stops there. Keyed by user
 * name too, because a botnet changes addresses; by address too, because one address tries many names. The map is
 * bounded: expired windows go first, then the oldest, so a flood of invented names cannot exhaust memory.
 */
export class AuthThrottle {
  readonly #windows = new Map<string, FailureWindow>();

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
    private readonly now: () => number = Date.now,
    private readonly maxKeys = 50_000,
  ) {}

  /** Whether any of the keys is locked out now. */
  isLocked(keys: readonly string[]): boolean {
    const now = this.now();
    return keys.some((key) => {
      const window = this.#windows.get(key);
      return window !== undefined && window.endsAt > now && window.failures >= this.limit;
    });
  }

  /** Counts a failure against each key; answers whether this failure locked one of them. */
  recordFailure(keys: readonly string[]): boolean {
    const now = this.now();
    let locked = false;
    for (const key of keys) {
      let window = this.#windows.get(key);
      if (!window || window.endsAt <= now) {
        this.#windows.delete(key);
        window = { failures: 0, endsAt: now + this.windowMs };
        this.#windows.set(key, window);
      }
      window.failures++;
      if (window.failures === this.limit) locked = true;
    }
    this.#prune(now);
    return locked;
  }

  /** A successful login clears its user name's failures (whoever got in knew the password); never an address's. */
  recordSuccess(userKey: string): void {
    this.#windows.delete(userKey);
  }

  #prune(now: number): void {
    if (this.#windows.size <= this.maxKeys) return;
    for (const [key, window] of this.#windows) {
      if (window.endsAt <= now) this.#windows.delete(key);
    }
    // Insertion order is age order: the oldest windows give way.
    for (const key of this.#windows.keys()) {
      if (this.#windows.size <= this.maxKeys) break;
      this.#windows.delete(key);
    }
  }
}
