import type { FastifyReply } from 'fastify';
import { Type, type TSchema } from 'typebox';
import { bankStatementLineStatuses, mailboxPlans, operatorScopes, partnerStatuses, topUpStatuses } from '@pec-partner/db';
import type { App, AppDeps } from '../../deps.ts';
import { auditActorOf, operatorOf } from '../../http/auth.ts';
import { ListOf, ListQuery, toPage } from '../../http/pagination.ts';
import { problemResponses, ProblemError } from '../../http/problem.ts';
import { LedgerEntry, TopUp } from '../credit/routes.ts';
import { confirmTopUp, failTopUp, getTopUp, listTopUps, refundTopUp } from '../credit/top-ups.ts';
import { listAudit } from './audit.ts';
import { ignoreStatementLine, importBankStatement, listStatementLines, resolveStatementLine } from './bank-statements.ts';
import { PriceListConfig } from '../credit/prices.ts';
import { getPriceList, listPriceLists } from '../credit/price-lists.ts';
import { Invoice } from '../invoices/schemas.ts';
import { InvoiceHtmlResponse, InvoiceXmlResponse, sendInvoiceHtml, sendInvoiceXml } from '../invoices/routes.ts';
import { getInvoice, listInvoices } from '../invoices/service.ts';
import { toCsv } from '../../http/csv.ts';
import { addPriceListVersion, assignPriceList, createPriceList } from './price-lists.ts';
import {
  ACTIVE_MAILBOX_COLUMNS, activeMailboxesReport, CREDIT_BALANCE_COLUMNS, creditBalancesReport, MAX_REPORT_MONTHS, REVENUE_COLUMNS, revenueReport,
} from './reports.ts';
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
    price_list: Type.String({ description: 'The price list it pays (`pl_…`; `pl_default` unless one was assigned).' }),
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
    status: Type.Enum(bankStatementLineStatuses, { description: '`matched` (its top-up was credited), `unmatched` (for the operator), `ignored` (debits, reversals, lines an operator set aside).' }),
    mismatch_reason: Nullable(Type.String({
      description: '`no_reference`, `unknown_reference`, `several_references`, `amount_mismatch`, `currency_mismatch`, `top_up_credited`, `top_up_failed`, `top_up_expired`; for ignored lines `debit`, `reversal` or `ignored_by_operator`.',
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

const PriceListVersion = Type.Object(
  {
    object: Type.Literal('price_list_version'),
    price_list: Type.String({ description: 'The list (`pl_…`).' }),
    version: Type.Integer({ description: '1, 2, … in the order recorded.' }),
    prices: PriceListConfig,
    effective_from: Type.String({
      format: 'date-time',
      description: 'From this instant charges use this version, until a version with a later `effective_from` takes over (on the same instant, the higher version wins).',
    }),
    created_by: Nullable(Type.String({ description: 'The operator key that recorded it; null: the system (PRICES_FILE at start-up).' })),
    created_at: Type.String({ format: 'date-time' }),
  },
  { title: 'PriceListVersion', description: 'Immutable: a change of prices is a new version.' },
);

const PriceList = Type.Object(
  {
    id: Type.String({ description: 'Prefixed `pl_`; the default list is `pl_default`.' }),
    object: Type.Literal('price_list'),
    name: Type.String(),
    default: Type.Boolean({ description: 'The list of every partner without an assignment (seeded from PRICES_FILE).' }),
    current_version: Nullable(Type.Integer({ description: 'The version in force now.' })),
    latest_version: Type.Integer({ description: 'The last version recorded (may be scheduled for later).' }),
    created_by: Nullable(Type.String()),
    created_at: Type.String({ format: 'date-time' }),
    versions: Type.Optional(Type.Array(PriceListVersion, { description: 'Every version, oldest first (on GET of one list).' })),
  },
  { title: 'OperatorPriceList' },
);

const Month = Type.String({ pattern: '^[0-9]{4}-(0[1-9]|1[0-2])$', description: 'A calendar month, `YYYY-MM` (Europe/Rome).' });
const ReportFormat = { format: Type.Optional(Type.Union([Type.Literal('json'), Type.Literal('csv')], { default: 'json', description: '`json` (default) or `csv` (RFC 4180, header row, amounts in cents).' })) };
const reportResponse = (schema: TSchema, columns: readonly string[]) => ({
  200: {
    description: `The report. As CSV the columns are, in this order: ${columns.map((c) => `\`${c}\``).join(', ')}; text cells beginning with = + - @ are prefixed with \`'\`.`,
    content: { 'application/json': { schema }, 'text/csv': { schema: { type: 'string' } } },
  },
  ...problemResponses(403),
});

const CreditBalancesReport = Type.Object(
  {
    object: Type.Literal('credit_balances_report'),
    generated_at: Type.String({ format: 'date-time' }),
    currency: Type.Literal('EUR'),
    total_balance: Type.Integer({ description: 'Euro cents: the sum of every partner\'s balance (credit owed to partners).' }),
    data: Type.Array(Type.Object(
      {
        partner: Type.String(),
        partner_name: Type.String(),
        status: Type.Enum(partnerStatuses),
        balance: Type.Integer({ description: 'Euro cents of prepaid credit now.' }),
        currency: Type.Literal('EUR'),
      },
      { title: 'CreditBalanceReportRow' },
    ), { description: 'One row per partner, by partner id.' }),
  },
  { title: 'CreditBalancesReport' },
);

const revenueAmounts = {
  charged: Type.Integer({ description: 'Euro cents of credit spent on services in the month (`charge` ledger entries).' }),
  refunded: Type.Integer({ description: 'Euro cents of credit given back for services (`refund` ledger entries: cancellations, downgrades).' }),
  net_spent: Type.Integer({ description: '`charged` − `refunded`: the credit consumed, VAT excluded (VAT was invoiced on the top-up).' }),
  topped_up: Type.Integer({ description: 'Euro cents of credit bought (`top_up` ledger entries, net of VAT), by the time of the credit.' }),
  invoiced_net: Type.Integer({ description: 'Taxable amount of the invoices issued in the month (by their date of issue).' }),
  invoiced_vat: Type.Integer({ description: 'VAT of those invoices.' }),
  invoiced_gross: Type.Integer({ description: 'Their totals: `invoiced_net` + `invoiced_vat`, what partners paid.' }),
};
const RevenueReport = Type.Object(
  {
    object: Type.Literal('revenue_report'),
    from: Month,
    to: Month,
    currency: Type.Literal('EUR'),
    months: Type.Array(Type.Object({ month: Month, ...revenueAmounts }, { title: 'RevenueReportMonth' }), { description: 'Every month of the range, all partners together.' }),
    data: Type.Array(Type.Object({ month: Month, partner: Type.String(), partner_name: Type.String(), ...revenueAmounts }, { title: 'RevenueReportRow' }), {
      description: 'Per month and partner, by month then partner id; only where something happened. Operator adjustments and top-up refunds are not revenue and are not counted.',
    }),
  },
  { title: 'RevenueReport' },
);

const ActiveMailboxesReport = Type.Object(
  {
    object: Type.Literal('active_mailboxes_report'),
    generated_at: Type.String({ format: 'date-time' }),
    plans: Type.Array(Type.Object({ plan: Type.Enum(mailboxPlans), active_mailboxes: Type.Integer() }, { title: 'ActiveMailboxesPlan' }), {
      description: 'Every plan (standard, pro, premium) with its mailboxes in status `active` now.',
    }),
    data: Type.Array(Type.Object(
      { partner: Type.String(), partner_name: Type.String(), plan: Type.Enum(mailboxPlans), active_mailboxes: Type.Integer() },
      { title: 'ActiveMailboxesReportRow' },
    ), { description: 'Per partner and plan, by partner id then plan; only where there is at least one.' }),
  },
  { title: 'ActiveMailboxesReport' },
);

/** `format=csv`: the rows as an RFC 4180 attachment; otherwise the JSON report. */
function sendReport<C extends string>(reply: FastifyReply, format: 'json' | 'csv' | undefined, name: string, report: { data: readonly Record<C, string | number | null>[] }, columns: readonly C[]) {
  if (format !== 'csv') return report;
  return reply
    .type('text/csv; charset=utf-8')
    .header('content-disposition', `attachment; filename="${name}.csv"`)
    .header('x-content-type-options', 'nosniff')
    .send(toCsv(columns, report.data) as never);
}

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

  app.post('/v1/operator/bank-statement-lines/:id/resolve', {
    config: operator('billing'),
    schema: {
      operationId: 'operatorResolveBankStatementLine', tags, security, summary: 'Assign an unmatched statement line to the top-up it paid',
      description:
        `${scopeNote('billing')} Credits the top-up as a confirmation does (its ledger entry, invoice and events, exactly once) ` +
        'and marks the line `matched`, in one transaction. The line must be `unmatched` and the top-up `pending` or `expired` (409 otherwise).',
      params: Id('A bank statement line id (`bsl_…`).'),
      body: Type.Object(
        { top_up: Type.String({ minLength: 1, maxLength: 100, description: 'The top-up the money was for (`top_…`).' }), reason: Reason },
        { title: 'BankStatementLineResolve', additionalProperties: false },
      ),
      response: { 200: BankStatementLine, ...problemResponses(403, 404, 409) },
    },
  }, async (request) => resolveStatementLine(db, clock, bank, config.invoicing, auditActorOf(operatorOf(request, 'billing')), request.params.id, { topUpId: request.body.top_up, reason: request.body.reason }));

  app.post('/v1/operator/bank-statement-lines/:id/ignore', {
    config: operator('billing'),
    schema: {
      operationId: 'operatorIgnoreBankStatementLine', tags, security, summary: 'Set an unmatched statement line aside (not a top-up)',
      description: `${scopeNote('billing')} The line becomes \`ignored\` (\`mismatch_reason\`: \`ignored_by_operator\`); nothing is credited. Only an \`unmatched\` line (409 otherwise).`,
      params: Id('A bank statement line id (`bsl_…`).'),
      body: Type.Object({ reason: Reason }, { title: 'BankStatementLineIgnore', additionalProperties: false }),
      response: { 200: BankStatementLine, ...problemResponses(403, 404, 409) },
    },
  }, async (request) => ignoreStatementLine(db, clock, auditActorOf(operatorOf(request, 'billing')), request.params.id, request.body.reason));

  // Price lists
  const PriceListCreate = Type.Object(
    { name: Type.String({ minLength: 1, maxLength: 200 }), prices: PriceListConfig, reason: Reason },
    { title: 'PriceListCreate', additionalProperties: false },
  );
  app.post('/v1/operator/price-lists', {
    config: operator('billing'),
    schema: {
      operationId: 'operatorCreatePriceList', tags, security, summary: 'Create a price list (its version 1 is in force from now)',
      description: `${scopeNote('billing')} Assign it to partners with POST /v1/operator/partners/{id}/price-list.`,
      body: PriceListCreate,
      response: { 201: PriceList, ...problemResponses(403) },
    },
  }, async (request, reply) => {
    const { name, prices, reason } = request.body;
    return reply.code(201).send(await createPriceList(db, clock, auditActorOf(operatorOf(request, 'billing')), { name: name.trim(), prices, reason }));
  });

  app.get('/v1/operator/price-lists', {
    config: operator('read_only'),
    schema: {
      operationId: 'operatorListPriceLists', tags, security, summary: 'Price lists, newest first', description: scopeNote('read_only'),
      querystring: Type.Object(
        { limit: ListQuery.limit, starting_after: Type.Optional(Type.String({ maxLength: 100, description: 'Cursor: the `next_cursor` of the previous page (a price list id).' })) },
        { additionalProperties: false },
      ),
      response: { 200: ListOf(PriceList, 'OperatorPriceListList'), ...problemResponses(403) },
    },
  }, async (request) => {
    const { limit = 10, starting_after } = request.query;
    return toPage(await listPriceLists(db, clock.now(), { limit, startingAfter: starting_after }), limit);
  });

  app.get('/v1/operator/price-lists/:id', {
    config: operator('read_only'),
    schema: {
      operationId: 'operatorGetPriceList', tags, security, summary: 'Get a price list with all its versions', description: scopeNote('read_only'),
      params: Id('A price list id (`pl_…`).'),
      response: { 200: PriceList, ...problemResponses(403, 404) },
    },
  }, async (request) => getPriceList(db, clock.now(), request.params.id));

  app.post('/v1/operator/price-lists/:id/versions', {
    config: operator('billing'),
    schema: {
      operationId: 'operatorCreatePriceListVersion', tags, security, summary: 'Record a new version of a price list, now or scheduled',
      description:
        `${scopeNote('billing')} Versions are immutable and never deleted. The new version applies to every charge from ` +
        '`effective_from` on (default: now; never in the past, beyond 5 minutes of tolerance): mailbox creation, renewals, ' +
        'plan changes, add-ons and domain certification of the partners on this list. A scheduled version can be superseded ' +
        'by another with the same `effective_from` (the higher version wins).',
      params: Id('A price list id (`pl_…`).'),
      body: Type.Object(
        {
          prices: PriceListConfig,
          effective_from: Type.Optional(Type.String({ format: 'date-time', description: 'When it takes effect; default: now.' })),
          reason: Reason,
        },
        { title: 'PriceListVersionCreate', additionalProperties: false },
      ),
      response: { 201: PriceListVersion, ...problemResponses(403, 404) },
    },
  }, async (request, reply) => {
    const { prices, effective_from, reason } = request.body;
    const version = await addPriceListVersion(db, clock, auditActorOf(operatorOf(request, 'billing')), request.params.id, {
      prices, effectiveFrom: effective_from ? new Date(effective_from) : undefined, reason,
    });
    return reply.code(201).send(version);
  });

  app.post('/v1/operator/partners/:id/price-list', {
    config: operator('billing'),
    schema: {
      operationId: 'operatorAssignPriceList', tags, security, summary: 'Assign a price list to a partner',
      description:
        `${scopeNote('billing')} From now on the partner's charges use this list's version in force at each charge; ` +
        'nothing already charged changes. `null` (or `pl_default`) returns it to the default list. Emits ' +
        '`partner.price_list_assigned`; assigning the list it already has changes nothing.',
      params: Id('A partner id (`ptn_…`).'),
      body: Type.Object(
        { price_list: Nullable(Type.String({ minLength: 1, maxLength: 100, description: 'A price list id (`pl_…`); null: the default list.' })), reason: Reason },
        { title: 'PriceListAssignment', additionalProperties: false },
      ),
      response: { 200: Partner, ...problemResponses(403, 404) },
    },
  }, async (request) => assignPriceList(db, clock, auditActorOf(operatorOf(request, 'billing')), request.params.id, request.body.price_list, request.body.reason));

  // Business reports
  app.get('/v1/operator/reports/credit-balances', {
    config: operator('read_only'),
    schema: {
      operationId: 'operatorReportCreditBalances', tags, security, summary: "Report: every partner's credit balance",
      description: `${scopeNote('read_only')} JSON, or CSV with \`format=csv\`.`,
      querystring: Type.Object(ReportFormat, { additionalProperties: false }),
      response: reportResponse(CreditBalancesReport, CREDIT_BALANCE_COLUMNS),
    },
  }, async (request, reply) => sendReport(reply, request.query.format, 'credit-balances', await creditBalancesReport(db, clock.now()), CREDIT_BALANCE_COLUMNS));

  app.get('/v1/operator/reports/revenue', {
    config: operator('read_only'),
    schema: {
      operationId: 'operatorReportRevenue', tags, security, summary: 'Report: revenue per month and per partner',
      description:
        `${scopeNote('read_only')} Months are calendar months in Europe/Rome (as the invoices' dates), \`from\` and \`to\` ` +
        `included, at most ${MAX_REPORT_MONTHS}. Credit spent and refunded, credit bought, and invoiced amounts (net, VAT, gross); ` +
        'euro cents. JSON, or CSV (the per-partner rows) with `format=csv`.',
      querystring: Type.Object({ from: Month, to: Month, ...ReportFormat }, { additionalProperties: false }),
      response: reportResponse(RevenueReport, REVENUE_COLUMNS),
    },
  }, async (request, reply) => sendReport(reply, request.query.format, `revenue-${request.query.from}-${request.query.to}`, await revenueReport(db, request.query.from, request.query.to), REVENUE_COLUMNS));

  app.get('/v1/operator/reports/active-mailboxes', {
    config: operator('read_only'),
    schema: {
      operationId: 'operatorReportActiveMailboxes', tags, security, summary: 'Report: active mailboxes per plan and per partner',
      description: `${scopeNote('read_only')} Mailboxes in status \`active\` now. JSON, or CSV (the per-partner rows) with \`format=csv\`.`,
      querystring: Type.Object(ReportFormat, { additionalProperties: false }),
      response: reportResponse(ActiveMailboxesReport, ACTIVE_MAILBOX_COLUMNS),
    },
  }, async (request, reply) => sendReport(reply, request.query.format, 'active-mailboxes', await activeMailboxesReport(db, clock.now()), ACTIVE_MAILBOX_COLUMNS));

  // Invoices (the partners' invoices, as they download them)
  const InvoiceId = Id('An invoice id (`inv_…`).');
  app.get('/v1/operator/invoices', {
    config: operator('read_only'),
    schema: {
      operationId: 'operatorListInvoices', tags, security, summary: "All partners' invoices, newest first", description: scopeNote('read_only'),
      querystring: Type.Object(
        {
          ...ListQuery,
          partner: Type.Optional(Type.String({ description: "Only this partner's." })),
          year: Type.Optional(Type.Integer({ minimum: 2000, maximum: 2100, description: 'Only invoices numbered in this year.' })),
        },
        { additionalProperties: false },
      ),
      response: { 200: ListOf(Invoice, 'OperatorInvoiceList'), ...problemResponses(403) },
    },
  }, async (request) => {
    const { limit = 10, starting_after, partner, year } = request.query;
    return toPage(await listInvoices(db, { operator: true }, { limit, startingAfter: starting_after, year, partnerId: partner }), limit);
  });

  app.get('/v1/operator/invoices/:id', {
    config: operator('read_only'),
    schema: {
      operationId: 'operatorGetInvoice', tags, security, summary: 'Get an invoice', description: scopeNote('read_only'),
      params: InvoiceId,
      response: { 200: Invoice, ...problemResponses(403, 404) },
    },
  }, async (request) => getInvoice(db, { operator: true }, request.params.id));

  app.get('/v1/operator/invoices/:id/xml', {
    config: operator('read_only'),
    schema: {
      operationId: 'operatorGetInvoiceXml', tags, security, summary: 'Download an invoice\'s FatturaPA file',
      description: `${scopeNote('read_only')} The same file, name and headers as the partner's download.`,
      params: InvoiceId,
      response: { 200: InvoiceXmlResponse, ...problemResponses(403, 404) },
    },
  }, async (request, reply) => sendInvoiceXml(reply, db, { operator: true }, request.params.id));

  app.get('/v1/operator/invoices/:id/html', {
    config: operator('read_only'),
    schema: {
      operationId: 'operatorGetInvoiceHtml', tags, security, summary: 'The readable copy of an invoice',
      description: `${scopeNote('read_only')} The same page as the partner's.`,
      params: InvoiceId,
      response: { 200: InvoiceHtmlResponse, ...problemResponses(403, 404) },
    },
  }, async (request, reply) => sendInvoiceHtml(reply, db, { operator: true }, request.params.id));

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
