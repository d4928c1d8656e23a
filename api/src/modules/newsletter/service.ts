import { and, count, desc, eq, inArray, isNotNull, isNull, lt, or, sql } from 'drizzle-orm';
import {
  customers,
  mailboxes,
  newsletterCampaigns,
  newsletterContacts,
  newsletterDeliveries,
  newsletterListMembers,
  newsletterLists,
  type CampaignStatus,
  type Db,
  type DbOrTx,
} from '@pec-partner/db';
import type { Clock } from '../../clock.ts';
import { isStillReferenced, isUniqueViolation } from '../../db-errors.ts';
import { changedAttributes, recordEvent } from '../../events/record.ts';
import { conflict, invalid, notFound } from '../../http/problem.ts';
import { newId, randomToken } from '../../ids.ts';
import { hasActiveAddon } from '../addons/service.ts';
import { cleanName, normalizeEmail, sanitizeCampaignHtml, textFromHtml } from './content.ts';

type MailboxRow = typeof mailboxes.$inferSelect;
type ContactRow = typeof newsletterContacts.$inferSelect;
type ListRow = typeof newsletterLists.$inferSelect;
type CampaignRow = typeof newsletterCampaigns.$inferSelect;
type DeliveryRow = typeof newsletterDeliveries.$inferSelect;

interface Page {
  limit: number;
  startingAfter?: string | undefined;
}

/**
 * The gate of every newsletter endpoint: the partner's mailbox (another partner's is missing, 404) with an active
 * newsletter add-on (409 `addon_required` otherwise).
 */
export async function newsletterMailbox(db: DbOrTx, partnerId: string, mailboxId: string): Promise<MailboxRow> {
  const [mailbox] = await db.select().from(mailboxes).where(and(eq(mailboxes.id, mailboxId), eq(mailboxes.partnerId, partnerId)));
  if (!mailbox) throw notFound('mailbox', mailboxId);
  if (!(await hasActiveAddon(db, mailboxId, 'newsletter'))) {
    throw conflict('addon_required', `Mailbox '${mailboxId}' has no active newsletter add-on; buy it with POST /v1/mailboxes/${mailboxId}/addons {"kind":"newsletter"}.`, {
      addon: 'newsletter',
    });
  }
  return mailbox;
}

/** Who campaigns come from: the name of the mailbox's customer. */
export async function senderName(db: DbOrTx, mailboxId: string): Promise<string> {
  const [row] = await db
    .select({ address: mailboxes.address, businessName: customers.businessName, firstName: customers.firstName, lastName: customers.lastName })
    .from(mailboxes)
    .innerJoin(customers, eq(customers.id, mailboxes.customerId))
    .where(eq(mailboxes.id, mailboxId));
  if (!row) return '';
  return row.businessName ?? ([row.firstName, row.lastName].filter(Boolean).join(' ') || row.address);
}

// ---------------------------------------------------------------- contacts

export function contactView(row: ContactRow) {
  return {
    id: row.id,
    object: 'newsletter_contact' as const,
    mailbox: row.mailboxId,
    email: row.email,
    name: row.name,
    consent: row.consent,
    unsubscribed_at: row.unsubscribedAt?.toISOString() ?? null,
    receives_campaigns: row.consent && row.unsubscribedAt === null,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  };
}
export type ContactView = ReturnType<typeof contactView>;

/** Contacts that get campaigns: consenting and never unsubscribed. */
export const receivesCampaigns = and(eq(newsletterContacts.consent, true), isNull(newsletterContacts.unsubscribedAt));

function emailOrThrow(raw: string, pointer = '/email'): string {
  const email = normalizeEmail(raw);
  if (!email) throw invalid([{ pointer, location: 'body', code: 'invalid_format', detail: 'must be a plain e-mail address (local@domain)' }]);
  return email;
}

async function contactExists(db: DbOrTx, mailboxId: string, email: string): Promise<never> {
  const [existing] = await db.select({ id: newsletterContacts.id }).from(newsletterContacts)
    .where(and(eq(newsletterContacts.mailboxId, mailboxId), eq(newsletterContacts.email, email)));
  throw conflict('contact_exists', `The address book already has ${email}${existing ? ` (${existing.id})` : ''}.`, { contact: existing?.id ?? null });
}

/** A new unsubscribe token: random, unique across all address books. */
export const unsubscribeToken = (): string => randomToken(32);

export async function createContact(db: Db, clock: Clock, mailboxId: string, input: { email: string; name?: string | null | undefined; consent: boolean }) {
  const email = emailOrThrow(input.email);
  const now = clock.now();
  try {
    const [row] = await db.insert(newsletterContacts).values({
      id: newId('nlc', now), mailboxId, email, name: cleanName(input.name), consent: input.consent,
      unsubscribeToken: unsubscribeToken(), createdAt: now, updatedAt: now,
    }).returning();
    return contactView(row!);
  } catch (error) {
    if (isUniqueViolation(error, 'newsletter_contacts_email_key')) return contactExists(db, mailboxId, email);
    throw error;
  }
}

async function contactRow(db: DbOrTx, mailboxId: string, contactId: string): Promise<ContactRow> {
  const [row] = await db.select().from(newsletterContacts).where(and(eq(newsletterContacts.id, contactId), eq(newsletterContacts.mailboxId, mailboxId)));
  if (!row) throw notFound('contact', contactId);
  return row;
}

export async function getContact(db: DbOrTx, mailboxId: string, contactId: string) {
  return contactView(await contactRow(db, mailboxId, contactId));
}

export async function listContacts(db: DbOrTx, mailboxId: string, query: Page & { email?: string | undefined; receivesCampaigns?: boolean | undefined }) {
  const rows = await db.select().from(newsletterContacts).where(and(
    eq(newsletterContacts.mailboxId, mailboxId),
    query.startingAfter ? lt(newsletterContacts.id, query.startingAfter) : undefined,
    query.email !== undefined ? eq(newsletterContacts.email, query.email.trim().toLowerCase()) : undefined,
    query.receivesCampaigns === true ? receivesCampaigns : undefined,
    query.receivesCampaigns === false ? or(eq(newsletterContacts.consent, false), isNotNull(newsletterContacts.unsubscribedAt)) : undefined,
  )).orderBy(desc(newsletterContacts.id)).limit(query.limit + 1);
  return rows.map(contactView);
}

/** Name, address and consent can change; an unsubscription cannot be undone here (only the contact can opt in again). */
export async function updateContact(db: Db, clock: Clock, mailboxId: string, contactId: string, input: { email?: string | undefined; name?: string | null | undefined; consent?: boolean | undefined }) {
  await contactRow(db, mailboxId, contactId);
  const email = input.email === undefined ? undefined : emailOrThrow(input.email);
  try {
    const [row] = await db.update(newsletterContacts).set({
      ...(email !== undefined ? { email } : {}),
      ...(input.name !== undefined ? { name: cleanName(input.name) } : {}),
      ...(input.consent !== undefined ? { consent: input.consent } : {}),
      updatedAt: clock.now(),
    }).where(and(eq(newsletterContacts.id, contactId), eq(newsletterContacts.mailboxId, mailboxId))).returning();
    return contactView(row!);
  } catch (error) {
    if (email && isUniqueViolation(error, 'newsletter_contacts_email_key')) return contactExists(db, mailboxId, email);
    throw error;
  }
}

/**
 * Erases a contact, its list memberships and its lines in past campaign reports (the right to erasure wins over
 * the statistics). Refused while a running campaign still has to send to it.
 */
export async function deleteContact(db: Db, mailboxId: string, contactId: string) {
  return db.transaction(async (tx) => {
    const [row] = await tx.select().from(newsletterContacts)
      .where(and(eq(newsletterContacts.id, contactId), eq(newsletterContacts.mailboxId, mailboxId))).for('update');
    if (!row) throw notFound('contact', contactId);
    const [pending] = await tx.select({ campaign: newsletterDeliveries.campaignId }).from(newsletterDeliveries)
      .where(and(eq(newsletterDeliveries.contactId, contactId), eq(newsletterDeliveries.status, 'queued'))).limit(1);
    if (pending) throw conflict('contact_in_sending_campaign', `Campaign '${pending.campaign}' is still sending to this contact; delete it when the campaign is over.`, { campaign: pending.campaign });
    await tx.delete(newsletterDeliveries).where(eq(newsletterDeliveries.contactId, contactId));
    await tx.delete(newsletterContacts).where(eq(newsletterContacts.id, contactId));
    return { id: contactId, object: 'newsletter_contact' as const, deleted: true as const };
  });
}

/** The public unsubscribe link: final for the contact; repeating it changes nothing. Null for an unknown token. */
export async function unsubscribe(db: Db, clock: Clock, token: string, apply: boolean): Promise<{ email: string; sender: string; already: boolean } | null> {
  const [row] = await db.select().from(newsletterContacts).where(eq(newsletterContacts.unsubscribeToken, token));
  if (!row) return null;
  const sender = await senderName(db, row.mailboxId);
  if (!apply || row.unsubscribedAt) return { email: row.email, sender, already: row.unsubscribedAt !== null };
  const now = clock.now();
  await db.update(newsletterContacts).set({ unsubscribedAt: now, updatedAt: now })
    .where(and(eq(newsletterContacts.id, row.id), isNull(newsletterContacts.unsubscribedAt)));
  return { email: row.email, sender, already: false };
}

// ---------------------------------------------------------------- distribution lists

const memberCount = sql<number>`(select count(*)::int from ${newsletterListMembers} where ${newsletterListMembers.listId} = ${newsletterLists.id})`;

function listView(row: ListRow & { memberCount: number }) {
  return {
    id: row.id,
    object: 'newsletter_list' as const,
    mailbox: row.mailboxId,
    name: row.name,
    member_count: row.memberCount,
    created_at: row.createdAt.toISOString(),
  };
}

const listNameTaken = (name: string) => conflict('list_name_taken', `A distribution list named '${name}' already exists.`);

export async function createList(db: Db, clock: Clock, mailboxId: string, name: string) {
  const now = clock.now();
  try {
    const [row] = await db.insert(newsletterLists).values({ id: newId('nll', now), mailboxId, name: name.trim(), createdAt: now }).returning();
    return listView({ ...row!, memberCount: 0 });
  } catch (error) {
    if (isUniqueViolation(error, 'newsletter_lists_name_key')) throw listNameTaken(name.trim());
    throw error;
  }
}

async function listRow(db: DbOrTx, mailboxId: string, listId: string, lock = false): Promise<ListRow> {
  const query = db.select().from(newsletterLists).where(and(eq(newsletterLists.id, listId), eq(newsletterLists.mailboxId, mailboxId)));
  const [row] = lock ? await query.for('update') : await query;
  if (!row) throw notFound('distribution list', listId);
  return row;
}

export async function getList(db: DbOrTx, mailboxId: string, listId: string) {
  const [row] = await db.select({ list: newsletterLists, memberCount }).from(newsletterLists)
    .where(and(eq(newsletterLists.id, listId), eq(newsletterLists.mailboxId, mailboxId)));
  if (!row) throw notFound('distribution list', listId);
  return listView({ ...row.list, memberCount: row.memberCount });
}

export async function listLists(db: DbOrTx, mailboxId: string, query: Page) {
  const rows = await db.select({ list: newsletterLists, memberCount }).from(newsletterLists)
    .where(and(eq(newsletterLists.mailboxId, mailboxId), query.startingAfter ? lt(newsletterLists.id, query.startingAfter) : undefined))
    .orderBy(desc(newsletterLists.id)).limit(query.limit + 1);
  return rows.map((row) => listView({ ...row.list, memberCount: row.memberCount }));
}

export async function renameList(db: Db, mailboxId: string, listId: string, name: string) {
  await listRow(db, mailboxId, listId);
  try {
    await db.update(newsletterLists).set({ name: name.trim() }).where(eq(newsletterLists.id, listId));
  } catch (error) {
    if (isUniqueViolation(error, 'newsletter_lists_name_key')) throw listNameTaken(name.trim());
    throw error;
  }
  return getList(db, mailboxId, listId);
}

/** A list that campaigns were written for stays (their reports name it); others go with their memberships. */
export async function deleteList(db: Db, mailboxId: string, listId: string) {
  await listRow(db, mailboxId, listId);
  try {
    await db.delete(newsletterLists).where(eq(newsletterLists.id, listId));
  } catch (error) {
    if (isStillReferenced(error)) throw conflict('list_in_use', `Campaigns were written for distribution list '${listId}'; it cannot be deleted.`);
    throw error;
  }
  return { id: listId, object: 'newsletter_list' as const, deleted: true as const };
}

/** Adds contacts of the same address book; unknown ids are a 400 naming each one, and nothing is added. */
export async function addMembers(db: Db, mailboxId: string, listId: string, contactIds: string[]) {
  return db.transaction(async (tx) => {
    await listRow(tx, mailboxId, listId, true);
    const found = await tx.select({ id: newsletterContacts.id }).from(newsletterContacts)
      .where(and(eq(newsletterContacts.mailboxId, mailboxId), inArray(newsletterContacts.id, contactIds)));
    const known = new Set(found.map((row) => row.id));
    const missing = contactIds.flatMap((id, index) => (known.has(id) ? [] : [{ pointer: `/contacts/${index}`, location: 'body' as const, code: 'resource_missing', detail: `no contact with id '${id}'` }]));
    if (missing.length > 0) throw invalid(missing);
    const added = await tx.insert(newsletterListMembers).values(contactIds.map((contactId) => ({ listId, contactId })))
      .onConflictDoNothing().returning({ contactId: newsletterListMembers.contactId });
    const [total] = await tx.select({ n: count() }).from(newsletterListMembers).where(eq(newsletterListMembers.listId, listId));
    return { object: 'newsletter_list_members' as const, list: listId, added: added.length, member_count: total!.n };
  });
}

export async function removeMember(db: Db, mailboxId: string, listId: string, contactId: string) {
  await listRow(db, mailboxId, listId);
  const removed = await db.delete(newsletterListMembers)
    .where(and(eq(newsletterListMembers.listId, listId), eq(newsletterListMembers.contactId, contactId)))
    .returning({ contactId: newsletterListMembers.contactId });
  if (removed.length === 0) throw notFound('member of this list', contactId);
  return { object: 'newsletter_list_member' as const, list: listId, contact: contactId, deleted: true as const };
}

export async function listMembers(db: DbOrTx, mailboxId: string, listId: string, query: Page) {
  await listRow(db, mailboxId, listId);
  const rows = await db.select({ contact: newsletterContacts }).from(newsletterListMembers)
    .innerJoin(newsletterContacts, eq(newsletterContacts.id, newsletterListMembers.contactId))
    .where(and(eq(newsletterListMembers.listId, listId), query.startingAfter ? lt(newsletterContacts.id, query.startingAfter) : undefined))
    .orderBy(desc(newsletterContacts.id)).limit(query.limit + 1);
  return rows.map((row) => contactView(row.contact));
}

// ---------------------------------------------------------------- campaigns

type Stats = { recipients: number; queued: number; sent: number; failed: number };
const noStats = (): Stats => ({ recipients: 0, queued: 0, sent: 0, failed: 0 });

/** Per-campaign counts of deliveries by outcome: the progress while sending and the final report. */
export async function campaignStats(db: DbOrTx, campaignIds: string[]): Promise<Map<string, Stats>> {
  const out = new Map(campaignIds.map((id) => [id, noStats()]));
  if (campaignIds.length === 0) return out;
  const rows = await db.select({ campaign: newsletterDeliveries.campaignId, status: newsletterDeliveries.status, n: count() })
    .from(newsletterDeliveries).where(inArray(newsletterDeliveries.campaignId, campaignIds))
    .groupBy(newsletterDeliveries.campaignId, newsletterDeliveries.status);
  for (const row of rows) {
    const stats = out.get(row.campaign)!;
    stats[row.status] = row.n;
    stats.recipients += row.n;
  }
  return out;
}

function campaignView(row: CampaignRow, stats: Stats) {
  return {
    id: row.id,
    object: 'newsletter_campaign' as const,
    mailbox: row.mailboxId,
    list: row.listId,
    subject: row.subject,
    html: row.html,
    text: row.text,
    status: row.status,
    scheduled_at: row.scheduledAt?.toISOString() ?? null,
    started_at: row.startedAt?.toISOString() ?? null,
    finished_at: row.finishedAt?.toISOString() ?? null,
    stats,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  };
}

export type CampaignView = ReturnType<typeof campaignView>;

/** The campaign as the API shows it, with its progress counts read in the caller's transaction. */
export async function withStats(db: DbOrTx, row: CampaignRow): Promise<CampaignView> {
  return campaignView(row, (await campaignStats(db, [row.id])).get(row.id)!);
}

type CampaignEventType =
  | 'newsletter_campaign.created' | 'newsletter_campaign.updated' | 'newsletter_campaign.sending' | 'newsletter_campaign.sent' | 'newsletter_campaign.cancelled';

/** Writes the event of a change to a campaign (the old values of what changed, for changes); returns the new view. */
export async function recordCampaignEvent(tx: DbOrTx, clock: Clock, partnerId: string, type: CampaignEventType, after: CampaignView, before?: CampaignView): Promise<CampaignView> {
  await recordEvent(tx, clock, { partnerId, type, object: after, ...(before ? { previousAttributes: changedAttributes(before, after) } : {}) });
  return after;
}

/** The mailbox a campaign belongs to: its events go to its partner. */
export type CampaignMailbox = Pick<MailboxRow, 'id' | 'partnerId'>;

async function listOfMailbox(db: DbOrTx, mailboxId: string, listId: string): Promise<void> {
  const [row] = await db.select({ id: newsletterLists.id }).from(newsletterLists).where(and(eq(newsletterLists.id, listId), eq(newsletterLists.mailboxId, mailboxId)));
  if (!row) throw invalid([{ pointer: '/list', location: 'body', code: 'resource_missing', detail: `no distribution list with id '${listId}'` }]);
}

function content(html: string, text: string | null | undefined): { html: string; text: string } {
  const clean = sanitizeCampaignHtml(html);
  if (!clean) throw invalid([{ pointer: '/html', location: 'body', code: 'empty_after_sanitising', detail: 'nothing is left once scripts and unsafe markup are removed' }]);
  const derived = text?.trim() ? text : textFromHtml(clean);
  if (!derived.trim()) throw invalid([{ pointer: '/text', location: 'body', code: 'required', detail: 'the HTML has no text to derive a plain-text alternative from; send `text`' }]);
  return { html: clean, text: derived };
}

export async function createCampaign(db: Db, clock: Clock, mailbox: CampaignMailbox, input: { list: string; subject: string; html: string; text?: string | undefined }) {
  await listOfMailbox(db, mailbox.id, input.list);
  const now = clock.now();
  return db.transaction(async (tx) => {
    const [row] = await tx.insert(newsletterCampaigns).values({
      id: newId('nlm', now), mailboxId: mailbox.id, listId: input.list, subject: input.subject.trim(), ...content(input.html, input.text),
      status: 'draft', createdAt: now, updatedAt: now,
    }).returning();
    return recordCampaignEvent(tx, clock, mailbox.partnerId, 'newsletter_campaign.created', campaignView(row!, noStats()));
  });
}

async function campaignRow(db: DbOrTx, mailboxId: string, campaignId: string, lock = false): Promise<CampaignRow> {
  const query = db.select().from(newsletterCampaigns).where(and(eq(newsletterCampaigns.id, campaignId), eq(newsletterCampaigns.mailboxId, mailboxId)));
  const [row] = lock ? await query.for('update') : await query;
  if (!row) throw notFound('campaign', campaignId);
  return row;
}

export async function getCampaign(db: DbOrTx, mailboxId: string, campaignId: string) {
  return withStats(db, await campaignRow(db, mailboxId, campaignId));
}

export async function campaignForTest(db: DbOrTx, mailboxId: string, campaignId: string): Promise<CampaignRow> {
  return campaignRow(db, mailboxId, campaignId);
}

export async function listCampaigns(db: DbOrTx, mailboxId: string, query: Page & { status?: CampaignStatus | undefined }) {
  const rows = await db.select().from(newsletterCampaigns).where(and(
    eq(newsletterCampaigns.mailboxId, mailboxId),
    query.startingAfter ? lt(newsletterCampaigns.id, query.startingAfter) : undefined,
    query.status ? eq(newsletterCampaigns.status, query.status) : undefined,
  )).orderBy(desc(newsletterCampaigns.id)).limit(query.limit + 1);
  const stats = await campaignStats(db, rows.map((row) => row.id));
  return rows.map((row) => campaignView(row, stats.get(row.id)!));
}

const EDITABLE: CampaignStatus[] = ['draft', 'scheduled'];

function notEditable(row: CampaignRow, action: string): never {
  throw conflict('invalid_state_transition', `Campaign '${row.id}' is ${row.status}; it can only be ${action} while draft or scheduled.`, {
    current_status: row.status,
    allowed_from: EDITABLE,
  });
}

/**
 * Edits a draft or scheduled campaign. New HTML without a new text derives the text again, so the two never disagree.
 * Values equal to the current ones change nothing (and report nothing).
 */
export async function updateCampaign(db: Db, clock: Clock, mailbox: CampaignMailbox, campaignId: string, input: { list?: string | undefined; subject?: string | undefined; html?: string | undefined; text?: string | null | undefined }) {
  return db.transaction(async (tx) => {
    const row = await campaignRow(tx, mailbox.id, campaignId, true);
    if (!EDITABLE.includes(row.status)) notEditable(row, 'edited');
    if (input.list !== undefined) await listOfMailbox(tx, mailbox.id, input.list);
    const body = input.html !== undefined || input.text !== undefined
      ? content(input.html ?? row.html, input.text === undefined ? (input.html !== undefined ? null : row.text) : input.text)
      : {};
    const changes: Partial<Pick<CampaignRow, 'listId' | 'subject' | 'html' | 'text'>> = {
      ...(input.list !== undefined ? { listId: input.list } : {}),
      ...(input.subject !== undefined ? { subject: input.subject.trim() } : {}),
      ...body,
    };
    const before = await withStats(tx, row);
    if (Object.entries(changes).every(([key, value]) => row[key as keyof typeof changes] === value)) return before;
    const [updated] = await tx.update(newsletterCampaigns).set({ ...changes, updatedAt: clock.now() })
      .where(eq(newsletterCampaigns.id, campaignId)).returning();
    return recordCampaignEvent(tx, clock, mailbox.partnerId, 'newsletter_campaign.updated', await withStats(tx, updated!), before);
  });
}

/** How many members of a list would get a campaign now. */
async function eligibleMembers(db: DbOrTx, listId: string): Promise<number> {
  const [row] = await db.select({ n: count() }).from(newsletterListMembers)
    .innerJoin(newsletterContacts, eq(newsletterContacts.id, newsletterListMembers.contactId))
    .where(and(eq(newsletterListMembers.listId, listId), receivesCampaigns));
  return row!.n;
}

const YEAR_MS = 366 * 86_400_000;
/** Clock skew a client may have when it schedules "now". */
const PAST_TOLERANCE_MS = 5 * 60_000;

/**
 * Schedules sending at `scheduled_at` (or now). Sending starts at the first run of the newsletter task after that
 * time; rescheduling a scheduled campaign moves it. A list without a single consenting, subscribed member is a 409.
 */
export async function sendCampaign(db: Db, clock: Clock, mailbox: CampaignMailbox, campaignId: string, scheduledAt: string | undefined) {
  const now = clock.now();
  const at = scheduledAt === undefined ? now : new Date(scheduledAt);
  if (at.getTime() < now.getTime() - PAST_TOLERANCE_MS || at.getTime() > now.getTime() + YEAR_MS) {
    throw invalid([{ pointer: '/scheduled_at', location: 'body', code: 'out_of_range', detail: 'must be from now to a year ahead' }]);
  }
  return db.transaction(async (tx) => {
    const row = await campaignRow(tx, mailbox.id, campaignId, true);
    if (!EDITABLE.includes(row.status)) notEditable(row, 'sent or rescheduled');
    if ((await eligibleMembers(tx, row.listId)) === 0) {
      throw conflict('no_recipients', `Distribution list '${row.listId}' has no consenting, subscribed contact.`);
    }
    const before = await withStats(tx, row);
    if (row.status === 'scheduled' && row.scheduledAt?.getTime() === at.getTime()) return before;
    const [updated] = await tx.update(newsletterCampaigns).set({ status: 'scheduled', scheduledAt: at, updatedAt: now })
      .where(eq(newsletterCampaigns.id, campaignId)).returning();
    return recordCampaignEvent(tx, clock, mailbox.partnerId, 'newsletter_campaign.updated', await withStats(tx, updated!), before);
  });
}

export async function cancelCampaign(db: Db, clock: Clock, mailbox: CampaignMailbox, campaignId: string) {
  return db.transaction(async (tx) => {
    const row = await campaignRow(tx, mailbox.id, campaignId, true);
    if (!EDITABLE.includes(row.status)) notEditable(row, 'cancelled');
    const before = await withStats(tx, row);
    const [updated] = await tx.update(newsletterCampaigns).set({ status: 'cancelled', updatedAt: clock.now() })
      .where(eq(newsletterCampaigns.id, campaignId)).returning();
    return recordCampaignEvent(tx, clock, mailbox.partnerId, 'newsletter_campaign.cancelled', await withStats(tx, updated!), before);
  });
}

function deliveryView(row: DeliveryRow) {
  return {
    object: 'newsletter_delivery' as const,
    campaign: row.campaignId,
    contact: row.contactId,
    email: row.email,
    status: row.status,
    smtp_response: row.smtpResponse,
    attempts: row.attempts,
    updated_at: row.updatedAt.toISOString(),
  };
}

/** Per-recipient outcomes, by contact id (newest contact first); the cursor is a contact id. */
export async function listDeliveries(db: DbOrTx, mailboxId: string, campaignId: string, query: Page & { status?: DeliveryRow['status'] | undefined }) {
  await campaignRow(db, mailboxId, campaignId);
  const rows = await db.select().from(newsletterDeliveries).where(and(
    eq(newsletterDeliveries.campaignId, campaignId),
    query.startingAfter ? lt(newsletterDeliveries.contactId, query.startingAfter) : undefined,
    query.status ? eq(newsletterDeliveries.status, query.status) : undefined,
  )).orderBy(desc(newsletterDeliveries.contactId)).limit(query.limit + 1);
  const data = rows.slice(0, query.limit).map(deliveryView);
  const hasMore = rows.length > query.limit;
  return { object: 'list' as const, data, has_more: hasMore, next_cursor: hasMore ? data.at(-1)!.contact : null };
}
