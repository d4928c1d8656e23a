import { Type } from 'typebox';
import type { App, AppDeps } from '../../deps.ts';
import { partnerOf } from '../../http/auth.ts';
import { problemResponses } from '../../http/problem.ts';
import type { Principal } from '../partners/service.ts';
import type { FastifyRequest } from 'fastify';
import type { AuditActorRef } from '../operator/audit.ts';
import { TopUp } from '../credit/routes.ts';
import { confirmTopUp, expireTopUp, failTopUp, getTopUp } from '../credit/top-ups.ts';
import { Domain } from '../domains/routes.ts';
import { failTestDomainCheck, verifyTestDomain } from '../domains/service.ts';

/**
 * Test helpers (Stripe's name and shape): calls that stand in, in the sandbox, for what happens outside the API in
 * live mode — money arriving at the bank, a payment failing, 30 days passing, DNS records being published or taken
 * down. Each drives the object through the same service function, state transition and events as the real thing.
 * They answer only test-mode callers (`sk_test_` keys and their tokens); a live caller gets 403 `test_mode_only`.
 */

const tags = ['Test helpers'];
const TopUpId = Type.Object({ id: Type.String({ description: 'A test-mode top-up id (`top_…`).' }) }, { additionalProperties: false });
const DomainId = Type.Object({ id: Type.String({ description: 'A test-mode domain id (`dom_…`).' }) }, { additionalProperties: false });
const testOnly = ' Test mode only: a live key or token gets 403 `test_mode_only`.';

/** The simulated bank or clock acts, not a person: `system`, as for the start-up's demo credit. */
const simulation: AuditActorRef = { actor: 'system' };

/** Every route here is `testModeOnly`: authentication has refused live callers already. */
const testCaller = (request: FastifyRequest): Principal => partnerOf(request);

export async function testHelperRoutes(app: App, deps: AppDeps): Promise<void> {
  const { db, clock, config } = deps;
  const bank = config.bankAccount;

  app.post('/v1/test_helpers/top-ups/:id/credit', {
    config: { testModeOnly: true },
    schema: {
      operationId: 'testHelperCreditTopUp',
      tags,
      summary: 'Simulate the money of a test top-up arriving: credit it',
      description:
        'What the bank transfer and the operator\'s confirmation (or a matched statement line) do in live mode: the top-up ' +
        'becomes `credited` once (a `top_up` ledger entry, `credit.top_up.credited`); crediting it again answers it ' +
        'unchanged. Test credit is free: no legal invoice is issued and no invoice number is used.' + testOnly,
      params: TopUpId,
      response: { 200: TopUp, ...problemResponses(403, 404, 409) },
    },
  }, async (request) => {
    const { partnerId } = testCaller(request);
    await getTopUp(db, bank, request.params.id, partnerId);
    const { topUp } = await confirmTopUp(db, clock, bank, config.invoicing, simulation, request.params.id, { reason: 'Simulated payment (test mode)' });
    return topUp;
  });

  app.post('/v1/test_helpers/top-ups/:id/fail', {
    config: { testModeOnly: true },
    schema: {
      operationId: 'testHelperFailTopUp',
      tags,
      summary: 'Simulate a failed payment of a test top-up',
      description: 'As when the provider marks a live top-up failed: `failed` with the reason, `credit.top_up.failed`; nothing is credited.' + testOnly,
      params: TopUpId,
      body: Type.Optional(Type.Object(
        { reason: Type.Optional(Type.String({ minLength: 1, maxLength: 500, description: 'Kept as `failure_reason`; default: "Simulated payment failure (test mode)".' })) },
        { title: 'TestTopUpFail', additionalProperties: false },
      )),
      response: { 200: TopUp, ...problemResponses(403, 404, 409) },
    },
  }, async (request) => {
    const { partnerId } = testCaller(request);
    await getTopUp(db, bank, request.params.id, partnerId);
    return failTopUp(db, clock, bank, simulation, request.params.id, request.body?.reason ?? 'Simulated payment failure (test mode)');
  });

  app.post('/v1/test_helpers/top-ups/:id/expire', {
    config: { testModeOnly: true },
    schema: {
      operationId: 'testHelperExpireTopUp',
      tags,
      summary: 'Simulate the end of a test top-up\'s payment window',
      description: 'What 30 days without money do in live mode: a pending top-up becomes `expired` (`credit.top_up.expired`); an expired one is answered unchanged.' + testOnly,
      params: TopUpId,
      response: { 200: TopUp, ...problemResponses(403, 404, 409) },
    },
  }, async (request) => {
    const { partnerId } = testCaller(request);
    await getTopUp(db, bank, request.params.id, partnerId);
    return (await expireTopUp(db, clock, bank, request.params.id)).topUp;
  });

  app.post('/v1/test_helpers/domains/:id/verify', {
    config: { testModeOnly: true },
    schema: {
      operationId: 'testHelperVerifyDomain',
      tags,
      summary: 'Certify a test domain without DNS',
      description:
        'A passing DNS check, simulated: a `pending_verification` (or `decertified`) domain becomes `certified` with ' +
        '`domain.certified`, and the certification fee is charged to the (free) test credit, 402 when it is short, as ' +
        'by `POST /v1/domains/{id}/verify`. `last_check` records the simulated check.' + testOnly,
      params: DomainId,
      response: { 200: Domain, ...problemResponses(402, 403, 404, 409) },
    },
  }, async (request) => verifyTestDomain(deps, testCaller(request).partnerId, request.params.id, request.id));

  app.post('/v1/test_helpers/domains/:id/degrade', {
    config: { testModeOnly: true },
    schema: {
      operationId: 'testHelperDegradeDomain',
      tags,
      summary: 'Simulate a failing DNS check of a certified test domain',
      description: 'As the daily re-check does when the records are gone: `certified` → `degraded` (`domain.degraded`); its mailboxes keep working.' + testOnly,
      params: DomainId,
      response: { 200: Domain, ...problemResponses(403, 404, 409) },
    },
  }, async (request) => failTestDomainCheck(deps, testCaller(request).partnerId, request.params.id, 'degrade'));

  app.post('/v1/test_helpers/domains/:id/decertify', {
    config: { testModeOnly: true },
    schema: {
      operationId: 'testHelperDecertifyDomain',
      tags,
      summary: 'Simulate DNS checks failing until a test domain is decertified',
      description:
        'As the configured days of failing re-checks do: a `certified` domain is degraded (`domain.degraded`), then a ' +
        '`degraded` one `decertified` (`domain.decertified`) and its active mailboxes suspended. `POST …/verify` certifies it again.' + testOnly,
      params: DomainId,
      response: { 200: Domain, ...problemResponses(403, 404, 409) },
    },
  }, async (request) => failTestDomainCheck(deps, testCaller(request).partnerId, request.params.id, 'decertify'));
}
