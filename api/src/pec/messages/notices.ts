import { SUBJECT_PREFIX } from './headers.ts';
import { buildNotification } from './notification.ts';
import type { SystemMessage } from './system-message.ts';
import {
  deliveryTimeoutText,
  nonAcceptanceText,
  nonDeliveryText,
  virusDetectionText,
  virusNonAcceptanceText,
  virusNonDeliveryText,
  type TimeoutStage,
} from './texts.ts';
import { transactionDaticert, transactionFacts, type PecTransaction } from './transaction.ts';

/**
 * Avvisi (spec §3 rows 2, 3, 5, 8, 9, 11): the provider certifies that a step failed. None embeds the original
 * (RFC 6109 forbids it for non-acceptance, timeout and virus notices, and nothing asks for it elsewhere).
 */

/** Marks the virus variants (RFC 6109 §3.1.3, §3.2.4). */
const SECURITY_CHECK_FAILED: [string, string] = ['X-VerificaSicurezza', 'errore'];

/**
 * Non-acceptance notice for a formal error (avviso di non accettazione, §4.3): a check of §4.1 failed.
 * `reason` is the Italian description, e.g. "il campo To deve contenere uno o più indirizzi validi".
 */
export function buildNonAcceptanceNotice(tx: PecTransaction, options: { messageId: string; reason: string }): Promise<SystemMessage> {
  return buildNotification(tx, {
    subjectPrefix: SUBJECT_PREFIX.nonAcceptance,
    to: tx.sender,
    messageId: options.messageId,
    // `altro` is the only non-virus value that fits a formal error (spec §3 row 2).
    daticert: transactionDaticert(tx, { type: 'non-accettazione', error: 'altro', errorDetail: options.reason }),
    text: nonAcceptanceText(transactionFacts(tx), options.reason),
  });
}

/** Non-acceptance notice for a virus (§4.3): the access point found one in the submitted message. */
export function buildVirusNonAcceptanceNotice(tx: PecTransaction, options: { messageId: string; virus: string }): Promise<SystemMessage> {
  return buildNotification(tx, {
    extraHeaders: [SECURITY_CHECK_FAILED],
    subjectPrefix: SUBJECT_PREFIX.virusNonAcceptance,
    to: tx.sender,
    messageId: options.messageId,
    daticert: transactionDaticert(tx, { type: 'non-accettazione', error: 'virus', errorDetail: options.virus }),
    text: virusNonAcceptanceText(transactionFacts(tx), options.virus),
  });
}

/**
 * Virus detection notice (avviso di rilevazione virus, §4.8), from the receiving point to the sending provider's
 * service mailbox, one per recipient the infected envelope was for. `X-Mittente` names the original sender.
 */
export function buildVirusDetectionNotice(
  tx: PecTransaction,
  options: { messageId: string; senderProviderMailbox: string; recipient: string; virus: string },
): Promise<SystemMessage> {
  return buildNotification(tx, {
    extraHeaders: [['X-Mittente', tx.sender]],
    subjectPrefix: SUBJECT_PREFIX.virusDetection,
    to: options.senderProviderMailbox,
    messageId: options.messageId,
    daticert: transactionDaticert(tx, { type: 'rilevazione-virus', error: 'virus', deliveredTo: options.recipient, errorDetail: options.virus }),
    text: virusDetectionText(transactionFacts(tx), options.recipient, options.virus),
  });
}

/** Non-delivery notice for a virus (§4.9): the sending provider tells its user after a virus detection notice. */
export function buildVirusNonDeliveryNotice(
  tx: PecTransaction,
  options: { messageId: string; recipient: string; virus: string },
): Promise<SystemMessage> {
  return buildNotification(tx, {
    extraHeaders: [SECURITY_CHECK_FAILED],
    subjectPrefix: SUBJECT_PREFIX.virusNonDelivery,
    to: tx.sender,
    messageId: options.messageId,
    daticert: transactionDaticert(tx, { type: 'errore-consegna', error: 'virus', deliveredTo: options.recipient, errorDetail: options.virus }),
    text: virusNonDeliveryText(transactionFacts(tx), options.recipient, options.virus),
  });
}

export interface DeliveryFailure {
  /** `no-dest`: the mailbox does not exist; `no-dominio`: the domain is not served; `altro`: anything else. */
  error: 'no-dest' | 'no-dominio' | 'altro';
  /** SMTP enhanced status code, e.g. `5.1.1`. */
  status: string;
  /** Italian description, e.g. "indirizzo non valido". */
  description: string;
}

/**
 * Non-delivery notice (avviso di mancata consegna, §4.11), one per recipient the delivery point could not deliver
 * to. `errore-esteso` is `<status> - <provider> - <description>`, as real providers write it (spec §6.7).
 */
export function buildNonDeliveryNotice(
  tx: PecTransaction,
  options: { messageId: string; recipient: string; failure: DeliveryFailure },
): Promise<SystemMessage> {
  const errorDetail = `${options.failure.status} - ${tx.provider.name} - ${options.failure.description}`;
  return buildNotification(tx, {
    subjectPrefix: SUBJECT_PREFIX.nonDelivery,
    to: tx.sender,
    messageId: options.messageId,
    daticert: transactionDaticert(tx, { type: 'errore-consegna', error: options.failure.error, deliveredTo: options.recipient, errorDetail }),
    text: nonDeliveryText(transactionFacts(tx), options.recipient, errorDetail),
  });
}

/**
 * Enhanced status codes of the timeout notices: temporary for the 12 h warning, permanent at 24 h. Real providers
 * start the 24 h one with 5.4.1, which consumers such as SEND read as final (spec §4.5).
 */
const TIMEOUT_ERROR: Record<TimeoutStage, { status: string; description: string }> = {
  '12h': { status: '4.4.1', description: "messaggio non ancora consegnato entro le prime 12 ore dall'invio" },
  '24h': { status: '5.4.1', description: "messaggio non consegnato entro 24 ore dall'invio" },
};

/**
 * Delay warning (12 h) or timeout notice (24 h) (avviso di mancata consegna per superamento dei tempi massimi,
 * §4.5), from the sending provider to the original sender (the RFC's "original recipient" is a translation error,
 * §12), one per recipient still without a delivery receipt. Both carry `preavviso-errore-consegna`.
 */
export function buildDeliveryTimeoutNotice(
  tx: PecTransaction,
  options: { messageId: string; recipient: string; stage: TimeoutStage },
): Promise<SystemMessage> {
  const { status, description } = TIMEOUT_ERROR[options.stage];
  return buildNotification(tx, {
    subjectPrefix: SUBJECT_PREFIX.deliveryTimeout,
    to: tx.sender,
    messageId: options.messageId,
    daticert: transactionDaticert(tx, {
      type: 'preavviso-errore-consegna',
      error: 'altro',
      deliveredTo: options.recipient,
      errorDetail: `${status} - ${tx.provider.name} - ${description}`,
    }),
    text: deliveryTimeoutText(transactionFacts(tx), options.recipient, options.stage),
  });
}
