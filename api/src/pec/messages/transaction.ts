import type { Daticert, ReceiptType, RecipientType } from './daticert.ts';
import type { TextFacts } from './texts.ts';

/**
 * What the builders of PEC system messages are told about the transaction a message belongs to, and how those
 * facts read in daticert.xml and in the readable texts. One transaction is one message accepted by an access point;
 * every receipt, notice and envelope about it repeats these facts.
 */

export interface Provider {
  /** As in the providers index `providerName`: written in daticert `gestore-emittente` and in error descriptions. */
  name: string;
  /** Mail domain of the provider; its service address is `posta-certificata@<domain>`. */
  domain: string;
  /**
   * The sandbox (test mode): every message built for it carries the `X-PEC-Partner-Mode: test` header and, inside
   * the signed content, a readable notice that it is a test message without legal value (see `texts.ts`).
   */
  sandbox?: boolean;
}

export interface Recipient {
  address: string;
  /** `certificato` when the domain is in some provider's `managedDomains`, `esterno` otherwise. */
  type: RecipientType;
  /** The header that named the recipient; decides full versus summary delivery receipts (spec §4.10). */
  header: 'To' | 'Cc';
}

export interface PecTransaction {
  /** The provider emitting the message being built (sender's provider, or recipient's for the receiving side). */
  provider: Provider;
  /**
   * The instant of the event the message certifies (acceptance, arrival, delivery, failure…): one timestamp per
   * event, written identically in `Date:`, the readable text and daticert (spec §5).
   */
  at: Date;
  /** PEC msgid of the transport envelope (`opec…@<domain>`), without angle brackets: daticert `identificativo`. */
  pecMessageId: string;
  /**
   * The Message-ID the client gave the original, with angle brackets: `X-Riferimento-Message-ID` and daticert
   * `msgid`. The access point assigns one when the client sent none, so every system message can carry it.
   */
  originalMessageId: string;
  /** Original sender (SMTP reverse-path, equal to From), an addr-spec. */
  sender: string;
  /** Every To and Cc recipient of the original. */
  recipients: readonly Recipient[];
  /** Original Subject, decoded; empty when there was none. */
  subject: string;
  /** Original Reply-To, when present. */
  replyTo?: string;
  /** From the original `X-TipoRicevuta`; `completa` when absent (spec §4.4). */
  receiptType: ReceiptType;
}

/** The daticert fields every message about a transaction repeats; callers add type, error and their own fields. */
export function transactionDaticert(tx: PecTransaction, own: Pick<Daticert, 'type' | 'error'> & Partial<Daticert>): Daticert {
  return {
    sender: tx.sender,
    recipients: tx.recipients,
    // Real providers write the sender when the original had no Reply-To (spec §6.2).
    replyTo: tx.replyTo ?? tx.sender,
    subject: tx.subject,
    providerName: tx.provider.name,
    at: tx.at,
    identifier: tx.pecMessageId,
    originalMessageId: tx.originalMessageId,
    ...own,
  };
}

/** The facts the readable texts state, the PEC msgid being the identifier they quote. */
export function transactionFacts(tx: PecTransaction): TextFacts {
  return { at: tx.at, subject: tx.subject, sender: tx.sender, recipients: tx.recipients, identifier: tx.pecMessageId, sandbox: tx.provider.sandbox === true };
}
