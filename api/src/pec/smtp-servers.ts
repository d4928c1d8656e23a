import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerDataStream, type SMTPServerOptions, type SMTPServerSession } from 'smtp-server';
import type { Db } from '@pec-partner/db';
import type { SubmissionLogin } from '../access/credentials.ts';
import type { SignInThrottle } from '../access/login-guard.ts';
import type { HolderPrincipal } from '../access/principals.ts';
import { signInForSubmission } from '../access/sign-in.ts';
import { systemClock, type Clock } from '../clock.ts';
import { ProblemError } from '../http/problem.ts';
import { ConnectionCounter, DEFAULT_SMTP_LIMITS, type SmtpLimits } from './smtp-limits.ts';

/** What the servers log with: the app's pino logger, or anything with these three methods. */
export interface Logger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

/** What the SMTP front ends hand to the engine. */
export interface SmtpEngine {
  /**
   * Access point: a holder's submission. What SMTP itself must refuse (a mailbox that may not send, an oversized
   * message) is thrown as a problem, as for the HTTP API, and answered with a permanent reply code.
   */
  submitRaw(holder: HolderPrincipal, raw: Buffer, envelope: { mailFrom: string; rcptTo: string[] }): Promise<unknown>;
  /** Receiving point: a message from another provider or the Internet. */
  receive(raw: Buffer, envelope: { mailFrom: string; rcptTo: string[] }, transport: { secure: boolean; remoteAddress: string }): Promise<void>;
  /** Whether mail for this address is ours to take (no open relay). */
  acceptsRecipient(address: string): Promise<boolean>;
  maxMessageBytes(): number;
  /** RCPT TO commands one transaction may carry; further ones are answered 452 (RFC 5321 §4.5.3.1.10). */
  maxRecipients?(): number;
  /** Where the servers log what peers do to them, when SmtpListen names no logger. */
  readonly log?: Logger | undefined;
  /** The time sign-ins are counted and recorded at, as the HTTP doors do (default: the system clock). */
  readonly clock?: Clock | undefined;
}

/** A refusal the SMTP client sees as a reply code (the HTTP API maps the same cases to problems). */
export class SmtpRefusal extends Error {
  constructor(readonly responseCode: number, message: string) {
    super(message);
  }
}

export interface SmtpListen {
  host: string;
  /** STARTTLS submission (RFC 6409); 0 picks a free port. */
  submissionPort: number;
  /** Implicit-TLS submission (RFC 8314). */
  submissionTlsPort: number;
  /** Where other providers deliver (MX); STARTTLS announced, plain accepted for ordinary mail (spec §9). */
  inboundPort: number;
  tls: { key: string; cert: string };
  /** The name announced in the greeting. */
  serverName: string;
  /** Overrides of DEFAULT_SMTP_LIMITS. */
  limits?: Partial<SmtpLimits> | undefined;
  /** Overrides of the lock-out every door shares (access/login-guard.ts), for tests that need small numbers. */
  signInThrottle?: Partial<SignInThrottle> | undefined;
  log?: Logger | undefined;
}

export interface SmtpServers {
  submissionPort: number;
  submissionTlsPort: number;
  inboundPort: number;
  close(): Promise<void>;
}

/**
 * The message of a DATA command, or null once it went past `maxBytes`: the rest is still read (the client sends it
 * whatever we answer) but not kept, so an endless DATA costs no memory.
 */
function readAll(stream: SMTPServerDataStream, maxBytes: number): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= maxBytes) chunks.push(chunk);
      else chunks.length = 0;
    });
    stream.on('end', () => resolve(size <= maxBytes && !stream.sizeExceeded ? Buffer.concat(chunks) : null));
    stream.on('error', reject);
  });
}

const envelopeOf = (session: SMTPServerSession) => ({
  mailFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address.toLowerCase() : '',
  rcptTo: session.envelope.rcptTo.map((r) => r.address.toLowerCase()),
});

const replyError = (responseCode: number, message: string): Error & { responseCode: number } => Object.assign(new Error(message), { responseCode });

/**
 * Maps an engine failure to an SMTP reply: refusals keep their code; a problem with a client-error status (HTTP
 * 4xx) is permanent, since sending again cannot change the answer: 552 for a message too large (RFC 1870), 554 for
 * content no parser may take (too complex, malformed: RFC 5321 §4.2.3, transaction failed), 550 otherwise.
 * Anything else is a temporary 451, and logged: it is ours to fix.
 */
function smtpError(error: unknown, log: Logger | undefined): Error & { responseCode: number } {
  if (error instanceof SmtpRefusal) return replyError(error.responseCode, error.message);
  if (error instanceof ProblemError && error.status < 500) {
    return replyError(error.status === 413 ? 552 : error.status === 400 || error.status === 422 ? 554 : 550, error.message);
  }
  log?.error({ err: error }, 'SMTP command failed; answered 451');
  return replyError(451, 'Temporary failure, try again later');
}

async function listen(server: SMTPServer, port: number, host: string): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return ((server as unknown as { server: { address(): AddressInfo } }).server.address()).port;
}

type PeerError = Error & { code?: string; remoteAddress?: string; meta?: { remoteAddress?: string } };

/**
 * smtp-server reports what goes wrong on a connection (a TLS handshake that never comes, a reset in the middle of
 * a transaction, bytes that are not TLS after STARTTLS) as an 'error' event of the server; unhandled, Node ends
 * the whole process with it. A peer's doing is logged as information; an error of the listening socket itself
 * (no descriptors left, say) is an error.
 */
function watch(server: SMTPServer, door: string, log: Logger | undefined): SMTPServer {
  server.on('error', (error: PeerError) => {
    const remoteAddress = error.remoteAddress ?? error.meta?.remoteAddress;
    if (remoteAddress !== undefined) log?.info({ door, remoteAddress, code: error.code, reason: error.message }, 'SMTP connection ended by an error');
    else log?.error({ err: error, door }, 'SMTP server error');
  });
  return server;
}

/**
 * The options every door shares, and a per-address cap on sessions: a client over its share is answered 421 and
 * disconnected, before its greeting.
 */
function hardened(limits: SmtpLimits, options: SMTPServerOptions): SMTPServerOptions {
  const perAddress = new ConnectionCounter(limits.maxClientsPerAddress);
  const counted = new Map<string, string>();
  const { onConnect, onClose } = options;
  return {
    ...options,
    maxClients: limits.maxClients,
    socketTimeout: limits.idleTimeoutMs,
    closeTimeout: limits.closeTimeoutMs,
    maxCommandLength: limits.maxCommandLength,
    // Nothing here uses the client's host name; a PTR lookup per connection would only let a flood of them wait on DNS.
    disableReverseLookup: true,
    // The server itself answers 552 to a message over the advertised SIZE, whatever onData decides.
    rejectOversized: true,
    logger: false,
    onConnect(session, callback) {
      if (!perAddress.acquire(session.remoteAddress)) {
        return callback(replyError(421, 'Too many connections from your address, try again later'));
      }
      counted.set(session.id, session.remoteAddress);
      if (onConnect) return onConnect(session, callback);
      callback();
    },
    onClose(session, callback) {
      const address = counted.get(session.id);
      if (address !== undefined) {
        counted.delete(session.id);
        perAddress.release(address);
      }
      onClose?.(session, callback);
    },
  };
}

export async function startSmtpServers(db: Db, engine: SmtpEngine, options: SmtpListen): Promise<SmtpServers> {
  const limits: SmtpLimits = { ...DEFAULT_SMTP_LIMITS, ...options.limits };
  const log = options.log ?? engine.log;
  const maxRecipients = engine.maxRecipients?.();
  // The login of each session (the holder, or a delegation's collaborator); the sending principal is settled at MAIL FROM.
  const logins = new Map<string, SubmissionLogin>();
  const holders = new Map<string, HolderPrincipal>();
  const clock = engine.clock ?? systemClock;
  const sessionAuthFailures = new Map<string, number>();

  /** A refused AUTH counts for the session, whose last one ends it (the lock-out itself counts in the database). */
  const authFailed = (session: SMTPServerSession, reply: Error & { responseCode: number }) => {
    const failures = (sessionAuthFailures.get(session.id) ?? 0) + 1;
    sessionAuthFailures.set(session.id, failures);
    if (failures >= limits.authFailuresPerSession) return replyError(421, 'Too many failed authentication attempts, closing connection');
    return reply;
  };

  const submission = (secure: boolean) =>
    watch(new SMTPServer(hardened(limits, {
      secure,
      name: options.serverName,
      key: options.tls.key,
      cert: options.tls.cert,
      size: engine.maxMessageBytes(),
      ...(maxRecipients ? { maxRecipients } : {}),
      authMethods: ['PLAIN', 'LOGIN'],
      // The user channel must be encrypted (spec §4.1, §9): no AUTH, hence no mail, before TLS. AUTH is not even
      // announced in clear, so that no client sends a password before STARTTLS (RFC 4954 §4); onSecure enables it.
      allowInsecureAuth: false,
      disabledCommands: ['AUTH'],
      onSecure(_socket, session, callback) {
        session.disabledCommands = [];
        callback();
      },
      onAuth(auth, session, callback) {
        const attempt = { user: auth.username ?? '', password: auth.password ?? '', remoteAddress: session.remoteAddress };
        // Through the lock-out every door shares (failures over IMAP or REST count here too), and recorded.
        signInForSubmission(db, attempt, clock.now(), { throttle: options.signInThrottle }).then((signIn) => {
          if (signIn.outcome === 'locked_out') {
            log?.warn({ remoteAddress: session.remoteAddress, user: attempt.user.slice(0, 320) }, 'SMTP AUTH refused: address or user name locked out after too many failed sign-ins');
            // Not even checked: guessing stops here. Temporary, as RFC 4954 §6 has it for a login that may work later.
            return callback(authFailed(session, replyError(454, 'Too many failed logins, try again later')));
          }
          if (signIn.outcome !== 'succeeded') return callback(authFailed(session, replyError(535, 'Invalid mailbox credentials')));
          logins.set(session.id, signIn.principal);
          callback(null, { user: signIn.principal.user });
        }, (error: unknown) => callback(smtpError(error, log)));
      },
      onMailFrom(address, session, callback) {
        const login = logins.get(session.id);
        if (!login) return callback(replyError(530, 'Authentication required'));
        // A collaborator sends from a mailbox it holds a sending delegation on (553: sender not allowed).
        login.senderFor(address.address.toLowerCase()).then((sender) => {
          if ('refusal' in sender) return callback(replyError(553, sender.refusal));
          holders.set(session.id, sender);
          callback();
        }, (error: unknown) => callback(smtpError(error, log)));
      },
      onData(stream, session, callback) {
        readAll(stream, engine.maxMessageBytes()).then(async (raw) => {
          if (raw === null) throw new SmtpRefusal(552, `Message exceeds the maximum size of ${engine.maxMessageBytes()} bytes`);
          await engine.submitRaw(holders.get(session.id)!, raw, envelopeOf(session));
          callback();
        }).catch((error: unknown) => callback(smtpError(error, log)));
      },
      onClose(session) {
        logins.delete(session.id);
        holders.delete(session.id);
        sessionAuthFailures.delete(session.id);
      },
    })), secure ? 'submission-tls' : 'submission', log);

  const inbound = watch(new SMTPServer(hardened(limits, {
    secure: false,
    name: options.serverName,
    key: options.tls.key,
    cert: options.tls.cert,
    size: engine.maxMessageBytes(),
    ...(maxRecipients ? { maxRecipients } : {}),
    authOptional: true,
    disabledCommands: ['AUTH'],
    onRcptTo(address, _session, callback) {
      engine.acceptsRecipient(address.address.toLowerCase()).then((ours) => {
        if (!ours) return callback(replyError(550, `Relay not permitted for ${address.address}`));
        callback();
      }, (error: unknown) => callback(smtpError(error, log)));
    },
    onData(stream, session, callback) {
      readAll(stream, engine.maxMessageBytes()).then(async (raw) => {
        if (raw === null) throw new SmtpRefusal(552, 'Message too large');
        await engine.receive(raw, envelopeOf(session), { secure: session.secure, remoteAddress: session.remoteAddress });
        callback();
      }).catch((error: unknown) => callback(smtpError(error, log)));
    },
  })), 'inbound', log);

  const starttls = submission(false);
  const implicit = submission(true);
  const ports = {
    submissionPort: await listen(starttls, options.submissionPort, options.host),
    submissionTlsPort: await listen(implicit, options.submissionTlsPort, options.host),
    inboundPort: await listen(inbound, options.inboundPort, options.host),
  };
  return {
    ...ports,
    close: async () => {
      await Promise.all([starttls, implicit, inbound].map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
    },
  };
}
