import { lt } from 'drizzle-orm';
import { idempotencyKeys } from '@pec-partner/db';
import { purgeSignIns } from '../access/login-guard.ts';
import type { AppDeps } from '../deps.ts';
import { runDomainMaintenance } from '../modules/domains/service.ts';
import { expireDelegationInvitations } from '../modules/delegations/service.ts';
import { purgeExpiredEvents } from '../modules/events/service.ts';
import { runMailboxMaintenance } from '../modules/mailboxes/service.ts';
import { NEWSLETTER_TASK_INTERVAL_MS, runNewsletterTask } from '../modules/newsletter/sender.ts';
import { purgeLogRegister } from '../pec/log-register.ts';
import { purgeProcessedInbound } from '../pec/receiving.ts';
import { DAY_MS, type Task } from './scheduler.ts';
import { expireTopUps } from '../modules/credit/top-ups.ts';

/** Every periodic task of the product, with how often it runs. */
export function productTasks(deps: AppDeps): Task[] {
  return [
    { name: 'domains.daily', intervalMs: DAY_MS, run: (now) => runDomainMaintenance(deps, now) },
    { name: 'mailboxes.daily', intervalMs: DAY_MS, run: (now) => runMailboxMaintenance(deps, now) },
    // Starts due campaigns and hands the relay at most NEWSLETTER_RATE_PER_MINUTE messages per run.
    { name: 'newsletter.send', intervalMs: NEWSLETTER_TASK_INTERVAL_MS, run: async (now) => void (await runNewsletterTask(deps, now)) },
    // Invitations not accepted within 7 days become `expired` (and say so with an event) even if nobody looks.
    { name: 'delegations.expire', intervalMs: 15 * 60_000, run: async (now) => void (await expireDelegationInvitations(deps, now)) },
    // The log register keeps 30 months (DPR 68/2005), then lets go.
    { name: 'log_register.purge', intervalMs: DAY_MS, run: async (now) => void (await purgeLogRegister(deps.db, now)) },
    // Inbound messages as received: kept until processed, then 7 days for diagnosis (INBOUND_RETENTION_MS).
    { name: 'pec_inbound.purge', intervalMs: DAY_MS, run: async (now) => void (await purgeProcessedInbound(deps.db, now)) },
    // Sign-in records (the lock-out's count, the holders' histories) are kept 180 days (SIGN_IN_RETENTION_MS).
    { name: 'mailbox_sign_ins.purge', intervalMs: DAY_MS, run: async (now) => void (await purgeSignIns(deps.db, now)) },
    // Events are visible for 30 days; their webhook deliveries and attempts go with them.
    // Pending top-ups whose money did not arrive within 30 days become `expired` (credit.top_up.expired).
    { name: 'top_ups.expire', intervalMs: DAY_MS, run: async (now) => void (await expireTopUps(deps.db, deps.clock, deps.config.bankAccount, now)) },
    { name: 'events.purge', intervalMs: DAY_MS, run: async (now) => void (await purgeExpiredEvents(deps.db, now)) },
    {
      name: 'idempotency.purge',
      intervalMs: 3_600_000,
      run: async (now) => {
        await deps.db.delete(idempotencyKeys).where(lt(idempotencyKeys.expiresAt, now));
      },
    },
  ];
}
