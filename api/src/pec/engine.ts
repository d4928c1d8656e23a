import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { and, eq, inArray } from 'drizzle-orm';
import type { FastifyBaseLogger } from 'fastify';
import MailComposer from 'nodemailer/lib/mail-composer/index.js';
import { domains, mailboxes, pecRecipients, pecTransactions, type Db, type ReceiptType } from '@pec-partner/db';
import { domainOf } from './addresses.ts';
import type { Clock } from '../clock.ts';
import type { AppConfig } from '../config.ts';
import { conflict, ProblemError } from '../http/problem.ts';
import { newId } from '../ids.ts';
import type { HolderPrincipal } from '../access/principals.ts';
import { assertMayPerform } from '../http/mailbox-access.ts';
import { checkSubmission } from './access-checks.ts';
import type { ProviderIdentity } from './identity.ts';
import { newPecMessageId } from './messages/msgid.ts';
import { toPostacert } from './messages/postacert.ts';
import type { PecTransaction, Provider } from './messages/transaction.ts';
import { ensureProviderIdentity, ensureSandboxIdentity, sandboxProviderName } from './provider.ts';
import { ProviderIndex, parseLdif, type ProviderRecord } from './provider-index.ts';
import { enqueue, JobQueue, type QueuedJob } from './queue.ts';
import { createSigner, type Signer } from './smime.ts';
import { storeMessage } from './store.ts';
import { parseSubmission } from './submission.ts';
import { assertProcessableMessage, INBOUND_MIME_LIMITS, SUBMISSION_MIME_LIMITS } from './mime-limits.ts';
import { eicarScanner, type VirusScanner } from './virus-scanner.ts';
import { certificateSha1Hex } from './identity.ts';
import { pipelineHandlers } from './pipeline.ts';
import { acceptInbound, receivingHandlers } from './receiving.ts';

export interface EngineDeps {
  db: Db;
  clock: Clock;
  config: AppConfig;
  log?: FastifyBaseLogger | undefined;
  scanner?: VirusScanner | undefined;
}

export interface SubmissionView {
  id: string;
  object: 'pec_submission';
  pec_message_id: string;
  status: 'accepted' | 'refused';
  refusal: string | null;
  submitted_at: string;
  recipients: Array<{ address: string; role: 'to' | 'cc'; certified: boolean }>;
}

export interface JsonSubmission {
  to: string[];
  cc?: string[] | undefined;
  subject: string;
  text?: string | undefined;
  html?: string | undefined;
  attachments?: Array<{ filename: string; content_type?: string | undefined; content_base64: string }> | undefined;
  receipt_type?: ReceiptType | undefined;
}

/**
 * The PEC engine of this provider: access point (submissions), the durable pipeline that signs and delivers
 * envelopes and receipts, and the provider's identity and index. It has no HTTP or SMTP code: the API routes and
 * the SMTP servers are front ends that call it.
 */
export class PecEngine {
  readonly db: Db;
  readonly clock: Clock;
  readonly config: AppConfig;
  readonly log: FastifyBaseLogger | undefined;
  readonly scanner: VirusScanner;
  readonly queue: JobQueue;
  #identity: Promise<ProviderIdentity> | undefined;
  #signer: Promise<Signer> | undefined;
  #index: Promise<ProviderIndex> | undefined;
  #sandboxIdentity: Promise<ProviderIdentity> | undefined;
  #sandboxSigner: Promise<Signer> | undefined;
  #sandboxIndex: Promise<ProviderIndex> | undefined;
  #workers: Promise<void>[] = [];
  #stopping = false;
  readonly #wakers = new Set<() => void>();

  constructor(deps: EngineDeps) {
    this.db = deps.db;
    this.clock = deps.clock;
    this.config = deps.config;
    this.log = deps.log;
    this.scanner = deps.scanner ?? eicarScanner;
    this.queue = new JobQueue(this.db, this.clock, { ...pipelineHandlers(this), ...receivingHandlers(this) }, (error, kind) => this.log?.error({ err: error, job: kind }, 'PEC job failed; it will be retried'));
  }

  /** The domain of the provider's service address (`posta-certificata@…`) and of its message ids. */
  get serviceDomain(): string {
    return this.config.providerDomains[0]!;
  }

  /** The live provider. */
  get provider(): Provider {
    return this.providerOf(true);
  }

  /**
   * The provider as it signs in a world: live, or the sandbox (test mode), whose name (daticert
   * `gestore-emittente`, its certificate's O and CN) says SANDBOX and whose messages are all marked as test.
   */
  providerOf(livemode: boolean): Provider {
    return livemode
      ? { name: this.config.pec.providerName, domain: this.serviceDomain }
      : { name: sandboxProviderName(this.config.pec.providerName), domain: this.serviceDomain, sandbox: true };
  }

  /** The signing identity of a world: the live provider's, or the sandbox's own (never in a provider index). */
  identity(livemode = true): Promise<ProviderIdentity> {
    if (!livemode) {
      this.#sandboxIdentity ??= ensureSandboxIdentity(this.db, this.clock, this.config.pec, this.serviceDomain);
      return this.#sandboxIdentity;
    }
    this.#identity ??= ensureProviderIdentity(this.db, this.clock, this.config.pec, this.serviceDomain);
    return this.#identity;
  }

  signer(livemode = true): Promise<Signer> {
    if (!livemode) {
      this.#sandboxSigner ??= this.identity(false).then(createSigner);
      return this.#sandboxSigner;
    }
    this.#signer ??= this.identity().then(createSigner);
    return this.#signer;
  }

  /**
   * The index a world verifies signatures against. Live: the configured index of other providers plus this
   * provider's own record. Sandbox: the sandbox's record alone (test messages never leave this provider, and no
   * live provider certifies anything in test mode).
   */
  index(livemode = true): Promise<ProviderIndex> {
    if (!livemode) {
      this.#sandboxIndex ??= (async () => new ProviderIndex([await this.ownRecord(false)]))();
      return this.#sandboxIndex;
    }
    this.#index ??= (async () => {
      const others = this.config.pec.providerIndexFile ? parseLdif(await readFile(this.config.pec.providerIndexFile, 'utf8')) : [];
      return new ProviderIndex([await this.ownRecord(), ...others.filter((r) => r.providerName !== this.config.pec.providerName)]);
    })();
    return this.#index;
  }

  /** This provider as the index lists it (spec §8): what `GET /v1/pec/provider-index` publishes (live). */
  async ownRecord(livemode = true): Promise<ProviderRecord> {
    const identity = await this.identity(livemode);
    const der = Buffer.from(identity.certificatePem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    return {
      dn: `providerName=${identity.providerName},o=postacert`,
      providerName: identity.providerName,
      managedDomains: await this.localDomains(livemode),
      mailReceipt: identity.serviceAddress,
      certificates: [der],
      certificateHashes: [certificateSha1Hex(der)],
    };
  }

  /** Domains whose mailboxes live here, in a world: the provider's own and every custom domain certified in it. */
  async localDomains(livemode = true): Promise<string[]> {
    const custom = await this.db.select({ name: domains.name }).from(domains)
      .where(and(inArray(domains.status, ['certified', 'degraded']), eq(domains.livemode, livemode)));
    return [...this.config.providerDomains, ...custom.map((d) => d.name)];
  }

  /**
   * Whether a domain's mailboxes live here, in a world: the provider's own domains are in both; a custom domain
   * is certified per world (the same name may be certified live by one partner and in test by another), so a
   * test sender's "ours" is a test-world certification and a live sender's a live one.
   */
  async isLocalDomain(domain: string, livemode = true): Promise<boolean> {
    const name = domain.toLowerCase();
    if (this.config.providerDomains.includes(name)) return true;
    const [row] = await this.db.select({ id: domains.id }).from(domains)
      .where(and(eq(domains.name, name), inArray(domains.status, ['certified', 'degraded']), eq(domains.livemode, livemode)));
    return row !== undefined;
  }

  /** Whether a recipient address is PEC (`certificato`): hosted here (in the sender's world) or at a provider in the index. */
  async isCertifiedAddress(address: string, livemode = true): Promise<boolean> {
    const domain = domainOf(address);
    return (await this.isLocalDomain(domain, livemode)) || (await this.index()).isCertifiedDomain(domain);
  }

  maxMessageBytes(): number {
    return this.config.pec.maxTotalBytes;
  }

  maxRecipients(): number {
    return this.config.pec.maxRecipients;
  }

  /**
   * A deterministic Message-ID for a system message about a transaction: a retried pipeline step rebuilds the
   * same message with the same id, so what was stored or sent once is recognised.
   */
  derivedMessageId(pecMessageId: string, purpose: string): string {
    const seed = createHash('sha256').update(pecMessageId).update('\0').update(purpose).digest();
    return newPecMessageId(this.serviceDomain, this.clock.now(), (size) => seed.subarray(0, size));
  }

  /** The builders' view of a stored transaction, at the instant of the event being certified. */
  async transactionFacts(transactionId: string, at: Date): Promise<{ row: typeof pecTransactions.$inferSelect; tx: PecTransaction; recipients: Array<typeof pecRecipients.$inferSelect>; livemode: boolean }> {
    const [found] = await this.db.select({ row: pecTransactions, livemode: mailboxes.livemode }).from(pecTransactions)
      .innerJoin(mailboxes, eq(mailboxes.id, pecTransactions.mailboxId))
      .where(eq(pecTransactions.id, transactionId));
    if (!found) throw new Error(`transaction ${transactionId} not found`);
    const { row, livemode } = found;
    const recipients = await this.db.select().from(pecRecipients).where(eq(pecRecipients.transactionId, transactionId));
    return {
      row,
      recipients,
      livemode,
      tx: {
        // The sending mailbox's world: a test mailbox's transaction is certified by the sandbox, marked as test.
        provider: this.providerOf(livemode),
        at,
        pecMessageId: row.pecMessageId,
        originalMessageId: row.originalMessageId ?? `<${row.pecMessageId}>`,
        sender: row.sender,
        recipients: recipients.map((r) => ({ address: r.address, type: r.certified ? 'certificato' : 'esterno', header: r.role === 'cc' ? 'Cc' : 'To' })),
        subject: row.subject,
        ...(row.replyTo ? { replyTo: row.replyTo } : {}),
        receiptType: row.receiptType,
      },
    };
  }

  // ---------------------------------------------------------------------------------------------------------
  // Access point

  /** A message composed from JSON by the API: the same checks apply as to a raw submission. */
  async submitJson(holder: HolderPrincipal, input: JsonSubmission): Promise<SubmissionView> {
    const composer = new MailComposer({
      from: holder.address,
      to: input.to,
      ...(input.cc?.length ? { cc: input.cc } : {}),
      subject: input.subject,
      ...(input.text !== undefined ? { text: input.text } : {}),
      ...(input.html !== undefined ? { html: input.html } : {}),
      attachments: (input.attachments ?? []).map((a) => ({
        filename: a.filename,
        content: Buffer.from(a.content_base64, 'base64'),
        ...(a.content_type ? { contentType: a.content_type } : {}),
      })),
      messageId: `<${randomBytes(12).toString('hex')}@${holder.address.slice(holder.address.indexOf('@') + 1)}>`,
      date: this.clock.now(),
      headers: input.receipt_type && input.receipt_type !== 'completa' ? { 'X-TipoRicevuta': input.receipt_type } : {},
    });
    const raw = await new Promise<Buffer>((resolve, reject) => composer.compile().build((error, message) => (error ? reject(error) : resolve(message))));
    return this.submitRaw(holder, raw);
  }

  /**
   * Access point (spec §4.1): checks the message and records the outcome durably in one transaction: the
   * transaction row, the sender's copy, and the pipeline jobs (acceptance or non-acceptance notice, dispatch).
   * Signing happens in the jobs, off this path. Refusals that cannot be answered with a notice (a mailbox that may
   * not send, an oversized message) are thrown as problems (SMTP maps them to reply codes).
   */
  async submitRaw(holder: HolderPrincipal, raw: Buffer, envelope?: { mailFrom: string; rcptTo: string[] }): Promise<SubmissionView> {
    // A collaborator sends only in a mode that allows it (the front ends check it first; this is the backstop).
    assertMayPerform(holder.actor, 'send_message');
    const [mailbox] = await this.db.select({ status: mailboxes.status, address: mailboxes.address, livemode: mailboxes.livemode }).from(mailboxes).where(eq(mailboxes.id, holder.mailboxId));
    if (!mailbox || mailbox.status !== 'active') {
      throw conflict('mailbox_cannot_send', `Mailbox ${holder.address} is ${mailbox?.status ?? 'gone'}: it can read its messages but not send.`);
    }
    if (raw.length > this.config.pec.maxTotalBytes) {
      throw new ProblemError(413, 'message_too_large', 'Message too large', `The message is ${raw.length} bytes; the limit is ${this.config.pec.maxTotalBytes}.`);
    }
    // Refused before anything is stored: no transaction, no notice, no log entry for a message no parser can take.
    await assertProcessableMessage(raw, SUBMISSION_MIME_LIMITS);
    const parsed = await parseSubmission(raw, this.serviceDomain);
    const smtpEnvelope = envelope ?? { mailFrom: mailbox.address, rcptTo: [...new Set([...parsed.to, ...parsed.cc])] };
    const violations = checkSubmission({
      authenticatedAddress: mailbox.address,
      headers: parsed,
      envelope: smtpEnvelope,
      sizeBytes: raw.length,
      limits: { maxRecipients: this.config.pec.maxRecipients, maxTotalBytes: this.config.pec.maxTotalBytes },
    });
    const virus = violations.length === 0 ? await this.scanner.scan(raw) : null;
    const now = this.clock.now();
    const id = newId('pmt', now);
    const pecMessageId = newPecMessageId(this.serviceDomain, now);

    // Each recipient once, To before Cc (a recipient in both counts as To, RFC 6109 §3.3.2.1).
    const seen = new Set<string>();
    const recipients: RecipientFacts[] = [];
    for (const [role, list] of [['to', parsed.to], ['cc', parsed.cc]] as const) {
      for (const address of list) {
        if (seen.has(address)) continue;
        seen.add(address);
        recipients.push({ address, role, certified: await this.isCertifiedAddress(address, mailbox.livemode) });
      }
    }
    // Test mode: messages never leave the provider. A recipient on a domain that is not ours in the sandbox (another
    // provider's, ordinary mail, or a custom domain certified only live) makes the whole message a formal refusal at
    // the access point: nothing is dispatched, queued or relayed, and the sender learns why at once.
    if (!mailbox.livemode && violations.length === 0) {
      const outside: string[] = [];
      for (const r of recipients) if (!(await this.isLocalDomain(domainOf(r.address), false))) outside.push(r.address);
      if (outside.length > 0) violations.push({ code: 'sandbox_recipient', descrizione: `${SANDBOX_REFUSAL}: ${outside.join(', ')}` });
    }
    const accepted = violations.length === 0 && !virus;
    const refusal = accepted ? null : virus ? `virus informatico rilevato (${virus})` : violations.map((v) => v.descrizione).join('; ');
    const content = toPostacert(raw, { pecMessageId, originalMessageId: parsed.originalMessageId });

    await this.db.transaction(async (tx) => {
      await tx.insert(pecTransactions).values({
        id,
        partnerId: holder.partnerId,
        mailboxId: holder.mailboxId,
        delegationId: holder.actor.kind === 'delegate' ? holder.actor.delegationId : null,
        pecMessageId,
        originalMessageId: parsed.originalMessageId,
        sender: mailbox.address,
        subject: parsed.subject,
        replyTo: parsed.replyTo ?? null,
        receiptType: parsed.receiptType,
        status: accepted ? 'accepted' : 'refused',
        refusal,
        refusedForVirus: Boolean(virus),
        sizeBytes: raw.length,
        // Kept also when refused for a virus: the infected message is retained 30 months (spec §4.3).
        content: accepted || virus ? content : null,
        submittedAt: now,
      });
      const jobs: QueuedJob[] = [{ kind: 'acceptance', payload: { transaction: id }, dedupeKey: `acceptance:${id}`, runAt: now }];
      // Also for a refused message: its notice lists the recipients it named.
      if (recipients.length > 0) await tx.insert(pecRecipients).values(recipients.map((r) => ({ transactionId: id, ...r })));
      if (accepted) {
        await storeMessage(tx, {
          mailboxId: holder.mailboxId, folder: 'sent', kind: 'original', content, messageId: pecMessageId, pecMessageId,
          subject: parsed.subject, fromAddress: mailbox.address, dedupeKey: `sent:${id}`, now,
        });
        // The delivery timers are dispatch's to queue: it is the step that hands recipients to other providers.
        jobs.push({ kind: 'dispatch', payload: { transaction: id }, dedupeKey: `dispatch:${id}`, runAt: now });
      }
      await enqueue(tx, this.clock, jobs);
    });
    this.#wakeWorkers();
    return {
      id,
      object: 'pec_submission',
      pec_message_id: pecMessageId,
      status: accepted ? 'accepted' : 'refused',
      refusal,
      submitted_at: now.toISOString(),
      recipients,
    };
  }

  // ---------------------------------------------------------------------------------------------------------
  // Receiving point

  /**
   * Whether the inbound SMTP server takes mail for this address: our live domains and our service address only.
   * Nothing from outside reaches the sandbox: a custom domain certified only in test is not ours to receive for.
   */
  async acceptsRecipient(address: string): Promise<boolean> {
    return this.isLocalDomain(domainOf(address), true);
  }

  /** A message from another provider or the Internet: stored durably with its job, then processed by the pipeline. */
  async receive(raw: Buffer, envelope: { mailFrom: string; rcptTo: string[] }): Promise<void> {
    // Refused while the sender waits (SMTP 554), rather than queued for a job that could never read it.
    await assertProcessableMessage(raw, INBOUND_MIME_LIMITS);
    if (await acceptInbound(this.db, this.clock, raw, envelope)) this.#wakeWorkers();
  }

  // ---------------------------------------------------------------------------------------------------------
  // Workers

  /** Runs every due pipeline job to completion (tests call this after each step; servers run workers). */
  drain(): Promise<number> {
    return this.queue.drain();
  }

  /** Starts `count` workers that poll for due jobs and wake at once when a submission queues work. */
  startWorkers(count: number, pollMs = 1000): void {
    for (let i = 0; i < count; i++) {
      this.#workers.push((async () => {
        while (!this.#stopping) {
          const ran = await this.queue.runOne().catch((error: unknown) => {
            this.log?.error({ err: error }, 'PEC worker failed to claim a job');
            return false;
          });
          if (!ran) {
            await new Promise<void>((resolve) => {
              const wake = () => {
                clearTimeout(timer);
                this.#wakers.delete(wake);
                resolve();
              };
              const timer = setTimeout(wake, pollMs);
              this.#wakers.add(wake);
            });
          }
        }
      })());
    }
  }

  /** Wakes this process's idle workers: jobs became due other than by a submission (a test clock moved its timers). */
  wake(): void {
    this.#wakeWorkers();
  }

  #wakeWorkers(): void {
    for (const wake of [...this.#wakers]) wake();
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    this.#wakeWorkers();
    await Promise.all(this.#workers);
  }
}

/**
 * Why a test-mode message naming a recipient outside the sandbox is not accepted (the non-acceptance notice's
 * readable reason and daticert `errore-esteso`, followed by the recipients concerned).
 */
export const SANDBOX_REFUSAL = 'in modalità test (sandbox) i messaggi possono essere indirizzati solo alle caselle di test di questo gestore; destinatari non ammessi';

export interface RecipientFacts {
  address: string;
  role: 'to' | 'cc';
  certified: boolean;
}
