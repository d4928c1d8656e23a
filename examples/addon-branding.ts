/**
 * White-label branding: with the `branding` add-on on one of a customer's mailboxes, the partner sets the colours,
 * texts and logo of the customer's login page, and the public page at /brand/{slug}/login shows them. An SVG logo
 * is sanitised on upload (scripts and event handlers removed).
 *   PEC_PARTNER_API_KEY=sk_live_… PEC_PARTNER_BASE_URL=http://127.0.0.1:3000 npx tsx examples/addon-branding.ts
 */
import { ConflictError, InvalidRequestError, responseOf } from '@pec-partner/sdk';
import { baseUrl, check, clientFromEnv, ensureCredit, identifiedCustomer, openMailbox, refused, same, unique } from './support.ts';

const partner = clientFromEnv();
await ensureCredit(partner, 10_000);
const customer = await identifiedCustomer(partner);
const mailbox = await openMailbox(partner, customer, 'negozio', 'standard');
const slug = `studio-rossi-${unique()}`;
const branding = {
  slug,
  colors: { primary: '#0055AA', secondary: '#223344', background: '#fafafa', text: '#111111' },
  texts: { company_name: 'Studio Rossi & Figli', login_title: 'Benvenuto', welcome_text: 'Accedi alla PEC dello studio.', footer: 'Studio Rossi srl, P.IVA 01234567897' },
};

await refused(partner.put('/v1/customers/{id}/branding', { path: { id: customer }, body: branding }), ConflictError, 'addon_required', 'branding without the add-on');
const addon = await partner.post('/v1/mailboxes/{id}/addons', { path: { id: mailbox.id }, body: { kind: 'branding' } });
console.log(`branding add-on ${addon.id} on ${mailbox.address}`);

// Every invalid field is reported at once, with its JSON pointer.
const invalid = await refused(
  partner.put('/v1/customers/{id}/branding', { path: { id: customer }, body: { ...branding, colors: { ...branding.colors, primary: 'blue', text: '#12345' } } }),
  InvalidRequestError, 'validation_error', 'colours that are not #rrggbb',
);
same(invalid.errors.map((error) => error.pointer).sort(), ['/colors/primary', '/colors/text'], 'the invalid fields');

const created = await partner.put('/v1/customers/{id}/branding', { path: { id: customer }, body: branding });
same([responseOf(created)?.status, created.status, created.colors.primary], [201, 'active', '#0055aa'], 'the branding, colours stored in lower case');
console.log(`branding ${created.slug}: login page ${created.login_url}`);

// The logo: an SVG with a script and an event handler comes back without them, the drawing kept.
const svg = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 120 40" onload="alert(1)"><script>alert(2)</script>' +
  '<rect width="40" height="40" fill="#0055aa"/><text x="48" y="26">Rossi</text></svg>';
const logo = await partner.put('/v1/customers/{id}/branding/logo', { path: { id: customer }, raw: { contentType: 'image/svg+xml', data: svg } });
same([logo.content_type, [...logo.removed].sort()], ['image/svg+xml', ['attribute onload on svg', 'element script']], 'the sanitised logo');
console.log(`logo stored (${logo.size_bytes} bytes); removed: ${logo.removed.join(', ')}`);

// The public page, as the customer's clients see it: no credentials, the texts escaped, the colours and logo in.
const pageUrl = new URL(new URL(created.login_url).pathname, baseUrl());
const page = await fetch(pageUrl);
const html = await page.text();
same([page.status, page.headers.get('content-type')], [200, 'text/html; charset=utf-8'], `GET ${pageUrl.pathname}`);
check(html.includes('<span class="name">Studio Rossi &amp; Figli</span>'), 'the page shows the company name, escaped');
check(html.includes('<h1>Benvenuto</h1>') && html.includes('--primary:#0055aa;'), 'the page shows the title and the primary colour');
check(html.includes(`<img src="/brand/${slug}/logo"`), 'the page shows the logo');
check(!/<script/i.test(html), 'the page has no script');
check(page.headers.get('content-security-policy')?.startsWith("default-src 'none'"), 'the page carries a strict CSP');
const served = await fetch(new URL(`/brand/${slug}/logo`, baseUrl()));
const servedSvg = await served.text();
same([served.status, served.headers.get('content-type')], [200, 'image/svg+xml'], 'the public logo');
check(servedSvg.includes('<rect') && !/script|onload/i.test(servedSvg), 'the public logo is the drawing without the script');
console.log(`GET ${pageUrl.pathname} → ${page.status}, ${html.length} bytes of HTML with the brand's name, colours and logo`);
console.log('branding: ok');
