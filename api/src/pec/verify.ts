import { X509Certificate } from 'node:crypto';
import type { ParsedDaticert } from './daticert-parse.ts';
import { inspectPecMessage } from './inspect.ts';
import type { ProviderIndex } from './provider-index.ts';
import { verifySignedEntity } from './smime.ts';

export interface PecVerification {
  /** What the top-level headers claim (spec §3 classification). */
  claimed: string;
  /** The daticert `tipo` from the signed content, the only trustworthy statement of the type; null without one. */
  type: string | null;
  daticert: ParsedDaticert | null;
  daticert_error: string | null;
  signature: {
    present: boolean;
    valid: boolean;
    reason: string | null;
    digest_algorithm: string | null;
    signing_time: string | null;
    signer: { subject: string; email: string | null; fingerprint_sha1: string } | null;
    /** The provider of the index whose listed certificate made the signature (spec §7.3 origin check). */
    provider: { name: string; managed_domains: string[] } | null;
  };
  /**
   * Signed by a provider of the index, headers agree with the signed daticert, and From is the signer's certificate
   * address. Whether that provider may certify what a notification states (its recipients' domains) is the
   * receiving point's check.
   */
  consistent: boolean;
  problems: string[];
  /** Top-level header fields by lower-case name, unfolded (not part of the API answer). */
  headers: ReadonlyMap<string, readonly string[]>;
}

const claimOf = (classification: Awaited<ReturnType<typeof inspectPecMessage>>['classification']): string => {
  switch (classification.kind) {
    case 'notification': return classification.notification;
    case 'transport-envelope': return 'posta-certificata';
    case 'anomaly-envelope': return 'anomalia';
    case 'malformed': return 'malformed';
    default: return 'not-pec';
  }
};

/**
 * Verifies a received PEC message as a careful client would (spec §7.3): the signature over the signed content,
 * the signer's certificate against the provider index, then the daticert inside the signed content, which is
 * what states the message's type (headers are outside the signature).
 */
export async function verifyPecMessage(raw: Buffer, index: ProviderIndex): Promise<PecVerification> {
  const inspection = await inspectPecMessage(raw);
  const problems: string[] = [];
  const claimed = claimOf(inspection.classification);
  const signature: PecVerification['signature'] = {
    present: Boolean(inspection.signed), valid: false, reason: null, digest_algorithm: null, signing_time: null, signer: null, provider: null,
  };
  if (!inspection.signed) {
    signature.reason = 'the message carries no S/MIME signature';
  } else if (inspection.signed.format === 'pkcs7-mime') {
    signature.reason = 'opaque application/pkcs7-mime signatures are not verified; providers send multipart/signed';
  } else {
    const check = await verifySignedEntity({ contentType: inspection.signed.contentType, body: inspection.signed.body });
    signature.valid = check.valid;
    signature.reason = check.reason ?? null;
    signature.digest_algorithm = check.digestAlgorithm ?? null;
    signature.signing_time = check.signingTime?.toISOString() ?? null;
    if (check.signerCertificateDer) {
      const certificate = new X509Certificate(check.signerCertificateDer);
      const email = /email:([^,\s]+)/i.exec(certificate.subjectAltName ?? '')?.[1] ?? null;
      signature.signer = { subject: certificate.subject.replace(/\n/g, ', '), email, fingerprint_sha1: certificate.fingerprint.replace(/:/g, '') };
      const record = index.findByCertificate(check.signerCertificateDer);
      if (record) signature.provider = { name: record.providerName, managed_domains: record.managedDomains };
      else problems.push('the signing certificate is not listed in the provider index');
    }
  }

  const daticert = inspection.daticert.status === 'parsed' ? inspection.daticert.value : null;
  const daticertError = inspection.daticert.status === 'invalid' ? inspection.daticert.error : null;
  if (daticertError) problems.push(`daticert.xml unreadable: ${daticertError}`);
  if (daticert && claimed !== daticert.tipo) problems.push(`the headers claim '${claimed}' but daticert.xml says '${daticert.tipo}'`);
  if (!daticert && claimed !== 'anomalia' && claimed !== 'not-pec') problems.push('no daticert.xml in the signed content');
  if (!signature.valid && signature.present) problems.push(`signature not valid: ${signature.reason}`);
  const from = (inspection.headers.get('from')?.[0] ?? '').match(/<([^>]+)>\s*$/)?.[1] ?? inspection.headers.get('from')?.[0] ?? '';
  if (signature.signer?.email && from && signature.signer.email.toLowerCase() !== from.trim().toLowerCase()) {
    problems.push(`From (${from}) differs from the signer's address (${signature.signer.email})`);
  }
  return {
    claimed,
    type: daticert?.tipo ?? null,
    daticert,
    daticert_error: daticertError,
    signature,
    consistent: signature.valid && signature.provider !== null && problems.length === 0,
    problems,
    headers: inspection.headers,
  };
}
