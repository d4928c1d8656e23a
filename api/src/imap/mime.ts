/// <reference path="../types/mail-libs.d.ts" />
import libmime from 'libmime';
import addressparser from 'nodemailer/lib/addressparser/index.js';
import { fieldsNamed, fieldValue, parseEntity, type HeaderField, type RawEntity } from '../pec/messages/raw-entity.ts';
import { list, nstr, str } from './wire.ts';

/**
 * A message's MIME structure with the byte ranges IMAP addresses (RFC 9051 §6.4.5: BODY[1.2.MIME], BODY[TEXT]…),
 * read from the stored bytes without decoding them. Everything works on binary strings (see wire.ts).
 */
export interface MimeNode {
  /** Where the part's header starts, where its body starts and ends, in the whole message. */
  start: number;
  bodyStart: number;
  end: number;
  entity: RawEntity;
  type: string;
  subtype: string;
  params: Record<string, string>;
  /** Multipart children, or the one child of a message/rfc822 part (the embedded message). */
  children: MimeNode[];
}

/** Deeper or wider structures than these are shown flat: a part that is not split further. */
const MAX_DEPTH = 30;
const MAX_PARTS = 1000;

function contentType(entity: RawEntity, parentSubtype: string | null): { type: string; subtype: string; params: Record<string, string> } {
  const [field] = fieldsNamed(entity, 'content-type');
  const fallback = parentSubtype === 'digest' ? 'message/rfc822' : 'text/plain';
  const parsed = libmime.parseHeaderValue(field ? fieldValue(field) : fallback);
  const [type, subtype] = parsed.value.toLowerCase().split('/');
  if (!type || !subtype) return { type: 'text', subtype: 'plain', params: { charset: 'us-ascii' } };
  const params = { ...parsed.params };
  if (type === 'text' && !params.charset) params.charset = 'us-ascii';
  return { type, subtype, params };
}

/** The body parts between the delimiter lines of a multipart body (RFC 2046 §5.1.1), as [start, end) ranges. */
function splitParts(message: string, bodyStart: number, end: number, boundary: string): Array<[number, number]> {
  const delimiter = `--${boundary}`;
  const parts: Array<[number, number]> = [];
  let partStart = -1;
  let at = bodyStart;
  while (at <= end) {
    const found = message.indexOf(delimiter, at);
    if (found < 0 || found >= end) break;
    const atLineStart = found === bodyStart || message.startsWith('\r\n', found - 2);
    const after = found + delimiter.length;
    if (!atLineStart) {
      at = after;
      continue;
    }
    const closing = message.startsWith('--', after);
    let lineEnd = message.indexOf('\r\n', after);
    if (lineEnd < 0 || lineEnd > end) lineEnd = end;
    // "--boundary" followed by more than blanks is the start of a longer line, not a delimiter.
    if (!/^(--)?[ \t]*$/.test(message.slice(after, lineEnd))) {
      at = after;
      continue;
    }
    if (partStart >= 0) parts.push([partStart, found === bodyStart ? found : found - 2]);
    if (closing) return parts;
    partStart = Math.min(lineEnd + 2, end);
    at = partStart;
  }
  if (partStart >= 0 && partStart < end) parts.push([partStart, end]);
  return parts;
}

export function parseMime(message: string): MimeNode {
  let count = 0;
  const parse = (start: number, end: number, depth: number, parentSubtype: string | null): MimeNode => {
    count++;
    const entity = parseEntity(message.slice(start, end));
    const bodyStart = start + entity.head.length;
    const { type, subtype, params } = contentType(entity, parentSubtype);
    const node: MimeNode = { start, bodyStart, end, entity, type, subtype, params, children: [] };
    if (depth >= MAX_DEPTH || count >= MAX_PARTS) return node;
    if (type === 'multipart' && params.boundary) {
      for (const [partStart, partEnd] of splitParts(message, bodyStart, end, params.boundary)) {
        if (count >= MAX_PARTS) break;
        node.children.push(parse(partStart, partEnd, depth + 1, subtype));
      }
    } else if ((type === 'message' && (subtype === 'rfc822' || subtype === 'global')) && bodyStart < end) {
      node.children.push(parse(bodyStart, end, depth + 1, null));
    }
    return node;
  };
  return parse(0, message.length, 0, null);
}

const header = (entity: RawEntity, name: string): string | null => {
  const [field] = fieldsNamed(entity, name);
  return field ? fieldValue(field) : null;
};

function addressList(entity: RawEntity, name: string): string | null {
  const value = header(entity, name);
  if (!value) return null;
  const items: string[] = [];
  const address = (a: { name: string; address?: string | undefined }) => {
    const at = (a.address ?? '').lastIndexOf('@');
    const mailbox = at < 0 ? (a.address ?? '') : a.address!.slice(0, at);
    const host = at < 0 ? null : a.address!.slice(at + 1);
    return list([nstr(a.name || null), 'NIL', nstr(mailbox), nstr(host)]);
  };
  for (const parsed of addressparser(value)) {
    if ('group' in parsed) {
      items.push(list(['NIL', 'NIL', nstr(parsed.name), 'NIL']));
      for (const member of parsed.group) items.push(address(member));
      items.push('(NIL NIL NIL NIL)');
    } else {
      items.push(address(parsed));
    }
  }
  return items.length ? list(items) : null;
}

/** The ENVELOPE of a message (RFC 9051 §7.5.2): header values as written, addresses parsed. */
export function envelope(entity: RawEntity): string {
  const from = addressList(entity, 'from');
  return list([
    nstr(header(entity, 'date')),
    nstr(header(entity, 'subject')),
    from ?? 'NIL',
    addressList(entity, 'sender') ?? from ?? 'NIL',
    addressList(entity, 'reply-to') ?? from ?? 'NIL',
    addressList(entity, 'to') ?? 'NIL',
    addressList(entity, 'cc') ?? 'NIL',
    addressList(entity, 'bcc') ?? 'NIL',
    nstr(header(entity, 'in-reply-to')),
    nstr(header(entity, 'message-id')),
  ]);
}

const paramList = (params: Record<string, string>): string => {
  const entries = Object.entries(params);
  return entries.length ? list(entries.flatMap(([k, v]) => [str(k.toUpperCase()), str(v)])) : 'NIL';
};

function disposition(entity: RawEntity): string {
  const value = header(entity, 'content-disposition');
  if (!value) return 'NIL';
  const parsed = libmime.parseHeaderValue(value);
  return list([str(parsed.value.toUpperCase()), paramList(parsed.params)]);
}

const lineCount = (message: string, start: number, end: number): number => {
  let lines = 0;
  for (let at = message.indexOf('\n', start); at >= 0 && at < end; at = message.indexOf('\n', at + 1)) lines++;
  return end > start && !message.startsWith('\n', end - 1) ? lines + 1 : lines;
};

/** BODYSTRUCTURE (with extension data) or BODY (without) of a part (RFC 9051 §7.5.2). */
export function bodyStructure(message: string, node: MimeNode, extended: boolean): string {
  const { entity } = node;
  if (node.type === 'multipart') {
    const children = node.children.length ? node.children.map((child) => bodyStructure(message, child, extended)).join('') : bodyStructure(message, { ...node, type: 'text', subtype: 'plain', children: [] }, extended);
    const ext = extended ? ` ${paramList(node.params)} ${disposition(entity)} ${nstr(header(entity, 'content-language'))} ${nstr(header(entity, 'content-location'))}` : '';
    return `(${children} ${str(node.subtype.toUpperCase())}${ext})`;
  }
  const size = node.end - node.bodyStart;
  const fields = [
    str(node.type.toUpperCase()), str(node.subtype.toUpperCase()), paramList(node.params),
    nstr(header(entity, 'content-id')), nstr(header(entity, 'content-description')),
    str((header(entity, 'content-transfer-encoding') ?? '7bit').toUpperCase()), String(size),
  ];
  const embedded = node.children[0];
  if (node.type === 'message' && embedded) {
    fields.push(envelope(embedded.entity), bodyStructure(message, embedded, extended), String(lineCount(message, node.bodyStart, node.end)));
  } else if (node.type === 'text') {
    fields.push(String(lineCount(message, node.bodyStart, node.end)));
  }
  if (extended) fields.push(nstr(header(entity, 'content-md5')), disposition(entity), nstr(header(entity, 'content-language')), nstr(header(entity, 'content-location')));
  return list(fields);
}

/** The part a section's number path names (`1.2`), or null when there is none. Part 1 of a non-multipart is itself. */
export function partAt(root: MimeNode, path: readonly number[]): MimeNode | null {
  let node: MimeNode = root;
  for (const index of path) {
    // Inside a message/rfc822 part, numbers address the embedded message's parts.
    if (node.type === 'message' && node.children[0]) node = node.children[0];
    if (node.type === 'multipart') {
      const child = node.children[index - 1];
      if (!child) return null;
      node = child;
    } else if (index !== 1) {
      return null;
    }
  }
  return node;
}

/** The header fields named (or, with `not`, all but those), with the empty line that ends a header. */
export function headerFields(entity: RawEntity, names: readonly string[], not: boolean): string {
  const wanted = new Set(names.map((n) => n.toLowerCase()));
  const keep = (field: HeaderField) => wanted.has(field.name.toLowerCase()) !== not;
  return `${entity.fields.filter(keep).map((f) => `${f.raw}\r\n`).join('')}\r\n`;
}

/** Decodes a leaf part's body for BINARY[…] (RFC 3516): base64 and quoted-printable undone, others as they are. */
export function decodedBody(message: string, node: MimeNode): string | null {
  const body = message.slice(node.bodyStart, node.end);
  const encoding = (header(node.entity, 'content-transfer-encoding') ?? '7bit').toLowerCase();
  if (encoding === 'base64') return Buffer.from(body.replace(/[^A-Za-z0-9+/=]/g, ''), 'base64').toString('latin1');
  if (encoding === 'quoted-printable') {
    return body.replace(/=\r?\n/g, '').replace(/=([0-9A-Fa-f]{2})/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)));
  }
  if (['7bit', '8bit', 'binary'].includes(encoding)) return body;
  return null;
}
