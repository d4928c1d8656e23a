import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { request as undiciRequest, type Dispatcher } from 'undici';
import { ConnectionError, errorFromResponse, PecPartnerError } from './errors.js';
import type { HttpMethod, ListItem, ListPaths, Operation, PathsFor, QueryParams, RequestArgs, RequestOptions, SuccessBody } from './types.js';

export interface ClientOptions {
  /** A partner's secret API key (`sk_live_…`) or an OAuth access token. */
  apiKey?: string;
  /** A mailbox holder's credentials, for the messages API and the mailbox's log (HTTP Basic). Give this or `apiKey`. */
  mailbox?: { address: string; password: string };
  /** Defaults to `http://127.0.0.1:3000`. */
  baseUrl?: string;
  /** Retries after the first attempt, for network errors, 429, 5xx and in-progress idempotent duplicates. */
  maxRetries?: number;
  /** Per attempt, headers and body included. */
  timeoutMs?: number;
  userAgent?: string;
  /** An undici dispatcher (Agent, Pool, MockAgent) to route requests through. */
  dispatcher?: Dispatcher;
}

/** What the HTTP response said besides its body; read it with `responseOf(result)`. */
export interface ResponseMeta {
  status: number;
  requestId: string | undefined;
  idempotentReplayed: boolean;
  headers: Record<string, string>;
}

const metas = new WeakMap<object, ResponseMeta>();

/** The response metadata of an object the client returned (request id, replay flag, headers). */
export function responseOf(result: object): ResponseMeta | undefined {
  return metas.get(result);
}

const MAX_BACKOFF_MS = 8_000;
const MAX_RETRY_AFTER_MS = 30_000;

function flattenHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) out[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

function isRetryable(error: PecPartnerError): boolean {
  if (error instanceof ConnectionError) return true;
  if (error.status === 429 || (error.status !== undefined && error.status >= 500)) return true;
  return error.status === 409 && error.code === 'idempotency_request_in_progress';
}

/** Waits as the server asked (Retry-After), else exponential backoff with full jitter. */
function retryDelayMs(error: PecPartnerError, attempt: number): number {
  const header = error.headers['retry-after'];
  if (header !== undefined) {
    // Retry-After is delay-seconds or an HTTP date (RFC 9110 §10.2.3).
    const seconds = /^\d+$/.test(header.trim()) ? Number(header) : (Date.parse(header) - Date.now()) / 1000;
    if (Number.isFinite(seconds)) return Math.min(Math.max(seconds, 0) * 1000, MAX_RETRY_AFTER_MS);
  }
  return Math.random() * Math.min(MAX_BACKOFF_MS, 250 * 2 ** attempt);
}

export class PecPartnerClient {
  readonly #authorization: string;
  readonly #baseUrl: string;
  readonly #maxRetries: number;
  readonly #timeoutMs: number;
  readonly #userAgent: string;
  readonly #dispatcher: Dispatcher | undefined;

  constructor(options: ClientOptions) {
    if (Boolean(options.apiKey) === Boolean(options.mailbox)) throw new TypeError('give either apiKey or mailbox credentials');
    this.#authorization = options.apiKey
      ? `Bearer ${options.apiKey}`
      : `Basic ${Buffer.from(`${options.mailbox!.address}:${options.mailbox!.password}`, 'utf8').toString('base64')}`;
    this.#baseUrl = (options.baseUrl ?? 'http://127.0.0.1:3000').replace(/\/+$/, '');
    this.#maxRetries = options.maxRetries ?? 2;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    this.#userAgent = options.userAgent ?? '@pec-partner/sdk';
    this.#dispatcher = options.dispatcher;
  }

  /** Calls any operation of the API, typed from the OpenAPI document. */
  async request<M extends HttpMethod, P extends PathsFor<M>>(
    method: M,
    path: P,
    ...[maybeOptions]: RequestArgs<Operation<P, M>>
  ): Promise<SuccessBody<Operation<P, M>>> {
    // Typed at the call site by RequestArgs; inside, only the shape matters.
    const options = (maybeOptions ?? {}) as {
      path?: Record<string, string>;
      query?: Record<string, unknown>;
      body?: unknown;
      raw?: { contentType: string; data: string | Uint8Array };
      headers?: Record<string, string>;
      idempotencyKey?: string;
      signal?: AbortSignal;
    };
    const url = this.#url(path, options.path, options.query);
    const headers: Record<string, string> = {
      authorization: this.#authorization,
      accept: 'application/json, application/problem+json',
      'user-agent': this.#userAgent,
      ...options.headers,
    };
    if (method === 'post') headers['idempotency-key'] = options.idempotencyKey ?? randomUUID();
    if (options.body !== undefined && options.raw !== undefined) throw new TypeError('give either body (JSON) or raw, not both');
    let body: string | Uint8Array | undefined;
    if (options.body !== undefined) {
      body = JSON.stringify(options.body);
      headers['content-type'] = 'application/json';
    } else if (options.raw !== undefined) {
      body = options.raw.data;
      headers['content-type'] = options.raw.contentType;
    }

    for (let attempt = 0; ; attempt++) {
      try {
        return (await this.#send(method, url, headers, body, options.signal)) as SuccessBody<Operation<P, M>>;
      } catch (error) {
        if (!(error instanceof PecPartnerError) || !isRetryable(error) || attempt >= this.#maxRetries || options.signal?.aborted) throw error;
        await sleep(retryDelayMs(error, attempt), undefined, options.signal ? { signal: options.signal } : undefined);
      }
    }
  }

  get<P extends PathsFor<'get'>>(path: P, ...options: RequestArgs<Operation<P, 'get'>>) {
    return this.request('get', path, ...options);
  }
  post<P extends PathsFor<'post'>>(path: P, ...options: RequestArgs<Operation<P, 'post'>>) {
    return this.request('post', path, ...options);
  }
  put<P extends PathsFor<'put'>>(path: P, ...options: RequestArgs<Operation<P, 'put'>>) {
    return this.request('put', path, ...options);
  }
  patch<P extends PathsFor<'patch'>>(path: P, ...options: RequestArgs<Operation<P, 'patch'>>) {
    return this.request('patch', path, ...options);
  }
  delete<P extends PathsFor<'delete'>>(path: P, ...options: RequestArgs<Operation<P, 'delete'>>) {
    return this.request('delete', path, ...options);
  }

  /**
   * Every item of a list, fetching pages as the iteration goes:
   * `for await (const customer of client.list('/v1/customers', { query: { type: 'company' } }))`.
   */
  async *list<P extends ListPaths>(
    path: P,
    options: { query?: QueryParams<Operation<P, 'get'>>; path?: Record<string, string>; signal?: AbortSignal } = {},
  ): AsyncGenerator<ListItem<P>, void, undefined> {
    let cursor: string | null | undefined;
    do {
      const query = { limit: 100, ...(options.query as object), ...(cursor ? { starting_after: cursor } : {}) };
      const page = (await (this.request as (...args: unknown[]) => Promise<unknown>)('get', path, { ...options, query })) as {
        data: ListItem<P>[];
        has_more: boolean;
        next_cursor: string | null;
      };
      yield* page.data;
      cursor = page.has_more ? page.next_cursor : null;
    } while (cursor);
  }

  #url(path: string, params: Record<string, string> | undefined, query: Record<string, unknown> | undefined): string {
    const filled = path.replace(/\{(\w+)\}/g, (_, name: string) => {
      const value = params?.[name];
      if (value === undefined) throw new TypeError(`missing path parameter '${name}' for ${path}`);
      return encodeURIComponent(value);
    });
    const search = new URLSearchParams();
    for (const [name, value] of Object.entries(query ?? {})) {
      if (value === undefined || value === null) continue;
      for (const item of Array.isArray(value) ? value : [value]) search.append(name, String(item));
    }
    const qs = search.toString();
    return `${this.#baseUrl}${filled}${qs ? `?${qs}` : ''}`;
  }

  async #send(method: HttpMethod, url: string, headers: Record<string, string>, body: string | Uint8Array | undefined, signal: AbortSignal | undefined): Promise<unknown> {
    // One deadline for the whole attempt (headers and body), combined with the caller's own signal.
    const deadline = AbortSignal.timeout(this.#timeoutMs);
    const attemptSignal = signal ? AbortSignal.any([signal, deadline]) : deadline;
    let response: Dispatcher.ResponseData;
    let text: string;
    try {
      response = await undiciRequest(url, {
        method: method.toUpperCase() as Dispatcher.HttpMethod,
        headers,
        body,
        signal: attemptSignal,
        ...(this.#dispatcher ? { dispatcher: this.#dispatcher } : {}),
      });
      text = await response.body.text();
    } catch (cause) {
      // The caller's cancellation is not a network failure: surface it as is, and never retry it.
      if (signal?.aborted) throw signal.reason;
      const reason = deadline.aborted ? `no complete answer within ${this.#timeoutMs} ms` : (cause as Error).message;
      throw new ConnectionError(`Could not reach ${url}: ${reason}`, { cause, code: 'connection_error' });
    }
    const responseHeaders = flattenHeaders(response.headers);
    let parsed: unknown = undefined;
    if (text) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = text;
      }
    }
    if (response.statusCode >= 400) throw errorFromResponse(response.statusCode, parsed, responseHeaders);
    if (parsed && typeof parsed === 'object') {
      metas.set(parsed, {
        status: response.statusCode,
        requestId: responseHeaders['request-id'],
        idempotentReplayed: responseHeaders['idempotent-replayed'] === 'true',
        headers: responseHeaders,
      });
    }
    return parsed;
  }
}
