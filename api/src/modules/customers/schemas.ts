import { Type, type Static } from 'typebox';
import { customerTypes } from '@pec-partner/db';

const nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T) => Type.Union([schema, Type.Null()]);

export const CustomerType = Type.Enum(customerTypes, {
  title: 'CustomerType',
  description:
    '`private_person`, `sole_trader` (ditta individuale), `professional` (libero professionista), `company`, ' +
    '`non_profit`, `public_administration`.',
});

export const Address = Type.Object(
  {
    street: Type.String({ minLength: 1, maxLength: 200 }),
    town: Type.String({ minLength: 1, maxLength: 100 }),
    postcode: Type.String({ minLength: 1, maxLength: 20, description: 'CAP: five digits in Italy.' }),
    province: Type.Optional(nullable(Type.String({ minLength: 2, maxLength: 2, description: 'Italian province code, e.g. `MI`; required in Italy.' }))),
    country: Type.String({ pattern: '^[A-Z]{2}$', description: 'ISO 3166-1 alpha-2 code, e.g. `IT`.' }),
  },
  { title: 'Address', additionalProperties: false },
);

export const EInvoicing = Type.Object(
  {
    sdi_code: Type.Optional(nullable(Type.String({
      description: 'Codice destinatario: 7 characters, or the 6-character codice univoco ufficio of a public administration.',
    }))),
    pec: Type.Optional(nullable(Type.String({ format: 'email', maxLength: 254, description: 'PEC address for e-invoices.' }))),
  },
  { title: 'EInvoicing', additionalProperties: false },
);

export const PublicProcurement = Type.Object(
  {
    cig: Type.Optional(nullable(Type.String({ pattern: '^[A-Z0-9]{10}$', description: 'Codice Identificativo Gara, 10 characters.' }))),
    oda: Type.Optional(nullable(Type.String({ minLength: 1, maxLength: 50, description: "Purchase order (ordine d'acquisto) reference." }))),
  },
  { title: 'PublicProcurement', additionalProperties: false },
);

export const Metadata = Type.Record(Type.String({ maxLength: 40 }), Type.String({ maxLength: 500 }), {
  title: 'Metadata',
  maxProperties: 50,
  description: 'Up to 50 keys of your own (40 characters each) with string values (500 characters).',
});

const fields = {
  first_name: Type.String({ minLength: 1, maxLength: 100 }),
  last_name: Type.String({ minLength: 1, maxLength: 100 }),
  business_name: Type.String({ minLength: 1, maxLength: 200, description: 'Ragione sociale; for sole traders and professionals it defaults to the name.' }),
  tax_code: Type.String({ minLength: 11, maxLength: 20, description: 'Codice fiscale: 16 characters for people, 11 digits for entities; checksum-validated.' }),
  vat_number: Type.String({ minLength: 11, maxLength: 13, description: 'Partita IVA (11 digits, optional `IT` prefix); checksum-validated.' }),
  email: Type.String({ format: 'email', maxLength: 254 }),
  phone: Type.String({ pattern: '^\\+?[0-9][0-9 ]{5,19}$', description: 'International format preferred, e.g. `+39 02 1234567`.' }),
};

export const CustomerCreate = Type.Object(
  {
    type: CustomerType,
    first_name: Type.Optional(fields.first_name),
    last_name: Type.Optional(fields.last_name),
    business_name: Type.Optional(fields.business_name),
    tax_code: Type.Optional(fields.tax_code),
    vat_number: Type.Optional(fields.vat_number),
    address: Type.Optional(Address),
    email: Type.Optional(fields.email),
    phone: Type.Optional(fields.phone),
    e_invoicing: Type.Optional(EInvoicing),
    public_procurement: Type.Optional(PublicProcurement),
    metadata: Type.Optional(Metadata),
  },
  { title: 'CustomerCreate', additionalProperties: false },
);
export type CustomerCreate = Static<typeof CustomerCreate>;

export const CustomerUpdate = Type.Object(
  {
    type: Type.Optional(CustomerType),
    first_name: Type.Optional(nullable(fields.first_name)),
    last_name: Type.Optional(nullable(fields.last_name)),
    business_name: Type.Optional(nullable(fields.business_name)),
    tax_code: Type.Optional(nullable(fields.tax_code)),
    vat_number: Type.Optional(nullable(fields.vat_number)),
    address: Type.Optional(nullable(Address)),
    email: Type.Optional(nullable(fields.email)),
    phone: Type.Optional(nullable(fields.phone)),
    e_invoicing: Type.Optional(nullable(EInvoicing)),
    public_procurement: Type.Optional(nullable(PublicProcurement)),
    metadata: Type.Optional(
      Type.Record(Type.String({ maxLength: 40 }), nullable(Type.String({ maxLength: 500 })), {
        title: 'MetadataUpdate',
        description: 'Merged into the existing metadata; a key set to null is removed.',
      }),
    ),
  },
  {
    title: 'CustomerUpdate',
    additionalProperties: false,
    description: 'Only the fields sent change; null clears an optional field. Nested objects are replaced whole.',
  },
);
export type CustomerUpdate = Static<typeof CustomerUpdate>;

export const Customer = Type.Object(
  {
    id: Type.String({ description: 'Prefixed `cus_`.' }),
    object: Type.Literal('customer'),
    type: CustomerType,
    first_name: nullable(Type.String()),
    last_name: nullable(Type.String()),
    business_name: nullable(Type.String()),
    tax_code: nullable(Type.String()),
    vat_number: nullable(Type.String()),
    address: nullable(Address),
    email: nullable(Type.String()),
    phone: nullable(Type.String()),
    e_invoicing: nullable(EInvoicing),
    public_procurement: nullable(PublicProcurement),
    metadata: Metadata,
    created_at: Type.String({ format: 'date-time' }),
    updated_at: Type.String({ format: 'date-time' }),
  },
  { title: 'Customer' },
);
export type Customer = Static<typeof Customer>;

export const DeletedCustomer = Type.Object(
  { id: Type.String(), object: Type.Literal('customer'), deleted: Type.Literal(true) },
  { title: 'DeletedCustomer' },
);
