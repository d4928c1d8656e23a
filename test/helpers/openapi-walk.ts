/**
 * Walking the committed OpenAPI document: every operation with its parameters, body and caller, how to address it
 * in a partner's world, and the check of an answer against what the document declares for its status.
 */
import { readFile } from 'node:fs/promises';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import type { Harness } from './harness.ts';
import { idFor, type World } from './world.ts';

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;

type Json = any;
export interface Operation {
  method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';
  path: string;
  op: Json;
  pathParams: string[];
  query: { name: string; schema: Json }[];
  body?: { contentType: string; schema: Json };
  caller: 'public' | 'partner' | 'holder' | 'operator';
}

const doc = JSON.parse(await readFile(new URL('../../openapi/openapi.json', import.meta.url), 'utf8'));
const ajv = new Ajv2020({ strict: false, allErrors: false, validateFormats: true });
addFormats(ajv);
ajv.addKeyword({ keyword: 'example' });
ajv.addSchema({ ...doc, $id: 'openapi' }, 'openapi');
const resolve = (schema: Json): Json => (schema?.$ref ? doc.components.schemas[schema.$ref.split('/').pop()] : schema);
const validators = new Map<string, ReturnType<typeof ajv.compile>>();
function validatorFor(schema: Json) {
  const key = JSON.stringify(schema);
  let validate = validators.get(key);
  if (!validate) {
    // Point every component reference into the registered document.
    validate = ajv.compile(JSON.parse(key.replaceAll('"#/components/', '"openapi#/components/')));
    validators.set(key, validate);
  }
  return validate;
}

export const operations: Operation[] = Object.entries(doc.paths as Record<string, Record<string, Json>>).flatMap(([path, methods]) =>
  Object.entries(methods).map(([method, op]) => {
    const parameters: Json[] = op.parameters ?? [];
    const security: Json[] | undefined = op.security;
    const caller: Operation['caller'] =
      Array.isArray(security) && security.length === 0 ? 'public'
        : security?.some((s) => 'operatorKey' in s) ? 'operator'
          : security && !security.some((s) => 'bearerAuth' in s) ? 'holder'
            : 'partner';
    const content = op.requestBody?.content ?? {};
    const contentType = Object.keys(content)[0];
    return {
      method: method.toUpperCase() as Operation['method'],
      path,
      op,
      pathParams: parameters.filter((p) => p.in === 'path').map((p) => p.name),
      query: parameters.filter((p) => p.in === 'query').map((p) => ({ name: p.name, schema: p.schema })),
      ...(contentType ? { body: { contentType, schema: resolve(content[contentType].schema) } } : {}),
      caller,
    };
  }),
);

export interface Sent {
  status: number;
  headers: Record<string, unknown>;
  body: string;
}

export function headersFor(world: World, operation: Operation): Record<string, string> {
  if (operation.caller === 'holder') return { authorization: world.holderAuth };
  if (operation.caller === 'operator') return world.operatorHeaders;
  if (operation.caller === 'partner') return world.partner.headers;
  return {};
}

export function urlFor(world: World, operation: Operation, override: Record<string, string> = {}, query = ''): string {
  let url = operation.path;
  for (const param of operation.pathParams) {
    const value = override[param] ?? encodeURIComponent(param === 'token' ? 'not-a-token' : idFor(world, operation.path, param));
    url = url.replace(`{${param}}`, value);
  }
  return query ? `${url}?${query}` : url;
}

/** Checks one answer against the document: declared status, problem+json for errors, body valid for the status. */
export function checkAnswer(operation: Operation, label: string, sent: Sent): string | undefined {
  const where = `${operation.method} ${operation.path} [${label}] → ${sent.status}`;
  if (sent.status >= 500) return `${where}: server error ${sent.body.slice(0, 200)}`;
  const declared = operation.op.responses?.[String(sent.status)];
  if (!declared) return `${where}: status not declared (${Object.keys(operation.op.responses ?? {}).join(',')}) ${sent.body.slice(0, 160)}`;
  const type = String(sent.headers['content-type'] ?? '');
  if (sent.status >= 400) {
    if (!type.startsWith('application/problem+json')) return `${where}: error is ${type || 'untyped'}, not problem+json`;
    let body: Json;
    try {
      body = JSON.parse(sent.body);
    } catch {
      return `${where}: problem body is not JSON`;
    }
    if (typeof body.code !== 'string' || body.status !== sent.status) return `${where}: problem without code or with another status`;
  }
  const media = Object.keys(declared.content ?? {}).find((name) => type.startsWith(name));
  if (declared.content && !media && sent.body.length > 0) return `${where}: content-type ${type} not declared`;
  if (media && media.includes('json')) {
    const validate = validatorFor(declared.content[media].schema);
    if (!validate(JSON.parse(sent.body))) return `${where}: body does not match the declared schema: ${ajv.errorsText(validate.errors).slice(0, 300)}`;
  }
  return undefined;
}

export async function send(h: Harness, operation: Operation, url: string, headers: Record<string, string>, payload?: string | Buffer): Promise<Sent> {
  const response = await h.app.inject({ method: operation.method, url, headers, ...(payload === undefined ? {} : { payload }) });
  return { status: response.statusCode, headers: response.headers, body: response.body };
}


export interface CrossWalk {
  /** How many requests with the other world's ids were compared with the same requests with missing ids. */
  compared: number;
  failures: string[];
}

/**
 * One world addresses every operation with another world's ids (in the path, in query filters and cursors, in body
 * references): each answer must be exactly what a missing id gets (404 in the path). The tenant-isolation test
 * walks one partner against another; the sandbox test a partner's test world against its live world and back.
 * `headersOf` picks the caller's credentials for an operation (default: the intruder's, as `headersFor`); `skip`
 * leaves operations out (covered elsewhere).
 */
export async function crossWalk(
  h: Harness, intruder: World, victim: World,
  { headersOf = (operation) => headersFor(intruder, operation), skip = () => false }: {
    headersOf?: (operation: Operation) => Record<string, string>;
    skip?: (operation: Operation) => boolean;
  } = {},
): Promise<CrossWalk> {
  const failures: string[] = [];
  let compared = 0;
  // A missing id of the same kind: what the intruder must not be able to tell apart from the victim's.
  // Same prefix and creation time (the ULID's first 10 characters), so that a cursor sorts where the real one does.
  const missing = (id: string) => `${id.slice(0, id.indexOf('_') + 11)}${'z'.repeat(16)}`;
  const compare = async (operation: Operation, label: string, request: (id: (victimId: string) => string) => Promise<Sent>, expect404: boolean) => {
    const used: [string, string][] = [];
    const foreign = await request((id) => id);
    const absent = await request((id) => {
      used.push([missing(id), id]);
      return missing(id);
    });
    compared++;
    const where = `${operation.method} ${operation.path} [${label}]`;
    if (expect404 && foreign.status !== 404) failures.push(`${where}: ${foreign.status} ${foreign.body.slice(0, 160)}`);
    // Indistinguishable: the same status and the same body, once the id the client sent and the request id are masked.
    const masked = (sent: Sent, swap: boolean) => {
      let body = sent.body.replace(/req_[0-9a-z]{26}/g, 'req_…');
      for (const [absentId, victimId] of used) body = swap ? body.replaceAll(absentId, victimId) : body;
      return `${sent.status} ${body}`;
    };
    if (masked(foreign, false) !== masked(absent, true)) {
      failures.push(`${where}: foreign id → ${masked(foreign, false).slice(0, 200)} | missing id → ${masked(absent, true).slice(0, 200)}`);
    }
  };

  for (const operation of operations) {
    // Operators act for the provider across partners by design; public routes belong to nobody.
    if (operation.caller === 'public' || operation.caller === 'operator' || skip(operation)) continue;
    const headers = { ...headersOf(operation), ...(operation.body?.contentType === 'application/json' ? { 'content-type': 'application/json' } : {}) };
    const payload = operation.body?.contentType === 'application/json' ? '{}' : operation.body ? '' : undefined;
    // Path: each id parameter in turn is the victim's, the others the intruder's own.
    for (const param of operation.pathParams.filter((name) => name !== 'slug' && name !== 'token')) {
      const victimId = idFor(victim, operation.path, param);
      await compare(operation, `path ${param}`, (id) =>
        send(h, operation, urlFor(intruder, operation, { [param]: encodeURIComponent(id(victimId)) }), headers, payload), true);
    }
    // Query filters and cursors that take ids.
    for (const { name } of operation.query) {
      const victimId = { customer: victim.ids.customer, mailbox: victim.ids.mailbox, object_id: victim.ids.mailbox, domain: victim.ids.domain,
        list: victim.ids.list, item_id: victim.ids.mailbox, starting_after: victim.ids.customer, message_id: victim.ids.message }[name];
      if (!victimId) continue;
      await compare(operation, `query ${name}`, (id) => send(h, operation, urlFor(intruder, operation, {}, `${name}=${encodeURIComponent(id(victimId))}`), headers), false);
    }
  }

  // Body references to the victim's objects, each in an otherwise valid request of the intruder's.
  const bodyReferences: [string, string, (id: (v: string) => string) => object, boolean][] = [
    ['POST', '/v1/domains', (id) => ({ name: 'intrusion.it', customer: id(victim.ids.customer!) }), false],
    ['PATCH', `/v1/domains/${intruder.ids.domain}`, (id) => ({ customer: id(victim.ids.customer!) }), false],
    ['POST', '/v1/mailboxes', (id) => ({ local_part: 'intrusion', domain: 'pec.example.it', customer: id(victim.ids.customer!), plan: 'standard' }), false],
    ['POST', '/v1/supervisors', (id) => ({ mailbox: id(victim.ids.mailbox!), name: 'Intrusion', email: 'intrusion@example.com' }), false],
    ['POST', `/v1/supervisors/${intruder.ids.supervisor}/mailboxes`, (id) => ({ mailbox: id(victim.ids.mailbox!) }), false],
    ['POST', `/v1/supervisors/${intruder.ids.supervisor}/bulk`, (id) => ({ action: 'renew', years: 1, mailboxes: [id(victim.ids.mailbox!)] }), false],
    ['POST', `/v1/mailboxes/${intruder.ids.mailbox}/newsletter/lists/${intruder.ids.list}/members`, (id) => ({ contacts: [id(victim.ids.contact!)] }), false],
    ['POST', `/v1/mailboxes/${intruder.ids.mailbox}/newsletter/campaigns`, (id) => ({ list: id(victim.ids.list!), subject: 'x', html: '<p>x</p>' }), false],
    ['POST', `/v1/events/${intruder.ids.event}/redeliver`, (id) => ({ endpoint: id(victim.ids.endpoint!) }), false],
  ];
  for (const [method, url, body, expect404] of bodyReferences) {
    const operation = { method, path: url } as Operation;
    const partnerHeaders = headersOf({ ...operation, caller: 'partner' } as Operation);
    await compare(operation, 'body reference', (id) =>
      send(h, operation, url, { ...partnerHeaders, 'content-type': 'application/json' }, JSON.stringify(body(id))), expect404);
  }
  return { compared, failures };
}

/** Operations of the sandbox only (test helpers, test clocks): a live key or token is refused 403 `test_mode_only`. */
export const testModeOnly = (path: string): boolean => path.startsWith('/v1/test_helpers/') || path.startsWith('/v1/test_clocks');
