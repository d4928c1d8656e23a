import { Type } from 'typebox';
import type { App, AppDeps } from '../../deps.ts';
import { partnerOf } from '../../http/auth.ts';
import { ListOf, ListQuery, toPage } from '../../http/pagination.ts';
import { problemResponses } from '../../http/problem.ts';
import { eventTypeNames } from '../../events/catalogue.ts';
import { getEvent, listEvents } from './service.ts';

const nullableString = Type.Union([Type.String(), Type.Null()]);

/** The event as the API lists it and as webhooks deliver it (the body of every delivery). */
export const Event = Type.Object(
  {
    id: Type.String({ description: 'Prefixed `evt_`.' }),
    object: Type.Literal('event'),
    type: Type.Enum(eventTypeNames, { title: 'EventType' }),
    api_version: Type.String({ description: 'The API version `data.object` is shaped by.' }),
    created_at: Type.String({ format: 'date-time' }),
    data: Type.Object(
      {
        object: Type.Object(
          { id: Type.String(), object: Type.String({ description: 'Which resource: `mailbox`, `ledger_entry`, `credit_balance`, …' }) },
          {
            title: 'EventObject',
            additionalProperties: true,
            description: 'The resource as the API returned it right after the change (for a deletion: as it was last).',
          },
        ),
        previous_attributes: Type.Optional(
          Type.Object({}, {
            title: 'EventPreviousAttributes',
            additionalProperties: true,
            description: 'For changes of an existing resource: the old value of each top-level field that changed.',
          }),
        ),
      },
      { title: 'EventData' },
    ),
    request: Type.Object(
      {
        id: Type.Union([Type.String(), Type.Null()], { description: 'The `request-id` of the API call that caused the event; null for scheduled work.' }),
        idempotency_key: Type.Union([Type.String(), Type.Null()], { description: 'The `Idempotency-Key` that call sent, if any.' }),
      },
      { title: 'EventRequest' },
    ),
  },
  { title: 'Event' },
);

const IdParams = Type.Object({ id: Type.String({ description: 'An event id (`evt_…`).' }) }, { additionalProperties: false });

export async function eventRoutes(app: App, { db, clock }: AppDeps): Promise<void> {
  app.get('/v1/events', {
    schema: {
      operationId: 'listEvents',
      tags: ['Events'],
      summary: 'List events of the last 30 days, newest first',
      description:
        'Every state change and credit movement of your account writes one event, in the same transaction as the ' +
        'change. Events are kept 30 days.',
      querystring: Type.Object(
        {
          ...ListQuery,
          type: Type.Optional(Type.String({ description: 'An event type, or a prefix with `.*` such as `mailbox.*`.' })),
          object_id: Type.Optional(Type.String({ description: 'Only events about this resource (`data.object.id`), e.g. a mailbox id.' })),
          created_after: Type.Optional(Type.String({ format: 'date-time', description: 'Events created at or after this instant.' })),
          created_before: Type.Optional(Type.String({ format: 'date-time', description: 'Events created before this instant.' })),
        },
        { additionalProperties: false },
      ),
      response: { 200: ListOf(Event, 'EventList'), ...problemResponses() },
    },
  }, async (request) => {
    const { limit = 10, starting_after, type, object_id, created_after, created_before } = request.query;
    const rows = await listEvents(db, clock.now(), partnerOf(request).partnerId, {
      limit,
      startingAfter: starting_after,
      type,
      objectId: object_id,
      createdAfter: created_after ? new Date(created_after) : undefined,
      createdBefore: created_before ? new Date(created_before) : undefined,
    });
    return toPage(rows, limit);
  });

  app.get('/v1/events/:id', {
    schema: {
      operationId: 'getEvent',
      tags: ['Events'],
      summary: 'Retrieve an event of the last 30 days',
      params: IdParams,
      response: { 200: Event, ...problemResponses(404) },
    },
  }, async (request) => getEvent(db, clock.now(), partnerOf(request).partnerId, request.params.id));
}
