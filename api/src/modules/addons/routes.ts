import { Type } from 'typebox';
import { addonKinds, addonStatuses } from '@pec-partner/db';
import type { App, AppDeps } from '../../deps.ts';
import { partnerOf } from '../../http/auth.ts';
import { ListOf, ListQuery, toPage } from '../../http/pagination.ts';
import { problemResponses } from '../../http/problem.ts';
import { cancelAddon, listAddons, purchaseAddon, undoAddonCancellation } from './service.ts';

const nullableTime = Type.Union([Type.String({ format: 'date-time' }), Type.Null()]);

export const MailboxAddon = Type.Object(
  {
    id: Type.String({ description: 'Prefixed `add_`.' }),
    object: Type.Literal('mailbox_addon'),
    mailbox: Type.String(),
    kind: Type.Enum(addonKinds),
    quantity: Type.Integer({ description: 'GB for extra space, seats for delegation, 1 otherwise.' }),
    status: Type.Enum(addonStatuses, { description: '`scheduled` until the renewal it was bought for.' }),
    renews: Type.Boolean({ description: 'Whether it renews with the mailbox.' }),
    starts_at: nullableTime,
    current_period_end: nullableTime,
    cancelled_at: nullableTime,
    created_at: Type.String({ format: 'date-time' }),
  },
  { title: 'MailboxAddon' },
);

const Params = Type.Object({ id: Type.String() }, { additionalProperties: false });
const AddonParams = Type.Object({ id: Type.String(), addon: Type.String() }, { additionalProperties: false });

export async function addonRoutes(app: App, deps: AppDeps): Promise<void> {
  app.post('/v1/mailboxes/:id/addons', {
    schema: {
      operationId: 'purchaseAddon',
      tags: ['Add-ons'],
      summary: 'Buy an add-on for a mailbox',
      description:
        '`when: now` (default) activates it at once and charges it pro rata until the end of the mailbox term; ' +
        '`when: renewal` schedules it and charges it with the renewal. Extra space is limited by the plan\'s maximum (400), and from the renewal on by the maximum of the plan the ' +
        'mailbox renews on (`plan_at_renewal`), as every add-on renews. ' +
        'Add-ons end with their mailbox (cancelled, or expired after its grace period).',
      params: Params,
      body: Type.Object({
        kind: Type.Enum(addonKinds),
        quantity: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 1 })),
        when: Type.Optional(Type.Union([Type.Literal('now'), Type.Literal('renewal')], { default: 'now' })),
      }, { title: 'AddonPurchase', additionalProperties: false }),
      response: { 201: MailboxAddon, ...problemResponses(402, 404, 409) },
    },
  }, async (request, reply) => reply.code(201).send(await purchaseAddon(deps, partnerOf(request).partnerId, request.params.id, request.body, request.id)));

  app.get('/v1/mailboxes/:id/addons', {
    schema: {
      operationId: 'listAddons',
      tags: ['Add-ons'],
      summary: "A mailbox's add-ons, newest first",
      params: Params,
      querystring: Type.Object(ListQuery, { additionalProperties: false }),
      response: { 200: ListOf(MailboxAddon, 'MailboxAddonList'), ...problemResponses(404) },
    },
  }, async (request) => {
    const { limit = 10, starting_after } = request.query;
    return toPage(await listAddons(deps.db, partnerOf(request).partnerId, request.params.id, { limit, startingAfter: starting_after }), limit);
  });

  app.post('/v1/mailboxes/:id/addons/:addon/cancel', {
    schema: {
      operationId: 'cancelAddon',
      tags: ['Add-ons'],
      summary: 'Cancel an add-on now (unused part refunded) or at renewal',
      description:
        'Refused while what is in use would not fit, now or from the renewal on: space below the bytes already used ' +
        '(409 `quota_below_usage`), delegation seats below the invited and active delegations (409 ' +
        '`delegations_over_limit`, with `must_revoke`). A space add-on cancelled now changes the mailbox\'s `quotas`.',
      params: AddonParams,
      body: Type.Object({ when: Type.Union([Type.Literal('now'), Type.Literal('renewal')]) }, { title: 'AddonCancellation', additionalProperties: false }),
      response: { 200: MailboxAddon, ...problemResponses(404, 409) },
    },
  }, async (request) => cancelAddon(deps, partnerOf(request).partnerId, request.params.id, request.params.addon, request.body.when, request.id));

  app.delete('/v1/mailboxes/:id/addons/:addon/cancellation', {
    schema: {
      operationId: 'undoAddonCancellation',
      tags: ['Add-ons'],
      summary: 'Keep renewing an add-on cancelled for the renewal',
      description:
        'Refused for a space add-on whose renewal would put the space add-ons above the maximum of the plan the mailbox ' +
        'renews on (409 `addons_exceed_plan`, as for a plan change).',
      params: AddonParams,
      response: { 200: MailboxAddon, ...problemResponses(404, 409) },
    },
  }, async (request) => undoAddonCancellation(deps, partnerOf(request).partnerId, request.params.id, request.params.addon));
}
