/**
 * The bounds the POP3 doors keep whatever a peer does, in the manner of smtp-limits.ts: sessions in all, per remote
 * address and per mailbox, how long an idle session may stay, how long a line may be, how many wrong passwords a
 * session may try. Lock-out across sessions (per user name, per address) is the access layer's, not the door's.
 */
export interface Pop3Limits {
  /** Connections per POP3 server (door); the next one is answered -ERR [SYS/TEMP] and closed. */
  maxClients: number;
  /** Connections per server from one remote address; the next one is answered -ERR [SYS/TEMP] and closed. */
  maxClientsPerAddress: number;
  /**
   * Signed-in sessions on one mailbox in this process, over both doors; the next login is answered -ERR [IN-USE].
   * RFC 1939 wants an exclusive lock on the maildrop; the store is shared with IMAP, REST and the webmail anyway, so
   * several sessions are allowed and each works on its own snapshot (see session.ts on DELE).
   */
  maxSessionsPerMailbox: number;
  /**
   * A session waiting this long for a command, for a TLS handshake, or for its client to read what was sent, is
   * closed without a response and without the UPDATE state (RFC 1939 §3: an autologout timer of at least 10 minutes).
   */
  idleTimeoutMs: number;
  /** Longest command line, line end included (RFC 2449 §4: 255 octets); a longer one is answered -ERR. */
  maxCommandLength: number;
  /**
   * Longest line of a login: USER, PASS, AUTH and the SASL responses, which carry long user names, pass phrases and
   * an authorization identity (RFC 5034 §4 lets AUTH exceed the command limit). Past this, the rest of the line is
   * dropped unread and the line is answered -ERR.
   */
  maxAuthLineLength: number;
  /** Failed logins in one session; the last is answered and the session closed. */
  authFailuresPerSession: number;
  /** How long closing the servers waits for a command in progress before cutting its session off. */
  closeTimeoutMs: number;
}

export const DEFAULT_POP3_LIMITS: Pop3Limits = {
  maxClients: 200,
  maxClientsPerAddress: 20,
  maxSessionsPerMailbox: 10,
  idleTimeoutMs: 10 * 60_000,
  maxCommandLength: 255,
  maxAuthLineLength: 4096,
  authFailuresPerSession: 3,
  closeTimeoutMs: 5_000,
};
