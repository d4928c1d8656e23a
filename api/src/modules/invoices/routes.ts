import type { FastifyReply } from 'fastify';
import { Type } from 'typebox';
import type { DbOrTx } from '@pec-partner/db';
import type { App, AppDeps } from '../../deps.ts';
import { partnerOf } from '../../http/auth.ts';
import { ListOf, ListQuery, toPage } from '../../http/pagination.ts';
import { problemResponses } from '../../http/problem.ts';
import { renderInvoiceHtml } from './html.ts';
import { Invoice } from './schemas.ts';
import { getInvoice, getInvoiceXml, listInvoices, type InvoiceScope } from './service.ts';

/** The FatturaPA file as issued, as an attachment with its SDI name: the partner's and the operator's download. */
export async function sendInvoiceXml(reply: FastifyReply, db: DbOrTx, scope: InvoiceScope, id: string) {
  const { fileName, xml } = await getInvoiceXml(db, scope, id);
  return reply
    .type('application/xml; charset=utf-8')
    .header('content-disposition', `attachment; filename="${fileName}"`)
    .header('x-content-type-options', 'nosniff')
    .send(xml as never); // a string body: the schema documents it, it does not serialise it
}

/** The readable copy, without script, under a strict CSP: the partner's and the operator's. */
export async function sendInvoiceHtml(reply: FastifyReply, db: DbOrTx, scope: InvoiceScope, id: string) {
  const page = renderInvoiceHtml(await getInvoice(db, scope, id));
  return reply
    .type('text/html; charset=utf-8')
    .header('content-security-policy', page.csp)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .send(page.html as never);
}

export const InvoiceXmlResponse = { description: 'The FatturaPA file.', content: { 'application/xml': { schema: { type: 'string' } } } } as const;
export const InvoiceHtmlResponse = { description: 'The readable copy.', content: { 'text/html': { schema: { type: 'string' } } } } as const;

const IdParams = Type.Object({ id: Type.String({ description: 'An invoice id (`inv_…`).' }) }, { additionalProperties: false });

export async function invoiceRoutes(app: App, { db }: AppDeps): Promise<void> {
  app.get('/v1/invoices', {
    schema: {
      operationId: 'listInvoices',
      tags: ['Invoices'],
      summary: 'List your invoices, newest first',
      description: 'The provider issues one invoice for every credited top-up: the credit is the taxable amount, plus 22 % VAT.',
      querystring: Type.Object(
        { ...ListQuery, year: Type.Optional(Type.Integer({ minimum: 2000, maximum: 2100, description: 'Only invoices numbered in this year.' })) },
        { additionalProperties: false },
      ),
      response: { 200: ListOf(Invoice, 'InvoiceList'), ...problemResponses() },
    },
  }, async (request) => {
    const { limit = 10, starting_after, year } = request.query;
    const rows = await listInvoices(db, { partnerId: partnerOf(request).partnerId }, { limit, startingAfter: starting_after, year });
    return toPage(rows, limit);
  });

  app.get('/v1/invoices/:id', {
    schema: {
      operationId: 'getInvoice',
      tags: ['Invoices'],
      summary: 'Retrieve an invoice',
      params: IdParams,
      response: { 200: Invoice, ...problemResponses(404) },
    },
  }, async (request) => getInvoice(db, { partnerId: partnerOf(request).partnerId }, request.params.id));

  app.get('/v1/invoices/:id/xml', {
    schema: {
      operationId: 'getInvoiceXml',
      tags: ['Invoices'],
      summary: 'Download the FatturaPA electronic invoice',
      description: 'The XML file (FatturaElettronica v1.2.2, FPR12) as issued, named per the SDI convention in `Content-Disposition`.',
      params: IdParams,
      response: {
        200: InvoiceXmlResponse,
        ...problemResponses(404),
      },
    },
  }, async (request, reply) => sendInvoiceXml(reply, db, { partnerId: partnerOf(request).partnerId }, request.params.id));

  app.get('/v1/invoices/:id/html', {
    schema: {
      operationId: 'getInvoiceHtml',
      tags: ['Invoices'],
      summary: 'A readable, printable copy of an invoice (Italian)',
      description: 'The courtesy copy (copia di cortesia) of the electronic invoice: HTML without script, printable.',
      params: IdParams,
      response: {
        200: InvoiceHtmlResponse,
        ...problemResponses(404),
      },
    },
  }, async (request, reply) => sendInvoiceHtml(reply, db, { partnerId: partnerOf(request).partnerId }, request.params.id));
}
