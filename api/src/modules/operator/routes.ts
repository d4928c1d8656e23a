import { Type, type TSchema } from 'typebox';
import { bankStatementLineStatuses, operatorScopes, partnerStatuses, topUpStatuses } from '@pec-partner/db';
import type { App, AppDeps } from '../../deps.ts';
import { auditActorOf, operatorOf } from '../../http/auth.ts';
import { ListOf, ListQuery, toPage } from '../../http/pagination.ts';
import { problemResponses, ProblemError } from '../../http/problem.ts';
import { LedgerEntry, TopUp } from '../credit/routes.ts';
import { confirmTopUp, failTopUp, getTopUp, listTopUps, refundTopUp } from '../credit/top-ups.ts';
import { listAudit } from './audit.ts';
import { importBankStatement, listStatementLines } from './bank-statements.ts';
import { createOperatorKey, listOperatorKeys, revokeOperatorKey } from './keys.ts';
import { adjustCredit, createPartnerAsOperator, getPartner, listPartners, setPartnerSuspended } from './partners.ts';

const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);
const Id = (what: string) => Type.Object({ id: Type.String({ description: what }) }, { additionalProperties: false });
const Reason = Type.String({ minLength: 3, maxLength: 500, description: 'Why: kept in the audit trail (required).' });
const tags = ['Operator'];
/** Operator routes: operator keys only, with the least scope each needs; documented with their own security scheme. */
const operator = (scope: 'read_only' | 'billing' | 'full') => ({ callers: 'operator' as const, operatorScope: scope });
const security = [{ operatorKey: [] }];
const scopeNote = (scope: string) => `Operator scope: \`${scope}\` or wider.`;

const OperatorApiKey = Type.Object(
  {
    id: Type.String({ description: 'Prefixed `opk_`.' }),
    object: Type.Literal('operator_api_key'),
    name: Type.String(),
    scope: Type.Enum(operatorScopes, { description: '`read_only` reads; `billing` also moves money; `full` also manages partners and operator keys.' }),
    prefix: Type.String({ description: 'The first characters of the secret.' }),
    created_by: Nullable(Type.String({ description: 'The operator key that created it; null: the CLI.' })),
    created_at: Type.String({ format: 'date-time' }),
    last_used_at: Nullable(Type.String({ format: 'date-time' })),
    revoked_at: Nullable(Type.String({ format: 'date-time' })),
  },
  { title: 'OperatorApiKey' },
);

const OperatorApiKeyWithSecret = Type.Object(
  { ...OperatorApiKey.properties, secret: Type.String({ description: 'The secret (`sk_op_…`). Shown only in this response.' }) },
  { title: 'OperatorApiKeyWithSecret' },
);

const Partner = Type.Object(
  {
    id: Type.String({ description: 'Prefixed `ptn_`.' }),
    object: Type.Literal('partner'),
    name: Type.String(),
    status: Type.Enum(partnerStatuses),
    suspended_at: Nullable(Type.String({ format: 'date-time' })),
    suspension_reason: Nullable(Type.String()),
    balance: Type.Integer({ description: 'Euro cents of prepaid credit.' }),
    currency: Type.Literal('EUR'),
    created_at: Type.String({ format: 'date-time' }),
  },
  { title: 'Partner' },
);

const PartnerCreated = Type.Object(
  {
    partner: Partner,
    api_key: Type.Object(
      {
        id: Type.String({ description: 'Prefixed `key_`.' }),
        prefix: Type.String(),
        secret: Type.String({ description: "The partner's first secret key (`sk_live_…`). Shown only in this response: hand it over now." }),
      },
      { title: 'PartnerFirstKey' },
    ),
    test_api_key: Type.Object(
      {
        id: Type.String({ description: 'Prefixed `key_`.' }),
        prefix: Type.String(),
        secret: Type.String({ description: "The partner's first test key (`sk_test_…`), for its sandbox. Shown only in this response." }),
      },
      { title: 'PartnerFirstTestKey' },
    ),
  },
  { title: 'PartnerCreated' },
);

const AuditEntry = Type.Object(
  {
    id: Type.String({ description: 'Prefixed `aud_`.' }),
    object: Type.Literal('audit_entry'),
    actor: Type.Enum(['operator_key', 'cli', 'system'], { description: '`operator_key` (through the API), `cli`, or `system` (start-up tasks).' }),
    operator_key: Nullable(Type.String()),
    action: Type.String({ description: 'E.g. `partner.suspended`, `credit.adjusted`, `top_up.confirmed`, `bank_statement.imported`.' }),
    target: Type.Object({ type: Type.String(), id: Type.String() }, { title: 'AuditTarget' }),
    partner: Nullable(Type.String()),
    reason: Nullable(Type.String()),
    request_id: Nullable(Type.String()),
    details: Type.Record(Type.String(), Type.Unknown()),
    created_at: Type.String({ format: 'date-time' }),
  },
  { title: 'AuditEntry' },
);

const BankStatementLine = Type.Object(
  {
    id: Type.String({ description: 'Prefixed `bsl_`.' }),
    object: Type.Literal('bank_statement_line'),
    statement: Type.String({ description: 'The import that first brought this line (`bst_…`).' }),
    account_iban: Type.String(),
    entry_reference: Type.String({ description: "The bank's reference of the entry (AcctSvcrRef, else NtryRef): each is imported once." }),
    credit_debit: Type.Enum(['credit', 'debit']),
    amount: Type.Integer({ description: 'Cents.' }),
    currency: Type.String(),
    booking_date: Nullable(Type.String({ format: 'date' })),
    value_date: Nullable(Type.String({ format: 'date' })),
    remittance_information: Nullable(Type.String()),
    debtor_name: Nullable(Type.String()),
    debtor_iban: Nullable(Type.String()),
    status: Type.Enum(bankStatementLineStatuses, { description: '`matched` (its top-up was credited), `unmatched` (for the operator), `ignored` (debits, reversals).' }),
    mismatch_reason: Nullable(Type.String({
      description: '`no_reference`, `unknown_reference`, `several_references`, `amount_mismatch`, `currency_mismatch`, `top_up_credited`, `top_up_failed`, `top_up_expired`; for ignored lines `debit` or `reversal`.',
    })),
    top_up: Nullable(Type.String()),
    created_at: Type.String({ format: 'date-time' }),
  },
  { title: 'BankStatementLine' },
);

const BankStatementImport = Type.Object(
  {
    id: Type.String({ description: 'Prefixed `bst_`.' }),
    object: Type.Literal('bank_statement_import'),
    message_id: Type.String({ description: 'GrpHdr/MsgId of the document.' }),
    account_iban: Type.String(),
    entries: Type.Integer({ description: 'Booked entries (and batch transactions) in the document.' }),
    matched: Type.Integer(),
    unmatched: Type.Integer(),
    ignored: Type.Integer(),
    already_imported: Type.Integer({ description: 'Entries imported before: skipped, never credited twice.' }),
    lines: Type.Array(BankStatementLine),
    created_at: Type.String({ format: 'date-time' }),
  },
  { title: 'BankStatementImport' },
);

const TopUpRefund = Type.Object(
  { top_up: TopUp, ledger_entry: Type.String({ description: 'The `top_up_refund` ledger entry.' }) },
  { title: 'TopUpRefund' },
);

export async function operatorRoutes(app: App, { db, clock, config }: AppDeps): Promise<void> {
  const bank = config.bankAccount;
  app.addContentTypeParser(['application/xml', 'text/xml'], { parseAs: 'string', bodyLimit: 20 * 1024 * 1024 }, (_request, body, done) => done(null, body));

  // Operator keys
  app.post('/v1/operator/api-keys', {
    config: operator('full'),
    schema: {
      operationId: 'operatorCreateApiKey', tags, security, summary: 'Create an operator API key',
      description: scopeNote('full'),
      body: Type.Object({ name: Type.String({ minLength: 1, maxLength: 100 }), scope: Type.Enum(operatorScopes) }, { title: 'OperatorApiKeyCreate', additionalProperties: false }),
      response: { 201: OperatorApiKeyWithSecret, ...problemResponses(403) },
    },
  }, async (request, reply) => {
    const me = operatorOf(request, 'full');
    const { key, secret } = await createOperatorKey(db, clock, auditActorOf(me), request.body);
    return reply.code(201).send({ ...key, secret });
  });

  app.get('/v1/operator/api-keys', {
    config: operator('full'),
    schema: {
      operationId: 'operatorListApiKeys', tags, security, summary: 'List operator API keys, newest first', description: scopeNote('full'),
      querystring: Type.Object(ListQuery, { additionalProperties: false }),
      response: { 200: ListOf(OperatorApiKey, 'OperatorApiKeyList'), ...problemResponses(403) },
    },
  }, async (request) => {
    operatorOf(request, 'full');
    const { limit = 10, starting_after } = request.query;
    return toPage(await listOperatorKeys(db, limit, starting_after), limit);
  });

  app.post('/v1/operator/api-keys/:id/revoke', {
    config: operator('full'),
    schema: {
      operationId: 'operatorRevokeApiKey', tags, security, summary: 'Revoke an operator API key', description: scopeNote('full'),
      params: Id('An operator key id (`opk_…`).'),
      response: { 200: OperatorApiKey, ...problemResponses(403, 404) },
    },
  }, async (request) => revokeOperatorKey(db, clock, auditActorOf(operatorOf(request, 'full')), request.params.id));

  // Partners
  app.post('/v1/operator/partners', {
    config: operator('full'),
    schema: {
      operationId: 'operatorCreatePartner', tags, security, summary: 'Create a partner with its first API keys (live and test)',
      description: `${scopeNote('full')} The partner's secret key is in this answer only.`,
      body: Type.Object({ name: Type.String({ minLength: 1, maxLength: 200 }) }, { title: 'PartnerCreate', additionalProperties: false }),
      response: { 201: PartnerCreated, ...problemResponses(403) },
    },
  }, async (request, reply) => {
    const created = await createPartnerAsOperator(db, clock, auditActorOf(operatorOf(request, 'full')), request.body.name.trim());
    return reply.code(201).send({
      partner: created.partner,
      api_key: { id: created.key.id, prefix: created.key.prefix, secret: created.secret },
      test_api_key: { id: created.testKey.id, prefix: created.testKey.prefix, secret: created.testSecret },
    });
  });

  app.get('/v1/operator/partners', {
    config: operator('read_only'),
    schema: {
      operationId: 'operatorListPartners', tags, security, summary: 'List and search partners, newest first', description: scopeNote('read_only'),
      querystring: Type.Object(
        {
          ...ListQuery,
          q: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'A partner id, or part of the name (case-insensitive).' })),
          status: Type.Optional(Type.Enum(partnerStatuses)),
        },
        { additionalProperties: false },
      ),
      response: { 200: ListOf(Partner, 'PartnerList'), ...problemResponses(403) },
    },
  }, async (request) => {
    const { limit = 10, starting_after, q, status } = request.query;
    return toPage(await listPartners(db, { limit, startingAfter: starting_after, q, status }), limit);
  });

  app.get('/v1/operator/partners/:id', {
    config: operator('read_only'),
    schema: {
      operationId: 'operatorGetPartner', tags, security, summary: 'Get a partner with its balance', description: scopeNote('read_only'),
      params: Id('A partner id (`ptn_…`).'),
      response: { 200: Partner, ...problemResponses(403, 404) },
    },
  }, async (request) => getPartner(db, request.params.id));

  const ReasonBody = Type.Object({ reason: Reason }, { title: 'OperatorReason', additionalProperties: false });
  for (const [action, suspend] of [['suspend', true], ['reactivate', false]] as const) {
    app.post(`/v1/operator/partners/:id/${action}`, {
      config: operator('full'),
      schema: {
        operationId: suspend ? 'operatorSuspendPartner' : 'operatorReactivatePartner', tags, security,
        summary: suspend ? 'Suspend a partner' : 'Reactivate a suspended partner',
        description: `${scopeNote('full')} ${suspend
          ? "Its API keys and tokens get 403 `partner_suspended` problems; its customers' mailboxes keep working (SMTP and holder routes). Emits `partner.suspended`."
          : 'Emits `partner.reactivated`.'}`,
        params: Id('A partner id (`ptn_…`).'),
        body: ReasonBody,
        response: { 200: Partner, ...problemResponses(403, 404, 409) },
      },
    }, async (request) => setPartnerSuspended(db, clock, auditActorOf(operatorOf(request, 'full')), request.params.id, suspend, request.body.reason));
  }

  app.post('/v1/operator/partners/:id/credit-adjustments', {
    config: operator('billing'),
    schema: {
      operationId: 'operatorAdjustCredit', tags, security, summary: "Correct a partner's credit with a reason",
      description:
        `${scopeNote('billing')} A positive amount appends an \`adjustment_credit\` ledger entry, a negative one an ` +
        '`adjustment_debit` (refused with 402 when it exceeds the balance). Emits `credit.adjusted`.',
      params: Id('A partner id (`ptn_…`).'),
      body: Type.Object(
        {
          amount: Type.Integer({ minimum: -10_000_000, maximum: 10_000_000, not: { const: 0 }, description: 'Signed euro cents, not zero.' }),
          currency: Type.Literal('EUR'),
          reason: Reason,
        },
        { title: 'CreditAdjustmentCreate', additionalProperties: false },
      ),
      response: { 201: LedgerEntry, ...problemResponses(402, 403, 404) },
    },
  }, async (request, reply) => {
    const entry = await adjustCredit(db, clock, auditActorOf(operatorOf(request, 'billing')), request.params.id, request.body);
    return reply.code(201).send(entry);
  });

  // Top-ups
  app.get('/v1/operator/top-ups', {
    config: operator('read_only'),
    schema: {
      operationId: 'operatorListTopUps', tags, security, summary: "All partners' top-ups, newest first", description: scopeNote('read_only'),
      querystring: Type.Object(
        {
          ...ListQuery,
          status: Type.Optional(Type.Enum(topUpStatuses)),
          partner: Type.Optional(Type.String({ description: 'Only this partner\'s.' })),
          payment_reference: Type.Optional(Type.String({ description: 'The reference quoted in a transfer.' })),
        },
        { additionalProperties: false },
      ),
      response: { 200: ListOf(TopUp, 'OperatorTopUpList'), ...problemResponses(403) },
    },
  }, async (request) => {
    const { limit = 10, starting_after, status, partner, payment_reference } = request.query;
    return toPage(await listTopUps(db, bank, { limit, startingAfter: starting_after, status, partnerId: partner, paymentReference: payment_reference?.trim().toUpperCase(), liveOnly: true }), limit);
  });

  app.get('/v1/operator/top-ups/:id', {
    config: operator('read_only'),
    schema: {
      operationId: 'operatorGetTopUp', tags, security, summary: 'Get a top-up', description: scopeNote('read_only'),
      params: Id('A top-up id (`top_…`).'),
      response: { 200: TopUp, ...problemResponses(403, 404) },
    },
  }, async (request) => getTopUp(db, bank, request.params.id));

  app.post('/v1/operator/top-ups/:id/confirm', {
    config: operator('billing'),
    schema: {
      operationId: 'operatorConfirmTopUp', tags, security, summary: 'Confirm that a bank transfer arrived: credit the top-up',
      description:
        `${scopeNote('billing')} Credits the partner exactly once (a \`top_up\` ledger entry, \`credit.top_up.credited\`), also ` +
        'under concurrent confirmations; confirming a credited top-up again answers it unchanged. An expired top-up may be ' +
        'confirmed (money that arrived late); a failed one may not (409).',
      params: Id('A top-up id (`top_…`).'),
      body: Type.Object({ reason: Reason }, { title: 'TopUpConfirm', additionalProperties: false }),
      response: { 200: TopUp, ...problemResponses(403, 404, 409) },
    },
  }, async (request) => {
    await getTopUp(db, bank, request.params.id); // a test-mode top-up is no business of the operator's: 404
    const { topUp } = await confirmTopUp(db, clock, bank, config.invoicing, auditActorOf(operatorOf(request, 'billing')), request.params.id, { reason: request.body.reason });
    return topUp;
  });

  app.post('/v1/operator/top-ups/:id/fail', {
    config: operator('billing'),
    schema: {
      operationId: 'operatorFailTopUp', tags, security, summary: 'Mark a top-up failed', description: `${scopeNote('billing')} Emits \`credit.top_up.failed\`.`,
      params: Id('A top-up id (`top_…`).'),
      body: Type.Object({ reason: Reason }, { title: 'TopUpFail', additionalProperties: false }),
      response: { 200: TopUp, ...problemResponses(403, 404, 409) },
    },
  }, async (request) => {
    await getTopUp(db, bank, request.params.id); // a test-mode top-up is no business of the operator's: 404
    return failTopUp(db, clock, bank, auditActorOf(operatorOf(request, 'billing')), request.params.id, request.body.reason);
  });

  app.post('/v1/operator/top-ups/:id/refund', {
    config: operator('billing'),
    schema: {
      operationId: 'operatorRefundTopUp', tags, security, summary: 'Refund (part of) a credited top-up to the partner',
      description:
        `${scopeNote('billing')} Debits the credit with a \`top_up_refund\` ledger entry (the provider pays the money back ` +
        'by bank); at most what is left of the top-up and of the balance (402). Emits `credit.paid_out` and `credit.top_up.refunded`.',
      params: Id('A top-up id (`top_…`).'),
      body: Type.Object(
        { amount: Type.Optional(Type.Integer({ minimum: 1, description: 'Euro cents; default: all that is left.' })), reason: Reason },
        { title: 'TopUpRefundCreate', additionalProperties: false },
      ),
      response: { 200: TopUpRefund, ...problemResponses(402, 403, 404, 409) },
    },
  }, async (request) => {
    await getTopUp(db, bank, request.params.id); // a test-mode top-up is no business of the operator's: 404
    const result = await refundTopUp(db, clock, bank, auditActorOf(operatorOf(request, 'billing')), request.params.id, request.body);
    return { top_up: result.topUp, ledger_entry: result.ledgerEntry };
  });

  // Bank statements
  app.post('/v1/operator/bank-statements', {
    config: operator('billing'),
    schema: {
      operationId: 'operatorImportBankStatement', tags, security, summary: 'Import a CAMT.053 bank statement and credit the matched top-ups',
      description:
        `${scopeNote('billing')} Body: the ISO 20022 CAMT.053 XML of the provider's account (\`Content-Type: application/xml\`). ` +
        'Each booked credit whose remittance information quotes a pending top-up\'s `payment_reference` with its exact amount ' +
        'credits it; other lines are stored for review (`GET /v1/operator/bank-statement-lines?status=unmatched`). Entries are ' +
        'keyed on the bank\'s entry reference: importing a statement again credits nothing twice.',
      response: { 201: BankStatementImport, ...problemResponses(403, 413, 415, 422) },
    },
  }, async (request, reply) => {
    if (typeof request.body !== 'string') {
      throw new ProblemError(415, 'unsupported_media_type', 'Unsupported media type', 'Send the CAMT.053 statement with Content-Type: application/xml.');
    }
    const result = await importBankStatement(db, clock, bank, config.invoicing, auditActorOf(operatorOf(request, 'billing')), request.body);
    return reply.code(201).send(result);
  });

  app.get('/v1/operator/bank-statement-lines', {
    config: operator('read_only'),
    schema: {
      operationId: 'operatorListBankStatementLines', tags, security, summary: 'Imported bank statement lines, newest first', description: scopeNote('read_only'),
      querystring: Type.Object(
        { ...ListQuery, status: Type.Optional(Type.Enum(bankStatementLineStatuses)), statement: Type.Optional(Type.String({ description: 'An import id (`bst_…`).' })) },
        { additionalProperties: false },
      ),
      response: { 200: ListOf(BankStatementLine, 'BankStatementLineList'), ...problemResponses(403) },
    },
  }, async (request) => {
    const { limit = 10, starting_after, status, statement } = request.query;
    return toPage(await listStatementLines(db, { limit, startingAfter: starting_after, status, statement }), limit);
  });

  // Audit trail
  app.get('/v1/operator/audit-log', {
    config: operator('read_only'),
    schema: {
      operationId: 'operatorListAuditLog', tags, security, summary: 'The audit trail of operator actions, newest first', description: scopeNote('read_only'),
      querystring: Type.Object(
        {
          ...ListQuery,
          action: Type.Optional(Type.String({ description: 'E.g. `top_up.confirmed`.' })),
          target_id: Type.Optional(Type.String()),
          partner: Type.Optional(Type.String()),
          operator_key: Type.Optional(Type.String()),
          created_after: Type.Optional(Type.String({ format: 'date-time', description: 'Entries created at or after this instant.' })),
          created_before: Type.Optional(Type.String({ format: 'date-time', description: 'Entries created before this instant.' })),
        },
        { additionalProperties: false },
      ),
      response: { 200: ListOf(AuditEntry, 'AuditEntryList'), ...problemResponses(403) },
    },
  }, async (request) => {
    const { limit = 10, starting_after, action, target_id, partner, operator_key, created_after: gte, created_before: lt } = request.query;
    return toPage(await listAudit(db, {
      limit, startingAfter: starting_after, action, targetId: target_id, partner, operatorKey: operator_key,
      createdGte: gte ? new Date(gte) : undefined, createdLt: lt ? new Date(lt) : undefined,
    }), limit);
  });
}
