import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Db } from '@pec-partner/db';
import type { Clock } from '../clock.ts';
import { API_KEY_PREFIX, authenticateSecret, isKeyActive, type Principal } from '../modules/partners/service.ts';
import type { TokenService } from '../modules/partners/tokens.ts';
import { assertMayPerform, type MailboxOperation } from '../modules/delegations/modes.ts';
import { authenticateMailboxUser, type HolderPrincipal } from '../modules/messages/holders.ts';
import { authenticateMailboxSession } from '../modules/supervisors/sessions.ts';
import { ProblemError } from './problem.ts';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
    holder: HolderPrincipal | null;
  }
  interface FastifyContextConfig {
    /** Routes that answer without credentials (health, docs, token exchange, JWKS). */
    public?: boolean;
    /**
     * Who may call: partners (API key or token, the default), mailbox holders (HTTP Basic with the mailbox
     * address and password), or either.
     */
    callers?: 'partner' | 'holder' | 'partner_or_holder';
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

const holderUnauthorized = (code: string, detail: string): ProblemError =>
  new ProblemError(401, code, 'Authentication required', detail, {}, { 'www-authenticate': 'Basic realm="pec-partner mailbox", charset="UTF-8"' });

/**
 * Delegates and supervisor sessions may only perform what their mode allows, on the operation the route declares
 * (none declared: holder only). On another mailbox's URL the route answers 404 as for anyone.
 */
function authorizeActor(request: FastifyRequest, holder: HolderPrincipal, routeMailbox: string | undefined): HolderPrincipal {
  if (routeMailbox !== undefined && routeMailbox !== holder.mailboxId) return holder;
  assertMayPerform(holder.actor, request.routeOptions.config.mailboxOperation, `${request.method} ${request.routeOptions.url}`);
  return holder;
}

export function installAuth(app: FastifyInstance, db: Db, clock: Clock, tokens: TokenService): void {
  app.decorateRequest('principal', null);
  app.decorateRequest('holder', null);
  app.addHook('onRequest', async (request) => {
    // Unknown routes answer 404 whoever asks; public routes and the API docs need no credentials.
    const url = request.routeOptions.url;
    if (!url || request.routeOptions.config.public || url === '/docs' || url.startsWith('/docs/')) return;
    const header = request.headers.authorization;
    const callers = request.routeOptions.config.callers ?? 'partner';
    const mailboxId = (request.params as { id?: unknown } | undefined)?.id;
    const routeMailbox = typeof mailboxId === 'string' ? mailboxId : undefined;
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
      const holder = colon > 0 ? await authenticateMailboxUser(db, decoded.slice(0, colon), decoded.slice(colon + 1), routeMailbox) : null;
      if (!holder) throw holderUnauthorized('invalid_mailbox_credentials', 'The mailbox address or password is wrong, or the mailbox cannot be used.');
      request.holder = authorizeActor(request, holder, routeMailbox);
      return;
    }
    if (!header) {
      throw unauthorized('authentication_required', 'Send `Authorization: Bearer <secret API key or access token>`.');
    }
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match) throw unauthorized('invalid_authorization_header', 'The Authorization header must be `Bearer <token>`.');
    const credential = match[1]!;
    if (credential.startsWith(API_KEY_PREFIX)) {
      const principal = await authenticateSecret(db, clock, credential);
      if (!principal) throw unauthorized('invalid_api_key', 'The API key is unknown or has been revoked.');
      request.principal = principal;
      return;
    }
    const principal = await tokens.verify(credential);
    if (!principal || !(await isKeyActive(db, principal.partnerId, principal.apiKeyId))) {
      throw unauthorized('invalid_token', 'The access token is invalid, expired, or its API key was revoked.');
    }
    request.principal = principal;
  });
}
