import { PecPartnerClient, type ClientOptions } from './client.js';
import type { components, operations } from './schema.js';
import { webhooks } from './webhooks.js';

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
    /** A pending top-up with the bank transfer instructions; credited when the provider sees the money. */
    topUp: (body: Schemas['TopUpRequest'], call: Call = {}) => this.post('/v1/credit/top-ups', { body, ...call }),
    topUpRetrieve: (id: string, call: Call = {}) => this.get('/v1/credit/top-ups/{id}', { path: { id }, ...call }),
    topUps: (query: Omit<Query<'listTopUps'>, 'starting_after'> = {}) => this.list('/v1/credit/top-ups', { query }),
    ledgerPage: (query: Query<'listLedgerEntries'> = {}, call: Call = {}) => this.get('/v1/credit/ledger', { query, ...call }),
    ledger: (query: Omit<Query<'listLedgerEntries'>, 'starting_after'> = {}) => this.list('/v1/credit/ledger', { query }),
  };

  readonly prices = {
    list: () => this.list('/v1/prices'),
  };

  /** Sandbox only (`sk_test_` keys): settle test top-ups and domain checks as the bank and DNS would. */
  readonly testHelpers = {
    creditTopUp: (id: string, call: Call = {}) => this.post('/v1/test_helpers/top-ups/{id}/credit', { path: { id }, ...call }),
    failTopUp: (id: string, body: Schemas['TestTopUpFail'] = {}, call: Call = {}) => this.post('/v1/test_helpers/top-ups/{id}/fail', { path: { id }, body, ...call }),
    expireTopUp: (id: string, call: Call = {}) => this.post('/v1/test_helpers/top-ups/{id}/expire', { path: { id }, ...call }),
    verifyDomain: (id: string, call: Call = {}) => this.post('/v1/test_helpers/domains/{id}/verify', { path: { id }, ...call }),
    degradeDomain: (id: string, call: Call = {}) => this.post('/v1/test_helpers/domains/{id}/degrade', { path: { id }, ...call }),
    decertifyDomain: (id: string, call: Call = {}) => this.post('/v1/test_helpers/domains/{id}/decertify', { path: { id }, ...call }),
  };

  /** Sandbox only: a test clock freezes the test world's time; advancing it makes renewals and expiries happen now. */
  readonly testClocks = {
    create: (body: Schemas['TestClockCreate'] = {}, call: Call = {}) => this.post('/v1/test_clocks', { body, ...call }),
    retrieve: (id: string, call: Call = {}) => this.get('/v1/test_clocks/{id}', { path: { id }, ...call }),
    advance: (id: string, frozenTime: string, call: Call = {}) => this.post('/v1/test_clocks/{id}/advance', { path: { id }, body: { frozen_time: frozenTime }, ...call }),
    del: (id: string, call: Call = {}) => this.delete('/v1/test_clocks/{id}', { path: { id }, ...call }),
    list: () => this.list('/v1/test_clocks'),
  };

  /** `verify(rawBody, headers, secret)`: also importable on its own, for receivers that hold no API key. */
  readonly webhooks = webhooks;

  readonly webhookEndpoints = {
    /** The answer carries the signing `secret`, shown only here. */
    create: (body: Schemas['WebhookEndpointCreate'], call: Call = {}) => this.post('/v1/webhook-endpoints', { body, ...call }),
    retrieve: (id: string, call: Call = {}) => this.get('/v1/webhook-endpoints/{id}', { path: { id }, ...call }),
    update: (id: string, body: Schemas['WebhookEndpointUpdate'], call: Call = {}) => this.patch('/v1/webhook-endpoints/{id}', { path: { id }, body, ...call }),
    del: (id: string, call: Call = {}) => this.delete('/v1/webhook-endpoints/{id}', { path: { id }, ...call }),
    list: () => this.list('/v1/webhook-endpoints'),
    /** A new secret; the previous one keeps signing for 24 hours. */
    rotateSecret: (id: string, call: Call = {}) => this.post('/v1/webhook-endpoints/{id}/rotate-secret', { path: { id }, ...call }),
    /** A `test.webhook` event for this endpoint only. */
    sendTest: (id: string, call: Call = {}) => this.post('/v1/webhook-endpoints/{id}/test', { path: { id }, ...call }),
    attempts: (id: string) => this.list('/v1/webhook-endpoints/{id}/attempts', { path: { id } }),
  };

  readonly events = {
    retrieve: (id: string, call: Call = {}) => this.get('/v1/events/{id}', { path: { id }, ...call }),
    /** One page. */
    page: (query: Query<'listEvents'> = {}, call: Call = {}) => this.get('/v1/events', { query, ...call }),
    /** Every matching event of the last 30 days, across pages. */
    list: (query: Omit<Query<'listEvents'>, 'starting_after'> = {}) => this.list('/v1/events', { query }),
    /** Sends the event again (same `webhook-id`), to `endpoint` or to every endpoint that selects it. */
    redeliver: (id: string, body: Schemas['EventRedeliver'] = {}, call: Call = {}) => this.post('/v1/events/{id}/redeliver', { path: { id }, body, ...call }),
  };

  readonly apiKeys = {
    create: (body: Schemas['ApiKeyCreate'], call: Call = {}) => this.post('/v1/api-keys', { body, ...call }),
    list: () => this.list('/v1/api-keys'),
    revoke: (id: string, call: Call = {}) => this.post('/v1/api-keys/{id}/revoke', { path: { id }, ...call }),
  };
}
