import { Readable } from 'node:stream';
import { Type } from 'typebox';
import { eq } from 'drizzle-orm';
import { mailboxes } from '@pec-partner/db';
import type { FastifyRequest } from 'fastify';
import type { App, AppDeps } from '../../deps.ts';
import { ListOf, ListQuery, toPage } from '../../http/pagination.ts';
import { invalid, notFound, problemResponses } from '../../http/problem.ts';
import { csvLines, exportLogEntries, jsonLines, listLogEntries, type LogQuery } from './service.ts';

const LogEntry = Type.Object(
  {
    id: Type.String({ description: 'Prefixed `log_`; entries sort by it.' }),
    object: Type.Literal('log_entry'),
    occurred_at: Type.String({ format: 'date-time' }),
    event: Type.String({ description: 'Accettazione, NonAccettazione, BustaTrasporto, PresaInCarico, Consegna, MancataConsegna, …' }),
    message_id: Type.String({ description: 'The PEC msgid of the transaction.' }),
    related_message_ids: Type.Array(Type.String(), { description: 'Message-IDs of the messages this event generated.' }),
    sender: Type.String(),
    recipients: Type.Array(Type.String()),
    subject: Type.String(),
    provider: Type.String(),
    mailbox: Type.Union([Type.String(), Type.Null()]),
    details: Type.Record(Type.String(), Type.Unknown()),
    hash: Type.String({ description: 'SHA-256 chaining this entry to the previous one.' }),
  },
  { title: 'LogEntry' },
);

const LogEntryList = ListOf(LogEntry, 'LogEntryList');

const Period = {
  from: Type.Optional(Type.String({ format: 'date-time', description: 'Entries at or after this instant.' })),
  to: Type.Optional(Type.String({ format: 'date-time', description: 'Entries before this instant.' })),
  message_id: Type.Optional(Type.String({ description: 'A PEC msgid (with or without angle brackets).' })),
};
const IdParams = Type.Object({ id: Type.String() }, { additionalProperties: false });

function period(query: { from?: string | undefined; to?: string | undefined }) {
  const from = query.from ? new Date(query.from) : undefined;
  const to = query.to ? new Date(query.to) : undefined;
  if (from && to && from >= to) throw invalid([{ pointer: '/to', location: 'query', code: 'out_of_range', detail: "must be after 'from'" }]);
  return { from, to };
}

export async function logRegisterRoutes(app: App, deps: AppDeps): Promise<void> {
  /** The partner owning the mailbox (partner credentials) or the holder signed in to it. */
  async function scopeOf(request: FastifyRequest, mailboxId: string): Promise<Pick<LogQuery, 'partnerId' | 'mailboxId'>> {
    if (request.holder) {
      if (request.holder.mailboxId !== mailboxId) throw notFound('mailbox', mailboxId);
      return { partnerId: request.holder.partnerId, mailboxId };
    }
    const partnerId = request.principal!.partnerId;
    const [row] = await deps.db.select({ partnerId: mailboxes.partnerId }).from(mailboxes).where(eq(mailboxes.id, mailboxId));
    if (!row || row.partnerId !== partnerId) throw notFound('mailbox', mailboxId);
    return { partnerId, mailboxId };
  }

  app.get('/v1/mailboxes/:id/log', {
    config: { callers: 'partner_or_holder', mailboxOperation: 'read_log' },
    schema: {
      operationId: 'listMailboxLog',
      tags: ['Log register'],
      summary: "A mailbox's entries in the log register, newest first",
      description: 'For the partner (API key) or the holder (HTTP Basic with the mailbox address and password).',
      security: [{ bearerAuth: [] }, { mailboxBasic: [] }],
      params: IdParams,
      querystring: Type.Object({ ...ListQuery, ...Period }, { additionalProperties: false }),
      response: { 200: LogEntryList, ...problemResponses(404) },
    },
  }, async (request) => {
    const { limit = 10, starting_after, message_id } = request.query;
    const scope = await scopeOf(request, request.params.id);
    return toPage(await listLogEntries(deps.db, { ...scope, ...period(request.query), messageId: message_id, limit, startingAfter: starting_after }), limit);
  });

  app.get('/v1/mailboxes/:id/log-export', {
    config: { callers: 'partner_or_holder', mailboxOperation: 'read_log' },
    schema: {
      operationId: 'exportMailboxLog',
      tags: ['Log register'],
      summary: 'Stream a period of the log register as CSV or JSON',
      description: 'Oldest first. `format=csv` (default) gives RFC 4180 text; `format=json` a JSON array of log entries.',
      security: [{ bearerAuth: [] }, { mailboxBasic: [] }],
      params: IdParams,
      querystring: Type.Object({ ...Period, format: Type.Optional(Type.Union([Type.Literal('csv'), Type.Literal('json')], { default: 'csv' })) }, { additionalProperties: false }),
      response: {
        200: { description: 'The entries', content: { 'text/csv': { schema: { type: 'string' } }, 'application/json': { schema: { type: 'array', items: LogEntry } } } },
        ...problemResponses(404),
      },
    },
  }, async (request, reply) => {
    const scope = await scopeOf(request, request.params.id);
    const entries = exportLogEntries(deps.db, { ...scope, ...period(request.query), messageId: request.query.message_id });
    const json = request.query.format === 'json';
    const name = `log-${request.params.id}.${json ? 'json' : 'csv'}`;
    return reply
      .type(json ? 'application/json' : 'text/csv; charset=utf-8')
      .header('content-disposition', `attachment; filename="${name}"`)
      .send(Readable.from(json ? jsonLines(entries) : csvLines(entries)) as never); // a stream: the schema documents, it does not serialise
  });

  app.get('/v1/log', {
    schema: {
      operationId: 'listLog',
      tags: ['Log register'],
      summary: "Entries of the log register about all of the partner's mailboxes, newest first",
      querystring: Type.Object({ ...ListQuery, ...Period, mailbox: Type.Optional(Type.String()) }, { additionalProperties: false }),
      response: { 200: LogEntryList, ...problemResponses() },
    },
  }, async (request) => {
    const { limit = 10, starting_after, message_id, mailbox } = request.query;
    return toPage(await listLogEntries(deps.db, { partnerId: request.principal!.partnerId, mailboxId: mailbox, ...period(request.query), messageId: message_id, limit, startingAfter: starting_after }), limit);
  });
}
