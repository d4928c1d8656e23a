/**
 * Every event type the platform emits, with what it means. The single source for the OpenAPI enum, the docs
 * and the validation of an endpoint's `enabled_events`. Names are `<resource>.<what happened>`, past tense.
 */
export const API_VERSION = '2026-11-30';

export const eventTypes = {
  'customer.created': 'A customer record was created.',
  'customer.updated': 'A customer record changed; `previous_attributes` holds the old values of what changed.',
  'customer.deleted': 'A customer record was deleted (`data.object` is the customer as it was last).',
  'identity_document.created': "An identity document was filed for a customer (it activates the customer's pending mailboxes).",

  'domain.created': 'A domain was requested; it waits for its DNS records.',
  'domain.certified': 'A domain passed DNS verification and was certified (the fee was charged).',
  'domain.degraded': 'The daily DNS check of a certified domain failed.',
  'domain.recertified': 'A degraded domain passed the DNS check again.',
  'domain.decertified': 'A domain stayed degraded too long; its active mailboxes were suspended.',
  'domain.updated': 'A domain changed otherwise (customer, scheduled or undone cancellation).',
  'domain.withdrawn': 'A pending domain was withdrawn.',
  'domain.cancelled': 'A domain reached its cancellation date.',

  'mailbox.created': 'A mailbox was created (active, or waiting for the identity document).',
  'mailbox.activated': "A mailbox waiting for its holder's identity document became active.",
  'mailbox.suspended': 'A mailbox was suspended (`suspension_reason` says why).',
  'mailbox.resumed': 'A suspended mailbox became active again.',
  'mailbox.renewed': 'A mailbox was renewed for another term (charged).',
  'mailbox.plan_changed': 'A mailbox changed plan (now, or at the renewal when scheduled).',
  'mailbox.updated':
    'A mailbox changed otherwise (renewal mode, scheduled or undone cancellation, plan change scheduled for the renewal, password reset, `quotas` after a space add-on is bought or cancelled now).',
  'mailbox.expiring':
    'A mailbox expires within 30, 7 or 1 days: one event per notice listed at GET /v1/mailboxes/{id}/notices; `data.object.expires_at` says when.',
  'mailbox.expired': 'An unrenewed mailbox expired after its grace period.',
  'mailbox.cancelled': 'A mailbox was cancelled.',

  'mailbox_addon.created': 'An add-on was bought (active now, or scheduled for the renewal).',
  'mailbox_addon.activated': 'A scheduled add-on started with the new term (charged for it with the renewal).',
  'mailbox_addon.renewed': 'An add-on was charged for the new term with its mailbox.',
  'mailbox_addon.updated': 'An add-on changed otherwise (cancellation scheduled or undone).',
  'mailbox_addon.cancelled': 'An add-on ended (cancelled now, at the renewal, or with its mailbox).',

  'delegation.created': 'A collaborator was invited to a mailbox.',
  'delegation.accepted': 'A collaborator accepted the invitation.',
  'delegation.updated': "A delegation's mode or name changed.",
  'delegation.revoked': 'A delegation was revoked (by request, or because its mailbox ended).',
  'delegation.expired': 'An invitation was not accepted within 7 days.',

  'credit.topped_up': 'Credit was added (`data.object` is the ledger entry).',
  'credit.charged': 'Credit was spent (`data.object` is the ledger entry; `item` names what was bought).',
  'credit.refunded': 'Credit was given back (`data.object` is the ledger entry).',
  'credit.adjusted':
    "The provider's operator corrected the credit with a reason (`data.object` is the `adjustment_credit` or `adjustment_debit` ledger entry).",
  'credit.paid_out': 'Part or all of a credited top-up was paid back to you by the provider (`data.object` is the `top_up_refund` ledger entry).',
  'credit.top_up.created': 'A top-up was requested: it is `pending` until the bank transfer quoting its `payment_reference` arrives, or its card checkout is paid.',
  'credit.top_up.credited': 'The money of a top-up arrived and was credited (`ledger_entry` names the `top_up` entry).',
  'credit.top_up.failed': 'A top-up will not be credited (`failure_reason` says why).',
  'credit.top_up.expired': 'No payment arrived for a pending top-up in time (30 days for a bank transfer; a card checkout closes after 24 h).',
  'credit.top_up.refunded': 'Part or all of a credited top-up was paid back (`refunded_amount`).',
  'credit.balance_low':
    "A movement took the balance from at or above the partner's threshold to below it (`data.object` is the balance, as GET /v1/credit shows it).",

  'partner.suspended':
    "The provider suspended your account (`suspension_reason`): API keys and tokens are refused until it is reactivated; mailboxes keep working.",
  'partner.reactivated': 'The provider reactivated your suspended account.',
  'partner.price_list_assigned':
    'The provider assigned you another price list (`price_list`): your next charges use its version in force at each charge; GET /v1/prices shows it.',
  'account.updated': "The partner's fiscal data changed (`data.object` is the account, as GET /v1/account shows it).",
  'invoice.created':
    'An invoice was issued for credited money, in the same transaction as the credit (`data.object` is the invoice; its FatturaPA file is at GET /v1/invoices/{id}/xml).',

  'newsletter_campaign.created': 'A newsletter campaign was drafted.',
  'newsletter_campaign.updated': 'A campaign changed (content, list, schedule).',
  'newsletter_campaign.sending': 'A campaign started sending.',
  'newsletter_campaign.sent': 'A campaign finished: every recipient has an outcome.',
  'newsletter_campaign.cancelled': 'A campaign was cancelled.',

  'message.accepted': 'Opt-in. A certified message was accepted (`data.object` is a `pec_message`: metadata only, never subject or content).',
  'message.not_accepted': 'Opt-in. A certified message was refused at submission (formal error or virus).',
  'message.delivered': 'Opt-in. A delivery receipt was issued or received for one recipient.',
  'message.not_delivered': 'Opt-in. A non-delivery notice (also for a virus, or the 24-hour timeout notice) was issued or received for one recipient.',

  'test_clock.created': 'A test clock was created: its test world now lives at its `frozen_time` (test mode only).',
  'test_clock.advancing': 'A test clock started moving to `advancing_to`; what falls due on the way happens in order.',
  'test_clock.ready': 'A test clock reached its new `frozen_time`: everything due until then has happened.',
  'test_clock.deleted': 'A test clock was deleted: its test world is back on real time.',

  'webhook_endpoint.disabled': 'An endpoint was disabled after failing for 3 days or answering 410 Gone.',
  'test.webhook': 'Sent only by "send test event" to one endpoint.',
} as const;

export type EventType = keyof typeof eventTypes;
export const eventTypeNames = Object.keys(eventTypes) as EventType[];

/** Types that `*` does not cover: the partner lists them (or `message.*`) to receive them. */
export function isOptIn(type: string): boolean {
  return type.startsWith('message.') || type === 'test.webhook';
}

/** Whether an endpoint's `enabled_events` (exact types, `prefix.*`, `*`) selects `type`. */
export function selects(enabledEvents: readonly string[], type: string): boolean {
  return enabledEvents.some((pattern) => {
    if (pattern === type) return true;
    if (pattern === '*') return !isOptIn(type);
    return pattern.endsWith('.*') && type.startsWith(pattern.slice(0, -1));
  });
}

/** A known type, or `<prefix>.*` where some known type has that prefix: what `GET /v1/events?type=` accepts. */
export function isTypeOrPrefix(pattern: string): boolean {
  if (pattern in eventTypes) return true;
  return pattern.endsWith('.*') && eventTypeNames.some((type) => type.startsWith(pattern.slice(0, -1)));
}

/** Valid `enabled_events` entries: `*` or a type or prefix, but never `test.webhook`, which goes to one endpoint only. */
export function isValidPattern(pattern: string): boolean {
  return pattern === '*' || (pattern !== 'test.webhook' && isTypeOrPrefix(pattern));
}
