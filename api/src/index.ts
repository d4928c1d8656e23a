export { buildApp, type BuildOptions } from './app.ts';
export { ManualClock, systemClock, type Clock } from './clock.ts';
export { loadConfig, ConfigError, type AppConfig } from './config.ts';
export { createPartner } from './modules/partners/service.ts';
export { charge, refund, topUp, getBalance, ledgerTotal } from './modules/credit/service.ts';
export { defaultPriceList } from './modules/credit/prices.ts';
export { hoistTitledSchemas } from './http/openapi.ts';
export type { App } from './deps.ts';
