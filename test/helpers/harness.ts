import type { Test } from 'tap';
import { buildApp, createOperatorKey, createPartner, ensureDefaultPriceList, loadConfig, loadPriceList, ManualClock, type App, type Clock } from '@pec-partner/api';
import { connect, partnerFiscalData, type Database } from '@pec-partner/db';
import type { VirusScanner } from '../../api/src/pec/virus-scanner.ts';
import { freshDatabase } from './database.ts';

export interface Harness {
  app: App;
  database: Database;
  clock: ManualClock;
  /**
   * A new partner (tenant) with its secret key and ready-made Authorization headers. It has complete fiscal data
   * (every top-up is invoiced, which needs them) unless `fiscalData: false`.
   */
  partner(name?: string, options?: { fiscalData?: boolean }): Promise<TestPartner>;
  /** A new operator key (the provider's staff) with this scope, made as the CLI makes the first one. */
  operator(scope?: 'read_only' | 'billing' | 'full'): Promise<TestOperator>;
  /** Listens on a loopback port (for the SDK and raw HTTP clients) and returns the base URL. */
  listen(): Promise<string>;
}

/** The fiscal data test partners get: a valid partita IVA, an Italian address and an SDI code. */
export const TEST_FISCAL_DATA = {
  legal_name: 'Rivenditore di Prova S.r.l.',
  vat_number: '01234567897',
  address: { street: 'Via Torino 10', town: 'Milano', postcode: '20123', province: 'MI', country: 'IT' },
  e_invoicing: { sdi_code: 'M5UXCR1' },
};

/** Days in milliseconds, for moving the clock. */
export const DAYS = 86_400_000;

export interface TestPartner {
  id: string;
  secret: string;
  apiKeyId: string;
  /** The partner's sandbox: the test twin's partner id and a `sk_test_` key. */
  test: { id: string; secret: string; headers: { authorization: string } };
  headers: { authorization: string };
}

export interface TestOperator {
  id: string;
  secret: string;
  headers: { authorization: string };
}

/** The provider's bank account in tests (PROVIDER_IBAN is the Italian banking association's example IBAN). */
export const TEST_BANK = { iban: 'IT60X0542811101000000123456', beneficiary: 'PEC Partner Test S.p.A.', bic: 'BPMOIT22XXX' };

export interface HarnessOptions {
  env?: Record<string, string>;
  clock?: ManualClock;
  /** Replaces the engine's EICAR scanner (e.g. one that finds nothing, to let an infected message through). */
  scanner?: VirusScanner;
}

/** One fresh database and app per test file; torn down when the file's tests end. */
export async function harness(t: Test, options: HarnessOptions = {}): Promise<Harness> {
  const fresh = await freshDatabase();
  const database = connect(fresh.url, { max: 20 });
  const clock = options.clock ?? new ManualClock('2026-11-22T09:00:00Z');
  const config = loadConfig({
    DATABASE_URL: fresh.url,
    LOG_LEVEL: 'silent',
    PUBLIC_URL: 'http://pec-partner.test',
    // Tests drive scheduled work with app.jobs.tick() after moving the clock.
    JOBS_INTERVAL_SECONDS: '0',
    DNS_TIMEOUT_MS: '300',
    PROVIDER_IBAN: TEST_BANK.iban,
    PROVIDER_BENEFICIARY: TEST_BANK.beneficiary,
    PROVIDER_BIC: TEST_BANK.bic,
    ...options.env,
  });
  // As main.ts does at start-up: the default price list holds PRICES_FILE (or the built-in prices).
  await ensureDefaultPriceList(database.db, clock, loadPriceList(config.pricesFile));
  // TEST_LOG=1 shows server errors while debugging a test.
  const app = await buildApp({ db: database.db, config, clock: clock as Clock, scanner: options.scanner, logger: process.env.TEST_LOG ? { level: 'error' } : false });
  await app.ready();
  t.teardown(async () => {
    await app.close();
    await database.close();
    await fresh.drop();
  });
  return {
    app,
    database,
    clock,
    partner: async (name = 'Test partner', { fiscalData = true } = {}) => {
      const { partner, key, secret, testPartnerId, testSecret } = await createPartner(database.db, clock, name);
      // Written directly (no account.updated event), so suites that count events see only their own.
      if (fiscalData) {
        await database.db.insert(partnerFiscalData).values({
          partnerId: partner.id,
          legalName: TEST_FISCAL_DATA.legal_name,
          vatNumber: TEST_FISCAL_DATA.vat_number,
          address: TEST_FISCAL_DATA.address,
          sdiCode: TEST_FISCAL_DATA.e_invoicing.sdi_code,
          updatedAt: clock.now(),
        });
      }
      return {
        id: partner.id, secret, apiKeyId: key.id, headers: { authorization: `Bearer ${secret}` },
        // The partner's sandbox: its test twin and a `sk_test_` key.
        test: { id: testPartnerId, secret: testSecret, headers: { authorization: `Bearer ${testSecret}` } },
      };
    },
    operator: async (scope = 'full') => {
      const { key, secret } = await createOperatorKey(database.db, clock, { actor: 'cli' }, { name: `Test operator (${scope})`, scope });
      return { id: key.id, secret, headers: { authorization: `Bearer ${secret}` } };
    },
    listen: async () => {
      const address = await app.listen({ host: '127.0.0.1', port: 0 });
      return address;
    },
  };
}

/** Parses a JSON response body, failing loudly (with the body) when it is not JSON. */
export function json<T = any>(response: { body: string }): T {
  try {
    return JSON.parse(response.body) as T;
  } catch {
    throw new Error(`response is not JSON: ${response.body.slice(0, 500)}`);
  }
}
