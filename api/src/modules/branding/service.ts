import { and, eq, sql, type SQL } from 'drizzle-orm';
import { brandings, customers, mailboxes, type DbOrTx } from '@pec-partner/db';
import type { Clock } from '../../clock.ts';
import { isUniqueViolation } from '../../db-errors.ts';
import { conflict, notFound, ProblemError } from '../../http/problem.ts';
import { hasActiveAddon } from '../addons/service.ts';
import type { CheckedLogo, LogoContentType } from './logo.ts';
import type { BrandingUpdate } from './schemas.ts';

export interface BrandingColors {
  primary: string;
  secondary: string;
  background: string;
  text: string;
}

export interface BrandingTexts {
  company_name: string;
  login_title: string | null;
  welcome_text: string | null;
  footer: string | null;
}

/** A branding as the pages and the API see it (the logo bytes are read only where needed). */
export interface BrandingRecord {
  customerId: string;
  partnerId: string;
  slug: string;
  colors: BrandingColors;
  texts: BrandingTexts;
  logoContentType: LogoContentType | null;
  logoSize: number | null;
  updatedAt: Date;
}

export interface StoredLogo {
  bytes: Buffer;
  contentType: LogoContentType;
}

const columns = {
  customerId: brandings.customerId,
  partnerId: brandings.partnerId,
  slug: brandings.slug,
  colors: brandings.colors,
  texts: brandings.texts,
  logoContentType: brandings.logoContentType,
  logoSize: sql<number | null>`octet_length(${brandings.logo})`,
  updatedAt: brandings.updatedAt,
};

const toRecord = (row: { [K in keyof typeof columns]: unknown }): BrandingRecord => row as BrandingRecord;

export function brandingView(record: BrandingRecord, active: boolean, publicUrl: string) {
  const base = `${publicUrl}/brand/${record.slug}`;
  return {
    object: 'branding' as const,
    customer: record.customerId,
    slug: record.slug,
    status: active ? ('active' as const) : ('inactive' as const),
    colors: record.colors,
    texts: record.texts,
    logo: record.logoContentType && record.logoSize !== null
      ? { content_type: record.logoContentType, size_bytes: Number(record.logoSize), url: `${base}/logo` }
      : null,
    login_url: `${base}/login`,
    updated_at: record.updatedAt.toISOString(),
  };
}
export type BrandingView = ReturnType<typeof brandingView>;

async function requireCustomer(db: DbOrTx, partnerId: string, customerId: string): Promise<void> {
  const [row] = await db.select({ id: customers.id }).from(customers).where(and(eq(customers.id, customerId), eq(customers.partnerId, partnerId)));
  if (!row) throw notFound('customer', customerId);
}

/** Whether one of the customer's mailboxes has an active `branding` add-on: the gate of the whole feature. */
export async function brandingAllowed(db: DbOrTx, partnerId: string, customerId: string): Promise<boolean> {
  const rows = await db.select({ id: mailboxes.id }).from(mailboxes).where(and(eq(mailboxes.customerId, customerId), eq(mailboxes.partnerId, partnerId)));
  for (const { id } of rows) {
    if (await hasActiveAddon(db, id, 'branding')) return true;
  }
  return false;
}

async function requireAddon(db: DbOrTx, partnerId: string, customerId: string): Promise<void> {
  if (!(await brandingAllowed(db, partnerId, customerId))) {
    throw conflict(
      'addon_required',
      `Branding needs the branding add-on on one of the mailboxes of customer '${customerId}': buy it with POST /v1/mailboxes/{id}/addons {"kind": "branding"}.`,
      { addon: 'branding' },
    );
  }
}

async function findRecord(db: DbOrTx, partnerId: string, customerId: string): Promise<BrandingRecord | null> {
  const [row] = await db.select(columns).from(brandings).where(and(eq(brandings.customerId, customerId), eq(brandings.partnerId, partnerId)));
  return row ? toRecord(row) : null;
}

const brandingMissing = (customerId: string): ProblemError =>
  new ProblemError(404, 'resource_missing', 'Resource not found', `Customer '${customerId}' has no branding.`);

/** Creates or replaces the branding (colours, texts, slug); the logo is kept. Needs the add-on. */
export async function putBranding(
  db: DbOrTx,
  clock: Clock,
  partnerId: string,
  customerId: string,
  input: BrandingUpdate,
): Promise<{ record: BrandingRecord; created: boolean }> {
  await requireCustomer(db, partnerId, customerId);
  await requireAddon(db, partnerId, customerId);
  const colors: BrandingColors = {
    primary: input.colors.primary.toLowerCase(),
    secondary: input.colors.secondary.toLowerCase(),
    background: input.colors.background.toLowerCase(),
    text: input.colors.text.toLowerCase(),
  };
  const texts: BrandingTexts = {
    company_name: input.texts.company_name.trim(),
    login_title: input.texts.login_title?.trim() ?? null,
    welcome_text: input.texts.welcome_text?.replace(/\r\n?/g, '\n').trim() ?? null,
    footer: input.texts.footer?.trim() ?? null,
  };
  const now = clock.now();
  try {
    const [row] = await db
      .insert(brandings)
      .values({ customerId, partnerId, slug: input.slug, colors, texts, updatedAt: now })
      .onConflictDoUpdate({ target: brandings.customerId, set: { slug: input.slug, colors, texts, updatedAt: now } })
      // xmax is 0 on a freshly inserted row version, not on one written by the DO UPDATE branch.
      .returning({ ...columns, created: sql<boolean>`(xmax = 0)` });
    const { created, ...record } = row!;
    return { record: toRecord(record), created };
  } catch (error) {
    if (isUniqueViolation(error, 'brandings_slug_key')) {
      throw conflict('slug_taken', `The slug '${input.slug}' is already used by another branding; choose another.`);
    }
    throw error;
  }
}

export async function getBranding(db: DbOrTx, partnerId: string, customerId: string): Promise<{ record: BrandingRecord; active: boolean }> {
  await requireCustomer(db, partnerId, customerId);
  const record = await findRecord(db, partnerId, customerId);
  if (!record) throw brandingMissing(customerId);
  return { record, active: await brandingAllowed(db, partnerId, customerId) };
}

/** Removes the branding and its logo; allowed without the add-on (e.g. after it was cancelled). */
export async function deleteBranding(db: DbOrTx, partnerId: string, customerId: string): Promise<void> {
  await requireCustomer(db, partnerId, customerId);
  const deleted = await db.delete(brandings).where(and(eq(brandings.customerId, customerId), eq(brandings.partnerId, partnerId))).returning({ id: brandings.customerId });
  if (deleted.length === 0) throw brandingMissing(customerId);
}

/**
 * Replaces the logo. The customer, the add-on and the branding are checked first; then `check` validates (and
 * for SVG sanitises) the upload, so an upload is not processed for a customer that may not have one.
 */
export async function putLogo(
  db: DbOrTx,
  clock: Clock,
  partnerId: string,
  customerId: string,
  check: () => CheckedLogo,
): Promise<{ record: BrandingRecord; logo: CheckedLogo }> {
  await requireCustomer(db, partnerId, customerId);
  await requireAddon(db, partnerId, customerId);
  const notConfigured = () =>
    conflict('branding_not_configured', `Customer '${customerId}' has no branding yet: PUT /v1/customers/${customerId}/branding first.`);
  if (!(await findRecord(db, partnerId, customerId))) throw notConfigured();
  const logo = check();
  const [row] = await db
    .update(brandings)
    .set({ logo: logo.bytes, logoContentType: logo.contentType, updatedAt: clock.now() })
    .where(and(eq(brandings.customerId, customerId), eq(brandings.partnerId, partnerId)))
    .returning(columns);
  if (!row) throw notConfigured(); // deleted meanwhile
  return { record: toRecord(row), logo };
}

export async function deleteLogo(db: DbOrTx, clock: Clock, partnerId: string, customerId: string): Promise<BrandingRecord> {
  await requireCustomer(db, partnerId, customerId);
  const [row] = await db
    .update(brandings)
    .set({ logo: null, logoContentType: null, updatedAt: clock.now() })
    .where(and(eq(brandings.customerId, customerId), eq(brandings.partnerId, partnerId)))
    .returning(columns);
  if (!row) throw brandingMissing(customerId);
  return toRecord(row);
}

async function readLogo(db: DbOrTx, where: SQL): Promise<StoredLogo | null> {
  const [row] = await db.select({ bytes: brandings.logo, contentType: brandings.logoContentType }).from(brandings).where(where);
  return row?.bytes && row.contentType ? { bytes: row.bytes, contentType: row.contentType as LogoContentType } : null;
}

export async function getLogo(db: DbOrTx, partnerId: string, customerId: string): Promise<StoredLogo> {
  await requireCustomer(db, partnerId, customerId);
  const logo = await readLogo(db, and(eq(brandings.customerId, customerId), eq(brandings.partnerId, partnerId))!);
  if (!logo) throw new ProblemError(404, 'resource_missing', 'Resource not found', `Customer '${customerId}' has no branding logo.`);
  return logo;
}

/** The branding behind a public page, or null when the slug is unknown or the add-on is not active. */
export async function publicBranding(db: DbOrTx, slug: string): Promise<BrandingRecord | null> {
  const [row] = await db.select(columns).from(brandings).where(eq(brandings.slug, slug));
  if (!row) return null;
  const record = toRecord(row);
  return (await brandingAllowed(db, record.partnerId, record.customerId)) ? record : null;
}

export async function publicLogo(db: DbOrTx, slug: string): Promise<StoredLogo | null> {
  const record = await publicBranding(db, slug);
  return record ? readLogo(db, eq(brandings.customerId, record.customerId)) : null;
}

/** The logo of a branding already read, for the preview (inlined there as a data: URI). */
export async function logoOf(db: DbOrTx, record: BrandingRecord): Promise<StoredLogo | null> {
  return record.logoContentType ? readLogo(db, eq(brandings.customerId, record.customerId)) : null;
}
