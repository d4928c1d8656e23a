import { buildDaticert, type Daticert } from './daticert.ts';
import { angleBrackets, modeHeaders, prefixedSubject, serviceAddress, type HeaderList } from './headers.ts';
import { buildSystemEntity } from './mime.ts';
import type { SystemMessage } from './system-message.ts';
import type { ReadableText } from './texts.ts';
import { rfc5322RomeDate } from './time.ts';
import type { PecTransaction } from './transaction.ts';

/**
 * What receipts and notices (every system message with `X-Ricevuta`) share: the header template of RFC 6109 §3
 * and a daticert.xml about the same transaction. The families differ only in the arguments.
 */
export interface Notification {
  /** Sent after `X-Ricevuta`: `X-VerificaSicurezza`, `X-Mittente`. */
  extraHeaders?: HeaderList;
  subjectPrefix: string;
  to: string;
  /** Message-ID of the notification itself, without angle brackets. */
  messageId: string;
  /** Its `type` is also the `X-Ricevuta` value (RFC 6109 Appendix A). */
  daticert: Daticert;
  text: ReadableText;
  /** postacert.eml, for full and short delivery receipts. */
  original?: Buffer;
}

export async function buildNotification(tx: PecTransaction, notification: Notification): Promise<SystemMessage> {
  const headers: HeaderList = [
    ['X-Ricevuta', notification.daticert.type],
    ...(notification.extraHeaders ?? []),
    ['Date', rfc5322RomeDate(tx.at)],
    ['Subject', prefixedSubject(notification.subjectPrefix, tx.subject)],
    ['From', serviceAddress(tx.provider)],
    ['To', notification.to],
    ['Message-ID', angleBrackets(notification.messageId)],
    ['X-Riferimento-Message-ID', tx.originalMessageId],
    ...modeHeaders(tx.provider),
  ];
  const entity = await buildSystemEntity({
    text: notification.text,
    daticert: buildDaticert(notification.daticert),
    original: notification.original,
  });
  return { headers, entity, date: tx.at, sandbox: tx.provider.sandbox === true };
}
