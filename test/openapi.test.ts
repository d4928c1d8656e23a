import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const root = fileURLToPath(new URL('..', import.meta.url));
const run = promisify(execFile);

t.test('the committed OpenAPI document matches the route schemas', async (t) => {
  // The generator's --check mode renders the document from the code and compares it byte for byte.
  const result = await run('npx', ['tsx', 'openapi/generate.ts', '--check'], { cwd: root }).then(
    () => 'in sync',
    (error: { stderr: string }) => error.stderr,
  );
  t.equal(result, 'in sync', 'run `npm run openapi` and commit the result');
});

t.test('the document is OpenAPI 3.1 with named components, operation ids and problem responses', async (t) => {
  const doc = JSON.parse(await readFile(new URL('../openapi/openapi.json', import.meta.url), 'utf8'));
  t.equal(doc.openapi, '3.1.0');
  t.ok(doc.components.securitySchemes.bearerAuth);
  const operations = Object.entries(doc.paths).flatMap(([path, methods]) =>
    Object.entries(methods as Record<string, any>).map(([method, op]) => ({ path, method, op })),
  );
  const ids = operations.map(({ op }) => op.operationId);
  t.equal(new Set(ids).size, ids.length, 'operation ids are unique');
  t.ok(ids.every(Boolean), 'every operation has an id');
  for (const { path, method, op } of operations) {
    t.ok(op.tags?.length, `${method} ${path} is tagged`);
    // Every authenticated operation documents the 401 problem; public ones (`security: []`) have none.
    const isPublic = Array.isArray(op.security) && op.security.length === 0;
    if (path.startsWith('/v1/') && !isPublic) {
      t.same(op.responses['401'].content['application/problem+json'].schema, { $ref: '#/components/schemas/Problem' }, `${method} ${path} documents 401`);
    }
  }
  t.same(doc.paths['/v1/pec/ca-certificate'].get.security, [], 'the CA certificate is public');
  t.same(doc.paths['/v1/mailboxes/{id}/messages'].post.security, [{ mailboxBasic: [] }], 'holders sign in with the mailbox credentials');
  t.same(doc.paths['/v1/customers'].post.requestBody.content['application/json'].schema, { $ref: '#/components/schemas/CustomerCreate' });
  t.same(doc.paths['/healthz'].get.security, [], 'public routes need no credentials');
});

t.test('the SDK types are generated from the committed document', async (t) => {
  const out = path.join(await mkdtemp(path.join(os.tmpdir(), 'sdk-types-')), 'schema.ts');
  // The same command `npm run openapi` runs, with only the output redirected.
  const sdkPackage = JSON.parse(await readFile(new URL('../sdk/package.json', import.meta.url), 'utf8'));
  const [command, ...args] = (sdkPackage.scripts.generate as string).split(/\s+/);
  t.equal(args.at(-1), 'src/schema.ts', 'the generate script ends with its output path');
  await run('npx', [command!, ...args.slice(0, -1), out], { cwd: fileURLToPath(new URL('../sdk/', import.meta.url)) });
  const committed = await readFile(new URL('../sdk/src/schema.ts', import.meta.url), 'utf8');
  t.equal(await readFile(out, 'utf8'), committed, 'run `npm run openapi` and commit sdk/src/schema.ts');
  await rm(path.dirname(out), { recursive: true });
});

t.test('conventions hold over the whole document, so the next route cannot break them', async (t) => {
  const doc = JSON.parse(await readFile(new URL('../openapi/openapi.json', import.meta.url), 'utf8'));
  const schemas = doc.components.schemas as Record<string, any>;
  const resolve = (schema: any) => (schema?.$ref ? schemas[schema.$ref.split('/').pop()] : schema);
  const broken: string[] = [];
  const problem = { $ref: '#/components/schemas/Problem' };
  for (const [path, methods] of Object.entries(doc.paths as Record<string, Record<string, any>>)) {
    for (const [method, op] of Object.entries(methods)) {
      const where = `${method.toUpperCase()} ${path}`;
      if (!op.operationId || !op.summary || !op.tags?.length) broken.push(`${where}: operationId, summary and a tag`);
      const isPublic = Array.isArray(op.security) && op.security.length === 0;
      const parameters: any[] = op.parameters ?? [];
      const expected = [400, 429, 503, ...(isPublic ? [] : [401]), ...(parameters.some((p) => p.in === 'path') ? [404] : []), ...(op.requestBody ? [413, 415] : [])];
      for (const status of expected) {
        if (!op.responses[status]?.content?.['application/problem+json']) broken.push(`${where}: declares no ${status} problem`);
      }
      for (const [status, response] of Object.entries(op.responses as Record<string, any>)) {
        const media = response.content?.['application/problem+json'];
        if (Number(status) >= 400 && !media) broken.push(`${where}: ${status} is not a problem document`);
        if (media && JSON.stringify(media.schema) !== JSON.stringify(problem)) broken.push(`${where}: ${status} problem is not the Problem schema`);
      }
      // Every list pages with the same two parameters.
      const ok = resolve(op.responses['200']?.content?.['application/json']?.schema);
      if (ok?.properties?.object?.const === 'list') {
        for (const name of ['limit', 'starting_after']) {
          if (!parameters.some((p) => p.in === 'query' && p.name === name)) broken.push(`${where}: a list without \`${name}\``);
        }
        for (const field of ['data', 'has_more', 'next_cursor']) if (!ok.properties[field]) broken.push(`${where}: a list without ${field}`);
      }
      // A body whose fields are all optional may be left out; one with required fields may not.
      const body = op.requestBody;
      const bodySchema = resolve(body?.content?.['application/json']?.schema);
      if (bodySchema?.type === 'object' && body.required !== Boolean(bodySchema.required?.length)) broken.push(`${where}: requestBody.required disagrees with the schema`);
      for (const parameter of parameters) {
        if (!/^[a-z][a-z0-9_]*$/.test(parameter.name)) broken.push(`${where}: parameter ${parameter.name} is not snake_case`);
      }
    }
  }
  // JSON in snake_case: every property name of every component.
  for (const [name, schema] of Object.entries(schemas)) {
    for (const property of Object.keys(schema.properties ?? {})) {
      if (!/^[a-z][a-z0-9_]*$/.test(property) && !(name === 'Problem' && property === 'request_id')) broken.push(`${name}.${property} is not snake_case`);
    }
  }
  t.same(broken, [], 'every operation follows the conventions');
});
