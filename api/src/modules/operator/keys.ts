import { and, desc, eq, isNull, lt, or, sql } from 'drizzle-orm';
import { operatorApiKeys, type DbOrTx, type OperatorScope } from '@pec-partner/db';
import type { Clock } from '../../clock.ts';
import { newId, randomToken } from '../../ids.ts';
import { notFound } from '../../http/problem.ts';
import { hashSecret } from '../partners/service.ts';
import { recordAudit, type AuditActorRef } from './audit.ts';

/** Operator secrets: a prefix of their own, so a partner key can never be mistaken for one (or the reverse). */
export const OPERATOR_KEY_PREFIX = 'sk_op_';

/** Each scope includes the ones before it. */
const scopeRank: Record<OperatorScope, number> = { read_only: 0, billing: 1, full: 2 };
export const scopeAllows = (held: OperatorScope, required: OperatorScope): boolean => scopeRank[held] >= scopeRank[required];

export interface OperatorPrincipal {
  keyId: string;
  scope: OperatorScope;
}

export interface OperatorKeyView {
  id: string;
  object: 'operator_api_key';
  name: string;
  scope: OperatorScope;
  prefix: string;
  created_by: string | null;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
}

type Row = typeof operatorApiKeys.$inferSelect;

export function operatorKeyView(row: Row): OperatorKeyView {
  return {
    id: row.id,
    object: 'operator_api_key',
    name: row.name,
    scope: row.scope,
    prefix: row.secretPrefix,
    created_by: row.createdBy,
    created_at: row.createdAt.toISOString(),
    last_used_at: row.lastUsedAt?.toISOString() ?? null,
    revoked_at: row.revokedAt?.toISOString() ?? null,
  };
}

/** Creates an operator key (audited in the same transaction); the secret exists outside the caller only now. */
export async function createOperatorKey(
  db: DbOrTx,
  clock: Clock,
  by: AuditActorRef,
  input: { name: string; scope: OperatorScope },
): Promise<{ key: OperatorKeyView; secret: string }> {
  return db.transaction(async (tx) => {
    const secret = OPERATOR_KEY_PREFIX + randomToken(32);
    const now = clock.now();
    const [row] = await tx
      .insert(operatorApiKeys)
      .values({
        id: newId('opk', now),
        name: input.name,
        scope: input.scope,
        secretHash: hashSecret(secret),
        secretPrefix: secret.slice(0, OPERATOR_KEY_PREFIX.length + 4),
        createdBy: by.actor === 'operator_key' ? by.operatorKeyId : null,
        createdAt: now,
      })
      .returning();
    const key = operatorKeyView(row!);
    await recordAudit(tx, clock, by, { action: 'operator_api_key.created', targetType: 'operator_api_key', targetId: key.id, details: { name: key.name, scope: key.scope } });
    return { key, secret };
  });
}

const LAST_USED_RESOLUTION_MS = 60_000;

export async function authenticateOperatorSecret(db: DbOrTx, clock: Clock, secret: string): Promise<OperatorPrincipal | null> {
  const [row] = await db
    .select({ id: operatorApiKeys.id, scope: operatorApiKeys.scope, lastUsedAt: operatorApiKeys.lastUsedAt })
    .from(operatorApiKeys)
    .where(and(eq(operatorApiKeys.secretHash, hashSecret(secret)), isNull(operatorApiKeys.revokedAt)));
  if (!row) return null;
  const now = clock.now();
  if (!row.lastUsedAt || now.getTime() - row.lastUsedAt.getTime() > LAST_USED_RESOLUTION_MS) {
    await db
      .update(operatorApiKeys)
      .set({ lastUsedAt: now })
      .where(and(eq(operatorApiKeys.id, row.id), or(isNull(operatorApiKeys.lastUsedAt), lt(operatorApiKeys.lastUsedAt, new Date(now.getTime() - LAST_USED_RESOLUTION_MS)))));
  }
  return { keyId: row.id, scope: row.scope };
}

export async function listOperatorKeys(db: DbOrTx, limit: number, startingAfter?: string): Promise<OperatorKeyView[]> {
  const rows = await db
    .select()
    .from(operatorApiKeys)
    .where(startingAfter ? lt(operatorApiKeys.id, startingAfter) : undefined)
    .orderBy(desc(operatorApiKeys.id))
    .limit(limit + 1);
  return rows.map(operatorKeyView);
}

/** Idempotent; audited only when it revokes. */
export async function revokeOperatorKey(db: DbOrTx, clock: Clock, by: AuditActorRef, id: string): Promise<OperatorKeyView> {
  return db.transaction(async (tx) => {
    const [current] = await tx.select().from(operatorApiKeys).where(eq(operatorApiKeys.id, id)).for('update');
    if (!current) throw notFound('operator API key', id);
    if (current.revokedAt) return operatorKeyView(current);
    const [row] = await tx
      .update(operatorApiKeys)
      .set({ revokedAt: sql`${clock.now().toISOString()}::timestamptz` })
      .where(eq(operatorApiKeys.id, id))
      .returning();
    await recordAudit(tx, clock, by, { action: 'operator_api_key.revoked', targetType: 'operator_api_key', targetId: id, details: { name: row!.name } });
    return operatorKeyView(row!);
  });
}
