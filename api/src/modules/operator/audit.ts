import { and, desc, eq, gte, isNull, lt, or, type SQL } from 'drizzle-orm';
import { operatorAuditLog, type AuditActor, type DbOrTx } from '@pec-partner/db';
import type { Clock } from '../../clock.ts';
import { newId } from '../../ids.ts';
import { invalid } from '../../http/problem.ts';
import { ofLivePartner } from '../../sandbox/test-mode.ts';
import { currentRequest } from '../../events/request-context.ts';

/** Who acts: an operator key (through the API), the CLI, or the system (the start-up's demo credit). */
export type AuditActorRef = { actor: 'operator_key'; operatorKeyId: string } | { actor: Exclude<AuditActor, 'operator_key'> };

export interface AuditInput {
  action: string;
  targetType: string;
  targetId: string;
  partnerId?: string | null;
  reason?: string | null;
  details?: Record<string, unknown>;
}

export interface AuditEntryView {
  id: string;
  object: 'audit_entry';
  actor: AuditActor;
  operator_key: string | null;
  action: string;
  target: { type: string; id: string };
  partner: string | null;
  reason: string | null;
  request_id: string | null;
  details: Record<string, unknown>;
  created_at: string;
}

type Row = typeof operatorAuditLog.$inferSelect;

export function auditEntryView(row: Row): AuditEntryView {
  return {
    id: row.id,
    object: 'audit_entry',
    actor: row.actor,
    operator_key: row.operatorKeyId,
    action: row.action,
    target: { type: row.targetType, id: row.targetId },
    partner: row.partnerId,
    reason: row.reason,
    request_id: row.requestId,
    details: row.details,
    created_at: row.createdAt.toISOString(),
  };
}

/** Appends one entry in the caller's transaction: the action and its record commit or roll back together. */
export async function recordAudit(tx: DbOrTx, clock: Clock, by: AuditActorRef, input: AuditInput): Promise<AuditEntryView> {
  const now = clock.now();
  const [row] = await tx
    .insert(operatorAuditLog)
    .values({
      id: newId('aud', now),
      actor: by.actor,
      operatorKeyId: by.actor === 'operator_key' ? by.operatorKeyId : null,
      action: input.action,
      targetType: input.targetType,
      targetId: input.targetId,
      partnerId: input.partnerId ?? null,
      reason: input.reason ?? null,
      requestId: currentRequest()?.id ?? null,
      details: input.details ?? {},
      createdAt: now,
    })
    .returning();
  return auditEntryView(row!);
}

export interface AuditQuery {
  limit: number;
  startingAfter?: string | undefined;
  action?: string | undefined;
  targetId?: string | undefined;
  partner?: string | undefined;
  operatorKey?: string | undefined;
  createdGte?: Date | undefined;
  createdLt?: Date | undefined;
}

/** Newest first, in the order written; what the test helpers did in partners' sandboxes is not shown. */
export async function listAudit(db: DbOrTx, query: AuditQuery): Promise<AuditEntryView[]> {
  const conditions: (SQL | undefined)[] = [
    or(isNull(operatorAuditLog.partnerId), ofLivePartner(operatorAuditLog.partnerId)),
    query.action ? eq(operatorAuditLog.action, query.action) : undefined,
    query.targetId ? eq(operatorAuditLog.targetId, query.targetId) : undefined,
    query.partner ? eq(operatorAuditLog.partnerId, query.partner) : undefined,
    query.operatorKey ? eq(operatorAuditLog.operatorKeyId, query.operatorKey) : undefined,
    query.createdGte ? gte(operatorAuditLog.createdAt, query.createdGte) : undefined,
    query.createdLt ? lt(operatorAuditLog.createdAt, query.createdLt) : undefined,
  ];
  if (query.startingAfter) {
    const [cursor] = await db.select({ seq: operatorAuditLog.seq }).from(operatorAuditLog).where(eq(operatorAuditLog.id, query.startingAfter));
    if (!cursor) throw invalid([{ pointer: '/starting_after', location: 'query', code: 'invalid_cursor', detail: 'is not an audit entry' }]);
    conditions.push(lt(operatorAuditLog.seq, cursor.seq));
  }
  const rows = await db
    .select()
    .from(operatorAuditLog)
    .where(and(...conditions))
    .orderBy(desc(operatorAuditLog.seq))
    .limit(query.limit + 1);
  return rows.map(auditEntryView);
}
