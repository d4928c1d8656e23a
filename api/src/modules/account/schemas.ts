import { Type, type Static } from 'typebox';

const nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T) => Type.Union([schema, Type.Null()]);

export const FiscalAddress = Type.Object(
  {
    street: Type.String({ minLength: 1, maxLength: 60, description: 'Street and number (Indirizzo), at most 60 Latin-1 characters.' }),
    town: Type.String({ minLength: 1, maxLength: 60, description: 'Comune.' }),
    postcode: Type.String({ minLength: 1, maxLength: 20, description: 'CAP: five digits.' }),
    province: nullable(Type.String({ minLength: 2, maxLength: 2, description: 'Two-letter province code, e.g. `MI`.' })),
    country: Type.String({ pattern: '^[A-Z]{2}$', description: 'ISO 3166-1 alpha-2; only `IT` is accepted for now.' }),
  },
  { title: 'FiscalAddress', additionalProperties: false },
);

export const AccountEInvoicing = Type.Object(
  {
    sdi_code: Type.Optional(nullable(Type.String({ maxLength: 20, description: 'Codice destinatario SDI (7 characters).' }))),
    pec: Type.Optional(nullable(Type.String({ format: 'email', maxLength: 254, description: 'PEC address the SDI delivers e-invoices to, when there is no SDI code.' }))),
  },
  { title: 'AccountEInvoicing', additionalProperties: false },
);

export const AccountUpdate = Type.Object(
  {
    legal_name: Type.Optional(nullable(Type.String({ minLength: 1, maxLength: 80, description: 'Ragione sociale, at most 80 Latin-1 characters.' }))),
    vat_number: Type.Optional(nullable(Type.String({ minLength: 11, maxLength: 20, description: 'Partita IVA (11 digits, optional `IT` prefix, spaces ignored); checksum-validated.' }))),
    tax_code: Type.Optional(nullable(Type.String({ minLength: 11, maxLength: 20, description: 'Codice fiscale, if it differs from the partita IVA; checksum-validated.' }))),
    address: Type.Optional(nullable(FiscalAddress)),
    e_invoicing: Type.Optional(nullable(AccountEInvoicing)),
  },
  {
    title: 'AccountUpdate',
    additionalProperties: false,
    description: 'Only the fields sent change; null clears one. Nested objects are replaced whole.',
  },
);
export type AccountUpdate = Static<typeof AccountUpdate>;

export const Account = Type.Object(
  {
    id: Type.String({ description: "The partner's id (`ptn_…`)." }),
    object: Type.Literal('account'),
    name: Type.String({ description: 'The name the provider knows the partner by.' }),
    legal_name: nullable(Type.String()),
    vat_number: nullable(Type.String()),
    tax_code: nullable(Type.String()),
    address: nullable(FiscalAddress),
    e_invoicing: nullable(Type.Object(
      { sdi_code: nullable(Type.String()), pec: nullable(Type.String()) },
      { title: 'AccountEInvoicingView' },
    )),
    invoicing_ready: Type.Boolean({ description: 'Whether the data is complete for an invoice: credit can be added only then.' }),
    missing_fields: Type.Array(Type.String(), { description: 'What an invoice still needs.' }),
    updated_at: nullable(Type.String({ format: 'date-time' })),
  },
  { title: 'Account', description: "The partner's own account: the fiscal data the provider invoices it with." },
);
export type Account = Static<typeof Account>;
