import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import t from 'tap';
import { XMLParser } from 'fast-xml-parser';
import { XmlBufferInputProvider, XmlDocument, xmlRegisterInputProvider, XsdValidator } from 'libxml2-wasm';
import { ConfigError, issueTopUpInvoice, loadConfig, ManualClock } from '@pec-partner/api';
import { harness, json, type Harness, type TestOperator, type TestPartner } from './helpers/harness.ts';

const require = createRequire(import.meta.url);
const XMLDSIG_URL = 'http://www.w3.org/TR/2002/REC-xmldsig-core-20020212/xmldsig-core-schema.xsd';

let validator: XsdValidator | undefined;

/**
 * Validates against the official FatturaPA schema with libxml2 (what `xmllint --schema` runs). Nothing is fetched
 * and no schema is copied into this repository; both come from npm packages pinned as test dependencies:
 * - `@digitalia/fatturapa@1.3.1` ships the Agenzia delle Entrate's schema v1.2.1 (`src/schemas/Schema_1.2.1.xsd`).
 *   We write `versione="FPR12"` files following v1.2.2; v1.2.2 only added document types (TD16–TD28) and codes we
 *   do not use, and the files are valid against v1.2.1 (RF03, withdrawn, is absent from v1.2.1 too).
 * - `@authenio/samlify-xmllint-wasm@1.0.1` ships the W3C XML Signature schema (`schemas/xmldsig-core-schema.xsd`),
 *   which the FatturaPA schema imports by its W3C URL: an input provider answers that URL with the local file, so
 *   the official schema is used unchanged and offline.
 */
async function validateFatturaPa(xml: string): Promise<{ valid: boolean; errors: string }> {
  if (!validator) {
    const xmldsig = require.resolve('@authenio/samlify-xmllint-wasm/schemas/xmldsig-core-schema.xsd');
    xmlRegisterInputProvider(new XmlBufferInputProvider({ [XMLDSIG_URL]: await readFile(xmldsig) }));
    const schemaPath = require.resolve('@digitalia/fatturapa/src/schemas/Schema_1.2.1.xsd');
    const schema = XmlDocument.fromBuffer(await readFile(schemaPath), { url: schemaPath });
    validator = XsdValidator.fromDoc(schema);
  }
  const document = XmlDocument.fromString(xml);
  try {
    validator.validate(document);
    return { valid: true, errors: '' };
  } catch (error) {
    return { valid: false, errors: (error as Error).message };
  } finally {
    document.dispose();
  }
}

const parser = new XMLParser({ ignoreAttributes: false, parseTagValue: false, removeNSPrefix: true });

const FISCAL = {
  legal_name: 'Rossi Telematica S.r.l.',
  vat_number: 'IT 0987654321 7',
  tax_code: 'RSSMRA85T10A562S',
  address: { street: 'Corso Buenos Aires 5', town: 'Milano', postcode: '20124', province: 'mi', country: 'IT' },
  e_invoicing: { sdi_code: '0000000', pec: 'Fatture@Pec.Rossi.it' },
};

const operators = new WeakMap<Harness, Promise<TestOperator>>();

function client(h: Harness, p: TestPartner) {
  const request = async (headers: object, method: 'GET' | 'POST' | 'PATCH', url: string, payload?: object) => {
    const response = await h.app.inject({ method, url, headers: headers as Record<string, string>, ...(payload ? { payload } : {}) });
    return { status: response.statusCode, headers: response.headers, text: response.body, body: response.headers['content-type']?.toString().includes('json') ? json(response) : null };
  };
  const call = (method: 'GET' | 'POST' | 'PATCH', url: string, payload?: object) => request(p.headers, method, url, payload);
  return {
    call,
    /** Asks for a top-up (the partner) and confirms its transfer arrived (an operator): the crediting that invoices. */
    topUp: async (amount: number, partnerReference: string) => {
      const created = await call('POST', '/v1/credit/top-ups', { amount, currency: 'EUR', payment_reference: partnerReference });
      if (created.status !== 201) return created;
      if (!operators.has(h)) operators.set(h, h.operator('billing'));
      const operator = await operators.get(h)!;
      return request(operator.headers, 'POST', `/v1/operator/top-ups/${created.body.id}/confirm`, { reason: 'Transfer seen on the account' });
    },
    invoices: async (query = '') => (await call('GET', `/v1/invoices?limit=100${query}`)).body.data as any[],
  };
}

t.test('a credited top-up issues one invoice: net credit + 22 % VAT, the partner data of that moment, an event', async (t) => {
  const h = await harness(t);
  const p = await h.partner('Rossi', { fiscalData: false });
  const c = client(h, p);
  const account = await c.call('PATCH', '/v1/account', FISCAL);
  t.equal(account.status, 200);
  t.same(account.body, {
    id: p.id, object: 'account', livemode: true, name: 'Rossi', legal_name: 'Rossi Telematica S.r.l.', vat_number: '09876543217', tax_code: 'RSSMRA85T10A562S',
    address: { street: 'Corso Buenos Aires 5', town: 'Milano', postcode: '20124', province: 'MI', country: 'IT' },
    e_invoicing: { sdi_code: '0000000', pec: 'fatture@pec.rossi.it' }, invoicing_ready: true, missing_fields: [], updated_at: '2026-11-22T09:00:00.000Z',
  });

  // 10.25 € × 22 % = 2.255 €: half a cent, rounded up.
  const credited = await c.topUp(1025, 'TRN-2026-0001');
  t.equal(credited.status, 200);
  const reference = credited.body.payment_reference;
  t.match(reference, /^PEC-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}$/);
  t.equal(credited.body.bank_transfer.amount, 1251, 'the transfer carried the gross: net + VAT, as invoiced');
  t.equal((await c.call('GET', '/v1/credit')).body.balance, 1025, 'the credit is the net amount');
  const list = await c.invoices();
  t.equal(list.length, 1, 'one invoice per credited top-up');
  const invoice = list[0];
  t.match(invoice.id, /^inv_[0-9a-z]{26}$/);
  t.same(invoice, {
    id: invoice.id, object: 'invoice', livemode: true, number: '2026/000001', issue_date: '2026-11-22', issued_at: '2026-11-22T09:00:00.000Z',
    top_up: credited.body.id, currency: 'EUR', net_amount: 1025, vat_rate: 22, vat_amount: 226, total_amount: 1251,
    lines: [{ description: `Ricarica del credito prepagato per i servizi PEC (riferimento pagamento ${reference})`, quantity: 1, unit_amount: 1025, net_amount: 1025, vat_rate: 22 }],
    customer: {
      legal_name: 'Rossi Telematica S.r.l.', vat_number: '09876543217', tax_code: 'RSSMRA85T10A562S',
      address: { street: 'Corso Buenos Aires 5', town: 'Milano', postcode: '20124', province: 'MI', country: 'IT' },
      e_invoicing: { sdi_code: '0000000', pec: 'fatture@pec.rossi.it' },
    },
    supplier: {
      legal_name: 'PEC Partner Demo S.p.A.', vat_number: '12345678903', tax_code: '12345678903',
      address: { street: 'Via Example 1', town: 'Milano', postcode: '20121', province: 'MI', country: 'IT' }, tax_regime: 'RF01',
    },
    payment: { method: 'bank_transfer', reference, paid_at: '2026-11-22T09:00:00.000Z' },
    file_name: 'IT12345678903_FH9Q9.xml', partner: p.id, created_at: '2026-11-22T09:00:00.000Z',
  });
  t.equal((26_000_001).toString(36).toUpperCase(), 'FH9Q9', 'the file progressive is year and number in base 36');
  t.same((await c.call('GET', `/v1/invoices/${invoice.id}`)).body, invoice);

  const events = (await c.call('GET', '/v1/events?type=invoice.created')).body.data;
  t.equal(events.length, 1);
  t.same(events[0].data.object, invoice, 'invoice.created carries the invoice as GET shows it');

  // Changing the fiscal data later changes the next invoice, never an issued one.
  await c.call('PATCH', '/v1/account', { legal_name: 'Rossi Telematica S.p.A.' });
  t.equal((await c.call('GET', `/v1/invoices/${invoice.id}`)).body.customer.legal_name, 'Rossi Telematica S.r.l.', 'issued invoices keep their snapshot');
  await c.topUp(100_000, 'TRN-2026-0002');
  const [second] = await c.invoices();
  t.match(second, { number: '2026/000002', customer: { legal_name: 'Rossi Telematica S.p.A.' }, net_amount: 100_000, vat_amount: 22_000, total_amount: 122_000 });

  // The rows are fiscal documents: the database refuses to change or remove them.
  await t.rejects(h.database.sql`update invoices set total_cents = 1 where id = ${invoice.id}`, /invoices are immutable/);
  await t.rejects(h.database.sql`delete from invoices where id = ${invoice.id}`, /invoices are immutable/);
});

t.test('the FatturaPA file is valid against the official v1.2.1 schema, and the same validator catches a broken one', async (t) => {
  // The IBAN printed is PROVIDER_IBAN (the harness's bank account); the deprecated INVOICE_SUPPLIER_IBAN may repeat it.
  const h = await harness(t, { env: { INVOICE_SUPPLIER_IBAN: 'IT60 X054 2811 1010 0000 0123 456', INVOICE_SUPPLIER_EMAIL: 'fatture@example.it' } });
  const p = await h.partner('Rossi', { fiscalData: false });
  const c = client(h, p);
  t.equal((await c.call('PATCH', '/v1/account', FISCAL)).status, 200);
  const credited = await c.topUp(1025, 'TRN-XML-1');
  t.equal(credited.status, 200);
  const [invoice] = await c.invoices();
  const response = await c.call('GET', `/v1/invoices/${invoice.id}/xml`);
  t.equal(response.status, 200);
  t.equal(response.headers['content-type'], 'application/xml; charset=utf-8');
  t.equal(response.headers['content-disposition'], 'attachment; filename="IT12345678903_FH9Q9.xml"');
  const xml = response.text;

  const result = await validateFatturaPa(xml);
  t.same(result, { valid: true, errors: '' }, 'valid against the official Schema_1.2.1.xsd');

  const doc = parser.parse(xml).FatturaElettronica;
  t.equal(doc['@_versione'], 'FPR12');
  const header = doc.FatturaElettronicaHeader;
  t.same(header.DatiTrasmissione, {
    IdTrasmittente: { IdPaese: 'IT', IdCodice: '12345678903' }, ProgressivoInvio: 'FH9Q9', FormatoTrasmissione: 'FPR12',
    CodiceDestinatario: '0000000', PECDestinatario: 'fatture@pec.rossi.it',
  });
  t.same(header.CessionarioCommittente.DatiAnagrafici, {
    IdFiscaleIVA: { IdPaese: 'IT', IdCodice: '09876543217' }, CodiceFiscale: 'RSSMRA85T10A562S', Anagrafica: { Denominazione: 'Rossi Telematica S.r.l.' },
  });
  t.equal(header.CedentePrestatore.DatiAnagrafici.RegimeFiscale, 'RF01');
  const body = doc.FatturaElettronicaBody;
  t.match(body.DatiGenerali.DatiGeneraliDocumento, { TipoDocumento: 'TD01', Divisa: 'EUR', Data: '2026-11-22', Numero: '2026/000001', ImportoTotaleDocumento: '12.51' });
  t.same(body.DatiBeniServizi.DatiRiepilogo, { AliquotaIVA: '22.00', ImponibileImporto: '10.25', Imposta: '2.26', EsigibilitaIVA: 'I' });
  t.same(body.DatiPagamento, {
    CondizioniPagamento: 'TP02',
    DettaglioPagamento: { ModalitaPagamento: 'MP05', DataScadenzaPagamento: '2026-11-22', ImportoPagamento: '12.51', IBAN: 'IT60X0542811101000000123456', CodicePagamento: credited.body.payment_reference },
  });

  // The validator is real: files broken in ways the schema forbids are refused, each with libxml2's reason.
  const withoutNumber = await validateFatturaPa(xml.replace(/<Numero>[^<]*<\/Numero>/, ''));
  t.equal(withoutNumber.valid, false);
  t.match(withoutNumber.errors, /Numero/);
  const commaDecimal = await validateFatturaPa(xml.replace('<ImponibileImporto>10.25<', '<ImponibileImporto>10,25<'));
  t.equal(commaDecimal.valid, false);
  t.match(commaDecimal.errors, /ImponibileImporto/);
  const badRegime = await validateFatturaPa(xml.replace('<RegimeFiscale>RF01<', '<RegimeFiscale>RF03<'));
  t.equal(badRegime.valid, false, 'RF03 (withdrawn) is no RegimeFiscale');
});

t.test('numbers have no gaps and no duplicates under concurrent credits, and a rolled-back credit gives its number back', async (t) => {
  const h = await harness(t);
  const partners = await Promise.all([h.partner('A'), h.partner('B'), h.partner('C')]);
  const N = 24;
  const responses = await Promise.all(Array.from({ length: N }, (_, i) => client(h, partners[i % 3]!).topUp(100 + i, `TRN-C-${i}`)));
  t.same(responses.map((r) => r.status), Array(N).fill(200));

  const rows = await h.database.sql<{ number: string; top_up_id: string }[]>`select number, top_up_id from invoices order by sequence`;
  t.same(rows.map((r) => r.number), Array.from({ length: N }, (_, i) => `2026/${String(i + 1).padStart(6, '0')}`), '1…N, each once');
  t.same(new Set(rows.map((r) => r.top_up_id)), new Set(responses.map((r) => r.body.id)), 'one invoice for each credited top-up');
  t.same(await h.database.sql`select year, last_number from invoice_counters`, [{ year: 2026, last_number: N }]);

  // A credit whose transaction fails after its invoice took a number: the number goes back with the rollback.
  const config = loadConfig({ DATABASE_URL: 'postgres://unused/x' });
  const pending = await client(h, partners[0]!).call('POST', '/v1/credit/top-ups', { amount: 500, currency: 'EUR' });
  t.equal(pending.status, 201);
  await t.rejects(h.database.db.transaction(async (tx) => {
    const issued = await issueTopUpInvoice(tx, h.clock, config.invoicing, {
      partnerId: partners[0]!.id, topUpId: pending.body.id, amountCents: 500, creditedAt: h.clock.now(), paymentReference: pending.body.payment_reference,
    });
    t.equal(issued.number, `2026/${String(N + 1).padStart(6, '0')}`, 'inside the transaction it had the next number');
    throw new Error('payment provider said no');
  }), /payment provider said no/);
  t.equal((await client(h, partners[1]!).topUp(999, 'TRN-AFTER')).status, 200);
  const [last] = await h.database.sql<{ number: string }[]>`select number from invoices order by sequence desc limit 1`;
  t.equal(last!.number, `2026/${String(N + 1).padStart(6, '0')}`, 'the next credit takes the number the rolled-back one gave back');
  t.equal((await h.database.sql`select 1 from invoices where top_up_id = ${pending.body.id}`).length, 0);

  // The database itself keeps the counter dense: it moves by one only and an invoice must take its value.
  await t.rejects(h.database.sql`update invoice_counters set last_number = last_number + 2 where year = 2026`, /can only move/);
  await t.rejects(h.database.sql`delete from invoice_counters`, /never deleted/);
});

t.test('the numbering restarts with the year, which is the year in Italy', async (t) => {
  const clock = new ManualClock('2026-12-31T22:59:59Z'); // 23:59:59 on 31 December in Rome
  const h = await harness(t, { clock });
  const c = client(h, await h.partner());
  await c.topUp(1000, 'TRN-Y-1');
  await c.topUp(1000, 'TRN-Y-2');
  clock.set('2026-12-31T23:00:00Z'); // midnight in Rome: 1 January 2027 (still 2026 in UTC)
  await c.topUp(1000, 'TRN-Y-3');
  clock.set('2027-03-01T10:00:00Z');
  await c.topUp(1000, 'TRN-Y-4');
  const invoices = (await c.invoices()).reverse();
  t.same(invoices.map((i) => [i.number, i.issue_date]), [
    ['2026/000001', '2026-12-31'], ['2026/000002', '2026-12-31'], ['2027/000001', '2027-01-01'], ['2027/000002', '2027-03-01'],
  ]);
  t.same(invoices.map((i) => i.file_name), ['IT12345678903_FH9Q9', 'IT12345678903_FH9QA', 'IT12345678903_G2PC1', 'IT12345678903_G2PC2'].map((f) => `${f}.xml`));
  t.same((await c.invoices('&year=2027')).map((i) => i.number), ['2027/000002', '2027/000001'], 'filter by year');
  const page = (await c.call('GET', '/v1/invoices?limit=3')).body;
  t.equal(page.has_more, true);
  const rest = (await c.call('GET', `/v1/invoices?limit=3&starting_after=${page.next_cursor}`)).body;
  t.same(rest.data.map((i: any) => i.number), ['2026/000001'], 'cursor pagination like every list');
});

t.test('the readable copy is Italian, printable and escapes what the partner typed', async (t) => {
  const h = await harness(t);
  const p = await h.partner('Hostile', { fiscalData: false });
  const c = client(h, p);
  const hostile = `<script>alert("x")</script> & 'Co' S.r.l.`;
  t.equal((await c.call('PATCH', '/v1/account', { ...FISCAL, legal_name: hostile, address: { ...FISCAL.address, street: 'Via <b>Roma</b> 1' } })).status, 200);
  t.equal((await c.topUp(123_456, 'TRN-HTML')).status, 200);
  const [invoice] = await c.invoices();
  const response = await c.call('GET', `/v1/invoices/${invoice.id}/html`);
  t.equal(response.status, 200);
  t.equal(response.headers['content-type'], 'text/html; charset=utf-8');
  t.match(String(response.headers['content-security-policy']), /^default-src 'none'; style-src 'sha256-[A-Za-z0-9+/=]+'/);
  const html = response.text;
  t.notMatch(html, /<script|<img|<b>/, 'no markup from the partner survives');
  t.match(html, '&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;Co&#39; S.r.l.');
  t.match(html, 'Via &lt;b&gt;Roma&lt;/b&gt; 1');
  t.match(html, '<html lang="it">');
  t.match(html, 'Fattura n. 2026/000001');
  t.match(html, 'Data: 22/11/2026');
  t.match(html, /Imponibile<\/td><td class="n">1\.234,56 €/);
  t.match(html, /IVA 22 % \(esigibilità immediata\)<\/td><td class="n">271,60 €/);
  t.match(html, /Totale documento<\/td><td class="n">1\.506,16 €/);
  t.match(html, '@media print');

  // The XML escapes them too, and stays valid.
  const xml = (await c.call('GET', `/v1/invoices/${invoice.id}/xml`)).text;
  t.match(xml, '<Denominazione>&lt;script&gt;alert("x")&lt;/script&gt; &amp; \'Co\' S.r.l.</Denominazione>');
  t.same(await validateFatturaPa(xml), { valid: true, errors: '' });
});

t.test("another partner's invoice is a 404 like a missing one", async (t) => {
  const h = await harness(t);
  const owner = client(h, await h.partner('Owner'));
  const other = client(h, await h.partner('Other'));
  await owner.topUp(5000, 'TRN-OWN');
  const [invoice] = await owner.invoices();
  for (const suffix of ['', '/xml', '/html']) {
    const foreign = await other.call('GET', `/v1/invoices/${invoice.id}${suffix}`);
    const missing = await other.call('GET', `/v1/invoices/inv_00000000000000000000000000${suffix}`);
    t.equal(foreign.status, 404, `GET …${suffix}`);
    t.equal(foreign.headers['content-type'], 'application/problem+json; charset=utf-8');
    t.same({ ...foreign.body, detail: null, request_id: null }, { ...missing.body, detail: null, request_id: null });
    t.equal(foreign.body.code, 'resource_missing');
  }
  t.same(await other.invoices(), []);
  const cursor = await other.call('GET', `/v1/invoices?starting_after=${invoice.id}`);
  t.equal(cursor.status, 400, "another partner's invoice is no cursor either");
});

t.test('fiscal data is validated like customers, and credit waits for it', async (t) => {
  const h = await harness(t);
  const p = await h.partner('New', { fiscalData: false });
  const c = client(h, p);
  t.match((await c.call('GET', '/v1/account')).body, {
    object: 'account', livemode: true, name: 'New', legal_name: null, vat_number: null, invoicing_ready: false,
    missing_fields: ['legal_name', 'vat_number', 'address', 'e_invoicing'], updated_at: null,
  });

  const refused = await c.topUp(5000, 'TRN-EARLY');
  t.equal(refused.status, 409, 'asking for a top-up is refused: no money may arrive that could not be invoiced');
  t.equal(refused.headers['content-type'], 'application/problem+json; charset=utf-8');
  t.match(refused.body, { code: 'fiscal_data_required', missing_fields: ['legal_name', 'vat_number', 'address', 'e_invoicing'] });
  t.equal((await c.call('GET', '/v1/credit')).body.balance, 0, 'no credit without its invoice');
  t.same((await c.call('GET', '/v1/credit/ledger')).body.data, []);
  t.same((await c.call('GET', '/v1/events?type=credit.top_up.created')).body.data, []);

  const bad = await c.call('PATCH', '/v1/account', {
    legal_name: 'Studio 🚀 S.r.l.',
    vat_number: '01234567890',
    tax_code: 'RSSMRA85T10A562X',
    address: { street: 'Via Roma 1', town: 'Milano', postcode: '2012', province: null, country: 'IT' },
    e_invoicing: { sdi_code: 'ABC123' },
  });
  t.equal(bad.status, 400);
  t.equal(bad.body.code, 'validation_error');
  t.same(bad.body.errors.map((e: any) => [e.pointer, e.code]), [
    ['/legal_name', 'invalid_characters'],
    ['/vat_number', 'invalid_vat_number'],
    ['/tax_code', 'invalid_tax_code'],
    ['/address/postcode', 'invalid_format'],
    ['/address/province', 'required'],
    ['/e_invoicing/sdi_code', 'invalid_sdi_code'],
  ]);
  const pecless = await c.call('PATCH', '/v1/account', { e_invoicing: { sdi_code: '0000000' } });
  t.same(pecless.body.errors.map((e: any) => [e.pointer, e.code]), [['/e_invoicing/pec', 'required']]);
  const foreign = await c.call('PATCH', '/v1/account', { address: { ...FISCAL.address, country: 'FR' } });
  t.same(foreign.body.errors.map((e: any) => [e.pointer, e.code]), [['/address/country', 'unsupported_country']]);
  const tooLong = await c.call('PATCH', '/v1/account', { legal_name: 'x'.repeat(81) });
  t.equal(tooLong.status, 400, 'Denominazione holds 80 characters');
  const unknown = await c.call('PATCH', '/v1/account', { name: 'Renamed' });
  t.equal(unknown.status, 400, 'the name is the operator’s, not a fiscal field');
  t.equal((await c.call('GET', '/v1/account')).body.updated_at, null, 'nothing was stored');

  const partial = await c.call('PATCH', '/v1/account', { legal_name: 'Nuovo Rivenditore S.r.l.', vat_number: '01234567897' });
  t.match(partial.body, { invoicing_ready: false, missing_fields: ['address', 'e_invoicing'] });
  const complete = await c.call('PATCH', '/v1/account', { address: FISCAL.address, e_invoicing: { sdi_code: 'm5uxcr1' } });
  t.match(complete.body, { invoicing_ready: true, missing_fields: [], e_invoicing: { sdi_code: 'M5UXCR1', pec: null }, tax_code: null });
  t.equal((await c.topUp(5000, 'TRN-EARLY')).status, 200, 'a top-up is accepted (and credited) once the data is there');
  t.same((await c.call('GET', '/v1/credit/top-ups')).body.data.length, 1, 'the refused request left no top-up');
  t.equal((await c.call('GET', '/v1/events?type=account.updated')).body.data.length, 2);
  const cleared = await c.call('PATCH', '/v1/account', { e_invoicing: null });
  t.match(cleared.body, { invoicing_ready: false, missing_fields: ['e_invoicing'] });
});

t.test("the provider's fiscal data is validated at start-up", async (t) => {
  const env = { DATABASE_URL: 'postgres://x/y' };
  t.match(loadConfig(env).invoicing, {
    legalName: 'PEC Partner Demo S.p.A.', vatNumber: '12345678903', taxCode: '12345678903', taxRegime: 'RF01',
    address: { street: 'Via Example 1', town: 'Milano', postcode: '20121', province: 'MI', country: 'IT' }, iban: undefined,
  });
  const fails = (extra: Record<string, string>, message: RegExp) => t.throws(() => loadConfig({ ...env, ...extra }), { name: 'ConfigError', message });
  fails({ INVOICE_SUPPLIER_VAT_NUMBER: '12345678901' }, /INVOICE_SUPPLIER_VAT_NUMBER must be a valid partita IVA: wrong check digit/);
  fails({ INVOICE_SUPPLIER_TAX_CODE: 'RSSMRA85T10A562X' }, /INVOICE_SUPPLIER_TAX_CODE/);
  fails({ INVOICE_SUPPLIER_TAX_REGIME: 'RF03' }, /INVOICE_SUPPLIER_TAX_REGIME must be one of RF01, RF02, RF04/);
  fails({ INVOICE_SUPPLIER_POSTCODE: '2012' }, /INVOICE_SUPPLIER_POSTCODE/);
  fails({ INVOICE_SUPPLIER_IBAN: 'IT60X0542811101000000123457' }, /INVOICE_SUPPLIER_IBAN is replaced by PROVIDER_IBAN/);
  fails({ INVOICE_SUPPLIER_NAME: 'Ditta 北京' }, /INVOICE_SUPPLIER_NAME must be 1 to 80 Latin-1 characters/);
  t.ok(ConfigError);
  // One account: the invoices print the IBAN top-ups are paid into; the old name is accepted only for that same account.
  const bank = { PROVIDER_IBAN: 'it60 x054 2811 1010 0000 0123 456', PROVIDER_BENEFICIARY: 'PEC Partner S.p.A.', PROVIDER_BIC: 'BPMOIT22XXX' };
  t.equal(loadConfig({ ...env, ...bank, INVOICE_SUPPLIER_VAT_NUMBER: 'IT01234567897' }).invoicing.iban, 'IT60X0542811101000000123456');
  t.equal(loadConfig({ ...env, ...bank, INVOICE_SUPPLIER_IBAN: 'IT60 X054 2811 1010 0000 0123 456' }).invoicing.iban, 'IT60X0542811101000000123456');
  fails({ ...bank, INVOICE_SUPPLIER_IBAN: 'IT02L1234512345123456789012' }, /INVOICE_SUPPLIER_IBAN is replaced by PROVIDER_IBAN .*: remove it \(PROVIDER_IBAN is IT60X0542811101000000123456\)/);
});
