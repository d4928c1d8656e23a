import {
  createHash,
  createPrivateKey,
  generateKeyPair,
  randomBytes,
  sign,
  X509Certificate,
  type KeyObject,
} from 'node:crypto';
import { promisify } from 'node:util';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';

/**
 * The provider's signing identity (spec §7): every envelope and receipt is signed with this key, and receivers find
 * the certificate in the providers index by its SHA-1 (`providerCertificateHash`).
 */
export interface ProviderIdentity {
  /** As in the providers index `providerName`; the certificate subject names it in O and CN. */
  providerName: string;
  /** `posta-certificata@<domain>`: the certificate's rfc822Name, hence the From of every system message. */
  serviceAddress: string;
  caCertificatePem: string;
  certificatePem: string;
  /** PKCS#8. */
  privateKeyPem: string;
}

const CA_VALIDITY_YEARS = 10;
const CERTIFICATE_VALIDITY_YEARS = 3;
/** Receivers whose clocks run a little behind must not see a certificate that is "not yet valid". */
const CLOCK_SKEW_MS = 60 * 60 * 1000;

const OID = {
  country: '2.5.4.6',
  organization: '2.5.4.10',
  commonName: '2.5.4.3',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  emailProtection: '1.3.6.1.5.5.7.3.4',
  sha256WithRSAEncryption: '1.2.840.113549.1.1.11',
} as const;

/** KeyUsage BIT STRING bytes (RFC 5280 §4.2.1.3: bit 0 is the high bit); DER drops trailing zero bits. */
const KEY_USAGE = {
  digitalSignature: { byte: 0x80, unusedBits: 7 },
  keyCertSignAndCrlSign: { byte: 0x06, unusedBits: 1 },
} as const;

const CONTEXT = 3; // ASN.1 context-specific tag class
const generateRsaKeyPair = promisify(generateKeyPair);

/**
 * A self-signed CA and a signing certificate issued by it with the profile of spec §7.1 (RFC 6109 §5.5): RSA 2048,
 * sha256WithRSAEncryption, subject `C=IT, O=<name>, CN=Posta Certificata <name>`, SAN rfc822Name, Key Usage
 * digitalSignature critical, AKI and SKI, Extended Key Usage emailProtection, and no Basic Constraints.
 * In production the certificate comes from AgID and is loaded with `loadProviderIdentity`; this CA stands in for it.
 */
export async function createProviderIdentity(input: {
  providerName: string;
  domain: string;
  now: Date;
  validityYears?: number;
  /** Appended to the signing certificate's CN, e.g. the sandbox's "senza valore legale". */
  commonNameNote?: string;
}): Promise<ProviderIdentity & { caPrivateKeyPem: string }> {
  const { providerName, now } = input;
  if (!providerName.trim()) throw new Error('providerName must not be empty');
  const serviceAddress = `posta-certificata@${input.domain.toLowerCase()}`;
  const validityYears = input.validityYears ?? CERTIFICATE_VALIDITY_YEARS;
  const notBefore = new Date(now.getTime() - CLOCK_SKEW_MS);
  const [caKeys, keys] = await Promise.all([
    generateRsaKeyPair('rsa', { modulusLength: 2048 }),
    generateRsaKeyPair('rsa', { modulusLength: 2048 }),
  ]);
  const caKeyId = subjectKeyIdentifier(caKeys.publicKey);
  const caName = distinguishedName(providerName, `${providerName} PEC CA`);

  const ca = issueCertificate({
    subject: caName,
    issuer: caName,
    notBefore,
    // The CA must outlive every certificate it issues.
    notAfter: addYears(now, Math.max(CA_VALIDITY_YEARS, validityYears)),
    publicKey: caKeys.publicKey,
    signingKey: caKeys.privateKey,
    extensions: [
      extension(OID.basicConstraints, true, new asn1js.Sequence({ value: [new asn1js.Boolean({ value: true })] })),
      extension(OID.keyUsage, true, keyUsage(KEY_USAGE.keyCertSignAndCrlSign)),
      extension(OID.subjectKeyIdentifier, false, new asn1js.OctetString({ valueHex: caKeyId })),
    ],
  });
  const certificate = issueCertificate({
    subject: distinguishedName(providerName, `Posta Certificata ${providerName}${input.commonNameNote ? ` - ${input.commonNameNote}` : ''}`),
    issuer: caName,
    notBefore,
    notAfter: addYears(now, validityYears),
    publicKey: keys.publicKey,
    signingKey: caKeys.privateKey,
    extensions: [
      extension(OID.keyUsage, true, keyUsage(KEY_USAGE.digitalSignature)),
      // AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] IMPLICIT OCTET STRING }
      extension(OID.authorityKeyIdentifier, false, new asn1js.Sequence({ value: [contextPrimitive(0, caKeyId)] })),
      extension(OID.subjectKeyIdentifier, false, new asn1js.OctetString({ valueHex: subjectKeyIdentifier(keys.publicKey) })),
      // GeneralNames ::= SEQUENCE OF GeneralName; rfc822Name is [1] IMPLICIT IA5String
      extension(OID.subjectAltName, false, new asn1js.Sequence({ value: [contextPrimitive(1, Buffer.from(serviceAddress, 'ascii'))] })),
      extension(OID.extKeyUsage, false, new asn1js.Sequence({ value: [new asn1js.ObjectIdentifier({ value: OID.emailProtection })] })),
    ],
  });

  return {
    providerName,
    serviceAddress,
    caCertificatePem: ca.toString(),
    certificatePem: certificate.toString(),
    privateKeyPem: keys.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    caPrivateKeyPem: caKeys.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
  };
}

/**
 * An identity from PEM material (configured files or the database), checked so that a wrong file fails at start-up
 * rather than as signatures every receiver rejects: the key matches the certificate, the CA issued the certificate,
 * the certificate carries the service address as rfc822Name and names the provider in CN or O (RFC 6109 §5.5.1).
 */
export function loadProviderIdentity(input: {
  providerName: string;
  caCertificatePem: string;
  certificatePem: string;
  privateKeyPem: string;
}): ProviderIdentity {
  const certificate = readCertificate(input.certificatePem, 'certificatePem');
  const ca = readCertificate(input.caCertificatePem, 'caCertificatePem');
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(input.privateKeyPem);
  } catch {
    throw new Error('privateKeyPem is not a readable private key');
  }
  const subject = certificate.subject.replaceAll('\n', ', ');
  if (!certificate.checkPrivateKey(privateKey)) throw new Error(`the private key does not match the certificate ${subject}`);
  if (!certificate.checkIssued(ca) || !certificate.verify(ca.publicKey)) {
    throw new Error(`the certificate ${subject} is not issued by the CA ${ca.subject.replaceAll('\n', ', ')}`);
  }

  const parsed = pkijs.Certificate.fromBER(certificate.raw);
  const serviceAddress = rfc822Names(parsed)[0];
  if (!serviceAddress) throw new Error(`the certificate ${subject} has no rfc822Name subjectAltName (the service address)`);
  const wanted = input.providerName.toLowerCase();
  const named = parsed.subject.typesAndValues
    .filter((attribute) => attribute.type === OID.commonName || attribute.type === OID.organization)
    .map((attribute) => String(attribute.value.valueBlock.value).toLowerCase());
  if (!named.some((value) => value.includes(wanted))) {
    throw new Error(`the certificate subject ${subject} does not name the provider '${input.providerName}' in CN or O`);
  }

  return {
    providerName: input.providerName,
    serviceAddress: serviceAddress.toLowerCase(),
    caCertificatePem: input.caCertificatePem,
    certificatePem: input.certificatePem,
    privateKeyPem: input.privateKeyPem,
  };
}

/** Upper-case hex SHA-1 of the certificate's DER: the providers index `providerCertificateHash` (spec §8). */
export function certificateSha1Hex(pemOrDer: string | Uint8Array): string {
  return createHash('sha1').update(new X509Certificate(pemOrDer).raw).digest('hex').toUpperCase();
}

function readCertificate(pem: string, field: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch {
    throw new Error(`${field} is not a readable X.509 certificate`);
  }
}

function rfc822Names(certificate: pkijs.Certificate): string[] {
  const san = certificate.extensions?.find((candidate) => candidate.extnID === OID.subjectAltName)?.parsedValue;
  if (!(san instanceof pkijs.AltName)) return [];
  return san.altNames.filter((name) => name.type === 1).map((name) => String(name.value));
}

function issueCertificate(input: {
  subject: asn1js.Sequence;
  issuer: asn1js.Sequence;
  notBefore: Date;
  notAfter: Date;
  publicKey: KeyObject;
  signingKey: KeyObject;
  extensions: asn1js.Sequence[];
}): X509Certificate {
  const algorithm = new asn1js.Sequence({
    value: [new asn1js.ObjectIdentifier({ value: OID.sha256WithRSAEncryption }), new asn1js.Null()],
  });
  const tbs = new asn1js.Sequence({
    value: [
      new asn1js.Constructed({ idBlock: { tagClass: CONTEXT, tagNumber: 0 }, value: [new asn1js.Integer({ value: 2 })] }), // v3
      new asn1js.Integer({ valueHex: randomSerial() }),
      algorithm,
      input.issuer,
      new asn1js.Sequence({ value: [certificateTime(input.notBefore), certificateTime(input.notAfter)] }),
      input.subject,
      asn1js.fromBER(input.publicKey.export({ type: 'spki', format: 'der' })).result,
      new asn1js.Constructed({ idBlock: { tagClass: CONTEXT, tagNumber: 3 }, value: [new asn1js.Sequence({ value: input.extensions })] }),
    ],
  });
  const signature = sign('sha256', new Uint8Array(tbs.toBER()), input.signingKey);
  const certificate = new asn1js.Sequence({ value: [tbs, algorithm, new asn1js.BitString({ valueHex: signature })] });
  return new X509Certificate(Buffer.from(certificate.toBER()));
}

/** `C=IT, O=<provider>, CN=<commonName>`: one attribute per RDN, in this order in the DER (as openssl prints it). */
function distinguishedName(providerName: string, commonName: string): asn1js.Sequence {
  const rdn = (type: string, value: asn1js.BaseBlock) =>
    new asn1js.Set({ value: [new asn1js.Sequence({ value: [new asn1js.ObjectIdentifier({ value: type }), value] })] });
  return new asn1js.Sequence({
    value: [
      rdn(OID.country, new asn1js.PrintableString({ value: 'IT' })),
      rdn(OID.organization, new asn1js.Utf8String({ value: providerName })),
      rdn(OID.commonName, new asn1js.Utf8String({ value: commonName })),
    ],
  });
}

/** Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING } (DER omits FALSE). */
function extension(extnID: string, critical: boolean, value: asn1js.BaseBlock): asn1js.Sequence {
  return new asn1js.Sequence({
    value: [
      new asn1js.ObjectIdentifier({ value: extnID }),
      ...(critical ? [new asn1js.Boolean({ value: true })] : []),
      new asn1js.OctetString({ valueHex: value.toBER() }),
    ],
  });
}

function contextPrimitive(tagNumber: number, value: Uint8Array): asn1js.Primitive {
  return new asn1js.Primitive({ idBlock: { tagClass: CONTEXT, tagNumber }, valueHex: value });
}

function keyUsage(bits: { byte: number; unusedBits: number }): asn1js.BitString {
  return new asn1js.BitString({ valueHex: new Uint8Array([bits.byte]), unusedBits: bits.unusedBits });
}

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING value. */
function subjectKeyIdentifier(publicKey: KeyObject): Buffer {
  const spki = pkijs.PublicKeyInfo.fromBER(publicKey.export({ type: 'spki', format: 'der' }));
  return createHash('sha1').update(spki.subjectPublicKey.valueBlock.valueHexView).digest();
}

/** 16 random bytes (RFC 5280 §4.1.2.2): high bit cleared so the INTEGER is positive, first byte non-zero so it stays minimal. */
function randomSerial(): Buffer {
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x7f) | 0x01;
  return serial;
}

/** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime after; whole seconds either way. */
function certificateTime(date: Date): asn1js.UTCTime {
  const valueDate = new Date(Math.floor(date.getTime() / 1000) * 1000);
  return valueDate.getUTCFullYear() < 2050 ? new asn1js.UTCTime({ valueDate }) : new asn1js.GeneralizedTime({ valueDate });
}

function addYears(date: Date, years: number): Date {
  const result = new Date(date);
  result.setUTCFullYear(result.getUTCFullYear() + years);
  return result;
}
