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

