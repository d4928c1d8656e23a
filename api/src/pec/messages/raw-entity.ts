/**
 * Byte-preserving access to RFC 5322 messages and MIME entities. PEC embeds the original message unmodified and
 * hashes attachments as encoded (spec §4.4, §4.10), so these helpers never decode or re-encode what they do not
 * change. Entities are handled as binary strings (latin1: one character per byte), which lets 8-bit content survive
 * string operations; `Buffer.from(s, 'latin1')` turns them back into the same bytes.
 */

export interface HeaderField {
  /** As written, without the colon. */
  name: string;
  /** The whole field as written, folding included, without the final CRLF. */
  raw: string;
}

export interface RawEntity {
  fields: HeaderField[];
  /** Everything before the body: the header fields and the empty line that ends them. */
  head: string;
  body: string;
}

export const toBinary = (bytes: Buffer): string => bytes.toString('latin1');
export const fromBinary = (binary: string): Buffer => Buffer.from(binary, 'latin1');

/**
 * Messages travel with CRLF line ends (RFC 5322 §2.1). A message stored with bare LF would be rewritten by the first
 * SMTP hop, breaking the signature over the system message that embeds it, so it is canonicalised before embedding.
 */
export const withCrlf = (binary: string): string => binary.replace(/\r?\n/g, '\r\n');

export function parseEntity(binary: string): RawEntity {
  const end = binary.startsWith('\r\n') ? 0 : binary.indexOf('\r\n\r\n');
  const headerBlock = end < 0 ? binary : binary.slice(0, end);
  const head = end < 0 ? binary : binary.slice(0, end === 0 ? 2 : end + 4);
  const fields: HeaderField[] = [];
  for (const line of headerBlock ? headerBlock.split('\r\n') : []) {
    const last = fields[fields.length - 1];
    if (last && /^[ \t]/.test(line)) last.raw += `\r\n${line}`;
    else fields.push({ name: line.slice(0, Math.max(line.indexOf(':'), 0)).trim(), raw: line });
  }
  return { fields, head, body: binary.slice(head.length) };
}

/** The field value unfolded (RFC 5322 §2.2.3) and trimmed, still in its wire encoding. */
export function fieldValue(field: HeaderField): string {
  return field.raw.slice(field.raw.indexOf(':') + 1).replace(/\r\n(?=[ \t])/g, '').trim();
}

export function fieldsNamed(entity: RawEntity, name: string): HeaderField[] {
  const wanted = name.toLowerCase();
  return entity.fields.filter((field) => field.name.toLowerCase() === wanted);
}

export function firstValue(entity: RawEntity, name: string): string | undefined {
  const [field] = fieldsNamed(entity, name);
  return field && fieldValue(field);
}

export function formatFields(fields: readonly HeaderField[]): string {
  return `${fields.map((field) => `${field.raw}\r\n`).join('')}\r\n`;
}

const escapeRegExp = (value: string): string => value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Rewrites each body part of a multipart body through `map` and keeps everything else (preamble, delimiter lines,
 * epilogue) byte for byte. A part is what lies between two delimiter lines; the CRLF before a delimiter belongs to
 * the delimiter (RFC 2046 §5.1.1), so it is not part of what `map` receives.
 */
export function mapMultipartParts(body: string, boundary: string, map: (part: string, index: number) => string): string {
  const delimiter = new RegExp(`(?:^|\\r\\n)--${escapeRegExp(boundary)}(--)?[ \\t]*(?:\\r\\n|$)`, 'g');
  let out = '';
  let cursor = 0;
  let partStart: number | undefined;
  let index = 0;
  for (const match of body.matchAll(delimiter)) {
    out += partStart === undefined ? body.slice(cursor, match.index) : map(body.slice(partStart, match.index), index++);
    out += match[0];
    cursor = match.index + match[0].length;
    partStart = match[1] ? undefined : cursor;
    if (match[1]) break;
  }
  // A body cut before its close delimiter still ends with a part.
  return out + (partStart === undefined ? body.slice(cursor) : map(body.slice(partStart), index));
}

/**
 * Human-readable text of a header value taken from a binary string: raw 8-bit bytes are read as UTF-8 (RFC 6532),
 * then RFC 2047 encoded words (and the RFC 2231 values that nodemailer's `parseHeaderValue` turns into them) are
 * decoded. Adjacent words are joined before decoding, because encoders split multi-byte characters across words.
 */
export function decodeHeaderText(binaryValue: string): string {
  const value = fromBinary(binaryValue).toString('utf8');
  const word = /=\?([^?]+)\?([bq])\?([^?]*)\?=/gi;
  let out = '';
  let cursor = 0;
  let pending: { charset: string; bytes: Buffer[] } | undefined;
  const flush = (): void => {
    if (pending) out += decodeBytes(Buffer.concat(pending.bytes), pending.charset);
    pending = undefined;
  };
  for (const match of value.matchAll(word)) {
    const between = value.slice(cursor, match.index);
    // Whitespace between two encoded words is not part of the text (RFC 2047 §6.2).
    if (!pending || /\S/.test(between)) {
      flush();
      out += between;
    }
    const charset = match[1]!.split('*')[0]!.toLowerCase();
    const text = match[3]!;
    const bytes =
      match[2]!.toUpperCase() === 'B'
        ? Buffer.from(text, 'base64')
        : fromBinary(text.replace(/_/g, ' ').replace(/=([0-9a-f]{2})/gi, (_, hex: string) => String.fromCharCode(parseInt(hex, 16))));
    if (pending && pending.charset !== charset) flush();
    pending ??= { charset, bytes: [] };
    pending.bytes.push(bytes);
    cursor = match.index + match[0].length;
  }
  flush();
  return out + value.slice(cursor);
}

function decodeBytes(bytes: Buffer, charset: string): string {
  try {
    return new TextDecoder(charset).decode(bytes);
  } catch {
    // An unknown charset label: latin1 keeps every byte visible rather than losing the name.
    return toBinary(bytes);
  }
}
