import { createHash } from 'node:crypto';
import { crc32, deflateSync } from 'node:zlib';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import t from 'tap';
import { api } from './helpers/fixtures.ts';
import { harness, json, type Harness, type TestPartner } from './helpers/harness.ts';

/** A real PNG: signature, IHDR, one deflated IDAT of RGB rows, IEND; every chunk with its CRC. */
function chunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}
function png(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit RGB, deflate, no filter method, no interlace
  const rows = Buffer.alloc(Math.min(height, 64) * (1 + Math.min(width, 64) * 3), 0x7f);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(rows)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

const COLORS = { primary: '#0055AA', secondary: '#223344', background: '#fafafa', text: '#111111' };
const TEXTS = { company_name: 'Studio Rossi', login_title: 'Benvenuto', welcome_text: 'Accedi alla PEC dello studio.', footer: 'Studio Rossi srl, P.IVA 01234567897' };

/** A partner with a customer whose mailbox has (or has not yet) the branding add-on. */
async function setup(h: Harness, partner: TestPartner, local: string, withAddon = true) {
  const a = api(h, partner);
  await a.topUp(100_000);
  const customer = await a.customer();
  const mailbox = (await a.post('/v1/mailboxes', { local_part: local, domain: 'pec.example.it', customer, plan: 'standard' })).body;
  const addon = withAddon ? (await a.post(`/v1/mailboxes/${mailbox.id}/addons`, { kind: 'branding' })).body : null;
  if (withAddon && addon.status !== 'active') throw new Error(`add-on: ${JSON.stringify(addon)}`);
  return { a, call: client(h, partner), customer, mailbox, addon };
}

/** JSON requests with any method (the shared fixture client has no PUT). */
function client(h: Harness, partner: TestPartner) {
  return async (method: 'GET' | 'PUT' | 'POST' | 'DELETE', url: string, payload?: unknown) => {
    const response = await h.app.inject({ method, url, headers: partner.headers, ...(payload === undefined ? {} : { payload: payload as object }) });
    return { status: response.statusCode, body: json(response), headers: response.headers };
  };
}

/** Raw requests: bodies of any type, answers as text. */
function raw(h: Harness, partner: TestPartner | null) {
  return async (method: 'GET' | 'PUT', url: string, options: { type?: string; body?: Buffer | string; headers?: Record<string, string> } = {}) => {
    const response = await h.app.inject({
      method,
      url,
      headers: { ...(partner ? partner.headers : {}), ...(options.type ? { 'content-type': options.type } : {}), ...options.headers },
      ...(options.body === undefined ? {} : { payload: options.body }),
    });
    return { status: response.statusCode, headers: response.headers, body: response.body, text: response.body, bytes: response.rawPayload };
  };
}

t.test('the add-on gate, the branding resource, validation with per-field pointers, slugs and tenancy', async (t) => {
  const h = await harness(t);
  const partner = await h.partner();
  const { a, call, customer, mailbox } = await setup(h, partner, 'gate', false);
  const body = { slug: 'studio-rossi', colors: COLORS, texts: TEXTS };

  const refused = await call('PUT', `/v1/customers/${customer}/branding`, body);
  t.equal(refused.status, 409);
  t.match(refused.body, { code: 'addon_required', addon: 'branding', detail: /POST \/v1\/mailboxes\/\{id\}\/addons/ });
  t.equal((await a.get(`/v1/customers/${customer}/branding`)).status, 404);

  const addon = (await a.post(`/v1/mailboxes/${mailbox.id}/addons`, { kind: 'branding' })).body;
  const created = await call('PUT', `/v1/customers/${customer}/branding`, body);
  t.equal(created.status, 201);
  t.same(created.body, {
    object: 'branding', livemode: true, customer, slug: 'studio-rossi', status: 'active',
    colors: { primary: '#0055aa', secondary: '#223344', background: '#fafafa', text: '#111111' },
    texts: TEXTS, logo: null,
    login_url: 'http://pec-partner.test/brand/studio-rossi/login',
    updated_at: '2026-11-22T09:00:00.000Z',
  });
  const replaced = await call('PUT', `/v1/customers/${customer}/branding`, { ...body, texts: { company_name: '  Studio Rossi & Figli  ' } });
  t.equal(replaced.status, 200, 'a second PUT replaces');
  t.same(replaced.body.texts, { company_name: 'Studio Rossi & Figli', login_title: null, welcome_text: null, footer: null }, 'omitted texts are cleared');
  t.same((await a.get(`/v1/customers/${customer}/branding`)).body, replaced.body);

  // Every invalid field is reported at once, each with its pointer.
  const invalid = await call('PUT', `/v1/customers/${customer}/branding`, {
    slug: 'Not A Slug!',
    colors: { primary: 'red', secondary: '#12345', background: '#gggggg' },
    texts: { company_name: 'x'.repeat(101), welcome_text: '', footer: 'line\nbreak', signature: 'unknown' },
    extra: true,
  });
  t.equal(invalid.status, 400);
  t.equal(invalid.body.code, 'validation_error');
  const errors = Object.fromEntries(invalid.body.errors.map((e: { pointer: string; code: string; location: string }) => [e.pointer, `${e.location}:${e.code}`]));
  t.match(errors, {
    '/slug': 'body:invalid_format',
    '/colors/primary': 'body:invalid_format',
    '/colors/secondary': 'body:invalid_format',
    '/colors/background': 'body:invalid_format',
    '/colors/text': 'body:required',
    '/texts/company_name': 'body:out_of_range',
    '/texts/welcome_text': 'body:out_of_range',
    '/texts/footer': 'body:invalid_format',
    '/texts/signature': 'body:unknown_field',
    '/extra': 'body:unknown_field',
  });
  t.same((await a.get(`/v1/customers/${customer}/branding`)).body, replaced.body, 'nothing was written');

  // Slugs are unique across the provider, whoever owns them.
  const second = await a.customer();
  await a.post(`/v1/mailboxes/${(await a.post('/v1/mailboxes', { local_part: 'second', domain: 'pec.example.it', customer: second, plan: 'standard' })).body.id}/addons`, { kind: 'branding' });
  t.match((await call('PUT', `/v1/customers/${second}/branding`, body)).body, { status: 409, code: 'slug_taken' });

  // Another partner sees none of it and can change none of it.
  const other = await h.partner('Other partner');
  const b = client(h, other);
  const bRaw = raw(h, other);
  for (const [method, url] of [
    ['GET', `/v1/customers/${customer}/branding`],
    ['PUT', `/v1/customers/${customer}/branding`],
    ['DELETE', `/v1/customers/${customer}/branding`],
    ['GET', `/v1/customers/${customer}/branding/logo`],
    ['DELETE', `/v1/customers/${customer}/branding/logo`],
    ['GET', `/v1/customers/${customer}/branding/preview`],
  ] as const) {
    const r = await b(method, url, method === 'PUT' ? { ...body, slug: 'takeover' } : undefined);
    t.equal(r.status, 404, `${method} ${url} by another partner`);
    t.equal(r.body.code, 'resource_missing');
  }
  t.equal((await bRaw('PUT', `/v1/customers/${customer}/branding/logo`, { type: 'image/png', body: png(8, 8) })).status, 404);
  const bSetup = await setup(h, other, 'altro');
  t.equal((await b('PUT', `/v1/customers/${bSetup.customer}/branding`, body)).body.code, 'slug_taken', "another partner cannot take the slug");
  t.equal((await b('PUT', `/v1/customers/${bSetup.customer}/branding`, { ...body, slug: 'altro-studio' })).status, 201);
  t.equal((await b('PUT', `/v1/customers/${customer}/branding`, { ...body, slug: 'x-y-z' })).status, 404, 'nor brand the first partner\'s customer');
  t.equal((await a.get(`/v1/customers/${customer}/branding`)).body.texts.company_name, 'Studio Rossi & Figli', 'unchanged');

  // Without an active add-on the branding stays readable but inactive: not editable, pages gone; deletable.
  t.equal((await a.post(`/v1/mailboxes/${mailbox.id}/addons/${addon.id}/cancel`, { when: 'now' })).status, 200);
  t.equal((await a.get(`/v1/customers/${customer}/branding`)).body.status, 'inactive');
  t.equal((await call('PUT', `/v1/customers/${customer}/branding`, body)).body.code, 'addon_required');
  t.equal((await raw(h, null)('GET', '/brand/studio-rossi/login')).status, 404);
  t.same((await a.del(`/v1/customers/${customer}/branding`)).body, { object: 'branding', livemode: true, customer, deleted: true });
  t.equal((await a.get(`/v1/customers/${customer}/branding`)).status, 404);
  t.equal((await a.del(`/v1/customers/${customer}/branding`)).status, 404);
});

t.test('logos: PNG checked by content, other types and sizes refused', async (t) => {
  const h = await harness(t);
  const partner = await h.partner();
  const { a, call, customer } = await setup(h, partner, 'loghi');
  const put = raw(h, partner);
  const url = `/v1/customers/${customer}/branding/logo`;

  const early = await put('PUT', url, { type: 'image/png', body: png(10, 10) });
  t.equal(early.status, 409);
  t.equal(json(early).code, 'branding_not_configured');
  await call('PUT', `/v1/customers/${customer}/branding`, { slug: 'loghi', colors: COLORS, texts: TEXTS });

  const image = png(120, 40);
  const accepted = await put('PUT', url, { type: 'image/png', body: image });
  t.equal(accepted.status, 200);
  t.same(json(accepted), {
    object: 'branding_logo', livemode: true, customer, content_type: 'image/png', size_bytes: image.length, width: 120, height: 40, removed: [],
    url: 'http://pec-partner.test/brand/loghi/logo',
  });
  const stored = await put('GET', url);
  t.equal(stored.headers['content-type'], 'image/png');
  t.ok(stored.bytes.equals(image), 'stored byte for byte');
  t.match((await a.get(`/v1/customers/${customer}/branding`)).body.logo, { content_type: 'image/png', size_bytes: image.length, url: 'http://pec-partner.test/brand/loghi/logo' });

  const gif = Buffer.concat([Buffer.from('GIF89a'), Buffer.from([1, 0, 1, 0, 0, 0, 0, 0x2c, 0, 0, 0, 0, 1, 0, 1, 0, 0, 2, 2, 0x44, 1, 0, 0x3b])]);
  const jpeg = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 0x10, 0x4a, 0x46, 0x49, 0x46, 0, 1, 0xff, 0xd9]);
  const wrongMagic = Buffer.from(image);
  wrongMagic[1] = 0x51; // "\x89QNG"
  const badCrc = Buffer.from(image);
  badCrc[20] = badCrc[20]! ^ 0xff; // inside IHDR's data: its CRC no longer matches
  const truncated = image.subarray(0, image.length - 12); // no IEND
  for (const [name, type, body, status, code] of [
    ['a GIF declared as GIF', 'image/gif', gif, 415, 'unsupported_media_type'],
    ['a JPEG declared as JPEG', 'image/jpeg', jpeg, 415, 'unsupported_media_type'],
    ['JSON', 'application/json', JSON.stringify({ logo: 'x' }), 415, 'unsupported_media_type'],
    ['a GIF declared as PNG', 'image/png', gif, 400, 'bad_signature'],
    ['a JPEG declared as PNG', 'image/png', jpeg, 400, 'bad_signature'],
    ['a PNG with a wrong magic number', 'image/png', wrongMagic, 400, 'bad_signature'],
    ['a PNG with a corrupt header', 'image/png', badCrc, 400, 'malformed_png'],
    ['a truncated PNG', 'image/png', truncated, 400, 'malformed_png'],
    ['a PNG of 5000 px', 'image/png', png(5000, 10), 400, 'bad_dimensions'],
    ['a PNG declared as SVG', 'image/svg+xml', image, 400, 'invalid_encoding'],
  ] as const) {
    const r = await put('PUT', url, { type, body });
    t.equal(r.status, status, name);
    const problem = json(r);
    t.equal(r.headers['content-type'], 'application/problem+json; charset=utf-8', name);
    if (status === 400) t.match(problem, { code: 'invalid_logo', errors: [{ pointer: '/', location: 'body', code }] }, name);
    else t.equal(problem.code, code, name);
  }

  const big = Buffer.concat([png(1, 1), Buffer.alloc(300 * 1024)]);
  const tooLarge = await put('PUT', url, { type: 'image/png', body: big });
  t.equal(tooLarge.status, 413);
  t.match(json(tooLarge), { code: 'payload_too_large', detail: /at most 262144/ });
  t.ok((await put('GET', url)).bytes.equals(image), 'refused uploads leave the stored logo alone');

  // The logo can be removed; the branding stays.
  t.equal((await a.del(url)).body.logo, null);
  t.equal((await put('GET', url)).status, 404);
});

t.test('a malicious SVG comes back sanitised, the drawing kept', async (t) => {
  const h = await harness(t);
  const partner = await h.partner();
  const { a, call, customer } = await setup(h, partner, 'svg');
  await call('PUT', `/v1/customers/${customer}/branding`, { slug: 'svg-logo', colors: COLORS, texts: TEXTS });
  const put = raw(h, partner);
  const evil = `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">
<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" viewBox="0 0 200 80" width="200" height="80" onload="alert('onload')">
  <style><![CDATA[ .brand { fill: url(#sky); } ]]></style>
  <style>@import url("https://evil.example/steal.css");</style>
  <script type="text/javascript">alert('script')</script>
  <defs><linearGradient id="sky"><stop offset="0" stop-color="#0055aa"/><stop offset="1" stop-color="#00aaff"/></linearGradient></defs>
  <a xlink:href="javascript:alert('href')"><rect class="brand" x="0" y="0" width="80" height="80" onclick="alert('click')"/></a>
  <path id="mark" d="M100 10 L140 70 L60 70 Z" fill="#223344" onmouseover="alert('hover')"/>
  <circle cx="170" cy="40" r="20" fill="url(https://evil.example/paint.svg#p)" style="stroke: url(https://evil.example/s.svg#s)"/>
  <foreignObject width="100" height="100"><div xmlns="http://www.w3.org/1999/xhtml"><iframe src="https://evil.example/"></iframe></div></foreignObject>
  <image href="https://evil.example/tracker.png" width="1" height="1"/>
  <use xlink:href="https://evil.example/sprite.svg#icon"/>
  <use href="#mark" x="5"/>
  <set attributeName="href" to="javascript:alert('set')"/>
  <text x="10" y="78">Studio &amp; Co</text>
</svg>`;
  const uploaded = await put('PUT', `/v1/customers/${customer}/branding/logo`, { type: 'image/svg+xml; charset=utf-8', body: evil });
  t.equal(uploaded.status, 200);
  const result = json(uploaded);
  t.match(result, { content_type: 'image/svg+xml', width: null, height: null });
  t.ok(result.size_bytes < Buffer.byteLength(evil));
  t.same([...result.removed].sort(), [
    'attribute fill on circle', 'attribute href on image', 'attribute onclick on rect', 'attribute onload on svg',
    'attribute onmouseover on path', 'attribute style on circle', 'attribute xlink:href on a', 'attribute xlink:href on use',
    'element foreignObject', 'element image', 'element script', 'element set', 'element style (at-rule)',
  ]);

  const stored = await put('GET', `/v1/customers/${customer}/branding/logo`);
  t.equal(stored.headers['content-type'], 'image/svg+xml');
  const svg = stored.text;
  t.equal(svg.length, result.size_bytes);
  t.equal(XMLValidator.validate(svg), true, 'well-formed XML');
  for (const [what, pattern] of [
    ['scripts', /<script/i], ['event handlers', /\son[a-z]+\s*=/i], ['javascript: URLs', /javascript:/i], ['foreignObject', /foreignObject/i],
    ['external URLs', /evil\.example|https?:\/\/(?!www\.w3\.org\/)/i], ['@import', /@import/i], ['images', /<image/i], ['set animations', /<set/i],
    ['the DOCTYPE', /DOCTYPE/i], ['iframes', /iframe/i],
  ] as const) {
    t.notMatch(svg, pattern, `no ${what}`);
  }
  // The drawing itself is intact: root geometry, gradient, shapes, safe styles and references, text.
  const doc = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '' }).parse(svg).svg;
  t.match(doc, { viewBox: '0 0 200 80', width: '200', height: '80', xmlns: 'http://www.w3.org/2000/svg' });
  t.match(doc.defs.linearGradient, { id: 'sky', stop: [{ offset: '0', 'stop-color': '#0055aa' }, { offset: '1', 'stop-color': '#00aaff' }] });
  t.match(doc.a.rect, { class: 'brand', width: '80', height: '80' });
  t.match(doc.path, { id: 'mark', d: 'M100 10 L140 70 L60 70 Z', fill: '#223344' });
  t.match(doc.circle, { cx: '170', cy: '40', r: '20' });
  t.equal(doc.style.trim(), '.brand { fill: url(#sky); }', 'a style element referring only to the drawing is kept');
  t.match(doc.use, ['', { href: '#mark', x: '5' }], 'the in-drawing reference is kept, the external one emptied');
  t.equal(doc.text['#text'], 'Studio & Co');

  // The public logo is served with its type, no sniffing, a sandboxing CSP, and an ETag.
  const pub = raw(h, null);
  const served = await pub('GET', '/brand/svg-logo/logo');
  t.equal(served.status, 200);
  t.equal(served.text, svg);
  t.match(served.headers, {
    'content-type': 'image/svg+xml', 'x-content-type-options': 'nosniff', 'cache-control': 'public, max-age=300',
    'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox",
  });
  t.equal((await pub('GET', '/brand/svg-logo/logo', { headers: { 'if-none-match': String(served.headers.etag) } })).status, 304);

  for (const [name, body, code] of [
    ['not XML', '<svg xmlns="http://www.w3.org/2000/svg"><g></svg>', 'not_well_formed'],
    ['not an SVG', '<html xmlns="http://www.w3.org/1999/xhtml"/>', 'not_svg'],
    ['an SVG without its namespace', '<svg viewBox="0 0 1 1"><rect width="1" height="1"/></svg>', 'not_svg'],
    ['entity declarations', '<!DOCTYPE svg [<!ENTITY lol "lol">]><svg xmlns="http://www.w3.org/2000/svg"><text>&lol;</text></svg>', 'dtd_not_allowed'],
    ['nesting too deep for a logo', `<svg xmlns="http://www.w3.org/2000/svg">${'<g>'.repeat(100)}<rect/>${'</g>'.repeat(100)}</svg>`, 'too_complex'],
    ['only a script', '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', 'empty_svg'],
  ] as const) {
    const r = await put('PUT', `/v1/customers/${customer}/branding/logo`, { type: 'image/svg+xml', body });
    t.equal(r.status, 400, name);
    t.match(json(r), { code: 'invalid_logo', errors: [{ code }] }, name);
  }
});

t.test('the branded login page and the preview: escaped texts, colours, logo, content type and CSP', async (t) => {
  const h = await harness(t);
  const partner = await h.partner();
  const { a, call, customer } = await setup(h, partner, 'pagina');
  const hostile = {
    company_name: 'Rossi <script>alert("x")</script> & "Figli"',
    login_title: "Entra <img src=x onerror=alert(1)>",
    welcome_text: 'Riga uno\nRiga <b>due</b>',
    footer: "</footer><style>body{display:none}</style>'",
  };
  await call('PUT', `/v1/customers/${customer}/branding`, { slug: 'rossi', colors: COLORS, texts: hostile });
  const logo = png(60, 20);
  await raw(h, partner)('PUT', `/v1/customers/${customer}/branding/logo`, { type: 'image/png', body: logo });

  const pub = raw(h, null);
  const page = await pub('GET', '/brand/rossi/login');
  t.equal(page.status, 200);
  t.equal(page.headers['content-type'], 'text/html; charset=utf-8');
  t.equal(page.headers['x-content-type-options'], 'nosniff');
  const html = page.text;
  t.notMatch(html, /<script/i, 'no script element at all');
  t.notMatch(html, /<img src=x|<b>|<\/footer><style>/i, 'no partner markup survives as markup');
  t.equal(html.match(/<style>/g)?.length, 1, 'only the page\'s own style element');
  t.match(html, '<span class="name">Rossi &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &quot;Figli&quot;</span>');
  t.match(html, '<h1>Entra &lt;img src=x onerror=alert(1)&gt;</h1>');
  t.match(html, '<p class="welcome">Riga uno<br>Riga &lt;b&gt;due&lt;/b&gt;</p>');
  t.match(html, '<footer>&lt;/footer&gt;&lt;style&gt;body{display:none}&lt;/style&gt;&#39;</footer>');
  t.match(html, '--primary:#0055aa;', 'the colours, as CSS');
  t.match(html, '--secondary:#223344;');
  t.match(html, '--background:#fafafa;');
  t.match(html, '--text:#111111');
  t.match(html, '<img src="/brand/rossi/logo" alt="Rossi &lt;script&gt;');
  // The CSP allows exactly the page's own style element, by hash, and nothing else.
  const csp = String(page.headers['content-security-policy']);
  const css = /<style>([\s\S]*?)<\/style>/.exec(html)![1]!;
  t.equal(csp, `default-src 'none'; style-src 'sha256-${createHash('sha256').update(css).digest('base64')}'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'`);
  const served = await pub('GET', '/brand/rossi/logo');
  t.equal(served.headers['content-type'], 'image/png');
  t.ok(served.bytes.equals(logo), 'the logo the page refers to');

  const unknown = await pub('GET', '/brand/nobody/login');
  t.equal(unknown.status, 404, 'unknown slug: an HTML 404 page (a browser asked)');
  t.equal(unknown.headers['content-type'], 'text/html; charset=utf-8');
  t.match(unknown.text, 'Pagina non trovata');
  t.match(unknown.headers['content-security-policy'], "default-src 'none'");
  t.match(json(await pub('GET', '/brand/nobody/logo')), { status: 404, code: 'resource_missing' });

  // The preview: the partner's own, self-contained (logo inlined), escaped, with its CSP.
  t.equal((await pub('GET', `/v1/customers/${customer}/branding/preview`)).status, 401);
  const preview = await raw(h, partner)('GET', `/v1/customers/${customer}/branding/preview`);
  t.equal(preview.status, 200);
  t.equal(preview.headers['content-type'], 'text/html; charset=utf-8');
  t.match(preview.text, `<img src="data:image/png;base64,${logo.toString('base64')}"`);
  t.match(preview.text, '<span class="name">Rossi &lt;script&gt;');
  t.notMatch(preview.text, /<script/i);
  t.match(preview.text, '--secondary:#223344;');
  t.match(preview.headers['content-security-policy'], /^default-src 'none'; style-src 'sha256-[A-Za-z0-9+/=]+'; img-src data:;/);

  // In the API document: the preview and logo as what they are; the public pages not at all.
  const doc = h.app.swagger() as unknown as { paths: Record<string, Record<string, { responses: Record<string, { content: Record<string, unknown> }> }>> };
  t.same(Object.keys(doc.paths['/v1/customers/{id}/branding/preview']!.get!.responses['200']!.content), ['text/html']);
  t.same(Object.keys(doc.paths['/v1/customers/{id}/branding/logo']!.get!.responses['200']!.content), ['image/png', 'image/svg+xml']);
  t.notOk(Object.keys(doc.paths).some((path) => path.startsWith('/brand/')), 'the public HTML pages are not API operations');
});
