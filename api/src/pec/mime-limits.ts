import { finished } from 'node:stream/promises';
import { Splitter, type SplitterChunk } from '@zone-eu/mailsplit';
import { ProblemError } from '../http/problem.ts';
import { decodeHeaderText, fieldValue, parseEntity, toBinary, withCrlf } from './messages/raw-entity.ts';

/**
 * How complex a message may be. Every parser the engine runs over a message (mailparser for the access point's
 * checks and the virus scan, mailsplit for reading envelopes) gives up at 1 000 MIME nodes or a 1 MiB part header,
 * and deep nesting costs every recursive walker stack. A message is therefore measured once, at the door, against
 * limits well inside those: what passes here never makes a parser fail later, in a pipeline job that would retry it
 * for ever.
 */
export interface MimeLimits {
  /** MIME parts, counted as mailparser counts them: every entity, multiparts and inline embedded messages included. */
  maxParts: number;
  /** Levels of nesting: a single-part message is 1, a multipart with plain parts 2. */
  maxDepth: number;
  /** Bytes of one part's header block (the parsers' own limit). */
  maxHeaderBytes: number;
}

/** What the access point accepts from a holder (HTTP raw submission and SMTP submission alike). */
export const SUBMISSION_MIME_LIMITS: MimeLimits = { maxParts: 500, maxDepth: 20, maxHeaderBytes: 1024 * 1024 };

/**
 * What the receiving point accepts from other providers and the Internet: a transport envelope, a receipt with the
 * original message, or an anomaly envelope wraps a message that some access point accepted in a few more parts
 * (signed multipart, text, daticert.xml, signature) and levels; this leaves room for that wrapping, twice.
 */
export const INBOUND_MIME_LIMITS: MimeLimits = { maxParts: 550, maxDepth: 30, maxHeaderBytes: 1024 * 1024 };

const tooComplex = (detail: string, limit: Record<string, number>): ProblemError =>
  new ProblemError(422, 'message_too_complex', 'Message too complex', detail, { limit });

export const invalidMessage = (detail: string): ProblemError => new ProblemError(400, 'invalid_message', 'Invalid message', detail);

interface MeasuredNode {
  parentNode: MeasuredNode | false;
}

function depthOf(node: MeasuredNode): number {
  let depth = 1;
  for (let parent = node.parentNode; parent; parent = parent.parentNode) depth++;
  return depth;
}

/**
 * Refuses, as a problem, a message the engine cannot take safely: 422 `message_too_complex` past the limits above
 * (the detail names the limit), 400 `invalid_message` for a header field that carries a NUL character (RFC 5322
 * allows none, and PostgreSQL cannot store one in text) or a structure the MIME parser cannot read. Both doors call
 * it before anything is stored; SMTP answers these problems with a permanent 554.
 */
export async function assertProcessableMessage(raw: Buffer, limits: MimeLimits): Promise<void> {
  // The parser's own limits sit one past ours, so that our counting, not its error, decides (its error is the backstop).
  const splitter = new Splitter({ maxChildNodes: limits.maxParts + 1, maxHeadSize: limits.maxHeaderBytes });
  let parts = 0;
  let refusal: ProblemError | undefined;
  let rootHeader: Buffer | undefined;
  splitter.on('data', (chunk: SplitterChunk) => {
    if (chunk.type !== 'node' || refusal) return;
    parts++;
    rootHeader ??= chunk.getHeaders();
    const depth = depthOf(chunk as unknown as MeasuredNode);
    if (parts > limits.maxParts) {
      refusal = tooComplex(`The message has more than ${limits.maxParts} MIME parts; the limit is ${limits.maxParts}.`, { max_parts: limits.maxParts });
    } else if (depth > limits.maxDepth) {
      refusal = tooComplex(`The message nests MIME parts more than ${limits.maxDepth} levels deep; the limit is ${limits.maxDepth}.`, { max_depth: limits.maxDepth });
    }
    // Nothing after the first refusal matters: stop reading a message that may be 100 MB long.
    if (refusal) splitter.destroy();
  });
  splitter.end(raw);
  try {
    await finished(splitter);
  } catch (error) {
    if (refusal) throw refusal;
    if ((error as { code?: string }).code === 'EMAXLEN') {
      throw tooComplex(`A MIME part of the message exceeds a parser limit (${(error as Error).message}): at most ${limits.maxParts} parts, and ${limits.maxHeaderBytes} bytes of header per part.`, {
        max_parts: limits.maxParts, max_header_bytes: limits.maxHeaderBytes,
      });
    }
    throw invalidMessage(`The message cannot be read as MIME: ${(error as Error).message}.`);
  }
  if (refusal) throw refusal;
  assertNoNulInHeader(rootHeader ?? Buffer.alloc(0));
}

/** Decoded as the engine stores them (encoded words included: `=?utf-8?B?AA==?=` is a NUL too). */
function assertNoNulInHeader(header: Buffer): void {
  for (const field of parseEntity(`${withCrlf(toBinary(header)).replace(/(\r\n)*$/, '')}\r\n\r\n`).fields) {
    if (field.raw.includes('\0') || decodeHeaderText(fieldValue(field)).includes('\0')) {
      const name = field.name.replace(/[^\x21-\x7e]/g, '?').slice(0, 78) || '(unnamed)';
      throw invalidMessage(`The header field '${name}' contains a NUL character, which RFC 5322 does not allow.`);
    }
  }
}
