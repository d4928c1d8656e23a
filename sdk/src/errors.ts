import type { components } from './schema.js';

/** An RFC 9457 problem document as the API sends it (generated from the OpenAPI document). */
export type Problem = components['schemas']['Problem'];

/** Base class of every error the SDK throws; `instanceof` the subclasses to branch on the kind. */
export class PecPartnerError extends Error {
  readonly status: number | undefined;
  readonly code: string;
  readonly type: string | undefined;
  readonly title: string | undefined;
  readonly detail: string;
  readonly requestId: string | undefined;
  readonly errors: NonNullable<Problem['errors']>;
  readonly problem: Problem | undefined;
  readonly headers: Record<string, string>;

  constructor(message: string, init: { status?: number; problem?: Problem; headers?: Record<string, string>; code?: string; cause?: unknown } = {}) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = new.target.name;
    this.status = init.status;
    this.problem = init.problem;
    this.code = init.problem?.code ?? init.code ?? 'unknown_error';
    this.type = init.problem?.type;
    this.title = init.problem?.title;
    this.detail = init.problem?.detail ?? message;
    this.requestId = init.problem?.request_id ?? init.headers?.['request-id'];
    this.errors = init.problem?.errors ?? [];
    this.headers = init.headers ?? {};
  }
}

/** 400 and 422: the request is wrong; `errors` points at each invalid field. */
export class InvalidRequestError extends PecPartnerError {}
/** 401: missing, unknown or revoked credentials. */
export class AuthenticationError extends PecPartnerError {}
/** 402: not enough prepaid credit; the problem carries `balance`, `required` and `shortfall` (cents). */
export class InsufficientCreditError extends PecPartnerError {
  get shortfall(): number | undefined {
    return typeof this.problem?.shortfall === 'number' ? this.problem.shortfall : undefined;
  }
}
/** 403: authenticated but not allowed. */
export class PermissionError extends PecPartnerError {}
/** 404: no such resource for this partner. */
export class NotFoundError extends PecPartnerError {}
/** 409: the resource's state forbids the operation. */
export class ConflictError extends PecPartnerError {}
/** 429: too many requests; `retryAfter` in seconds when the server said. */
export class RateLimitError extends PecPartnerError {
  get retryAfter(): number | undefined {
    const value = Number(this.headers['retry-after']);
    return Number.isFinite(value) ? value : undefined;
  }
}
/** 5xx: the server failed. */
export class ApiError extends PecPartnerError {}
/** The request never got an HTTP answer (network failure or timeout). */
export class ConnectionError extends PecPartnerError {}

export function errorFromResponse(status: number, body: unknown, headers: Record<string, string>): PecPartnerError {
  const problem = isProblem(body) ? body : undefined;
  const message = problem ? `${problem.title}: ${problem.detail}` : `HTTP ${status}`;
  const init = { status, headers, ...(problem ? { problem } : { code: `http_${status}` }) };
  if (status === 400 || status === 422) return new InvalidRequestError(message, init);
  if (status === 401) return new AuthenticationError(message, init);
  if (status === 402) return new InsufficientCreditError(message, init);
  if (status === 403) return new PermissionError(message, init);
  if (status === 404) return new NotFoundError(message, init);
  if (status === 409) return new ConflictError(message, init);
  if (status === 429) return new RateLimitError(message, init);
  if (status >= 500) return new ApiError(message, init);
  return new PecPartnerError(message, init);
}

function isProblem(body: unknown): body is Problem {
  return typeof body === 'object' && body !== null && typeof (body as Problem).code === 'string' && typeof (body as Problem).status === 'number';
}
