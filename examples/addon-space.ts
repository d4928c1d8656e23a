/**
 * Extra space: buy inbox and archive gigabytes for a mailbox, see its quotas grow and the pro-rata charge in the
 * ledger; a purchase above the plan's maximum is refused; cancelling now refunds the unused part and the quota shrinks.
 *   PEC_PARTNER_API_KEY=sk_live_… PEC_PARTNER_BASE_URL=http://127.0.0.1:3000 npx tsx examples/addon-space.ts
 */
import { InvalidRequestError } from '@pec-partner/sdk';
import { check, checkProRata, clientFromEnv, ensureCredit, identifiedCustomer, latestLedgerEntries, openMailbox, same, unitAmount } from './support.ts';

const GB = 1024 ** 3;
const client = clientFromEnv();
await ensureCredit(client, 5_000);
const customer = await identifiedCustomer(client);
const mailbox = await openMailbox(client, customer, 'spazio', 'standard');
const quota = (await client.get('/v1/mailboxes/{id}', { path: { id: mailbox.id } })).quotas;
console.log(`mailbox ${mailbox.address}: inbox ${quota.inbox.total_bytes / GB} GB, archive ${quota.archive.total_bytes / GB} GB`);

// Two more GB of inbox, charged for what is left of the mailbox's term.
const inboxPrice = await unitAmount(client, 'addon_extra_inbox_gb');
const balanceBefore = (await client.credit.retrieve()).balance;
const before = new Date();
const inbox = await client.post('/v1/mailboxes/{id}/addons', { path: { id: mailbox.id }, body: { kind: 'extra_inbox_gb', quantity: 2 } });
const after = new Date();
same([inbox.status, inbox.quantity, inbox.renews, inbox.current_period_end], ['active', 2, true, mailbox.expires_at], 'the inbox add-on');

const grown = (await client.get('/v1/mailboxes/{id}', { path: { id: mailbox.id } })).quotas.inbox;
same([grown.extra_bytes, grown.total_bytes], [2 * GB, quota.inbox.base_bytes + 2 * GB], 'inbox quota after buying 2 GB');
console.log(`bought 2 GB (${inbox.id}): inbox now ${grown.total_bytes / GB} GB`);

const [charge] = await latestLedgerEntries(client, 1);
check(charge, 'a ledger entry');
same([charge.type, charge.item?.type, charge.item?.id], ['charge', 'mailbox_addon', inbox.id], 'the charge names the add-on');
same(charge.balance_after, balanceBefore + charge.amount, 'balance after the charge');
checkProRata(-charge.amount, inboxPrice, 2, mailbox.expires_at!, before, after, 'inbox charge');
console.log(`charged ${-charge.amount} cents: ${charge.description}`);

// A Standard mailbox takes at most 10 GB of inbox: the API refuses more and charges nothing.
try {
  await client.post('/v1/mailboxes/{id}/addons', { path: { id: mailbox.id }, body: { kind: 'extra_inbox_gb', quantity: 20 } });
  check(false, 'buying 22 GB of inbox on a Standard mailbox was accepted');
} catch (error) {
  if (!(error instanceof InvalidRequestError)) throw error;
  same([error.errors[0]?.pointer, error.errors[0]?.code], ['/quantity', 'out_of_range'], 'the refusal points at the quantity');
  console.log(`refused as expected: ${error.errors[0]?.detail}`);
}
same((await client.credit.retrieve()).balance, charge.balance_after, 'a refused purchase charges nothing');

// Archive space bought and cancelled at once: the unused part comes back and the quota shrinks back.
const archivePrice = await unitAmount(client, 'addon_extra_archive_gb');
const archive = await client.post('/v1/mailboxes/{id}/addons', { path: { id: mailbox.id }, body: { kind: 'extra_archive_gb', quantity: 5 } });
same((await client.get('/v1/mailboxes/{id}', { path: { id: mailbox.id } })).quotas.archive.total_bytes, quota.archive.base_bytes + 5 * GB, 'archive quota with 5 GB more');
const [archiveCharge] = await latestLedgerEntries(client, 1);
const cancelStart = new Date();
const cancelled = await client.post('/v1/mailboxes/{id}/addons/{addon}/cancel', { path: { id: mailbox.id, addon: archive.id }, body: { when: 'now' } });
const cancelEnd = new Date();
same([cancelled.status, cancelled.renews], ['cancelled', false], 'the cancelled archive add-on');
const [refund] = await latestLedgerEntries(client, 1);
check(refund && archiveCharge, 'ledger entries for the archive add-on');
same([refund.type, refund.item?.id, archiveCharge.item?.id], ['refund', archive.id, archive.id], 'charge and refund name the archive add-on');
checkProRata(refund.amount, archivePrice, 5, mailbox.expires_at!, cancelStart, cancelEnd, 'archive refund');
check(refund.amount <= -archiveCharge.amount, `the refund (${refund.amount}) is not more than the charge (${-archiveCharge.amount})`);
same((await client.get('/v1/mailboxes/{id}', { path: { id: mailbox.id } })).quotas.archive.total_bytes, quota.archive.base_bytes, 'archive quota after the cancellation');
console.log(`archive 5 GB: charged ${-archiveCharge.amount}, refunded ${refund.amount} cents on cancelling`);

const listed = [];
for await (const addon of client.list('/v1/mailboxes/{id}/addons', { path: { id: mailbox.id } })) listed.push(`${addon.kind}:${addon.status}`);
same(listed, ['extra_archive_gb:cancelled', 'extra_inbox_gb:active'], 'the add-ons of the mailbox, newest first');
console.log('extra space: ok');
