import { createHash } from 'node:crypto';
import { and, desc, eq, isNull, lt, or, sql } from 'drizzle-orm';
import { apiKeys, creditAccounts, partners, type DbOrTx } from '@pec-partner/db';
import type { Clock } from '../../clock.ts';
import { newId, randomToken } from '../../ids.ts';
import { notFound, ProblemError } from '../../http/problem.ts';

export const API_KEY_PREFIX = 'sk_live_';

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
): Promise<{ key: ApiKeyView; secret: string }> {
  const secret = API_KEY_PREFIX + randomToken(32);
  const [row] = await db
    .insert(apiKeys)
    .values({
      id: newId('key', clock.now()),
      partnerId,
      name,
      secretHash: hashSecret(secret),
      secretPrefix: secret.slice(0, API_KEY_PREFIX.length + 4),
      createdAt: clock.now(),
    })
    .returning();
  return { key: apiKeyView(row!), secret };
}

/** A partner starts with an empty credit account and one API key. */
export async function createPartner(
  db: DbOrTx,
  clock: Clock,
  name: string,
): Promise<{ partner: { id: string; name: string }; key: ApiKeyView; secret: string }> {
  return db.transaction(async (tx) => {
    const now = clock.now();
    const id = newId('ptn', now);
    await tx.insert(partners).values({ id, name, createdAt: now });
    await tx.insert(creditAccounts).values({ partnerId: id, balanceCents: 0, updatedAt: now });
    const { key, secret } = await createApiKey(tx, clock, id, 'Default key');
    return { partner: { id, name }, key, secret };
  });
}

export interface Principal {
  partnerId: string;
  apiKeyId: string;
}

/** A partner suspended by the provider's operator: its keys and tokens are refused with this 403. */
export const partnerSuspended = (): ProblemError =>
  new ProblemError(403, 'partner_suspended', 'Forbidden',
    "This partner account is suspended by the provider: API keys and tokens are refused until it is reactivated (its customers' mailboxes keep working).");

const LAST_USED_RESOLUTION_MS = 60_000;

/**
 * Resolves a secret to its active key; records use at most once a minute to keep reads cheap. A key of a
 * suspended partner is known but refused: a 403 `partner_suspended` problem is thrown.
 */
export async function authenticateSecret(db: DbOrTx, clock: Clock, secret: string): Promise<Principal | null> {
  const [row] = await db
    .select({ id: apiKeys.id, partnerId: apiKeys.partnerId, lastUsedAt: apiKeys.lastUsedAt, status: partners.status })
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
  return { partnerId: row.partnerId, apiKeyId: row.id };
}

/**
 * An access token stays valid only while the key it was exchanged for is not revoked; a suspended partner's
 * tokens are refused with a 403 `partner_suspended` problem.
 */
export async function isKeyActive(db: DbOrTx, partnerId: string, apiKeyId: string): Promise<boolean> {
  const [row] = await db
    .select({ id: apiKeys.id, status: partners.status })
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
