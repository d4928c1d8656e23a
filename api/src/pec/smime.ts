import { constants, createHash, createPrivateKey, randomBytes, sign, verify, X509Certificate, type KeyObject } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import type { ProviderIdentity } from './identity.ts';

/**
 * S/MIME multipart/signed (RFC 5751 §3.5.3, RFC 1847) with a detached CMS SignedData (RFC 5652): how every PEC
 * envelope and receipt is signed (spec §7) and how those of other providers are checked (spec §7.3).
 */

export interface SignedMessage {
  /** Value of the outer `Content-Type` header. */
  contentType: string;
  /** The multipart/signed body: the entity exactly as given, then `smime.p7s`. */
  body: Buffer;
}

export interface Signer {
  /**
   * `entity` is a complete MIME entity (its own headers, CRLF, body) with CRLF line ends: its bytes are what is
   * signed and they go out unchanged. `signingTime` defaults to now; pass the transaction's timestamp so the
   * signature agrees with daticert and the log (spec §5).
   */
  sign(entity: Buffer, signingTime?: Date): Promise<SignedMessage>;
}

export interface SignatureCheck {
  valid: boolean;
  /** Why the signature was rejected. The other fields are set only when `valid` is true. */
  reason?: string;
  /** The certificate that made the signature. Trust is the caller's decision (`verifyChain`, providers index). */
  signerCertificatePem?: string;
  signerCertificateDer?: Buffer;
  /** The first part's exact bytes: the signed MIME entity, its headers included. */
  signedEntity?: Buffer;
  signingTime?: Date;
  /** micalg spelling: `sha-1`, `sha-256`, … */
  digestAlgorithm?: string;
}

const OID = {
  data: '1.2.840.113549.1.7.1',
  signedData: '1.2.840.113549.1.7.2',
  contentType: '1.2.840.113549.1.9.3',
  messageDigest: '1.2.840.113549.1.9.4',
  signingTime: '1.2.840.113549.1.9.5',
  smimeCapabilities: '1.2.840.113549.1.9.15',
  sha256: '2.16.840.1.101.3.4.2.1',
  rsaEncryption: '1.2.840.113549.1.1.1',
  aes256Cbc: '2.16.840.1.101.3.4.1.42',
  aes128Cbc: '2.16.840.1.101.3.4.1.2',
} as const;

/** The OIDs above in DER, encoded once: asn1js takes tens of microseconds per OID, a sizeable share of a signature. */
const OID_DER = Object.fromEntries(
  Object.entries(OID).map(([name, value]) => [name, Buffer.from(new asn1js.ObjectIdentifier({ value }).toBER())]),
) as Record<keyof typeof OID, Buffer>;

/** Digest algorithms a signer may declare, by OID: node's name and the micalg spelling (RFC 5751 §3.4.3.2). */
const DIGESTS: Record<string, { hash: string; micalg: string }> = {
  '1.3.14.3.2.26': { hash: 'sha1', micalg: 'sha-1' },
  '2.16.840.1.101.3.4.2.4': { hash: 'sha224', micalg: 'sha-224' },
  [OID.sha256]: { hash: 'sha256', micalg: 'sha-256' },
  '2.16.840.1.101.3.4.2.2': { hash: 'sha384', micalg: 'sha-384' },
  '2.16.840.1.101.3.4.2.3': { hash: 'sha512', micalg: 'sha-512' },
};

/**
 * RSA PKCS#1 v1.5 signature algorithms (RFC 3370, RFC 5754): plain rsaEncryption signs with the declared digest,
 * the sha*WithRSAEncryption OIDs name their own hash. Every PEC signature seen so far is RSA (spec §7.2).
 */
const RSA_SIGNATURES: Record<string, string | null> = {
  [OID.rsaEncryption]: null,
  '1.2.840.113549.1.1.5': 'sha1',
  '1.2.840.113549.1.1.14': 'sha224',
  '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
};

const SIGNATURE_TYPES = new Set(['application/pkcs7-signature', 'application/x-pkcs7-signature']);
const CR = 0x0d;
const LF = 0x0a;

// DER tags used when nesting already-encoded parts.
const SEQUENCE = 0x30;
const SET = 0x31;
const OCTET_STRING = 0x04;
const CONTEXT_0 = 0xa0;

// ---------------------------------------------------------------------------------------------------------------
// Signing

/**
 * A signer for the provider's identity. Everything in the CMS but the signed attributes and the signature value is
 * the same for every message, so it is encoded once here; a signature then costs one SHA-256, one RSA operation
 * (on libuv's thread pool, so several run in parallel and the event loop stays free) and a few concatenations.
 */
export async function createSigner(identity: ProviderIdentity): Promise<Signer> {
  const privateKey = createPrivateKey(identity.privateKeyPem);
  if (privateKey.asymmetricKeyType !== 'rsa') throw new Error('the provider signing key must be RSA (PKCS#1 v1.5, spec §7)');
  const certificate = new X509Certificate(identity.certificatePem).raw;
  const ca = new X509Certificate(identity.caCertificatePem).raw;
  const encapsulate = signedDataEncoder(certificate, [certificate, ca]);

  return {
    async sign(entity, signingTime = new Date()) {
      assertCrlfLines(entity);
      const attributes = signedAttributes(createHash('sha256').update(entity).digest(), signingTime);
      const signature = await rsaSign(attributes, privateKey);
      return multipartSigned(entity, encapsulate(attributes, signature));
    },
  };
}

/**
 * ContentInfo { signedData, SignedData v1 { SHA-256, id-data without eContent (detached), certificates,
 * one SignerInfo v1 identified by issuerAndSerialNumber } } around per-message attributes and signature.
 */
function signedDataEncoder(
  signerCertificate: Buffer,
  certificates: Buffer[],
): (attributes: Buffer, signature: Buffer) => Buffer {
  const parsed = pkijs.Certificate.fromBER(signerCertificate);
  const version1 = der(new asn1js.Integer({ value: 1 }));
  // RFC 5754 §2: SHA-2 AlgorithmIdentifiers carry no parameters; RFC 3370 §3.2: rsaEncryption carries NULL.
  const sha256 = tlv(SEQUENCE, OID_DER.sha256);
  const rsaEncryption = tlv(SEQUENCE, OID_DER.rsaEncryption, der(new asn1js.Null()));
  const issuerAndSerialNumber = tlv(
    SEQUENCE,
    Buffer.from(parsed.issuer.toSchema().toBER()),
    Buffer.from(parsed.serialNumber.toBER()),
  );
  const signerInfoHead = Buffer.concat([version1, issuerAndSerialNumber, sha256]);
  const signedDataHead = Buffer.concat([
    version1,
    tlv(SET, sha256),
    tlv(SEQUENCE, OID_DER.data),
    // certificates [0] IMPLICIT SET OF: DER orders the members by their encoding.
    tlv(CONTEXT_0, ...[...certificates].sort(Buffer.compare)),
  ]);

  return (attributes, signature) => {
    // signedAttrs are signed as a SET OF (tag 0x31) but stored as [0] IMPLICIT: same bytes under another tag.
    const storedAttributes = Buffer.concat([Buffer.from([CONTEXT_0]), attributes.subarray(1)]);
    const signerInfo = tlv(SEQUENCE, signerInfoHead, storedAttributes, rsaEncryption, tlv(OCTET_STRING, signature));
    const signedData = tlv(SEQUENCE, signedDataHead, tlv(SET, signerInfo));
    return tlv(SEQUENCE, OID_DER.signedData, tlv(CONTEXT_0, signedData));
  };
}

/** DER of the constant smimeCapabilities attribute: what real PEC signatures and OpenSSL announce (RFC 5751 §2.5.2). */
const SMIME_CAPABILITIES = attribute(
  OID_DER.smimeCapabilities,
  tlv(
    SEQUENCE,
    tlv(SEQUENCE, OID_DER.aes256Cbc),
    tlv(SEQUENCE, OID_DER.aes128Cbc),
  ),
);
const CONTENT_TYPE_DATA = attribute(OID_DER.contentType, OID_DER.data);

/**
 * The signed attributes as the DER SET OF that is signed (RFC 5652 §5.4). Members are sorted by encoding because
 * verifiers such as OpenSSL re-encode the set in DER before checking the signature.
 */
function signedAttributes(digest: Buffer, signingTime: Date): Buffer {
  return tlv(
    SET,
    ...[
      CONTENT_TYPE_DATA,
      attribute(OID_DER.signingTime, der(cmsTime(signingTime))),
      attribute(OID_DER.messageDigest, tlv(OCTET_STRING, digest)),
      SMIME_CAPABILITIES,
    ].sort(Buffer.compare),
  );
}

/** Attribute ::= SEQUENCE { attrType OBJECT IDENTIFIER, attrValues SET OF AttributeValue } with one value. */
function attribute(type: Buffer, value: Buffer): Buffer {
  return tlv(SEQUENCE, type, tlv(SET, value));
}

/** RFC 5652 §11.3: UTCTime for 1950–2049, GeneralizedTime otherwise; whole seconds. */
function cmsTime(date: Date): asn1js.UTCTime {
  const valueDate = new Date(Math.floor(date.getTime() / 1000) * 1000);
  const year = valueDate.getUTCFullYear();
  return year >= 1950 && year < 2050 ? new asn1js.UTCTime({ valueDate }) : new asn1js.GeneralizedTime({ valueDate });
}

function rsaSign(data: Buffer, key: KeyObject): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    sign('sha256', data, key, (error, signature) => (error ? reject(error) : resolve(signature))),
  );
}

/**
 * A bare LF would reach receivers unchanged, but verifiers that canonicalise text (RFC 5751 §3.1.1) would hash a
 * CRLF there and reject the signature: fail here instead, where the bug is.
 */
function assertCrlfLines(entity: Buffer): void {
  for (let at = entity.indexOf(LF); at !== -1; at = entity.indexOf(LF, at + 1)) {
    if (entity[at - 1] !== CR) throw new Error(`the entity to sign has a bare LF at byte ${at}; MIME lines must end in CRLF`);
  }
}

function multipartSigned(entity: Buffer, p7s: Buffer): SignedMessage {
  let boundary: string;
  do boundary = `----=_smime_${randomBytes(18).toString('base64url')}`;
  while (entity.includes(`--${boundary}`));
  const signaturePart = [
    'Content-Type: application/pkcs7-signature; name="smime.p7s"',
    'Content-Transfer-Encoding: base64',
    'Content-Disposition: attachment; filename="smime.p7s"',
    '',
    ...(p7s.toString('base64').match(/.{1,76}/g) ?? []),
  ].join('\r\n');
  return {
    contentType: `multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256; boundary="${boundary}"`,
    body: Buffer.concat([
      Buffer.from(`This is an S/MIME signed message\r\n\r\n--${boundary}\r\n`),
      entity,
      Buffer.from(`\r\n--${boundary}\r\n${signaturePart}\r\n\r\n--${boundary}--\r\n`),
    ]),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Verification

/**
 * Checks a multipart/signed body: the CMS signature over the first part's exact bytes, by the certificate the CMS
 * carries. Accepts what real providers send (x-pkcs7-signature, SHA-1, RSA PKCS#1 v1.5). Malformed input is
 * `{ valid: false, reason }`, never an exception.
 */
export async function verifySignedEntity(input: { contentType: string; body: Buffer }): Promise<SignatureCheck> {
  try {
    return await checkSignedEntity(input);
  } catch (error) {
    return invalid(`malformed S/MIME signature: ${error instanceof Error ? error.message : String(error)}`);
  }
}

async function checkSignedEntity(input: { contentType: string; body: Buffer }): Promise<SignatureCheck> {
  const { type, parameters } = parseContentType(input.contentType);
  if (type !== 'multipart/signed') return invalid(`the message is ${type || 'untyped'}, not multipart/signed`);
  const protocol = parameters.get('protocol')?.toLowerCase();
  if (!protocol || !SIGNATURE_TYPES.has(protocol)) return invalid(`unsupported multipart/signed protocol '${protocol ?? ''}'`);
  const boundary = parameters.get('boundary');
  if (!boundary) return invalid('multipart/signed without boundary');
  // micalg is advisory: the digest that counts is the one declared inside the CMS.

  const parts = splitMultipart(input.body, boundary);
  if (!parts) return invalid('the multipart/signed body has no closing boundary');
  const [signedEntity, signaturePart] = parts;
  if (!signedEntity || !signaturePart || parts.length !== 2) {
    return invalid(`multipart/signed must have 2 parts, found ${parts.length}`);
  }
  const p7s = decodeSignaturePart(signaturePart);
  if (typeof p7s === 'string') return invalid(p7s);

  const contentInfo = pkijs.ContentInfo.fromBER(p7s);
  if (contentInfo.contentType !== OID.signedData) return invalid('smime.p7s is not a CMS SignedData');
  const signedData = new pkijs.SignedData({ schema: contentInfo.content });
  if (signedData.encapContentInfo.eContent) return invalid('the CMS carries its own content; multipart/signed needs a detached signature');
  if (signedData.signerInfos.length !== 1) return invalid(`expected one signer, found ${signedData.signerInfos.length}`);
  const signerInfo = signedData.signerInfos[0]!;

  const digest = DIGESTS[signerInfo.digestAlgorithm.algorithmId];
  if (!digest) return invalid(`unsupported digest algorithm ${signerInfo.digestAlgorithm.algorithmId}`);
  const signatureAlgorithm = signerInfo.signatureAlgorithm.algorithmId;
  if (!(signatureAlgorithm in RSA_SIGNATURES)) return invalid(`unsupported signature algorithm ${signatureAlgorithm}`);
  const signer = findSignerCertificate(signedData, signerInfo);
  if (!signer) return invalid('the signer certificate is not included in the signature');
  const signerCertificateDer = Buffer.from(signer.toSchema().toBER());
  const certificate = new X509Certificate(signerCertificateDer);
  if (certificate.publicKey.asymmetricKeyType !== 'rsa') return invalid('the signer certificate does not hold an RSA key');

  let entityDigest = createHash(digest.hash).update(signedEntity).digest();
  let signedBytes: Buffer = signedEntity;
  let signingTime: Date | undefined;
  if (signerInfo.signedAttrs) {
    // RFC 5652 §5.4: with signed attributes, the signature covers them and they carry the content's digest.
    const attributes = signerInfo.signedAttrs.attributes;
    const messageDigest = attributeBytes(attributes, OID.messageDigest);
    if (!messageDigest) return invalid('the signature has no message digest');
    if (!entityDigest.equals(messageDigest)) {
      // S/MIME signs the canonical form, CRLF line ends (RFC 5751 §3.1.1). A message saved by a client with bare
      // LF is checked in that form, as openssl does for text: the bytes are the same message, not altered content.
      const canonical = Buffer.from(signedEntity.toString('latin1').replace(/\r?\n/g, '\r\n'), 'latin1');
      entityDigest = createHash(digest.hash).update(canonical).digest();
      if (!entityDigest.equals(messageDigest)) return invalid('the signed entity does not match the message digest: the content was altered');
    }
    if (attributeOid(attributes, OID.contentType) !== signedData.encapContentInfo.eContentType) {
      return invalid('the content-type attribute does not match the signed content type');
    }
    signingTime = attributeTime(attributes, OID.signingTime);
    // Signed as the DER SET OF, stored as [0] IMPLICIT: verify the received bytes under the SET tag.
    signedBytes = Buffer.from(signerInfo.signedAttrs.encodedValue);
    signedBytes[0] = SET;
  }

  const signatureHash = RSA_SIGNATURES[signatureAlgorithm] ?? digest.hash;
  const signature = Buffer.from(signerInfo.signature.valueBlock.valueHexView);
  if (!(await rsaVerify(signatureHash, signedBytes, certificate.publicKey, signature))) {
    return invalid('the signature value does not verify with the signer certificate');
  }
  return {
    valid: true,
    signerCertificatePem: certificate.toString(),
    signerCertificateDer,
    signedEntity,
    ...(signingTime ? { signingTime } : {}),
    digestAlgorithm: digest.micalg,
  };
}

function invalid(reason: string): SignatureCheck {
  return { valid: false, reason };
}

/** RFC 5652 §5.3: the sid names the certificate by issuer and serial number, or by subject key identifier. */
function findSignerCertificate(signedData: pkijs.SignedData, signerInfo: pkijs.SignerInfo): pkijs.Certificate | undefined {
  const certificates = (signedData.certificates ?? []).filter(
    (candidate): candidate is pkijs.Certificate => candidate instanceof pkijs.Certificate,
  );
  const sid = signerInfo.sid;
  if (sid instanceof pkijs.IssuerAndSerialNumber) {
    return certificates.find((candidate) => candidate.issuer.isEqual(sid.issuer) && candidate.serialNumber.isEqual(sid.serialNumber));
  }
  // [0] SubjectKeyIdentifier, IMPLICIT as RFC 5652 says, or wrapped by encoders that tag it explicitly.
  const keyId = Buffer.from(sid.idBlock.isConstructed ? sid.valueBlock.value[0].valueBlock.valueHexView : sid.valueBlock.valueHexView);
  return certificates.find((candidate) => {
    const extension: unknown = candidate.extensions?.find((item) => item.extnID === '2.5.29.14')?.parsedValue;
    const view = (extension as { valueBlock?: { valueHexView?: unknown } } | undefined)?.valueBlock?.valueHexView;
    return view instanceof Uint8Array && keyId.equals(view);
  });
}

// pkijs leaves attribute values as objects of its own asn1js copy, so they are read by shape, not by class.

function attributeBytes(attributes: pkijs.Attribute[], type: string): Buffer | undefined {
  const view: unknown = attributes.find((candidate) => candidate.type === type)?.values[0]?.valueBlock?.valueHexView;
  return view instanceof Uint8Array ? Buffer.from(view) : undefined;
}

function attributeOid(attributes: pkijs.Attribute[], type: string): string | undefined {
  const value = attributes.find((candidate) => candidate.type === type)?.values[0];
  return value?.idBlock?.tagNumber === 6 ? String(value.valueBlock.toString()) : undefined; // 6: OBJECT IDENTIFIER
}

function attributeTime(attributes: pkijs.Attribute[], type: string): Date | undefined {
  const value = attributes.find((candidate) => candidate.type === type)?.values[0];
  return typeof value?.toDate === 'function' ? value.toDate() : undefined;
}

function rsaVerify(hash: string, data: Buffer, key: KeyObject, signature: Buffer): Promise<boolean> {
  return new Promise((resolve) =>
    verify(hash, data, { key, padding: constants.RSA_PKCS1_PADDING }, signature, (error, ok) => resolve(!error && ok)),
  );
}

/** The smime.p7s part's DER, or why it cannot be read. */
function decodeSignaturePart(part: Buffer): Buffer | string {
  const headerEnd = findHeaderEnd(part);
  if (!headerEnd) return 'the signature part has no header';
  const headers = parseHeaders(part.subarray(0, headerEnd.start).toString('latin1'));
  const { type } = parseContentType(headers.get('content-type') ?? '');
  if (!SIGNATURE_TYPES.has(type)) return `the second part is ${type || 'untyped'}, not a PKCS#7 signature`;
  const content = part.subarray(headerEnd.end);
  const encoding = headers.get('content-transfer-encoding')?.trim().toLowerCase();
  return encoding === 'base64' ? Buffer.from(content.toString('latin1'), 'base64') : content;
}

// ---------------------------------------------------------------------------------------------------------------
// Just enough MIME to take a multipart/signed apart without touching its bytes

/** Content-Type value → lower-case type and parameters (names lower-case, quoted values unescaped). */
function parseContentType(value: string): { type: string; parameters: Map<string, string> } {
  const parameters = new Map<string, string>();
  const unfolded = value.replace(/\r?\n[ \t]/g, ' ');
  const semicolon = unfolded.indexOf(';');
  const type = (semicolon === -1 ? unfolded : unfolded.slice(0, semicolon)).trim().toLowerCase();
  const parameter = /;\s*([^\s=;]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s;]*))/g;
  for (const match of (semicolon === -1 ? '' : unfolded.slice(semicolon)).matchAll(parameter)) {
    parameters.set(match[1]!.toLowerCase(), match[2] !== undefined ? match[2].replace(/\\(.)/g, '$1') : match[3]!);
  }
  return { type, parameters };
}

/** Header block → lower-case name to unfolded value (first occurrence wins). */
function parseHeaders(block: string): Map<string, string> {
  const headers = new Map<string, string>();
  for (const line of block.replace(/\r?\n[ \t]/g, ' ').split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    if (!headers.has(name)) headers.set(name, line.slice(colon + 1).trim());
  }
  return headers;
}

/** Where a part's header ends: `start` of the blank line, `end` where the body begins. */
function findHeaderEnd(part: Buffer): { start: number; end: number } | undefined {
  if (part[0] === CR && part[1] === LF) return { start: 0, end: 2 };
  if (part[0] === LF) return { start: 0, end: 1 };
  const crlf = part.indexOf('\r\n\r\n');
  const lf = part.indexOf('\n\n');
  if (crlf !== -1 && (lf === -1 || crlf < lf)) return { start: crlf + 2, end: crlf + 4 };
  return lf === -1 ? undefined : { start: lf + 1, end: lf + 2 };
}

/**
 * The body parts between the delimiter lines (RFC 2046 §5.1.1), as views of `body`. A delimiter is `--boundary` at
 * the start of a line; the line break before it belongs to the delimiter, not to the part. Undefined without a
 * close delimiter.
 */
function splitMultipart(body: Buffer, boundary: string): Buffer[] | undefined {
  const dashBoundary = Buffer.from(`--${boundary}`, 'latin1');
  const parts: Buffer[] = [];
  let partStart = -1;
  for (let at = body.indexOf(dashBoundary); at !== -1; at = body.indexOf(dashBoundary, at + 1)) {
    if (at > 0 && body[at - 1] !== LF) continue;
    let after = at + dashBoundary.length;
    const close = body[after] === 0x2d && body[after + 1] === 0x2d; // "--"
    if (close) after += 2;
    while (body[after] === 0x20 || body[after] === 0x09) after++; // transport padding
    const lineEnd = body[after] === CR && body[after + 1] === LF ? after + 2 : body[after] === LF ? after + 1 : after;
    if (lineEnd === after && after < body.length) continue; // "--boundary" is only the prefix of a longer line
    if (partStart !== -1) {
      const end = body[at - 2] === CR ? at - 2 : at - 1;
      parts.push(body.subarray(partStart, Math.max(end, partStart)));
    }
    if (close) return parts;
    partStart = lineEnd;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// Chain

/**
 * The certificate was issued by one of `trustedCaPems` (names and signature) and both are valid at `at`. PEC
 * signing certificates hang directly below AgID CA1 / DigitPA CA1 (spec §7.2), so one level is enough. Throws only
 * when a trusted PEM itself is unreadable: that is a configuration error, not a property of the certificate.
 */
export async function verifyChain(certificateDer: Buffer, trustedCaPems: string[], at: Date): Promise<{ valid: boolean; reason?: string }> {
  const trusted = trustedCaPems.map((pem) => new X509Certificate(pem));
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(certificateDer);
  } catch {
    return { valid: false, reason: 'not a readable X.509 certificate' };
  }
  const issuers = trusted.filter((ca) => certificate.checkIssued(ca));
  if (issuers.length === 0) return { valid: false, reason: `the issuer ${describe(certificate.issuer)} is not a trusted CA` };
  const signedBy = issuers.filter((ca) => certificate.verify(ca.publicKey));
  if (signedBy.length === 0) return { valid: false, reason: 'the certificate signature does not verify with the issuing CA key' };
  const notValid = validityProblem(certificate, at);
  if (notValid) return { valid: false, reason: notValid };
  const caProblems = signedBy.map((ca) => validityProblem(ca, at));
  if (caProblems.every(Boolean)) return { valid: false, reason: `issuing CA: ${caProblems[0]}` };
  return { valid: true };
}

function validityProblem(certificate: X509Certificate, at: Date): string | undefined {
  const { notBefore, notAfter } = pkijs.Certificate.fromBER(certificate.raw);
  if (at >= notBefore.value && at <= notAfter.value) return undefined;
  return `${describe(certificate.subject)} is valid from ${notBefore.value.toISOString()} to ${notAfter.value.toISOString()}, not at ${at.toISOString()}`;
}

function describe(name: string): string {
  return name.replaceAll('\n', ', ');
}

/** DER of an asn1js value. */
function der(block: asn1js.BaseBlock): Buffer {
  return Buffer.from(block.toBER());
}

/** DER tag-length-value around contents that are already encoded, so certificates go in byte for byte. */
function tlv(tag: number, ...contents: Buffer[]): Buffer {
  const length = contents.reduce((sum, content) => sum + content.length, 0);
  const lengthBytes: number[] = [];
  for (let rest = length; rest > 0; rest = Math.floor(rest / 256)) lengthBytes.unshift(rest & 0xff);
  const header = length < 0x80 ? [tag, length] : [tag, 0x80 | lengthBytes.length, ...lengthBytes];
  return Buffer.concat([Buffer.from(header), ...contents]);
}
