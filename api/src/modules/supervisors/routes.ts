import { Type } from 'typebox';
import { mailboxPlans, mailboxStatuses, renewalModes } from '@pec-partner/db';
import type { FastifyRequest } from 'fastify';
import type { App, AppDeps } from '../../deps.ts';
import { holderOf, partnerOf } from '../../http/auth.ts';
import { ListOf, ListQuery, toPage } from '../../http/pagination.ts';
import { notFound, problemResponses } from '../../http/problem.ts';
import {
  addSupervisedMailbox, answerSupervisionInvitation, bulkAction, consoleSorts, createSupervisor, findSupervisor, leaveSupervision,
  listSupervisionsOfMailbox, listSupervisors, removeSupervisedMailbox, supervisorConsole, supervisorView, updateSupervisor,
} from './service.ts';
import { liveSupervision, SESSION_TTL_SECONDS } from '../../access/supervisor-sessions.ts';
import { exchangeSignInLink, issueSignInLink, SIGN_IN_TTL_SECONDS } from './sessions.ts';

const time = Type.String({ format: 'date-time' });
const nullableTime = Type.Union([time, Type.Null()]);

const Supervisor = Type.Object({
  id: Type.String({ description: 'Prefixed `sup_`.' }),
  object: Type.Literal('supervisor'),
  mailbox: Type.String({ description: 'The mailbox whose `supervisor` add-on pays for the console.' }),
  name: Type.String(),
  email: Type.String(),
  created_at: time,
  updated_at: time,
}, { title: 'Supervisor' });

const supervisionProperties = {
  object: Type.Literal('supervision'),
  supervisor: Type.String(),
  supervisor_name: Type.String(),
  supervisor_email: Type.String(),
  mailbox: Type.String(),
  mailbox_address: Type.String(),
  status: Type.Union([Type.Literal('invited'), Type.Literal('active'), Type.Literal('removed'), Type.Literal('declined'), Type.Literal('expired')]),
  invite_expires_at: nullableTime,
  added_at: time,
  accepted_at: nullableTime,
  removed_at: nullableTime,
};
const Supervision = Type.Object(supervisionProperties, { title: 'Supervision' });

const Space = Type.Union([Type.Object({ used_bytes: Type.Integer(), total_bytes: Type.Integer() }, { title: 'SupervisedSpace' }), Type.Null()]);
const SupervisedMailbox = Type.Object({
  id: Type.String({ description: 'The mailbox id (`mbx_…`).' }),
  object: Type.Literal('supervised_mailbox'),
  address: Type.String(),
  customer: Type.String(),
  supervision_status: Type.Union([Type.Literal('active'), Type.Literal('invited')]),
  status: Type.Enum(mailboxStatuses),
  plan: Type.Enum(mailboxPlans),
  renewal_mode: Type.Enum(renewalModes),
  expires_at: nullableTime,
  unread: Type.Union([Type.Integer(), Type.Null()], { description: 'Unseen messages in the inbox; null while the invitation is pending.' }),
  inbox: Space,
  archive: Space,
  last_activity_at: Type.Union([time, Type.Null()], { description: 'The newest message stored in or sent from the mailbox.' }),
  added_at: time,
  accepted_at: nullableTime,
}, { title: 'SupervisedMailbox' });

const IdParams = Type.Object({ id: Type.String({ description: 'A supervisor id (`sup_…`).' }) }, { additionalProperties: false });
const MailboxParams = Type.Object({ id: Type.String(), mailbox: Type.String() }, { additionalProperties: false });
const HolderParams = Type.Object({ id: Type.String({ description: 'A mailbox id (`mbx_…`).' }) }, { additionalProperties: false });
const TokenBody = Type.Object({ token: Type.String({ minLength: 1, maxLength: 200 }) }, { title: 'SupervisionInvitationAnswer', additionalProperties: false });
const holderSecurity: Array<Record<string, string[]>> = [{ mailboxBasic: [] }];
/** Holder-only routes about supervision: collaborators and supervisor sessions get 403 from the auth hook. */
const holderSupervision = { callers: 'holder' as const, mailboxOperation: 'manage_supervision' as const };

export async function supervisorRoutes(app: App, deps: AppDeps): Promise<void> {
  const ownMailbox = (request: FastifyRequest & { params: { id: string } }) => {
    const holder = holderOf(request);
    if (holder.mailboxId !== request.params.id) throw notFound('mailbox', request.params.id);
    return holder;
  };

  app.post('/v1/supervisors', {
    schema: {
      operationId: 'createSupervisor',
      tags: ['Supervisors'],
      summary: 'Create a supervisor console',
      description: 'Needs the `supervisor` add-on active on `mailbox`, which pays for the console (409 `addon_required` otherwise).',
      body: Type.Object({
        mailbox: Type.String({ description: 'The mailbox with the supervisor add-on.' }),
        name: Type.String({ minLength: 1, maxLength: 200 }),
        email: Type.String({ format: 'email', maxLength: 320 }),
      }, { title: 'SupervisorCreate', additionalProperties: false }),
      response: { 201: Supervisor, ...problemResponses(404, 409) },
    },
  }, async (request, reply) => {
    const created = await createSupervisor(deps, partnerOf(request).partnerId, request.body);
    return reply.code(201).header('location', `/v1/supervisors/${created.id}`).send(created);
  });

  app.get('/v1/supervisors', {
    schema: {
      operationId: 'listSupervisors',
      tags: ['Supervisors'],
      summary: 'List supervisors, newest first',
      querystring: Type.Object({ ...ListQuery }, { additionalProperties: false }),
      response: { 200: ListOf(Supervisor, 'SupervisorList'), ...problemResponses() },
    },
  }, async (request) => {
    const { limit = 10, starting_after } = request.query;
    return toPage(await listSupervisors(deps, partnerOf(request).partnerId, { limit, startingAfter: starting_after }), limit);
  });

  app.get('/v1/supervisors/:id', {
    schema: { operationId: 'getSupervisor', tags: ['Supervisors'], summary: 'Retrieve a supervisor', params: IdParams, response: { 200: Supervisor, ...problemResponses(404) } },
  }, async (request) => supervisorView(await findSupervisor(deps.db, partnerOf(request).partnerId, request.params.id)));

  app.patch('/v1/supervisors/:id', {
    schema: {
      operationId: 'updateSupervisor',
      tags: ['Supervisors'],
      summary: "Change a supervisor's name or e-mail",
      params: IdParams,
      body: Type.Object({
        name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
        email: Type.Optional(Type.String({ format: 'email', maxLength: 320 })),
      }, { title: 'SupervisorUpdate', additionalProperties: false, minProperties: 1 }),
      response: { 200: Supervisor, ...problemResponses(404) },
    },
  }, async (request) => updateSupervisor(deps, partnerOf(request).partnerId, request.params.id, request.body));

  app.post('/v1/supervisors/:id/mailboxes', {
    schema: {
      operationId: 'addSupervisedMailbox',
      tags: ['Supervisors'],
      summary: 'Add a mailbox to the console, directly or by invitation',
      description:
        'Without `invite` the mailbox is supervised at once. With `invite: true` the response carries a token (shown once, ' +
        'valid 7 days) for the holder, who accepts it with `POST /v1/mailboxes/{id}/supervision-invitations/accept` or declines it.',
      params: IdParams,
      body: Type.Object({ mailbox: Type.String(), invite: Type.Optional(Type.Boolean({ default: false })) }, { title: 'SupervisedMailboxAdd', additionalProperties: false }),
      response: {
        201: Type.Object({
          ...supervisionProperties,
          invitation: Type.Optional(Type.Object({ token: Type.String(), expires_at: time }, { title: 'SupervisionInvitation' })),
        }, { title: 'SupervisionCreated' }),
        ...problemResponses(404, 409),
      },
    },
  }, async (request, reply) => reply.code(201).send(await addSupervisedMailbox(deps, partnerOf(request).partnerId, request.params.id, request.body)));

  app.get('/v1/supervisors/:id/mailboxes', {
    schema: {
      operationId: 'listSupervisedMailboxes',
      tags: ['Supervisors'],
      summary: 'The console: supervised mailboxes with unread count, space, expiry and last activity',
      description:
        'Sort with `sort` (`address`, `expires_at`, `unread`, `last_activity`) and `order`; mailboxes without a value for the ' +
        'sort key come last. Filter by mailbox `status`, `plan`, `expiring_before`; `supervision_status=invited` lists pending invitations (no figures).',
      params: IdParams,
      querystring: Type.Object({
        ...ListQuery,
        sort: Type.Optional(Type.Union(consoleSorts.map((s) => Type.Literal(s)), { default: 'address' })),
        order: Type.Optional(Type.Union([Type.Literal('asc'), Type.Literal('desc')], { default: 'asc' })),
        status: Type.Optional(Type.Enum(mailboxStatuses)),
        plan: Type.Optional(Type.Enum(mailboxPlans)),
        expiring_before: Type.Optional(time),
        supervision_status: Type.Optional(Type.Union([Type.Literal('active'), Type.Literal('invited')], { default: 'active' })),
      }, { additionalProperties: false }),
      response: { 200: ListOf(SupervisedMailbox, 'SupervisedMailboxList'), ...problemResponses(404, 409) },
    },
  }, async (request) => {
    const { limit = 10, starting_after, sort, order, status, plan, expiring_before, supervision_status } = request.query;
    const rows = await supervisorConsole(deps, partnerOf(request).partnerId, request.params.id, {
      limit, startingAfter: starting_after, sort, order, status, plan, expiringBefore: expiring_before, supervisionStatus: supervision_status,
    });
    return toPage(rows, limit);
  });

  app.delete('/v1/supervisors/:id/mailboxes/:mailbox', {
    schema: {
      operationId: 'removeSupervisedMailbox',
      tags: ['Supervisors'],
      summary: 'Remove a mailbox from the console (or withdraw its invitation)',
      description: "The supervisor's sessions on that mailbox stop at once.",
      params: MailboxParams,
      response: { 200: Supervision, ...problemResponses(404) },
    },
  }, async (request) => removeSupervisedMailbox(deps, partnerOf(request).partnerId, request.params.id, request.params.mailbox));

  app.post('/v1/supervisors/:id/bulk', {
    schema: {
      operationId: 'supervisorBulkAction',
      tags: ['Supervisors'],
      summary: 'Renew, or set the renewal mode of, several supervised mailboxes',
      description:
        '`renew` (with `years`) is charged to credit like `POST /v1/mailboxes/{id}/renew`; `set_renewal_mode` (with `renewal_mode`). ' +
        'Each mailbox is done in its own transaction: one failure (e.g. 402 when credit runs out) neither undoes the ' +
        'ones before it nor stops the ones after it. The answer is 200 with an outcome per mailbox.',
      params: IdParams,
      body: Type.Object({
        action: Type.Union([Type.Literal('renew'), Type.Literal('set_renewal_mode')]),
        mailboxes: Type.Array(Type.String(), { minItems: 1, maxItems: 100 }),
        years: Type.Optional(Type.Integer({ minimum: 1, maximum: 5 })),
        renewal_mode: Type.Optional(Type.Enum(renewalModes)),
      }, { title: 'SupervisorBulkAction', additionalProperties: false }),
      response: {
        200: Type.Object({
          object: Type.Literal('supervisor_bulk_result'),
          action: Type.Union([Type.Literal('renew'), Type.Literal('set_renewal_mode')]),
          succeeded: Type.Integer(),
          failed: Type.Integer(),
          results: Type.Array(Type.Object({
            mailbox: Type.String(),
            outcome: Type.Union([Type.Literal('succeeded'), Type.Literal('failed')]),
            status: Type.Optional(Type.Enum(mailboxStatuses)),
            expires_at: Type.Optional(nullableTime),
            renewal_mode: Type.Optional(Type.Enum(renewalModes)),
            error: Type.Optional(Type.Object({ status: Type.Integer(), code: Type.String(), detail: Type.String() }, { title: 'SupervisorBulkError' })),
          }, { title: 'SupervisorBulkOutcome' })),
        }, { title: 'SupervisorBulkResult' }),
        ...problemResponses(404, 409),
      },
    },
  }, async (request) => bulkAction(deps, partnerOf(request).partnerId, request.params.id, request.body, request.id));

  app.post('/v1/supervisors/:id/mailboxes/:mailbox/sign-in-links', {
    schema: {
      operationId: 'createSupervisorSignInLink',
      tags: ['Supervisors'],
      summary: "A single-use link into a supervised mailbox's webmail",
      description:
        `The token (a signed JWT) is valid ${SIGN_IN_TTL_SECONDS / 60} minutes and can be exchanged once with \`POST /v1/mailbox-sessions\` ` +
        `for a ${SESSION_TTL_SECONDS / 60}-minute session on that mailbox's messages API.`,
      params: MailboxParams,
      response: {
        201: Type.Object({
          object: Type.Literal('supervisor_sign_in_link'),
          id: Type.String({ description: 'The link id (`ssi_…`, the JWT `jti`).' }),
          supervisor: Type.String(),
          mailbox: Type.String(),
          token: Type.String(),
          expires_at: time,
        }, { title: 'SupervisorSignInLink' }),
        ...problemResponses(404, 409),
      },
    },
  }, async (request, reply) => {
    const supervisor = await findSupervisor(deps.db, partnerOf(request).partnerId, request.params.id, true);
    if (!(await liveSupervision(deps.db, supervisor.id, request.params.mailbox))) throw notFound('supervised mailbox', request.params.mailbox);
    return reply.code(201).send(await issueSignInLink(deps, supervisor.id, request.params.mailbox));
  });

  app.post('/v1/mailbox-sessions', {
    config: { public: true },
    schema: {
      operationId: 'createMailboxSession',
      tags: ['Supervisors'],
      summary: "Exchange a supervisor's sign-in link for a mailbox session",
      description:
        'No credentials: the link is the proof, and works once (a second use is 410 `sign_in_link_used`). The session token ' +
        "authenticates on that mailbox's holder routes as `Authorization: Bearer mbs_…`, in mode `read_write` without " +
        'sending: it lists and reads messages, folders and the log, marks, moves and deletes; it cannot send, manage ' +
        'delegations or answer supervision invitations. It ends when the mailbox leaves the console or the add-on ends.',
      security: [],
      body: Type.Object({ token: Type.String({ minLength: 1, maxLength: 4000 }) }, { title: 'MailboxSessionCreate', additionalProperties: false }),
      response: {
        201: Type.Object({
          object: Type.Literal('mailbox_session'),
          token: Type.String({ description: 'Send as `Authorization: Bearer <token>`.' }),
          token_type: Type.Literal('Bearer'),
          supervisor: Type.String(),
          mailbox: Type.String(),
          address: Type.String(),
          mode: Type.Literal('read_write'),
          can_send: Type.Literal(false),
          expires_at: time,
        }, { title: 'MailboxSession' }),
        ...problemResponses(403, 410),
      },
    },
  }, async (request, reply) => reply.code(201).send(await exchangeSignInLink(deps, request.body.token)));

  app.get('/v1/mailboxes/:id/supervisions', {
    config: holderSupervision,
    schema: {
      operationId: 'listMailboxSupervisions',
      tags: ['Supervisors'],
      summary: 'The holder sees who supervises its mailbox, and pending invitations',
      security: holderSecurity,
      params: HolderParams,
      response: { 200: Type.Object({ object: Type.Literal('list'), data: Type.Array(Supervision) }, { title: 'SupervisionList' }), ...problemResponses(403, 404) },
    },
  }, async (request) => ({ object: 'list' as const, data: await listSupervisionsOfMailbox(deps, ownMailbox(request)) }));

  app.delete('/v1/mailboxes/:id/supervisions/:supervisor', {
    config: holderSupervision,
    schema: {
      operationId: 'leaveSupervision',
      tags: ['Supervisors'],
      summary: "The holder takes its mailbox out of a supervisor's console",
      security: holderSecurity,
      params: Type.Object({ id: Type.String(), supervisor: Type.String() }, { additionalProperties: false }),
      response: { 200: Supervision, ...problemResponses(403, 404) },
    },
  }, async (request) => leaveSupervision(deps, ownMailbox(request), request.params.supervisor));

  for (const answer of ['accept', 'decline'] as const) {
    app.post(`/v1/mailboxes/:id/supervision-invitations/${answer}`, {
      config: holderSupervision,
      schema: {
        operationId: answer === 'accept' ? 'acceptSupervisionInvitation' : 'declineSupervisionInvitation',
        tags: ['Supervisors'],
        summary: answer === 'accept' ? "The holder accepts a supervisor's invitation" : "The holder declines a supervisor's invitation",
        description: 'With the mailbox credentials (HTTP Basic) and the token of the invitation. Expired: 410 `invitation_expired`.',
        security: holderSecurity,
        params: HolderParams,
        body: TokenBody,
        response: { 200: Supervision, ...problemResponses(403, 404, 409, 410) },
      },
    }, async (request) => answerSupervisionInvitation(deps, ownMailbox(request), request.body.token, answer));
  }
}
