/**
 * A stored message as POP3 puts it on the wire (RFC 1939 §3): CRLF-terminated lines, a line that starts with "."
 * gets one more in front, and a line holding only "." ends the response. Stored messages already have CRLF line ends
 * (RFC 5322 §2.1; the store normalises what clients append), so for them the bytes between the "+OK" line and the
 * final "." are the stored bytes, dot-stuffed. A bare LF is still sent as CRLF: clients that split lines at LF (most
 * do) would otherwise take "\n.\r\n" inside a message for its end; and a last line without a line end gets one,
 * since the terminating "." must start a line.
 */

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;
const CRLF = Buffer.from('\r\n');
const STUFF = Buffer.from('.');
export const TERMINATOR = Buffer.from('.\r\n');

/** The lines of `content`: [start, end) without the line end, and where the next line starts. */
function* lines(content: Buffer): Generator<{ start: number; end: number; next: number }> {
  let start = 0;
  while (start < content.length) {
    const lf = content.indexOf(LF, start);
    const next = lf === -1 ? content.length : lf + 1;
    let end = lf === -1 ? content.length : lf;
    if (end > start && content[end - 1] === CR && lf !== -1) end--;
    yield { start, end, next };
    start = next;
  }
}

/**
 * `content` dot-stuffed in chunks of about `chunkBytes`, ending with the terminating ".": the caller writes chunk by
 * chunk and waits for the socket to drain, so a large message is never copied whole a second time.
 */
export function* dotStuffed(content: Buffer, chunkBytes = 64 * 1024): Generator<Buffer> {
  let parts: Buffer[] = [];
  let size = 0;
  for (const line of lines(content)) {
    if (content[line.start] === DOT) parts.push(STUFF);
    parts.push(content.subarray(line.start, line.end), CRLF);
    size += line.end - line.start + 3;
    if (size >= chunkBytes) {
      yield Buffer.concat(parts);
      parts = [];
      size = 0;
    }
  }
  parts.push(TERMINATOR);
  yield Buffer.concat(parts);
}

/**
 * How many leading bytes of a message TOP sends (RFC 1939 §7): the header, the blank line after it and `bodyLines`
 * lines of the body. `bytes` may be only the start of the message (`complete` false): then null when those lines
 * are not all in it yet. A message without a blank line is all header, and is sent whole.
 */
export function topExtent(bytes: Buffer, bodyLines: number, complete: boolean): number | null {
  let inBody = false;
  let counted = 0;
  for (const line of lines(bytes)) {
    // The prefix may end inside a line: that line is not known yet.
    if (!complete && line.next === bytes.length && bytes[line.next - 1] !== LF) return null;
    if (inBody) {
      if (counted >= bodyLines) return line.start;
      counted++;
    } else if (line.end === line.start) {
      inBody = true;
    }
  }
  return complete ? bytes.length : null;
}
