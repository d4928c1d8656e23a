// The provider index (indice dei gestori PEC, RFC 6109 §4.5): the national LDIF listing every PEC provider with
// its mail domains, service mailbox and signing certificates. It answers the two questions the engine asks:
// "is this recipient domain certified?" (acceptance receipts, certificato/esterno) and "is this signer a listed
// provider?" (signature origin check at the receiving point). It also writes this provider's own record.
import { createHash } from 'node:crypto';
import { domainToASCII } from 'node:url';

export interface ProviderRecord {
  dn: string;
  providerName: string;
  /** Set only on the record of a secondary operating environment. */
  providerUnit?: string;
  /** Full PEC mail domains, as listed (matching is case-insensitive). */
  managedDomains: string[];
  /** Service mailbox for take-charge receipts and virus detection notices. */
  mailReceipt: string;
  /** DER signing certificates; several during a rollover. */
  certificates: Buffer[];
  /** Upper-case hex SHA-1 of the signing certificates, as published. */
  certificateHashes: string[];
  description?: string;
  ldifLocationUrl?: string;
}

export class LdifError extends Error {
  override name = 'LdifError';
  constructor(
    message: string,
    readonly line: number,
  ) {
    super(`LDIF line ${line}: ${message}`);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Reading (RFC 2849, content records only)

interface LogicalLine {
  text: string;
  line: number;
}

interface Attribute {
  /** Lower-case attribute type without options (";binary" is a transfer option, not part of the name). */
  name: string;
  value: Buffer;
  line: number;
}

interface Entry {
  dn: string;
  line: number;
  attributes: Attribute[];
}

export function parseLdif(text: string): ProviderRecord[] {
  return readEntries(text)
    .filter((entry) => textValues(entry, 'objectclass').some((value) => value.toLowerCase() === 'provider'))
    .map(toProviderRecord);
}

/** Unfolds continuation lines and drops comments; a blank line ends a record. */
function logicalLines(text: string): (LogicalLine | null)[] {
  const out: (LogicalLine | null)[] = [];
  let inComment = false;
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = index + 1;
    if (raw.startsWith(' ')) {
      // A folded comment stays a comment; anything else continues the previous logical line.
      if (inComment) return;
      const previous = out.at(-1);
      if (!previous) throw new LdifError('continuation line without a line to continue', line);
      previous.text += raw.slice(1);
      return;
    }
    inComment = raw.startsWith('#');
    if (inComment) return;
    out.push(raw === '' ? null : { text: raw, line });
  });
  return out;
}

function readEntries(text: string): Entry[] {
  const entries: Entry[] = [];
  let current: Attribute[] = [];
  let first = true;
  const flush = () => {
    if (current.length === 0) return;
    // "version: 1" may precede the first record, separated from it by a blank line or not.
    if (first && current[0]!.name === 'version') current.shift();
    first = false;
    if (current.length === 0) return;
    const [dnLine, ...attributes] = current;
    if (dnLine!.name !== 'dn') throw new LdifError('a record must start with "dn:"', dnLine!.line);
    if (attributes.some((a) => a.name === 'changetype')) {
      throw new LdifError('change records are not part of the provider index', dnLine!.line);
    }
    entries.push({ dn: dnLine!.value.toString('utf8'), line: dnLine!.line, attributes });
    current = [];
  };
  for (const logical of logicalLines(text)) {
    if (logical === null) flush();
    else current.push(parseAttributeLine(logical));
  }
  flush();
  return entries;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function parseAttributeLine({ text, line }: LogicalLine): Attribute {
  const colon = text.indexOf(':');
  if (colon <= 0) throw new LdifError(`expected "attribute: value", got ${JSON.stringify(text.slice(0, 40))}`, line);
  const description = text.slice(0, colon);
  if (!/^[A-Za-z0-9.-]+(;[A-Za-z0-9-]+)*$/.test(description)) {
    throw new LdifError(`invalid attribute description ${JSON.stringify(description)}`, line);
  }
  const name = description.split(';')[0]!.toLowerCase();
  const rest = text.slice(colon + 1);
  if (rest.startsWith(':')) {
    const encoded = rest.slice(1).replace(/\s+/g, '');
    if (encoded.length % 4 !== 0 || !BASE64.test(encoded)) throw new LdifError(`invalid base64 value for ${name}`, line);
    return { name, value: Buffer.from(encoded, 'base64'), line };
  }
  if (rest.startsWith('<')) throw new LdifError(`URL values are not supported (${name})`, line);
  return { name, value: Buffer.from(rest.replace(/^ +/, ''), 'utf8'), line };
}

function textValues(entry: Entry, name: string): string[] {
  return entry.attributes.filter((a) => a.name === name).map((a) => a.value.toString('utf8'));
}

function single(entry: Entry, name: string, label: string): string | undefined {
  const values = textValues(entry, name);
  if (values.length > 1) throw new LdifError(`${label} is single-valued but appears ${values.length} times`, entry.line);
  return values[0];
}

function required(entry: Entry, name: string, label: string): string {
  const value = single(entry, name, label);
  if (value === undefined || value === '') throw new LdifError(`provider ${entry.dn} lacks ${label}`, entry.line);
  return value;
}

function requiredMany(entry: Entry, name: string, label: string): string[] {
  const values = textValues(entry, name);
  if (values.length === 0) throw new LdifError(`provider ${entry.dn} lacks ${label}`, entry.line);
  return values;
}

function toProviderRecord(entry: Entry): ProviderRecord {
  const certificates = entry.attributes.filter((a) => a.name === 'providercertificate').map((a) => a.value);
  if (certificates.length === 0) throw new LdifError(`provider ${entry.dn} lacks providerCertificate`, entry.line);
  const record: ProviderRecord = {
    dn: entry.dn,
    providerName: required(entry, 'providername', 'providerName'),
    managedDomains: requiredMany(entry, 'manageddomains', 'managedDomains'),
    mailReceipt: required(entry, 'mailreceipt', 'mailReceipt'),
    certificates,
    certificateHashes: requiredMany(entry, 'providercertificatehash', 'providerCertificateHash').map((hash) => {
      const normalised = hash.replace(/[\s:]/g, '').toUpperCase();
      if (!/^[0-9A-F]{40}$/.test(normalised)) {
        throw new LdifError(`provider ${entry.dn} has a providerCertificateHash that is not a hex SHA-1`, entry.line);
      }
      return normalised;
    }),
  };
  // Optional attributes are added only when present so that records compare equal after a round trip.
  const providerUnit = single(entry, 'providerunit', 'providerUnit');
  if (providerUnit !== undefined) record.providerUnit = providerUnit;
  // description is multi-valued in the core schema; the record keeps one text.
  const descriptions = textValues(entry, 'description');
  if (descriptions.length > 0) record.description = descriptions.join('\n');
  const ldifLocationUrl = single(entry, 'ldiflocationurl', 'LDIFLocationURL');
  if (ldifLocationUrl !== undefined) record.ldifLocationUrl = ldifLocationUrl;
  return record;
}

// ---------------------------------------------------------------------------------------------------------------
// Lookups

/** Lower-case A-label form, without the trailing root dot: the form managedDomains (IA5String) can hold. */
function normaliseDomain(domain: string): string {
  const trimmed = domain.trim().replace(/\.$/, '').toLowerCase();
  return /^[\x00-\x7f]*$/.test(trimmed) ? trimmed : domainToASCII(trimmed) || trimmed;
}

/** The providerCertificateHash of a DER certificate: upper-case hex SHA-1. */
export function certificateSha1(der: Buffer): string {
  return createHash('sha1').update(der).digest('hex').toUpperCase();
}

export class ProviderIndex {
  readonly #records: readonly ProviderRecord[];
  readonly #byDomain = new Map<string, ProviderRecord>();
  readonly #byHash = new Map<string, ProviderRecord[]>();

  constructor(records: readonly ProviderRecord[]) {
    this.#records = records;
    for (const record of records) {
      for (const domain of record.managedDomains) {
        const key = normaliseDomain(domain);
        // A domain belongs to one provider; should the index list it twice, the first record wins.
        if (!this.#byDomain.has(key)) this.#byDomain.set(key, record);
      }
      for (const hash of record.certificateHashes) {
        const key = hash.toUpperCase();
        this.#byHash.set(key, [...(this.#byHash.get(key) ?? []), record]);
      }
    }
  }

  static fromLdif(text: string): ProviderIndex {
    return new ProviderIndex(parseLdif(text));
  }

  all(): readonly ProviderRecord[] {
    return this.#records;
  }

  /** Exact match on a full mail domain: a subdomain of a managed domain is not certified. */
  findByDomain(domain: string): ProviderRecord | undefined {
    return this.#byDomain.get(normaliseDomain(domain));
  }

  isCertifiedDomain(domain: string): boolean {
    return this.findByDomain(domain) !== undefined;
  }

  /**
   * The record listing this signing certificate (RFC 6109 §4.5: hash lookup, then comparison with the listed
   * certificates, so a hash alone never vouches for a certificate). When environments of one provider share a
   * certificate the first record in index order is returned; use findByDomain for an environment's mailReceipt.
   */
  findByCertificate(der: Buffer): ProviderRecord | undefined {
    const candidates = this.#byHash.get(certificateSha1(der)) ?? [];
    return candidates.find((record) => record.certificates.some((certificate) => certificate.equals(der)));
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Writing

const MAX_LINE = 76;

// RFC 2849 SAFE-STRING: no NUL, CR, LF or non-ASCII anywhere; no space, colon or "<" first. A trailing space is
// legal but would not survive editors and readers that trim, hence base64 too.
function isSafeString(value: string): boolean {
  return /^[\x01-\x09\x0b\x0c\x0e-\x1f\x21-\x39\x3b\x3d-\x7f][\x01-\x09\x0b\x0c\x0e-\x7f]*$/.test(value) && !value.endsWith(' ');
}

function fold(line: string): string {
  if (line.length <= MAX_LINE) return line;
  const parts = [line.slice(0, MAX_LINE)];
  // Each continuation line spends one column on its leading space.
  for (let at = MAX_LINE; at < line.length; at += MAX_LINE - 1) parts.push(' ' + line.slice(at, at + MAX_LINE - 1));
  return parts.join('\n');
}

function textLine(name: string, value: string): string {
  if (value === '') return `${name}:`;
  return fold(isSafeString(value) ? `${name}: ${value}` : `${name}:: ${Buffer.from(value, 'utf8').toString('base64')}`);
}

/** One LDIF record ending with a newline; join several records with "\n" to get the blank line between them. */
export function toLdif(record: ProviderRecord): string {
  const lines = [
    textLine('dn', record.dn),
    'objectclass: top',
    'objectclass: provider',
    textLine('providerName', record.providerName),
    ...(record.providerUnit === undefined ? [] : [textLine('providerUnit', record.providerUnit)]),
    ...record.certificateHashes.map((hash) => textLine('providerCertificateHash', hash)),
    ...record.certificates.map((der) => fold(`providerCertificate;binary:: ${der.toString('base64')}`)),
    textLine('mailReceipt', record.mailReceipt),
    ...record.managedDomains.map((domain) => textLine('managedDomains', domain)),
    ...(record.ldifLocationUrl === undefined ? [] : [textLine('LDIFLocationURL', record.ldifLocationUrl)]),
    ...(record.description === undefined ? [] : [textLine('description', record.description)]),
  ];
  return lines.join('\n') + '\n';
}
