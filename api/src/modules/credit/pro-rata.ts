/**
 * Pro-rata arithmetic for everything a mailbox and its add-ons pay for: what the rest of a term costs at a yearly
 * price, and what was actually paid for the part not yet used, which bounds every refund.
 *
 * A mailbox's time is a series of paid periods: the first term (from activation, `term_years` long) and one per
 * renewal (from the old expiry, or from the renewal when it came late, for the years renewed). Prices are per year
 * and flat, so each period is priced by its years and divided by its own length: a day of a 366-day year is worth
 * 1/366 of that year's price, never more. Ledger entries are replayed onto these periods:
 * - the mailbox's first charge pays for its first term, a renewal charge (mailbox or add-on) for the period that
 *   renewal added;
 * - any other charge or refund (an add-on bought now, a plan change, an add-on cancelled now) is for the rest of the
 *   term from its time, spread over the remaining periods by the years of each it covers (as it was priced).
 * What an item paid for the time after `at` is then the sum of each piece's amount times the share of the piece
 * after `at`, and a refund never exceeds it, nor what the item was charged and not yet refunded.
 *
 * The ledger has no column for the period an entry paid for, so the replay tells a renewal charge, and its years,
 * by the description this module writes for it (`renewalDescription`, read back by `renewalYears`), and checks that
 * the periods it rebuilds end exactly where the mailbox's term ends. When they do not (entries older than this
 * rule), it falls back to spreading the item's net payment evenly over its whole time, which still never refunds
 * more than was paid.
 */

/** One paid period of a mailbox term. */
export interface TermPeriod {
  from: number;
  to: number;
  years: number;
}

/** Part of a payment (negative: of a refund), spread evenly over [from, to). */
interface Piece {
  from: number;
  to: number;
  amount: number;
}

/** A ledger entry of the mailbox or one of its add-ons, as stored (charges negative, refunds positive). */
export interface ItemLedgerEntry {
  kind: string;
  amountCents: number;
  description: string;
  itemType: string | null;
  itemId: string | null;
  createdAt: Date;
}

export interface MailboxTerm {
  id: string;
  activatedAt: Date | null;
  expiresAt: Date | null;
  termYears: number;
}

export const YEAR_365_MS = 365 * 86_400_000;

export function addYears(date: Date, years: number): Date {
  const next = new Date(date);
  next.setUTCFullYear(next.getUTCFullYear() + years);
  return next;
}

const yearsWord = (years: number) => `${years} year${years === 1 ? '' : 's'}`;

/** The description of a renewal charge; `renewalYears` reads the years back, so both live here. */
export function renewalDescription(what: string, years: number, address: string): string {
  return `Renewal: ${what}, ${yearsWord(years)}: ${address}`;
}

const RENEWAL = /^Renewal: [^,]*, ([1-9][0-9]?) years?: /;

/** The years a renewal charge paid for, or null when the description is not a renewal's. */
export function renewalYears(description: string): number | null {
  const match = RENEWAL.exec(description);
  return match ? Number(match[1]) : null;
}

/** The share of [from, to) that lies after `at`, between 0 and 1. */
const shareAfter = (span: { from: number; to: number }, at: number): number =>
  span.to <= span.from ? 0 : Math.max(0, span.to - Math.max(span.from, at)) / (span.to - span.from);

const mailboxKey = (id: string) => `mailbox:${id}`;
export const itemKey = (item: { type: string; id: string }) => `${item.type}:${item.id}`;

/**
 * The paid history of one mailbox and its add-ons, rebuilt from their ledger entries (oldest first).
 */
export class PaidHistory {
  readonly periods: TermPeriod[] = [];
  readonly #pieces = new Map<string, Piece[]>();
  /** Charged minus refunded, per item. */
  readonly #net = new Map<string, number>();
  /** When each item's first entry was written: where the even fallback starts. */
  readonly #firstAt = new Map<string, number>();
  /** Whether the rebuilt periods match the mailbox's term (otherwise the even fallback is used). */
  readonly consistent: boolean;
  readonly #mailbox: MailboxTerm;

  constructor(mailbox: MailboxTerm, entries: ItemLedgerEntry[]) {
    this.#mailbox = mailbox;
    let consistent = true;
    let mailboxCharged = false;
    for (const entry of entries) {
      if (!entry.itemType || !entry.itemId || (entry.kind !== 'charge' && entry.kind !== 'refund')) continue;
      const key = itemKey({ type: entry.itemType, id: entry.itemId });
      const isMailbox = key === mailboxKey(mailbox.id);
      const paid = -entry.amountCents;
      const at = entry.createdAt.getTime();
      this.#net.set(key, (this.#net.get(key) ?? 0) + paid);
      if (!this.#firstAt.has(key)) this.#firstAt.set(key, at);
      const pieces = this.#pieces.get(key) ?? this.#pieces.set(key, []).get(key)!;

      if (isMailbox && !mailboxCharged && entry.kind === 'charge') {
        mailboxCharged = true;
        // The first term starts at activation, which may come long after the charge (identity on file later).
        if (mailbox.activatedAt) {
          const from = mailbox.activatedAt.getTime();
          const period = { from, to: addYears(mailbox.activatedAt, mailbox.termYears).getTime(), years: mailbox.termYears };
          this.periods.push(period);
          pieces.push({ from: period.from, to: period.to, amount: paid });
        }
        continue;
      }
      const years = entry.kind === 'charge' ? renewalYears(entry.description) : null;
      if (years !== null) {
        if (isMailbox) {
          const last = this.periods.at(-1);
          if (!last) {
            consistent = false;
            continue;
          }
          // A late renewal starts when it is paid: the time the mailbox could not be used is not billed.
          const from = Math.max(last.to, at);
          this.periods.push({ from, to: addYears(new Date(from), years).getTime(), years });
        }
        // An add-on's renewal charge follows its mailbox's, in the same transaction: it pays for the same period.
        const period = this.periods.at(-1);
        if (!period || (!isMailbox && period.years !== years)) {
          consistent = false;
          continue;
        }
        pieces.push({ from: period.from, to: period.to, amount: paid });
        continue;
      }
      if (!this.#spread(pieces, paid, at)) consistent = false;
    }
    const end = this.periods.at(-1)?.to;
    this.consistent = consistent && (mailbox.expiresAt === null || end === mailbox.expiresAt.getTime());
  }

  /** Spreads a payment for the rest of the term from `at` over the remaining periods, by the years of each. */
  #spread(pieces: Piece[], amount: number, at: number): boolean {
    const weights = this.periods.map((period) => ({ period, weight: period.years * shareAfter(period, at) })).filter((x) => x.weight > 0);
    const total = weights.reduce((sum, x) => sum + x.weight, 0);
    if (total === 0) return false;
    for (const { period, weight } of weights) pieces.push({ from: Math.max(period.from, at), to: period.to, amount: (amount * weight) / total });
    return true;
  }

  /** What the item was charged and not yet refunded. */
  netPaid(item: { type: string; id: string }): number {
    return this.#net.get(itemKey(item)) ?? 0;
  }

  /**
   * Years of the term left after `at`, each period counted by its own length: what a yearly price is multiplied
   * by for "the rest of the term".
   */
  yearsLeft(at: Date): number {
    const t = at.getTime();
    if (this.consistent) return this.periods.reduce((sum, period) => sum + period.years * shareAfter(period, t), 0);
    const end = this.#mailbox.expiresAt?.getTime() ?? t;
    return Math.max(0, end - t) / YEAR_365_MS;
  }

  /** What the item paid for the time after `at` (cents, unrounded). */
  unusedPaid(item: { type: string; id: string }, at: Date): number {
    const key = itemKey(item);
    const t = at.getTime();
    if (this.consistent) return (this.#pieces.get(key) ?? []).reduce((sum, piece) => sum + piece.amount * shareAfter(piece, t), 0);
    const from = item.type === 'mailbox' ? (this.#mailbox.activatedAt?.getTime() ?? t) : (this.#firstAt.get(key) ?? t);
    const to = this.#mailbox.expiresAt?.getTime() ?? t;
    return this.netPaid(item) * shareAfter({ from, to }, t);
  }

  /** The refund due when the item stops at `at`: what it paid for the unused part, at most what it paid net. */
  refundableAt(item: { type: string; id: string }, at: Date): number {
    return boundRefund(Math.round(this.unusedPaid(item, at)), this.netPaid(item));
  }

  /** A yearly price for the rest of the term from `at`, in whole cents. */
  priceForRest(yearlyAmount: number, at: Date): number {
    return Math.round(yearlyAmount * this.yearsLeft(at));
  }
}

/** A refund is never negative and never more than was charged and not yet refunded. */
export function boundRefund(amount: number, netPaid: number): number {
  return Math.max(0, Math.min(amount, netPaid));
}
