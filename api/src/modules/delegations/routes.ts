import { Type } from 'typebox';
import { delegationModes, delegationStatuses } from '@pec-partner/db';
import type { FastifyRequest } from 'fastify';
import type { App, AppDeps } from '../../deps.ts';
import { ListOf, ListQuery, toPage } from '../../http/pagination.ts';
import { notFound, problemResponses } from '../../http/problem.ts';
import { acceptInvitation, getDelegation, inviteDelegate, listDelegations, revokeDelegation, updateDelegation } from './service.ts';

const time = Type.String({ format: 'date-time' });
const nullableTime = Type.Union([time, Type.Null()]);

const modeDescription =
  '`send_only`: sends PEC, and sees only what it sent itself (its sent copies and their receipts); ' +
  '`read_only`: reads messages, folders and the log; `read_write`: also marks seen/unseen, moves and deletes; ' +
  '`full_access`: everything a collaborator can do, sending included. Managing delegations and supervision stays with the holder.';

const delegationProperties = {
  id: Type.String({ description: 'Prefixed `dlg_`.' }),
  object: Type.Literal('delegation'),
  mailbox: Type.String(),
  mailbox_address: Type.String(),
  email: Type.String({ description: "The collaborator's e-mail: its user name on the API (HTTP Basic) and on SMTP submission." }),
  name: Type.Union([Type.String(), Type.Null()]),
  mode: Type.Enum(delegationModes, { description: modeDescription }),
  status: Type.Enum(delegationStatuses, { description: '`invited` until accepted (7 days, then `expired`); `revoked` ends it.' }),
  invite_expires_at: Type.Union([time, Type.Null()], { description: 'Until when the invitation can be accepted; null once accepted.' }),
  accepted_at: nullableTime,
  revoked_at: nullableTime,
  created_at: time,
  updated_at: time,
};
const Delegation = Type.Object(delegationProperties, { title: 'Delegation' });

const security: Array<Record<string, string[]>> = [{ bearerAuth: [] }, { mailboxBasic: [] }];
const manage = { callers: 'partner_or_holder' as const, mailboxOperation: 'manage_delegations' as const };
const Params = Type.Object({ id: Type.String({ description: 'A mailbox id (`mbx_…`).' }) }, { additionalProperties: false });
const DelegationParams = Type.Object({ id: Type.String(), delegation: Type.String() }, { additionalProperties: false });

/** Multi-user delegation (multiutenza): collaborators with their own credentials and an access mode. */
export async function delegationRoutes(app: App, deps: AppDeps): Promise<void> {
  /** The partner owning the mailbox, or its holder (collaborators cannot manage delegations: the auth hook says 403). */
  const scopeOf = (request: FastifyRequest & { params: { id: string } }) => {
    const mailboxId = request.params.id;
    if (request.holder) {
      if (request.holder.mailboxId !== mailboxId) throw notFound('mailbox', mailboxId);
      return { partnerId: request.holder.partnerId, mailboxId };
    }
    return { partnerId: request.principal!.partnerId, mailboxId };
  };

  app.post('/v1/mailboxes/:id/delegations', {
    config: manage,
    schema: {
      operationId: 'createDelegation',
      tags: ['Delegation'],
      summary: 'Invite a collaborator to the mailbox with an access mode',
      description:
        'By the partner (API key) or the holder (HTTP Basic). Returns the invitation token once (only its hash is kept); ' +
        'it is valid 7 days and accepted with `POST /v1/delegation-invitations/accept`. Invited and active delegations ' +
        'together are limited by the delegate seats: those included in the plan plus purchased `delegation_seat` add-ons ' +
        '(409 `delegate_seats_exhausted`), now and from the renewal on: a seat cancelled for the renewal is not given to a ' +
        'new collaborator. ' + modeDescription,
      security,
      params: Params,
      body: Type.Object({
        email: Type.String({ format: 'email', maxLength: 320 }),
        name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
        mode: Type.Enum(delegationModes),
      }, { title: 'DelegationCreate', additionalProperties: false }),
      response: {
        201: Type.Object({
          ...delegationProperties,
          invitation: Type.Object({
            token: Type.String({ description: 'Shown once: give it to the collaborator.' }),
            expires_at: time,
          }, { title: 'DelegationInvitation' }),
        }, { title: 'DelegationCreated' }),
        ...problemResponses(403, 404, 409),
      },
    },
  }, async (request, reply) => {
    const created = await inviteDelegate(deps, scopeOf(request), request.body);
    return reply.code(201).header('location', `/v1/mailboxes/${created.mailbox}/delegations/${created.id}`).send(created);
  });

  app.get('/v1/mailboxes/:id/delegations', {
    config: manage,
    schema: {
      operationId: 'listDelegations',
      tags: ['Delegation'],
      summary: "List the mailbox's delegations, newest first",
      security,
      params: Params,
      querystring: Type.Object({ ...ListQuery, status: Type.Optional(Type.Enum(delegationStatuses)) }, { additionalProperties: false }),
      response: { 200: ListOf(Delegation, 'DelegationList'), ...problemResponses(403, 404) },
    },
  }, async (request) => {
    const { limit = 10, starting_after, status } = request.query;
    return toPage(await listDelegations(deps, scopeOf(request), { status, limit, startingAfter: starting_after }), limit);
  });

  app.get('/v1/mailboxes/:id/delegations/:delegation', {
    config: manage,
    schema: {
      operationId: 'getDelegation',
      tags: ['Delegation'],
      summary: 'Retrieve a delegation',
      security,
      params: DelegationParams,
      response: { 200: Delegation, ...problemResponses(403, 404) },
    },
  }, async (request) => getDelegation(deps, scopeOf(request), request.params.delegation));

  app.patch('/v1/mailboxes/:id/delegations/:delegation', {
    config: manage,
    schema: {
      operationId: 'updateDelegation',
      tags: ['Delegation'],
      summary: 'Change the mode (or name) of an invited or active delegation',
      description: "Applies to the collaborator's next request. " + modeDescription,
      security,
      params: DelegationParams,
      body: Type.Object({
        mode: Type.Optional(Type.Enum(delegationModes)),
        name: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 200 }), Type.Null()])),
      }, { title: 'DelegationUpdate', additionalProperties: false, minProperties: 1 }),
      response: { 200: Delegation, ...problemResponses(403, 404, 409) },
    },
  }, async (request) => updateDelegation(deps, scopeOf(request), request.params.delegation, request.body));

  app.post('/v1/mailboxes/:id/delegations/:delegation/revoke', {
    config: manage,
    schema: {
      operationId: 'revokeDelegation',
      tags: ['Delegation'],
      summary: 'Revoke a delegation or withdraw an invitation',
      description: 'The collaborator signs in no more (API and SMTP) and the seat is free again. The log register keeps what it did.',
      security,
      params: DelegationParams,
      response: { 200: Delegation, ...problemResponses(403, 404, 409) },
    },
  }, async (request) => revokeDelegation(deps, scopeOf(request), request.params.delegation));

  app.post('/v1/delegation-invitations/accept', {
    config: { public: true },
    schema: {
      operationId: 'acceptDelegationInvitation',
      tags: ['Delegation'],
      summary: 'Accept an invitation as the collaborator',
      description:
        'No credentials: the token is the proof. Creates the collaborator\'s account with `password` (10 to 128 characters ' +
        'with letters and digits), or, if its e-mail already has one, `password` must be that account\'s (401 otherwise). ' +
        'Afterwards the collaborator signs in as itself: HTTP Basic with its e-mail and password on `/v1/mailboxes/{id}/…`, ' +
        'and SMTP submission with its e-mail as user name, sending from the mailbox address. Expired or revoked: 410.',
      security: [],
      body: Type.Object({
        token: Type.String({ minLength: 1, maxLength: 200 }),
        password: Type.String({ minLength: 1, maxLength: 128 }),
      }, { title: 'DelegationInvitationAccept', additionalProperties: false }),
      response: {
        200: Type.Object({
          ...delegationProperties,
          account: Type.Object({ id: Type.String(), email: Type.String(), created: Type.Boolean({ description: 'Whether this acceptance created the account.' }) }, { title: 'DelegateAccount' }),
        }, { title: 'DelegationAccepted' }),
        ...problemResponses(404, 409, 410),
      },
    },
  }, async (request) => acceptInvitation(deps, request.body.token, request.body.password));
}
