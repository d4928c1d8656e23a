import { createHmac, timingSafeEqual } from 'node:crypto';
import { PecPartnerError } from './errors.js';
import type { components } from './schema.js';

/** An event as webhooks deliver it and `GET /v1/events/{id}` returns it (generated from the OpenAPI document). */
export type WebhookEvent = components['schemas']['Event'];

export type WebhookHeaders = Record<string, string | string[] | undefined> | Headers;

export interface VerifyOptions {
  /** How far `webhook-timestamp` may be from now, either way, in seconds (default 300). */
  toleranceSeconds?: number;
  /** The time to compare the timestamp with (default: the current time). */
  now?: Date;
}

/**
 * A webhook that must not be trusted. `code` says why: `webhook_headers_missing`, `webhook_headers_invalid`,
 * `webhook_timestamp_invalid`, `webhook_timestamp_too_old`, `webhook_timestamp_too_new`,
 * `webhook_signature_mismatch`, `webhook_payload_invalid`.
 * Answer it with a 4xx and do not book it.
 */
export class WebhookVerificationError extends PecPartnerError {
  constructor(code: string, message: string) {
    super(message, { code });
  }
}

const SECRET_PREFIX = 'whsec_';
const DEFAULT_TOLERANCE_SECONDS = 300;
const SHA256_BYTES = 32;

function header(headers: WebhookHeaders, name: string): string[] {
  if (typeof (headers as Headers).get === 'function' && typeof (headers as Headers).forEach === 'function') {
    const value = (headers as Headers).get(name);
    return value === null ? [] : [value];
  }
  for (const [key, value] of Object.entries(headers as Record<string, string | string[] | undefined>)) {
    if (key.toLowerCase() !== name || value === undefined) continue;
    return Array.isArray(value) ? value : [value];
  }
  return [];
}

function single(headers: WebhookHeaders, name: string): string | undefined {
  const values = header(headers, name).map((value) => value.trim()).filter(Boolean);
  if (values.length > 1 && new Set(values).size > 1) {
    throw new WebhookVerificationError('webhook_headers_invalid', `the request carries ${values.length} different ${name} headers`);
  }
  return values[0];
}

function secretKey(secret: string): Buffer {
  const encoded = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret;
  // Buffer.from(…, 'base64') skips what is not base64; a mistyped secret must fail loudly, not verify nothing.
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded)) {
    throw new TypeError('the webhook secret must be the endpoint\'s "whsec_…" value (base64 after the prefix)');
  }
  return Buffer.from(encoded, 'base64');
}

function bodyBytes(rawBody: string | Buffer | Uint8Array): Buffer {
  if (typeof rawBody === 'string') return Buffer.from(rawBody, 'utf8');
  if (rawBody instanceof Uint8Array) return Buffer.from(rawBody.buffer, rawBody.byteOffset, rawBody.byteLength);
  throw new TypeError('pass the raw request body (string, Buffer or Uint8Array), not a parsed object');
}

/**
 * Checks a webhook's Standard Webhooks signature and returns its event.
 *
 * Pass the body exactly as received (re-serialising parsed JSON changes the bytes and breaks the signature),
 * the request headers (a Node `IncomingHttpHeaders` object or a Fetch `Headers`) and the endpoint's secret.
 * During a secret rotation both secrets sign the request: either one verifies it.
 */
export function verify(rawBody: string | Buffer | Uint8Array, headers: WebhookHeaders, secret: string, options: VerifyOptions = {}): WebhookEvent {
  const key = secretKey(secret);
  const body = bodyBytes(rawBody);
  const id = single(headers, 'webhook-id');
  const timestamp = single(headers, 'webhook-timestamp');
  const signatures = header(headers, 'webhook-signature').join(' ').trim();
  const missing = [!id && 'webhook-id', !timestamp && 'webhook-timestamp', !signatures && 'webhook-signature'].filter(Boolean);
  if (missing.length > 0) throw new WebhookVerificationError('webhook_headers_missing', `missing header${missing.length > 1 ? 's' : ''}: ${missing.join(', ')}`);

  if (!/^\d{1,15}$/.test(timestamp!)) throw new WebhookVerificationError('webhook_timestamp_invalid', `webhook-timestamp "${timestamp}" is not Unix seconds`);
  const tolerance = options.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  const skew = Math.floor((options.now ?? new Date()).getTime() / 1000) - Number(timestamp);
  // Bounding the age is what stops a captured request from being replayed later.
  if (skew > tolerance) throw new WebhookVerificationError('webhook_timestamp_too_old', `webhook-timestamp is ${skew} s old, more than the ${tolerance} s allowed`);
  if (-skew > tolerance) throw new WebhookVerificationError('webhook_timestamp_too_new', `webhook-timestamp is ${-skew} s in the future, more than the ${tolerance} s allowed`);

  const expected = createHmac('sha256', key).update(`${id}.${timestamp}.`, 'utf8').update(body).digest();
  // Space-separated `v1,<base64>` entries; Node joins repeated headers with ", ", hence the optional comma.
  const matched = signatures.split(/\s+/).some((entry) => {
    const parsed = /^v1,([A-Za-z0-9+/]+={0,2}),?$/.exec(entry);
    if (!parsed) return false;
    const candidate = Buffer.from(parsed[1]!, 'base64');
    return candidate.length === SHA256_BYTES && timingSafeEqual(candidate, expected);
  });
  if (!matched) throw new WebhookVerificationError('webhook_signature_mismatch', 'no v1 signature in webhook-signature matches this body and secret');

  let event: unknown;
  try {
    event = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
  } catch {
    throw new WebhookVerificationError('webhook_payload_invalid', 'the signed body is not JSON');
  }
  if (typeof event !== 'object' || event === null || (event as { object?: unknown }).object !== 'event' || typeof (event as { type?: unknown }).type !== 'string') {
    throw new WebhookVerificationError('webhook_payload_invalid', 'the signed body is not an event');
  }
  return event as WebhookEvent;
}

/** Webhook helpers; they need no client, only the endpoint's secret. */
export const webhooks = { verify };
