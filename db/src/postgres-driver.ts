import { readFileSync } from 'node:fs';
import Module, { createRequire } from 'node:module';
import path from 'node:path';
import type postgresType from 'postgres';

/**
 * postgres.js, with three fixes its latest release (3.4.9) lacks, each of which ended or wedged the process when
 * PostgreSQL was killed under load. Two are in its write scheduler (porsager/postgres issues #1066, #1154, #1208;
 * fixes proposed in PRs #1168, #1176, #1209, unmerged). Small writes wait for a setImmediate; when the socket
 * closes first:
 *
 * - a write issued after the close (the ROLLBACK postgres.js itself sends when a transaction's connection died
 *   under it) runs `socket.write` on null inside the immediate: an uncatchable TypeError that ends the process.
 *   Killing PostgreSQL under load did exactly that, at once. The patched write fails the query with
 *   CONNECTION_CLOSED instead, like any other query on a closed connection.
 * - the teardown cancels the immediate but keeps its handle and the buffered bytes, so the connection never
 *   schedules a write again (every later connection attempt on it hangs until connect_timeout), or sends a dead
 *   session's bytes into the next one. The patched teardown drops both.
 *
 * The third (issues #279, #1192, #1205, #1223): every new connection first reads the array types from the catalog
 * and drops that promise; when the connection dies or the query fails meanwhile (a server coming back from a
 * crash), the rejection is unhandled and Node ends the process. The patched call handles it: the connection's own
 * close or error handling already fails or retries the query that was waiting for the connection.
 *
 * The fixes are applied to the package's CommonJS build as it is loaded; when the expected code is no longer
 * there (a release that fixed it), the package is used as it is, and test/database-outage.test.ts tells whether
 * the crash is back.
 */
const FIXES: { before: string; after: string; occurrences: number }[] = [
  {
    before: '  function nextWrite(fn) {\n    const x = socket.write(chunk, fn)\n',
    after:
      '  function nextWrite(fn) {\n' +
      '    if (socket === null) {\n' +
      '      nextWriteTimer !== null && clearImmediate(nextWriteTimer)\n' +
      '      chunk = nextWriteTimer = null\n' +
      "      error(Errors.connection('CONNECTION_CLOSED', options))\n" +
      '      return false\n' +
      '    }\n' +
      '    const x = socket.write(chunk, fn)\n',
    occurrences: 1,
  },
  {
    before: '    clearImmediate(nextWriteTimer)\n',
    after: '    clearImmediate(nextWriteTimer)\n    chunk = nextWriteTimer = null\n',
    occurrences: 2,
  },
  {
    before: '        return fetchArrayTypes()\n',
    after: '        return fetchArrayTypes().catch(() => {})\n',
    occurrences: 1,
  },
];

type Postgres = typeof postgresType;

function loadPostgres(): Postgres {
  const requireHere = createRequire(import.meta.url);
  // The CommonJS entry (exports' "default" condition), whose modules go through require.cache.
  const entry = requireHere.resolve('postgres');
  const connectionFile = path.join(path.dirname(entry), 'connection.js');
  const original = readFileSync(connectionFile, 'utf8');
  const found = FIXES.map((fix) => original.split(fix.before).length - 1);
  if (found.every((count) => count === 0)) return requireHere('postgres') as Postgres;
  if (found.some((count, i) => count !== FIXES[i]!.occurrences)) {
    throw new Error(`postgres.js changed (${connectionFile}): review the fixes in db/src/postgres-driver.ts`);
  }
  const patched = FIXES.reduce((source, fix) => source.replaceAll(fix.before, fix.after), original);
  const compiled = new Module(connectionFile) as Module & { _compile(source: string, filename: string): void };
  compiled.filename = connectionFile;
  compiled.paths = (Module as unknown as { _nodeModulePaths(dir: string): string[] })._nodeModulePaths(path.dirname(connectionFile));
  compiled._compile(patched, connectionFile);
  compiled.loaded = true;
  // The package's index requires './connection.js': it finds this module in the cache.
  requireHere.cache[connectionFile] = compiled;
  return requireHere('postgres') as Postgres;
}

const postgres: Postgres = loadPostgres();
export default postgres;
