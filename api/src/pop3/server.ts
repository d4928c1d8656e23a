import net, { type AddressInfo } from 'node:net';
import tls from 'node:tls';
import type { Db } from '@pec-partner/db';
import { ConnectionCounter } from '../pec/smtp-limits.ts';
import { DEFAULT_POP3_LIMITS, type Pop3Limits } from './limits.ts';
import type { SignInDeps } from '../access/sign-in.ts';
import { storeBackend } from './maildrop.ts';
import { Pop3Session, type Pop3Log } from './session.ts';

export { DEFAULT_POP3_LIMITS, type Pop3Limits } from './limits.ts';
export type { Pop3Log } from './session.ts';

export interface Pop3Listen {
  host: string;
  /** POP3 with STLS (RFC 2595); 0 picks a free port. */
  port: number;
  /** POP3S, implicit TLS (RFC 8314); 0 picks a free port. */
  tlsPort: number;
  tls: { key: string; cert: string };
  /** The name announced in the greeting. */
  serverName: string;
  /** Overrides of DEFAULT_POP3_LIMITS. */
  limits?: Partial<Pop3Limits> | undefined;
  log?: Pop3Log | undefined;
  /** What sign-in needs besides the database: the token service that verifies supervisors' mailbox sessions. */
  signInDeps?: SignInDeps | undefined;
}

export interface Pop3Servers {
  port: number;
  tlsPort: number;
  close(): Promise<void>;
}

async function listen(server: net.Server, port: number, host: string): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return (server.address() as AddressInfo).port;
}

/**
 * The holders' POP3 doors on the mailbox store: one port with STLS and one with implicit TLS, sharing the limits on
 * sessions per mailbox. Both accept plain TCP and do TLS per connection (see Pop3Session), so that the limits on
 * connections apply before any handshake is paid for. Sign-in needs TLS on both.
 */
export async function startPop3Servers(db: Db, options: Pop3Listen): Promise<Pop3Servers> {
  const limits: Pop3Limits = { ...DEFAULT_POP3_LIMITS, ...options.limits };
  const log = options.log;
  const secureContext = tls.createSecureContext({ key: options.tls.key, cert: options.tls.cert, minVersion: 'TLSv1.2' });
  const backend = storeBackend(db, limits.maxSessionsPerMailbox, options.signInDeps);
  const sessions = new Set<Pop3Session>();
  let closing = false;

  const door = (implicitTls: boolean) => {
    const name = implicitTls ? 'pop3s' : 'pop3';
    const perAddress = new ConnectionCounter(limits.maxClientsPerAddress);
    let open = 0;
    const server = net.createServer((socket) => {
      if (closing) {
        socket.destroy();
        return;
      }
      const address = socket.remoteAddress ?? 'unknown';
      let refusal: string | undefined;
      if (open >= limits.maxClients) refusal = '-ERR [SYS/TEMP] Too many connections, try again later';
      else if (!perAddress.acquire(address)) refusal = '-ERR [SYS/TEMP] Too many connections from your address, try again later';
      const counted = refusal === undefined;
      if (counted) open++;
      else log?.info({ door: name, remoteAddress: address }, 'POP3 connection refused: over the limits');
      // A refused client is still told why, in its own protocol (after TLS on POP3S), then disconnected.
      const session = new Pop3Session({ socket, implicitTls, secureContext, serverName: options.serverName, limits, backend, log, door: name, refusal });
      sessions.add(session);
      void session.closed.then(() => {
        sessions.delete(session);
        if (counted) {
          open--;
          perAddress.release(address);
        }
      });
    });
    server.on('error', (error) => log?.error({ err: error, door: name }, 'POP3 server error'));
    return server;
  };

  const starttls = door(false);
  const implicit = door(true);
  const ports = {
    port: await listen(starttls, options.port, options.host),
    tlsPort: await listen(implicit, options.tlsPort, options.host),
  };
  return {
    ...ports,
    async close() {
      closing = true;
      const stopped = [starttls, implicit].map((server) => new Promise<void>((resolve) => server.close(() => resolve())));
      const open = [...sessions];
      for (const session of open) session.shutdown();
      // A session in the middle of a long RETR gets closeTimeoutMs to finish it, then is cut off.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all(open.map((session) => session.closed)),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, limits.closeTimeoutMs))),
      ]);
      clearTimeout(timer);
      for (const session of sessions) session.destroy();
      await Promise.all(stopped);
    },
  };
}
