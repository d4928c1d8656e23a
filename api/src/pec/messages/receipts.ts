import { toShortForm } from './breve.ts';
import type { ReceiptType } from './daticert.ts';
import { SUBJECT_PREFIX } from './headers.ts';
import { buildNotification } from './notification.ts';
import type { SystemMessage } from './system-message.ts';
import { acceptanceText, deliveryText, takeChargeText } from './texts.ts';
import { transactionDaticert, transactionFacts, type PecTransaction, type Recipient } from './transaction.ts';

/** Ricevute (spec §3 rows 1, 6, 10): the provider certifies that a step of the transaction succeeded. */

/** Acceptance receipt (ricevuta di accettazione, §4.2), to the sender once the access point accepted the message. */
export function buildAcceptanceReceipt(tx: PecTransaction, options: { messageId: string }): Promise<SystemMessage> {
  return buildNotification(tx, {
    subjectPrefix: SUBJECT_PREFIX.acceptance,
    to: tx.sender,
    messageId: options.messageId,
    daticert: transactionDaticert(tx, { type: 'accettazione', error: 'nessuno' }),
    text: acceptanceText(transactionFacts(tx)),
  });
}

/**
 * Take-charge receipt (ricevuta di presa in carico, §4.6), from the receiving point to the sending provider's
 * service mailbox (its `mailReceipt` in the providers index), never to a user. One receipt may cover several
 * recipients of this provider; daticert lists them in `ricezione`.
 */
export function buildTakeChargeReceipt(
  tx: PecTransaction,
  options: { messageId: string; senderProviderMailbox: string; coveredRecipients: readonly string[] },
): Promise<SystemMessage> {
  const covered = new Set(options.coveredRecipients.map((address) => address.toLowerCase()));
  return buildNotification(tx, {
    subjectPrefix: SUBJECT_PREFIX.takeCharge,
    to: options.senderProviderMailbox,
    messageId: options.messageId,
    daticert: transactionDaticert(tx, { type: 'presa-in-carico', error: 'nessuno', takenInChargeFor: options.coveredRecipients }),
    text: takeChargeText({
      ...transactionFacts(tx),
      recipients: tx.recipients.filter((recipient) => covered.has(recipient.address.toLowerCase())),
    }),
  });
}

/**
 * The delivery receipt a recipient gets (§4.10): what the sender asked for when the recipient was in To, a summary
 * receipt when in Cc. A recipient named in both, or in neither (ambiguous), counts as primary (RFC 6109 §3.3.2.1).
 */
export function deliveryReceiptVariant(requested: ReceiptType, recipients: readonly Recipient[], address: string): ReceiptType {
  const headers = recipients.filter((recipient) => recipient.address.toLowerCase() === address.toLowerCase()).map((recipient) => recipient.header);
  const carbonCopyOnly = headers.length > 0 && headers.every((header) => header === 'Cc');
  return carbonCopyOnly ? 'sintetica' : requested;
}

/**
 * Delivery receipt (ricevuta di avvenuta consegna, §4.10), one per recipient, issued by the delivery point once the
 * transport envelope is in the mailbox. `postacert` is the postacert.eml of that envelope, as received: a full
 * receipt embeds it, a short one embeds it with attachments replaced by their hashes, a summary one leaves it out.
 * daticert `ricevuta` states the type the sender requested, as the DTD defines it.
 */
export function buildDeliveryReceipt(
  tx: PecTransaction,
  options: { messageId: string; recipient: string; postacert: Buffer },
): Promise<SystemMessage> {
  const variant = deliveryReceiptVariant(tx.receiptType, tx.recipients, options.recipient);
  const original = variant === 'sintetica' ? undefined : variant === 'breve' ? toShortForm(options.postacert) : options.postacert;
  return buildNotification(tx, {
    subjectPrefix: SUBJECT_PREFIX.delivery,
    to: tx.sender,
    messageId: options.messageId,
    daticert: transactionDaticert(tx, {
      type: 'avvenuta-consegna',
      error: 'nessuno',
      receiptType: tx.receiptType,
      deliveredTo: options.recipient,
    }),
    text: deliveryText(transactionFacts(tx), options.recipient, variant),
    original,
  });
}
