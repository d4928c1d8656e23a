import { parseArgs } from 'node:util';
import { operatorScopes, type OperatorScope } from '@pec-partner/db';
import { openDatabase } from '../bootstrap.ts';
import { systemClock } from '../clock.ts';
import { ConfigError, loadConfig } from '../config.ts';
import { createOperatorKey } from '../modules/operator/keys.ts';

/**
 * `npm run operator:create-key -- --name "Alice (billing)" --scope full`: prints a new operator key's secret.
 * The way to the first operator key (later ones can be made through `POST /v1/operator/api-keys`); recorded in
 * the audit trail with the actor `cli`.
 */
async function run(): Promise<void> {
  const { values } = parseArgs({
    options: { name: { type: 'string' }, scope: { type: 'string', default: 'read_only' }, json: { type: 'boolean', default: false } },
  });
  const name = values.name?.trim();
  const scope = values.scope as OperatorScope;
  if (!name || !operatorScopes.includes(scope)) {
    process.stderr.write(`Usage: npm run operator:create-key -- --name "Who it is for" --scope ${operatorScopes.join('|')} [--json]\n`);
    process.exit(2);
  }
  const database = await openDatabase(loadConfig());
  try {
    const { key, secret } = await createOperatorKey(database.db, systemClock, { actor: 'cli' }, { name, scope });
    if (values.json) {
      process.stdout.write(`${JSON.stringify({ id: key.id, name: key.name, scope: key.scope, secret })}\n`);
    } else {
      process.stdout.write(`Operator key ${key.id} (${key.name}, scope ${key.scope}) created.\nSecret (shown only now): ${secret}\n`);
    }
  } finally {
    await database.close();
  }
}

run().catch((error: unknown) => {
  process.stderr.write(error instanceof ConfigError ? `Configuration error: ${error.message}\n` : `${String(error)}\n`);
  process.exit(1);
});
