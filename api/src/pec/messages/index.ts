/**
 * Builders of PEC system messages (spec §3–§6): pure functions from the facts of a transaction to the header fields
 * and the multipart/mixed entity the provider signs; `assemble` joins them with the signature into the final message.
 */
export { buildAcceptanceReceipt, buildTakeChargeReceipt, buildDeliveryReceipt, deliveryReceiptVariant } from './receipts.ts';
export {
  buildNonAcceptanceNotice,
  buildVirusNonAcceptanceNotice,
  buildVirusDetectionNotice,
  buildVirusNonDeliveryNotice,
  buildNonDeliveryNotice,
  buildDeliveryTimeoutNotice,
  type DeliveryFailure,
} from './notices.ts';
export { buildTransportEnvelope, buildAnomalyEnvelope, type AnomalyInput } from './envelopes.ts';
export { assemble, signAndAssemble, type SignedMessage, type Signer, type SystemMessage } from './system-message.ts';
export { MODE_HEADER, SUBJECT_PREFIX, serviceAddress, type HeaderList } from './headers.ts';
export { SANDBOX_NOTICE } from './texts.ts';
export { buildDaticert, type Daticert, type DaticertError, type DaticertType, type ReceiptType, type RecipientType } from './daticert.ts';
export { buildSystemEntity, type SystemBody } from './mime.ts';
export { newPecMessageId } from './msgid.ts';
export { toPostacert } from './postacert.ts';
export { toShortForm } from './breve.ts';
export { readableRomeTime, rfc5322RomeDate, romeTime, type RomeTime } from './time.ts';
export type { ReadableText, TimeoutStage } from './texts.ts';
export type { PecTransaction, Provider, Recipient } from './transaction.ts';
