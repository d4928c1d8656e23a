import { Type } from 'typebox';
import { receiptTypes, storedMessageKinds } from '@pec-partner/db';
import type { FastifyRequest } from 'fastify';
import type { App, AppDeps } from '../../deps.ts';
import { holderOf } from '../../http/auth.ts';
import { ListOf, ListQuery, toPage } from '../../http/pagination.ts';
import { notFound, ProblemError, problemResponses } from '../../http/problem.ts';
import type { PecEngine } from '../../pec/engine.ts';
import { ownTransactionsOnly, type MailboxOperation } from '../../access/modes.ts';
import { deleteMessage, folderSummaries, listMessages, rawMessage, readMessage, updateMessage } from './store-service.ts';

/** Holder routes; delegates and supervisor sessions pass when their mode allows the operation (checked at sign-in). */
const holderRoute = (mailboxOperation: MailboxOperation) => ({ callers: 'holder' as const, mailboxOperation });
const security: Array<Record<string, string[]>> = [{ mailboxBasic: [] }, { mailboxSession: [] }];
/** A supervisor's session never sends: only the holder and collaborators whose delegation allows it. */
const sendSecurity: Array<Record<string, string[]>> = [{ mailboxBasic: [] }];
const time = Type.String({ format: 'date-time' });
const Folder = Type.String({
  minLength: 1, maxLength: 255,
  description: 'A system folder (`inbox`, `sent`, `receipts`, `archive`, `drafts`, `trash`; IMAP names such as `INBOX` or `Sent` work too) or the path of a folder of the holder\'s own, levels separated by `/`.',
});

const messageProperties = {
  id: Type.String({ description: 'Prefixed `msg_`.' }),
  object: Type.Literal('mailbox_message'),
  folder: Folder,
  kind: Type.Enum(storedMessageKinds, { description: 'What the message is: a transport envelope, a receipt of some type, your own sent original…' }),
  message_id: Type.String(),
  pec_message_id: Type.Union([Type.String(), Type.Null()], { description: 'The PEC msgid of the transaction this message belongs to.' }),
  subject: Type.String(),
  from: Type.String(),
  size_bytes: Type.Integer(),
  seen: Type.Boolean(),
  flagged: Type.Boolean({ description: 'Flagged for attention (IMAP \\Flagged).' }),
  answered: Type.Boolean({ description: 'Answered (IMAP \\Answered).' }),
  keywords: Type.Array(Type.String(), { description: 'Keywords set by mail clients (IMAP), such as `$Forwarded`.' }),
  stored_at: time,
};
const MailboxMessage = Type.Object(messageProperties, { title: 'MailboxMessage' });
const Address = Type.String({ format: 'email', maxLength: 320 });

const Submission = Type.Object(
  {
    id: Type.String({ description: 'The transaction (`pmt_…`).' }),
    object: Type.Literal('pec_submission'),
    pec_message_id: Type.String({ description: 'The PEC msgid: `identificativo` of every receipt about this message.' }),
    status: Type.Union([Type.Literal('accepted'), Type.Literal('refused')]),
    refusal: Type.Union([Type.String(), Type.Null()], { description: 'Why the access point refused it (a non-acceptance notice was issued).' }),
    submitted_at: time,
    recipients: Type.Array(Type.Object({ address: Type.String(), role: Type.Union([Type.Literal('to'), Type.Literal('cc')]), certified: Type.Boolean() }, { title: 'SubmissionRecipient' })),
  },
  { title: 'PecSubmission' },
);

const IdParams = Type.Object({ id: Type.String() }, { additionalProperties: false });
const MessageParams = Type.Object({ id: Type.String(), message: Type.String() }, { additionalProperties: false });

export async function messageRoutes(app: App, deps: AppDeps & { engine: PecEngine }): Promise<void> {
  /** The holder may only reach its own mailbox; any other id answers like a missing one. */
  const mailboxOf = (request: FastifyRequest & { params: { id: string } }): string => {
    const holder = holderOf(request);
    if (holder.mailboxId !== request.params.id) throw notFound('mailbox', request.params.id);
    return holder.mailboxId;
  };
  /** What the caller may see: a `send_only` collaborator sees only the transactions it submitted itself. */
  const visibleTo = (request: FastifyRequest) => ownTransactionsOnly(holderOf(request).actor);
  /** Changes by collaborators and supervisors go to the request log with who made them (the log register is PEC events only). */
  const noteActor = (request: FastifyRequest, action: string, message: string) => {
    const { actor } = holderOf(request);
    if (actor.kind !== 'holder') request.log.info({ mailbox: holderOf(request).mailboxId, message, action, actor }, 'mailbox change by a collaborator or supervisor');
  };

  app.post('/v1/mailboxes/:id/messages', {
    config: holderRoute('send_message'),
    schema: {
      operationId: 'sendMessage',
      tags: ['Messages'],
      summary: 'Send a certified message',
      description:
        'The access point checks the message, answers at once with the transaction, and issues the acceptance ' +
        'receipt (or a non-acceptance notice) into the `receipts` folder; envelopes and delivery receipts follow. ' +
        'A suspended mailbox cannot send (409).',
      security: sendSecurity,
      params: IdParams,
      body: Type.Object(
        {
          to: Type.Array(Address, { minItems: 1, maxItems: 1000 }),
          cc: Type.Optional(Type.Array(Address, { maxItems: 1000 })),
          subject: Type.String({ maxLength: 998 }),
          text: Type.Optional(Type.String()),
          html: Type.Optional(Type.String()),
          attachments: Type.Optional(Type.Array(
            Type.Object({ filename: Type.String({ minLength: 1, maxLength: 255 }), content_type: Type.Optional(Type.String()), content_base64: Type.String({ contentEncoding: 'base64' }) }, { title: 'MessageAttachment', additionalProperties: false }),
            { maxItems: 100 },
          )),
          receipt_type: Type.Optional(Type.Enum(receiptTypes, { default: 'completa', description: 'Delivery receipts wanted: `completa` (with the message), `breve` (attachments replaced by hashes) or `sintetica`.' })),
        },
        { title: 'MessageSend', additionalProperties: false },
      ),
      response: { 201: Submission, ...problemResponses(403, 404, 409, 413) },
    },
  }, async (request, reply) => {
    mailboxOf(request);
    const result = await deps.engine.submitJson(holderOf(request), request.body);
    return reply.code(201).send(result);
  });

  app.post('/v1/mailboxes/:id/messages/raw', {
    config: holderRoute('send_message'),
    schema: {
      operationId: 'sendRawMessage',
      tags: ['Messages'],
      summary: 'Send a certified message given as RFC 5322 (.eml)',
      description: 'Body: the message with `Content-Type: message/rfc822`. From must be the mailbox; the recipients are To and Cc; Bcc is refused. ' +
        'At most 500 MIME parts nested at most 20 levels deep, 1 MiB of header per part: past that 422 `message_too_complex`; a NUL in a header field or an unreadable structure is 400 `invalid_message`.',
      security: sendSecurity,
      params: IdParams,
      response: { 201: Submission, ...problemResponses(403, 404, 409, 413, 415, 422) },
    },
  }, async (request, reply) => {
    mailboxOf(request);
    if (!Buffer.isBuffer(request.body)) {
      throw new ProblemError(415, 'unsupported_media_type', 'Unsupported media type', 'Send the message with Content-Type: message/rfc822.');
    }
    return reply.code(201).send(await deps.engine.submitRaw(holderOf(request), request.body));
  });

  app.get('/v1/mailboxes/:id/folders', {
    config: holderRoute('list_folders'),
    schema: {
      operationId: 'listFolders',
      tags: ['Messages'],
      summary: 'Folders with message and unread counts',
      security,
      params: IdParams,
      response: {
        200: Type.Object({
          object: Type.Literal('list'),
          data: Type.Array(Type.Object({ object: Type.Literal('mailbox_folder'), name: Folder, system: Type.Boolean({ description: 'A folder every mailbox has; the others are the holder\'s own.' }), total: Type.Integer(), unread: Type.Integer(), size_bytes: Type.Integer() }, { title: 'MailboxFolder' })),
        }, { title: 'MailboxFolderList' }),
        ...problemResponses(403, 404),
      },
    },
  }, async (request) => ({ object: 'list' as const, data: await folderSummaries(deps.db, mailboxOf(request), visibleTo(request)) }));

  app.get('/v1/mailboxes/:id/messages', {
    config: holderRoute('list_messages'),
    schema: {
      operationId: 'listMessages',
      tags: ['Messages'],
      summary: 'List messages, newest first',
      security,
      params: IdParams,
      querystring: Type.Object({
        ...ListQuery,
        folder: Type.Optional(Folder),
        seen: Type.Optional(Type.Boolean()),
        pec_message_id: Type.Optional(Type.String({ description: 'Everything about one transaction: its envelope or its receipts.' })),
      }, { additionalProperties: false }),
      response: { 200: ListOf(MailboxMessage, 'MailboxMessageList'), ...problemResponses(403, 404) },
    },
  }, async (request) => {
    const { limit = 10, starting_after, folder, seen, pec_message_id } = request.query;
    return toPage(await listMessages(deps.db, mailboxOf(request), { folder, seen, pecMessageId: pec_message_id, limit, startingAfter: starting_after }, visibleTo(request)), limit);
  });

  app.get('/v1/mailboxes/:id/messages/:message', {
    config: holderRoute('read_message'),
    schema: {
      operationId: 'getMessage',
      tags: ['Messages'],
      summary: 'Read a message, parsed',
      security,
      params: MessageParams,
      response: {
        200: Type.Object({
          ...messageProperties,
          date: Type.Union([time, Type.Null()]),
          to: Type.Array(Type.String()),
          cc: Type.Array(Type.String()),
          pec_headers: Type.Object({
            x_ricevuta: Type.Union([Type.String(), Type.Null()]),
            x_trasporto: Type.Union([Type.String(), Type.Null()]),
            x_riferimento_message_id: Type.Union([Type.String(), Type.Null()]),
            x_tipo_ricevuta: Type.Union([Type.String(), Type.Null()]),
          }, { title: 'PecHeaders' }),
          text: Type.Union([Type.String(), Type.Null()]),
          html: Type.Union([Type.String(), Type.Null()]),
          attachments: Type.Array(Type.Object({ filename: Type.Union([Type.String(), Type.Null()]), content_type: Type.String(), size_bytes: Type.Integer() }, { title: 'MessageAttachmentInfo' })),
        }, { title: 'MailboxMessageContent' }),
        ...problemResponses(403, 404),
      },
    },
  }, async (request) => readMessage(deps.db, mailboxOf(request), request.params.message, visibleTo(request)));

  app.get('/v1/mailboxes/:id/messages/:message/raw', {
    config: holderRoute('download_message'),
    schema: {
      operationId: 'getRawMessage',
      tags: ['Messages'],
      summary: 'Download a message as stored (.eml), byte for byte',
      security,
      params: MessageParams,
      response: { 200: { description: 'The message', content: { 'message/rfc822': { schema: { type: 'string', format: 'binary' } } } }, ...problemResponses(403, 404) },
    },
  }, async (request, reply) => {
    const content = await rawMessage(deps.db, mailboxOf(request), request.params.message, visibleTo(request));
    return reply.type('message/rfc822').header('content-disposition', `attachment; filename="${request.params.message}.eml"`).send(content as never); // raw bytes: the schema documents, it does not serialise
  });

  app.patch('/v1/mailboxes/:id/messages/:message', {
    config: holderRoute('update_message'),
    schema: {
      operationId: 'updateMessage',
      tags: ['Messages'],
      summary: 'Mark seen or flagged, or move to another folder (e.g. the archive)',
      security,
      params: MessageParams,
      body: Type.Object({ seen: Type.Optional(Type.Boolean()), flagged: Type.Optional(Type.Boolean()), folder: Type.Optional(Folder) }, { title: 'MessageUpdate', additionalProperties: false, minProperties: 1 }),
      response: { 200: MailboxMessage, ...problemResponses(403, 404, 409) },
    },
  }, async (request) => {
    const updated = await updateMessage(deps.db, mailboxOf(request), request.params.message, request.body);
    noteActor(request, request.body.folder ? `move to ${request.body.folder}` : 'mark', request.params.message);
    return updated;
  });

  app.delete('/v1/mailboxes/:id/messages/:message', {
    config: holderRoute('delete_message'),
    schema: {
      operationId: 'deleteMessage',
      tags: ['Messages'],
      summary: 'Delete a message (its space is freed; the log register keeps the events)',
      security,
      params: MessageParams,
      response: { 200: Type.Object({ id: Type.String(), object: Type.Literal('mailbox_message'), deleted: Type.Literal(true) }, { title: 'MessageDeleted' }), ...problemResponses(403, 404) },
    },
  }, async (request) => {
    const deleted = await deleteMessage(deps.db, mailboxOf(request), request.params.message);
    noteActor(request, 'delete', request.params.message);
    return deleted;
  });
}
