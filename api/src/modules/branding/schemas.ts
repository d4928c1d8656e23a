import { Type, type Static } from 'typebox';

const Hex = (description: string) => Type.String({ pattern: '^#[0-9A-Fa-f]{6}$', description: `${description} \`#rrggbb\`; stored in lower case.`, example: '#0055aa' });

/** One line of text: no control characters, not only blanks. */
const Line = (maxLength: number, description: string) =>
  Type.String({ minLength: 1, maxLength, pattern: '^(?=.*\\S)[^\\u0000-\\u001F\\u007F]*$', description });

export const BrandingColors = Type.Object(
  {
    primary: Hex('Buttons and accents.'),
    secondary: Hex('Links and the private-area header.'),
    background: Hex('Page background.'),
    text: Hex('Body text.'),
  },
  { title: 'BrandingColors', additionalProperties: false },
);

export const BrandingTextsInput = Type.Object(
  {
    company_name: Line(100, 'Shown in the header and the page title.'),
    login_title: Type.Optional(Line(100, 'Heading of the login page; a default Italian heading when absent.')),
    welcome_text: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 500,
        pattern: '^(?=[\\s\\S]*\\S)[^\\u0000-\\u0009\\u000B-\\u001F\\u007F]*$',
        description: 'Paragraph under the heading; line breaks are kept. Plain text: no HTML.',
      }),
    ),
    footer: Type.Optional(Line(200, 'Footer line, e.g. the company details.')),
  },
  { title: 'BrandingTextsInput', additionalProperties: false },
);

const nullableString = Type.Union([Type.String(), Type.Null()]);

export const BrandingTexts = Type.Object(
  {
    company_name: Type.String(),
    login_title: nullableString,
    welcome_text: nullableString,
    footer: nullableString,
  },
  { title: 'BrandingTexts' },
);

export const BrandingUpdate = Type.Object(
  {
    slug: Type.String({
      minLength: 3,
      maxLength: 40,
      pattern: '^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$',
      description: 'Public name in `/brand/{slug}/login`: lower-case letters, digits and inner hyphens; unique across the provider.',
      example: 'studio-rossi',
    }),
    colors: BrandingColors,
    texts: BrandingTextsInput,
  },
  { title: 'BrandingUpdate', additionalProperties: false },
);
export type BrandingUpdate = Static<typeof BrandingUpdate>;

export const BrandingLogoInfo = Type.Object(
  {
    content_type: Type.Union([Type.Literal('image/png'), Type.Literal('image/svg+xml')]),
    size_bytes: Type.Integer(),
    url: Type.String({ description: 'Public address of the logo (`/brand/{slug}/logo`).' }),
  },
  { title: 'BrandingLogoInfo' },
);

export const Branding = Type.Object(
  {
    object: Type.Literal('branding'),
    customer: Type.String(),
    slug: Type.String(),
    status: Type.Union([Type.Literal('active'), Type.Literal('inactive')], {
      description: '`inactive` while none of the customer\'s mailboxes has an active `branding` add-on: the public pages answer 404 until one has.',
    }),
    colors: BrandingColors,
    texts: BrandingTexts,
    logo: Type.Union([BrandingLogoInfo, Type.Null()]),
    login_url: Type.String({ description: 'The branded login page.' }),
    updated_at: Type.String({ format: 'date-time' }),
  },
  { title: 'Branding' },
);

export const BrandingLogo = Type.Object(
  {
    object: Type.Literal('branding_logo'),
    customer: Type.String(),
    content_type: Type.Union([Type.Literal('image/png'), Type.Literal('image/svg+xml')]),
    size_bytes: Type.Integer({ description: 'Size as stored (an SVG after sanitising).' }),
    width: Type.Union([Type.Integer(), Type.Null()], { description: 'Pixels, for a PNG; null for an SVG.' }),
    height: Type.Union([Type.Integer(), Type.Null()]),
    removed: Type.Array(Type.String(), { description: 'What sanitising removed from an SVG, e.g. `element script`, `attribute onload on svg`.' }),
    url: Type.String(),
  },
  { title: 'BrandingLogo' },
);

export const DeletedBranding = Type.Object(
  { object: Type.Literal('branding'), customer: Type.String(), deleted: Type.Literal(true) },
  { title: 'DeletedBranding' },
);

export const CustomerParams = Type.Object({ id: Type.String({ description: 'A customer id (`cus_…`).' }) }, { additionalProperties: false });
export const SlugParams = Type.Object({ slug: Type.String({ maxLength: 100 }) }, { additionalProperties: false });
