import type { FastifyBaseLogger, FastifyInstance, RawReplyDefaultExpression, RawRequestDefaultExpression, RawServerDefault } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Db } from '@pec-partner/db';
import type { Clock } from './clock.ts';
import type { AppConfig } from './config.ts';
import type { TokenService } from './modules/partners/tokens.ts';

/**
 * Everything a route module may use; tests build it with their own database and clock. Prices are not here: they
 * live in the database (price lists, per partner, versioned) and are resolved with `pricesFor` at each charge.
 */
export interface AppDeps {
  db: Db;
  clock: Clock;
  config: AppConfig;
  tokens: TokenService;
}

export type App = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>;
