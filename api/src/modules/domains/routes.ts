import { Type } from 'typebox';
import { domainStatuses } from '@pec-partner/db';
import type { App, AppDeps } from '../../deps.ts';
import { partnerOf } from '../../http/auth.ts';
import { ListOf, ListQuery, toPage } from '../../http/pagination.ts';
import { problemResponses, ProblemError } from '../../http/problem.ts';
import {
  changeDomainCustomer, checkCertifiable, createDomain, getDomain, listDomains, providerDomainViews,
  requestDomainCancellation, undoDomainCancellation, verifyDomain, withdrawDomain,
} from './service.ts';

const nullableTime = Type.Union([Type.String({ format: 'date-time' }), Type.Null()]);

const RecordCheck = Type.Object(
  {
    type: Type.Union([Type.Literal('MX'), Type.Literal('TXT')]),
    name: Type.String(),
    expected: Type.Array(Type.String()),
    found: Type.Array(Type.String()),
    status: Type.Union([Type.Literal('ok'), Type.Literal('missing'), Type.Literal('mismatch'), Type.Literal('error')]),
    detail: Type.String(),
  },
  { title: 'DnsRecordCheck' },
);

export const Domain = Type.Object(
  {
    id: Type.String({ description: 'Prefixed `dom_`; the provider\'s own domains have `pdm_<name>`.' }),
    object: Type.Literal('domain'),
    kind: Type.Union([Type.Literal('custom'), Type.Literal('provider')]),
    name: Type.String({ description: 'ASCII (punycode) form.' }),
    unicode_name: Type.String(),
    level: Type.Integer(),
    status: Type.Enum(domainStatuses),
    customer: Type.Union([Type.String(), Type.Null()]),
    dns_records: Type.Array(
      Type.Object(
        { type: Type.Union([Type.Literal('MX'), Type.Literal('TXT')]), name: Type.String(), value: Type.String(), priority: Type.Union([Type.Integer(), Type.Null()]) },
        { title: 'DnsRecord', description: 'A record the customer must publish.' },
      ),
    ),
    last_check: Type.Union([
      Type.Object({ checked_at: Type.String({ format: 'date-time' }), ok: Type.Boolean(), records: Type.Array(RecordCheck) }, { title: 'DnsCheck' }),
      Type.Null(),
    ]),
    certified_at: nullableTime,
    degraded_at: nullableTime,
    decertified_at: nullableTime,
    withdrawn_at: nullableTime,
    cancel_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], { description: 'When a requested cancellation takes effect.' }),
    cancelled_at: nullableTime,
    created_at: Type.String({ format: 'date-time' }),
    updated_at: Type.String({ format: 'date-time' }),
  },
  { title: 'Domain' },
);

const IdParams = Type.Object({ id: Type.String({ description: 'A domain id.' }) }, { additionalProperties: false });
const DomainName = Type.String({ minLength: 1, maxLength: 300, description: 'Second- or third-level name; IDN allowed.' });

export async function domainRoutes(app: App, deps: AppDeps): Promise<void> {
  const { db, config } = deps;

  app.post('/v1/domains/check', {
    schema: {
      operationId: 'checkDomain',
      tags: ['Domains'],
      summary: 'Whether a name can be certified, without creating anything',
      body: Type.Object({ name: DomainName }, { title: 'DomainCheckRequest', additionalProperties: false }),
      response: {
        200: Type.Object(
          {
            object: Type.Literal('domain_check'),
            name: Type.String(),
            unicode_name: Type.Union([Type.String(), Type.Null()]),
            certifiable: Type.Boolean(),
            reason: Type.Union([Type.String(), Type.Null()], { description: '`invalid_domain_name`, `public_suffix`, `too_deep`, `ip_address`, `provider_domain`, `already_certified` or `already_requested`.' }),
            detail: Type.Union([Type.String(), Type.Null()]),
          },
          { title: 'DomainCheck' },
        ),
        ...problemResponses(),
      },
    },
  }, async (request) => ({ object: 'domain_check' as const, ...(await checkCertifiable(db, config, partnerOf(request).partnerId, request.body.name)) }));

  app.post('/v1/domains', {
    schema: {
      operationId: 'createDomain',
      tags: ['Domains'],
      summary: "Request certification of a customer's domain",
      description: 'Answers with the DNS records to publish (`dns_records`); then call verify. Nothing is charged until verification succeeds.',
      body: Type.Object({ name: DomainName, customer: Type.String() }, { title: 'DomainCreate', additionalProperties: false }),
      response: { 201: Domain, ...problemResponses(409, 422) },
    },
  }, async (request, reply) => {
    const domain = await createDomain(deps, partnerOf(request).partnerId, request.body);
    return reply.code(201).header('location', `/v1/domains/${domain.id}`).send(domain);
  });

  app.get('/v1/domains', {
    schema: {
      operationId: 'listDomains',
      tags: ['Domains'],
      summary: 'List custom domains (newest first), or the provider\'s own with `kind=provider`',
      querystring: Type.Object(
        {
          ...ListQuery,
          kind: Type.Optional(Type.Union([Type.Literal('custom'), Type.Literal('provider')], { default: 'custom' })),
          customer: Type.Optional(Type.String()),
          status: Type.Optional(Type.Enum(domainStatuses)),
          name: Type.Optional(Type.String()),
        },
        { additionalProperties: false },
      ),
      response: { 200: ListOf(Domain, 'DomainList'), ...problemResponses() },
    },
  }, async (request) => {
    const { limit = 10, starting_after, kind = 'custom', customer, status, name } = request.query;
    if (kind === 'provider') {
      const all = providerDomainViews(config);
      const start = starting_after ? all.findIndex((d) => d.id === starting_after) + 1 : 0;
      return toPage(all.slice(start, start + limit + 1), limit);
    }
    return toPage(await listDomains(deps, partnerOf(request).partnerId, { limit, startingAfter: starting_after, customer, status, name }), limit);
  });

  app.get('/v1/domains/:id', {
    schema: { operationId: 'getDomain', tags: ['Domains'], summary: 'Retrieve a domain', params: IdParams, response: { 200: Domain, ...problemResponses(404) } },
  }, async (request) => getDomain(deps, partnerOf(request).partnerId, request.params.id));

  app.patch('/v1/domains/:id', {
    schema: {
      operationId: 'updateDomain',
      tags: ['Domains'],
      summary: 'Change the customer that owns the domain',
      params: IdParams,
      body: Type.Object({ customer: Type.String() }, { title: 'DomainUpdate', additionalProperties: false }),
      response: { 200: Domain, ...problemResponses(404, 409) },
    },
  }, async (request) => changeDomainCustomer(deps, partnerOf(request).partnerId, request.params.id, request.body.customer));

  app.post('/v1/domains/:id/verify', {
    schema: {
      operationId: 'verifyDomain',
      tags: ['Domains'],
      summary: 'Check the DNS records and certify the domain',
      description:
        'Looks the MX and TXT records up through DNS. When both are right the domain becomes `certified` and the ' +
        'certification fee is charged; otherwise a 422 `domain_verification_failed` lists each record\'s problem ' +
        '(also kept in `last_check`). In test mode the lookup is as real (a developer may publish the records); '
        + 'without DNS, `POST /v1/test_helpers/domains/{id}/verify` certifies a test domain, and a failed check says so.',
      params: IdParams,
      response: { 200: Domain, ...problemResponses(402, 404, 409, 422) },
    },
  }, async (request) => {
    const caller = partnerOf(request);
    try {
      return await verifyDomain(deps, caller.partnerId, request.params.id, request.id);
    } catch (error) {
      if (caller.livemode || !(error instanceof ProblemError) || error.code !== 'domain_verification_failed') throw error;
      throw new ProblemError(error.status, error.code, error.title,
        `${error.message} In test mode, POST /v1/test_helpers/domains/${request.params.id}/verify certifies the domain without DNS.`, error.extensions);
    }
  });

  app.post('/v1/domains/:id/withdraw', {
    schema: { operationId: 'withdrawDomain', tags: ['Domains'], summary: 'Withdraw a pending certification request', params: IdParams, response: { 200: Domain, ...problemResponses(404, 409) } },
  }, async (request) => withdrawDomain(deps, partnerOf(request).partnerId, request.params.id));

  app.post('/v1/domains/:id/cancellation', {
    schema: {
      operationId: 'requestDomainCancellation',
      tags: ['Domains'],
      summary: 'Schedule the end of a certification',
      description: 'Takes effect at `at` (default: in 30 days). Refused while the domain has mailboxes that are not cancelled.',
      params: IdParams,
      body: Type.Optional(Type.Object({ at: Type.Optional(Type.String({ format: 'date-time' })) }, { title: 'DomainCancellation', additionalProperties: false })),
      response: { 200: Domain, ...problemResponses(404, 409) },
    },
  }, async (request) => {
    const at = request.body?.at;
    return requestDomainCancellation(deps, partnerOf(request).partnerId, request.params.id, at ? new Date(at) : undefined);
  });

  app.delete('/v1/domains/:id/cancellation', {
    schema: { operationId: 'undoDomainCancellation', tags: ['Domains'], summary: 'Undo a scheduled cancellation', params: IdParams, response: { 200: Domain, ...problemResponses(404, 409) } },
  }, async (request) => undoDomainCancellation(deps, partnerOf(request).partnerId, request.params.id));
}
