import { Type } from 'typebox';
import type { App, AppDeps } from '../../deps.ts';
import { partnerOf } from '../../http/auth.ts';
import { ListOf, ListQuery, toPage } from '../../http/pagination.ts';
import { problemResponses } from '../../http/problem.ts';
import { Customer, CustomerCreate, CustomerType, CustomerUpdate, DeletedCustomer } from './schemas.ts';
import { createCustomer, deleteCustomer, getCustomer, listCustomers, updateCustomer } from './service.ts';
import { identityDocumentTypes } from '@pec-partner/db';
import { addIdentityDocument, currentIdentityDocument } from './identity.ts';

const DateOnly = Type.String({ format: 'date', description: 'YYYY-MM-DD.' });

const IdentityDocumentCreate = Type.Object(
  {
    document_type: Type.Enum(identityDocumentTypes),
    number: Type.String({ minLength: 3, maxLength: 40 }),
    issuer: Type.String({ minLength: 2, maxLength: 200, description: 'Issuing authority, e.g. `Comune di Milano`.' }),
    issued_on: Type.Optional(DateOnly),
    expires_on: DateOnly,
  },
  { title: 'IdentityDocumentCreate', additionalProperties: false },
);

const IdentityDocument = Type.Object(
  {
    id: Type.String({ description: 'Prefixed `idd_`.' }),
    object: Type.Literal('identity_document'),
    customer: Type.String(),
    document_type: Type.Enum(identityDocumentTypes),
    number: Type.String(),
    issuer: Type.String(),
    issued_on: Type.Union([DateOnly, Type.Null()]),
    expires_on: DateOnly,
    created_at: Type.String({ format: 'date-time' }),
  },
  { title: 'IdentityDocument' },
);

const IdParams = Type.Object({ id: Type.String({ description: 'A customer id (`cus_…`).' }) }, { additionalProperties: false });

export async function customerRoutes(app: App, { db, clock }: AppDeps): Promise<void> {
  app.post('/v1/customers', {
    schema: {
      operationId: 'createCustomer',
      tags: ['Customers'],
      summary: 'Create a customer',
      body: CustomerCreate,
      response: { 201: Customer, ...problemResponses(409, 422) },
    },
  }, async (request, reply) => {
    const customer = await createCustomer(db, clock, partnerOf(request).partnerId, request.body);
    return reply.code(201).header('location', `/v1/customers/${customer.id}`).send(customer);
  });

  app.get('/v1/customers', {
    schema: {
      operationId: 'listCustomers',
      tags: ['Customers'],
      summary: 'List customers, newest first',
      querystring: Type.Object(
        {
          ...ListQuery,
          type: Type.Optional(CustomerType),
          tax_code: Type.Optional(Type.String({ description: 'Exact codice fiscale (any case).' })),
          vat_number: Type.Optional(Type.String({ description: 'Exact partita IVA, with or without `IT`.' })),
          email: Type.Optional(Type.String()),
          q: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'Text contained in the name or business name.' })),
        },
        { additionalProperties: false },
      ),
      response: { 200: ListOf(Customer, 'CustomerList'), ...problemResponses() },
    },
  }, async (request) => {
    const { limit = 10, starting_after, type, tax_code, vat_number, email, q } = request.query;
    const rows = await listCustomers(db, partnerOf(request).partnerId, {
      limit, startingAfter: starting_after, type, taxCode: tax_code, vatNumber: vat_number, email, q,
    });
    return toPage(rows, limit);
  });

  app.get('/v1/customers/:id', {
    schema: {
      operationId: 'getCustomer',
      tags: ['Customers'],
      summary: 'Retrieve a customer',
      params: IdParams,
      response: { 200: Customer, ...problemResponses(404) },
    },
  }, async (request) => getCustomer(db, partnerOf(request).partnerId, request.params.id));

  app.patch('/v1/customers/:id', {
    schema: {
      operationId: 'updateCustomer',
      tags: ['Customers'],
      summary: 'Update a customer',
      params: IdParams,
      body: CustomerUpdate,
      response: { 200: Customer, ...problemResponses(404) },
    },
  }, async (request) => updateCustomer(db, clock, partnerOf(request).partnerId, request.params.id, request.body));

  app.post('/v1/customers/:id/identity', {
    schema: {
      operationId: 'addIdentityDocument',
      tags: ['Customers'],
      summary: "File the customer's identity document",
      description:
        'Expired documents are refused. Mailboxes of this customer waiting in `pending_identification` are ' +
        'activated in the same operation; `activated_mailboxes` says how many.',
      params: IdParams,
      body: IdentityDocumentCreate,
      response: {
        201: Type.Object({ ...IdentityDocument.properties, activated_mailboxes: Type.Integer() }, { title: 'IdentityDocumentFiled' }),
        ...problemResponses(404, 422),
      },
    },
  }, async (request, reply) => {
    const filed = await addIdentityDocument(db, clock, partnerOf(request).partnerId, request.params.id, request.body);
    return reply.code(201).send(filed);
  });

  app.get('/v1/customers/:id/identity', {
    schema: {
      operationId: 'getIdentityDocument',
      tags: ['Customers'],
      summary: "The customer's current identity document",
      params: IdParams,
      response: { 200: IdentityDocument, ...problemResponses(404) },
    },
  }, async (request) => currentIdentityDocument(db, partnerOf(request).partnerId, request.params.id));

  app.delete('/v1/customers/:id', {
    schema: {
      operationId: 'deleteCustomer',
      tags: ['Customers'],
      summary: 'Delete a customer without services',
      description: 'A customer that still has domains or mailboxes cannot be deleted (409 `customer_has_services`).',
      params: IdParams,
      response: { 200: DeletedCustomer, ...problemResponses(404, 409) },
    },
  }, async (request) => deleteCustomer(db, clock, partnerOf(request).partnerId, request.params.id));
}
