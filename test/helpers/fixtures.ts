import type { Harness, TestOperator, TestPartner } from './harness.ts';
import { json } from './harness.ts';

const billingOperators = new WeakMap<Harness, Promise<TestOperator>>();

/** One billing operator per harness, made on first use: who confirms the bank transfers of test top-ups. */
export function billingOperator(h: Harness): Promise<TestOperator> {
  let operator = billingOperators.get(h);
  if (!operator) billingOperators.set(h, (operator = h.operator('billing')));
  return operator;
}

/**
 * Adds credit the way real money arrives: the partner asks for a top-up (pending), the provider's operator confirms
 * the bank transfer. Returns the partner's top-up as credited.
 */
export async function creditPartner(h: Harness, partner: TestPartner, amount: number, note?: string): Promise<any> {
  const created = await h.app.inject({ method: 'POST', url: '/v1/credit/top-ups', headers: partner.headers, payload: { amount, currency: 'EUR', ...(note ? { payment_reference: note } : {}) } });
  if (created.statusCode !== 201) throw new Error(`top-up: ${created.body}`);
  const operator = await billingOperator(h);
  const confirmed = await h.app.inject({
    method: 'POST', url: `/v1/operator/top-ups/${json(created).id}/confirm`, headers: operator.headers, payload: { reason: 'Test transfer received' },
  });
  if (confirmed.statusCode !== 200) throw new Error(`confirm: ${confirmed.body}`);
  return json(confirmed);
}

/** Valid Italian identifiers (checked by hand, see tax-codes.test.ts). */
export const CF_MARIO = 'RSSMRA85T10A562S';
export const PIVA = '01234567897';

type Inject = Harness['app']['inject'];

/** A small client for tests: JSON in, parsed JSON out, status kept. */
export function api(h: Harness, partner: TestPartner) {
  const call = async (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: unknown) => {
    const response = await (h.app.inject as Inject)({ method, url, headers: partner.headers, ...(payload === undefined ? {} : { payload: payload as object }) });
    return { status: response.statusCode, body: json(response), headers: response.headers };
  };
  return {
    get: (url: string) => call('GET', url),
    post: (url: string, payload?: unknown) => call('POST', url, payload ?? {}),
    patch: (url: string, payload: unknown) => call('PATCH', url, payload),
    del: (url: string) => call('DELETE', url),
    /** Creates a company customer (optionally identified) and returns its id. */
    customer: async (identified = true): Promise<string> => {
      const created = await call('POST', '/v1/customers', { type: 'private_person', first_name: 'Mario', last_name: 'Rossi', tax_code: CF_MARIO });
      if (created.status !== 201) throw new Error(`customer: ${JSON.stringify(created.body)}`);
      if (identified) {
        const filed = await call('POST', `/v1/customers/${created.body.id}/identity`, { document_type: 'identity_card', number: 'CA12345AB', issuer: 'Comune di Milano', expires_on: '2030-01-01' });
        if (filed.status !== 201) throw new Error(`identity: ${JSON.stringify(filed.body)}`);
      }
      return created.body.id;
    },
    /** Credit through a pending top-up that an operator confirms (partners cannot credit themselves). */
    topUp: async (amount: number, reference?: string) => {
      await creditPartner(h, partner, amount, reference);
    },
    balance: async (): Promise<number> => (await call('GET', '/v1/credit')).body.balance,
    ledger: async (query = ''): Promise<{ type: string; amount: number; description: string; item: { type: string; id: string } | null }[]> =>
      (await call('GET', `/v1/credit/ledger?limit=100${query}`)).body.data,
  };
}
