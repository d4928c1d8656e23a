import { Type, type Static } from 'typebox';

/** One invalid input, located by a JSON pointer into the part of the request it came from. */
export const FieldError = Type.Object(
  {
    pointer: Type.String({ description: 'JSON pointer (RFC 6901) to the invalid value, e.g. `/address/postcode`.' }),
    location: Type.Union([Type.Literal('body'), Type.Literal('query'), Type.Literal('path'), Type.Literal('header')]),
    code: Type.String({ description: 'Stable machine code of this field error, e.g. `required`, `invalid_format`.' }),
    detail: Type.String(),
  },
  { title: 'FieldError' },
);
export type FieldError = Static<typeof FieldError>;

export const Problem = Type.Object(
  {
    type: Type.String({ description: 'Stable URI naming the problem type: `urn:pec-partner:problem:<code>`.' }),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    code: Type.String({ description: 'Stable machine code; the last segment of `type`.' }),
    request_id: Type.String(),
    instance: Type.Optional(Type.String()),
    errors: Type.Optional(Type.Array(FieldError)),
  },
  { title: 'Problem', additionalProperties: true, description: 'RFC 9457 problem details.' },
);
export type ProblemBody = Static<typeof Problem>;

export const problemType = (code: string): string => `urn:pec-partner:problem:${code}`;

/** Thrown anywhere (services included) to answer with a problem; never carries a stack to the client. */
export class ProblemError extends Error {
  readonly status: number;
  readonly code: string;
  readonly title: string;
  readonly extensions: Record<string, unknown>;
  readonly headers: Record<string, string>;
  constructor(
    status: number,
    code: string,
    title: string,
    detail: string,
    extensions: Record<string, unknown> = {},
    headers: Record<string, string> = {},
  ) {
    super(detail);
    this.name = 'ProblemError';
    this.status = status;
    this.code = code;
    this.title = title;
    this.extensions = extensions;
    this.headers = headers;
  }
}

export const notFound = (what: string, id: string): ProblemError =>
  new ProblemError(404, 'resource_missing', 'Resource not found', `No ${what} with id '${id}'.`);

export const conflict = (code: string, detail: string, extensions: Record<string, unknown> = {}): ProblemError =>
  new ProblemError(409, code, 'Conflict', detail, extensions);

export const invalid = (errors: FieldError[], detail = 'The request has invalid fields.'): ProblemError =>
  new ProblemError(400, 'validation_error', 'Invalid request', detail, { errors });

const problemTitles: Record<number, string> = {
  400: 'Invalid request',
  401: 'Authentication required',
  402: 'Insufficient credit',
  403: 'Forbidden',
  404: 'Resource not found',
  409: 'Conflict',
  413: 'Payload too large',
  415: 'Unsupported media type',
  422: 'Unprocessable request',
  429: 'Too many requests',
  500: 'Internal error',
  502: 'Bad gateway (a payment provider could not be reached or refused)',
  503: 'Service unavailable (retry after `Retry-After` seconds)',
};

/** Response-schema entries for the problems a route can answer with, in OpenAPI's per-media-type form. */
export interface ProblemResponse {
  description: string;
  content: Record<string, { schema: unknown }>;
}

export function problemResponses(...statuses: number[]): Record<number, ProblemResponse> {
  const out: Record<number, ProblemResponse> = {};
  for (const status of [400, 401, 429, ...statuses]) {
    out[status] = {
      description: problemTitles[status] ?? 'Problem',
      content: { 'application/problem+json': { schema: Problem } },
    };
  }
  return out;
}
