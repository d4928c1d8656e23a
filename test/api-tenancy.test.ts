/**
 * Tenant isolation over every operation of the committed OpenAPI document: one partner addresses each operation
 * with another partner's ids (in the path, in query filters and cursors, in body references). Each answer must be
 * exactly what a missing id gets (404 in the path), and nothing of the other partner may change.
 */
import t from 'tap';
import { harness, json } from './helpers/harness.ts';
import { crossWalk, headersFor, testModeOnly } from './helpers/openapi-walk.ts';
import { buildWorld } from './helpers/world.ts';

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
  // Test helpers and test clocks answer a live key 403 whatever the id; the intruder's sandbox key addresses them (its own world's
  // objects are not the victim's either). The sandbox test walks the two worlds of one partner.
  const { compared, failures } = await crossWalk(h, intruder, victim, {
    headersOf: (operation) => (testModeOnly(operation.path) ? intruder.partner.test.headers : headersFor(intruder, operation)),
  });

  t.ok(compared > 150, `${compared} foreign-id requests compared with missing-id ones`);
  t.same(failures, [], 'a foreign id is a missing id');
  t.same(await snapshot(), before, "nothing of the victim's changed");
});

