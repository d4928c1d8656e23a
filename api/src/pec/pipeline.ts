import { and, eq, inArray, isNull, sql } from 'drizzle-orm';
import { delegations, mailboxes, pecRecipients, pecTransactions, type StoredMessageKind } from '@pec-partner/db';
import { domainOf } from './addresses.ts';
import type { PecEngine } from './engine.ts';
import { appendLog, type LogEntryInput, type LogEvent } from './log-register.ts';
import { recordMessageEvent, type MessageOutcome } from './message-events.ts';
import {
  buildAcceptanceReceipt, buildDeliveryReceipt, buildDeliveryTimeoutNotice, buildNonAcceptanceNotice, buildNonDeliveryNotice,
  buildTakeChargeReceipt, buildTransportEnvelope, buildVirusNonAcceptanceNotice, deliveryReceiptVariant, signAndAssemble,
  type DeliveryFailure, type PecTransaction, type SystemMessage,
} from './messages/index.ts';
import { decodeHeaderText } from './messages/raw-entity.ts';
import type { JobHandler } from './queue.ts';
import { enqueue } from './queue.ts';
import { QUEUE_LIFETIME_MS, routeFor, sendOverSmtp } from './smtp-client.ts';
import { inboxHasRoom, storeMessage } from './store.ts';

type RecipientRow = typeof pecRecipients.$inferSelect;

const HOURS = 3_600_000;

/** The non-delivery reason of a test-mode recipient outside the sandbox (after `5.1.2 - <sandbox provider> - `). */
export const SANDBOX_NO_RELAY = 'in modalità test (sandbox) i messaggi non escono dal gestore: il destinatario non è una casella di test di questo gestore';


/**
 * The pipeline steps of a submitted message. Each is a durable job and idempotent: it rebuilds what it needs from
 * the database, messages get deterministic Message-IDs, and each store is keyed by its step, so a step repeated
 * after a crash stores, sends and logs nothing twice. Log entries are written in the same database transaction as
 * the store they describe.
 */
export function pipelineHandlers(engine: PecEngine): Record<string, JobHandler> {
  // A message built for the sandbox is signed with the sandbox identity, whatever the caller: a test receipt never
  // carries the live provider's signature.
  const sign = async (message: SystemMessage): Promise<Buffer> => signAndAssemble(message, await engine.signer(!message.sandbox));

  const logEntry = (tx: PecTransaction, event: LogEvent, fields: Partial<LogEntryInput> & Pick<LogEntryInput, 'relatedMessageIds'>, owner: { mailboxId: string | null; partnerId: string | null }): LogEntryInput => {
    const entry: LogEntryInput = {
      occurredAt: tx.at,
      event,
      messageId: tx.pecMessageId,
      sender: tx.sender,
      recipients: tx.recipients.map((r) => `${r.address} (${r.type})`),
      subject: tx.subject,
      provider: tx.provider.name,
      details: {},
      ...owner,
      ...fields,
    };
    // Test-mode entries say so (and name the sandbox as provider): they share the chain, never a legal export,
    // which is per mailbox and hence per world.
    return tx.provider.sandbox ? { ...entry, details: { ...entry.details, sandbox: true } } : entry;
  };

  /**
   * The sender's copy of a notice about its own message: always stored (receipts ignore the quota). Its log entry
   * and the outcome's event are written only by the store that put it there, so a repeated step reports nothing.
   */
  async function storeForSender(row: typeof pecTransactions.$inferSelect, message: { raw: Buffer; messageId: string; subject: string; kind: StoredMessageKind }, dedupeKey: string, log: LogEntryInput[], outcome: MessageOutcome): Promise<void> {
    await engine.db.transaction(async (db) => {
      const stored = await storeMessage(db, {
        mailboxId: row.mailboxId, folder: 'receipts', kind: message.kind, content: message.raw, messageId: message.messageId,
        pecMessageId: row.pecMessageId, subject: message.subject, fromAddress: `posta-certificata@${engine.serviceDomain}`, dedupeKey, now: engine.clock.now(),
      });
      if (!stored) return;
      await appendLog(db, log);
      await recordMessageEvent(db, engine.clock, row, outcome);
    });
  }

  /** The Subject as people read it (builders encode non-ASCII subjects as RFC 2047 words). */
  const subjectOf = (message: SystemMessage): string => decodeHeaderText(message.headers.find(([name]) => name === 'Subject')?.[1] ?? '');

  async function acceptance(payload: Record<string, unknown>): Promise<void> {
    const transactionId = payload.transaction as string;
    const [head] = await engine.db.select({ submittedAt: pecTransactions.submittedAt }).from(pecTransactions).where(eq(pecTransactions.id, transactionId));
    const { row, tx } = await engine.transactionFacts(transactionId, head!.submittedAt);
    const messageId = engine.derivedMessageId(row.pecMessageId, 'accettazione');
    const owner = { mailboxId: row.mailboxId, partnerId: row.partnerId };
    let message: SystemMessage;
    let event: LogEvent;
    let kind: StoredMessageKind;
    if (row.status === 'accepted') {
      message = await buildAcceptanceReceipt(tx, { messageId });
      [event, kind] = ['Accettazione', 'acceptance'];
    } else if (row.refusedForVirus) {
      message = await buildVirusNonAcceptanceNotice(tx, { messageId, virus: row.refusal ?? 'virus' });
      [event, kind] = ['NonAccettazioneVirus', 'non_acceptance'];
    } else {
      message = await buildNonAcceptanceNotice(tx, { messageId, reason: row.refusal ?? 'errore formale' });
      [event, kind] = ['NonAccettazione', 'non_acceptance'];
    }
    const outcome = row.status === 'accepted' ? { tipo: 'accettazione' } : { tipo: 'non-accettazione', errore: row.refusedForVirus ? 'virus' : 'altro', errore_esteso: row.refusal };
    // Submitted by a delegation's collaborator (multiutenza): the log names who acted for the holder.
    const [delegate] = row.delegationId ? await engine.db.select({ email: delegations.email }).from(delegations).where(eq(delegations.id, row.delegationId)) : [];
    const details = delegate ? { ...outcome, delegato: delegate.email } : outcome;
    await storeForSender(row, { raw: await sign(message), messageId, subject: subjectOf(message), kind }, `acceptance:${row.id}`, [
      logEntry(tx, event, { relatedMessageIds: [messageId], details }, owner),
    ], row.status === 'accepted' ? { status: 'accepted', occurredAt: tx.at } : { status: 'not_accepted', error: row.refusedForVirus ? 'virus' : 'altro', occurredAt: tx.at });
  }

  /**
   * Sends the transport envelope towards every recipient domain: local domains are taken in charge and delivered
   * here; other domains get an SMTP job each, and the delivery timers are queued when a PEC recipient among them
   * must be confirmed by another provider.
   */
  async function dispatch(payload: Record<string, unknown>): Promise<void> {
    const transactionId = payload.transaction as string;
    const [head] = await engine.db.select({ submittedAt: pecTransactions.submittedAt }).from(pecTransactions).where(eq(pecTransactions.id, transactionId));
    const { row, tx, recipients, livemode } = await engine.transactionFacts(transactionId, head!.submittedAt);
    const byDomain = new Map<string, RecipientRow[]>();
    for (const recipient of recipients) byDomain.set(domainOf(recipient.address), [...(byDomain.get(domainOf(recipient.address)) ?? []), recipient]);

    const remote: string[] = [];
    let certifiedElsewhere = false;
    let envelopeMessage: SystemMessage | undefined;
    let envelope: Buffer | undefined;
    for (const [domain, domainRecipients] of byDomain) {
      if (!(await engine.isLocalDomain(domain, livemode))) {
        if (!livemode) {
          // Test mode never relays. The access point refused such recipients; a test domain that lost its
          // certification since then gets a non-delivery notice per recipient here instead of an SMTP attempt.
          for (const recipient of domainRecipients) await failWithoutRelay(row, recipient);
          continue;
        }
        remote.push(domain);
        certifiedElsewhere ||= domainRecipients.some((r) => r.certified);
        continue;
      }
      envelopeMessage ??= await buildTransportEnvelope(tx, { original: row.content! });
      envelope ??= await sign(envelopeMessage);
      await takeInChargeLocally(row, tx, domain, domainRecipients);
      for (const recipient of domainRecipients) await deliverLocally(row, livemode, recipient, envelope, subjectOf(envelopeMessage));
    }
    if (remote.length > 0) {
      const submittedAt = row.submittedAt.getTime();
      await enqueue(engine.db, engine.clock, [
        ...remote.map((domain) => ({
          kind: 'send_envelope', payload: { transaction: row.id, domain }, dedupeKey: `send_envelope:${row.id}:${domain}`, runAt: engine.clock.now(),
        })),
        // Local delivery is certified at once, and ordinary mail gets no receipts: only a PEC recipient handed to
        // another provider can be left waiting. Due from the submission, so a late or repeated dispatch queues the
        // same timers at the same instants.
        ...(certifiedElsewhere ? [
          { kind: 'timer', payload: { transaction: row.id, stage: '12h' }, dedupeKey: `timer12:${row.id}`, runAt: new Date(submittedAt + 12 * HOURS) },
          { kind: 'timer', payload: { transaction: row.id, stage: '24h' }, dedupeKey: `timer24:${row.id}`, runAt: new Date(submittedAt + 24 * HOURS) },
        ] : []),
      ]);
    }
  }

  /** A test-mode recipient outside the sandbox: certified as not delivered (`no-dominio`), never sent anywhere. */
  async function failWithoutRelay(row: typeof pecTransactions.$inferSelect, recipient: RecipientRow): Promise<void> {
    const [failed] = await engine.db
      .update(pecRecipients)
      .set({ status: 'failed', failedAt: engine.clock.now(), errorCode: 'no-dominio', errorDetail: `5.1.2 - ${engine.providerOf(false).name} - ${SANDBOX_NO_RELAY}` })
      .where(and(eq(pecRecipients.transactionId, row.id), eq(pecRecipients.address, recipient.address), sql`${pecRecipients.status} not in ('delivered', 'failed')`))
      .returning();
    const current = failed ?? (await engine.db.select().from(pecRecipients).where(and(eq(pecRecipients.transactionId, row.id), eq(pecRecipients.address, recipient.address))))[0];
    if (current?.status === 'failed') await certifyOutcome(row, current);
  }

  /**
   * The receiving point of this same provider (spec §2: processing happens also when sender and recipient share
   * the provider): the take-charge receipt goes to our own service mailbox.
   */
  async function takeInChargeLocally(row: typeof pecTransactions.$inferSelect, tx: PecTransaction, domain: string, recipients: RecipientRow[]): Promise<void> {
    const messageId = engine.derivedMessageId(row.pecMessageId, `presa-in-carico:${domain}`);
    const covered = recipients.map((r) => r.address);
    const serviceMailbox = (await engine.identity(!tx.provider.sandbox)).serviceAddress;
    const message = await buildTakeChargeReceipt(tx, { messageId, senderProviderMailbox: serviceMailbox, coveredRecipients: covered });
    const raw = await sign(message);
    const owner = { mailboxId: row.mailboxId, partnerId: row.partnerId };
    await engine.db.transaction(async (db) => {
      const stored = await storeMessage(db, {
        mailboxId: null, folder: 'inbox', kind: 'take_charge', content: raw, messageId, pecMessageId: row.pecMessageId,
        subject: subjectOf(message), fromAddress: serviceMailbox, dedupeKey: `take_charge:${row.pecMessageId}:${domain}`, now: engine.clock.now(),
      });
      if (!stored) return;
      await db
        .update(pecRecipients)
        .set({ status: 'taken_in_charge', takenInChargeAt: tx.at })
        .where(and(eq(pecRecipients.transactionId, row.id), inArray(pecRecipients.address, covered), eq(pecRecipients.status, 'pending')));
      await appendLog(db, [
        logEntry(tx, 'BustaTrasporto', { relatedMessageIds: [row.pecMessageId], details: { dominio: domain, tipo_ricevuta: row.receiptType } }, owner),
        logEntry(tx, 'PresaInCarico', { relatedMessageIds: [messageId], details: { ricezione: covered } }, owner),
      ]);
    });
  }

  /**
   * The delivery point for a local recipient: stores the envelope (once) and issues the delivery receipt, or the
   * non-delivery notice with the reason. The outcome and its instant are recorded first, so a retry certifies the
   * same outcome at the same time.
   */
  async function deliverLocally(row: typeof pecTransactions.$inferSelect, livemode: boolean, recipient: RecipientRow, envelope: Buffer, envelopeSubject: string): Promise<void> {
    const outcome = await engine.db.transaction(async (db) => {
      const [current] = await db.select().from(pecRecipients)
        .where(and(eq(pecRecipients.transactionId, row.id), eq(pecRecipients.address, recipient.address))).for('update');
      if (current!.status === 'delivered' || current!.status === 'failed') return current!;
      const now = engine.clock.now();
      // The recipient mailbox of the sender's world: the same address may exist once live and once in test.
      const [mailbox] = await db.select({ id: mailboxes.id, status: mailboxes.status }).from(mailboxes)
        .where(and(eq(mailboxes.address, recipient.address), eq(mailboxes.livemode, livemode))).for('update');
      let failure: DeliveryFailure | null = null;
      if (!mailbox) failure = { error: 'no-dest', status: '5.1.1', description: 'indirizzo non valido' };
      else if (mailbox.status !== 'active') failure = { error: 'altro', status: '5.2.1', description: 'casella disattivata o sospesa' };
      else if (!(await inboxHasRoom(db, mailbox.id, envelope.length))) failure = { error: 'altro', status: '5.2.2', description: 'casella piena' };
      if (!failure) {
        await storeMessage(db, {
          mailboxId: mailbox!.id, folder: 'inbox', kind: 'transport_envelope', content: envelope, messageId: row.pecMessageId,
          pecMessageId: row.pecMessageId, subject: envelopeSubject, fromAddress: row.sender, dedupeKey: `envelope:${row.pecMessageId}`, now,
        });
      }
      const [updated] = await db
        .update(pecRecipients)
        .set(failure
          ? { status: 'failed', failedAt: now, errorCode: failure.error, errorDetail: `${failure.status} - ${engine.providerOf(livemode).name} - ${failure.description}` }
          : { status: 'delivered', deliveredAt: now })
        .where(and(eq(pecRecipients.transactionId, row.id), eq(pecRecipients.address, recipient.address)))
        .returning();
      return updated!;
    });
    await certifyOutcome(row, outcome);
  }

  /** The receipt or notice about one recipient's outcome, to the sender. */
  async function certifyOutcome(row: typeof pecTransactions.$inferSelect, recipient: RecipientRow): Promise<void> {
    const delivered = recipient.status === 'delivered';
    const { tx } = await engine.transactionFacts(row.id, (delivered ? recipient.deliveredAt : recipient.failedAt)!);
    const messageId = engine.derivedMessageId(row.pecMessageId, `${delivered ? 'consegna' : 'errore-consegna'}:${recipient.address}`);
    const owner = { mailboxId: row.mailboxId, partnerId: row.partnerId };
    if (delivered) {
      const message = await buildDeliveryReceipt(tx, { messageId, recipient: recipient.address, postacert: row.content! });
      const variant = deliveryReceiptVariant(tx.receiptType, tx.recipients, recipient.address);
      await storeForSender(row, { raw: await sign(message), messageId, subject: subjectOf(message), kind: 'delivery' }, `delivery:${row.id}:${recipient.address}`, [
        logEntry(tx, 'Consegna', { relatedMessageIds: [messageId], details: { consegna: recipient.address, tipo_ricevuta: variant } }, owner),
      ], { status: 'delivered', recipient: recipient.address, occurredAt: tx.at });
    } else {
      const [status, ...rest] = (recipient.errorDetail ?? '5.0.0 - - errore').split(' - ');
      const failure: DeliveryFailure = { error: recipient.errorCode as DeliveryFailure['error'], status: status!, description: rest.slice(1).join(' - ') };
      const message = await buildNonDeliveryNotice(tx, { messageId, recipient: recipient.address, failure });
      await storeForSender(row, { raw: await sign(message), messageId, subject: subjectOf(message), kind: 'non_delivery' }, `non_delivery:${row.id}:${recipient.address}`, [
        logEntry(tx, 'MancataConsegna', { relatedMessageIds: [messageId], details: { consegna: recipient.address, errore: recipient.errorCode, errore_esteso: recipient.errorDetail } }, owner),
      ], { status: 'not_delivered', recipient: recipient.address, error: recipient.errorCode, occurredAt: tx.at });
    }
  }

  /**
   * Sends the envelope to another provider (or, for non-PEC recipients, to their mail server as ordinary mail)
   * over SMTP. A transient failure throws, and the queue retries with backoff; the 12/24 h timers tell the sender
   * when nothing arrives. A permanent refusal of a recipient is certified as a non-delivery.
   */
  async function sendEnvelope(payload: Record<string, unknown>): Promise<void> {
    const transactionId = payload.transaction as string;
    const domain = payload.domain as string;
    const [head] = await engine.db.select({ submittedAt: pecTransactions.submittedAt }).from(pecTransactions).where(eq(pecTransactions.id, transactionId));
    const { row, tx, recipients, livemode } = await engine.transactionFacts(transactionId, head!.submittedAt);
    const targets = recipients.filter((r) => domainOf(r.address) === domain && r.status !== 'failed');
    if (targets.length === 0) return;
    if (!livemode) {
      // Never queued for a test transaction (dispatch does not); should one exist, nothing leaves the provider.
      for (const recipient of targets) await failWithoutRelay(row, recipient);
      return;
    }
    if (engine.clock.now().getTime() - row.submittedAt.getTime() >= QUEUE_LIFETIME_MS) {
      // Abandoned, as every PEC MTA must; the 24 h timeout notice has told the sender about PEC recipients (spec §4.5).
      engine.log?.warn({ transaction: row.id, domain }, 'PEC envelope not handed over within its queue lifetime: abandoned');
      return;
    }
    const envelopeMessage = await buildTransportEnvelope(tx, { original: row.content! });
    const envelope = await sign(envelopeMessage);
    const certified = targets.some((r) => r.certified);
    const route = await routeFor(domain, { routes: engine.config.pec.smtp.routes, dnsServers: engine.config.dnsServers, dnsTimeoutMs: engine.config.dnsTimeoutMs });
    const outcome = await sendOverSmtp(route, { mailFrom: row.sender, rcptTo: targets.map((r) => r.address), raw: envelope }, {
      // PEC providers must talk TLS to each other (spec §9); ordinary mail servers may not offer it.
      requireTls: certified,
      rejectUnauthorized: engine.config.pec.smtp.verifyPeerTls,
      clientName: engine.serviceDomain,
    });
    const owner = { mailboxId: row.mailboxId, partnerId: row.partnerId };
    await engine.db.transaction(async (db) => {
      // The provider keeps what it handed over; the copy also makes the log entry happen once per domain.
      const stored = await storeMessage(db, {
        mailboxId: null, folder: 'sent', kind: 'transport_envelope', content: envelope, messageId: row.pecMessageId, pecMessageId: row.pecMessageId,
        subject: subjectOf(envelopeMessage),
        fromAddress: row.sender, dedupeKey: `outbound:${row.pecMessageId}:${domain}`, now: engine.clock.now(),
      });
      if (stored) await appendLog(db, [logEntry(tx, 'BustaTrasporto', { relatedMessageIds: [row.pecMessageId], details: { dominio: domain, inoltro: `${route.host}:${route.port}`, accettati: outcome.accepted } }, owner)]);
      for (const rejected of outcome.rejected) {
        await db
          .update(pecRecipients)
          .set({ status: 'failed', failedAt: engine.clock.now(), errorCode: 'no-dest', errorDetail: `5.1.1 - ${engine.provider.name} - ${rejected.response}` })
          .where(and(eq(pecRecipients.transactionId, row.id), eq(pecRecipients.address, rejected.address), sql`${pecRecipients.status} not in ('delivered', 'failed')`));
      }
    });
    for (const rejected of outcome.rejected) {
      const [recipient] = await engine.db.select().from(pecRecipients).where(and(eq(pecRecipients.transactionId, row.id), eq(pecRecipients.address, rejected.address)));
      if (recipient?.status === 'failed') await certifyOutcome(row, recipient);
    }
  }

  /**
   * Delivery timers (spec §4.5), per recipient of another provider: at 12 h a delay warning for those of which
   * nothing (neither take-charge nor delivery receipt) arrived; at 24 h the final notice for those still not
   * delivered. After that the provider stops tracking.
   */
  async function timer(payload: Record<string, unknown>): Promise<void> {
    const transactionId = payload.transaction as string;
    const stage = payload.stage as '12h' | '24h';
    const late = await engine.db
      .select()
      .from(pecRecipients)
      .where(and(
        eq(pecRecipients.transactionId, transactionId),
        eq(pecRecipients.certified, true),
        stage === '12h' ? eq(pecRecipients.status, 'pending') : inArray(pecRecipients.status, ['pending', 'taken_in_charge']),
        stage === '12h' ? isNull(pecRecipients.delayWarnedAt) : isNull(pecRecipients.timedOutAt),
      ));
    for (const recipient of late) {
      const now = engine.clock.now();
      const { row, tx } = await engine.transactionFacts(transactionId, now);
      const messageId = engine.derivedMessageId(row.pecMessageId, `timeout-${stage}:${recipient.address}`);
      const message = await buildDeliveryTimeoutNotice(tx, { messageId, recipient: recipient.address, stage });
      const raw = await sign(message);
      await engine.db.transaction(async (db) => {
        const stored = await storeMessage(db, {
          mailboxId: row.mailboxId, folder: 'receipts', kind: stage === '12h' ? 'delay_warning' : 'timeout', content: raw, messageId,
          pecMessageId: row.pecMessageId, subject: subjectOf(message), fromAddress: `posta-certificata@${engine.serviceDomain}`, dedupeKey: `timeout-${stage}:${row.id}:${recipient.address}`, now,
        });
        if (!stored) return;
        await db
          .update(pecRecipients)
          .set(stage === '12h' ? { delayWarnedAt: now } : { timedOutAt: now })
          .where(and(eq(pecRecipients.transactionId, row.id), eq(pecRecipients.address, recipient.address)));
        await appendLog(db, [logEntry(tx, stage === '12h' ? 'MancataConsegna12h' : 'MancataConsegna24h', {
          relatedMessageIds: [messageId], details: { consegna: recipient.address },
        }, { mailboxId: row.mailboxId, partnerId: row.partnerId })]);
        // The 12 h warning is not an outcome; the 24 h notice is the final one the sender gets (spec §4.5).
        if (stage === '24h') await recordMessageEvent(db, engine.clock, row, { status: 'not_delivered', recipient: recipient.address, error: 'altro', occurredAt: now });
      });
    }
  }

  return { acceptance, dispatch, send_envelope: sendEnvelope, timer };
}
