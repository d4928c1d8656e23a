import mimeFuncs from 'nodemailer/lib/mime-funcs/index.js';
import type { SignedMessage, Signer } from '../smime.ts';
import type { HeaderList } from './headers.ts';

export type { SignedMessage, Signer };

/**
 * A PEC system message before and after its S/MIME signature. Builders return the header fields and the body
 * entity separately because only the entity is signed (RFC 6109 §2.1): the caller signs it with the provider's key
 * and `assemble` puts the header fields on top of the signature result.
 */
export interface SystemMessage {
  headers: HeaderList;
  /** The multipart/mixed entity to sign: its own Content-Type field, an empty line, the body, CRLF line ends. */
  entity: Buffer;
  /** The instant written in `Date:` and daticert; the signing time, so that the signature agrees (spec §5). */
  date: Date;
  /** Built for the sandbox (test mode): signed with the sandbox identity, never the live one. */
  sandbox?: boolean;
}

/** The final RFC 5322 message: the header fields, MIME-Version, the multipart/signed Content-Type, the signed body. */
export function assemble(headers: HeaderList, signed: SignedMessage): Buffer {
  const fields = [...headers, ['MIME-Version', '1.0'], ['Content-Type', signed.contentType]] as const;
  const head = fields.map(([name, value]) => `${mimeFuncs.foldLines(`${name}: ${value}`, 76)}\r\n`).join('');
  return Buffer.concat([Buffer.from(`${head}\r\n`, 'utf8'), signed.body]);
}

/** From a builder's result to the bytes that go out over SMTP. */
export async function signAndAssemble(message: SystemMessage, signer: Signer): Promise<Buffer> {
  return assemble(message.headers, await signer.sign(message.entity, message.date));
}
