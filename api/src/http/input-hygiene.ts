import { isUtf8 } from 'node:buffer';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { newId } from '../ids.ts';
import { sendProblem } from './errors.ts';
import { invalid, ProblemError, problemType, type FieldError } from './problem.ts';
import { escapePointer } from './validation.ts';

/**
 * Input that no route can use is refused here, once for every route, before any of it reaches a service, a log
 * line or PostgreSQL: text that is not well-formed Unicode (invalid UTF-8, lone surrogates), the NUL character
 * (PostgreSQL text cannot hold it), JSON nested deeper than any of our schemas, and percent-encoding that does
 * not decode. Each refusal is a 400 problem naming the field, like any other invalid input.
 */

/** Deeper than any request schema of ours (the deepest is about 4); a limit keeps hostile nesting cheap. */
export const MAX_JSON_DEPTH = 32;

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

type Location = FieldError['location'];

/** Why a string cannot be accepted, or undefined when it is fine. */
function textProblem(value: string): { code: string; detail: string } | undefined {
  if (value.includes('\u0000')) return { code: 'invalid_character', detail: 'must not contain the NUL character (U+0000)' };
  if (LONE_SURROGATE.test(value)) return { code: 'invalid_encoding', detail: 'must be well-formed Unicode text' };
  return undefined;
}

/**
 * Walks a parsed value without recursion (a hostile body must not exhaust the stack) and reports the first bad
 * string (keys included) or a nesting deeper than MAX_JSON_DEPTH.
 */
export function inspectValue(root: unknown, location: Location): FieldError | undefined {
  const stack: { value: unknown; pointer: string; depth: number }[] = [{ value: root, pointer: '', depth: 0 }];
  while (stack.length > 0) {
    const { value, pointer, depth } = stack.pop()!;
    if (typeof value === 'string') {
      const problem = textProblem(value);
      if (problem) return { pointer: pointer || '/', location, ...problem };
      continue;
    }
    if (typeof value !== 'object' || value === null || Buffer.isBuffer(value)) continue;
    if (depth >= MAX_JSON_DEPTH) {
      return { pointer: pointer || '/', location, code: 'too_deep', detail: `is nested more than ${MAX_JSON_DEPTH} levels deep` };
    }
    const entries = Array.isArray(value) ? value.map((item, index) => [String(index), item] as const) : Object.entries(value);
    for (const [key, item] of entries) {
      const child = `${pointer}/${escapePointer(key)}`;
      const keyProblem = textProblem(key);
      if (keyProblem) return { pointer: child, location, ...keyProblem };
      stack.push({ value: item, pointer: child, depth: depth + 1 });
    }
  }
  return undefined;
}

/** Decodes one `application/x-www-form-urlencoded` component strictly: bad escapes and invalid UTF-8 throw. */
const decodeComponent = (text: string): string => decodeURIComponent(text.replace(/\+/g, ' '));

/**
 * Checks the raw query string: every name and value must percent-decode to valid UTF-8. Fastify's parser would
 * otherwise turn `%FF` into U+FFFD (or keep it verbatim) and the filter would silently match something else.
 */
function queryEncodingError(rawUrl: string): FieldError | undefined {
  const question = rawUrl.indexOf('?');
  if (question < 0) return undefined;
  for (const pair of rawUrl.slice(question + 1).split('&')) {
    if (pair === '') continue;
    const equals = pair.indexOf('=');
    const rawName = equals < 0 ? pair : pair.slice(0, equals);
    let name: string;
    try {
      name = decodeComponent(rawName);
    } catch {
      return { pointer: '/', location: 'query', code: 'invalid_encoding', detail: 'a parameter name is not valid percent-encoded UTF-8' };
    }
    try {
      if (equals >= 0) decodeComponent(pair.slice(equals + 1));
    } catch {
      return { pointer: `/${escapePointer(name)}`, location: 'query', code: 'invalid_encoding', detail: 'is not valid percent-encoded UTF-8' };
    }
  }
  return undefined;
}

/** A strict form parser (OAuth token requests): URLSearchParams would replace invalid UTF-8 silently. */
export function parseForm(body: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of body.split('&')) {
    if (pair === '') continue;
    const equals = pair.indexOf('=');
    try {
      out[decodeComponent(equals < 0 ? pair : pair.slice(0, equals))] = equals < 0 ? '' : decodeComponent(pair.slice(equals + 1));
    } catch {
      throw invalid([{ pointer: '/', location: 'body', code: 'invalid_encoding', detail: 'is not valid percent-encoded UTF-8' }], 'The form body is not valid percent-encoded UTF-8.');
    }
  }
  return out;
}

/** A body schema every field of which is optional: an absent or empty body means `{}`. */
function bodyMayBeEmpty(schema: unknown): boolean {
  if (typeof schema !== 'object' || schema === null) return false;
  const s = schema as { type?: unknown; required?: unknown[] };
  return s.type === 'object' && (!Array.isArray(s.required) || s.required.length === 0);
}

export function installInputHygiene(app: FastifyInstance): void {
  // JSON bodies: read as bytes so invalid UTF-8 is refused instead of decoded into U+FFFD; an empty body is no
  // body (the route decides below whether that means `{}`); otherwise Fastify's own parser, which refuses
  // prototype poisoning.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    const buffer = body as Buffer;
    if (buffer.length === 0) return done(null, undefined);
    if (!isUtf8(buffer)) {
      return done(invalid([{ pointer: '/', location: 'body', code: 'invalid_encoding', detail: 'is not valid UTF-8' }], 'The request body is not valid UTF-8.'), undefined);
    }
    parseJson(request, buffer.toString('utf8'), done);
  });

  // Path and query, before authentication looks anything up with them.
  app.addHook('onRequest', async (request) => {
    const encoding = queryEncodingError(request.raw.url ?? '');
    if (encoding) throw invalid([encoding], 'The query string is not valid percent-encoded UTF-8.');
    const bad = inspectValue(request.params, 'path') ?? inspectValue(request.query, 'query');
    if (bad) throw invalid([bad], bad.location === 'path' ? 'A path parameter has invalid characters.' : 'A query parameter has invalid characters.');
  });

  app.addHook('preValidation', async (request) => {
    const schema = request.routeOptions.schema?.body;
    if ((request.body === undefined || request.body === null) && bodyMayBeEmpty(schema)) {
      request.body = {};
      return;
    }
    const bad = inspectValue(request.body, 'body');
    if (bad) throw invalid([bad], bad.code === 'too_deep' ? 'The request body is nested too deeply.' : 'The request body has invalid characters.');
  });
}

/** Routing failures Fastify answers before any hook: a path that does not decode, a segment over the limit. */
export function frameworkErrors(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const problem =
    error.code === 'FST_ERR_MAX_PARAM_LENGTH'
      ? new ProblemError(404, 'resource_missing', 'Resource not found', 'No resource has an identifier that long.')
      : error.code === 'FST_ERR_BAD_URL'
        ? new ProblemError(400, 'invalid_url', 'Invalid request', 'The request path is not valid percent-encoded UTF-8.')
        : new ProblemError(400, 'invalid_request', 'Invalid request', 'The request could not be routed.');
  void sendProblem(request, reply, problem);
}

const clientErrors: Record<string, { status: number; reason: string; code: string; detail: string }> = {
  HPE_HEADER_OVERFLOW: { status: 431, reason: 'Request Header Fields Too Large', code: 'headers_too_large', detail: 'The request headers (or the URL) are larger than the server accepts.' },
  ERR_HTTP_REQUEST_TIMEOUT: { status: 408, reason: 'Request Timeout', code: 'request_timeout', detail: 'The request was not received in time.' },
  HPE_URI_TOO_LONG: { status: 414, reason: 'URI Too Long', code: 'uri_too_long', detail: 'The request URL is longer than the server accepts.' },
};

/**
 * Requests Node's HTTP parser rejects never reach Fastify: answer them as problems too (the default writes a
 * bare JSON body), and log them at debug level only: a scanner's garbage is not our error.
 */
export function clientErrorHandler(this: FastifyInstance, error: Error & { code?: string }, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const known = (error.code && clientErrors[error.code]) || { status: 400, reason: 'Bad Request', code: 'malformed_request', detail: 'The request is not valid HTTP/1.1.' };
  this.log.debug({ err: error }, 'client error');
  if (socket.writable) {
    const requestId = newId('req');
    const body = JSON.stringify({ type: problemType(known.code), title: known.reason, status: known.status, detail: known.detail, code: known.code, request_id: requestId });
    socket.write(
      `HTTP/1.1 ${known.status} ${known.reason}\r\nContent-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
        `request-id: ${requestId}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}
