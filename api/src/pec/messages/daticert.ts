import { create } from 'xmlbuilder2';
import { romeTime } from './time.ts';

/**
 * daticert.xml, the certification data every PEC system message except the anomaly envelope carries (spec §6).
 * Receivers must parse this part only, so it is the contract; the serialisation copies the one real providers emit
 * (§6.5) so that parsers written against real messages read ours unchanged.
 */

/** `postacert/@tipo`. */
export type DaticertType =
  | 'accettazione'
  | 'non-accettazione'
  | 'presa-in-carico'
  | 'avvenuta-consegna'
  | 'posta-certificata'
  | 'errore-consegna'
  | 'preavviso-errore-consegna'
  | 'rilevazione-virus';

/** `postacert/@errore`. */
export type DaticertError = 'nessuno' | 'no-dest' | 'no-dominio' | 'virus' | 'altro';

/** `destinatari/@tipo`: whether the recipient's domain is a PEC domain of some provider. */
export type RecipientType = 'certificato' | 'esterno';

/** `ricevuta/@tipo`, the delivery receipt the sender asked for with `X-TipoRicevuta`. */
export type ReceiptType = 'completa' | 'breve' | 'sintetica';

export interface Daticert {
  type: DaticertType;
  error: DaticertError;
  /** `mittente`: the original sender. */
  sender: string;
  /** `destinatari`: every To and Cc recipient of the original message. */
  recipients: ReadonlyArray<{ address: string; type: RecipientType }>;
  /** `risposte`: the original Reply-To; real providers write the sender when there was none. Always emitted. */
  replyTo: string;
  /** `oggetto`: the original subject, decoded. */
  subject?: string;
  /** `gestore-emittente`: name of the provider certifying these data. */
  providerName: string;
  /** `data`: when the event happened; written in Rome time with its `zona`. */
  at: Date;
  /** `identificativo`: PEC msgid of the transport envelope, without angle brackets. */
  identifier: string;
  /** `msgid`: the client's Message-ID before the access point replaced it, with angle brackets. */
  originalMessageId?: string;
  /** `ricevuta`: transport envelopes and delivery receipts. */
  receiptType?: ReceiptType;
  /** `consegna`: the recipient a delivery (or its failure) is about. */
  deliveredTo?: string;
  /** `ricezione`: the recipients a take-charge receipt covers. */
  takenInChargeFor?: readonly string[];
  /** `errore-esteso`: short description of the error. */
  errorDetail?: string;
}

/** Characters XML 1.0 forbids even when escaped (control characters can reach us through decoded subjects). */
const XML_FORBIDDEN = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;
const xmlText = (value: string): string => value.replace(XML_FORBIDDEN, '\uFFFD');

export function buildDaticert(d: Daticert): string {
  const { day, time, zone } = romeTime(d.at);
  const root = create({ version: '1.0', encoding: 'UTF-8' }).ele('postacert', { tipo: d.type, errore: d.error });

  const header = root.ele('intestazione');
  header.ele('mittente').txt(xmlText(d.sender));
  for (const recipient of d.recipients) header.ele('destinatari', { tipo: recipient.type }).txt(xmlText(recipient.address));
  header.ele('risposte').txt(xmlText(d.replyTo));
  if (d.subject !== undefined) header.ele('oggetto').txt(xmlText(d.subject));

  // Element order is fixed by the DTD: gestore-emittente, data, identificativo, msgid?, ricevuta?, consegna?, ricezione*, errore-esteso?
  const data = root.ele('dati');
  data.ele('gestore-emittente').txt(xmlText(d.providerName));
  const when = data.ele('data', { zona: zone });
  when.ele('giorno').txt(day);
  when.ele('ora').txt(time);
  data.ele('identificativo').txt(xmlText(d.identifier));
  if (d.originalMessageId !== undefined) data.ele('msgid').txt(xmlText(d.originalMessageId));
  if (d.receiptType !== undefined) data.ele('ricevuta', { tipo: d.receiptType });
  if (d.deliveredTo !== undefined) data.ele('consegna').txt(xmlText(d.deliveredTo));
  for (const address of d.takenInChargeFor ?? []) data.ele('ricezione').txt(xmlText(address));
  if (d.errorDetail !== undefined) data.ele('errore-esteso').txt(xmlText(d.errorDetail));

  // Real files: 4-space indentation, `<ricevuta tipo="completa" />` with the space, LF line ends and a final newline.
  return `${root.end({ prettyPrint: true, indent: '    ', newline: '\n', spaceBeforeSlash: true })}\n`;
}
