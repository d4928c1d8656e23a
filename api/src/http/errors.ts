import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ProblemError, problemType, type ProblemBody } from './problem.ts';
import { fieldErrors } from './validation.ts';

export function sendProblem(request: FastifyRequest, reply: FastifyReply, problem: ProblemError): FastifyReply {
  const body: ProblemBody = {
    type: problemType(problem.code),
    title: problem.title,
    status: problem.status,
    detail: problem.message,
    code: problem.code,
    request_id: String(request.id),
    ...problem.extensions,
  };
  for (const [name, value] of Object.entries(problem.headers)) reply.header(name, value);
  return reply.code(problem.status).type('application/problem+json').send(body);
}

/** Fastify's own client errors, mapped to stable codes. */
const frameworkErrors: Record<string, { status: number; code: string; title: string }> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { status: 415, code: 'unsupported_media_type', title: 'Unsupported media type' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { status: 400, code: 'invalid_body', title: 'Invalid request' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { status: 400, code: 'invalid_body', title: 'Invalid request' },
  FST_ERR_CTP_INVALID_JSON_BODY: { status: 400, code: 'invalid_json', title: 'Invalid request' },
  FST_ERR_CTP_BODY_TOO_LARGE: { status: 413, code: 'payload_too_large', title: 'Payload too large' },
};

function toProblem(error: FastifyError & { validationContext?: string }): ProblemError {
  if (error instanceof ProblemError) return error;
  if (error.validation) {
    const errors = fieldErrors(error.validation, error.validationContext);
    return new ProblemError(400, 'validation_error', 'Invalid request', 'The request has invalid fields.', { errors });
  }
  const known = error.code ? frameworkErrors[error.code] : undefined;
  if (known) return new ProblemError(known.status, known.code, known.title, error.message);
  // A body that fails JSON.parse surfaces as a SyntaxError with a 400 status.
  if (error instanceof SyntaxError || (error as { type?: string }).type === 'entity.parse.failed') {
    return new ProblemError(400, 'invalid_json', 'Invalid request', 'The request body is not valid JSON.');
  }
  if (error.statusCode && error.statusCode >= 400 && error.statusCode < 500) {
    return new ProblemError(error.statusCode, 'invalid_request', 'Invalid request', error.message);
  }
  return new ProblemError(500, 'internal_error', 'Internal error', 'An unexpected error occurred; it has been logged.');
}

/** Every error leaves as application/problem+json; unexpected ones are logged and never leak details. */
export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const problem = toProblem(error);
    if (problem.status >= 500) request.log.error({ err: error }, 'unhandled error');
    return sendProblem(request, reply, problem);
  });
  app.setNotFoundHandler((request, reply) =>
    sendProblem(
      request,
      reply,
      new ProblemError(404, 'route_not_found', 'Not found', `No route ${request.method} ${request.url.split('?')[0]}.`),
    ),
  );
}
