/**
 * `npm test`: builds and type-checks every workspace, provides a PostgreSQL server (DATABASE_URL, or an embedded
 * one when unset), runs every tap test file in parallel (each on its own fresh database), then prints the
 * closing line `N passed, N failed` that CI reads.
 */
import { spawn } from 'node:child_process';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { EmbeddedPostgresError, startEmbeddedPostgres, type EmbeddedServer } from '@pec-partner/db';

const root = fileURLToPath(new URL('..', import.meta.url));
const testDir = fileURLToPath(new URL('.', import.meta.url));

function run(command: string, args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv; capture?: boolean }) {
  return new Promise<{ code: number; output: string }>((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', options.capture ? 'pipe' : 'inherit', 'inherit'],
    });
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      process.stdout.write(chunk);
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, output }));
  });
}

async function main(): Promise<number> {
  const files = process.argv.slice(2);
  const build = await run('npx', ['turbo', 'run', 'build', 'typecheck', '--output-logs=errors-only'], { cwd: root });
  if (build.code !== 0) {
    process.stdout.write('\n0 passed, 1 failed\n');
    return 1;
  }

  let embedded: EmbeddedServer | undefined;
  let scratch: string | undefined;
  let databaseUrl = process.env.DATABASE_URL;
  if (!databaseUrl) {
    scratch = await mkdtemp(path.join(os.tmpdir(), 'pec-partner-test-'));
    // mkdtemp makes the folder private; as root the server runs as the postgres user, who must traverse it.
    await chmod(scratch, 0o755);
    embedded = await startEmbeddedPostgres(scratch);
    databaseUrl = embedded.url;
    process.stdout.write(`Tests use an embedded PostgreSQL (set DATABASE_URL to use another server).\n`);
  }
  try {
    // The TAP reporter gives one `ok`/`not ok` line per test of each file, which we count.
    const tap = await run('npx', ['tap', '--reporter=tap', ...files], {
      cwd: testDir,
      // Cheap password hashes: the suite makes thousands (see api/src/passwords.ts); nothing it tests depends on the cost.
      env: { PASSWORD_SCRYPT_COST: '1024', ...process.env, TEST_DATABASE_URL: databaseUrl },
      capture: true,
    });
    const summary = countResults(tap.output);
    const failed = summary.failed + (tap.code !== 0 && summary.failed === 0 ? 1 : 0);
    process.stdout.write(`\n${summary.passed} passed, ${failed} failed${summary.skipped ? `, ${summary.skipped} skipped` : ''}\n`);
    return failed > 0 ? 1 : 0;
  } finally {
    await embedded?.stop();
    if (scratch) await rm(scratch, { recursive: true, force: true });
  }
}

/** Counts the tests inside each file (TAP lines indented one level below the file's own result). */
function countResults(output: string): { passed: number; failed: number; skipped: number } {
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  for (const line of output.split('\n')) {
    const match = /^ {4}(not ok|ok) \d+ - .*?(# (SKIP|TODO).*)?$/.exec(line);
    if (!match) continue;
    if (match[3]) skipped++;
    else if (match[1] === 'ok') passed++;
    else failed++;
  }
  return { passed, failed, skipped };
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    // The embedded server's failures are written for people (PostgreSQL's lines and what to do): no stack trace.
    const explained = error instanceof EmbeddedPostgresError ? `Embedded PostgreSQL: ${error.message}` : undefined;
    process.stderr.write(`${explained ?? (error instanceof Error ? (error.stack ?? error.message) : String(error))}\n`);
    process.stdout.write('\n0 passed, 1 failed\n');
    process.exit(1);
  },
);
