import 'reflect-metadata'; // @peculiar/x509 (through tsyringe) needs the Reflect metadata API
import { randomBytes, webcrypto } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as never);

export interface TlsMaterial {
  key: string;
  cert: string;
}

const ALGORITHM = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', publicExponent: new Uint8Array([1, 0, 1]), modulusLength: 2048 };

/**
 * The SMTP servers' TLS certificate: the configured files, or a self-signed one for these host names (development
 * and tests; peers then connect with certificate verification off, PEC_SMTP_VERIFY_TLS=false).
 */
export async function loadOrCreateTls(files: { certificateFile: string | undefined; privateKeyFile: string | undefined }, hostNames: string[]): Promise<TlsMaterial> {
  if (files.certificateFile && files.privateKeyFile) {
    const [cert, key] = await Promise.all([readFile(files.certificateFile, 'utf8'), readFile(files.privateKeyFile, 'utf8')]);
    return { cert, key };
  }
  const keys = await webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify']);
  const now = Date.now();
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: `01${randomBytes(15).toString('hex')}`,
    name: `CN=${hostNames[0]}`,
    notBefore: new Date(now - 3_600_000),
    notAfter: new Date(now + 365 * 86_400_000),
    keys,
    signingAlgorithm: ALGORITHM,
    extensions: [
      new x509.SubjectAlternativeNameExtension(hostNames.map((value) => ({ type: 'dns' as const, value }))),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
    ],
  });
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)).toString('base64');
  return { cert: certificate.toString('pem'), key: `-----BEGIN PRIVATE KEY-----\n${pkcs8.match(/.{1,64}/g)!.join('\n')}\n-----END PRIVATE KEY-----\n` };
}
