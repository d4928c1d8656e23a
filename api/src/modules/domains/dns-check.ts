import { Resolver } from 'node:dns/promises';

/**
 * Checks, through a real DNS resolver, that a customer's domain publishes what certification requires:
 * MX records that point only to this provider's inbound hosts, and the ownership token in TXT.
 * Lookup failures are reported per record rather than thrown, so the caller can store and show them.
 */

export interface DnsCheckConfig {
  /** `host` or `host:port` IP addresses; empty means the system resolvers. */
  servers: string[];
  timeoutMs: number;
  tries: number;
}

export interface ExpectedRecords {
  domain: string;
  mxHosts: string[];
  txtName: string;
  txtValue: string;
}

export type RecordStatus = 'ok' | 'missing' | 'mismatch' | 'error';

export interface RecordCheck {
  type: 'MX' | 'TXT';
  name: string;
  expected: string[];
  found: string[];
  status: RecordStatus;
  detail: string;
}

type Lookup<T> =
  | { outcome: 'answer'; records: T[] }
  | { outcome: 'nxdomain' | 'nodata' }
  | { outcome: 'failure'; reason: string };

/** Values quoted in a detail are capped so that a zone full of junk cannot produce an unreadable message. */
const MAX_VALUES_IN_DETAIL = 5;
const MAX_VALUE_LENGTH_IN_DETAIL = 100;

export async function checkDomainRecords(config: DnsCheckConfig, expected: ExpectedRecords): Promise<{ ok: boolean; records: RecordCheck[] }> {
  const resolver = createResolver(config);
  const domain = normalizeHost(expected.domain);
  const txtName = normalizeHost(expected.txtName);
  const [mx, txt] = await Promise.all([
    lookUp(config, () => resolver.resolveMx(domain)),
    lookUp(config, () => resolver.resolveTxt(txtName)),
  ]);
  const records = [
    checkMx(domain, expected.mxHosts.map(normalizeHost), mx),
    checkTxt(txtName, expected.txtValue.trim(), txt),
  ];
  return { ok: records.every((record) => record.status === 'ok'), records };
}

function createResolver(config: DnsCheckConfig): Resolver {
  // A fresh resolver per check: no answer cached from an earlier check can hide records published since.
  const resolver = new Resolver({ timeout: config.timeoutMs, tries: config.tries });
  if (config.servers.length > 0) {
    try {
      resolver.setServers(config.servers);
    } catch (error) {
      // A configuration mistake, not something the customer can fix: let it surface as a server error.
      throw new Error(`The DNS servers (${config.servers.join(', ')}) must be IP addresses, optionally with a port: ${(error as Error).message}`, { cause: error });
    }
  }
  return resolver;
}

async function lookUp<T>(config: DnsCheckConfig, query: () => Promise<T[]>): Promise<Lookup<T>> {
  try {
    const records = await query();
    return records.length > 0 ? { outcome: 'answer', records } : { outcome: 'nodata' };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOTFOUND') return { outcome: 'nxdomain' };
    if (code === 'ENODATA') return { outcome: 'nodata' };
    return { outcome: 'failure', reason: describeFailure(config, code, error) };
  }
}

function describeFailure(config: DnsCheckConfig, code: string | undefined, error: unknown): string {
  switch (code) {
    case 'ESERVFAIL':
      return 'the DNS server reported a server failure (SERVFAIL)';
    case 'EREFUSED':
      return 'the DNS server refused the query (REFUSED)';
    case 'ETIMEOUT':
      return `no DNS server answered in time (timeout ${config.timeoutMs} ms, ${config.tries} ${config.tries === 1 ? 'try' : 'tries'})`;
    case 'ECONNREFUSED':
      return 'the DNS server could not be reached (connection refused)';
    case 'EBADRESP':
    case 'EFORMERR':
      return `the DNS server sent a malformed answer (${code})`;
    case 'ENOTIMP':
      return 'the DNS server does not support this query (NOTIMP)';
    case 'EBADNAME':
      return 'the name is not a valid DNS name';
    default:
      return `the lookup failed (${code ?? (error instanceof Error ? error.message : String(error))})`;
  }
}

/** DNS names compare case-insensitively, and `host.` is the same name as `host`. */
function normalizeHost(host: string): string {
  return host.trim().toLowerCase().replace(/\.$/, '');
}

function checkMx(domain: string, mxHosts: string[], lookup: Lookup<{ exchange: string; priority: number }>): RecordCheck {
  const base = { type: 'MX' as const, name: domain, expected: mxHosts };
  const hosts = mxHosts.join(', ');
  switch (lookup.outcome) {
    case 'failure':
      return { ...base, found: [], status: 'error', detail: `The MX lookup for ${domain} failed: ${lookup.reason}. Try again later.` };
    case 'nxdomain':
      return { ...base, found: [], status: 'missing', detail: `${domain} does not exist in DNS (NXDOMAIN); publish MX records pointing to ${hosts}.` };
    case 'nodata':
      return { ...base, found: [], status: 'missing', detail: `${domain} has no MX records; publish MX records pointing to ${hosts}.` };
  }
  const found = [
    ...new Set(
      [...lookup.records]
        .sort((a, b) => a.priority - b.priority)
        // A "null MX" (RFC 7505, exchange ".") arrives as an empty name: show it as the dot the customer published.
        .map((record) => normalizeHost(record.exchange) || '.'),
    ),
  ];
  // Every MX matters, not just the preferred one: senders fall back to any of them, which would divert certified mail.
  const foreign = found.filter((host) => !mxHosts.includes(host));
  if (foreign.length > 0) {
    const which = foreign.length === 1 ? 'which is not one of' : 'which are not among';
    return {
      ...base,
      found,
      status: 'mismatch',
      detail: `MX of ${domain} points to ${foreign.join(', ')}, ${which} this provider's inbound hosts (${hosts}); every MX must point to this provider, or certified mail could be delivered elsewhere.`,
    };
  }
  return { ...base, found, status: 'ok', detail: `MX of ${domain} points only to this provider's inbound hosts (${found.join(', ')}).` };
}

function checkTxt(name: string, value: string, lookup: Lookup<string[]>): RecordCheck {
  const base = { type: 'TXT' as const, name, expected: [value] };
  switch (lookup.outcome) {
    case 'failure':
      return { ...base, found: [], status: 'error', detail: `The TXT lookup for ${name} failed: ${lookup.reason}. Try again later.` };
    case 'nxdomain':
    case 'nodata':
      return { ...base, found: [], status: 'missing', detail: `${name} has no TXT record; publish one with the value ${value}.` };
  }
  // A long TXT record arrives as several strings of up to 255 bytes; its value is their concatenation.
  const found = lookup.records.map((chunks) => chunks.join(''));
  if (found.some((candidate) => candidate.trim() === value)) {
    return { ...base, found, status: 'ok', detail: `TXT at ${name} holds the expected verification value.` };
  }
  return {
    ...base,
    found,
    status: 'mismatch',
    detail: `TXT at ${name} holds ${quoteValues(found)} but not the expected value ${value}; publish a TXT record with exactly that value.`,
  };
}

function quoteValues(values: string[]): string {
  const shown = values.slice(0, MAX_VALUES_IN_DETAIL).map((value) =>
    JSON.stringify(value.length > MAX_VALUE_LENGTH_IN_DETAIL ? `${value.slice(0, MAX_VALUE_LENGTH_IN_DETAIL)}…` : value),
  );
  const more = values.length - shown.length;
  return more > 0 ? `${shown.join(', ')} and ${more} more` : shown.join(', ');
}
