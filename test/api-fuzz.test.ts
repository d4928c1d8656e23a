/**
 * A schema-driven fuzzer over every operation of the committed OpenAPI document: malformed and boundary values in
 * every path parameter, query parameter and body field (NUL, invalid UTF-8, lone surrogates, huge and empty
 * strings, wrong types, deep JSON, bad media types, hostile uploads). No answer may be a 5xx, every answer must be
 * a status the operation declares, errors must be problem+json, and every body must match the schema declared for
 * its status. Also the requests Node's HTTP parser refuses before Fastify sees them.
 */
import t from 'tap';
import { harness } from './helpers/harness.ts';
import { checkAnswer, headersFor, operations, send, urlFor, type Operation, type Sent } from './helpers/openapi-walk.ts';
import { buildWorld } from './helpers/world.ts';

// ---- what the fuzzer sends -------------------------------------------------------------------------------------

/** Path values, already percent-encoded as a client would put them in the URL. */
const PATH_VALUES: [string, string][] = [
  ['NUL', '%00'], ['NUL inside', 'abc%00def'], ['invalid UTF-8', '%FF'], ['overlong UTF-8', '%C0%AF'], ['bad escape', '%zz'],
  ['encoded surrogate', '%ED%A0%80'], ['101 chars', 'x'.repeat(101)], ['traversal', '..%2F..%2Fetc%2Fpasswd'], ['quote', "'%20OR%201%3D1--"],
  ['emoji', '%F0%9F%98%80'], ['well-formed unknown id', 'cus_01aaaaaaaaaaaaaaaaaaaaaaaa'], ['unknown prefix', 'zzz_01aaaaaaaaaaaaaaaaaaaaaaaa'],
];
const QUERY_VALUES: [string, string][] = [
  ['NUL', '%00'], ['invalid UTF-8', '%FF'], ['bad escape', '%'], ['huge', 'x'.repeat(20_000)], ['empty', ''], ['negative', '-1'],
  ['float', '1.5'], ['overflow', '1e999'], ['text', 'abc'], ['brackets', '%5B%5D'], ['surrogate', '%ED%A0%80'],
];
/** A message with `parts` MIME parts, each a line of text. */
const manyParts = (parts: number) =>
  'From: a@pec.example.it\r\nTo: b@pec.example.it\r\nSubject: parts\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n' +
  '--b\r\nContent-Type: text/plain\r\n\r\nx\r\n'.repeat(parts) + '--b--\r\n';
const deep = (levels: number) => '['.repeat(levels) + ']'.repeat(levels);
const RAW_BODIES: [string, string | Buffer][] = [
  ['empty', ''], ['null', 'null'], ['array', '[]'], ['string', '"text"'], ['number', '12'], ['truncated', '{"a":'], ['not JSON', '{oops}'],
  ['deep array', deep(5_000)], ['deep object', '{"a":'.repeat(2_000) + '1' + '}'.repeat(2_000)],
  ['invalid UTF-8', Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d])],
  ['BOM', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{}')])],
  ['prototype poisoning', '{"__proto__":{"polluted":true}}'], ['constructor poisoning', '{"constructor":{"prototype":{"polluted":true}}}'],
  ['over the size limit', `{"a":"${'x'.repeat(1_100_000)}"}`],
];
const FIELD_VALUES: [string, unknown][] = [
  ['null', null], ['true', true], ['zero', 0], ['negative', -1], ['huge number', 1e308], ['unsafe integer', 2 ** 53 + 1], ['float', 0.5],
  ['empty string', ''], ['NUL', 'a\u0000b'], ['lone surrogate', 'x\ud800y'], ['control characters', '\u0001\u001f\u007f'],
  ['huge string', 'x'.repeat(70_000)], ['array', []], ['object', {}], ['operator object', { $gt: '' }], ['nested', JSON.parse(deep(40))],
  ['well-formed unknown id', 'cus_01aaaaaaaaaaaaaaaaaaaaaaaa'], ['date garbage', '2026-02-30T25:61:00Z'],
];

t.test('every operation, every malformed input: no 5xx, declared statuses, problem+json, valid bodies', async (t) => {
  const h = await harness(t);
  const world = await buildWorld(h, 'Fuzz');
  const failures: string[] = [];
  let requests = 0;
  const check = (operation: Operation, label: string, sent: Sent) => {
    requests++;
    const failure = checkAnswer(operation, label, sent);
    if (failure) failures.push(failure);
  };
  // Destructive operations last, so that the rest meet a world whose objects still exist.
  // (operator actions, such as suspending the partner, come after everything else).
  const rank = (operation: Operation) => (operation.caller === 'operator' ? 2 : operation.method === 'DELETE' ? 1 : 0);
  const ordered = [...operations].sort((a, b) => rank(a) - rank(b));
  for (const operation of ordered) {
    const headers = headersFor(world, operation);
    const jsonHeaders = operation.body?.contentType === 'application/json' ? { ...headers, 'content-type': 'application/json' } : headers;
    const emptyBody = operation.body?.contentType === 'application/json' ? '{}' : undefined;
    for (const param of operation.pathParams) {
      for (const [label, value] of PATH_VALUES) {
        check(operation, `path ${param}: ${label}`, await send(h, operation, urlFor(world, operation, { [param]: value }), jsonHeaders, emptyBody));
      }
    }
    for (const { name } of operation.query) {
      for (const [label, value] of QUERY_VALUES) {
        check(operation, `query ${name}: ${label}`, await send(h, operation, urlFor(world, operation, {}, `${name}=${value}`), headers));
      }
      check(operation, `query ${name}: repeated`, await send(h, operation, urlFor(world, operation, {}, `${name}=a&${name}=b`), headers));
    }
    if (!operation.body) continue;
    const url = urlFor(world, operation);
    if (operation.body.contentType === 'application/json') {
      for (const [label, raw] of RAW_BODIES) check(operation, `body: ${label}`, await send(h, operation, url, jsonHeaders, raw));
      for (const [label, type] of [['text/plain', 'text/plain'], ['XML', 'application/xml'], ['multipart', 'multipart/form-data; boundary=x']]) {
        check(operation, `body as ${label}`, await send(h, operation, url, { ...headers, 'content-type': type! }, '--x\r\n\r\n--x--'));
      }
      const properties = Object.keys(operation.body.schema.properties ?? {});
      for (const property of properties) {
        for (const [label, value] of FIELD_VALUES) {
          check(operation, `field ${property}: ${label}`, await send(h, operation, url, jsonHeaders, JSON.stringify({ [property]: value })));
        }
      }
      check(operation, 'unknown field', await send(h, operation, url, jsonHeaders, JSON.stringify({ zz_unknown: 1 })));
    } else {
      // Uploads (.eml, CSV, logos): garbage, truncated MIME, and a media type the operation does not take.
      const type = operation.body.contentType;
      for (const [label, raw] of [
        ['empty', ''], ['binary garbage', Buffer.from([0, 0xff, 0xfe, 0x00, 0x80, 0x0a])], ['NUL text', 'a,b\n\u0000,\u0000\n'],
        ['broken multipart', 'Content-Type: multipart/mixed; boundary="\r\n\r\n--\r\n'], ['invalid UTF-8 text', Buffer.from([0x61, 0x2c, 0xff, 0x0a])],
        ['2 000 MIME parts', manyParts(2_000)], ['boundary of dashes', 'From: a@b.it\r\nContent-Type: multipart/mixed; boundary=--\r\n\r\n' + '----\r\nx\r\n'.repeat(3_000)],
      ] as [string, string | Buffer][]) {
        check(operation, `upload: ${label}`, await send(h, operation, url, { ...headers, 'content-type': type }, raw));
      }
      check(operation, 'upload as JSON', await send(h, operation, url, { ...headers, 'content-type': 'application/json' }, '{}'));
    }
  }
  if (process.env.WALK_DUMP) (await import('node:fs')).writeFileSync(process.env.WALK_DUMP, failures.join('\n'));
  t.ok(requests > 3_000, `${requests} malformed requests over ${operations.length} operations`);
  t.same(failures.slice(0, 40), [], `${failures.length} answers broke the contract`);
});

t.test("requests Node's HTTP parser refuses answer as problems too, and the server goes on", async (t) => {
  const h = await harness(t);
  const base = new URL(await h.listen());
  const { connect } = await import('node:net');
  /** Sends raw bytes and returns everything the server answers before it closes the connection. */
  const raw = (bytes: string) =>
    new Promise<string>((resolve, reject) => {
      const socket = connect(Number(base.port), base.hostname, () => socket.write(bytes));
      let answer = '';
      socket.setEncoding('latin1');
      socket.on('data', (chunk: string) => (answer += chunk));
      socket.on('end', () => resolve(answer));
      socket.on('error', reject);
      socket.setTimeout(5_000, () => socket.destroy(new Error('no answer')));
    });
  const cases: [string, string, number, string][] = [
    ['oversized headers', `GET /v1/customers HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431, 'headers_too_large'],
    ['an over-long URL', `GET /v1/customers?q=${'a'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`, 431, 'headers_too_large'],
    ['not HTTP at all', '\u0016\u0003\u0001\u0002\u0000\u0001\u0000\u0001\u00fc\u0003\u0003garbage\r\n\r\n', 400, 'malformed_request'],
    ['a NUL in a header', 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\u0000b\r\n\r\n', 400, 'malformed_request'],
    ['a bad Content-Length', 'POST /v1/customers HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n', 400, 'malformed_request'],
  ];
  for (const [label, request, status, code] of cases) {
    const answer = await raw(request);
    const [head, body] = answer.split('\r\n\r\n');
    t.match(head, new RegExp(`^HTTP/1\\.1 ${status} `), `${label}: ${status}`);
    t.match(head, /content-type: application\/problem\+json/i, `${label}: a problem document`);
    t.match(JSON.parse(body ?? '{}'), { status, code, type: `urn:pec-partner:problem:${code}` }, `${label}: code ${code}`);
    t.notMatch(body ?? '', /aaaaaaaaaa/, `${label}: nothing of the request echoed`);
  }
  const health = await fetch(new URL('/healthz', base));
  t.equal(health.status, 200, 'the server still answers');
});
