import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XMLParser } from 'fast-xml-parser';
import { simpleParser } from 'mailparser';
import t, { type Test } from 'tap';
import {
  assemble,
  buildAcceptanceReceipt,
  buildAnomalyEnvelope,
  buildDaticert,
  buildDeliveryReceipt,
  buildDeliveryTimeoutNotice,
  buildNonAcceptanceNotice,
  buildNonDeliveryNotice,
  buildTakeChargeReceipt,
  buildTransportEnvelope,
  buildVirusDetectionNotice,
  buildVirusNonAcceptanceNotice,
  buildVirusNonDeliveryNotice,
  deliveryReceiptVariant,
  newPecMessageId,
  readableRomeTime,
  rfc5322RomeDate,
  romeTime,
  SUBJECT_PREFIX,
  toShortForm,
  type HeaderList,
  type PecTransaction,
  type Signer,
  type SystemMessage,
} from '../api/src/pec/messages/index.ts';
import { validateDaticert } from './helpers/pec.ts';

// ---------------------------------------------------------------------------------------------------------------
// Independent machinery: openssl for S/MIME, libxml2 for the DTD, a small MIME walker, fast-xml-parser for daticert.
// ---------------------------------------------------------------------------------------------------------------

const work = mkdtempSync(join(tmpdir(), 'pec-messages-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));

function run(command: string, args: string[], input?: Buffer): Promise<{ code: number; stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args);
    const stdout: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout: Buffer.concat(stdout), stderr }));
    child.stdin.end(input);
  });
}

const KEY = join(work, 'key.pem');
const CERT = join(work, 'cert.pem');

async function createSigningCertificate(): Promise<void> {
  const created = await run('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', KEY, '-out', CERT, '-days', '2',
    '-subj', '/C=IT/O=Posta Esempio S.p.A./CN=Posta Certificata Posta Esempio',
    '-addext', 'subjectAltName=email:posta-certificata@pec.esempio.it',
  ]);
  if (created.code !== 0) throw new Error(created.stderr);
}

/** A detached S/MIME signature made by the openssl CLI: an implementation independent of the engine's own signer. */
const opensslSigner: Signer = {
  async sign(entity) {
    const signed = await run('openssl', ['smime', '-sign', '-binary', '-md', 'sha256', '-signer', CERT, '-inkey', KEY, '-crlfeol'], entity);
    if (signed.code !== 0) throw new Error(signed.stderr);
    // openssl ends the base64 lines of smime.p7s with bare LF even with -crlfeol; the entity is CRLF already.
    const out = signed.stdout.toString('latin1').replace(/\r?\n/g, '\r\n');
    const end = out.indexOf('\r\n\r\n');
    const contentType = /^content-type:\s*(.*)$/im.exec(out.slice(0, end).replace(/\r\n(?=[ \t])/g, ''))![1]!;
    return { contentType, body: Buffer.from(out.slice(end + 4), 'latin1') };
  },
};

async function opensslVerify(message: Buffer): Promise<{ code: number; content: Buffer; stderr: string }> {
  const file = join(work, 'message.eml');
  const content = join(work, 'content.bin');
  writeFileSync(file, message);
  const verified = await run('openssl', ['smime', '-verify', '-CAfile', CERT, '-in', file, '-out', content]);
  return { code: verified.code, content: verified.code === 0 ? readFileSync(content) : Buffer.alloc(0), stderr: verified.stderr };
}

/** Validates documents against daticert.dtd with libxml2 (see helpers/pec.ts); verdict per document and messages. */
async function validateAgainstDtd(documents: Record<string, string>): Promise<{ verdicts: Record<string, 'valid' | 'invalid'>; messages: string }> {
  const verdicts: Record<string, 'valid' | 'invalid'> = {};
  const messages: string[] = [];
  for (const [name, xml] of Object.entries(documents)) {
    const result = await validateDaticert(xml);
    verdicts[name] = result.valid ? 'valid' : 'invalid';
    messages.push(...result.errors.map((e) => `${name}: ${e}`));
  }
  return { verdicts, messages: messages.join('\n') };
}

interface MimePart {
  type: string;
  header(name: string): string | undefined;
  body: Buffer;
  children: MimePart[];
}

/** A deliberately simple MIME walker (CRLF, quoted or bare boundaries): enough to check structure and raw bodies. */
function walk(raw: Buffer): MimePart {
  const text = raw.toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  const fields = text
    .slice(0, end)
    .replace(/\r\n[ \t]+/g, ' ')
    .split('\r\n')
    .map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()] as const);
  const header = (name: string) => fields.find(([key]) => key === name.toLowerCase())?.[1];
  const body = text.slice(end + 4);
  const contentType = header('content-type') ?? 'text/plain';
  const type = contentType.split(';')[0]!.trim().toLowerCase();
  let children: MimePart[] = [];
  if (type.startsWith('multipart/')) {
    const boundary = /boundary="?([^";]+)"?/i.exec(contentType)![1]!;
    const segments = `\r\n${body}`.split(`\r\n--${boundary}`);
    children = segments.slice(1, -1).map((segment) => walk(Buffer.from(segment.slice(segment.indexOf('\r\n') + 2), 'latin1')));
  } else if (type === 'message/rfc822') {
    children = [walk(Buffer.from(body, 'latin1'))];
  }
  return { type, header, body: Buffer.from(body, 'latin1'), children };
}

const structure = (part: MimePart): string =>
  part.type + (part.children.length ? `[${part.children.map(structure).join(',')}]` : '');

function find(part: MimePart, type: string): MimePart | undefined {
  if (part.type === type) return part;
  for (const child of part.type === 'message/rfc822' ? [] : part.children) {
    const found = find(child, type);
    if (found) return found;
  }
  return undefined;
}

const xmlParser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@',
  parseTagValue: false,
  parseAttributeValue: false,
  isArray: (name) => name === 'destinatari' || name === 'ricezione',
});

type Node = Record<string, unknown> & { '#text'?: string };
const textOf = (node: unknown): string => (typeof node === 'object' && node ? ((node as Node)['#text'] ?? '') : String(node ?? ''));

/** The content of a daticert.xml, flattened for comparison. Absent elements are absent keys. */
function readDaticert(xml: string): Record<string, unknown> {
  const root = xmlParser.parse(xml).postacert as Node;
  const header = root.intestazione as Node;
  const data = root.dati as Node;
  const when = data.data as Node;
  const summary: Record<string, unknown> = {
    tipo: root['@tipo'],
    errore: root['@errore'],
    mittente: textOf(header.mittente),
    destinatari: (header.destinatari as Node[]).map((node) => `${textOf(node)} (${node['@tipo']})`),
    risposte: textOf(header.risposte),
    oggetto: textOf(header.oggetto),
    'gestore-emittente': textOf(data['gestore-emittente']),
    data: `${textOf(when.giorno)} ${textOf(when.ora)} ${when['@zona']}`,
    identificativo: textOf(data.identificativo),
    msgid: textOf(data.msgid),
  };
  if ('ricevuta' in data) summary.ricevuta = (data.ricevuta as Node)['@tipo'];
  if ('consegna' in data) summary.consegna = textOf(data.consegna);
  if ('ricezione' in data) summary.ricezione = (data.ricezione as unknown[]).map(textOf);
  if ('errore-esteso' in data) summary['errore-esteso'] = textOf(data['errore-esteso']);
  return summary;
}

// ---------------------------------------------------------------------------------------------------------------
// The transaction every message below is about.
// ---------------------------------------------------------------------------------------------------------------

const SENDER_PROVIDER = { name: 'Posta Esempio S.p.A.', domain: 'pec.esempio.it' };
const RECIPIENT_PROVIDER = { name: 'Altro Gestore S.p.A.', domain: 'pec.altro.it' };
const SENDER_PROVIDER_MAILBOX = 'ricevute@pec.esempio.it';
const SENDER = 'mario.rossi@pec.esempio.it';
const ANNA = 'anna.verdi@pec.altro.it';
const OFFICE = 'ufficio@example.com';
const LUCA = 'luca.bianchi@pec.altro.it';
const CLIENT_MESSAGE_ID = '<20241115.abc$1@client.example>';
const PEC_MESSAGE_ID = 'opec210312.20241115182103.288127.606.1.53@pec.esempio.it';
/** An em dash (outside ISO-8859-1) and an accented letter (inside it). */
const SUBJECT = 'Fattura n. 12 — più dettagli';

const tx: PecTransaction = {
  provider: SENDER_PROVIDER,
  at: new Date('2024-11-15T17:21:03.250Z'),
  pecMessageId: PEC_MESSAGE_ID,
  originalMessageId: CLIENT_MESSAGE_ID,
  sender: SENDER,
  recipients: [
    { address: ANNA, type: 'certificato', header: 'To' },
    { address: OFFICE, type: 'esterno', header: 'To' },
    { address: LUCA, type: 'certificato', header: 'Cc' },
  ],
  subject: SUBJECT,
  receiptType: 'completa',
};
const SENT_DATE = 'Fri, 15 Nov 2024 18:21:03 +0100';
const SENT_TEXT_TIME = '15/11/2024 alle ore 18:21:03 (+0100)';
/** The same transaction seen by the recipients' provider, two seconds later. */
const atRecipientProvider: PecTransaction = { ...tx, provider: RECIPIENT_PROVIDER, at: new Date('2024-11-15T17:21:05Z') };
const RECEIVED_DATE = 'Fri, 15 Nov 2024 18:21:05 +0100';

const PDF_BASE64 = 'JVBERi0xLjQKJcOkw7zDtsOfCjEgMCBvYmoKPDwvVHlwZS9DYXRhbG9nPj4KZW5kb2JqCnRyYWls\r\nZXIKPDwvUm9vdCAxIDAgUj4+CiUlRU9GCg==';
const FORWARDED = 'From: giulia@example.com\r\nSubject: inoltro\r\nContent-Type: text/plain\r\n\r\ntesto inoltrato';
const NOTE_BASE64 = 'Y2lhbw==';

/** The message as the client submitted it: 8-bit text, a PDF, a forwarded message, a file with a non-ASCII name. */
const ORIGINAL = Buffer.from(
  [
    'Received: from [192.0.2.7] by smtp.pec.esempio.it with ESMTPSA;',
    ' Fri, 15 Nov 2024 18:21:02 +0100',
    'From: Mario Rossi <mario.rossi@pec.esempio.it>',
    'To: Anna Verdi <anna.verdi@pec.altro.it>, ufficio@example.com',
    'Cc: luca.bianchi@pec.altro.it',
    'Subject: =?utf-8?Q?Fattura_n=2E_12_=E2=80=94_pi=C3=B9_dettagli?=',
    'Date: Fri, 15 Nov 2024 18:20:59 +0100',
    `Message-ID: ${CLIENT_MESSAGE_ID}`,
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="outer"',
    '',
    '--outer',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 8bit',
    '',
    'In allegato la fattura, più i dettagli.',
    '--outer',
    'Content-Type: application/pdf; name="fattura.pdf"',
    'Content-Disposition: attachment; filename="fattura.pdf"',
    'Content-Transfer-Encoding: base64',
    '',
    PDF_BASE64,
    '--outer',
    'Content-Type: message/rfc822',
    'Content-Disposition: attachment',
    '',
    FORWARDED,
    '--outer',
    'Content-Type: text/plain; charset=utf-8',
    "Content-Disposition: attachment; filename*=utf-8''n%C3%B2te.txt",
    'Content-Transfer-Encoding: base64',
    '',
    NOTE_BASE64,
    '--outer--',
    '',
  ].join('\r\n'),
  'utf8',
);
const ORIGINAL_STRUCTURE = 'multipart/mixed[text/plain,application/pdf,message/rfc822[text/plain],text/plain]';

/** daticert content every message of the transaction repeats. */
const transactionDaticert = (at: string, provider = SENDER_PROVIDER.name) => ({
  mittente: SENDER,
  destinatari: [`${ANNA} (certificato)`, `${OFFICE} (esterno)`, `${LUCA} (certificato)`],
  risposte: SENDER,
  oggetto: SUBJECT,
  'gestore-emittente': provider,
  data: at,
  identificativo: PEC_MESSAGE_ID,
  msgid: CLIENT_MESSAGE_ID,
});
const SENT_DATA = '15/11/2024 18:21:03 +0100';
const RECEIVED_DATA = '15/11/2024 18:21:05 +0100';

const SIGNED = (inner: string) => `multipart/signed[multipart/mixed[${inner}],application/x-pkcs7-signature]`;
const TEXTS = 'multipart/alternative[text/plain,text/html]';

interface Expectation {
  /** Header fields except Subject, exactly and in order. */
  headers: HeaderList;
  subjectPrefix: string;
  originalSubject?: string;
  structure: string;
  /** The flattened daticert.xml; undefined for the anomaly envelope, which has none. */
  daticert?: Record<string, unknown>;
  /** Lines the decoded text/plain part must contain. */
  text: string[];
}

/**
 * Everything one built message must satisfy: exact header fields, an entity that is CRLF and 7-bit outside
 * postacert.eml, a signature openssl verifies over exactly that entity, the MIME skeleton, the Subject as clients
 * decode it, the readable text in both alternatives, and the daticert content. Returns the daticert for the DTD check.
 */
async function checkSystemMessage(t: Test, message: SystemMessage, expected: Expectation): Promise<{ daticert?: string; final: MimePart; plainText: string }> {
  const subjectField = message.headers.find(([name]) => name === 'Subject');
  t.same(message.headers.filter(([name]) => name !== 'Subject'), expected.headers, 'header fields');
  t.ok(subjectField?.[1].startsWith(expected.subjectPrefix), `Subject starts with the literal "${expected.subjectPrefix}"`);
  t.match(subjectField?.[1], /^[\x20-\x7e]*$/, 'Subject is 7-bit (RFC 2047 words)');

  const entity = message.entity.toString('latin1');
  t.match(entity, /^Content-Type: multipart\/mixed;/, 'the entity starts with its own Content-Type');
  t.notMatch(entity, /(?<!\r)\n|\r(?!\n)/, 'CRLF line ends only');

  const final = assemble(message.headers, await opensslSigner.sign(message.entity, message.date));
  const verified = await opensslVerify(final);
  t.equal(verified.code, 0, `openssl smime -verify accepts the signature ${verified.stderr}`);
  t.ok(verified.content.equals(message.entity), 'what was signed is exactly the entity');

  const tree = walk(final);
  t.equal(structure(tree), expected.structure, 'MIME structure');
  t.equal(tree.header('mime-version'), '1.0');
  const mixed = tree.children[0]!;
  for (const leaf of [...mixed.children[0]!.children, ...mixed.children.slice(1)].filter((part) => part.type !== 'message/rfc822')) {
    t.match(leaf.body.toString('latin1'), /^[\x00-\x7f]*$/, `${leaf.type} is 7-bit on the wire`);
  }
  const [plain, html] = mixed.children[0]!.children;
  for (const part of [plain!, html!]) {
    t.match(part.header('content-type'), /; charset=iso-8859-1$/);
    t.equal(part.header('content-transfer-encoding'), 'quoted-printable');
    t.equal(part.header('content-disposition'), 'inline');
  }

  const parsed = await simpleParser(final);
  t.equal(parsed.subject, expected.subjectPrefix + (expected.originalSubject ?? SUBJECT), 'Subject as a client decodes it');
  for (const line of expected.text) {
    t.ok(parsed.text?.includes(asPlainText(line)), `text/plain says: ${line}`);
    t.ok(parsed.html && parsed.html.includes(asHtml(line)), `text/html says: ${line}`);
  }

  const xmlPart = find(mixed, 'application/xml');
  if (expected.daticert === undefined) {
    t.equal(xmlPart, undefined, 'no daticert.xml');
    return { final: tree, plainText: parsed.text ?? '' };
  }
  t.equal(xmlPart?.header('content-type'), 'application/xml; name=daticert.xml');
  t.equal(xmlPart?.header('content-disposition'), 'inline; filename=daticert.xml');
  t.equal(xmlPart?.header('content-transfer-encoding'), 'base64');
  const daticert = Buffer.from(xmlPart!.body.toString('latin1'), 'base64').toString('utf8');
  t.same(readDaticert(daticert), expected.daticert, 'daticert.xml content');
  const attachment = parsed.attachments.find((a) => a.filename === 'daticert.xml');
  t.equal(attachment?.content.toString('utf8'), daticert, 'mailparser finds the same daticert.xml');
  return { daticert, final: tree, plainText: parsed.text ?? '' };
}

/** ISO-8859-1 texts: what the charset lacks is '?' in text/plain and a numeric reference in text/html. */
const BEYOND_LATIN1 = /[^\u0000-\u00ff]/gu;
const asPlainText = (line: string) => line.replace(BEYOND_LATIN1, '?');
const asHtml = (line: string) =>
  line
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(BEYOND_LATIN1, (char) => `&#x${char.codePointAt(0)!.toString(16)};`);

const postacertOf = (tree: MimePart): Buffer => find(tree.children[0]!, 'message/rfc822')!.body;

// ---------------------------------------------------------------------------------------------------------------

t.before(createSigningCertificate);

t.test('Rome legal time and PEC message identifiers', async (t) => {
  t.same(romeTime(new Date('2024-01-15T09:05:03.999Z')), { day: '15/01/2024', time: '10:05:03', zone: '+0100' }, 'winter: CET, milliseconds dropped');
  t.same(romeTime(new Date('2024-07-01T22:30:00Z')), { day: '02/07/2024', time: '00:30:00', zone: '+0200' }, 'summer: CEST, the Rome day can differ from the UTC one');

  // Spring forward on 31 March 2024 at 01:00 UTC: 01:59:59 CET is followed by 03:00:00 CEST.
  t.same(romeTime(new Date('2024-03-31T00:59:59Z')), { day: '31/03/2024', time: '01:59:59', zone: '+0100' });
  t.same(romeTime(new Date('2024-03-31T01:00:00Z')), { day: '31/03/2024', time: '03:00:00', zone: '+0200' });
  // Fall back on 27 October 2024 at 01:00 UTC: the hour 02:00-03:00 happens twice, told apart by the zone.
  t.same(romeTime(new Date('2024-10-27T00:30:00Z')), { day: '27/10/2024', time: '02:30:00', zone: '+0200' });
  t.same(romeTime(new Date('2024-10-27T01:30:00Z')), { day: '27/10/2024', time: '02:30:00', zone: '+0100' });

  t.equal(readableRomeTime(new Date('2014-08-06T10:01:04Z')), '06/08/2014 alle ore 12:01:04 (+0200)', 'the form of Appendix B');
  t.equal(rfc5322RomeDate(new Date('2014-08-06T10:01:04Z')), 'Wed, 6 Aug 2014 12:01:04 +0200');
  t.equal(rfc5322RomeDate(new Date('2024-10-27T01:30:00Z')), 'Sun, 27 Oct 2024 02:30:00 +0100');
  t.equal(new Date(rfc5322RomeDate(new Date('2024-03-31T01:00:00Z'))).toISOString(), '2024-03-31T01:00:00.000Z', 'the Date: header denotes the same instant');

  const counter = Uint8Array.from([0, 1, 0, 0, 0, 2, 0, 3, 0, 4]);
  t.equal(newPecMessageId('PEC.Esempio.it', new Date('2024-07-01T10:00:00Z'), () => counter), 'opec1.20240701120000.2.3.4@pec.esempio.it', 'timestamp in Rome time');
  const ids = new Set(Array.from({ length: 50 }, () => newPecMessageId('pec.esempio.it', tx.at)));
  t.equal(ids.size, 50, 'random fields make ids unique');
  for (const id of ids) t.match(id, /^opec\d+\.20241115182103\.\d+\.\d+\.\d+@pec\.esempio\.it$/);
});

t.test('daticert.xml: the observed serialisation, and the DTD decides validity', async (t) => {
  // The daticert of a real Aruba transport envelope (tornabene/jopenpec, 2014), addresses anonymised.
  const observed = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<postacert tipo="posta-certificata" errore="nessuno">',
    '    <intestazione>',
    '        <mittente>mario.rossi@pec.example.it</mittente>',
    '        <destinatari tipo="certificato">mario.rossi@pec.example.it</destinatari>',
    '        <risposte>mario.rossi@pec.example.it</risposte>',
    '        <oggetto>test</oggetto>',
    '    </intestazione>',
    '    <dati>',
    '        <gestore-emittente>ARUBA PEC S.p.A.</gestore-emittente>',
    '        <data zona="+0200">',
    '            <giorno>06/08/2014</giorno>',
    '            <ora>12:01:04</ora>',
    '        </data>',
    '        <identificativo>opec275.20140806120104.16138.09.3.17@pec.aruba.it</identificativo>',
    '        <msgid>&lt;N9VQGC$B2254FE9FD0BA8E3C2A66F0F7F17D574@pec.example.it&gt;</msgid>',
    '        <ricevuta tipo="completa" />',
    '    </dati>',
    '</postacert>',
    '',
  ].join('\n');
  const built = buildDaticert({
    type: 'posta-certificata',
    error: 'nessuno',
    sender: 'mario.rossi@pec.example.it',
    recipients: [{ address: 'mario.rossi@pec.example.it', type: 'certificato' }],
    replyTo: 'mario.rossi@pec.example.it',
    subject: 'test',
    providerName: 'ARUBA PEC S.p.A.',
    at: new Date('2014-08-06T10:01:04Z'),
    identifier: 'opec275.20140806120104.16138.09.3.17@pec.aruba.it',
    originalMessageId: '<N9VQGC$B2254FE9FD0BA8E3C2A66F0F7F17D574@pec.example.it>',
    receiptType: 'completa',
  });
  t.equal(built, observed, 'byte for byte the provider form');

  const everything = buildDaticert({
    type: 'presa-in-carico',
    error: 'nessuno',
    sender: 'a&b@pec.example.it',
    recipients: [{ address: 'x@pec.example.it', type: 'certificato' }, { address: 'y@example.com', type: 'esterno' }],
    replyTo: '',
    subject: 'Oggetto <con> & \u0007 controllo ✓',
    providerName: 'Gestore "Uno"',
    at: new Date('2024-03-31T01:00:00Z'),
    identifier: 'opec1.20240331030000.1.2.3@pec.example.it',
    originalMessageId: '<a@b>',
    deliveredTo: 'x@pec.example.it',
    takenInChargeFor: ['x@pec.example.it', 'z@pec.example.it'],
    errorDetail: '5.1.1 - Gestore - errore',
  });
  t.match(everything, '<oggetto>Oggetto &lt;con&gt; &amp; \uFFFD controllo ✓</oggetto>', 'escaped; a control character XML forbids is replaced');
  t.match(everything, '<risposte />');
  t.match(everything, '<data zona="+0200">');

  const missingReplyTo = built.replace(/ *<risposte>.*\n/, '');
  const outOfOrder = everything.replace(/( *<consegna>.*\n)((?: *<ricezione>.*\n)+)/, '$2$1');
  const unknownType = built.replace('tipo="posta-certificata"', 'tipo="ricevuta"');
  const { verdicts, messages } = await validateAgainstDtd({ built, everything, missingReplyTo, outOfOrder, unknownType });
  t.same(verdicts, { built: 'valid', everything: 'valid', missingReplyTo: 'invalid', outOfOrder: 'invalid', unknownType: 'invalid' });
  t.match(messages, /Element intestazione content does not follow the DTD/);
  t.match(messages, /Element dati content does not follow the DTD/);
  t.match(messages, /Value "ricevuta" for attribute tipo of postacert is not among the enumerated set/);
});

t.test('every system message: headers, MIME skeleton, readable text, daticert, signature', async (t) => {
  const daticerts: Record<string, string> = {};
  const check = async (t: Test, name: string, message: SystemMessage, expected: Expectation) => {
    const { daticert, final, plainText } = await checkSystemMessage(t, message, expected);
    if (daticert) daticerts[name] = daticert;
    return { final, plainText };
  };
  const notification = (ricevuta: string, extra: HeaderList, date: string, provider: { domain: string }, to: string, messageId: string): HeaderList => [
    ['X-Ricevuta', ricevuta],
    ...extra,
    ['Date', date],
    ['From', `posta-certificata@${provider.domain}`],
    ['To', to],
    ['Message-ID', `<${messageId}>`],
    ['X-Riferimento-Message-ID', CLIENT_MESSAGE_ID],
  ];
  const common = [`Il giorno ${SENT_TEXT_TIME}`, `"${SUBJECT}"`, `"${SENDER}"`, `Identificativo del messaggio: ${PEC_MESSAGE_ID}`];
  const receivedSide = [`Il giorno 15/11/2024 alle ore 18:21:05 (+0100)`, ...common.slice(1)];
  const listed = [`${ANNA} ("posta certificata")`, `${OFFICE} ("posta ordinaria")`, `${LUCA} ("posta certificata")`];

  await t.test('acceptance receipt', async (t) => {
    const id = 'opec1.20241115182103.1.1.1@pec.esempio.it';
    const message = await buildAcceptanceReceipt(tx, { messageId: id });
    const parsed = await simpleParser(assemble(...(await signed(message))));
    t.match(parsed.text, '"Fattura n. 12 ? più dettagli" inviato da', 'the em dash, not in ISO-8859-1, is "?" in text/plain');
    t.match(parsed.html, '&quot;Fattura n. 12 &#x2014; più dettagli&quot; inviato da', 'and a numeric reference in text/html');
    await check(t, 'accettazione', message, {
      headers: notification('accettazione', [], SENT_DATE, SENDER_PROVIDER, SENDER, id),
      subjectPrefix: 'ACCETTAZIONE: ',
      structure: SIGNED(`${TEXTS},application/xml`),
      daticert: { tipo: 'accettazione', errore: 'nessuno', ...transactionDaticert(SENT_DATA) },
      text: [...common, ...listed, 'è stato accettato dal sistema ed inoltrato.', "L'allegato daticert.xml contiene informazioni di servizio sulla trasmissione"],
    });
  });

  await t.test('non-acceptance notice, formal and for a virus', async (t) => {
    const id = 'opec2.20241115182103.1.1.1@pec.esempio.it';
    const reason = 'il mittente della busta SMTP (MAIL FROM) non coincide con il campo From';
    await check(t, 'non-accettazione', await buildNonAcceptanceNotice(tx, { messageId: id, reason }), {
      headers: notification('non-accettazione', [], SENT_DATE, SENDER_PROVIDER, SENDER, id),
      subjectPrefix: 'AVVISO DI NON ACCETTAZIONE: ',
      structure: SIGNED(`${TEXTS},application/xml`),
      daticert: { tipo: 'non-accettazione', errore: 'altro', ...transactionDaticert(SENT_DATA), 'errore-esteso': reason },
      text: [...common, ...listed, reason, 'Il messaggio non è stato accettato.'],
    });

    const virusId = 'opec3.20241115182103.1.1.1@pec.esempio.it';
    const virus = 'Eicar-Signature';
    await check(t, 'non-accettazione-virus', await buildVirusNonAcceptanceNotice(tx, { messageId: virusId, virus }), {
      headers: notification('non-accettazione', [['X-VerificaSicurezza', 'errore']], SENT_DATE, SENDER_PROVIDER, SENDER, virusId),
      subjectPrefix: 'AVVISO DI NON ACCETTAZIONE PER VIRUS: ',
      structure: SIGNED(`${TEXTS},application/xml`),
      daticert: { tipo: 'non-accettazione', errore: 'virus', ...transactionDaticert(SENT_DATA), 'errore-esteso': virus },
      text: [...common, virus, 'Il messaggio non è stato accettato.'],
    });
  });

  await t.test('transport envelope', async (t) => {
    const { final, plainText } = await check(t, 'posta-certificata', await buildTransportEnvelope(tx, { original: ORIGINAL }), {
      headers: [
        ['Received', 'from [192.0.2.7] by smtp.pec.esempio.it with ESMTPSA; Fri, 15 Nov 2024 18:21:02 +0100'],
        ['X-Trasporto', 'posta-certificata'],
        ['Date', SENT_DATE],
        ['From', `"Per conto di: ${SENDER}" <posta-certificata@pec.esempio.it>`],
        ['Reply-To', SENDER],
        ['To', 'Anna Verdi <anna.verdi@pec.altro.it>, ufficio@example.com'],
        ['Cc', LUCA],
        ['Message-ID', `<${PEC_MESSAGE_ID}>`],
        ['X-Riferimento-Message-ID', CLIENT_MESSAGE_ID],
        ['X-TipoRicevuta', 'completa'],
      ],
      subjectPrefix: 'POSTA CERTIFICATA: ',
      structure: SIGNED(`${TEXTS},application/xml,message/rfc822[${ORIGINAL_STRUCTURE}]`),
      daticert: { tipo: 'posta-certificata', errore: 'nessuno', ...transactionDaticert(SENT_DATA), ricevuta: 'completa' },
      text: [
        'Questo è un Messaggio di Posta Certificata',
        `Il giorno ${SENT_TEXT_TIME} il messaggio con Oggetto`,
        `"${SUBJECT}" è stato inviato dal mittente "${SENDER}"`,
        ...listed,
        `L'identificativo univoco di questo messaggio è: ${PEC_MESSAGE_ID}`,
      ],
    });
    t.match(plainText, /^-- Questo è un Messaggio di Posta Certificata --\n\nIl giorno /, 'the plain text opens as Appendix B.1');
    const postacertPart = find(final.children[0]!, 'message/rfc822')!;
    t.equal(postacertPart.header('content-type'), 'message/rfc822; name=postacert.eml');
    t.equal(postacertPart.header('content-disposition'), 'inline; filename=postacert.eml');
    t.equal(postacertPart.header('content-transfer-encoding'), '8bit', 'the original has 8-bit text, labelled, not re-encoded');
    const expectedPostacert = ORIGINAL.toString('latin1').replace(
      `Message-ID: ${CLIENT_MESSAGE_ID}\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="outer"\r\n`,
      `MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="outer"\r\nMessage-ID: <${PEC_MESSAGE_ID}>\r\nX-Riferimento-Message-ID: ${CLIENT_MESSAGE_ID}\r\n`,
    );
    t.equal(postacertPart.body.toString('latin1'), expectedPostacert, 'postacert.eml is the original, Message-ID replaced and the reference added');

    const withReplyTo = Buffer.from(`Reply-To: segreteria@pec.esempio.it\r\n${ORIGINAL.toString('latin1')}`, 'latin1');
    const envelope = await buildTransportEnvelope({ ...tx, replyTo: 'segreteria@pec.esempio.it', receiptType: 'breve' }, { original: withReplyTo });
    t.same(envelope.headers.filter(([name]) => name === 'Reply-To' || name === 'X-TipoRicevuta'), [['Reply-To', 'segreteria@pec.esempio.it'], ['X-TipoRicevuta', 'breve']], 'an existing Reply-To is inherited, not replaced');
  });

  await t.test('delay warning (12 h) and timeout notice (24 h), to the original sender', async (t) => {
    for (const [stage, at, date, data, says] of [
      ['12h', '2024-11-16T05:21:03Z', 'Sat, 16 Nov 2024 06:21:03 +0100', '16/11/2024 06:21:03 +0100', 'non risulta consegnato entro le prime 12 ore dal suo invio.'],
      ['24h', '2024-11-16T17:21:03Z', 'Sat, 16 Nov 2024 18:21:03 +0100', '16/11/2024 18:21:03 +0100', 'La trasmissione è da considerarsi conclusa con esito negativo.'],
    ] as const) {
      const id = `opec4.${stage}.1.1.1@pec.esempio.it`;
      const status = stage === '12h' ? '4.4.1' : '5.4.1';
      await check(t, `preavviso-${stage}`, await buildDeliveryTimeoutNotice({ ...tx, at: new Date(at) }, { messageId: id, recipient: ANNA, stage }), {
        headers: notification('preavviso-errore-consegna', [], date, SENDER_PROVIDER, SENDER, id),
        subjectPrefix: 'AVVISO DI MANCATA CONSEGNA PER SUP. TEMPO MASSIMO: ',
        structure: SIGNED(`${TEXTS},application/xml`),
        daticert: {
          tipo: 'preavviso-errore-consegna',
          errore: 'altro',
          ...transactionDaticert(data),
          consegna: ANNA,
          'errore-esteso': `${status} - ${SENDER_PROVIDER.name} - ${stage === '12h' ? "messaggio non ancora consegnato entro le prime 12 ore dall'invio" : "messaggio non consegnato entro 24 ore dall'invio"}`,
        },
        text: [`"${ANNA}"`, says, ...common.slice(1)],
      });
    }
  });

  await t.test('take-charge receipt, to the sending provider', async (t) => {
    const id = 'opec5.20241115182105.1.1.1@pec.altro.it';
    await check(t, 'presa-in-carico', await buildTakeChargeReceipt(atRecipientProvider, { messageId: id, senderProviderMailbox: SENDER_PROVIDER_MAILBOX, coveredRecipients: [ANNA, LUCA] }), {
      headers: notification('presa-in-carico', [], RECEIVED_DATE, RECIPIENT_PROVIDER, SENDER_PROVIDER_MAILBOX, id),
      subjectPrefix: 'PRESA IN CARICO: ',
      structure: SIGNED(`${TEXTS},application/xml`),
      daticert: { tipo: 'presa-in-carico', errore: 'nessuno', ...transactionDaticert(RECEIVED_DATA, RECIPIENT_PROVIDER.name), ricezione: [ANNA, LUCA] },
      text: [...receivedSide, `${ANNA} ("posta certificata")`, `${LUCA} ("posta certificata")`, 'è stato preso in carico'],
    });
  });

  await t.test('anomaly envelope: no daticert, only the text and the received message', async (t) => {
    const received = Buffer.from(
      [
        'Return-Path: <giulia@example.com>',
        'Received: from mx.example.com by mx.pec.altro.it; Fri, 15 Nov 2024 18:30:00 +0100',
        'From: Giulia <giulia@example.com>',
        `To: ${ANNA}`,
        'Subject: =?utf-8?Q?Ciao_Anna=2C_s=C3=AC?=',
        'Message-ID: <ordinary-1@example.com>',
        'Content-Type: text/plain; charset=us-ascii',
        '',
        'Posta ordinaria.',
        '',
      ].join('\r\n'),
    );
    const envelope = await buildAnomalyEnvelope({
      provider: RECIPIENT_PROVIDER,
      at: new Date('2024-11-15T17:30:01Z'),
      received,
      error: 'il mittente non appartiene a un dominio di posta certificata',
      messageIdIfMissing: 'unused@pec.altro.it',
    });
    const { final } = await check(t, 'anomalia', envelope, {
      headers: [
        ['Return-Path', '<giulia@example.com>'],
        ['Received', 'from mx.example.com by mx.pec.altro.it; Fri, 15 Nov 2024 18:30:00 +0100'],
        ['X-Trasporto', 'errore'],
        ['Date', 'Fri, 15 Nov 2024 18:30:01 +0100'],
        ['From', '"Per conto di: giulia@example.com" <posta-certificata@pec.altro.it>'],
        ['Reply-To', 'giulia@example.com'],
        ['To', ANNA],
        ['Message-ID', '<ordinary-1@example.com>'],
        ['X-Riferimento-Message-ID', '<ordinary-1@example.com>'],
      ],
      subjectPrefix: 'ANOMALIA MESSAGGIO: ',
      originalSubject: 'Ciao Anna, sì',
      structure: SIGNED(`${TEXTS},message/rfc822[text/plain]`),
      text: [
        'Il giorno 15/11/2024 alle ore 18:30:01 (+0100) è stato ricevuto il messaggio con Oggetto',
        '"Ciao Anna, sì" inviato da "giulia@example.com"',
        ANNA,
        'il mittente non appartiene a un dominio di posta certificata',
        'Identificativo del messaggio: ordinary-1@example.com',
      ],
    });
    t.equal(postacertOf(final).toString('latin1'), received.toString('latin1'), 'the received message, whole and unmodified');
  });

  await t.test('virus detection notice and non-delivery notice for a virus', async (t) => {
    const id = 'opec6.20241115182105.1.1.1@pec.altro.it';
    const virus = 'Win.Test.EICAR_HDB-1';
    await check(t, 'rilevazione-virus', await buildVirusDetectionNotice(atRecipientProvider, { messageId: id, senderProviderMailbox: SENDER_PROVIDER_MAILBOX, recipient: ANNA, virus }), {
      headers: notification('rilevazione-virus', [['X-Mittente', SENDER]], RECEIVED_DATE, RECIPIENT_PROVIDER, SENDER_PROVIDER_MAILBOX, id),
      subjectPrefix: 'PROBLEMA DI SICUREZZA: ',
      structure: SIGNED(`${TEXTS},application/xml`),
      daticert: { tipo: 'rilevazione-virus', errore: 'virus', ...transactionDaticert(RECEIVED_DATA, RECIPIENT_PROVIDER.name), consegna: ANNA, 'errore-esteso': virus },
      text: [...receivedSide, `"${ANNA}"`, virus, 'Il messaggio non è stato consegnato.'],
    });

    const notice = 'opec7.20241115182106.1.1.1@pec.esempio.it';
    await check(t, 'errore-consegna-virus', await buildVirusNonDeliveryNotice(tx, { messageId: notice, recipient: ANNA, virus }), {
      headers: notification('errore-consegna', [['X-VerificaSicurezza', 'errore']], SENT_DATE, SENDER_PROVIDER, SENDER, notice),
      subjectPrefix: 'AVVISO DI MANCATA CONSEGNA PER VIRUS: ',
      structure: SIGNED(`${TEXTS},application/xml`),
      daticert: { tipo: 'errore-consegna', errore: 'virus', ...transactionDaticert(SENT_DATA), consegna: ANNA, 'errore-esteso': virus },
      text: [...common, `"${ANNA}"`, virus],
    });
  });

  await t.test('non-delivery notice', async (t) => {
    const id = 'opec8.20241115182105.1.1.1@pec.altro.it';
    const failure = { error: 'no-dest', status: '5.1.1', description: 'indirizzo non valido' } as const;
    await check(t, 'errore-consegna', await buildNonDeliveryNotice(atRecipientProvider, { messageId: id, recipient: ANNA, failure }), {
      headers: notification('errore-consegna', [], RECEIVED_DATE, RECIPIENT_PROVIDER, SENDER, id),
      subjectPrefix: 'AVVISO DI MANCATA CONSEGNA: ',
      structure: SIGNED(`${TEXTS},application/xml`),
      daticert: { tipo: 'errore-consegna', errore: 'no-dest', ...transactionDaticert(RECEIVED_DATA, RECIPIENT_PROVIDER.name), consegna: ANNA, 'errore-esteso': '5.1.1 - Altro Gestore S.p.A. - indirizzo non valido' },
      text: [...receivedSide, "e destinato all'utente", `"${ANNA}"`, 'è stato rilevato il seguente errore:', '5.1.1 - Altro Gestore S.p.A. - indirizzo non valido', 'Il messaggio è stato rifiutato dal sistema.'],
    });
  });

  await t.test('delivery receipts: full to a To recipient, summary to a Cc recipient, short when asked', async (t) => {
    const envelope = walk(assemble(...(await signed(await buildTransportEnvelope(tx, { original: ORIGINAL })))));
    const postacert = postacertOf(envelope);
    const delivery = (id: string, receiptType: string): Expectation => ({
      headers: notification('avvenuta-consegna', [], RECEIVED_DATE, RECIPIENT_PROVIDER, SENDER, id),
      subjectPrefix: 'CONSEGNA: ',
      structure: '',
      daticert: { tipo: 'avvenuta-consegna', errore: 'nessuno', ...transactionDaticert(RECEIVED_DATA, RECIPIENT_PROVIDER.name), ricevuta: receiptType },
      text: [...receivedSide, 'è stato correttamente consegnato al destinatario.'],
    });

    const fullId = 'opec9.20241115182105.1.1.1@pec.altro.it';
    const { final: full } = await check(t, 'avvenuta-consegna-completa', await buildDeliveryReceipt(atRecipientProvider, { messageId: fullId, recipient: ANNA, postacert }), {
      ...delivery(fullId, 'completa'),
      structure: SIGNED(`${TEXTS},application/xml,message/rfc822[${ORIGINAL_STRUCTURE}]`),
      daticert: { ...delivery(fullId, 'completa').daticert, consegna: ANNA },
      text: [...delivery(fullId, 'completa').text, `Ricevuta di avvenuta consegna del messaggio indirizzato a ${ANNA} "posta certificata"`, 'per aprirlo cliccare sul file "postacert.eml"'],
    });
    t.ok(postacertOf(full).equals(postacert), 'a full receipt carries postacert.eml as delivered');

    const summaryId = 'opec10.20241115182105.1.1.1@pec.altro.it';
    await check(t, 'avvenuta-consegna-sintetica', await buildDeliveryReceipt(atRecipientProvider, { messageId: summaryId, recipient: LUCA, postacert }), {
      ...delivery(summaryId, 'completa'),
      structure: SIGNED(`${TEXTS},application/xml`),
      daticert: { ...delivery(summaryId, 'completa').daticert, consegna: LUCA },
      text: [...delivery(summaryId, 'completa').text, 'Questa ricevuta sintetica non include il messaggio originale.'],
    });

    const shortId = 'opec11.20241115182105.1.1.1@pec.altro.it';
    const asked = { ...atRecipientProvider, receiptType: 'breve' as const };
    const { final: short } = await check(t, 'avvenuta-consegna-breve', await buildDeliveryReceipt(asked, { messageId: shortId, recipient: ANNA, postacert }), {
      ...delivery(shortId, 'breve'),
      structure: SIGNED(`${TEXTS},application/xml,message/rfc822[multipart/mixed[text/plain,text/plain,text/plain,text/plain]]`),
      daticert: { ...delivery(shortId, 'breve').daticert, consegna: ANNA },
      text: [...delivery(shortId, 'breve').text, 'i suoi allegati sono sostituiti dai rispettivi hash'],
    });
    t.equal(postacertOf(short).toString('latin1'), toShortForm(postacert).toString('latin1'), 'a short receipt carries the short form of postacert.eml');
  });

  await t.test('every daticert.xml is valid against daticert.dtd (libxml2)', async (t) => {
    t.equal(Object.keys(daticerts).length, 13, 'one per message that has one');
    const { verdicts, messages } = await validateAgainstDtd(daticerts);
    t.same(verdicts, Object.fromEntries(Object.keys(daticerts).map((name) => [name, 'valid'])), messages);
  });

  await t.test('every Subject prefix is the literal of spec §3', async (t) => {
    t.same(Object.values(SUBJECT_PREFIX).sort(), [
      'ACCETTAZIONE: ',
      'ANOMALIA MESSAGGIO: ',
      'AVVISO DI MANCATA CONSEGNA PER SUP. TEMPO MASSIMO: ',
      'AVVISO DI MANCATA CONSEGNA PER VIRUS: ',
      'AVVISO DI MANCATA CONSEGNA: ',
      'AVVISO DI NON ACCETTAZIONE PER VIRUS: ',
      'AVVISO DI NON ACCETTAZIONE: ',
      'CONSEGNA: ',
      'POSTA CERTIFICATA: ',
      'PRESA IN CARICO: ',
      'PROBLEMA DI SICUREZZA: ',
    ]);
  });
});

async function signed(message: SystemMessage): Promise<[HeaderList, { contentType: string; body: Buffer }]> {
  return [message.headers, await opensslSigner.sign(message.entity, message.date)];
}

t.test('short delivery receipts: attachments become SHA-1 .hash files of their encoded bodies', async (t) => {
  const sha1 = (text: string) => createHash('sha1').update(Buffer.from(text, 'latin1')).digest('hex');
  const short = toShortForm(ORIGINAL);
  const tree = walk(short);
  const [text, pdf, forwarded, note] = tree.children;

  t.equal(tree.header('subject'), '=?utf-8?Q?Fattura_n=2E_12_=E2=80=94_pi=C3=B9_dettagli?=', 'the message header is kept');
  t.equal(text!.body.toString('utf8'), 'In allegato la fattura, più i dettagli.', 'a part without a file name is kept byte for byte');
  t.equal(pdf!.header('content-type'), 'text/plain; charset=us-ascii; name=fattura.pdf.hash');
  t.equal(pdf!.header('content-disposition'), 'attachment; filename=fattura.pdf.hash');
  t.equal(pdf!.body.toString(), sha1(PDF_BASE64), 'SHA-1 of the base64 text as it was on the wire');
  t.equal(forwarded!.header('content-disposition'), 'attachment; filename=messaggio.eml.hash', 'an attached message is replaced whole, even without a name');
  t.equal(forwarded!.body.toString(), sha1(FORWARDED));
  t.equal(note!.body.toString(), sha1(NOTE_BASE64));
  t.match(note!.body.toString(), /^[0-9a-f]{40}$/);

  const parsed = await simpleParser(short);
  t.same(parsed.attachments.map((a) => a.filename), ['fattura.pdf.hash', 'messaggio.eml.hash', 'nòte.txt.hash'], 'file names decode as the originals plus .hash (RFC 2231 kept)');

  const signedOriginal = Buffer.from(
    [
      'From: a@pec.example.it',
      'Content-Type: multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256; boundary=sig',
      '',
      '--sig',
      'Content-Type: multipart/mixed; boundary=inner',
      '',
      '--inner',
      'Content-Type: text/plain',
      '',
      'firmato',
      '--inner',
      'Content-Type: application/octet-stream; name=dati.bin',
      'Content-Transfer-Encoding: base64',
      '',
      'AAECAw==',
      '--inner--',
      '',
      '--sig',
      'Content-Type: application/pkcs7-signature; name=smime.p7s',
      'Content-Transfer-Encoding: base64',
      'Content-Disposition: attachment; filename=smime.p7s',
      '',
      'MIAGCSqGSIb3DQEHAqCAMIACAQE=',
      '--sig--',
      '',
    ].join('\r\n'),
  );
  const shortSigned = walk(toShortForm(signedOriginal));
  t.equal(structure(shortSigned), 'multipart/signed[multipart/mixed[text/plain,text/plain],application/pkcs7-signature]');
  t.equal(shortSigned.children[0]!.children[1]!.body.toString(), sha1('AAECAw=='), 'attachments inside the signed part are hashed');
  t.equal(shortSigned.children[1]!.body.toString(), 'MIAGCSqGSIb3DQEHAqCAMIACAQE=', 'the signature part is left as it is');

  const opaque = Buffer.from('From: a@pec.example.it\r\nContent-Type: application/pkcs7-mime; smime-type=signed-data; name=smime.p7m\r\nContent-Transfer-Encoding: base64\r\n\r\nMIAGCSqGSIb3DQEHAqCAMIACAQE=\r\n');
  t.ok(toShortForm(opaque).equals(opaque), 'application/pkcs7-mime is left whole (short equals full)');
  const plainMessage = Buffer.from('From: a@pec.example.it\r\nSubject: solo testo\r\n\r\nnessun allegato\r\n');
  t.ok(toShortForm(plainMessage).equals(plainMessage), 'a message without attachments is unchanged');

  t.equal(deliveryReceiptVariant('completa', tx.recipients, ANNA), 'completa');
  t.equal(deliveryReceiptVariant('breve', tx.recipients, ANNA.toUpperCase()), 'breve', 'addresses compare case-insensitively');
  t.equal(deliveryReceiptVariant('breve', tx.recipients, LUCA), 'sintetica', 'Cc recipients get a summary receipt');
  t.equal(deliveryReceiptVariant('completa', [...tx.recipients, { address: LUCA, type: 'certificato', header: 'To' }], LUCA), 'completa', 'in both To and Cc: primary');
  t.equal(deliveryReceiptVariant('breve', tx.recipients, 'altro@pec.altro.it'), 'breve', 'unknown (ambiguous): primary');
});
