/**
 * Tenant isolation over every operation of the committed OpenAPI document: one partner addresses each operation
 * with another partner's ids (in the path, in query filters and cursors, in body references). Each answer must be
 * exactly what a missing id gets (404 in the path), and nothing of the other partner may change.
 */
import t from 'tap';
import { harness, json } from './helpers/harness.ts';
import { headersFor, operations, send, urlFor, type Operation, type Sent } from './helpers/openapi-walk.ts';
import { buildWorld, idFor } from './helpers/world.ts';

t.test('another partner\'s ids: every operation answers as for a missing id, and changes nothing', async (t) => {
  const h = await harness(t);
  const victim = await buildWorld(h, 'Victim');
  const intruder = await buildWorld(h, 'Intruder');
  const snapshot = async () => {
    const urls = [
      `/v1/customers/${victim.ids.customer}`, `/v1/customers/${victim.ids.customer}/branding`, `/v1/domains/${victim.ids.domain}`,
      `/v1/mailboxes/${victim.ids.mailbox}`, `/v1/mailboxes/${victim.ids.mailbox}/addons`, `/v1/mailboxes/${victim.ids.mailbox}/delegations`,
      `/v1/supervisors/${victim.ids.supervisor}`, `/v1/supervisors/${victim.ids.supervisor}/mailboxes`, `/v1/webhook-endpoints/${victim.ids.endpoint}`,
      `/v1/mailboxes/${victim.ids.mailbox}/newsletter/contacts`, `/v1/mailboxes/${victim.ids.mailbox}/newsletter/lists/${victim.ids.list}/members`,
      `/v1/mailboxes/${victim.ids.mailbox}/newsletter/campaigns/${victim.ids.campaign}`, '/v1/credit', '/v1/api-keys',
    ];
    const out: Record<string, unknown> = {};
    for (const url of urls) out[url] = json(await h.app.inject({ method: 'GET', url, headers: victim.partner.headers }));
    out.messages = json(await h.app.inject({ method: 'GET', url: `/v1/mailboxes/${victim.ids.mailbox}/messages?folder=sent`, headers: { authorization: victim.holderAuth } }));
    return out;
  };
  const before = await snapshot();
  const failures: string[] = [];
  let compared = 0;

  // A missing id of the same kind: what the intruder must not be able to tell apart from the victim's.
  // Same prefix and creation time (the ULID's first 10 characters), so that a cursor sorts where the real one does.
  const missing = (id: string) => `${id.slice(0, id.indexOf('_') + 11)}${'z'.repeat(16)}`;
  const compare = async (operation: Operation, label: string, request: (id: (victimId: string) => string) => Promise<Sent>, expect404: boolean) => {
    const used: [string, string][] = [];
    const foreign = await request((id) => id);
    const absent = await request((id) => {
      used.push([missing(id), id]);
      return missing(id);
    });
    compared++;
    const where = `${operation.method} ${operation.path} [${label}]`;
    if (expect404 && foreign.status !== 404) failures.push(`${where}: ${foreign.status} ${foreign.body.slice(0, 160)}`);
    // Indistinguishable: the same status and the same body, once the id the client sent and the request id are masked.
    const masked = (sent: Sent, swap: boolean) => {
      let body = sent.body.replace(/req_[0-9a-z]{26}/g, 'req_…');
      for (const [absentId, victimId] of used) body = swap ? body.replaceAll(absentId, victimId) : body;
      return `${sent.status} ${body}`;
    };
    if (masked(foreign, false) !== masked(absent, true)) {
      failures.push(`${where}: foreign id → ${masked(foreign, false).slice(0, 200)} | missing id → ${masked(absent, true).slice(0, 200)}`);
    }
  };

  for (const operation of operations) {
    // Operators act for the provider across partners by design; public routes belong to nobody.
    if (operation.caller === 'public' || operation.caller === 'operator') continue;
    const headers = { ...headersFor(intruder, operation), ...(operation.body?.contentType === 'application/json' ? { 'content-type': 'application/json' } : {}) };
    const payload = operation.body?.contentType === 'application/json' ? '{}' : operation.body ? '' : undefined;
    // Path: each id parameter in turn is the victim's, the others the intruder's own.
    for (const param of operation.pathParams.filter((name) => name !== 'slug' && name !== 'token')) {
      await compare(operation, `path ${param}`, (id) =>
        send(h, operation, urlFor(intruder, operation, { [param]: encodeURIComponent(id(idFor(victim, operation.path, param))) }), headers, payload), true);
    }
    // Query filters and cursors that take ids.
    for (const { name } of operation.query) {
      const victimId = { customer: victim.ids.customer, mailbox: victim.ids.mailbox, object_id: victim.ids.mailbox, domain: victim.ids.domain,
        list: victim.ids.list, item_id: victim.ids.mailbox, starting_after: victim.ids.customer, message_id: victim.ids.message }[name];
      if (!victimId) continue;
      await compare(operation, `query ${name}`, (id) => send(h, operation, urlFor(intruder, operation, {}, `${name}=${encodeURIComponent(id(victimId))}`), headers), false);
    }
  }

  // Body references to the victim's objects, each in an otherwise valid request of the intruder's.
  const bodyReferences: [string, string, (id: (v: string) => string) => object, boolean][] = [
    ['POST', '/v1/domains', (id) => ({ name: 'intrusion.it', customer: id(victim.ids.customer!) }), false],
    ['PATCH', `/v1/domains/${intruder.ids.domain}`, (id) => ({ customer: id(victim.ids.customer!) }), false],
    ['POST', '/v1/mailboxes', (id) => ({ local_part: 'intrusion', domain: 'pec.example.it', customer: id(victim.ids.customer!), plan: 'standard' }), false],
    ['POST', '/v1/supervisors', (id) => ({ mailbox: id(victim.ids.mailbox!), name: 'Intrusion', email: 'intrusion@example.com' }), false],
    ['POST', `/v1/supervisors/${intruder.ids.supervisor}/mailboxes`, (id) => ({ mailbox: id(victim.ids.mailbox!) }), false],
    ['POST', `/v1/supervisors/${intruder.ids.supervisor}/bulk`, (id) => ({ action: 'renew', years: 1, mailboxes: [id(victim.ids.mailbox!)] }), false],
    ['POST', `/v1/mailboxes/${intruder.ids.mailbox}/newsletter/lists/${intruder.ids.list}/members`, (id) => ({ contacts: [id(victim.ids.contact!)] }), false],
    ['POST', `/v1/mailboxes/${intruder.ids.mailbox}/newsletter/campaigns`, (id) => ({ list: id(victim.ids.list!), subject: 'x', html: '<p>x</p>' }), false],
    ['POST', `/v1/events/${intruder.ids.event}/redeliver`, (id) => ({ endpoint: id(victim.ids.endpoint!) }), false],
  ];
  for (const [method, url, body, expect404] of bodyReferences) {
    const operation = { method, path: url } as Operation;
    await compare(operation, 'body reference', (id) =>
      send(h, operation, url, { ...intruder.partner.headers, 'content-type': 'application/json' }, JSON.stringify(body(id))), expect404);
  }

  t.ok(compared > 150, `${compared} foreign-id requests compared with missing-id ones`);
  t.same(failures, [], 'a foreign id is a missing id');
  t.same(await snapshot(), before, "nothing of the victim's changed");
});

