import type { FastifyBaseLogger } from 'fastify';
import type { Db } from '@pec-partner/db';
import type { Clock } from '../clock.ts';
import type { AppConfig } from '../config.ts';

/** Delivers pending webhook deliveries. main.ts starts its workers; tests call drain(). */
export class WebhookDispatcher {
  constructor(_options: { db: Db; clock: Clock; config: AppConfig; log?: FastifyBaseLogger }) {}
  async drain(): Promise<number> { return 0; }
  start(_workers?: number): void {}
  async stop(): Promise<void> {}
}
