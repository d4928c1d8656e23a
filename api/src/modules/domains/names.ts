import { isIP } from 'node:net';
import { domainToASCII, domainToUnicode } from 'node:url';
import { parse } from 'tldts';

export type DomainNameProblem = 'invalid_domain_name' | 'public_suffix' | 'too_deep' | 'ip_address' | 'provider_domain';

export interface AnalyzedDomainName {
  /** Lower-case A-label form without a trailing dot; the form stored and used in DNS. */
  ascii: string;
  /** The same name with IDN labels decoded, for display. */
  unicode: string;
  /** 2 for the registrable domain itself, 3 for one label below it. */
  level: 2 | 3;
  registrableDomain: string;
  publicSuffix: string;
}

export type DomainNameAnalysis =
  | { ok: true; name: AnalyzedDomainName }
  | { ok: false; problem: DomainNameProblem; detail: string };

const MAX_NAME_OCTETS = 253;
const MAX_LABEL_OCTETS = 63;
const MAX_LEVEL = 3;
/** Far above any real name, so pathological input is refused before doing IDNA work on it. */
const MAX_INPUT_CHARS = 1024;
/** Keeps details readable when someone posts a very long string. */
const MAX_QUOTED_CHARS = 100;

// Private PSL entries (blogspot.com, github.io, …) are not registry boundaries: the owner of blogspot.com
// can still certify its subdomains, so only the ICANN section decides levels. The hostname is already
// validated here, so tldts must not re-parse it as a URL, guess IPs or second-guess its syntax.
const PSL_OPTIONS = { allowPrivateDomains: false, extractHostname: false, validateHostname: false, detectIp: false } as const;

// UTS #46 treats these as label separators; mapping them up front lets us split labels before IDNA conversion.
const IDEOGRAPHIC_FULL_STOPS = /[\u3002\uff0e\uff61]/g;
const LDH_LABEL = /^[a-z0-9-]+$/;
const ASCII_CHAR_OUTSIDE_LDH = /[\x00-\x2c\x2f\x3a-\x60\x7b-\x7f]/;
const ALL_DIGITS = /^[0-9]+$/;
const NON_ASCII = /[^\x00-\x7f]/;

function quote(input: string): string {
  const shown = input.length > MAX_QUOTED_CHARS ? `${input.slice(0, MAX_QUOTED_CHARS)}…` : input;
  return JSON.stringify(shown);
}

function invalidName(detail: string): DomainNameAnalysis {
  return { ok: false, problem: 'invalid_domain_name', detail };
}

/**
 * Besides dotted quads and IPv6 literals (optionally in brackets), catches the shorthand IPv4 forms that
 * URL parsers and resolvers accept (`127.1`, `0x7f000001`): WHATWG treats a host whose last label is a
 * number as an IPv4 address, and domainToASCII implements exactly that.
 */
function looksLikeIpAddress(name: string): boolean {
  const unbracketed = name.startsWith('[') && name.endsWith(']') ? name.slice(1, -1) : name;
  if (isIP(unbracketed) !== 0) return true;
  if (!/^[0-9a-fx.]+$/.test(name)) return false;
  const lastLabel = name.slice(name.lastIndexOf('.') + 1);
  if (!/^(?:[0-9]+|0x[0-9a-f]*)$/.test(lastLabel)) return false;
  return isIP(domainToASCII(name)) === 4;
}

/**
 * Converts one label to its A-label form, or returns null. Labels are converted one at a time (never the
 * whole name) so that a problem can be pinned on a label, and so that IDNA mapping can never merge, split
 * or truncate labels behind our back.
 */
function labelToAscii(label: string): string | null {
  if (!NON_ASCII.test(label)) {
    // An ASCII label claiming to be an A-label must decode to a valid U-label, else it is garbage punycode.
    if (label.startsWith('xn--') && domainToASCII(label) !== label) return null;
    return label;
  }
  const ascii = domainToASCII(label);
  return ascii !== '' && LDH_LABEL.test(ascii) ? ascii : null;
}

function normalizeProviderDomain(domain: string): string {
  const lowered = domain.trim().toLowerCase();
  const withoutDot = lowered.endsWith('.') ? lowered.slice(0, -1) : lowered;
  return domainToASCII(withoutDot) || withoutDot;
}

function findProviderDomain(ascii: string, providerDomains: readonly string[]): string | undefined {
  return providerDomains
    .map(normalizeProviderDomain)
    .find((provider) => provider !== '' && (ascii === provider || ascii.endsWith(`.${provider}`)));
}

function isKnownTld(tld: string): boolean {
  return parse(tld, PSL_OPTIONS).isIcann === true;
}

/**
 * Validates a domain name a partner wants to certify and works out its level below the public suffix.
 * Accepts Unicode (IDN) and A-label input in any case, with or without one trailing dot.
 */
export function analyzeDomainName(input: string, providerDomains: readonly string[]): DomainNameAnalysis {
  const trimmed = input.trim();
  const shown = quote(trimmed);
  if (trimmed === '') return invalidName('The domain name is empty.');
  if (trimmed.length > MAX_INPUT_CHARS) {
    return invalidName(`${shown} is longer than ${MAX_NAME_OCTETS} characters, the maximum length of a domain name.`);
  }

  // NFKC first so that compatibility characters (full-width letters, digits and punctuation) are judged by
  // the ASCII character they stand for; IDNA would map them the same way later anyway.
  const lowered = trimmed.normalize('NFKC').toLowerCase().replace(IDEOGRAPHIC_FULL_STOPS, '.');
  const name = lowered.endsWith('.') ? lowered.slice(0, -1) : lowered;

  if (looksLikeIpAddress(name)) {
    return { ok: false, problem: 'ip_address', detail: `${shown} is an IP address; only domain names can be certified.` };
  }

  // Must run before any IDNA conversion: domainToASCII percent-decodes and cuts at '/', so 'a%41.it' or
  // 'a/b.it' would otherwise come out as a different, valid-looking name.
  const badChar = ASCII_CHAR_OUTSIDE_LDH.exec(name);
  if (badChar) {
    return invalidName(
      `${shown} contains the character ${JSON.stringify(badChar[0])}; domain names may only contain letters, digits, hyphens and dots.`,
    );
  }

  const inputLabels = name.split('.');
  if (inputLabels.some((label) => label === '')) {
    return invalidName(`${shown} contains an empty label: it must not start with a dot or contain two consecutive dots.`);
  }

  const labels: string[] = [];
  for (const label of inputLabels) {
    const ascii = labelToAscii(label);
    if (ascii === null) {
      return invalidName(`${shown} contains the label ${quote(label)}, which is not a valid internationalized domain label.`);
    }
    if (ascii.length > MAX_LABEL_OCTETS) {
      return invalidName(
        `${shown} contains a label of ${ascii.length} characters in ASCII form; a label may be at most ${MAX_LABEL_OCTETS} characters long.`,
      );
    }
    if (ascii.startsWith('-') || ascii.endsWith('-')) {
      return invalidName(`${shown} contains the label ${quote(label)}, which starts or ends with a hyphen.`);
    }
    labels.push(ascii);
  }

  const ascii = labels.join('.');
  if (ascii.length > MAX_NAME_OCTETS) {
    return invalidName(
      `${shown} is ${ascii.length} characters long in ASCII form; a domain name may be at most ${MAX_NAME_OCTETS} characters long.`,
    );
  }

  const tld = labels[labels.length - 1]!;
  if (ALL_DIGITS.test(tld)) {
    return invalidName(`${shown} ends in the all-numeric label ${quote(tld)}, which cannot be a top-level domain.`);
  }

  // Checked before the suffix rules so that the provider's names are refused for what they are, however deep.
  const provider = findProviderDomain(ascii, providerDomains);
  if (provider !== undefined) {
    const relation = provider === ascii ? 'is a domain of the PEC provider' : `is under ${provider}, a domain of the PEC provider`;
    return {
      ok: false,
      problem: 'provider_domain',
      detail: `${shown} ${relation}; the provider's domains and their subdomains cannot be certified by partners.`,
    };
  }

  if (!isKnownTld(tld)) {
    return invalidName(`${shown} ends in the unknown top-level domain ${quote(tld)}.`);
  }

  const psl = parse(ascii, PSL_OPTIONS);
  const publicSuffix = psl.publicSuffix;
  const registrableDomain = psl.domain;
  if (publicSuffix === null || registrableDomain === null || registrableDomain === '') {
    return {
      ok: false,
      problem: 'public_suffix',
      detail: `${shown} is a public suffix under which anyone can register names; certify a domain registered under it instead.`,
    };
  }

  const level = labels.length - publicSuffix.split('.').length + 1;
  if (level > MAX_LEVEL) {
    return {
      ok: false,
      problem: 'too_deep',
      detail:
        `${shown} is a level-${level} domain name; at most level ${MAX_LEVEL} (one label below the registrable domain ` +
        `${registrableDomain}) can be certified.`,
    };
  }

  return {
    ok: true,
    name: {
      ascii,
      unicode: domainToUnicode(ascii) || ascii,
      level: level === 2 ? 2 : 3,
      registrableDomain,
      publicSuffix,
    },
  };
}

const LOCAL_PART = /^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$/;

/**
 * PEC mailbox local part: 1–64 characters of lower-case letters, digits, '.', '-' and '_', starting and
 * ending with a letter or digit, without consecutive dots. Deliberately narrower than RFC 5321 so addresses
 * are unambiguous on every provider system. Expects input already lower-cased.
 */
export function isValidLocalPart(local: string): boolean {
  return LOCAL_PART.test(local) && !local.includes('..');
}
