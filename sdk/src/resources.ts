import { PecPartnerClient, type ClientOptions } from './client.js';
import type { components, operations } from './schema.js';

type Schemas = components['schemas'];
type Query<Id extends keyof operations> = NonNullable<operations[Id]['parameters']['query']>;
type Call = { idempotencyKey?: string; signal?: AbortSignal };

/**
 * The client with one helper per operation; everything else is reachable through the typed
 * `request/get/post/patch/delete/list` methods it inherits.
 */
export class PecPartner extends PecPartnerClient {
  constructor(options: ClientOptions) {
    super(options);
  }

  readonly customers = {
    create: (body: Schemas['CustomerCreate'], call: Call = {}) => this.post('/v1/customers', { body, ...call }),
    retrieve: (id: string, call: Call = {}) => this.get('/v1/customers/{id}', { path: { id }, ...call }),
    update: (id: string, body: Schemas['CustomerUpdate'], call: Call = {}) => this.patch('/v1/customers/{id}', { path: { id }, body, ...call }),
    del: (id: string, call: Call = {}) => this.delete('/v1/customers/{id}', { path: { id }, ...call }),
    /** One page. */
    page: (query: Query<'listCustomers'> = {}, call: Call = {}) => this.get('/v1/customers', { query, ...call }),
    /** Every matching customer, across pages. */
    list: (query: Omit<Query<'listCustomers'>, 'starting_after'> = {}) => this.list('/v1/customers', { query }),
  };

  readonly credit = {
    retrieve: (call: Call = {}) => this.get('/v1/credit', { ...call }),
    topUp: (body: Schemas['TopUpRequest'], call: Call = {}) => this.post('/v1/credit/top-ups', { body, ...call }),
    ledgerPage: (query: Query<'listLedgerEntries'> = {}, call: Call = {}) => this.get('/v1/credit/ledger', { query, ...call }),
    ledger: (query: Omit<Query<'listLedgerEntries'>, 'starting_after'> = {}) => this.list('/v1/credit/ledger', { query }),
  };

  readonly prices = {
    list: () => this.list('/v1/prices'),
  };

  readonly apiKeys = {
    create: (body: Schemas['ApiKeyCreate'], call: Call = {}) => this.post('/v1/api-keys', { body, ...call }),
    list: () => this.list('/v1/api-keys'),
    revoke: (id: string, call: Call = {}) => this.post('/v1/api-keys/{id}/revoke', { path: { id }, ...call }),
  };
}
