import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createSecureContext, TLSSocket } from 'node:tls';
import type { Db } from '@pec-partner/db';
import type { SignInAttempt, SignInResult } from '../access/sign-in.ts';
import type { MailboxChanges } from '../mailstore/changes.ts';
import { ConnectionCounter } from '../pec/smtp-limits.ts';
import { ImapSession, type ImapLimits } from './session.ts';

export interface ImapServerLimits extends ImapLimits {
  /** Sessions per server in all; the next connection is answered BYE. */
  maxClients: number;
  /** Sessions from one remote address. */
  maxClientsPerAddress: number;
  /** Logged-in sessions per mailbox (all addresses): Dovecot's mail_max_userip_connections is 10 per address. */
  maxSessionsPerMailbox: number;
}

export const DEFAULT_IMAP_LIMITS: ImapServerLimits = {
  maxLineBytes: 64 * 1024,
  maxLiteralBytes: 64 * 1024,
  maxAppendBytes: 50 * 1024 * 1024,
  preAuthIdleMs: 60_000,
  idleMs: 30 * 60_000,
  authFailuresPerSession: 3,
  maxClients: 1000,
  maxClientsPerAddress: 50,
  maxSessionsPerMailbox: 20,
};

export interface ImapListen {
  host: string;
  /** STARTTLS port (143 in production); 0 picks a free port. */
  port: number;
  /** Implicit-TLS port (993, RFC 8314). */
  tlsPort: number;
  tls: { key: string; cert: string };
  serverName: string;
  signIn(attempt: SignInAttempt): Promise<SignInResult>;
  changes: MailboxChanges;
  limits?: Partial<ImapServerLimits> | undefined;
  log?: { info(o: object, m: string): void; warn(o: object, m: string): void; error(o: object, m: string): void } | undefined;
}

export interface ImapServers {
  port: number;
  tlsPort: number;
  close(): Promise<void>;
}

/** The IMAP doors: one listener with STARTTLS and one with implicit TLS, sharing the limits and the mailbox counts. */
export async function startImapServers(db: Db, options: ImapListen): Promise<ImapServers> {
  const limits: ImapServerLimits = { ...DEFAULT_IMAP_LIMITS, ...options.limits };
  const secureContext = createSecureContext({ key: options.tls.key, cert: options.tls.cert });
  const perAddress = new ConnectionCounter(limits.maxClientsPerAddress);
  const perMailbox = new ConnectionCounter(limits.maxSessionsPerMailbox);
  const sockets = new Set<Socket>();
  await options.changes.start();

  const accept = (secure: boolean) => (raw: Socket) => {
    const address = raw.remoteAddress ?? '';
    raw.on('error', () => {});
    if (sockets.size >= limits.maxClients || !perAddress.acquire(address)) {
      raw.end('* BYE Too many connections, try again later\r\n');
      return;
    }
    sockets.add(raw);
    raw.once('close', () => {
      sockets.delete(raw);
      perAddress.release(address);
    });
    const socket = secure ? new TLSSocket(raw, { isServer: true, secureContext }) : raw;
    if (secure) {
      socket.on('error', (error) => options.log?.info({ door: 'imap', remoteAddress: address, reason: error.message }, 'IMAP TLS connection failed'));
      // A handshake that never comes is cut like an idle session.
      const handshake = setTimeout(() => raw.destroy(), limits.preAuthIdleMs);
      handshake.unref();
      socket.once('secure', () => {
        clearTimeout(handshake);
        new ImapSession(socket, true, sessionDeps);
      });
    } else {
      new ImapSession(socket, false, sessionDeps);
    }
  };

  const sessionDeps = {
    db,
    changes: options.changes,
    signIn: options.signIn,
    acquireAccount: (mailboxId: string) => perMailbox.acquire(mailboxId),
    releaseAccount: (mailboxId: string) => perMailbox.release(mailboxId),
    tls: secureContext,
    limits,
    serverName: options.serverName,
    log: options.log,
  };

  const listen = async (server: Server, port: number) => {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, options.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (error) => options.log?.error({ err: error, door: 'imap' }, 'IMAP listener error'));
    return (server.address() as AddressInfo).port;
  };
  const starttls = createServer(accept(false));
  const implicit = createServer(accept(true));
  const ports = { port: await listen(starttls, options.port), tlsPort: await listen(implicit, options.tlsPort) };
  return {
    ...ports,
    close: async () => {
      for (const socket of sockets) {
        socket.end('* BYE Server shutting down\r\n');
        setTimeout(() => socket.destroy(), 1000).unref();
      }
      await Promise.all([starttls, implicit].map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
    },
  };
}
