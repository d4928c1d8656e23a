import { Type } from 'typebox';
import type { App, AppDeps } from '../../deps.ts';
import { partnerOf } from '../../http/auth.ts';
import { ListOf, ListQuery, toPage } from '../../http/pagination.ts';
import { problemResponses, ProblemError } from '../../http/problem.ts';
import { authenticateSecret, createApiKey, isPartnerSecret, listApiKeys, revokeApiKey, testWorldOf } from './service.ts';

const ApiKey = Type.Object(
  {
    id: Type.String({ description: 'Prefixed `key_`.' }),
    object: Type.Literal('api_key'),
    name: Type.String(),
    prefix: Type.String({ description: 'The first characters of the secret, to tell keys apart.' }),
    created_at: Type.String({ format: 'date-time' }),
    last_used_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], { description: 'To the minute.' }),
    revoked_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  },
  { title: 'ApiKey' },
);

const ApiKeyWithSecret = Type.Object(
  {
    ...ApiKey.properties,
    secret: Type.String({ description: 'The secret key. Shown only in this response: store it now.' }),
  },
  { title: 'ApiKeyWithSecret' },
);

const TokenRequest = Type.Object(
  {
    grant_type: Type.Literal('client_credentials'),
    client_secret: Type.Optional(Type.String({ description: 'A secret API key; or send it with HTTP Basic as the password.' })),
    client_id: Type.Optional(Type.String({ description: 'Ignored: the secret identifies the partner.' })),
  },
  { title: 'TokenRequest', additionalProperties: false },
);

const TokenResponse = Type.Object(
  {
    access_token: Type.String(),
    token_type: Type.Literal('Bearer'),
    expires_in: Type.Integer({ description: 'Seconds.' }),
  },
  { title: 'TokenResponse' },
);

const oauthError = (code: string, detail: string) =>
  // OAuth clients read `error` (RFC 6749 §5.2); everyone else reads the problem fields.
  new ProblemError(401, code, 'Authentication failed', detail, { error: code }, { 'www-authenticate': 'Basic realm="pec-partner"' });

export async function partnerRoutes(app: App, { db, clock, tokens }: AppDeps): Promise<void> {
  app.post('/v1/api-keys', {
    schema: {
      operationId: 'createApiKey',
      tags: ['Authentication'],
      summary: 'Create a secret API key',
      description: 'A live key (`sk_live_…`) may create keys of either world; a test key (`sk_test_…`) only test keys. Test keys reach the sandbox: '
        + 'a world of its own, with free credit, where nothing is charged and no message leaves the provider.',
      body: Type.Object({
        name: Type.String({ minLength: 1, maxLength: 100 }),
        livemode: Type.Optional(Type.Boolean({ description: "The new key's world: `false` makes a test key. Defaults to the caller's world." })),
      }, { title: 'ApiKeyCreate', additionalProperties: false }),
      response: { 201: ApiKeyWithSecret, ...problemResponses(403, 422) },
    },
  }, async (request, reply) => {
    const caller = partnerOf(request);
    const livemode = request.body.livemode ?? caller.livemode;
    if (livemode && !caller.livemode) {
      throw new ProblemError(403, 'livemode_forbidden', 'Forbidden', 'A test key cannot create live keys; use a live key (`sk_live_…`).');
    }
    const partnerId = livemode === caller.livemode ? caller.partnerId : await testWorldOf(db, clock, caller.partnerId);
    const { key, secret } = await createApiKey(db, clock, partnerId, request.body.name, livemode);
    // The new key's world, which a live caller may choose: not necessarily the caller's.
    return reply.code(201).send(Object.assign({ ...key, secret }, { livemode }));
  });

  app.get('/v1/api-keys', {
    schema: {
      operationId: 'listApiKeys',
      tags: ['Authentication'],
      summary: 'List API keys, newest first',
      querystring: Type.Object(ListQuery, { additionalProperties: false }),
      response: { 200: ListOf(ApiKey, 'ApiKeyList'), ...problemResponses() },
    },
  }, async (request) => {
    const { limit = 10, starting_after } = request.query;
    return toPage(await listApiKeys(db, partnerOf(request).partnerId, limit, starting_after), limit);
  });

  app.post('/v1/api-keys/:id/revoke', {
    schema: {
      operationId: 'revokeApiKey',
      tags: ['Authentication'],
      summary: 'Revoke an API key',
      description: 'The key and every access token issued for it stop working at once. Revoking twice is harmless.',
      params: Type.Object({ id: Type.String() }, { additionalProperties: false }),
      response: { 200: ApiKey, ...problemResponses(404, 422) },
    },
  }, async (request) => revokeApiKey(db, clock, partnerOf(request).partnerId, request.params.id));

  app.post('/oauth/token', {
    config: { public: true },
    schema: {
      operationId: 'createAccessToken',
      tags: ['Authentication'],
      summary: 'Exchange an API key for a short-lived access token (OAuth 2 client credentials)',
      security: [],
      body: TokenRequest,
      response: { 200: TokenResponse, ...problemResponses(403) },
    },
  }, async (request, reply) => {
    let secret = request.body.client_secret;
    const basic = /^Basic\s+(\S+)$/i.exec(request.headers.authorization ?? '');
    if (!secret && basic) {
      const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
      secret = decoded.slice(decoded.indexOf(':') + 1);
    }
    if (!secret) throw oauthError('invalid_client', 'Send the API key as client_secret or as the HTTP Basic password.');
    const principal = isPartnerSecret(secret) ? await authenticateSecret(db, clock, secret) : null;
    if (!principal) throw oauthError('invalid_client', 'The API key is unknown or has been revoked.');
    reply.header('cache-control', 'no-store');
    return { access_token: await tokens.issue(principal), token_type: 'Bearer' as const, expires_in: tokens.ttlSeconds };
  });

  app.get('/.well-known/jwks.json', {
    config: { public: true },
    schema: {
      operationId: 'getJwks',
      tags: ['Authentication'],
      summary: 'Public keys that verify access tokens',
      security: [],
      response: {
        200: Type.Object(
          { keys: Type.Array(Type.Record(Type.String(), Type.Unknown())) },
          { title: 'JsonWebKeySet', additionalProperties: true },
        ),
      },
    },
  }, async () => tokens.jwks());
}
