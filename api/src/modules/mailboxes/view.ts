import type { mailboxes } from '@pec-partner/db';

type Row = typeof mailboxes.$inferSelect;

/**
 * The mailbox as the API shows it. Kept apart from the service so that the add-on service, which changes the
 * mailbox's quotas and reports it, can build the view without importing the service that imports it.
 */
export function mailboxView(row: Row) {
  const quota = (base: number, extra: number, used: number) => ({ base_bytes: base, extra_bytes: extra, total_bytes: base + extra, used_bytes: used });
  return {
    id: row.id,
    object: 'mailbox' as const,
    address: row.address,
    local_part: row.localPart,
    domain: row.domainName,
    domain_id: row.domainId ?? `pdm_${row.domainName}`,
    customer: row.customerId,
    plan: row.plan,
    plan_at_renewal: row.planAtRenewal,
    term_years: row.termYears,
    renewal_mode: row.renewalMode,
    status: row.status,
    suspension_reason: row.suspensionReason,
    quotas: {
      inbox: quota(row.inboxQuotaBytes, row.extraInboxBytes, row.usedInboxBytes),
      archive: quota(row.archiveQuotaBytes, row.extraArchiveBytes, row.usedArchiveBytes),
    },
    included_delegates: row.includedDelegates,
    requested_at: row.requestedAt.toISOString(),
    activated_at: row.activatedAt?.toISOString() ?? null,
    expires_at: row.expiresAt?.toISOString() ?? null,
    suspended_at: row.suspendedAt?.toISOString() ?? null,
    expired_at: row.expiredAt?.toISOString() ?? null,
    cancel_at: row.cancelAt?.toISOString() ?? null,
    cancelled_at: row.cancelledAt?.toISOString() ?? null,
    password_changed_at: row.passwordChangedAt.toISOString(),
    created_at: row.requestedAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  };
}
export type MailboxView = ReturnType<typeof mailboxView>;
