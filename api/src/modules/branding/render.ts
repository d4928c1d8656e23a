import { createHash } from 'node:crypto';
import type { BrandingColors, BrandingRecord, StoredLogo } from './service.ts';

/**
 * The branded pages, rendered on the server. Everything a partner typed is HTML-escaped; the only values that
 * reach CSS are colours, checked again here against `#rrggbb`. The one inline style element is allowed by its
 * hash in the Content-Security-Policy: no script, no other origin, no framing.
 */

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export const escapeHtml = (text: string): string => text.replace(/[&<>"']/g, (c) => ESCAPES[c]!);

const DEFAULT_COLORS: BrandingColors = { primary: '#1f5fbf', secondary: '#14325c', background: '#f4f6f9', text: '#1d2330' };

function safeColors(colors: BrandingColors): BrandingColors {
  const pick = (key: keyof BrandingColors) => (/^#[0-9a-f]{6}$/i.test(colors[key]) ? colors[key].toLowerCase() : DEFAULT_COLORS[key]);
  return { primary: pick('primary'), secondary: pick('secondary'), background: pick('background'), text: pick('text') };
}

/** Black or white, whichever reads better on the colour (WCAG relative luminance). */
function onColor(hex: string): string {
  const channel = (i: number) => {
    const c = Number.parseInt(hex.slice(1 + 2 * i, 3 + 2 * i), 16) / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  };
  const luminance = 0.2126 * channel(0) + 0.7152 * channel(1) + 0.0722 * channel(2);
  return (luminance + 0.05) / 0.05 > 1.05 / (luminance + 0.05) ? '#000000' : '#ffffff';
}

export interface RenderedPage {
  html: string;
  /** For the Content-Security-Policy response header. */
  csp: string;
}

const hash = (css: string): string => `'sha256-${createHash('sha256').update(css, 'utf8').digest('base64')}'`;

function csp(css: string, images: string): { header: string; meta: string } {
  const common = `default-src 'none'; style-src ${hash(css)}; img-src ${images}; form-action 'self'; base-uri 'none'`;
  // frame-ancestors only works as a header; the meta copy protects the HTML wherever it is shown (e.g. srcdoc).
  return { header: `${common}; frame-ancestors 'none'`, meta: common };
}

function page(options: { title: string; css: string; images: string; body: string }): RenderedPage {
  const policy = csp(options.css, options.images);
  const html =
    '<!doctype html>\n' +
    '<html lang="it">\n<head>\n<meta charset="utf-8">\n' +
    `<meta http-equiv="Content-Security-Policy" content="${escapeHtml(policy.meta)}">\n` +
    '<meta name="viewport" content="width=device-width, initial-scale=1">\n<meta name="robots" content="noindex">\n' +
    `<title>${escapeHtml(options.title)}</title>\n<style>${options.css}</style>\n</head>\n<body>\n${options.body}\n</body>\n</html>\n`;
  return { html, csp: policy.header };
}

const paragraphs = (text: string): string => escapeHtml(text).replace(/\n/g, '<br>');

const cssVariables = (c: BrandingColors): string =>
  `:root{--primary:${c.primary};--on-primary:${onColor(c.primary)};--secondary:${c.secondary};--on-secondary:${onColor(c.secondary)};--background:${c.background};--text:${c.text}}`;

const LOGIN_CSS =
  '*{box-sizing:border-box}' +
  'body{margin:0;min-height:100vh;display:flex;flex-direction:column;align-items:center;justify-content:center;gap:24px;padding:24px;' +
  'background:var(--background);color:var(--text);font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}' +
  'main{width:100%;max-width:400px;padding:32px;background:#fff;color:#1d2330;border-radius:12px;border-top:6px solid var(--primary);box-shadow:0 8px 24px rgba(0,0,0,.12)}' +
  '.brand{display:flex;align-items:center;gap:12px;margin-bottom:16px}' +
  '.brand img{max-height:56px;max-width:200px}' +
  '.brand .name{font-weight:600;font-size:1.1rem;color:var(--secondary)}' +
  'h1{font-size:1.4rem;margin:0 0 8px}' +
  '.welcome{margin:0 0 16px;color:#4a5263}' +
  'label{display:block;font-weight:600;margin:12px 0 4px}' +
  'input{width:100%;padding:10px 12px;border:1px solid #c3c9d4;border-radius:8px;font:inherit}' +
  'input:focus{outline:2px solid var(--primary);outline-offset:1px}' +
  'button{width:100%;margin-top:20px;padding:12px;border:0;border-radius:8px;background:var(--primary);color:var(--on-primary);font:inherit;font-weight:600;cursor:pointer}' +
  'footer{font-size:.85rem;text-align:center;opacity:.8}';

/** The customer's login page at `/brand/{slug}/login`; the logo is referenced by URL (`img-src 'self'`). */
export function loginPage(record: BrandingRecord, logoUrl: string | null): RenderedPage {
  const colors = safeColors(record.colors);
  const { company_name: company, login_title: title, welcome_text: welcome, footer } = record.texts;
  const heading = title ?? 'Accedi alla tua casella PEC';
  const css = cssVariables(colors) + LOGIN_CSS;
  const logo = logoUrl ? `<img src="${escapeHtml(logoUrl)}" alt="${escapeHtml(company)}">` : '';
  const body =
    '<main>\n' +
    `<div class="brand">${logo}<span class="name">${escapeHtml(company)}</span></div>\n` +
    `<h1>${escapeHtml(heading)}</h1>\n` +
    (welcome ? `<p class="welcome">${paragraphs(welcome)}</p>\n` : '') +
    `<form method="post" action="/brand/${encodeURIComponent(record.slug)}/login">\n` +
    '<label for="address">Indirizzo PEC</label>\n<input id="address" name="address" type="email" autocomplete="username" required>\n' +
    '<label for="password">Password</label>\n<input id="password" name="password" type="password" autocomplete="current-password" required>\n' +
    '<button type="submit">Accedi</button>\n</form>\n</main>\n' +
    `<footer>${escapeHtml(footer ?? `© ${company}`)}</footer>`;
  return page({ title: `${heading} · ${company}`, css, images: "'self'", body });
}

const PREVIEW_CSS =
  '*{box-sizing:border-box}' +
  'body{margin:0;background:var(--background);color:var(--text);font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}' +
  'header{display:flex;align-items:center;gap:24px;padding:10px 24px;background:var(--secondary);color:var(--on-secondary);border-bottom:4px solid var(--primary)}' +
  'header img{max-height:40px;max-width:160px;background:#fff;border-radius:4px;padding:2px}' +
  'header .name{font-weight:600;font-size:1.05rem}' +
  'nav{display:flex;gap:16px;flex:1}' +
  'nav span{opacity:.85;white-space:nowrap}nav .current{opacity:1;font-weight:600;border-bottom:2px solid var(--primary)}' +
  '.user{font-size:.9rem;opacity:.9;white-space:nowrap}' +
  'main{padding:24px}' +
  '.compose{display:inline-block;padding:8px 16px;border-radius:6px;background:var(--primary);color:var(--on-primary);font-weight:600}' +
  '.note{margin-top:16px;opacity:.75}' +
  'footer{padding:16px 24px;font-size:.85rem;opacity:.8}';

/**
 * The private-area header with sample content, for the partner to see the effect of a branding at once. The
 * logo is inlined as a data: URI so that the page needs nothing else (it is fetched with credentials and may be
 * shown in an iframe's srcdoc).
 */
export function previewPage(record: BrandingRecord, logo: StoredLogo | null, active: boolean): RenderedPage {
  const colors = safeColors(record.colors);
  const { company_name: company, footer } = record.texts;
  const css = cssVariables(colors) + PREVIEW_CSS;
  const image = logo ? `<img src="data:${logo.contentType};base64,${logo.bytes.toString('base64')}" alt="${escapeHtml(company)}">` : '';
  const body =
    `<header>${image}<span class="name">${escapeHtml(company)}</span>\n` +
    '<nav><span class="current">Posta in arrivo</span><span>Inviati</span><span>Ricevute</span><span>Archivio</span></nav>\n' +
    '<span class="user">nome.cognome@pec.example.it</span></header>\n' +
    '<main><span class="compose">Nuovo messaggio</span>\n' +
    `<p class="note">Anteprima dell'area riservata${active ? '' : ' (branding non attivo: nessuna casella del cliente ha il servizio branding)'}.</p></main>\n` +
    `<footer>${escapeHtml(footer ?? `© ${company}`)}</footer>`;
  return page({ title: `Anteprima · ${company}`, css, images: 'data:', body });
}

const NOT_FOUND_CSS = 'body{margin:0;padding:48px 24px;font:16px/1.5 system-ui,sans-serif;color:#1d2330;background:#f4f6f9;text-align:center}h1{font-size:1.4rem}';

/** What a browser shows for an unknown (or not active) branding slug. */
export function notFoundPage(): RenderedPage {
  return page({
    title: 'Pagina non trovata',
    css: NOT_FOUND_CSS,
    images: "'none'",
    body: '<h1>Pagina non trovata</h1>\n<p>L\'indirizzo non corrisponde a nessuna pagina di accesso.</p>',
  });
}
