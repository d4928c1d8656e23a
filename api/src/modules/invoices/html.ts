import { createHash } from 'node:crypto';
import { escapeHtml } from '../branding/render.ts';
import type { Invoice } from './schemas.ts';
import { italianEuro } from './money.ts';

/**
 * The readable copy (copia di cortesia) of an invoice, in Italian, printable, built from the stored invoice only.
 * Every value is escaped; the page has no script and its one style sheet is allowed by hash in the CSP.
 */

const CSS = [
  'body{font:14px/1.45 system-ui,sans-serif;color:#1d2330;max-width:820px;margin:24px auto;padding:0 16px}',
  'h1{font-size:22px;margin:0 0 4px}',
  '.parties{display:flex;gap:24px;margin:20px 0}.parties section{flex:1;border:1px solid #ccd;padding:10px 12px;border-radius:4px}',
  'h2{font-size:13px;text-transform:uppercase;letter-spacing:.04em;color:#556;margin:0 0 6px}',
  'table{width:100%;border-collapse:collapse;margin:16px 0}th,td{border-bottom:1px solid #dde;padding:6px 4px;text-align:left}',
  'td.n,th.n{text-align:right;white-space:nowrap}.totals td{border:0}.totals tr:last-child td{font-weight:700;border-top:2px solid #1d2330}',
  '.note{font-size:12px;color:#556}',
  '@media print{body{margin:0;max-width:none}.parties section{break-inside:avoid}}',
].join('');

const CSP = `default-src 'none'; style-src 'sha256-${createHash('sha256').update(CSS).digest('base64')}'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'`;

const e = escapeHtml;
const italianDate = (isoDate: string): string => `${isoDate.slice(8, 10)}/${isoDate.slice(5, 7)}/${isoDate.slice(0, 4)}`;
const address = (a: Invoice['customer']['address']): string =>
  `${e(a.street)}<br>${e(a.postcode)} ${e(a.town)}${a.province ? ` (${e(a.province)})` : ''} ${e(a.country)}`;

const PAYMENT_LABELS: Record<Invoice['payment']['method'], string> = { bank_transfer: 'bonifico bancario', card: 'carta di pagamento' };

export function renderInvoiceHtml(invoice: Invoice): { html: string; csp: string } {
  const { supplier, customer } = invoice;
  const channel = customer.e_invoicing.sdi_code && customer.e_invoicing.sdi_code !== '0000000'
    ? `Codice destinatario: ${e(customer.e_invoicing.sdi_code)}`
    : `PEC: ${e(customer.e_invoicing.pec ?? '')}`;
  const rows = invoice.lines.map((line) =>
    `<tr><td>${e(line.description)}</td><td class="n">${line.quantity.toFixed(2).replace('.', ',')}</td>` +
    `<td class="n">${italianEuro(line.unit_amount)}</td><td class="n">${line.vat_rate} %</td><td class="n">${italianEuro(line.net_amount)}</td></tr>`).join('\n');
  const body = `<header>
<h1>Fattura n. ${e(invoice.number)}</h1>
<div>Data: ${italianDate(invoice.issue_date)} &middot; Tipo documento: TD01 (fattura) &middot; File SDI: ${e(invoice.file_name)}</div>
</header>
<div class="parties">
<section><h2>Cedente / prestatore</h2><strong>${e(supplier.legal_name)}</strong><br>${address(supplier.address)}<br>
Partita IVA: IT${e(supplier.vat_number)}${supplier.tax_code ? `<br>Codice fiscale: ${e(supplier.tax_code)}` : ''}<br>Regime fiscale: ${e(supplier.tax_regime)}</section>
<section><h2>Cessionario / committente</h2><strong>${e(customer.legal_name)}</strong><br>${address(customer.address)}<br>
Partita IVA: IT${e(customer.vat_number)}${customer.tax_code ? `<br>Codice fiscale: ${e(customer.tax_code)}` : ''}<br>${channel}</section>
</div>
<table>
<thead><tr><th>Descrizione</th><th class="n">Quantità</th><th class="n">Prezzo unitario</th><th class="n">IVA</th><th class="n">Importo</th></tr></thead>
<tbody>
${rows}
</tbody>
</table>
<table class="totals">
<tr><td>Imponibile</td><td class="n">${italianEuro(invoice.net_amount)}</td></tr>
<tr><td>IVA ${invoice.vat_rate} % (esigibilità immediata)</td><td class="n">${italianEuro(invoice.vat_amount)}</td></tr>
<tr><td>Totale documento</td><td class="n">${italianEuro(invoice.total_amount)}</td></tr>
</table>
<p>Pagamento: ${PAYMENT_LABELS[invoice.payment.method]}, già ricevuto (riferimento ${e(invoice.payment.reference)}).</p>
<p class="note">Copia di cortesia. L'originale è la fattura elettronica in formato FatturaPA trasmessa tramite il Sistema di Interscambio (SDI).</p>`;
  const html = `<!doctype html>
<html lang="it">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${e(CSP)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>Fattura ${e(invoice.number)}</title>
<style>${CSS}</style>
</head>
<body>
${body}
</body>
</html>
`;
  return { html, csp: CSP };
}
