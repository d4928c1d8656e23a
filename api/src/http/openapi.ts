import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { MAX_FAILURES_PER_ADDRESS, MAX_FAILURES_PER_USER, SIGN_IN_WINDOW_MS } from '../access/login-guard.ts';

type Json = unknown;
type JsonObject = Record<string, Json>;

const isObject = (value: Json): value is JsonObject => typeof value === 'object' && value !== null && !Array.isArray(value);
const isSchema = (value: JsonObject): boolean =>
  'type' in value || 'anyOf' in value || 'oneOf' in value || 'allOf' in value || 'enum' in value || 'const' in value;

/**
 * Route schemas are written inline (so TypeBox infers handler types); every schema with a `title` becomes a
 * named component and is referenced by `$ref`, which is what gives the SDK named types.
 */
export function hoistTitledSchemas(document: JsonObject): JsonObject {
  const doc = structuredClone(document);
  const components = (doc.components ??= {}) as JsonObject;
  const schemas = (components.schemas ??= {}) as JsonObject;
  const serialized = new Map<string, string>();

  const visit = (node: Json): Json => {
    if (Array.isArray(node)) return node.map(visit);
    if (!isObject(node)) return node;
    for (const [key, value] of Object.entries(node)) {
      // Query and path parameters are flattened by @fastify/swagger (descriptions move out of the schema),
      // so their schemas stay inline rather than becoming variants of a component.
      if (key !== 'parameters') node[key] = visit(value);
    }
    if (typeof node.title === 'string' && isSchema(node)) {
      const name = node.title;
      const text = JSON.stringify(node);
      const previous = serialized.get(name);
      if (previous !== undefined && previous !== text) {
        throw new Error(`Two different schemas are titled '${name}'; titles name OpenAPI components and must be unique.`);
      }
      serialized.set(name, text);
      schemas[name] = node;
      return { $ref: `#/components/schemas/${name}` };
    }
    return node;
  };
  doc.paths = visit(doc.paths);
  components.schemas = Object.fromEntries(Object.entries(schemas).sort(([a], [b]) => a.localeCompare(b)));
  return doc;
}

const problemRef = { $ref: '#/components/schemas/Problem' };
const standardProblems: Record<string, string> = {
  400: 'Invalid request',
  401: 'Authentication required',
  404: 'Resource not found',
  413: 'Payload too large',
  415: 'Unsupported media type',
  429: 'Too many requests',
  503: 'Service unavailable (retry after `Retry-After` seconds)',
};

/**
 * The problems every operation can answer with, whatever its route declares, added to the document in one place:
 * 400 (any input can be malformed), 429 (rate limits), 503 (the database is unreachable); 401 unless public; 404
 * with path parameters; 413 and 415 with a body. A body every field of which is optional may be left out.
 */
export function withStandardProblems(document: JsonObject): JsonObject {
  const doc = structuredClone(document);
  for (const methods of Object.values((doc.paths ?? {}) as Record<string, Record<string, JsonObject>>)) {
    for (const operation of Object.values(methods)) {
      const isPublic = Array.isArray(operation.security) && operation.security.length === 0;
      const hasPathParams = ((operation.parameters ?? []) as JsonObject[]).some((parameter) => parameter.in === 'path');
      const body = operation.requestBody as JsonObject | undefined;
      const statuses = [400, 429, 503, ...(isPublic ? [] : [401]), ...(hasPathParams ? [404] : []), ...(body ? [413, 415] : [])];
      const responses = (operation.responses ??= {}) as Record<string, JsonObject>;
      for (const status of statuses) {
        const response = (responses[status] ??= { description: standardProblems[status]! });
        const content = (response.content ??= {}) as JsonObject;
        content['application/problem+json'] ??= { schema: problemRef };
      }
      const schema = ((body?.content as JsonObject | undefined)?.['application/json'] as JsonObject | undefined)?.schema as JsonObject | undefined;
      if (body && schema?.type === 'object' && !(Array.isArray(schema.required) && schema.required.length > 0)) body.required = false;
    }
  }
  return doc;
}

export const openApiInfo = {
  title: 'PEC Partner API',
  version: '2026-11-22',
  description:
    'Run a certified e-mail (PEC) reseller business: customers, prepaid credit, domains, mailboxes, add-ons. ' +
    'Errors are RFC 9457 problem documents; every POST accepts an `Idempotency-Key`.',
};

export async function registerOpenApi(app: FastifyInstance): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: openApiInfo,
      components: {
        securitySchemes: {
          bearerAuth: {
            type: 'http',
            scheme: 'bearer',
            description: 'A secret API key (`sk_live_…`, or `sk_test_…` for the sandbox) or an access token from `POST /oauth/token`.',
          },
          mailboxBasic: {
            type: 'http',
            scheme: 'basic',
            description: "A mailbox holder: the PEC address as user name and the mailbox password; or a delegation's collaborator: its own e-mail and password, on the delegated mailbox. " +
              `Failed sign-ins are counted across every door (REST, SMTP, IMAP, POP3, webmail) and every server: ${MAX_FAILURES_PER_USER} for one user name, or ` +
              `${MAX_FAILURES_PER_ADDRESS} from one address, within ${SIGN_IN_WINDOW_MS / 60_000} minutes lock that name or address out while they stay that recent: ` +
              '429 `too_many_sign_in_attempts` with `Retry-After`, the password unchecked.',
          },
          operatorKey: {
            type: 'http',
            scheme: 'bearer',
            description: "The provider's operator: an operator API key (`sk_op_…`) with the scope each operation names. Partner keys are refused there (403).",
          },
          mailboxSession: {
            type: 'http',
            scheme: 'bearer',
            description: "A supervisor's mailbox session (`mbs_…`) from `POST /v1/mailbox-sessions`: one mailbox, read_write, no sending.",
          },
        },
      },
      security: [{ bearerAuth: [] }],
      tags: [
        { name: 'Authentication', description: 'API keys and OAuth access tokens.' },
        { name: 'Customers', description: "The partner's customers (anagrafiche)." },
        { name: 'Credit', description: 'Prepaid credit, its ledger and the price list.' },
        { name: 'Domains', description: "Certification of customers' own domains through DNS, and the provider's domains." },
        { name: 'Mailboxes', description: 'PEC mailboxes: activation, plans, renewals and the whole lifecycle.' },
        { name: 'Add-ons', description: 'Extra space, delegation seats, supervisor, branding and newsletter, bought per mailbox.' },
        { name: 'Delegation', description: 'Multiutenza: collaborators with their own credentials and an access mode.' },
        { name: 'Supervisors', description: 'Consoles that manage several mailboxes, with single-use webmail sign-in links.' },
        { name: 'Branding', description: 'Small Business branding of login page and private area, per customer.' },
        { name: 'Newsletter', description: 'Address book, lists, campaigns sent through the outbound relay, reports.' },
        { name: 'Messages', description: "A holder's certified messages: sending, folders, receipts." },
        { name: 'Sign-ins', description: "A mailbox's sign-in history at every door (REST, SMTP, IMAP, POP3, webmail)." },
        { name: 'Log register', description: 'The legally required log of every PEC event, kept 30 months.' },
        { name: 'PEC', description: 'Provider identity, the provider index, and verification of received PEC messages.' },
        { name: 'System', description: 'Health and metadata.' },
        { name: 'Test helpers', description: 'Test mode (sandbox) only: simulate what happens outside the API in live mode (money arriving, DNS records), through the same transitions and events.' },
        { name: 'Operator', description: "The provider's own staff: partners, suspension, credit adjustments, top-up review, bank statements, audit trail. Operator keys only." },
      ],
    },
    transformObject: (documentObject) =>
      hoistTitledSchemas(withStandardProblems((documentObject as { openapiObject: JsonObject }).openapiObject)) as never,
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
}
