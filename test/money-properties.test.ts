import fc from 'fast-check';
import t from 'tap';
import { defaultPriceList } from '@pec-partner/api';
import { api } from './helpers/fixtures.ts';
import { DAYS, harness, type Harness } from './helpers/harness.ts';

/**
 * Money invariants over random histories. Each run is a fresh partner with one mailbox and a random sequence of
 * purchases, renewals, plan changes, cancellations and clock moves (across 29 February 2028 and 2032), driven
 * through the HTTP API. The test keeps its own model of what each ledger entry paid for (from the API's answers,
 * not from the ledger code) and checks after every step:
 * - for every item, refunded ≤ charged;
 * - a refund is at most what was paid for the part not yet used: each paid period pro rata by its own length,
 *   plus at most 1 cent of rounding per period (and, for add-ons, not less than that minus the same rounding);
 * - a mailbox never activated is refunded exactly what was paid for it;
 * - the balance is the sum of the ledger and never negative.
 * A failure prints fast-check's seed and the shrunk sequence; FC_SEED=<seed> replays it.
 */

type Plan = 'standard' | 'pro' | 'premium';
const PLANS: Plan[] = ['standard', 'pro', 'premium'];
const ADDON_KINDS = ['extra_inbox_gb', 'extra_archive_gb', 'delegation_seat', 'supervisor', 'branding', 'newsletter'] as const;

type Action =
  | { type: 'buy'; kind: (typeof ADDON_KINDS)[number]; quantity: number; when: 'now' | 'renewal' }
  | { type: 'renew'; years: number }
  | { type: 'change_plan'; plan: Plan; when: 'now' | 'renewal' }
  | { type: 'advance'; days: number }
  | { type: 'cancel_addon'; pick: number; when: 'now' | 'renewal' }
  | { type: 'cancel_mailbox' };

const actionArb: fc.Arbitrary<Action> = fc.oneof(
  { arbitrary: fc.record({ type: fc.constant('buy' as const), kind: fc.constantFrom(...ADDON_KINDS), quantity: fc.integer({ min: 1, max: 4 }), when: fc.constantFrom('now' as const, 'renewal' as const) }), weight: 4 },
  { arbitrary: fc.record({ type: fc.constant('renew' as const), years: fc.integer({ min: 1, max: 3 }) }), weight: 3 },
  { arbitrary: fc.record({ type: fc.constant('change_plan' as const), plan: fc.constantFrom(...PLANS), when: fc.constantFrom('now' as const, 'renewal' as const) }), weight: 2 },
  { arbitrary: fc.record({ type: fc.constant('advance' as const), days: fc.oneof(fc.integer({ min: 1, max: 60 }), fc.integer({ min: 100, max: 800 })) }), weight: 3 },
  { arbitrary: fc.record({ type: fc.constant('cancel_addon' as const), pick: fc.nat({ max: 9 }), when: fc.constantFrom('now' as const, 'renewal' as const) }), weight: 3 },
  { arbitrary: fc.constant({ type: 'cancel_mailbox' as const }), weight: 1 },
);

const scenarioArb = fc.record({
  /** Days after 2026-12-01: from then to April 2028, so terms and renewals straddle 29 February 2028 (and 2032). */
  startDay: fc.integer({ min: 0, max: 500 }),
  startMinute: fc.integer({ min: 0, max: 24 * 60 - 1 }),
  plan: fc.constantFrom(...PLANS),
  termYears: fc.integer({ min: 1, max: 3 }),
  renewalMode: fc.constantFrom('auto', 'manual'),
  /** Mostly identified (active at once); sometimes never activated, to cancel for a full refund. */
  identified: fc.integer({ min: 0, max: 4 }).map((n) => n > 0),
});

interface Period { from: number; to: number; years: number }
interface Piece { from: number; to: number; amount: number }
interface ItemModel { charged: number; refunded: number; pieces: Piece[] }
interface LedgerEntry { id: string; type: string; amount: number; balance_after: number; item: { type: string; id: string } | null; created_at: string }

const addYears = (ms: number, years: number) => {
  const date = new Date(ms);
  date.setUTCFullYear(date.getUTCFullYear() + years);
  return date.getTime();
};

/** The part of a span after `at`, as a fraction of the span. */
const unusedShare = (span: { from: number; to: number }, at: number) => (span.to <= span.from ? 0 : Math.max(0, span.to - Math.max(span.from, at)) / (span.to - span.from));

/** Throws, so fast-check sees the failure and shrinks the history. */
function check(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

type Scenario = { startDay: number; startMinute: number; plan: Plan; termYears: number; renewalMode: string; identified: boolean };

let histories = 0;

/** One run: a fresh partner and mailbox, the actions in order, the invariants after each. */
async function runHistory(h: Harness, scenario: Scenario, actions: Action[]): Promise<void> {
  h.clock.set(new Date(Date.parse('2026-12-01T00:00:00Z') + scenario.startDay * DAYS + scenario.startMinute * 60_000));
  const a = api(h, await h.partner());
  await a.topUp(10_000_000);
  const customer = await a.customer(scenario.identified);
  const created = await a.post('/v1/mailboxes', { local_part: `conto-${++histories}`, domain: 'pec.example.it', customer, plan: scenario.plan, term_years: scenario.termYears, renewal_mode: scenario.renewalMode });
  check(created.status === 201, `create: ${JSON.stringify(created.body)}`);
  const mailboxId: string = created.body.id;

  const periods: Period[] = [];
  let expiresAt: number | null = null;
  const items = new Map<string, ItemModel>();
  const item = (id: string) => items.get(id) ?? items.set(id, { charged: 0, refunded: 0, pieces: [] }).get(id)!;
  const addons: string[] = [];
  const seen = new Set<string>();

  const readMailbox = async () => (await a.get(`/v1/mailboxes/${mailboxId}`)).body as { status: string; activated_at: string | null; expires_at: string | null; term_years: number };
  const syncTerm = async (renewalYears: number | null, at: number) => {
    const mailbox = await readMailbox();
    const newEnd = mailbox.expires_at ? Date.parse(mailbox.expires_at) : null;
    if (periods.length === 0 && mailbox.activated_at && newEnd !== null) {
      periods.push({ from: Date.parse(mailbox.activated_at), to: newEnd, years: mailbox.term_years });
    } else if (newEnd !== null && expiresAt !== null && newEnd !== expiresAt) {
      const from = Math.max(expiresAt, at);
      const years = renewalYears ?? mailbox.term_years;
      check(addYears(from, years) === newEnd, `renewal from ${new Date(from).toISOString()} for ${years} years ends ${mailbox.expires_at}`);
      periods.push({ from, to: newEnd, years });
    }
    const renewed = newEnd !== expiresAt;
    expiresAt = newEnd;
    return renewed;
  };
  await syncTerm(null, h.clock.now().getTime());

  /** What the item paid for the time after `at`: each piece pro rata by its own length. */
  const unusedPaid = (model: ItemModel, at: number) => model.pieces.reduce((sum, piece) => sum + piece.amount * unusedShare(piece, at), 0);
  const piecesLive = (model: ItemModel, at: number) => model.pieces.filter((piece) => unusedShare(piece, at) > 0).length;
  /** Years of the term left after `at`, each period by its own length: what a yearly price is multiplied by. */
  const yearsLeft = (at: number) => periods.reduce((sum, p) => sum + p.years * unusedShare(p, at), 0);
  /** Checks what a step charged (positive) or refunded (negative) for an item against the expected amount. */
  const checkAmount = (step: string, entries: LedgerEntry[], itemId: string, expected: number, rounding: number) => {
    const paid = entries.filter((e) => e.item?.id === itemId).reduce((sum, e) => sum - e.amount, 0);
    check(Math.abs(paid - expected) <= rounding, `${step}: ${paid} paid for ${itemId}, expected ${expected.toFixed(2)} (periods ${JSON.stringify(periods.map((p) => [new Date(p.from).toISOString(), new Date(p.to).toISOString(), p.years]))})`);
  };
  /** A payment for "the rest of the term" spreads over the remaining periods by the years of each it covers. */
  const spread = (model: ItemModel, amount: number, at: number) => {
    const weights = periods.map((p) => ({ p, w: p.years * unusedShare(p, at) })).filter((x) => x.w > 0);
    const total = weights.reduce((sum, x) => sum + x.w, 0);
    check(total > 0 || amount === 0, `a payment of ${amount} at ${new Date(at).toISOString()}, after the term`);
    for (const { p, w } of weights) model.pieces.push({ from: Math.max(p.from, at), to: p.to, amount: (amount * w) / total });
  };

  const allEntries: LedgerEntry[] = [];
  /** The partner's ledger entries written since the last call, oldest first (and kept for the balance check). */
  const newEntries = async (): Promise<LedgerEntry[]> => {
    const fresh: LedgerEntry[] = [];
    let cursor = '';
    for (;;) {
      const page = (await a.get(`/v1/credit/ledger?limit=100${cursor}`)).body as { data: LedgerEntry[]; has_more: boolean };
      const unseen = page.data.filter((entry) => !seen.has(entry.id));
      fresh.push(...unseen);
      if (!page.has_more || unseen.length < page.data.length) break;
      cursor = `&starting_after=${page.data.at(-1)!.id}`;
    }
    for (const entry of fresh) seen.add(entry.id);
    fresh.reverse();
    allEntries.push(...fresh);
    return fresh;
  };

  /**
   * Books a step's ledger entries into the model and checks them. `term`: charges pay for the renewed period (or
   * the first term); `rest`: payments and refunds are for the rest of the term from `at`; `full_refund`: a mailbox
   * never activated.
   */
  async function bookEntries(entries: LedgerEntry[], step: string, at: number, renewed: Period | null, what: 'term' | 'rest' | 'full_refund') {
    for (const entry of entries) {
      if (entry.type === 'top_up') continue;
      check(entry.item !== null, `${step}: ${entry.type} without an item`);
      const model = item(entry.item.id);
      if (entry.type === 'charge') {
        model.charged += -entry.amount;
        if (what === 'term') {
          const period = renewed ?? periods[periods.length - 1];
          // A mailbox waiting for identification has paid for a term that has not started.
          check(period !== undefined || step === 'create', `${step}: a term charge with no term`);
          if (period) model.pieces.push({ from: period.from, to: period.to, amount: -entry.amount });
        } else if (what === 'rest') {
          spread(model, -entry.amount, at);
        }
        continue;
      }
      check(entry.type === 'refund', `${step}: unexpected ${entry.type}`);
      const refunded = entry.amount;
      if (what === 'full_refund') {
        check(refunded === model.charged - model.refunded, `${step}: a mailbox never activated is refunded ${refunded}, but ${model.charged - model.refunded} was paid`);
      } else {
        const unused = unusedPaid(model, at);
        const rounding = Math.max(1, piecesLive(model, at));
        check(refunded <= unused + rounding, `${step}: refund ${refunded} of ${entry.item.type} ${entry.item.id} exceeds the ${unused.toFixed(2)} paid for the unused part (charged ${model.charged}; paid pieces ${describePieces(model)})`);
        if (entry.item.type === 'mailbox_addon') {
          check(refunded >= Math.min(unused, model.charged - model.refunded) - rounding, `${step}: refund ${refunded} of add-on ${entry.item.id} is less than the ${unused.toFixed(2)} paid for the unused part`);
        }
        spread(model, -refunded, at);
      }
      model.refunded += refunded;
      check(model.refunded <= model.charged, `${step}: ${entry.item.type} ${entry.item.id} refunded ${model.refunded} in all, more than the ${model.charged} charged`);
    }
    const sum = allEntries.reduce((total, e) => total + e.amount, 0);
    const balance = await a.balance();
    check(balance === sum, `${step}: balance ${balance} but the ledger sums to ${sum}`);
    check(balance >= 0 && allEntries.every((e) => e.balance_after >= 0), `${step}: negative balance`);
  }

  await bookEntries(await newEntries(), 'create', h.clock.now().getTime(), null, 'term');

  for (const [index, action] of actions.entries()) {
    const step = `step ${index + 1} ${JSON.stringify(action)}`;
    const at = h.clock.now().getTime();
    let response: { status: number; body: any } | null = null;
    switch (action.type) {
      case 'buy': {
        response = await a.post(`/v1/mailboxes/${mailboxId}/addons`, { kind: action.kind, quantity: action.quantity, when: action.when });
        if (response.status === 201) addons.push(response.body.id);
        const entries = await newEntries();
        if (response.status === 201) {
          // Bought now: the yearly price for the rest of the term, each period by its own length; for the renewal: nothing yet.
          const expected = action.when === 'now' ? defaultPriceList.addons[action.kind].unit_amount * action.quantity * yearsLeft(at) : 0;
          checkAmount(step, entries, response.body.id, expected, 1);
        }
        await bookEntries(entries, step, at, null, 'rest');
        break;
      }
      case 'renew': {
        const before = expiresAt;
        response = await a.post(`/v1/mailboxes/${mailboxId}/renew`, { years: action.years });
        await syncTerm(action.years, at);
        const renewed = response.status === 200 && before !== expiresAt ? periods[periods.length - 1]! : null;
        await bookEntries(await newEntries(), step, at, renewed, 'term');
        break;
      }
      case 'change_plan': {
        const mailboxModel = item(mailboxId);
        const unused = unusedPaid(mailboxModel, at);
        const rounding = 1 + piecesLive(mailboxModel, at);
        response = await a.post(`/v1/mailboxes/${mailboxId}/change-plan`, { plan: action.plan, when: action.when });
        const entries = await newEntries();
        if (response.status === 200 && action.when === 'now') {
          // The new plan for the rest of the term, less what was paid for it; a refund at most what is left paid.
          const difference = defaultPriceList.mailbox_plans[action.plan].unit_amount * yearsLeft(at) - unused;
          checkAmount(step, entries, mailboxId, Math.max(difference, -(mailboxModel.charged - mailboxModel.refunded)), rounding);
        }
        await bookEntries(entries, step, at, null, 'rest');
        break;
      }
      case 'advance': {
        h.clock.advance(action.days * DAYS);
        await h.app.jobs.tick();
        const tickedAt = h.clock.now().getTime();
        const renewed = await syncTerm(null, tickedAt);
        await bookEntries(await newEntries(), step, tickedAt, renewed ? periods[periods.length - 1]! : null, 'term');
        break;
      }
      case 'cancel_addon': {
        const addon = addons[action.pick % Math.max(1, addons.length)];
        if (!addon) continue;
        response = await a.post(`/v1/mailboxes/${mailboxId}/addons/${addon}/cancel`, { when: action.when });
        await bookEntries(await newEntries(), step, at, null, 'rest');
        break;
      }
      case 'cancel_mailbox': {
        const status = (await readMailbox()).status;
        response = await a.post(`/v1/mailboxes/${mailboxId}/cancel`, { when: 'now' });
        const entries = await newEntries();
        if (status !== 'pending_identification') check(entries.every((e) => e.type !== 'refund'), `${step}: cancelling a ${status} mailbox refunded something`);
        await bookEntries(entries, step, at, null, 'full_refund');
        break;
      }
    }
    check(response === null || response.status < 500, `${step}: ${response?.status} ${JSON.stringify(response?.body)}`);
  }
  // Later runs move the clock freely: this mailbox must not renew in their daily jobs.
  await a.post(`/v1/mailboxes/${mailboxId}/cancel`, { when: 'now' });
}

function describePieces(model: ItemModel): string {
  return model.pieces.map((p) => `[${new Date(p.from).toISOString().slice(0, 10)}..${new Date(p.to).toISOString().slice(0, 10)}) ${p.amount.toFixed(2)}`).join(', ');
}

t.test('the issue: an add-on renewed three times over 29 February 2028 and cancelled now refunds exactly what was paid', async (t) => {
  const h = await harness(t);
  const a = api(h, await h.partner());
  await a.topUp(100_000);
  const customer = await a.customer();
  const mailbox = (await a.post('/v1/mailboxes', { local_part: 'bisestile', domain: 'pec.example.it', customer, plan: 'standard', renewal_mode: 'manual' })).body;
  t.equal(mailbox.expires_at, '2027-11-22T09:00:00.000Z');
  const addon = (await a.post(`/v1/mailboxes/${mailbox.id}/addons`, { kind: 'extra_inbox_gb' })).body;
  for (let i = 0; i < 3; i++) t.equal((await a.post(`/v1/mailboxes/${mailbox.id}/renew`, { years: 1 })).status, 200);
  t.equal((await a.get(`/v1/mailboxes/${mailbox.id}`)).body.expires_at, '2030-11-22T09:00:00.000Z', 'the term to 2028-11-22 has 366 days');
  t.match((await a.post(`/v1/mailboxes/${mailbox.id}/addons/${addon.id}/cancel`, { when: 'now' })).body, { status: 'cancelled' });
  const entries = await a.ledger(`&item_id=${addon.id}`);
  t.same(entries.map((e) => [e.type, e.amount]), [['refund', 1200], ['charge', -300], ['charge', -300], ['charge', -300], ['charge', -300]], 'four years paid, none used: 1200 back, not 1201');
});

t.test('property: no refund exceeds what was paid for the unused part, over random histories', async (t) => {
  const h = await harness(t);
  const seed = process.env.FC_SEED ? Number(process.env.FC_SEED) : undefined;
  let runs = 0;
  await fc.assert(
    fc.asyncProperty(scenarioArb, fc.array(actionArb, { minLength: 1, maxLength: 12 }), async (scenario, actions) => {
      runs++;
      await runHistory(h, scenario, actions);
    }),
    { numRuns: Number(process.env.FC_RUNS ?? 40), ...(seed === undefined ? {} : { seed }), includeErrorInReport: true, interruptAfterTimeLimit: 240_000, markInterruptAsFailure: false },
  );
  t.ok(runs >= 1, `${runs} histories (and their shrinks) checked`);
});
