import { sql } from 'drizzle-orm';
import { connect, runMigrations, startEmbeddedPostgres, type Database, type EmbeddedOptions, type EmbeddedServer } from '@pec-partner/db';
import type { AppConfig } from './config.ts';

export interface OpenedDatabase extends Database {
  /** Set when this process started the embedded server and must stop it. */
  embedded: EmbeddedServer | undefined;
  url: string;
}

/** DATABASE_URL when set; otherwise the embedded PostgreSQL in DATA_DIR. Migrations run either way. */
export async function openDatabase(config: AppConfig, options: EmbeddedOptions = {}): Promise<OpenedDatabase> {
  const embedded = config.databaseUrl ? undefined : await startEmbeddedPostgres(config.dataDir, options);
  const url = config.databaseUrl ?? embedded!.url;
  await runMigrations(url);
  const database = connect(url);
  return {
    ...database,
    embedded,
    url,
    close: async () => {
      await database.close();
      await embedded?.stop();
    },
  };
}

/** Runs `fn` while holding a database-wide advisory lock, so concurrent starters do one-time work once. */
export async function withStartupLock<T>(database: Database, fn: () => Promise<T>): Promise<T> {
  return database.db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(7265432)`);
    return fn();
  });
}
