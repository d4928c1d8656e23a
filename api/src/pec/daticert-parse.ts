// Reads the daticert.xml certification data of messages received from other providers. Real files deviate from
// the DTD in ways that carry no meaning (spec §6.5): UTF-16 encodings, reordered attributes, line breaks inside
// text, stray text between elements, and an unescaped "<...>" msgid. Those are tolerated; anything that changes
// what the file certifies (unknown type, missing identifier, impossible date) is an error.
import { XMLParser, XMLValidator } from 'fast-xml-parser';

export const DATICERT_TIPI = [
  'accettazione',
  'non-accettazione',
  'presa-in-carico',
  'avvenuta-consegna',
  'posta-certificata',
  'errore-consegna',
  'preavviso-errore-consegna',
  'rilevazione-virus',
] as const;
export type DaticertTipo = (typeof DATICERT_TIPI)[number];

const ERRORI = ['nessuno', 'no-dest', 'no-dominio', 'virus', 'altro'] as const;
export type DaticertErrore = (typeof ERRORI)[number];

const DESTINATARIO_TIPI = ['certificato', 'esterno'] as const;
export type DestinatarioTipo = (typeof DESTINATARIO_TIPI)[number];

const RICEVUTA_TIPI = ['completa', 'breve', 'sintetica'] as const;
export type RicevutaTipo = (typeof RICEVUTA_TIPI)[number];

export interface ParsedDaticert {
  tipo: DaticertTipo;
  errore: DaticertErrore;
  mittente: string;
  destinatari: { address: string; tipo: DestinatarioTipo }[];
  /** Original Reply-To; required by the DTD but may be empty. */
  risposte: string;
  oggetto?: string;
  gestoreEmittente: string;
  /** Local Italian legal time as written, "gg/mm/aaaa", "hh:mm:ss" and "[+|-]hhmm". */
  data: { giorno: string; ora: string; zona: string };
  /** The instant data denotes (local time minus zona). */
  instant: Date;
  /** PEC msgid of the transport envelope, without angle brackets. */
  identificativo: string;
  /** Client Message-ID before the provider replaced it, with its angle brackets. */
  msgid?: string;
  ricevuta?: RicevutaTipo;
  consegna?: string;
  ricezione: string[];
  erroreEsteso?: string;
}

export class DaticertError extends Error {
  override name = 'DaticertError';
}

export function parseDaticert(bytes: Buffer): ParsedDaticert {
  const root = parseXml(decode(bytes));
  const postacert = root['postacert'];
  if (!isElement(postacert)) {
    const found = Object.keys(root).find((key) => !key.startsWith('?'));
    throw new DaticertError(`daticert.xml root element is ${found ? `<${found}>` : 'missing'}, expected <postacert>`);
  }
  const intestazione = element(postacert, 'intestazione');
  const dati = element(postacert, 'dati');
  const data = element(dati, 'data');

  const destinatari = children(intestazione, 'destinatari').map((node) => ({
    address: requiredText(node, 'destinatari'),
    tipo: enumValue(DESTINATARIO_TIPI, attribute(node, 'tipo') ?? 'certificato', 'destinatari tipo'),
  }));
  if (destinatari.length === 0) throw new DaticertError('daticert.xml has no <destinatari>');

  const giorno = requiredText(child(data, 'giorno', true), 'giorno');
  const ora = requiredText(child(data, 'ora', true), 'ora');
  const zona = attribute(data, 'zona');
  if (zona === undefined) throw new DaticertError('daticert.xml <data> has no zona attribute');

  const parsed: ParsedDaticert = {
    tipo: enumValue(DATICERT_TIPI, attribute(postacert, 'tipo'), 'postacert tipo'),
    errore: enumValue(ERRORI, attribute(postacert, 'errore') ?? 'nessuno', 'postacert errore'),
    mittente: requiredText(child(intestazione, 'mittente', true), 'mittente'),
    destinatari,
    risposte: textOf(child(intestazione, 'risposte', false)) ?? '',
    gestoreEmittente: requiredText(child(dati, 'gestore-emittente', true), 'gestore-emittente'),
    data: { giorno, ora, zona },
    instant: toInstant(giorno, ora, zona),
    // Identifiers never contain whitespace, so a line break a tool put inside one is dropped entirely.
    identificativo: requiredText(child(dati, 'identificativo', true), 'identificativo').replace(/\s+/g, ''),
    ricezione: children(dati, 'ricezione').map((node) => requiredText(node, 'ricezione')),
  };
  // Optional fields are set only when present, so absent and empty stay distinguishable.
  const oggetto = textOf(child(intestazione, 'oggetto', false));
  if (oggetto !== undefined) parsed.oggetto = oggetto;
  const msgid = textOf(child(dati, 'msgid', false));
  if (msgid !== undefined) parsed.msgid = msgid.replace(/\s+/g, '');
  const ricevuta = child(dati, 'ricevuta', false);
  if (ricevuta !== undefined) parsed.ricevuta = enumValue(RICEVUTA_TIPI, attribute(ricevuta, 'tipo'), 'ricevuta tipo');
  const consegna = textOf(child(dati, 'consegna', false));
  if (consegna !== undefined) parsed.consegna = consegna;
  const erroreEsteso = textOf(child(dati, 'errore-esteso', false));
  if (erroreEsteso !== undefined) parsed.erroreEsteso = erroreEsteso;
  return parsed;
}

// ---------------------------------------------------------------------------------------------------------------
// Bytes to text

function decode(bytes: Buffer): string {
  if (bytes.length === 0) throw new DaticertError('daticert.xml is empty');
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) return decodeUtf8(bytes.subarray(3));
  if (bytes[0] === 0xfe && bytes[1] === 0xff) return decodeUtf16be(bytes.subarray(2));
  if (bytes[0] === 0xff && bytes[1] === 0xfe) return bytes.subarray(2).toString('utf16le');
  // Without a byte order mark, the zero byte next to the leading "<" gives UTF-16 and its byte order away.
  if (bytes[0] === 0x00 && bytes[1] === 0x3c) return decodeUtf16be(bytes);
  if (bytes[0] === 0x3c && bytes[1] === 0x00) return bytes.toString('utf16le');
  const head = bytes.subarray(0, 200).toString('latin1');
  const declared = /^\s*<\?xml[^>]*\sencoding\s*=\s*["']([A-Za-z0-9._-]+)["']/.exec(head)?.[1]?.toLowerCase();
  // The bytes above are not UTF-16 whatever the declaration says (a tool re-encoded the file and kept it).
  if (declared === undefined || declared === 'utf-8' || declared === 'utf8' || /^(utf-?16|ucs-?2)/.test(declared)) {
    return decodeUtf8(bytes);
  }
  try {
    return new TextDecoder(declared).decode(bytes);
  } catch {
    throw new DaticertError(`daticert.xml declares an unsupported encoding "${declared}"`);
  }
}

function decodeUtf8(bytes: Buffer): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    // Defensive: text saved as Windows Latin-1 but labelled (or defaulting to) UTF-8 keeps its accented letters
    // this way, where a lenient UTF-8 decoder would turn them into replacement characters.
    return new TextDecoder('windows-1252').decode(bytes);
  }
}

function decodeUtf16be(bytes: Buffer): string {
  // swap16 works in place and needs an even length; copy so the caller's buffer is untouched.
  return Buffer.from(bytes.subarray(0, bytes.length - (bytes.length % 2))).swap16().toString('utf16le');
}

// ---------------------------------------------------------------------------------------------------------------
// Text to elements

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@',
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: true,
  ignoreDeclaration: true,
  ignorePiTags: true,
  isArray: (name) => name === 'destinatari' || name === 'ricezione',
});

// The elements that hold text (#PCDATA in the DTD); only their content is ever repaired.
const TEXT_ELEMENTS = [
  'mittente', 'destinatari', 'risposte', 'oggetto', 'gestore-emittente', 'giorno', 'ora', 'identificativo', 'msgid',
  'consegna', 'ricezione', 'errore-esteso',
];
const TEXT_ELEMENT = new RegExp(`<(${TEXT_ELEMENTS.join('|')})(\\s[^<>]*)?>([\\s\\S]*?)</\\1\\s*>`, 'g');

/** Escapes markup characters a provider wrote verbatim into text, e.g. <msgid><abc@host></msgid>. */
function repairTextElements(xml: string): string {
  return xml.replace(TEXT_ELEMENT, (_match, name: string, attributes: string | undefined, text: string) => {
    const escaped = text
      .replace(/&(?!(?:[A-Za-z][A-Za-z0-9]*|#[0-9]+|#x[0-9A-Fa-f]+);)/g, '&amp;')
      .replace(/</g, '&lt;')
      .replace(/>/g, '&gt;');
    return `<${name}${attributes ?? ''}>${escaped}</${name}>`;
  });
}

type Element = Record<string, unknown>;

function parseXml(xml: string): Element {
  let text = xml;
  const verdict = XMLValidator.validate(text);
  if (verdict !== true) {
    // Repair only what is not well-formed, so a correct file is read exactly as written.
    text = repairTextElements(xml);
    if (XMLValidator.validate(text) !== true) {
      throw new DaticertError(`daticert.xml is not well-formed XML: ${verdict.err.msg} (line ${verdict.err.line})`);
    }
  }
  return parser.parse(text) as Element;
}

function isElement(node: unknown): node is Element {
  return typeof node === 'object' && node !== null && !Array.isArray(node);
}

function child(parent: Element, name: string, required: true): Element | string;
function child(parent: Element, name: string, required: false): Element | string | undefined;
function child(parent: Element, name: string, required: boolean): Element | string | undefined {
  const node = parent[name];
  if (node === undefined) {
    if (required) throw new DaticertError(`daticert.xml lacks <${name}>`);
    return undefined;
  }
  if (Array.isArray(node)) throw new DaticertError(`daticert.xml has more than one <${name}>`);
  if (typeof node === 'string' || isElement(node)) return node;
  throw new DaticertError(`daticert.xml <${name}> has unexpected content`);
}

function element(parent: Element, name: string): Element {
  const node = child(parent, name, true);
  if (typeof node === 'string') throw new DaticertError(`daticert.xml <${name}> has no child elements`);
  return node;
}

function children(parent: Element, name: string): (Element | string)[] {
  const nodes = parent[name];
  return Array.isArray(nodes) ? (nodes as (Element | string)[]) : [];
}

/** The text of an element; "" for an element that has only attributes or is empty. */
function textOf(node: Element | string | undefined): string | undefined {
  if (node === undefined || typeof node === 'string') return node;
  const text = node['#text'];
  return typeof text === 'string' ? text : '';
}

function requiredText(node: Element | string, name: string): string {
  const text = textOf(node);
  if (!text) throw new DaticertError(`daticert.xml <${name}> is empty`);
  return text;
}

function attribute(node: Element | string, name: string): string | undefined {
  if (typeof node === 'string') return undefined;
  const value = node[`@${name}`];
  return typeof value === 'string' ? value : undefined;
}

function enumValue<T extends string>(allowed: readonly T[], value: string | undefined, what: string): T {
  const normalised = value?.trim().toLowerCase();
  const found = allowed.find((candidate) => candidate === normalised);
  if (found !== undefined) return found;
  if (value === undefined) throw new DaticertError(`daticert.xml ${what} is missing`);
  throw new DaticertError(`daticert.xml ${what} "${value}" is not one of ${allowed.join(', ')}`);
}

// ---------------------------------------------------------------------------------------------------------------
// Date and time

function toInstant(giorno: string, ora: string, zona: string): Date {
  const day = /^(\d{1,2})\/(\d{1,2})\/(\d{4})$/.exec(giorno);
  const time = /^(\d{1,2}):(\d{2}):(\d{2})$/.exec(ora);
  // "[+|-]hhmm" per the DTD; "+hh:mm" is the RFC text form and means the same.
  const offset = /^([+-])(\d{2}):?(\d{2})$/.exec(zona.trim());
  if (!day) throw new DaticertError(`daticert.xml giorno "${giorno}" is not gg/mm/aaaa`);
  if (!time) throw new DaticertError(`daticert.xml ora "${ora}" is not hh:mm:ss`);
  if (!offset) throw new DaticertError(`daticert.xml zona "${zona}" is not [+|-]hhmm`);
  const [d, mo, y] = [Number(day[1]), Number(day[2]), Number(day[3])];
  const [h, mi, s] = [Number(time[1]), Number(time[2]), Number(time[3])];
  const local = new Date(Date.UTC(y, mo - 1, d, h, mi, s));
  // Date.UTC rolls 31/02 over into March; a date that does not survive the trip does not exist.
  if (local.getUTCDate() !== d || local.getUTCMonth() !== mo - 1 || h > 23 || mi > 59 || s > 59) {
    throw new DaticertError(`daticert.xml data ${giorno} ${ora} is not a valid date and time`);
  }
  const minutes = (offset[1] === '-' ? -1 : 1) * (Number(offset[2]) * 60 + Number(offset[3]));
  return new Date(local.getTime() - minutes * 60_000);
}
