import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { certificateSha1Hex, createProviderIdentity, loadProviderIdentity } from '../api/src/pec/identity.ts';
import { createSigner, verifyChain, verifySignedEntity } from '../api/src/pec/smime.ts';

const PROVIDER = 'Acme PEC S.p.A.';
const SERVICE_ADDRESS = 'posta-certificata@pec.acme.it';
const NOW = new Date(Math.floor(Date.now() / 1000) * 1000);
const HOUR = 60 * 60 * 1000;

const dir = mkdtempSync(join(tmpdir(), 'pec-smime-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const identity = await createProviderIdentity({ providerName: PROVIDER, domain: 'PEC.acme.it', now: NOW });
const files = {
  ca: write('ca.pem', identity.caCertificatePem),
  caKey: write('ca-key.pem', identity.caPrivateKeyPem),
  certificate: write('cert.pem', identity.certificatePem),
  key: write('key.pem', identity.privateKeyPem),
};

function write(name: string, content: string | Buffer): string {
  const file = join(dir, name);
  writeFileSync(file, content);
  return file;
}

function openssl(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const run = spawnSync('openssl', args, { cwd: dir });
  return { status: run.status, stdout: run.stdout.toString(), stderr: run.stderr.toString() };
}

function der(pem: string): Buffer {
  return new X509Certificate(pem).raw;
}

/** `openssl x509 -text` extension headings → whether each is critical. */
function extensionsOf(text: string): Record<string, 'critical' | 'non-critical'> {
  const start = text.indexOf('X509v3 extensions:');
  const section = text.slice(start, text.indexOf('Signature Algorithm', start));
  return Object.fromEntries(
    [...section.matchAll(/^ {12}(\S[^:\n]*):( critical)?\s*$/gm)].map((m) => [m[1]!, m[2] ? 'critical' : 'non-critical']),
  );
}

function extensionValue(text: string, name: string): string | undefined {
  return new RegExp(`${name}:(?: critical)?\\s*\\n\\s*(.+)`).exec(text)?.[1]?.trim();
}

/** A system-message-like entity (spec §5): multipart/mixed with text, daticert.xml and postacert.eml, CRLF lines. */
function pecEntity(postacertLines = 40): Buffer {
  const daticert = Buffer.from(`<?xml version="1.0" encoding="UTF-8"?>\n<postacert tipo="accettazione" errore="nessuno">${'<x/>'.repeat(200)}</postacert>\n`);
  const lines = [
    'Content-Type: multipart/mixed; boundary="----=_mixed_1"',
    '',
    'This is a multi-part message in MIME format.',
    '------=_mixed_1',
    'Content-Type: text/plain; charset="iso-8859-1"',
    'Content-Transfer-Encoding: quoted-printable',
    'Content-Disposition: inline',
    '',
    'Ricevuta di accettazione',
    '',
    'Il giorno 06/08/2014 alle ore 12:01:04 (+0200) il messaggio "Prova" =C3=A8 stato accettato dal sistema.',
    '------=_mixed_1',
    'Content-Type: application/xml; name="daticert.xml"',
    'Content-Transfer-Encoding: base64',
    'Content-Disposition: inline; filename="daticert.xml"',
    '',
    ...(daticert.toString('base64').match(/.{1,76}/g) ?? []),
    '------=_mixed_1',
    'Content-Type: message/rfc822; name="postacert.eml"',
    'Content-Disposition: inline; filename="postacert.eml"',
    '',
    'From: mario.rossi@pec.acme.it',
    'To: anna.verdi@pec.other.it',
    'Subject: Prova',
    '',
    ...Array.from({ length: postacertLines }, (_, i) => `Riga ${i} del messaggio originale, testo semplice in 7 bit.`),
    '------=_mixed_1--',
    '',
  ];
  return Buffer.from(lines.join('\r\n'), 'latin1');
}

/** A full RFC 5322 message around a signed body, as it goes on the wire. */
function message(signed: { contentType: string; body: Buffer }): Buffer {
  const headers = [
    `From: "Per conto di: mario.rossi@pec.acme.it" <${SERVICE_ADDRESS}>`,
    'To: mario.rossi@pec.acme.it',
    'Subject: ACCETTAZIONE: Prova',
    'X-Ricevuta: accettazione',
    'MIME-Version: 1.0',
    `Content-Type: ${signed.contentType}`,
  ];
  return Buffer.concat([Buffer.from(`${headers.join('\r\n')}\r\n\r\n`), signed.body]);
}

/** Header Content-Type and body of a message openssl wrote (LF between its own lines, CRLF inside the content). */
function openMessage(raw: Buffer): { contentType: string; body: Buffer } {
  const end = raw.indexOf('\n\n');
  const headers = raw.subarray(0, end).toString('latin1').replace(/\r?\n[ \t]+/g, ' ');
  return { contentType: /^content-type:\s*(.*)$/im.exec(headers)![1]!.trim(), body: raw.subarray(end + 2) };
}

t.test('createProviderIdentity: the signing certificate has the spec §7.1 profile and the CA validates it', async (t) => {
  const text = openssl('x509', '-in', files.certificate, '-noout', '-text').stdout;
  t.match(text, /Signature Algorithm: sha256WithRSAEncryption/);
  t.match(text, /Public-Key: \(2048 bit\)/);
  t.match(text, `Subject: C = IT, O = ${PROVIDER}, CN = Posta Certificata ${PROVIDER}\n`);
  t.match(text, `Issuer: C = IT, O = ${PROVIDER}, CN = ${PROVIDER} PEC CA\n`);
  t.same(
    extensionsOf(text),
    {
      'X509v3 Key Usage': 'critical',
      'X509v3 Authority Key Identifier': 'non-critical',
      'X509v3 Subject Key Identifier': 'non-critical',
      'X509v3 Subject Alternative Name': 'non-critical',
      'X509v3 Extended Key Usage': 'non-critical',
    },
    'exactly these extensions: Key Usage the only critical one, no Basic Constraints',
  );
  t.equal(extensionValue(text, 'X509v3 Key Usage'), 'Digital Signature');
  t.equal(extensionValue(text, 'X509v3 Subject Alternative Name'), `email:${SERVICE_ADDRESS}`);
  t.equal(extensionValue(text, 'X509v3 Extended Key Usage'), 'E-mail Protection');

  const caText = openssl('x509', '-in', files.ca, '-noout', '-text').stdout;
  t.equal(extensionValue(text, 'X509v3 Authority Key Identifier'), extensionValue(caText, 'X509v3 Subject Key Identifier'), 'AKI is the CA key id');
  t.same(extensionsOf(caText), {
    'X509v3 Basic Constraints': 'critical',
    'X509v3 Key Usage': 'critical',
    'X509v3 Subject Key Identifier': 'non-critical',
  });
  t.equal(extensionValue(caText, 'X509v3 Basic Constraints'), 'CA:TRUE');
  t.equal(extensionValue(caText, 'X509v3 Key Usage'), 'Certificate Sign, CRL Sign');

  const serials = [files.certificate, files.ca].map((file) => openssl('x509', '-in', file, '-noout', '-serial').stdout.trim().slice('serial='.length));
  for (const serial of serials) t.ok(serial.length === 32 && Number.parseInt(serial.slice(0, 2), 16) < 0x80, `serial ${serial} is 16 bytes, positive`);
  t.not(serials[0], serials[1]);

  const dates = (file: string) => {
    const out = openssl('x509', '-in', file, '-noout', '-startdate', '-enddate', '-dateopt', 'iso_8601').stdout;
    const read = (name: string) => new Date(new RegExp(`${name}=(.+)`).exec(out)![1]!.replace(' ', 'T'));
    return { notBefore: read('notBefore'), notAfter: read('notAfter') };
  };
  const years = (n: number) => new Date(Date.UTC(NOW.getUTCFullYear() + n, NOW.getUTCMonth(), NOW.getUTCDate(), NOW.getUTCHours(), NOW.getUTCMinutes(), NOW.getUTCSeconds()));
  t.same(dates(files.certificate), { notBefore: new Date(NOW.getTime() - HOUR), notAfter: years(3) }, 'valid from an hour ago for 3 years');
  t.same(dates(files.ca), { notBefore: new Date(NOW.getTime() - HOUR), notAfter: years(10) }, 'CA valid for 10 years');

  const verified = openssl('verify', '-CAfile', files.ca, '-purpose', 'smimesign', files.certificate);
  t.equal(verified.status, 0, 'openssl succeeds', { stderr: verified.stderr });
  t.equal(verified.stdout.trim(), `${files.certificate}: OK`);

  const fingerprint = openssl('x509', '-in', files.certificate, '-noout', '-fingerprint', '-sha1').stdout.trim().split('=')[1]!.replaceAll(':', '');
  t.equal(certificateSha1Hex(identity.certificatePem), fingerprint, 'providerCertificateHash from PEM is the SHA-1 fingerprint');
  t.equal(certificateSha1Hex(der(identity.certificatePem)), fingerprint, 'and from DER');
});

t.test('loadProviderIdentity: round trip, and each inconsistency is refused with its reason', async (t) => {
  const { caPrivateKeyPem: _, ...pems } = identity;
  t.same(loadProviderIdentity(pems), { ...pems, serviceAddress: SERVICE_ADDRESS });

  const other = await createProviderIdentity({ providerName: PROVIDER, domain: 'pec.acme.it', now: NOW });
  t.throws(() => loadProviderIdentity({ ...pems, privateKeyPem: other.privateKeyPem }), /the private key does not match the certificate/);
  t.throws(
    () => loadProviderIdentity({ ...pems, caCertificatePem: other.caCertificatePem }),
    /is not issued by the CA/,
    'a CA with the same name but another key',
  );
  t.throws(() => loadProviderIdentity({ ...pems, providerName: 'Altro Gestore S.p.A.' }), /does not name the provider 'Altro Gestore S\.p\.A\.' in CN or O/);
  t.throws(() => loadProviderIdentity({ ...pems, certificatePem: 'not a certificate' }), /certificatePem is not a readable X\.509 certificate/);
  t.throws(() => loadProviderIdentity({ ...pems, privateKeyPem: 'not a key' }), /privateKeyPem is not a readable private key/);

  // Same key, same CA, but issued by openssl without any extension: no subjectAltName.
  const request = openssl('req', '-new', '-key', files.key, '-subj', `/C=IT/O=${PROVIDER}/CN=Posta Certificata ${PROVIDER}`, '-out', 'no-san.csr');
  t.equal(request.status, 0, 'openssl succeeds', { stderr: request.stderr });
  const issued = openssl('x509', '-req', '-in', 'no-san.csr', '-CA', files.ca, '-CAkey', files.caKey, '-set_serial', '42', '-days', '30', '-out', 'no-san.pem');
  t.equal(issued.status, 0, 'openssl succeeds', { stderr: issued.stderr });
  t.throws(
    () => loadProviderIdentity({ ...pems, certificatePem: readFileSync(join(dir, 'no-san.pem'), 'utf8') }),
    /has no rfc822Name subjectAltName/,
  );
});

t.test('sign: openssl accepts the multipart/signed, and one altered byte fails openssl and verifySignedEntity', async (t) => {
  const signer = await createSigner(identity);
  const entity = pecEntity();
  const signingTime = new Date('2026-03-01T10:20:30Z');
  const signed = await signer.sign(entity, signingTime);

  const boundary = /^multipart\/signed; protocol="application\/pkcs7-signature"; micalg=sha-256; boundary="([^"]+)"$/.exec(signed.contentType)?.[1];
  t.ok(boundary, signed.contentType);
  const head = Buffer.from(`This is an S/MIME signed message\r\n\r\n--${boundary}\r\n`);
  t.ok(signed.body.subarray(0, head.length).equals(head), 'preamble, then the first delimiter');
  t.ok(signed.body.subarray(head.length, head.length + entity.length).equals(entity), 'the entity goes out byte for byte');
  const signaturePart = signed.body.subarray(head.length + entity.length).toString('latin1');
  t.ok(
    signaturePart.startsWith(
      `\r\n--${boundary}\r\nContent-Type: application/pkcs7-signature; name="smime.p7s"\r\n` +
        'Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename="smime.p7s"\r\n\r\n',
    ),
    'smime.p7s part headers',
  );
  t.ok(signaturePart.endsWith(`\r\n--${boundary}--\r\n`), 'close delimiter');
  const base64Lines = signaturePart.split('\r\n\r\n')[1]!.split('\r\n').filter((line) => /^[A-Za-z0-9+/=]+$/.test(line));
  t.ok(base64Lines.slice(0, -1).every((line) => line.length === 76), 'base64 in 76-character lines');

  const file = write('signed.eml', message(signed));
  const smime = openssl('smime', '-verify', '-CAfile', files.ca, '-in', file, '-out', 'smime-content.out');
  t.equal(smime.status, 0, 'openssl succeeds', { stderr: smime.stderr });
  t.match(smime.stderr, /Verification successful/);
  t.ok(readFileSync(join(dir, 'smime-content.out')).equals(entity), 'openssl extracts exactly the entity as signed content');
  const cms = openssl('cms', '-verify', '-CAfile', files.ca, '-in', file, '-out', '/dev/null');
  t.equal(cms.status, 0, 'openssl succeeds', { stderr: cms.stderr });
  t.match(cms.stderr, /CMS Verification successful/);

  const printed = openssl('cms', '-cmsout', '-print', '-noout', '-in', file).stdout;
  t.match(printed, /d\.signedData: \n\s+version: 1\n\s+digestAlgorithms:\n\s+algorithm: sha256 /, 'SignedData v1, SHA-256');
  t.match(printed, /eContentType: pkcs7-data .*\n\s+eContent: <ABSENT>/, 'id-data, detached');
  t.match(printed, /d\.issuerAndSerialNumber:/);
  for (const attribute of ['contentType', 'signingTime', 'messageDigest', 'S/MIME Capabilities']) t.match(printed, `object: ${attribute} (`);
  t.match(printed, /UTCTIME:Mar  1 10:20:30 2026 GMT/);
  t.match(printed, /algorithm: rsaEncryption/);
  t.equal(printed.match(/cert_info:/g)?.length, 2, 'signer and CA certificates included');

  const check = await verifySignedEntity(signed);
  t.same(
    { ...check, signerCertificateDer: undefined, signedEntity: undefined },
    { valid: true, signerCertificatePem: new X509Certificate(identity.certificatePem).toString(), signingTime, digestAlgorithm: 'sha-256' },
  );
  t.ok(check.signerCertificateDer?.equals(der(identity.certificatePem)));
  t.ok(check.signedEntity?.equals(entity));

  // One byte of the signed text changes ("Prova" → "Prava").
  const tampered = { ...signed, body: Buffer.from(signed.body) };
  const at = tampered.body.indexOf('Subject: Prova') + 'Subject: Pr'.length;
  tampered.body[at] = 'a'.charCodeAt(0);
  const tamperedFile = write('tampered.eml', message(tampered));
  const refused = openssl('smime', '-verify', '-CAfile', files.ca, '-in', tamperedFile, '-out', '/dev/null');
  t.not(refused.status, 0);
  t.match(refused.stderr, /digest failure/);
  t.notOk(openssl('cms', '-verify', '-CAfile', files.ca, '-in', tamperedFile, '-out', '/dev/null').status === 0);
  t.same(await verifySignedEntity(tampered), { valid: false, reason: 'the signed entity does not match the message digest: the content was altered' });

  // The last byte of the DER is the last byte of the signature value.
  const p7s = Buffer.from(signaturePart.split('\r\n\r\n')[1]!, 'base64');
  p7s[p7s.length - 1]! ^= 0x01;
  const forged = {
    ...signed,
    body: Buffer.concat([signed.body.subarray(0, head.length + entity.length), Buffer.from(signaturePart.replace(/\r\n\r\n[A-Za-z0-9+/=\r\n]+\r\n--/, `\r\n\r\n${p7s.toString('base64')}\r\n--`))]),
  };
  t.same(await verifySignedEntity(forged), { valid: false, reason: 'the signature value does not verify with the signer certificate' });

  await t.rejects(signer.sign(Buffer.from('Content-Type: text/plain\r\n\r\nbare\nLF\r\n')), /bare LF at byte 32/, 'non-canonical entities are refused');
});

t.test('verifySignedEntity: malformed input is a reason, never an exception', async (t) => {
  const signed = await (await createSigner(identity)).sign(pecEntity(2));
  const boundary = /boundary="([^"]+)"/.exec(signed.contentType)![1]!;
  const cases: [string, { contentType: string; body: Buffer }, RegExp][] = [
    ['not multipart/signed', { contentType: 'multipart/mixed; boundary="x"', body: signed.body }, /not multipart\/signed/],
    ['PGP protocol', { ...signed, contentType: signed.contentType.replace('application/pkcs7-signature', 'application/pgp-signature') }, /unsupported multipart\/signed protocol/],
    ['no boundary', { ...signed, contentType: 'multipart/signed; protocol="application/pkcs7-signature"' }, /without boundary/],
    ['truncated body', { ...signed, body: signed.body.subarray(0, signed.body.length - 20) }, /no closing boundary/],
    ['empty body', { ...signed, body: Buffer.alloc(0) }, /no closing boundary/],
    ['one part', { ...signed, body: Buffer.from(`--${boundary}\r\nContent-Type: text/plain\r\n\r\nx\r\n--${boundary}--\r\n`) }, /must have 2 parts, found 1/],
    [
      'garbage p7s',
      { ...signed, body: Buffer.from(`--${boundary}\r\nContent-Type: text/plain\r\n\r\nx\r\n--${boundary}\r\nContent-Type: application/pkcs7-signature\r\nContent-Transfer-Encoding: base64\r\n\r\nAAAA\r\n--${boundary}--\r\n`) },
      /^malformed S\/MIME signature: /,
    ],
    [
      'second part is not a signature',
      { ...signed, body: Buffer.from(`--${boundary}\r\nContent-Type: text/plain\r\n\r\nx\r\n--${boundary}\r\nContent-Type: text/plain\r\n\r\ny\r\n--${boundary}--\r\n`) },
      /second part is text\/plain/,
    ],
  ];
  for (const [name, input, reason] of cases) {
    const check = await verifySignedEntity(input);
    t.equal(check.valid, false, name);
    t.match(check.reason, reason, name);
  }
});

t.test('verifySignedEntity: foreign signatures made by openssl (SHA-1, x-pkcs7-signature, subject key identifier)', async (t) => {
  const made = openssl(
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'foreign-key.pem', '-out', 'foreign.pem', '-days', '30',
    '-subj', '/C=IT/O=Foreign PEC S.p.A./CN=Posta Certificata Foreign PEC S.p.A.',
    '-addext', 'subjectAltName=email:posta-certificata@pec.foreign.it',
  );
  t.equal(made.status, 0, 'openssl succeeds', { stderr: made.stderr });
  const foreignPem = readFileSync(join(dir, 'foreign.pem'), 'utf8');
  const entity = pecEntity(5);
  write('foreign-entity.eml', entity);

  const sha1 = openssl('smime', '-sign', '-md', 'sha1', '-signer', 'foreign.pem', '-inkey', 'foreign-key.pem', '-in', 'foreign-entity.eml', '-out', 'foreign-sha1.eml');
  t.equal(sha1.status, 0, 'openssl succeeds', { stderr: sha1.stderr });
  const signed = openMessage(readFileSync(join(dir, 'foreign-sha1.eml')));
  t.match(signed.contentType, /protocol="application\/x-pkcs7-signature"; micalg="sha1"/, 'openssl smime writes the legacy protocol');
  for (const contentType of [signed.contentType, signed.contentType.replace('application/x-pkcs7-signature', 'application/pkcs7-signature').replace('"sha1"', 'sha-1')]) {
    const check = await verifySignedEntity({ ...signed, contentType });
    t.equal(check.valid, true, contentType, { reason: check.reason });
    t.equal(check.digestAlgorithm, 'sha-1');
    t.ok(check.signerCertificateDer?.equals(der(foreignPem)), 'the signer certificate is openssl’s');
    t.equal(check.signerCertificatePem, new X509Certificate(foreignPem).toString());
    t.ok(check.signedEntity?.equals(entity));
    t.ok(check.signingTime && Math.abs(check.signingTime.getTime() - Date.now()) < 60_000, 'signing time read');
  }

  // cms -keyid names the signer by subject key identifier instead of issuer and serial.
  const keyId = openssl('cms', '-sign', '-md', 'sha256', '-keyid', '-signer', 'foreign.pem', '-inkey', 'foreign-key.pem', '-in', 'foreign-entity.eml', '-out', 'foreign-keyid.eml');
  t.equal(keyId.status, 0, 'openssl succeeds', { stderr: keyId.stderr });
  const byKeyId = await verifySignedEntity(openMessage(readFileSync(join(dir, 'foreign-keyid.eml'))));
  t.equal(byKeyId.valid, true, 'verifies', { reason: byKeyId.reason });
  t.equal(byKeyId.digestAlgorithm, 'sha-256');
  t.ok(byKeyId.signerCertificateDer?.equals(der(foreignPem)));

  const chain = await verifyChain(der(foreignPem), [identity.caCertificatePem], new Date());
  t.same(chain, { valid: false, reason: 'the issuer C=IT, O=Foreign PEC S.p.A., CN=Posta Certificata Foreign PEC S.p.A. is not a trusted CA' }, 'valid signature, untrusted signer');
});

t.test('verifyChain: issuer signature and validity period', async (t) => {
  const certificate = der(identity.certificatePem);
  const other = await createProviderIdentity({ providerName: PROVIDER, domain: 'pec.acme.it', now: NOW });
  t.same(await verifyChain(certificate, [identity.caCertificatePem], NOW), { valid: true });
  t.same(await verifyChain(certificate, [other.caCertificatePem, identity.caCertificatePem], NOW), { valid: true }, 'found among several CAs');
  t.same(await verifyChain(der(other.certificatePem), [identity.caCertificatePem], NOW), { valid: false, reason: `the issuer C=IT, O=${PROVIDER}, CN=${PROVIDER} PEC CA is not a trusted CA` }, 'same CA name, other key');
  t.same(await verifyChain(certificate, [], NOW), { valid: false, reason: `the issuer C=IT, O=${PROVIDER}, CN=${PROVIDER} PEC CA is not a trusted CA` });

  const expired = await verifyChain(certificate, [identity.caCertificatePem], new Date(NOW.getTime() + 4 * 365 * 24 * HOUR));
  t.equal(expired.valid, false);
  t.match(expired.reason, /is valid from .* to .*, not at /);
  t.equal((await verifyChain(certificate, [identity.caCertificatePem], new Date(NOW.getTime() - 2 * HOUR))).valid, false, 'not yet valid');
  t.same(await verifyChain(Buffer.from('garbage'), [identity.caCertificatePem], NOW), { valid: false, reason: 'not a readable X.509 certificate' });
});

t.test('many signatures in flight at once each verify (speed is measured in test/bench/pec.ts)', async (t) => {
  const signer = await createSigner(identity);
  const entities = Array.from({ length: 50 }, (_, i) => pecEntity(10 + i));
  const results = await Promise.all(entities.map((entity) => signer.sign(entity)));
  const checks = await Promise.all(results.map((signed) => verifySignedEntity(signed)));
  t.ok(checks.every((check) => check.valid), 'every signature made under load verifies');
  t.ok(checks.every((check, i) => check.signedEntity?.equals(entities[i]!)), 'each signed its own entity');
});
