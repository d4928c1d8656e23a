import type { ImapAttribute, ImapAttributeList } from 'imapflow/lib/handler/types.js';
import type { MessageState } from '../mailstore/messages.ts';
import { parseEntity } from '../pec/messages/raw-entity.ts';
import { bodyStructure, decodedBody, envelope, headerFields, parseMime, partAt, type MimeNode } from './mime.ts';
import { dateTime, list, literal } from './wire.ts';

/** FETCH data items (RFC 9051 §6.4.5), parsed once per command. */
export type FetchItem =
  | { kind: 'UID' | 'FLAGS' | 'INTERNALDATE' | 'RFC822.SIZE' | 'ENVELOPE' | 'BODYSTRUCTURE' | 'BODY' | 'MODSEQ' }
  | { kind: 'section'; name: 'BODY' | 'BINARY' | 'BINARY.SIZE' | 'RFC822' | 'RFC822.HEADER' | 'RFC822.TEXT'; peek: boolean; section: Section; partial: [number, number] | null; label: string };

export interface Section {
  path: number[];
  part: '' | 'HEADER' | 'HEADER.FIELDS' | 'HEADER.FIELDS.NOT' | 'TEXT' | 'MIME';
  fields: string[];
}

export class FetchSyntaxError extends Error {}

const MACROS: Record<string, string[]> = {
  ALL: ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE'],
  FAST: ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE'],
  FULL: ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE', 'BODY'],
};

const SIMPLE = new Set(['UID', 'FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE', 'BODYSTRUCTURE', 'BODY', 'MODSEQ']);

function parseSection(section: ImapAttributeList, binary: boolean): Section {
  const [spec, names] = section;
  const text = spec && !Array.isArray(spec) && typeof spec.value === 'string' ? spec.value.toUpperCase() : '';
  const match = /^((?:[1-9][0-9]*\.)*[1-9][0-9]*)?\.?(HEADER\.FIELDS\.NOT|HEADER\.FIELDS|HEADER|TEXT|MIME)?$/.exec(text);
  if (!match || (spec && !text)) throw new FetchSyntaxError(`Invalid section ${text}`);
  const path = match[1] ? match[1].split('.').map(Number) : [];
  const part = (match[2] ?? '') as Section['part'];
  if (part === 'MIME' && path.length === 0) throw new FetchSyntaxError('MIME needs a part number');
  if (binary && part !== '') throw new FetchSyntaxError('BINARY takes a part number only');
  const fields: string[] = [];
  if (part.startsWith('HEADER.FIELDS')) {
    if (!Array.isArray(names) || names.length === 0) throw new FetchSyntaxError('HEADER.FIELDS needs a list of field names');
    for (const name of names) {
      if (!name || Array.isArray(name) || typeof name.value !== 'string' || !/^[\x21-\x39\x3b-\x7e]+$/.test(name.value)) throw new FetchSyntaxError('Invalid header field name');
      fields.push(name.value);
    }
  } else if (names !== undefined) {
    throw new FetchSyntaxError(`Unexpected list after ${text}`);
  }
  return { path, part, fields };
}

const sectionLabel = (section: Section): string => {
  const spec = [section.path.join('.'), section.part].filter(Boolean).join('.');
  return section.fields.length ? `${spec} (${section.fields.map((f) => f.toUpperCase()).join(' ')})` : spec;
};

export function parseFetchItems(attribute: ImapAttribute | undefined): FetchItem[] {
  const raw: ImapAttribute[] = Array.isArray(attribute) ? attribute : attribute ? [attribute] : [];
  if (raw.length === 0) throw new FetchSyntaxError('FETCH needs data items');
  const items: FetchItem[] = [];
  for (let node of raw) {
    if (!node || Array.isArray(node) || node.type !== 'ATOM' || typeof node.value !== 'string') throw new FetchSyntaxError('Invalid FETCH data item');
    let name = node.value.toUpperCase();
    // The parser leaves BINARY.SIZE[2] as one atom (its grammar knows BODY[ and BINARY[ only): split it here.
    const sized = /^(BINARY\.SIZE)\[([0-9.]*)\]$/.exec(name);
    if (sized && !node.section) {
      name = sized[1]!;
      node = { ...node, value: name, section: sized[2] ? [{ type: 'ATOM', value: sized[2] }] : [] };
    }
    const macro = MACROS[name];
    if (macro && raw.length === 1 && !node.section) {
      for (const m of macro) items.push({ kind: m as 'FLAGS' });
      continue;
    }
    const partial = node.partial ? ([node.partial[0] ?? 0, node.partial[1] ?? Number.MAX_SAFE_INTEGER] as [number, number]) : null;
    if (partial && (!Number.isSafeInteger(partial[0]) || !Number.isSafeInteger(partial[1]) || partial[1] <= 0)) throw new FetchSyntaxError('Invalid partial range');
    if (node.section) {
      const base = name.replace(/\.PEEK$/, '');
      if (base !== 'BODY' && base !== 'BINARY' && base !== 'BINARY.SIZE') throw new FetchSyntaxError(`${name} takes no section`);
      if (base === 'BINARY.SIZE' && (partial || name.endsWith('.PEEK'))) throw new FetchSyntaxError('BINARY.SIZE takes no partial range');
      const section = parseSection(node.section, base !== 'BODY');
      items.push({ kind: 'section', name: base as 'BODY', peek: name.endsWith('.PEEK') || base === 'BINARY.SIZE', section, partial, label: sectionLabel(section) });
    } else if (name === 'RFC822' || name === 'RFC822.HEADER' || name === 'RFC822.TEXT') {
      const part = name === 'RFC822' ? '' : name === 'RFC822.HEADER' ? 'HEADER' : 'TEXT';
      items.push({ kind: 'section', name, peek: name === 'RFC822.HEADER', section: { path: [], part, fields: [] }, partial: null, label: '' });
    } else if (SIMPLE.has(name) && !partial) {
      items.push({ kind: name as 'UID' });
    } else {
      throw new FetchSyntaxError(`Unknown FETCH data item ${name.slice(0, 40)}`);
    }
  }
  return items;
}

/**
 * What a FETCH needs from the store: the flags alone, parts of the cached summary (ENVELOPE needs only the header;
 * BODYSTRUCTURE and BODY the whole MIME structure), or the message bytes.
 */
export function needsOf(items: readonly FetchItem[]) {
  return {
    envelope: items.some((i) => i.kind === 'ENVELOPE'),
    structure: items.some((i) => i.kind === 'BODYSTRUCTURE' || i.kind === 'BODY'),
    content: items.some((i) => i.kind === 'section'),
    setsSeen: items.some((i) => i.kind === 'section' && !i.peek),
  };
}

/**
 * ENVELOPE, BODYSTRUCTURE and BODY of a message, kept in the store after the first FETCH that needs them. The
 * envelope alone is kept when only it was asked for (what a client's first sync asks), which needs the header only.
 */
export interface ImapSummary {
  envelope: string;
  bodystructure: string;
  body: string;
}

export function summarize(content: string, tree: MimeNode = parseMime(content)): ImapSummary {
  return { envelope: envelope(tree.entity), bodystructure: bodyStructure(content, tree, true), body: bodyStructure(content, tree, false) };
}

/** The ENVELOPE from the message's header (the bytes up to the empty line are enough): what summarize() gives. */
export const envelopeOf = (head: string): string => envelope(parseEntity(head));

export interface FetchedMessage {
  seq: number;
  state: MessageState;
  size: number;
  storedAt: Date;
  summary: Partial<ImapSummary> | null;
  /** The whole message, when a section was asked for. */
  content: Buffer | null;
}

/**
 * One FETCH response as pieces to write in order: binary strings (see wire.ts) and, for whole-message sections,
 * the stored bytes themselves, which need no conversion (a full sync is mostly those).
 */
export type FetchResponse = Array<string | Buffer>;

export const flagList = (state: MessageState): string => {
  const flags: string[] = [];
  if (state.seen) flags.push('\\Seen');
  if (state.answered) flags.push('\\Answered');
  if (state.flagged) flags.push('\\Flagged');
  if (state.draft) flags.push('\\Draft');
  if (state.deleted) flags.push('\\Deleted');
  return list([...flags, ...state.keywords]);
};

/** The bytes a section names, or null when the message has no such part (answered as NIL). */
function sectionBytes(content: string, tree: () => MimeNode, item: Extract<FetchItem, { kind: 'section' }>): string | null {
  const { section } = item;
  if (section.path.length === 0 && section.part === '') return content;
  const root = tree();
  const node = section.path.length ? partAt(root, section.path) : root;
  if (!node) return null;
  if (item.name === 'BINARY' || item.name === 'BINARY.SIZE') return node.type === 'multipart' ? null : decodedBody(content, node);
  // HEADER and TEXT of a numbered part apply to the message/rfc822 it is (RFC 9051 §6.4.5).
  const message = section.path.length === 0 ? node : node.type === 'message' ? node.children[0] ?? null : null;
  switch (section.part) {
    case '':
      return content.slice(node.bodyStart, node.end);
    case 'MIME':
      return node.entity.head;
    case 'HEADER':
      return message ? message.entity.head : null;
    case 'HEADER.FIELDS':
    case 'HEADER.FIELDS.NOT':
      return message ? headerFields(message.entity, section.fields, section.part === 'HEADER.FIELDS.NOT') : null;
    case 'TEXT':
      return message ? content.slice(message.bodyStart, message.end) : null;
  }
}

/**
 * A FETCH response being written: data items in the order added, each once; text runs are kept as one string (a
 * whole sync renders tens of thousands of these: no closures, few pieces).
 */
class FetchResponseBuilder {
  readonly #out: FetchResponse = [];
  readonly #seen = new Set<string>();
  #text: string;

  constructor(seq: number) {
    this.#text = `* ${seq} FETCH (`;
  }

  /** A value as text, or bytes sent as a literal (a literal8, `~{n}`, when `literal8`). */
  add(key: string, value: string | Buffer, literal8 = false): void {
    if (this.#seen.has(key)) return;
    const separator = this.#seen.size ? ' ' : '';
    this.#seen.add(key);
    if (typeof value === 'string') {
      this.#text += `${separator}${key} ${value}`;
    } else {
      this.#out.push(`${this.#text}${separator}${key} ${literal8 ? '~' : ''}{${value.length}}\r\n`, value);
      this.#text = '';
    }
  }

  end(): FetchResponse {
    this.#out.push(`${this.#text})\r\n`);
    return this.#out;
  }
}

function summaryPart(message: FetchedMessage, part: keyof ImapSummary): string {
  const value = message.summary?.[part];
  if (value === undefined) throw new Error(`No ${part} for UID ${message.state.uid}`);
  return value;
}

/** One FETCH response's data items for a message, in the order asked. */
export function renderFetch(items: readonly FetchItem[], message: FetchedMessage, options: { condstore: boolean; uid: boolean }): FetchResponse {
  const response = new FetchResponseBuilder(message.seq);
  let text: string | null = null;
  let tree: MimeNode | null = null;
  if (options.uid) response.add('UID', String(message.state.uid));
  for (const item of items) {
    switch (item.kind) {
      case 'UID': response.add('UID', String(message.state.uid)); break;
      case 'FLAGS': response.add('FLAGS', flagList(message.state)); break;
      case 'INTERNALDATE': response.add('INTERNALDATE', dateTime(message.storedAt)); break;
      case 'RFC822.SIZE': response.add('RFC822.SIZE', String(message.size)); break;
      case 'MODSEQ': response.add('MODSEQ', `(${message.state.modseq})`); break;
      case 'ENVELOPE': response.add('ENVELOPE', summaryPart(message, 'envelope')); break;
      case 'BODYSTRUCTURE': response.add('BODYSTRUCTURE', summaryPart(message, 'bodystructure')); break;
      case 'BODY': response.add('BODY', summaryPart(message, 'body')); break;
      case 'section': {
        // The whole message is sent from the stored bytes as they are; parts are cut from its binary string.
        let bytes: string | Buffer | null;
        if (item.section.path.length === 0 && item.section.part === '') {
          bytes = message.content!;
        } else {
          const binary = (text ??= message.content!.toString('latin1'));
          bytes = sectionBytes(binary, () => (tree ??= parseMime(binary)), item);
        }
        if (item.name === 'BINARY.SIZE') {
          response.add(`BINARY.SIZE[${item.label}]`, bytes === null ? '0' : String(bytes.length));
          break;
        }
        const name = item.name === 'BINARY' ? 'BINARY' : item.name.startsWith('RFC822') ? item.name : 'BODY';
        const key = name === 'BODY' || name === 'BINARY' ? `${name}[${item.label}]${item.partial ? `<${item.partial[0]}>` : ''}` : name;
        if (bytes === null) {
          response.add(key, 'NIL');
          break;
        }
        if (typeof bytes !== 'string') {
          const slice = item.partial ? bytes.subarray(item.partial[0], item.partial[0] + item.partial[1]) : bytes;
          response.add(key, slice, name === 'BINARY' && slice.includes(0));
          break;
        }
        const slice = item.partial ? bytes.slice(item.partial[0], item.partial[0] + item.partial[1]) : bytes;
        // BINARY content may hold NULs: a literal8 (RFC 3516 §4.2).
        response.add(key, name === 'BINARY' && slice.includes('\0') ? `~${literal(slice)}` : literal(slice));
        break;
      }
    }
  }
  if (options.condstore) response.add('MODSEQ', `(${message.state.modseq})`);
  return response.end();
}
