import { isIP } from 'node:net';
import path from 'node:path';
import { normalizePartitaIva, normalizeTaxCode, validateCodiceFiscale, validatePartitaIva } from './modules/customers/tax-codes.ts';

/** Every setting the server reads, validated once at start-up. The README's configuration table mirrors this. */
export interface AppConfig {
  databaseUrl: string | undefined;
  dataDir: string;
  host: string;
  port: number;
  publicUrl: string;
  logLevel: string;
  rateLimitPerMinute: number;
  pricesFile: string | undefined;
  oauthTokenTtlSeconds: number;
  idempotencyTtlHours: number;
  /** The provider's own PEC domains: any partner may create mailboxes on them without certification. */
  providerDomains: string[];
  /** Where certified domains' MX records must point. */
  inboundMxHosts: string[];
  /** Resolvers for domain verification (`host` or `host:port`); empty means the system's. */
  dnsServers: string[];
  dnsTimeoutMs: number;
  /** Days a manual-renewal mailbox stays usable after it expires before it is marked expired. */
  mailboxGraceDays: number;
  /** Days a degraded domain may stay degraded before it is decertified. */
  domainDecertifyAfterDays: number;
  /** How often this process looks for due scheduled work; 0 runs none (another process does). */
  jobsIntervalSeconds: number;
  /**
   * `production` (default) or `development`. Development relaxes the safety rules for webhook endpoints only:
   * plain http:// URLs and private or loopback addresses (a receiver on the developer's machine) are allowed.
   */
  appEnv: AppEnv;
  pec: PecConfig;
  newsletter: NewsletterConfig;
  webhooks: WebhookConfig;
  /** Where partners send bank transfers; null when not configured (then top-ups are refused with a 503). */
  bankAccount: BankAccountConfig | null;
  /** The provider's own fiscal data: the supplier (cedente/prestatore) on every invoice it issues to partners. */
  invoicing: InvoicingConfig;
  /** Card top-ups through Stripe Checkout; null when not configured (then only bank transfers are offered). */
  stripe: StripeConfig | null;
}

/** Stripe's secret API key and the signing secret of the webhook endpoint; `api` overrides where the library connects. */
export interface StripeConfig {
  secretKey: string;
  webhookSecret: string;
  /** From STRIPE_API_BASE_URL: a local fake of Stripe's API in tests; unset: api.stripe.com. */
  api: { host: string; port: number; protocol: 'http' | 'https' } | undefined;
}

function loadStripeConfig(env: NodeJS.ProcessEnv): StripeConfig | null {
  const secretKey = env.STRIPE_SECRET_KEY?.trim() || undefined;
  const webhookSecret = env.STRIPE_WEBHOOK_SECRET?.trim() || undefined;
  const base = env.STRIPE_API_BASE_URL?.trim() || undefined;
  if (!secretKey && !webhookSecret) {
    if (base) throw new ConfigError('STRIPE_API_BASE_URL needs STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET.');
    return null;
  }
  if (!secretKey || !webhookSecret) throw new ConfigError('STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET go together: set both or none.');
  // Secret (sk_) or restricted (rk_) keys, live or test; never the publishable key (pk_), which cannot create sessions.
  if (!/^(sk|rk)_(live|test)_[A-Za-z0-9]{8,}$/.test(secretKey)) {
    throw new ConfigError("STRIPE_SECRET_KEY must be a Stripe secret or restricted key ('sk_live_…', 'sk_test_…', 'rk_…'); the value given is not one.");
  }
  if (!/^whsec_[A-Za-z0-9+/=]{8,}$/.test(webhookSecret)) {
    throw new ConfigError("STRIPE_WEBHOOK_SECRET must be the signing secret of the webhook endpoint ('whsec_…', in Stripe's dashboard); the value given is not one.");
  }
  let api: StripeConfig['api'];
  if (base) {
    let url: URL;
    try {
      url = new URL(base);
    } catch {
      throw new ConfigError(`STRIPE_API_BASE_URL must be an absolute http(s) URL such as http://127.0.0.1:12111; got '${base}'.`);
    }
    if ((url.protocol !== 'http:' && url.protocol !== 'https:') || (url.pathname !== '/' && url.pathname !== '') || url.search || url.username) {
      throw new ConfigError(`STRIPE_API_BASE_URL must be an http(s) origin (scheme, host, optional port; no path); got '${base}'.`);
    }
    const protocol = url.protocol === 'http:' ? 'http' : 'https';
    api = { host: url.hostname.replace(/^\[|\]$/g, ''), port: url.port ? Number(url.port) : protocol === 'http' ? 80 : 443, protocol };
  }
  return { secretKey, webhookSecret, api };
}

/** The provider's bank account, as shown in a pending top-up's payment instructions. */
export interface BankAccountConfig {
  /** Electronic format: upper case, no spaces. */
  iban: string;
  beneficiary: string;
  bic: string;
}

/** ISO 13616: two letters, two check digits, up to 30 alphanumerics; mod 97 of the rearranged number is 1. */
export function isValidIban(iban: string): boolean {
  if (!/^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$/.test(iban)) return false;
  if (iban.startsWith('IT') && iban.length !== 27) return false;
  const rearranged = iban.slice(4) + iban.slice(0, 4);
  let remainder = 0;
  for (const char of rearranged) {
    const digits = /[A-Z]/.test(char) ? String(char.charCodeAt(0) - 55) : char;
    for (const digit of digits) remainder = (remainder * 10 + Number(digit)) % 97;
  }
  return remainder === 1;
}

/** The development defaults: the IBAN is the well-known example of the Italian banking association, not an account. */
const DEVELOPMENT_BANK_ACCOUNT: BankAccountConfig = { iban: 'IT60X0542811101000000123456', beneficiary: 'PEC Partner Demo S.p.A.', bic: 'BPMOIT22XXX' };

function loadBankAccount(env: NodeJS.ProcessEnv, appEnv: AppEnv): BankAccountConfig | null {
  const iban = env.PROVIDER_IBAN?.replace(/\s+/g, '').toUpperCase() || undefined;
  const beneficiary = env.PROVIDER_BENEFICIARY?.trim() || undefined;
  const bic = env.PROVIDER_BIC?.trim().toUpperCase() || undefined;
  const given = [iban, beneficiary, bic].filter(Boolean).length;
  if (given === 0) return appEnv === 'development' ? DEVELOPMENT_BANK_ACCOUNT : null;
  if (given !== 3) throw new ConfigError('PROVIDER_IBAN, PROVIDER_BENEFICIARY and PROVIDER_BIC go together: set all three or none.');
  if (!isValidIban(iban!)) throw new ConfigError(`PROVIDER_IBAN must be a valid IBAN (country, check digits, account; mod 97); got '${env.PROVIDER_IBAN}'.`);
  if (!/^[A-Z]{4}[A-Z]{2}[A-Z0-9]{2}([A-Z0-9]{3})?$/.test(bic!)) throw new ConfigError(`PROVIDER_BIC must be a BIC of 8 or 11 characters; got '${env.PROVIDER_BIC}'.`);
  if (beneficiary!.length > 70) throw new ConfigError('PROVIDER_BENEFICIARY must be at most 70 characters (the SEPA limit for a name).');
  return { iban: iban!, beneficiary: beneficiary!, bic: bic! };
}

/** Tax regimes of the FatturaPA schema v1.2.2 (RF03 was withdrawn). */
export const taxRegimes = ['RF01', 'RF02', 'RF04', 'RF05', 'RF06', 'RF07', 'RF08', 'RF09', 'RF10', 'RF11', 'RF12', 'RF13', 'RF14', 'RF15', 'RF16', 'RF17', 'RF18', 'RF19'] as const;

export interface InvoicingConfig {
  /** Denominazione, at most 80 Latin-1 characters. */
  legalName: string;
  /** Partita IVA, 11 digits; also the SDI transmitter id and the prefix of every FatturaPA file name. */
  vatNumber: string;
  /** Codice fiscale; defaults to the VAT number, as for most companies. */
  taxCode: string;
  address: { street: string; town: string; postcode: string; province: string; country: 'IT' };
  /** RegimeFiscale: RF01 is the ordinary regime. */
  taxRegime: (typeof taxRegimes)[number];
  /** Printed in Contatti; optional. */
  email: string | undefined;
  /** Printed in the payment data of bank-transfer invoices: PROVIDER_IBAN, when the bank account is configured. */
  iban: string | undefined;
}

export const appEnvs = ['production', 'development'] as const;
export type AppEnv = (typeof appEnvs)[number];

/** The webhook dispatcher's settings. */
export interface WebhookConfig {
  /** Delivery workers in this process; 0 runs none (another process delivers). */
  workers: number;
  /**
   * Limit for connecting, for the answer's headers and for each wait on its body; a slower receiver is a failed
   * attempt. The whole attempt is cut off after 3 × this + 1 s, so a receiver trickling bytes cannot hold a worker.
   */
  timeoutMs: number;
  /** Requests in flight to one endpoint at most, across all workers, so a burst of events cannot flood a receiver. */
  concurrencyPerEndpoint: number;
}

/** The newsletter add-on's outbound relay (a smart host that does MX routing, queueing and retries). */
export interface NewsletterConfig {
  smtpHost: string;
  /** 465 speaks TLS from the first byte; other ports upgrade with STARTTLS when the relay offers it. */
  smtpPort: number;
  /** Credentials for the relay; both or none. */
  smtpUser: string | undefined;
  smtpPassword: string | undefined;
  /** Verify the relay's TLS certificate. */
  verifyTls: boolean;
  /** Messages handed to the relay per minute, all campaigns together (the throttle). */
  ratePerMinute: number;
  /** Envelope sender and From address of campaigns; the display name is the mailbox holder's name. */
  fromAddress: string;
}

/** The PEC engine's settings. */
export interface PecConfig {
  /** As in the provider index (`providerName`) and in the signing certificate's O and CN. */
  providerName: string;
  /** PEM files of a signing certificate, its key and its CA; all three or none (then generated on first start). */
  certificateFile: string | undefined;
  privateKeyFile: string | undefined;
  caCertificateFile: string | undefined;
  /** LDIF of the other providers (indice dei gestori); this provider is always added to it. */
  providerIndexFile: string | undefined;
  maxRecipients: number;
  /** Message size × number of recipients may not exceed this. */
  maxTotalBytes: number;
  /** Parallel pipeline workers in this process; 0 runs none (tests drive the queue by hand). */
  workers: number;
  smtp: {
    host: string;
    submissionPort: number;
    submissionTlsPort: number;
    inboundPort: number;
    /** The holders' mail-client doors, on the same host and TLS certificate as SMTP: IMAP (STARTTLS, implicit TLS), POP3 (STLS, implicit TLS). */
    imapPort: number;
    imapTlsPort: number;
    pop3Port: number;
    pop3TlsPort: number;
    /** Fixed next hops by recipient domain; other domains go to their MX. */
    routes: Map<string, { host: string; port: number }>;
    /** Verify the certificates of other providers' SMTP servers (off only in development and tests). */
    verifyPeerTls: boolean;
    tlsCertificateFile: string | undefined;
    tlsPrivateKeyFile: string | undefined;
    /** Per SMTP server (door): sessions in all, sessions per remote address, idle timeout (see smtp-limits.ts). */
    limits: { maxClients: number; maxClientsPerAddress: number; idleTimeoutMs: number };
  };
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be an integer between ${min} and ${max}; got '${raw}'.`);
  }
  return value;
}

const HOSTNAME = /^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$/;

function hostList(env: NodeJS.ProcessEnv, name: string, fallback: string, allowEmpty = false): string[] {
  const raw = env[name] ?? fallback;
  const items = raw.split(',').map((item) => item.trim().toLowerCase()).filter(Boolean);
  if (!allowEmpty && items.length === 0) throw new ConfigError(`${name} must list at least one host name.`);
  return items;
}

function domainList(env: NodeJS.ProcessEnv, name: string, fallback: string): string[] {
  const items = hostList(env, name, fallback);
  const bad = items.find((item) => !HOSTNAME.test(item));
  if (bad) throw new ConfigError(`${name} must be a comma-separated list of domain names; '${bad}' is not one.`);
  return items;
}

/** `1.1.1.1`, `1.1.1.1:53`, `::1` or `[::1]:53`: the forms `Resolver.setServers` accepts. */
function isResolverAddress(item: string): boolean {
  if (isIP(item)) return true;
  const bracketed = /^\[([^\]]+)\]:(\d{1,5})$/.exec(item);
  if (bracketed) return isIP(bracketed[1]!) === 6 && Number(bracketed[2]) <= 65535;
  const withPort = /^([\d.]+):(\d{1,5})$/.exec(item);
  return withPort !== null && isIP(withPort[1]!) === 4 && Number(withPort[2]) <= 65535;
}

function serverList(env: NodeJS.ProcessEnv, name: string): string[] {
  const items = hostList(env, name, '', true);
  // node:dns takes addresses only: a host name here would need DNS to find DNS.
  const bad = items.find((item) => !isResolverAddress(item));
  if (bad) throw new ConfigError(`${name} must list resolvers as IP or IP:port (IPv6 as [address]:port); '${bad}' is not one.`);
  return items;
}

function optionalFile(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = env[name];
  return value ? path.resolve(value) : undefined;
}

function loadPecConfig(env: NodeJS.ProcessEnv): PecConfig {
  const files = {
    certificateFile: optionalFile(env, 'PEC_CERTIFICATE_FILE'),
    privateKeyFile: optionalFile(env, 'PEC_PRIVATE_KEY_FILE'),
    caCertificateFile: optionalFile(env, 'PEC_CA_CERTIFICATE_FILE'),
  };
  const given = Object.values(files).filter(Boolean).length;
  if (given !== 0 && given !== 3) {
    throw new ConfigError('PEC_CERTIFICATE_FILE, PEC_PRIVATE_KEY_FILE and PEC_CA_CERTIFICATE_FILE go together: set all three or none.');
  }
  const providerName = (env.PEC_PROVIDER_NAME ?? 'PEC Partner Demo S.p.A.').trim();
  if (!providerName || providerName.length > 64 || /[,=+<>#;"\\]/.test(providerName)) {
    throw new ConfigError(`PEC_PROVIDER_NAME must be 1 to 64 characters without , = + < > # ; " or \\; got '${providerName}'.`);
  }
  return {
    providerName,
    ...files,
    providerIndexFile: optionalFile(env, 'PEC_PROVIDER_INDEX_FILE'),
    maxRecipients: integer(env, 'PEC_MAX_RECIPIENTS', 500, 50, 100_000),
    maxTotalBytes: integer(env, 'PEC_MAX_TOTAL_BYTES', 100 * 1024 * 1024, 30 * 1024 * 1024, 2 ** 40),
    workers: integer(env, 'PEC_WORKERS', 4, 0, 64),
    smtp: {
      host: env.PEC_SMTP_HOST || '127.0.0.1',
      submissionPort: integer(env, 'PEC_SUBMISSION_PORT', 2587, 0, 65535),
      submissionTlsPort: integer(env, 'PEC_SUBMISSION_TLS_PORT', 2465, 0, 65535),
      inboundPort: integer(env, 'PEC_INBOUND_PORT', 2525, 0, 65535),
      routes: smtpRoutes(env.PEC_SMTP_ROUTES ?? ''),
      verifyPeerTls: (env.PEC_SMTP_VERIFY_TLS ?? 'true') !== 'false',
      tlsCertificateFile: optionalFile(env, 'PEC_TLS_CERTIFICATE_FILE'),
      tlsPrivateKeyFile: optionalFile(env, 'PEC_TLS_PRIVATE_KEY_FILE'),
      imapPort: integer(env, 'IMAP_PORT', 2143, 0, 65535),
      imapTlsPort: integer(env, 'IMAP_TLS_PORT', 2993, 0, 65535),
      pop3Port: integer(env, 'POP3_PORT', 2110, 0, 65535),
      pop3TlsPort: integer(env, 'POP3_TLS_PORT', 2995, 0, 65535),
      limits: {
        maxClients: integer(env, 'PEC_SMTP_MAX_CLIENTS', 100, 1, 100_000),
        maxClientsPerAddress: integer(env, 'PEC_SMTP_MAX_CLIENTS_PER_IP', 10, 1, 100_000),
        idleTimeoutMs: integer(env, 'PEC_SMTP_IDLE_TIMEOUT_SECONDS', 60, 5, 3600) * 1000,
      },
    },
  };
}

/** `domain=host:port` pairs separated by commas. */
function smtpRoutes(raw: string): Map<string, { host: string; port: number }> {
  const routes = new Map<string, { host: string; port: number }>();
  for (const item of raw.split(',').map((x) => x.trim()).filter(Boolean)) {
    const match = /^([a-z0-9.-]+)=([a-z0-9.-]+|\[[0-9a-f:]+\]):(\d{1,5})$/i.exec(item);
    if (!match || Number(match[3]) > 65535) throw new ConfigError(`PEC_SMTP_ROUTES must be comma-separated domain=host:port pairs; '${item}' is not one.`);
    routes.set(match[1]!.toLowerCase(), { host: match[2]!.replace(/^\[|\]$/g, ''), port: Number(match[3]) });
  }
  return routes;
}

const RELAY_HOST = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/i;

function loadNewsletterConfig(env: NodeJS.ProcessEnv, providerDomains: string[]): NewsletterConfig {
  const smtpHost = (env.NEWSLETTER_SMTP_HOST || '127.0.0.1').trim();
  if (!isIP(smtpHost) && !RELAY_HOST.test(smtpHost)) {
    throw new ConfigError(`NEWSLETTER_SMTP_HOST must be a host name or IP address; got '${smtpHost}'.`);
  }
  const smtpUser = env.NEWSLETTER_SMTP_USER || undefined;
  const smtpPassword = env.NEWSLETTER_SMTP_PASSWORD || undefined;
  if ((smtpUser === undefined) !== (smtpPassword === undefined)) {
    throw new ConfigError('NEWSLETTER_SMTP_USER and NEWSLETTER_SMTP_PASSWORD go together: set both or none.');
  }
  const verify = env.NEWSLETTER_SMTP_VERIFY_TLS || 'true';
  if (verify !== 'true' && verify !== 'false') throw new ConfigError(`NEWSLETTER_SMTP_VERIFY_TLS must be true or false; got '${verify}'.`);
  const fromAddress = (env.NEWSLETTER_FROM_ADDRESS || `newsletter@${providerDomains[0]}`).trim().toLowerCase();
  const at = fromAddress.lastIndexOf('@');
  if (at < 1 || !/^[a-z0-9!#$%&'*+/=?^_`{|}~.-]+$/.test(fromAddress.slice(0, at)) || !HOSTNAME.test(fromAddress.slice(at + 1))) {
    throw new ConfigError(`NEWSLETTER_FROM_ADDRESS must be an e-mail address; got '${fromAddress}'.`);
  }
  return {
    smtpHost,
    smtpPort: integer(env, 'NEWSLETTER_SMTP_PORT', 25, 1, 65535),
    smtpUser,
    smtpPassword,
    verifyTls: verify === 'true',
    ratePerMinute: integer(env, 'NEWSLETTER_RATE_PER_MINUTE', 60, 1, 100_000),
    fromAddress,
  };
}

/** Characters the FatturaPA schema accepts in its Latin text fields (Basic Latin and Latin-1 Supplement). */
export const LATIN1_TEXT = /^[\u0020-\u007e\u00a0-\u00ff]+$/;

function loadInvoicingConfig(env: NodeJS.ProcessEnv, providerName: string, bank: BankAccountConfig | null): InvoicingConfig {
  const text = (name: string, fallback: string, max: number): string => {
    const value = (env[name] || fallback).trim();
    if (!value || value.length > max || !LATIN1_TEXT.test(value)) {
      throw new ConfigError(`${name} must be 1 to ${max} Latin-1 characters (the FatturaPA schema allows no others); got '${value}'.`);
    }
    return value;
  };
  const vatNumber = normalizePartitaIva(env.INVOICE_SUPPLIER_VAT_NUMBER || '12345678903');
  const vat = validatePartitaIva(vatNumber);
  if (!vat.ok) throw new ConfigError(`INVOICE_SUPPLIER_VAT_NUMBER must be a valid partita IVA: ${vat.reason}; got '${vatNumber}'.`);
  const taxCode = normalizeTaxCode(env.INVOICE_SUPPLIER_TAX_CODE || vatNumber);
  const cf = validateCodiceFiscale(taxCode);
  if (!cf.ok) throw new ConfigError(`INVOICE_SUPPLIER_TAX_CODE must be a valid codice fiscale: ${cf.reason}; got '${taxCode}'.`);
  const postcode = (env.INVOICE_SUPPLIER_POSTCODE || '20121').trim();
  if (!/^\d{5}$/.test(postcode)) throw new ConfigError(`INVOICE_SUPPLIER_POSTCODE must be an Italian CAP (five digits); got '${postcode}'.`);
  const province = (env.INVOICE_SUPPLIER_PROVINCE || 'MI').trim().toUpperCase();
  if (!/^[A-Z]{2}$/.test(province)) throw new ConfigError(`INVOICE_SUPPLIER_PROVINCE must be a two-letter province code; got '${province}'.`);
  const taxRegime = (env.INVOICE_SUPPLIER_TAX_REGIME || 'RF01').trim().toUpperCase();
  if (!(taxRegimes as readonly string[]).includes(taxRegime)) {
    throw new ConfigError(`INVOICE_SUPPLIER_TAX_REGIME must be one of ${taxRegimes.join(', ')}; got '${taxRegime}'.`);
  }
  const email = env.INVOICE_SUPPLIER_EMAIL?.trim() || undefined;
  if (email !== undefined && !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(email)) {
    throw new ConfigError(`INVOICE_SUPPLIER_EMAIL must be an e-mail address; got '${email}'.`);
  }
  // One account: the one partners pay top-ups into (PROVIDER_IBAN) is the one bank-transfer invoices print.
  // INVOICE_SUPPLIER_IBAN was a second name for it: still accepted when it names that same account, refused otherwise.
  const deprecated = env.INVOICE_SUPPLIER_IBAN?.replace(/\s+/g, '').toUpperCase() || undefined;
  if (deprecated !== undefined && deprecated !== bank?.iban) {
    throw new ConfigError(`INVOICE_SUPPLIER_IBAN is replaced by PROVIDER_IBAN (the account top-ups are paid into, printed on the invoices): remove it${bank ? ` (PROVIDER_IBAN is ${bank.iban})` : ' and set PROVIDER_IBAN, PROVIDER_BENEFICIARY and PROVIDER_BIC'}; got '${env.INVOICE_SUPPLIER_IBAN}'.`);
  }
  const iban = bank?.iban;
  return {
    legalName: text('INVOICE_SUPPLIER_NAME', providerName, 80),
    vatNumber,
    taxCode,
    address: {
      street: text('INVOICE_SUPPLIER_STREET', 'Via Example 1', 60),
      town: text('INVOICE_SUPPLIER_TOWN', 'Milano', 60),
      postcode,
      province,
      country: 'IT',
    },
    taxRegime: taxRegime as InvoicingConfig['taxRegime'],
    email,
    iban,
  };
}

function loadWebhookConfig(env: NodeJS.ProcessEnv): WebhookConfig {
  return {
    workers: integer(env, 'WEBHOOK_WORKERS', 2, 0, 64),
    timeoutMs: integer(env, 'WEBHOOK_TIMEOUT_MS', 10_000, 100, 120_000),
    concurrencyPerEndpoint: integer(env, 'WEBHOOK_CONCURRENCY_PER_ENDPOINT', 4, 1, 100),
  };
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): AppConfig {
  const port = integer(env, 'PORT', 3000, 0, 65535);
  const host = env.HOST || '127.0.0.1';
  const logLevel = env.LOG_LEVEL || 'info';
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(logLevel)) {
    throw new ConfigError(`LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent; got '${logLevel}'.`);
  }
  const databaseUrl = env.DATABASE_URL || undefined;
  if (databaseUrl && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new ConfigError(`DATABASE_URL must be a postgres:// URL; got '${databaseUrl}'.`);
  }
  const providerDomains = domainList(env, 'PROVIDER_DOMAINS', 'pec.example.it,postacert.example.it');
  const publicUrl = env.PUBLIC_URL || `http://${host}:${port}`;
  try {
    new URL(publicUrl);
  } catch {
    throw new ConfigError(`PUBLIC_URL must be an absolute URL; got '${publicUrl}'.`);
  }
  const pec = loadPecConfig(env);
  const appEnv = env.APP_ENV || 'production';
  if (!(appEnvs as readonly string[]).includes(appEnv)) {
    throw new ConfigError(`APP_ENV must be production or development; got '${appEnv}'.`);
  }
  const bankAccount = loadBankAccount(env, appEnv as AppEnv);
  return {
    databaseUrl,
    dataDir: path.resolve(env.DATA_DIR || '.data'),
    host,
    port,
    publicUrl: publicUrl.replace(/\/$/, ''),
    logLevel,
    rateLimitPerMinute: integer(env, 'RATE_LIMIT_PER_MINUTE', 600, 1, 1_000_000),
    pricesFile: env.PRICES_FILE || undefined,
    oauthTokenTtlSeconds: integer(env, 'OAUTH_TOKEN_TTL_SECONDS', 900, 60, 86_400),
    idempotencyTtlHours: integer(env, 'IDEMPOTENCY_TTL_HOURS', 24, 1, 720),
    providerDomains,
    inboundMxHosts: domainList(env, 'INBOUND_MX_HOSTS', 'mx1.pec.example.it,mx2.pec.example.it'),
    dnsServers: serverList(env, 'DNS_SERVERS'),
    dnsTimeoutMs: integer(env, 'DNS_TIMEOUT_MS', 3000, 100, 60_000),
    mailboxGraceDays: integer(env, 'MAILBOX_GRACE_DAYS', 30, 0, 365),
    domainDecertifyAfterDays: integer(env, 'DOMAIN_DECERTIFY_AFTER_DAYS', 7, 1, 365),
    jobsIntervalSeconds: integer(env, 'JOBS_INTERVAL_SECONDS', 60, 0, 86_400),
    appEnv: appEnv as AppEnv,
    pec,
    newsletter: loadNewsletterConfig(env, providerDomains),
    webhooks: loadWebhookConfig(env),
    bankAccount,
    invoicing: loadInvoicingConfig(env, pec.providerName, bankAccount),
    stripe: loadStripeConfig(env),
  };
}
