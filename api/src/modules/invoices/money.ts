/** Italian VAT on the provider's services. The credit ledger is net of VAT, so the credited amount is the taxable one. */
export const VAT_RATE_PERCENT = 22;

/**
 * VAT on a net amount in cents, rounded half up to the cent (the rounding of the FatturaPA specification for
 * Imposta), computed in integers so no binary fraction can tip a half cent either way.
 */
export function vatCents(netCents: number, ratePercent = VAT_RATE_PERCENT): number {
  if (!Number.isSafeInteger(netCents) || netCents <= 0) throw new Error(`net amount must be a positive integer of cents, got ${netCents}`);
  return Math.floor((netCents * ratePercent * 2 + 100) / 200);
}

/** What the partner pays for a net credit: the net plus its VAT, rounded as on the invoice. */
export function grossCents(netCents: number, ratePercent = VAT_RATE_PERCENT): number {
  return netCents + vatCents(netCents, ratePercent);
}

/** `123456` cents → `1.234,56 €`, as an Italian reader expects it. */
export function italianEuro(cents: number): string {
  const sign = cents < 0 ? '-' : '';
  const abs = Math.abs(cents);
  const units = String(Math.floor(abs / 100)).replace(/\B(?=(\d{3})+(?!\d))/g, '.');
  return `${sign}${units},${String(abs % 100).padStart(2, '0')} €`;
}
