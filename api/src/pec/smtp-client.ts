import { Resolver } from 'node:dns/promises';
import nodemailer from 'nodemailer';

export interface SmtpRoute {
  host: string;
  port: number;
}

export interface SmtpRouting {
  /** Fixed routes by recipient domain (tests, smart hosts); other domains go to their MX on port 25. */
  routes: ReadonlyMap<string, SmtpRoute>;
  dnsServers: readonly string[];
  dnsTimeoutMs: number;
}

/** Where mail for a domain goes: a configured route, else the most preferred MX (or the domain itself, RFC 5321 §5.1). */
export async function routeFor(domain: string, routing: SmtpRouting): Promise<SmtpRoute> {
  const fixed = routing.routes.get(domain.toLowerCase());
  if (fixed) return fixed;
  const resolver = new Resolver({ timeout: routing.dnsTimeoutMs, tries: 2 });
  if (routing.dnsServers.length > 0) resolver.setServers([...routing.dnsServers]);
  try {
    const mx = await resolver.resolveMx(domain);
    mx.sort((a, b) => a.priority - b.priority);
    if (mx[0]) return { host: mx[0].exchange, port: 25 };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENODATA') throw error;
  }
  return { host: domain, port: 25 };
}

/**
 * How long a message may wait to be handed over: RFC 6109 §2.2.2 gives every PEC MTA a 24 h maximum queue time.
 * By then the sending provider has issued its final timeout notice (spec §4.5) and the transaction is over.
 */
export const QUEUE_LIFETIME_MS = 24 * 3_600_000;

export interface SmtpOutcome {
  /** Recipients the remote server took. */
  accepted: string[];
  /** Recipients refused permanently (5xx), with the server's answer. */
  rejected: Array<{ address: string; response: string }>;
}

/** A failure worth retrying later (connection refused, 4xx, timeout). */
export class TransientSmtpError extends Error {}

/**
 * Hands one message to another server. Between PEC providers the channel must be encrypted (spec §9):
 * `requireTls` refuses to send in clear when the server offers no STARTTLS.
 */
export async function sendOverSmtp(
  route: SmtpRoute,
  message: { mailFrom: string; rcptTo: string[]; raw: Buffer },
  options: { requireTls: boolean; rejectUnauthorized: boolean; clientName: string; timeoutMs?: number },
): Promise<SmtpOutcome> {
  const transport = nodemailer.createTransport({
    host: route.host,
    port: route.port,
    secure: false,
    requireTLS: options.requireTls,
    name: options.clientName,
    tls: { rejectUnauthorized: options.rejectUnauthorized },
    connectionTimeout: options.timeoutMs ?? 30_000,
    greetingTimeout: options.timeoutMs ?? 30_000,
    socketTimeout: options.timeoutMs ?? 60_000,
  });
  try {
    const info = await transport.sendMail({ envelope: { from: message.mailFrom, to: message.rcptTo }, raw: message.raw });
    const rejected = (info.rejected as Array<string | { address: string }>).map((r) => (typeof r === 'string' ? r : r.address).toLowerCase());
    const errors = (info as unknown as { rejectedErrors?: Array<{ recipient: string; response: string; responseCode: number }> }).rejectedErrors ?? [];
    if (errors.some((e) => e.responseCode < 500)) throw new TransientSmtpError(errors.map((e) => e.response).join('; '));
    return {
      accepted: (info.accepted as Array<string | { address: string }>).map((r) => (typeof r === 'string' ? r : r.address).toLowerCase()),
      rejected: rejected.map((address) => ({ address, response: errors.find((e) => e.recipient.toLowerCase() === address)?.response ?? 'rejected' })),
    };
  } catch (error) {
    if (error instanceof TransientSmtpError) throw error;
    const code = (error as { responseCode?: number }).responseCode;
    if (code && code >= 500) {
      return { accepted: [], rejected: message.rcptTo.map((address) => ({ address, response: (error as Error).message })) };
    }
    throw new TransientSmtpError((error as Error).message);
  } finally {
    transport.close();
  }
}
