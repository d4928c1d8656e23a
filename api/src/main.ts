import { count } from 'drizzle-orm';
import { partners } from '@pec-partner/db';
import { buildApp } from './app.ts';
import { openDatabase, withStartupLock } from './bootstrap.ts';
import { systemClock } from './clock.ts';
import { ConfigError, loadConfig } from './config.ts';
import { createPartner } from './modules/partners/service.ts';
import { adjustCredit } from './modules/operator/partners.ts';
import { createOperatorKey } from './modules/operator/keys.ts';
import { updateAccount } from './modules/account/service.ts';
import { loadPriceList } from './modules/credit/prices.ts';
import { ensureDefaultPriceList } from './modules/credit/price-lists.ts';
import { startSmtpServers } from './pec/smtp-servers.ts';
import { signInToMailbox } from './access/sign-in.ts';
import { startImapServers } from './imap/server.ts';
import { MailboxChanges } from './mailstore/changes.ts';
import { startPop3Servers } from './pop3/server.ts';
import { loadOrCreateTls } from './pec/tls.ts';

/** Longest a SIGINT/SIGTERM shutdown may take: requests drained, workers stopped, connections closed. */
const SHUTDOWN_DEADLINE_MS = 10_000;

async function main(): Promise<void> {
  const config = loadConfig();
  // Read the price list before touching the database, so a bad file fails fast with its own message.
  const prices = loadPriceList(config.pricesFile);
  // main.ts drains requests and stops the embedded server itself on SIGINT/SIGTERM.
  const database = await openDatabase(config, { callerHandlesSignals: true });
  const clock = systemClock;

  // First start on an empty database: a demo partner with a little credit, so the API tour works at once. The
  // credit is what only the provider can give: an operator credit adjustment with its reason, in the audit trail.
  // In development an operator key (full scope) is made too and printed once, for the examples that confirm
  // bank transfers; in production the first operator key comes from `npm run operator:create-key`.
  const demo = await withStartupLock(database, async () => {
    const [row] = await database.db.select({ n: count() }).from(partners);
    if (row!.n > 0) return undefined;
    const created = await createPartner(database.db, clock, 'Demo partner');
    await adjustCredit(database.db, clock, { actor: 'system' }, created.partner.id, { amount: 10_000, reason: 'Demo partner welcome credit (first start)' });
    const operator = config.appEnv === 'development'
      ? await createOperatorKey(database.db, clock, { actor: 'system' }, { name: 'Development operator (first start)', scope: 'full' })
      : undefined;
    // Top-ups are invoiced, and an invoice needs the partner's fiscal data: the demo partner gets placeholder data so
    // it can ask for top-ups. Its welcome credit above is an operator adjustment, not a payment: it has no invoice.
    await updateAccount(database.db, clock, created.partner.id, {
      legal_name: 'Demo Partner S.r.l.',
      vat_number: '01234567897',
      address: { street: 'Via Roma 1', town: 'Milano', postcode: '20121', province: 'MI', country: 'IT' },
      e_invoicing: { sdi_code: '0000000', pec: 'fatture@pec.example.it' },
    });
    return { ...created, operatorSecret: operator?.secret };
  });

  // The default price list holds PRICES_FILE (or the built-in prices): version 1 on the first start, a new version
  // (in force from now) whenever the file changed since; concurrent starts are serialised by an advisory lock.
  const seeded = await ensureDefaultPriceList(database.db, clock, prices);
  const app = await buildApp({ db: database.db, config, clock });
  if (seeded.created && seeded.version > 1) app.log.info({ version: seeded.version }, 'PRICES_FILE changed: recorded a new version of the default price list, in force from now');
  await app.listen({ host: config.host, port: config.port });
  app.jobs.start(config.jobsIntervalSeconds * 1000);
  // Webhook delivery; app.close() (on SIGINT/SIGTERM) stops it after the attempts in flight are recorded.
  app.webhooks.start(config.webhooks.workers);
  // The PEC engine: its identity first (generated on the very first start), then workers and SMTP front ends.
  await app.pec.identity();
  app.pec.startWorkers(config.pec.workers);
  const doorsTls = await loadOrCreateTls(
    { certificateFile: config.pec.smtp.tlsCertificateFile, privateKeyFile: config.pec.smtp.tlsPrivateKeyFile },
    [config.pec.smtp.host === '0.0.0.0' ? 'localhost' : config.pec.smtp.host, ...config.inboundMxHosts],
  );
  const smtp = await startSmtpServers(database.db, app.pec, {
    host: config.pec.smtp.host,
    submissionPort: config.pec.smtp.submissionPort,
    submissionTlsPort: config.pec.smtp.submissionTlsPort,
    inboundPort: config.pec.smtp.inboundPort,
    limits: config.pec.smtp.limits,
    serverName: `mx.${app.pec.serviceDomain}`,
    tls: doorsTls,
  });
  // The holders' mail clients: IMAP and POP3 on the same store, sign-in and certificate as SMTP submission.
  const changes = new MailboxChanges((channel, onNotify) => database.sql.listen(channel, onNotify));
  const imap = await startImapServers(database.db, {
    host: config.pec.smtp.host, port: config.pec.smtp.imapPort, tlsPort: config.pec.smtp.imapTlsPort, tls: doorsTls,
    serverName: `imap.${app.pec.serviceDomain}`, changes, signIn: (attempt) => signInToMailbox(database.db, attempt, undefined, { tokens: app.tokens }), log: app.log,
  });
  const pop3 = await startPop3Servers(database.db, {
    host: config.pec.smtp.host, port: config.pec.smtp.pop3Port, tlsPort: config.pec.smtp.pop3TlsPort, tls: doorsTls,
    serverName: `pop3.${app.pec.serviceDomain}`, log: app.log, signInDeps: { tokens: app.tokens },
  });
  const address = `http://${config.host}:${(app.server.address() as { port: number }).port}`;

  // Signal handlers first: whoever reads the address below may stop us at once.
  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) {
      app.log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    closing = true;
    app.log.info({ signal }, 'shutting down: draining requests');
    // Whatever the database or a slow peer does, the process ends: work cut off here is leased to this process,
    // whose death frees it for other processes at once (see WorkerIdentity).
    setTimeout(() => {
      app.log.error({ deadlineMs: SHUTDOWN_DEADLINE_MS }, 'shutdown deadline passed: exiting with work still in flight');
      process.exit(1);
    }, SHUTDOWN_DEADLINE_MS).unref();
    try {
      await Promise.all([smtp.close(), imap.close(), pop3.close()]);
      await changes.stop();
      await app.close();
      await database.close();
      process.exit(0);
    } catch (error) {
      app.log.error({ err: error }, 'unclean shutdown');
      process.exit(1);
    }
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));

  // The secret goes to the console once, never into the structured logs.
  if (demo) {
    process.stdout.write(
      `\n  Demo partner created: ${demo.partner.id} with €100.00 of credit\n` +
        `  Secret API key (shown only now): ${demo.secret}\n` +
        `  Test API key, for the sandbox (shown only now): ${demo.testSecret}\n\n` +
        `  Try: curl -H "Authorization: Bearer ${demo.secret}" ${address}/v1/credit\n\n` +
        (demo.operatorSecret ? `  Development operator key, scope full (shown only now): ${demo.operatorSecret}\n\n` : ''),
    );
  }
  process.stdout.write(`  SMTP: submission ${config.pec.smtp.host}:${smtp.submissionPort} (STARTTLS) and :${smtp.submissionTlsPort} (TLS), inbound :${smtp.inboundPort}\n`);
  process.stdout.write(`  IMAP: ${config.pec.smtp.host}:${imap.port} (STARTTLS) and :${imap.tlsPort} (TLS); POP3: :${pop3.port} (STLS) and :${pop3.tlsPort} (TLS)\n`);
  process.stdout.write(`  PEC Partner API on ${address}  (docs: ${address}/docs, database: ${database.embedded ? `embedded PostgreSQL in ${database.embedded.clusterDir}` : 'DATABASE_URL'})\n`);
}

main().catch((error: unknown) => {
  if (error instanceof ConfigError) {
    process.stderr.write(`Configuration error: ${error.message}\n`);
  } else if (error instanceof Error && error.name === 'EmbeddedPostgresError') {
    // @pec-partner/db's EmbeddedPostgresError: its message already says what PostgreSQL said and what to do.
    process.stderr.write(`Failed to start: ${error.message}\n`);
  } else {
    process.stderr.write(`Failed to start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  }
  process.exit(1);
});
