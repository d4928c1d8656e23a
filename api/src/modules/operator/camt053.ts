import { createHash } from 'node:crypto';
import { XMLParser, XMLValidator } from 'fast-xml-parser';

/**
 * ISO 20022 CAMT.053 (bank-to-customer statement) reader, versions 001.02 to 001.08 (the elements used here are
 * the same in all of them). fast-xml-parser does the XML; this module maps the few elements reconciliation needs.
 * Every value stays a string (no number coercion: references like `000123` keep their zeros, amounts are parsed
 * from their decimal text into integer cents, never through floating point).
 */

export interface StatementEntry {
  /** AcctSvcrRef, else NtryRef (per transaction: `…/2` for the second of a batch); a digest when the bank gave neither. */
  reference: string;
  creditDebit: 'credit' | 'debit';
  reversal: boolean;
  /** Minor units (cents). */
  amountCents: number;
  currency: string;
  bookingDate: string | null;
  valueDate: string | null;
  /** Every unstructured line and structured creditor reference, joined by ' | '. */
  remittance: string | null;
  debtorName: string | null;
  debtorIban: string | null;
}

export interface ParsedStatement {
  messageId: string;
  createdAt: string | null;
  statements: { id: string; accountIban: string; entries: StatementEntry[] }[];
}

export class CamtError extends Error {
  override name = 'CamtError';
}

const ARRAYS = new Set(['Stmt', 'Ntry', 'NtryDtls', 'TxDtls', 'Ustrd', 'Strd', 'Bal']);

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@',
  removeNSPrefix: true,
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: true,
  processEntities: true,
  isArray: (name) => ARRAYS.has(name),
});

type Node = Record<string, any>;

const text = (value: unknown): string | null => {
  if (value === undefined || value === null) return null;
  if (typeof value === 'object') return text((value as Node)['#text']);
  const s = String(value).trim();
  return s.length > 0 ? s : null;
};

/** `1234.5` → 123450. Amounts in CAMT have at most 5 fraction digits; euro needs exactly cents. */
export function amountToCents(raw: string, currency: string): number {
  const match = /^(\d{1,15})(?:\.(\d{1,5}))?$/.exec(raw);
  if (!match) throw new CamtError(`invalid amount '${raw}'`);
  const fraction = (match[2] ?? '').padEnd(2, '0');
  if (currency === 'EUR' && /[1-9]/.test(fraction.slice(2))) throw new CamtError(`amount '${raw}' has fractions of a cent`);
  return Number(match[1]) * 100 + Number(fraction.slice(0, 2));
}

function amountOf(node: Node | undefined): { cents: number; currency: string } | null {
  const amt = node?.Amt;
  if (amt === undefined) return null;
  const raw = text(amt);
  const currency = typeof amt === 'object' ? String(amt['@Ccy'] ?? '') : '';
  if (!raw || !/^[A-Z]{3}$/.test(currency)) throw new CamtError('an amount lacks its value or its Ccy attribute');
  return { cents: amountToCents(raw, currency), currency };
}

function remittanceOf(tx: Node | undefined): string | null {
  const rmt = tx?.RmtInf;
  if (!rmt) return null;
  const parts: string[] = [];
  for (const line of rmt.Ustrd ?? []) { const t = text(line); if (t) parts.push(t); }
  for (const strd of rmt.Strd ?? []) { const t = text(strd?.CdtrRefInf?.Ref); if (t) parts.push(t); }
  return parts.length > 0 ? parts.join(' | ') : null;
}

const dateOf = (node: Node | undefined): string | null => text(node?.Dt) ?? (text(node?.DtTm)?.slice(0, 10) ?? null);

/** Parses a CAMT.053 document; throws CamtError naming what is wrong with it. */
export function parseCamt053(xml: string): ParsedStatement {
  // Bank statements have no DTD; refusing one rules out entity-expansion tricks before any parsing.
  if (/<!DOCTYPE/i.test(xml)) throw new CamtError('a DOCTYPE is not allowed in a bank statement');
  const valid = XMLValidator.validate(xml);
  if (valid !== true) throw new CamtError(`not well-formed XML: ${valid.err.msg} (line ${valid.err.line})`);
  const doc = parser.parse(xml) as Node;
  const root = doc.Document?.BkToCstmrStmt;
  if (!root) throw new CamtError('not a CAMT.053 document: Document/BkToCstmrStmt is missing');
  const messageId = text(root.GrpHdr?.MsgId);
  if (!messageId) throw new CamtError('GrpHdr/MsgId is missing');
  const statements = (root.Stmt ?? []).map((stmt: Node, s: number) => {
    const accountIban = text(stmt.Acct?.Id?.IBAN) ?? text(stmt.Acct?.Id?.Othr?.Id);
    if (!accountIban) throw new CamtError(`Stmt[${s + 1}]/Acct/Id/IBAN is missing`);
    const entries: StatementEntry[] = [];
    for (const [n, ntry] of (stmt.Ntry ?? [] as Node[]).entries()) {
      // Only booked entries are final; pending ones come again as booked in a later statement.
      const status = text(ntry.Sts?.Cd) ?? text(ntry.Sts);
      if (status && status !== 'BOOK') continue;
      const cd = text(ntry.CdtDbtInd);
      if (cd !== 'CRDT' && cd !== 'DBIT') throw new CamtError(`Ntry[${n + 1}]/CdtDbtInd must be CRDT or DBIT`);
      const entryAmount = amountOf(ntry);
      if (!entryAmount) throw new CamtError(`Ntry[${n + 1}]/Amt is missing`);
      const base = text(ntry.AcctSvcrRef) ?? text(ntry.NtryRef) ?? `sha256:${createHash('sha256').update(JSON.stringify(ntry)).digest('hex').slice(0, 32)}`;
      const txs: Node[] = (ntry.NtryDtls ?? []).flatMap((d: Node) => d.TxDtls ?? []);
      const common = {
        creditDebit: cd === 'CRDT' ? 'credit' as const : 'debit' as const,
        reversal: text(ntry.RvslInd) === 'true',
        bookingDate: dateOf(ntry.BookgDt),
        valueDate: dateOf(ntry.ValDt),
      };
      if (txs.length <= 1) {
        const tx = txs[0];
        entries.push({
          ...common, reference: base, amountCents: entryAmount.cents, currency: entryAmount.currency,
          remittance: remittanceOf(tx) ?? text(ntry.AddtlNtryInf),
          debtorName: text(tx?.RltdPties?.Dbtr?.Nm) ?? text(tx?.RltdPties?.Dbtr?.Pty?.Nm),
          debtorIban: text(tx?.RltdPties?.DbtrAcct?.Id?.IBAN),
        });
        continue;
      }
      // A batch booking: one line per transaction, each with its own amount.
      txs.forEach((tx, i) => {
        const amount = amountOf(tx.AmtDtls?.TxAmt) ?? amountOf(tx);
        if (!amount) throw new CamtError(`Ntry[${n + 1}] is a batch whose TxDtls[${i + 1}] has no AmtDtls/TxAmt/Amt`);
        entries.push({
          ...common, reference: text(tx.Refs?.AcctSvcrRef) ?? `${base}/${i + 1}`, amountCents: amount.cents, currency: amount.currency,
          remittance: remittanceOf(tx),
          debtorName: text(tx.RltdPties?.Dbtr?.Nm) ?? text(tx.RltdPties?.Dbtr?.Pty?.Nm),
          debtorIban: text(tx.RltdPties?.DbtrAcct?.Id?.IBAN),
        });
      });
    }
    return { id: text(stmt.Id) ?? `${messageId}/${s + 1}`, accountIban: accountIban.replace(/\s+/g, '').toUpperCase(), entries };
  });
  if (statements.length === 0) throw new CamtError('the document has no Stmt');
  return { messageId, createdAt: text(root.GrpHdr?.CreDtTm), statements };
}
