import { readFileSync } from 'node:fs';
import { Type, type Static } from 'typebox';
import { Value } from 'typebox/value';
import { ConfigError } from '../../config.ts';

const Cents = Type.Integer({ minimum: 0, maximum: 100_000_000 });

const PlanSpec = Type.Object(
  {
    unit_amount: Cents,
    inbox_gb: Type.Integer({ minimum: 1 }),
    archive_gb: Type.Integer({ minimum: 0 }),
    included_delegates: Type.Integer({ minimum: 0 }),
    max_inbox_gb: Type.Integer({ minimum: 1 }),
    max_archive_gb: Type.Integer({ minimum: 0 }),
  },
  { additionalProperties: false },
);

const AddonSpec = Type.Object({ unit_amount: Cents }, { additionalProperties: false });

/** The shape of PRICES_FILE: the whole price list, amounts in euro cents excluding VAT. */
export const PriceListConfig = Type.Object(
  {
    currency: Type.Literal('EUR'),
    mailbox_plans: Type.Object({ standard: PlanSpec, pro: PlanSpec, premium: PlanSpec }, { additionalProperties: false }),
    addons: Type.Object(
      {
        extra_inbox_gb: AddonSpec,
        extra_archive_gb: AddonSpec,
        delegation_seat: AddonSpec,
        supervisor: AddonSpec,
        branding: AddonSpec,
        newsletter: AddonSpec,
      },
      { additionalProperties: false },
    ),
    domain_certification: AddonSpec,
  },
  {
    title: 'PriceListDocument',
    description: 'A whole price list: plans (yearly price and quotas), add-ons and domain certification, euro cents excluding VAT.',
    additionalProperties: false,
  },
);
export type PriceListConfig = Static<typeof PriceListConfig>;

/**
 * Illustrative defaults; a deployment sets its own with PRICES_FILE. Plan quotas follow the market research
 * in the product brief (Standard 1 GB / no archive; Pro 2 GB / 3 GB / 1 delegate; Premium 2 GB / 8 GB / 3).
 */
export const defaultPriceList: PriceListConfig = {
  currency: 'EUR',
  mailbox_plans: {
    standard: { unit_amount: 500, inbox_gb: 1, archive_gb: 0, included_delegates: 0, max_inbox_gb: 10, max_archive_gb: 50 },
    pro: { unit_amount: 2500, inbox_gb: 2, archive_gb: 3, included_delegates: 1, max_inbox_gb: 20, max_archive_gb: 100 },
    premium: { unit_amount: 4000, inbox_gb: 2, archive_gb: 8, included_delegates: 3, max_inbox_gb: 50, max_archive_gb: 200 },
  },
  addons: {
    extra_inbox_gb: { unit_amount: 300 },
    extra_archive_gb: { unit_amount: 150 },
    delegation_seat: { unit_amount: 1000 },
    supervisor: { unit_amount: 2400 },
    branding: { unit_amount: 6000 },
    newsletter: { unit_amount: 3600 },
  },
  domain_certification: { unit_amount: 5000 },
};

export function loadPriceList(file: string | undefined): PriceListConfig {
  if (!file) return defaultPriceList;
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new ConfigError(`PRICES_FILE '${file}' could not be read as JSON: ${(error as Error).message}`);
  }
  if (!Value.Check(PriceListConfig, parsed)) {
    const first = [...Value.Errors(PriceListConfig, parsed)][0];
    throw new ConfigError(`PRICES_FILE '${file}' is not a valid price list: ${first?.instancePath || '/'} ${first?.message ?? ''}`);
  }
  return parsed;
}

export const Price = Type.Object(
  {
    id: Type.String({ description: 'Stable price identifier, e.g. `mailbox_pro`.' }),
    object: Type.Literal('price'),
    product: Type.Union([Type.Literal('mailbox'), Type.Literal('addon'), Type.Literal('domain_certification')]),
    name: Type.String(),
    unit_amount: Type.Integer({ description: 'Euro cents, VAT excluded.' }),
    currency: Type.Literal('EUR'),
    billing: Type.Union([Type.Literal('per_year'), Type.Literal('one_time')]),
    unit: Type.Union([Type.Literal('mailbox'), Type.Literal('gb'), Type.Literal('seat'), Type.Literal('domain')]),
    plan: Type.Union([
      Type.Object(
        {
          inbox_gb: Type.Integer(),
          archive_gb: Type.Integer(),
          included_delegates: Type.Integer(),
          max_inbox_gb: Type.Integer(),
          max_archive_gb: Type.Integer(),
        },
        { title: 'PlanQuotas' },
      ),
      Type.Null(),
    ]),
  },
  { title: 'Price' },
);
export type Price = Static<typeof Price>;

const planNames = { standard: 'Standard', pro: 'Pro', premium: 'Premium' } as const;
const addonInfo = {
  extra_inbox_gb: { name: 'Extra inbox space', unit: 'gb' },
  extra_archive_gb: { name: 'Extra archive space', unit: 'gb' },
  delegation_seat: { name: 'Multi-user delegation seat', unit: 'seat' },
  supervisor: { name: 'Supervisor console', unit: 'mailbox' },
  branding: { name: 'Small Business branding', unit: 'mailbox' },
  newsletter: { name: 'Newsletter', unit: 'mailbox' },
} as const;

/** The published price list, in a fixed order. */
export function priceObjects(list: PriceListConfig): Price[] {
  const plans = (Object.keys(planNames) as (keyof typeof planNames)[]).map((plan): Price => {
    const { unit_amount, ...quotas } = list.mailbox_plans[plan];
    return {
      id: `mailbox_${plan}`, object: 'price', product: 'mailbox', name: `PEC mailbox ${planNames[plan]}`,
      unit_amount, currency: list.currency, billing: 'per_year', unit: 'mailbox', plan: quotas,
    };
  });
  const addons = (Object.keys(addonInfo) as (keyof typeof addonInfo)[]).map((addon): Price => ({
    id: `addon_${addon}`, object: 'price', product: 'addon', name: addonInfo[addon].name,
    unit_amount: list.addons[addon].unit_amount, currency: list.currency, billing: 'per_year',
    unit: addonInfo[addon].unit, plan: null,
  }));
  const domain: Price = {
    id: 'domain_certification', object: 'price', product: 'domain_certification', name: 'Custom domain certification',
    unit_amount: list.domain_certification.unit_amount, currency: list.currency, billing: 'per_year', unit: 'domain', plan: null,
  };
  return [...plans, ...addons, domain];
}
