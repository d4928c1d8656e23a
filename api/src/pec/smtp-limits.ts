/**
 * The bounds every SMTP door of the provider keeps, whatever a network peer does: how many sessions, how long an
 * idle one may stay, how long a command line may be, and how many wrong passwords one session may try. smtp-server
 * enforces what it has options for; the counter below does the rest. How many wrong passwords an address or a user
 * name may try is the lock-out all doors share, in the database (api/src/access/login-guard.ts).
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
