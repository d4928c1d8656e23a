import { createHash } from 'node:crypto';
import { and, desc, eq, lt } from 'drizzle-orm';
import { bankStatementLines, bankStatements, topUps, type BankStatementLineStatus, type DbOrTx } from '@pec-partner/db';
import type { Clock } from '../../clock.ts';
import type { BankAccountConfig, InvoicingConfig } from '../../config.ts';
import { newId } from '../../ids.ts';
import { conflict, notFound, ProblemError } from '../../http/problem.ts';
import { confirmTopUp, referencesIn, topUpsByReference } from '../credit/top-ups.ts';
import { grossCents } from '../invoices/money.ts';
import { recordAudit, type AuditActorRef } from './audit.ts';
import { CamtError, parseCamt053, type StatementEntry } from './camt053.ts';

export interface StatementLineView {
  id: string;
  object: 'bank_statement_line';
  statement: string;
  account_iban: string;
  entry_reference: string;
  credit_debit: 'credit' | 'debit';
  amount: number;
  currency: string;
  booking_date: string | null;
  value_date: string | null;
  remittance_information: string | null;
  debtor_name: string | null;
  debtor_iban: string | null;
  status: BankStatementLineStatus;
  mismatch_reason: string | null;
  top_up: string | null;
  created_at: string;
}

type LineRow = typeof bankStatementLines.$inferSelect;

export function statementLineView(row: LineRow): StatementLineView {
  return {
    id: row.id,
    object: 'bank_statement_line',
    statement: row.statementId,
    account_iban: row.accountIban,
    entry_reference: row.entryReference,
    credit_debit: row.creditDebit,
    amount: row.amountCents,
    currency: row.currency,
    booking_date: row.bookingDate,
    value_date: row.valueDate,
    remittance_information: row.remittanceInformation,
    debtor_name: row.debtorName,
    debtor_iban: row.debtorIban,
    status: row.status,
    mismatch_reason: row.mismatchReason,
    top_up: row.topUpId,
    created_at: row.createdAt.toISOString(),
  };
}

export interface ImportResult {
  id: string;
  object: 'bank_statement_import';
  message_id: string;
  account_iban: string;
  entries: number;
  matched: number;
  unmatched: number;
  ignored: number;
  already_imported: number;
  /** The lines this import added (lines seen in an earlier import are only counted). */
  lines: StatementLineView[];
  created_at: string;
}

type Decision = { status: 'matched'; topUpId: string } | { status: 'unmatched' | 'ignored'; reason: string };

/** What a booked entry means for the top-ups, decided with the candidate top-ups locked. */
async function decide(tx: DbOrTx, entry: StatementEntry): Promise<Decision> {
  if (entry.creditDebit === 'debit') return { status: 'ignored', reason: 'debit' };
  if (entry.reversal) return { status: 'ignored', reason: 'reversal' };
  const references = referencesIn(entry.remittance ?? '');
  if (references.length === 0) return { status: 'unmatched', reason: 'no_reference' };
  const candidates = await topUpsByReference(tx, references);
  if (candidates.length === 0) return { status: 'unmatched', reason: 'unknown_reference' };
  if (candidates.length > 1) return { status: 'unmatched', reason: 'several_references' };
  const [topUp] = await tx.select().from(topUps).where(eq(topUps.id, candidates[0]!.id)).for('update');
  if (entry.currency !== topUp!.currency) return { status: 'unmatched', reason: 'currency_mismatch' };
  // The partner pays the gross (the credit plus VAT, as invoiced): that is what the transfer must carry.
  if (entry.amountCents !== grossCents(topUp!.amountCents)) return { status: 'unmatched', reason: 'amount_mismatch' };
  if (topUp!.status !== 'pending') return { status: 'unmatched', reason: `top_up_${topUp!.status}` };
  return { status: 'matched', topUpId: topUp!.id };
}

/**
 * Imports a CAMT.053 statement of the provider's account. Each booked entry is one line, keyed on the account and
 * the bank's entry reference: a line seen before is skipped, so importing the same statement (or an overlapping
 * one) again credits nothing twice. Each new line is decided and stored in its own transaction, with the credit of
 * the top-up it matches (exactly once: the top-up row is locked, as for an operator's confirmation).
 */
export async function importBankStatement(
  db: DbOrTx, clock: Clock, bank: BankAccountConfig | null, invoicing: InvoicingConfig, by: AuditActorRef, xml: string,
): Promise<ImportResult> {
  let parsed;
  try {
    parsed = parseCamt053(xml);
  } catch (error) {
    if (error instanceof CamtError) throw new ProblemError(422, 'invalid_bank_statement', 'Unprocessable request', `The CAMT.053 statement cannot be read: ${error.message}.`);
    throw error;
  }
  const accounts = [...new Set(parsed.statements.map((s) => s.accountIban))];
  if (bank && accounts.some((iban) => iban !== bank.iban)) {
    throw new ProblemError(422, 'statement_account_mismatch', 'Unprocessable request',
      `The statement is for ${accounts.join(', ')}, not for the provider's account ${bank.iban} (PROVIDER_IBAN).`, { accounts });
  }
  const now = clock.now();
  const statementId = newId('bst', now);
  const entries = parsed.statements.flatMap((s) => s.entries.map((entry) => ({ entry, iban: s.accountIban })));
  await db.transaction(async (tx) => {
    await tx.insert(bankStatements).values({
      id: statementId,
      messageId: parsed.messageId,
      statementIds: parsed.statements.map((s) => s.id),
      accountIban: accounts.join(','),
      sha256: createHash('sha256').update(xml).digest('hex'),
      entries: entries.length,
      importedBy: by.actor === 'operator_key' ? by.operatorKeyId : null,
      createdAt: now,
    });
  });

  const lines: StatementLineView[] = [];
  let alreadyImported = 0;
  for (const { entry, iban } of entries) {
    const line = await db.transaction(async (tx) => {
      const lineId = newId('bsl', clock.now());
      // Claim the entry first: a concurrent import of the same line waits here, then finds it taken.
      const [claimed] = await tx
        .insert(bankStatementLines)
        .values({
          id: lineId, statementId, accountIban: iban, entryReference: entry.reference, creditDebit: entry.creditDebit,
          amountCents: entry.amountCents, currency: entry.currency, bookingDate: entry.bookingDate, valueDate: entry.valueDate,
          remittanceInformation: entry.remittance, debtorName: entry.debtorName, debtorIban: entry.debtorIban,
          status: 'unmatched', mismatchReason: 'undecided', createdAt: clock.now(),
        })
        .onConflictDoNothing()
        .returning({ id: bankStatementLines.id });
      if (!claimed) return null;
      let decision = await decide(tx, entry);
      if (decision.status === 'matched') {
        try {
          // A nested transaction (a savepoint): if the credit cannot be made, the line is still recorded.
          await confirmTopUp(tx, clock, bank, invoicing, by, decision.topUpId, {
            reason: `Bank transfer matched on statement ${parsed.messageId}, entry ${entry.reference}`,
            source: { type: 'bank_statement_line', id: lineId },
          });
        } catch (error) {
          // The partner cleared its fiscal data after asking for the top-up: no invoice, so no credit yet; an
          // operator confirms the top-up once the data is complete again.
          if (!(error instanceof ProblemError && error.code === 'fiscal_data_required')) throw error;
          decision = { status: 'unmatched', reason: 'fiscal_data_required' };
        }
      }
      const [row] = await tx
        .update(bankStatementLines)
        .set(decision.status === 'matched'
          ? { status: 'matched', topUpId: decision.topUpId, mismatchReason: null }
          : { status: decision.status, mismatchReason: decision.reason })
        .where(eq(bankStatementLines.id, lineId))
        .returning();
      return statementLineView(row!);
    });
    if (line) lines.push(line);
    else alreadyImported++;
  }
  const count = (status: BankStatementLineStatus) => lines.filter((l) => l.status === status).length;
  const result: ImportResult = {
    id: statementId,
    object: 'bank_statement_import',
    message_id: parsed.messageId,
    account_iban: accounts.join(','),
    entries: entries.length,
    matched: count('matched'),
    unmatched: count('unmatched'),
    ignored: count('ignored'),
    already_imported: alreadyImported,
    lines,
    created_at: now.toISOString(),
  };
  await db.transaction(async (tx) => {
    await recordAudit(tx, clock, by, {
      action: 'bank_statement.imported', targetType: 'bank_statement', targetId: statementId,
      reason: `CAMT.053 ${parsed.messageId}`,
      details: { message_id: parsed.messageId, entries: result.entries, matched: result.matched, unmatched: result.unmatched, ignored: result.ignored, already_imported: alreadyImported },
    });
  });
  return result;
}

export interface LineQuery {
  limit: number;
  startingAfter?: string | undefined;
  status?: BankStatementLineStatus | undefined;
  statement?: string | undefined;
}

export async function listStatementLines(db: DbOrTx, query: LineQuery): Promise<StatementLineView[]> {
  const rows = await db
    .select()
    .from(bankStatementLines)
    .where(
      and(
        query.status ? eq(bankStatementLines.status, query.status) : undefined,
        query.statement ? eq(bankStatementLines.statementId, query.statement) : undefined,
        query.startingAfter ? lt(bankStatementLines.id, query.startingAfter) : undefined,
      ),
    )
    .orderBy(desc(bankStatementLines.id))
    .limit(query.limit + 1);
  return rows.map(statementLineView);
}

/** Locks an imported line for an operator's review; only an `unmatched` line can be resolved or ignored (409). */
async function lockUnmatchedLine(tx: DbOrTx, id: string, action: 'resolve' | 'ignore'): Promise<LineRow> {
  const [line] = await tx.select().from(bankStatementLines).where(eq(bankStatementLines.id, id)).for('update');
  if (!line) throw notFound('bank statement line', id);
  if (line.status !== 'unmatched') {
    throw conflict('invalid_state_transition', `Bank statement line '${id}' is ${line.status}; only an unmatched line can be ${action === 'resolve' ? 'resolved' : 'ignored'}.`,
      { current_status: line.status, allowed_from: ['unmatched'] });
  }
  return line;
}

/**
 * The operator decides which pending top-up an unmatched line paid: the top-up is credited through the same path as
 * a confirmation (exactly once, with its invoice) and the line becomes `matched`, in one transaction. The top-up must
 * be pending or expired (money that arrived late); a credited or failed one is a 409, and so is a line already
 * matched or ignored. The line's original mismatch reason stays in the audit trail.
 */
export async function resolveStatementLine(
  db: DbOrTx, clock: Clock, bank: BankAccountConfig | null, invoicing: InvoicingConfig, by: AuditActorRef,
  id: string, input: { topUpId: string; reason: string },
): Promise<StatementLineView> {
  return db.transaction(async (tx) => {
    const line = await lockUnmatchedLine(tx, id, 'resolve');
    const [topUp] = await tx.select().from(topUps).where(eq(topUps.id, input.topUpId)).for('update');
    if (!topUp) throw notFound('top-up', input.topUpId);
    if (topUp.status !== 'pending' && topUp.status !== 'expired') {
      throw conflict('top_up_not_payable', `Top-up '${topUp.id}' is ${topUp.status}: only a pending or expired top-up can be paid by a statement line.`,
        { current_status: topUp.status });
    }
    await confirmTopUp(tx, clock, bank, invoicing, by, topUp.id, { reason: input.reason, source: { type: 'bank_statement_line', id } });
    const [row] = await tx
      .update(bankStatementLines)
      .set({ status: 'matched', topUpId: topUp.id, mismatchReason: null })
      .where(eq(bankStatementLines.id, id))
      .returning();
    await recordAudit(tx, clock, by, {
      action: 'bank_statement_line.resolved', targetType: 'bank_statement_line', targetId: id, partnerId: topUp.partnerId, reason: input.reason,
      details: { top_up: topUp.id, line_amount: line.amountCents, top_up_gross: grossCents(topUp.amountCents), previous_mismatch_reason: line.mismatchReason },
    });
    return statementLineView(row!);
  });
}

/** Money that is not a top-up (a refund from a supplier, a transfer to be returned): the line leaves the review queue. */
export async function ignoreStatementLine(db: DbOrTx, clock: Clock, by: AuditActorRef, id: string, reason: string): Promise<StatementLineView> {
  return db.transaction(async (tx) => {
    const line = await lockUnmatchedLine(tx, id, 'ignore');
    const [row] = await tx
      .update(bankStatementLines)
      .set({ status: 'ignored', mismatchReason: 'ignored_by_operator' })
      .where(eq(bankStatementLines.id, id))
      .returning();
    await recordAudit(tx, clock, by, {
      action: 'bank_statement_line.ignored', targetType: 'bank_statement_line', targetId: id, reason,
      details: { amount: line.amountCents, previous_mismatch_reason: line.mismatchReason },
    });
    return statementLineView(row!);
  });
}
