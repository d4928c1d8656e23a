import addressparser from 'nodemailer/lib/addressparser/index.js';
import { buildDaticert } from './daticert.ts';
import { angleBrackets, modeHeaders, onBehalfOf, prefixedSubject, SUBJECT_PREFIX, type HeaderList } from './headers.ts';
import { buildSystemEntity } from './mime.ts';
import { toPostacert } from './postacert.ts';
import { decodeHeaderText, fieldsNamed, fieldValue, firstValue, fromBinary, parseEntity, toBinary, withCrlf, type RawEntity } from './raw-entity.ts';
import type { SystemMessage } from './system-message.ts';
import { anomalyText, transportEnvelopeText } from './texts.ts';
import { rfc5322RomeDate } from './time.ts';
import { transactionDaticert, transactionFacts, type PecTransaction, type Provider } from './transaction.ts';

/**
 * Buste (spec §3 rows 4 and 7): messages that carry another message whole. They keep the routing of what they carry
 * (trace fields, To, Cc) so that they travel, and bounce, like it.
 */

/**
 * Transport envelope (busta di trasporto, §4.4): what the access point sends to every recipient. Inherits Return-Path,
 * Received, To, Cc and Reply-To from the original (adding Reply-To: <sender> when it had none) and embeds the
 * original as postacert.eml, with the PEC msgid as its Message-ID.
 */
export async function buildTransportEnvelope(tx: PecTransaction, options: { original: Buffer }): Promise<SystemMessage> {
  const original = parseEntity(withCrlf(toBinary(options.original)));
  const headers: HeaderList = [
    ...inherited(original, 'Return-Path', 'Received'),
    ['X-Trasporto', 'posta-certificata'],
    ['Date', rfc5322RomeDate(tx.at)],
    ['Subject', prefixedSubject(SUBJECT_PREFIX.transportEnvelope, tx.subject)],
    ['From', onBehalfOf(tx.sender, tx.provider)],
    ...replyTo(original, tx.sender),
    ...inherited(original, 'To', 'Cc'),
    ['Message-ID', angleBrackets(tx.pecMessageId)],
    ['X-Riferimento-Message-ID', tx.originalMessageId],
    ['X-TipoRicevuta', tx.receiptType],
    ...modeHeaders(tx.provider),
  ];
  const entity = await buildSystemEntity({
    text: transportEnvelopeText(transactionFacts(tx)),
    daticert: buildDaticert(transactionDaticert(tx, { type: 'posta-certificata', error: 'nessuno', receiptType: tx.receiptType })),
    original: toPostacert(options.original, tx),
  });
  return { headers, entity, date: tx.at, sandbox: tx.provider.sandbox === true };
}

export interface AnomalyInput {
  /** The receiving provider, which signs the envelope. */
  provider: Provider;
  /** Arrival of the received message. */
  at: Date;
  /** The message as received, whatever it is: embedded whole. */
  received: Buffer;
  /** Italian description of why its data cannot be certified, e.g. "firma non valida". */
  error: string;
  /** Message-ID for the envelope, without angle brackets, used only when the received message has none. */
  messageIdIfMissing: string;
}

/**
 * Anomaly envelope (busta di anomalia, §4.7): the receiving point wraps a message it cannot certify (ordinary mail,
 * or a PEC message with a missing or invalid signature or a formal error) and delivers it anyway. There is no
 * transaction to certify, hence no daticert.xml: the readable text and the received message are its only parts.
 * Sender, recipients and subject are read from the received message, whose Message-ID the envelope keeps.
 */
export async function buildAnomalyEnvelope(input: AnomalyInput): Promise<SystemMessage> {
  const receivedBinary = withCrlf(toBinary(input.received));
  const received = parseEntity(receivedBinary);
  const sender = addresses(received, 'From')[0] ?? '';
  const receivedSubject = decodeHeaderText(firstValue(received, 'Subject') ?? '');
  const messageId = firstValue(received, 'Message-ID') ?? angleBrackets(input.messageIdIfMissing);
  const headers: HeaderList = [
    ...inherited(received, 'Return-Path', 'Received'),
    ['X-Trasporto', 'errore'],
    ['Date', rfc5322RomeDate(input.at)],
    ['Subject', prefixedSubject(SUBJECT_PREFIX.anomalyEnvelope, receivedSubject)],
    ['From', onBehalfOf(sender, input.provider)],
    ...replyTo(received, sender),
    ...inherited(received, 'To', 'Cc'),
    ['Message-ID', messageId],
    ['X-Riferimento-Message-ID', messageId],
    ...modeHeaders(input.provider),
  ];
  const text = anomalyText(
    {
      at: input.at,
      subject: receivedSubject,
      sender,
      recipients: [...addresses(received, 'To'), ...addresses(received, 'Cc')].map((address) => ({ address })),
      identifier: messageId.replace(/^<|>$/g, ''),
      sandbox: input.provider.sandbox === true,
    },
    input.error,
  );
  return { headers, entity: await buildSystemEntity({ text, original: fromBinary(receivedBinary) }), date: input.at, sandbox: input.provider.sandbox === true };
}

/** Inherited fields keep their order and value; raw 8-bit bytes in them are read as UTF-8 (RFC 6532). */
function inherited(entity: RawEntity, ...names: string[]): HeaderList {
  const canonical = new Map(names.map((name) => [name.toLowerCase(), name]));
  return entity.fields.flatMap((field): HeaderList => {
    const name = canonical.get(field.name.toLowerCase());
    return name ? [[name, wireText(fieldValue(field))]] : [];
  });
}

/** Reply-To is inherited; without one, replies must still reach the author rather than the provider (§4.4). */
function replyTo(entity: RawEntity, sender: string): HeaderList {
  const own = inherited(entity, 'Reply-To');
  return own.length > 0 ? own : [['Reply-To', sender]];
}

function addresses(entity: RawEntity, name: string): string[] {
  return fieldsNamed(entity, name).flatMap((field) => addressparser(wireText(fieldValue(field)), { flatten: true }).map((a) => a.address));
}

const wireText = (binaryValue: string): string => fromBinary(binaryValue).toString('utf8');
