import { createHash } from 'node:crypto';
import { and, eq, inArray, isNull, lt, sql } from 'drizzle-orm';
import addressparser from 'nodemailer/lib/addressparser/index.js';
import { mailboxes, mailboxMessages, pecInboundMessages, pecRecipients, pecTransactions, type Db } from '@pec-partner/db';
import { deleteInBatches } from '../jobs/batches.ts';
import { domainOf } from './addresses.ts';
import type { Clock } from '../clock.ts';
import { newId } from '../ids.ts';
import type { PecEngine } from './engine.ts';
import { appendLog, type LogEntryInput, type LogEvent } from './log-register.ts';
import { recordMessageEvent } from './message-events.ts';
import {
  buildAnomalyEnvelope, buildDeliveryReceipt, buildNonDeliveryNotice, buildTakeChargeReceipt, buildVirusDetectionNotice,
  buildVirusNonDeliveryNotice, signAndAssemble, type DeliveryFailure, type PecTransaction, type SystemMessage,
} from './messages/index.ts';
import { inspectPecMessage } from './inspect.ts';
import { decodeHeaderText } from './messages/raw-entity.ts';
import type { ProviderRecord } from './provider-index.ts';
import { enqueue, type JobHandler } from './queue.ts';
import { QUEUE_LIFETIME_MS, routeFor, sendOverSmtp } from './smtp-client.ts';
import { inboxHasRoom, storeMessage } from './store.ts';
import type { ParsedDaticert } from './daticert-parse.ts';
import { verifyPecMessage, type PecVerification } from './verify.ts';

const subjectOf = (message: SystemMessage): string => decodeHeaderText(message.headers.find(([name]) => name === 'Subject')?.[1] ?? '');
const messageIdOf = (message: SystemMessage): string => (message.headers.find(([name]) => name === 'Message-ID')?.[1] ?? '').replace(/^<|>$/g, '');
const digest = (raw: Buffer): string => createHash('sha256').update(raw).digest('hex');
/** Names a set of recipients in a bounded number of characters, whatever their order or number. */
const recipientsKey = (addresses: readonly string[]): string => digest(Buffer.from([...addresses].sort().join('\n')));

const NOTIFICATION_EVENTS: Record<string, LogEvent> = {
  'presa-in-carico': 'PresaInCarico',
  'avvenuta-consegna': 'Consegna',
  'errore-consegna': 'MancataConsegna',
  'preavviso-errore-consegna': 'MancataConsegna12h',
  'rilevazione-virus': 'RilevazioneVirus',
  accettazione: 'Ricezione',
  'non-accettazione': 'Ricezione',
};

/**
 * The receiving and delivery points for what arrives over SMTP from other providers or the Internet (spec §2,
 * §7.3): a valid transport envelope is taken in charge and delivered unmodified, with receipts sent back; a valid
 * notification about one of our transactions is delivered to its holder and updates the transaction; anything
 * else reaches the recipients inside an anomaly envelope. Messages we generate for other providers leave through
 * `send_message` jobs.
 */
export function receivingHandlers(engine: PecEngine): Record<string, JobHandler> {
  // What arrives from outside belongs to the live world only: the live provider signs, and only live mailboxes
  // (`liveMailbox`) and live transactions are ever looked up here. The sandbox receives nothing from outside.
  const sign = async (message: SystemMessage): Promise<Buffer> => signAndAssemble(message, await engine.signer(true));
  const liveMailbox = (address: string) => and(eq(mailboxes.address, address), eq(mailboxes.livemode, true));

  const logEntry = (event: LogEvent, fields: Omit<LogEntryInput, 'event' | 'provider' | 'details'> & { details?: Record<string, unknown> }): LogEntryInput => ({
    event, provider: engine.provider.name, details: {}, ...fields,
  });

  /**
   * Keeps the provider's copy of a message it sends to another provider (service mailbox, `sent`) and queues its
   * delivery, in one transaction with its log entry: the copy is the proof, and its dedupe key makes the whole
   * step happen once.
   */
  async function sendOut(raw: Buffer, message: SystemMessage, to: string, dedupeKey: string, log: LogEntryInput[]): Promise<void> {
    const now = engine.clock.now();
    await engine.db.transaction(async (db) => {
      const stored = await storeMessage(db, {
        mailboxId: null, folder: 'sent', kind: kindOf(message), content: raw, messageId: messageIdOf(message), pecMessageId: log[0]?.messageId ?? null,
        subject: subjectOf(message), fromAddress: (await engine.identity()).serviceAddress, dedupeKey, now,
      });
      if (!stored) return;
      await appendLog(db, log);
      await enqueue(db, engine.clock, [{ kind: 'send_message', payload: { copy: dedupeKey, to }, dedupeKey: `send:${dedupeKey}`, runAt: now }]);
    });
  }

  function kindOf(message: SystemMessage) {
    const type = message.headers.find(([name]) => name === 'X-Ricevuta')?.[1];
    switch (type) {
      case 'presa-in-carico': return 'take_charge' as const;
      case 'avvenuta-consegna': return 'delivery' as const;
      case 'rilevazione-virus': return 'virus_detection' as const;
      default: return 'non_delivery' as const;
    }
  }

  function transactionOf(verification: PecVerification, at: Date): PecTransaction {
    const d = verification.daticert!;
    const cc = new Set(addressparser((verification.headers.get('cc') ?? []).join(', '), { flatten: true }).map((a) => a.address.toLowerCase()));
    return {
      provider: engine.provider,
      at,
      pecMessageId: d.identificativo,
      originalMessageId: d.msgid ?? `<${d.identificativo}>`,
      sender: d.mittente,
      recipients: d.destinatari.map((r) => ({ address: r.address, type: r.tipo, header: cc.has(r.address.toLowerCase()) ? 'Cc' as const : 'To' as const })),
      subject: d.oggetto ?? '',
      ...(d.risposte && d.risposte !== d.mittente ? { replyTo: d.risposte } : {}),
      receiptType: d.ricevuta ?? 'completa',
    };
  }

  async function receiveEnvelope(raw: Buffer, verification: PecVerification, rcptTo: string[], sender: ProviderRecord): Promise<void> {
    const now = engine.clock.now();
    const tx = transactionOf(verification, now);
    const base = { messageId: tx.pecMessageId, sender: tx.sender, recipients: tx.recipients.map((r) => r.address), subject: tx.subject, occurredAt: now };

    // One take-charge receipt per SMTP transaction, covering its recipients, to the sending provider's service
    // mailbox (spec §4.6). The same envelope may arrive in several transactions (one per recipient domain, for
    // one), and together their receipts must cover every recipient: each is keyed by the recipients it covers.
    const covered = recipientsKey(rcptTo);
    const takeChargeId = engine.derivedMessageId(tx.pecMessageId, `presa-in-carico:${covered}`);
    const takeCharge = await buildTakeChargeReceipt(tx, { messageId: takeChargeId, senderProviderMailbox: sender.mailReceipt, coveredRecipients: rcptTo });
    await sendOut(await sign(takeCharge), takeCharge, sender.mailReceipt, `take_charge:${tx.pecMessageId}:${covered}`, [
      logEntry('PresaInCarico', { ...base, relatedMessageIds: [takeChargeId], mailboxId: null, partnerId: null, details: { ricezione: rcptTo, gestore_mittente: sender.providerName } }),
    ]);

    const virus = await engine.scanner.scan(raw);
    for (const address of rcptTo) {
      const [mailbox] = await engine.db.select({ id: mailboxes.id, partnerId: mailboxes.partnerId, status: mailboxes.status }).from(mailboxes).where(liveMailbox(address));
      const owner = { mailboxId: mailbox?.id ?? null, partnerId: mailbox?.partnerId ?? null };
      if (virus) {
        // Not delivered; kept (service mailbox archive) for the 30 months the rules require.
        const id = engine.derivedMessageId(tx.pecMessageId, `rilevazione-virus:${address}`);
        const notice = await buildVirusDetectionNotice(tx, { messageId: id, senderProviderMailbox: sender.mailReceipt, recipient: address, virus });
        await engine.db.transaction(async (db) => {
          await storeMessage(db, { mailboxId: null, folder: 'archive', kind: 'transport_envelope', content: raw, messageId: tx.pecMessageId, pecMessageId: tx.pecMessageId, subject: tx.subject, fromAddress: tx.sender, dedupeKey: `infected:${tx.pecMessageId}`, now });
        });
        await sendOut(await sign(notice), notice, sender.mailReceipt, `virus_detection:${tx.pecMessageId}:${address}`, [
          logEntry('RilevazioneVirus', { ...base, relatedMessageIds: [id], ...owner, details: { consegna: address, virus } }),
        ]);
        continue;
      }
      const outcome = await engine.db.transaction(async (db): Promise<{ at: Date; failure: DeliveryFailure | null }> => {
        if (!mailbox) return { at: now, failure: { error: 'no-dest', status: '5.1.1', description: 'indirizzo non valido' } };
        const [existing] = await db.select({ storedAt: mailboxMessages.storedAt }).from(mailboxMessages)
          .where(and(eq(mailboxMessages.mailboxId, mailbox.id), eq(mailboxMessages.dedupeKey, `envelope:${tx.pecMessageId}`)));
        if (existing) return { at: existing.storedAt, failure: null };
        if (mailbox.status !== 'active') return { at: now, failure: { error: 'altro', status: '5.2.1', description: 'casella disattivata o sospesa' } };
        if (!(await inboxHasRoom(db, mailbox.id, raw.length))) return { at: now, failure: { error: 'altro', status: '5.2.2', description: 'casella piena' } };
        // Delivered unmodified, as received (spec §2.2.3).
        await storeMessage(db, {
          mailboxId: mailbox.id, folder: 'inbox', kind: 'transport_envelope', content: raw, messageId: tx.pecMessageId, pecMessageId: tx.pecMessageId,
          subject: decodeHeaderText(verification.headers.get('subject')?.[0] ?? ''), fromAddress: tx.sender, dedupeKey: `envelope:${tx.pecMessageId}`, now,
        });
        return { at: now, failure: null };
      });
      const { failure } = outcome;
      const deliveredAt = outcome.at;
      const at = { ...tx, at: deliveredAt };
      if (failure) {
        const id = engine.derivedMessageId(tx.pecMessageId, `errore-consegna:${address}`);
        const notice = await buildNonDeliveryNotice(at, { messageId: id, recipient: address, failure });
        await sendOut(await sign(notice), notice, tx.sender, `non_delivery:${tx.pecMessageId}:${address}`, [
          logEntry('MancataConsegna', { ...base, occurredAt: deliveredAt, relatedMessageIds: [id], ...owner, details: { consegna: address, errore: failure.error } }),
        ]);
      } else {
        const id = engine.derivedMessageId(tx.pecMessageId, `consegna:${address}`);
        const receipt = await buildDeliveryReceipt(at, { messageId: id, recipient: address, postacert: (await inspectPecMessage(raw)).postacert ?? Buffer.alloc(0) });
        await sendOut(await sign(receipt), receipt, tx.sender, `delivery:${tx.pecMessageId}:${address}`, [
          logEntry('Consegna', { ...base, occurredAt: deliveredAt, relatedMessageIds: [id], ...owner, details: { consegna: address, gestore_mittente: sender.providerName } }),
        ]);
      }
    }
  }

  /** A receipt from another provider about one of our transactions: to its holder, and into the transaction's state. */
  async function receiveNotification(raw: Buffer, verification: PecVerification, rcptTo: string[]): Promise<void> {
    const d = verification.daticert!;
    const now = engine.clock.now();
    const service = (await engine.identity()).serviceAddress;
    // A live transaction only: test messages never left this provider, so no other provider can speak of them.
    const [found] = await engine.db.select({ transaction: pecTransactions }).from(pecTransactions)
      .innerJoin(mailboxes, eq(mailboxes.id, pecTransactions.mailboxId))
      .where(and(eq(pecTransactions.pecMessageId, d.identificativo), eq(mailboxes.livemode, true)));
    const transaction = found?.transaction;
    const messageId = (verification.headers.get('message-id')?.[0] ?? `<${digest(raw)}>`).replace(/^<|>$/g, '');
    const kind = kindForType(d.tipo);
    await engine.db.transaction(async (db) => {
      let storedAny = false;
      for (const address of rcptTo) {
        const [mailbox] = address === service ? [] : await db.select({ id: mailboxes.id }).from(mailboxes).where(liveMailbox(address));
        if (address !== service && !mailbox) continue;
        storedAny = (await storeMessage(db, {
          mailboxId: mailbox?.id ?? null, folder: mailbox ? 'receipts' : 'inbox', kind, content: raw, messageId, pecMessageId: d.identificativo,
          subject: decodeHeaderText(verification.headers.get('subject')?.[0] ?? ''), fromAddress: (verification.headers.get('from')?.[0] ?? '').replace(/^.*<|>.*$/g, ''),
          dedupeKey: `notice:${messageId}`, now,
        })) || storedAny;
      }
      if (!storedAny || !transaction) return;
      const at = d.instant;
      const recipient = (d.consegna ?? '').toLowerCase();
      switch (d.tipo) {
        case 'presa-in-carico':
          await db.update(pecRecipients).set({ status: 'taken_in_charge', takenInChargeAt: at })
            .where(and(eq(pecRecipients.transactionId, transaction.id), inArray(pecRecipients.address, d.ricezione.map((a) => a.toLowerCase())), eq(pecRecipients.status, 'pending')));
          break;
        case 'avvenuta-consegna': {
          const delivered = await db.update(pecRecipients).set({ status: 'delivered', deliveredAt: at })
            .where(and(eq(pecRecipients.transactionId, transaction.id), eq(pecRecipients.address, recipient), sql`${pecRecipients.status} <> 'delivered'`))
            .returning({ address: pecRecipients.address });
          // A second receipt for the same recipient (another Message-ID) stores a copy but is no new outcome.
          if (delivered.length > 0) await recordMessageEvent(db, engine.clock, transaction, { status: 'delivered', recipient, occurredAt: at });
          break;
        }
        case 'errore-consegna':
        case 'rilevazione-virus': {
          // The first certified failure stands; a later one for the same recipient changes nothing.
          const failed = await db.update(pecRecipients).set({ status: 'failed', failedAt: at, errorCode: d.errore, errorDetail: d.erroreEsteso ?? null })
            .where(and(eq(pecRecipients.transactionId, transaction.id), eq(pecRecipients.address, recipient), sql`${pecRecipients.status} not in ('delivered', 'failed')`))
            .returning({ address: pecRecipients.address });
          // A virus found there reaches our sender as our own non-delivery notice for virus, reported below.
          if (failed.length > 0 && d.tipo === 'errore-consegna') {
            await recordMessageEvent(db, engine.clock, transaction, { status: 'not_delivered', recipient, error: d.errore, occurredAt: at });
          }
          break;
        }
      }
      await appendLog(db, [logEntry(NOTIFICATION_EVENTS[d.tipo] ?? 'Ricezione', {
        occurredAt: now, messageId: d.identificativo, relatedMessageIds: [messageId], sender: d.mittente, recipients: d.destinatari.map((r) => r.address),
        subject: d.oggetto ?? '', mailboxId: transaction.mailboxId, partnerId: transaction.partnerId,
        details: { ricevuto_da: verification.signature.provider?.name, consegna: d.consegna ?? null, ricezione: d.ricezione, errore: d.errore },
      })]);
    });

    // The other provider found a virus: our sender learns it with a non-delivery notice for virus (spec §4.9).
    if (d.tipo === 'rilevazione-virus' && transaction && d.consegna) {
      const { tx } = await engine.transactionFacts(transaction.id, now);
      const id = engine.derivedMessageId(transaction.pecMessageId, `errore-consegna-virus:${d.consegna}`);
      const notice = await buildVirusNonDeliveryNotice(tx, { messageId: id, recipient: d.consegna, virus: d.erroreEsteso ?? 'virus' });
      const signed = await sign(notice);
      await engine.db.transaction(async (db) => {
        const stored = await storeMessage(db, {
          mailboxId: transaction.mailboxId, folder: 'receipts', kind: 'non_delivery_virus', content: signed, messageId: id, pecMessageId: transaction.pecMessageId,
          subject: subjectOf(notice), fromAddress: service, dedupeKey: `non_delivery_virus:${transaction.id}:${d.consegna}`, now,
        });
        if (stored) {
          await appendLog(db, [logEntry('MancataConsegnaVirus', {
            occurredAt: now, messageId: transaction.pecMessageId, relatedMessageIds: [id], sender: transaction.sender, recipients: [d.consegna!],
            subject: transaction.subject, mailboxId: transaction.mailboxId, partnerId: transaction.partnerId, details: { consegna: d.consegna },
          })]);
          await recordMessageEvent(db, engine.clock, transaction, { status: 'not_delivered', recipient: d.consegna!.toLowerCase(), error: 'virus', occurredAt: now });
        }
      });
    }
  }

  function kindForType(tipo: string) {
    switch (tipo) {
      case 'presa-in-carico': return 'take_charge' as const;
      case 'avvenuta-consegna': return 'delivery' as const;
      case 'errore-consegna': return 'non_delivery' as const;
      case 'preavviso-errore-consegna': return 'delay_warning' as const;
      case 'rilevazione-virus': return 'virus_detection' as const;
      case 'accettazione': return 'acceptance' as const;
      default: return 'non_acceptance' as const;
    }
  }

  /** Whatever cannot be certified reaches its recipients wrapped in an anomaly envelope signed by us (spec §4.7). */
  async function receiveAnomaly(raw: Buffer, verification: PecVerification, rcptTo: string[], reason?: string): Promise<void> {
    const now = engine.clock.now();
    const error = reason ?? anomalyReason(verification);
    const id = engine.derivedMessageId(digest(raw), 'anomalia');
    const envelope = await buildAnomalyEnvelope({ provider: engine.provider, at: now, received: raw, error, messageIdIfMissing: id });
    const signed = await sign(envelope);
    const messageId = messageIdOf(envelope);
    for (const address of rcptTo) {
      const [mailbox] = await engine.db.select({ id: mailboxes.id, partnerId: mailboxes.partnerId, status: mailboxes.status }).from(mailboxes).where(liveMailbox(address));
      if (!mailbox) continue;
      await engine.db.transaction(async (db) => {
        const stored = await storeMessage(db, {
          mailboxId: mailbox.id, folder: 'inbox', kind: 'anomaly_envelope', content: signed, messageId, pecMessageId: null,
          subject: subjectOf(envelope), fromAddress: (verification.headers.get('from')?.[0] ?? '').replace(/^.*<|>.*$/g, ''), dedupeKey: `anomaly:${digest(raw)}`, now,
        });
        if (stored) {
          await appendLog(db, [logEntry('BustaAnomalia', {
            occurredAt: now, messageId, relatedMessageIds: [messageId], sender: (verification.headers.get('from')?.[0] ?? ''), recipients: [address],
            subject: decodeHeaderText(verification.headers.get('subject')?.[0] ?? ''), mailboxId: mailbox.id, partnerId: mailbox.partnerId,
            details: { eccezioni: error, problemi: verification.problems },
          })]);
        }
      });
    }
  }

  async function inbound(payload: Record<string, unknown>): Promise<void> {
    const id = payload.message as string;
    const [message] = await engine.db
      // Base64 rather than postgres.js's hex, as when it was stored (Buffer.from skips the line breaks encode adds).
      .select({ raw: sql<string>`encode(${pecInboundMessages.raw}, 'base64')`, rcptTo: pecInboundMessages.rcptTo })
      .from(pecInboundMessages)
      .where(eq(pecInboundMessages.id, id));
    if (!message) {
      // Only a processed message is ever purged: this is a repeat of a job that ran to the end long ago.
      engine.log?.warn({ inboundMessage: id }, 'inbound message already processed and purged: nothing to do');
      return;
    }
    await processInbound(Buffer.from(message.raw, 'base64'), message.rcptTo.map((a) => a.toLowerCase()));
    await engine.db.update(pecInboundMessages).set({ processedAt: engine.clock.now() })
      .where(and(eq(pecInboundMessages.id, id), isNull(pecInboundMessages.processedAt)));
  }

  async function processInbound(raw: Buffer, rcptTo: string[]): Promise<void> {
    const index = await engine.index();
    const verification = await verifyPecMessage(raw, index);
    const signer = verification.signature.provider ? index.all().find((r) => r.providerName === verification.signature.provider!.name) : undefined;
    if (verification.consistent && verification.daticert && signer) {
      if (verification.claimed === 'posta-certificata') return receiveEnvelope(raw, verification, rcptTo, signer);
      if (verification.claimed !== 'anomalia') {
        if (speaksFor(signer, verification.daticert)) return receiveNotification(raw, verification, rcptTo);
        return receiveAnomaly(raw, verification, rcptTo, 'la ricevuta è firmata da un gestore che non gestisce il dominio del destinatario');
      }
    }
    return receiveAnomaly(raw, verification, rcptTo);
  }

  /** Hands a message we generated (kept in the service mailbox) to the next hop over TLS. */
  async function sendMessage(payload: Record<string, unknown>): Promise<void> {
    const [copy] = await engine.db.select().from(mailboxMessages).where(and(sql`${mailboxMessages.mailboxId} is null`, eq(mailboxMessages.dedupeKey, payload.copy as string)));
    if (!copy) throw new Error(`no stored copy for ${String(payload.copy)}`);
    const to = payload.to as string;
    if (engine.clock.now().getTime() - copy.storedAt.getTime() >= QUEUE_LIFETIME_MS) {
      // Abandoned, as every PEC MTA must; the copy in the service mailbox stays as the record of what was due.
      engine.log?.warn({ copy: copy.dedupeKey, to }, 'PEC message not handed over within its queue lifetime: abandoned');
      return;
    }
    const route = await routeFor(domainOf(to), { routes: engine.config.pec.smtp.routes, dnsServers: engine.config.dnsServers, dnsTimeoutMs: engine.config.dnsTimeoutMs });
    await sendOverSmtp(route, { mailFrom: (await engine.identity()).serviceAddress, rcptTo: [to], raw: copy.content }, {
      requireTls: true, rejectUnauthorized: engine.config.pec.smtp.verifyPeerTls, clientName: engine.serviceDomain,
    });
  }

  return { inbound, send_message: sendMessage };
}

/**
 * Whether the signing provider may certify what a notification states (spec §7.3, §4.6, §4.10): take-charge,
 * delivery and non-delivery are the recipient's provider's to issue, so the signer must manage the domain of every
 * recipient the notification speaks for. Without this any provider in the index could certify the delivery of
 * one of our messages to a mailbox it does not manage, and the transaction would record it as delivered.
 */
function speaksFor(signer: ProviderRecord, daticert: ParsedDaticert): boolean {
  const managed = new Set(signer.managedDomains.map((domain) => domain.toLowerCase()));
  switch (daticert.tipo) {
    case 'presa-in-carico':
      return daticert.ricezione.length > 0 && daticert.ricezione.every((address) => managed.has(domainOf(address)));
    case 'avvenuta-consegna':
    case 'errore-consegna':
    case 'rilevazione-virus':
      return daticert.consegna !== undefined && managed.has(domainOf(daticert.consegna));
    default:
      return true;
  }
}

/**
 * Why a received message cannot be certified, as the anomaly envelope's Italian text states it (spec §4.7, §7.3);
 * the verifier's own findings, in English, stay in the log entry for the operator.
 */
function anomalyReason(verification: PecVerification): string {
  if (verification.claimed === 'not-pec') return 'il messaggio non è un messaggio di posta certificata';
  if (!verification.signature.present) return 'firma assente';
  if (!verification.signature.valid) return 'firma non valida';
  if (!verification.signature.provider) return "la firma non è di un gestore presente nell'indice dei gestori di posta certificata";
  return 'il messaggio non è formalmente corretto';
}

/**
 * Durable before the SMTP 250: the message and the job that processes it commit together before the sending
 * provider is told it was taken. The job carries only the message's id, so claiming it reads no message bytes.
 * A repeated delivery (same bytes, same recipients) finds its job queued already and stores nothing: returns
 * whether this one was new.
 */
export async function acceptInbound(db: Db, clock: Clock, raw: Buffer, envelope: { mailFrom: string; rcptTo: string[] }): Promise<boolean> {
  const now = clock.now();
  const sha256 = digest(raw);
  const id = newId('inm', now);
  return db.transaction(async (tx) => {
    const queued = await enqueue(tx, clock, [{
      kind: 'inbound',
      payload: { message: id },
      // Hashed: a transaction may name hundreds of recipients, more than a unique index entry can hold.
      dedupeKey: `inbound:${sha256}:${recipientsKey(envelope.rcptTo)}`,
      runAt: now,
    }]);
    if (queued.length === 0) return false;
    await tx.insert(pecInboundMessages).values({
      id,
      // postgres.js sends bytea as hex text, twice the message's size; base64 is 4/3 of it. At the 100 MB limit
      // that measured about 0.4 GB of transient memory instead of 0.7 GB, while the sender waits for the 250.
      raw: sql`decode(${raw.toString('base64')}, 'base64')`,
      sizeBytes: raw.length,
      sha256,
      mailFrom: envelope.mailFrom,
      rcptTo: envelope.rcptTo,
      receivedAt: now,
    });
    return true;
  });
}

/**
 * How long a processed inbound message stays as received. Every mailbox it reached keeps its own copy, so this one
 * serves only the operator's diagnosis (why a message became an anomaly, a notice that did not match): a week
 * covers a weekend and the days a sender or partner takes to report a problem, while not keeping, longer than
 * needed, the content of mail for addresses that do not exist here (personal data kept nowhere else).
 */
export const INBOUND_RETENTION_MS = 7 * 86_400_000;
const PURGE_BATCH = 100;

/** Deletes processed inbound messages older than the retention, in batches: a single message may weigh 100 MB. */
export async function purgeProcessedInbound(db: Db, now: Date): Promise<number> {
  const cutoff = new Date(now.getTime() - INBOUND_RETENTION_MS);
  return deleteInBatches(PURGE_BATCH, async (limit) => {
    const batch = db.select({ id: pecInboundMessages.id }).from(pecInboundMessages).where(lt(pecInboundMessages.processedAt, cutoff)).limit(limit);
    return (await db.delete(pecInboundMessages).where(inArray(pecInboundMessages.id, batch)).returning({ id: pecInboundMessages.id })).length;
  });
}
