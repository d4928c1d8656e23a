import t from 'tap';
import { createRemoteJWKSet, jwtVerify, decodeJwt } from 'jose';
import { harness, json } from './helpers/harness.ts';

const PROBLEM = 'application/problem+json; charset=utf-8';

t.test('errors are RFC 9457 problems with stable codes, request ids and field pointers', async (t) => {
  const h = await harness(t);
  const p = await h.partner();

  const missing = await h.app.inject({ method: 'GET', url: '/v1/nothing-here', headers: p.headers });
  t.equal(missing.statusCode, 404);
  t.equal(missing.headers['content-type'], PROBLEM);
  const body = json(missing);
  t.match(body, { type: 'urn:pec-partner:problem:route_not_found', code: 'route_not_found', status: 404, title: 'Not found' });
  t.equal(body.request_id, missing.headers['request-id']);
  t.match(body.request_id, /^req_[0-9a-z]{26}$/);

  const invalid = await h.app.inject({
    method: 'POST', url: '/v1/customers', headers: p.headers,
    payload: { type: 'alien', email: 'not-an-email', address: { street: 'Via Roma 1' }, colour: 'red' },
  });
  t.equal(invalid.statusCode, 400);
  t.equal(invalid.headers['content-type'], PROBLEM);
  const problem = json(invalid);
  t.equal(problem.code, 'validation_error');
  const byPointer = Object.fromEntries(problem.errors.map((e: { pointer: string; code: string }) => [e.pointer, e.code]));
  t.same(byPointer, {
    '/type': 'invalid_value',
    '/email': 'invalid_format',
    '/address/town': 'required',
    '/address/postcode': 'required',
    '/address/country': 'required',
    '/colour': 'unknown_field',
  });
  t.ok(problem.errors.every((e: { location: string }) => e.location === 'body'));

  const badJson = await h.app.inject({
    method: 'POST', url: '/v1/customers', headers: { ...p.headers, 'content-type': 'application/json' }, payload: '{"type":',
  });
  t.equal(badJson.statusCode, 400);
  t.equal(json(badJson).code, 'invalid_json');

  const wrongType = await h.app.inject({
    method: 'POST', url: '/v1/customers', headers: { ...p.headers, 'content-type': 'text/plain' }, payload: 'hello',
  });
  t.equal(wrongType.statusCode, 415);
  t.equal(json(wrongType).code, 'unsupported_media_type');

  // Types are not coerced in bodies: "500" is not an amount.
  const coerced = await h.app.inject({
    method: 'POST', url: '/v1/credit/top-ups', headers: p.headers,
    payload: { amount: '500', currency: 'EUR', payment_reference: 'x' },
  });
  t.equal(coerced.statusCode, 400);
  t.same(json(coerced).errors, [{ pointer: '/amount', location: 'body', code: 'invalid_type', detail: 'must be integer' }]);

  const badQuery = await h.app.inject({ method: 'GET', url: '/v1/customers?limit=500', headers: p.headers });
  t.equal(badQuery.statusCode, 400);
  t.match(json(badQuery).errors, [{ pointer: '/limit', location: 'query', code: 'out_of_range' }]);
});

t.test('API keys: bearer auth, several keys, revocation, secrets never listed', async (t) => {
  const h = await harness(t);
  const p = await h.partner();

  const none = await h.app.inject({ method: 'GET', url: '/v1/credit' });
  t.equal(none.statusCode, 401);
  t.equal(json(none).code, 'authentication_required');
  t.equal(none.headers['www-authenticate'], 'Bearer realm="pec-partner"');

  const wrong = await h.app.inject({ method: 'GET', url: '/v1/credit', headers: { authorization: 'Bearer sk_live_nope' } });
  t.equal(json(wrong).code, 'invalid_api_key');
  const malformed = await h.app.inject({ method: 'GET', url: '/v1/credit', headers: { authorization: 'Token abc' } });
  t.equal(json(malformed).code, 'invalid_authorization_header');

  const created = await h.app.inject({ method: 'POST', url: '/v1/api-keys', headers: p.headers, payload: { name: 'billing' } });
  t.equal(created.statusCode, 201);
  const second = json(created);
  t.match(second, { object: 'api_key', name: 'billing', revoked_at: null });
  t.match(second.secret, /^sk_live_[0-9A-Za-z]{32}$/);
  t.equal(second.prefix, second.secret.slice(0, 12));

  const works = await h.app.inject({ method: 'GET', url: '/v1/credit', headers: { authorization: `Bearer ${second.secret}` } });
  t.equal(works.statusCode, 200);

  const list = json(await h.app.inject({ method: 'GET', url: '/v1/api-keys', headers: p.headers }));
  t.equal(list.data.length, 2);
  t.notOk(JSON.stringify(list).includes(second.secret), 'secrets are never listed');
  t.ok(list.data.every((key: Record<string, unknown>) => !('secret' in key)));

  const revoked = await h.app.inject({ method: 'POST', url: `/v1/api-keys/${second.id}/revoke`, headers: p.headers });
  t.equal(revoked.statusCode, 200);
  t.equal(json(revoked).revoked_at, h.clock.now().toISOString());
  const again = await h.app.inject({ method: 'POST', url: `/v1/api-keys/${second.id}/revoke`, headers: p.headers });
  t.equal(json(again).revoked_at, json(revoked).revoked_at, 'revoking twice keeps the first revocation time');
  const rejected = await h.app.inject({ method: 'GET', url: '/v1/credit', headers: { authorization: `Bearer ${second.secret}` } });
  t.equal(rejected.statusCode, 401);
  t.equal(json(rejected).code, 'invalid_api_key');

  // Another partner's key id is indistinguishable from a missing one.
  const other = await h.partner('Other');
  const foreign = await h.app.inject({ method: 'POST', url: `/v1/api-keys/${other.apiKeyId}/revoke`, headers: p.headers });
  t.equal(foreign.statusCode, 404);
  const unknown = await h.app.inject({ method: 'POST', url: '/v1/api-keys/key_00000000000000000000000000/revoke', headers: p.headers });
  const comparable = (body: Record<string, unknown>, id: string) => ({ ...body, request_id: null, detail: String(body.detail).replace(id, '<id>') });
  t.same(comparable(json(foreign), other.apiKeyId), comparable(json(unknown), 'key_00000000000000000000000000'));
  t.equal(json(foreign).code, 'resource_missing');
});

t.test('OAuth client credentials: short-lived JWTs verifiable with the published JWKS', async (t) => {
  const h = await harness(t);
  const p = await h.partner();

  const bad = await h.app.inject({ method: 'POST', url: '/oauth/token', payload: { grant_type: 'client_credentials', client_secret: 'sk_live_wrong' } });
  t.equal(bad.statusCode, 401);
  t.match(json(bad), { code: 'invalid_client', error: 'invalid_client' });

  // Form-encoded with HTTP Basic, as generic OAuth clients send it.
  const basic = Buffer.from(`${p.id}:${p.secret}`).toString('base64');
  const issued = await h.app.inject({
    method: 'POST', url: '/oauth/token',
    headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
    payload: 'grant_type=client_credentials',
  });
  t.equal(issued.statusCode, 200);
  t.equal(issued.headers['cache-control'], 'no-store');
  const token = json(issued);
  t.match(token, { token_type: 'Bearer', expires_in: 900 });

  const claims = decodeJwt(token.access_token);
  t.equal(claims.sub, p.id);
  t.equal(claims.key, p.apiKeyId);
  t.equal(claims.exp! - claims.iat!, 900);

  // An independent verifier: jose fetching our JWKS over real HTTP.
  const base = await h.listen();
  const verified = await jwtVerify(token.access_token, createRemoteJWKSet(new URL('/.well-known/jwks.json', base)), {
    issuer: 'http://pec-partner.test', audience: 'http://pec-partner.test', currentDate: h.clock.now(),
  });
  t.equal(verified.protectedHeader.alg, 'ES256');

  const bearer = { authorization: `Bearer ${token.access_token}` };
  t.equal((await h.app.inject({ method: 'GET', url: '/v1/credit', headers: bearer })).statusCode, 200);

  h.clock.advance(901_000);
  const expired = await h.app.inject({ method: 'GET', url: '/v1/credit', headers: bearer });
  t.equal(expired.statusCode, 401);
  t.equal(json(expired).code, 'invalid_token');

  // Revoking the key kills the tokens issued for it before they expire.
  const fresh = json(await h.app.inject({ method: 'POST', url: '/oauth/token', payload: { grant_type: 'client_credentials', client_secret: p.secret } }));
  const freshBearer = { authorization: `Bearer ${fresh.access_token}` };
  t.equal((await h.app.inject({ method: 'GET', url: '/v1/credit', headers: freshBearer })).statusCode, 200);
  const keyCreated = json(await h.app.inject({ method: 'POST', url: '/v1/api-keys', headers: freshBearer, payload: { name: 'spare' } }));
  await h.app.inject({ method: 'POST', url: `/v1/api-keys/${p.apiKeyId}/revoke`, headers: { authorization: `Bearer ${keyCreated.secret}` } });
  t.equal(json(await h.app.inject({ method: 'GET', url: '/v1/credit', headers: freshBearer })).code, 'invalid_token');

  const tampered = fresh.access_token.slice(0, -4) + (fresh.access_token.endsWith('AAAA') ? 'BBBB' : 'AAAA');
  t.equal(json(await h.app.inject({ method: 'GET', url: '/v1/credit', headers: { authorization: `Bearer ${tampered}` } })).code, 'invalid_token');
});

t.test('Idempotency-Key: replay, mismatch, concurrency, scope per partner', async (t) => {
  const h = await harness(t);
  const p = await h.partner();
  const topUp = (key: string, amount: number, headers = p.headers) =>
    h.app.inject({
      method: 'POST', url: '/v1/credit/top-ups',
      headers: { ...headers, 'idempotency-key': key },
      payload: { amount, currency: 'EUR', payment_reference: `ref-${key}` },
    });

  const first = await topUp('k1', 1000);
  t.equal(first.statusCode, 201);
  t.notOk(first.headers['idempotent-replayed']);
  const replay = await topUp('k1', 1000);
  t.equal(replay.statusCode, 201);
  t.equal(replay.headers['idempotent-replayed'], 'true');
  t.equal(replay.body, first.body, 'the stored response is replayed byte for byte');
  t.equal(replay.headers['content-type'], 'application/json; charset=utf-8');

  const mismatch = await topUp('k1', 2000);
  t.equal(mismatch.statusCode, 422);
  t.equal(json(mismatch).code, 'idempotency_key_reused');

  // Same body with keys in another order is the same request.
  const reordered = await h.app.inject({
    method: 'POST', url: '/v1/credit/top-ups', headers: { ...p.headers, 'idempotency-key': 'k1' },
    payload: { payment_reference: 'ref-k1', currency: 'EUR', amount: 1000 },
  });
  t.equal(reordered.headers['idempotent-replayed'], 'true');

  // 20 concurrent requests with one key: exactly one executes.
  const results = await Promise.all(Array.from({ length: 20 }, () => topUp('k-concurrent', 500)));
  const statuses = results.map((r) => r.statusCode).sort();
  const executed = results.filter((r) => r.statusCode === 201 && !r.headers['idempotent-replayed']);
  t.equal(executed.length, 1, `exactly one execution (statuses: ${statuses.join(',')})`);
  t.ok(results.every((r) => r.statusCode === 201 || (r.statusCode === 409 && json(r).code === 'idempotency_request_in_progress')));
  const topUps = json(await h.app.inject({ method: 'GET', url: '/v1/credit/top-ups?limit=100', headers: p.headers }));
  t.same(topUps.data.map((x: { amount: number }) => x.amount), [500, 1000], 'one pending top-up per executed request');

  // Keys are scoped per partner: another partner may use the same key for its own request.
  const other = await h.partner('Other');
  const otherFirst = await topUp('k1', 1000, other.headers);
  t.equal(otherFirst.statusCode, 201);
  t.notOk(otherFirst.headers['idempotent-replayed']);

  const badKey = await h.app.inject({
    method: 'POST', url: '/v1/credit/top-ups', headers: { ...p.headers, 'idempotency-key': 'x'.repeat(256) },
    payload: { amount: 1000, currency: 'EUR', payment_reference: 'long-key' },
  });
  t.equal(json(badKey).code, 'invalid_idempotency_key');

  // A request that fails validation never claims the key.
  const invalid = await h.app.inject({
    method: 'POST', url: '/v1/credit/top-ups', headers: { ...p.headers, 'idempotency-key': 'k-invalid' }, payload: { amount: 1 },
  });
  t.equal(invalid.statusCode, 400);
  t.equal((await topUp('k-invalid', 700)).statusCode, 201);

  // Keys expire after 24 h; then the key may be used again.
  h.clock.advance(24 * 3_600_000 + 1000);
  const afterExpiry = await h.app.inject({
    method: 'POST', url: '/v1/credit/top-ups', headers: { ...p.headers, 'idempotency-key': 'k1' },
    payload: { amount: 3000, currency: 'EUR', payment_reference: 'after-expiry' },
  });
  t.equal(afterExpiry.statusCode, 201);
  t.notOk(afterExpiry.headers['idempotent-replayed']);
});

t.test('rate limiting per API key answers 429 with Retry-After', async (t) => {
  const h = await harness(t, { env: { RATE_LIMIT_PER_MINUTE: '3' } });
  const a = await h.partner('A');
  const b = await h.partner('B');
  const codes = [];
  for (let i = 0; i < 4; i++) codes.push((await h.app.inject({ method: 'GET', url: '/v1/credit', headers: a.headers })).statusCode);
  t.same(codes, [200, 200, 200, 429]);
  const limited = await h.app.inject({ method: 'GET', url: '/v1/credit', headers: a.headers });
  t.equal(limited.headers['content-type'], PROBLEM);
  t.equal(json(limited).code, 'rate_limited');
  t.ok(Number(limited.headers['retry-after']) >= 1 && Number(limited.headers['retry-after']) <= 60);
  t.equal((await h.app.inject({ method: 'GET', url: '/v1/credit', headers: b.headers })).statusCode, 200, 'other keys are unaffected');
  t.equal((await h.app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200, 'health checks are never limited');
});

t.test('health, docs, request ids', async (t) => {
  const h = await harness(t);
  const health = await h.app.inject({ method: 'GET', url: '/healthz' });
  t.equal(health.statusCode, 200);
  t.match(json(health), { status: 'ok', database: 'ok' });
  t.match(health.headers['request-id'], /^req_/);
  const docs = await h.app.inject({ method: 'GET', url: '/docs/' });
  t.equal(docs.statusCode, 200);
  t.match(docs.headers['content-type'], /text\/html/);
  const spec = await h.app.inject({ method: 'GET', url: '/docs/json' });
  t.equal(json(spec).openapi, '3.1.0');
  const ids = new Set<string>();
  for (let i = 0; i < 5; i++) ids.add(String((await h.app.inject({ method: 'GET', url: '/healthz', headers: { 'x-request-id': 'forged' } })).headers['request-id']));
  t.equal(ids.size, 5, 'each request gets its own id; a client-sent one is not trusted');
});
