import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { DaticertError, parseDaticert, type ParsedDaticert } from '../api/src/pec/daticert-parse.ts';
import { inspectPecMessage } from '../api/src/pec/inspect.ts';
import { parseLdif, ProviderIndex, toLdif, type ProviderRecord } from '../api/src/pec/provider-index.ts';

const FIXTURES = new URL('./fixtures/pec/', import.meta.url);
const fixture = (name: string) => readFileSync(new URL(name, FIXTURES));

// ---------------------------------------------------------------------------------------------------------------
// Certificates made by openssl, an implementation independent of the code under test, which also supplies the
// SHA-1 fingerprints the index publishes.

interface Certificate {
  der: Buffer;
  sha1: string;
}

function makeCertificates(names: string[]): Certificate[] {
  const dir = mkdtempSync(join(tmpdir(), 'pec-index-'));
  try {
    return names.map((name, i) => {
      const der = join(dir, `${i}.der`);
      execFileSync('openssl', [
        'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(dir, `${i}.key`),
        '-subj', `/C=IT/O=${name}/CN=Posta Certificata`, '-days', '30', '-outform', 'DER', '-out', der,
      ], { stdio: 'pipe' });
      const fingerprint = execFileSync('openssl', ['x509', '-inform', 'DER', '-in', der, '-noout', '-fingerprint', '-sha1']).toString();
      return { der: readFileSync(der), sha1: fingerprint.trim().split('=')[1]!.replaceAll(':', '') };
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const [current, next, stranger] = makeCertificates(['Anonymous Certified Mail S.p.A.', 'Anonymous Certified Mail S.p.A.', 'Someone Else S.r.l.']) as [Certificate, Certificate, Certificate];

/** A base64 value folded the way the RFC example shows it: nothing after "::", then continuation lines. */
function foldedBase64(der: Buffer): string {
  return (der.toString('base64').match(/.{1,75}/g) ?? []).map((chunk) => ` ${chunk}`).join('\n');
}

// Appendix D of the spec verbatim (RFC 6109 §4.5.10), with openssl certificates instead of the elided ones.
const APPENDIX_D = `dn: o=postacert
objectclass: top
objectclass: organization
objectClass: LDIFLocationURLObject
o: postacert
LDIFLocationURL: https://igpec.rupa.example.com/igpec.ldif.p7m
description: Base root for the PEC providers directory

dn: providerName=Anonymous Certified Mail S.p.A.,o=postacert
objectclass: top
objectclass: provider
providerName: Anonymous Certified Mail S.p.A.
providerCertificateHash:
 ${current.sha1}
providerCertificate;binary::
${foldedBase64(current.der)}
mailReceipt: ssacceptance@postalser.example.com
LDIFLocationURL: https://anpocert.example.com/anpocert.ldif.p7m
managedDomains: mail.anpocert.example.com
managedDomains: cert.company.example.com
managedDomains: costmec.example.com
description: Certified mail services for companies

dn: providerUnit=Secondary Environment, providerName=Anonymous
 Certified Mail S.p.A.,o=postacert
objectclass: top
objectclass: provider
providerName: Certified Mail S.p.A.
providerUnit: Secondary Environment
providerCertificateHash:
 ${current.sha1}
providerCertificate;binary::
${foldedBase64(current.der)}
mailReceipt: notifications@secondary.anpocert.example.com
managedDomains: management.anpocert.example.com
managedDomains: personnel.anpocert.example.com
description: Corporate internal services
`;

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');

// The same kind of record as real tools write it: CRLF, a version line, comments (one folded), names in any case,
// base64 text values, a rollover with two certificates, lower-case hashes with colons, an IDN domain.
const ROLLOVER = [
  'version: 1',
  '# Copia locale dell\'indice dei gestori,',
  '#  aggiornata ogni giorno',
  '',
  `dn:: ${b64('providerName=Posta Città S.p.A.,o=postacert')}`,
  'objectClass: top',
  'OBJECTCLASS: Provider',
  `ProviderName:: ${b64('Posta Città S.p.A.')}`,
  `PROVIDERCERTIFICATEHASH: ${current.sha1.toLowerCase()}`,
  `providercertificatehash: ${next.sha1.match(/../g)!.join(':').toLowerCase()}`,
  `providerCertificate;binary:: ${current.der.toString('base64')}`,
  `providerCertificate:: ${next.der.toString('base64')}`,
  'MailReceipt: ricevute@pec.citta.example',
  'managedDomains: PEC.Citta.Example',
  'managedDomains: pec.xn--citt-3na.example',
  `description:: ${b64('Servizi PEC per la città')}`,
  '',
].join('\r\n');

const appendixRecords: ProviderRecord[] = [
  {
    dn: 'providerName=Anonymous Certified Mail S.p.A.,o=postacert',
    providerName: 'Anonymous Certified Mail S.p.A.',
    managedDomains: ['mail.anpocert.example.com', 'cert.company.example.com', 'costmec.example.com'],
    mailReceipt: 'ssacceptance@postalser.example.com',
    certificates: [current.der],
    certificateHashes: [current.sha1],
    ldifLocationUrl: 'https://anpocert.example.com/anpocert.ldif.p7m',
    description: 'Certified mail services for companies',
  },
  {
    // LDIF unfolding removes the line break and exactly one space, so the RFC's folded DN loses its space.
    dn: 'providerUnit=Secondary Environment, providerName=AnonymousCertified Mail S.p.A.,o=postacert',
    providerName: 'Certified Mail S.p.A.',
    providerUnit: 'Secondary Environment',
    managedDomains: ['management.anpocert.example.com', 'personnel.anpocert.example.com'],
    mailReceipt: 'notifications@secondary.anpocert.example.com',
    certificates: [current.der],
    certificateHashes: [current.sha1],
    description: 'Corporate internal services',
  },
];

t.test('provider index: LDIF reading, lookups and publishing', async (t) => {
  t.test('the Appendix D directory yields its two provider records; the root entry is not a provider', async (t) => {
    t.same(parseLdif(APPENDIX_D), appendixRecords);
  });

  t.test('CRLF, version line, comments, case-insensitive names, base64 text and ;binary are all read', async (t) => {
    t.same(parseLdif(ROLLOVER), [{
      dn: 'providerName=Posta Città S.p.A.,o=postacert',
      providerName: 'Posta Città S.p.A.',
      managedDomains: ['PEC.Citta.Example', 'pec.xn--citt-3na.example'],
      mailReceipt: 'ricevute@pec.citta.example',
      certificates: [current.der, next.der],
      certificateHashes: [current.sha1, next.sha1],
      description: 'Servizi PEC per la città',
    }]);
  });

  t.test('errors name the line and the problem', async (t) => {
    const provider = (...lines: string[]) => ['dn: providerName=X,o=postacert', 'objectclass: provider', ...lines].join('\n');
    const complete = [`providerName: X`, `providerCertificateHash: ${current.sha1}`, `providerCertificate;binary:: ${current.der.toString('base64')}`, 'mailReceipt: r@x.example', 'managedDomains: x.example'];
    t.throws(() => parseLdif(' dn: o=postacert'), { name: 'LdifError', line: 1, message: /continuation line without a line/ });
    t.throws(() => parseLdif('objectclass: provider\ndn: o=x'), { line: 1, message: /must start with "dn:"/ });
    t.throws(() => parseLdif(provider(...complete.filter((l) => !l.startsWith('mailReceipt')))), { line: 1, message: /lacks mailReceipt/ });
    t.throws(() => parseLdif(provider(...complete.filter((l) => !l.startsWith('providerCertificate;')))), { message: /lacks providerCertificate$/ });
    t.throws(() => parseLdif(provider(...complete, 'providerName: Y')), { message: /providerName is single-valued/ });
    t.throws(() => parseLdif(provider(...complete, 'description:: not base64!')), { line: 8, message: /invalid base64 value for description/ });
    t.throws(() => parseLdif(provider(...complete, 'description:< file:///etc/passwd')), { line: 8, message: /URL values are not supported/ });
    t.throws(() => parseLdif(provider(...complete, 'providerCertificateHash: 12AB')), { message: /not a hex SHA-1/ });
    t.throws(() => parseLdif(provider(...complete, 'changetype: modify')), { message: /change records/ });
  });

  t.test('domain lookups are exact and case-insensitive', async (t) => {
    const index = new ProviderIndex([...parseLdif(APPENDIX_D), ...parseLdif(ROLLOVER)]);
    const [main, secondary] = appendixRecords as [ProviderRecord, ProviderRecord];
    t.equal(index.all().length, 3);
    t.same(index.findByDomain('MAIL.ANPOCERT.Example.COM'), main);
    t.same(index.findByDomain('costmec.example.com.'), main, 'the DNS root dot is ignored');
    t.same(index.findByDomain('personnel.anpocert.example.com'), secondary, 'a secondary environment answers for its own domains');
    t.equal(index.findByDomain('pec.citta.example')?.providerName, 'Posta Città S.p.A.', 'listed in upper case, asked in lower');
    t.equal(index.findByDomain('PEC.Città.example')?.providerName, 'Posta Città S.p.A.', 'a Unicode domain matches its A-label');
    t.equal(index.findByDomain('anpocert.example.com'), undefined, 'the parent of a managed domain is not managed');
    t.equal(index.findByDomain('sub.costmec.example.com'), undefined, 'nor is a subdomain');
    t.equal(index.isCertifiedDomain('Cert.Company.example.com'), true);
    t.equal(index.isCertifiedDomain('gmail.com'), false);
  });

  t.test('certificate lookups hash, then compare the bytes; a rollover record answers for both certificates', async (t) => {
    const index = new ProviderIndex([...parseLdif(APPENDIX_D), ...parseLdif(ROLLOVER)]);
    const rollover = index.all()[2]!;
    t.same(index.findByCertificate(current.der), appendixRecords[0], 'shared by the environments of one provider: the first record');
    const own = ProviderIndex.fromLdif(ROLLOVER);
    t.equal(own.findByCertificate(current.der), own.all()[0], 'the old certificate of the rollover');
    t.same(index.findByCertificate(next.der), rollover, 'the new certificate of the rollover (hash listed in lower case)');
    t.equal(index.findByCertificate(stranger.der), undefined, 'an unlisted certificate');
    // A record whose hash names one certificate but which carries another does not vouch for either.
    const inconsistent = new ProviderIndex([{ ...rollover, certificateHashes: [current.sha1], certificates: [stranger.der] }]);
    t.equal(inconsistent.findByCertificate(current.der), undefined);
    t.equal(inconsistent.findByCertificate(stranger.der), undefined);
  });

  t.test('toLdif folds at 76 columns, base64-encodes unsafe values and reads back the same record', async (t) => {
    const record: ProviderRecord = {
      dn: 'providerUnit=Ambiente di riserva,providerName=Posta Città S.p.A.,o=postacert',
      providerName: 'Posta Città S.p.A.',
      providerUnit: ' Ambiente di riserva',
      managedDomains: ['pec.citta.example', 'posta.citta.example'],
      mailReceipt: 'ricevute@pec.citta.example',
      certificates: [current.der, next.der],
      certificateHashes: [current.sha1, next.sha1],
      description: 'Servizi PEC\nper la città: ',
      ldifLocationUrl: `https://ldif.citta.example/${'indice/'.repeat(12)}gestore.ldif.p7m`,
    };
    const text = toLdif(record);
    t.ok(text.split('\n').every((line) => line.length <= 76), 'no line is longer than 76 characters');
    t.match(text, /^dn:: /, 'a non-ASCII DN is base64');
    t.match(text, /\nproviderUnit:: /, 'a value starting with a space is base64');
    t.match(text, /\ndescription:: /, 'a value with a line break is base64');
    t.match(text, /\nLDIFLocationURL: https:\/\/ldif\.citta\.example\/[^\n]+\n [^\n]/, 'a long safe value is folded');
    t.same(parseLdif(text), [record]);
    t.same(parseLdif(appendixRecords.map(toLdif).join('\n')), appendixRecords, 'records joined with a blank line');
  });
});

// ---------------------------------------------------------------------------------------------------------------
// daticert.xml

interface DaticertOptions {
  attributes?: string;
  identificativo?: string;
  msgid?: string;
  oggetto?: string;
  stray?: string;
  declaration?: string;
}

function daticertXml(options: DaticertOptions = {}): string {
  return `${options.declaration ?? '<?xml version="1.0" encoding="UTF-8"?>'}
<postacert ${options.attributes ?? 'tipo="posta-certificata" errore="nessuno"'}>
    <intestazione>
        <mittente>mario.rossi@pec.example.it</mittente>
        <destinatari tipo="certificato">studio.bianchi@pec.example.it</destinatari>
        <destinatari tipo="esterno">info@example.com</destinatari>
        <risposte>mario.rossi@pec.example.it</risposte>${options.stray ?? ''}
        <oggetto>${options.oggetto ?? 'Fattura 12/2024'}</oggetto>
    </intestazione>
    <dati>
        <gestore-emittente>Esempio PEC S.p.A.</gestore-emittente>
        <data zona="+0100">
            <giorno>02/01/2025</giorno>
            <ora>10:00:02</ora>
        </data>
        <identificativo>${options.identificativo ?? 'opec1.20250102100002.1.1@pec.example.it'}</identificativo>
        <msgid>${options.msgid ?? '&lt;abc.123@client.example&gt;'}</msgid>
        <ricevuta tipo="completa" />
    </dati>
</postacert>
`;
}

const expectedEnvelope: ParsedDaticert = {
  tipo: 'posta-certificata',
  errore: 'nessuno',
  mittente: 'mario.rossi@pec.example.it',
  destinatari: [
    { address: 'studio.bianchi@pec.example.it', tipo: 'certificato' },
    { address: 'info@example.com', tipo: 'esterno' },
  ],
  risposte: 'mario.rossi@pec.example.it',
  oggetto: 'Fattura 12/2024',
  gestoreEmittente: 'Esempio PEC S.p.A.',
  data: { giorno: '02/01/2025', ora: '10:00:02', zona: '+0100' },
  instant: new Date('2025-01-02T09:00:02Z'),
  identificativo: 'opec1.20250102100002.1.1@pec.example.it',
  msgid: '<abc.123@client.example>',
  ricevuta: 'completa',
  ricezione: [],
};

const utf16be = (text: string) => Buffer.from(text, 'utf16le').swap16();

t.test('parseDaticert tolerates the serialisation quirks of real providers and rejects what changes the meaning', async (t) => {
  t.same(parseDaticert(Buffer.from(daticertXml())), expectedEnvelope, 'the observed provider form');

  t.test('encodings: UTF-16 with or without a byte order mark, UTF-8 BOM, a declared Latin-1', async (t) => {
    // The shape of tornabene/jopenpec mail/daticert.xml: UTF-16BE, attributes reordered, a line break in a value.
    const resaved = daticertXml({
      declaration: '<?xml version="1.0" encoding="UTF-16"?>',
      attributes: 'errore="nessuno"\n  tipo="posta-certificata"',
      identificativo: '\n            opec1.20250102100002.1.1@pec.example.it\n        ',
    });
    t.same(parseDaticert(Buffer.concat([Buffer.from([0xfe, 0xff]), utf16be(resaved)])), expectedEnvelope, 'UTF-16BE with BOM');
    t.same(parseDaticert(utf16be(resaved)), expectedEnvelope, 'UTF-16BE without BOM');
    t.same(parseDaticert(Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(resaved, 'utf16le')])), expectedEnvelope, 'UTF-16LE with BOM');
    t.same(parseDaticert(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(daticertXml())])), expectedEnvelope, 'UTF-8 with BOM');
    t.same(parseDaticert(Buffer.from(resaved)), expectedEnvelope, 'declared UTF-16 but re-encoded as UTF-8');
    const latin1 = Buffer.from(daticertXml({ declaration: '<?xml version="1.0" encoding="ISO-8859-1"?>', oggetto: 'Perché è così' }), 'latin1');
    t.equal(parseDaticert(latin1).oggetto, 'Perché è così');
    t.equal(parseDaticert(Buffer.from(daticertXml({ oggetto: 'Perché è così' }), 'latin1')).oggetto, 'Perché è così', 'Latin-1 bytes labelled UTF-8');
  });

  t.test('an unescaped msgid (and a bare & beside it) is repaired; stray text between elements is ignored', async (t) => {
    const broken = daticertXml({ msgid: '<abc.123@client.example>', oggetto: 'Fatture & note' });
    t.same(parseDaticert(Buffer.from(broken)), { ...expectedEnvelope, oggetto: 'Fatture & note' });
    t.same(parseDaticert(Buffer.from(daticertXml({ stray: 'a' }))), expectedEnvelope);
  });

  t.test('defaults, repeated elements and the UTC instant', async (t) => {
    const presaInCarico = `<postacert tipo="presa-in-carico">
  <intestazione><mittente>a@pec.example.it</mittente>
    <destinatari>b@pec.other.it</destinatari><destinatari>c@pec.other.it</destinatari>
    <risposte/></intestazione>
  <dati><gestore-emittente>Other PEC S.p.A.</gestore-emittente>
    <data zona="+0200"><giorno>1/7/2025</giorno><ora>00:30:00</ora></data>
    <identificativo>opec1.20250701003000.1.1@pec.example.it</identificativo>
    <ricezione>b@pec.other.it</ricezione><ricezione>c@pec.other.it</ricezione></dati>
</postacert>`;
    t.same(parseDaticert(Buffer.from(presaInCarico)), {
      tipo: 'presa-in-carico',
      errore: 'nessuno',
      mittente: 'a@pec.example.it',
      destinatari: [{ address: 'b@pec.other.it', tipo: 'certificato' }, { address: 'c@pec.other.it', tipo: 'certificato' }],
      risposte: '',
      gestoreEmittente: 'Other PEC S.p.A.',
      data: { giorno: '1/7/2025', ora: '00:30:00', zona: '+0200' },
      instant: new Date('2025-06-30T22:30:00Z'),
      identificativo: 'opec1.20250701003000.1.1@pec.example.it',
      ricezione: ['b@pec.other.it', 'c@pec.other.it'],
    }, 'no errore means nessuno, no destinatari tipo means certificato; CEST crosses midnight backwards');
    const at = (zona: string) => parseDaticert(Buffer.from(daticertXml().replace('zona="+0100"', `zona="${zona}"`))).instant.toISOString();
    t.equal(at('-0330'), '2025-01-02T13:30:02.000Z');
    t.equal(at('+01:00'), '2025-01-02T09:00:02.000Z', 'the RFC text form of the offset');
  });

  t.test('what cannot be read or changes the meaning is a DaticertError', async (t) => {
    const fails = (xml: string | Buffer, message: RegExp) =>
      t.throws(() => parseDaticert(typeof xml === 'string' ? Buffer.from(xml) : xml), { name: 'DaticertError', message }, message.source);
    fails(Buffer.alloc(0), /is empty/);
    fails('<postacert tipo="posta-certificata"><intestazione>', /not well-formed XML/);
    fails('<ricevuta tipo="completa"/>', /root element is <ricevuta>, expected <postacert>/);
    fails(daticertXml({ attributes: 'tipo="consegna"' }), /postacert tipo "consegna" is not one of accettazione, /);
    fails(daticertXml({ attributes: 'errore="nessuno"' }), /postacert tipo is missing/);
    fails(daticertXml({ identificativo: '' }), /<identificativo> is empty/);
    fails(daticertXml().replace('<identificativo>', '<identificativo>x</identificativo><identificativo>'), /more than one <identificativo>/);
    fails(daticertXml().replace('<giorno>02/01/2025', '<giorno>31/02/2025'), /31\/02\/2025 10:00:02 is not a valid date/);
    fails(daticertXml().replace(' zona="+0100"', ''), /<data> has no zona attribute/);
    fails(daticertXml({ declaration: '<?xml version="1.0" encoding="EBCDIC-XYZ"?>' }), /unsupported encoding "ebcdic-xyz"/);
    t.ok(new DaticertError('x') instanceof Error);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Received messages

/** The bytes after the first empty line, found independently of the code under test. */
function bodyOf(raw: Buffer): Buffer {
  const crlf = raw.indexOf('\r\n\r\n');
  const lf = raw.indexOf('\n\n');
  return crlf !== -1 && (lf === -1 || crlf < lf) ? raw.subarray(crlf + 4) : raw.subarray(lf + 2);
}

const syntheticEnvelope = (headers: string[], parts: string[]) =>
  Buffer.from([
    ...headers,
    'Content-Type: multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256; boundary="S"',
    '',
    'This is an S/MIME signed message',
    '--S',
    'Content-Type: multipart/mixed; boundary="M"',
    '',
    ...parts.flatMap((part) => ['--M', part]),
    '--M--',
    '--S',
    'Content-Type: application/pkcs7-signature; name="smime.p7s"',
    'Content-Transfer-Encoding: base64',
    '',
    'MIAGCSqGSIb3DQEHAqCAMIACAQEx',
    '--S--',
    '',
  ].join('\r\n'));

t.test('inspectPecMessage classifies received messages and hands over the signed bytes and parts', async (t) => {
  t.test('Aruba 2014 transport envelope (CRLF): signed body, daticert and postacert.eml byte for byte', async (t) => {
    const raw = fixture('aruba-2014-posta-certificata.eml');
    const inspection = await inspectPecMessage(raw);
    t.same(inspection.classification, { kind: 'transport-envelope' });
    t.equal(inspection.signed?.format, 'multipart/signed');
    t.equal(inspection.signed?.contentType, 'multipart/signed; protocol="application/x-pkcs7-signature"; micalg=sha1; boundary="----4DA5192BE7C8E047F0F1D987320A81CA"');
    t.ok(inspection.signed?.body.equals(bodyOf(raw)), 'the body is the exact bytes after the header block');
    t.same(inspection.headers.get('x-tiporicevuta'), ['completa'], 'Aruba spells it X-Tiporicevuta');
    t.same(inspection.headers.get('received')?.[1], 'from pec.it (unknown [10.10.0.14])\t(using TLSv1 with cipher DHE-RSA-AES256-SHA (256/256 bits))\t(No client certificate requested)\tby smtps.pec.aruba.it (Postfix) with ESMTPSA id 66DCA1DC565\tfor <cavallaro.francesco@pec.it>; Wed,  6 Aug 2014 12:00:12 +0200 (CEST)', 'folded fields are unfolded');
    t.equal(inspection.daticert.status, 'parsed');
    if (inspection.daticert.status === 'parsed') {
      t.match(inspection.daticert.value, {
        tipo: 'posta-certificata', gestoreEmittente: 'ARUBA PEC S.p.A.', identificativo: 'opec275.20140806120104.16138.09.3.17@pec.aruba.it',
        msgid: '<N9VQGC$B2254FE9FD0BA8E3C2A66F0F7F17D574@pec.it>', instant: new Date('2014-08-06T10:01:04Z'), ricevuta: 'completa',
      });
    }
    const original = inspection.postacert!;
    t.ok(original.toString('latin1').startsWith('Received: from pec.it (unknown [10.10.0.14])\r\n'));
    t.ok(original.toString('latin1').endsWith('\r\n--_=__=_XaM3_.1407319212.2A.317750.42.26246.52.42.007.1048733259--\r\n\r\n'), 'up to, not including, the CRLF before the boundary');
    t.not(raw.indexOf(original), -1, 'postacert.eml is a verbatim slice of the received message');
  });

  t.test('Aruba 2018 acceptance receipt, anonymised 2021 delivery receipt (SHA-256), synthetic non-delivery notice', async (t) => {
    const accettazione = await inspectPecMessage(fixture('aruba-2018-accettazione.eml'));
    t.same(accettazione.classification, { kind: 'notification', notification: 'accettazione' });
    t.ok(accettazione.signed?.body.equals(bodyOf(fixture('aruba-2018-accettazione.eml'))));
    t.equal(accettazione.postacert, undefined, 'an acceptance receipt carries no original');
    t.match(accettazione.daticert, { status: 'parsed', value: { tipo: 'accettazione', destinatari: [{ address: 'l.battistini@pec.it', tipo: 'certificato' }], instant: new Date('2018-11-13T15:39:26Z') } });

    const consegna = await inspectPecMessage(fixture('anon-2021-avvenuta-consegna.eml'));
    t.same(consegna.classification, { kind: 'notification', notification: 'avvenuta-consegna' });
    t.match(consegna.signed?.contentType, /micalg="sha-256"/);
    t.match(consegna.daticert, { status: 'parsed', value: { tipo: 'avvenuta-consegna', ricevuta: 'completa', consegna: 'example.example.com' } });
    t.ok(consegna.postacert?.toString().startsWith('Received: from example.com'), 'a full delivery receipt carries the original');

    // java-pec-parser's fixture: stray text after </risposte>, and no signature part at all.
    const mancata = await inspectPecMessage(fixture('fakepec-2024-errore-consegna.eml'));
    t.same(mancata.classification, { kind: 'notification', notification: 'errore-consegna' });
    t.match(mancata.daticert, { status: 'parsed', value: { errore: 'no-dest', consegna: 'rec@fakepec.it', erroreEsteso: '5.1.1 - FAKE Pec S.p.A. - indirizzo non valido' } });
  });

  t.test('ordinary mail is not PEC and is not searched for parts', async (t) => {
    const inspection = await inspectPecMessage(fixture('ordinary-mail.eml'));
    t.same(inspection.classification, { kind: 'not-pec' });
    t.equal(inspection.signed, undefined);
    t.same(inspection.daticert, { status: 'absent' });
  });

  t.test('anomaly envelope: header names in any case, folded values; its original but no daticert', async (t) => {
    const raw = syntheticEnvelope(['Subject: ANOMALIA MESSAGGIO: ciao', 'x-trasporto:', ' ERRORE'], [
      'Content-Type: text/plain; charset="iso-8859-1"\r\n\r\nIl messaggio non e\' certificato.',
      'Content-Type: message/rfc822; name="postacert.eml"\r\nContent-Disposition: inline; filename="postacert.eml"\r\n\r\nSubject: ciao\r\n\r\nciao\r\n',
    ]);
    const inspection = await inspectPecMessage(raw);
    t.same(inspection.classification, { kind: 'anomaly-envelope' });
    t.same(inspection.daticert, { status: 'absent' });
    t.equal(inspection.postacert?.toString(), 'Subject: ciao\r\n\r\nciao\r\n');
  });

  t.test('daticert in any transfer encoding, only as a direct part of the signed content; a bad one is reported', async (t) => {
    const qp = daticertXml().replaceAll('=', '=3D');
    const decoy = daticertXml({ identificativo: 'decoy@attacker.example' });
    const raw = syntheticEnvelope(['X-Trasporto: posta-certificata'], [
      `Content-Type: multipart/alternative; boundary="A"\r\n\r\n--A\r\nContent-Type: application/xml; name="daticert.xml"\r\n\r\n${decoy}\r\n--A--`,
      `Content-Type: application/xml; name="DatiCert.xml"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n${qp}`,
      `Content-Type: message/rfc822\r\nContent-Disposition: inline; filename="postacert.eml"\r\nContent-Transfer-Encoding: base64\r\n\r\n${b64('Subject: x\r\n\r\ny')}`,
    ]);
    const inspection = await inspectPecMessage(raw);
    t.match(inspection.daticert, { status: 'parsed', value: { identificativo: expectedEnvelope.identificativo } });
    t.equal(inspection.postacert?.toString(), 'Subject: x\r\n\r\ny', 'a base64-encoded original is decoded');

    const bad = await inspectPecMessage(syntheticEnvelope(['X-Trasporto: posta-certificata'], [
      'Content-Type: application/xml\r\nContent-Disposition: attachment; filename="daticert.xml"\r\n\r\n<postacert tipo="nuovo"/>',
    ]));
    t.match(bad.daticert, { status: 'invalid', raw: Buffer.from('<postacert tipo="nuovo"/>'), error: /daticert.xml lacks <intestazione>/ });
    const twice = await inspectPecMessage(syntheticEnvelope(['X-Trasporto: posta-certificata'], [
      `Content-Type: application/xml; name="daticert.xml"\r\n\r\n${daticertXml()}`,
      `Content-Type: application/xml; name="daticert.xml"\r\n\r\n${decoy}`,
    ]));
    t.same(twice.daticert, { status: 'invalid', error: 'the signed content holds 2 daticert.xml parts' });
  });

  t.test('opaque signatures are reported as such; unknown PEC header values are malformed', async (t) => {
    const opaque = Buffer.from('X-Ricevuta: presa-in-carico\nContent-Type: application/pkcs7-mime; smime-type=signed-data; name="smime.p7m"\nContent-Transfer-Encoding: base64\n\nMIAGCSqGSIb3DQEHAqCAMIACAQEx\n');
    const inspection = await inspectPecMessage(opaque);
    t.same(inspection.classification, { kind: 'notification', notification: 'presa-in-carico' });
    t.same(inspection.signed, { format: 'pkcs7-mime', contentType: 'application/pkcs7-mime; smime-type=signed-data; name="smime.p7m"', body: Buffer.from('MIAGCSqGSIb3DQEHAqCAMIACAQEx\n') });
    t.same(inspection.daticert, { status: 'absent' });

    const classify = async (headers: string) => (await inspectPecMessage(Buffer.from(`${headers}\r\n\r\nbody`))).classification;
    t.same(await classify('X-Ricevuta: consegna'), { kind: 'malformed', reason: 'unknown X-Ricevuta value "consegna"' });
    t.same(await classify('X-Ricevuta: posta-certificata'), { kind: 'malformed', reason: 'unknown X-Ricevuta value "posta-certificata"' });
    t.same(await classify('X-Trasporto: errore\r\nX-Trasporto: posta-certificata'), { kind: 'malformed', reason: '2 X-Trasporto header fields' });
    t.same(await classify('X-Trasporto: posta-certificata\r\nX-Ricevuta: Avvenuta-Consegna'), { kind: 'notification', notification: 'avvenuta-consegna' }, 'X-Ricevuta decides first');
    t.same(await classify('X-Riferimento-Message-ID: <a@b>'), { kind: 'not-pec' }, 'a reference alone does not make a receipt');
  });
});
