import { PecPartnerClient, type ClientOptions } from './client.js';
import type { components, operations } from './schema.js';

type Schemas = components['schemas'];
type Query<Id extends keyof operations> = NonNullable<operations[Id]['parameters']['query']>;
type Call = { idempotencyKey?: string; signal?: AbortSignal };

/**
 * The provider's operator API (`/v1/operator/…`), with an operator key (`sk_op_…`): partners, suspension, credit
 * adjustments, price lists, top-up review, bank statements, invoices, business reports and the audit trail. Partner keys are refused there (403).
 */
export class PecOperator extends PecPartnerClient {
  constructor(options: Omit<ClientOptions, 'mailbox'> & { apiKey: string }) {
    if (!options.apiKey.startsWith('sk_op_')) throw new TypeError('PecOperator needs an operator key (sk_op_…); partners use PecPartner');
    super(options);
  }

  readonly apiKeys = {
    /** The answer carries the `secret`, shown only here. */
    create: (body: Schemas['OperatorApiKeyCreate'], call: Call = {}) => this.post('/v1/operator/api-keys', { body, ...call }),
    list: () => this.list('/v1/operator/api-keys'),
    revoke: (id: string, call: Call = {}) => this.post('/v1/operator/api-keys/{id}/revoke', { path: { id }, ...call }),
  };

  readonly partners = {
    /** The partner and its first API key's secret (shown only here). */
    create: (body: Schemas['PartnerCreate'], call: Call = {}) => this.post('/v1/operator/partners', { body, ...call }),
    retrieve: (id: string, call: Call = {}) => this.get('/v1/operator/partners/{id}', { path: { id }, ...call }),
    page: (query: Query<'operatorListPartners'> = {}, call: Call = {}) => this.get('/v1/operator/partners', { query, ...call }),
    list: (query: Omit<Query<'operatorListPartners'>, 'starting_after'> = {}) => this.list('/v1/operator/partners', { query }),
    suspend: (id: string, reason: string, call: Call = {}) => this.post('/v1/operator/partners/{id}/suspend', { path: { id }, body: { reason }, ...call }),
    reactivate: (id: string, reason: string, call: Call = {}) => this.post('/v1/operator/partners/{id}/reactivate', { path: { id }, body: { reason }, ...call }),
    /** Signed euro cents with a reason: an `adjustment_credit` or `adjustment_debit` ledger entry. */
    adjustCredit: (id: string, body: Schemas['CreditAdjustmentCreate'], call: Call = {}) =>
      this.post('/v1/operator/partners/{id}/credit-adjustments', { path: { id }, body, ...call }),
    /** `price_list: null` returns the partner to the default list; its next charges use the new list. */
    assignPriceList: (id: string, body: Schemas['PriceListAssignment'], call: Call = {}) =>
      this.post('/v1/operator/partners/{id}/price-list', { path: { id }, body, ...call }),
  };

  readonly priceLists = {
    /** A new list; its version 1 is in force from now. */
    create: (body: Schemas['PriceListCreate'], call: Call = {}) => this.post('/v1/operator/price-lists', { body, ...call }),
    /** The list with every version, oldest first. */
    retrieve: (id: string, call: Call = {}) => this.get('/v1/operator/price-lists/{id}', { path: { id }, ...call }),
    list: () => this.list('/v1/operator/price-lists'),
    /** An immutable new version, in force from `effective_from` (default now; never in the past). */
    createVersion: (id: string, body: Schemas['PriceListVersionCreate'], call: Call = {}) =>
      this.post('/v1/operator/price-lists/{id}/versions', { path: { id }, body, ...call }),
  };

  readonly invoices = {
    retrieve: (id: string, call: Call = {}) => this.get('/v1/operator/invoices/{id}', { path: { id }, ...call }),
    page: (query: Query<'operatorListInvoices'> = {}, call: Call = {}) => this.get('/v1/operator/invoices', { query, ...call }),
    list: (query: Omit<Query<'operatorListInvoices'>, 'starting_after'> = {}) => this.list('/v1/operator/invoices', { query }),
    /** The FatturaPA XML as issued (the partner's same file). */
    xml: (id: string, call: Call = {}) => this.get('/v1/operator/invoices/{id}/xml', { path: { id }, ...call }) as Promise<unknown> as Promise<string>,
    html: (id: string, call: Call = {}) => this.get('/v1/operator/invoices/{id}/html', { path: { id }, ...call }) as Promise<unknown> as Promise<string>,
  };

  /** JSON reports; pass `format: 'csv'` for the RFC 4180 text (answered as a string). */
  readonly reports = {
    creditBalances: (query: Query<'operatorReportCreditBalances'> = {}, call: Call = {}) => this.get('/v1/operator/reports/credit-balances', { query, ...call }),
    revenue: (query: Query<'operatorReportRevenue'>, call: Call = {}) => this.get('/v1/operator/reports/revenue', { query, ...call }),
    activeMailboxes: (query: Query<'operatorReportActiveMailboxes'> = {}, call: Call = {}) => this.get('/v1/operator/reports/active-mailboxes', { query, ...call }),
  };

  readonly topUps = {
    retrieve: (id: string, call: Call = {}) => this.get('/v1/operator/top-ups/{id}', { path: { id }, ...call }),
    page: (query: Query<'operatorListTopUps'> = {}, call: Call = {}) => this.get('/v1/operator/top-ups', { query, ...call }),
    list: (query: Omit<Query<'operatorListTopUps'>, 'starting_after'> = {}) => this.list('/v1/operator/top-ups', { query }),
    /** Credits the top-up exactly once; confirming a credited one answers it unchanged. */
    confirm: (id: string, reason: string, call: Call = {}) => this.post('/v1/operator/top-ups/{id}/confirm', { path: { id }, body: { reason }, ...call }),
    fail: (id: string, reason: string, call: Call = {}) => this.post('/v1/operator/top-ups/{id}/fail', { path: { id }, body: { reason }, ...call }),
    refund: (id: string, body: Schemas['TopUpRefundCreate'], call: Call = {}) => this.post('/v1/operator/top-ups/{id}/refund', { path: { id }, body, ...call }),
  };

  readonly bankStatements = {
    /** A CAMT.053 XML document of the provider's account: matched top-ups are credited, the rest listed as lines. */
    import: (xml: string, call: Call = {}) => this.post('/v1/operator/bank-statements', { raw: { contentType: 'application/xml', data: xml }, ...call }),
    lines: (query: Omit<Query<'operatorListBankStatementLines'>, 'starting_after'> = {}) => this.list('/v1/operator/bank-statement-lines', { query }),
    /** An unmatched line paid this pending (or expired) top-up: it is credited, the line becomes `matched`. */
    resolveLine: (id: string, body: Schemas['BankStatementLineResolve'], call: Call = {}) =>
      this.post('/v1/operator/bank-statement-lines/{id}/resolve', { path: { id }, body, ...call }),
    ignoreLine: (id: string, reason: string, call: Call = {}) => this.post('/v1/operator/bank-statement-lines/{id}/ignore', { path: { id }, body: { reason }, ...call }),
  };

  readonly auditLog = {
    page: (query: Query<'operatorListAuditLog'> = {}, call: Call = {}) => this.get('/v1/operator/audit-log', { query, ...call }),
    list: (query: Omit<Query<'operatorListAuditLog'>, 'starting_after'> = {}) => this.list('/v1/operator/audit-log', { query }),
  };
}
