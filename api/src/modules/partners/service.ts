import { createHash } from 'node:crypto';
import { and, desc, eq, isNull, lt, or, sql } from 'drizzle-orm';
import { apiKeys, creditAccounts, partners, type DbOrTx } from '@pec-partner/db';
import type { Clock } from '../../clock.ts';
import { newId, randomToken } from '../../ids.ts';
import { notFound, ProblemError } from '../../http/problem.ts';

export const API_KEY_PREFIX = 'sk_live_';
/** Test-mode (sandbox) keys: they belong to the partner's test twin and never see live data. */
export const TEST_API_KEY_PREFIX = 'sk_test_';
/** Whether a credential is a partner's secret key of either world. */
export const isPartnerSecret = (credential: string): boolean =>
  credential.startsWith(API_KEY_PREFIX) || credential.startsWith(TEST_API_KEY_PREFIX);

export const hashSecret = (secret: string): string => createHash('sha256').update(secret).digest('hex');

export interface ApiKeyView {
  id: string;
  object: 'api_key';
  name: string;
  prefix: string;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
}

type ApiKeyRow = typeof apiKeys.$inferSelect;

export function apiKeyView(row: ApiKeyRow): ApiKeyView {
  return {
    id: row.id,
    object: 'api_key',
    name: row.name,
    prefix: row.secretPrefix,
    created_at: row.createdAt.toISOString(),
    last_used_at: row.lastUsedAt?.toISOString() ?? null,
    revoked_at: row.revokedAt?.toISOString() ?? null,
  };
}

/** Creates a key and returns its secret: the only moment the secret exists outside the caller's hands. */
export async function createApiKey(
  db: DbOrTx,
  clock: Clock,
  partnerId: string,
  name: string,
  livemode: boolean,
): Promise<{ key: ApiKeyView; secret: string }> {
  const prefix = livemode ? API_KEY_PREFIX : TEST_API_KEY_PREFIX;
  const secret = prefix + randomToken(32);
  const [row] = await db
    .insert(apiKeys)
    .values({
      id: newId('key', clock.now()),
      partnerId,
      name,
      secretHash: hashSecret(secret),
      secretPrefix: secret.slice(0, prefix.length + 4),
      createdAt: clock.now(),
    })
    .returning();
  return { key: apiKeyView(row!), secret };
}

/**
 * A partner starts with an empty credit account and one API key, and with its sandbox: a test twin with its own
 * (free) credit account and one `sk_test_` key.
 */
export async function createPartner(
  db: DbOrTx,
  clock: Clock,
  name: string,
): Promise<{ partner: { id: string; name: string }; key: ApiKeyView; secret: string; testPartnerId: string; testKey: ApiKeyView; testSecret: string }> {
  return db.transaction(async (tx) => {
    const now = clock.now();
    const id = newId('ptn', now);
    await tx.insert(partners).values({ id, name, createdAt: now });
    await tx.insert(creditAccounts).values({ partnerId: id, balanceCents: 0, updatedAt: now });
    const { key, secret } = await createApiKey(tx, clock, id, 'Default key', true);
    const testWorld = await testWorldOf(tx, clock, id);
    const test = await createApiKey(tx, clock, testWorld, 'Default test key', false);
    return { partner: { id, name }, key, secret, testPartnerId: testWorld, testKey: test.key, testSecret: test.secret };
  });
}

/**
 * The partner row of a live partner's sandbox, created on first need (partners made before test mode existed get
 * theirs when they first ask for a test key). Concurrent first calls meet on the unique twin index.
 */
export async function testWorldOf(db: DbOrTx, clock: Clock, livePartnerId: string): Promise<string> {
  const existing = async () =>
    (await db.select({ id: partners.id }).from(partners).where(eq(partners.livePartnerId, livePartnerId)))[0]?.id;
  const found = await existing();
  if (found) return found;
  const now = clock.now();
  const id = newId('ptn', now);
  const [live] = await db.select({ name: partners.name }).from(partners).where(and(eq(partners.id, livePartnerId), eq(partners.livemode, true)));
  if (!live) throw notFound('partner', livePartnerId);
  const [created] = await db
    .insert(partners)
    .values({ id, name: live.name, livemode: false, livePartnerId, createdAt: now })
    .onConflictDoNothing()
    .returning({ id: partners.id });
  if (!created) return (await existing())!;
  await db.insert(creditAccounts).values({ partnerId: id, balanceCents: 0, updatedAt: now });
  return id;
}

export interface Principal {
  /** The partner row of the caller's world: the live partner, or its test twin for `sk_test_` keys and their tokens. */
  partnerId: string;
  apiKeyId: string;
  /** False in test mode (the sandbox). */
  livemode: boolean;
}

/** A partner suspended by the provider's operator: its keys and tokens are refused with this 403. */
export const partnerSuspended = (): ProblemError =>
  new ProblemError(403, 'partner_suspended', 'Forbidden',
    "This partner account is suspended by the provider: API keys and tokens are refused until it is reactivated (its customers' mailboxes keep working).");

const LAST_USED_RESOLUTION_MS = 60_000;

/** A test twin is suspended with its live partner: the status that counts is the live partner's. */
const liveStatus = sql<string>`coalesce((select live.status from ${partners} live where live.id = ${partners.livePartnerId}), ${partners.status})`;

/**
 * Resolves a secret to its active key; records use at most once a minute to keep reads cheap. A key of a
 * suspended partner is known but refused: a 403 `partner_suspended` problem is thrown.
 */
export async function authenticateSecret(db: DbOrTx, clock: Clock, secret: string): Promise<Principal | null> {
  const [row] = await db
    .select({ id: apiKeys.id, partnerId: apiKeys.partnerId, lastUsedAt: apiKeys.lastUsedAt, status: liveStatus, livemode: partners.livemode })
    .from(apiKeys)
    .innerJoin(partners, eq(partners.id, apiKeys.partnerId))
    .where(and(eq(apiKeys.secretHash, hashSecret(secret)), isNull(apiKeys.revokedAt)));
  if (!row) return null;
  if (row.status !== 'active') throw partnerSuspended();
  const now = clock.now();
  if (!row.lastUsedAt || now.getTime() - row.lastUsedAt.getTime() > LAST_USED_RESOLUTION_MS) {
    await db
      .update(apiKeys)
      .set({ lastUsedAt: now })
      .where(
        and(
          eq(apiKeys.id, row.id),
          or(isNull(apiKeys.lastUsedAt), lt(apiKeys.lastUsedAt, new Date(now.getTime() - LAST_USED_RESOLUTION_MS))),
        ),
      );
  }
  return { partnerId: row.partnerId, apiKeyId: row.id, livemode: row.livemode };
}

/**
 * An access token stays valid only while the key it was exchanged for is not revoked; a suspended partner's
 * tokens are refused with a 403 `partner_suspended` problem.
 */
export async function isKeyActive(db: DbOrTx, partnerId: string, apiKeyId: string): Promise<boolean> {
  const [row] = await db
    .select({ id: apiKeys.id, status: liveStatus })
    .from(apiKeys)
    .innerJoin(partners, eq(partners.id, apiKeys.partnerId))
    .where(and(eq(apiKeys.id, apiKeyId), eq(apiKeys.partnerId, partnerId), isNull(apiKeys.revokedAt)));
  if (row && row.status !== 'active') throw partnerSuspended();
  return Boolean(row);
}

export async function listApiKeys(db: DbOrTx, partnerId: string, limit: number, startingAfter?: string) {
  const rows = await db
    .select()
    .from(apiKeys)
    .where(and(eq(apiKeys.partnerId, partnerId), startingAfter ? lt(apiKeys.id, startingAfter) : undefined))
    .orderBy(desc(apiKeys.id))
    .limit(limit + 1);
  return rows.map(apiKeyView);
}

/** Revoking is idempotent: revoking a revoked key returns it unchanged. */
export async function revokeApiKey(db: DbOrTx, clock: Clock, partnerId: string, id: string): Promise<ApiKeyView> {
  const [row] = await db
    .update(apiKeys)
    .set({ revokedAt: sql`coalesce(${apiKeys.revokedAt}, ${clock.now().toISOString()}::timestamptz)` })
    .where(and(eq(apiKeys.id, id), eq(apiKeys.partnerId, partnerId)))
    .returning();
  if (!row) throw notFound('API key', id);
  return apiKeyView(row);
}
