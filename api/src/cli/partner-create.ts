import { parseArgs } from 'node:util';
import { openDatabase } from '../bootstrap.ts';
import { systemClock } from '../clock.ts';
import { ConfigError, loadConfig } from '../config.ts';
import { createPartner } from '../modules/partners/service.ts';

/** `npm run partner:create -- --name "Acme Reseller"`: prints the new partner's id and its secret key. */
async function run(): Promise<void> {
  const { values } = parseArgs({ options: { name: { type: 'string' }, json: { type: 'boolean', default: false } } });
  const name = values.name?.trim();
  if (!name) {
    process.stderr.write('Usage: npm run partner:create -- --name "Partner name" [--json]\n');
    process.exit(2);
  }
  const database = await openDatabase(loadConfig());
  try {
    const { partner, key, secret, testKey, testSecret } = await createPartner(database.db, systemClock, name);
    if (values.json) {
      process.stdout.write(`${JSON.stringify({ partner_id: partner.id, name: partner.name, api_key_id: key.id, secret, test_api_key_id: testKey.id, test_secret: testSecret })}\n`);
    } else {
      process.stdout.write(`Partner ${partner.id} (${partner.name}) created.\nSecret API key (shown only now): ${secret}\nTest API key for the sandbox (shown only now): ${testSecret}\n`);
    }
  } finally {
    await database.close();
  }
}

run().catch((error: unknown) => {
  process.stderr.write(error instanceof ConfigError ? `Configuration error: ${error.message}\n` : `${String(error)}\n`);
  process.exit(1);
});
