import { inTaskScope, type TaskScope } from '../../sandbox/task-scope.ts';
import { and, desc, eq, inArray, lt, lte, sql } from 'drizzle-orm';
import { customers, domains, mailboxes, type DbOrTx, type DomainStatus } from '@pec-partner/db';
import { inWorldOf } from '../../sandbox/world.ts';
import type { Clock } from '../../clock.ts';
import type { AppConfig } from '../../config.ts';
import { isUniqueViolation } from '../../db-errors.ts';
import { conflict, invalid, notFound, ProblemError } from '../../http/problem.ts';
import { newId, randomToken } from '../../ids.ts';
import { assertTransition, type Transitions } from '../../state-machine.ts';
import { DAY_MS } from '../../jobs/scheduler.ts';
import type { EventType } from '../../events/catalogue.ts';
import { changedAttributes, recordEvent } from '../../events/record.ts';
import { charge } from '../credit/service.ts';
import { resumeMailboxesOfDomain, suspendMailboxesOfDomain } from '../mailboxes/service.ts';
import { pricesFor } from '../credit/price-lists.ts';
import { checkDomainRecords, type RecordCheck } from './dns-check.ts';
import { analyzeDomainName } from './names.ts';

type Row = typeof domains.$inferSelect;

export interface DomainDeps {
  db: DbOrTx;
  clock: Clock;
  config: AppConfig;
}

type DomainAction = 'verify' | 'withdraw' | 'request_cancellation' | 'undo_cancellation' | 'change_customer';

const transitions: Transitions<DomainStatus, DomainAction> = {
  // A decertified domain can be certified again once its records are back (the fee is charged again).
  verify: ['pending_verification', 'decertified'],
  withdraw: ['pending_verification'],
  request_cancellation: ['certified', 'degraded'],
  undo_cancellation: ['certified', 'degraded'],
  change_customer: ['pending_verification', 'certified', 'degraded'],
};

export const VERIFY_PREFIX = '_pec-verify';

export interface DnsRecordView {
  type: 'MX' | 'TXT';
  name: string;
  value: string;
  priority: number | null;
}

function expectedRecords(config: AppConfig, name: string, token: string): DnsRecordView[] {
  return [
    ...config.inboundMxHosts.map((host, index): DnsRecordView => ({ type: 'MX', name, value: host, priority: 10 * (index + 1) })),
    { type: 'TXT', name: `${VERIFY_PREFIX}.${name}`, value: `pec-verify=${token}`, priority: null },
  ];
}

export interface DomainCheckView {
  checked_at: string;
  ok: boolean;
  records: RecordCheck[];
}

export function domainView(config: AppConfig, row: Row) {
  return {
    id: row.id,
    object: 'domain' as const,
    kind: 'custom' as 'custom' | 'provider',
    name: row.name,
    unicode_name: row.unicodeName,
    level: row.level,
    status: row.status,
    customer: row.customerId as string | null,
    dns_records: expectedRecords(config, row.name, row.verificationToken),
    last_check: (row.lastCheck as DomainCheckView | null) ?? null,
    certified_at: row.certifiedAt?.toISOString() ?? null,
    degraded_at: row.degradedAt?.toISOString() ?? null,
    decertified_at: row.decertifiedAt?.toISOString() ?? null,
    withdrawn_at: row.withdrawnAt?.toISOString() ?? null,
    cancel_at: row.cancelAt?.toISOString() ?? null,
    cancelled_at: row.cancelledAt?.toISOString() ?? null,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  };
}
export type DomainView = ReturnType<typeof domainView>;

type DomainEventType = Extract<EventType, `domain.${string}`>;

/** Records the event of one change of a domain, from the row before it to the row stored now. */
async function recordChange(tx: DbOrTx, clock: Clock, config: AppConfig, type: DomainEventType, before: Row, after: Row): Promise<DomainView> {
  const object = domainView(config, after);
  await recordEvent(tx, clock, { partnerId: after.partnerId, type, object, previousAttributes: changedAttributes(domainView(config, before), object) });
  return object;
}

/** The provider's own domains, shown in the same shape as custom ones; their id is `pdm_` + the name. */
export function providerDomainViews(config: AppConfig): DomainView[] {
  return config.providerDomains.map((name) => ({
    id: `pdm_${name}`,
    object: 'domain' as const,
    kind: 'provider' as const,
    name,
    unicode_name: name,
    level: name.split('.').length,
    status: 'certified' as DomainStatus,
    customer: null,
    dns_records: [],
    last_check: null,
    certified_at: null,
    degraded_at: null,
    decertified_at: null,
    withdrawn_at: null,
    cancel_at: null,
    cancelled_at: null,
    created_at: new Date(0).toISOString(),
    updated_at: new Date(0).toISOString(),
  }));
}

export interface Certifiability {
  name: string;
  unicode_name: string | null;
  certifiable: boolean;
  reason: string | null;
  detail: string | null;
}

/** Whether a name may be requested now; the same rules the create call enforces. */
export async function checkCertifiable(db: DbOrTx, config: AppConfig, partnerId: string, input: string): Promise<Certifiability> {
  const analyzed = analyzeDomainName(input, config.providerDomains);
  if (!analyzed.ok) return { name: input, unicode_name: null, certifiable: false, reason: analyzed.problem, detail: analyzed.detail };
  const { ascii, unicode } = analyzed.name;
  const existing = await db
    .select({ partnerId: domains.partnerId, status: domains.status })
    .from(domains)
    // Per world: a name certified live may be certified once more in the sandbox, and the other way round.
    .where(and(eq(domains.name, ascii), inArray(domains.status, ['certified', 'degraded', 'pending_verification']), inWorldOf(domains.livemode, partnerId)));
  if (existing.some((d) => d.status === 'certified' || d.status === 'degraded')) {
    return { name: ascii, unicode_name: unicode, certifiable: false, reason: 'already_certified', detail: `${ascii} is already certified for PEC.` };
  }
  if (existing.some((d) => d.partnerId === partnerId)) {
    return { name: ascii, unicode_name: unicode, certifiable: false, reason: 'already_requested', detail: `You already have a pending request for ${ascii}.` };
  }
  return { name: ascii, unicode_name: unicode, certifiable: true, reason: null, detail: null };
}

async function findCustomer(db: DbOrTx, partnerId: string, customerId: string, pointer = '/customer'): Promise<void> {
  const [row] = await db.select({ id: customers.id }).from(customers).where(and(eq(customers.id, customerId), eq(customers.partnerId, partnerId)));
  if (!row) throw invalid([{ pointer, location: 'body', code: 'resource_missing', detail: `no customer '${customerId}'` }]);
}

export async function createDomain(deps: DomainDeps, partnerId: string, input: { name: string; customer: string }): Promise<DomainView> {
  const { db, clock, config } = deps;
  await findCustomer(db, partnerId, input.customer);
  const verdict = await checkCertifiable(db, config, partnerId, input.name);
  if (!verdict.certifiable) {
    const status = verdict.reason === 'already_certified' || verdict.reason === 'already_requested' || verdict.reason === 'provider_domain' ? 409 : 400;
    if (status === 400) throw invalid([{ pointer: '/name', location: 'body', code: verdict.reason!, detail: verdict.detail! }], verdict.detail!);
    throw conflict(`domain_${verdict.reason}`, verdict.detail!);
  }
  const analyzed = analyzeDomainName(input.name, config.providerDomains);
  if (!analyzed.ok) throw new Error('unreachable: checked above');
  try {
    return await db.transaction(async (tx) => {
      const now = clock.now();
      const [row] = await tx
        .insert(domains)
        .values({
          id: newId('dom', now),
          partnerId,
          customerId: input.customer,
          name: analyzed.name.ascii,
          unicodeName: analyzed.name.unicode,
          level: analyzed.name.level,
          status: 'pending_verification',
          verificationToken: randomToken(32),
          createdAt: now,
          updatedAt: now,
        })
        .returning();
      const domain = domainView(config, row!);
      await recordEvent(tx, clock, { partnerId, type: 'domain.created', object: domain });
      return domain;
    });
  } catch (error) {
    if (isUniqueViolation(error, 'domains_pending_name_key')) throw conflict('domain_already_requested', `You already have a pending request for ${analyzed.name.ascii}.`);
    throw error;
  }
}

async function findRow(db: DbOrTx, partnerId: string, id: string, forUpdate = false): Promise<Row> {
  const query = db.select().from(domains).where(and(eq(domains.id, id), eq(domains.partnerId, partnerId)));
  const [row] = forUpdate ? await query.for('update') : await query;
  if (!row) throw notFound('domain', id);
  return row;
}

export async function getDomain(deps: DomainDeps, partnerId: string, id: string): Promise<DomainView> {
  if (id.startsWith('pdm_')) {
    const provider = providerDomainViews(deps.config).find((d) => d.id === id);
    if (provider) return provider;
  }
  return domainView(deps.config, await findRow(deps.db, partnerId, id));
}

export interface DomainQuery {
  limit: number;
  startingAfter?: string | undefined;
  customer?: string | undefined;
  status?: DomainStatus | undefined;
  name?: string | undefined;
}

export async function listDomains(deps: DomainDeps, partnerId: string, query: DomainQuery): Promise<DomainView[]> {
  const rows = await deps.db
    .select()
    .from(domains)
    .where(
      and(
        eq(domains.partnerId, partnerId),
        query.startingAfter ? lt(domains.id, query.startingAfter) : undefined,
        query.customer ? eq(domains.customerId, query.customer) : undefined,
        query.status ? eq(domains.status, query.status) : undefined,
        query.name ? eq(domains.name, query.name.toLowerCase()) : undefined,
      ),
    )
    .orderBy(desc(domains.id))
    .limit(query.limit + 1);
  return rows.map((row) => domainView(deps.config, row));
}

async function runCheck(config: AppConfig, row: Row, now: Date): Promise<DomainCheckView> {
  const result = await checkDomainRecords(
    { servers: config.dnsServers, timeoutMs: config.dnsTimeoutMs, tries: 2 },
    { domain: row.name, mxHosts: config.inboundMxHosts, txtName: `${VERIFY_PREFIX}.${row.name}`, txtValue: `pec-verify=${row.verificationToken}` },
  );
  return { checked_at: now.toISOString(), ok: result.ok, records: result.records };
}

/**
 * Looks the records up (outside any transaction: DNS may take seconds), records the result, and on success
 * certifies the domain and charges the certification fee in one transaction. Failure is a 422 listing what
 * each record lacks; short credit is a 402 and leaves the domain pending.
 */
export async function verifyDomain(deps: DomainDeps & { db: import('@pec-partner/db').Db }, partnerId: string, id: string, requestId: string | null): Promise<DomainView> {
  const { db, clock, config } = deps;
  const before = await findRow(db, partnerId, id);
  assertTransition(transitions, 'domain', id, before.status, 'verify');
  const check = await runCheck(config, before, clock.now());
  await db.update(domains).set({ lastCheck: check, lastCheckedAt: new Date(check.checked_at) }).where(eq(domains.id, id));
  if (!check.ok) {
    throw new ProblemError(422, 'domain_verification_failed', 'Domain verification failed',
      `The DNS records of ${before.name} are not all in place: ${check.records.filter((r) => r.status !== 'ok').map((r) => r.detail).join(' ')}`,
      { records: check.records });
  }
  return certify(deps, partnerId, id, before, requestId);
}

/**
 * Certifies a domain whose records were found in place (`before` carries the check as it was before this call):
 * the status, the `domain.certified` event, the resumed mailboxes and the certification fee, in one transaction.
 */
async function certify(deps: DomainDeps & { db: import('@pec-partner/db').Db }, partnerId: string, id: string, before: Row, requestId: string | null): Promise<DomainView> {
  const { db, clock, config } = deps;
  try {
    return await db.transaction(async (tx) => {
      const row = await findRow(tx, partnerId, id, true);
      assertTransition(transitions, 'domain', id, row.status, 'verify');
      const now = clock.now();
      const [updated] = await tx
        .update(domains)
        .set({ status: 'certified', certifiedAt: now, degradedAt: null, decertifiedAt: null, updatedAt: now })
        .where(eq(domains.id, id))
        .returning();
      // The check is part of this call's change, though stored before it so that a failed verification keeps it.
      const domain = await recordChange(tx, clock, config, 'domain.certified', { ...row, lastCheck: before.lastCheck }, updated!);
      await resumeMailboxesOfDomain(tx, clock, id, now);
      await charge(tx, clock, {
        partnerId,
        amount: (await pricesFor(tx, partnerId, now)).prices.domain_certification.unit_amount,
        description: `Domain certification: ${row.name}`,
        item: { type: 'domain', id },
        requestId,
      });
      return domain;
    });
  } catch (error) {
    if (isUniqueViolation(error, 'domains_certified_name_key')) {
      throw conflict('domain_already_certified', `${before.name} was certified for PEC by someone else meanwhile.`);
    }
    throw error;
  }
}

async function update(
  deps: DomainDeps,
  partnerId: string,
  id: string,
  action: DomainAction,
  event: DomainEventType,
  change: (row: Row, now: Date, tx: DbOrTx) => Partial<Row> | Promise<Partial<Row>>,
) {
  return deps.db.transaction(async (tx) => {
    const row = await findRow(tx, partnerId, id, true);
    assertTransition(transitions, 'domain', id, row.status, action);
    const now = deps.clock.now();
    const [updated] = await tx
      .update(domains)
      .set({ ...(await change(row, now, tx)), updatedAt: now })
      .where(eq(domains.id, id))
      .returning();
    return recordChange(tx, deps.clock, deps.config, event, row, updated!);
  });
}

export const withdrawDomain = (deps: DomainDeps, partnerId: string, id: string) =>
  update(deps, partnerId, id, 'withdraw', 'domain.withdrawn', (_row, now) => ({ status: 'withdrawn', withdrawnAt: now }));

/** Cancellation takes effect at `at` (default: now + 30 days' notice); mailboxes must be gone by then. */
export async function requestDomainCancellation(deps: DomainDeps, partnerId: string, id: string, at: Date | undefined) {
  return update(deps, partnerId, id, 'request_cancellation', 'domain.updated', async (row, now, tx) => {
    if (row.cancelAt) throw conflict('cancellation_already_requested', `Cancellation of domain '${id}' is already scheduled for ${row.cancelAt.toISOString()}.`);
    const cancelAt = at ?? new Date(now.getTime() + 30 * DAY_MS);
    if (cancelAt.getTime() < now.getTime()) {
      throw invalid([{ pointer: '/at', location: 'body', code: 'out_of_range', detail: 'must not be in the past' }]);
    }
    const [live] = await tx
      .select({ n: sql<number>`count(*)::int` })
      .from(mailboxes)
      .where(and(eq(mailboxes.domainId, id), sql`${mailboxes.status} <> 'cancelled'`));
    if (live!.n > 0) {
      throw conflict('domain_has_mailboxes', `Domain '${id}' still has ${live!.n} mailbox(es) that are not cancelled; cancel them first.`);
    }
    return { cancelAt };
  });
}

export const undoDomainCancellation = (deps: DomainDeps, partnerId: string, id: string) =>
  update(deps, partnerId, id, 'undo_cancellation', 'domain.updated', (row) => {
    if (!row.cancelAt) throw conflict('no_cancellation_requested', `Domain '${id}' has no cancellation to undo.`);
    return { cancelAt: null };
  });

export async function changeDomainCustomer(deps: DomainDeps, partnerId: string, id: string, customerId: string) {
  await findCustomer(deps.db, partnerId, customerId);
  return update(deps, partnerId, id, 'change_customer', 'domain.updated', () => ({ customerId }));
}

/**
 * The daily job: re-checks the DNS of every live domain. A failing certified domain becomes degraded; a
 * degraded one that passes again is certified again; one degraded for the configured days is decertified and
 * its active mailboxes suspended. Due cancellations take effect.
 */
/**
 * What the DNS check would have found, simulated for the sandbox's test helpers: every expected record present
 * (`ok`), or every one missing (the domain's records were taken down).
 */
function simulatedCheck(config: AppConfig, row: Row, now: Date, ok: boolean): DomainCheckView {
  const detail = ok ? 'Simulated in test mode: no DNS lookup was made.' : 'Simulated in test mode: the record is missing (no DNS lookup was made).';
  const mx = config.inboundMxHosts;
  const txt = [`pec-verify=${row.verificationToken}`];
  return {
    checked_at: now.toISOString(),
    ok,
    records: [
      { type: 'MX', name: row.name, expected: mx, found: ok ? mx : [], status: ok ? 'ok' : 'missing', detail },
      { type: 'TXT', name: `${VERIFY_PREFIX}.${row.name}`, expected: txt, found: ok ? txt : [], status: ok ? 'ok' : 'missing', detail },
    ],
  };
}

/**
 * Test mode: certifies a pending (or decertified) domain of the sandbox as a passing DNS check would, without DNS:
 * the same transition, `domain.certified` event and certification fee (charged to the free test credit). The
 * caller makes sure the partner is a test twin; live domains are certified by their DNS only.
 */
export async function verifyTestDomain(deps: DomainDeps & { db: import('@pec-partner/db').Db }, partnerId: string, id: string, requestId: string | null): Promise<DomainView> {
  const { db, clock, config } = deps;
  const before = await findRow(db, partnerId, id);
  assertTransition(transitions, 'domain', id, before.status, 'verify');
  const check = simulatedCheck(config, before, clock.now(), true);
  await db.update(domains).set({ lastCheck: check, lastCheckedAt: new Date(check.checked_at) }).where(eq(domains.id, id));
  return certify(deps, partnerId, id, before, requestId);
}

/**
 * Test mode: the daily DNS check fails for a certified domain of the sandbox, as if its records were taken down.
 * `degrade`: certified → degraded (`domain.degraded`). `decertify`: on to decertified at once, as the configured
 * days of failing checks would (`domain.degraded` first when it was certified, then `domain.decertified`), and
 * its active mailboxes are suspended. Test domains are never re-checked by the daily job (they are not in DNS).
 */
const testCheckTransitions: Transitions<DomainStatus, 'degrade' | 'decertify'> = {
  degrade: ['certified'],
  decertify: ['certified', 'degraded'],
};

export async function failTestDomainCheck(deps: DomainDeps, partnerId: string, id: string, outcome: 'degrade' | 'decertify'): Promise<DomainView> {
  const { clock, config } = deps;
  return deps.db.transaction(async (tx) => {
    let row = await findRow(tx, partnerId, id, true);
    assertTransition(testCheckTransitions, 'domain', id, row.status, outcome);
    const now = clock.now();
    const check = simulatedCheck(config, row, now, false);
    let view: DomainView | null = null;
    if (row.status === 'certified') {
      const [degraded] = await tx.update(domains)
        .set({ lastCheck: check, lastCheckedAt: now, status: 'degraded', degradedAt: now, updatedAt: now })
        .where(eq(domains.id, id)).returning();
      view = await recordChange(tx, clock, config, 'domain.degraded', row, degraded!);
      row = degraded!;
    }
    if (outcome === 'decertify') {
      const [decertified] = await tx.update(domains)
        .set({ lastCheck: check, lastCheckedAt: now, status: 'decertified', decertifiedAt: now, updatedAt: now })
        .where(eq(domains.id, id)).returning();
      view = await recordChange(tx, clock, config, 'domain.decertified', row, decertified!);
      await suspendMailboxesOfDomain(tx, clock, id, now);
    }
    return view!;
  });
}

export async function runDomainMaintenance(deps: Omit<DomainDeps, 'db'> & { db: import('@pec-partner/db').Db }, now: Date, scope: TaskScope = {}): Promise<void> {
  const { db, clock, config } = deps;
  const due = await db.select().from(domains).where(and(inArray(domains.status, ['certified', 'degraded']), lte(domains.cancelAt, now), inTaskScope(domains.partnerId, scope)));
  for (const row of due) {
    await db.transaction(async (tx) => {
      const [locked] = await tx.select().from(domains).where(eq(domains.id, row.id)).for('update', { skipLocked: true });
      if (!locked || !locked.cancelAt || locked.cancelAt > now || !['certified', 'degraded'].includes(locked.status)) return;
      const [updated] = await tx.update(domains).set({ status: 'cancelled', cancelledAt: now, updatedAt: now }).where(eq(domains.id, row.id)).returning();
      await recordChange(tx, clock, config, 'domain.cancelled', locked, updated!);
    });
  }

  // Live domains only: a test domain was verified by a call, not by DNS, and no real DNS is asked about it.
  const live = await db.select().from(domains).where(and(inArray(domains.status, ['certified', 'degraded']), eq(domains.livemode, true), inTaskScope(domains.partnerId, scope)));
  for (const row of live) {
    const check = await runCheck(config, row, clock.now());
    await db.transaction(async (tx) => {
      const [locked] = await tx.select().from(domains).where(eq(domains.id, row.id)).for('update', { skipLocked: true });
      if (!locked || !['certified', 'degraded'].includes(locked.status)) return;
      const changes: Partial<Row> = { lastCheck: check, lastCheckedAt: now };
      // Only a change of status is an event: a passing check that changes nothing else is not news.
      let event: DomainEventType | null = null;
      if (check.ok) {
        if (locked.status === 'degraded') {
          Object.assign(changes, { status: 'certified', degradedAt: null, updatedAt: now });
          event = 'domain.recertified';
        }
      } else if (locked.status === 'certified') {
        Object.assign(changes, { status: 'degraded', degradedAt: now, updatedAt: now });
        event = 'domain.degraded';
      } else if (locked.degradedAt && now.getTime() - locked.degradedAt.getTime() >= config.domainDecertifyAfterDays * DAY_MS) {
        Object.assign(changes, { status: 'decertified', decertifiedAt: now, updatedAt: now });
        event = 'domain.decertified';
      }
      const [updated] = await tx.update(domains).set(changes).where(eq(domains.id, row.id)).returning();
      if (event) await recordChange(tx, clock, config, event, locked, updated!);
      if (event === 'domain.decertified') await suspendMailboxesOfDomain(tx, clock, row.id, now);
    });
  }
}
