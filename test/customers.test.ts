import t from 'tap';
import { harness, json } from './helpers/harness.ts';

// Identifiers checked by hand with the official algorithms (see tax-codes.test.ts).
const CF_MARIO = 'RSSMRA85T10A562S';
const CF_LAURA = 'BNCLRA90E41F205Q';
const PIVA_A = '01234567897';
const PIVA_B = '12345678903';
const CF_ENTITY = '80123456784';

const italianAddress = { street: 'Via Roma 1', town: 'Milano', postcode: '20121', province: 'mi', country: 'IT' };

t.test('create and read each customer type, with normalisation and derived fields', async (t) => {
  const h = await harness(t);
  const p = await h.partner();
  const create = (payload: Record<string, unknown>) => h.app.inject({ method: 'POST', url: '/v1/customers', headers: p.headers, payload });

  const person = await create({
    type: 'private_person', first_name: 'Mario', last_name: 'Rossi', tax_code: ' rssmra85t10a562s ',
    email: 'Mario.Rossi@Example.IT', phone: '+39 02 1234567', address: italianAddress, metadata: { crm_id: '42' },
  });
  t.equal(person.statusCode, 201);
  const mario = json(person);
  t.equal(person.headers.location, `/v1/customers/${mario.id}`);
  t.match(mario.id, /^cus_[0-9a-z]{26}$/);
  t.same({ ...mario, id: null }, {
    id: null, object: 'customer', livemode: true, type: 'private_person', first_name: 'Mario', last_name: 'Rossi', business_name: null,
    tax_code: CF_MARIO, vat_number: null, address: { ...italianAddress, province: 'MI' }, email: 'mario.rossi@example.it',
    phone: '+39 02 1234567', e_invoicing: null, public_procurement: null, metadata: { crm_id: '42' },
    created_at: '2026-11-22T09:00:00.000Z', updated_at: '2026-11-22T09:00:00.000Z',
  });
  const read = await h.app.inject({ method: 'GET', url: `/v1/customers/${mario.id}`, headers: p.headers });
  t.same(json(read), mario);

  const trader = json(await create({ type: 'sole_trader', first_name: 'Laura', last_name: 'Bianchi', tax_code: CF_LAURA, vat_number: `IT${PIVA_A}` }));
  t.equal(trader.business_name, 'Laura Bianchi', 'a sole trader trades under their own name by default');
  t.equal(trader.vat_number, PIVA_A, 'the IT prefix is normalised away');

  const company = await create({
    type: 'company', business_name: 'Acme S.r.l.', vat_number: PIVA_B, e_invoicing: { sdi_code: 'm5uxcr1', pec: 'acme@pec.example.it' },
  });
  t.equal(company.statusCode, 201);
  t.match(json(company), { tax_code: PIVA_B, e_invoicing: { sdi_code: 'M5UXCR1', pec: 'acme@pec.example.it' } }, "a company's codice fiscale defaults to its partita IVA");

  const pa = await create({
    type: 'public_administration', business_name: 'Comune di Esempio', tax_code: CF_ENTITY,
    e_invoicing: { sdi_code: 'UF1234' }, public_procurement: { cig: 'Z1A2B3C4D5', oda: 'ODA-2026-17' },
  });
  t.equal(pa.statusCode, 201);
  t.match(json(pa), { public_procurement: { cig: 'Z1A2B3C4D5', oda: 'ODA-2026-17' } });

  t.equal((await create({ type: 'non_profit', business_name: 'Associazione Esempio', tax_code: CF_ENTITY })).statusCode, 201);
  t.equal((await create({ type: 'professional', first_name: 'Laura', last_name: 'Bianchi', tax_code: CF_LAURA, vat_number: PIVA_A, business_name: 'Studio Bianchi' })).statusCode, 201);
});

t.test('type rules and checksums are enforced, all errors reported at once', async (t) => {
  const h = await harness(t);
  const p = await h.partner();
  const errorsOf = async (payload: Record<string, unknown>) => {
    const response = await h.app.inject({ method: 'POST', url: '/v1/customers', headers: p.headers, payload });
    t.equal(response.statusCode, 400, JSON.stringify(payload));
    t.equal(response.headers['content-type'], 'application/problem+json; charset=utf-8');
    return Object.fromEntries(json(response).errors.map((e: { pointer: string; code: string }) => [e.pointer, e.code]));
  };

  t.same(await errorsOf({ type: 'private_person' }), { '/first_name': 'required', '/last_name': 'required', '/tax_code': 'required' });
  t.same(await errorsOf({ type: 'company', business_name: 'Acme' }), { '/vat_number': 'required' });
  t.same(await errorsOf({ type: 'sole_trader', first_name: 'A', last_name: 'B', tax_code: CF_MARIO }), { '/vat_number': 'required' });
  t.same(await errorsOf({ type: 'company', first_name: 'A', vat_number: PIVA_A }), { '/business_name': 'required', '/first_name': 'not_allowed' });
  t.same(await errorsOf({ type: 'private_person', first_name: 'Mario', last_name: 'Rossi', tax_code: 'RSSMRA85T10A562T' }), { '/tax_code': 'invalid_tax_code' });
  t.same(await errorsOf({ type: 'private_person', first_name: 'Mario', last_name: 'Rossi', tax_code: CF_ENTITY }), { '/tax_code': 'invalid_tax_code' });
  t.same(await errorsOf({ type: 'private_person', first_name: 'Mario', last_name: 'Rossi', tax_code: CF_MARIO, vat_number: PIVA_A }), { '/vat_number': 'not_allowed' });
  t.same(await errorsOf({ type: 'company', business_name: 'Acme', vat_number: '01234567890' }), { '/vat_number': 'invalid_vat_number' });
  t.same(await errorsOf({ type: 'non_profit', business_name: 'X', tax_code: CF_MARIO }), { '/tax_code': 'invalid_tax_code' });
  t.same(
    await errorsOf({ type: 'company', business_name: 'Acme', vat_number: PIVA_A, address: { ...italianAddress, postcode: '2012', province: null } }),
    { '/address/postcode': 'invalid_format', '/address/province': 'required' },
  );
  t.same(await errorsOf({ type: 'company', business_name: 'Acme', vat_number: PIVA_A, e_invoicing: { sdi_code: 'UF1234' } }), { '/e_invoicing/sdi_code': 'invalid_sdi_code' });
  t.same(await errorsOf({ type: 'public_administration', business_name: 'Comune', tax_code: CF_ENTITY, e_invoicing: { sdi_code: 'M5UXCR1' } }), { '/e_invoicing/sdi_code': 'invalid_sdi_code' });
  t.same(await errorsOf({ type: 'company', business_name: 'Acme', vat_number: PIVA_A, public_procurement: { cig: 'Z1A2B3C4D5' } }), { '/public_procurement': 'not_allowed' });

  const list = json(await h.app.inject({ method: 'GET', url: '/v1/customers', headers: p.headers }));
  t.equal(list.data.length, 0, 'no rejected customer was written');

  // A foreign address keeps its own postcode format.
  const foreign = await h.app.inject({
    method: 'POST', url: '/v1/customers', headers: p.headers,
    payload: { type: 'company', business_name: 'Acme GmbH', vat_number: PIVA_A, address: { street: 'Hauptstr. 1', town: 'Wien', postcode: 'A-1010', country: 'AT' } },
  });
  t.equal(foreign.statusCode, 201);
});

t.test('PATCH merges fields, clears with null, merges metadata, re-checks the rules', async (t) => {
  const h = await harness(t);
  const p = await h.partner();
  const created = json(await h.app.inject({
    method: 'POST', url: '/v1/customers', headers: p.headers,
    payload: { type: 'sole_trader', first_name: 'Laura', last_name: 'Bianchi', tax_code: CF_LAURA, vat_number: PIVA_A, email: 'l@example.it', metadata: { a: '1', b: '2' } },
  }));
  const patch = (payload: Record<string, unknown>, id = created.id) =>
    h.app.inject({ method: 'PATCH', url: `/v1/customers/${id}`, headers: p.headers, payload });

  h.clock.advance(60_000);
  const updated = await patch({ email: null, phone: '+39 333 1234567', metadata: { a: null, c: '3' } });
  t.equal(updated.statusCode, 200);
  t.match(json(updated), { email: null, phone: '+39 333 1234567', metadata: { b: '2', c: '3' }, first_name: 'Laura', updated_at: '2026-11-22T09:01:00.000Z', created_at: '2026-11-22T09:00:00.000Z' });
  t.notOk('a' in json(updated).metadata);

  const broken = await patch({ vat_number: null });
  t.equal(broken.statusCode, 400);
  t.match(json(broken).errors, [{ pointer: '/vat_number', code: 'required' }]);
  t.equal(json(await h.app.inject({ method: 'GET', url: `/v1/customers/${created.id}`, headers: p.headers })).vat_number, PIVA_A, 'a rejected patch changes nothing');

  // Becoming a private person drops the business name and requires dropping the VAT number.
  t.match(json(await patch({ type: 'private_person' })).errors, [{ pointer: '/vat_number', code: 'not_allowed' }]);
  const person = await patch({ type: 'private_person', vat_number: null });
  t.equal(person.statusCode, 200);
  t.match(json(person), { type: 'private_person', business_name: null, vat_number: null, first_name: 'Laura' });

  t.equal((await patch({ unknown_field: 1 })).statusCode, 400);
  t.equal((await patch({ email: 'x@example.it' }, 'cus_00000000000000000000000000')).statusCode, 404);
});

t.test('list: pagination, filters, free-text search, isolation between partners', async (t) => {
  const h = await harness(t);
  const p = await h.partner();
  const other = await h.partner('Other');
  const names = ['Alfa S.r.l.', 'Beta S.p.A.', 'Gamma 100% Bio', 'Delta S.r.l.', 'Epsilon S.n.c.'];
  const ids: string[] = [];
  for (const name of names) {
    h.clock.advance(1000);
    ids.push(json(await h.app.inject({ method: 'POST', url: '/v1/customers', headers: p.headers, payload: { type: 'company', business_name: name, vat_number: PIVA_A } })).id);
  }
  await h.app.inject({ method: 'POST', url: '/v1/customers', headers: p.headers, payload: { type: 'private_person', first_name: 'Mario', last_name: 'Rossi', tax_code: CF_MARIO } });
  await h.app.inject({ method: 'POST', url: '/v1/customers', headers: other.headers, payload: { type: 'company', business_name: 'Alfa Foreign S.r.l.', vat_number: PIVA_A } });

  const seen: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const page: any = json(await h.app.inject({
      method: 'GET', url: `/v1/customers?type=company&limit=2${cursor ? `&starting_after=${cursor}` : ''}`, headers: p.headers,
    }));
    t.equal(page.object, 'list');
    seen.push(...page.data.map((c: { id: string }) => c.id));
    t.equal(page.has_more, page.next_cursor !== null);
    cursor = page.next_cursor;
    pages++;
  } while (cursor);
  t.equal(pages, 3);
  t.same(seen, [...ids].reverse(), 'newest first, every customer exactly once, only this partner\'s');

  const search = (query: string) => h.app.inject({ method: 'GET', url: `/v1/customers?${query}`, headers: p.headers }).then((r) => json(r).data.map((c: { business_name: string | null; last_name: string | null }) => c.business_name ?? c.last_name));
  t.same(await search('q=s.r.l'), ['Delta S.r.l.', 'Alfa S.r.l.']);
  t.same(await search('q=100%25'), ['Gamma 100% Bio'], 'LIKE wildcards in the query are literal');
  t.same(await search('q=ross'), ['Rossi']);
  t.same(await search(`tax_code=${CF_MARIO.toLowerCase()}`), ['Rossi']);
  t.same(await search(`vat_number=IT${PIVA_A}&limit=1`), ['Epsilon S.n.c.']);
  t.same(await search('type=non_profit'), []);

  const foreignRead = await h.app.inject({ method: 'GET', url: `/v1/customers/${ids[0]}`, headers: other.headers });
  t.equal(foreignRead.statusCode, 404);
  t.equal(json(foreignRead).code, 'resource_missing');
  t.equal((await h.app.inject({ method: 'PATCH', url: `/v1/customers/${ids[0]}`, headers: other.headers, payload: { email: 'x@y.it' } })).statusCode, 404);
  t.equal((await h.app.inject({ method: 'DELETE', url: `/v1/customers/${ids[0]}`, headers: other.headers })).statusCode, 404);
  t.equal((await h.app.inject({ method: 'GET', url: `/v1/customers/${ids[0]}`, headers: p.headers })).statusCode, 200, 'still there for its owner');
});

t.test('delete: removes the customer; services block deletion with 409', async (t) => {
  const h = await harness(t);
  const p = await h.partner();
  const created = json(await h.app.inject({ method: 'POST', url: '/v1/customers', headers: p.headers, payload: { type: 'private_person', first_name: 'Mario', last_name: 'Rossi', tax_code: CF_MARIO } }));
  const deleted = await h.app.inject({ method: 'DELETE', url: `/v1/customers/${created.id}`, headers: p.headers });
  t.equal(deleted.statusCode, 200);
  t.same(json(deleted), { id: created.id, object: 'customer', livemode: true, deleted: true });
  t.equal((await h.app.inject({ method: 'GET', url: `/v1/customers/${created.id}`, headers: p.headers })).statusCode, 404);
  t.equal((await h.app.inject({ method: 'DELETE', url: `/v1/customers/${created.id}`, headers: p.headers })).statusCode, 404);

  // Services arrive with the domains and mailboxes issue; their tables reference customers ON DELETE RESTRICT.
  // A table shaped like them shows the database refusal is answered as a 409, not a 500.
  const blocked = json(await h.app.inject({ method: 'POST', url: '/v1/customers', headers: p.headers, payload: { type: 'private_person', first_name: 'Mario', last_name: 'Rossi', tax_code: CF_MARIO } }));
  await h.database.sql`create table test_services (id text primary key, customer_id text not null references customers(id) on delete restrict)`;
  await h.database.sql`insert into test_services values ('svc_1', ${blocked.id})`;
  const refused = await h.app.inject({ method: 'DELETE', url: `/v1/customers/${blocked.id}`, headers: p.headers });
  t.equal(refused.statusCode, 409);
  t.equal(json(refused).code, 'customer_has_services');
  t.equal((await h.app.inject({ method: 'GET', url: `/v1/customers/${blocked.id}`, headers: p.headers })).statusCode, 200);
});
