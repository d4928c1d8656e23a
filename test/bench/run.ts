/**
 * `npm run bench`: runs every benchmark of this folder (each `*.ts` but this one), each in its own Node process so
 * one bench's thread pool, heap and connections cannot colour the next. `npm run bench -- pec` runs only those
 * whose file name contains one of the arguments. Benches measure ratios against baselines taken in the same run;
 * they are not tests and `npm test` does not run them.
 */
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const benchDir = fileURLToPath(new URL('.', import.meta.url));
const root = path.resolve(benchDir, '../..');

function runFile(file: string): Promise<number> {
  // tsx's loader flags as this process got them (`tsx test/bench/run.ts`), or tsx's loader when run by plain node.
  const loader = process.execArgv.length > 0 ? process.execArgv : ['--import', 'tsx'];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...loader, path.join(benchDir, file)], { cwd: root, stdio: 'inherit', env: process.env });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

async function main(): Promise<number> {
  const filters = process.argv.slice(2);
  const benches = readdirSync(benchDir)
    .filter((f) => f.endsWith('.ts') && f !== 'run.ts' && !f.endsWith('.d.ts'))
    .filter((f) => filters.length === 0 || filters.some((word) => f.includes(word)))
    .sort();
  if (benches.length === 0) throw new Error(`no bench matches ${filters.join(', ')}`);
  let failed = 0;
  for (const file of benches) {
    process.stdout.write(`\n=== bench ${file} ===\n`);
    const code = await runFile(file);
    if (code !== 0) {
      failed++;
      process.stdout.write(`bench ${file} failed (exit ${code})\n`);
    }
  }
  return failed > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
