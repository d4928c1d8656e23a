import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Db } from '@pec-partner/db';
import type { Clock } from '../clock.ts';
import { API_KEY_PREFIX, authenticateSecret, isKeyActive, type Principal } from '../modules/partners/service.ts';
import type { TokenService } from '../modules/partners/tokens.ts';
import { ProblemError } from './problem.ts';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
  interface FastifyContextConfig {
    /** Routes that answer without credentials (health, docs, token exchange, JWKS). */
    public?: boolean;
  }
}

const unauthorized = (code: string, detail: string): ProblemError =>
  new ProblemError(401, code, 'Authentication required', detail, {}, { 'www-authenticate': 'Bearer realm="pec-partner"' });

/** The authenticated partner of a request; routes behind auth can rely on it. */
export function partnerOf(request: FastifyRequest): Principal {
  if (!request.principal) throw unauthorized('authentication_required', 'This endpoint needs credentials.');
  return request.principal;
}

export function installAuth(app: FastifyInstance, db: Db, clock: Clock, tokens: TokenService): void {
  app.decorateRequest('principal', null);
  app.addHook('onRequest', async (request) => {
    // Unknown routes answer 404 whoever asks; public routes and the API docs need no credentials.
    const url = request.routeOptions.url;
    if (!url || request.routeOptions.config.public || url === '/docs' || url.startsWith('/docs/')) return;
    const header = request.headers.authorization;
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
