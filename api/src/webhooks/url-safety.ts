import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { isIP } from 'node:net';
import type { AppEnv } from '../config.ts';

/**
 * Webhook URLs are chosen by partners, so without these rules the dispatcher would be a way to make this server
 * send requests into its own network (SSRF). Outside development no request may reach an address of these ranges.
 */
export type UnsafeRange = 'unspecified' | 'loopback' | 'private' | 'link_local' | 'unique_local' | 'multicast' | 'reserved';

const rangeNames: Record<UnsafeRange, string> = {
  unspecified: 'an unspecified address',
  loopback: 'a loopback address',
  private: 'a private address',
  link_local: 'a link-local address',
  unique_local: 'a unique local address',
  multicast: 'a multicast address',
  reserved: 'a reserved address',
};

type Cidr4 = [base: string, bits: number, range: UnsafeRange];

const ipv4Ranges: Cidr4[] = [
  ['0.0.0.0', 8, 'unspecified'],
  ['10.0.0.0', 8, 'private'],
  // Carrier-grade NAT (RFC 6598): not routable on the internet, often the provider's own network.
  ['100.64.0.0', 10, 'private'],
  ['127.0.0.0', 8, 'loopback'],
  ['169.254.0.0', 16, 'link_local'],
  ['172.16.0.0', 12, 'private'],
  ['192.0.0.0', 24, 'reserved'],
  ['192.0.2.0', 24, 'reserved'],
  ['192.168.0.0', 16, 'private'],
  ['198.18.0.0', 15, 'reserved'],
  ['198.51.100.0', 24, 'reserved'],
  ['203.0.113.0', 24, 'reserved'],
  ['224.0.0.0', 4, 'multicast'],
  ['240.0.0.0', 4, 'reserved'],
];

function parseIpv4(text: string): number {
  return text.split('.').reduce((value, octet) => value * 256 + Number(octet), 0);
}

function ipv4Range(value: number): UnsafeRange | null {
  for (const [base, bits, range] of ipv4Ranges) {
    const size = 2 ** (32 - bits);
    if (Math.floor(value / size) === Math.floor(parseIpv4(base) / size)) return range;
  }
  return null;
}

/** The 128-bit value of a textual IPv6 address (zone ids dropped, a trailing dotted quad allowed). */
function parseIpv6(text: string): bigint {
  let address = text.toLowerCase();
  const zone = address.indexOf('%');
  if (zone >= 0) address = address.slice(0, zone);
  const lastColon = address.lastIndexOf(':');
  const tail = address.slice(lastColon + 1);
  if (tail.includes('.')) {
    const v4 = parseIpv4(tail);
    address = `${address.slice(0, lastColon + 1)}${Math.floor(v4 / 65536).toString(16)}:${(v4 % 65536).toString(16)}`;
  }
  const [head = '', rest] = address.split('::');
  const headGroups = head ? head.split(':') : [];
  const restGroups = rest ? rest.split(':') : [];
  const groups = rest === undefined ? headGroups : [...headGroups, ...Array<string>(8 - headGroups.length - restGroups.length).fill('0'), ...restGroups];
  return groups.reduce((value, group) => (value << 16n) | BigInt(Number.parseInt(group, 16)), 0n);
}

const inPrefix = (value: bigint, base: bigint, bits: number): boolean => value >> BigInt(128 - bits) === base >> BigInt(128 - bits);
const embeddedIpv4 = (value: bigint, shift: number): number => Number((value >> BigInt(shift)) & 0xffffffffn);

function ipv6Range(value: bigint): UnsafeRange | null {
  if (value === 0n) return 'unspecified';
  if (value === 1n) return 'loopback';
  // Addresses that carry an IPv4 address reach that address: IPv4-mapped (::ffff:0:0/96), NAT64 (64:ff9b::/96), 6to4 (2002::/16).
  if (inPrefix(value, 0xffffn << 32n, 96)) return ipv4Range(embeddedIpv4(value, 0));
  if (inPrefix(value, 0x64ff9bn << 96n, 96)) return ipv4Range(embeddedIpv4(value, 0));
  if (inPrefix(value, 0x2002n << 112n, 16)) return ipv4Range(embeddedIpv4(value, 80));
  // The deprecated IPv4-compatible form (::a.b.c.d) and the discard prefix.
  if (inPrefix(value, 0n, 96)) return 'reserved';
  if (inPrefix(value, 0x100n << 112n, 64)) return 'reserved';
  if (inPrefix(value, 0x20010db8n << 96n, 32)) return 'reserved';
  if (inPrefix(value, 0xfc00n << 112n, 7)) return 'unique_local';
  if (inPrefix(value, 0xfe80n << 112n, 10)) return 'link_local';
  // Deprecated site-local addresses (fec0::/10) are private networks too.
  if (inPrefix(value, 0xfec0n << 112n, 10)) return 'private';
  if (inPrefix(value, 0xff00n << 112n, 8)) return 'multicast';
  return null;
}

/** The unsafe range an IP address belongs to, or null for a public address (or something that is not an IP). */
export function unsafeRangeOf(address: string): UnsafeRange | null {
  const bare = address.replace(/^\[|\]$/g, '');
  const version = isIP(bare.split('%')[0]!);
  if (version === 4) return ipv4Range(parseIpv4(bare));
  if (version === 6) return ipv6Range(parseIpv6(bare));
  return null;
}

export interface UnsafeHost {
  address: string;
  range: UnsafeRange;
}

/** A URL host that is an IP literal of an unsafe range (a name is checked when it is resolved, by safeLookup). */
export function unsafeIpLiteral(hostname: string): UnsafeHost | null {
  const address = hostname.replace(/^\[|\]$/g, '');
  const range = unsafeRangeOf(address);
  return range ? { address, range } : null;
}

/** What a partner may not register: an unsafe IP literal, or a `localhost` name (RFC 6761 keeps them on loopback). */
function unsafeHostName(hostname: string): UnsafeHost | null {
  const host = hostname.toLowerCase().replace(/\.$/, '');
  if (host === 'localhost' || host.endsWith('.localhost')) return { address: host, range: 'loopback' };
  return unsafeIpLiteral(host);
}

export const describeUnsafe = (unsafe: UnsafeHost): string => `${unsafe.address} is ${rangeNames[unsafe.range]}`;

export interface UrlProblem {
  code: 'invalid_url' | 'url_credentials' | 'https_required' | 'private_address';
  detail: string;
}

/** Checks a webhook URL as a partner submits it; null when it may be used. */
export function webhookUrlProblem(raw: string, appEnv: AppEnv): UrlProblem | null {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { code: 'invalid_url', detail: 'must be an absolute http:// or https:// URL' };
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return { code: 'invalid_url', detail: 'must be an absolute http:// or https:// URL' };
  if (url.username || url.password) return { code: 'url_credentials', detail: 'must not contain credentials (user:password@); the signature authenticates the requests' };
  if (appEnv === 'development') return null;
  if (url.protocol !== 'https:') return { code: 'https_required', detail: 'must use https:// (plain http:// is allowed only when the server runs with APP_ENV=development)' };
  const unsafe = unsafeHostName(url.hostname);
  if (unsafe) {
    return {
      code: 'private_address',
      detail: `must not point to a private network: ${describeUnsafe(unsafe)} (allowed only when the server runs with APP_ENV=development)`,
    };
  }
  return null;
}

/** Raised by the connect-time lookup; the dispatcher records it as the attempt's error. */
export class UnsafeAddressError extends Error {
  static readonly code = 'ERR_WEBHOOK_UNSAFE_ADDRESS';
  override name = 'UnsafeAddressError';
  readonly code = UnsafeAddressError.code;
  constructor(hostname: string, unsafe: UnsafeHost) {
    super(`refused to connect: ${hostname} resolves to ${unsafe.address}, ${rangeNames[unsafe.range]}; private networks are not reachable outside development`);
  }
}

type LookupCallback = (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * A `lookup` for net.connect that fails when any address of the name is unsafe. Checking at connect time, on the
 * addresses actually used, is what defeats DNS rebinding: a name that was public when the endpoint was created
 * and points at 127.0.0.1 later is refused then.
 */
export function safeLookup(hostname: string, options: LookupOptions, callback: LookupCallback): void {
  dnsLookup(hostname, { ...options, all: true }, (error, addresses) => {
    if (error) return callback(error, '');
    for (const candidate of addresses) {
      const range = unsafeRangeOf(candidate.address);
      if (range) return callback(new UnsafeAddressError(hostname, { address: candidate.address, range }), '');
    }
    if (options.all) return callback(null, addresses);
    const first = addresses[0];
    if (!first) return callback(Object.assign(new Error(`no address for ${hostname}`), { code: 'ENOTFOUND' }), '');
    callback(null, first.address, first.family);
  });
}
