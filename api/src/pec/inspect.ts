// First look at a message received from another provider or from the Internet: what kind of PEC message it claims
// to be (spec §3, from its top-level headers), the signed bytes an S/MIME verifier needs, and the certification
// data and original message inside the signed content. Nothing here trusts the headers: they are outside the
// signature, so the claim must be confirmed by the verifier and by the signed daticert.xml.
import type { Transform } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { finished } from 'node:stream/promises';
import { Splitter, type SplitterChunk } from '@zone-eu/mailsplit';
import { DaticertError, parseDaticert, type DaticertTipo, type ParsedDaticert } from './daticert-parse.ts';

/** X-Ricevuta values: the daticert types except the transport envelope's, which travels in X-Trasporto. */
export type NotificationType = Exclude<DaticertTipo, 'posta-certificata'>;

const NOTIFICATION_TYPES: readonly NotificationType[] = [
  'accettazione',
  'non-accettazione',
  'presa-in-carico',
  'avvenuta-consegna',
  'errore-consegna',
  'preavviso-errore-consegna',
  'rilevazione-virus',
];

export type PecClassification =
  | { kind: 'notification'; notification: NotificationType }
  | { kind: 'transport-envelope' }
  | { kind: 'anomaly-envelope' }
  /** PEC headers are present but their values are not the protocol's. */
  | { kind: 'malformed'; reason: string }
  | { kind: 'not-pec' };

export interface SignedBody {
  /** multipart/signed (what providers send) or opaque application/(x-)pkcs7-mime. */
  format: 'multipart/signed' | 'pkcs7-mime';
  /** The top-level Content-Type value, unfolded, with its parameters (boundary, protocol, micalg). */
  contentType: string;
  /** The exact bytes after the header block, a view into the received message. */
  body: Buffer;
}

export type DaticertPart =
  | { status: 'absent' }
  | { status: 'parsed'; raw: Buffer; value: ParsedDaticert }
  | { status: 'invalid'; raw?: Buffer; error: string };

export interface PecInspection {
  /** Top-level header fields by lower-case name, unfolded and trimmed, in message order; not RFC 2047-decoded. */
  headers: ReadonlyMap<string, readonly string[]>;
  classification: PecClassification;
  signed?: SignedBody;
  /** From the signed multipart content only; an opaque signature hides it until the CMS is unwrapped. */
  daticert: DaticertPart;
  /** The original message (postacert.eml part), transfer-decoded; for 7bit/8bit/binary these are its exact bytes. */
  postacert?: Buffer;
}

export async function inspectPecMessage(raw: Buffer): Promise<PecInspection> {
  const { headerEnd, bodyStart } = locateBody(raw);
  const headers = parseHeaders(raw.subarray(0, headerEnd).toString('utf8'));
  const inspection: PecInspection = { headers, classification: classify(headers), daticert: { status: 'absent' } };

  const contentType = headers.get('content-type')?.[0];
  const mediaType = contentType?.split(';')[0]!.trim().toLowerCase();
  const body = raw.subarray(bodyStart);
  if (contentType !== undefined && (mediaType === 'application/pkcs7-mime' || mediaType === 'application/x-pkcs7-mime')) {
    inspection.signed = { format: 'pkcs7-mime', contentType, body };
  }
  if (contentType !== undefined && mediaType === 'multipart/signed') {
    inspection.signed = { format: 'multipart/signed', contentType, body };
    const { daticert, postacert } = await readSignedParts(raw);
    inspection.daticert = daticert;
    if (postacert !== undefined) inspection.postacert = postacert;
  }
  return inspection;
}

// ---------------------------------------------------------------------------------------------------------------
// Top-level header block

/** The header block ends at the first empty line, whether lines end in CRLF or in a bare LF. */
function locateBody(raw: Buffer): { headerEnd: number; bodyStart: number } {
  let lineStart = 0;
  for (let lf = raw.indexOf(0x0a); lf !== -1; lf = raw.indexOf(0x0a, lineStart)) {
    const contentEnd = lf > lineStart && raw[lf - 1] === 0x0d ? lf - 1 : lf;
    if (contentEnd === lineStart) return { headerEnd: lineStart, bodyStart: lf + 1 };
    lineStart = lf + 1;
  }
  return { headerEnd: raw.length, bodyStart: raw.length };
}

function parseHeaders(block: string): Map<string, string[]> {
  const fields: string[] = [];
  for (const line of block.split(/\r?\n/)) {
    // Unfolding (RFC 5322 §2.2.3) removes the line break before whitespace and keeps the whitespace.
    if (/^[ \t]/.test(line) && fields.length > 0) fields[fields.length - 1] += line;
    else if (line !== '') fields.push(line);
  }
  const headers = new Map<string, string[]>();
  for (const field of fields) {
    const colon = field.indexOf(':');
    if (colon <= 0) continue; // not a header field, e.g. an mbox "From " line
    const name = field.slice(0, colon).trim().toLowerCase();
    headers.set(name, [...(headers.get(name) ?? []), field.slice(colon + 1).trim()]);
  }
  return headers;
}

function classify(headers: ReadonlyMap<string, readonly string[]>): PecClassification {
  const ricevuta = headers.get('x-ricevuta');
  if (ricevuta !== undefined) {
    if (ricevuta.length > 1) return { kind: 'malformed', reason: `${ricevuta.length} X-Ricevuta header fields` };
    const value = ricevuta[0]!.toLowerCase();
    const notification = NOTIFICATION_TYPES.find((type) => type === value);
    if (notification === undefined) return { kind: 'malformed', reason: `unknown X-Ricevuta value "${ricevuta[0]}"` };
    return { kind: 'notification', notification };
  }
  const trasporto = headers.get('x-trasporto');
  if (trasporto !== undefined) {
    if (trasporto.length > 1) return { kind: 'malformed', reason: `${trasporto.length} X-Trasporto header fields` };
    const value = trasporto[0]!.toLowerCase();
    if (value === 'posta-certificata') return { kind: 'transport-envelope' };
    if (value === 'errore') return { kind: 'anomaly-envelope' };
    return { kind: 'malformed', reason: `unknown X-Trasporto value "${trasporto[0]}"` };
  }
  return { kind: 'not-pec' };
}

// ---------------------------------------------------------------------------------------------------------------
// Parts of the signed content

interface WantedPart {
  chunks: Buffer[];
  decode: () => Transform;
}

/**
 * Walks the MIME tree with mailsplit, which hands over each part's body still transfer-encoded and leaves an
 * embedded message/rfc822 unparsed, so postacert.eml comes out byte for byte. Only direct children of the signed
 * content (part 1 of multipart/signed) count: the provider's multipart/mixed holds the text, daticert.xml and
 * postacert.eml side by side (spec §5), and a daticert.xml anywhere else was not put there by the provider.
 */
async function readSignedParts(raw: Buffer): Promise<{ daticert: DaticertPart; postacert?: Buffer }> {
  const daticertParts: WantedPart[] = [];
  const postacertParts: WantedPart[] = [];
  let current: WantedPart | undefined;

  const splitter = new Splitter({ ignoreEmbedded: true });
  splitter.on('data', (chunk: SplitterChunk) => {
    if (chunk.type === 'node') {
      current = undefined;
      const partNr = chunk.partNr;
      const filename = typeof chunk.filename === 'string' ? chunk.filename.toLowerCase() : '';
      const inSignedContent = Array.isArray(partNr) && partNr.length === 2 && partNr[0] === 1;
      if (!inSignedContent || (filename !== 'daticert.xml' && filename !== 'postacert.eml')) return;
      current = { chunks: [], decode: () => chunk.getDecoder() };
      (filename === 'daticert.xml' ? daticertParts : postacertParts).push(current);
    } else if (chunk.type === 'body' && current !== undefined) {
      current.chunks.push(chunk.value);
    }
  });
  splitter.end(raw);
  await finished(splitter);

  const postacert = postacertParts[0] === undefined ? undefined : await decodePart(postacertParts[0]);
  const result = (daticert: DaticertPart) => (postacert === undefined ? { daticert } : { daticert, postacert });
  if (daticertParts.length === 0) return result({ status: 'absent' });
  if (daticertParts.length > 1) {
    return result({ status: 'invalid', error: `the signed content holds ${daticertParts.length} daticert.xml parts` });
  }
  const daticertRaw = await decodePart(daticertParts[0]!);
  try {
    return result({ status: 'parsed', raw: daticertRaw, value: parseDaticert(daticertRaw) });
  } catch (error) {
    if (!(error instanceof DaticertError)) throw error;
    return result({ status: 'invalid', raw: daticertRaw, error: error.message });
  }
}

async function decodePart(part: WantedPart): Promise<Buffer> {
  const decoder = part.decode();
  decoder.end(Buffer.concat(part.chunks));
  return buffer(decoder);
}
