import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import postgres from 'postgres';
import { migrationsFolder, runMigrations } from '@pec-partner/db';

/** The server the test run uses: test/run.ts sets TEST_DATABASE_URL (from DATABASE_URL or an embedded server). */
export function serverUrl(): string {
  const url = process.env.TEST_DATABASE_URL ?? process.env.DATABASE_URL;
  if (!url) throw new Error('Run the tests with `npm test` (it provides a database), or set DATABASE_URL.');
  return url;
}

function withDatabase(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

/** Named after the migrations' content, so a changed migration gets a fresh template. */
function templateName(): string {
  const hash = createHash('sha256');
  for (const file of readdirSync(migrationsFolder).sort()) {
    if (file.endsWith('.sql')) hash.update(file).update(readFileSync(path.join(migrationsFolder, file)));
  }
  return `pec_template_${hash.digest('hex').slice(0, 16)}`;
}

/**
 * A fresh, migrated database for one test file: copied from a template that is migrated once per run
 * (CREATE DATABASE … TEMPLATE is a file copy, far faster than migrating each time).
 */
export async function freshDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const base = serverUrl();
  const admin = postgres(base, { max: 1, onnotice: () => {} });
  const template = templateName();
  const name = `pec_test_${randomBytes(6).toString('hex')}`;
  try {
    await admin`select pg_advisory_lock(7265433)`;
    try {
      const [exists] = await admin`select 1 from pg_database where datname = ${template}`;
      if (!exists) {
        const building = `${template}_building`;
        await admin.unsafe(`drop database if exists "${building}"`);
        await admin.unsafe(`create database "${building}"`);
        await runMigrations(withDatabase(base, building));
        // Renamed only once complete, so an interrupted build never becomes a template.
        await admin.unsafe(`alter database "${building}" rename to "${template}"`);
      }
      await admin.unsafe(`create database "${name}" template "${template}"`);
    } finally {
      await admin`select pg_advisory_unlock(7265433)`;
    }
  } finally {
    await admin.end();
  }
  return {
    url: withDatabase(base, name),
    drop: async () => {
      const sql = postgres(base, { max: 1, onnotice: () => {} });
      try {
        await sql.unsafe(`drop database if exists "${name}" with (force)`);
      } finally {
        await sql.end();
      }
    },
  };
}
