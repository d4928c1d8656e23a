export { PecPartner } from './resources.js';
export { PecPartnerClient, responseOf, type ClientOptions, type ResponseMeta } from './client.js';
export * from './errors.js';
export { webhooks, WebhookVerificationError, type VerifyOptions, type WebhookEvent, type WebhookHeaders } from './webhooks.js';
export type { components, operations, paths } from './schema.js';
export type { HttpMethod, ListItem, ListPaths, PathsFor, RequestOptions, SuccessBody } from './types.js';

import type { components } from './schema.js';
export type Customer = components['schemas']['Customer'];
export type LedgerEntry = components['schemas']['LedgerEntry'];
export type CreditBalance = components['schemas']['CreditBalance'];
export type Price = components['schemas']['Price'];
export type ApiKey = components['schemas']['ApiKey'];
export type EventType = components['schemas']['EventType'];
export type WebhookEndpoint = components['schemas']['WebhookEndpoint'];
