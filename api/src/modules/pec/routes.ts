import { Type } from 'typebox';
import type { App, AppDeps } from '../../deps.ts';
import { requestLivemode } from '../../http/livemode.ts';
import { ProblemError, problemResponses } from '../../http/problem.ts';
import type { PecEngine } from '../../pec/engine.ts';
import { toLdif } from '../../pec/provider-index.ts';
import { verifyPecMessage } from '../../pec/verify.ts';

const nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T) => Type.Union([schema, Type.Null()]);

const Verification = Type.Object(
  {
    object: Type.Literal('pec_verification'),
    claimed: Type.String({ description: 'What the top-level headers claim: a daticert type, `anomalia`, `malformed` or `not-pec`.' }),
    type: nullable(Type.String({ description: 'The daticert `tipo` from the signed content.' })),
    daticert: nullable(Type.Record(Type.String(), Type.Unknown(), { description: 'The certification data, as parsed from daticert.xml.' })),
    daticert_error: nullable(Type.String()),
    signature: Type.Object({
      present: Type.Boolean(),
      valid: Type.Boolean(),
      reason: nullable(Type.String()),
      digest_algorithm: nullable(Type.String()),
      signing_time: nullable(Type.String({ format: 'date-time' })),
      signer: nullable(Type.Object({ subject: Type.String(), email: nullable(Type.String()), fingerprint_sha1: Type.String() }, { title: 'PecSigner' })),
      provider: nullable(Type.Object({ name: Type.String(), managed_domains: Type.Array(Type.String()) }, { title: 'PecProvider' })),
    }, { title: 'PecSignature' }),
    consistent: Type.Boolean({ description: 'Valid signature by a provider in the index, and headers that agree with the signed data.' }),
    problems: Type.Array(Type.String()),
  },
  { title: 'PecVerification' },
);

export async function pecRoutes(app: App, deps: AppDeps & { engine: PecEngine }): Promise<void> {
  app.get('/v1/pec/ca-certificate', {
    config: { public: true },
    schema: {
      operationId: 'getProviderCaCertificate',
      tags: ['PEC'],
      summary: "The provider's CA certificate (PEM), to verify its signatures",
      security: [],
      response: { 200: { description: 'PEM', content: { 'application/x-pem-file': { schema: { type: 'string' } } } } },
    },
  }, async (_request, reply) => reply.type('application/x-pem-file').send((await deps.engine.identity()).caCertificatePem as never));

  app.get('/v1/pec/provider-index', {
    config: { public: true },
    schema: {
      operationId: 'getProviderIndexRecord',
      tags: ['PEC'],
      summary: "This provider's record for the provider index (LDIF, spec §8)",
      security: [],
      response: { 200: { description: 'LDIF', content: { 'text/plain': { schema: { type: 'string' } } } } },
    },
  }, async (_request, reply) => reply.type('text/plain; charset=utf-8').send(toLdif(await deps.engine.ownRecord()) as never));

  app.post('/v1/pec/verify', {
    config: { callers: 'partner_or_holder' },
    schema: {
      operationId: 'verifyPecMessage',
      tags: ['PEC'],
      summary: 'Check a received PEC message: type, certification data, signature and signing provider',
      description: 'Body: the message as received, with `Content-Type: message/rfc822`.',
      security: [{ bearerAuth: [] }, { mailboxBasic: [] }],
      response: { 200: Verification, ...problemResponses(413, 415) },
    },
  }, async (request) => {
    if (!Buffer.isBuffer(request.body)) {
      throw new ProblemError(415, 'unsupported_media_type', 'Unsupported media type', 'Send the message with Content-Type: message/rfc822.');
    }
    // In the caller's world: a test key or test mailbox verifies against the sandbox's own record, live against the
    // provider index; a sandbox message therefore never verifies as a live provider's.
    const { headers: _headers, ...result } = await verifyPecMessage(request.body, await deps.engine.index(requestLivemode(request)));
    return { object: 'pec_verification' as const, ...result, daticert: result.daticert as unknown as Record<string, unknown> | null };
  });
}
