export * from './partners.ts';
export * from './customers.ts';
export * from './credit.ts';
export * from './idempotency.ts';
