import { Type } from 'typebox';
import { mailboxNoticeKinds, mailboxPlans, mailboxStatuses, renewalModes, suspensionReasons } from '@pec-partner/db';
import type { App, AppDeps } from '../../deps.ts';
import { partnerOf } from '../../http/auth.ts';
import { ListOf, ListQuery, toPage } from '../../http/pagination.ts';
import { problemResponses } from '../../http/problem.ts';
import {
  cancelMailbox, changeMailboxPlan, checkAvailability, createMailbox, getMailbox, listMailboxes, listNotices,
  renewMailbox, resetPassword, resumeMailbox, setRenewalMode, suspendMailbox, undoMailboxCancellation,
} from './service.ts';

const time = Type.String({ format: 'date-time' });
const nullableTime = Type.Union([time, Type.Null()]);
const Quota = Type.Object(
  { base_bytes: Type.Integer(), extra_bytes: Type.Integer(), total_bytes: Type.Integer(), used_bytes: Type.Integer() },
  { title: 'Quota' },
);

const mailboxProperties = {
  id: Type.String({ description: 'Prefixed `mbx_`.' }),
  object: Type.Literal('mailbox'),
  address: Type.String(),
  local_part: Type.String(),
  domain: Type.String(),
  domain_id: Type.String({ description: '`dom_…` for custom domains, `pdm_<name>` for the provider\'s.' }),
  customer: Type.String(),
  plan: Type.Enum(mailboxPlans),
  plan_at_renewal: Type.Union([Type.Enum(mailboxPlans), Type.Null()], { description: 'A plan change scheduled for the next renewal.' }),
  term_years: Type.Integer(),
  renewal_mode: Type.Enum(renewalModes),
  status: Type.Enum(mailboxStatuses),
  suspension_reason: Type.Union([Type.Enum(suspensionReasons), Type.Null()]),
  quotas: Type.Object({ inbox: Quota, archive: Quota }, { title: 'MailboxQuotas' }),
  included_delegates: Type.Integer(),
  requested_at: time,
  activated_at: nullableTime,
  expires_at: nullableTime,
  suspended_at: nullableTime,
  expired_at: nullableTime,
  cancel_at: Type.Union([time, Type.Null()], { description: 'When a scheduled cancellation takes effect.' }),
  cancelled_at: nullableTime,
  password_changed_at: time,
  created_at: time,
  updated_at: time,
};
const Mailbox = Type.Object(mailboxProperties, { title: 'Mailbox' });

const Password = Type.String({ minLength: 10, maxLength: 128, description: '10 to 128 characters with letters and digits.' });
const Years = Type.Integer({ minimum: 1, maximum: 5 });
const IdParams = Type.Object({ id: Type.String({ description: 'A mailbox id (`mbx_…`).' }) }, { additionalProperties: false });

export async function mailboxRoutes(app: App, deps: AppDeps): Promise<void> {
  const action = (operationId: string, summary: string, description?: string) => ({
    operationId,
    tags: ['Mailboxes'],
    summary,
    ...(description ? { description } : {}),
    params: IdParams,
  });

  app.post('/v1/mailboxes/availability', {
    schema: {
      operationId: 'checkMailboxAvailability',
      tags: ['Mailboxes'],
      summary: 'Whether an address can be created',
      body: Type.Object({ address: Type.String({ minLength: 3, maxLength: 320 }) }, { title: 'MailboxAvailabilityRequest', additionalProperties: false }),
      response: {
        200: Type.Object(
          {
            object: Type.Literal('mailbox_availability'),
            address: Type.String(),
            available: Type.Boolean(),
            reason: Type.Union([Type.String(), Type.Null()], { description: '`taken`, `invalid_local_part`, `invalid_address`, `unknown_domain` or `domain_not_certified`.' }),
            detail: Type.Union([Type.String(), Type.Null()]),
          },
          { title: 'MailboxAvailability' },
        ),
        ...problemResponses(),
      },
    },
  }, async (request) => checkAvailability(deps, partnerOf(request).partnerId, request.body.address));

  app.post('/v1/mailboxes', {
    schema: {
      operationId: 'createMailbox',
      tags: ['Mailboxes'],
      summary: 'Activate a PEC mailbox',
      description:
        'Charges the plan for the whole term. Active at once when the customer has a valid identity document, ' +
        'otherwise `pending_identification` until one is filed. Without `password` one is generated and returned ' +
        'in this response only.',
      body: Type.Object(
        {
          local_part: Type.String({ minLength: 1, maxLength: 64 }),
          domain: Type.String({ description: "A provider domain or one of your certified domains." }),
          customer: Type.String(),
          plan: Type.Enum(mailboxPlans),
          term_years: Type.Optional(Type.Integer({ minimum: 1, maximum: 5, default: 1 })),
          renewal_mode: Type.Optional(Type.Enum(renewalModes, { default: 'auto' })),
          password: Type.Optional(Password),
        },
        { title: 'MailboxCreate', additionalProperties: false },
      ),
      response: {
        201: Type.Object({ ...mailboxProperties, password: Type.Optional(Type.String({ description: 'The generated password, shown once.' })) }, { title: 'MailboxCreated' }),
        ...problemResponses(402, 409, 422),
      },
    },
  }, async (request, reply) => {
    const mailbox = await createMailbox(deps, partnerOf(request).partnerId, request.body, request.id);
    return reply.code(201).header('location', `/v1/mailboxes/${mailbox.id}`).send(mailbox);
  });

  app.get('/v1/mailboxes', {
    schema: {
      operationId: 'listMailboxes',
      tags: ['Mailboxes'],
      summary: 'List mailboxes, newest first',
      querystring: Type.Object(
        {
          ...ListQuery,
          customer: Type.Optional(Type.String()),
          domain: Type.Optional(Type.String({ description: 'Domain name.' })),
          plan: Type.Optional(Type.Enum(mailboxPlans)),
          status: Type.Optional(Type.Enum(mailboxStatuses)),
          expiring_before: Type.Optional(Type.String({ format: 'date-time' })),
        },
        { additionalProperties: false },
      ),
      response: { 200: ListOf(Mailbox, 'MailboxList'), ...problemResponses() },
    },
  }, async (request) => {
    const { limit = 10, starting_after, customer, domain, plan, status, expiring_before } = request.query;
    const rows = await listMailboxes(deps, partnerOf(request).partnerId, {
      limit, startingAfter: starting_after, customer, domain, plan, status, expiringBefore: expiring_before,
    });
    return toPage(rows, limit);
  });

  app.get('/v1/mailboxes/:id', {
    schema: { ...action('getMailbox', 'Retrieve a mailbox'), response: { 200: Mailbox, ...problemResponses(404) } },
  }, async (request) => getMailbox(deps, partnerOf(request).partnerId, request.params.id));

  app.patch('/v1/mailboxes/:id', {
    schema: {
      ...action('updateMailbox', 'Change the renewal mode'),
      body: Type.Object({ renewal_mode: Type.Enum(renewalModes) }, { title: 'MailboxUpdate', additionalProperties: false }),
      response: { 200: Mailbox, ...problemResponses(404, 409) },
    },
  }, async (request) => setRenewalMode(deps, partnerOf(request).partnerId, request.params.id, request.body.renewal_mode));

  app.post('/v1/mailboxes/:id/suspend', {
    schema: { ...action('suspendMailbox', 'Suspend (read-only)'), response: { 200: Mailbox, ...problemResponses(404, 409) } },
  }, async (request) => suspendMailbox(deps, partnerOf(request).partnerId, request.params.id));

  app.post('/v1/mailboxes/:id/resume', {
    schema: { ...action('resumeMailbox', 'Resume a suspended mailbox'), response: { 200: Mailbox, ...problemResponses(404, 409) } },
  }, async (request) => resumeMailbox(deps, partnerOf(request).partnerId, request.params.id));

  app.post('/v1/mailboxes/:id/cancel', {
    schema: {
      ...action('cancelMailbox', 'Cancel now, at the end of the term, or on a date',
        '`now` cancels at once: a mailbox never activated is refunded in full, the rest of an active term is not. ' +
        '`term_end` and `date` schedule it (undo with DELETE /v1/mailboxes/{id}/cancellation). When it is cancelled, and ' +
        'when it expires after its grace period, its active and scheduled add-ons end with it (unrefunded, like the term) ' +
        'and its delegations are revoked.'),
      body: Type.Object(
        { when: Type.Union([Type.Literal('now'), Type.Literal('term_end'), Type.Literal('date')]), date: Type.Optional(time) },
        { title: 'MailboxCancel', additionalProperties: false },
      ),
      response: { 200: Mailbox, ...problemResponses(404, 409) },
    },
  }, async (request) => cancelMailbox(deps, partnerOf(request).partnerId, request.params.id, request.body.when, request.body.date, request.id));

  app.delete('/v1/mailboxes/:id/cancellation', {
    schema: { ...action('undoMailboxCancellation', 'Undo a scheduled cancellation'), response: { 200: Mailbox, ...problemResponses(404, 409) } },
  }, async (request) => undoMailboxCancellation(deps, partnerOf(request).partnerId, request.params.id));

  app.post('/v1/mailboxes/:id/renew', {
    schema: {
      ...action('renewMailbox', 'Renew for more years (charged)', 'Extends from the current expiry, or from now if already past it; a plan change scheduled for renewal applies.'),
      body: Type.Object({ years: Years }, { title: 'MailboxRenew', additionalProperties: false }),
      response: { 200: Mailbox, ...problemResponses(402, 404, 409) },
    },
  }, async (request) => renewMailbox(deps, partnerOf(request).partnerId, request.params.id, request.body.years, request.id));

  app.post('/v1/mailboxes/:id/change-plan', {
    schema: {
      ...action('changeMailboxPlan', 'Change plan now (pro-rated) or at renewal',
        '`now` charges or refunds the price difference for the rest of the term, pro rata by the second over a 365-day year, ' +
        'and the new plan also applies from the renewal on (replacing `plan_at_renewal`); `renewal` sets `plan_at_renewal`. ' +
        'A plan that lowers a limit the mailbox would exceed is refused, charging and changing nothing, in each term the ' +
        'change applies to (`now`: the rest of the term with the active add-ons, and from the renewal on with the add-ons ' +
        'that renew or start then; `renewal`: from the renewal on): 409 `addons_exceed_plan` when the space add-ons give more ' +
        'extra GB than the new plan allows (`kind`, `addons`, `extra_gb`, `max_extra_gb`, `must_remove_gb`: cancel or ' +
        'replace them first), 409 `quota_below_usage` when the space in use exceeds the new plan\'s quota plus those add-ons ' +
        '(`used_bytes`, `total_bytes`), 409 `delegations_over_limit` when the invited and active delegations exceed the new ' +
        'plan\'s included seats plus the `delegation_seat` add-ons (`seats`, `delegations`, `must_revoke`). Every plan allows ' +
        'every add-on kind. After a downgrade scheduled for the renewal, new invitations and space purchases are held to the ' +
        'smaller plan from the renewal on.'),
      body: Type.Object({ plan: Type.Enum(mailboxPlans), when: Type.Union([Type.Literal('now'), Type.Literal('renewal')]) }, { title: 'MailboxChangePlan', additionalProperties: false }),
      response: { 200: Mailbox, ...problemResponses(402, 404, 409) },
    },
  }, async (request) => changeMailboxPlan(deps, partnerOf(request).partnerId, request.params.id, request.body.plan, request.body.when, request.id));

  app.post('/v1/mailboxes/:id/password', {
    schema: {
      ...action('resetMailboxPassword', "Reset the holder's password", 'Sets `password`, or generates one and returns it once.'),
      body: Type.Optional(Type.Object({ password: Type.Optional(Password) }, { title: 'MailboxPasswordReset', additionalProperties: false })),
      response: {
        200: Type.Object(
          { object: Type.Literal('mailbox_password'), mailbox: Type.String(), changed_at: time, password: Type.Optional(Type.String()) },
          { title: 'MailboxPassword' },
        ),
        ...problemResponses(404, 409),
      },
    },
  }, async (request) => resetPassword(deps, partnerOf(request).partnerId, request.params.id, request.body?.password));

  app.get('/v1/mailboxes/:id/notices', {
    schema: {
      ...action('listMailboxNotices', 'Expiry notices recorded for the mailbox (30, 7 and 1 days before expiry), oldest first'),
      querystring: Type.Object(ListQuery, { additionalProperties: false }),
      response: {
        200: ListOf(
          Type.Object(
            { id: Type.String(), object: Type.Literal('mailbox_notice'), mailbox: Type.String(), kind: Type.Enum(mailboxNoticeKinds), expires_at: time, created_at: time },
            { title: 'MailboxNotice' },
          ),
          'MailboxNoticeList',
        ),
        ...problemResponses(404),
      },
    },
  }, async (request) => {
    const { limit = 10, starting_after } = request.query;
    return toPage(await listNotices(deps, partnerOf(request).partnerId, request.params.id, { limit, startingAfter: starting_after }), limit);
  });
}
