/**
 * The provider's side of money in: a partner asks for a top-up and gets bank transfer instructions; the operator
 * finds the pending top-up by the reference the transfer quoted, checks the amount, and confirms it, exactly once;
 * the audit trail records who did it and why. Needs PEC_PARTNER_API_KEY and PEC_OPERATOR_API_KEY (`npm start` with
 * APP_ENV=development prints both on the first start).
 */
import { randomUUID } from 'node:crypto';
import { PecPartnerError } from '@pec-partner/sdk';
import { check, clientFromEnv, operatorFromEnv, same } from './support.ts';

const partner = clientFromEnv();
const operator = operatorFromEnv();

// The partner: 150 euro of credit (net of VAT) by bank transfer of 183 euro (+ 22 % VAT, invoiced when credited).
const before = (await partner.credit.retrieve()).balance;
const pending = await partner.credit.topUp({ amount: 15_000, currency: 'EUR', payment_reference: `order-${randomUUID().slice(0, 8)}` });
check(pending.bank_transfer, 'payment instructions');
same(pending.bank_transfer.amount, 18_300, 'the gross to transfer: the credit plus 22 % VAT');
console.log(`partner: pay €${(pending.bank_transfer.amount / 100).toFixed(2)} to ${pending.bank_transfer.beneficiary}, IBAN ${pending.bank_transfer.iban} (BIC ${pending.bank_transfer.bic}), causale "${pending.bank_transfer.reference}"`);
same((await partner.credit.retrieve()).balance, before, 'the balance before the money arrives');

// The operator: the bank shows a transfer quoting the reference; find the top-up and confirm it.
const [found] = (await operator.topUps.page({ payment_reference: pending.payment_reference })).data;
check(found && found.id === pending.id && found.status === 'pending', `the pending top-up for ${pending.payment_reference}`);
same(found.bank_transfer?.amount, 18_300, 'the amount to check against the transfer');
const reason = `Transfer of €183.00 quoting ${pending.payment_reference} on the account statement`;
const confirmed = await operator.topUps.confirm(found.id, reason);
same(confirmed.status, 'credited', 'the top-up');
const again = await operator.topUps.confirm(found.id, 'pressed twice');
same(again.ledger_entry, confirmed.ledger_entry, 'a second confirmation credits nothing more');
same((await partner.credit.retrieve()).balance, before + 15_000, 'the balance after');
console.log(`operator: confirmed ${found.id}, ledger entry ${confirmed.ledger_entry}`);

// The partner sees the credit and its event; partner keys cannot do the operator's part.
const events = (await partner.events.page({ object_id: pending.id })).data.map((e) => e.type);
same(events, ['credit.top_up.credited', 'credit.top_up.created'], "the top-up's events, newest first");
const refused = await partner.post('/v1/operator/top-ups/{id}/confirm', { path: { id: pending.id }, body: { reason: 'self-service' } }).then(() => undefined, (e: unknown) => e);
check(refused instanceof PecPartnerError && refused.status === 403 && refused.code === 'operator_credentials_required', 'a partner key on the operator API is refused');

// The audit trail says who confirmed it and why.
const [audit] = (await operator.auditLog.page({ target_id: found.id, action: 'top_up.confirmed' })).data;
check(audit, 'an audit entry for the confirmation');
same([audit.reason, audit.partner, audit.details.ledger_entry], [reason, pending.partner, confirmed.ledger_entry], 'the audit entry');
console.log(`audit: ${audit.action} by ${audit.operator_key} at ${audit.created_at}: ${audit.reason}`);
