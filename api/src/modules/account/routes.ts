import type { App, AppDeps } from '../../deps.ts';
import { partnerOf } from '../../http/auth.ts';
import { problemResponses } from '../../http/problem.ts';
import { Account, AccountUpdate } from './schemas.ts';
import { getAccount, updateAccount } from './service.ts';

/**
 * `/v1/account` is a singleton: the key says whose account it is, so there is no id to guess or to get wrong, and
 * another partner's account cannot even be named (the operator API, which manages every partner, uses ids).
 */
export async function accountRoutes(app: App, { db, clock }: AppDeps): Promise<void> {
  app.get('/v1/account', {
    schema: {
      operationId: 'getAccount',
      tags: ['Account'],
      summary: "Get your account's fiscal data",
      response: { 200: Account, ...problemResponses() },
    },
  }, async (request) => getAccount(db, partnerOf(request).partnerId));

  app.patch('/v1/account', {
    schema: {
      operationId: 'updateAccount',
      tags: ['Account'],
      summary: 'Set the fiscal data the provider invoices you with',
      description:
        'Legal name, partita IVA, codice fiscale, address and the e-invoicing channel (SDI code or PEC). Checked as ' +
        'for customers (checksums, CAP, province) and against the FatturaPA limits (lengths, Latin-1 text). Every ' +
        'credited top-up is invoiced with the data as it is at that moment.',
      body: AccountUpdate,
      response: { 200: Account, ...problemResponses() },
    },
  }, async (request) => updateAccount(db, clock, partnerOf(request).partnerId, request.body));
}
