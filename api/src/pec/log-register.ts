import { createHash } from 'node:crypto';
import { and, asc, eq, gt, lt, sql } from 'drizzle-orm';
import { logRegister, logRegisterHead, type Db, type DbOrTx } from '@pec-partner/db';

/** Event names of the log register, after the de-facto provider log labels (spec §10.2). */
export const logEvents = [
  'Accettazione', 'NonAccettazione', 'NonAccettazioneVirus', 'BustaTrasporto', 'PresaInCarico', 'Consegna',
  'MancataConsegna', 'MancataConsegna12h', 'MancataConsegna24h', 'RilevazioneVirus', 'MancataConsegnaVirus',
  'BustaAnomalia', 'Ricezione',
] as const;
export type LogEvent = (typeof logEvents)[number];

export interface LogEntryInput {
  occurredAt: Date;
  event: LogEvent;
  /** The PEC msgid of the transaction. */
  messageId: string;
  relatedMessageIds: string[];
  sender: string;
  recipients: string[];
  subject: string;
  provider: string;
  mailboxId: string | null;
  partnerId: string | null;
  /** Per-event facts (recipient type, error, receipt type…); never message content. */
  details: Record<string, unknown>;
}

/** Retention required by DPR 68/2005: 30 months. */
export const LOG_RETENTION_MONTHS = 30;

/** JSON with object keys sorted, so a value hashes the same after a round trip through jsonb. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}

export function entryHash(prevHash: string, seq: number, entry: LogEntryInput): string {
  const fields = [
    seq, entry.occurredAt.toISOString(), entry.event, entry.messageId, entry.relatedMessageIds, entry.sender, entry.recipients,
    entry.subject, entry.provider, entry.mailboxId, entry.partnerId, entry.details,
  ];
  return createHash('sha256').update(prevHash).update('\n').update(canonicalJson(fields)).digest('hex');
}

/**
 * Appends entries inside the caller's transaction, so an event is logged exactly when its effect commits.
 * The head row lock orders concurrent appends into one chain.
 */
export async function appendLog(tx: DbOrTx, entries: LogEntryInput[]): Promise<void> {
  if (entries.length === 0) return;
  const [head] = await tx.select().from(logRegisterHead).where(eq(logRegisterHead.id, 1)).for('update');
  let { lastSeq, lastHash } = head!;
  const rows = entries.map((entry) => {
    const seq = ++lastSeq;
    const hash = entryHash(lastHash, seq, entry);
    const row = { seq, ...entry, prevHash: lastHash, hash };
    lastHash = hash;
    return row;
  });
  await tx.insert(logRegister).values(rows);
  await tx.update(logRegisterHead).set({ lastSeq, lastHash }).where(eq(logRegisterHead.id, 1));
}

export interface ChainCheck {
  ok: boolean;
  entries: number;
  /** The first entry whose hash or link does not match, when not ok. */
  brokenAtSeq?: number;
  reason?: string;
}

/** Recomputes the whole kept chain from the purge anchor to the head. */
export async function verifyLogChain(db: DbOrTx): Promise<ChainCheck> {
  const [head] = await db.select().from(logRegisterHead).where(eq(logRegisterHead.id, 1));
  let expectedPrev = head!.anchorHash;
  let count = 0;
  let after = 0;
  for (;;) {
    const batch = await db.select().from(logRegister).where(gt(logRegister.seq, after)).orderBy(asc(logRegister.seq)).limit(1000);
    for (const row of batch) {
      if (row.prevHash !== expectedPrev) return { ok: false, entries: count, brokenAtSeq: row.seq, reason: 'link to the previous entry broken (an entry was removed or reordered)' };
      const recomputed = entryHash(row.prevHash, row.seq, row as LogEntryInput);
      if (recomputed !== row.hash) return { ok: false, entries: count, brokenAtSeq: row.seq, reason: 'entry content does not match its hash (altered)' };
      expectedPrev = row.hash;
      count++;
      after = row.seq;
    }
    if (batch.length < 1000) break;
  }
  if (expectedPrev !== head!.lastHash) return { ok: false, entries: count, reason: 'the newest entries are missing' };
  return { ok: true, entries: count };
}

export function retentionCutoff(now: Date): Date {
  const cutoff = new Date(now);
  cutoff.setUTCMonth(cutoff.getUTCMonth() - LOG_RETENTION_MONTHS);
  return cutoff;
}

/** Deletes entries older than the retention period; the chain stays verifiable from the new anchor. */
export async function purgeLogRegister(db: Db, now: Date): Promise<number> {
  const cutoff = retentionCutoff(now);
  return db.transaction(async (tx) => {
    await tx.select().from(logRegisterHead).where(eq(logRegisterHead.id, 1)).for('update');
    const [last] = await tx
      .select({ seq: logRegister.seq, hash: logRegister.hash })
      .from(logRegister)
      .where(lt(logRegister.occurredAt, cutoff))
      .orderBy(sql`${logRegister.seq} desc`)
      .limit(1);
    if (!last) return 0;
    await tx.execute(sql`set local pec.log_register_purge = 'on'`);
    const deleted = await tx.delete(logRegister).where(and(lt(logRegister.seq, last.seq + 1))).returning({ seq: logRegister.seq });
    await tx.update(logRegisterHead).set({ anchorHash: last.hash }).where(eq(logRegisterHead.id, 1));
    return deleted.length;
  });
}
