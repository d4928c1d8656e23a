import { Type } from 'typebox';
import { campaignDeliveryStatuses, campaignStatuses } from '@pec-partner/db';
import { ListQuery } from '../../http/pagination.ts';

const Id = (what: string) => Type.String({ description: `A ${what} id.` });
const DateTime = Type.String({ format: 'date-time' });
const NullableDateTime = Type.Union([DateTime, Type.Null()]);

export const MailboxParams = Type.Object({ id: Id('mailbox (`mbx_…`)') }, { additionalProperties: false });
export const ContactParams = Type.Object({ id: Id('mailbox (`mbx_…`)'), contact: Id('contact (`nlc_…`)') }, { additionalProperties: false });
export const ListParams = Type.Object({ id: Id('mailbox (`mbx_…`)'), list: Id('distribution list (`nll_…`)') }, { additionalProperties: false });
export const MemberParams = Type.Object(
  { id: Id('mailbox (`mbx_…`)'), list: Id('distribution list (`nll_…`)'), contact: Id('contact (`nlc_…`)') },
  { additionalProperties: false },
);
export const CampaignParams = Type.Object({ id: Id('mailbox (`mbx_…`)'), campaign: Id('campaign (`nlm_…`)') }, { additionalProperties: false });

const EmailField = Type.String({ minLength: 3, maxLength: 254, description: 'A plain address (`local@domain`); stored lower-cased.', example: 'anna.bianchi@example.com' });
const NameField = Type.Union([Type.String({ minLength: 1, maxLength: 200 }), Type.Null()]);

export const Contact = Type.Object(
  {
    id: Type.String({ description: 'Prefixed `nlc_`.' }),
    object: Type.Literal('newsletter_contact'),
    mailbox: Type.String(),
    email: Type.String(),
    name: Type.Union([Type.String(), Type.Null()]),
    consent: Type.Boolean({ description: 'Whether the contact agreed to receive the newsletter.' }),
    unsubscribed_at: Type.Union([DateTime, Type.Null()], { description: 'When the contact used an unsubscribe link; final.' }),
    receives_campaigns: Type.Boolean({ description: 'Consenting and not unsubscribed: only these contacts get campaigns.' }),
    created_at: DateTime,
    updated_at: DateTime,
  },
  { title: 'NewsletterContact' },
);

export const ContactCreate = Type.Object(
  { email: EmailField, name: Type.Optional(NameField), consent: Type.Boolean() },
  { title: 'NewsletterContactCreate', additionalProperties: false },
);

export const ContactUpdate = Type.Object(
  { email: Type.Optional(EmailField), name: Type.Optional(NameField), consent: Type.Optional(Type.Boolean()) },
  { title: 'NewsletterContactUpdate', additionalProperties: false, minProperties: 1 },
);

export const ContactQuery = Type.Object(
  {
    ...ListQuery,
    email: Type.Optional(Type.String({ maxLength: 254, description: 'Exact address (any case).' })),
    receives_campaigns: Type.Optional(Type.Boolean({ description: 'Only contacts that do (true) or do not (false) get campaigns.' })),
  },
  { additionalProperties: false },
);

export const ImportQuery = Type.Object(
  { list: Type.Optional(Type.String({ description: 'Also add every imported contact to this distribution list (`nll_…`).' })) },
  { additionalProperties: false },
);

export const ImportRowError = Type.Object(
  {
    row: Type.Integer({ description: 'Line of the file, the header being line 1.' }),
    field: Type.Union([Type.String(), Type.Null()], { description: '`email`, `name`, `consent`, or null for the whole row.' }),
    code: Type.String({ description: '`required`, `invalid_format`, `invalid_value`, `out_of_range`, `duplicate_row` or `malformed_row`.' }),
    detail: Type.String(),
  },
  { title: 'NewsletterImportRowError' },
);

export const ImportResult = Type.Object(
  {
    object: Type.Literal('newsletter_contact_import'),
    rows: Type.Integer({ description: 'Data rows read (the header and blank lines not counted).' }),
    created: Type.Integer(),
    updated: Type.Integer({ description: 'Rows whose address was already in the address book: name and consent updated.' }),
    failed: Type.Integer({ description: 'Rows not imported; each has at least one entry in `errors`.' }),
    errors: Type.Array(ImportRowError),
  },
  { title: 'NewsletterContactImport' },
);

export const DistributionList = Type.Object(
  {
    id: Type.String({ description: 'Prefixed `nll_`.' }),
    object: Type.Literal('newsletter_list'),
    mailbox: Type.String(),
    name: Type.String(),
    member_count: Type.Integer(),
    created_at: DateTime,
  },
  { title: 'NewsletterList' },
);

export const ListWrite = Type.Object(
  { name: Type.String({ minLength: 1, maxLength: 100 }) },
  { title: 'NewsletterListWrite', additionalProperties: false },
);

export const MembersAdd = Type.Object(
  { contacts: Type.Array(Type.String(), { minItems: 1, maxItems: 1000, uniqueItems: true, description: 'Contact ids (`nlc_…`).' }) },
  { title: 'NewsletterListMembersAdd', additionalProperties: false },
);

export const MembersAdded = Type.Object(
  {
    object: Type.Literal('newsletter_list_members'),
    list: Type.String(),
    added: Type.Integer({ description: 'Contacts that were not members before.' }),
    member_count: Type.Integer(),
  },
  { title: 'NewsletterListMembersAdded' },
);

export const Deleted = (object: string, title: string) =>
  Type.Object({ id: Type.String(), object: Type.Literal(object), deleted: Type.Literal(true) }, { title });

export const MemberRemoved = Type.Object(
  { object: Type.Literal('newsletter_list_member'), list: Type.String(), contact: Type.String(), deleted: Type.Literal(true) },
  { title: 'NewsletterListMemberRemoved' },
);

const SubjectField = Type.String({ minLength: 1, maxLength: 250, pattern: '^[^\\r\\n]*$', description: 'One line.' });
const HtmlField = Type.String({
  minLength: 1,
  maxLength: 500_000,
  description: 'Sanitised on the way in: scripts, styles sheets, event handlers and `javascript:`/`data:` URLs are removed.',
});
const TextField = Type.String({ minLength: 1, maxLength: 500_000, description: 'Plain-text alternative; derived from the HTML when omitted.' });

export const CampaignStats = Type.Object(
  {
    recipients: Type.Integer({ description: 'Deliveries recorded; fixed when sending starts (consenting, subscribed list members).' }),
    queued: Type.Integer(),
    sent: Type.Integer(),
    failed: Type.Integer(),
  },
  { title: 'NewsletterCampaignStats' },
);

export const Campaign = Type.Object(
  {
    id: Type.String({ description: 'Prefixed `nlm_`.' }),
    object: Type.Literal('newsletter_campaign'),
    mailbox: Type.String(),
    list: Type.String(),
    subject: Type.String(),
    html: Type.String({ description: 'As stored, after sanitising.' }),
    text: Type.String(),
    status: Type.Enum(campaignStatuses, {
      description: '`draft` → `scheduled` (send) → `sending` (at `scheduled_at`) → `sent`; `draft`/`scheduled` → `cancelled`.',
    }),
    scheduled_at: NullableDateTime,
    started_at: NullableDateTime,
    finished_at: NullableDateTime,
    stats: CampaignStats,
    created_at: DateTime,
    updated_at: DateTime,
  },
  { title: 'NewsletterCampaign' },
);

export const CampaignCreate = Type.Object(
  { list: Type.String({ description: 'The distribution list it goes to (`nll_…`).' }), subject: SubjectField, html: HtmlField, text: Type.Optional(TextField) },
  { title: 'NewsletterCampaignCreate', additionalProperties: false },
);

export const CampaignUpdate = Type.Object(
  {
    list: Type.Optional(Type.String()),
    subject: Type.Optional(SubjectField),
    html: Type.Optional(HtmlField),
    text: Type.Optional(Type.Union([TextField, Type.Null()], { description: 'null derives it again from the HTML.' })),
  },
  { title: 'NewsletterCampaignUpdate', additionalProperties: false, minProperties: 1 },
);

export const CampaignQuery = Type.Object(
  { ...ListQuery, status: Type.Optional(Type.Enum(campaignStatuses)) },
  { additionalProperties: false },
);

export const CampaignSend = Type.Object(
  {
    scheduled_at: Type.Optional(
      Type.String({ format: 'date-time', description: 'When to start sending; omitted means now. At most a year ahead.' }),
    ),
  },
  { title: 'NewsletterCampaignSend', additionalProperties: false },
);

export const TestSend = Type.Object(
  { email: EmailField },
  { title: 'NewsletterTestSend', additionalProperties: false },
);

export const TestSendResult = Type.Object(
  {
    object: Type.Literal('newsletter_test_send'),
    campaign: Type.String(),
    email: Type.String(),
    status: Type.Union([Type.Literal('sent'), Type.Literal('failed')]),
    smtp_response: Type.String({ description: "The relay's answer, e.g. `250 OK` or `550 5.1.1 … unknown user`." }),
  },
  { title: 'NewsletterTestSendResult' },
);

export const Delivery = Type.Object(
  {
    object: Type.Literal('newsletter_delivery'),
    campaign: Type.String(),
    contact: Type.String(),
    email: Type.String(),
    status: Type.Enum(campaignDeliveryStatuses, { description: '`queued` until the relay answers; then `sent` or `failed`.' }),
    smtp_response: Type.Union([Type.String(), Type.Null()], {
      description: "The relay's answer (`250 …` when sent, `550 5.1.1 …` when refused), or why the message was not sent.",
    }),
    attempts: Type.Integer(),
    updated_at: DateTime,
  },
  { title: 'NewsletterDelivery' },
);

export const DeliveryQuery = Type.Object(
  {
    ...ListQuery,
    starting_after: Type.Optional(Type.String({ pattern: '^[a-z]+_[0-9a-z]{26}$', description: 'Cursor: the `next_cursor` of the previous page (a contact id).' })),
    status: Type.Optional(Type.Enum(campaignDeliveryStatuses)),
  },
  { additionalProperties: false },
);
