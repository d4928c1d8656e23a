import rateLimit from '@fastify/rate-limit';
import Fastify, { LogController, type FastifyServerOptions } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Db } from '@pec-partner/db';
import { systemClock, WorldClock, type Clock } from './clock.ts';
import type { AppConfig } from './config.ts';
import type { App, AppDeps } from './deps.ts';
import { installAuth } from './http/auth.ts';
import { installErrorHandling } from './http/errors.ts';
import { clientErrorHandler, frameworkErrors, installInputHygiene, parseForm } from './http/input-hygiene.ts';
import { missingPathResource } from './http/route-resources.ts';
import { installIdempotency } from './http/idempotency.ts';
import { installLivemode } from './http/livemode.ts';
import { registerOpenApi } from './http/openapi.ts';
import { ProblemError } from './http/problem.ts';
import { installValidators } from './http/validation.ts';
import { newId } from './ids.ts';
import { creditRoutes } from './modules/credit/routes.ts';
import { accountRoutes } from './modules/account/routes.ts';
import { invoiceRoutes } from './modules/invoices/routes.ts';
import { customerRoutes } from './modules/customers/routes.ts';
import { partnerRoutes } from './modules/partners/routes.ts';
import { TokenService } from './modules/partners/tokens.ts';
import { systemRoutes } from './modules/system/routes.ts';
import { domainRoutes } from './modules/domains/routes.ts';
import { mailboxRoutes } from './modules/mailboxes/routes.ts';
import { logRegisterRoutes } from './modules/log-register/routes.ts';
import { addonRoutes } from './modules/addons/routes.ts';
import { brandingRoutes } from './modules/branding/routes.ts';
import { delegationRoutes } from './modules/delegations/routes.ts';
import { newsletterRoutes } from './modules/newsletter/routes.ts';
import { supervisorRoutes } from './modules/supervisors/routes.ts';
import { messageRoutes } from './modules/messages/routes.ts';
import { signInRoutes } from './modules/sign-ins/routes.ts';
import { pecRoutes } from './modules/pec/routes.ts';
import { PecEngine } from './pec/engine.ts';
import type { VirusScanner } from './pec/virus-scanner.ts';
import { Scheduler } from './jobs/scheduler.ts';
import { installRequestContext } from './events/request-context.ts';
import { eventRoutes } from './modules/events/routes.ts';
import { webhookRoutes } from './modules/webhooks/routes.ts';
import { testHelperRoutes } from './modules/test-helpers/routes.ts';
import { WebhookDispatcher } from './webhooks/dispatcher.ts';
import { productTasks } from './jobs/tasks.ts';
import { operatorRoutes } from './modules/operator/routes.ts';
import { paymentRoutes } from './modules/payments/routes.ts';
import { installWorldTime, TestClockRunner } from './modules/test-clocks/service.ts';
import { testClockRoutes } from './modules/test-clocks/routes.ts';

declare module 'fastify' {
  interface FastifyInstance {
    /** Periodic work; main.ts starts its timer, tests call jobs.tick() after moving the clock. */
    jobs: Scheduler;
    /** The PEC engine; main.ts starts its workers and SMTP servers, tests call pec.drain(). */
    pec: PecEngine;
    /** Webhook delivery; main.ts starts its workers, tests call webhooks.drain(). */
    webhooks: WebhookDispatcher;
    /** Test clocks' advances; they run in the background, tests call testClocks.drain(). */
    testClocks: TestClockRunner;
    /** Signs and verifies the API's tokens; the mail doors check supervisors' mailbox sessions with it. */
    tokens: TokenService;
  }
}

export interface BuildOptions {
  db: Db;
  config: AppConfig;
  clock?: Clock;
  logger?: FastifyServerOptions['logger'];
  scanner?: VirusScanner;
}

/** The whole HTTP application, not listening: main.ts listens, tests use inject() or listen on port 0. */
export async function buildApp(options: BuildOptions): Promise<App> {
  const { db, config } = options;
  // Real time: what infrastructure reads (tokens, idempotency, rate of work, PEC engine, webhooks, the scheduler).
  const clock = options.clock ?? systemClock;
  const tokens = new TokenService(db, clock, config.publicUrl, config.oauthTokenTtlSeconds);
  // Prices are in the database (price lists): the start-up (main.ts, or a test's harness) seeds the default list
  // with ensureDefaultPriceList before serving; building the app itself touches no data.
  // What services read: real time, or a test world's frozen time while serving it (test clocks).
  const deps: AppDeps = { db, clock: new WorldClock(clock), config, tokens };
  // Modules whose times must agree with processes that know no world: keys, events and webhooks, the operator.
  const realDeps: AppDeps = { ...deps, clock };

  const app = Fastify({
    logger: options.logger ?? {
      level: config.logLevel,
      redact: { paths: ['req.headers.authorization', 'req.headers.cookie'], remove: true },
    },
    genReqId: () => newId('req'),
    // Request ids are ours: a client-sent one could collide or be forged into our logs.
    requestIdHeader: false,
    // Fastify's two lines per request are replaced by our single onResponse line.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 1024 * 1024,
    routerOptions: { ignoreTrailingSlash: true },
    ajv: { customOptions: { removeAdditional: false } },
    // Refusals made before any route is found, and requests Node's parser rejects, answer as problems too.
    frameworkErrors,
    clientErrorHandler,
  }).withTypeProvider<TypeBoxTypeProvider>();

  installValidators(app);
  installErrorHandling(app, { missingPathResource: (request) => missingPathResource(db, request) });
  // The API speaks JSON only: a text/plain body is a 415, not a string to validate.
  app.removeContentTypeParser('text/plain');
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_request, body, done) => {
    try {
      done(null, parseForm(String(body)));
    } catch (error) {
      done(error as Error, undefined);
    }
  });
  app.addHook('onRequest', async (request, reply) => {
    reply.header('request-id', request.id);
  });
  // One log line per request, without bodies or credentials.
  app.addHook('onResponse', async (request, reply) => {
    request.log.info(
      {
        method: request.method,
        url: request.url.split('?')[0],
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime),
        partner: request.principal?.partnerId,
        operator_key: request.operator?.keyId,
      },
      'request',
    );
  });

  await registerOpenApi(app);
  // Before any route is registered: it adds `livemode` to every resource in the response schemas.
  installLivemode(app);
  // Before authentication: nothing that cannot be valid input reaches a lookup.
  installInputHygiene(app);
  installAuth(app, db, clock, tokens);
  await app.register(rateLimit, {
    global: true,
    max: config.rateLimitPerMinute,
    timeWindow: 60_000,
    // After authentication (onRequest) so the limit is per API key; before the body is read.
    hook: 'preParsing',
    keyGenerator: (request) => request.principal?.apiKeyId ?? request.operator?.keyId ?? (request.holder ? `holder:${request.holder.mailboxId}` : `ip:${request.ip}`),
    errorResponseBuilder: (_request, context) => {
      const seconds = Math.max(1, Math.ceil(context.ttl / 1000));
      return new ProblemError(429, 'rate_limited', 'Too many requests',
        `At most ${context.max} requests per minute per API key; retry in ${seconds} s.`, {}, { 'retry-after': String(seconds) });
    },
  });
  installIdempotency(app, db, clock, config.idempotencyTtlHours);
  // After idempotency's hooks are registered is fine: this one wraps the handler, which is where events are written.
  installRequestContext(app);
  // After it, as a preHandler too: the whole handler of a test-mode request runs at its world's time.
  installWorldTime(app, db);

  const engine = new PecEngine({ db, clock, config, log: app.log, scanner: options.scanner });
  const pecDeps = { ...deps, engine };
  const webhooks = new WebhookDispatcher({ db, clock, config, log: app.log });
  const testClocks = new TestClockRunner({ ...deps, engine, log: app.log });
  await app.register(async (scope) => {
    // Raw messages (.eml uploads, messages to verify) up to the engine's size limit.
    scope.addContentTypeParser('message/rfc822', { parseAs: 'buffer', bodyLimit: config.pec.maxTotalBytes + 1024 }, (_request, body, done) => done(null, body));
    await systemRoutes(scope as App, deps);
    await partnerRoutes(scope as App, realDeps);
    await customerRoutes(scope as App, deps);
    await creditRoutes(scope as App, deps);
    await accountRoutes(scope as App, deps);
    await invoiceRoutes(scope as App, deps);
    await domainRoutes(scope as App, deps);
    await mailboxRoutes(scope as App, deps);
    await addonRoutes(scope as App, deps);
    await delegationRoutes(scope as App, pecDeps);
    await supervisorRoutes(scope as App, pecDeps);
    await brandingRoutes(scope as App, pecDeps);
    await newsletterRoutes(scope as App, pecDeps);
    await messageRoutes(scope as App, pecDeps);
    await signInRoutes(scope as App, deps);
    await logRegisterRoutes(scope as App, deps);
    await pecRoutes(scope as App, pecDeps);
    await eventRoutes(scope as App, realDeps);
    await webhookRoutes(scope as App, { ...realDeps, webhooks });
    // Encapsulated inside: Stripe's webhook keeps its body raw (the signature covers the exact bytes).
    await paymentRoutes(scope as App, deps);
    await testHelperRoutes(scope as App, deps);
    await testClockRoutes(scope as App, { ...deps, testClocks });
    // Encapsulated: the XML body parser (CAMT.053 statements) exists on the operator routes only.
    await scope.register(async (operatorScope) => operatorRoutes(operatorScope as App, realDeps));
  });

  const jobs = new Scheduler(db, clock, [...productTasks(deps), testClocks.task()], app.log);
  app.decorate('jobs', jobs);
  app.decorate('pec', engine);
  app.decorate('webhooks', webhooks);
  app.decorate('testClocks', testClocks);
  app.decorate('tokens', tokens);
  app.addHook('onClose', async () => {
    jobs.stop();
    await engine.stop();
    await webhooks.stop();
    await testClocks.stop();
  });
  return app;
}
