import { eq, sql } from 'drizzle-orm';
import { pecRecipients, pecTransactions, type DbOrTx } from '@pec-partner/db';
import type { Clock } from '../clock.ts';
import { recordEvent } from '../events/record.ts';
import type { DaticertError } from './messages/daticert.ts';

export type PecMessageStatus = 'accepted' | 'not_accepted' | 'delivered' | 'not_delivered';

/**
 * A certified message's outcome as a `message.*` event shows it: metadata only. Never the subject, the body or
 * anything about attachments: the partner's billing system needs to know that a message went through, not what
 * it said, and the holder's content is not the partner's to see.
 */
export type PecMessageObject = {
  /** The transaction (`pmt_…`): one per submission, shared by every event about it. */
  id: string;
  object: 'pec_message';
  /** The sending mailbox. */
  mailbox: string;
  sender: string;
  /** The PEC msgid (without angle brackets), the `identificativo` of every receipt. */
  message_id: string;
  /** Every recipient the message named, To before Cc. */
  recipients: string[];
  /** The recipient a delivery outcome is about; null for acceptance and non-acceptance. */
  recipient: string | null;
  status: PecMessageStatus;
  /** The daticert `errore` of a non-acceptance or non-delivery (`no-dest`, `no-dominio`, `virus`, `altro`); null otherwise. */
  error: Exclude<DaticertError, 'nessuno'> | null;
  /** The instant the receipt or notice certifies. */
  occurred_at: string;
};

const eventTypeOf = {
  accepted: 'message.accepted',
  not_accepted: 'message.not_accepted',
  delivered: 'message.delivered',
  not_delivered: 'message.not_delivered',
} as const;

export interface MessageOutcome {
  status: PecMessageStatus;
  recipient?: string;
  error?: string | null;
  occurredAt: Date;
}

/**
 * Writes the `message.*` event of an outcome for the partner of the sending mailbox, in the caller's transaction:
 * the one that stores the receipt or notice, whose dedupe key makes a retried step store (and report) nothing twice.
 */
export async function recordMessageEvent(tx: DbOrTx, clock: Clock, transaction: typeof pecTransactions.$inferSelect, outcome: MessageOutcome): Promise<void> {
  const recipients = await tx.select({ address: pecRecipients.address }).from(pecRecipients)
    .where(eq(pecRecipients.transactionId, transaction.id))
    .orderBy(sql`${pecRecipients.role} = 'to' desc`, pecRecipients.address);
  const object: PecMessageObject = {
    id: transaction.id,
    object: 'pec_message',
    mailbox: transaction.mailboxId,
    sender: transaction.sender,
    message_id: transaction.pecMessageId,
    recipients: recipients.map((r) => r.address),
    recipient: outcome.recipient ?? null,
    status: outcome.status,
    error: outcome.error && outcome.error !== 'nessuno' ? (outcome.error as PecMessageObject['error']) : null,
    occurred_at: outcome.occurredAt.toISOString(),
  };
  await recordEvent(tx, clock, { partnerId: transaction.partnerId, type: eventTypeOf[outcome.status], object });
}
