import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { DATABASE_RETRY_AFTER_SECONDS, isDatabaseUnavailable } from '../db-errors.ts';
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
  if (isDatabaseUnavailable(error)) {
    return new ProblemError(503, 'database_unavailable', 'Service unavailable', 'The database is unavailable; retry later.', {},
      { 'retry-after': String(DATABASE_RETRY_AFTER_SECONDS) });
  }
  return new ProblemError(500, 'internal_error', 'Internal error', 'An unexpected error occurred; it has been logged.');
}

/** A refusal of the body (not of the path or query), which an unknown id in the path takes precedence over. */
function isAboutBody(error: FastifyError & { validationContext?: string }, problem: ProblemError): boolean {
  if (error.validation) return error.validationContext === 'body';
  const errors = problem.extensions.errors as { location: string }[] | undefined;
  return !errors?.some((field) => field.location !== 'body');
}

export interface ErrorHandlingOptions {
  /**
   * Asked before a request is refused for its body: the 404 of an id in its path that names nothing of the
   * caller's, which then answers instead (an unknown id is a 404 whatever the body).
   */
  missingPathResource?: (request: FastifyRequest) => Promise<ProblemError | undefined>;
}

/** Every error leaves as application/problem+json; unexpected ones are logged and never leak details. */
export function installErrorHandling(app: FastifyInstance, options: ErrorHandlingOptions = {}): void {
  app.setErrorHandler(async (error: FastifyError & { validationContext?: string }, request, reply) => {
    let problem = toProblem(error);
    if ([400, 413, 415].includes(problem.status) && options.missingPathResource && isAboutBody(error, problem)) {
      problem = (await options.missingPathResource(request).catch(() => undefined)) ?? problem;
    }
    if (problem.status >= 500) request.log.error({ err: error }, 'unhandled error');
    return sendProblem(request, reply, problem);
  });
  // The method and path are not echoed: the client has them, and a hostile path has no place in our answer.
  app.setNotFoundHandler((request, reply) =>
    sendProblem(request, reply, new ProblemError(404, 'route_not_found', 'Not found', 'No route matches this method and path; /docs lists the API.')),
  );
}
