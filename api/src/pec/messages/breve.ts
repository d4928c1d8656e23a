import { createHash } from 'node:crypto';
import mimeFuncs from 'nodemailer/lib/mime-funcs/index.js';
import {
  decodeHeaderText,
  firstValue,
  formatFields,
  fromBinary,
  mapMultipartParts,
  parseEntity,
  toBinary,
  withCrlf,
  type RawEntity,
} from './raw-entity.ts';

/**
 * The original message as a short delivery receipt carries it (spec §4.10, RFC 6109 §3.3.2.2): every MIME part with
 * a `name` or `filename` parameter, and every attached message, becomes a text/plain `<filename>.hash` part holding
 * the SHA-1 of the part's body as encoded on the wire (40 lowercase hex digits). The sender can then prove which
 * attachment was delivered by hashing its own copy, without the receipt carrying the attachment again.
 * Everything else is kept byte for byte. S/MIME originals follow the RFC: the signature part of multipart/signed is
 * left as it is (it will no longer verify), and opaque application/pkcs7-mime content is left whole.
 */
export function toShortForm(postacert: Buffer): Buffer {
  return fromBinary(shorten(withCrlf(toBinary(postacert))));
}

/** Name of the replacement part when an attached message carries no file name. */
const UNNAMED_MESSAGE = 'messaggio.eml';

/** SHA-1 over a part body exactly as it is encoded (the hash a short receipt publishes). */
const encodedBodyHash = (body: Buffer): string => createHash('sha1').update(body).digest('hex');

function shorten(binary: string): string {
  const entity = parseEntity(binary);
  const contentType = mimeFuncs.parseHeaderValue(firstValue(entity, 'Content-Type') ?? 'text/plain');
  const type = contentType.value.toLowerCase();
  if (type === 'application/pkcs7-mime' || type === 'application/x-pkcs7-mime') return binary;

  const filename = attachmentName(entity, contentType.params);
  if (filename !== undefined || type === 'message/rfc822') return hashPart(entity, filename ?? UNNAMED_MESSAGE);

  const boundary = contentType.params.boundary;
  if (!type.startsWith('multipart/') || !boundary) return binary;
  const signed = type === 'multipart/signed';
  return entity.head + mapMultipartParts(entity.body, boundary, (part, index) => (signed && index === 1 ? part : shorten(part)));
}

function attachmentName(entity: RawEntity, contentTypeParams: Record<string, string>): string | undefined {
  const disposition = firstValue(entity, 'Content-Disposition');
  const name = (disposition && mimeFuncs.parseHeaderValue(disposition).params.filename) || contentTypeParams.name;
  return name ? decodeHeaderText(name) : undefined;
}

/** Keeps the part's non-Content-* fields (a top-level entity keeps From, To, …) and swaps content for the hash. */
function hashPart(entity: RawEntity, filename: string): string {
  const hashName = `${filename}.hash`;
  const kept = entity.fields.filter((field) => !/^content-/i.test(field.name));
  const contentFields = [
    ['Content-Type', mimeFuncs.buildHeaderValue({ value: 'text/plain', params: { charset: 'us-ascii', name: hashName } })],
    ['Content-Transfer-Encoding', '7bit'],
    ['Content-Disposition', mimeFuncs.buildHeaderValue({ value: 'attachment', params: { filename: hashName } })],
  ].map(([name, value]) => ({ name: name!, raw: mimeFuncs.foldLines(`${name}: ${value}`, 76) }));
  return formatFields([...kept, ...contentFields]) + encodedBodyHash(fromBinary(entity.body));
}
