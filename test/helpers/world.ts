import { readFile } from 'node:fs/promises';
import { defaultPriceList } from '@pec-partner/api';
import type { Harness, TestPartner } from './harness.ts';
import { json, TEST_BANK } from './harness.ts';
import { api, CF_MARIO } from './fixtures.ts';

/**
 * One partner's whole world, made through the public API: at least one object of every kind that a path
 * parameter can name. The API walks (fuzzing, tenant isolation) address every operation with these ids.
 */
export interface World {
  partner: TestPartner;
  /** Id per path-parameter kind: `customer`, `mailbox`, `addon`, … (see `idFor`). */
  ids: Record<string, string>;
  /** The mailbox holder's HTTP Basic header. */
  holderAuth: string;
  /** An operator key of the provider's staff (scope `full`), for the operator routes. */
  operatorHeaders: { authorization: string };
  mailboxAddress: string;
  brandingSlug: string;
}

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

/**
 * With `sandboxOf`, the world is built in that partner's sandbox (test mode, its `sk_test_` key): its credit comes
 * from the test helper, it has no invoices (test credit is never invoiced: `ids.invoice` names none), and its
 * holder signs in with the mailbox id, as test mailboxes do.
 */
export async function buildWorld(h: Harness, name: string, { sandboxOf }: { sandboxOf?: TestPartner } = {}): Promise<World> {
  const partner: TestPartner = sandboxOf
    ? { ...sandboxOf, id: sandboxOf.test.id, secret: sandboxOf.test.secret, apiKeyId: '', headers: sandboxOf.test.headers }
    : await h.partner(name);
  const client = api(h, partner);
  const must = async (what: string, response: Promise<{ status: number; body: any }>, status = [200, 201]) => {
    const answer = await response;
    if (!status.includes(answer.status)) throw new Error(`${name}: ${what}: ${answer.status} ${JSON.stringify(answer.body)}`);
    return answer.body;
  };
  const tag = name.toLowerCase().replace(/[^a-z0-9]+/g, '');
  if (sandboxOf) {
    const topUp = await must('test top-up', client.post('/v1/credit/top-ups', { amount: 500_000, currency: 'EUR' }));
    await must('test credit', client.post(`/v1/test_helpers/top-ups/${topUp.id}/credit`));
  } else {
    await client.topUp(500_000);
  }
  const secondKey = await must('api key', client.post('/v1/api-keys', { name: 'walk' }));
  const customer = await client.customer(true);
  await must('customer email', client.patch(`/v1/customers/${customer}`, { email: `${tag}@example.com` }));
  const domain = await must('domain', client.post('/v1/domains', { name: `studio-${tag}.it`, customer }));
  const password = 'Walk-password-2026';
  const mailbox = await must('mailbox', client.post('/v1/mailboxes', { local_part: `walk-${tag}`, domain: 'pec.example.it', customer, plan: 'premium', password }));
  const other = await must('second mailbox', client.post('/v1/mailboxes', { local_part: `walk2-${tag}`, domain: 'pec.example.it', customer, plan: 'standard', password }));
  const addon = await must('space add-on', client.post(`/v1/mailboxes/${mailbox.id}/addons`, { kind: 'extra_inbox_gb', quantity: 1 }));
  for (const kind of ['delegation_seat', 'supervisor', 'newsletter', 'branding']) {
    await must(`${kind} add-on`, client.post(`/v1/mailboxes/${mailbox.id}/addons`, { kind }));
  }
  const delegation = await must('delegation', client.post(`/v1/mailboxes/${mailbox.id}/delegations`, { email: `delegate-${tag}@example.com`, mode: 'read_only' }));
  const supervisor = await must('supervisor', client.post('/v1/supervisors', { mailbox: mailbox.id, name: 'Console', email: `console-${tag}@example.com` }));
  await must('supervised mailbox', client.post(`/v1/supervisors/${supervisor.id}/mailboxes`, { mailbox: other.id }));
  const brandingSlug = `brand-${tag}`;
  await must('branding', h.app.inject({
    method: 'PUT', url: `/v1/customers/${customer}/branding`, headers: partner.headers,
    payload: { slug: brandingSlug, colors: { primary: '#123456', secondary: '#654321', background: '#ffffff', text: '#111111' }, texts: { company_name: `Studio ${name}` } },
  }).then((r) => ({ status: r.statusCode, body: json(r) })));
  const contact = await must('contact', client.post(`/v1/mailboxes/${mailbox.id}/newsletter/contacts`, { email: `reader-${tag}@example.com`, consent: true }));
  const list = await must('list', client.post(`/v1/mailboxes/${mailbox.id}/newsletter/lists`, { name: 'Clienti' }));
  await must('list member', client.post(`/v1/mailboxes/${mailbox.id}/newsletter/lists/${list.id}/members`, { contacts: [contact.id] }));
  const campaign = await must('campaign', client.post(`/v1/mailboxes/${mailbox.id}/newsletter/campaigns`, { list: list.id, subject: 'Novità', html: '<p>Ciao</p>' }));
  const endpoint = await must('webhook endpoint', client.post('/v1/webhook-endpoints', { url: `https://billing-${tag}.example.com/hook` }));
  const holderAuth = basic(sandboxOf ? mailbox.id : mailbox.address, password);
  const sent = await h.app.inject({
    method: 'POST', url: `/v1/mailboxes/${mailbox.id}/messages`, headers: { authorization: holderAuth },
    payload: { to: [other.address], subject: 'Walk', text: 'Buongiorno' },
  });
  if (sent.statusCode !== 201) throw new Error(`${name}: message: ${sent.statusCode} ${sent.body}`);
  await h.app.pec.drain();
  const messages = json(await h.app.inject({ method: 'GET', url: `/v1/mailboxes/${mailbox.id}/messages?folder=sent`, headers: { authorization: holderAuth } }));
  const message = messages.data[0]?.id;
  if (!message) throw new Error(`${name}: no sent message`);
  const events = await must('events', client.get('/v1/events?limit=1'));
  // The credit above was a pending top-up confirmed by an operator, which issued its invoice.
  const invoices = await must('invoices', client.get('/v1/invoices?limit=1'));
  if (!invoices.data[0] && !sandboxOf) throw new Error(`${name}: the confirmed top-up issued no invoice`);
  if (invoices.data[0] && sandboxOf) throw new Error(`${name}: a test top-up issued an invoice`);
  // A test clock lives in a sandbox only; a live world names one that exists nowhere (its routes refuse live keys).
  const testClock = sandboxOf ? (await must('test clock', client.post('/v1/test_clocks', { name: 'walk' }))).id : 'clk_01mdx00000zzzzzzzzzzzzzzzz';
  const pending = await must('pending top-up', client.post('/v1/credit/top-ups', { amount: 1_000, currency: 'EUR' }));
  const operator = await h.operator('full');
  const spareOperatorKey = await h.operator('read_only');
  // The operator's own objects: a price list, and imported bank statement lines (references that match nothing, so
  // they stay unmatched; a second world's import finds them already imported and reuses them).
  const operatorCall = async (what: string, method: 'GET' | 'POST', url: string, payload?: unknown, type = 'application/json') =>
    must(what, h.app.inject({ method, url, headers: { ...operator.headers, ...(payload === undefined ? {} : { 'content-type': type }) }, ...(payload === undefined ? {} : { payload: payload as string }) })
      .then((r) => ({ status: r.statusCode, body: json(r) })));
  const priceList = await operatorCall('price list', 'POST', '/v1/operator/price-lists', JSON.stringify({ name: `Walk ${name}`, prices: defaultPriceList, reason: 'API walk' }));
  let statement = await readFile(new URL('../fixtures/camt053/statement.xml', import.meta.url), 'utf8');
  for (const [key, value] of Object.entries({ ACCOUNT_IBAN: TEST_BANK.iban, REF_EXACT: 'NONE', REF_PARTIAL: 'NONE', REF_BATCH_COMPACT: 'NONE' })) statement = statement.replaceAll(`{{${key}}}`, value);
  await operatorCall('bank statement', 'POST', '/v1/operator/bank-statements', statement, 'application/xml');
  const [line] = (await operatorCall('statement lines', 'GET', '/v1/operator/bank-statement-lines?status=unmatched&limit=1')).data;
  return {
    partner,
    ids: {
      customer, domain: domain.id, mailbox: mailbox.id, otherMailbox: other.id, addon: addon.id, delegation: delegation.id,
      supervisor: supervisor.id, contact: contact.id, list: list.id, campaign: campaign.id, endpoint: endpoint.id,
      message, event: events.data[0].id, apiKey: secondKey.id, partner: partner.id, topUp: pending.id, operatorKey: spareOperatorKey.id,
      invoice: invoices.data[0]?.id ?? 'inv_01mdx00000zzzzzzzzzzzzzzzz', priceList: priceList.id, statementLine: line.id, testClock,
    },
    holderAuth,
    operatorHeaders: operator.headers,
    mailboxAddress: mailbox.address,
    brandingSlug,
  };
}

/**
 * The world's id for a path parameter, from the parameter's name and the collection it follows:
 * `/v1/customers/{id}` → the customer, `/v1/supervisors/{id}/mailboxes/{mailbox}` → the supervised mailbox, …
 */
export function idFor(world: World, path: string, param: string): string {
  const segments = path.split('/');
  const index = segments.indexOf(`{${param}}`);
  const collection = segments[index - 1];
  const byCollection: Record<string, string> = {
    'api-keys': 'apiKey', customers: 'customer', domains: 'domain', mailboxes: 'mailbox', addons: 'addon', delegations: 'delegation',
    supervisors: 'supervisor', supervisions: 'supervisor', contacts: 'contact', members: 'contact', lists: 'list', campaigns: 'campaign',
    messages: 'message', events: 'event', 'webhook-endpoints': 'endpoint', 'top-ups': 'topUp', partners: 'partner', invoices: 'invoice',
    'price-lists': 'priceList', 'bank-statement-lines': 'statementLine', test_clocks: 'testClock',
  };
  if (path.startsWith('/v1/supervisors/') && param === 'mailbox') return world.ids.otherMailbox!;
  if (path.startsWith('/v1/operator/api-keys/')) return world.ids.operatorKey!;
  if (param === 'slug') return world.brandingSlug;
  const kind = byCollection[collection ?? ''];
  if (!kind || !world.ids[kind]) throw new Error(`no world id for {${param}} in ${path}`);
  return world.ids[kind]!;
}

export { CF_MARIO };
