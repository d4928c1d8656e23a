import { Type } from 'typebox';
import { signInDoors, signInOutcomes } from '@pec-partner/db';
import type { App, AppDeps } from '../../deps.ts';
import { listMailboxSignIns } from '../../access/login-guard.ts';
import { holderOf } from '../../http/auth.ts';
import { ListOf, ListQuery, toPage } from '../../http/pagination.ts';
import { notFound, problemResponses } from '../../http/problem.ts';

const MailboxSignIn = Type.Object(
  {
    id: Type.String({ description: 'Prefixed `msi_`.' }),
    object: Type.Literal('mailbox_sign_in'),
    mailbox: Type.String(),
    door: Type.Enum(signInDoors, { description: 'Where: the REST API (HTTP Basic), SMTP submission, IMAP, POP3 or the webmail.' }),
    user: Type.String({ description: 'The user name whose password was tried, lowercased (a collaborator signs in with its own e-mail).' }),
    remote_address: Type.String({ description: 'The IP address the attempt came from.' }),
    outcome: Type.Enum(signInOutcomes, {
      description: '`succeeded`; `failed` (wrong credentials); `locked_out` (refused without a look at the password, after too many failures ' +
        'for this user name or from this address); `unavailable` (right credentials, but the mailbox is in a state this door does not open).',
    }),
    created_at: Type.String({ format: 'date-time' }),
  },
  { title: 'MailboxSignIn' },
);

const IdParams = Type.Object({ id: Type.String() }, { additionalProperties: false });

export async function signInRoutes(app: App, deps: AppDeps): Promise<void> {
  app.get('/v1/mailboxes/:id/sign-ins', {
    // No mailboxOperation: the holder's alone (collaborators and supervisor sessions get 403).
    config: { callers: 'holder' },
    schema: {
      operationId: 'listMailboxSignIns',
      tags: ['Sign-ins'],
      summary: "The mailbox's sign-in attempts at every door, newest first",
      description:
        'Every sign-in at every door (REST, SMTP submission, IMAP, POP3, webmail) that named this mailbox: the holder, its collaborators ' +
        'and supervisor sessions, successful or not. Over HTTP Basic, which sends the password with every request, a request whose ' +
        'credentials were checked less than a minute before is not listed again. For the holder only.',
      security: [{ mailboxBasic: [] }],
      params: IdParams,
      querystring: Type.Object({
        ...ListQuery,
        outcome: Type.Optional(Type.Enum(signInOutcomes)),
        door: Type.Optional(Type.Enum(signInDoors)),
      }, { additionalProperties: false }),
      response: { 200: ListOf(MailboxSignIn, 'MailboxSignInList'), ...problemResponses(403, 404) },
    },
  }, async (request) => {
    const holder = holderOf(request);
    // Another mailbox's id answers like a missing one.
    if (holder.mailboxId !== request.params.id) throw notFound('mailbox', request.params.id);
    const { limit = 10, starting_after, outcome, door } = request.query;
    return toPage(await listMailboxSignIns(deps.db, holder.mailboxId, { limit, startingAfter: starting_after, outcome, door }), limit);
  });
}
