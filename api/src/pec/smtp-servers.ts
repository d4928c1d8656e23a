import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';
import type { Db } from '@pec-partner/db';
import { ProblemError } from '../http/problem.ts';
import { authenticateSubmitter, type HolderPrincipal, type SubmissionLogin } from '../modules/messages/holders.ts';

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
}

export interface SmtpServers {
  submissionPort: number;
  submissionTlsPort: number;
  inboundPort: number;
  close(): Promise<void>;
}

function readAll(stream: SMTPServerDataStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
  });
}

const envelopeOf = (session: SMTPServerSession) => ({
  mailFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address.toLowerCase() : '',
  rcptTo: session.envelope.rcptTo.map((r) => r.address.toLowerCase()),
});

/**
 * Maps an engine failure to an SMTP reply: refusals keep their code; a problem with a client-error status (HTTP
 * 4xx) is permanent, since sending again cannot change the answer: 552 for a message too large (RFC 1870), 550
 * otherwise. Anything else is a temporary 451.
 */
function smtpError(error: unknown): Error & { responseCode: number } {
  if (error instanceof SmtpRefusal) return Object.assign(new Error(error.message), { responseCode: error.responseCode });
  if (error instanceof ProblemError && error.status < 500) {
    return Object.assign(new Error(error.message), { responseCode: error.status === 413 ? 552 : 550 });
  }
  return Object.assign(new Error('Temporary failure, try again later'), { responseCode: 451 });
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

export async function startSmtpServers(db: Db, engine: SmtpEngine, options: SmtpListen): Promise<SmtpServers> {
  // The login of each session (the holder, or a delegation's collaborator); the sending principal is settled at MAIL FROM.
  const logins = new Map<string, SubmissionLogin>();
  const holders = new Map<string, HolderPrincipal>();

  const submission = (secure: boolean) =>
    new SMTPServer({
      secure,
      name: options.serverName,
      key: options.tls.key,
      cert: options.tls.cert,
      size: engine.maxMessageBytes(),
      authMethods: ['PLAIN', 'LOGIN'],
      // The user channel must be encrypted (spec §4.1, §9): no AUTH, hence no mail, before TLS. AUTH is not even
      // announced in clear, so that no client sends a password before STARTTLS (RFC 4954 §4); onSecure enables it.
      allowInsecureAuth: false,
      disabledCommands: ['AUTH'],
      logger: false,
      onSecure(_socket, session, callback) {
        session.disabledCommands = [];
        callback();
      },
      onAuth(auth, session, callback) {
        authenticateSubmitter(db, auth.username ?? '', auth.password ?? '').then((login) => {
          if (!login) return callback(Object.assign(new Error('Invalid mailbox credentials'), { responseCode: 535 }));
          logins.set(session.id, login);
          callback(null, { user: login.user });
        }, (error: unknown) => callback(smtpError(error)));
      },
      onMailFrom(address, session, callback) {
        const login = logins.get(session.id);
        if (!login) return callback(Object.assign(new Error('Authentication required'), { responseCode: 530 }));
        // A collaborator sends from a mailbox it holds a sending delegation on (553: sender not allowed).
        login.senderFor(address.address.toLowerCase()).then((sender) => {
          if ('refusal' in sender) return callback(Object.assign(new Error(sender.refusal), { responseCode: 553 }));
          holders.set(session.id, sender);
          callback();
        }, (error: unknown) => callback(smtpError(error)));
      },
      onData(stream, session, callback) {
        readAll(stream).then(async (raw) => {
          if (stream.sizeExceeded) throw new SmtpRefusal(552, `Message exceeds the maximum size of ${engine.maxMessageBytes()} bytes`);
          await engine.submitRaw(holders.get(session.id)!, raw, envelopeOf(session));
          callback();
        }).catch((error: unknown) => callback(smtpError(error)));
      },
      onClose(session) {
        logins.delete(session.id);
        holders.delete(session.id);
      },
    });

  const inbound = new SMTPServer({
    secure: false,
    name: options.serverName,
    key: options.tls.key,
    cert: options.tls.cert,
    size: engine.maxMessageBytes(),
    authOptional: true,
    disabledCommands: ['AUTH'],
    logger: false,
    onRcptTo(address, _session, callback) {
      engine.acceptsRecipient(address.address.toLowerCase()).then((ours) => {
        if (!ours) return callback(Object.assign(new Error(`Relay not permitted for ${address.address}`), { responseCode: 550 }));
        callback();
      }, (error: unknown) => callback(smtpError(error)));
    },
    onData(stream, session, callback) {
      readAll(stream).then(async (raw) => {
        if (stream.sizeExceeded) throw new SmtpRefusal(552, 'Message too large');
        await engine.receive(raw, envelopeOf(session), { secure: session.secure, remoteAddress: session.remoteAddress });
        callback();
      }).catch((error: unknown) => callback(smtpError(error)));
    },
  });

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
