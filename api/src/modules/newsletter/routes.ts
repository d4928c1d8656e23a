import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { App, AppDeps } from '../../deps.ts';
import { partnerOf } from '../../http/auth.ts';
import { ListOf, ListQuery, toPage } from '../../http/pagination.ts';
import { ProblemError, problemResponses } from '../../http/problem.ts';
import { importContacts, MAX_IMPORT_BYTES } from './csv-import.ts';
import {
  Campaign, CampaignCreate, CampaignParams, CampaignQuery, CampaignSend, CampaignUpdate, Contact, ContactCreate, ContactParams,
  ContactQuery, ContactUpdate, Deleted, Delivery, DeliveryQuery, DistributionList, ImportQuery, ImportResult, ListParams, ListWrite,
  MailboxParams, MemberParams, MemberRemoved, MembersAdd, MembersAdded, TestSend, TestSendResult,
} from './schemas.ts';
import { sendTestMessage } from './sender.ts';
import {
  addMembers, campaignForTest, cancelCampaign, createCampaign, createContact, createList, deleteContact, deleteList, getCampaign,
  getContact, getList, listCampaigns, listContacts, listDeliveries, listLists, listMembers, newsletterMailbox, removeMember,
  renameList, sendCampaign, unsubscribe, updateCampaign, updateContact,
} from './service.ts';
import { normalizeEmail } from './content.ts';

const tags = ['Newsletter'];
const BASE = '/v1/mailboxes/:id/newsletter';

const html = (title: string, body: string): string =>
  `<!doctype html>\n<html lang="it"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">` +
  `<meta name="robots" content="noindex"><title>${title}</title></head>` +
  `<body style="font-family: sans-serif; max-width: 36em; margin: 3em auto; padding: 0 1em">${body}</body></html>\n`;

const escapeHtml = (text: string): string =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');

const HtmlPage = (description: string) => ({ description, content: { 'text/html': { schema: { type: 'string' } } } });

/**
 * The newsletter add-on: address book (with CSV import), distribution lists, campaigns sent through the outbound
 * relay by the `newsletter.send` task, per-recipient reports, and the public unsubscribe link.
 */
export async function newsletterRoutes(app: App, deps: AppDeps): Promise<void> {
  const { db, clock, config } = deps;
  /** The mailbox of the path, the partner's and with the add-on. */
  const gateMailbox = (request: FastifyRequest) => newsletterMailbox(db, partnerOf(request).partnerId, (request.params as { id: string }).id);
  /** The same, by its id. */
  const gate = async (request: FastifyRequest): Promise<string> => (await gateMailbox(request)).id;

  await app.register(async (scope: App) => {
    // CSV uploads, UTF-8 only (a BOM is fine); other encodings are refused rather than misread.
    scope.addContentTypeParser('text/csv', { parseAs: 'buffer', bodyLimit: MAX_IMPORT_BYTES }, (_request, body, done) => {
      try {
        done(null, new TextDecoder('utf-8', { fatal: true }).decode(body as Buffer));
      } catch {
        done(new ProblemError(400, 'invalid_encoding', 'Invalid request', 'The CSV file must be UTF-8 encoded (with or without a BOM); save it again as "CSV UTF-8".'), undefined);
      }
    });

    // ------------------------------------------------------------ contacts

    scope.post(`${BASE}/contacts`, {
      schema: {
        operationId: 'createNewsletterContact', tags, summary: 'Add a contact to the address book',
        description: 'Only contacts with `consent: true` that never unsubscribed receive campaigns. An address already in the book is a 409 `contact_exists`.',
        params: MailboxParams, body: ContactCreate,
        response: { 201: Contact, ...problemResponses(404, 409) },
      },
    }, async (request, reply) => {
      const contact = await createContact(db, clock, await gate(request), request.body);
      return reply.code(201).header('location', `${BASE.replace(':id', request.params.id)}/contacts/${contact.id}`).send(contact);
    });

    scope.get(`${BASE}/contacts`, {
      schema: {
        operationId: 'listNewsletterContacts', tags, summary: 'List the address book, newest first',
        params: MailboxParams, querystring: ContactQuery,
        response: { 200: ListOf(Contact, 'NewsletterContactList'), ...problemResponses(404, 409) },
      },
    }, async (request) => {
      const { limit = 10, starting_after, email, receives_campaigns } = request.query;
      return toPage(await listContacts(db, await gate(request), { limit, startingAfter: starting_after, email, receivesCampaigns: receives_campaigns }), limit);
    });

    scope.post(`${BASE}/contacts/import`, {
      schema: {
        operationId: 'importNewsletterContacts', tags, summary: 'Import contacts from a CSV file',
        description:
          'Body: `Content-Type: text/csv`, UTF-8 (a BOM is tolerated), comma- or semicolon-separated, with a header line naming the ' +
          'columns `email`, `name` (optional) and `consent` (`yes`/`no`, `true`/`false`, `1`/`0`, `sì`/`no`). Valid rows are imported; ' +
          'an address already in the book has its name (when given) and consent updated; an unsubscribed contact stays unsubscribed. ' +
          'Every invalid row is reported in `errors` with its line (the header is line 1), field and code, and skipped. ' +
          '`?list=` also adds the imported contacts to a distribution list. At most 20,000 rows and 5 MiB.',
        consumes: ['text/csv'],
        params: MailboxParams, querystring: ImportQuery,
        body: Type.String({ description: 'The CSV file.' }),
        response: { 200: ImportResult, ...problemResponses(404, 409, 413, 415) },
      },
    }, async (request) => importContacts(db, clock, await gate(request), request.body, request.query.list));

    scope.get(`${BASE}/contacts/:contact`, {
      schema: {
        operationId: 'getNewsletterContact', tags, summary: 'Retrieve a contact',
        params: ContactParams, response: { 200: Contact, ...problemResponses(404, 409) },
      },
    }, async (request) => getContact(db, await gate(request), request.params.contact));

    scope.patch(`${BASE}/contacts/:contact`, {
      schema: {
        operationId: 'updateNewsletterContact', tags, summary: 'Change a contact',
        description: 'An unsubscription is final here: only the contact can subscribe again.',
        params: ContactParams, body: ContactUpdate, response: { 200: Contact, ...problemResponses(404, 409) },
      },
    }, async (request) => updateContact(db, clock, await gate(request), request.params.contact, request.body));

    scope.delete(`${BASE}/contacts/:contact`, {
      schema: {
        operationId: 'deleteNewsletterContact', tags, summary: 'Erase a contact',
        description:
          'Removes the contact, its list memberships and its lines in past campaign reports. Refused (409 `contact_in_sending_campaign`) ' +
          'while a campaign still has to send to it.',
        params: ContactParams, response: { 200: Deleted('newsletter_contact', 'DeletedNewsletterContact'), ...problemResponses(404, 409) },
      },
    }, async (request) => deleteContact(db, await gate(request), request.params.contact));

    // ------------------------------------------------------------ distribution lists

    scope.post(`${BASE}/lists`, {
      schema: {
        operationId: 'createNewsletterList', tags, summary: 'Create a distribution list',
        params: MailboxParams, body: ListWrite, response: { 201: DistributionList, ...problemResponses(404, 409) },
      },
    }, async (request, reply) => {
      const list = await createList(db, clock, await gate(request), request.body.name);
      return reply.code(201).header('location', `${BASE.replace(':id', request.params.id)}/lists/${list.id}`).send(list);
    });

    scope.get(`${BASE}/lists`, {
      schema: {
        operationId: 'listNewsletterLists', tags, summary: 'List distribution lists, newest first',
        params: MailboxParams, querystring: Type.Object({ ...ListQuery }, { additionalProperties: false }),
        response: { 200: ListOf(DistributionList, 'NewsletterListList'), ...problemResponses(404, 409) },
      },
    }, async (request) => {
      const { limit = 10, starting_after } = request.query;
      return toPage(await listLists(db, await gate(request), { limit, startingAfter: starting_after }), limit);
    });

    scope.get(`${BASE}/lists/:list`, {
      schema: {
        operationId: 'getNewsletterList', tags, summary: 'Retrieve a distribution list',
        params: ListParams, response: { 200: DistributionList, ...problemResponses(404, 409) },
      },
    }, async (request) => getList(db, await gate(request), request.params.list));

    scope.patch(`${BASE}/lists/:list`, {
      schema: {
        operationId: 'renameNewsletterList', tags, summary: 'Rename a distribution list',
        params: ListParams, body: ListWrite, response: { 200: DistributionList, ...problemResponses(404, 409) },
      },
    }, async (request) => renameList(db, await gate(request), request.params.list, request.body.name));

    scope.delete(`${BASE}/lists/:list`, {
      schema: {
        operationId: 'deleteNewsletterList', tags, summary: 'Delete a distribution list',
        description: 'The contacts stay in the address book. A list that campaigns were written for cannot be deleted (409 `list_in_use`).',
        params: ListParams, response: { 200: Deleted('newsletter_list', 'DeletedNewsletterList'), ...problemResponses(404, 409) },
      },
    }, async (request) => deleteList(db, await gate(request), request.params.list));

    scope.post(`${BASE}/lists/:list/members`, {
      schema: {
        operationId: 'addNewsletterListMembers', tags, summary: 'Add contacts to a distribution list',
        description: 'Contacts already in the list are left as they are. An unknown contact id is a 400 naming it, and nothing is added.',
        params: ListParams, body: MembersAdd, response: { 200: MembersAdded, ...problemResponses(404, 409) },
      },
    }, async (request) => addMembers(db, await gate(request), request.params.list, request.body.contacts));

    scope.get(`${BASE}/lists/:list/members`, {
      schema: {
        operationId: 'listNewsletterListMembers', tags, summary: 'List the contacts of a distribution list, newest first',
        params: ListParams, querystring: Type.Object({ ...ListQuery }, { additionalProperties: false }),
        response: { 200: ListOf(Contact, 'NewsletterListMemberList'), ...problemResponses(404, 409) },
      },
    }, async (request) => {
      const { limit = 10, starting_after } = request.query;
      return toPage(await listMembers(db, await gate(request), request.params.list, { limit, startingAfter: starting_after }), limit);
    });

    scope.delete(`${BASE}/lists/:list/members/:contact`, {
      schema: {
        operationId: 'removeNewsletterListMember', tags, summary: 'Remove a contact from a distribution list',
        params: MemberParams, response: { 200: MemberRemoved, ...problemResponses(404, 409) },
      },
    }, async (request) => removeMember(db, await gate(request), request.params.list, request.params.contact));

    // ------------------------------------------------------------ campaigns

    scope.post(`${BASE}/campaigns`, {
      schema: {
        operationId: 'createNewsletterCampaign', tags, summary: 'Write a campaign (a draft)',
        description:
          'The HTML is sanitised (scripts, style sheets, event handlers, `javascript:` and `data:` URLs are removed); the response ' +
          'shows what is kept. Without `text`, the plain-text alternative is derived from the HTML. Every message gets an unsubscribe ' +
          'footer and `List-Unsubscribe` headers.',
        params: MailboxParams, body: CampaignCreate, response: { 201: Campaign, ...problemResponses(404, 409) },
      },
    }, async (request, reply) => {
      const campaign = await createCampaign(db, clock, await gateMailbox(request), request.body);
      return reply.code(201).header('location', `${BASE.replace(':id', request.params.id)}/campaigns/${campaign.id}`).send(campaign);
    });

    scope.get(`${BASE}/campaigns`, {
      schema: {
        operationId: 'listNewsletterCampaigns', tags, summary: 'List campaigns with their counts, newest first',
        params: MailboxParams, querystring: CampaignQuery,
        response: { 200: ListOf(Campaign, 'NewsletterCampaignList'), ...problemResponses(404, 409) },
      },
    }, async (request) => {
      const { limit = 10, starting_after, status } = request.query;
      return toPage(await listCampaigns(db, await gate(request), { limit, startingAfter: starting_after, status }), limit);
    });

    scope.get(`${BASE}/campaigns/:campaign`, {
      schema: {
        operationId: 'getNewsletterCampaign', tags, summary: 'Retrieve a campaign and its progress',
        description: '`stats` counts the deliveries: `queued` goes down and `sent`/`failed` up while the campaign is sending.',
        params: CampaignParams, response: { 200: Campaign, ...problemResponses(404, 409) },
      },
    }, async (request) => getCampaign(db, await gate(request), request.params.campaign));

    scope.patch(`${BASE}/campaigns/:campaign`, {
      schema: {
        operationId: 'updateNewsletterCampaign', tags, summary: 'Edit a draft or scheduled campaign',
        description: 'New `html` without `text` derives the text again. Once sending has started, 409 `invalid_state_transition`.',
        params: CampaignParams, body: CampaignUpdate, response: { 200: Campaign, ...problemResponses(404, 409) },
      },
    }, async (request) => updateCampaign(db, clock, await gateMailbox(request), request.params.campaign, request.body));

    scope.post(`${BASE}/campaigns/:campaign/send`, {
      schema: {
        operationId: 'sendNewsletterCampaign', tags, summary: 'Send a campaign now or at `scheduled_at`',
        description:
          'The campaign becomes `scheduled`; the `newsletter.send` task starts it at `scheduled_at` (or at its next run, within a ' +
          'minute), fixing its recipients then: the consenting, subscribed members of its list. Calling it again on a scheduled ' +
          'campaign reschedules it. A list without such members is a 409 `no_recipients`.',
        params: CampaignParams, body: CampaignSend, response: { 200: Campaign, ...problemResponses(404, 409) },
      },
    }, async (request) => sendCampaign(db, clock, await gateMailbox(request), request.params.campaign, request.body.scheduled_at));

    scope.post(`${BASE}/campaigns/:campaign/cancel`, {
      schema: {
        operationId: 'cancelNewsletterCampaign', tags, summary: 'Cancel a campaign before it starts sending',
        params: CampaignParams, response: { 200: Campaign, ...problemResponses(404, 409) },
      },
    }, async (request) => cancelCampaign(db, clock, await gateMailbox(request), request.params.campaign));

    scope.post(`${BASE}/campaigns/:campaign/test`, {
      schema: {
        operationId: 'testNewsletterCampaign', tags, summary: 'Send a test message to one address',
        description:
          'Sends the campaign as it stands, subject prefixed with `[TEST]`, through the relay, at once, and answers with the ' +
          "relay's response. Its unsubscribe link unsubscribes nobody. 503 `relay_unavailable` when the relay cannot be reached.",
        params: CampaignParams, body: TestSend, response: { 200: TestSendResult, ...problemResponses(404, 409, 503) },
      },
    }, async (request) => {
      const campaign = await campaignForTest(db, await gate(request), request.params.campaign);
      const email = normalizeEmail(request.body.email);
      if (!email) throw new ProblemError(400, 'validation_error', 'Invalid request', 'The request has invalid fields.', { errors: [{ pointer: '/email', location: 'body', code: 'invalid_format', detail: 'must be a plain e-mail address (local@domain)' }] });
      const outcome = await sendTestMessage(deps, campaign.id, email);
      if (outcome.kind === 'unavailable') {
        throw new ProblemError(503, 'relay_unavailable', 'Service unavailable', `The newsletter relay cannot be reached: ${outcome.response}`);
      }
      return {
        object: 'newsletter_test_send' as const, campaign: campaign.id, email,
        status: outcome.kind === 'sent' ? ('sent' as const) : ('failed' as const), smtp_response: outcome.response,
      };
    });

    scope.get(`${BASE}/campaigns/:campaign/deliveries`, {
      schema: {
        operationId: 'listNewsletterDeliveries', tags, summary: "Per-recipient outcomes with the relay's answers",
        params: CampaignParams, querystring: DeliveryQuery,
        response: { 200: ListOf(Delivery, 'NewsletterDeliveryList'), ...problemResponses(404, 409) },
      },
    }, async (request) => {
      const { limit = 10, starting_after, status } = request.query;
      return listDeliveries(db, await gate(request), request.params.campaign, { limit, startingAfter: starting_after, status });
    });
  });

  // ------------------------------------------------------------ the public unsubscribe link

  await app.register(async (scope: App) => {
    // One-click unsubscribers (RFC 8058) POST `List-Unsubscribe=One-Click` as a form, urlencoded or multipart;
    // browsers post the confirmation form. The body carries nothing we need, whatever its type.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: 16 * 1024 }, (_request, _body, done) => done(null, undefined));

    const TokenParams = Type.Object({ token: Type.String({ maxLength: 100 }) }, { additionalProperties: false });
    const page = (apply: boolean) => async (request: FastifyRequest<{ Params: { token: string } }>, reply: import('fastify').FastifyReply) => {
      reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').header('referrer-policy', 'no-referrer');
      const { token } = request.params;
      if (token === 'test') {
        return html('Test', '<p>Questo link viene da un messaggio di prova: nessuna iscrizione è stata annullata.</p>' +
          '<p>This link comes from a test message: nobody was unsubscribed.</p>');
      }
      const result = await unsubscribe(db, clock, token, apply);
      if (!result) {
        // A person's browser gets a page; any other client the problem document every error is.
        if (!/\btext\/html\b/.test(request.headers.accept ?? '')) throw new ProblemError(404, 'resource_missing', 'Resource not found', 'This unsubscribe link is not valid.');
        return reply.code(404).send(html('Link non valido', '<p>Questo link di disiscrizione non è valido.</p><p>This unsubscribe link is not valid.</p>'));
      }
      const who = `<strong>${escapeHtml(result.email)}</strong>`;
      const from = escapeHtml(result.sender);
      if (apply || result.already) {
        return html('Iscrizione annullata',
          `<p>${who} non riceverà più la newsletter di ${from}.</p><p>${who} will no longer receive the newsletter of ${from}.</p>`);
      }
      const action = `${config.publicUrl}/newsletter/unsubscribe/${encodeURIComponent(token)}`;
      return html('Annulla iscrizione',
        `<p>Vuoi che ${who} non riceva più la newsletter di ${from}?</p><p>Stop sending the newsletter of ${from} to ${who}?</p>` +
        `<form method="post" action="${escapeHtml(action)}"><button type="submit">Annulla l'iscrizione / Unsubscribe</button></form>`);
    };
    const schema = (apply: boolean) => ({
      operationId: apply ? 'newsletterUnsubscribe' : 'newsletterUnsubscribePage',
      tags,
      summary: apply ? 'Unsubscribe (one-click, RFC 8058, or the confirmation form)' : 'The unsubscribe page of a recipient',
      description: apply
        ? 'Public. Marks the contact unsubscribed for good; repeating it changes nothing. Target of `List-Unsubscribe-Post`.'
        : 'Public. The link in every newsletter message: shows a confirmation button that POSTs to the same URL (a GET changes ' +
          'nothing, so mail scanners that follow links cannot unsubscribe anyone).',
      security: [],
      params: TokenParams,
      response: {
        200: HtmlPage('An HTML page for the recipient'),
        404: { description: 'Unknown link: a page for browsers (`Accept: text/html`), a problem otherwise', content: { ...HtmlPage('').content, ...problemResponses(404)[404]!.content } },
      },
    });
    scope.get('/newsletter/unsubscribe/:token', { config: { public: true }, schema: schema(false) }, page(false));
    scope.post('/newsletter/unsubscribe/:token', { config: { public: true }, schema: schema(true) }, page(true));
  });
}
