import { sql } from 'drizzle-orm';
import { Type } from 'typebox';
import type { App, AppDeps } from '../../deps.ts';
import { ProblemError } from '../../http/problem.ts';

const Health = Type.Object(
  { status: Type.Literal('ok'), database: Type.Literal('ok'), time: Type.String({ format: 'date-time' }) },
  { title: 'Health' },
);

export async function systemRoutes(app: App, { db, clock }: AppDeps): Promise<void> {
  app.get('/healthz', {
    config: { public: true, rateLimit: false },
    schema: {
      operationId: 'getHealth',
      tags: ['System'],
      summary: 'Liveness and database reachability',
      security: [],
      response: { 200: Health },
    },
  }, async () => {
    try {
      await db.execute(sql`select 1`);
    } catch {
      throw new ProblemError(503, 'database_unavailable', 'Service unavailable', 'The database does not answer.', {}, { 'retry-after': '5' });
    }
    return { status: 'ok' as const, database: 'ok' as const, time: clock.now().toISOString() };
  });
}
