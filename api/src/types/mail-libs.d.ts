// Type shims for small mail libraries that ship no declarations of their own.
declare module 'utf7' {
  /** Modified UTF-7 for IMAP mailbox names (RFC 3501 §5.1.3). */
  export const imap: { encode(value: string): string; decode(value: string): string };
}

declare module 'libmime' {
  interface HeaderValue {
    value: string;
    params: Record<string, string>;
  }
  const libmime: {
    /** Splits a structured header value (Content-Type, Content-Disposition) into value and parameters, RFC 2231 included. */
    parseHeaderValue(value: string): HeaderValue;
    /** Decodes RFC 2047 encoded words. */
    decodeWords(value: string): string;
  };
  export default libmime;
}
