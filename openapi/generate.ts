/**
 * Writes openapi.json from the running route schemas. The app is built against a database URL that is never
 * contacted: producing the document touches no data. `--check` fails instead of writing when the committed
 * file differs (the drift test runs it).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { buildApp, loadConfig } from '@pec-partner/api';
import { connect } from '@pec-partner/db';

export const documentPath = fileURLToPath(new URL('./openapi.json', import.meta.url));

export async function renderDocument(): Promise<string> {
  const database = connect('postgres://unused@127.0.0.1:1/unused', { max: 1 });
  const app = await buildApp({
    db: database.db,
    config: loadConfig({ LOG_LEVEL: 'silent', PUBLIC_URL: 'https://api.pec-partner.example' }),
    logger: false,
  });
  try {
    await app.ready();
    return `${JSON.stringify(app.swagger(), null, 2)}\n`;
  } finally {
    await app.close();
    await database.close();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const rendered = await renderDocument();
  if (process.argv.includes('--check')) {
    const committed = await readFile(documentPath, 'utf8').catch(() => '');
    if (committed !== rendered) {
      process.stderr.write('openapi/openapi.json is out of date: run `npm run openapi` and commit the result.\n');
      process.exit(1);
    }
  } else {
    await writeFile(documentPath, rendered);
    process.stdout.write(`wrote ${documentPath}\n`);
  }
}
