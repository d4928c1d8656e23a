import { createHash } from 'node:crypto';
import MimeNode from 'nodemailer/lib/mime-node/index.js';
import type { ReadableText } from './texts.ts';

/**
 * The body every PEC system message signs (spec §5, RFC 6109 §4.3), in the layout real providers use:
 *
 *   multipart/mixed
 *     multipart/alternative
 *       text/plain; charset=iso-8859-1     quoted-printable, inline
 *       text/html; charset=iso-8859-1      quoted-printable, inline
 *     application/xml; name=daticert.xml   base64, inline          (all but the anomaly envelope)
 *     message/rfc822; name=postacert.eml   7bit/8bit/binary, inline (envelopes, full and short delivery receipts)
 */
export interface SystemBody {
  text: ReadableText;
  daticert?: string;
  /** Embedded whole as postacert.eml. */
  original?: Buffer;
}

/**
 * The complete multipart/mixed entity: its Content-Type field, an empty line, the body; CRLF line ends. This is
 * exactly what the signer signs, so it must not change afterwards.
 */
export async function buildSystemEntity(body: SystemBody): Promise<Buffer> {
  // MimeNode completes a root node into a whole message (Date, Message-ID, MIME-Version). The signed entity is the
  // bare multipart/mixed, so it is built as the child of a root that is never serialised. Boundaries derive from the
  // content instead of randomness: the same input gives the same bytes, and a boundary cannot occur in the content
  // it is a hash of.
  const root = new MimeNode(undefined, { baseBoundary: boundarySeed(body) });
  const mixed = root.createChild('multipart/mixed');

  const alternative = mixed.createChild('multipart/alternative');
  for (const [type, content] of [['text/plain', body.text.plain], ['text/html', body.text.html]] as const) {
    alternative
      .createChild(`${type}; charset=iso-8859-1`)
      .setHeader('Content-Transfer-Encoding', 'quoted-printable')
      .setHeader('Content-Disposition', 'inline')
      .setContent(content);
  }

  if (body.daticert !== undefined) {
    // Not text/*: MimeNode base64-encodes it, as real providers do.
    mixed
      .createChild('application/xml', { filename: 'daticert.xml' })
      .setHeader('Content-Disposition', 'inline')
      .setContent(Buffer.from(body.daticert, 'utf8'));
  }

  if (body.original !== undefined) {
    // RFC 2046 §5.2.1 allows only 7bit, 8bit or binary for message/rfc822: the original stays as it is, labelled.
    mixed
      .createChild('message/rfc822', { filename: 'postacert.eml' })
      .setHeader('Content-Disposition', 'inline')
      .setHeader('Content-Transfer-Encoding', identityEncoding(body.original))
      .setContent(body.original);
  }

  return mixed.build();
}

function boundarySeed(body: SystemBody): string {
  const hash = createHash('sha256').update(body.text.plain).update(body.text.html);
  if (body.daticert !== undefined) hash.update(body.daticert);
  if (body.original !== undefined) hash.update(body.original);
  return hash.digest('hex').slice(0, 24);
}

const MAX_LINE_OCTETS = 998;

function identityEncoding(content: Buffer): '7bit' | '8bit' | 'binary' {
  const lines = content.toString('latin1').split('\r\n');
  if (content.includes(0) || lines.some((line) => line.length > MAX_LINE_OCTETS || /[\r\n]/.test(line))) return 'binary';
  return content.some((octet) => octet > 0x7f) ? '8bit' : '7bit';
}
