import { Type, type Static } from 'typebox';
import { FiscalAddress } from '../account/schemas.ts';

const nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T) => Type.Union([schema, Type.Null()]);

export const Invoice = Type.Object(
  {
    id: Type.String({ description: 'Prefixed `inv_`.' }),
    object: Type.Literal('invoice'),
    number: Type.String({ description: '`YYYY/NNNNNN`: numbered per calendar year (Europe/Rome) without gaps.' }),
    issue_date: Type.String({ format: 'date', description: 'Date of issue in Italy (Europe/Rome).' }),
    issued_at: Type.String({ format: 'date-time' }),
    top_up: Type.String({ description: 'The credited top-up this invoice is for.' }),
    currency: Type.Literal('EUR'),
    net_amount: Type.Integer({ description: 'Taxable amount in euro cents: the credit added (the ledger is net of VAT).' }),
    vat_rate: Type.Number({ description: 'VAT rate in percent (22).' }),
    vat_amount: Type.Integer({ description: 'VAT in euro cents, rounded half up to the cent.' }),
    total_amount: Type.Integer({ description: 'net_amount + vat_amount: what the partner pays.' }),
    lines: Type.Array(Type.Object(
      {
        description: Type.String(),
        quantity: Type.Number(),
        unit_amount: Type.Integer({ description: 'Euro cents excluding VAT.' }),
        net_amount: Type.Integer({ description: 'Euro cents excluding VAT.' }),
        vat_rate: Type.Number(),
      },
      { title: 'InvoiceLine' },
    )),
    customer: Type.Object(
      {
        legal_name: Type.String(),
        vat_number: Type.String(),
        tax_code: nullable(Type.String()),
        address: FiscalAddress,
        e_invoicing: Type.Object({ sdi_code: nullable(Type.String()), pec: nullable(Type.String()) }, { title: 'InvoiceEInvoicing' }),
      },
      { title: 'InvoiceCustomer', description: "The partner's fiscal data as it was when the invoice was issued." },
    ),
    supplier: Type.Object(
      {
        legal_name: Type.String(),
        vat_number: Type.String(),
        tax_code: nullable(Type.String()),
        address: FiscalAddress,
        tax_regime: Type.String({ description: 'RegimeFiscale, e.g. `RF01`.' }),
      },
      { title: 'InvoiceSupplier', description: 'The provider, as it was when the invoice was issued.' },
    ),
    payment: Type.Object(
      {
        method: Type.Union([Type.Literal('bank_transfer'), Type.Literal('card')]),
        reference: Type.String(),
        paid_at: Type.String({ format: 'date-time' }),
      },
      { title: 'InvoicePayment' },
    ),
    file_name: Type.String({ description: 'Name of the FatturaPA file per the SDI convention: `IT<VAT>_<progressive>.xml`.' }),
    partner: Type.String({ description: 'The partner invoiced.' }),
    created_at: Type.String({ format: 'date-time' }),
  },
  { title: 'Invoice' },
);
export type Invoice = Static<typeof Invoice>;
