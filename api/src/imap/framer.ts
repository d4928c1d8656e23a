/**
 * Cuts a client's byte stream into IMAP commands: lines, and the literals they announce ({n}, {n+}, {n-}; RFC 9051
 * §4.3, RFC 7888). A synchronising literal is only read after the server says "+", so an oversized one is refused
 * before the client sends it; a non-synchronising one that is too big ends the session (RFC 7888 §4). Endless lines
 * end the session too: nothing a client sends makes memory grow past the limits.
 */
export interface FramedCommand {
  /** The lines with their literal markers normalised to {n}, the literal bytes left out (what the parser takes). */
  payload: Buffer;
  literals: Buffer[];
  /** The first line, for the tag of an error answer. */
  firstLine: string;
}

export interface FramerLimits {
  /** Longest line (a command without its literals). */
  maxLineBytes: number;
  /** Largest literal of most commands. */
  maxLiteralBytes: number;
  /** Largest literal of APPEND (the message). */
  maxAppendBytes: number;
}

export interface FramerEvents {
  command(command: FramedCommand): void;
  /** Ask the client for a synchronising literal. */
  continueLiteral(): void;
  /** Refuse a synchronising literal (tagged answer); the command is dropped. */
  refuseLiteral(tag: string, size: number, limit: number): void;
  /** Unrecoverable framing violation: say BYE and close. */
  fatal(reason: string): void;
}

const LITERAL_AT_END = /\{(\d{1,20})([+-]?)\}\r?\n$/;

export class CommandFramer {
  #buffer: Buffer = Buffer.alloc(0);
  #lines: Buffer[] = [];
  #literals: Buffer[] = [];
  #literalWanted = -1;
  /** Bytes of the command's lines (not its literals, which have their own limit). */
  #lineBytes = 0;
  #literalBytes = 0;
  #dead = false;

  constructor(private readonly limits: FramerLimits, private readonly events: FramerEvents) {}

  push(chunk: Buffer): void {
    if (this.#dead) return;
    this.#buffer = this.#buffer.length ? Buffer.concat([this.#buffer, chunk]) : chunk;
    while (!this.#dead) {
      if (this.#literalWanted >= 0) {
        if (this.#buffer.length < this.#literalWanted) return;
        this.#literals.push(Buffer.from(this.#buffer.subarray(0, this.#literalWanted)));
        this.#buffer = this.#buffer.subarray(this.#literalWanted);
        this.#literalWanted = -1;
        continue;
      }
      const newline = this.#buffer.indexOf(0x0a);
      if (newline < 0) {
        if (this.#buffer.length > this.limits.maxLineBytes) this.#fail('Line too long');
        return;
      }
      const line = this.#buffer.subarray(0, newline + 1);
      this.#buffer = this.#buffer.subarray(newline + 1);
      if (line.length > this.limits.maxLineBytes) return this.#fail('Line too long');
      this.#lineBytes += line.length;
      if (this.#lineBytes > this.limits.maxLineBytes * 4) return this.#fail('Command too long');
      this.#line(line);
    }
  }

  #line(line: Buffer): void {
    const text = line.toString('latin1');
    const marker = LITERAL_AT_END.exec(text);
    if (!marker) {
      this.#lines.push(Buffer.from(text.replace(/\r?\n$/, ''), 'latin1'));
      const payload = Buffer.concat(this.#lines);
      const literals = this.#literals;
      const firstLine = (this.#lines[0] ?? Buffer.alloc(0)).toString('latin1');
      this.#reset();
      this.events.command({ payload, literals, firstLine });
      return;
    }
    const size = Number(marker[1]);
    const nonSync = marker[2] === '+' || marker[2] === '-';
    const firstLine = (this.#lines[0] ?? line).toString('latin1');
    const isAppend = /^\S+\s+(UID\s+)?APPEND\s/i.test(firstLine);
    const limit = isAppend ? this.limits.maxAppendBytes : this.limits.maxLiteralBytes;
    // Every literal of the command counts: many small literals add up to no more than one big one could.
    if (this.#literalBytes + size > limit || (marker[2] === '-' && size > 4096)) {
      if (nonSync) return this.#fail(`Literal of ${size} bytes is over the limit of ${limit}`);
      const tag = /^(\S+)/.exec(firstLine)?.[1] ?? '*';
      this.#reset();
      this.events.refuseLiteral(tag, size, limit);
      return;
    }
    this.#lines.push(Buffer.from(`${text.slice(0, marker.index)}{${size}}\r\n`, 'latin1'));
    this.#literalWanted = size;
    this.#literalBytes += size;
    if (!nonSync) this.events.continueLiteral();
  }

  #reset(): void {
    this.#lines = [];
    this.#literals = [];
    this.#lineBytes = 0;
    this.#literalBytes = 0;
  }

  #fail(reason: string): void {
    this.#dead = true;
    this.#buffer = Buffer.alloc(0);
    this.#reset();
    this.events.fatal(reason);
  }
}
