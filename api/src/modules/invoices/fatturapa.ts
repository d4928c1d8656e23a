import { create } from 'xmlbuilder2';
import type { InvoiceCustomerSnapshot, InvoiceLine, InvoicePayment, InvoiceSupplierSnapshot } from '@pec-partner/db';

/**
 * The FatturaPA file (FatturaElettronica v1.2.2, format FPR12: between private parties) for one invoice. Written
 * with xmlbuilder2, which escapes every text and attribute, in the element order of the official schema; the
 * tests validate each file with libxml2 against the official schema v1.2.1 shipped by the npm package
 * `@digitalia/fatturapa` (v1.2.2 only added document types and codes these invoices do not use).
 */

export const FATTURAPA_NAMESPACE = 'http://ivaservizi.agenziaentrate.gov.it/docs/xsd/fatture/v1.2';

export interface FatturaPaInput {
  /** ProgressivoInvio and the file name's progressive: 5 characters [0-9A-Z]. */
  progressive: string;
  number: string;
  /** YYYY-MM-DD, Europe/Rome. */
  issueDate: string;
  supplier: InvoiceSupplierSnapshot;
  customer: InvoiceCustomerSnapshot;
  lines: InvoiceLine[];
  netCents: number;
  vatCents: number;
  totalCents: number;
  vatRate: number;
  payment: InvoicePayment;
  causale: string;
}

/** `12345` cents → `123.45` (Amount2DecimalType). */
export const decimalAmount = (cents: number): string => {
  const sign = cents < 0 ? '-' : '';
  const abs = Math.abs(cents);
  return `${sign}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, '0')}`;
};

/** Text for the schema's Latin fields: characters outside Basic Latin and Latin-1 Supplement become `?`. */
export const latin1 = (text: string, max: number): string =>
  text.replace(/[^\u0020-\u007e\u00a0-\u00ff]/gu, '?').slice(0, max);

/** Text for the schema's Basic Latin fields (`String60Type`, …). */
export const basicLatin = (text: string, max: number): string => text.replace(/[^\u0020-\u007e]/gu, '?').slice(0, max);

/** ModalitaPagamento: MP05 bank transfer, MP08 payment card. */
const PAYMENT_METHODS: Record<InvoicePayment['method'], string> = { bank_transfer: 'MP05', card: 'MP08' };

function sede(parent: ReturnType<ReturnType<typeof create>['ele']>, address: InvoiceCustomerSnapshot['address']): void {
  const node = parent.ele('Sede');
  node.ele('Indirizzo').txt(latin1(address.street, 60));
  node.ele('CAP').txt(address.postcode);
  node.ele('Comune').txt(latin1(address.town, 60));
  if (address.province) node.ele('Provincia').txt(address.province);
  node.ele('Nazione').txt(address.country);
}

export function buildFatturaPa(input: FatturaPaInput): string {
  const { supplier, customer } = input;
  const root = create({ version: '1.0', encoding: 'UTF-8' }).ele(FATTURAPA_NAMESPACE, 'p:FatturaElettronica', { versione: 'FPR12' });

  const header = root.ele('FatturaElettronicaHeader');
  const transmission = header.ele('DatiTrasmissione');
  const transmitter = transmission.ele('IdTrasmittente');
  transmitter.ele('IdPaese').txt('IT');
  transmitter.ele('IdCodice').txt(supplier.vat_number);
  transmission.ele('ProgressivoInvio').txt(input.progressive);
  transmission.ele('FormatoTrasmissione').txt('FPR12');
  // A real SDI code routes the file to the partner's channel; '0000000' with PECDestinatario sends it to the PEC address.
  const sdiCode = customer.sdi_code && customer.sdi_code !== '0000000' ? customer.sdi_code : '0000000';
  transmission.ele('CodiceDestinatario').txt(sdiCode);
  if (sdiCode === '0000000' && customer.pec) transmission.ele('PECDestinatario').txt(basicLatin(customer.pec, 256));

  const seller = header.ele('CedentePrestatore');
  const sellerData = seller.ele('DatiAnagrafici');
  const sellerVat = sellerData.ele('IdFiscaleIVA');
  sellerVat.ele('IdPaese').txt('IT');
  sellerVat.ele('IdCodice').txt(supplier.vat_number);
  if (supplier.tax_code) sellerData.ele('CodiceFiscale').txt(supplier.tax_code);
  sellerData.ele('Anagrafica').ele('Denominazione').txt(latin1(supplier.legal_name, 80));
  sellerData.ele('RegimeFiscale').txt(supplier.tax_regime);
  sede(seller, supplier.address);
  if (supplier.email) seller.ele('Contatti').ele('Email').txt(basicLatin(supplier.email, 256));

  const buyer = header.ele('CessionarioCommittente');
  const buyerData = buyer.ele('DatiAnagrafici');
  const buyerVat = buyerData.ele('IdFiscaleIVA');
  buyerVat.ele('IdPaese').txt('IT');
  buyerVat.ele('IdCodice').txt(customer.vat_number);
  if (customer.tax_code) buyerData.ele('CodiceFiscale').txt(customer.tax_code);
  buyerData.ele('Anagrafica').ele('Denominazione').txt(latin1(customer.legal_name, 80));
  sede(buyer, customer.address);

  const body = root.ele('FatturaElettronicaBody');
  const document = body.ele('DatiGenerali').ele('DatiGeneraliDocumento');
  document.ele('TipoDocumento').txt('TD01');
  document.ele('Divisa').txt('EUR');
  document.ele('Data').txt(input.issueDate);
  document.ele('Numero').txt(input.number);
  document.ele('ImportoTotaleDocumento').txt(decimalAmount(input.totalCents));
  document.ele('Causale').txt(latin1(input.causale, 200));

  const goods = body.ele('DatiBeniServizi');
  const rate = input.vatRate.toFixed(2);
  for (const line of input.lines) {
    const node = goods.ele('DettaglioLinee');
    node.ele('NumeroLinea').txt(String(line.number));
    node.ele('Descrizione').txt(latin1(line.description, 1000));
    node.ele('Quantita').txt(line.quantity.toFixed(2));
    node.ele('PrezzoUnitario').txt(decimalAmount(line.unit_price_cents));
    node.ele('PrezzoTotale').txt(decimalAmount(line.net_cents));
    node.ele('AliquotaIVA').txt(line.vat_rate.toFixed(2));
  }
  const summary = goods.ele('DatiRiepilogo');
  summary.ele('AliquotaIVA').txt(rate);
  summary.ele('ImponibileImporto').txt(decimalAmount(input.netCents));
  summary.ele('Imposta').txt(decimalAmount(input.vatCents));
  // Immediate VAT: the service is paid before it is invoiced.
  summary.ele('EsigibilitaIVA').txt('I');

  const payment = body.ele('DatiPagamento');
  // TP02: payment in full, already received (a prepaid top-up).
  payment.ele('CondizioniPagamento').txt('TP02');
  const detail = payment.ele('DettaglioPagamento');
  detail.ele('ModalitaPagamento').txt(PAYMENT_METHODS[input.payment.method]);
  detail.ele('DataScadenzaPagamento').txt(input.issueDate);
  detail.ele('ImportoPagamento').txt(decimalAmount(input.totalCents));
  if (supplier.iban && input.payment.method === 'bank_transfer') detail.ele('IBAN').txt(supplier.iban);
  const reference = input.payment.reference;
  if (/^[\u0020-\u007e]{1,60}$/.test(reference)) detail.ele('CodicePagamento').txt(reference);

  return `${root.end({ prettyPrint: true, indent: '  ', newline: '\n' })}\n`;
}
