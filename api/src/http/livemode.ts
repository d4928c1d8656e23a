import type { FastifyInstance, FastifyRequest } from 'fastify';

/**
 * Every resource says which world it belongs to, as Stripe's do: `livemode: false` in the sandbox. A request only
 * ever sees resources of its caller's world (test twins are partners of their own, see `partners.livemode`), so
 * the value is the caller's and is filled in here, once, for every route: each response schema gains the field
 * on every object that names its kind (`object: 'mailbox'`, …) and the answer's objects get the value.
 */

type Json = unknown;
type JsonObject = Record<string, Json>;
const isObject = (value: Json): value is JsonObject => typeof value === 'object' && value !== null && !Array.isArray(value);

const LIVEMODE = {
  type: 'boolean',
  description: '`true` for live data, `false` for the sandbox (test mode: `sk_test_` keys, test mailboxes).',
} as const;

/** A resource schema: an object whose `object` property is a fixed kind other than a list. */
function isResource(schema: JsonObject): boolean {
  const kind = isObject(schema.properties) ? schema.properties.object : undefined;
  return isObject(kind) && typeof kind.const === 'string' && kind.const !== 'list';
}

const transformed = new WeakMap<object, Json>();

/**
 * A copy of a response schema with `livemode` on every resource in it. Memoised per schema object so a schema
 * shared by routes stays one schema (OpenAPI components are named by title and must not diverge).
 */
export function withLivemode(schema: Json): Json {
  if (Array.isArray(schema)) return schema.map(withLivemode);
  if (!isObject(schema)) return schema;
  const done = transformed.get(schema);
  if (done !== undefined) return done;
  const copy: JsonObject = {};
  for (const [key, value] of Object.entries(schema)) {
    copy[key] = key === 'const' || key === 'enum' || key === 'default' || key === 'examples' ? value : withLivemode(value);
  }
  if (copy.type === 'object' && isResource(copy)) {
    const { object, ...rest } = copy.properties as JsonObject;
    copy.properties = { object, livemode: LIVEMODE, ...rest };
    const required = Array.isArray(copy.required) ? (copy.required as string[]) : [];
    if (!required.includes('livemode')) copy.required = [...required, 'livemode'];
  }
  transformed.set(schema, copy);
  return copy;
}

/** The world of whoever is asking: a partner's key or token, a mailbox's holder; operators work on live data. */
export function requestLivemode(request: FastifyRequest): boolean {
  return request.principal?.livemode ?? request.holder?.livemode ?? true;
}

/** Sets `livemode` on every resource of an answer (walked without recursion: answers can be deep lists). */
export function stampLivemode(payload: Json, livemode: boolean): void {
  const stack: Json[] = [payload];
  while (stack.length > 0) {
    const node = stack.pop();
    if (Array.isArray(node)) {
      for (const item of node) if (typeof item === 'object' && item !== null) stack.push(item);
    } else if (isObject(node)) {
      if (typeof node.object === 'string' && node.object !== 'list' && !('livemode' in node)) node.livemode = livemode;
      for (const value of Object.values(node)) if (typeof value === 'object' && value !== null) stack.push(value);
    }
  }
}

export function installLivemode(app: FastifyInstance): void {
  app.addHook('onRoute', (route) => {
    const response = route.schema?.response as JsonObject | undefined;
    if (!response) return;
    route.schema = { ...route.schema, response: withLivemode(response) as JsonObject };
  });
  app.addHook('preSerialization', async (request, _reply, payload) => {
    if (typeof payload !== 'object' || payload === null || Buffer.isBuffer(payload)) return payload;
    // Stamped on a copy: an answer may share objects with other requests (the published price list is built once),
    // and a world stamped on those would stick for the next caller of the other world.
    const copy = structuredClone(payload);
    stampLivemode(copy, requestLivemode(request));
    return copy;
  });
}
