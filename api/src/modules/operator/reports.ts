import { sql } from 'drizzle-orm';
import { mailboxPlans, type DbOrTx, type MailboxPlan } from '@pec-partner/db';
import { invalid } from '../../http/problem.ts';

/**
 * Business reports for the operator. Every figure is computed by PostgreSQL (GROUP BY over the ledger, the invoices
 * and the mailboxes); JavaScript only shapes the aggregated rows (one per partner, per month and partner, or per
 * partner and plan) and adds them up into the totals.
 */

const int = (value: unknown): number => Number(value ?? 0);

export interface CreditBalanceRow {
  partner: string;
  partner_name: string;
  status: string;
  balance: number;
  currency: string;
}

/** Reports are about the business: live partners only (their sandboxes' free credit is no revenue). */
export async function creditBalancesReport(db: DbOrTx, at: Date) {
  const rows = await db.execute<{ id: string; name: string; status: string; balance_cents: string; currency: string }>(sql`
    select p.id, p.name, p.status, a.balance_cents, a.currency
    from partners p join credit_accounts a on a.partner_id = p.id
    where p.livemode
    order by p.id`);
  const data: CreditBalanceRow[] = rows.map((r) => ({ partner: r.id, partner_name: r.name, status: r.status, balance: int(r.balance_cents), currency: r.currency }));
  return {
    object: 'credit_balances_report' as const,
    generated_at: at.toISOString(),
    currency: 'EUR' as const,
    total_balance: data.reduce((sum, r) => sum + r.balance, 0),
    data,
  };
}

export const CREDIT_BALANCE_COLUMNS = ['partner', 'partner_name', 'status', 'balance', 'currency'] as const;

const amounts = ['charged', 'refunded', 'net_spent', 'topped_up', 'invoiced_net', 'invoiced_vat', 'invoiced_gross'] as const;
type Amounts = Record<(typeof amounts)[number], number>;
export type RevenueRow = { month: string; partner: string; partner_name: string } & Amounts;
export const REVENUE_COLUMNS = ['month', 'partner', 'partner_name', ...amounts] as const;

const MONTH = /^(\d{4})-(0[1-9]|1[0-2])$/;
export const MAX_REPORT_MONTHS = 120;

/** Every month from `from` to `to`, both included (`YYYY-MM`). */
function monthsBetween(from: string, to: string): string[] {
  const [fy, fm] = from.split('-').map(Number) as [number, number];
  const [ty, tm] = to.split('-').map(Number) as [number, number];
  const months: string[] = [];
  for (let y = fy, m = fm; y < ty || (y === ty && m <= tm); m === 12 ? ((y += 1), (m = 1)) : (m += 1)) {
    months.push(`${y}-${String(m).padStart(2, '0')}`);
  }
  return months;
}

/**
 * Per calendar month (Europe/Rome, as the invoices' dates) and per partner, from `from` to `to` included:
 * `charged` the credit spent on services (`charge` ledger entries), `refunded` the credit given back for services
 * (`refund` entries), `net_spent` their difference, `topped_up` the credit bought (`top_up` entries, net of VAT),
 * and the invoices issued in the month: `invoiced_net`, `invoiced_vat`, `invoiced_gross`. Operator adjustments and
 * top-up refunds (money paid back) are not revenue and are left out. Rows only where something happened; `months`
 * has every month of the range with the totals of all partners.
 */
export async function revenueReport(db: DbOrTx, from: string, to: string) {
  if (!MONTH.test(from)) throw invalid([{ pointer: '/from', location: 'query', code: 'invalid_format', detail: 'must be a month, YYYY-MM' }]);
  if (!MONTH.test(to)) throw invalid([{ pointer: '/to', location: 'query', code: 'invalid_format', detail: 'must be a month, YYYY-MM' }]);
  if (to < from) throw invalid([{ pointer: '/to', location: 'query', code: 'out_of_range', detail: 'must not be before from' }]);
  const months = monthsBetween(from, to);
  if (months.length > MAX_REPORT_MONTHS) throw invalid([{ pointer: '/to', location: 'query', code: 'out_of_range', detail: `at most ${MAX_REPORT_MONTHS} months` }]);
  const startDate = `${from}-01`;
  const rows = await db.execute<Record<string, string>>(sql`
    with bounds as (
      select ${startDate}::date as start_date, (${`${to}-01`}::date + interval '1 month')::date as end_date
    ), movements as (
      select to_char(e.created_at at time zone 'Europe/Rome', 'YYYY-MM') as month, e.partner_id,
        sum(case when e.kind = 'charge' then -e.amount_cents else 0 end)::bigint as charged,
        sum(case when e.kind = 'refund' then e.amount_cents else 0 end)::bigint as refunded,
        sum(case when e.kind = 'top_up' then e.amount_cents else 0 end)::bigint as topped_up,
        0::bigint as invoiced_net, 0::bigint as invoiced_vat, 0::bigint as invoiced_gross
      from credit_ledger_entries e, bounds b
      where e.kind in ('charge', 'refund', 'top_up')
        and e.created_at >= (b.start_date::timestamp at time zone 'Europe/Rome')
        and e.created_at < (b.end_date::timestamp at time zone 'Europe/Rome')
      group by 1, 2
      union all
      select to_char(i.issue_date, 'YYYY-MM'), i.partner_id, 0, 0, 0,
        sum(i.net_cents)::bigint, sum(i.vat_cents)::bigint, sum(i.total_cents)::bigint
      from invoices i, bounds b
      where i.issue_date >= b.start_date and i.issue_date < b.end_date
      group by 1, 2
    )
    select m.month, m.partner_id, p.name,
      sum(m.charged)::bigint as charged, sum(m.refunded)::bigint as refunded, sum(m.topped_up)::bigint as topped_up,
      sum(m.invoiced_net)::bigint as invoiced_net, sum(m.invoiced_vat)::bigint as invoiced_vat, sum(m.invoiced_gross)::bigint as invoiced_gross
    from movements m join partners p on p.id = m.partner_id
    where p.livemode
    group by m.month, m.partner_id, p.name
    order by m.month, m.partner_id`);
  const data: RevenueRow[] = rows.map((r) => ({
    month: r.month!, partner: r.partner_id!, partner_name: r.name!,
    charged: int(r.charged), refunded: int(r.refunded), net_spent: int(r.charged) - int(r.refunded), topped_up: int(r.topped_up),
    invoiced_net: int(r.invoiced_net), invoiced_vat: int(r.invoiced_vat), invoiced_gross: int(r.invoiced_gross),
  }));
  const totals = months.map((month) => {
    const total = Object.fromEntries(amounts.map((a) => [a, 0])) as Amounts;
    for (const row of data) if (row.month === month) for (const a of amounts) total[a] += row[a];
    return { month, ...total };
  });
  return { object: 'revenue_report' as const, from, to, currency: 'EUR' as const, months: totals, data };
}

export type ActiveMailboxesRow = { partner: string; partner_name: string; plan: MailboxPlan; active_mailboxes: number };
export const ACTIVE_MAILBOX_COLUMNS = ['partner', 'partner_name', 'plan', 'active_mailboxes'] as const;

/** Mailboxes in status `active` now, per plan and per partner and plan (plans in the order standard, pro, premium). */
export async function activeMailboxesReport(db: DbOrTx, at: Date) {
  const order = sql.raw(`array[${mailboxPlans.map((p) => `'${p}'`).join(',')}]`);
  const rows = await db.execute<{ partner_id: string; name: string; plan: MailboxPlan; active: string }>(sql`
    select m.partner_id, p.name, m.plan, count(*)::bigint as active
    from mailboxes m join partners p on p.id = m.partner_id
    where m.status = 'active' and p.livemode
    group by m.partner_id, p.name, m.plan
    order by m.partner_id, array_position(${order}, m.plan::text)`);
  const data: ActiveMailboxesRow[] = rows.map((r) => ({ partner: r.partner_id, partner_name: r.name, plan: r.plan, active_mailboxes: int(r.active) }));
  const plans = mailboxPlans.map((plan) => ({ plan, active_mailboxes: data.filter((r) => r.plan === plan).reduce((sum, r) => sum + r.active_mailboxes, 0) }));
  return { object: 'active_mailboxes_report' as const, generated_at: at.toISOString(), plans, data };
}
