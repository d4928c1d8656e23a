import { Type } from 'typebox';
import { webhookDeliveryStatuses, webhookDisabledReasons, webhookEndpointStatuses } from '@pec-partner/db';
import type { App, AppDeps } from '../../deps.ts';
import { partnerOf } from '../../http/auth.ts';
import { ListOf, ListQuery, toPage } from '../../http/pagination.ts';
import { problemResponses } from '../../http/problem.ts';
import type { WebhookDispatcher } from '../../webhooks/dispatcher.ts';
import { Metadata } from '../customers/schemas.ts';
import { Event } from '../events/routes.ts';
import {
  createEndpoint, deleteEndpoint, getEndpoint, listAttempts, listEndpoints, redeliverEvent, rotateSecret, sendTestEvent, updateEndpoint,
} from './service.ts';

const time = Type.String({ format: 'date-time' });
const nullableString = Type.Union([Type.String(), Type.Null()]);

const Url = Type.String({
  minLength: 1,
  maxLength: 2048,
  description:
    'Absolute https:// URL without credentials. Addresses of private networks (loopback, RFC 1918, link-local, ' +
    'unique local, multicast) are refused, also when a name resolves to one at delivery time. A server running ' +
    'with `APP_ENV=development` allows http:// and private addresses.',
});
const EnabledEvents = Type.Array(Type.String({ maxLength: 100 }), {
  minItems: 1,
  maxItems: 100,
  description:
    'Event types to receive: exact types (`credit.charged`), a prefix (`mailbox.*`) or `*` for every type except the ' +
    'opt-in `message.*` (list `message.*` or its types to receive PEC message outcomes).',
});
const Description = Type.String({ maxLength: 500 });

const endpointProperties = {
  id: Type.String({ description: 'Prefixed `we_`.' }),
  object: Type.Literal('webhook_endpoint'),
  url: Type.String(),
  description: nullableString,
  enabled_events: Type.Array(Type.String()),
  status: Type.Enum(webhookEndpointStatuses),
  disabled_reason: Type.Union([Type.Enum(webhookDisabledReasons), Type.Null()], {
    description: '`partner` (disabled with PATCH), `gone` (the receiver answered 410 Gone), `failing` (3 days of failed attempts).',
  }),
  metadata: Metadata,
  created_at: time,
  updated_at: time,
  secret_rotation_ends_at: Type.Union([time, Type.Null()], {
    description: 'After a rotation, until when the previous secret still signs (a second signature in `webhook-signature`).',
  }),
};
const WebhookEndpoint = Type.Object(endpointProperties, { title: 'WebhookEndpoint' });
const WebhookEndpointWithSecret = Type.Object(
  {
    ...endpointProperties,
    secret: Type.String({ description: 'The signing secret (`whsec_…`, Standard Webhooks form). Shown in this response only.' }),
  },
  { title: 'WebhookEndpointWithSecret' },
);

const WebhookAttempt = Type.Object(
  {
    id: Type.String({ description: 'Prefixed `wat_`.' }),
    object: Type.Literal('webhook_attempt'),
    event: Type.String({ description: 'The event sent; also the `webhook-id` header of the request.' }),
    endpoint: Type.String(),
    url: Type.String({ description: 'The URL the request went to (the endpoint\'s at the time).' }),
    attempted_at: time,
    succeeded: Type.Boolean({ description: 'The receiver answered 2xx.' }),
    response_status: Type.Union([Type.Integer(), Type.Null()], { description: 'Null when no answer came.' }),
    response_body_excerpt: Type.Union([Type.String(), Type.Null()], { description: 'The first 1 KiB of the answer.' }),
    error: Type.Union([Type.String(), Type.Null()], { description: 'Why no usable answer came: timeout, refused connection, unsafe address, redirect.' }),
    latency_ms: Type.Integer(),
  },
  { title: 'WebhookAttempt' },
);

const WebhookDelivery = Type.Object(
  {
    id: Type.String({ description: 'Prefixed `wdl_`.' }),
    object: Type.Literal('webhook_delivery'),
    event: Type.String(),
    endpoint: Type.String(),
    status: Type.Enum(webhookDeliveryStatuses),
    attempts: Type.Integer({ description: 'Attempts since it was last queued.' }),
    next_attempt_at: Type.Union([time, Type.Null()]),
    last_attempt_at: Type.Union([time, Type.Null()]),
    created_at: time,
  },
  { title: 'WebhookDelivery' },
);

const IdParams = Type.Object({ id: Type.String({ description: 'A webhook endpoint id (`we_…`).' }) }, { additionalProperties: false });

type Deps = AppDeps & { webhooks: WebhookDispatcher };

export async function webhookRoutes(app: App, deps: Deps): Promise<void> {
  const tags = ['Webhooks'];

  app.post('/v1/webhook-endpoints', {
    schema: {
      operationId: 'createWebhookEndpoint',
      tags,
      summary: 'Create a webhook endpoint',
      description:
        'Events selected by `enabled_events` are POSTed to `url`, signed per the Standard Webhooks specification ' +
        '(`webhook-id`, `webhook-timestamp`, `webhook-signature`). The response carries the signing `secret`, shown only here.',
      body: Type.Object(
        { url: Url, description: Type.Optional(Description), enabled_events: Type.Optional(EnabledEvents), metadata: Type.Optional(Metadata) },
        { title: 'WebhookEndpointCreate', additionalProperties: false },
      ),
      response: { 201: WebhookEndpointWithSecret, ...problemResponses() },
    },
  }, async (request, reply) => {
    const endpoint = await createEndpoint(deps, partnerOf(request).partnerId, request.body);
    return reply.code(201).header('location', `/v1/webhook-endpoints/${endpoint.id}`).send(endpoint);
  });

  app.get('/v1/webhook-endpoints', {
    schema: {
      operationId: 'listWebhookEndpoints',
      tags,
      summary: 'List webhook endpoints, newest first',
      querystring: Type.Object(ListQuery, { additionalProperties: false }),
      response: { 200: ListOf(WebhookEndpoint, 'WebhookEndpointList'), ...problemResponses() },
    },
  }, async (request) => {
    const { limit = 10, starting_after } = request.query;
    return toPage(await listEndpoints(deps, partnerOf(request).partnerId, { limit, startingAfter: starting_after }), limit);
  });

  app.get('/v1/webhook-endpoints/:id', {
    schema: {
      operationId: 'getWebhookEndpoint',
      tags,
      summary: 'Retrieve a webhook endpoint',
      params: IdParams,
      response: { 200: WebhookEndpoint, ...problemResponses(404) },
    },
  }, async (request) => getEndpoint(deps, partnerOf(request).partnerId, request.params.id));

  app.patch('/v1/webhook-endpoints/:id', {
    schema: {
      operationId: 'updateWebhookEndpoint',
      tags,
      summary: 'Update a webhook endpoint',
      description:
        'Only the fields sent change. `status: disabled` stops deliveries (they wait); `status: enabled` resumes them ' +
        'and clears `disabled_reason`, also after the dispatcher disabled the endpoint.',
      params: IdParams,
      body: Type.Object(
        {
          url: Type.Optional(Url),
          description: Type.Optional(Type.Union([Description, Type.Null()])),
          enabled_events: Type.Optional(EnabledEvents),
          metadata: Type.Optional(
            Type.Record(Type.String({ maxLength: 40 }), Type.Union([Type.String({ maxLength: 500 }), Type.Null()]), {
              title: 'MetadataUpdate',
              description: 'Merged into the existing metadata; a key set to null is removed.',
            }),
          ),
          status: Type.Optional(Type.Enum(webhookEndpointStatuses)),
        },
        { title: 'WebhookEndpointUpdate', additionalProperties: false },
      ),
      response: { 200: WebhookEndpoint, ...problemResponses(404) },
    },
  }, async (request) => updateEndpoint(deps, partnerOf(request).partnerId, request.params.id, request.body));

  app.delete('/v1/webhook-endpoints/:id', {
    schema: {
      operationId: 'deleteWebhookEndpoint',
      tags,
      summary: 'Delete a webhook endpoint',
      description: 'Nothing more is sent to it, including retries still pending.',
      params: IdParams,
      response: {
        200: Type.Object({ id: Type.String(), object: Type.Literal('webhook_endpoint'), deleted: Type.Literal(true) }, { title: 'DeletedWebhookEndpoint' }),
        ...problemResponses(404),
      },
    },
  }, async (request) => deleteEndpoint(deps, partnerOf(request).partnerId, request.params.id));

  app.post('/v1/webhook-endpoints/:id/rotate-secret', {
    schema: {
      operationId: 'rotateWebhookEndpointSecret',
      tags,
      summary: 'Replace the signing secret',
      description:
        'Returns the new secret (shown only here). For 24 hours every request carries two signatures, one with the ' +
        'new secret and one with the previous one, so receivers can switch without losing events.',
      params: IdParams,
      response: { 200: WebhookEndpointWithSecret, ...problemResponses(404) },
    },
  }, async (request) => rotateSecret(deps, partnerOf(request).partnerId, request.params.id));

  app.post('/v1/webhook-endpoints/:id/test', {
    schema: {
      operationId: 'sendTestWebhook',
      tags,
      summary: 'Send a test event to this endpoint',
      description: 'Records a `test.webhook` event (`data.object` is the endpoint) delivered to this endpoint only, whatever its filter.',
      params: IdParams,
      response: { 201: Event, ...problemResponses(404, 409) },
    },
  }, async (request, reply) => {
    const event = await sendTestEvent(deps, partnerOf(request).partnerId, request.params.id);
    deps.webhooks.wake();
    return reply.code(201).send(event);
  });

  app.get('/v1/webhook-endpoints/:id/attempts', {
    schema: {
      operationId: 'listWebhookAttempts',
      tags,
      summary: "The endpoint's delivery attempts, newest first",
      description: 'Every HTTP request sent to the endpoint, successful or not, with the start of the answer.',
      params: IdParams,
      querystring: Type.Object(ListQuery, { additionalProperties: false }),
      response: { 200: ListOf(WebhookAttempt, 'WebhookAttemptList'), ...problemResponses(404) },
    },
  }, async (request) => {
    const { limit = 10, starting_after } = request.query;
    return toPage(await listAttempts(deps, partnerOf(request).partnerId, request.params.id, { limit, startingAfter: starting_after }), limit);
  });

  app.post('/v1/events/:id/redeliver', {
    schema: {
      operationId: 'redeliverEvent',
      tags,
      summary: 'Send an event again',
      description:
        'Queues the event now, with a fresh retry schedule, for `endpoint`, or else for every enabled endpoint that ' +
        'selects it or already had it (endpoints created after the event included). The `webhook-id` stays the ' +
        "event's id, so receivers de-duplicate it like a retry. Answers with the deliveries queued.",
      params: Type.Object({ id: Type.String({ description: 'An event id (`evt_…`).' }) }, { additionalProperties: false }),
      body: Type.Optional(Type.Object(
        { endpoint: Type.Optional(Type.String({ description: 'A webhook endpoint id (`we_…`); it must be enabled.' })) },
        { title: 'EventRedeliver', additionalProperties: false },
      )),
      response: {
        202: Type.Object(
          { object: Type.Literal('list'), data: Type.Array(WebhookDelivery), has_more: Type.Boolean(), next_cursor: Type.Null() },
          { title: 'WebhookDeliveryList' },
        ),
        ...problemResponses(404, 409),
      },
    },
  }, async (request, reply) => {
    const data = await redeliverEvent(deps, partnerOf(request).partnerId, request.params.id, request.body?.endpoint);
    deps.webhooks.wake();
    return reply.code(202).send({ object: 'list' as const, data, has_more: false, next_cursor: null });
  });
}
