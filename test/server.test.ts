import { spawn, execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t from 'tap';
import { freshDatabase } from './helpers/database.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const run = promisify(execFile);

/**
 * The environment of a real start: without tap's NODE_OPTIONS, whose process-tracking hooks install their own
 * signal handlers and would turn our graceful SIGTERM exit into a re-raised signal.
 */
const cleanEnv = (): NodeJS.ProcessEnv =>
  Object.fromEntries(Object.entries(process.env).filter(([name]) => name !== 'NODE_OPTIONS' && !name.startsWith('TAP')));

interface Started {
  url: string;
  output: () => string;
  exit: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Runs the real entry point (what `npm start` runs) and waits for it to print its address. */
function startServer(env: Record<string, string>): Promise<Started> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'api/src/main.ts'], {
    cwd: root,
    env: { ...cleanEnv(), PORT: '0', PEC_SUBMISSION_PORT: '0', PEC_SUBMISSION_TLS_PORT: '0', PEC_INBOUND_PORT: '0', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /PEC Partner API on (http:\/\/\S+)/.exec(output);
      if (match) {
        resolve({
          url: match[1]!,
          output: () => output,
          exit,
          stop: (signal = 'SIGTERM') => {
            child.kill(signal);
            return exit;
          },
        });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    void exit.then((code) => reject(new Error(`server exited with ${code} before listening:\n${output}`)));
  });
}

t.test('npm start: migrates, bootstraps one demo partner once, serves, shuts down gracefully', async (t) => {
  const db = await freshDatabase();
  t.teardown(db.drop);

  const first = await startServer({ DATABASE_URL: db.url });
  const key = /Secret API key \(shown only now\): (sk_live_\w+)/.exec(first.output())?.[1];
  t.ok(key, 'the demo key is printed once');
  const credit = await fetch(`${first.url}/v1/credit`, { headers: { authorization: `Bearer ${key}` } });
  t.equal(credit.status, 200);
  t.equal(((await credit.json()) as { balance: number }).balance, 10_000, 'the demo partner starts with €100.00');
  const logLines = first.output().split('\n').filter((line) => line.startsWith('{'));
  t.ok(logLines.length > 0);
  t.notOk(logLines.some((line) => line.includes(key!)), 'the key never appears in a structured log line');
  t.match(first.output(), /SMTP: submission 127\.0\.0\.1:\d+ \(STARTTLS\) and :\d+ \(TLS\), inbound :\d+/, 'the SMTP front ends listen');
  const firstCa = await (await fetch(`${first.url}/v1/pec/ca-certificate`)).text();
  t.match(firstCa, /^-----BEGIN CERTIFICATE-----/, 'the provider identity exists from the first start');

  t.equal(await first.stop('SIGTERM'), 0, 'exits 0 after closing the server and the database pool');
  t.match(first.output(), /shutting down: draining requests/);

  const second = await startServer({ DATABASE_URL: db.url });
  t.notMatch(second.output(), /Demo partner created/, 'a second start creates no second demo partner');
  t.equal(await (await fetch(`${second.url}/v1/pec/ca-certificate`)).text(), firstCa, 'a restart keeps the provider identity');
  t.equal(await second.stop('SIGINT'), 0);
});

t.test('configuration errors stop the server with a message naming the variable', async (t) => {
  for (const [env, message] of [
    [{ PORT: 'eighty' }, /Configuration error: PORT must be an integer between 0 and 65535; got 'eighty'\./],
    [{ DATABASE_URL: 'mysql://x' }, /Configuration error: DATABASE_URL must be a postgres:\/\/ URL/],
    [{ LOG_LEVEL: 'loud' }, /Configuration error: LOG_LEVEL must be one of/],
    [{ RATE_LIMIT_PER_MINUTE: '0' }, /RATE_LIMIT_PER_MINUTE must be an integer between 1/],
    [{ PRICES_FILE: '/nonexistent/prices.json', DATABASE_URL: 'postgres://unused@127.0.0.1:1/x' }, /PRICES_FILE '\/nonexistent\/prices.json' could not be read/],
  ] as const) {
    const result = await run(process.execPath, ['--import', 'tsx', 'api/src/main.ts'], { cwd: root, env: { ...cleanEnv(), ...env } }).then(
      () => ({ code: 0, stderr: '' }),
      (error: { code: number; stderr: string }) => error,
    );
    t.equal(result.code, 1, JSON.stringify(env));
    t.match(result.stderr, message);
  }
});

t.test('partner:create makes a partner whose key works', async (t) => {
  const db = await freshDatabase();
  t.teardown(db.drop);
  const { stdout } = await run(process.execPath, ['--import', 'tsx', 'api/src/cli/partner-create.ts', '--name', 'Acme Reseller', '--json'], {
    cwd: root, env: { ...cleanEnv(), DATABASE_URL: db.url },
  });
  const created = JSON.parse(stdout);
  t.match(created, { partner_id: /^ptn_/, name: 'Acme Reseller', secret: /^sk_live_/ });
  const server = await startServer({ DATABASE_URL: db.url });
  t.teardown(() => server.stop());
  const response = await fetch(`${server.url}/v1/credit`, { headers: { authorization: `Bearer ${created.secret}` } });
  t.equal(response.status, 200);

  const usage = await run(process.execPath, ['--import', 'tsx', 'api/src/cli/partner-create.ts'], { cwd: root, env: { ...cleanEnv(), DATABASE_URL: db.url } }).catch((e) => e);
  t.equal(usage.code, 2);
  t.match(usage.stderr, /Usage: npm run partner:create -- --name/);
});
