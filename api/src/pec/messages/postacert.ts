import { angleBrackets } from './headers.ts';
import { formatFields, fromBinary, parseEntity, toBinary, withCrlf, type HeaderField } from './raw-entity.ts';

/**
 * The original message as the transport envelope carries it, `postacert.eml` (spec §4.4, RFC 6109 §2.2.1): unchanged
 * except that the access point's PEC msgid replaces the client's Message-ID, and the client's moves to
 * `X-Riferimento-Message-ID`. Real envelopes put both fields at the end of the header, and so does this.
 * Any `X-Riferimento-Message-ID` the client wrote is dropped: only the provider may state that reference.
 */
export function toPostacert(original: Buffer, ids: { pecMessageId: string; originalMessageId: string }): Buffer {
  const entity = parseEntity(withCrlf(toBinary(original)));
  const kept = entity.fields.filter((field) => !/^(message-id|x-riferimento-message-id)$/i.test(field.name));
  const added: HeaderField[] = [
    { name: 'Message-ID', raw: `Message-ID: ${angleBrackets(ids.pecMessageId)}` },
    { name: 'X-Riferimento-Message-ID', raw: `X-Riferimento-Message-ID: ${ids.originalMessageId}` },
  ];
  return fromBinary(formatFields([...kept, ...added]) + entity.body);
}
