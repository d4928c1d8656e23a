import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Db } from '@pec-partner/db';
import type { MailboxOperation } from '../access/modes.ts';
import type { HolderPrincipal } from '../access/principals.ts';
import { signInToRestRoute } from '../access/sign-in.ts';
import { authenticateMailboxSession } from '../access/supervisor-sessions.ts';
import { realNow, type Clock } from '../clock.ts';
import { authenticateSecret, isKeyActive, isPartnerSecret, type Principal } from '../modules/partners/service.ts';
import type { TokenService } from '../modules/partners/tokens.ts';
import { assertMayPerform } from './mailbox-access.ts';
import { ProblemError } from './problem.ts';
import { testModeOnly } from '../sandbox/test-mode.ts';
import type { OperatorScope } from '@pec-partner/db';
import { authenticateOperatorSecret, OPERATOR_KEY_PREFIX, scopeAllows, type OperatorPrincipal } from '../modules/operator/keys.ts';
import type { AuditActorRef } from '../modules/operator/audit.ts';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
    holder: HolderPrincipal | null;
    /** The provider's operator, on `callers: 'operator'` routes only. */
    operator: OperatorPrincipal | null;
  }
  interface FastifyContextConfig {
    /** Routes that answer without credentials (health, docs, token exchange, JWKS). */
    public?: boolean;
    /**
     * Who may call: partners (API key or token, the default), mailbox holders (HTTP Basic with the mailbox
     * address and password), or either.
     */
    callers?: 'partner' | 'holder' | 'partner_or_holder' | 'operator';
    /**
     * Sandbox-only operations (test helpers, test clocks): a live key or token is refused here, 403 `test_mode_only`,
     * before ids are looked up or the body is read, whatever else is wrong with the request.
     */
    testModeOnly?: boolean;
    /** On operator routes: the least scope the operator key must have (`read_only` < `billing` < `full`). */
    operatorScope?: OperatorScope;
    /**
     * On holder routes: the mailbox operation the route performs. Delegates and supervisor sessions are checked
     * against it here (their mode); a holder route that declares none is for the holder alone.
     */
    mailboxOperation?: MailboxOperation;
  }
}

const unauthorized = (code: string, detail: string): ProblemError =>
  new ProblemError(401, code, 'Authentication required', detail, {}, { 'www-authenticate': 'Bearer realm="pec-partner"' });

/** The authenticated partner of a request; routes behind auth can rely on it. */
export function partnerOf(request: FastifyRequest): Principal {
  if (!request.principal) throw unauthorized('authentication_required', 'This endpoint needs credentials.');
  return request.principal;
}

/** The authenticated mailbox holder of a request on a holder route. */
export function holderOf(request: FastifyRequest): HolderPrincipal {
  if (!request.holder) throw unauthorized('authentication_required', 'This endpoint needs the mailbox credentials.');
  return request.holder;
}

const forbidden = (code: string, detail: string, extensions: Record<string, unknown> = {}): ProblemError =>
  new ProblemError(403, code, 'Forbidden', detail, extensions);

/** The operator of a request on an operator route, checked again against the scope the handler needs. */
export function operatorOf(request: FastifyRequest, scope: OperatorScope): OperatorPrincipal {
  const operator = request.operator;
  if (!operator) throw unauthorized('authentication_required', 'This endpoint needs an operator API key (`sk_op_…`).');
  if (!scopeAllows(operator.scope, scope)) {
    throw forbidden('insufficient_scope', `This operation needs an operator key with the '${scope}' scope or wider; this key has '${operator.scope}'.`,
      { required_scope: scope, scope: operator.scope });
  }
  return operator;
}

/** The audit trail's name for the operator acting in a request. */
export function auditActorOf(operator: OperatorPrincipal): AuditActorRef {
  return { actor: 'operator_key', operatorKeyId: operator.keyId };
}

const holderUnauthorized = (code: string, detail: string): ProblemError =>
  new ProblemError(401, code, 'Authentication required', detail, {}, { 'www-authenticate': 'Basic realm="pec-partner mailbox", charset="UTF-8"' });

/**
 * The shared lock-out (see access/login-guard.ts): too many failed sign-ins for the user name, or from the address,
 * at any door. Temporary, so 429 with the time the lock lifts.
 */
const tooManySignInAttempts = (seconds: number): ProblemError =>
  new ProblemError(429, 'too_many_sign_in_attempts', 'Too many requests',
    `Too many failed sign-ins for this user name or from this address; try again in ${seconds} s.`, {}, { 'retry-after': String(seconds) });

/**
 * Delegates and supervisor sessions may only perform what their mode allows, on the operation the route declares
 * (none declared: holder only). On another mailbox's URL the route answers 404 as for anyone.
 */
function authorizeActor(request: FastifyRequest, holder: HolderPrincipal, routeMailbox: string | undefined): HolderPrincipal {
  if (routeMailbox !== undefined && routeMailbox !== holder.mailboxId) return holder;
  assertMayPerform(holder.actor, request.routeOptions.config.mailboxOperation, `${request.method} ${request.routeOptions.url}`);
  return holder;
}

/** A live principal on a sandbox-only route is refused before anything else is looked at. */
function inRouteWorld(request: FastifyRequest, principal: Principal): Principal {
  if (request.routeOptions.config.testModeOnly && principal.livemode) {
    throw testModeOnly();
  }
  return principal;
}

export function installAuth(app: FastifyInstance, db: Db, clock: Clock, tokens: TokenService): void {
  /**
   * Operator routes take operator keys only. A valid partner key or token there is a 403 (authenticated, not
   * allowed); anything unknown is a 401. The route's scope is checked here, before the body is read.
   */
  const authenticateOperator = async (request: FastifyRequest, header: string | undefined): Promise<OperatorPrincipal> => {
    if (!header) throw unauthorized('authentication_required', 'Send `Authorization: Bearer <operator API key sk_op_…>`.');
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match) throw unauthorized('invalid_authorization_header', 'The Authorization header must be `Bearer <operator API key>`.');
    const credential = match[1]!;
    if (credential.startsWith(OPERATOR_KEY_PREFIX)) {
      const operator = await authenticateOperatorSecret(db, clock, credential);
      if (!operator) throw unauthorized('invalid_api_key', 'The operator API key is unknown or has been revoked.');
      const required = request.routeOptions.config.operatorScope ?? 'full';
      request.operator = operator;
      operatorOf(request, required);
      return operator;
    }
    const partner = isPartnerSecret(credential)
      ? await authenticateSecret(db, clock, credential).catch(() => null)
      : await tokens.verify(credential);
    if (partner) throw forbidden('operator_credentials_required', "Partner keys and tokens cannot use the operator API; it needs an operator key (`sk_op_…`).");
    throw unauthorized('invalid_api_key', 'The operator API key is unknown or has been revoked.');
  };

  app.decorateRequest('principal', null);
  app.decorateRequest('holder', null);
  app.decorateRequest('operator', null);
  app.addHook('onRequest', async (request) => {
    // Unknown routes answer 404 whoever asks; public routes and the API docs need no credentials.
    const url = request.routeOptions.url;
    if (!url || request.routeOptions.config.public || url === '/docs' || url.startsWith('/docs/')) return;
    const header = request.headers.authorization;
    const callers = request.routeOptions.config.callers ?? 'partner';
    const mailboxId = (request.params as { id?: unknown } | undefined)?.id;
    const routeMailbox = typeof mailboxId === 'string' ? mailboxId : undefined;
    if (callers === 'operator') {
      request.operator = await authenticateOperator(request, header);
      return;
    }
    const session = /^Bearer\s+(mbs_\S+)\s*$/i.exec(header ?? '');
    if (callers !== 'partner' && session) {
      // A supervisor's mailbox session (from a single-use sign-in link).
      const holder = await authenticateMailboxSession(db, tokens, session[1]!);
      if (!holder) throw unauthorized('invalid_mailbox_session', 'The mailbox session is invalid or expired, or the supervision has ended.');
      request.holder = authorizeActor(request, holder, routeMailbox);
      return;
    }
    if (callers !== 'partner' && (callers === 'holder' || /^Basic\s/i.test(header ?? ''))) {
      const basic = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? '');
      if (!basic) throw holderUnauthorized('authentication_required', 'Send `Authorization: Basic <base64 of address:password>` with the mailbox credentials.');
      const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      // Through the lock-out every door shares: a locked user name or address is refused before its password is checked.
      const signIn = await signInToRestRoute(db, {
        user: colon >= 0 ? decoded.slice(0, colon) : decoded,
        password: colon >= 0 ? decoded.slice(colon + 1) : '',
        remoteAddress: request.ip,
      }, routeMailbox, realNow(clock));
      if (signIn.outcome === 'locked_out') throw tooManySignInAttempts(signIn.retryAfterSeconds);
      if (signIn.outcome !== 'succeeded') throw holderUnauthorized('invalid_mailbox_credentials', 'The mailbox address or password is wrong, or the mailbox cannot be used.');
      request.holder = authorizeActor(request, signIn.principal, routeMailbox);
      return;
    }
    if (!header) {
      throw unauthorized('authentication_required', 'Send `Authorization: Bearer <secret API key or access token>`.');
    }
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match) throw unauthorized('invalid_authorization_header', 'The Authorization header must be `Bearer <token>`.');
    const credential = match[1]!;
    if (credential.startsWith(OPERATOR_KEY_PREFIX)) {
      if (!(await authenticateOperatorSecret(db, clock, credential))) throw unauthorized('invalid_api_key', 'The API key is unknown or has been revoked.');
      throw forbidden('partner_credentials_required', "Operator keys work on the operator API (`/v1/operator/…`) only; this endpoint needs a partner's key or token.");
    }
    if (isPartnerSecret(credential)) {
      const principal = await authenticateSecret(db, clock, credential);
      if (!principal) throw unauthorized('invalid_api_key', 'The API key is unknown or has been revoked.');
      request.principal = inRouteWorld(request, principal);
      return;
    }
    const principal = await tokens.verify(credential);
    if (!principal || !(await isKeyActive(db, principal.partnerId, principal.apiKeyId))) {
      throw unauthorized('invalid_token', 'The access token is invalid, expired, or its API key was revoked.');
    }
    request.principal = inRouteWorld(request, principal);
  });
}
