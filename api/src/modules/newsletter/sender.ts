import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { and, eq, sql } from 'drizzle-orm';
import MailComposer from 'nodemailer/lib/mail-composer/index.js';
import SMTPConnection from 'nodemailer/lib/smtp-connection/index.js';
import { mailboxes, newsletterCampaigns, type Db, type DbOrTx } from '@pec-partner/db';
import type { Clock } from '../../clock.ts';
import type { AppConfig, NewsletterConfig } from '../../config.ts';
import { withUnsubscribeFooter } from './content.ts';
import { recordCampaignEvent, senderName, withStats } from './service.ts';

/**
 * Sending campaigns, durably and at most once per recipient.
 *
 * A campaign that is due becomes `sending` in the same transaction that writes one `queued` delivery per
 * consenting, subscribed member of its list (primary key campaign + contact: one row per recipient, ever).
 * Then, within the throttle, each delivery goes through three steps:
 *
 *  1. claim: one UPDATE (FOR UPDATE SKIP LOCKED) increments `attempts` and clears `smtp_response`, and commits
 *     BEFORE the SMTP transaction starts. A claimed row (queued, attempts > 0, no answer) is "in flight": no run,
 *     in this process or another, claims it again;
 *  2. the SMTP transaction with the relay;
 *  3. the outcome is written: `sent` with the relay's 250 answer, `failed` with its 5xx answer, or, when the relay
 *     refused with a 4xx (it said so: it did not take the message), back to queued with that answer for a later
 *     run, at most MAX_ATTEMPTS times. When no session could even be opened (connection refused, TLS or
 *     authentication failure) nothing was transferred: the claim is undone and the run stops until the next one.
 *
 * A crash or a broken connection between 1 and 3 leaves the outcome unknown: the relay may or may not have taken the
 * message. Such a delivery is never retried: a broken session is marked `failed` with "outcome unknown" at once,
 * and a delivery still in flight LEASE_MS after its claim (its process died) is marked the same way by the next
 * run. So a recipient gets a campaign at most once; the price is that a message taken by the relay just before a
 * crash is reported as failed (unknown) rather than sent.
 */

/** Once a minute; each run hands at most NEWSLETTER_RATE_PER_MINUTE messages to the relay. */
export const NEWSLETTER_TASK_INTERVAL_MS = 60_000;
/** A claim older than this without an outcome belongs to a process that died (SMTP timeouts are far shorter). */
export const LEASE_MS = 10 * 60_000;
/** Relay answers 4xx (try later) this many times, then the delivery fails with the last answer. */
export const MAX_ATTEMPTS = 3;
/** A run stops sending after this much real time, so runs never overlap and the throttle holds. */
const RUN_WALL_MS = 50_000;

export const INTERRUPTED =
  'outcome unknown: sending was interrupted after the message may have reached the relay; not retried so that nobody gets it twice';

export interface NewsletterDeps {
  db: Db;
  clock: Clock;
  config: AppConfig;
}

// ---------------------------------------------------------------- the relay

type Outcome =
  /** The relay took the message (250). */
  | { kind: 'sent'; response: string }
  /** The relay answered 4xx or 5xx: it did not take the message. */
  | { kind: 'refused'; permanent: boolean; response: string }
  /** No session could be opened: nothing was transferred. */
  | { kind: 'unavailable'; response: string }
  /** The session broke during the transaction: the relay may have the message. */
  | { kind: 'unknown'; response: string };

interface SmtpFailure extends Error {
  code?: string;
  response?: string;
  responseCode?: number;
}

const clip = (text: string): string => (text.length > 1000 ? `${text.slice(0, 997)}...` : text);

/** One SMTP command as a promise: its callback, or the connection failing or closing first. */
function step<T>(connection: SMTPConnection, run: (done: (error?: Error | null, value?: T) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const finish = (error: Error | null | undefined, value?: T) => {
      if (settled) return;
      settled = true;
      connection.off('error', onError);
      connection.off('end', onEnd);
      if (error) reject(error);
      else resolve(value as T);
    };
    const onError = (error: Error) => finish(error);
    const onEnd = () => finish(Object.assign(new Error('Connection closed unexpectedly'), { code: 'ECONNECTION' }));
    connection.on('error', onError);
    connection.on('end', onEnd);
    run((error, value) => finish(error ?? null, value));
  });
}

/** A session with the smart host, opened on first use and kept for the run. */
export class Relay {
  readonly #config: NewsletterConfig;
  #connection: SMTPConnection | undefined;

  constructor(config: NewsletterConfig) {
    this.#config = config;
  }

  async #open(): Promise<SMTPConnection> {
    if (this.#connection) return this.#connection;
    const config = this.#config;
    const connection = new SMTPConnection({
      host: config.smtpHost,
      port: config.smtpPort,
      secure: config.smtpPort === 465,
      name: config.fromAddress.split('@')[1],
      tls: { rejectUnauthorized: config.verifyTls },
      connectionTimeout: 15_000,
      greetingTimeout: 15_000,
      socketTimeout: 60_000,
    });
    // Failures are handled by the command that is waiting; this keeps a late one from crashing the process.
    connection.on('error', () => {});
    connection.once('end', () => {
      if (this.#connection === connection) this.#connection = undefined;
    });
    try {
      await step<void>(connection, (done) => connection.connect(() => done()));
      if (config.smtpUser && config.smtpPassword) {
        await step<void>(connection, (done) => connection.login({ user: config.smtpUser!, pass: config.smtpPassword! }, (error) => done(error)));
      }
    } catch (error) {
      connection.close();
      throw error;
    }
    this.#connection = connection;
    return connection;
  }

  async send(envelope: { from: string; to: string }, raw: Buffer): Promise<Outcome> {
    let connection: SMTPConnection;
    try {
      connection = await this.#open();
    } catch (error) {
      const failure = error as SmtpFailure;
      return { kind: 'unavailable', response: clip(failure.response ?? failure.message) };
    }
    try {
      const info = await step<SMTPConnection.SentMessageInfo>(connection, (done) =>
        connection.send({ from: envelope.from, to: [envelope.to] }, raw, (error, value) => done(error, value)));
      return { kind: 'sent', response: clip(info.response) };
    } catch (error) {
      const failure = error as SmtpFailure & { rejectedErrors?: SmtpFailure[] };
      const answer = failure.rejectedErrors?.[0] ?? failure;
      const code = answer.responseCode ?? failure.responseCode;
      if (code && code >= 400) {
        // The relay answered: the transaction is over and the session can go on after a reset.
        await step<void>(connection, (done) => connection.reset((e) => done(e))).catch(() => this.close());
        return { kind: 'refused', permanent: code >= 500, response: clip(answer.response ?? failure.response ?? failure.message) };
      }
      this.close();
      return { kind: 'unknown', response: clip(failure.message) };
    }
  }

  close(): void {
    const connection = this.#connection;
    this.#connection = undefined;
    if (!connection) return;
    try {
      connection.quit();
    } catch {
      connection.close();
    }
  }
}

// ---------------------------------------------------------------- messages

interface CampaignContent {
  id: string;
  mailboxId: string;
  replyTo: string;
  sender: string;
  subject: string;
  html: string;
  text: string;
}

async function campaignContent(db: Db, campaignId: string): Promise<CampaignContent> {
  const [row] = await db.select({ campaign: newsletterCampaigns, address: mailboxes.address }).from(newsletterCampaigns)
    .innerJoin(mailboxes, eq(mailboxes.id, newsletterCampaigns.mailboxId)).where(eq(newsletterCampaigns.id, campaignId));
  if (!row) throw new Error(`campaign ${campaignId} vanished`);
  const { campaign } = row;
  return {
    id: campaign.id, mailboxId: campaign.mailboxId, replyTo: row.address, sender: await senderName(db, campaign.mailboxId),
    subject: campaign.subject, html: campaign.html, text: campaign.text,
  };
}

export const unsubscribeUrl = (config: AppConfig, token: string): string => `${config.publicUrl}/newsletter/unsubscribe/${token}`;

/**
 * One recipient's message: multipart/alternative text + HTML, both ending with the unsubscribe link, which is also
 * in `List-Unsubscribe` with RFC 8058 one-click (`List-Unsubscribe-Post`). The Message-ID names the campaign and
 * the contact, so the recipient's copy can be traced to its delivery.
 */
export function composeMessage(config: AppConfig, content: CampaignContent, recipient: { email: string; name: string | null }, options: { url: string; messageId: string; date: Date; subject?: string }): Promise<Buffer> {
  const body = withUnsubscribeFooter({ html: content.html, text: content.text }, options.url);
  const domain = config.newsletter.fromAddress.split('@')[1];
  return new MailComposer({
    from: { name: content.sender, address: config.newsletter.fromAddress },
    replyTo: content.replyTo,
    to: recipient.name ? { name: recipient.name, address: recipient.email } : recipient.email,
    subject: options.subject ?? content.subject,
    text: body.text,
    html: body.html,
    date: options.date,
    messageId: `<${options.messageId}@${domain}>`,
    headers: {
      'List-Unsubscribe': `<${options.url}>`,
      'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click',
      Precedence: 'bulk',
      'X-Newsletter-Campaign': content.id,
    },
  }).compile().build();
}

/** A test message to any address: `[TEST]` subject, an unsubscribe link that unsubscribes nobody, no delivery row. */
export async function sendTestMessage(deps: NewsletterDeps, campaignId: string, email: string): Promise<Outcome> {
  const content = await campaignContent(deps.db, campaignId);
  const raw = await composeMessage(deps.config, content, { email, name: null }, {
    url: unsubscribeUrl(deps.config, 'test'),
    messageId: `test.${campaignId}.${randomBytes(6).toString('hex')}`,
    date: deps.clock.now(),
    subject: `[TEST] ${content.subject}`,
  });
  const relay = new Relay(deps.config.newsletter);
  try {
    return await relay.send({ from: deps.config.newsletter.fromAddress, to: email }, raw);
  } finally {
    relay.close();
  }
}

// ---------------------------------------------------------------- the task

export interface RunReport {
  started: string[];
  attempted: number;
  sent: number;
  failed: number;
  /** Refused with 4xx, or not sent because the relay was unavailable: tried again in a later run. */
  deferred: number;
  /** In-flight deliveries of a dead process, marked failed (outcome unknown). */
  interrupted: number;
  finished: string[];
}

/** A timestamp parameter of raw SQL (postgres.js needs the type when drizzle gives no column to infer it from). */
const ts = (date: Date) => sql`${date.toISOString()}::timestamptz`;

const activeNewsletter = sql`exists (select 1 from mailbox_addons a where a.mailbox_id = k.mailbox_id and a.kind = 'newsletter' and a.status = 'active')
  and exists (select 1 from mailboxes m where m.id = k.mailbox_id and m.status = 'active')`;

/** A campaign locked in the caller's transaction, with the partner its events go to. */
async function lockCampaign(tx: DbOrTx, id: string) {
  const [row] = await tx.select({ campaign: newsletterCampaigns, partnerId: mailboxes.partnerId }).from(newsletterCampaigns)
    .innerJoin(mailboxes, eq(mailboxes.id, newsletterCampaigns.mailboxId))
    .where(eq(newsletterCampaigns.id, id)).for('update', { of: newsletterCampaigns });
  return row;
}

/** Due scheduled campaigns start: their recipients are fixed now, one queued delivery each. */
async function startDueCampaigns(db: Db, clock: Clock, now: Date): Promise<string[]> {
  const due = await db.execute<{ id: string }>(sql`
    select k.id from newsletter_campaigns k
     where k.status = 'scheduled' and k.scheduled_at <= ${ts(now)} and ${activeNewsletter}
     order by k.scheduled_at, k.id`);
  const started: string[] = [];
  for (const { id } of due) {
    const ok = await db.transaction(async (tx) => {
      const locked = await lockCampaign(tx, id);
      if (locked?.campaign.status !== 'scheduled') return false;
      const { campaign, partnerId } = locked;
      const before = await withStats(tx, campaign);
      const at = clock.now();
      await tx.execute(sql`
        insert into newsletter_deliveries (campaign_id, contact_id, email, status, attempts, updated_at)
        select ${id}, c.id, c.email, 'queued', 0, ${ts(at)}
          from newsletter_list_members lm
          join newsletter_contacts c on c.id = lm.contact_id
         where lm.list_id = ${campaign.listId} and c.mailbox_id = ${campaign.mailboxId} and c.consent and c.unsubscribed_at is null
        on conflict do nothing`);
      const [updated] = await tx.update(newsletterCampaigns).set({ status: 'sending', startedAt: at, updatedAt: at }).where(eq(newsletterCampaigns.id, id)).returning();
      await recordCampaignEvent(tx, clock, partnerId, 'newsletter_campaign.sending', await withStats(tx, updated!), before);
      return true;
    });
    if (ok) started.push(id);
  }
  return started;
}

/** Deliveries claimed by a process that died before writing the outcome: failed, outcome unknown, never resent. */
async function failInterrupted(db: Db, clock: Clock, now: Date): Promise<number> {
  const rows = await db.execute(sql`
    update newsletter_deliveries set status = 'failed', smtp_response = ${INTERRUPTED}, updated_at = ${ts(clock.now())}
     where status = 'queued' and attempts > 0 and smtp_response is null and updated_at < ${ts(new Date(now.getTime() - LEASE_MS))}
    returning campaign_id`);
  return rows.length;
}

/** Queued deliveries (not in flight) of contacts who unsubscribed or withdrew consent since the start: dropped. */
async function dropWithdrawn(db: Db): Promise<void> {
  await db.execute(sql`
    delete from newsletter_deliveries d
     using newsletter_contacts c, newsletter_campaigns k
     where d.contact_id = c.id and d.campaign_id = k.id and k.status = 'sending' and d.status = 'queued'
       and (d.attempts = 0 or d.smtp_response is not null)
       and (not c.consent or c.unsubscribed_at is not null)`);
}

type Claimed = {
  campaignId: string;
  contactId: string;
  email: string;
  attempts: number;
  name: string | null;
  token: string;
};

/** Step 1: takes the next delivery to send, committed before any byte goes to the relay. */
async function claimNext(db: Db, clock: Clock, runStart: Date): Promise<Claimed | undefined> {
  const [row] = await db.execute<Claimed>(sql`
    update newsletter_deliveries d
       set attempts = d.attempts + 1, smtp_response = null, updated_at = ${ts(clock.now())}
      from (
        select d2.campaign_id, d2.contact_id, c.name, c.unsubscribe_token
          from newsletter_deliveries d2
          join newsletter_campaigns k on k.id = d2.campaign_id
          join newsletter_contacts c on c.id = d2.contact_id
         where k.status = 'sending' and d2.status = 'queued'
           and (d2.attempts = 0 or (d2.smtp_response is not null and d2.updated_at < ${ts(runStart)}))
           and c.consent and c.unsubscribed_at is null
           and ${activeNewsletter}
         order by k.started_at, k.id, d2.contact_id
         limit 1
         for update of d2 skip locked
      ) pick
     where d.campaign_id = pick.campaign_id and d.contact_id = pick.contact_id
    returning d.campaign_id as "campaignId", d.contact_id as "contactId", d.email, d.attempts, pick.name, pick.unsubscribe_token as "token"`);
  return row;
}

/** Step 3: the outcome, written only over the claim it belongs to. */
async function record(db: Db, clock: Clock, claimed: Claimed, outcome: Outcome): Promise<'sent' | 'failed' | 'deferred'> {
  const at = clock.now();
  const where = sql`campaign_id = ${claimed.campaignId} and contact_id = ${claimed.contactId} and status = 'queued' and attempts = ${claimed.attempts}`;
  let result: 'sent' | 'failed' | 'deferred';
  let set;
  switch (outcome.kind) {
    case 'sent':
      result = 'sent';
      set = sql`status = 'sent', smtp_response = ${outcome.response}`;
      break;
    case 'refused':
      result = outcome.permanent || claimed.attempts >= MAX_ATTEMPTS ? 'failed' : 'deferred';
      set = sql`status = ${result === 'failed' ? 'failed' : 'queued'}, smtp_response = ${outcome.response}`;
      break;
    case 'unavailable':
      // Nothing was transferred: the claim is undone, the attempt does not count.
      result = 'deferred';
      set = sql`attempts = attempts - 1, smtp_response = ${clip(`not sent yet, relay unavailable: ${outcome.response}`)}`;
      break;
    case 'unknown':
      result = 'failed';
      set = sql`status = 'failed', smtp_response = ${clip(`outcome unknown: the connection broke during the transaction (${outcome.response}); not retried so that nobody gets it twice`)}`;
      break;
  }
  await db.execute(sql`update newsletter_deliveries set ${set}, updated_at = ${ts(at)} where ${where}`);
  return result;
}

/** Campaigns with nothing left to send are over, each in its own transaction with its `sent` event. */
async function finishCampaigns(db: Db, clock: Clock): Promise<string[]> {
  const done = await db.select({ id: newsletterCampaigns.id }).from(newsletterCampaigns)
    .where(and(
      eq(newsletterCampaigns.status, 'sending'),
      sql`not exists (select 1 from newsletter_deliveries d where d.campaign_id = ${newsletterCampaigns.id} and d.status = 'queued')`,
    )).orderBy(newsletterCampaigns.id);
  const finished: string[] = [];
  for (const { id } of done) {
    const ok = await db.transaction(async (tx) => {
      const locked = await lockCampaign(tx, id);
      // Another process may have closed it meanwhile; a campaign without queued deliveries never gets new ones.
      if (locked?.campaign.status !== 'sending') return false;
      const before = await withStats(tx, locked.campaign);
      const at = clock.now();
      const [updated] = await tx.update(newsletterCampaigns).set({ status: 'sent', finishedAt: at, updatedAt: at }).where(eq(newsletterCampaigns.id, id)).returning();
      await recordCampaignEvent(tx, clock, locked.partnerId, 'newsletter_campaign.sent', await withStats(tx, updated!), before);
      return true;
    });
    if (ok) finished.push(id);
  }
  return finished;
}

/**
 * One run of the `newsletter.send` task: starts due campaigns, then hands at most `ratePerMinute` messages to the
 * relay (all campaigns together, oldest campaign first), then closes finished campaigns.
 */
export async function runNewsletterTask(deps: NewsletterDeps, now: Date): Promise<RunReport> {
  const { db, clock, config } = deps;
  const report: RunReport = { started: [], attempted: 0, sent: 0, failed: 0, deferred: 0, interrupted: 0, finished: [] };
  report.started = await startDueCampaigns(db, clock, now);
  report.interrupted = await failInterrupted(db, clock, now);
  await dropWithdrawn(db);

  const relay = new Relay(config.newsletter);
  const contents = new Map<string, CampaignContent>();
  const deadline = performance.now() + RUN_WALL_MS;
  try {
    while (report.attempted < config.newsletter.ratePerMinute && performance.now() < deadline) {
      const claimed = await claimNext(db, clock, now);
      if (!claimed) break;
      report.attempted++;
      let content = contents.get(claimed.campaignId);
      if (!content) contents.set(claimed.campaignId, (content = await campaignContent(db, claimed.campaignId)));
      const raw = await composeMessage(config, content, claimed, {
        url: unsubscribeUrl(config, claimed.token),
        messageId: `${claimed.campaignId}.${claimed.contactId}`,
        date: clock.now(),
      });
      const outcome = await relay.send({ from: config.newsletter.fromAddress, to: claimed.email }, raw);
      report[await record(db, clock, claimed, outcome)]++;
      if (outcome.kind === 'unavailable') break;
    }
  } finally {
    relay.close();
  }
  report.finished = await finishCampaigns(db, clock);
  return report;
}
