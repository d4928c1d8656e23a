import { sql, type SQL } from 'drizzle-orm';
import type { PgTable } from 'drizzle-orm/pg-core';
import type { FastifyRequest } from 'fastify';
import {
  apiKeys, customers, delegations, domains, events, invoices, mailboxAddons, mailboxes, mailboxMessages, newsletterCampaigns,
  newsletterContacts, newsletterLists, supervisors, testClocks, topUps, webhookEndpoints, type Db,
} from '@pec-partner/db';
import { notFound, type ProblemError } from './problem.ts';

/**
 * Which table each id prefix names, and who owns its rows: the partner (`partner_id`) or the mailbox in the same
 * URL (`mailbox_id`, for resources that live inside one mailbox).
 */
const resources: Record<string, { table: PgTable; owner: 'partner' | 'mailbox'; what: string }> = {
  key: { table: apiKeys, owner: 'partner', what: 'API key' },
  cus: { table: customers, owner: 'partner', what: 'customer' },
  dom: { table: domains, owner: 'partner', what: 'domain' },
  mbx: { table: mailboxes, owner: 'partner', what: 'mailbox' },
  add: { table: mailboxAddons, owner: 'partner', what: 'add-on' },
  dlg: { table: delegations, owner: 'partner', what: 'delegation' },
  sup: { table: supervisors, owner: 'partner', what: 'supervisor' },
  evt: { table: events, owner: 'partner', what: 'event' },
  we: { table: webhookEndpoints, owner: 'partner', what: 'webhook endpoint' },
  top: { table: topUps, owner: 'partner', what: 'top-up' },
  inv: { table: invoices, owner: 'partner', what: 'invoice' },
  clk: { table: testClocks, owner: 'partner', what: 'test clock' },
  nlc: { table: newsletterContacts, owner: 'mailbox', what: 'contact' },
  nll: { table: newsletterLists, owner: 'mailbox', what: 'list' },
  nlm: { table: newsletterCampaigns, owner: 'mailbox', what: 'campaign' },
  msg: { table: mailboxMessages, owner: 'mailbox', what: 'message' },
};

/** Path parameters that carry an object id (others, such as a branding slug or a token, are not ids). */
const ID_PARAMS = new Set(['id', 'addon', 'delegation', 'mailbox', 'supervisor', 'contact', 'list', 'campaign', 'message']);

/**
 * The 404 a request deserves whatever its body says: the first id in its path that does not name a resource of
 * the caller (unknown prefix, no such row, another partner's, another mailbox's). Asked only when a request is
 * about to be refused for its body, so that an unknown id reads the same as everywhere else — found or not is
 * the first thing a client learns, as Stripe does — without costing the valid requests a query.
 */
export async function missingPathResource(db: Db, request: FastifyRequest): Promise<ProblemError | undefined> {
  const partnerId = request.principal?.partnerId ?? request.holder?.partnerId;
  const params = (request.params ?? {}) as Record<string, unknown>;
  if (!partnerId) return undefined;
  const mailboxId = typeof params.id === 'string' && params.id.startsWith('mbx_') ? params.id : undefined;
  for (const [name, value] of Object.entries(params)) {
    if (!ID_PARAMS.has(name) || typeof value !== 'string') continue;
    const resource = resources[value.slice(0, Math.max(0, value.indexOf('_')))];
    if (!resource) return notFound('resource', value);
    if (request.holder && resource.table === mailboxes && value !== request.holder.mailboxId) return notFound(resource.what, value);
    let owner: SQL;
    if (resource.owner === 'partner') owner = sql`partner_id = ${partnerId}`;
    else if (mailboxId) owner = sql`mailbox_id = ${mailboxId}`;
    else return notFound(resource.what, value);
    const rows = await db.execute(sql`select 1 from ${resource.table} where id = ${value} and ${owner} limit 1`);
    if (rows.length === 0) return notFound(resource.what, value);
  }
  return undefined;
}
