import { convert } from 'html-to-text';
import sanitizeHtml from 'sanitize-html';

/**
 * What a campaign's HTML may contain: the formatting, tables and images of an e-mail newsletter. Anything not
 * listed is dropped: <script>, <style>, <iframe>, forms, every `on…` event handler, and URLs whose scheme is not
 * http(s), mailto or tel (so no `javascript:` or `data:`). Inline styles keep a list of harmless properties whose
 * values contain no parentheses except rgb()/rgba(), which rules out `url(…)` and `expression(…)`.
 */
const STYLE_VALUE = [/^[-#%.,\w\s'"!]+$/, /^rgba?\([\d\s.,%]+\)$/];
const STYLE_PROPERTIES = [
  'color', 'background-color', 'font-family', 'font-size', 'font-weight', 'font-style', 'text-align', 'text-decoration',
  'text-transform', 'line-height', 'letter-spacing', 'vertical-align', 'display', 'width', 'max-width', 'min-width', 'height',
  'padding', 'padding-top', 'padding-right', 'padding-bottom', 'padding-left',
  'margin', 'margin-top', 'margin-right', 'margin-bottom', 'margin-left',
  'border', 'border-top', 'border-right', 'border-bottom', 'border-left', 'border-color', 'border-style', 'border-width',
  'border-radius', 'border-collapse', 'border-spacing',
];
const CELL = ['width', 'height', 'colspan', 'rowspan', 'align', 'valign', 'bgcolor'];

const SANITIZE: sanitizeHtml.IOptions = {
  allowedTags: [...sanitizeHtml.defaults.allowedTags, 'img', 'center', 'font'],
  allowedAttributes: {
    '*': ['style', 'align', 'dir', 'lang', 'title'],
    a: ['href', 'name', 'target'],
    img: ['src', 'alt', 'width', 'height'],
    table: ['width', 'border', 'cellpadding', 'cellspacing', 'align', 'bgcolor', 'role'],
    td: CELL,
    th: CELL,
    tr: ['align', 'valign', 'bgcolor'],
    font: ['color', 'face', 'size'],
  },
  allowedStyles: { '*': Object.fromEntries(STYLE_PROPERTIES.map((name) => [name, STYLE_VALUE])) },
  allowedSchemes: ['http', 'https', 'mailto', 'tel'],
  allowedSchemesByTag: { img: ['http', 'https'] },
  allowedSchemesAppliedToAttributes: ['href', 'src', 'cite'],
  allowProtocolRelative: false,
  // Text inside dropped <script>, <style>… is dropped with them, not shown as text.
  nonTextTags: ['script', 'style', 'textarea', 'option', 'noscript', 'title', 'head'],
};

export function sanitizeCampaignHtml(html: string): string {
  return sanitizeHtml(html, SANITIZE).trim();
}

/** The plain-text alternative when the campaign gives none: the sanitised HTML as readable text, links kept. */
export function textFromHtml(html: string): string {
  return convert(html, {
    wordwrap: 78,
    selectors: [
      { selector: 'a', options: { hideLinkIfSameAsText: true } },
      { selector: 'img', format: 'skip' },
      { selector: 'h1', options: { uppercase: false } },
      { selector: 'h2', options: { uppercase: false } },
      { selector: 'h3', options: { uppercase: false } },
      { selector: 'table', format: 'dataTable' },
    ],
  }).trim();
}

const escape = (text: string): string =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** The unsubscribe footer every recipient gets, in the HTML and in the text part. */
export function withUnsubscribeFooter(content: { html: string; text: string }, unsubscribeUrl: string): { html: string; text: string } {
  const url = escape(unsubscribeUrl);
  return {
    html:
      `${content.html}\n<hr>\n<p style="font-size: 12px; color: #666666">` +
      `Non vuoi più ricevere questi messaggi? <a href="${url}">Annulla l'iscrizione</a>.<br>` +
      `Don't want these messages any more? <a href="${url}">Unsubscribe</a>.</p>`,
    text:
      `${content.text}\n\n-- \nNon vuoi più ricevere questi messaggi? Annulla l'iscrizione / Unsubscribe:\n${unsubscribeUrl}\n`,
  };
}

/** A contact's name as kept and put in the To header: one line, no control characters, null when empty. */
export function cleanName(name: string | null | undefined): string | null {
  const clean = name?.replace(/[\u0000-\u001f\u007f]+/g, ' ').replace(/\s+/g, ' ').trim();
  return clean ? clean : null;
}

/**
 * E-mail addresses as the address book keeps them: trimmed, lower-cased, a plain `local@domain` with a dotted
 * domain (no display names, comments or quoted local parts). Null when not acceptable.
 */
export function normalizeEmail(raw: string): string | null {
  const email = raw.trim().toLowerCase();
  if (email.length > 254) return null;
  const match = /^([a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*)@((?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z](?:[a-z0-9-]{0,61}[a-z0-9]))$/.exec(email);
  if (!match || match[1]!.length > 64) return null;
  return email;
}
